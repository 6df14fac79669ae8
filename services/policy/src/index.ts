export { PolicyEngine, type LoadResult } from "./engine.js";
export {
  SCHEMA_PATH,
  loadSchema,
  readPolicyDir,
  compilePolicies,
  validatePolicyDir,
  policyVersion,
  formatProblem,
  type PolicyFile,
  type LoadedPolicy,
  type PolicyProblem,
  type CompiledPolicies,
  type ValidationReport,
} from "./policies.js";
export { startPolicyService, policyServiceImpl, type PolicyServiceHandle, type PolicyServiceOptions } from "./service.js";
export { watchPolicyDir, type PolicyWatcher } from "./watch.js";
export { runPolicyTests, type PolicyTestReport, type PolicyTestCaseResult } from "./testing.js";
export { PolicyLoadRecorder, policyLoadedBody, sha256Hex, POLICY_SERVICE_IDENTITY, type LoadReport, type PolicyLoadRecorderOptions } from "./load-events.js";
