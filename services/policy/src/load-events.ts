// PolicyLoaded audit events: every load of the policy directory (at start and on
// every reload attempt, rejected ones too) goes to the JetStream audit stream, so
// evidence can name the policy set, file by file with content hashes, that was in
// force at any time.
//
// Decisions never wait for this: events queue in memory and a background loop
// publishes them in order, retrying (stream creation included) until JetStream
// acknowledges each one. Ids are "<instance>:<n>", fixed before the first attempt,
// so a retry that did land is stored once (JetStream's duplicate window, then the
// audit writer's repeat check).
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import { AuditEvent, PolicyLoaded } from "@gatehouse/proto";
import { AuditPublisher, ensureAuditStream, type Logger } from "@gatehouse/runtime";
import type { LoadedPolicy, PolicyFile } from "./policies.js";

export const POLICY_SERVICE_IDENTITY = "policy-service";

/** The content of one load, as the event reports it. */
export interface LoadReport {
  trigger: "start" | "reload";
  /** Content version of the files read (the version in force when accepted). */
  version: string;
  files: PolicyFile[];
  policies: LoadedPolicy[];
  errors: string[];
  accepted: boolean;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export function policyLoadedBody(r: LoadReport): PolicyLoaded {
  const counts = new Map<string, number>();
  for (const p of r.policies) counts.set(p.file, (counts.get(p.file) ?? 0) + 1);
  return {
    version: r.version,
    files: r.files.map((f) => ({ path: f.name, sha256: f.sha256 ?? sha256Hex(f.text), policies: counts.get(f.name) ?? 0 })),
    trigger: r.trigger,
    errors: r.errors,
    accepted: r.accepted,
  };
}

export interface PolicyLoadRecorderOptions {
  /** JetStream audit stream name (config.audit.stream). */
  stream: string;
  log: Logger;
  /** Stable name of this policy-service instance (default: host, pid and start time). */
  instanceId?: string;
  ackTimeoutMs?: number;
  /** How long close() waits for unpublished events (default 5000 ms). */
  closeTimeoutMs?: number;
  /** Retry delays grow to this (default 5000 ms). */
  maxBackoffMs?: number;
}

let instances = 0;

export class PolicyLoadRecorder {
  readonly instanceId: string;
  private readonly publisher: AuditPublisher;
  private readonly queue: AuditEvent[] = [];
  private seq = 0;
  private streamReady = false;
  private running = false;
  private closed = false;
  private failures = 0;
  private wake: (() => void) | undefined;
  private drained: Array<() => void> = [];

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: PolicyLoadRecorderOptions,
  ) {
    this.instanceId = opts.instanceId ?? `policy-${hostname()}-${process.pid}-${Date.now().toString(36)}-${++instances}`;
    this.publisher = new AuditPublisher(nc, { ackTimeoutMs: opts.ackTimeoutMs ?? 2000, log: opts.log });
  }

  /** Queue the event for this load; returns its id. Never blocks, never throws. */
  record(r: LoadReport, now = Date.now()): string {
    const id = `${this.instanceId}:${++this.seq}`;
    if (this.closed) {
      this.opts.log.error({ eventId: id, version: r.version }, "policy_loaded event not recorded: the policy service is stopping");
      return id;
    }
    this.queue.push(
      AuditEvent.fromPartial({
        id,
        timeUnixMicros: now * 1000,
        sessionId: this.instanceId,
        listenerId: this.instanceId,
        identity: { subject: POLICY_SERVICE_IDENTITY, name: POLICY_SERVICE_IDENTITY, groups: [], kind: "service" },
        body: { $case: "policyLoaded", policyLoaded: policyLoadedBody(r) },
      }),
    );
    this.kick();
    return id;
  }

  /** Events not yet acknowledged by JetStream. */
  get pending(): number {
    return this.queue.length;
  }

  /** Resolves when every queued event is acknowledged, or after timeoutMs (false). */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.queue.length === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([
      new Promise<boolean>((resolve) => this.drained.push(() => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return ok;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const ok = await this.flush(this.opts.closeTimeoutMs ?? 5000);
    this.closed = true;
    this.wake?.();
    if (!ok) {
      this.opts.log.error(
        { events: this.queue.map((e) => e.id) },
        "policy service stopped before JetStream acknowledged these policy_loaded events: they are NOT in the audit trail",
      );
    }
    await this.publisher.close();
  }

  private kick(): void {
    this.wake?.();
    if (this.running) return;
    this.running = true;
    void this.loop().finally(() => {
      this.running = false;
    });
  }

  private async loop(): Promise<void> {
    while (!this.closed && this.queue.length > 0) {
      const ev = this.queue[0]!;
      try {
        if (!this.streamReady) {
          await ensureAuditStream(this.nc, this.opts.stream);
          this.streamReady = true;
        }
        await this.publisher.record(ev);
        this.queue.shift();
        if (this.failures > 0) this.opts.log.info({ eventId: ev.id, attempts: this.failures + 1 }, "policy_loaded event recorded after retries");
        this.failures = 0;
        if (this.queue.length === 0) for (const d of this.drained.splice(0)) d();
      } catch (e) {
        this.failures++;
        // Loud at first, then every 10th attempt: the event exists only in this process.
        if (this.failures === 1 || this.failures % 10 === 0) {
          this.opts.log.error({ eventId: ev.id, attempts: this.failures, queued: this.queue.length, err: (e as Error).message }, "policy_loaded event not recorded yet; retrying in the background");
        }
        // "no audit stream" also means the stream may have gone: create it again.
        if (/no audit stream|JetStream is not available|cannot (create|read)/.test((e as Error).message)) this.streamReady = false;
        const delay = Math.min(this.opts.maxBackoffMs ?? 5000, 100 * 2 ** Math.min(this.failures - 1, 10));
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = undefined;
      }
    }
  }
}
