// Splits a byte stream into typed protocol frames (1 type byte + int32 length).
// Frames that lie inside one received chunk are returned as zero-copy views of
// it; a frame spanning chunks is assembled once, when all its bytes are there.
import { ProtocolError, typeName } from "./protocol.js";

/** Frames buf[start..end) of one type, `count` of them, back to back. */
export interface FrameRun {
  buf: Buffer;
  start: number;
  end: number;
  count: number;
}

export class FrameReader {
  private parts: Buffer[] = [];
  /** Offset of the first unread byte in parts[0]. */
  private pos = 0;
  /** Unread bytes across parts. */
  private avail = 0;

  /** @param maxFrame largest accepted frame body; larger frames are a protocol error. */
  constructor(
    private readonly maxFrame: number,
    private readonly peer: string,
  ) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.parts.push(chunk);
    this.avail += chunk.length;
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.avail;
  }

  /** The next complete frame (header included), or undefined until more bytes arrive. */
  next(): Buffer | undefined {
    if (this.avail < 5) return undefined;
    let head = this.parts[0]!;
    if (head.length - this.pos < 5) head = this.coalesce();
    const len = head.readInt32BE(this.pos + 1);
    if (len < 4) throw new ProtocolError(`invalid length ${len} in ${this.peer} message of type ${typeName(head[this.pos]!)}`);
    if (len - 4 > this.maxFrame)
      throw new ProtocolError(`${this.peer} message of type ${typeName(head[this.pos]!)} is ${len - 4} bytes, larger than the limit of ${this.maxFrame} bytes`);
    const total = len + 1;
    if (this.avail < total) return undefined;
    if (head.length - this.pos < total) head = this.coalesce();
    const f = head.subarray(this.pos, this.pos + total);
    this.pos += total;
    this.avail -= total;
    if (this.pos === head.length) {
      this.parts.shift();
      this.pos = 0;
    }
    return f;
  }

  /**
   * Consecutive complete frames of `type` at the read position that lie inside
   * one received chunk, consumed at once: a bulk result's DataRows without a view
   * per frame. Undefined when the next frame is of another type or spans chunks
   * (next() then returns it as usual).
   */
  takeRun(type: number): FrameRun | undefined {
    const head = this.parts[0];
    if (head === undefined) return undefined;
    const start = this.pos;
    let p = start;
    let count = 0;
    while (head.length - p >= 5 && head[p] === type) {
      const len = head.readInt32BE(p + 1);
      // Invalid lengths are left to next(), which reports them.
      if (len < 4 || len - 4 > this.maxFrame || head.length - p < len + 1) break;
      p += len + 1;
      count++;
    }
    if (count === 0) return undefined;
    this.avail -= p - start;
    if (p === head.length) {
      this.parts.shift();
      this.pos = 0;
    } else this.pos = p;
    return { buf: head, start, end: p, count };
  }

  /** Everything not yet returned (used when handing a socket over). */
  takeRest(): Buffer {
    const rest = this.avail === 0 ? Buffer.alloc(0) : this.coalesce().subarray(this.pos);
    this.parts = [];
    this.pos = 0;
    this.avail = 0;
    return rest;
  }

  private coalesce(): Buffer {
    const first = this.parts[0]!.subarray(this.pos);
    const merged = this.parts.length === 1 ? first : Buffer.concat([first, ...this.parts.slice(1)], this.avail);
    this.parts = [merged];
    this.pos = 0;
    return merged;
  }
}

/**
 * Frames waiting to be written, in order. A frame that directly follows the
 * previous one in memory (slices of one upstream read, rows the masker rebuilt
 * into one slab, a client's pipeline) extends it, so a run leaves as one buffer
 * and one socket write; the buffer for a run is made only when taken.
 */
export class OutQueue {
  private done: Buffer[] = [];
  private run: ArrayBufferLike | undefined;
  private runOff = 0;
  private runLen = 0;

  push(f: Buffer): void {
    if (f.buffer === this.run && this.runOff + this.runLen === f.byteOffset) {
      this.runLen += f.length;
      return;
    }
    this.seal();
    this.run = f.buffer;
    this.runOff = f.byteOffset;
    this.runLen = f.length;
  }

  get empty(): boolean {
    return this.run === undefined && this.done.length === 0;
  }

  /** Everything queued, oldest first; the queue is empty afterwards. */
  take(): Buffer[] {
    this.seal();
    const out = this.done;
    this.done = [];
    return out;
  }

  private seal(): void {
    if (this.run === undefined) return;
    this.done.push(Buffer.from(this.run, this.runOff, this.runLen));
    this.run = undefined;
  }
}
