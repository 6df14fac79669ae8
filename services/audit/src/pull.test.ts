// takePending: one pull takes exactly what the stream holds beyond the consumer's
// position (no waiting for more), says when it had to leave some behind, and the
// next pull continues after the last message taken, in order.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { DeliverPolicy, jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { startNats, type TestNats } from "@gatehouse/testing";
import { takePending } from "./pull.js";

let nats: TestNats;
let nc: NatsConnection;
const STREAM = "PULL_TEST";

before(async () => {
  nats = await startNats();
  nc = await nats.connect();
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: STREAM, subjects: ["pull-test.>"], storage: StorageType.File });
});

after(async () => {
  await nc?.close();
  await nats?.stop();
});

test("a pull takes what is pending now, in order, and reports a backlog it left", async () => {
  const js = jetstream(nc);
  const enc = new TextEncoder();
  for (let i = 1; i <= 25; i++) await js.publish("pull-test.a", enc.encode(`m${i}`));
  const consumer = await js.consumers.get(STREAM, { deliver_policy: DeliverPolicy.All });
  const seen: string[] = [];
  const dec = new TextDecoder();

  const first = await takePending(consumer, 10, () => undefined);
  assert.equal(first.msgs.length, 10);
  assert.equal(first.more, true, "15 were left behind");
  const second = await takePending(consumer, 100, () => undefined);
  assert.equal(second.msgs.length, 15);
  assert.equal(second.more, false);
  // Nothing pending: no pull at all (one would stay open until it expires).
  const empty = await takePending(consumer, 100, () => undefined);
  assert.equal(empty.msgs.length, 0);
  assert.equal(empty.more, false);
  for (const m of [...first.msgs, ...second.msgs]) seen.push(dec.decode(m.data));
  assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => `m${i + 1}`));

  // Messages stored after the last pull come with the next one, and only those.
  for (let i = 26; i <= 30; i++) await js.publish("pull-test.a", enc.encode(`m${i}`));
  const third = await takePending(consumer, 100, () => undefined);
  assert.deepEqual(third.msgs.map((m) => dec.decode(m.data)), ["m26", "m27", "m28", "m29", "m30"]);
  assert.deepEqual(third.msgs.map((m) => m.info.streamSequence), [26, 27, 28, 29, 30]);
});
