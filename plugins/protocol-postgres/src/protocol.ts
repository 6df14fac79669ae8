// PostgreSQL wire protocol v3: constants, message builders and the few body
// parsers the gateway needs. Everything else is relayed as raw bytes.

export const PROTOCOL_3_0 = 196608; // 3 << 16
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

/** Frame type bytes (one char code each), named as in the PostgreSQL docs. */
export const T = {
  // frontend
  Query: 0x51, // Q
  Parse: 0x50, // P
  Bind: 0x42, // B
  Describe: 0x44, // D
  Execute: 0x45, // E
  Close: 0x43, // C
  Sync: 0x53, // S
  Flush: 0x48, // H
  Terminate: 0x58, // X
  Password: 0x70, // p
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyFail: 0x66, // f
  FunctionCall: 0x46, // F
  // backend
  Authentication: 0x52, // R
  BackendKeyData: 0x4b, // K
  ParameterStatus: 0x53, // S
  ReadyForQuery: 0x5a, // Z
  ErrorResponse: 0x45, // E
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  CommandComplete: 0x43, // C
  EmptyQueryResponse: 0x49, // I
  DataRow: 0x44, // D
  RowDescription: 0x54, // T
  NoData: 0x6e, // n
  ParameterDescription: 0x74, // t
  ParseComplete: 0x31, // 1
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  PortalSuspended: 0x73, // s
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  CopyBothResponse: 0x57, // W
  NegotiateProtocolVersion: 0x76, // v
} as const;

/** A protocol violation by the peer: answered with FATAL 08P01 and a close. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

// ---------------------------------------------------------------- builders

function frame(type: number, bodyLength: number): Buffer {
  const b = Buffer.allocUnsafe(5 + bodyLength);
  b[0] = type;
  b.writeInt32BE(4 + bodyLength, 1);
  return b;
}

export interface ErrorFields {
  severity: "ERROR" | "FATAL" | "NOTICE" | "WARNING";
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** ErrorResponse (or NoticeResponse with `type` = N). */
export function errorResponse(f: ErrorFields, type: number = T.ErrorResponse): Buffer {
  const parts: Buffer[] = [];
  const field = (code: string, value: string) => parts.push(Buffer.from(code + value + "\0", "utf8"));
  field("S", f.severity);
  field("V", f.severity);
  field("C", f.code);
  field("M", f.message);
  if (f.detail) field("D", f.detail);
  if (f.hint) field("H", f.hint);
  parts.push(Buffer.from([0]));
  const body = Buffer.concat(parts);
  const b = frame(type, body.length);
  body.copy(b, 5);
  return b;
}

export function readyForQuery(status: number): Buffer {
  const b = frame(T.ReadyForQuery, 1);
  b[5] = status;
  return b;
}

export function authentication(code: number, extra?: Buffer): Buffer {
  const b = frame(T.Authentication, 4 + (extra?.length ?? 0));
  b.writeInt32BE(code, 5);
  extra?.copy(b, 9);
  return b;
}

export function backendKeyData(pid: number, secret: number): Buffer {
  const b = frame(T.BackendKeyData, 8);
  b.writeInt32BE(pid, 5);
  b.writeInt32BE(secret, 9);
  return b;
}

export function negotiateProtocolVersion(minor: number, unrecognized: string[]): Buffer {
  const names = Buffer.from(unrecognized.map((n) => n + "\0").join(""), "utf8");
  const b = frame(T.NegotiateProtocolVersion, 8 + names.length);
  b.writeInt32BE(minor, 5);
  b.writeInt32BE(unrecognized.length, 9);
  names.copy(b, 13);
  return b;
}

/** Untyped startup-phase packet: length, code, payload. */
export function startupPacket(code: number, payload?: Buffer): Buffer {
  const b = Buffer.allocUnsafe(8 + (payload?.length ?? 0));
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(code, 4);
  payload?.copy(b, 8);
  return b;
}

export function startupMessage(params: Record<string, string>): Buffer {
  let s = "";
  for (const [k, v] of Object.entries(params)) s += `${k}\0${v}\0`;
  s += "\0";
  return startupPacket(PROTOCOL_3_0, Buffer.from(s, "utf8"));
}

export function cancelRequest(pid: number, secret: number): Buffer {
  const p = Buffer.allocUnsafe(8);
  p.writeInt32BE(pid, 0);
  p.writeInt32BE(secret, 4);
  return startupPacket(CANCEL_REQUEST, p);
}

/** PasswordMessage / SASL responses: 'p' + payload. */
export function passwordMessage(payload: Buffer): Buffer {
  const b = frame(T.Password, payload.length);
  payload.copy(b, 5);
  return b;
}

export const TERMINATE = Buffer.from([T.Terminate, 0, 0, 0, 4]);
export const SYNC = Buffer.from([T.Sync, 0, 0, 0, 4]);

// ----------------------------------------------------------------- parsers

