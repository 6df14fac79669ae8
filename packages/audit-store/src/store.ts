// The audit store: idempotent writes of bus events and read-only queries, over
// embedded chDB or a ClickHouse server.
import type { AuditEvent } from "@gatehouse/proto";
import type { Engine } from "./engine.js";
import { openChdbEngine } from "./chdb-engine.js";
import { openServerEngine, redactUrl } from "./server-engine.js";
import { checkReadOnlySql, readOnlyStatement, ReadOnlyQueryError } from "./readonly.js";
import { EVENT_COLUMNS, eventRows, formatMicros, rowValuesJson, type EventRow } from "./rows.js";
import { schemaStatements } from "./schema.js";
import { RowBinaryBuffer, type RowSink } from "./row-binary.js";

export interface AuditStoreOptions {
  /** Embedded ClickHouse directory (used when clickhouseUrl is empty). */
  chdbPath?: string;
  /** ClickHouse server, e.g. http://default:password@127.0.0.1:8123. */
  clickhouseUrl?: string;
  /** Database (default "gatehouse"). */
  database?: string;
}

export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
  truncated: boolean;
}

export interface AuditStore {
  kind: "chdb" | "clickhouse";
  database: string;
  /** Write events (idempotent on event id); resolves with the number of rows written. */
  insertEvents(events: Array<{ event: AuditEvent; streamSeq: number }>): Promise<number>;
  /** Write prepared rows (e.g. an undecodable message). */
  insertRows(rows: EventRow[]): Promise<number>;
  /** A buffer to encode rows into, in the format this store's engine inserts fastest. */
  newRowBuffer(expectedRows?: number): RowSink;
  /** Write rows encoded by a buffer from newRowBuffer(); resolves with the number of rows. */
  insertRowBuffer(rows: RowSink): Promise<number>;
  /** One read-only statement; at most maxRows rows (default 1000). */
  /** Read-only query; `params` bind `{name:Type}` placeholders in `sql`. */
  query(sql: string, maxRows?: number, params?: Record<string, string>): Promise<QueryResult>;
  /** Distinct events (exact, FINAL). */
  countEvents(): Promise<number>;
  /** Write signed checkpoints to the checkpoints table (idempotent on fromPos). */
  insertCheckpoints(cps: CheckpointRecord[]): Promise<void>;
  /** Highest checkpoint fromPos stored (0 when none). */
  maxCheckpointFrom(): Promise<number>;
  /** Write recording chunks to the recordings table (one row per chunk, docs/recordings.md). */
  insertRecordingChunks(chunks: RecordingChunkRow[]): Promise<void>;
  /**
   * The service's own queries (no read-only gate, no row limit): the writer's
   * resume state. Not reachable through the Query API.
   */
  internalQuery(sql: string): Promise<Record<string, unknown>[]>;
  /** Run a statement with full rights (maintenance and tamper tests only; not reachable through the Query API). */
  adminExec(sql: string): Promise<void>;
  close(): Promise<void>;
}

/** A signed checkpoint as stored (the fields of @gatehouse/audit-integrity's Checkpoint). */
export interface CheckpointRecord {
  fromPos: number;
  toPos: number;
  fromStreamSeq: number;
  toStreamSeq: number;
  prevHead: string;
  head: string;
  merkleRoot: string;
  time: string;
  keyId: string;
  publicKey: string;
  signature: string;
}

/** One JetStream chunk of a session recording, as stored in `recordings`. */
export interface RecordingChunkRow {
  sessionId: string;
  seq: number;
  kind: string;
  /** Unix microseconds (the chunk's JetStream timestamp). */
  timeMicros: number;
  streamSeq: number;
  data: string;
  last: boolean;
  bytes: number;
}

const RECORDING_COLUMNS = ["session_id", "seq", "kind", "time", "stream_seq", "data", "last", "bytes"] as const;

const CHECKPOINT_COLUMNS = ["from_pos", "to_pos", "from_stream_seq", "to_stream_seq", "prev_head", "head", "merkle_root", "time", "key_id", "public_key", "signature"] as const;

export const DEFAULT_MAX_ROWS = 1000;
export const MAX_ROWS_LIMIT = 100_000;

export async function openAuditStore(opts: AuditStoreOptions): Promise<AuditStore> {
  const database = opts.database ?? "gatehouse";
  const statements = schemaStatements(database);
  let engine: Engine;
  if (opts.clickhouseUrl) {
    engine = await openServerEngine(opts.clickhouseUrl);
  } else if (opts.chdbPath) {
    engine = openChdbEngine(opts.chdbPath);
  } else {
    throw new Error("no audit store configured: set audit.clickhouseUrl (ClickHouse server) or audit.chdbPath (embedded chDB)");
  }
  const where = opts.clickhouseUrl ? `ClickHouse at ${redactUrl(opts.clickhouseUrl)}` : `embedded ClickHouse at ${opts.chdbPath}`;
  try {
    for (const s of statements) await engine.exec(s);
    await engine.useDatabase(database);
  } catch (e) {
    await engine.close().catch(() => undefined);
    throw new Error(`cannot create the audit schema in ${where}: ${(e as Error).message}`);
  }
  return new Store(engine, database);
}

class Store implements AuditStore {
  readonly kind: "chdb" | "clickhouse";
  private readonly table: string;

  constructor(
    private readonly engine: Engine,
    readonly database: string,
  ) {
    this.kind = engine.kind;
    this.table = `${database}.events`;
  }

