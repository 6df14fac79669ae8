// The evidence itself: read-only queries over the audit store, every value bound
// as a query parameter ({name:Type}, QueryRequest.params), never spliced in.
// Rows are read in pages (LIMIT/OFFSET over a total order), so a NATS reply never
// has to carry a whole table.
import type { Cell } from "./csv.js";
import { chTime, type Period } from "./period.js";

/** AuditService.Query: SQL with {name:Type} placeholders bound from params. */
export type EvidenceQuery = (sql: string, params: Record<string, string>, maxRows: number) => Promise<Record<string, unknown>[]>;

export type TableId =
  | "identities"
  | "privileged_operations"
  | "denied_attempts"
  | "masking_events"
  | "sessions"
  | "policy_versions"
  | "policy_loads"
  | "policy_versions_used"
  | "auth_failures"
  | "integrity"
  | "checkpoints";

export interface Table {
  id: TableId;
  file: string;
  title: string;
  columns: string[];
  rows: Array<Record<string, Cell>>;
}

const PAGE = 1000;

/** "2026-11-01 08:00:00.123456" (ClickHouse, UTC) -> "2026-11-01T08:00:00.123456Z"; the epoch (a missing join row) -> "". */
export function ts(v: unknown): string {
  const s = String(v ?? "");
  if (s === "" || s.startsWith("1970-01-01 00:00:00")) return "";
  return `${s.replace(" ", "T")}Z`;
}

const num = (v: unknown): number => Number(v ?? 0);
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);

