// Verification of the audit trail against its signed checkpoints, without
// trusting the operator: the checkpoints come from the JetStream stream (which
// cannot be rewritten), the events from ClickHouse (which can).
//
// Checked: every checkpoint's signature; continuity between checkpoints (each
// starts where the previous ended, from the previous chain head); that the
// ClickHouse copy of every checkpoint equals the JetStream one; for every chain
// position, exactly one event, its recomputed chain hash, every stored column
// against the event's own bytes, and each checkpoint's chain head and Merkle
// root; rows outside the chain; and the tail after the last checkpoint against
// the JetStream audit stream (a cut tail is detected).
import { EVENT_COLUMNS, CHAIN_COLUMNS, type EventRow } from "@gatehouse/audit-store";
import { chainNext, eventLeafHash, GENESIS } from "./chain.js";
import { checkpointDiff, checkpointSignatureProblem, type Checkpoint } from "./checkpoint.js";
import { merkleRoot } from "./merkle.js";
import { deriveRows, UNDECODABLE_INDEX } from "./events.js";

export type QueryFn = (sql: string) => Promise<Record<string, unknown>[]>;

export interface Problem {
  /** Chain position where it was found (0: not tied to a position). */
  pos: number;
  eventId?: string;
  what: string;
}

/** One event of the JetStream audit stream, as the writer would chain it. */
export interface StreamEvent {
  streamSeq: number;
  index: number;
  eventId: string;
  bytes: Uint8Array;
}

export interface VerifyOptions {
  database?: string;
  /** Checkpoints from the JetStream checkpoint stream, in stream order. */
  checkpoints: Checkpoint[];
  /** Pinned public keys: key id -> base64 SPKI. Without it, keys carried by the checkpoints. */
  trustedKeys?: Map<string, string>;
  /** First and last chain position to check (widened to whole checkpoints). */
  from?: number;
  to?: number;
  /**
   * The JetStream audit stream's events after `afterStreamSeq` (the last
   * checkpoint's end); omitted: the tail after the last checkpoint is not checked.
   */
  streamTail?: (afterStreamSeq: number) => AsyncIterable<StreamEvent>;
  /**
   * Last audit-stream sequence the writer had stored when verification began
   * (the tail check stops there, so events arriving meanwhile are not reported).
   */
  untilStreamSeq?: number;
  /** Read the JetStream checkpoints again: a checkpoint sealed while verify runs is in ClickHouse but not in `checkpoints`. */
  rereadCheckpoints?: () => Promise<Checkpoint[]>;
  /**
   * Chain positions per query (default 20000). Events are stored in event-id
   * order, so every page scans the table: use the largest page the transport allows.
   */
  pageSize?: number;
  /** Stop after this many problems (default 20). */
  maxProblems?: number;
}

export interface VerifyReport {
  ok: boolean;
  problems: Problem[];
  eventsChecked: number;
  checkpointsChecked: number;
  /** Last chain position covered by a checkpoint. */
  lastCheckpointPos: number;
  /** Highest chain position in the store. */
  lastStoredPos: number;
  keyIds: string[];
}

const COMPARED = EVENT_COLUMNS.filter((c) => !(CHAIN_COLUMNS as readonly string[]).includes(c));
const ZERO_HEX = GENESIS.toString("hex");

class Stop extends Error {}

