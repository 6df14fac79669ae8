// Moves audit batches from JetStream into the audit store.
//
// A durable pull consumer ("audit-writer") shared by every copy of the audit
// service. Each fetched set of messages is decoded, written in one insert, and
// only then acked; if the store fails the messages are nak'ed with a delay and
// come back (never dropped). Writes are idempotent (ReplacingMergeTree on
// event_id) and a redelivered message whose rows are all stored already is
// acked without writing again.
//
// Poison messages: a body that is not an AuditBatch is stored as one row of type
// "undecodable" (raw bytes base64 in details) and acked, so one bad message
// cannot block the stream forever and its bytes remain evidence.
import { AckPolicy, DeliverPolicy, JetStreamApiError, jetstream, jetstreamManager, type Consumer, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { AuditBatch, type AuditEvent } from "@gatehouse/proto";
import { eventRows, undecodableRow, type AuditStore, type EventRow } from "@gatehouse/audit-store";
import type { Logger } from "@gatehouse/runtime";

export const CONSUMER_NAME = "audit-writer";
// Redelivery delay of a message fetched but never acked (e.g. sent to a fetch
// the client had already given up): short, because redelivered messages are
// checked against the store before they are written again.
const ACK_WAIT_MS = 10_000;
const MAX_ACK_PENDING = 10_000;
const FETCH_EXPIRES_MS = 1000;
const NAK_DELAY_MS = 2000;
const NANOS_PER_MS = 1_000_000;

export interface WriterStats {
  lastStreamSeq: number;
  rowsWritten: number;
}

export interface AuditWriter {
  stats: WriterStats;
  /** Messages not yet acked by the consumer (pending + waiting for ack). */
  pending(): Promise<number>;
  stop(): Promise<void>;
}

/** Create (or reuse) the shared durable consumer. */
async function ensureConsumer(nc: NatsConnection, stream: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const config = {
    durable_name: CONSUMER_NAME,
    ack_policy: AckPolicy.Explicit,
    ack_wait: ACK_WAIT_MS * NANOS_PER_MS,
    max_ack_pending: MAX_ACK_PENDING,
    deliver_policy: DeliverPolicy.All,
    description: "Gatehouse audit service: writes the audit stream to ClickHouse",
  };
  try {
    await jsm.consumers.info(stream, CONSUMER_NAME);
    return;
  } catch (e) {
    if (!(e instanceof JetStreamApiError && e.status === 404)) throw e;
  }
  try {
    await jsm.consumers.add(stream, config);
  } catch (e) {
    // Another copy created it first.
    await jsm.consumers.info(stream, CONSUMER_NAME).catch(() => {
      throw e;
    });
  }
}

export async function startWriter(nc: NatsConnection, stream: string, store: AuditStore, log: Logger, fetchSize: number): Promise<AuditWriter> {
  await ensureConsumer(nc, stream);
  const consumer: Consumer = await jetstream(nc).consumers.get(stream, CONSUMER_NAME);
  // Stored rows below this sequence may exist already: check before rewriting.
  const startMaxSeq = await store.maxStreamSeq();
  const stats: WriterStats = { lastStreamSeq: startMaxSeq, rowsWritten: 0 };
  let stopping = false;
  let failures = 0;

  const loop = async () => {
    while (!stopping) {
      const batch: JsMsg[] = [];
      try {
        const messages: ConsumerMessages = await consumer.fetch({ max_messages: fetchSize, expires: FETCH_EXPIRES_MS });
        for await (const m of messages) batch.push(m);
      } catch (e) {
        // e.g. "heartbeats missed" when this process was starved of CPU. What the
        // fetch received is still written below (it would otherwise come back only
        // after ACK_WAIT_MS); what the server sends to the abandoned fetch does.
        if (!stopping) {
          log.warn({ err: (e as Error).message, received: batch.length }, "fetch from the audit stream ended early; fetching again");
          if (batch.length === 0) await sleep(Math.min(5000, 250 * 2 ** Math.min(failures++, 5)));
        }
      }
      if (batch.length === 0) continue;
      try {
        await writeMessages(batch, store, startMaxSeq, stats);
        for (const m of batch) m.ack();
        failures = 0;
      } catch (e) {
        failures++;
        for (const m of batch) m.nak(NAK_DELAY_MS);
        log.error(
          { err: (e as Error).message, messages: batch.length, firstSeq: batch[0]!.info.streamSequence, failures },
          "audit store write failed; messages returned to the stream and will be retried",
        );
        await sleep(Math.min(5000, 250 * 2 ** Math.min(failures, 5)));
      }
    }
  };
  const done = loop();

  return {
    stats,
    async pending() {
      const info = await consumer.info();
      return info.num_pending + info.num_ack_pending;
    },
    async stop() {
      stopping = true;
      // The current fetch runs to its end (at most FETCH_EXPIRES_MS) and what it
      // brings is written and acked. Closing it early would drop messages the
      // server has already sent for the pull request: they would come back only
      // after ACK_WAIT_MS.
      await done;
    },
  };
}

/** Decode, skip what is stored already, write the rest in one insert. */
async function writeMessages(batch: JsMsg[], store: AuditStore, startMaxSeq: number, stats: WriterStats): Promise<void> {
  const rowsBySeq = new Map<number, EventRow[]>();
  for (const m of batch) {
    const seq = m.info.streamSequence;
    const fallbackMicros = Number(m.timestampNanos / 1000n);
    rowsBySeq.set(seq, rowsForMessage(m.data, seq, fallbackMicros));
  }
  // Redeliveries and anything at or below what was stored at start may be there.
  const maybeStored = batch.filter((m) => m.redelivered || m.info.streamSequence <= startMaxSeq).map((m) => m.info.streamSequence);
  if (maybeStored.length > 0) {
    const stored = await store.rowsForSeqs(maybeStored);
    for (const seq of maybeStored) {
      if ((stored.get(seq) ?? 0) >= rowsBySeq.get(seq)!.length) rowsBySeq.delete(seq);
    }
  }
  const rows = [...rowsBySeq.values()].flat();
  stats.rowsWritten += await store.insertRows(rows);
  for (const m of batch) stats.lastStreamSeq = Math.max(stats.lastStreamSeq, m.info.streamSequence);
}

function rowsForMessage(data: Uint8Array, seq: number, fallbackMicros: number): EventRow[] {
  let decoded: AuditBatch;
  try {
    decoded = AuditBatch.decode(data);
  } catch (e) {
    return [undecodableRow(seq, data, `not an AuditBatch: ${(e as Error).message}`, fallbackMicros)];
  }
  if (decoded.events.length === 0) {
    return [undecodableRow(seq, data, "AuditBatch without events", fallbackMicros)];
  }
  return decoded.events.flatMap((ev: AuditEvent, i) => {
    // An event id is the dedup key; without one, derive it from the stream position.
    const event = ev.id ? ev : { ...ev, id: `seq:${seq}:${i}` };
    return eventRows(event, seq, fallbackMicros);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
