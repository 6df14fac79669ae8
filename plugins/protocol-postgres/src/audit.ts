// Audit event construction for one session: every event carries the session,
// connection, identity and listener, and a deterministic "<session>:<n>" id.
import type { AuditEvent, Command, Identity, Param, ResultEvent } from "@gatehouse/proto";
import type { DecisionResult, MaskingRuntime, MaskStrategy } from "@gatehouse/plugin-sdk";
import { SessionEvents } from "@gatehouse/plugin-sdk";
import type { BindParam } from "./protocol.js";

export const PROTOCOL = "postgres";

/** Audit text is masked with one strategy for everyone: no identity leaves clear values in the audit store. */
const AUDIT_TEXT_STRATEGY: MaskStrategy = { kind: "redact" };
const auditStrategy = (): MaskStrategy => AUDIT_TEXT_STRATEGY;

export class SessionAudit extends SessionEvents {
  /** Recognizers for query text, bind parameters and error messages in events (set by the session). */
  masking: MaskingRuntime | undefined;
  private textMasking: { commandId: string; column: string; position: number; entity: string; count: number }[] = [];
  constructor(sessionId: string, connection: string, listenerId: string, identity: Identity | undefined) {
    super(PROTOCOL, sessionId, connection, listenerId, identity);
  }

  /** The command event; it reuses the command's id (one event per command). */
  command(command: Command, d: DecisionResult): AuditEvent {
    if (command.statements.length === 0 && d.decision.classified.length > 0) command.statements = d.decision.classified;
    const m = this.shown(command);
    const shown = m.masked ? { ...command, text: m.text, params: m.params } : command;
    return this.event({ $case: "command", command: { command: shown, decision: d.decision, decidedBy: d.decidedBy, approval: undefined } }, command.id);
  }

  result(r: ResultEvent): AuditEvent {
    if (this.masking && r.errorMessage) r = { ...r, errorMessage: this.maskAuditText(r.errorMessage, r.commandId, "error_message", -1) };
    return this.event({ $case: "result", result: r });
  }

  /** Masking events for the audit text masked since the last call (one per entity and place). */
  takeTextMasking(): AuditEvent[] {
    if (this.textMasking.length === 0) return [];
    const out = this.textMasking.map((m) =>
      this.event({
        $case: "masking",
        masking: { commandId: m.commandId, column: m.column, position: m.position, entity: m.entity, strategy: AUDIT_TEXT_STRATEGY.kind, count: m.count, keyId: "", source: "audit" },
      }),
    );
    this.textMasking = [];
    return out;
  }

  /**
   * The command's text and parameters with no recognized confidential value, as
   * the audit event and the session recording show them. Computed once per
   * command (the masking evidence is counted once).
   */
  shown(c: Command): { text: string; params: Param[]; masked: boolean } {
    const memo = this.shownMemo;
    if (memo && memo.cmd === c && memo.srcText === c.text && memo.srcParams === c.params) return memo.out;
    let out: { text: string; params: Param[]; masked: boolean };
    if (!this.masking) out = { text: c.text, params: c.params, masked: false };
    else {
      const text = this.maskAuditText(c.text, c.id, "query_text", -1);
      let params = c.params;
      if (params.some((p) => !p.isNull && p.text !== "")) {
        const masked = c.params.map((p, i) => (p.isNull || p.text === "" ? p : { ...p, text: this.maskParam(p.text, p.binary, c.id, i) }));
        if (masked.some((p, i) => p.text !== c.params[i]!.text)) params = masked;
      }
      out = { text, params, masked: text !== c.text || params !== c.params };
    }
    this.shownMemo = { cmd: c, srcText: c.text, srcParams: c.params, out };
    return out;
  }
  private shownMemo: { cmd: Command; srcText: string; srcParams: Param[]; out: { text: string; params: Param[]; masked: boolean } } | undefined;

  /** A binary parameter is shown as \x hex: text sent in binary format is decoded, scanned, and kept hex when clean. */
  private maskParam(text: string, binary: boolean, commandId: string, position: number): string {
    if (!binary || !text.startsWith("\\x")) return this.maskAuditText(text, commandId, "param", position);
    const hexEnd = text.indexOf("…");
    const raw = Buffer.from(text.slice(2, hexEnd < 0 ? undefined : hexEnd), "hex");
    const decoded = raw.toString("utf8");
    if (!Buffer.from(decoded, "utf8").equals(raw)) return text;
    const masked = this.maskAuditText(decoded, commandId, "param", position);
    return masked === decoded ? text : masked + (hexEnd < 0 ? "" : text.slice(hexEnd));
  }

  private maskAuditText(text: string, commandId: string, column: string, position: number): string {
    const r = this.masking!.maskText(text, auditStrategy);
    if (r.actions.length === 0) return text;
    const byEntity = new Map<string, number>();
    for (const a of r.actions) byEntity.set(a.entity, (byEntity.get(a.entity) ?? 0) + 1);
    for (const [entity, count] of byEntity) this.textMasking.push({ commandId, column, position, entity, count });
    return r.text;
  }
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
