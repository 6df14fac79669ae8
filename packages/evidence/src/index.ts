export { parsePeriod, parseInstant, iso, chTime, type Period } from "./period.js";
export { toCsv, parseCsv, csvField, cellText, type Cell } from "./csv.js";
export { EvidenceReader, ts, type EvidenceQuery, type Table, type TableId } from "./collect.js";
export { CRITERIA, viewRows, type Criterion, type CriterionView } from "./criteria.js";
export { integritySummary, type IntegritySummary } from "./integrity.js";
export { renderHtml, escapeHtml, NO_EVIDENCE, type Cover, type CriterionResult } from "./html.js";
export {
  MANIFEST,
  MANIFEST_FORMAT,
  SIGNING_KEY_ENV,
  canonicalJson,
  buildManifest,
  verifyPack,
  loadPackSigner,
  listFiles,
  sha256File,
  type Manifest,
  type ManifestBody,
  type ManifestFile,
  type PackSigner,
  type PackProblem,
  type PackVerifyResult,
} from "./manifest.js";
export { generateEvidencePack, toolVersion, type GenerateOptions, type GenerateResult } from "./pack.js";