/** Value as comparable text: ClickHouse JSON quotes 64-bit integers, maps keep key order. */
function canon(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canon).join(",")}]`;
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon(o[k])}`)
      .join(",")}}`;
  }
  return String(v);
}

function short(s: string, n = 80): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export async function verifyTrail(query: QueryFn, opts: VerifyOptions): Promise<VerifyReport> {
  const db = opts.database ?? "gatehouse";
  const pageSize = opts.pageSize ?? 20_000;
  const maxProblems = opts.maxProblems ?? 20;
  const problems: Problem[] = [];
  const report = (p: Problem) => {
    problems.push(p);
    if (problems.length >= maxProblems) throw new Stop();
  };
  const cps = opts.checkpoints;
  const keyIds = [...new Set(cps.map((c) => c.keyId))];
  let eventsChecked = 0;
  const lastCheckpointPos = cps.length ? cps[cps.length - 1]!.toPos : 0;
  const maxRow = await query(`SELECT max(chain_pos) AS m FROM ${db}.events`);
  const lastStoredPos = Number(maxRow[0]?.m ?? 0);

  try {
    // 1. Checkpoints on their own: signatures and continuity.
    for (let i = 0; i < cps.length; i++) {
      const c = cps[i]!;
      const name = `checkpoint ${c.fromPos}-${c.toPos}`;
      const sig = checkpointSignatureProblem(c, opts.trustedKeys);
      if (sig) report({ pos: c.fromPos, what: `${name}: ${sig}` });
      const prev = cps[i - 1];
      const expectFrom = prev ? prev.toPos + 1 : 1;
      const expectHead = prev ? prev.head : ZERO_HEX;
      if (c.fromPos !== expectFrom) report({ pos: c.fromPos, what: `${name}: does not continue the previous checkpoint (expected it to start at position ${expectFrom})` });
      else if (c.prevHead !== expectHead) report({ pos: c.fromPos, what: `${name}: its previous chain head ${short(c.prevHead, 16)} is not the head ${short(expectHead, 16)} of the checkpoint before it` });
      if (c.toPos < c.fromPos) report({ pos: c.fromPos, what: `${name}: empty or reversed range` });
    }

    // 2. The ClickHouse copy must equal the JetStream copy.
    const stored = await query(
      `SELECT from_pos, to_pos, from_stream_seq, to_stream_seq, prev_head, head, merkle_root, time, key_id, public_key, signature FROM ${db}.checkpoints FINAL ORDER BY from_pos`,
    );
    const byFrom = new Map<number, Checkpoint>();
    for (const r of stored) {
      byFrom.set(Number(r.from_pos), {
        version: 1,
        fromPos: Number(r.from_pos),
        toPos: Number(r.to_pos),
        fromStreamSeq: Number(r.from_stream_seq),
        toStreamSeq: Number(r.to_stream_seq),
        prevHead: String(r.prev_head),
        head: String(r.head),
        merkleRoot: String(r.merkle_root),
        time: String(r.time),
        keyId: String(r.key_id),
        publicKey: String(r.public_key),
        signature: String(r.signature),
      });
    }
    for (const c of cps) {
      const copy = byFrom.get(c.fromPos);
      if (!copy) report({ pos: c.fromPos, what: `checkpoint ${c.fromPos}-${c.toPos} is in JetStream but missing from ClickHouse table checkpoints` });
      else {
        const diff = checkpointDiff(c, copy);
        if (diff.length) report({ pos: c.fromPos, what: `checkpoint ${c.fromPos}-${c.toPos} in ClickHouse differs from the signed copy in JetStream: ${diff.join(", ")}` });
        byFrom.delete(c.fromPos);
      }
    }
    if (byFrom.size > 0 && opts.rereadCheckpoints) {
      for (const c of await opts.rereadCheckpoints()) {
        const copy = byFrom.get(c.fromPos);
        if (copy && checkpointDiff(c, copy).length === 0) byFrom.delete(c.fromPos);
      }
    }
    for (const c of byFrom.values()) report({ pos: c.fromPos, what: `checkpoint ${c.fromPos}-${c.toPos} in ClickHouse has no signed copy in JetStream (altered or forged)` });

    // 3. Rows outside the chain.
    const unchained = await query(`SELECT event_id, type FROM ${db}.events FINAL WHERE chain_pos = 0 ORDER BY event_id LIMIT 5`);
    for (const r of unchained) report({ pos: 0, eventId: String(r.event_id), what: `row ${r.event_id} (type ${r.type}) is not part of the hash chain: forged, or written before chaining was enabled` });

    // 4. Events, checkpoint by checkpoint.
    let startIdx = 0;
    if (opts.from !== undefined) {
      startIdx = cps.findIndex((c) => c.toPos >= opts.from!);
      if (startIdx < 0) startIdx = cps.length;
    }
    let endIdx = cps.length - 1;
    if (opts.to !== undefined) {
      const i = cps.findIndex((c) => c.toPos >= opts.to!);
      if (i >= 0) endIdx = i;
    }
    for (let ci = startIdx; ci <= endIdx; ci++) {
      const c = cps[ci]!;
      eventsChecked += await checkRange(query, db, c.fromPos, c.toPos, c.prevHead, pageSize, report, c);
    }

    // 5. After the last checkpoint: the store's events must be the stream's.
    const checkTail = opts.to === undefined || opts.to > lastCheckpointPos;
    if (checkTail) {
      const prevHead = cps.length ? cps[cps.length - 1]!.head : ZERO_HEX;
      const tailHigh = Math.max(lastStoredPos, lastCheckpointPos);
      if (lastStoredPos > lastCheckpointPos) {
        eventsChecked += await checkRange(query, db, lastCheckpointPos + 1, tailHigh, prevHead, pageSize, report, undefined);
      }
      if (opts.streamTail) await checkStreamTail(query, db, cps[cps.length - 1], opts.streamTail, opts.untilStreamSeq, report);
    }
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
  }
  return { ok: problems.length === 0, problems, eventsChecked, checkpointsChecked: cps.length, lastCheckpointPos, lastStoredPos, keyIds };
}

/** Check positions from..to; with a checkpoint, also its head and Merkle root. Returns events checked. */
async function checkRange(query: QueryFn, db: string, from: number, to: number, prevHead: string, pageSize: number, report: (p: Problem) => void, cp: Checkpoint | undefined): Promise<number> {
  const name = cp ? `checkpoint ${cp.fromPos}-${cp.toPos}` : `events after the last checkpoint`;
  let head: Buffer = Buffer.from(prevHead, "hex");
  const leaves: Buffer[] = [];
  let broken = false;
  let checked = 0;
  let lastId = "";
  const cols = ["chain_pos", "chain_index", "chain_hash", "event_bytes", "toUnixTimestamp64Micro(time) AS time_us", ...COMPARED].join(", ");
  for (let a = from; a <= to; a += pageSize) {
    const b = Math.min(to, a + pageSize - 1);
    const rows = await query(`SELECT ${cols} FROM ${db}.events FINAL WHERE chain_pos BETWEEN ${a} AND ${b} ORDER BY chain_pos, event_id`);
    const byPos = new Map<number, Record<string, unknown>[]>();
    for (const r of rows) {
      const p = Number(r.chain_pos);
      let g = byPos.get(p);
      if (!g) byPos.set(p, (g = []));
      g.push(r);
    }
    for (let p = a; p <= b; p++) {
      const group = byPos.get(p);
      if (broken) continue;
      if (!group) {
        const next = rows.find((r) => Number(r.chain_pos) > p);
        report({ pos: p, what: `no event at chain position ${p} (${name}): deleted or never written; the event before it is ${lastId || "(none)"}${next ? `, the one after it ${next.event_id}` : ""}` });
        broken = true;
        continue;
      }
      const primaries = group.filter((r) => r.event_bytes !== "");
      if (primaries.length !== 1) {
        report({ pos: p, eventId: String((primaries[1] ?? group[0])!.event_id), what: primaries.length === 0 ? `chain position ${p} has rows (${group.map((r) => r.event_id).join(", ")}) but no event bytes` : `${primaries.length} events claim chain position ${p}: ${primaries.map((r) => r.event_id).join(", ")} (one is forged)` });
        broken = true;
        continue;
      }
      const prim = primaries[0]!;
      const id = String(prim.event_id);
      const seq = Number(prim.stream_seq);
      const index = Number(prim.chain_index);
      const bytes = Buffer.from(String(prim.event_bytes), "base64");
      const leaf = eventLeafHash({ pos: p, streamSeq: seq, index }, bytes);
      head = chainNext(head, leaf);
      leaves.push(leaf);
      checked++;
      if (head.toString("hex") !== prim.chain_hash) {
        report({ pos: p, eventId: id, what: `event ${id} at chain position ${p}: the recomputed chain hash does not match the stored one (its bytes, position or order were changed, or an event before it was removed)` });
        broken = true;
        continue;
      }
      let derived: EventRow[];
      try {
        derived = deriveRows(bytes, seq, index, Number(prim.time_us));
      } catch (e) {
        report({ pos: p, eventId: id, what: `event ${id} at chain position ${p}: its stored bytes do not decode: ${(e as Error).message}` });
        continue;
      }
      const mismatch = compareRows(derived, group, index === UNDECODABLE_INDEX);
      if (mismatch) report({ pos: p, eventId: id, what: `event ${id} at chain position ${p}: ${mismatch}` });
      lastId = id;
    }
  }
  if (cp && !broken) {
    const head_hex = head.toString("hex");
    if (head_hex !== cp.head) report({ pos: cp.toPos, what: `${name}: the chain head recomputed from the store differs from the signed head` });
    const root = merkleRoot(leaves).toString("hex");
    if (root !== cp.merkleRoot) report({ pos: cp.fromPos, what: `${name}: the Merkle root over the stored events differs from the signed root` });
  }
  return checked;
}

/** First difference between the rows derived from the bytes and the stored rows. */
function compareRows(derived: EventRow[], stored: Record<string, unknown>[], undecodable: boolean): string | undefined {
  const byId = new Map(stored.map((r) => [String(r.event_id), r]));
  for (const d of derived) {
    const s = byId.get(d.event_id);
    if (!s) return `row ${d.event_id} (type ${d.type}) is missing from the store`;
    byId.delete(d.event_id);
    for (const col of COMPARED) {
      if (undecodable && col === "time") continue;
      const want = canon(d[col as keyof EventRow]);
      const got = canon(s[col]);
      if (want !== got) return `column ${col} of row ${d.event_id} is ${short(got)} in the store but ${short(want)} in the signed event bytes`;
    }
  }
  for (const extra of byId.keys()) return `row ${extra} claims this event's chain position but is not derived from its bytes (forged)`;
  return undefined;
}

