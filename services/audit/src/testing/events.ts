// Test and bench support: command events shaped like a listener's, and the audit
// service started as its own process (the way the stack runs it).
import { join } from "node:path";
import { AuditEvent, Effect, type Command, type Decision, type Identity } from "@gatehouse/proto";
import { repoRoot, startProcess, type Proc } from "@gatehouse/testing";

type DeepPartial<T> = T extends (infer U)[] ? DeepPartial<U>[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

export interface CommandEventParts {
  identity?: DeepPartial<Identity>;
  /** Fields of the command beyond id, session and seq (default text: `SELECT <seq>`). */
  command?: DeepPartial<Command>;
  /** Default: allowed by policy "p1". */
  decision?: DeepPartial<Decision>;
}

/** Command event `<session>:<seq>` (command id `<session>:c<seq>`) on connection "prod". */
export function commandEvent(session: string, seq: number, parts: CommandEventParts = {}): AuditEvent {
  return AuditEvent.fromPartial({
    id: `${session}:${seq}`,
    timeUnixMicros: Date.now() * 1000,
    sessionId: session,
    connection: "prod",
    protocol: "postgres",
    identity: parts.identity,
    body: {
      $case: "command",
      command: {
        command: { id: `${session}:c${seq}`, sessionId: session, seq, text: `SELECT ${seq}`, ...parts.command },
        decision: parts.decision ?? { effect: Effect.EFFECT_ALLOW, policyIds: ["p1"] },
        decidedBy: "policy",
      },
    },
  });
}

/** The audit service as a child process with `configFile`; resolves once it logs "ready". */
export function startAuditProcess(configFile: string): Promise<Proc> {
  return startProcess("audit", process.execPath, [join(repoRoot, "services/audit/dist/main.js"), "--config", configFile], {
    ready: /"msg":"ready"/,
    timeoutMs: 60_000,
    env: { GATEHOUSE_LOG_LEVEL: "info" },
  });
}
