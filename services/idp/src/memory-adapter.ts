// In-memory storage for oidc-provider models (sessions, interactions, codes,
// grants, tokens). Deliberate for a dev IdP: state is per process and goes away
// on restart (signing keys and the client secret persist separately in the data
// dir, so issued JWT access tokens stay verifiable). Expired entries are dropped
// on read, and swept when a model's map is full.
import type { Adapter, AdapterFactory, AdapterPayload } from "oidc-provider";

interface Entry {
  payload: AdapterPayload;
  expiresAt: number;
}

const MAX_ENTRIES_PER_MODEL = 100_000;

function sweep(store: Map<string, Entry>, now = Date.now()): void {
  for (const [id, e] of store) if (e.expiresAt <= now) store.delete(id);
}

/** Storage for one provider instance: one map per model name. */
export function memoryAdapterFactory(): AdapterFactory {
  const stores = new Map<string, Map<string, Entry>>();
  return (name) => {
    let s = stores.get(name);
    if (!s) stores.set(name, (s = new Map()));
    return new MemoryAdapter(name, s);
  };
}

class MemoryAdapter implements Adapter {
  constructor(
    readonly name: string,
    private readonly store: Map<string, Entry>,
  ) {}

  private get(id: string): Entry | undefined {
    const e = this.store.get(id);
    if (e && e.expiresAt <= Date.now()) {
      this.store.delete(id);
      return undefined;
    }
    return e;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    if (this.store.size >= MAX_ENTRIES_PER_MODEL) sweep(this.store);
    if (this.store.size >= MAX_ENTRIES_PER_MODEL) throw new Error(`dev IdP: too many ${this.name} entries in memory`);
    this.store.set(id, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY });
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.get(id)?.payload;
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    for (const [id, e] of this.store) if (e.payload.uid === uid) return this.get(id)?.payload;
    return undefined;
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    for (const [id, e] of this.store) if (e.payload.userCode === userCode) return this.get(id)?.payload;
    return undefined;
  }

  async consume(id: string): Promise<void> {
    const e = this.get(id);
    if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id: string): Promise<void> {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    for (const [id, e] of this.store) if (e.payload.grantId === grantId) this.store.delete(id);
  }
}
