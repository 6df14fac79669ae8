// SFTP through the gateway: client packets are parsed, each file operation is decided
// by policy and recorded before it goes upstream; a denied one is answered with
// SSH_FX_PERMISSION_DENIED. Reads and writes on a handle were decided when the handle
// was opened; their bytes are counted and recorded when the handle is closed.
import type { Duplex } from "node:stream";

const T = {
  INIT: 1, VERSION: 2, OPEN: 3, CLOSE: 4, READ: 5, WRITE: 6, LSTAT: 7, FSTAT: 8, SETSTAT: 9, FSETSTAT: 10,
  OPENDIR: 11, READDIR: 12, REMOVE: 13, MKDIR: 14, RMDIR: 15, REALPATH: 16, STAT: 17, RENAME: 18,
  READLINK: 19, SYMLINK: 20, STATUS: 101, HANDLE: 102, DATA: 103, NAME: 104, ATTRS: 105, EXTENDED: 200,
} as const;
const FX_PERMISSION_DENIED = 3;
const FX_FAILURE = 4;
const FX_OP_UNSUPPORTED = 8;
const FX_OK = 0;
const FX_EOF = 1;
const PF = { READ: 1, WRITE: 2, APPEND: 4, CREAT: 8, TRUNC: 0x10, EXCL: 0x20 };

export type SftpVerdict = { ok: true; commandId: string } | { ok: false; message: string };

export interface SftpHooks {
  /** Decide and record one operation; resolves with the command id, or why it is refused. */
  decide(kind: string, text: string, paths: string[], flags: string[]): Promise<SftpVerdict>;
  /** The outcome of an allowed operation (status, bytes moved through a handle). */
  result(commandId: string, r: { bytes: number; statusTag: string; errorMessage?: string; startedAt: number }): void;
  onError(message: string): void;
}

class Reader {
  constructor(private readonly b: Buffer, public o = 0) {}
  u8(): number { this.need(1); return this.b[this.o++]!; }
  u32(): number { this.need(4); const v = this.b.readUInt32BE(this.o); this.o += 4; return v; }
  u64(): bigint { this.need(8); const v = this.b.readBigUInt64BE(this.o); this.o += 8; return v; }
  bytes(): Buffer { const n = this.u32(); this.need(n); const v = this.b.subarray(this.o, this.o + n); this.o += n; return v; }
  str(): string { return this.bytes().toString("utf8"); }
  private need(n: number): void { if (this.o + n > this.b.length) throw new Error("truncated SFTP packet"); }
}

function statusPacket(id: number, code: number, msg: string): Buffer {
  const m = Buffer.from(msg, "utf8");
  const b = Buffer.alloc(4 + 1 + 4 + 4 + 4 + m.length + 4);
  let o = b.writeUInt32BE(b.length - 4, 0);
  o = b.writeUInt8(T.STATUS, o);
  o = b.writeUInt32BE(id, o);
  o = b.writeUInt32BE(code, o);
  o = b.writeUInt32BE(m.length, o);
  o += m.copy(b, o);
  b.writeUInt32BE(0, o);
  return b;
}

/** Splits a byte stream into SFTP packets (uint32 length + body). */
class Framer {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number, private readonly who: string) {}
  push(c: Buffer): void { this.chunks.push(c); this.size += c.length; }
  next(): Buffer | undefined {
    if (this.size < 4) return undefined;
    if (this.chunks[0]!.length < 4) this.merge();
    const len = this.chunks[0]!.readUInt32BE(0);
    if (len < 1 || len > this.max) throw new Error(`${this.who} sent an SFTP packet of ${len} bytes (limit ${this.max})`);
    if (this.size < 4 + len) return undefined;
    if (this.chunks[0]!.length < 4 + len) this.merge();
    const first = this.chunks[0]!;
    const pkt = first.subarray(0, 4 + len);
    if (first.length === 4 + len) this.chunks.shift();
    else this.chunks[0] = first.subarray(4 + len);
    this.size -= 4 + len;
    return pkt;
  }
  private merge(): void { const all = Buffer.concat(this.chunks); this.chunks = [all]; }
}

interface OpenHandle { path: string; commandId: string; bytes: number; write: boolean; startedAt: number; dir: boolean }
type Pending =
  | { k: "open"; path: string; commandId: string; write: boolean; startedAt: number; dir: boolean }
  | { k: "read"; handle: string }
  | { k: "op"; commandId: string; startedAt: number }
  | { k: "close"; handle: string };

