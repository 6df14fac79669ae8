// Listener-side audit publisher, on the hot path of every statement.
//
// Group commit: events from all sessions are sent as one JetStream message per
// batch (body: AuditBatch protobuf, Nats-Msg-Id: the batch id). When fewer than
// maxInFlight publishes are waiting for their ack, queued record() events go out
// at once; otherwise they accumulate and leave as the next batch when an ack
// arrives. So a lone statement pays one round trip and a busy listener pays one
// per batch. recordLater() events (results, session ends) nobody waits for ride
// along with the next batch, or leave on their own after laterDelayMs: a busy
// session's result then shares the JetStream message of its next command.
//
// Publishing is a plain PUB with a reply subject on one inbox subscription per
// publisher, not a request per batch: the ack is parsed here (PubAck JSON, or a
// 503 status when no stream listens), which saves the per-request objects and
// timers of nc.request() on the hot path.
//
// record(): resolves when JetStream acked the batch holding the event, rejects
// after ackTimeoutMs (the caller refuses the statement: fail closed).
// recordLater(): nobody waits; a failed batch holding such events is retried
// with the same id and bytes (JetStream deduplicates it) until acked or close().
import { createInbox, headers, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { AuditEvent } from "@gatehouse/proto";
import type { Logger } from "pino";
import { AUDIT_EVENTS_SUBJECT } from "./audit-stream.js";

export interface AuditPublisherOptions {
  /** Subject the batches go to (default "gatehouse.audit.events"). */
  subject?: string;
  /** How long record() waits for the JetStream ack (default 2000 ms). */
  ackTimeoutMs?: number;
  /** Most events in one batch (default 1000). */
  maxBatch?: number;
  /**
   * Publishes waiting for their ack at the same time (default 1: classic group
   * commit; measured on the PostgreSQL bench, 1 gives the fewest and largest
   * messages, hence the least CPU in listener, nats-server and audit service).
   */
  maxInFlight?: number;
  /** Where repeated failures of recordLater() batches are reported. */
  log?: Logger;
  /** How long close() waits for unacked events (default 5000 ms). */
  closeTimeoutMs?: number;
  /** Longest a recordLater() event waits for a record() batch to share (default 5 ms). */
  laterDelayMs?: number;
}

interface Entry {
  bytes: Uint8Array;
  id: string;
  /** Set for record(): the caller waiting for the ack. */
  waiter?: { resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout; settled: boolean };
}

interface Batch {
  id: string;
  body: Uint8Array;
  entries: Entry[];
  attempts: number;
  /** Holds recordLater() events: retried until acked. */
  retry: boolean;
}

// Leave room under the server's max_payload for headers.
const PAYLOAD_HEADROOM = 4096;
const MAX_BACKOFF_MS = 5000;

interface PendingAck {
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class AuditPublisher {
  private readonly subject: string;
  private readonly ackTimeoutMs: number;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly closeTimeoutMs: number;
  private readonly laterDelayMs: number;
  private readonly log?: Logger;
  private queue: Entry[] = [];
  /** record() entries in `queue`: while there are none, the queue waits for laterTimer. */
  private queuedWaiters = 0;
  private laterTimer: NodeJS.Timeout | undefined;
  /** The oldest queued recordLater() event has waited laterDelayMs: send it with the next free slot. */
  private laterDue = false;
  /** Replies to our publishes arrive on <inbox>.<n>. */
  private readonly inbox: string;
  private ackSub: Subscription | undefined;
  private readonly acks = new Map<string, PendingAck>();
  private ackSeq = 0;
  private retryReady: Batch[] = [];
  /** Batches waiting for their backoff timer. */
  private readonly backingOff = new Map<Batch, NodeJS.Timeout>();
  private inFlight = 0;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  /** recordLater() events not yet acked, for the loud failure log. */
  private unackedLater = 0;

  constructor(
    private readonly nc: NatsConnection,
    opts: AuditPublisherOptions = {},
  ) {
    this.subject = opts.subject ?? AUDIT_EVENTS_SUBJECT;
    this.inbox = createInbox();
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 2000;
    this.maxBatch = Math.max(1, opts.maxBatch ?? 1000);
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 1);
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 5000;
    this.laterDelayMs = Math.max(0, opts.laterDelayMs ?? 5);
    this.log = opts.log;
  }

  /** Publish the event; resolves once JetStream has stored it durably. */
  record(event: AuditEvent): Promise<void> {
    if (this.closed) return Promise.reject(new Error("the audit publisher is closed: the event was not recorded"));
    let entry: Entry;
    try {
      entry = this.entryFor(event);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve,
        reject,
        settled: false,
        timer: setTimeout(() => {
          this.settle(entry, new Error(`JetStream did not acknowledge the audit event within ${this.ackTimeoutMs} ms`));
        }, this.ackTimeoutMs),
      };
      entry.waiter = waiter;
      this.queue.push(entry);
      this.queuedWaiters++;
      this.pump();
    });
  }

  /** Publish the event without waiting; retried until acked or close(). */
  recordLater(event: AuditEvent): void {
    if (this.closed) {
      this.log?.error({ eventId: event.id }, "audit event dropped: recordLater() after close()");
      return;
    }
    let entry: Entry;
    try {
      entry = this.entryFor(event);
    } catch (e) {
      this.log?.error({ eventId: event.id, err: (e as Error).message }, "audit event cannot be published");
      return;
    }
    this.unackedLater++;
    this.queue.push(entry);
    if (this.queuedWaiters > 0 || this.closed) this.pump();
    else this.laterTimer ??= setTimeout(() => this.onLaterTimer(), this.laterDelayMs);
  }

  private onLaterTimer(): void {
    this.laterTimer = undefined;
    this.laterDue = true;
    this.pump();
  }

  /**
   * Resolves when every event handed over so far is acked (or its record() failed).
   * While JetStream keeps refusing a recordLater() batch this waits; close() is bounded.
   */
  flush(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stop accepting events; wait (bounded) for the ones still on their way. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Retries waiting for their backoff go out now.
    for (const [batch, timer] of this.backingOff) {
      clearTimeout(timer);
      this.retryReady.push(batch);
    }
    this.backingOff.clear();
    this.pump(true);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.flush().then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), this.closeTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      const lost = this.queue.length + this.unackedLater;
      this.log?.error(
        { unackedEvents: lost, closeTimeoutMs: this.closeTimeoutMs },
        "audit publisher closed with events JetStream never acknowledged: these events are NOT in the audit trail",
      );
    }
    for (const t of this.backingOff.values()) clearTimeout(t);
    this.backingOff.clear();
    for (const e of this.queue) this.settle(e, new Error("the audit publisher was closed before the event was published"));
    this.queue = [];
    this.queuedWaiters = 0;
    this.retryReady = [];
    if (this.laterTimer) clearTimeout(this.laterTimer);
    this.laterTimer = undefined;
    for (const a of this.acks.values()) {
      clearTimeout(a.timer);
      a.reject(new Error("the audit publisher was closed before JetStream acknowledged the batch"));
    }
    this.acks.clear();
    this.ackSub?.unsubscribe();
    this.ackSub = undefined;
  }

  /**
   * Encoded envelope fields (session, connection, protocol, identity, listener) by
   * identity object and the other four: the same for every event of a session, so
   * encoded once. Protobuf fields may come in any order on the wire; decoders see
   * the same event either way. Identity objects are never changed in place after
   * authentication (a session that changes identity assigns a new object).
   */
  private readonly envelopes = new WeakMap<NonNullable<AuditEvent["identity"]>, Map<string, Uint8Array>>();

  private encodeEvent(event: AuditEvent): Uint8Array {
    const identity = event.identity;
    if (!identity) return AuditEvent.encode(event).finish();
    let bySession = this.envelopes.get(identity);
    if (!bySession) this.envelopes.set(identity, (bySession = new Map()));
    const key = `${event.sessionId}\u0000${event.connection}\u0000${event.protocol}\u0000${event.listenerId}`;
    let envelope = bySession.get(key);
    if (!envelope) {
      envelope = AuditEvent.encode({ id: "", timeUnixMicros: 0, sessionId: event.sessionId, connection: event.connection, protocol: event.protocol, identity, listenerId: event.listenerId, body: undefined }).finish();
      // Sessions end; keep the map small for long-lived identities with many sessions.
      if (bySession.size >= 64) bySession.clear();
      bySession.set(key, envelope);
    }
    const own = AuditEvent.encode({ id: event.id, timeUnixMicros: event.timeUnixMicros, sessionId: "", connection: "", protocol: "", identity: undefined, listenerId: "", body: event.body }).finish();
    const out = new Uint8Array(envelope.length + own.length);
    out.set(own, 0);
    out.set(envelope, own.length);
    return out;
  }

  private entryFor(event: AuditEvent): Entry {
    const bytes = this.encodeEvent(event);
    const max = this.maxPayload();
    if (bytes.length > max) {
      throw new Error(`audit event ${event.id} is ${bytes.length} bytes, more than the NATS max_payload allows (${max} bytes)`);
    }
    return { bytes, id: event.id };
  }

  private maxPayload(): number {
    const serverMax = this.nc.info?.max_payload ?? 1024 * 1024;
    return serverMax - PAYLOAD_HEADROOM;
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.inFlight === 0 && this.retryReady.length === 0 && this.backingOff.size === 0;
  }

  /**
   * Send what may go now: retries, and queued events when a record() waits among
   * them (or `later` is set: the recordLater() delay is over, or closing).
   */
  private pump(later = false): void {
    while (this.inFlight < this.maxInFlight) {
      const ready = this.queue.length > 0 && (later || this.laterDue || this.closed || this.queuedWaiters > 0 || this.queue.length >= this.maxBatch);
      const batch = this.retryReady.shift() ?? (ready ? this.nextBatch() : undefined);
      if (!batch) break;
      this.inFlight++;
      void this.send(batch);
    }
    if (this.queue.length > 0 && this.queuedWaiters === 0 && !this.laterTimer && !this.laterDue) {
      // Only recordLater() events left behind: give them their own deadline.
      this.laterTimer = setTimeout(() => this.onLaterTimer(), this.laterDelayMs);
    }
    if (this.idle()) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Take queued events up to maxBatch events and the payload limit. */
  private nextBatch(): Batch | undefined {
    if (this.queue.length === 0) return undefined;
    const max = this.maxPayload();
    let size = 0;
    let n = 0;
    while (n < this.queue.length && n < this.maxBatch) {
      const len = this.queue[n]!.bytes.length;
      const add = len + 6; // field tag + length varint
      if (n > 0 && size + add > max) break;
      size += add;
      n++;
    }
    const entries = n === this.queue.length ? this.queue : this.queue.slice(0, n);
    this.queue = n === this.queue.length ? [] : this.queue.slice(n);
    for (const e of entries) if (e.waiter) this.queuedWaiters--;
    if (this.queue.length === 0) {
      this.laterDue = false;
      if (this.laterTimer) clearTimeout(this.laterTimer);
      this.laterTimer = undefined;
    }
    // Deterministic from its events, so a retry of the same batch deduplicates.
    const id = `${entries[0]!.id}+${entries.length}`;
    return { id, body: encodeBatch(id, entries), entries, attempts: 0, retry: entries.some((e) => !e.waiter) };
  }

  private async send(batch: Batch): Promise<void> {
    batch.attempts++;
    try {
      await this.publish(batch);
      for (const e of batch.entries) {
        if (e.waiter) this.settle(e);
        else this.unackedLater--;
      }
      if (batch.attempts > 1) {
        this.log?.warn({ batchId: batch.id, events: batch.entries.length, attempts: batch.attempts }, "audit batch acknowledged after retries");
      }
    } catch (err) {
      const error = publishError(err, this.subject, this.ackTimeoutMs);
      for (const e of batch.entries) if (e.waiter) this.settle(e, error);
      if (batch.retry) this.scheduleRetry(batch, error);
    } finally {
      this.inFlight--;
      this.pump();
    }
  }

  /** Publish the batch and resolve on JetStream's PubAck for it. */
  private publish(batch: Batch): Promise<void> {
    this.ackSub ??= this.nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => this.onAck(err, msg) });
    const token = String(++this.ackSeq);
    const h = headers();
    h.set("Nats-Msg-Id", batch.id);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.acks.delete(token);
        reject(new Error(`JetStream did not acknowledge the audit event within ${this.ackTimeoutMs} ms`));
      }, this.ackTimeoutMs);
      this.acks.set(token, { resolve, reject, timer });
      try {
        this.nc.publish(this.subject, batch.body, { reply: `${this.inbox}.${token}`, headers: h });
      } catch (e) {
        clearTimeout(timer);
        this.acks.delete(token);
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  private onAck(err: Error | null, msg: Msg): void {
    if (err) {
      // The inbox subscription failed (e.g. permissions): every waiting publish fails now.
      this.ackSub = undefined;
      for (const a of this.acks.values()) {
        clearTimeout(a.timer);
        a.reject(new Error(`cannot receive JetStream acknowledgements: ${err.message}`));
      }
      this.acks.clear();
      return;
    }
    const token = msg.subject.slice(this.inbox.length + 1);
    const a = this.acks.get(token);
    // Unknown: an ack that came after its timeout (the retry is deduplicated by id).
    if (!a) return;
    this.acks.delete(token);
    clearTimeout(a.timer);
    const failure = pubAckError(msg, this.subject);
    if (failure) a.reject(failure);
    else a.resolve();
  }

  private scheduleRetry(batch: Batch, error: Error): void {
    const waiting = batch.entries.filter((e) => !e.waiter).length;
    // Loud from the first failure: these events exist nowhere else.
    this.log?.error(
      { batchId: batch.id, batchEvents: batch.entries.length, attempts: batch.attempts, unackedEvents: this.unackedLater, err: error.message },
      `audit batch not acknowledged, retrying: ${waiting} events wait only in this process's memory`,
    );
    if (this.closed) return; // close() gives up on the rest and says so
    const delay = Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(batch.attempts - 1, 10));
    const timer = setTimeout(() => {
      this.backingOff.delete(batch);
      this.retryReady.push(batch);
      this.pump();
    }, delay);
    this.backingOff.set(batch, timer);
  }

  private settle(entry: Entry, error?: Error): void {
    const w = entry.waiter;
    if (!w || w.settled) return;
    w.settled = true;
    clearTimeout(w.timer);
    if (error) w.reject(error);
    else w.resolve();
  }
}

