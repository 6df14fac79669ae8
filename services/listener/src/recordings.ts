// Session recordings for plugins (ctx.recording): lines go in order, batched into
// chunks of complete lines, to JetStream subject gatehouse.recording.<session>
// (docs/recordings.md). Each chunk's Nats-Msg-Id is "<session>:rec:<seq>", so a
// retried publish is stored once.
//
// Lossless: a chunk is retried until JetStream acknowledges it, and chunks stay
// strictly in order. While JetStream does not answer, lines wait in memory up to
// maxBacklogBytesPerSession; past that the recording ends with an explicit
// `truncated` marker saying why. The size limit (maxBytesPerSession) ends a
// recording the same way. Nothing is ever dropped without a marker.
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";
import { ensureRecordingStream, recordingSubject, type Logger } from "@gatehouse/runtime";
import type { RecordingWriter } from "@gatehouse/plugin-sdk";

/** Largest chunk built from several lines (a single longer line travels alone). */
export const MAX_CHUNK_BYTES = 256 * 1024;

export interface RecordingLimits {
  /** 0 = unlimited. */
  maxBytesPerSession: number;
  maxBacklogBytesPerSession: number;
  /** Data rows per result set a SQL recording keeps (0 = all; default 1000). */
  maxRowsPerResult?: number;
  /** How long lines wait to share a chunk (default 100 ms). */
  flushMs?: number;
  /** Longest wait between two attempts of an unacknowledged chunk (default 2000 ms). */
  retryMaxMs?: number;
  /** Per-attempt publish timeout (default 5000 ms). */
  publishTimeoutMs?: number;
}

interface Chunk {
  seq: number;
  data: string;
  bytes: number;
  last: boolean;
}

