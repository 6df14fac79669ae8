// Warm upstream logins. Each agent connection gets its own upstream SSH connection
// (never shared), but the login to a target is made ahead of time: after a target is
// used, one spare connection is opened and kept for `idleMs`, so the next agent does
// not wait for the upstream's key exchange and authentication.
import type { Client } from "ssh2";

interface Spare {
  client: Promise<Client>;
  closed: boolean;
  timer: NodeJS.Timeout;
}

export class UpstreamPool {
  private readonly spares = new Map<string, Spare>();
  private stopped = false;

  constructor(private readonly idleMs: number) {}

  /** A logged-in upstream connection for `key`; `connect` opens a new one. */
  take(key: string, connect: () => Promise<Client>): Promise<Client> {
    const spare = this.spares.get(key);
    this.spares.delete(key);
    if (spare) clearTimeout(spare.timer);
    const got = spare && !spare.closed ? spare.client.catch(() => connect()) : connect();
    if (this.idleMs > 0 && !this.stopped) this.prepare(key, connect);
    return got.then((c) => {
      // A spare that died while waiting is replaced by a fresh login.
      if ((c as Client & { _sock?: { destroyed?: boolean } })._sock?.destroyed) return connect();
      return c;
    });
  }

  private prepare(key: string, connect: () => Promise<Client>): void {
    const s: Spare = {
      client: connect(),
      closed: false,
      timer: setTimeout(() => {
        if (this.spares.get(key) === s) this.spares.delete(key);
        void s.client.then((c) => c.end(), () => {});
      }, this.idleMs),
    };
    s.timer.unref();
    s.client.then(
      (c) => c.once("close", () => (s.closed = true)),
      () => (s.closed = true),
    );
    this.spares.set(key, s);
  }

  stop(): void {
    this.stopped = true;
    for (const s of this.spares.values()) {
      clearTimeout(s.timer);
      void s.client.then((c) => c.end(), () => {});
    }
    this.spares.clear();
  }
}