/** Why a reply to a publish is not a PubAck (undefined: it is one). */
function pubAckError(msg: Msg, subject: string): Error | undefined {
  if (msg.headers?.hasError) {
    if (msg.headers.code === 503) return new Error(`no audit stream: no JetStream stream stores subject ${subject} (start the audit service, which creates it)`);
    return new Error(`JetStream refused the audit event: ${msg.headers.code} ${msg.headers.description}`);
  }
  let ack: { stream?: unknown; seq?: unknown; error?: { code?: number; err_code?: number; description?: string } };
  try {
    ack = JSON.parse(Buffer.from(msg.data).toString("utf8")) as typeof ack;
  } catch {
    return new Error("JetStream refused the audit event: the acknowledgement is not JSON");
  }
  if (ack.error) return new Error(`JetStream refused the audit event: ${ack.error.description ?? "error"} (code ${ack.error.err_code ?? ack.error.code ?? "?"})`);
  if (typeof ack.stream !== "string" || ack.stream === "" || typeof ack.seq !== "number") {
    return new Error("JetStream refused the audit event: invalid acknowledgement (no stream and sequence)");
  }
  return undefined;
}

/** A clear message for why JetStream did not take the batch. */
function publishError(err: unknown, subject: string, timeoutMs: number): Error {
  const e = err as Error & { code?: string | number; cause?: Error };
  const text = `${e.message ?? String(err)} ${e.cause?.message ?? ""}`;
  const name = `${e.name} ${e.cause?.name ?? ""}`;
  if (/no responders|503/i.test(text) || /NoResponders/.test(name)) {
    return new Error(`no audit stream: no JetStream stream stores subject ${subject} (start the audit service, which creates it)`);
  }
  if (/timeout/i.test(text) || /Timeout/.test(name)) {
    return new Error(`JetStream did not acknowledge the audit event within ${timeoutMs} ms`);
  }
  return new Error(`JetStream refused the audit event: ${e.message ?? String(err)}`);
}

/** AuditBatch wire format from already-encoded events (each encoded once). */
function encodeBatch(id: string, entries: Entry[]): Uint8Array {
  const idBytes = Buffer.from(id, "utf8");
  const parts: Uint8Array[] = [Uint8Array.of(10), varint(idBytes.length), idBytes];
  for (const e of entries) parts.push(Uint8Array.of(18), varint(e.bytes.length), e.bytes);
  return Buffer.concat(parts);
}

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Uint8Array.from(out);
}