/** Events in JetStream after the last checkpoint must be in the store at their stream position. */
async function checkStreamTail(
  query: QueryFn,
  db: string,
  last: Checkpoint | undefined,
  tail: (after: number) => AsyncIterable<StreamEvent>,
  untilSeq: number | undefined,
  report: (p: Problem) => void,
): Promise<void> {
  const afterSeq = last ? last.toStreamSeq : 0;
  const lastPos = last ? last.toPos : 0;
  const until = untilSeq === undefined ? "" : ` AND stream_seq <= ${Math.trunc(untilSeq)}`;
  const storedRows = await query(`SELECT stream_seq, chain_index, event_id, event_bytes, chain_pos FROM ${db}.events FINAL WHERE event_bytes != '' AND stream_seq >= ${afterSeq}${until}`);
  const stored = new Map(storedRows.map((r) => [`${r.stream_seq}:${r.chain_index}`, r]));
  for await (const ev of tail(afterSeq)) {
    if (untilSeq !== undefined && ev.streamSeq > untilSeq) break;
    const key = `${ev.streamSeq}:${ev.index}`;
    const s = stored.get(key);
    if (s) {
      stored.delete(key);
      if (Number(s.chain_pos) <= lastPos) continue; // checked against the checkpoint already
      if (s.event_bytes !== Buffer.from(ev.bytes).toString("base64")) {
        report({ pos: Number(s.chain_pos), eventId: String(s.event_id), what: `event ${s.event_id} at chain position ${s.chain_pos} differs from the JetStream message ${ev.streamSeq} it claims to come from` });
      }
      continue;
    }
    // Not stored at its position: fine only when it repeats an event chained earlier (a publisher retry).
    const earlier = ev.eventId ? await query(`SELECT chain_pos FROM ${db}.events WHERE event_id = '${ev.eventId.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}' AND event_bytes != '' LIMIT 1`) : [];
    if (earlier.length === 0) {
      report({ pos: 0, eventId: ev.eventId, what: `event ${ev.eventId || "(undecodable)"} (JetStream message ${ev.streamSeq}, index ${ev.index}) is in the audit stream but not in the store: removed, or not written yet (is the audit service running and caught up?)` });
    }
  }
  for (const s of stored.values()) {
    if (Number(s.chain_pos) <= lastPos) continue;
    report({ pos: Number(s.chain_pos), eventId: String(s.event_id), what: `event ${s.event_id} at chain position ${s.chain_pos} has no JetStream message (stream ${s.stream_seq}, index ${s.chain_index}): forged` });
  }
}

