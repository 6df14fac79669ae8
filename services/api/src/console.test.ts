// The auditor console against real parts: a private nats-server, the real audit
// service process (embedded ClickHouse in a temp dir, schema from
// deploy/clickhouse/schema.sql), real signed tokens (token forge) as the console
// cookie. Audit history is written through the audit store's insert path, twice
// (as a writer re-inserting after a crash would), plus recording rows in the
// docs/recordings.md format, before the audit service opens the store.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditEvent, Command, Decision, Effect, TicketState, type Identity } from "@gatehouse/proto";
import { openAuditStore } from "@gatehouse/audit-store";
import { connectBus, createLogger, natsClient, resolveConfig, type GatehouseConfig } from "@gatehouse/runtime";
import { AuditServiceService } from "@gatehouse/proto";
import { startTokenForge, type TokenForge } from "@gatehouse/identity/testing";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { startApiService, type ApiService } from "./index.js";
import { freePort, repoRoot, startNats, startProcess, type Proc } from "@gatehouse/testing";

let nats: { url: string; stop(): Promise<void> };
let nc: NatsConnection;
let forge: TokenForge;
let api: ApiService;
let audit: Proc | undefined;
let config: GatehouseConfig;
const tmp = mkdtempSync(join(tmpdir(), "gatehouse-console-"));
const chdbPath = join(tmp, "clickhouse");
const T0 = Date.UTC(2026, 10, 20, 9, 0, 0) * 1000; // micros
const QUOTED = "lst9:o'hara\\x";

function ident(subject: string): Identity {
  return { subject, name: subject, groups: ["agents"], kind: "agent", issuer: "https://idp.test", tokenId: "", clientId: "", expiresAtUnix: 0 };
}

/** A session as a listener records it: start, statements with decisions and results, masking, approvals, end. */
function sessionEvents(sessionId: string, who: string, connection: string, cmds: Array<{ text: string; effect: Effect; policies: string[]; mask?: number; approvedBy?: string }>, startMicros: number): AuditEvent[] {
  let n = 0;
  let t = startMicros;
  const id = ident(who);
  const base = () => ({ id: `${sessionId}:${++n}`, timeUnixMicros: t, sessionId, connection, protocol: "postgres", identity: id, listenerId: "lst-test" });
  const out: AuditEvent[] = [AuditEvent.fromPartial({ ...base(), body: { $case: "sessionStart", sessionStart: { clientAddress: "127.0.0.1:50000", startupParameters: { application_name: "psql", password: "hunter2" }, tls: true, authMethod: "oidc", upstream: "127.0.0.1:5432" } } })];
  cmds.forEach((c, i) => {
    t += 1_000_000;
    const commandId = `${sessionId}:c${i + 1}`;
    const ticketId = `${sessionId.replace(/\W/g, "")}-t${i + 1}`;
    const approval = c.approvedBy ? { ticketId, grantId: "", outcome: "approved", approvers: [c.approvedBy] } : undefined;
    out.push(
      AuditEvent.fromPartial({
        ...base(),
        body: { $case: "command", command: { command: Command.fromPartial({ id: commandId, sessionId, connection, protocol: "postgres", text: c.text, seq: i + 1, mode: "simple" }), decision: Decision.fromPartial({ effect: c.effect, policyIds: c.policies, reason: `decided by ${c.policies.join(",")}`, policyVersion: "v1" }), decidedBy: "policy", approval } },
      }),
    );
    if (c.approvedBy) {
      const ticket = { id: ticketId, requester: id, connection: { name: connection, protocol: "postgres", tags: {} }, sessionId, commandId, commandText: c.text, policyIds: c.policies, approverGroups: ["approvers"], minApprovals: 1 };
      out.push(AuditEvent.fromPartial({ id: `approval:ticket:${ticketId}:ticket_created`, timeUnixMicros: t - 500_000, sessionId, connection, identity: id, body: { $case: "approval", approval: { kind: "ticket_created", ticket: { ...ticket, state: TicketState.TICKET_STATE_PENDING } } } }));
      const approver = { ...ident(c.approvedBy), groups: ["approvers"], kind: "human" };
      out.push(AuditEvent.fromPartial({ id: `approval:ticket:${ticketId}:approved`, timeUnixMicros: t - 100_000, sessionId, connection, identity: approver, body: { $case: "approval", approval: { kind: "approved", ticket: { ...ticket, state: TicketState.TICKET_STATE_APPROVED, votes: [{ approver, approve: true, reason: "ok" }] } } } }));
    }
    if (c.effect !== Effect.EFFECT_DENY) {
      if (c.mask) out.push(AuditEvent.fromPartial({ ...base(), body: { $case: "masking", masking: { commandId, column: "customers.email", position: 1, entity: "EMAIL", strategy: "partial", count: c.mask, source: "result" } } }));
      out.push(AuditEvent.fromPartial({ ...base(), body: { $case: "result", result: { commandId, rows: 2, bytes: 100, durationMicros: 1500, statusTag: "SELECT 2" } } }));
    }
  });
  t += 1_000_000;
  out.push(AuditEvent.fromPartial({ ...base(), body: { $case: "sessionEnd", sessionEnd: { reason: "client_closed", durationMicros: t - startMicros, commands: cmds.length } } }));
  return out;
}

