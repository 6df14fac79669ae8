#!/usr/bin/env node
// node services/policy/dist/main.js [--config FILE]
import { parseArgs } from "node:util";
import { createLogger, loadConfig, onShutdown } from "@gatehouse/runtime";
import { startPolicyService } from "./service.js";

const log = createLogger("policy");
try {
  const { values } = parseArgs({ options: { config: { type: "string" } }, strict: true });
  const config = loadConfig(values.config ? values.config : undefined);
  const svc = await startPolicyService(config, { log });
  log.info({ grpcPort: svc.grpcPort, policies: config.policies, version: svc.engine.version || null }, "ready");
  onShutdown(log, () => svc.stop());
} catch (e) {
  log.fatal({ err: (e as Error).message }, "policy service failed to start");
  process.exitCode = 1;
}
