// Result rewriting for masking: DataRow frames are rebuilt with masked values and
// recomputed lengths, one frame at a time or as the run of rows one upstream read
// holds (memory stays bounded by the widest row and the read).
// RowDescription is relayed unchanged: every masked value is produced in the type
// and format the RowDescription announces (text as is; binary re-encoded for the
// types below; NULL where no masked value can be represented), so text and binary
// clients decode it as before. COPY TO STDOUT rows (text/csv) are scanned with the
// recognizers; binary COPY under a masking plan is refused.
import type { MaskingRuntime, MaskStrategy } from "@gatehouse/plugin-sdk";
import type { Catalog } from "./masking-catalog.js";
import { matchRule, textStrategy, type ColumnOrigin, type PlanRule, type ResultPlan } from "./masking-plan.js";
import { errorResponse, ProtocolError, T } from "./protocol.js";
import type { RecordedMask } from "./recording.js";

/** Type OIDs (pg_type.oid) the gateway encodes and decodes itself. */
export const OID = {
  bool: 16,
  bytea: 17,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  json: 114,
  xml: 142,
  float4: 700,
  float8: 701,
  unknown: 705,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

/** Types whose binary form is the UTF-8 text itself. */
const TEXTUAL = new Set<number>([OID.name, OID.text, OID.xml, OID.unknown, OID.bpchar, OID.varchar, OID.json]);

export function isTextual(typeOid: number): boolean {
  return TEXTUAL.has(typeOid) || typeOid === OID.jsonb;
}

export interface Field {
  name: string;
  tableOid: number;
  attnum: number;
  typeOid: number;
  format: number;
}

export function parseRowDescription(f: Buffer): Field[] {
  if (f.length < 7) throw new ProtocolError("RowDescription too short");
  const n = f.readInt16BE(5);
  const out: Field[] = [];
  let pos = 7;
  for (let i = 0; i < n; i++) {
    const end = f.indexOf(0, pos);
    if (end < 0 || end + 19 > f.length) throw new ProtocolError("RowDescription is truncated");
    const name = f.toString("utf8", pos, end);
    pos = end + 1;
    out.push({ name, tableOid: f.readUInt32BE(pos), attnum: f.readInt16BE(pos + 4), typeOid: f.readUInt32BE(pos + 6), format: f.readInt16BE(pos + 16) });
    pos += 18;
  }
  return out;
}

/** How one column of the current result is treated. */
interface ColumnMask {
  index: number;
  /** "customers.email", or the output name when the table is unknown. */
  label: string;
  rule: PlanRule | undefined;
  /** Scan the text (scan rule, or a computed / unresolved text column). */
  scan: boolean;
  typeOid: number;
  binary: boolean;
  /** The cell is the value's UTF-8 text in either format (text types other than JSON). */
  utf8: boolean;
  /** Evidence counter of a whole-value rule (incremented per masked value). */
  counter?: MaskCount;
  /** The masked cell when it does not depend on the value (redact, null): computed once. */
  constant?: Buffer | null;
  /** A hash rule on a text column whose tokens the runtime computes in batches (deferHashToken). */
  deferHash?: boolean;
  /** Recent masked cells by value (hash, partial...): repeated values cost one lookup. */
  memo?: Map<string, Buffer | null> | null;
  memoHits?: number;
}

const MEMO_MAX = 4096;
/** Size of the slabs rebuilt rows are written to. */
const SLAB_BYTES = 64 * 1024;

export interface MaskCount {
  column: string;
  position: number;
  entity: string;
  strategy: string;
  count: number;
}

export interface MaskerInit {
  plan: ResultPlan;
  runtime: MaskingRuntime;
  catalog: Catalog | undefined;
  /** Connection tags (column classifications). */
  tags: Record<string, string>;
  /** Called when a result names a table the catalog does not know (refresh it for later commands). */
  onUnknownTable?: () => void;
}

/** What the session learned about a COPY TO STDOUT before running it. */
export type CopySpec =
  | { mode: "scan" }
  | { mode: "refuse"; reason: string }
  | { mode: "columns"; fields: Field[]; csv: boolean; header: boolean };

/** Rewrites the result frames of one command (all statements of a simple Query, or one Execute). */
export class ResultMasker {
  private cols: (ColumnMask | undefined)[] | undefined;
  private masked = 0;
  /** Index of the last column with a mask: cells after it are copied without being parsed. */
  private lastCol = -1;
  private offs = new Int32Array(64);
  /** Masked cells of the row being rebuilt (undefined: unchanged; null: SQL NULL). */
  private readonly outs: (Buffer | null | undefined)[] = [];
  /** Cells planRow() looked at (outs[0..planned) are set for writeRow). */
  private planned = 0;
  private copy: "none" | "text" | "columns" | "refused" = "none";
  private readonly copies: CopySpec[] = [];
  private copyCols: { cols: (ColumnMask | undefined)[]; csv: boolean; header: boolean } | undefined;
  private copyRefusal = "";
  private readonly counts = new Map<string, MaskCount>();
  /** Errors the client saw from the gateway instead of results (for the result event). */
  refusal: string | undefined;

  /**
   * Rebuilt DataRows are carved one after another out of one slab, so the session
   * sends a run of them as one contiguous buffer (one socket write instead of one
   * per row). A slab is never written again once handed out; it is freed when the
   * last row sent from it is.
   */
  private slab: Buffer = Buffer.alloc(0);
  private slabUsed = 0;

  /**
   * Stands in outs[] for a hash token the runtime writes later (deferHashToken):
   * the row is built with a hole of the token's length. Undefined without batching.
   */
  private readonly hole: Buffer | undefined;

  constructor(private readonly init: MaskerInit) {
    const rt = init.runtime;
    if (rt.deferHashToken && rt.settle && rt.hashTokenBytes) this.hole = Buffer.alloc(rt.hashTokenBytes);
  }

  private alloc(n: number): Buffer {
    if (this.slab.length - this.slabUsed < n) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, n));
      this.slabUsed = 0;
    }
    const b = this.slab.subarray(this.slabUsed, this.slabUsed + n);
    this.slabUsed += n;
    return b;
  }

  /** A RowDescription starts a result set (simple Query, or the gateway's own Describe). */
  setFields(f: Buffer): void {
    const { cols, masked } = this.columnsFor(parseRowDescription(f));
    this.cols = cols;
    this.masked = masked;
    this.lastCol = cols.findLastIndex((c) => c !== undefined);
  }

  /** How each column of a result is treated under the plan. */
  columnsFor(fields: Field[]): { cols: (ColumnMask | undefined)[]; masked: number } {
    const { plan, catalog, tags } = this.init;
    const cols: (ColumnMask | undefined)[] = [];
    let masked = 0;
    let unknown = false;
    fields.forEach((fd, index) => {
      const origin: ColumnOrigin = { name: fd.name };
      let resolved = false;
      if (fd.tableOid !== 0) {
        const c = catalog?.column(fd.tableOid, fd.attnum);
        if (c) {
          origin.schema = c.schema;
          origin.table = c.table;
          origin.column = c.column;
          resolved = true;
        } else unknown = true;
      }
      const rule = matchRule(plan, origin, tags);
      const textual = isTextual(fd.typeOid);
      // Derived values (lower(email), email || '') and columns of tables the catalog
      // has not seen yet carry no origin: scan them rather than trust them.
      const scan = rule ? rule.scan && textual : textual && !resolved && plan.rules.length > 0;
      if (!rule && !scan) return void cols.push(undefined);
      if (rule && !rule.scan && rule.strategy.kind === "clear") return void cols.push(undefined);
      const utf8 = TEXTUAL.has(fd.typeOid) && fd.typeOid !== OID.json;
      cols.push({
        index,
        label: origin.table ? `${origin.table}.${origin.column}` : fd.name,
        rule,
        scan,
        typeOid: fd.typeOid,
        binary: fd.format === 1,
        utf8,
        deferHash: utf8 && !scan && rule?.strategy.kind === "hash" && this.hole !== undefined,
      });
      masked++;
    });
    if (unknown) this.init.onUnknownTable?.();
    return { cols, masked };
  }

  /** What the gateway learned about the next COPY TO STDOUT of this command (in statement order). */
  expectCopy(spec: CopySpec): void {
    this.copies.push(spec);
  }

  /** NoData / a statement without rows: no result columns. */
  clearFields(): void {
    this.cols = [];
    this.masked = 0;
    this.lastCol = -1;
  }

  /**
   * The frame to send instead of `f` (the same buffer when nothing changes,
   * undefined to drop it). Only result frames are touched.
   */
  rewrite(f: Buffer): Buffer | undefined {
    switch (f[0]) {
      case T.DataRow:
        return this.dataRow(f);
      case T.CopyOutResponse: {
        const spec = this.copies.shift() ?? { mode: "scan" };
        // Overall format byte: 0 text (text or csv), 1 binary.
        if (f[5] === 1) {
          this.copy = "refused";
          this.copyRefusal = "binary COPY TO cannot be masked, and a masking plan applies to this session";
        } else if (spec.mode === "refuse") {
          this.copy = "refused";
          this.copyRefusal = spec.reason;
        } else if (spec.mode === "columns") {
          const { cols, masked } = this.columnsFor(spec.fields);
          this.copyCols = masked > 0 ? { cols, csv: spec.csv, header: spec.header } : undefined;
          this.copy = masked > 0 ? "columns" : "none";
        } else this.copy = "text";
        return f;
      }
      case T.CopyData:
        if (this.copy === "text") return this.copyRow(f);
        if (this.copy === "columns") return this.copyColumnsRow(f);
        if (this.copy === "refused") return undefined;
        return f;
      case T.CopyDone:
        return this.copy === "refused" ? undefined : f;
      case T.CommandComplete:
        if (this.copy === "refused") {
          this.copy = "none";
          this.refusal = this.copyRefusal;
          return errorResponse({ severity: "ERROR", code: "0A000", message: `gatehouse: ${this.copyRefusal}`, hint: "use SELECT, or COPY ... TO STDOUT WITH (FORMAT text) or (FORMAT csv) without DELIMITER/QUOTE/ESCAPE/NULL options" });
        }
        this.copy = "none";
        return f;
      case T.RowDescription:
        this.setFields(f);
        return f;
      default:
        return f;
    }
  }

  /**
   * How each column of the current result is masked, for the session recording
   * (undefined: sent as is). Enough for a replay to apply the same masking.
   */
  columnMasks(): (RecordedMask | undefined)[] | undefined {
    const cols = this.cols;
    if (!cols || this.masked === 0) return undefined;
    const { plan, runtime } = this.init;
    return cols.map((c) => {
      if (!c) return undefined;
      if (c.scan) {
        const text: Record<string, { strategy: MaskStrategy["kind"]; keep_last?: number }> = {};
        for (const [entity, st] of plan.text) text[entity] = strategyJson(st);
        text["*"] ??= { strategy: "redact" };
        const own = c.rule && c.rule.strategy.kind !== "clear" ? strategyJson(c.rule.strategy) : undefined;
        const m: RecordedMask = { scan: true, ...own, text };
        if (own?.strategy === "hash" || Object.values(text).some((x) => x.strategy === "hash")) m.key_id = runtime.keyId;
        return m;
      }
      const r = c.rule!;
      const m: RecordedMask = { ...strategyJson(r.strategy), entity: r.entity };
      if (r.strategy.kind === "hash") m.key_id = runtime.keyId;
      return m;
    });
  }

  /** Per column and entity: how many values were masked. */
  summary(): MaskCount[] {
    return [...this.counts.values()].filter((c) => c.count > 0);
  }

  private counterFor(column: string, position: number, entity: string, strategy: string): MaskCount {
    const key = `${position}\0${column}\0${entity}\0${strategy}`;
    let c = this.counts.get(key);
    if (!c) this.counts.set(key, (c = { column, position, entity, strategy, count: 0 }));
    return c;
  }

  private count(column: string, position: number, entity: string, strategy: string, n = 1): void {
    const key = `${position}\0${column}\0${entity}\0${strategy}`;
    const c = this.counts.get(key);
    if (c) c.count += n;
    else this.counts.set(key, { column, position, entity, strategy, count: n });
  }

  private dataRow(f: Buffer): Buffer {
    const cols = this.cols;
    if (cols === undefined) {
      // Rows whose columns the gateway never saw described cannot be attributed: nothing leaves.
      return this.nullRow(f);
    }
    if (this.masked === 0) return f;
    const total = this.planRow(f, 0, f.length);
    if (total < 0) return f;
    const out = this.alloc(total);
    this.writeRow(f, 0, f.length, out, 0, total);
    return out;
  }

  /** Whether rewriteRows() can take this result's DataRows (its columns are known). */
  get takesRowRuns(): boolean {
    return this.cols !== undefined;
  }

  /**
   * The DataRows src[start..end) (`count` of them, back to back), masked into the
   * slab; `emit` gets the rewritten rows as few contiguous buffers. The bulk form
   * of rewrite(): no buffer per row.
   */
  rewriteRows(src: Buffer, start: number, end: number, emit: (rows: Buffer) => void): void {
    if (this.masked === 0) return emit(src.subarray(start, end));
    let piece = this.slabUsed;
    for (let pos = start; pos < end; ) {
      const rowEnd = pos + 1 + int32(src, pos + 1);
      const planned = this.planRow(src, pos, rowEnd);
      const total = planned < 0 ? rowEnd - pos : planned;
      if (this.slab.length - this.slabUsed < total) {
        if (this.slabUsed > piece) emit(this.slab.subarray(piece, this.slabUsed));
        this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, total));
        this.slabUsed = piece = 0;
      }
      if (planned < 0) copyBytes(src, pos, rowEnd, this.slab, this.slabUsed);
      else this.writeRow(src, pos, rowEnd, this.slab, this.slabUsed, total);
      this.slabUsed += total;
      pos = rowEnd;
    }
    if (this.slabUsed > piece) emit(this.slab.subarray(piece, this.slabUsed));
  }

  /**
   * Masks the cells of the DataRow f[base..end) into this.outs (offsets in this.offs);
   * returns the rewritten row's length, or -1 when no cell changes.
   */
  private planRow(f: Buffer, base: number, end: number): number {
    const cols = this.cols!;
    if (end - base < 7) throw new ProtocolError("DataRow too short");
    const n = f.readInt16BE(base + 5);
    // Offsets of each cell's length word; unmasked cells are copied as whole spans.
    if (this.offs.length < n + 1) this.offs = new Int32Array(n + 1);
    const offs = this.offs;
    let pos = base + 7;
    const stop = Math.min(n, this.lastCol + 1);
    for (let i = 0; i < stop; i++) {
      if (pos + 4 > end) throw new ProtocolError("DataRow is truncated");
      offs[i] = pos;
      const len = int32(f, pos);
      if (len < -1) throw new ProtocolError("invalid value length in DataRow");
      pos += 4 + (len > 0 ? len : 0);
    }
    if (stop === n ? pos !== end : pos > end) throw new ProtocolError("DataRow length does not match its values");
    offs[stop] = pos;
    const outs = this.outs;
    let total = end - base;
    let changed = false;
    const last = Math.min(stop, cols.length);
    for (let i = 0; i < last; i++) {
      const c = cols[i];
      if (c === undefined) continue;
      const len = int32(f, offs[i]!);
      if (len === -1) continue;
      let v: Buffer | null;
      if (c.constant !== undefined && !c.scan) {
        // The masked form does not depend on the value (redact...): no view of the cell needed.
        (c.counter ??= this.counterFor(c.label, c.index, c.rule!.entity, c.rule!.strategy.kind)).count++;
        v = c.constant;
      } else if (c.deferHash && c.memo === null) {
        // Mostly distinct values (the memo gave up): the token is computed in a batch.
        (c.counter ??= this.counterFor(c.label, c.index, c.rule!.entity, "hash")).count++;
        v = this.hole!;
      } else {
        const raw = f.subarray(offs[i]! + 4, offs[i]! + 4 + len);
        v = this.maskCell(c, raw);
        if (v === raw) continue;
      }
      outs[i] = v;
      total += (v === null ? 0 : v.length) - len;
      changed = true;
    }
    this.planned = last;
    return changed ? total : -1;
  }

  /** The row planRow() planned, `total` bytes, to out[at..]; resets this.outs. */
  private writeRow(f: Buffer, base: number, end: number, out: Buffer, at: number, total: number): void {
    const outs = this.outs;
    const offs = this.offs;
    const cols = this.cols!;
    out[at] = T.DataRow;
    out.writeInt32BE(total - 1, at + 1);
    out[at + 5] = f[base + 5]!;
    out[at + 6] = f[base + 6]!;
    let o = at + 7;
    let from = base + 7;
    for (let i = 0; i < this.planned; i++) {
      const v = outs[i];
      if (v === undefined) continue;
      o = copyBytes(f, from, offs[i]!, out, o);
      if (v === null) {
        out[o] = out[o + 1] = out[o + 2] = out[o + 3] = 0xff;
        o += 4;
      } else {
        const len = v.length;
        out[o] = len >>> 24;
        out[o + 1] = len >>> 16;
        out[o + 2] = len >>> 8;
        out[o + 3] = len;
        if (v === this.hole) o = this.deferToken(cols[i]!, f, offs[i]!, out, o + 4);
        else o = copyBytes(v, 0, len, out, o + 4);
      }
      from = offs[i + 1]!;
      outs[i] = undefined;
    }
    copyBytes(f, from, end, out, o);
  }

  /** The hash token of the cell whose length word is at f[cell] goes to out[at..]; returns the end offset. */
  private deferToken(c: ColumnMask, f: Buffer, cell: number, out: Buffer, at: number): number {
    const rt = this.init.runtime;
    const from = cell + 4;
    const to = from + int32(f, cell);
    const n = this.hole!.length;
    if (!rt.deferHashToken!(f, from, to, c.rule!.entity, out, at)) {
      // Not ASCII, or too long for a batch: the same token, computed now.
      const raw = f.subarray(from, to);
      const t = rt.maskValueUtf8?.(raw, c.rule!.entity, c.rule!.strategy) ?? this.maskValueOf(c, decodeText(c.typeOid, raw, c.binary) ?? "");
      if (t === null || t.length !== n) throw new Error(`hash token of ${c.label} is not ${n} bytes`);
      copyBytes(t, 0, n, out, at);
    }
    return at + n;
  }

  private nullRow(f: Buffer): Buffer {
    const n = f.length >= 7 ? f.readInt16BE(5) : 0;
    const out = Buffer.allocUnsafe(7 + 4 * n);
    out[0] = T.DataRow;
    out.writeInt32BE(out.length - 1, 1);
    out.writeInt16BE(n, 5);
    for (let i = 0; i < n; i++) out.writeInt32BE(-1, 7 + 4 * i);
    if (n > 0) this.count("*", -1, "UNDESCRIBED", "null", n);
    return out;
  }

  /** The masked value of one cell (the same buffer when unchanged, null for SQL NULL). */
  private maskCell(c: ColumnMask, raw: Buffer): Buffer | null {
    const rt = this.init.runtime;
    if (c.scan) {
      const text = decodeText(c.typeOid, raw, c.binary);
      if (text === undefined) return raw;
      const plan = this.init.plan;
      const r = rt.maskText(text, (e) => (c.rule ? scanStrategy(c.rule, plan, e) : textStrategy(plan, e)));
      if (r.actions.length === 0) return raw;
      for (const a of r.actions) this.count(c.label, c.index, a.entity, a.strategy);
      return encodeText(c.typeOid, r.text, c.binary) ?? null;
    }
    const rule = c.rule!;
    const s = rule.strategy;
    (c.counter ??= this.counterFor(c.label, c.index, rule.entity, s.kind)).count++;
    if (s.kind === "null") return null;
    if (c.constant !== undefined) return c.constant;
    // Text columns: the runtime may mask the UTF-8 bytes without a decode and re-encode.
    // A hash first goes through the memo below (repeated values cost one lookup) and
    // takes this path once the memo has found the values mostly distinct.
    if (c.utf8 && rt.maskValueUtf8 && (s.kind !== "hash" || c.memo === null)) {
      const b = rt.maskValueUtf8(raw, rule.entity, s);
      if (b !== undefined) return b;
    }
    const text = decodeText(c.typeOid, raw, c.binary) ?? decodeOther(c.typeOid, raw, c.binary);
    if (c.memo === null) return this.maskValueOf(c, text);
    if (c.memo === undefined) {
      // First value: find out whether the masked form depends on the value at all.
      const a = this.maskValueOf(c, text);
      const b = this.maskValueOf(c, text + "\u0001");
      if (a === b || (a !== null && b !== null && a.equals(b))) return (c.constant = a);
      c.memo = new Map([[text, a]]);
      return a;
    }
    const hit = c.memo.get(text);
    if (hit !== undefined) {
      c.memoHits = (c.memoHits ?? 0) + 1;
      return hit;
    }
    const out = this.maskValueOf(c, text);
    if (c.memo.size >= MEMO_MAX) {
      // Mostly distinct values (ids, SSNs): remembering them costs more than it saves.
      if ((c.memoHits ?? 0) * 10 < MEMO_MAX) c.memo = null;
      else c.memo.clear();
      c.memoHits = 0;
      return out;
    }
    c.memo.set(text, out);
    return out;
  }

  private maskValueOf(c: ColumnMask, text: string): Buffer | null {
    const rt = this.init.runtime;
    const rule = c.rule!;
    const s = rule.strategy;
    let masked: string | null;
    if (isTextual(c.typeOid)) {
      masked = rt.maskValue(text, rule.entity, s);
      // JSON columns must stay valid JSON: the masked text becomes a JSON string.
      if (masked !== null && (c.typeOid === OID.json || c.typeOid === OID.jsonb)) masked = JSON.stringify(masked);
    } else masked = rt.replaceTyped(c.typeOid, rule.entity, text);
    if (masked === null) return null;
    return encodeTyped(c.typeOid, masked, c.binary);
  }

  /** One COPY row (text or csv format): masked column by column like a DataRow. */
  private copyColumnsRow(f: Buffer): Buffer {
    const cc = this.copyCols!;
    if (cc.header) {
      cc.header = false;
      return f;
    }
    let line = f.toString("utf8", 5);
    const nl = line.endsWith("\n") ? "\n" : "";
    if (nl) line = line.slice(0, -1);
    const cells = cc.csv ? splitCsv(line) : splitText(line);
    let out = "";
    let pos = 0;
    let changed = false;
    for (let i = 0; i < cells.length; i++) {
      const c = cc.cols[i];
      const cell = cells[i]!;
      if (!c || cell.value === null) continue;
      const raw = Buffer.from(cell.value, "utf8");
      const v = this.maskCell(c, raw);
      if (v === raw) continue;
      const text = v === null ? (cc.csv ? "" : "\\N") : cc.csv ? `"${v.toString("utf8").replace(/"/g, '""')}"` : escapeText(v.toString("utf8"));
      out += line.slice(pos, cell.start) + text;
      pos = cell.end;
      changed = true;
    }
    if (!changed) return f;
    const body = Buffer.from(out + line.slice(pos) + nl, "utf8");
    const o = Buffer.allocUnsafe(5 + body.length);
    o[0] = T.CopyData;
    o.writeInt32BE(4 + body.length, 1);
    body.copy(o, 5);
    return o;
  }

  private copyRow(f: Buffer): Buffer {
    const text = f.toString("utf8", 5);
    const plan = this.init.plan;
    const r = this.init.runtime.maskText(text, (e) => textStrategy(plan, e));
    if (r.actions.length === 0) return f;
    for (const a of r.actions) this.count("copy", -1, a.entity, a.strategy);
    const body = Buffer.from(r.text, "utf8");
    const out = Buffer.allocUnsafe(5 + body.length);
    out[0] = T.CopyData;
    out.writeInt32BE(4 + body.length, 1);
    body.copy(out, 5);
    return out;
  }
}

