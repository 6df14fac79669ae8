export * from "./store.js";
export { ReadOnlyQueryError, checkReadOnlySql } from "./readonly.js";
export { eventRows, undecodableRow, effectName, formatMicros, type EventRow } from "./rows.js";
export { SCHEMA_PATH, schemaStatements } from "./schema.js";
