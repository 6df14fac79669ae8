// The SQL transcript of one session (docs/recordings.md, kind "sql"): a header
// line, then [t, code, data] lines in the order the client saw the responses.
// Values are recorded after masking, exactly as sent; statement text and bind
// parameters as the audit event shows them (masked).
//
// Cost: lines are built as strings and handed to the listener's writer once per
// upstream read (flush()), which batches them into JetStream chunks off the
// statement's path. Rows are appended to one growing `rows` line; a result's
// `cols` line is reused while the same RowDescription repeats.
import type { Identity } from "@gatehouse/proto";
import type { MaskingRuntime, MaskStrategy, RecordingWriter } from "@gatehouse/plugin-sdk";
import { OID, type Field } from "./masking.js";

/** How a recorded column was masked, so a replay can apply the same masking. */
export type RecordedMask =
  | { strategy: MaskStrategy["kind"]; entity: string; keep_last?: number; key_id?: string }
  | { scan: true; strategy?: MaskStrategy["kind"]; keep_last?: number; text: Record<string, { strategy: MaskStrategy["kind"]; keep_last?: number }>; key_id?: string };

/** A statement's `q` line, written once, just before its first response. */
export interface RecQ {
  line: string;
  written: boolean;
}

export type EndReason = "terminate" | "client_closed" | "upstream_closed" | "shutdown" | "error";

/** Rows lines are cut at about this many characters. */
const ROWS_LINE_MAX = 64 * 1024;
const AUDIT_STRATEGY = (): MaskStrategy => ({ kind: "redact" });

interface ColFmt {
  typeOid: number;
  binary: boolean;
  textual: boolean;
}

const TEXTUAL_OIDS = new Set<number>([OID.name, OID.text, OID.xml, OID.unknown, OID.bpchar, OID.varchar, OID.json, OID.jsonb]);

export class SqlRecorder {
  private out = "";
  private rows = "";
  private cols: ColFmt[] = [];
  private lastDesc: Buffer | undefined;
  private lastDescMasks = "";
  private lastColsJson = "";
  private lastFields: Field[] | undefined;
  private lastFieldCols: ColFmt[] = [];
  private copyPieces: string[] = [];
  private copyLen = 0;
  private copyT = 0;
  private copyDir: "in" | "out" = "out";
  private copyBinary = false;
  private ended = false;
  // Per result set (or COPY): what was kept, and what the row limit left out.
  private kept = 0;
  private omitted = 0;
  private omittedBytes = 0;
  private omittedUnit: "rows" | "copy_data" = "rows";

  constructor(
    private readonly w: RecordingWriter,
    private readonly startedAt: number,
    header: { sessionId: string; connection: string; identity: Identity },
    private readonly masking: MaskingRuntime | undefined,
  ) {
    const id = header.identity;
    this.out =
      JSON.stringify({
        format: "gatehouse-sql",
        version: 1,
        session_id: header.sessionId,
        protocol: "postgres",
        connection: header.connection,
        identity: { subject: id.subject, name: id.name, groups: id.groups, kind: id.kind, issuer: id.issuer },
        timestamp: Math.round(performance.timeOrigin + startedAt) / 1000,
        // Text values are also scanned and redacted like audit text (see docs/recordings.md).
        text_values: masking ? "scanned" : "as_sent",
      }) + "\n";
  }

  /** Seconds since the session start, microsecond precision. */
  private t(): number {
    return Math.round((performance.now() - this.startedAt) * 1000) / 1e6;
  }

  private line(code: string, data: unknown): void {
    this.endRows();
    this.endCopy();
    this.out += `[${this.t()},"${code}",${JSON.stringify(data)}]\n`;
  }

  /** A statement as decided; text and params already masked as in its audit event. */
  statement(q: {
    commandId: string;
    text: string;
    params: { isNull: boolean; text: string; binary: boolean }[];
    protocol: "simple" | "extended";
    decision: "allow" | "deny" | "require_approval";
    policyIds: string[];
    textMasked: boolean;
  }): RecQ {
    const data: Record<string, unknown> = {
      command_id: q.commandId,
      text: q.text,
      params: q.params.map((p) => (p.isNull ? null : p.text)),
      protocol: q.protocol,
      decision: q.decision,
      policy_ids: q.policyIds,
    };
    if (q.params.some((p) => p.binary)) data.param_formats = q.params.map((p) => (p.binary ? 1 : 0));
    if (q.textMasked) data.masked = true;
    return { line: `[${this.t()},"q",${JSON.stringify(data)}]\n`, written: false };
  }