const SQL_TRANSCRIPT = [
  { format: "gatehouse-sql", version: 1, session_id: "s-a", protocol: "postgres", connection: "pg", identity: { subject: "agent-a", groups: ["agents"] }, timestamp: T0 / 1e6 },
  [0.5, "q", { command_id: "s-a:c1", text: "SELECT email FROM customers LIMIT 2", params: [], protocol: "simple", decision: "allow", policy_ids: ["agents-read"] }],
  [0.51, "cols", { columns: [{ name: "email", type_oid: 25, format: 0 }] }],
  [0.52, "rows", [["a***@example.org"], ["<b>b***@example.org</b>"]]],
  [0.53, "done", { command_id: "s-a:c1", tag: "SELECT 2", rows: 2 }],
  [1.5, "q", { command_id: "s-a:c2", text: "DROP TABLE customers", params: [], protocol: "simple", decision: "deny", policy_ids: ["forbid-drop"] }],
  [1.51, "error", { command_id: "s-a:c2", code: "42501", message: "gatehouse: denied by policy forbid-drop", severity: "ERROR" }],
  [3.0, "end", { reason: "client_closed" }],
]
  .map((l) => JSON.stringify(l))
  .join("\n");

before(async () => {
  // History first, with the store opened here (chDB allows one process per directory).
  const store = await openAuditStore({ chdbPath });
  const events = [
    ...sessionEvents("s-a", "agent-a", "pg", [
      { text: "SELECT email FROM customers LIMIT 2", effect: Effect.EFFECT_ALLOW, policies: ["agents-read"], mask: 2 },
      { text: "DROP TABLE customers", effect: Effect.EFFECT_DENY, policies: ["forbid-drop"] },
      { text: "DELETE FROM orders WHERE id = 7", effect: Effect.EFFECT_REQUIRE_APPROVAL, policies: ["orders-delete-needs-approval"], approvedBy: "alice" },
    ], T0),
    ...sessionEvents("s-b", "agent-b", "pg2", [{ text: "SELECT '<script>alert(1)</script>'", effect: Effect.EFFECT_ALLOW, policies: ["agents-read"] }], T0 + 3_600_000_000),
    ...sessionEvents(QUOTED, "agent-c", "pg", [{ text: "TRUNCATE orders", effect: Effect.EFFECT_DENY, policies: ["forbid-ddl"] }], T0 + 7_200_000_000),
  ].map((event, i) => ({ event, streamSeq: i + 1 }));
  await store.insertEvents(events);
  await store.insertEvents(events); // a writer's re-insert after a crash: must not double count
  const rec = (session: string, seq: number, kind: string, data: string, last: boolean) =>
    `INSERT INTO gatehouse.recordings (session_id, seq, kind, time, stream_seq, data, last, bytes) VALUES (${[session, String(seq), kind].map((v) => `'${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`).join(", ")}, now64(6), ${seq}, '${data.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}', ${last}, ${Buffer.byteLength(data)})`;
  const half = SQL_TRANSCRIPT.indexOf("\n", SQL_TRANSCRIPT.length / 2) + 1;
  await store.adminExec(rec("s-a", 1, "sql", SQL_TRANSCRIPT.slice(0, half), false));
  await store.adminExec(rec("s-a", 2, "sql", SQL_TRANSCRIPT.slice(half), true));
  await store.close();

  nats = await startNats();
  nc = await connectBus("console-test", nats.url);
  forge = await startTokenForge();
  const cfgFile = join(tmp, "audit.yaml");
  writeFileSync(cfgFile, `dataDir: ${JSON.stringify(tmp)}\nnats:\n  url: ${nats.url}\naudit:\n  chdbPath: ${JSON.stringify(chdbPath)}\n  grpcPort: ${await freePort()}\n  checkpointIntervalMs: 600000\n`);
  audit = await startProcess("audit", process.execPath, [join(repoRoot, "services/audit/dist/main.js"), "--config", cfgFile], { ready: /"msg":"ready"/, env: { NATS_URL: nats.url, CLICKHOUSE_URL: "" }, timeoutMs: 120_000 });
  config = resolveConfig({ dataDir: tmp, nats: { url: nats.url }, identity: { issuers: [forge.issuerConfig()], clockSkewSeconds: 30 }, audit: { ackTimeoutMs: 2000 } } as never, tmp);
  config.nats.url = nats.url;
  api = await startApiService(config, { nc, log: createLogger("console-test", "silent"), port: 0 });
});

