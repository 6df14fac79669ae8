// policy_loaded audit events end to end: the real policy service, a real
// nats-server with JetStream and the real audit service writing to embedded
// ClickHouse. The audit stream is blocked at first (another stream owns its
// subjects), so the service must decide without it and deliver its events later.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { startNats, type TestNats } from "@gatehouse/testing";
import { Command, Effect, PolicyServiceService } from "@gatehouse/proto";
import { createLogger, natsClient, resolveConfig, type GatehouseConfig } from "@gatehouse/runtime";
import { startAuditService, type AuditServiceHandle } from "@gatehouse/audit-service";
import { startPolicyService, type PolicyServiceHandle } from "./index.js";

const log = createLogger("policy-load-test", "silent");
const READ = `@id("agents-read")\npermit (principal in Gatehouse::Group::"agents", action in Gatehouse::Action::"sql:read", resource);\n`;
const DENY = `@id("no-drop")\n@reason("no drops")\nforbid (principal, action == Gatehouse::Action::"sql:drop_table", resource);\n`;
const INSERT = `@id("agents-insert")\npermit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"sql:insert", resource);\n`;

let tmp: string;
let policies: string;
let nats: TestNats;
let nc: NatsConnection;
let config: GatehouseConfig;
let policy: PolicyServiceHandle | undefined;
let audit: AuditServiceHandle | undefined;

const sha = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "gatehouse-policy-load-"));
  policies = join(tmp, "policies");
  mkdirSync(policies);
  writeFileSync(join(policies, "read.cedar"), READ);
  writeFileSync(join(policies, "deny.cedar"), DENY);
  nats = await startNats();
  nc = await nats.connect();
  config = resolveConfig(
    { dataDir: join(tmp, "data"), policies, nats: { url: nats.url }, policy: { grpcPort: 0 }, audit: { chdbPath: join(tmp, "ch"), grpcPort: 0, checkpointIntervalMs: 200 } },
    tmp,
  );
});

