// The audit service end to end: a real nats-server (JetStream) started here and
// embedded ClickHouse (chDB) in a temp dir.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { AuditBatch, AuditEvent, AuditServiceService, Effect } from "@gatehouse/proto";
import { AuditPublisher, RpcError, Status, grpcClient, natsClient, resolveConfig, createLogger, type GatehouseConfig } from "@gatehouse/runtime";
import { startAuditService, type AuditServiceHandle } from "./index.js";
import { startNats, type TestNats } from "./testing/nats-server.js";
import { commandEvent as fixtureEvent } from "./testing/events.js";

let nats: TestNats;
let nc: NatsConnection;
let dir: string;
let config: GatehouseConfig;
let svc: AuditServiceHandle | undefined;
const log = createLogger("audit-test", "silent");

before(async () => {
  nats = await startNats();
  nc = await nats.connect();
  dir = mkdtempSync(join(tmpdir(), "gatehouse-audit-svc-"));
  config = resolveConfig({ nats: { url: nats.url }, audit: { chdbPath: join(dir, "ch"), grpcPort: 0 } }, dir);
});
after(async () => {
  await svc?.stop();
  await nc?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const commandEvent = (session: string, seq: number) =>
  fixtureEvent(session, seq, {
    identity: { subject: "agent-1", name: "bot", groups: ["ci"], kind: "agent" },
    command: { statements: [{ kind: "select", action: "sql:select" }] },
    decision: { effect: seq % 5 === 0 ? Effect.EFFECT_DENY : Effect.EFFECT_ALLOW, policyIds: ["p1"], reason: "r", policyVersion: "v1" },
  });

async function count(sql: string): Promise<number> {
  const r = await svc!.store.query(sql);
  return Number(r.rows[0]!.n);
}

/** Poll (no timing assertion: the deadline only keeps a broken run from hanging). */
async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("events published with AuditPublisher appear as rows; one command and one decision row each", async () => {
  svc = await startAuditService(config, { nc, log });
  const pub = new AuditPublisher(nc);
  await Promise.all(Array.from({ length: 20 }, (_, i) => pub.record(commandEvent("s1", i + 1))));
  await pub.close();
  await waitFor("40 rows", async () => (await count("SELECT count() AS n FROM gatehouse.events FINAL")) === 40);
  assert.equal(await count("SELECT count() AS n FROM gatehouse.events FINAL WHERE type = 'command'"), 20);
  assert.equal(await count("SELECT count() AS n FROM gatehouse.events FINAL WHERE type = 'decision'"), 20);
  assert.equal(await count("SELECT count() AS n FROM gatehouse.commands_with_decisions WHERE effect = 'deny'"), 4);
});

test("stop mid-way, publish more, restart: every row present exactly once", async () => {
  const pub = new AuditPublisher(nc);
  const first = Array.from({ length: 30 }, (_, i) => pub.record(commandEvent("s2", i + 1)));
  await svc!.stop();
  svc = undefined;
  await Promise.all(first);
  // The service is down; JetStream still takes the events.
  await Promise.all(Array.from({ length: 30 }, (_, i) => pub.record(commandEvent("s2", i + 31))));
  await pub.close();
  svc = await startAuditService(config, { nc, log });
  await waitFor("all s2 rows", async () => (await count("SELECT count() AS n FROM gatehouse.events FINAL WHERE session_id = 's2'")) === 120);
  // Exactly once, also without FINAL: nothing was written twice.
  assert.equal(await count("SELECT count() AS n FROM gatehouse.events WHERE session_id = 's2'"), 120);
  assert.equal(await count("SELECT count() AS n FROM (SELECT event_id FROM gatehouse.events FINAL GROUP BY event_id HAVING count() > 1)"), 0);
});

test("a batch published twice with the same Nats-Msg-Id is one set of rows; an undecodable message is kept and does not block", async () => {
  const js = jetstream(nc);
  const body = AuditBatch.encode({ id: "dup:1+1", events: [commandEvent("dup", 1)] }).finish();
  const a1 = await js.publish("gatehouse.audit.events", body, { msgID: "dup:1+1" });
  const a2 = await js.publish("gatehouse.audit.events", body, { msgID: "dup:1+1" });
  assert.equal(a2.duplicate, true);
  assert.equal(a2.seq, a1.seq);
  // Same events under another batch id: two stream messages, still one visible row each.
  await js.publish("gatehouse.audit.events", body, { msgID: "dup:other" });
  const garbage = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
  const h = headers();
  const bad = await js.publish("gatehouse.audit.events", garbage, { msgID: "garbage-1", headers: h });
  const pub = new AuditPublisher(nc);
  await pub.record(commandEvent("after", 1));
  await pub.close();
  await waitFor("the event after the poison message", async () => (await count("SELECT count() AS n FROM gatehouse.events FINAL WHERE session_id = 'after'")) === 2);
  assert.equal(await count("SELECT count() AS n FROM gatehouse.events FINAL WHERE session_id = 'dup'"), 2);
  const poison = await svc!.store.query(`SELECT type, details FROM gatehouse.events FINAL WHERE stream_seq = ${bad.seq}`);
  assert.equal(poison.rows.length, 1);
  assert.equal(poison.rows[0]!.type, "undecodable");
  assert.equal(JSON.parse(String(poison.rows[0]!.details)).raw_base64, Buffer.from(garbage).toString("base64"));
});

test("Query and Stats over NATS and gRPC; writes are refused with INVALID_ARGUMENT", async () => {
  const viaNats = natsClient(nc, AuditServiceService, { timeoutMs: 5000 });
  const viaGrpc = grpcClient(`127.0.0.1:${svc!.grpcPort}`, AuditServiceService);
  try {
    for (const client of [viaNats, viaGrpc]) {
      const r = await client.query({ sql: "SELECT event_id, effect FROM gatehouse.events FINAL WHERE session_id = 's1' AND type = 'decision' ORDER BY command_seq", maxRows: 3, params: {} });
      assert.deepEqual(r.columns, ["event_id", "effect"]);
      assert.deepEqual(r.rows.map((l) => JSON.parse(l)), [
        { event_id: "s1:1:decision", effect: "allow" },
        { event_id: "s1:2:decision", effect: "allow" },
        { event_id: "s1:3:decision", effect: "allow" },
      ]);
      assert.equal(r.truncated, true);
      for (const sql of ["DROP TABLE gatehouse.events", "SELECT 1; DROP TABLE gatehouse.events", "ALTER TABLE gatehouse.events DELETE WHERE 1", "INSERT INTO gatehouse.events (event_id) VALUES ('x')"]) {
        await assert.rejects(client.query({ sql, maxRows: 0, params: {} }), (e: unknown) => e instanceof RpcError && e.code === Status.INVALID_ARGUMENT, sql);
      }
      await assert.rejects(client.query({ sql: "SELECT no_such_column FROM gatehouse.events", maxRows: 0, params: {} }), /no_such_column/);
    }
    const stats = await viaNats.stats({});
    assert.equal(stats.store, "chdb");
    assert.ok(stats.lastStreamSeq > 0);
    assert.equal(stats.events, await count("SELECT count() AS n FROM gatehouse.events FINAL"));
    assert.equal(stats.pending, 0);
  } finally {
    viaGrpc.close();
  }
});
