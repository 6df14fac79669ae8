// LRU cache of policy decisions. Entries belong to one policy version: the whole
// cache is dropped when the version changes, and an answer that was in flight
// across a drop is not stored (generation check), so a decision taken under an
// old policy set is never reused under a new one.
import type { Connection, Decision, Identity } from "@gatehouse/proto";

export interface CacheStats {
  size: number;
  hits: number;
  misses: number;
  clears: number;
  version: string | undefined;
}

const SEP = "\u0000";

/**
 * Everything the decision may depend on when `cacheable` is set. Groups are sorted
 * so their order in the token does not matter; the version is part of the key as
 * a second guard next to clearing.
 */
export function decisionKey(identity: Identity, connection: Connection, fingerprint: string, version: string): string {
  const groups = [...identity.groups].sort().join("\u0001");
  return [identity.issuer, identity.subject, identity.name, groups, identity.kind, connection.name, fingerprint, version].join(SEP);
}

export class DecisionCache {
  private readonly map = new Map<string, Decision>();
  private hits = 0;
  private misses = 0;
  private clears = 0;
  /** Policy version of every entry in the cache (undefined until known). */
  private version: string | undefined;
  /** Bumped on every clear; an answer is stored only if no clear happened while it was computed. */
  private gen = 0;

  constructor(readonly maxEntries: number) {}

  get generation(): number {
    return this.gen;
  }

  get currentVersion(): string | undefined {
    return this.version;
  }

  key(identity: Identity, connection: Connection, fingerprint: string): string {
    return decisionKey(identity, connection, fingerprint, this.version ?? "");
  }

  get(key: string): Decision | undefined {
    const d = this.map.get(key);
    if (d === undefined) {
      this.misses++;
      return undefined;
    }
    // Re-insert: Map keeps insertion order, so the first key is the least recently used.
    this.map.delete(key);
    this.map.set(key, d);
    this.hits++;
    return d;
  }

  /** Drop everything; `version` is the new policy version when known. */
  clear(version?: string): void {
    this.map.clear();
    this.version = version;
    this.gen++;
    this.clears++;
  }

  /**
   * Store a decision obtained while the cache was at generation `gen`. A decision
   * from a different policy version than the cache's drops the cache first.
   */
  store(identity: Identity, connection: Connection, fingerprint: string, decision: Decision, gen: number): void {
    if (gen !== this.gen) return;
    this.adopt(decision.policyVersion);
    if (this.maxEntries <= 0 || !decision.cacheable) return;
    const key = this.key(identity, connection, fingerprint);
    this.map.delete(key);
    this.map.set(key, decision);
    if (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next().value;
      if (oldest !== undefined) this.map.delete(oldest);
    }
  }

  /** Note the policy version of an answer that is not stored (not cacheable, no fingerprint). */
  observe(version: string, gen: number): void {
    if (gen === this.gen) this.adopt(version);
  }

  private adopt(version: string): void {
    if (version === this.version) return;
    if (this.version === undefined && this.map.size === 0) this.version = version;
    else this.clear(version);
  }

  stats(): CacheStats {
    return { size: this.map.size, hits: this.hits, misses: this.misses, clears: this.clears, version: this.version };
  }
}
