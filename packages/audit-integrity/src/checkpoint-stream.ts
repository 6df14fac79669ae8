// The second home of checkpoints: a JetStream stream that a ClickHouse
// administrator cannot rewrite (deletes and purges denied, nothing ages out).
// One message per checkpoint (JSON) on CHECKPOINT_SUBJECT. Publishing uses
// Nats-Expected-Last-Subject-Sequence, so two writers can never both append a
// continuation of the same checkpoint (a fork is refused by the server).
import { DiscardPolicy, JetStreamApiError, jetstream, jetstreamManager, RetentionPolicy, StorageType, DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { parseCheckpoint, type Checkpoint } from "./checkpoint.js";

export const CHECKPOINT_STREAM = "GATEHOUSE_AUDIT_CHECKPOINTS";
export const CHECKPOINT_SUBJECT = "gatehouse.checkpoints.audit";

async function manager(nc: NatsConnection): Promise<JetStreamManager> {
  try {
    return await jetstreamManager(nc);
  } catch (e) {
    throw new Error(`JetStream is not available on the NATS server (${(e as Error).message}): start nats-server with -js`);
  }
}

export async function ensureCheckpointStream(nc: NatsConnection, name = CHECKPOINT_STREAM): Promise<void> {
  const jsm = await manager(nc);
  const settings = {
    description: "Gatehouse signed audit checkpoints (deletes and purges denied)",
    subjects: [CHECKPOINT_SUBJECT],
    discard: DiscardPolicy.New,
    deny_delete: true,
    deny_purge: true,
  };
  try {
    const info = await jsm.streams.info(name);
    if (!info.config.deny_delete || !info.config.deny_purge || info.config.subjects?.join(",") !== CHECKPOINT_SUBJECT) {
      await jsm.streams.update(name, { ...info.config, ...settings });
    }
    return;
  } catch (e) {
    if (!(e instanceof JetStreamApiError && e.status === 404)) throw new Error(`cannot read checkpoint stream ${name}: ${(e as Error).message}`);
  }
  try {
    await jsm.streams.add({ name, ...settings, storage: StorageType.File, retention: RetentionPolicy.Limits, max_age: 0, max_msgs: -1, max_bytes: -1, num_replicas: 1 });
  } catch (e) {
    const exists = await jsm.streams.info(name).then(() => true, () => false);
    if (!exists) throw new Error(`cannot create checkpoint stream ${name}: ${(e as Error).message}`);
  }
}

export interface StoredCheckpoint {
  checkpoint: Checkpoint;
  /** Stream sequence of its message. */
  seq: number;
}

/** The newest checkpoint in the stream, or undefined when there is none. */
export async function lastCheckpoint(nc: NatsConnection, name = CHECKPOINT_STREAM): Promise<StoredCheckpoint | undefined> {
  const jsm = await manager(nc);
  try {
    const m = await jsm.streams.getMessage(name, { last_by_subj: CHECKPOINT_SUBJECT });
    if (!m) return undefined;
    return { checkpoint: parseCheckpoint(new TextDecoder().decode(m.data)), seq: m.seq };
  } catch (e) {
    if (e instanceof JetStreamApiError && (e.status === 404 || e.code === 10037)) return undefined;
    throw e;
  }
}

/**
 * Append a checkpoint; `expectedLastSeq` is the stream sequence of the previous
 * checkpoint (0 for the first). Throws when another writer appended first.
 */
export async function publishCheckpoint(nc: NatsConnection, c: Checkpoint, expectedLastSeq: number): Promise<number> {
  const js = jetstream(nc);
  const ack = await js.publish(CHECKPOINT_SUBJECT, JSON.stringify(c), {
    msgID: `checkpoint:${c.fromPos}-${c.toPos}:${c.head}`,
    expect: { lastSubjectSequence: expectedLastSeq },
  });
  return ack.seq;
}

/** Every checkpoint in stream order (first to last). */
export async function readCheckpoints(nc: NatsConnection, name = CHECKPOINT_STREAM): Promise<Checkpoint[]> {
  const jsm = await manager(nc);
  let last: number;
  try {
    const info = await jsm.streams.info(name);
    last = info.state.last_seq;
    if (info.state.messages === 0) return [];
  } catch (e) {
    if (e instanceof JetStreamApiError && e.status === 404) return [];
    throw e;
  }
  const js = jetstream(nc);
  const consumer = await js.consumers.get(name, { deliver_policy: DeliverPolicy.All });
  const out: Checkpoint[] = [];
  const iter = await consumer.consume({ max_messages: 1000 });
  for await (const m of iter) {
    out.push(parseCheckpoint(m.string()));
    if (m.info.streamSequence >= last) break;
  }
  await iter.close();
  return out;
}
