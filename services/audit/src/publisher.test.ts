// AuditPublisher and ensureAuditStream against a real nats-server (JetStream).
import { test, before, after } from "node:test";
import { readdirSync, readFileSync } from "node:fs";
import assert from "node:assert/strict";
import { jetstreamManager, DiscardPolicy, StorageType } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { AuditBatch, AuditEvent } from "@gatehouse/proto";
import { AuditPublisher, ensureAuditStream } from "@gatehouse/runtime";
import { startNats, type TestNats } from "./testing/nats-server.js";

let nats: TestNats;
let nc: NatsConnection;
before(async () => {
  nats = await startNats();
  nc = await nats.connect();
});
after(async () => {
  await nc?.close();
  await nats?.stop();
});

const ev = (id: string) => AuditEvent.fromPartial({ id, sessionId: id.split(":")[0], timeUnixMicros: 1, body: { $case: "sessionEnd", sessionEnd: { reason: "bye" } } });

/** Every event id in the stream, in stream order (one entry per stored copy). */
async function streamEventIds(stream: string): Promise<{ ids: string[]; messages: number }> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  const ids: string[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (!m) continue;
    const batch = AuditBatch.decode(m.data);
    assert.equal(m.header.get("Nats-Msg-Id"), batch.id);
    ids.push(...batch.events.map((e) => e.id));
  }
  return { ids, messages: info.state.messages };
}

test("record() fails closed with a clear error when there is no audit stream", async () => {
  const p = new AuditPublisher(nc, { ackTimeoutMs: 1000 });
  await assert.rejects(p.record(ev("x:1")), /no audit stream/);
  await p.close();
});

test("ensureAuditStream creates the stream as specified and is idempotent", async () => {
  await ensureAuditStream(nc);
  await ensureAuditStream(nc);
  const jsm = await jetstreamManager(nc);
  const c = (await jsm.streams.info("GATEHOUSE_AUDIT")).config;
  assert.deepEqual(c.subjects, ["gatehouse.audit.>"]);
  assert.equal(c.storage, StorageType.File);
  assert.equal(c.discard, DiscardPolicy.New);
  assert.equal(c.duplicate_window, 120_000_000_000);
  assert.equal(c.deny_delete, true);
  assert.equal(c.deny_purge, true);
  assert.equal(c.max_age, 0);
  await assert.rejects(jsm.streams.purge("GATEHOUSE_AUDIT"));
});

test("record() resolves after the ack; concurrent events are group-committed", async () => {
  const p = new AuditPublisher(nc, { maxInFlight: 1 });
  await p.record(ev("a:1"));
  await Promise.all(Array.from({ length: 200 }, (_, i) => p.record(ev(`a:${i + 2}`))));
  await p.close();
  const { ids, messages } = await streamEventIds("GATEHOUSE_AUDIT");
  assert.deepEqual([...ids].sort(), Array.from({ length: 201 }, (_, i) => `a:${i + 1}`).sort());
  // 201 events in far fewer messages: the ones queued behind an in-flight publish share one.
  assert.ok(messages < 50, `expected group commit, got ${messages} messages for 201 events`);
});

test("a stalled server: record() rejects after ackTimeoutMs; recordLater() is retried and stored exactly once", async () => {
  const p = new AuditPublisher(nc, { ackTimeoutMs: 300 });
  const before = (await streamEventIds("GATEHOUSE_AUDIT")).ids.length;
  nats.proc.kill("SIGSTOP");
  // kill() only queues the signal: wait until every thread of the server has stopped.
  await waitStopped(nats.proc.pid!);
  try {
    await assert.rejects(p.record(ev("b:1")), /JetStream did not acknowledge the audit event within 300 ms/);
    p.recordLater(ev("b:2"));
    p.recordLater(ev("b:3"));
    // Let at least one attempt of the later batch time out.
    await new Promise((r) => setTimeout(r, 700));
  } finally {
    nats.proc.kill("SIGCONT");
  }
  await p.flush();
  await p.close();
  const { ids } = await streamEventIds("GATEHOUSE_AUDIT");
  const added = ids.slice(before);
  // b:2 and b:3 exactly once each, even though their batch was sent more than once.
  assert.equal(added.filter((id) => id === "b:2").length, 1);
  assert.equal(added.filter((id) => id === "b:3").length, 1);
});

