// A raw wire-protocol client for tests that need exact message sequences
// (pipelined extended-protocol groups, malformed frames).
import { connect, type Socket } from "node:net";
import { GOOD_TOKEN } from "./fake-gateway.js";

function msg(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.write(type, 0, "latin1");
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const cstr = (s: string) => Buffer.from(s + "\0", "utf8");
const i16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const i32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

export const fe = {
  query: (text: string) => msg("Q", cstr(text)),
  parse: (name: string, text: string) => msg("P", cstr(name), cstr(text), i16(0)),
  bind: (portal: string, stmt: string, params: (string | null)[] = []) =>
    msg(
      "B",
      cstr(portal),
      cstr(stmt),
      i16(0),
      i16(params.length),
      ...params.map((p) => (p === null ? i32(-1) : Buffer.concat([i32(Buffer.byteLength(p)), Buffer.from(p)]))),
      i16(0),
    ),
  describePortal: (name: string) => msg("D", Buffer.from("P"), cstr(name)),
  execute: (portal: string) => msg("E", cstr(portal), i32(0)),
  sync: () => msg("S"),
  flush: () => msg("H"),
  terminate: () => msg("X"),
  raw: msg,
};

export interface BackendMsg {
  type: string;
  body: Buffer;
}

/** SQLSTATE and message of an ErrorResponse / NoticeResponse. */
export function fields(m: BackendMsg): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < m.body.length && m.body[i] !== 0) {
    const code = String.fromCharCode(m.body[i]!);
    const end = m.body.indexOf(0, i + 1);
    out[code] = m.body.toString("utf8", i + 1, end);
    i = end + 1;
  }
  return out;
}

export class RawConn {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  private constructor(readonly socket: Socket) {
    socket.on("data", (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", () => undefined);
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async open(port: number, host = "127.0.0.1"): Promise<RawConn> {
    const s = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      s.once("connect", resolve);
      s.once("error", reject);
    });
    return new RawConn(s);
  }

  /** Open and log in (startup + token); returns after the first ReadyForQuery. */
  static async login(port: number, params: Record<string, string> = { user: "agent-1", database: "demo" }, password = GOOD_TOKEN): Promise<RawConn> {
    const c = await RawConn.open(port);
    c.send(startup(params));
    const auth = await c.next();
    if (auth.type === "R" && auth.body.readInt32BE(0) === 3) c.send(msg("p", cstr(password)));
    else if (!(auth.type === "R" && auth.body.readInt32BE(0) === 0)) throw new Error(`unexpected auth message ${auth.type}`);
    await c.until("Z");
    return c;
  }

  send(b: Buffer): void {
    this.socket.write(b);
  }

  /** Next backend message; rejects if the connection closes first. */
  async next(): Promise<BackendMsg> {
    for (;;) {
      if (this.buf.length >= 5) {
        const len = this.buf.readInt32BE(1);
        if (this.buf.length >= len + 1) {
          const m = { type: String.fromCharCode(this.buf[0]!), body: this.buf.subarray(5, len + 1) };
          this.buf = this.buf.subarray(len + 1);
          return m;
        }
      }
      if (this.closed) throw new Error("connection closed");
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** One raw byte (the answer to SSLRequest / GSSENCRequest). */
  async byte(): Promise<string> {
    while (this.buf.length < 1) {
      if (this.closed) throw new Error("connection closed");
      await new Promise<void>((r) => this.waiters.push(r));
    }
    const b = String.fromCharCode(this.buf[0]!);
    this.buf = this.buf.subarray(1);
    return b;
  }

  /** Messages up to and including the first of type `type`. */
  async until(type: string): Promise<BackendMsg[]> {
    const out: BackendMsg[] = [];
    for (;;) {
      const m = await this.next();
      out.push(m);
      if (m.type === type) return out;
    }
  }

  /** Resolves when the peer has closed the connection. */
  async closedByPeer(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.waiters.push(r));
  }

  close(): void {
    this.socket.destroy();
  }
}

export function startup(params: Record<string, string>, version = 196608): Buffer {
  let s = "";
  for (const [k, v] of Object.entries(params)) s += `${k}\0${v}\0`;
  const body = Buffer.from(s + "\0", "utf8");
  const b = Buffer.alloc(8 + body.length);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(version, 4);
  body.copy(b, 8);
  return b;
}

/** Message types of a sequence, for comparing with PostgreSQL's own behavior. */
export const types = (ms: BackendMsg[]) => ms.map((m) => m.type).join("");
