// The audit stream's events after a sequence, as the writer chains them: what a
// verifier compares the store's newest events with (a cut tail shows up here).
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { messageLeaves } from "./events.js";
import type { StreamEvent } from "./verify.js";

/** Events of messages fromSeq..untilSeq (default: the last sequence at call time), in order. */
export function streamTail(nc: NatsConnection, stream: string, untilSeq?: number): (fromSeq: number) => AsyncIterable<StreamEvent> {
  return async function* (fromSeq: number) {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(stream);
    const last = Math.min(info.state.last_seq, untilSeq ?? Number.MAX_SAFE_INTEGER);
    const start = Math.max(fromSeq, info.state.first_seq, 1);
    if (info.state.messages === 0 || start > last) return;
    const consumer = await jetstream(nc).consumers.get(stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start });
    const iter = await consumer.consume({ max_messages: 1000 });
    try {
      for await (const m of iter) {
        const seq = m.info.streamSequence;
        for (const l of messageLeaves(m.data, seq, Number(m.timestampNanos / 1000n))) {
          yield { streamSeq: seq, index: l.index, eventId: l.eventId, bytes: l.bytes };
        }
        if (seq >= last) break;
      }
    } finally {
      await iter.close();
    }
  };
}