/** Resolves once every thread of process `pid` is in state T (stopped). */
async function waitStopped(pid: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const states = readdirSync(`/proc/${pid}/task`).map((t) => {
      try {
        return readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8").split(") ")[1]![0];
      } catch {
        return "T"; // the thread is gone
      }
    });
    if (states.every((st) => st === "T" || st === "t")) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`nats-server (pid ${pid}) did not stop after SIGSTOP`);
}

test("the same batch id published twice is stored once (duplicate window)", async () => {
  const p1 = new AuditPublisher(nc);
  const p2 = new AuditPublisher(nc);
  await p1.record(ev("d:1"));
  await p2.record(ev("d:1")); // same event -> same batch id "d:1+1"
  await p1.close();
  await p2.close();
  const { ids } = await streamEventIds("GATEHOUSE_AUDIT");
  assert.equal(ids.filter((id) => id === "d:1").length, 1);
});

test("recordLater() events ride along with the next record() in one message, or go out on their own", async () => {
  await ensureAuditStream(nc);
  const before = (await streamEventIds("GATEHOUSE_AUDIT")).messages;
  const p = new AuditPublisher(nc, { laterDelayMs: 60_000 });
  p.recordLater(ev("l:1"));
  p.recordLater(ev("l:2"));
  await p.record(ev("l:3"));
  const after = await streamEventIds("GATEHOUSE_AUDIT");
  assert.equal(after.messages, before + 1, "one message for the two later events and the recorded one");
  assert.deepEqual(after.ids.slice(-3), ["l:1", "l:2", "l:3"]);
  // Alone, a later event still leaves (here on close(), which flushes everything).
  p.recordLater(ev("l:4"));
  await p.close();
  const last = await streamEventIds("GATEHOUSE_AUDIT");
  assert.equal(last.messages, before + 2);
  assert.deepEqual(last.ids.slice(-1), ["l:4"]);
  const q = new AuditPublisher(nc, { laterDelayMs: 1 });
  q.recordLater(ev("l:5"));
  await q.flush();
  assert.deepEqual((await streamEventIds("GATEHOUSE_AUDIT")).ids.slice(-1), ["l:5"]);
  await q.close();
});

test("events of a session are stored decodable to exactly what was recorded (envelope encoded once per session)", async () => {
  await ensureAuditStream(nc);
  const jsm = await jetstreamManager(nc);
  const before = (await jsm.streams.info("GATEHOUSE_AUDIT")).state.last_seq;
  const p = new AuditPublisher(nc, { ackTimeoutMs: 2000 });
  const alice = { subject: "alice", name: "alice-bot", groups: ["agents", "support"], kind: "agent", issuer: "http://idp", tokenId: "t1", clientId: "c1" };
  const bob = { ...alice, subject: "bob", groups: ["dba"] };
  const sent: AuditEvent[] = [];
  for (let i = 1; i <= 6; i++) {
    const identity = i % 2 ? alice : bob;
    const session = i <= 3 ? "envA" : "envB";
    sent.push(
      AuditEvent.fromPartial({
        id: `${session}:${i}`,
        timeUnixMicros: 1000 + i,
        sessionId: session,
        connection: i === 6 ? "other" : "pg",
        protocol: "postgres",
        listenerId: "l1",
        identity,
        body: (i % 3 === 0
          ? { $case: "sessionEnd", sessionEnd: { reason: "bye" } }
          : { $case: "result", result: { commandId: `${session}:0`, rows: i, bytes: 10 * i, durationUs: 5, errorCode: "", errorMessage: "", statusTag: "SELECT 1" } }) as AuditEvent["body"],
      }),
    );
  }
  // Without an identity the event is encoded as a whole.
  sent.push(AuditEvent.fromPartial({ id: "envC:1", sessionId: "envC", timeUnixMicros: 7, body: { $case: "sessionEnd", sessionEnd: { reason: "x" } } }));
  await Promise.all(sent.map((e) => p.record(e)));
  await p.close();
  const got: AuditEvent[] = [];
  const last = (await jsm.streams.info("GATEHOUSE_AUDIT")).state.last_seq;
  for (let seq = before + 1; seq <= last; seq++) {
    const m = await jsm.streams.getMessage("GATEHOUSE_AUDIT", { seq });
    if (m) got.push(...AuditBatch.decode(m.data).events.filter((e) => e.id.startsWith("env")));
  }
  assert.deepEqual(got.sort((a, b) => a.id.localeCompare(b.id)), sent.map((e) => AuditEvent.fromPartial(e)).sort((a, b) => a.id.localeCompare(b.id)));
});
