// Reading a stream in bursts. A consumer with a pull always outstanding gets every
// message pushed the moment it is stored: at a thousand statements a second that is
// a thousand deliveries by nats-server, wake-ups of this process and socket writes,
// all competing with the data path for the same cores. The audit writer inserts once
// per flush interval anyway, so it takes what the stream holds at that moment in one
// pull instead: the same messages in a few large socket reads. (The recordings
// copier keeps a consuming pull: its chunks are few, and a pull cannot be bounded
// by both messages and bytes.)
import type { Consumer, ConsumerMessages, JsMsg } from "@nats-io/jetstream";

export interface Taken {
  msgs: JsMsg[];
  /** The stream held more than was taken (a backlog): take again without waiting. */
  more: boolean;
}

/**
 * The messages stored beyond the consumer's position right now, up to `maxMessages`,
 * in one pull. `onPull` sees the pull while it runs, so a stop can close it.
 */
export async function takePending(consumer: Consumer, maxMessages: number, onPull: (m: ConsumerMessages | undefined) => void): Promise<Taken> {
  const { num_pending: pending } = await consumer.info();
  const want = Math.min(pending, maxMessages);
  if (want <= 0) return { msgs: [], more: false };
  const pull = await consumer.fetch({ max_messages: want, expires: 5000 });
  onPull(pull);
  const msgs: JsMsg[] = [];
  try {
    for await (const m of pull) msgs.push(m);
  } finally {
    onPull(undefined);
  }
  return { msgs, more: pending > msgs.length };
}
