// Single active chaining writer: a lease in a JetStream key-value bucket.
//
// The chain is a pure function of the stream (positions follow JetStream order,
// rows are deterministic), so two writers could never fork it; but two writers
// would insert the same rows twice. The lease keeps one writer active: it is
// created with KV create() (fails while another holder's key exists), renewed
// with update() at the revision it holds, and lapses ttl after the holder's
// last renewal (bucket max age), so a SIGKILLed holder's successor waits at
// most ttl. A holder that could not renew in time stops writing before its
// lease can have lapsed (valid() goes false at 2/3 of ttl). Checkpoint appends
// additionally carry the expected last sequence, so even a stale holder cannot
// append a second continuation of the chain.
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "@gatehouse/runtime";

const KEY = "writer";

export class WriterLock {
  private kv?: KV;
  private revision = 0;
  private renewedAt = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: string,
    private readonly ttlMs: number,
    private readonly owner: string,
    private readonly log: Logger,
  ) {}

  private async open(): Promise<KV> {
    if (this.kv) return this.kv;
    const kvm = new Kvm(this.nc);
    try {
      this.kv = await kvm.create(this.bucket, { ttl: this.ttlMs, history: 1 });
    } catch {
      this.kv = await kvm.open(this.bucket);
    }
    return this.kv;
  }

  /** Try once to take the lease; true when held. */
  async acquire(): Promise<boolean> {
    if (this.valid()) return true;
    const kv = await this.open();
    try {
      this.revision = await kv.create(KEY, this.owner);
    } catch {
      return false;
    }
    this.renewedAt = Date.now();
    clearInterval(this.timer);
    this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(this.ttlMs / 4)));
    this.timer.unref();
    return true;
  }

  private async renew(): Promise<void> {
    if (!this.kv || this.revision === 0) return;
    try {
      this.revision = await this.kv.update(KEY, this.owner, this.revision);
      this.renewedAt = Date.now();
    } catch (e) {
      if (Date.now() - this.renewedAt > this.ttlMs / 2) this.log.warn({ err: (e as Error).message }, "could not renew the audit writer lease");
    }
  }

  /** Held, with a safety margin before it could lapse. */
  valid(): boolean {
    return this.revision !== 0 && Date.now() - this.renewedAt < (this.ttlMs * 2) / 3;
  }

  /**
   * Held, renewing first when the margin has run out (a long synchronous batch
   * can delay the renewal timer): update() at our revision succeeds only while
   * nobody else has taken the key, so a success proves we still hold it.
   */
  async ensure(): Promise<boolean> {
    if (this.valid()) return true;
    if (this.revision === 0) return false;
    await this.renew();
    return this.valid();
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    const rev = this.revision;
    this.revision = 0;
    if (this.kv && rev !== 0) await this.kv.delete(KEY, { previousSeq: rev }).catch(() => undefined);
  }
}
