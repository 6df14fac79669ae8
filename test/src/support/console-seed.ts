// Synthetic but realistic audit history for the console bench: many identities
// and connections, sessions of a few to a dozen statements with their decisions
// and results, denials by the demo policies, held statements with their approval
// tickets (approved, denied, expired, a few still pending), masking events and
// session ends, spread over the last 30 days. Events are built as the listeners
// and the approval service build them (AuditEvent protobuf messages) and go
// through the audit store's own insert path (eventRows), so every row is shaped
// exactly like a real one. Deterministic for a given seed.
import { Command, Decision, Effect, TicketState, type AuditEvent, type Identity } from "@gatehouse/proto";
import type { AuditStore } from "@gatehouse/audit-store";
import { seededRandom } from "@gatehouse/testing";


const CONNECTIONS = [
  { name: "pg-prod", protocol: "postgres" },
  { name: "pg-staging", protocol: "postgres" },
  { name: "pg-analytics", protocol: "postgres" },
  { name: "billing-db", protocol: "postgres" },
  { name: "crm-replica", protocol: "postgres" },
  { name: "bastion-prod", protocol: "ssh" },
  { name: "build-host", protocol: "ssh" },
];

const ALLOWED = [
  { text: "SELECT id, status, total FROM orders WHERE customer_id = $1", actions: ["sql:select"], tables: ["orders"] },
  { text: "SELECT name, email, phone FROM customers WHERE id = $1", actions: ["sql:select"], tables: ["customers"], masks: ["EMAIL", "PHONE_NUMBER"] },
  { text: "SELECT count(*) FROM orders WHERE created_at > now() - interval '1 day'", actions: ["sql:select"], tables: ["orders"] },
  { text: "UPDATE orders SET status = 'shipped' WHERE id = $1", actions: ["sql:update"], tables: ["orders"] },
  { text: "INSERT INTO order_notes (order_id, note) VALUES ($1, $2)", actions: ["sql:insert"], tables: ["order_notes"] },
  { text: "SELECT ssn, card_number FROM customers WHERE id = $1", actions: ["sql:select"], tables: ["customers"], masks: ["US_SSN", "CREDIT_CARD"] },
  { text: "SELECT notes FROM customers ORDER BY id LIMIT 50", actions: ["sql:select"], tables: ["customers"], masks: ["EMAIL", "PERSON"] },
];
const DENIED = [
  { text: "DROP TABLE customers", actions: ["sql:drop_table"], tables: ["customers"], policies: ["forbid-ddl", "forbid-drop", "forbid-drop-table"], reason: "schema changes are reserved for the dba group" },
  { text: "DELETE FROM orders", actions: ["sql:delete"], tables: ["orders"], policies: ["forbid-delete-without-where"], reason: "DELETE without WHERE is not allowed" },
  { text: "SELECT pg_terminate_backend(1)", actions: ["sql:select"], tables: [], policies: ["forbid-dangerous-functions"], reason: "dangerous server function" },
  { text: "TRUNCATE order_archive", actions: ["sql:truncate"], tables: ["order_archive"], policies: ["forbid-ddl"], reason: "schema changes are reserved for the dba group" },
  { text: "COPY customers TO PROGRAM 'curl ...'", actions: ["sql:copy_to_program"], tables: ["customers"], policies: ["default-deny"], reason: "no policy permits this statement" },
];
const HELD = { text: "DELETE FROM orders WHERE id = $1", actions: ["sql:delete"], tables: ["orders"], policies: ["orders-delete-needs-approval"], reason: "deleting orders needs an approver" };
const STRATEGY: Record<string, string> = { EMAIL: "partial", PHONE_NUMBER: "redact", US_SSN: "redact", CREDIT_CARD: "partial", PERSON: "hash" };
const APPROVERS = ["alice", "bob", "carol", "dmitri", "erin"];

export interface SeedResult {
  rows: number;
  events: number;
  sessions: number;
  identities: number;
  firstMicros: number;
  lastMicros: number;
  /** A session id that exists, with commands, a denial and masking (for the session page). */
  sampleSession: string;
  sampleIdentity: string;
}

/**
 * Insert about `targetRows` rows into gatehouse.events. Sessions end before
 * `endMicros` (default: now) and start within the `days` before it.
 */
