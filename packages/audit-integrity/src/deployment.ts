// Verification of a running deployment's trail: what `gatehouse audit verify`
// and the evidence pack both run. Waits (bounded) for the audit writer to catch
// up, fixes the stream sequence the tail check stops at, reads the signed
// checkpoints from JetStream, and runs verifyTrail over the store.
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { keyIdOf, parsePublicKey } from "./signer.js";
import { readCheckpoints } from "./checkpoint-stream.js";
import { streamTail } from "./stream-tail.js";
import { verifyTrail, type QueryFn, type VerifyReport } from "./verify.js";
import type { Checkpoint } from "./checkpoint.js";

export interface DeploymentVerifyOptions {
  nc: NatsConnection;
  /** Read-only SQL on the audit store (the audit service's Query). */
  query: QueryFn;
  database: string;
  /** JetStream audit stream (config.audit.stream) and checkpoint stream. */
  stream: string;
  checkpointStream: string;
  /** Pinned keys (pinnedKeys()); without them the keys published with the checkpoints. */
  trustedKeys?: Map<string, string>;
  /** Chain position or ISO date-time (widened to whole checkpoints). */
  from?: number | string;
  to?: number | string;
  /** Chain positions per page the transport carries. */
  pageSize: number;
  /** Messages the audit writer has not stored yet (-1: unknown); polled until 0. */
  pending?: () => Promise<number>;
  /** Longest wait for the writer to catch up (default 30 s). */
  catchUpSeconds?: number;
}

export interface DeploymentVerifyResult {
  report: VerifyReport;
  /** Messages still unwritten when verification began (0: caught up, -1: unknown). */
  pendingAtStart: number;
  /** Last audit-stream sequence the tail check covers. */
  untilStreamSeq: number;
  checkpoints: Checkpoint[];
}

/** --public-key values (PEM, base64 SPKI, or a file) as key id -> base64 SPKI; undefined when none. */
export function pinnedKeys(keys: string[]): Map<string, string> | undefined {
  if (keys.length === 0) return undefined;
  const m = new Map<string, string>();
  for (const k of keys) {
    const der = parsePublicKey(k).export({ type: "spki", format: "der" });
    m.set(keyIdOf(der), der.toString("base64"));
  }
  return m;
}

/** A --from/--to value: a chain position (integer) or an ISO date-time. */
export function parsePosition(v: string | undefined, name: string): number | string | undefined {
  if (v === undefined) return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  if (!Number.isNaN(Date.parse(v))) return v;
  throw new Error(`${name} must be a chain position (an integer) or an ISO date-time, got "${v}"`);
}

async function toPos(q: QueryFn, db: string, v: number | string | undefined, edge: "from" | "to"): Promise<number | undefined> {
  if (v === undefined || typeof v === "number") return v;
  // Re-formatted from a parsed Date, so nothing of the caller's text reaches the SQL.
  const t = new Date(v).toISOString().replace("T", " ").replace("Z", "");
  const agg = edge === "from" ? "min" : "max";
  const op = edge === "from" ? ">=" : "<=";
  const [r] = await q(`SELECT ${agg}(chain_pos) AS p FROM ${db}.events WHERE chain_pos > 0 AND time ${op} toDateTime64('${t}', 6, 'UTC')`);
  return Number(r?.p ?? 0);
}

/** Wait (bounded) until the writer has stored everything JetStream holds, so a lagging writer is not reported as a cut tail. */
async function waitCaughtUp(pending: () => Promise<number>, seconds: number): Promise<number> {
  const deadline = Date.now() + seconds * 1000;
  let n = -1;
  while (Date.now() < deadline) {
    try {
      n = await pending();
      if (n === 0) return 0;
    } catch {
      return -1;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return n;
}

export async function verifyDeployment(opts: DeploymentVerifyOptions): Promise<DeploymentVerifyResult> {
  const pendingAtStart = opts.pending ? await waitCaughtUp(opts.pending, opts.catchUpSeconds ?? 30) : -1;
  // Everything up to here was written when the writer caught up: the tail check
  // stops at this sequence, so events arriving while verify runs are not "missing".
  const untilStreamSeq = (await (await jetstreamManager(opts.nc)).streams.info(opts.stream)).state.last_seq;
  const checkpoints = await readCheckpoints(opts.nc, opts.checkpointStream);
  const report = await verifyTrail(opts.query, {
    database: opts.database,
    checkpoints,
    trustedKeys: opts.trustedKeys,
    from: await toPos(opts.query, opts.database, opts.from, "from"),
    to: await toPos(opts.query, opts.database, opts.to, "to"),
    streamTail: streamTail(opts.nc, opts.stream, untilStreamSeq),
    untilStreamSeq,
    rereadCheckpoints: () => readCheckpoints(opts.nc, opts.checkpointStream),
    pageSize: opts.pageSize,
  });
  return { report, pendingAtStart, untilStreamSeq, checkpoints };
}
