// Bus events -> rows of gatehouse.events (see deploy/clickhouse/schema.sql).
// One CommandEvent becomes two rows (command, decision); every other event one.
import { Effect, type AuditEvent, type Command, type Decision } from "@gatehouse/proto";

export interface EventRow {
  event_id: string;
  stream_seq: number;
  time: string;
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

/** "YYYY-MM-DD hh:mm:ss.ffffff" (UTC) for a DateTime64(6) column. */
export function formatMicros(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const iso = new Date(ms).toISOString(); // 2024-01-02T03:04:05.678Z
  const frac = String(((micros % 1_000_000) + 1_000_000) % 1_000_000).padStart(6, "0");
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${frac}`;
}

function baseRow(ev: AuditEvent, streamSeq: number, fallbackMicros: number): EventRow {
  const id = ev.identity;
  return {
    event_id: ev.id,
    stream_seq: streamSeq,
    time: formatMicros(ev.timeUnixMicros > 0 ? ev.timeUnixMicros : fallbackMicros),
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
  };
}

function identityDetails(ev: AuditEvent): Record<string, unknown> {
  const id = ev.identity;
  if (!id) return {};
  // Token id and client id only; the token itself never travels on the bus.
  return { token_id: id.tokenId || undefined, client_id: id.clientId || undefined, expires_at_unix: id.expiresAtUnix || undefined };
}

function uniq(xs: string[]): string[] {
  return [...new Set(xs.filter((x) => x !== ""))];
}

function commandColumns(c: Command, d: Decision | undefined) {
  // The policy service's classification is authoritative when present.
  const statements = d?.classified.length ? d.classified : c.statements;
  return {
    command_id: c.id,
    command_seq: c.seq,
    command_text: c.text,
    statement_kinds: statements.map((s) => s.kind),
    actions: uniq(statements.map((s) => s.action)),
    tables: uniq(statements.flatMap((s) => s.tables)),
  };
}

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
      return [
        {
          ...row,
          type: "session_start",
          client_address: s.clientAddress,
          startup_parameters: params,
          details: JSON.stringify({ ...extra, tls: s.tls, auth_method: s.authMethod, upstream: s.upstream }),
        },
      ];
    }
    case "sessionEnd": {
      const s = body.sessionEnd;
      return [
        { ...row, type: "session_end", reason: s.reason, duration_us: s.durationMicros, details: JSON.stringify({ ...extra, commands: s.commands }) },
      ];
    }
    case "authFailure": {
      const a = body.authFailure;
      return [
        {
          ...row,
          type: "auth_failure",
          client_address: a.clientAddress,
          identity_name: row.identity_name || a.user,
          error_code: a.check,
          error_message: a.message,
          details: JSON.stringify({ ...extra, user: a.user, check: a.check }),
        },
      ];
    }
    case "result": {
      const r = body.result;
      return [
        {
          ...row,
          type: "result",
          command_id: r.commandId,
          rows: r.rows,
          bytes: r.bytes,
          duration_us: r.durationMicros,
          error_code: r.errorCode,
          error_message: r.errorMessage,
          status_tag: r.statusTag,
          details: JSON.stringify(extra),
        },
      ];
    }
    case "command": {
      const { command, decision, decidedBy } = body.command;
      const c = command ?? ({ id: "", sessionId: "", connection: "", protocol: "", text: "", params: [], statements: [], fingerprint: "", seq: 0, mode: "", parseError: "" } as Command);
      const cols = commandColumns(c, decision);
      const commandRow: EventRow = {
        ...row,
        ...cols,
        type: "command",
        command_params: c.params.map((p) => (p.isNull ? null : p.text)),
        details: JSON.stringify({
          ...extra,
          fingerprint: c.fingerprint,
          mode: c.mode,
          parse_error: c.parseError || undefined,
          statements: c.statements,
        }),
      };
      const decisionRow: EventRow = {
        ...row,
        ...cols,
        event_id: `${ev.id}:decision`,
        type: "decision",
        effect: decision ? effectName(decision.effect) : "missing",
        policy_ids: decision?.policyIds ?? [],
        policy_version: decision?.policyVersion ?? "",
        reason: decision?.reason ?? "no decision was recorded with this command",
        decided_by: decidedBy,
        details: JSON.stringify({
          ...extra,
          cacheable: decision?.cacheable,
          parse_error: decision?.parseError || undefined,
          statements: decision?.statements.map((s) => ({ ...s, effect: effectName(s.effect) })) ?? [],
        }),
      };
      return [commandRow, decisionRow];
    }
    default:
      return [{ ...row, type: "unknown", details: JSON.stringify({ ...extra, note: "event without a body" }) }];
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
