// The listener's recording writer against a real nats-server with JetStream:
// chunks of complete lines in order, Nats-Msg-Id "<session>:rec:<seq>", nothing
// lost while the server stops answering (SIGSTOP) and comes back, an explicit
// `truncated` marker when the in-memory backlog or the size limit is reached.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { createLogger, RECORDING_STREAM } from "@gatehouse/runtime";
import { startNats, type TestNats } from "@gatehouse/testing";
import { Recordings, type RecordingLimits } from "./recordings.js";

const log = createLogger("recordings-test", "silent");
let nats: TestNats;
let nc: NatsConnection;

before(async () => {
  nats = await startNats();
  nc = await nats.connect();
});
after(async () => {
  await nc.close();
  await nats.stop();
});

const FAST: RecordingLimits = { maxBytesPerSession: 0, maxBacklogBytesPerSession: 16 * 1024 * 1024, flushMs: 10, retryMaxMs: 200, publishTimeoutMs: 300 };

interface Chunk {
  data: string;
  seq: number;
  last: boolean;
  msgId: string;
}

/** Every stored chunk of one recording, in stream order. */
async function chunksOf(session: string): Promise<Chunk[]> {
  const jsm = await jetstreamManager(nc);
  const ci = await jsm.consumers.add(RECORDING_STREAM, { filter_subject: `gatehouse.recording.${session}`, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All, inactive_threshold: 30_000_000_000 });
  const c = await jetstream(nc).consumers.get(RECORDING_STREAM, ci.name);
  const out: Chunk[] = [];
  for (;;) {
    const m = await c.next({ expires: 1000 });
    if (!m) break;
    out.push({ data: m.string(), seq: Number(m.headers?.get("Gatehouse-Seq")), last: m.headers?.get("Gatehouse-Last") === "true", msgId: m.headers?.get("Nats-Msg-Id") ?? "" });
  }
  await jsm.consumers.delete(RECORDING_STREAM, ci.name).catch(() => undefined);
  return out;
}

const line = (i: number, pad = 0) => JSON.stringify([i / 1000, "o", `line ${i} ${"x".repeat(pad)}`]) + "\n";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("recording writer", () => {
  it("loses nothing while JetStream does not answer, and keeps chunks in order with deterministic ids", async () => {
    const rec = new Recordings(nc, log, FAST);
    const w = rec.writer("lossless-1", "asciicast");
    const written: string[] = [];
    const put = (s: string) => {
      written.push(s);
      w.write(s);
    };
    put(JSON.stringify({ version: 2, width: 80, height: 24 }) + "\n");
    for (let i = 0; i < 50; i++) put(line(i));
    await sleep(200);
    nats.pause();
    try {
      // Several flushes while the server is stopped: each chunk is retried, none is dropped.
      for (let i = 50; i < 100; i++) {
        put(line(i));
        if (i % 10 === 0) await sleep(150);
      }
      await sleep(600);
    } finally {
      nats.resume();
    }
    for (let i = 100; i < 120; i++) put(line(i));
    await w.close();
    const chunks = await chunksOf("lossless-1");
    assert.equal(chunks.map((c) => c.data).join(""), written.join(""), "every line, once, in order");
    assert.deepEqual(chunks.map((c) => c.seq), chunks.map((_, i) => i + 1));
    assert.deepEqual(chunks.map((c) => c.msgId), chunks.map((_, i) => `lossless-1:rec:${i + 1}`));
    assert.ok(chunks.every((c) => c.data === "" || c.data.endsWith("\n")), "chunks hold complete lines");
    assert.deepEqual(chunks.map((c) => c.last), chunks.map((_, i) => i === chunks.length - 1));
    assert.ok(chunks.length >= 3, "the lines were batched into several chunks");
    assert.equal(rec.pending, 0);
  });

  it("ends the recording with a truncated marker when the backlog bound is hit, and sends it once JetStream is back", async () => {
    const rec = new Recordings(nc, log, { ...FAST, maxBacklogBytesPerSession: 64 * 1024 });
    const w = rec.writer("backlog-1", "sql");
    const written: string[] = [];
    w.write(line(0));
    written.push(line(0));
    await sleep(200);
    nats.pause();
    try {
      for (let i = 1; i <= 200; i++) {
        const l = line(i, 1000);
        written.push(l);
        w.write(l);
      }
      await sleep(400);
    } finally {
      nats.resume();
    }
    w.write(line(999));
    await w.close();
    const lines = (await chunksOf("backlog-1")).map((c) => c.data).join("").split("\n").filter((l) => l !== "");
    const marker = JSON.parse(lines[lines.length - 1]!) as [number, string, { reason: string; atBytes: number }];
    assert.equal(marker[1], "truncated");
    assert.match(marker[2].reason, /JetStream did not acknowledge recording chunks for \d+ s and the listener's backlog of 65536 bytes for this session is full/);
    const kept = lines.slice(0, -1).map((l) => l + "\n");
    assert.ok(kept.length > 10 && kept.length < written.length, `some lines kept (${kept.length})`);
    assert.deepEqual(kept, written.slice(0, kept.length), "what is kept is an exact prefix");
    assert.equal(marker[2].atBytes, Buffer.byteLength(kept.join("")));
    assert.ok(!lines.some((l) => l.includes("line 999")), "nothing after the marker");
  });

  it("applies maxBytesPerSession: whole lines up to the limit, then the marker with the time of the first line left out", async () => {
    const rec = new Recordings(nc, log, { ...FAST, maxBytesPerSession: 1000 });
    const w = rec.writer("limit-1", "sql");
    const l = (i: number) => {
      const base = JSON.stringify([i + 0.5, "notice", { message: "" }]) + "\n";
      return JSON.stringify([i + 0.5, "notice", { message: "y".repeat(100 - base.length) }]) + "\n";
    };
    assert.equal(Buffer.byteLength(l(1)), 100);
    // Written several lines per call: the limit still cuts at a line boundary.
    for (let i = 0; i < 20; i += 4) w.write(l(i) + l(i + 1) + l(i + 2) + l(i + 3));
    await w.close();
    const lines = (await chunksOf("limit-1")).map((c) => c.data).join("").split("\n").filter((x) => x !== "");
    assert.equal(lines.length, 11);
    assert.deepEqual(lines.slice(0, 10).map((x) => (JSON.parse(x) as [number])[0]), [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5]);
    assert.deepEqual(JSON.parse(lines[10]!), [10.5, "truncated", { reason: "recording limit of 1000 bytes reached", limitBytes: 1000, atBytes: 1000 }]);
  });
});