after(async () => {
  await policy?.stop();
  await audit?.stop();
  await nc?.close();
  await nats?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

test("every load is a policy_loaded row with the files' SHA-256, delivered after a JetStream outage, in order", async () => {
  // Another stream owns gatehouse.audit.>, so the audit stream cannot be created yet.
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "BLOCKS_AUDIT", subjects: ["gatehouse.audit.>"] });

  const startHashes = { "deny.cedar": sha(join(policies, "deny.cedar")), "read.cedar": sha(join(policies, "read.cedar")) };
  policy = await startPolicyService(config, { nc, log, reloadIntervalMs: 200, instanceId: "policy-test-1" });
  const v1 = policy.engine.version;
  const client = natsClient(nc, PolicyServiceService, { timeoutMs: 5000 });
  const request = (text: string) => ({
    identity: { subject: "agent-1", name: "agent-1", groups: ["agents"], kind: "agent", issuer: "t", tokenId: "", clientId: "", expiresAtUnix: 0 },
    connection: { name: "demo", protocol: "postgres", tags: {} },
    command: Command.fromPartial({ text }),
  });
  // Decisions do not wait for the audit trail.
  assert.equal((await client.decide(request("SELECT 1"))).effect, Effect.EFFECT_ALLOW);

  // A valid edit: a new version. Then an invalid file: rejected, old set kept.
  writeFileSync(join(policies, "read.cedar"), READ + INSERT);
  const v2 = await eventually("the edit to load", () => (policy!.engine.version !== v1 ? policy!.engine.version : undefined));
  const reloadHashes = { "deny.cedar": startHashes["deny.cedar"], "read.cedar": sha(join(policies, "read.cedar")) };
  assert.notEqual(reloadHashes["read.cedar"], startHashes["read.cedar"]);
  writeFileSync(join(policies, "zz-broken.cedar"), "permit (principal, action, resource) when {\n");
  await eventually("the broken file to be rejected", async () => ((await client.status({})).errors.length > 0 ? true : undefined));
  const brokenHash = sha(join(policies, "zz-broken.cedar"));
  assert.equal(policy.engine.version, v2);
  assert.equal((await client.decide(request("INSERT INTO t VALUES (1)"))).effect, Effect.EFFECT_ALLOW);
  assert.equal(policy.pendingAuditEvents(), 3, "all three events wait in memory while the audit stream is blocked");

  // JetStream becomes usable: the queued events go out, in order, without a restart.
  await jsm.streams.delete("BLOCKS_AUDIT");
  audit = await startAuditService(config, { nc, log });
  const rows = await eventually("three policy_loaded rows", async () => {
    const r = await audit!.store.query(
      "SELECT event_id, type, time, policy_version, effect, status_tag, rows, reason, details, session_id, identity_subject, identity_kind, chain_pos FROM gatehouse.events FINAL WHERE type = 'policy_loaded' ORDER BY chain_pos",
    );
    return r.rows.length >= 3 ? r.rows : undefined;
  });
  assert.equal(rows.length, 3);
  assert.deepEqual(rows.map((r) => r.event_id), ["policy-test-1:1", "policy-test-1:2", "policy-test-1:3"]);
  assert.deepEqual(rows.map((r) => r.status_tag), ["start", "reload", "reload"]);
  assert.deepEqual(rows.map((r) => r.effect), ["accepted", "accepted", "rejected"]);
  assert.deepEqual(rows.map((r) => r.policy_version).slice(0, 2), [v1, v2]);
  assert.notEqual(rows[2]!.policy_version, v2, "a rejected load names the version of what it read");
  for (const r of rows) {
    assert.equal(r.session_id, "policy-test-1");
    assert.equal(r.identity_subject, "policy-service");
    assert.equal(r.identity_kind, "service");
  }
  const details = rows.map((r) => JSON.parse(String(r.details)) as { files: Array<{ path: string; sha256: string; policies: number }>; errors: string[]; accepted: boolean });
  assert.deepEqual(details[0]!.files, [
    { path: "deny.cedar", sha256: startHashes["deny.cedar"], policies: 1 },
    { path: "read.cedar", sha256: startHashes["read.cedar"], policies: 1 },
  ]);
  assert.deepEqual(details[0]!.errors, []);
  assert.equal(Number(rows[0]!.rows), 2);
  assert.deepEqual(details[1]!.files, [
    { path: "deny.cedar", sha256: reloadHashes["deny.cedar"], policies: 1 },
    { path: "read.cedar", sha256: reloadHashes["read.cedar"], policies: 2 },
  ]);
  assert.equal(details[2]!.accepted, false);
  assert.equal(details[2]!.files.find((f) => f.path === "zz-broken.cedar")?.sha256, brokenHash);
  assert.match(details[2]!.errors[0]!, /^zz-broken\.cedar:1:\d+: error: /);
  assert.match(String(rows[2]!.reason), /^rejected: zz-broken\.cedar/);
  assert.equal(policy.pendingAuditEvents(), 0);

  // Once the stream exists, a reload is recorded promptly.
  rmSync(join(policies, "zz-broken.cedar"));
  const fourth = await eventually("the fourth row", async () => {
    const r = await audit!.store.query("SELECT event_id, effect, policy_version FROM gatehouse.events FINAL WHERE type = 'policy_loaded' AND event_id = 'policy-test-1:4'");
    return r.rows[0];
  });
  assert.equal(fourth.effect, "accepted");
  assert.equal(fourth.policy_version, v2);
});

test("a second instance gets its own event ids", async () => {
  const other = await startPolicyService(config, { nc, log, instanceId: "policy-test-2" });
  try {
    const row = await eventually("the second instance's start row", async () => {
      const r = await audit!.store.query("SELECT event_id, status_tag FROM gatehouse.events FINAL WHERE type = 'policy_loaded' AND session_id = 'policy-test-2'");
      return r.rows[0];
    });
    assert.equal(row.event_id, "policy-test-2:1");
    assert.equal(row.status_tag, "start");
  } finally {
    await other.stop();
  }
  // Default instance ids differ between processes and starts.
  const a = await startPolicyService(config, { nc, log });
  const b = await startPolicyService(config, { nc, log });
  try {
    assert.notEqual(a.instanceId, b.instanceId);
  } finally {
    await a.stop();
    await b.stop();
  }
});
