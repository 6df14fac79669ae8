// Copies session recordings from the JetStream stream RECORDINGS into the
// `recordings` table, one row per chunk (docs/recordings.md).
//
// Exactly once without acks, like the audit writer: chunks are read in stream
// order (an ordered consumer) and inserted in that order, and where to continue
// is read from the store itself, the highest stored stream_seq. An insert is the
// commit point: a crash before it copies those chunks again, a crash after it
// does not. Only the holder of the audit writer lease copies (checked before
// every insert), so two audit services never insert the same chunks.
import { DeliverPolicy, jetstream, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { AuditStore, RecordingChunkRow } from "@gatehouse/audit-store";
import { ensureRecordingStream, RECORDING_STREAM, type Logger } from "@gatehouse/runtime";

const SUBJECT_PREFIX = "gatehouse.recording.";

export interface RecordingCopierOptions {
  /** Whether this process holds the audit writer lease (renewing it if due). */
  isLeader(): Promise<boolean>;
  stream?: string;
  /** Chunks per insert at most (default 2000). */
  maxChunks?: number;
  /** Bytes per insert at most (default 16 MiB). */
  maxBytes?: number;
  /** Without a backlog, what arrived within this time goes in one insert (default 1000 ms). */
  flushMs?: number;
}

export interface RecordingCopierStats {
  chunksCopied: number;
  /** Highest stream sequence stored. */
  lastStreamSeq: number;
  active: boolean;
}

export interface RecordingCopier {
  stats: RecordingCopierStats;
  stop(): Promise<void>;
}

class NotLeader extends Error {}

/** The table row of one chunk: session from the subject, order and kind from the headers. */
export function chunkRow(m: JsMsg): RecordingChunkRow {
  const h = m.headers;
  const seq = Number(h?.get("Gatehouse-Seq") ?? "0");
  return {
    sessionId: m.subject.startsWith(SUBJECT_PREFIX) ? m.subject.slice(SUBJECT_PREFIX.length) : m.subject,
    seq: Number.isInteger(seq) && seq >= 0 && seq <= 0xffffffff ? seq : 0,
    kind: h?.get("Gatehouse-Kind") ?? "",
    timeMicros: Number(m.timestampNanos / 1000n),
    streamSeq: m.info.streamSequence,
    data: m.string(),
    last: h?.get("Gatehouse-Last") === "true",
    bytes: m.data.length,
  };
}

export function startRecordingCopier(nc: NatsConnection, store: AuditStore, log: Logger, opts: RecordingCopierOptions): RecordingCopier {
  const stream = opts.stream ?? RECORDING_STREAM;
  const maxChunks = opts.maxChunks ?? 2000;
  const maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
  const flushMs = opts.flushMs ?? 1000;
  const js = jetstream(nc);
  const stats: RecordingCopierStats = { chunksCopied: 0, lastStreamSeq: 0, active: false };
  let stopping = false;
  let current: ConsumerMessages | undefined;
  let wake: (() => void) | undefined;

  async function storedUpTo(): Promise<number> {
    const [r] = await store.internalQuery(`SELECT max(stream_seq) AS m FROM ${store.database}.recordings`);
    return Number(r?.m ?? 0);
  }

  async function runAsLeader(): Promise<void> {
    await ensureRecordingStream(nc, stream);
    const from = await storedUpTo();
    stats.lastStreamSeq = from;
    log.info({ fromStreamSeq: from + 1 }, "recording copier active; copying from the store's last chunk");
    const consumer = await js.consumers.get(stream, from > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from + 1 } : { deliver_policy: DeliverPolicy.All });
    const messages = await consumer.consume({ max_bytes: 8 * 1024 * 1024 });
    current = messages;
    const buffer: JsMsg[] = [];
    let bufferedBytes = 0;
    let reading: Error | undefined;
    let resumeReader: (() => void) | undefined;
    const reader = (async () => {
      try {
        for await (const m of messages) {
          buffer.push(m);
          bufferedBytes += m.data.length;
          if (buffer.length >= maxChunks || bufferedBytes >= maxBytes) {
            wake?.();
            // Back-pressure: stop pulling until the buffer was inserted.
            await new Promise<void>((r) => (resumeReader = r));
          }
        }
      } catch (e) {
        reading = e as Error;
      }
      wake?.();
    })();
    try {
      while (!stopping) {
        if (buffer.length < maxChunks && bufferedBytes < maxBytes) {
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, flushMs);
          });
          wake = undefined;
        }
        if (stopping) break;
        if (reading) throw reading;
        if (buffer.length === 0) {
          if (!(await opts.isLeader())) throw new NotLeader("the audit writer lease is held elsewhere");
          continue;
        }
        let n = 0;
        let bytes = 0;
        while (n < buffer.length && n < maxChunks && (n === 0 || bytes + buffer[n]!.data.length <= maxBytes)) bytes += buffer[n++]!.data.length;
        const rows = buffer.slice(0, n).map(chunkRow);
        if (!(await opts.isLeader())) throw new NotLeader("the audit writer lease lapsed before an insert");
        await store.insertRecordingChunks(rows);
        buffer.splice(0, n);
        bufferedBytes -= bytes;
        stats.chunksCopied += n;
        stats.lastStreamSeq = rows[rows.length - 1]!.streamSeq;
        resumeReader?.();
        resumeReader = undefined;
      }
    } finally {
      resumeReader?.();
      await messages.close().catch(() => undefined);
      current = undefined;
      await reader;
    }
  }

  const loop = (async () => {
    let failures = 0;
    while (!stopping) {
      let leader = false;
      try {
        leader = await opts.isLeader();
      } catch {
        leader = false;
      }
      stats.active = leader;
      if (!leader) {
        await sleep(250);
        continue;
      }
      try {
        await runAsLeader();
        failures = 0;
      } catch (e) {
        stats.active = false;
        if (stopping) break;
        if (e instanceof NotLeader) continue;
        failures++;
        log.error({ err: (e as Error).message, failures }, "recording copier failed; resuming from the store");
        await sleep(Math.min(5000, 250 * 2 ** Math.min(failures, 5)));
      }
    }
    stats.active = false;
  })();

  return {
    stats,
    async stop() {
      stopping = true;
      wake?.();
      await current?.close().catch(() => undefined);
      await loop;
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