after(async () => {
  await api?.stop();
  await audit?.stop();
  await nc?.drain();
  await forge?.close();
  await nats?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function page(path: string, token: string): Promise<{ status: number; html: string; location: string | null }> {
  const res = await fetch(`${api.url}${path}`, { headers: { cookie: `gh_session=${token}` }, redirect: "manual" });
  return { status: res.status, html: await res.text(), location: res.headers.get("location") };
}

const auditor = (sub: string) => forge.mint({ sub, groups: ["auditors"], kind: "human" });

async function storeRows(sql: string): Promise<Record<string, unknown>[]> {
  const client = natsClient(nc, AuditServiceService, { timeoutMs: 10_000 });
  return (await client.query({ sql, maxRows: 10_000, params: {} })).rows.map((r) => JSON.parse(r) as Record<string, unknown>);
}

/** auditor_query rows of `subject`, once at least one landed and the writer had time to add any more. */
async function auditorRows(subject: string): Promise<Record<string, unknown>[]> {
  const sql = `SELECT identity_subject, status_tag, command_text, details, rows, error_message FROM gatehouse.events WHERE type = 'auditor_query' AND identity_subject = '${subject}'`;
  for (let i = 0; i < 150; i++) {
    const rows = await storeRows(sql);
    if (rows.length > 0) {
      await new Promise((r) => setTimeout(r, 1500));
      return storeRows(sql);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return [];
}

const sessionRow = (html: string, id: string) => {
  const m = new RegExp(`<tr><td><a href="/console/sessions/${encodeURIComponent(id).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}">[\\s\\S]*?</tr>`).exec(html);
  return m?.[0] ?? "";
};
const cells = (row: string) => [...row.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((m) => m[1]!.replace(/<[^>]+>/g, ""));

test("sessions list: newest first, exact counts after a duplicate insert, filters bound as parameters", async () => {
  const token = await auditor("aud-list");
  const all = await page("/console/sessions", token);
  assert.equal(all.status, 200, all.html);
  const order = [...all.html.matchAll(/<tr><td><a href="\/console\/sessions\/([^"]+)">/g)].map((m) => decodeURIComponent(m[1]!));
  assert.deepEqual(order, [QUOTED, "s-b", "s-a"]);
  // identity, connection, protocol, start, end, commands, denied, approvals, masked, recording
  assert.deepEqual(cells(sessionRow(all.html, "s-a")).slice(1), ["agent-a", "pg", "postgres", "2026-11-20 09:00:00", "2026-11-20 09:00:04", "3", "1", "1", "2", "yes"]);
  assert.deepEqual(cells(sessionRow(all.html, "s-b")).slice(6), ["1", "0", "0", "0", "no"]);

  const ids = async (q: string) => [...(await page(`/console/sessions?${q}`, token)).html.matchAll(/<tr><td><a href="\/console\/sessions\/([^"]+)">/g)].map((m) => decodeURIComponent(m[1]!));
  assert.deepEqual(await ids("denied=1"), [QUOTED, "s-a"]);
  assert.deepEqual(await ids("approved=1"), ["s-a"]);
  assert.deepEqual(await ids("masked=1"), ["s-a"]);
  assert.deepEqual(await ids("identity=AGENT-B"), ["s-b"]);
  assert.deepEqual(await ids("connection=pg"), [QUOTED, "s-a"]);
  assert.deepEqual(await ids("from=2026-11-20T09:30&to=2026-11-20T10:30"), ["s-b"]);
  // Input that would break spliced SQL is just a value that matches nothing.
  assert.deepEqual(await ids(`identity=${encodeURIComponent("x' OR 1=1 --")}`), []);
  const bad = await page("/console/sessions?from=yesterday", token);
  assert.equal(bad.status, 400);
  assert.match(bad.html, /from: &quot;yesterday&quot; is not a time; use YYYY-MM-DD/);
});

test("session page: header, timeline with decisions, approval and masking; everything escaped", async () => {
  const token = await auditor("aud-session");
  const a = await page("/console/sessions/s-a", token);
  assert.equal(a.status, 200, a.html);
  assert.match(a.html, /<b id="identity">agent-a<\/b>/);
  assert.match(a.html, /<td class="groups">agents<\/td>/);
  assert.match(a.html, /<td class="client">127\.0\.0\.1:50000<\/td>/);
  assert.match(a.html, /<td class="tls">yes<\/td>/);
  assert.match(a.html, /<code>application_name=psql<\/code>/);
  assert.match(a.html, /<code>password=\[REDACTED\]<\/code>/, "secret-looking startup parameters are never shown");
  assert.doesNotMatch(a.html, /hunter2/);
  assert.match(a.html, /3 command\(s\), 1 denied, 1 approval ticket\(s\), 2 masked value\(s\)/);
  assert.match(a.html, /class="effect deny">deny<\/span> by <span class="policies">forbid-drop<\/span>/);
  assert.match(a.html, /approval <span class="approved">approved<\/span> by alice after 0\.4 s/);
  assert.match(a.html, /masked 2 value\(s\) of EMAIL in <code>customers\.email<\/code> with partial/);
  assert.match(a.html, /SELECT 2, 2 row\(s\), 100 bytes, 1\.5 ms/);
  assert.match(a.html, /<a id="recording-link" href="\/console\/sessions\/s-a\/recording">sql recording<\/a> \(2 chunks/);

  const b = await page("/console/sessions/s-b", token);
  assert.match(b.html, /SELECT &#39;&lt;script&gt;alert\(1\)&lt;\/script&gt;&#39;/);
  assert.doesNotMatch(b.html, /<script>alert/);
  const q = await page(`/console/sessions/${encodeURIComponent(QUOTED)}`, token);
  assert.equal(q.status, 200);
  assert.match(q.html, /TRUNCATE orders/);
  const missing = await page("/console/sessions/nope", token);
  assert.equal(missing.status, 404);
  assert.match(missing.html, /No audit events for session <code>nope<\/code>/);
});

test("SQL transcript: statements, result rows as the client saw them, the denial; values escaped", async () => {
  const token = await auditor("aud-rec");
  const r = await page("/console/sessions/s-a/recording", token);
  assert.equal(r.status, 200, r.html);
  assert.match(r.html, /sql recording, 2 chunk\(s\), \d+ bytes, complete/);
  assert.match(r.html, /<b>SELECT email FROM customers LIMIT 2<\/b>/);
  assert.match(r.html, /<td>a\*\*\*@example\.org<\/td>/);
  assert.match(r.html, /<td>&lt;b&gt;b\*\*\*@example\.org&lt;\/b&gt;<\/td>/);
  assert.match(r.html, /ERROR 42501: gatehouse: denied by policy forbid-drop/);
  assert.match(r.html, /session ended \(client_closed\)/);
  assert.equal((await page("/console/sessions/s-b/recording", token)).status, 404);
  const rows = await auditorRows("aud-rec");
  assert.equal(rows.length, 2, JSON.stringify(rows));
  assert.deepEqual(rows.map((x) => x.status_tag).sort(), ["recording", "recording"]);
});

test("dashboards answer from the rollups with exact counts", async () => {
  const token = await auditor("aud-dash");
  const range = "from=2026-11-20T00:00&to=2026-11-21T00:00";
  const access = await page(`/console/dashboards/access?${range}`, token);
  assert.equal(access.status, 200, access.html);
  assert.match(access.html, /id="chart-access-over-time"/);
  assert.match(access.html, /data-bucket="2026-11-20 09:00:00" data-series="agent-a" data-value="3"/);
  const denied = await page(`/console/dashboards/denied?${range}`, token);
  assert.match(denied.html, /data-label="forbid-drop" data-value="1"/);
  assert.match(denied.html, /data-label="forbid-ddl" data-value="1"/);
  const appr = await page(`/console/dashboards/approvals?${range}`, token);
  assert.match(appr.html, /data-label="approved" data-value="1"/);
  assert.match(appr.html, /<td class="n">0\.4 s<\/td>/);
  const mask = await page(`/console/dashboards/masking?${range}`, token);
  assert.match(mask.html, /data-label="EMAIL \(partial\)" data-value="2"/);
  assert.equal((await page("/console/dashboards/nope", token)).status, 400);
  assert.equal((await page("/console/dashboards/access?range=5y", token)).status, 400);
});

test("a console page view and an API query each produce exactly one auditor_query row with the auditor's subject", async () => {
  const viewer = await auditor("aud-one-view");
  assert.equal((await page("/console/sessions?denied=1&identity=agent", viewer)).status, 200);
  const rows = await auditorRows("aud-one-view");
  assert.equal(rows.length, 1, JSON.stringify(rows));
  assert.equal(rows[0]!.status_tag, "sessions");
  assert.match(String(rows[0]!.command_text), /FROM gatehouse\.session_summary/);
  const d = JSON.parse(String(rows[0]!.details)) as { via: string; params: Record<string, string> };
  assert.equal(d.via, "console");
  assert.deepEqual(d.params, { denied: "1", identity: "agent", page: "0" });

  const apiUser = await forge.mint({ sub: "aud-one-api", groups: ["auditors"] });
  const res = await fetch(`${api.url}/api/v1/audit/query`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${apiUser}` }, body: JSON.stringify({ sql: "SELECT count() AS n FROM gatehouse.events WHERE type = 'decision'" }) });
  assert.equal(res.status, 200, await res.text());
  const apiRows = await auditorRows("aud-one-api");
  assert.equal(apiRows.length, 1, JSON.stringify(apiRows));
  assert.equal(apiRows[0]!.status_tag, "sql");
  assert.equal(apiRows[0]!.command_text, "SELECT count() AS n FROM gatehouse.events WHERE type = 'decision'");
  assert.equal(apiRows[0]!.rows, 1);
  assert.equal(JSON.parse(String(apiRows[0]!.details)).via, "api");
  // The token never reaches the row.
  assert.doesNotMatch(JSON.stringify(apiRows), new RegExp(apiUser.slice(-20).replace(/[^\w]/g, ".")));
});

test("roles: a non-auditor gets a 403 page naming the groups; an approver keeps the approvals page; no cookie goes to the login", async () => {
  const dev = await forge.mint({ sub: "devon", groups: ["developers"] });
  const r = await page("/console/sessions", dev);
  assert.equal(r.status, 403);
  assert.match(r.html, /signed in as <b>devon<\/b> \(groups: developers\)/);
  assert.match(r.html, /needs membership of the group <b>auditors<\/b>/);
  const root = await page("/console", dev);
  assert.equal(root.status, 403);
  assert.match(root.html, /<b>approvers, admins, dba<\/b> for Approvals, or <b>auditors<\/b> for Sessions and Dashboards/);
  const approver = await forge.mint({ sub: "carol", groups: ["approvers"] });
  const ap = await page("/console", approver);
  assert.equal(ap.status, 200);
  assert.match(ap.html, /Pending approvals/);
  assert.doesNotMatch(ap.html, /href="\/console\/sessions"/);
  assert.equal((await page("/console/dashboards/access", approver)).status, 403);
  const aud = await page("/console", await auditor("aud-root"));
  assert.equal(aud.status, 302);
  assert.equal(aud.location, "/console/sessions");
  const none = await fetch(`${api.url}/console/sessions?denied=1`, { redirect: "manual" });
  assert.equal(none.status, 302);
  assert.equal(none.headers.get("location"), "/auth/login?return=%2Fconsole%2Fsessions");
  // Read-only: nothing but GET on the auditor pages.
  const post = await fetch(`${api.url}/console/sessions`, { method: "POST", headers: { cookie: `gh_session=${await auditor("aud-post")}` } });
  assert.equal(post.status, 404);
});

test("fail closed: when the audit event cannot be recorded, pages and API queries are refused with 503", async () => {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(config.audit.stream);
  const token = await auditor("aud-closed");
  const r = await page("/console/sessions", token);
  assert.equal(r.status, 503);
  assert.match(r.html, /the audit trail did not record this query, so its result is withheld/);
  assert.doesNotMatch(r.html, /s-a/);
  const res = await fetch(`${api.url}/api/v1/audit/query`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: JSON.stringify({ sql: "SELECT 1" }) });
  assert.equal(res.status, 503);
  const body = (await res.json()) as { error: string; rows?: unknown };
  assert.equal(body.error, "audit_unavailable");
  assert.equal(body.rows, undefined);
});
