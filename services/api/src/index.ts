export { startApiService, type ApiService, type ApiServiceOptions } from "./service.js";
export { buildApp } from "./app.js";
export { createDeps, type ApiDeps } from "./deps.js";
export { AUDIT_READER_GROUPS, requireIdentity } from "./auth.js";
