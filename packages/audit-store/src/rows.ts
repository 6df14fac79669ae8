// Bus events -> rows of gatehouse.events (see deploy/clickhouse/schema.sql).
// One CommandEvent becomes two rows (command, decision); every other event one.
import { Effect, type AuditEvent, type Command, type Decision } from "@gatehouse/proto";
import { approvalRefDetails, approvalRow } from "./approval-rows.js";
import { auditorQueryRow } from "./auditor-rows.js";

export interface EventRow {
  event_id: string;
  stream_seq: number;
  time: string;
  /** The same instant as `time`, in Unix microseconds (what RowBinary writes). */
  time_us: number;
  type: string;
  session_id: string;
  connection: string;
  protocol: string;
  listener_id: string;
  identity_subject: string;
  identity_name: string;
  identity_groups: string[];
  identity_kind: string;
  identity_issuer: string;
  client_address: string;
  command_id: string;
  command_seq: number;
  command_text: string;
  command_params: Array<string | null>;
  statement_kinds: string[];
  actions: string[];
  tables: string[];
  effect: string;
  policy_ids: string[];
  policy_version: string;
  reason: string;
  decided_by: string;
  rows: number;
  bytes: number;
  duration_us: number;
  error_code: string;
  error_message: string;
  status_tag: string;
  startup_parameters: Record<string, string>;
  details: string;
  // Hash chain (set by the audit writer; see deploy/clickhouse/schema.sql).
  chain_pos: number;
  chain_index: number;
  chain_hash: string;
  event_bytes: string;
}

/** Columns filled by the chain, not derived from the event itself. */
export const CHAIN_COLUMNS = ["chain_pos", "chain_index", "chain_hash", "event_bytes"] as const;

/** Columns of gatehouse.events written by the audit service, in the order rowValuesJson() emits them. */
export const EVENT_COLUMNS = [
  "event_id", "stream_seq", "time", "type", "session_id", "connection", "protocol", "listener_id",
  "identity_subject", "identity_name", "identity_groups", "identity_kind", "identity_issuer", "client_address",
  "command_id", "command_seq", "command_text", "command_params", "statement_kinds", "actions", "tables",
  "effect", "policy_ids", "policy_version", "reason", "decided_by", "rows", "bytes", "duration_us",
  "error_code", "error_message", "status_tag", "startup_parameters", "details",
  "chain_pos", "chain_index", "chain_hash", "event_bytes",
] as const satisfies ReadonlyArray<keyof EventRow>;

/**
 * One JSONCompactEachRow line (values in EVENT_COLUMNS order): no key names, so
 * about half the bytes of JSONEachRow to build and for ClickHouse to parse.
 */
export function rowValuesJson(r: EventRow): string {
  return JSON.stringify([
    r.event_id, r.stream_seq, r.time, r.type, r.session_id, r.connection, r.protocol, r.listener_id,
    r.identity_subject, r.identity_name, r.identity_groups, r.identity_kind, r.identity_issuer, r.client_address,
    r.command_id, r.command_seq, r.command_text, r.command_params, r.statement_kinds, r.actions, r.tables,
    r.effect, r.policy_ids, r.policy_version, r.reason, r.decided_by, r.rows, r.bytes, r.duration_us,
    r.error_code, r.error_message, r.status_tag, r.startup_parameters, r.details,
    r.chain_pos, r.chain_index, r.chain_hash, r.event_bytes,
  ]);
}

// Startup parameters whose values must never be stored (they are not normally
// sent by PostgreSQL clients, but a client may put anything there).
const SECRET_KEY = /pass|token|secret|key|auth|cred/i;

export function effectName(e: Effect): string {
  switch (e) {
    case Effect.EFFECT_ALLOW:
      return "allow";
    case Effect.EFFECT_DENY:
      return "deny";
    case Effect.EFFECT_REQUIRE_APPROVAL:
      return "require_approval";
    default:
      return "unspecified";
  }
}

// Rows are built once each with the same shape (no object spreads): the writer
// turns thousands of events a second into rows, so this is its hot path.

// Events of one batch share their millisecond: reuse the formatted date-time.
let lastMs = NaN;
let lastPrefix = "";

