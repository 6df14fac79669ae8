// Gateway-issued cancel keys. Clients get a (pid, secret) of ours, never the
// upstream's, so a CancelRequest must come through the gateway to reach the
// session it was issued for.
import { randomInt, timingSafeEqual } from "node:crypto";

export interface Cancellable {
  cancel(): Promise<void>;
}

export interface CancelKey {
  pid: number;
  secret: number;
}

export class CancelKeys {
  private readonly byPid = new Map<number, { secret: number; target: Cancellable }>();

  issue(target: Cancellable): CancelKey {
    let pid: number;
    do pid = randomInt(1, 0x7fffffff);
    while (this.byPid.has(pid));
    const secret = randomInt(-0x80000000, 0x7fffffff);
    this.byPid.set(pid, { secret, target });
    return { pid, secret };
  }

  revoke(pid: number): void {
    this.byPid.delete(pid);
  }

  /** The session for a CancelRequest, if pid and secret match. */
  lookup(pid: number, secret: number): Cancellable | undefined {
    const e = this.byPid.get(pid);
    if (!e) return undefined;
    const a = Buffer.alloc(4);
    const b = Buffer.alloc(4);
    a.writeInt32BE(e.secret);
    b.writeInt32BE(secret);
    return timingSafeEqual(a, b) ? e.target : undefined;
  }
}