  async insertEvents(events: Array<{ event: AuditEvent; streamSeq: number }>): Promise<number> {
    return this.insertRows(events.flatMap(({ event, streamSeq }) => eventRows(event, streamSeq)));
  }

  async insertRows(rows: EventRow[]): Promise<number> {
    if (rows.length === 0) return 0;
    const b = this.newRowBuffer(rows.length);
    for (const r of rows) b.add(r);
    return this.insertRowBuffer(b);
  }

  newRowBuffer(expectedRows?: number): RowSink {
    return this.engine.insertRowBinary ? new RowBinaryBuffer(expectedRows) : new RowBuffer(expectedRows);
  }

  async insertRowBuffer(rows: RowSink): Promise<number> {
    if (rows.rows === 0) return 0;
    if (rows instanceof RowBinaryBuffer) {
      if (!this.engine.insertRowBinary) throw new Error("this engine takes no RowBinary: use newRowBuffer()");
      await this.engine.insertRowBinary(this.table, EVENT_COLUMNS, rows.bytes());
    } else await this.engine.insertCompactRows(this.table, EVENT_COLUMNS, rows.bytes());
    return rows.rows;
  }

  async query(sql: string, maxRows = DEFAULT_MAX_ROWS, params?: Record<string, string>): Promise<QueryResult> {
    if (!Number.isInteger(maxRows) || maxRows < 1 || maxRows > MAX_ROWS_LIMIT) {
      throw new ReadOnlyQueryError(`max rows must be an integer from 1 to ${MAX_ROWS_LIMIT}, got ${maxRows}`);
    }
    const body = checkReadOnlySql(sql);
    let text: string;
    try {
      text = await this.engine.selectCompact(readOnlyStatement(body, maxRows), params);
    } catch (e) {
      const msg = (e as Error).message;
      if (/READONLY|readonly mode/i.test(msg)) {
        throw new ReadOnlyQueryError(`the audit store refused the query in read-only mode: ${msg} (queries may only read, and may not change settings)`);
      }
      throw new Error(`audit query failed: ${msg}`);
    }
    return parseCompact(text, maxRows);
  }

  async countEvents(): Promise<number> {
    const text = await this.engine.selectCompact(`SELECT count() AS n FROM ${this.table} FINAL`);
    return Number(parseCompact(text, 1).rows[0]?.n ?? 0);
  }

  async insertCheckpoints(cps: CheckpointRecord[]): Promise<void> {
    if (cps.length === 0) return;
    const body = cps
      .map((c) => JSON.stringify([c.fromPos, c.toPos, c.fromStreamSeq, c.toStreamSeq, c.prevHead, c.head, c.merkleRoot, c.time, c.keyId, c.publicKey, c.signature]))
      .join("\n");
    await this.engine.insertCompactRows(`${this.database}.checkpoints`, CHECKPOINT_COLUMNS, body + "\n");
  }

  async maxCheckpointFrom(): Promise<number> {
    const rows = await this.internalQuery(`SELECT max(from_pos) AS m FROM ${this.database}.checkpoints`);
    return Number(rows[0]?.m ?? 0);
  }

  async insertRecordingChunks(chunks: RecordingChunkRow[]): Promise<void> {
    if (chunks.length === 0) return;
    let body = "";
    for (const c of chunks) body += JSON.stringify([c.sessionId, c.seq, c.kind, formatMicros(c.timeMicros), c.streamSeq, c.data, c.last, c.bytes]) + "\n";
    await this.engine.insertCompactRows(`${this.database}.recordings`, RECORDING_COLUMNS, body);
  }

  async internalQuery(sql: string): Promise<Record<string, unknown>[]> {
    return parseCompact(await this.engine.selectCompact(sql), Number.MAX_SAFE_INTEGER).rows;
  }

  adminExec(sql: string): Promise<void> {
    return this.engine.exec(sql);
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}

/**
 * Event rows as JSONCompactEachRow lines, written straight into one growing
 * Buffer as they are built: no row objects or multi-megabyte strings stay
 * alive until the insert (the writer inserts thousands of rows at a time).
 */
export class RowBuffer implements RowSink {
  private buf: Buffer;
  private n = 0;
  rows = 0;

  constructor(expectedRows = 1024) {
    this.buf = Buffer.allocUnsafe(Math.max(64 * 1024, expectedRows * 768));
  }

  add(r: EventRow): void {
    const line = rowValuesJson(r);
    const max = line.length * 3 + 1;
    if (this.n + max > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.n + max));
      this.buf.copy(next, 0, 0, this.n);
      this.buf = next;
    }
    this.n += this.buf.write(line, this.n, "utf8");
    this.buf[this.n++] = 0x0a;
    this.rows++;
  }

  bytes(): Buffer {
    return this.buf.subarray(0, this.n);
  }
}

export type { RowSink } from "./row-binary.js";


/** JSONCompactEachRowWithNames -> columns and row objects. */
function parseCompact(text: string, maxRows: number): QueryResult {
  const lines = text.split("\n").filter((l) => l !== "");
  if (lines.length === 0) return { columns: [], rows: [], truncated: false };
  const columns = JSON.parse(lines[0]!) as string[];
  const rows: Record<string, unknown>[] = [];
  for (const line of lines.slice(1, maxRows + 1)) {
    const values = JSON.parse(line) as unknown[];
    const row: Record<string, unknown> = {};
    columns.forEach((c, i) => (row[c] = values[i]));
    rows.push(row);
  }
  return { columns, rows, truncated: lines.length - 1 > maxRows };
}