/** "YYYY-MM-DD hh:mm:ss.ffffff" (UTC) for a DateTime64(6) column. */
export function formatMicros(micros: number): string {
  const ms = Math.floor(micros / 1000);
  if (ms !== lastMs) {
    const iso = new Date(ms).toISOString(); // 2024-01-02T03:04:05.678Z
    lastPrefix = `${iso.slice(0, 10)} ${iso.slice(11, 19)}.`;
    lastMs = ms;
  }
  const frac = String(((micros % 1_000_000) + 1_000_000) % 1_000_000).padStart(6, "0");
  return lastPrefix + frac;
}

function baseRow(ev: AuditEvent, streamSeq: number, fallbackMicros: number, time?: string): EventRow {
  const id = ev.identity;
  const micros = ev.timeUnixMicros > 0 ? ev.timeUnixMicros : fallbackMicros;
  return {
    event_id: ev.id,
    stream_seq: streamSeq,
    time: time ?? formatMicros(micros),
    time_us: micros,
    type: "",
    session_id: ev.sessionId,
    connection: ev.connection,
    protocol: ev.protocol,
    listener_id: ev.listenerId,
    identity_subject: id?.subject ?? "",
    identity_name: id?.name ?? "",
    identity_groups: id?.groups ?? [],
    identity_kind: id?.kind ?? "",
    identity_issuer: id?.issuer ?? "",
    client_address: "",
    command_id: "",
    command_seq: 0,
    command_text: "",
    command_params: [],
    statement_kinds: [],
    actions: [],
    tables: [],
    effect: "",
    policy_ids: [],
    policy_version: "",
    reason: "",
    decided_by: "",
    rows: 0,
    bytes: 0,
    duration_us: 0,
    error_code: "",
    error_message: "",
    status_tag: "",
    startup_parameters: {},
    details: "{}",
    chain_pos: 0,
    chain_index: 0,
    chain_hash: "",
    event_bytes: "",
  };
}

interface IdentityDetails {
  token_id: string | undefined;
  client_id: string | undefined;
  expires_at_unix: number | undefined;
}

function identityDetails(ev: AuditEvent): IdentityDetails | undefined {
  const id = ev.identity;
  if (!id) return undefined;
  // Token id and client id only; the token itself never travels on the bus.
  return { token_id: id.tokenId || undefined, client_id: id.clientId || undefined, expires_at_unix: id.expiresAtUnix || undefined };
}

/** JSON object text: the identity details first, then `more` (undefined values left out, as JSON.stringify does). */
function details(extra: IdentityDetails | undefined, more?: Record<string, unknown>): string {
  return JSON.stringify(extra ? (more ? Object.assign({ token_id: extra.token_id, client_id: extra.client_id, expires_at_unix: extra.expires_at_unix }, more) : extra) : (more ?? {}));
}

function uniq(xs: string[]): string[] {
  if (xs.length === 0) return xs;
  if (xs.length === 1) return xs[0] === "" ? [] : xs;
  return [...new Set(xs.filter((x) => x !== ""))];
}

function setCommandColumns(row: EventRow, c: Command, d: Decision | undefined): void {
  // The policy service's classification is authoritative when present.
  const statements = d?.classified.length ? d.classified : c.statements;
  row.command_id = c.id;
  row.command_seq = c.seq;
  row.command_text = c.text;
  row.statement_kinds = statements.map((s) => s.kind);
  row.actions = uniq(statements.map((s) => s.action));
  row.tables = statements.length === 1 ? uniq(statements[0]!.tables) : uniq(statements.flatMap((s) => s.tables));
}

const EMPTY_COMMAND: Command = { id: "", sessionId: "", connection: "", protocol: "", text: "", params: [], statements: [], fingerprint: "", seq: 0, mode: "", parseError: "" };