  /** Write a statement's q line if it is not written yet (before its first response). */
  q(q: RecQ | undefined): void {
    if (!q || q.written) return;
    q.written = true;
    this.endRows();
    this.endCopy();
    this.out += q.line;
  }

  /** A RowDescription as sent to the client (simple Query). */
  rowDescription(f: Buffer, fields: () => Field[], masks: (RecordedMask | undefined)[] | undefined): void {
    this.endResult();
    const maskKey = masks ? JSON.stringify(masks) : "";
    if (this.lastDesc && maskKey === this.lastDescMasks && this.lastDesc.equals(f)) {
      this.endRows();
      this.endCopy();
      this.out += `[${this.t()},"cols",${this.lastColsJson}]\n`;
      return;
    }
    const fs = fields();
    this.columns(fs, masks);
    this.lastDesc = Buffer.from(f);
    this.lastDescMasks = maskKey;
  }

  /** Result columns (from a RowDescription, or an extended Execute's described portal). */
  columns(fields: Field[], masks: (RecordedMask | undefined)[] | undefined): void {
    this.endResult();
    // The same prepared statement executed again (the extended protocol's usual case):
    // its columns line is already built.
    if (!masks && fields === this.lastFields) {
      this.endRows();
      this.endCopy();
      this.cols = this.lastFieldCols;
      this.out += `[${this.t()},"cols",${this.lastColsJson}]\n`;
      return;
    }
    this.lastFields = masks ? undefined : fields;
    this.cols = fields.map((f) => ({ typeOid: f.typeOid, binary: f.format === 1, textual: TEXTUAL_OIDS.has(f.typeOid) }));
    const columns = fields.map((f, i) => {
      const c: Record<string, unknown> = { name: f.name, type_oid: f.typeOid, format: f.format };
      const m = masks?.[i];
      if (m) c.mask = m;
      return c;
    });
    this.lastColsJson = JSON.stringify({ columns });
    this.lastFieldCols = this.cols;
    this.lastDesc = undefined;
    this.line("cols", { columns });
  }

  /** A DataRow as sent to the client (after masking). */
  dataRow(f: Buffer): void {
    if (f.length < 7) return;
    if (this.overLimit(f.length, "rows")) return;
    this.endCopy();
    const n = f.readInt16BE(5);
    let row = "[";
    let pos = 7;
    for (let i = 0; i < n; i++) {
      if (pos + 4 > f.length) return;
      const len = f.readInt32BE(pos);
      pos += 4;
      if (i > 0) row += ",";
      if (len < 0) {
        row += "null";
        continue;
      }
      const end = pos + len;
      const c = this.cols[i];
      let v = c?.binary ? decodeBinary(c.typeOid, f.subarray(pos, end)) : f.toString("utf8", pos, end);
      // Confidential values the client saw in clear (no plan, or "clear") are redacted
      // like audit text: no clear confidential value is ever in a recording.
      if (c?.textual && this.masking) v = this.maskText(v);
      row += JSON.stringify(v);
      pos = end;
    }
    row += "]";
    if (this.rows === "") this.rows = `[${this.t()},"rows",[${row}`;
    else this.rows += "," + row;
    if (this.rows.length >= ROWS_LINE_MAX) this.endRows();
  }

  done(commandId: string, tag: string, rows: number, suspended = false): void {
    this.endResult();
    this.line("done", suspended ? { command_id: commandId, tag, rows, suspended: true } : { command_id: commandId, tag, rows });
  }

  /** An ErrorResponse / NoticeResponse the client received (fields by their one-letter code); texts masked. */
  error(commandId: string, e: Record<string, string>): void {
    this.endResult();
    const data: Record<string, unknown> = { command_id: commandId, code: e.C ?? "", message: this.maskText(e.M ?? ""), severity: e.V ?? e.S ?? "ERROR" };
    if (e.D) data.detail = this.maskText(e.D);
    if (e.H) data.hint = this.maskText(e.H);
    if (e.P) data.position = Number(e.P);
    this.line("error", data);
  }