export class Recordings {
  private readonly js: JetStreamClient;
  private ready: Promise<void> | undefined;
  private readonly open = new Set<SessionRecording>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly limits: RecordingLimits,
  ) {
    this.js = jetstream(nc);
  }

  ensure(): Promise<void> {
    this.ready ??= ensureRecordingStream(this.nc).catch((e) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  publish(subject: string, c: Chunk, sessionId: string, kind: string): Promise<unknown> {
    const h = headers();
    h.set("Gatehouse-Kind", kind);
    h.set("Gatehouse-Seq", String(c.seq));
    if (c.last) h.set("Gatehouse-Last", "true");
    return this.ensure().then(() => this.js.publish(subject, c.data, { msgID: `${sessionId}:rec:${c.seq}`, headers: h, timeout: this.limits.publishTimeoutMs ?? 5000 }));
  }

  writer(sessionId: string, kind: string): RecordingWriter {
    const r = new SessionRecording(this, this.log, this.limits, sessionId, kind, this.nc.info?.max_payload ?? 1024 * 1024);
    this.open.add(r);
    r.onDone = () => this.open.delete(r);
    return r;
  }

  /** Recordings not fully acknowledged yet. */
  get pending(): number {
    return this.open.size;
  }

  /**
   * Listener shutdown: close every open recording and wait up to `timeoutMs` for
   * JetStream to take what is buffered; what it could not take is named in the log.
   */
  async drain(timeoutMs: number): Promise<void> {
    const all = [...this.open];
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
    const done = await Promise.race([Promise.all(all.map((r) => r.close())).then(() => "done" as const), timeout]);
    clearTimeout(timer);
    if (done === "timeout") {
      for (const r of this.open) {
        this.log.error({ session: r.sessionId, unacknowledgedBytes: r.backlogBytes }, "listener stopping: JetStream did not acknowledge the end of this recording");
      }
    }
  }
}

class SessionRecording implements RecordingWriter {
  private readonly t0 = performance.now();
  get maxRowsPerResult(): number {
    return this.limits.maxRowsPerResult ?? 1000;
  }
  private readonly subject: string;
  private buf: string[] = [];
  private bufBytes = 0;
  private readonly queue: Chunk[] = [];
  private queuedBytes = 0;
  private seq = 0;
  /** Bytes of lines accepted (the size limit counts these; the marker is extra). */
  private recorded = 0;
  private state: "open" | "truncated" | "closed" = "open";
  private timer: NodeJS.Timeout | undefined;
  private pumping: Promise<void> | undefined;
  private failingSince = 0;
  private closing: Promise<void> | undefined;
  onDone: (() => void) | undefined;

  constructor(
    private readonly owner: Recordings,
    private readonly log: Logger,
    private readonly limits: RecordingLimits,
    readonly sessionId: string,
    private readonly kind: string,
    private readonly maxPayload: number,
  ) {
    this.subject = recordingSubject(sessionId);
  }

  get backlogBytes(): number {
    return this.bufBytes + this.queuedBytes;
  }

  write(chunk: string): void {
    if (this.state !== "open" || chunk.length === 0) return;
    const n = Buffer.byteLength(chunk);
    const limit = this.limits.maxBytesPerSession;
    if (limit > 0 && this.recorded + n > limit) return this.overLimit(chunk, limit);
    if (this.backlogBytes + n > this.limits.maxBacklogBytesPerSession) {
      const secs = this.failingSince ? Math.round((Date.now() - this.failingSince) / 1000) : 0;
      return this.truncate(
        `JetStream did not acknowledge recording chunks for ${secs} s and the listener's backlog of ${this.limits.maxBacklogBytesPerSession} bytes for this session is full`,
        firstLineTime(chunk) ?? this.now(),
      );
    }
    if (n > this.maxPayload - 1024) {
      // Chunks hold complete lines, and this one line cannot be sent in one message.
      return this.truncate(`a recording line of ${n} bytes exceeds the largest message the bus accepts (${this.maxPayload} bytes)`, firstLineTime(chunk) ?? this.now());
    }
    this.append(chunk, n);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.state !== "closed") {
        this.state = "closed";
        this.flush(true);
      }
      while (this.pumping) await this.pumping;
      this.onDone?.();
    })();
    return this.closing;
  }

  private append(chunk: string, n: number): void {
    this.recorded += n;
    if (this.bufBytes > 0 && this.bufBytes + n > MAX_CHUNK_BYTES) this.flush(false);
    this.buf.push(chunk);
    this.bufBytes += n;
    if (this.bufBytes >= MAX_CHUNK_BYTES) this.flush(false);
    else this.timer ??= setTimeout(() => this.flush(false), this.limits.flushMs ?? 100);
  }

  /** Keep the whole lines of `chunk` that still fit under the limit, then end the recording. */
  private overLimit(chunk: string, limit: number): void {
    let start = 0;
    let t: number | undefined;
    for (;;) {
      const nl = chunk.indexOf("\n", start);
      const end = nl < 0 ? chunk.length : nl + 1;
      const line = chunk.slice(start, end);
      const n = Buffer.byteLength(line);
      if (this.recorded + n > limit) {
        t = firstLineTime(line);
        break;
      }
      this.append(line, n);
      start = end;
      if (start >= chunk.length) return;
    }
    this.truncate(`recording limit of ${limit} bytes reached`, t ?? this.now(), limit);
  }

  private truncate(reason: string, t: number, limitBytes?: number): void {
    const marker = JSON.stringify([t, "truncated", limitBytes === undefined ? { reason, atBytes: this.recorded } : { reason, limitBytes, atBytes: this.recorded }]) + "\n";
    this.buf.push(marker);
    this.bufBytes += Buffer.byteLength(marker);
    this.state = "truncated";
    this.log.warn({ session: this.sessionId, kind: this.kind, reason, atBytes: this.recorded }, "recording truncated (marked in the recording); the session goes on");
    this.flush(false);
  }

  private now(): number {
    return Math.round((performance.now() - this.t0) * 1000) / 1e6;
  }

  private flush(last: boolean): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buf.length === 0 && !last) return;
    const data = this.buf.length === 1 ? this.buf[0]! : this.buf.join("");
    const c: Chunk = { seq: ++this.seq, data, bytes: this.bufBytes, last };
    this.buf = [];
    this.bufBytes = 0;
    this.queue.push(c);
    this.queuedBytes += c.bytes;
    this.kick();
  }

  private kick(): void {
    if (this.pumping) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      // A chunk queued while the pump was finishing.
      if (this.queue.length > 0) this.kick();
    });
  }

  /** Publish queued chunks in order, each until acknowledged. */
  private async pump(): Promise<void> {
    let wait = 100;
    while (this.queue.length > 0) {
      const c = this.queue[0]!;
      try {
        await this.owner.publish(this.subject, c, this.sessionId, this.kind);
      } catch (e) {
        if (!this.failingSince) {
          this.failingSince = Date.now();
          this.log.warn({ session: this.sessionId, seq: c.seq, err: (e as Error).message }, "recording chunk not acknowledged by JetStream; retrying until it is");
        }
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(wait * 2, this.limits.retryMaxMs ?? 2000);
        continue;
      }
      if (this.failingSince) {
        this.log.info({ session: this.sessionId, seq: c.seq, afterMs: Date.now() - this.failingSince }, "recording chunks acknowledged again");
        this.failingSince = 0;
      }
      wait = 100;
      this.queue.shift();
      this.queuedBytes -= c.bytes;
    }
  }
}

/** The `t` of a `[t, code, data]` line (the first line of `s`), if it is one. */
function firstLineTime(s: string): number | undefined {
  if (s[0] !== "[") return undefined;
  const comma = s.indexOf(",");
  const t = comma > 0 ? Number(s.slice(1, comma)) : NaN;
  return Number.isFinite(t) ? t : undefined;
}
