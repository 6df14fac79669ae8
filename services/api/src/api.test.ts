// The api service against real parts: a private nats-server, the real audit
// service process (embedded ClickHouse in a temp dir) and real signed tokens
// from a JWKS server started by the test (the identity package's token forge).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditEvent, Effect } from "@gatehouse/proto";
import { AuditPublisher, connectBus, createLogger, resolveConfig, type GatehouseConfig } from "@gatehouse/runtime";
import { startTokenForge, type TokenForge } from "@gatehouse/identity/testing";
import type { NatsConnection } from "@nats-io/transport-node";
import { startApiService, type ApiService } from "./index.js";
import { freePort, repoRoot, startNats, startProcess, type Proc } from "@gatehouse/testing";

let nats: { url: string; stop(): Promise<void> };
let nc: NatsConnection;
let forge: TokenForge;
let api: ApiService;
let config: GatehouseConfig;
const tmp = mkdtempSync(join(tmpdir(), "gatehouse-api-"));
const log = createLogger("api-test", "silent");

before(async () => {
  nats = await startNats();
  nc = await connectBus("api-test", nats.url);
  forge = await startTokenForge();
  config = resolveConfig(
    {
      dataDir: tmp,
      nats: { url: nats.url },
      identity: { issuers: [forge.issuerConfig()], clockSkewSeconds: 30 },
      listeners: { postgres: { host: "127.0.0.1", port: 25432 } },
      connections: { demo: { protocol: "postgres", upstream: { host: "127.0.0.1", port: 15433, database: "postgres", user: "postgres" }, tags: {} } },
    } as never,
    tmp,
  );
  config.nats.url = nats.url; // NATS_URL in the environment must not win here
  api = await startApiService(config, { nc, log, port: 0, probeTimeoutMs: 500 });
});

after(async () => {
  await api?.stop();
  await nc?.drain();
  await forge?.close();
  await nats?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function query(body: unknown, token?: string): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${api.url}/api/v1/audit/query`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

test("GET / explains how to connect with this deployment's ports", async () => {
  const res = await fetch(`${api.url}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/html/);
  const html = await res.text();
  assert.match(html, /port=25432 user=agent-1 dbname=demo/);
  assert.match(html, /gatehouse token --sub agent-1 --groups agents/);
  assert.match(html, /127\.0\.0\.1:15081\/\.well-known\/openid-configuration/);
});

test("healthz reports NATS up and policy/audit not running", async () => {
  const res = await fetch(`${api.url}/healthz`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as Record<string, any>;
  assert.equal(body.status, "degraded");
  assert.equal(body.nats.ok, true);
  assert.equal(body.policy.ok, false);
  assert.match(body.policy.error, /PolicyService is not running|did not answer/);
  assert.equal(body.audit.ok, false);
});

test("audit query without a token is 401 with a how-to", async () => {
  const r = await query({ sql: "SELECT 1" });
  assert.equal(r.status, 401);
  assert.equal(r.json.check, "missing_token");
  assert.match(String(r.json.message), /Authorization: Bearer/);
  assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer realm="gatehouse"/);
});

test("a tampered or expired token is 401 naming the failed check, never echoing the token", async () => {
  const good = await forge.mint({ sub: "alice", groups: ["auditors"] });
  const tampered = forge.tamper(good);
  const r1 = await query({ sql: "SELECT 1" }, tampered);
  assert.equal(r1.status, 401);
  assert.equal(r1.json.check, "signature");
  assert.ok(!JSON.stringify(r1.json).includes(tampered.split(".")[2]!));
  const expired = await forge.mint({ sub: "alice", groups: ["auditors"], exp: Math.floor(Date.now() / 1000) - 3600 });
  const r2 = await query({ sql: "SELECT 1" }, expired);
  assert.equal(r2.status, 401);
  assert.equal(r2.json.check, "expired");
  const none = forge.mintNone({ sub: "alice", groups: ["auditors"] });
  const r3 = await query({ sql: "SELECT 1" }, none);
  assert.equal(r3.status, 401);
  assert.equal(r3.json.check, "algorithm");
});

