// Tickets and grants in a JetStream KV bucket (file storage, so they survive a
// restart of the approval service or of NATS). Keys: "ticket.<id>", "grant.<id>";
// values: the protobuf messages. Every change is a compare-and-set on the key's
// revision, so several approval service copies never overwrite each other's
// decisions. A KV watch keeps an in-memory copy for listing and grant matching.
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { Grant, Ticket } from "@gatehouse/proto";
import { RpcError, Status, type Logger } from "@gatehouse/runtime";

const SAFE_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function checkId(kind: "ticket" | "grant", id: string): void {
  if (!SAFE_ID.test(id)) throw new RpcError(Status.INVALID_ARGUMENT, `${kind} id must be 1-64 letters, digits, "-" or "_"`);
}

interface Versioned<T> {
  value: T;
  revision: number;
}

export class ApprovalStore {
  readonly tickets = new Map<string, Versioned<Ticket>>();
  readonly grants = new Map<string, Versioned<Grant>>();
  private stopWatch: (() => void) | undefined;

  private constructor(
    private readonly kv: KV,
    private readonly log: Logger,
  ) {}

  static async open(nc: NatsConnection, bucket: string, log: Logger, onChange?: (key: string) => void): Promise<ApprovalStore> {
    // History 10: the last changes of a ticket stay inspectable with `nats kv history`.
    // JetStream may still be recovering right after a NATS restart: retry for a while.
    let kv: KV | undefined;
    for (let attempt = 0; !kv; attempt++) {
      try {
        kv = await new Kvm(nc).create(bucket, { history: 10, description: "Gatehouse approval tickets and standing grants" });
      } catch (e) {
        if (attempt >= 30) throw new Error(`cannot open the approval KV bucket "${bucket}" (approvals.bucket): ${(e as Error).message}; is JetStream enabled on NATS?`);
        log.warn({ bucket, err: (e as Error).message }, "approval KV bucket not available yet; retrying");
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    const store = new ApprovalStore(kv, log);
    await store.load();
    await store.watch(onChange);
    return store;
  }

  private apply(key: string, value: Uint8Array, revision: number): boolean {
    try {
      if (key.startsWith("ticket.")) {
        const id = key.slice(7);
        if ((this.tickets.get(id)?.revision ?? 0) >= revision) return false;
        this.tickets.set(id, { value: Ticket.decode(value), revision });
        return true;
      }
      if (key.startsWith("grant.")) {
        const id = key.slice(6);
        if ((this.grants.get(id)?.revision ?? 0) >= revision) return false;
        this.grants.set(id, { value: Grant.decode(value), revision });
        return true;
      }
    } catch (e) {
      this.log.error({ key, err: (e as Error).message }, "undecodable approval record ignored");
    }
    return false;
  }

  private async load(): Promise<void> {
    const keys: string[] = [];
    for await (const k of await this.kv.keys()) keys.push(k);
    for (const k of keys) {
      const e = await this.kv.get(k);
      if (e && e.operation === "PUT") this.apply(k, e.value, e.revision);
    }
  }

  private async watch(onChange?: (key: string) => void): Promise<void> {
    const iter = await this.kv.watch({ ignoreDeletes: true });
    this.stopWatch = () => iter.stop();
    void (async () => {
      try {
        for await (const e of iter) {
          if (e.operation !== "PUT") continue;
          if (this.apply(e.key, e.value, e.revision)) onChange?.(e.key);
        }
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, "approval KV watch ended");
      }
    })();
  }

  /** The ticket as stored now (read from the KV, not the cache). */
  async getTicket(id: string): Promise<Versioned<Ticket> | undefined> {
    checkId("ticket", id);
    const e = await this.kv.get(`ticket.${id}`);
    if (!e || e.operation !== "PUT") return undefined;
    this.apply(`ticket.${id}`, e.value, e.revision);
    return { value: Ticket.decode(e.value), revision: e.revision };
  }

  async getGrant(id: string): Promise<Versioned<Grant> | undefined> {
    checkId("grant", id);
    const e = await this.kv.get(`grant.${id}`);
    if (!e || e.operation !== "PUT") return undefined;
    this.apply(`grant.${id}`, e.value, e.revision);
    return { value: Grant.decode(e.value), revision: e.revision };
  }

  /** Create a new ticket; false when the id exists already. */
  async createTicket(t: Ticket): Promise<boolean> {
    try {
      const rev = await this.kv.create(`ticket.${t.id}`, Ticket.encode(t).finish());
      this.apply(`ticket.${t.id}`, Ticket.encode(t).finish(), rev);
      return true;
    } catch (e) {
      if (/wrong last sequence|key exists/i.test((e as Error).message)) return false;
      throw e;
    }
  }

  /**
   * Read-modify-write a ticket with compare-and-set, retrying on a concurrent change.
   * `change` returns false to leave the ticket as it is.
   */
  async updateTicket(id: string, change: (t: Ticket) => boolean): Promise<{ ticket: Ticket; changed: boolean }> {
    for (let attempt = 0; ; attempt++) {
      const cur = await this.getTicket(id);
      if (!cur) throw new RpcError(Status.NOT_FOUND, `no ticket ${id}`);
      const t = cur.value;
      if (!change(t)) return { ticket: t, changed: false };
      const bytes = Ticket.encode(t).finish();
      try {
        const rev = await this.kv.update(`ticket.${id}`, bytes, cur.revision);
        this.apply(`ticket.${id}`, bytes, rev);
        return { ticket: t, changed: true };
      } catch (e) {
        if (attempt < 5 && /wrong last sequence/i.test((e as Error).message)) continue;
        throw e;
      }
    }
  }

  async putGrant(g: Grant, revision?: number): Promise<void> {
    const bytes = Grant.encode(g).finish();
    const rev = revision === undefined ? await this.kv.create(`grant.${g.id}`, bytes) : await this.kv.update(`grant.${g.id}`, bytes, revision);
    this.apply(`grant.${g.id}`, bytes, rev);
  }

  close(): void {
    this.stopWatch?.();
  }
}
