// Awaitable reads on a socket during the startup phases (client handshake,
// upstream login), where the exchange is strictly request/response. Once a
// session is running, sockets are read with 'data' handlers instead.
import type { Socket } from "node:net";
import { ProtocolError, typeName } from "./protocol.js";

export class ClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClosedError";
  }
}

export class StartupStream {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer) => {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.wake?.();
  };
  private readonly onEnd = () => this.fail(new ClosedError(`${this.peer} closed the connection`));
  private readonly onError = (e: Error) => this.fail(new ClosedError(`${this.peer} connection failed: ${e.message}`));

  constructor(
    readonly socket: Socket,
    private readonly peer: string,
  ) {
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("close", this.onEnd);
    socket.on("error", this.onError);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    this.wake?.();
  }

  private async need(n: number): Promise<void> {
    while (this.buf.length < n) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Whether the peer closed or the socket failed. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Bytes received but not read yet. */
  get pending(): number {
    return this.buf.length;
  }

  /** A single byte (the answer to an SSLRequest). */
  async readByte(): Promise<number> {
    await this.need(1);
    return this.take(1)[0]!;
  }

  /** An untyped startup packet (length + payload); returns the payload without the length. */
  async readUntyped(max: number): Promise<Buffer> {
    await this.need(4);
    const len = this.buf.readInt32BE(0);
    if (len < 8 || len > max) throw new ProtocolError(`invalid startup packet length ${len}`);
    await this.need(len);
    return this.take(len).subarray(4);
  }

  /** A typed frame (header included). */
  async readFrame(max: number): Promise<Buffer> {
    await this.need(5);
    const len = this.buf.readInt32BE(1);
    if (len < 4 || len - 4 > max) throw new ProtocolError(`invalid length ${len} in ${this.peer} message of type ${typeName(this.buf[0]!)}`);
    await this.need(len + 1);
    return this.take(len + 1);
  }

  /** Stop listening on the socket; returns bytes already received but unread. */
  detach(): Buffer {
    // Paused so no byte is lost between this listener and the next owner's.
    this.socket.pause();
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onEnd);
    this.socket.off("close", this.onEnd);
    this.socket.off("error", this.onError);
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }
}
