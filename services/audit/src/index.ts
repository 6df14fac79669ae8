export { startAuditService, type AuditServiceHandle } from "./start.js";
export { auditServiceImpl } from "./service.js";
export { startWriter, type AuditWriter, type WriterOptions } from "./writer.js";
