// Process plumbing shared by every service: clean shutdown on SIGINT/SIGTERM.
import type { Logger } from "pino";

export function onShutdown(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    const timer = setTimeout(() => process.exit(1), 10_000);
    timer.unref();
    stop().then(
      () => process.exit(0),
      (e) => {
        log.error({ err: e }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => handler("SIGINT"));
  process.on("SIGTERM", () => handler("SIGTERM"));
}

/** Subjects and names shared across services. */
export const subjects = {
  audit: "gatehouse.audit",
  /** Published by the policy service with the new version when policies reload. */
  policyChanged: "gatehouse.policy.changed",
} as const;