/** Rows for one bus event (stream_seq: the JetStream sequence of its batch). */
export function eventRows(ev: AuditEvent, streamSeq: number, fallbackMicros = Date.now() * 1000): EventRow[] {
  const row = baseRow(ev, streamSeq, fallbackMicros);
  const body = ev.body;
  const extra = identityDetails(ev);
  switch (body?.$case) {
    case "sessionStart": {
      const s = body.sessionStart;
      const params: Record<string, string> = {};
      for (const [k, v] of Object.entries(s.startupParameters)) params[k] = SECRET_KEY.test(k) ? "[REDACTED]" : v;
      row.type = "session_start";
      row.client_address = s.clientAddress;
      row.startup_parameters = params;
      row.details = details(extra, { tls: s.tls, auth_method: s.authMethod, upstream: s.upstream });
      return [row];
    }
    case "sessionEnd": {
      const s = body.sessionEnd;
      row.type = "session_end";
      row.reason = s.reason;
      row.duration_us = s.durationMicros;
      row.details = details(extra, { commands: s.commands });
      return [row];
    }
    case "authFailure": {
      const a = body.authFailure;
      row.type = "auth_failure";
      row.client_address = a.clientAddress;
      row.identity_name = row.identity_name || a.user;
      row.error_code = a.check;
      row.error_message = a.message;
      row.details = details(extra, { user: a.user, check: a.check });
      return [row];
    }
    case "result": {
      const r = body.result;
      row.type = "result";
      row.command_id = r.commandId;
      row.rows = r.rows;
      row.bytes = r.bytes;
      row.duration_us = r.durationMicros;
      row.error_code = r.errorCode;
      row.error_message = r.errorMessage;
      row.status_tag = r.statusTag;
      row.details = details(extra);
      return [row];
    }
    case "command": {
      const { command, decision, decidedBy } = body.command;
      const c = command ?? EMPTY_COMMAND;
      row.type = "command";
      setCommandColumns(row, c, decision);
      row.command_params = c.params.map((p) => (p.isNull ? null : p.text));
      row.details = details(extra, { fingerprint: c.fingerprint, mode: c.mode, parse_error: c.parseError || undefined, statements: c.statements });
      const dec = baseRow(ev, streamSeq, fallbackMicros, row.time);
      dec.event_id = `${ev.id}:decision`;
      dec.type = "decision";
      dec.command_id = row.command_id;
      dec.command_seq = row.command_seq;
      dec.command_text = row.command_text;
      dec.statement_kinds = row.statement_kinds;
      dec.actions = row.actions;
      dec.tables = row.tables;
      dec.effect = decision ? effectName(decision.effect) : "missing";
      dec.policy_ids = decision?.policyIds ?? [];
      dec.policy_version = decision?.policyVersion ?? "";
      dec.reason = decision?.reason ?? "no decision was recorded with this command";
      dec.decided_by = decidedBy;
      dec.details = details(extra, {
        cacheable: decision?.cacheable,
        parse_error: decision?.parseError || undefined,
        statements: decision?.statements.map((s) => ({ ...s, effect: effectName(s.effect) })) ?? [],
        approval: approvalRefDetails(body.command.approval),
      });
      return [row, dec];
    }
    case "approval":
      return [approvalRow(row, body.approval, (more) => details(extra, more))];
    case "auditorQuery":
      return [auditorQueryRow(row, body.auditorQuery, (more) => details(extra, more))];
    case "masking": {
      // What was masked for a command, never the value: one row per column/entity/strategy.
      const m = body.masking;
      row.type = "masking";
      row.command_id = m.commandId;
      row.rows = m.count;
      row.details = details(extra, { column: m.column, position: m.position, entity: m.entity, strategy: m.strategy, source: m.source, key_id: m.keyId || undefined });
      return [row];
    }
    case "policyLoaded": {
      // A load of the policy directory: policy_version = the content version of the
      // files read, effect accepted/rejected, status_tag = start/reload.
      const p = body.policyLoaded;
      row.type = "policy_loaded";
      row.policy_version = p.version;
      row.effect = p.accepted ? "accepted" : "rejected";
      row.status_tag = p.trigger;
      row.rows = p.files.reduce((n, f) => n + f.policies, 0);
      row.reason = p.accepted ? `${p.files.length} policy files loaded` : `rejected: ${p.errors[0] ?? "unknown error"}`;
      row.details = details(extra, { files: p.files.map((f) => ({ path: f.path, sha256: f.sha256, policies: f.policies })), errors: p.errors, accepted: p.accepted, trigger: p.trigger });
      return [row];
    }
    default:
      row.type = "unknown";
      row.details = details(extra, { note: "event without a body" });
      return [row];
  }
}

/** Row for a bus message that could not be decoded: kept, never dropped. */
export function undecodableRow(streamSeq: number, raw: Uint8Array, error: string, fallbackMicros = Date.now() * 1000): EventRow {
  const ev = { id: `undecodable:${streamSeq}`, timeUnixMicros: fallbackMicros, sessionId: "", connection: "", protocol: "", identity: undefined, listenerId: "", body: undefined } as AuditEvent;
  return {
    ...baseRow(ev, streamSeq, fallbackMicros),
    type: "undecodable",
    error_message: error,
    details: JSON.stringify({ raw_base64: Buffer.from(raw).toString("base64"), bytes: raw.length }),
  };
}