  notice(e: Record<string, string>): void {
    const data: Record<string, unknown> = { code: e.C ?? "", message: this.maskText(e.M ?? ""), severity: e.V ?? e.S ?? "NOTICE" };
    if (e.D) data.detail = this.maskText(e.D);
    if (e.H) data.hint = this.maskText(e.H);
    this.line("notice", data);
  }

  /** CopyOutResponse / CopyInResponse: the overall format (0 text, 1 binary). */
  copyStart(direction: "in" | "out", f: Buffer): void {
    this.endResult();
    this.endRows();
    this.endCopy();
    this.copyDir = direction;
    this.copyBinary = f.length > 5 && f[5] === 1;
  }

  /** CopyData: out is recorded as sent (already masked by the plan), in is masked like query text. */
  copy(direction: "in" | "out", f: Buffer): void {
    if (this.overLimit(f.length, "copy_data")) return;
    if (this.copyPieces.length > 0 && direction !== this.copyDir) this.endCopy();
    this.endRows();
    this.copyDir = direction;
    let s = this.copyBinary ? f.toString("hex", 5) : f.toString("utf8", 5);
    if (direction === "in" && !this.copyBinary) s = this.maskText(s);
    if (this.copyPieces.length === 0) this.copyT = this.t();
    this.copyPieces.push(s);
    this.copyLen += s.length;
    if (this.copyLen >= ROWS_LINE_MAX) this.endCopy();
  }

  end(reason: EndReason, detail: string): void {
    if (this.ended) return;
    this.ended = true;
    this.endResult();
    this.line("end", { reason, detail });
    this.flush();
    void this.w.close();
  }

  /** Hand what is pending to the writer (once per upstream read). */
  flush(): void {
    this.endRows();
    this.endCopy();
    if (this.out === "") return;
    this.w.write(this.out);
    this.out = "";
  }

  /** Whether the next DataRow of the current result is kept (not only counted). */
  keepsNextRow(): boolean {
    const max = this.w.maxRowsPerResult;
    return max <= 0 || this.kept < max;
  }

  /** Rows past the row limit that the session relayed in bulk (keepsNextRow() was false): counted only. */
  omitRows(count: number, bytes: number): void {
    this.omitted += count;
    this.omittedBytes += bytes;
    this.omittedUnit = "rows";
  }

  /**
   * The row limit (recordings.maxRowsPerResult): true when this row (or CopyData
   * message) is past it and is only counted. Bulk results would otherwise cost a
   * text scan and a copy of every value in the recording.
   */
  private overLimit(bytes: number, unit: "rows" | "copy_data"): boolean {
    const max = this.w.maxRowsPerResult;
    if (max <= 0 || this.kept < max) {
      this.kept++;
      return false;
    }
    this.omitted++;
    this.omittedBytes += bytes;
    this.omittedUnit = unit;
    return true;
  }

  /** End of a result set or COPY: the explicit marker for what the limit left out. */
  private endResult(): void {
    if (this.omitted > 0) {
      this.line("rows_omitted", { unit: this.omittedUnit, count: this.omitted, bytes: this.omittedBytes, limit: this.w.maxRowsPerResult });
    }
    this.kept = 0;
    this.omitted = 0;
    this.omittedBytes = 0;
  }

  private endRows(): void {
    if (this.rows === "") return;
    this.out += this.rows + "]]\n";
    this.rows = "";
  }

  private endCopy(): void {
    if (this.copyPieces.length === 0) return;
    const data: Record<string, unknown> = { direction: this.copyDir };
    if (this.copyBinary) data.binary = true;
    data.data = this.copyPieces.join("");
    this.out += `[${this.copyT},"copy",${JSON.stringify(data)}]\n`;
    this.copyPieces = [];
    this.copyLen = 0;
  }

  private maskText(s: string): string {
    return this.masking && s ? this.masking.maskText(s, AUDIT_STRATEGY).text : s;
  }
}

