export { startAuditService, type AuditServiceHandle } from "./start.js";
export { auditServiceImpl } from "./service.js";
export { startWriter, CONSUMER_NAME, type AuditWriter } from "./writer.js";
