// Audit events of one SSH connection: every event carries the session, connection,
// identity and listener, and a deterministic "<session>:<n>" id.
import type { AuditEvent, Command, Identity, ResultEvent } from "@gatehouse/proto";
import { SessionEvents, type DecisionResult } from "@gatehouse/plugin-sdk";

export const PROTOCOL = "ssh";

export class SessionAudit extends SessionEvents {
  constructor(sessionId: string, connection: string, listenerId: string, identity: Identity | undefined) {
    super(PROTOCOL, sessionId, connection, listenerId, identity);
  }

  /** The command event; it reuses the command's id (one event per command). */
  command(command: Command, d: DecisionResult): AuditEvent {
    return this.event({ $case: "command", command: { command, decision: d.decision, decidedBy: d.decidedBy, approval: undefined } }, command.id);
  }

  result(r: ResultEvent): AuditEvent {
    return this.event({ $case: "result", result: r });
  }
}
