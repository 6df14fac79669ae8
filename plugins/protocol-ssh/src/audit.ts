// Audit events of one SSH connection: every event carries the session, connection,
// identity and listener, and a deterministic "<session>:<n>" id.
import type { AuditEvent, Command, Identity, ResultEvent } from "@gatehouse/proto";
import { EventIds, type DecisionResult } from "@gatehouse/plugin-sdk";

export const PROTOCOL = "ssh";

export class SessionAudit {
  readonly ids: EventIds;
  constructor(
    readonly sessionId: string,
    public connection: string,
    readonly listenerId: string,
    public identity: Identity | undefined,
  ) {
    this.ids = new EventIds(sessionId);
  }

  event(body: AuditEvent["body"], id = this.ids.next()): AuditEvent {
    return {
      id,
      timeUnixMicros: nowMicros(),
      sessionId: this.sessionId,
      connection: this.connection,
      protocol: PROTOCOL,
      identity: this.identity,
      listenerId: this.listenerId,
      body,
    };
  }

  /** The command event; it reuses the command's id (one event per command). */
  command(command: Command, d: DecisionResult): AuditEvent {
    return this.event({ $case: "command", command: { command, decision: d.decision, decidedBy: d.decidedBy, approval: undefined } }, command.id);
  }

  result(r: ResultEvent): AuditEvent {
    return this.event({ $case: "result", result: r });
  }
}

export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
