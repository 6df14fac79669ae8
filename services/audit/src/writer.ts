// Moves audit batches from JetStream into the audit store, linking every event
// into a hash chain and sealing signed checkpoints (docs/decisions.md).
//
// Order and exactly once: the writer reads the stream in order (an ordered
// consumer, no acks) and numbers events 1, 2, 3, ... by (stream sequence, index
// within the batch). Where to continue is read from the store itself at every
// start: the highest chain position with no gap below it. An insert is the
// commit point, so a crash before it redoes the events and a crash after it
// does not repeat them: nothing is written twice and nothing is skipped, without
// relying on an ack. Rows are a pure function of the stream, so a rebuilt event
// is identical to the lost one.
//
// One writer is active at a time (WriterLock); other copies of the service wait
// and take over when its lease lapses.
//
// Duplicates: an event id already chained among the last RECENT_IDS events (a
// publisher retry outside JetStream's duplicate window, or the same event in
// another batch) is not chained again.
//
// Poison messages: a message that is not an AuditBatch is chained as one leaf
// of its raw bytes and stored as one row of type "undecodable".
import { randomUUID } from "node:crypto";
import { DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { AuditStore, RowSink } from "@gatehouse/audit-store";
import {
  chainNext,
  CHECKPOINT_STREAM,
  deriveRows,
  ensureCheckpointStream,
  eventLeafHash,
  GENESIS,
  lastCheckpoint,
  merkleRoot,
  messageLeaves,
  publishCheckpoint,
  readCheckpoints,
  signCheckpoint,
  UNDECODABLE_INDEX,
  type Checkpoint,
  type Signer,
} from "@gatehouse/audit-integrity";
import { eventRows } from "@gatehouse/audit-store";
import type { Logger } from "@gatehouse/runtime";
import { takePending } from "./pull.js";
import { WriterLock } from "./writer-lock.js";

const RECENT_IDS = 100_000;
// Messages taken from the stream per pull at most (a backlog is read in pulls of this size).
const MAX_BUFFERED_MESSAGES = 5000;

/** Event ids per resume query (each id ~15-50 bytes quoted; well under max_query_size). */
const RESUME_IDS_PER_QUERY = 2000;

export interface WriterOptions {
  stream: string;
  signer: Signer;
  checkpointStream?: string;
  checkpointEvents?: number;
  checkpointIntervalMs?: number;
  flushEvents?: number;
  flushMs?: number;
  lockTtlMs?: number;
  /** Most messages one pull takes from the stream (audit.batchSize). */
  fetchMessages?: number;
}

export interface WriterStats {
  /** Highest stream sequence processed. */
  lastStreamSeq: number;
  rowsWritten: number;
  /** Chain position of the newest event written. */
  chainPos: number;
  /** Last chain position sealed by a checkpoint. */
  sealedPos: number;
  checkpoints: number;
  duplicatesSkipped: number;
  active: boolean;
}

export interface AuditWriter {
  stats: WriterStats;
  /** Messages in the stream not yet processed. */
  pending(): Promise<number>;
  /** Whether this writer holds the single-writer lease (other copiers of the service follow it). */
  holdsLease(): Promise<boolean>;
  stop(): Promise<void>;
}

class LeaseLost extends Error {}

interface Pending {
  leaf: Buffer;
  head: Buffer;
  pos: number;
  streamSeq: number;
}

interface State {
  pos: number;
  head: Buffer;
  /** Resume inside this message: events with index <= resumeIndex are stored already. */
  resumeSeq: number;
  resumeIndex: number;
  /** Positions stored above a gap (rare: an insert split across partitions); not inserted again. */
  storedAbove: Set<number>;
  sealedPos: number;
  sealedHead: Buffer;
  lastCheckpointSeq: number;
  lastSealAt: number;
  pending: Pending[];
  /** Chain position stored in ClickHouse (prepared positions above it are being inserted). */
  insertedPos: number;
  preparedSeq: number;
  recent: Set<string>;
  /** recentRing[pos % RECENT_IDS]: the id chained at pos. */
  recentRing: Array<string | undefined>;
}

export async function startWriter(nc: NatsConnection, store: AuditStore, log: Logger, opts: WriterOptions): Promise<AuditWriter> {
  const cpStream = opts.checkpointStream ?? CHECKPOINT_STREAM;
  const checkpointEvents = opts.checkpointEvents ?? 10_000;
  const checkpointIntervalMs = opts.checkpointIntervalMs ?? 10_000;
  const flushEvents = opts.flushEvents ?? 30_000;
  const flushMs = opts.flushMs ?? 1000;
  const lockTtlMs = opts.lockTtlMs ?? 10_000;
  await ensureCheckpointStream(nc, cpStream);
  const db = store.database;
  const stats: WriterStats = { lastStreamSeq: 0, rowsWritten: 0, chainPos: 0, sealedPos: 0, checkpoints: 0, duplicatesSkipped: 0, active: false };
  const lock = new WriterLock(nc, `${opts.stream}_WRITER`, lockTtlMs, `${process.pid}:${randomUUID()}`, log);
  const js = jetstream(nc);
  let stopping = false;
  let current: ConsumerMessages | undefined;
  let wake: (() => void) | undefined;

  async function resume(): Promise<State> {
    // An event's first row carries chain_hash (64 bytes): filtering on it reads
    // far less than on event_bytes.
    const [agg] = await store.internalQuery(`SELECT uniqExact(chain_pos) AS n, max(chain_pos) AS m FROM ${db}.events WHERE chain_hash != ''`);
    let pos = Number(agg?.m ?? 0);
    const n = Number(agg?.n ?? 0);
    const storedAbove = new Set<number>();
    if (n !== pos) {
      const [gap] = await store.internalQuery(
        `SELECT min(r) AS g FROM (SELECT chain_pos AS p, row_number() OVER (ORDER BY chain_pos) AS r FROM (SELECT DISTINCT chain_pos FROM ${db}.events WHERE chain_hash != '')) WHERE p != r`,
      );
      const g = Number(gap?.g ?? 1);
      for (const r of await store.internalQuery(`SELECT DISTINCT chain_pos FROM ${db}.events WHERE chain_hash != '' AND chain_pos >= ${g}`)) storedAbove.add(Number(r.chain_pos));
      log.warn({ gapAt: g, storedAbove: storedAbove.size }, "the store has a gap in the chain; rebuilding it from the stream");
      pos = g - 1;
    }
    let head: Buffer = GENESIS;
    let resumeSeq = 0;
    let resumeIndex = -1;
    if (pos > 0) {
      const [tip] = await store.internalQuery(`SELECT stream_seq, chain_index, chain_hash FROM ${db}.events WHERE chain_hash != '' AND chain_pos = ${pos} LIMIT 1`);
      if (!tip) throw new Error(`the store's chain tip at position ${pos} has no event row: run gatehouse audit verify`);
      head = Buffer.from(String(tip!.chain_hash), "hex");
      resumeSeq = Number(tip!.stream_seq);
      resumeIndex = Number(tip!.chain_index);
    }
    // Checkpoints: JetStream's copy is authoritative; copy what ClickHouse lacks.
    const last = await lastCheckpoint(nc, cpStream);
    let sealedPos = 0;
    let sealedHead: Buffer = GENESIS;
    if (last) {
      sealedPos = last.checkpoint.toPos;
      sealedHead = Buffer.from(last.checkpoint.head, "hex");
      const have = await store.maxCheckpointFrom();
      if (have < last.checkpoint.fromPos) {
        const missing = (await readCheckpoints(nc, cpStream)).filter((c) => c.fromPos > have);
        await store.insertCheckpoints(missing);
      }
    }
    // Leaves written but not sealed yet.
    const pending: Pending[] = [];
    if (pos > sealedPos) {
      let h = sealedHead;
      // Ids first (a scan of small columns), then the bytes by primary key.
      const ids = await store.internalQuery(`SELECT event_id FROM ${db}.events WHERE chain_hash != '' AND chain_pos > ${sealedPos} AND chain_pos <= ${pos}`);
      const quoted = ids.map((r) => `'${String(r.event_id).replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`);
      // In slices: the unsealed tail can hold many thousands of ids, and one IN list
      // would exceed ClickHouse's max_query_size (256 KiB). An id's rows all fall in
      // its own slice, so LIMIT 1 BY per slice is LIMIT 1 BY overall.
      const rows: Record<string, unknown>[] = [];
      for (let i = 0; i < quoted.length; i += RESUME_IDS_PER_QUERY) {
        rows.push(
          ...(await store.internalQuery(
            `SELECT chain_pos, stream_seq, chain_index, event_bytes FROM ${db}.events WHERE event_id IN (${quoted.slice(i, i + RESUME_IDS_PER_QUERY).join(",")}) AND chain_hash != '' AND chain_pos > ${sealedPos} AND chain_pos <= ${pos} ORDER BY chain_pos LIMIT 1 BY chain_pos`,
          )),
        );
      }
      rows.sort((a, b) => Number(a.chain_pos) - Number(b.chain_pos));
      for (const r of rows) {
        const p = { pos: Number(r.chain_pos), streamSeq: Number(r.stream_seq), index: Number(r.chain_index) };
        const leaf = eventLeafHash(p, Buffer.from(String(r.event_bytes), "base64"));
        h = chainNext(h, leaf);
        pending.push({ leaf, head: h, pos: p.pos, streamSeq: p.streamSeq });
      }
      if (pending.length !== pos - sealedPos || !h.equals(head)) throw new Error(`the stored events after the last checkpoint (${sealedPos + 1}-${pos}) do not recompute to the stored chain head: run gatehouse audit verify`);
    }
    const recentRing: Array<string | undefined> = new Array(RECENT_IDS);
    const recent = new Set<string>();
    for (const r of await store.internalQuery(
      `SELECT event_id, chain_pos FROM ${db}.events WHERE chain_hash != '' AND chain_pos > ${Math.max(0, pos - RECENT_IDS)} AND chain_pos <= ${pos} ORDER BY chain_pos LIMIT 1 BY chain_pos`,
    )) {
      recentRing[Number(r.chain_pos) % RECENT_IDS] = String(r.event_id);
      recent.add(String(r.event_id));
    }
    return {
      pos,
      head,
      resumeSeq,
      resumeIndex,
      storedAbove,
      sealedPos,
      sealedHead,
      lastCheckpointSeq: last?.seq ?? 0,
      lastSealAt: Date.now(),
      pending,
      insertedPos: pos,
      preparedSeq: resumeSeq,
      recent,
      recentRing,
    };
  }

  /**
   * Chain whole messages from the front of `msgs` until about maxEvents events:
   * advances the chain state; returns the rows to insert and how many messages were used.
   */
  function prepare(msgs: JsMsg[], st: State, maxEvents: number): { rows: RowSink; used: number; full: boolean } {
    const rows = store.newRowBuffer();
    let maxSeq = st.preparedSeq;
    let used = 0;
    let events = 0;
    for (const m of msgs) {
      if (events >= maxEvents) break;
      used++;
      const seq = m.info.streamSequence;
      maxSeq = seq;
      if (seq < st.resumeSeq) continue;
      const micros = Number(m.timestampNanos / 1000n);
      for (const leafIn of messageLeaves(m.data, seq, micros)) {
        if (seq === st.resumeSeq && (st.resumeIndex === UNDECODABLE_INDEX || leafIn.index <= st.resumeIndex)) continue;
        if (st.recent.has(leafIn.eventId)) {
          stats.duplicatesSkipped++;
          continue;
        }
        const pos = st.pos + 1;
        const leaf = eventLeafHash({ pos, streamSeq: seq, index: leafIn.index }, leafIn.bytes);
        const head = chainNext(st.head, leaf);
        st.pos = pos;
        st.head = head;
        // Ring of the last RECENT_IDS ids: the oldest leaves the set as a new one enters.
        const slot = pos % RECENT_IDS;
        const evicted = st.recentRing[slot];
        if (evicted !== undefined) st.recent.delete(evicted);
        st.recentRing[slot] = leafIn.eventId;
        st.recent.add(leafIn.eventId);
        if (pos > st.sealedPos) st.pending.push({ leaf, head, pos, streamSeq: seq });
        else if (pos === st.sealedPos && !head.equals(st.sealedHead)) {
          throw new Error(`the chain rebuilt from the stream differs from the signed checkpoint ending at ${pos}: the audit stream or the store was altered; run gatehouse audit verify`);
        }
        events++;
        if (st.storedAbove.has(pos)) continue;
        const evRows = leafIn.event ? eventRows(leafIn.event, seq, micros) : deriveRows(leafIn.bytes, seq, leafIn.index, micros);
        const first = evRows[0]!;
        first.chain_hash = head.toString("hex");
        first.event_bytes = Buffer.from(leafIn.bytes).toString("base64");
        for (const r of evRows) {
          r.chain_pos = pos;
          r.chain_index = leafIn.index;
          rows.add(r);
        }
      }
    }
    st.preparedSeq = Math.max(st.preparedSeq, maxSeq);
    return { rows, used, full: events >= maxEvents };
  }

  /** Insert prepared rows; on success the positions up to `pos` are stored. */
  async function insert(rows: RowSink, pos: number, seq: number, st: State): Promise<void> {
    if (rows.rows > 0) {
      if (!(await lock.ensure())) throw new LeaseLost("the writer lease lapsed before the insert");
      stats.rowsWritten += await store.insertRowBuffer(rows);
    }
    st.insertedPos = pos;
    stats.chainPos = pos;
    stats.lastStreamSeq = Math.max(stats.lastStreamSeq, seq);
  }

  /** Seal what is due: full checkpoints of checkpointEvents, then the rest after checkpointIntervalMs. */
  async function seal(st: State, force = false): Promise<void> {
    // Only what is stored may be sealed.
    const stored = () => {
      let n = st.pending.length;
      while (n > 0 && st.pending[n - 1]!.pos > st.insertedPos) n--;
      return n;
    };
    for (let n = stored(); n > 0 && (n >= checkpointEvents || force || Date.now() - st.lastSealAt >= checkpointIntervalMs); n = stored()) {
      const part = st.pending.slice(0, Math.min(checkpointEvents, n));
      const lastP = part[part.length - 1]!;
      const cp: Checkpoint = await signCheckpoint(
        {
          fromPos: part[0]!.pos,
          toPos: lastP.pos,
          fromStreamSeq: part[0]!.streamSeq,
          toStreamSeq: lastP.streamSeq,
          prevHead: st.sealedHead.toString("hex"),
          head: lastP.head.toString("hex"),
          merkleRoot: merkleRoot(part.map((p) => p.leaf)).toString("hex"),
          time: new Date().toISOString(),
        },
        opts.signer,
      );
      if (!(await lock.ensure())) throw new LeaseLost("the writer lease lapsed before a checkpoint");
      try {
        st.lastCheckpointSeq = await publishCheckpoint(nc, cp, st.lastCheckpointSeq);
      } catch (e) {
        if (/wrong last sequence/i.test((e as Error).message)) throw new LeaseLost(`another writer appended a checkpoint: ${(e as Error).message}`);
        throw e;
      }
      await store.insertCheckpoints([cp]);
      st.pending.splice(0, part.length);
      st.sealedPos = lastP.pos;
      st.sealedHead = lastP.head;
      st.lastSealAt = Date.now();
      stats.sealedPos = st.sealedPos;
      stats.checkpoints++;
      log.debug({ from: cp.fromPos, to: cp.toPos, keyId: cp.keyId }, "checkpoint sealed");
    }
    if (st.pending.length === 0) st.lastSealAt = Date.now();
  }

  async function runAsLeader(): Promise<void> {
    const st = await resume();
    stats.chainPos = st.pos;
    stats.sealedPos = st.sealedPos;
    log.info({ chainPos: st.pos, sealedPos: st.sealedPos, fromStreamSeq: Math.max(1, st.resumeSeq) }, "audit writer active; chaining from the store's last event");
    const consumer = await js.consumers.get(opts.stream, st.resumeSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: st.resumeSeq } : { deliver_policy: DeliverPolicy.All });
    const buffer: JsMsg[] = [];
    let inflight: Promise<void> | undefined;
    try {
      // When the stream was last read: reads (and so inserts) are at least flushMs
      // apart unless there is a backlog. Each insert has a fixed cost in ClickHouse (a part
      // per table and per materialized view, later merged) far above its per-row
      // cost, so back-to-back small inserts would take a core away from the data
      // path; one insert per flushMs keeps the cost per event low at any rate.
      let lastReadAt = 0;
      // A backlog: the last pull left messages in the stream, or the last flush took
      // a full flushEvents and left messages in the buffer.
      let behind = false;
      while (!stopping) {
        const wait = behind ? 0 : flushMs - (performance.now() - lastReadAt);
        if (wait > 0) {
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, wait);
          });
          wake = undefined;
        }
        if (stopping) break;
        // What the stream holds now, in one pull (pull.ts).
        const room = Math.min(opts.fetchMessages ?? MAX_BUFFERED_MESSAGES, MAX_BUFFERED_MESSAGES - buffer.length);
        const taken = room > 0 ? await takePending(consumer, room, (p) => (current = p)) : { msgs: [], more: true };
        for (const m of taken.msgs) buffer.push(m);
        if (stopping) break;
        lastReadAt = performance.now();
        if (buffer.length > 0) {
          // Pipeline: chain and build the next rows while ClickHouse (its own
          // threads) inserts the previous ones. Inserts stay strictly in order.
          const t0 = performance.now();
          const { rows, used, full } = prepare(buffer, st, flushEvents);
          buffer.splice(0, used);
          behind = (full && buffer.length > 0) || taken.more;
          const t1 = performance.now();
          if (inflight) await inflight;
          const t2 = performance.now();
          inflight = insert(rows, st.pos, st.preparedSeq, st);
          if (log.isLevelEnabled("debug")) {
            const started = performance.now();
            const n = rows.rows;
            void inflight.then(() => log.debug({ messages: used, rows: n, prepareMs: Math.round(t1 - t0), waitMs: Math.round(t2 - t1), insertMs: Math.round(performance.now() - started) }, "flush"), () => undefined);
          }
          inflight.catch(() => undefined);
          // Seal only between flushes when nothing else is waiting.
          if (buffer.length > 0 && st.pending.length < checkpointEvents) continue;
        } else {
          behind = false;
          if (inflight) await inflight;
          inflight = undefined;
        }
        await seal(st);
        if (!(await lock.ensure())) throw new LeaseLost("the writer lease lapsed");
      }
      if (inflight) await inflight;
      inflight = undefined;
      // Seal what was written, so a clean stop leaves nothing unsealed.
      if (await lock.ensure()) await seal(st, true).catch((e: unknown) => log.warn({ err: (e as Error).message }, "could not seal the last checkpoint on stop"));
    } finally {
      if (inflight) await inflight.catch(() => undefined);
      current = undefined;
    }
  }

  const loop = (async () => {
    let failures = 0;
    while (!stopping) {
      let held = false;
      try {
        held = await lock.acquire();
      } catch (e) {
        log.warn({ err: (e as Error).message }, "cannot reach the writer lease bucket");
      }
      stats.active = held;
      if (!held) {
        await sleep(Math.min(1000, Math.max(100, lockTtlMs / 5)));
        continue;
      }
      try {
        await runAsLeader();
        failures = 0;
      } catch (e) {
        if (stopping) break;
        failures++;
        const lost = e instanceof LeaseLost;
        if (lost) await lock.release();
        log.error({ err: (e as Error).message, failures }, lost ? "audit writer lost its lease; waiting to take it again" : "audit writer failed; resuming from the store");
        await sleep(Math.min(5000, 250 * 2 ** Math.min(failures, 5)));
      }
    }
    stats.active = false;
  })();

  return {
    stats,
    holdsLease: () => (stopping ? Promise.resolve(false) : lock.ensure()),
    async pending() {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(opts.stream);
      return Math.max(0, info.state.last_seq - stats.lastStreamSeq);
    },
    async stop() {
      stopping = true;
      wake?.();
      await current?.close().catch(() => undefined);
      await loop;
      await lock.release();
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
