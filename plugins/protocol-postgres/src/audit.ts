// Audit event construction for one session: every event carries the session,
// connection, identity and listener, and a deterministic "<session>:<n>" id.
import type { AuditEvent, Command, Identity, Param, ResultEvent } from "@gatehouse/proto";
import type { DecisionResult } from "@gatehouse/plugin-sdk";
import { EventIds } from "@gatehouse/plugin-sdk";
import type { BindParam } from "./protocol.js";

export const PROTOCOL = "postgres";

export class SessionAudit {
  readonly ids: EventIds;
  constructor(
    readonly sessionId: string,
    readonly connection: string,
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
    if (command.statements.length === 0 && d.decision.classified.length > 0) command.statements = d.decision.classified;
    return this.event({ $case: "command", command: { command, decision: d.decision, decidedBy: d.decidedBy } }, command.id);
  }

  result(r: ResultEvent): AuditEvent {
    return this.event({ $case: "result", result: r });
  }
}

export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** Bind parameters as audit values: text as is, binary as \x hex; long values cut with a marker. */
export function auditParams(params: BindParam[], max: number): Param[] {
  return params.map((p) => {
    if (p.isNull || !p.value) return { isNull: true, text: "", binary: p.binary };
    const v = p.value;
    const cut = v.length > max;
    const shown = cut ? v.subarray(0, max) : v;
    let text = p.binary ? "\\x" + shown.toString("hex") : shown.toString("utf8");
    if (cut) text += `…[truncated, ${v.length} bytes]`;
    return { isNull: false, text, binary: p.binary };
  });
}
