// Rows for queries auditors ran on the audit store (AuditorQuery events from the
// api service): type 'auditor_query', the query text in command_text, the page or
// route in status_tag, rows and duration in their columns, the error (if any) in
// error_message, and the filters the auditor gave (params) plus where the request
// came from (via) in details. The console view gatehouse.auditor_queries reads them.
import type { AuditorQuery } from "@gatehouse/proto";
import type { EventRow } from "./rows.js";

export function auditorQueryRow(row: EventRow, q: AuditorQuery, details: (more: Record<string, unknown>) => string): EventRow {
  row.type = "auditor_query";
  row.status_tag = q.kind;
  row.command_text = q.query;
  row.rows = q.rows;
  row.duration_us = q.durationMicros;
  row.error_message = q.error;
  // Sorted keys: the row is rebuilt byte-identically from the event (audit verify).
  const params: Record<string, string> = {};
  for (const k of Object.keys(q.params).sort()) params[k] = q.params[k]!;
  row.details = details({ kind: q.kind, via: q.via, params });
  return row;
}
