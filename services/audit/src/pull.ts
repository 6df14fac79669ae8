// Reading a stream in bursts. A consumer with a pull always outstanding gets every
// message pushed the moment it is stored: at a thousand statements a second that is
// a thousand deliveries by nats-server, wake-ups of this process and socket writes,
// all competing with the data path for the same cores. The writers here insert once
// per flush interval anyway, so they take what the stream holds at that moment in
// one pull instead: the same messages in a few large socket reads.
import type { Consumer, ConsumerMessages, JsMsg } from "@nats-io/jetstream";

export interface Taken {
  msgs: JsMsg[];
  bytes: number;
  /** The stream held more than was taken (a backlog): take again without waiting. */
  more: boolean;
}

/**
 * The messages stored beyond the consumer's position right now, up to `maxMessages`
 * (and `maxBytes` when given), in one pull. `onPull` sees the pull while it runs, so
 * a stop can close it.
 */
export async function takePending(consumer: Consumer, maxMessages: number, maxBytes: number | undefined, onPull: (m: ConsumerMessages | undefined) => void): Promise<Taken> {
  const { num_pending: pending } = await consumer.info();
  const want = Math.min(pending, maxMessages);
  if (want <= 0) return { msgs: [], bytes: 0, more: false };
  const pull = await consumer.fetch({ max_messages: want, ...(maxBytes ? { max_bytes: maxBytes } : {}), expires: 5000 });
  onPull(pull);
  const msgs: JsMsg[] = [];
  let bytes = 0;
  try {
    for await (const m of pull) {
      msgs.push(m);
      bytes += m.data.length;
    }
  } catch (e) {
    // The next message would pass maxBytes: the server ends the pull with a 409,
    // which a fetch reports as an error. What was taken is good; take again later.
    if (!(maxBytes && /exceeds maxbytes/i.test((e as Error).message))) throw e;
    return { msgs, bytes, more: true };
  } finally {
    onPull(undefined);
  }
  return { msgs, bytes, more: pending > msgs.length };
}