/** Sequential reader over a message body; throws ProtocolError on truncation. */
export class BodyReader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start = 0,
  ) {
    this.pos = start;
  }
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new ProtocolError("unterminated string in message");
    const s = this.buf.toString("utf8", this.pos, end);
    this.pos = end + 1;
    return s;
  }
  int16(): number {
    if (this.pos + 2 > this.buf.length) throw new ProtocolError("message too short");
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    if (this.pos + 4 > this.buf.length) throw new ProtocolError("message too short");
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  bytes(n: number): Buffer {
    if (n < 0 || this.pos + n > this.buf.length) throw new ProtocolError("message too short");
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  byte(): number {
    if (this.pos >= this.buf.length) throw new ProtocolError("message too short");
    return this.buf[this.pos++]!;
  }
}

/** Body reader positioned after a typed frame's 5-byte header. */
export function body(frameBytes: Buffer): BodyReader {
  return new BodyReader(frameBytes, 5);
}

/** Startup parameters (name/value pairs) from a StartupMessage payload (after the code). */
export function parseStartupParams(payload: Buffer): Record<string, string> {
  const r = new BodyReader(payload);
  const params: Record<string, string> = {};
  for (;;) {
    if (r.pos >= payload.length) throw new ProtocolError("startup packet is not terminated");
    if (payload[r.pos] === 0) break;
    const name = r.cstring();
    const value = r.cstring();
    params[name] = value;
  }
  return params;
}

/** ErrorResponse / NoticeResponse fields keyed by their one-letter code. */
export function parseErrorFields(frameBytes: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  const r = body(frameBytes);
  while (r.pos < frameBytes.length) {
    const code = r.byte();
    if (code === 0) break;
    out[String.fromCharCode(code)] = r.cstring();
  }
  return out;
}

export interface ParseMsg {
  name: string;
  text: string;
}
export function parseParse(f: Buffer): ParseMsg {
  const r = body(f);
  const name = r.cstring();
  const text = r.cstring();
  const n = r.int16();
  if (n < 0) throw new ProtocolError("negative parameter type count in Parse");
  r.bytes(n * 4);
  return { name, text };
}

export interface BindParam {
  isNull: boolean;
  value?: Buffer;
  binary: boolean;
}
export interface BindMsg {
  portal: string;
  statement: string;
  params: BindParam[];
  /** Result column format codes as sent (empty: all text). */
  resultFormats: number[];
}
export function parseBind(f: Buffer): BindMsg {
  const r = body(f);
  const portal = r.cstring();
  const statement = r.cstring();
  const nFormats = r.int16();
  if (nFormats < 0) throw new ProtocolError("negative format count in Bind");
  const formats: number[] = [];
  for (let i = 0; i < nFormats; i++) formats.push(r.int16());
  const nParams = r.int16();
  if (nParams < 0) throw new ProtocolError("negative parameter count in Bind");
  if (nFormats > 1 && nFormats !== nParams) throw new ProtocolError(`Bind has ${nFormats} parameter formats for ${nParams} parameters`);
  const params: BindParam[] = [];
  for (let i = 0; i < nParams; i++) {
    const fmt = nFormats === 0 ? 0 : nFormats === 1 ? formats[0]! : formats[i]!;
    const len = r.int32();
    if (len === -1) params.push({ isNull: true, binary: fmt === 1 });
    else if (len < 0) throw new ProtocolError("invalid parameter length in Bind");
    else params.push({ isNull: false, value: r.bytes(len), binary: fmt === 1 });
  }
  // Result column formats (0 codes: all text; 1: all the same; n: one per column).
  const resultFormats: number[] = [];
  if (r.pos + 2 <= f.length) {
    const nResult = r.int16();
    if (nResult < 0) throw new ProtocolError("negative result format count in Bind");
    for (let i = 0; i < nResult; i++) resultFormats.push(r.int16());
  }
  return { portal, statement, params, resultFormats };
}

/** Execute: portal name (max rows ignored). */
export function parseExecute(f: Buffer): string {
  return body(f).cstring();
}

/** Describe / Close: 'S' or 'P' and a name. */
export function parseTarget(f: Buffer): { kind: number; name: string } {
  const r = body(f);
  const kind = r.byte();
  if (kind !== 0x53 && kind !== 0x50) throw new ProtocolError("Describe/Close target must be 'S' or 'P'");
  return { kind, name: r.cstring() };
}

/** Query text. */
export function parseQuery(f: Buffer): string {
  return body(f).cstring();
}

/** CommandComplete tag. */
export function parseTag(f: Buffer): string {
  const end = f.length > 5 && f[f.length - 1] === 0 ? f.length - 1 : f.length;
  return f.toString("utf8", 5, end);
}

/** Row count in a CommandComplete tag ("SELECT 3", "INSERT 0 5", "COPY 10"), if any. */
export function tagRowCount(tag: string): number | undefined {
  const sp = tag.lastIndexOf(" ");
  if (sp < 0) return undefined;
  const n = Number(tag.slice(sp + 1));
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Printable name of a frame type byte, for error messages. */
export function typeName(t: number): string {
  return t >= 0x20 && t < 0x7f ? `'${String.fromCharCode(t)}'` : `0x${t.toString(16).padStart(2, "0")}`;
}