export async function seedConsoleHistory(store: AuditStore, targetRows: number, opts: { seed?: number; days?: number; endMicros?: number; batchRows?: number } = {}): Promise<SeedResult> {
  const rnd = seededRandom(opts.seed ?? 42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const endMicros = opts.endMicros ?? Date.now() * 1000;
  const spanMicros = (opts.days ?? 30) * 86_400_000_000;
  const batchRows = opts.batchRows ?? 100_000;
  const identities: Identity[] = [];
  for (let i = 0; i < 240; i++) {
    const kind = i < 160 ? "agent" : i < 220 ? "ci" : "human";
    const subject = kind === "agent" ? `agent-${String(i).padStart(3, "0")}` : kind === "ci" ? `repo:acme/service-${i}:ref:refs/heads/main` : `user-${i}@acme.example`;
    const groups = kind === "human" ? ["developers"] : i % 7 === 0 ? ["agents", "dba"] : ["agents"];
    identities.push({ subject, name: subject.slice(0, 20), groups, kind, issuer: "https://idp.acme.example", tokenId: "", clientId: "", expiresAtUnix: 0 });
  }
  // A few identities do most of the work, as in real fleets.
  const weighted = (): Identity => identities[Math.floor(Math.pow(rnd(), 2.2) * identities.length)]!;

  let rows = 0;
  let events = 0;
  let sessions = 0;
  let batch: Array<{ event: AuditEvent; streamSeq: number }> = [];
  let batchRowCount = 0;
  let firstMicros = Number.MAX_SAFE_INTEGER;
  let lastMicros = 0;
  let sampleSession = "";
  let sampleIdentity = "";
  const flush = async () => {
    if (batch.length === 0) return;
    rows += await store.insertEvents(batch);
    batch = [];
    batchRowCount = 0;
  };
  const push = async (event: AuditEvent, nRows: number) => {
    events++;
    batch.push({ event, streamSeq: 0 });
    batchRowCount += nRows;
    if (batchRowCount >= batchRows) await flush();
  };

  while (rows + batchRowCount < targetRows) {
    sessions++;
    const id = weighted();
    const conn = pick(CONNECTIONS);
    const sessionId = `lst${sessions % 3}:${sessions.toString(36).padStart(6, "0")}${Math.floor(rnd() * 1e6).toString(36)}`;
    const t0 = endMicros - Math.floor(rnd() * spanMicros) - 3_600_000_000;
    firstMicros = Math.min(firstMicros, t0);
    let t = t0;
    let n = 0;
    const base = (): Omit<AuditEvent, "body"> => ({ id: `${sessionId}:${++n}`, timeUnixMicros: t, sessionId, connection: conn.name, protocol: conn.protocol, identity: id, listenerId: `listener-${sessions % 3}` });
    await push({ ...base(), body: { $case: "sessionStart", sessionStart: { clientAddress: `10.20.${sessions % 250}.${(sessions * 7) % 250}:${40000 + (sessions % 20000)}`, startupParameters: { application_name: pick(["psql", "agent-sdk", "pgx", "node-postgres"]), client_encoding: "UTF8" }, tls: rnd() < 0.8, authMethod: "oidc", upstream: `${conn.name}.internal:5432` } } }, 1);
    const commands = 1 + Math.floor(rnd() * 12);
    let hadDenial = false;
    let hadMask = false;
    for (let c = 1; c <= commands; c++) {
      t += 50_000 + Math.floor(rnd() * 4_000_000);
      const r = rnd();
      const commandId = `${sessionId}:c${c}`;
      const stmt = r < 0.08 ? pick(DENIED) : r < 0.11 ? HELD : pick(ALLOWED);
      const effect = r < 0.08 ? Effect.EFFECT_DENY : r < 0.11 ? Effect.EFFECT_REQUIRE_APPROVAL : Effect.EFFECT_ALLOW;
      const policies = "policies" in stmt ? stmt.policies : ["agents-read-write"];
      const reason = "reason" in stmt ? stmt.reason : "agents may read and write application tables";
      let approval: { ticketId: string; grantId: string; outcome: string; approvers: string[] } | undefined;
      let ticketOutcome: "approved" | "denied" | "expired" | "pending" | undefined;
      const ticketId = `${sessionId.replace(/[^a-z0-9]/g, "")}-${c}-t`;
      if (effect === Effect.EFFECT_REQUIRE_APPROVAL) {
        const o = rnd();
        ticketOutcome = o < 0.7 ? "approved" : o < 0.85 ? "denied" : o < 0.97 ? "expired" : "pending";
        if (ticketOutcome !== "pending") approval = { ticketId, grantId: "", outcome: ticketOutcome, approvers: ticketOutcome === "approved" ? [pick(APPROVERS)] : [] };
      }
      const params = stmt.text.includes("$2") ? [String(c), "note"] : stmt.text.includes("$1") ? [String(1000 + c)] : [];
      await push(
        {
          ...base(),
          body: {
            $case: "command",
            command: {
              command: Command.fromPartial({ id: commandId, sessionId, connection: conn.name, protocol: conn.protocol, text: stmt.text, params: params.map((p) => ({ text: p, isNull: false })), seq: c, mode: "extended" }),
              decision: Decision.fromPartial({ effect, policyIds: policies, reason, policyVersion: "v-bench", classified: stmt.actions.map((a) => ({ kind: a.split(":")[1] ?? a, action: a, tables: stmt.tables })), cacheable: true }),
              decidedBy: c > 1 ? "cache" : "policy",
              approval,
            },
          },
        },
        2,
      );
      if (ticketOutcome) {
        const ticketBase = { id: ticketId, requester: id, connection: { name: conn.name, protocol: conn.protocol, tags: {} }, sessionId, commandId, commandText: stmt.text, fingerprint: "", policyIds: policies, policyReason: reason, actions: stmt.actions, tables: stmt.tables, approverGroups: ["approvers"], minApprovals: 1, createdUnixMs: Math.floor(t / 1000), expiresUnixMs: Math.floor(t / 1000) + 900_000, votes: [], decidedUnixMs: 0, stateReason: "", grantId: "", listenerId: "listener-0", policyVersion: "v-bench" };
        const svc: Identity = { subject: "gatehouse-approval", name: "gatehouse-approval", groups: [], kind: "service", issuer: "", tokenId: "", clientId: "", expiresAtUnix: 0 };
        await push({ id: `approval:ticket:${ticketId}:ticket_created`, timeUnixMicros: t, sessionId, connection: conn.name, protocol: conn.protocol, identity: id, listenerId: "gatehouse-approval", body: { $case: "approval", approval: { kind: "ticket_created", ticket: { ...ticketBase, state: TicketState.TICKET_STATE_PENDING }, grant: undefined, vote: undefined } } }, 1);
        if (ticketOutcome !== "pending") {
          const wait = ticketOutcome === "expired" ? 900_000_000 : 5_000_000 + Math.floor(Math.pow(rnd(), 3) * 600_000_000);
          const approver: Identity = { ...svc, subject: pick(APPROVERS), name: "", groups: ["approvers"], kind: "human" };
          const state = ticketOutcome === "approved" ? TicketState.TICKET_STATE_APPROVED : ticketOutcome === "denied" ? TicketState.TICKET_STATE_DENIED : TicketState.TICKET_STATE_EXPIRED;
          const votes = ticketOutcome === "expired" ? [] : [{ approver, approve: ticketOutcome === "approved", reason: "checked", timeUnixMs: Math.floor((t + wait) / 1000), grantMinutes: 0 }];
          t += wait;
          await push({ id: `approval:ticket:${ticketId}:${ticketOutcome}`, timeUnixMicros: t, sessionId, connection: conn.name, protocol: conn.protocol, identity: ticketOutcome === "expired" ? svc : approver, listenerId: "gatehouse-approval", body: { $case: "approval", approval: { kind: ticketOutcome, ticket: { ...ticketBase, state, votes, decidedUnixMs: Math.floor(t / 1000), stateReason: ticketOutcome === "expired" ? "expired after 15m" : `${ticketOutcome} by ${approver.subject}` }, grant: undefined, vote: votes[0] } } }, 1);
        }
      }
      const runs = effect === Effect.EFFECT_ALLOW || ticketOutcome === "approved";
      if (effect === Effect.EFFECT_DENY) hadDenial = true;
      if (runs) {
        const nRows = stmt.actions[0] === "sql:select" ? 1 + Math.floor(rnd() * 50) : 1;
        const masks = "masks" in stmt ? (stmt.masks as string[]) : [];
        for (const entity of masks) {
          hadMask = true;
          await push({ ...base(), body: { $case: "masking", masking: { commandId, column: `customers.${entity.toLowerCase()}`, position: 1, entity, strategy: STRATEGY[entity] ?? "redact", count: nRows, keyId: STRATEGY[entity] === "hash" ? "k1" : "", source: "result" } } }, 1);
        }
        const tag = stmt.actions[0] === "sql:select" ? `SELECT ${nRows}` : stmt.actions[0] === "sql:insert" ? "INSERT 0 1" : `${stmt.actions[0]!.split(":")[1]!.toUpperCase()} 1`;
        await push({ ...base(), body: { $case: "result", result: { commandId, rows: nRows, bytes: nRows * 120, durationMicros: 300 + Math.floor(rnd() * 20_000), errorCode: "", errorMessage: "", statusTag: tag } } }, 1);
      }
    }
    t += 100_000 + Math.floor(rnd() * 10_000_000);
    await push({ ...base(), body: { $case: "sessionEnd", sessionEnd: { reason: pick(["client_closed", "terminate", "terminate", "upstream_closed"]), durationMicros: t - t0, commands: commands } } }, 1);
    lastMicros = Math.max(lastMicros, t);
    if (!sampleSession && hadDenial && hadMask && commands >= 6) {
      sampleSession = sessionId;
      sampleIdentity = id.subject;
    }
  }
  await flush();
  return { rows, events, sessions, identities: identities.length, firstMicros, lastMicros, sampleSession, sampleIdentity };
}
