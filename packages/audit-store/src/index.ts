export * from "./store.js";
export { ReadOnlyQueryError, checkReadOnlySql } from "./readonly.js";
export { eventRows, undecodableRow, effectName, formatMicros, rowValuesJson, EVENT_COLUMNS, CHAIN_COLUMNS, type EventRow } from "./rows.js";
export { SCHEMA_PATH, schemaStatements } from "./schema.js";