test("an agent (not auditors/dba) is 403", async () => {
  const token = await forge.mint({ sub: "agent-1", groups: ["agents"] });
  const r = await query({ sql: "SELECT 1" }, token);
  assert.equal(r.status, 403);
  assert.match(String(r.json.message), /agent-1 is not in any of the groups auditors, dba/);
});

test("bad bodies are 400 with what to send", async () => {
  const token = await forge.mint({ sub: "alice", groups: ["auditors"] });
  assert.equal((await query({}, token)).status, 400);
  assert.equal((await query({ sql: "SELECT 1", maxRows: -1 }, token)).status, 400);
  const raw = await fetch(`${api.url}/api/v1/audit/query`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: "{not json",
  });
  assert.equal(raw.status, 400);
});

test("no audit service: 503 saying so", async () => {
  const token = await forge.mint({ sub: "alice", groups: ["auditors"] });
  const r = await query({ sql: "SELECT 1" }, token);
  assert.equal(r.status, 503);
  assert.match(String(r.json.message), /AuditService is not running/);
});

test("with the real audit service: auditors and DBAs read events; writes are refused", async () => {
  const cfgFile = join(tmp, "audit.yaml");
  writeFileSync(cfgFile, `dataDir: ${JSON.stringify(tmp)}\nnats:\n  url: ${nats.url}\naudit:\n  grpcPort: ${await freePort()}\n`);
  let audit: Proc | undefined;
  try {
    audit = await startProcess("audit", process.execPath, [join(repoRoot, "services/audit/dist/main.js"), "--config", cfgFile], {
      ready: /"msg":"ready"/,
      env: { NATS_URL: nats.url, CLICKHOUSE_URL: "" },
      timeoutMs: 120_000,
    });
    const publisher = new AuditPublisher(nc, { ackTimeoutMs: 5000 });
    await publisher.record(
      AuditEvent.fromPartial({
        id: "api-test-session:1",
        timeUnixMicros: Date.now() * 1000,
        sessionId: "api-test-session",
        connection: "demo",
        protocol: "postgres",
        identity: { subject: "agent-7", name: "agent-7", groups: ["agents"], kind: "agent" },
        body: {
          $case: "command",
          command: {
          command: { id: "api-test-session:1", sessionId: "api-test-session", connection: "demo", protocol: "postgres", text: "DROP TABLE customers", mode: "simple", seq: 1 },
          decision: { effect: Effect.EFFECT_DENY, policyIds: ["forbid-drop"], reason: "dropping tables is never allowed" },
          decidedBy: "policy",
          },
        },
      }),
    );
    await publisher.close();
    const token = await forge.mint({ sub: "dana", groups: ["dba"] });
    const sql = "SELECT type, identity_subject, command_text, policy_ids FROM gatehouse.events FINAL WHERE session_id = 'api-test-session' ORDER BY type";
    // The writer is asynchronous: poll until the row landed (bounded).
    let r = await query({ sql }, token);
    for (let i = 0; i < 100 && r.status === 200 && (r.json.rows as unknown[]).length < 2; i++) {
      await new Promise((res) => setTimeout(res, 200));
      r = await query({ sql }, token);
    }
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.columns, ["type", "identity_subject", "command_text", "policy_ids"]);
    const rows = r.json.rows as Array<Record<string, unknown>>;
    assert.deepEqual(rows.map((x) => x.type), ["command", "decision"]);
    assert.equal(rows[0]!.identity_subject, "agent-7");
    assert.equal(rows[0]!.command_text, "DROP TABLE customers");
    assert.deepEqual(rows[1]!.policy_ids, ["forbid-drop"]);
    assert.equal(r.json.truncated, false);

    const write = await query({ sql: "DROP TABLE events" }, token);
    assert.equal(write.status, 400);
    assert.match(String(write.json.message), /audit service: /);

    const health = (await (await fetch(`${api.url}/healthz`)).json()) as Record<string, any>;
    assert.equal(health.audit.ok, true);
    assert.equal(typeof health.audit.events, "number");
  } finally {
    assert.equal(await audit?.stop(), 0, "the audit service stops cleanly on SIGTERM");
  }
});