/**
 * src[from..to) to dst at `at`; returns the end offset. Cells are mostly a few
 * dozen bytes, where a plain loop beats Buffer.copy's per-call overhead.
 */
function copyBytes(src: Uint8Array, from: number, to: number, dst: Uint8Array, at: number): number {
  const n = to - from;
  if (n > 96) {
    dst.set(src.subarray(from, to), at);
    return at + n;
  }
  for (let i = 0; i < n; i++) dst[at + i] = src[from + i]!;
  return at + n;
}

/** Big-endian int32 at `at` (inline: readInt32BE's checks cost more than the read in this loop). */
function int32(b: Buffer, at: number): number {
  return (b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!;
}

function strategyJson(s: MaskStrategy): { strategy: MaskStrategy["kind"]; keep_last?: number } {
  return s.kind === "partial" ? { strategy: s.kind, keep_last: s.keepLast ?? 4 } : { strategy: s.kind };
}

/** A scan rule's own strategy applies to every entity it finds, unless it is "clear". */
function scanStrategy(rule: PlanRule, plan: ResultPlan, entity: string): MaskStrategy {
  return rule.strategy.kind === "clear" ? textStrategy(plan, entity) : rule.strategy;
}

/** Text of a textual value, undefined for other types. */
function decodeText(typeOid: number, raw: Buffer, binary: boolean): string | undefined {
  if (!isTextual(typeOid)) return undefined;
  if (binary && typeOid === OID.jsonb) return raw.toString("utf8", 1);
  return raw.toString("utf8");
}

/** Text form of a non-textual value (for hashing / type-preserving replacement). */
function decodeOther(typeOid: number, raw: Buffer, binary: boolean): string {
  if (!binary) return raw.toString("utf8");
  switch (typeOid) {
    case OID.int2:
      return raw.length === 2 ? String(raw.readInt16BE(0)) : raw.toString("hex");
    case OID.int4:
      return raw.length === 4 ? String(raw.readInt32BE(0)) : raw.toString("hex");
    case OID.int8:
      return raw.length === 8 ? String(raw.readBigInt64BE(0)) : raw.toString("hex");
    case OID.uuid:
      return raw.length === 16 ? formatUuid(raw) : raw.toString("hex");
    default:
      // Same value, same bytes: a stable input for hashing even when the form is unknown.
      return "\\x" + raw.toString("hex");
  }
}

function formatUuid(b: Buffer): string {
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function encodeText(typeOid: number, text: string, binary: boolean): Buffer | undefined {
  if (binary && typeOid === OID.jsonb) return Buffer.concat([Buffer.from([1]), Buffer.from(text, "utf8")]);
  return Buffer.from(text, "utf8");
}

const DAY_MS = 86_400_000;
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);

/**
 * A masked value in the column's type and format. Text format: the text itself.
 * Binary: encoded for the types below; any other type gets NULL, which every
 * client decodes (better than bytes it would misread).
 */
export function encodeTyped(typeOid: number, text: string, binary: boolean): Buffer | null {
  if (!binary) return Buffer.from(text, "utf8");
  if (isTextual(typeOid)) return encodeText(typeOid, text, true)!;
  try {
    switch (typeOid) {
      case OID.bool:
        return Buffer.from([text === "t" || text === "true" ? 1 : 0]);
      case OID.int2: {
        const b = Buffer.allocUnsafe(2);
        b.writeInt16BE(Number(text));
        return b;
      }
      case OID.int4: {
        const b = Buffer.allocUnsafe(4);
        b.writeInt32BE(Number(text));
        return b;
      }
      case OID.int8: {
        const b = Buffer.allocUnsafe(8);
        b.writeBigInt64BE(BigInt(text));
        return b;
      }
      case OID.float4: {
        const b = Buffer.allocUnsafe(4);
        b.writeFloatBE(Number(text));
        return b;
      }
      case OID.float8: {
        const b = Buffer.allocUnsafe(8);
        b.writeDoubleBE(Number(text));
        return b;
      }
      case OID.date: {
        const ms = Date.parse(`${text}T00:00:00Z`);
        if (Number.isNaN(ms)) return null;
        const b = Buffer.allocUnsafe(4);
        b.writeInt32BE(Math.round((ms - PG_EPOCH_MS) / DAY_MS));
        return b;
      }
      case OID.uuid: {
        const hex = text.replace(/-/g, "");
        return /^[0-9a-f]{32}$/i.test(hex) ? Buffer.from(hex, "hex") : null;
      }
      case OID.bytea:
        return text.startsWith("\\x") ? Buffer.from(text.slice(2), "hex") : Buffer.from(text, "utf8");
      default:
        return null;
    }
  } catch {
    return null;
  }
}

interface CopyCell {
  start: number;
  end: number;
  value: string | null;
}

const TEXT_ESCAPES: Record<string, string> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v" };

/** COPY text format: tab-separated, \N is NULL, backslash escapes. */
export function splitText(line: string): CopyCell[] {
  const cells: CopyCell[] = [];
  let start = 0;
  for (;;) {
    let end = line.indexOf("\t", start);
    if (end < 0) end = line.length;
    const raw = line.slice(start, end);
    cells.push({ start, end, value: raw === "\\N" ? null : unescapeText(raw) });
    if (end === line.length) return cells;
    start = end + 1;
  }
}

function unescapeText(raw: string): string {
  if (!raw.includes("\\")) return raw;
  return raw.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === "x" && e.length > 1) return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return TEXT_ESCAPES[e] ?? e;
  });
}

export function escapeText(v: string): string {
  return v.replace(/[\\\n\r\t]/g, (c) => (c === "\\" ? "\\\\" : c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\t"));
}

/** COPY csv format (default delimiter and quote): an unquoted empty field is NULL. */
export function splitCsv(line: string): CopyCell[] {
  const cells: CopyCell[] = [];
  let i = 0;
  for (;;) {
    const start = i;
    let value = "";
    let quoted = false;
    if (line[i] === '"') {
      quoted = true;
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new ProtocolError("unterminated quoted value in COPY csv row");
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      const comma = line.indexOf(",", i);
      i = comma < 0 ? line.length : comma;
    } else {
      const comma = line.indexOf(",", i);
      i = comma < 0 ? line.length : comma;
      value = line.slice(start, i);
    }
    cells.push({ start, end: i, value: !quoted && value === "" ? null : value });
    if (i >= line.length) return cells;
    i++;
  }
}