const PG_EPOCH_MS = Date.UTC(2000, 0, 1);

/** Text form of a binary-format value where the type is known; else "\x<hex>". */
export function decodeBinary(typeOid: number, raw: Buffer): string {
  switch (typeOid) {
    case OID.name:
    case OID.text:
    case OID.xml:
    case OID.unknown:
    case OID.bpchar:
    case OID.varchar:
    case OID.json:
      return raw.toString("utf8");
    case OID.jsonb:
      return raw.toString("utf8", 1);
    case OID.bool:
      if (raw.length === 1) return raw[0] ? "t" : "f";
      break;
    case OID.int2:
      if (raw.length === 2) return String(raw.readInt16BE(0));
      break;
    case OID.int4:
      if (raw.length === 4) return String(raw.readInt32BE(0));
      break;
    case 26: // oid
      if (raw.length === 4) return String(raw.readUInt32BE(0));
      break;
    case OID.int8:
      if (raw.length === 8) return String(raw.readBigInt64BE(0));
      break;
    case OID.float4:
      if (raw.length === 4) return floatText(raw.readFloatBE(0), true);
      break;
    case OID.float8:
      if (raw.length === 8) return floatText(raw.readDoubleBE(0), false);
      break;
    case OID.date:
      if (raw.length === 4) return new Date(PG_EPOCH_MS + raw.readInt32BE(0) * 86_400_000).toISOString().slice(0, 10);
      break;
    case 1114: {
      // timestamp without time zone
      const s = raw.length === 8 ? timestampText(raw.readBigInt64BE(0)) : undefined;
      if (s !== undefined) return s;
      break;
    }
    case OID.uuid:
      if (raw.length === 16) {
        const h = raw.toString("hex");
        return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
      }
      break;
    case OID.bytea:
      return "\\x" + raw.toString("hex");
    case OID.numeric: {
      const s = numericText(raw);
      if (s !== undefined) return s;
      break;
    }
  }
  return "\\x" + raw.toString("hex");
}

function floatText(v: number, single: boolean): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  if (!single) return String(v);
  // Shortest text that reads back as the same float4 (PostgreSQL's float4out does the same).
  for (let p = 1; p <= 9; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) return String(Number(s));
  }
  return String(v);
}

function timestampText(us: bigint): string | undefined {
  if (us === 0x7fffffffffffffffn) return "infinity";
  if (us === -0x8000000000000000n) return "-infinity";
  let secs = us / 1_000_000n;
  let frac = us % 1_000_000n;
  if (frac < 0n) {
    frac += 1_000_000n;
    secs -= 1n;
  }
  const d = new Date(PG_EPOCH_MS + Number(secs) * 1000);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 1 || d.getUTCFullYear() > 9999) return undefined;
  const iso = d.toISOString();
  let s = `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
  if (frac > 0n) s += "." + String(frac).padStart(6, "0").replace(/0+$/, "");
  return s;
}

/** numeric binary: ndigits, weight, sign, dscale, then base-10000 digits. */
function numericText(raw: Buffer): string | undefined {
  if (raw.length < 8) return undefined;
  const ndigits = raw.readInt16BE(0);
  const weight = raw.readInt16BE(2);
  const sign = raw.readUInt16BE(4);
  const dscale = raw.readInt16BE(6);
  if (raw.length !== 8 + 2 * ndigits) return undefined;
  if (sign === 0xc000) return "NaN";
  if (sign === 0xd000) return "Infinity";
  if (sign === 0xf000) return "-Infinity";
  const digit = (i: number) => (i >= 0 && i < ndigits ? raw.readInt16BE(8 + 2 * i) : 0);
  let int = "";
  for (let i = 0; i <= weight; i++) int += i === 0 ? String(digit(i)) : String(digit(i)).padStart(4, "0");
  if (int === "") int = "0";
  let frac = "";
  for (let i = weight + 1; frac.length < dscale; i++) frac += String(digit(i)).padStart(4, "0");
  frac = frac.slice(0, dscale);
  return (sign === 0x4000 ? "-" : "") + int + (dscale > 0 ? "." + frac : "");
}