export class SftpProxy {
  private readonly fromClient: Framer;
  private readonly fromUp: Framer;
  private queue: Buffer[] = [];
  private pumping = false;
  private waitingDrain = false;
  private closed = false;
  private readonly handles = new Map<string, OpenHandle>();
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly client: Duplex,
    private readonly up: Duplex,
    private readonly hooks: SftpHooks,
    maxPacket: number,
  ) {
    this.fromClient = new Framer(maxPacket, "the client");
    // Upstream DATA replies can be as large as the client asked for; bound them loosely.
    this.fromUp = new Framer(Math.max(maxPacket, 4 * 1024 * 1024), "the upstream");
  }

  start(): void {
    this.client.on("data", (c: Buffer) => this.onClient(c));
    this.up.on("data", (c: Buffer) => this.onUp(c));
  }

  /** Handles still open when the channel closes still get their result. */
  finish(): void {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.handles.values()) this.hooks.result(h.commandId, { bytes: h.bytes, statusTag: h.write ? "written (not closed)" : "read (not closed)", startedAt: h.startedAt });
    this.handles.clear();
  }

  private onClient(c: Buffer): void {
    if (this.closed) return;
    try {
      this.fromClient.push(c);
      for (let p = this.fromClient.next(); p; p = this.fromClient.next()) this.queue.push(p);
    } catch (e) {
      this.hooks.onError((e as Error).message);
      return;
    }
    if (this.queue.length > 64) this.client.pause();
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const p = this.queue.shift()!;
        const r = this.handleClient(p);
        if (r) await r;
        if (this.queue.length < 16) this.client.resume();
      }
    } catch (e) {
      this.hooks.onError(`SFTP: ${(e as Error).message}`);
    } finally {
      this.pumping = false;
    }
  }

  private forward(p: Buffer): void {
    this.up.write(p);
  }

  private deny(id: number, code: number, msg: string): void {
    this.client.write(statusPacket(id, code, msg));
  }

  private async gate(id: number, p: Buffer, kind: string, text: string, paths: string[], onAllowed: (commandId: string) => Pending | undefined, flags: string[] = []): Promise<void> {
    const v = await this.hooks.decide(kind, text, paths, flags);
    if (this.closed) return;
    if (!v.ok) return this.deny(id, FX_PERMISSION_DENIED, v.message);
    const pend = onAllowed(v.commandId);
    if (pend) this.pending.set(id, pend);
    this.forward(p);
  }

  private handleClient(p: Buffer): Promise<void> | void {
    const r = new Reader(p, 4);
    const type = r.u8();
    if (type === T.INIT) return this.forward(p);
    const id = r.u32();
    const now = performance.now();
    const op = (commandId: string): Pending => ({ k: "op", commandId, startedAt: now });
    switch (type) {
      case T.OPEN: {
        const path = r.str();
        const pflags = r.u32();
        const write = (pflags & (PF.WRITE | PF.APPEND | PF.CREAT | PF.TRUNC)) !== 0;
        const modes = Object.entries(PF).filter(([, v]) => pflags & v).map(([k]) => k.toLowerCase());
        return this.gate(id, p, write ? "sftp_write" : "sftp_read", `sftp open ${JSON.stringify(path)} (${modes.join(",")})`, [path], (commandId) => ({ k: "open", path, commandId, write, startedAt: now, dir: false }), modes);
      }
      case T.OPENDIR: {
        const path = r.str();
        return this.gate(id, p, "sftp_list", `sftp opendir ${JSON.stringify(path)}`, [path], (commandId) => ({ k: "open", path, commandId, write: false, startedAt: now, dir: true }));
      }
      case T.READ: {
        const handle = r.bytes().toString("hex");
        if (!this.handles.has(handle)) return this.deny(id, FX_FAILURE, "gatehouse: unknown handle");
        this.pending.set(id, { k: "read", handle });
        return this.forward(p);
      }
      case T.READDIR:
      case T.FSTAT: {
        const handle = r.bytes().toString("hex");
        if (!this.handles.has(handle)) return this.deny(id, FX_FAILURE, "gatehouse: unknown handle");
        return this.forward(p);
      }
      case T.WRITE: {
        const handle = r.bytes().toString("hex");
        r.u64();
        const data = r.bytes();
        const h = this.handles.get(handle);
        // Writes only on handles whose open was decided as a write.
        if (!h || !h.write) return this.deny(id, FX_PERMISSION_DENIED, "gatehouse: this handle was not opened for writing");
        h.bytes += data.length;
        return this.forward(p);
      }
      case T.CLOSE: {
        const handle = r.bytes().toString("hex");
        if (!this.handles.has(handle)) return this.deny(id, FX_FAILURE, "gatehouse: unknown handle");
        this.pending.set(id, { k: "close", handle });
        return this.forward(p);
      }
      case T.FSETSTAT: {
        const handle = r.bytes().toString("hex");
        const h = this.handles.get(handle);
        if (!h) return this.deny(id, FX_FAILURE, "gatehouse: unknown handle");
        return this.gate(id, p, "sftp_setstat", `sftp fsetstat ${JSON.stringify(h.path)}`, [h.path], op);
      }
      case T.LSTAT:
      case T.STAT:
      case T.REALPATH:
      case T.READLINK: {
        const path = r.str();
        const name = type === T.LSTAT ? "lstat" : type === T.STAT ? "stat" : type === T.REALPATH ? "realpath" : "readlink";
        return this.gate(id, p, "sftp_stat", `sftp ${name} ${JSON.stringify(path)}`, [path], op);
      }
      case T.SETSTAT:
        return this.pathOp(id, p, r.str(), "sftp_setstat", "setstat", op);
      case T.REMOVE:
        return this.pathOp(id, p, r.str(), "sftp_remove", "remove", op);
      case T.MKDIR:
        return this.pathOp(id, p, r.str(), "sftp_mkdir", "mkdir", op);
      case T.RMDIR:
        return this.pathOp(id, p, r.str(), "sftp_rmdir", "rmdir", op);
      case T.RENAME: {
        const from = r.str();
        const to = r.str();
        return this.gate(id, p, "sftp_rename", `sftp rename ${JSON.stringify(from)} ${JSON.stringify(to)}`, [from, to], op);
      }
      case T.SYMLINK: {
        const a = r.str();
        const b = r.str();
        return this.gate(id, p, "sftp_symlink", `sftp symlink ${JSON.stringify(a)} ${JSON.stringify(b)}`, [a, b], op);
      }
      case T.EXTENDED:
        return this.extended(id, p, r, op);
      default:
        return this.deny(id, FX_OP_UNSUPPORTED, `gatehouse: SFTP request type ${type} is not supported`);
    }
  }

  private pathOp(id: number, p: Buffer, path: string, kind: string, name: string, op: (c: string) => Pending): Promise<void> {
    return this.gate(id, p, kind, `sftp ${name} ${JSON.stringify(path)}`, [path], op);
  }

  private extended(id: number, p: Buffer, r: Reader, op: (c: string) => Pending): Promise<void> | void {
    const name = r.str();
    switch (name) {
      case "posix-rename@openssh.com": {
        const from = r.str();
        const to = r.str();
        return this.gate(id, p, "sftp_rename", `sftp rename ${JSON.stringify(from)} ${JSON.stringify(to)}`, [from, to], op);
      }
      case "hardlink@openssh.com": {
        const a = r.str();
        const b = r.str();
        return this.gate(id, p, "sftp_symlink", `sftp hardlink ${JSON.stringify(a)} ${JSON.stringify(b)}`, [a, b], op);
      }
      case "lsetstat@openssh.com":
        return this.pathOp(id, p, r.str(), "sftp_setstat", "lsetstat", op);
      case "statvfs@openssh.com":
      case "expand-path@openssh.com":
        return this.pathOp(id, p, r.str(), "sftp_stat", name.split("@")[0]!, op);
      case "limits@openssh.com":
      case "home-directory":
        return this.forward(p);
      case "fstatvfs@openssh.com":
      case "fsync@openssh.com": {
        const handle = r.bytes().toString("hex");
        if (!this.handles.has(handle)) return this.deny(id, FX_FAILURE, "gatehouse: unknown handle");
        return this.forward(p);
      }
      default:
        return this.deny(id, FX_OP_UNSUPPORTED, `gatehouse: SFTP extension ${name} is not supported`);
    }
  }

  private onUp(c: Buffer): void {
    try {
      this.fromUp.push(c);
      for (let p = this.fromUp.next(); p; p = this.fromUp.next()) {
        this.trackReply(p);
        if (!this.client.write(p) && !this.waitingDrain) {
          this.waitingDrain = true;
          this.up.pause();
          this.client.once("drain", () => {
            this.waitingDrain = false;
            this.up.resume();
          });
        }
      }
    } catch (e) {
      this.hooks.onError(`SFTP upstream: ${(e as Error).message}`);
    }
  }

  private trackReply(p: Buffer): void {
    const r = new Reader(p, 4);
    const type = r.u8();
    if (type === T.VERSION) return;
    const id = r.u32();
    const pend = this.pending.get(id);
    if (!pend) return;
    this.pending.delete(id);
    switch (pend.k) {
      case "open":
        if (type === T.HANDLE) {
          this.handles.set(r.bytes().toString("hex"), { path: pend.path, commandId: pend.commandId, bytes: 0, write: pend.write, startedAt: pend.startedAt, dir: pend.dir });
        } else this.hooks.result(pend.commandId, statusResult(type, r, 0, pend.startedAt));
        return;
      case "read": {
        const h = this.handles.get(pend.handle);
        if (h && type === T.DATA) h.bytes += r.u32();
        return;
      }
      case "close": {
        const h = this.handles.get(pend.handle);
        this.handles.delete(pend.handle);
        if (h) this.hooks.result(h.commandId, { bytes: h.bytes, statusTag: h.dir ? "listed" : h.write ? "written" : "read", startedAt: h.startedAt });
        return;
      }
      case "op":
        this.hooks.result(pend.commandId, statusResult(type, r, 0, pend.startedAt));
        return;
    }
  }
}

function statusResult(type: number, r: Reader, bytes: number, startedAt: number): { bytes: number; statusTag: string; errorMessage?: string; startedAt: number } {
  if (type !== T.STATUS) return { bytes, statusTag: "ok", startedAt };
  const code = r.u32();
  const msg = r.str();
  if (code === FX_OK || code === FX_EOF) return { bytes, statusTag: "ok", startedAt };
  return { bytes, statusTag: `status ${code}`, errorMessage: msg, startedAt };
}