export class EvidenceReader {
  private readonly db: string;
  private readonly params: Record<string, string>;
  constructor(
    private readonly query: EvidenceQuery,
    readonly period: Period,
    database = "gatehouse",
  ) {
    // A configuration value, not client input; still, only a plain identifier is accepted.
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) throw new Error(`audit database name "${database}" is not a plain identifier`);
    this.db = database;
    this.params = { from: chTime(period.from), to: chTime(period.to) };
  }

  /** Time filter on column `col` (default `time`) for the period. */
  private window(col = "time"): string {
    return `${col} >= parseDateTime64BestEffort({from:String}, 6, 'UTC') AND ${col} < parseDateTime64BestEffort({to:String}, 6, 'UTC')`;
  }

  /** Every row of `sql` (which must end in a total ORDER BY), page by page. */
  async all(sql: string, extra: Record<string, string> = {}): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const rows = await this.query(`${sql}\nLIMIT {page_limit:UInt64} OFFSET {page_offset:UInt64}`, { ...this.params, ...extra, page_limit: String(PAGE), page_offset: String(offset) }, PAGE);
      out.push(...rows);
      if (rows.length < PAGE) return out;
    }
  }

  async one(sql: string): Promise<Record<string, unknown>> {
    return (await this.query(sql, this.params, 1))[0] ?? {};
  }

  async identities(): Promise<Table> {
    const rows = await this.all(`
SELECT identity_subject AS subject, argMax(identity_name, time) AS name, argMax(identity_kind, time) AS kind,
       arraySort(groupUniqArray(identity_issuer)) AS issuers,
       arraySort(groupUniqArrayArray(identity_groups)) AS groups,
       arraySort(groupUniqArrayIf(connection, connection != '')) AS connections,
       uniqExactIf(session_id, type = 'session_start') AS sessions,
       countIf(type = 'decision' AND effect = 'allow') AS allowed,
       countIf(type = 'decision' AND effect = 'deny') AS denied,
       countIf(type = 'decision' AND effect = 'require_approval') AS held,
       countIf(type = 'approval' AND status_tag IN ('vote', 'grant_created', 'grant_revoked')) AS approval_actions,
       toString(min(time)) AS first_seen, toString(max(time)) AS last_seen
FROM ${this.db}.events FINAL
WHERE ${this.window()} AND identity_subject != '' AND type IN ('session_start', 'session_end', 'command', 'decision', 'result', 'masking', 'approval')
GROUP BY identity_subject
ORDER BY identity_subject`);
    return {
      id: "identities",
      file: "identities.csv",
      title: "Identities and their access",
      columns: ["subject", "name", "kind", "issuers", "groups", "connections", "sessions", "commands_allowed", "commands_denied", "commands_held", "approval_actions", "first_seen", "last_seen"],
      rows: rows.map((r) => ({
        subject: String(r.subject),
        name: String(r.name),
        kind: String(r.kind),
        issuers: strs(r.issuers).filter((x) => x !== ""),
        groups: strs(r.groups),
        connections: strs(r.connections),
        sessions: num(r.sessions),
        commands_allowed: num(r.allowed),
        commands_denied: num(r.denied),
        commands_held: num(r.held),
        approval_actions: num(r.approval_actions),
        first_seen: ts(r.first_seen),
        last_seen: ts(r.last_seen),
      })),
    };
  }

  async privilegedOperations(): Promise<Table> {
    const rows = await this.all(`
SELECT toString(d.time) AS at, d.session_id AS session_id, d.command_id AS command_id, d.identity_subject AS requester,
       d.connection AS connection, d.command_text AS command_text, d.policy_ids AS policy_ids, d.policy_version AS policy_version,
       d.outcome AS outcome, d.ticket_id AS ticket_id, d.grant_id AS grant_id, d.approvers AS approvers,
       t.ticket_id != '' AS has_ticket, toString(t.opened_at) AS opened_at, toString(t.decided_at) AS decided_at, t.state AS ticket_state,
       g.grant_id != '' AS has_grant, toString(g.granted_at) AS granted_at, g.granted_by AS granted_by,
       r.command_id != '' AS has_result, r.rows AS result_rows, r.error_code AS result_error
FROM
(
    SELECT *,
           JSONExtractString(details, 'approval', 'outcome') AS outcome,
           JSONExtractString(details, 'approval', 'ticket_id') AS ticket_id,
           JSONExtractString(details, 'approval', 'grant_id') AS grant_id,
           JSONExtract(details, 'approval', 'approvers', 'Array(String)') AS approvers
    FROM ${this.db}.events FINAL
    WHERE type = 'decision' AND effect = 'require_approval' AND ${this.window()}
) AS d
LEFT JOIN
(
    SELECT JSONExtractString(details, 'ticket_id') AS ticket_id,
           minIf(time, status_tag = 'ticket_created') AS opened_at,
           maxIf(time, status_tag IN ('approved', 'denied', 'expired', 'withdrawn')) AS decided_at,
           argMax(effect, time) AS state
    FROM ${this.db}.events FINAL
    WHERE type = 'approval' AND JSONExtractString(details, 'ticket_id') != '' AND status_tag NOT IN ('grant_created', 'grant_revoked')
    GROUP BY ticket_id
) AS t ON t.ticket_id = d.ticket_id
LEFT JOIN
(
    SELECT JSONExtractString(details, 'grant_id') AS grant_id, min(time) AS granted_at, any(identity_subject) AS granted_by
    FROM ${this.db}.events FINAL
    WHERE type = 'approval' AND status_tag = 'grant_created'
    GROUP BY grant_id
) AS g ON g.grant_id = d.grant_id
LEFT JOIN
(
    SELECT session_id, command_id, rows, error_code FROM ${this.db}.events FINAL WHERE type = 'result'
) AS r ON r.session_id = d.session_id AND r.command_id = d.command_id
ORDER BY d.time, d.session_id, d.command_id`);
    return {
      id: "privileged_operations",
      file: "privileged_operations.csv",
      title: "Privileged operations and their approvals",
      columns: ["time", "requester", "connection", "command_text", "policy_ids", "outcome", "ticket_id", "grant_id", "approvers", "requested_at", "decided_at", "latency_ms", "executed", "result_rows", "session_id", "command_id", "policy_version"],
      rows: rows.map((r) => {
        const ticket = Boolean(r.has_ticket);
        const grant = Boolean(r.has_grant);
        const requestedAt = ticket ? ts(r.opened_at) : "";
        const decidedAt = ticket ? ts(r.decided_at) : grant ? ts(r.granted_at) : "";
        const latency = requestedAt && decidedAt ? Math.round(Date.parse(decidedAt) - Date.parse(requestedAt)) : "";
        const approvers = strs(r.approvers);
        return {
          time: ts(r.at),
          requester: String(r.requester),
          connection: String(r.connection),
          command_text: String(r.command_text),
          policy_ids: strs(r.policy_ids),
          outcome: String(r.outcome) || "unknown",
          ticket_id: String(r.ticket_id),
          grant_id: String(r.grant_id),
          approvers: approvers.length ? approvers : grant ? [String(r.granted_by)] : [],
          requested_at: requestedAt,
          decided_at: decidedAt,
          latency_ms: latency,
          executed: Boolean(r.has_result) && String(r.result_error) === "" ? "yes" : Boolean(r.has_result) ? `failed (${String(r.result_error)})` : "no",
          result_rows: Boolean(r.has_result) ? num(r.result_rows) : "",
          session_id: String(r.session_id),
          command_id: String(r.command_id),
          policy_version: String(r.policy_version),
        };
      }),
    };
  }

  async deniedAttempts(): Promise<Table> {
    const rows = await this.all(`
SELECT toString(time) AS at, identity_subject, identity_name, identity_kind, connection, protocol, session_id, command_id,
       command_text, actions, tables, policy_ids, reason, policy_version, event_id
FROM ${this.db}.events FINAL
WHERE type = 'decision' AND effect = 'deny' AND ${this.window()}
ORDER BY time, event_id`);
    return {
      id: "denied_attempts",
      file: "denied_attempts.csv",
      title: "Denied attempts",
      columns: ["time", "subject", "name", "kind", "connection", "protocol", "command_text", "actions", "tables", "policy_ids", "reason", "policy_version", "session_id", "command_id"],
      rows: rows.map((r) => ({
        time: ts(r.at),
        subject: String(r.identity_subject),
        name: String(r.identity_name),
        kind: String(r.identity_kind),
        connection: String(r.connection),
        protocol: String(r.protocol),
        command_text: String(r.command_text),
        actions: strs(r.actions),
        tables: strs(r.tables),
        policy_ids: strs(r.policy_ids),
        reason: String(r.reason),
        policy_version: String(r.policy_version),
        session_id: String(r.session_id),
        command_id: String(r.command_id),
      })),
    };
  }

  async maskingEvents(): Promise<Table> {
    // The view holds no values at all: column, entity, strategy and a count.
    const rows = await this.all(`
SELECT toString(time) AS at, session_id, command_id, identity_subject, connection, source, column, entity, strategy, count, key_id, event_id
FROM ${this.db}.masking_events
WHERE ${this.window()}
ORDER BY time, event_id`);
    return {
      id: "masking_events",
      file: "masking_events.csv",
      title: "Masking events",
      columns: ["time", "session_id", "command_id", "subject", "connection", "source", "column", "entity", "strategy", "count", "key_id"],
      rows: rows.map((r) => ({
        time: ts(r.at),
        session_id: String(r.session_id),
        command_id: String(r.command_id),
        subject: String(r.identity_subject),
        connection: String(r.connection),
        source: String(r.source),
        column: String(r.column),
        entity: String(r.entity),
        strategy: String(r.strategy),
        count: num(r.count),
        key_id: String(r.key_id),
      })),
    };
  }

  async sessions(): Promise<Table> {
    const rows = await this.all(`
SELECT s.session_id AS session_id, s.identity_subject AS subject, s.identity_kind AS kind, s.connection AS connection, s.protocol AS protocol,
       s.client_address AS client_address, JSONExtractBool(s.details, 'tls') AS tls, JSONExtractString(s.details, 'auth_method') AS auth_method,
       toString(s.time) AS started_at, e.session_id != '' AS ended, toString(e.time) AS ended_at, e.reason AS end_reason,
       c.commands AS commands, c.denied AS denied, rec.session_id != '' AS recorded, rec.complete AS recording_complete, rec.bytes AS recording_bytes
FROM
(
    SELECT * FROM ${this.db}.events FINAL
    WHERE type = 'session_start' AND session_id IN (
        SELECT session_id FROM ${this.db}.events WHERE ${this.window()} AND session_id != '' AND type IN ('session_start', 'session_end', 'command'))
) AS s
LEFT JOIN (SELECT session_id, time, reason FROM ${this.db}.events FINAL WHERE type = 'session_end') AS e ON e.session_id = s.session_id
LEFT JOIN
(
    SELECT session_id, countIf(type = 'command') AS commands, countIf(type = 'decision' AND effect = 'deny') AS denied
    FROM ${this.db}.events FINAL WHERE type IN ('command', 'decision') GROUP BY session_id
) AS c ON c.session_id = s.session_id
LEFT JOIN ${this.db}.recording_index AS rec ON rec.session_id = s.session_id
ORDER BY s.time, s.session_id`);
    return {
      id: "sessions",
      file: "sessions.csv",
      title: "Session index",
      columns: ["session_id", "subject", "kind", "connection", "protocol", "client_address", "tls", "auth_method", "started_at", "ended_at", "end_reason", "commands", "denied", "recording"],
      rows: rows.map((r) => ({
        session_id: String(r.session_id),
        subject: String(r.subject),
        kind: String(r.kind),
        connection: String(r.connection),
        protocol: String(r.protocol),
        client_address: String(r.client_address),
        tls: Boolean(r.tls) ? "yes" : "no",
        auth_method: String(r.auth_method),
        started_at: ts(r.started_at),
        ended_at: Boolean(r.ended) ? ts(r.ended_at) : "",
        end_reason: Boolean(r.ended) ? String(r.end_reason) : "(no session_end)",
        commands: num(r.commands),
        denied: num(r.denied),
        recording: Boolean(r.recorded) ? (Boolean(r.recording_complete) ? `yes (${num(r.recording_bytes)} bytes)` : `partial (${num(r.recording_bytes)} bytes, no last chunk)`) : "no",
      })),
    };
  }

  /** Every policy load up to the end of the period (to know what was in force at its start). */
  async policyLoads(): Promise<Array<{ time: string; instance: string; eventId: string; version: string; trigger: string; accepted: boolean; files: Array<{ path: string; sha256: string; policies: number }>; errors: string[] }>> {
    const rows = await this.all(`
SELECT toString(time) AS at, session_id, event_id, policy_version, status_tag, effect, details
FROM ${this.db}.events FINAL
WHERE type = 'policy_loaded' AND time < parseDateTime64BestEffort({to:String}, 6, 'UTC')
ORDER BY time, event_id`);
    return rows.map((r) => {
      let d: { files?: Array<{ path: string; sha256: string; policies: number }>; errors?: string[] } = {};
      try {
        d = JSON.parse(String(r.details)) as typeof d;
      } catch {
        // A row that is not JSON stays without files; integrity verification reports it.
      }
      return {
        time: ts(r.at),
        instance: String(r.session_id),
        eventId: String(r.event_id),
        version: String(r.policy_version),
        trigger: String(r.status_tag),
        accepted: String(r.effect) === "accepted",
        files: Array.isArray(d.files) ? d.files : [],
        errors: Array.isArray(d.errors) ? d.errors.map(String) : [],
      };
    });
  }

  async policyVersionsUsed(): Promise<Array<{ version: string; decisions: number; first: string; last: string }>> {
    const rows = await this.all(`
SELECT policy_version, count() AS decisions, toString(min(time)) AS first, toString(max(time)) AS last
FROM ${this.db}.events FINAL
WHERE type = 'decision' AND ${this.window()}
GROUP BY policy_version
ORDER BY policy_version`);
    return rows.map((r) => ({ version: String(r.policy_version), decisions: num(r.decisions), first: ts(r.first), last: ts(r.last) }));
  }

  async authFailures(): Promise<Table> {
    const rows = await this.all(`
SELECT toString(time) AS at, client_address, identity_name, identity_subject, error_code, error_message, connection, protocol, listener_id, event_id
FROM ${this.db}.events FINAL
WHERE type = 'auth_failure' AND ${this.window()}
ORDER BY time, event_id`);
    return {
      id: "auth_failures",
      file: "auth_failures.csv",
      title: "Authentication failures",
      columns: ["time", "client_address", "user", "subject", "check", "message", "connection", "protocol", "listener"],
      rows: rows.map((r) => ({
        time: ts(r.at),
        client_address: String(r.client_address),
        user: String(r.identity_name),
        subject: String(r.identity_subject),
        check: String(r.error_code),
        message: String(r.error_message),
        connection: String(r.connection),
        protocol: String(r.protocol),
        listener: String(r.listener_id),
      })),
    };
  }

  /** Chain positions of the period's events (checkpoints covering them). */
  async chainRange(): Promise<{ min: number; max: number; events: number }> {
    const r = await this.one(`SELECT min(chain_pos) AS lo, max(chain_pos) AS hi, count() AS n FROM ${this.db}.events FINAL WHERE ${this.window()} AND chain_pos > 0 AND event_bytes != ''`);
    return { min: num(r.lo), max: num(r.hi), events: num(r.n) };
  }

  async eventTypes(): Promise<Record<string, number>> {
    const rows = await this.all(`SELECT type, count() AS n FROM ${this.db}.events FINAL WHERE ${this.window()} GROUP BY type ORDER BY type`);
    return Object.fromEntries(rows.map((r) => [String(r.type), num(r.n)]));
  }
}
