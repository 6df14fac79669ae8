// Two audit writers on one store: only the lease holder chains and writes; when
// it stops, the other takes over where the store ends. Nothing is written twice.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { AuditEvent } from "@gatehouse/proto";
import { openAuditStore, type AuditStore } from "@gatehouse/audit-store";
import { AuditPublisher, createLogger, ensureAuditStream } from "@gatehouse/runtime";
import { keySigner, readCheckpoints, streamTail, verifyTrail } from "@gatehouse/audit-integrity";
import { generateKeyPairSync } from "node:crypto";
import { startNats, type TestNats } from "@gatehouse/testing";
import { startWriter, type AuditWriter } from "./writer.js";

let nats: TestNats;
let nc: NatsConnection;
let dir: string;
let store: AuditStore;
const log = createLogger("writer-lock-test", "silent");

before(async () => {
  nats = await startNats();
  nc = await nats.connect();
  dir = mkdtempSync(join(tmpdir(), "gatehouse-writer-lock-"));
  store = await openAuditStore({ chdbPath: join(dir, "ch") });
  await ensureAuditStream(nc);
});

after(async () => {
  await store?.close();
  await nc?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function publish(prefix: string, n: number): Promise<void> {
  const pub = new AuditPublisher(nc);
  await Promise.all(Array.from({ length: n }, (_, i) => pub.record(AuditEvent.fromPartial({ id: `${prefix}:${i}`, timeUnixMicros: Date.now() * 1000, sessionId: prefix, body: { $case: "sessionEnd", sessionEnd: { reason: "x" } } }))));
  await pub.close();
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("one active writer at a time; the other takes over on stop; every event once", async () => {
  const signer = keySigner(generateKeyPairSync("ed25519").privateKey);
  const opts = { stream: "GATEHOUSE_AUDIT", signer, checkpointEvents: 500, checkpointIntervalMs: 200, lockTtlMs: 2000 };
  const a: AuditWriter = await startWriter(nc, store, log, opts);
  const b: AuditWriter = await startWriter(nc, store, log, opts);
  await publish("one", 1500);
  await waitFor("1500 events chained", () => a.stats.chainPos + b.stats.chainPos === 1500);
  assert.equal([a, b].filter((w) => w.stats.active).length, 1, "exactly one writer holds the lease");
  const [active, standby] = a.stats.active ? [a, b] : [b, a];
  assert.equal(standby.stats.rowsWritten, 0);
  const more = publish("two", 1500);
  await active.stop();
  await more;
  await waitFor("the standby to take over and chain everything", () => standby.stats.sealedPos === 3000);
  await standby.stop();
  const [c] = await store.internalQuery("SELECT count() AS n, uniqExact(event_id) AS u, max(chain_pos) AS m FROM gatehouse.events");
  assert.deepEqual([Number(c!.n), Number(c!.u), Number(c!.m)], [3000, 3000, 3000]);
  const r = await verifyTrail(async (sql) => (await store.query(sql, 100_000)).rows, { checkpoints: await readCheckpoints(nc), streamTail: streamTail(nc, "GATEHOUSE_AUDIT") });
  assert.deepEqual(r.problems, []);
});
