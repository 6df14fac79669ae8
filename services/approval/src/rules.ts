// The approval rules, as pure functions over tickets and grants: who may approve,
// when a ticket is settled, and which standing grant covers a command.
import { Effect, TicketState, type ApprovalVote, type Command, type Connection, type Decision, type Grant, type Identity, type Ticket } from "@gatehouse/proto";
import { RpcError, Status } from "@gatehouse/runtime";

export const DEFAULT_EXPIRY_MS = 15 * 60_000;

/** What a held command asks approvers for: used both for tickets and for grant matching. */
export interface HoldPattern {
  policyIds: string[];
  actions: string[];
  tables: string[];
  fingerprint: string;
}

/** The policies, actions and tables of the statements that need approval. */
export function holdPattern(command: Command | undefined, decision: Decision | undefined): HoldPattern {
  const held = (decision?.statements ?? []).filter((s) => s.effect === Effect.EFFECT_REQUIRE_APPROVAL);
  const classified = decision?.classified.length ? decision.classified : (command?.statements ?? []);
  const policyIds = decision?.approval?.policyIds.length ? decision.approval.policyIds : held.length ? held.flatMap((s) => s.policyIds) : (decision?.policyIds ?? []);
  return {
    policyIds: uniqSorted(policyIds),
    actions: uniqSorted(held.map((s) => s.action || classified[s.index]?.action || "")),
    tables: uniqSorted(held.flatMap((s) => classified[s.index]?.tables ?? [])),
    fingerprint: command?.fingerprint ?? "",
  };
}

function uniqSorted(xs: string[]): string[] {
  return [...new Set(xs.filter((x) => x !== ""))].sort();
}

const subset = (a: string[], b: string[]) => a.every((x) => b.includes(x));

/**
 * A grant covers a command when it is for the same subject (and issuer) and
 * connection, is active, and the command's held statements fall under the grant's
 * policies, actions and tables (and its fingerprint, when the grant names one).
 */
export function grantCovers(g: Grant, requester: Identity, connection: string, p: HoldPattern, now: number): boolean {
  if (g.revoked || g.expiresUnixMs <= now) return false;
  if (g.subject !== requester.subject || g.connection !== connection) return false;
  if (g.issuer && requester.issuer && g.issuer !== requester.issuer) return false;
  if (p.policyIds.length === 0 || !subset(p.policyIds, g.policyIds)) return false;
  if (!subset(p.actions, g.actions) || !subset(p.tables, g.tables)) return false;
  return !g.fingerprint || g.fingerprint === p.fingerprint;
}

export function isFinal(t: Ticket): boolean {
  return t.state !== TicketState.TICKET_STATE_PENDING;
}

export function stateName(s: TicketState): string {
  switch (s) {
    case TicketState.TICKET_STATE_PENDING:
      return "pending";
    case TicketState.TICKET_STATE_APPROVED:
      return "approved";
    case TicketState.TICKET_STATE_DENIED:
      return "denied";
    case TicketState.TICKET_STATE_EXPIRED:
      return "expired";
    case TicketState.TICKET_STATE_WITHDRAWN:
      return "withdrawn";
    default:
      return "unspecified";
  }
}

export function stateFromName(s: string): TicketState | undefined {
  const map: Record<string, TicketState> = {
    pending: TicketState.TICKET_STATE_PENDING,
    approved: TicketState.TICKET_STATE_APPROVED,
    denied: TicketState.TICKET_STATE_DENIED,
    expired: TicketState.TICKET_STATE_EXPIRED,
    withdrawn: TicketState.TICKET_STATE_WITHDRAWN,
  };
  return map[s.toLowerCase()];
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

/**
 * Check and apply one approver's vote; returns the vote as recorded. Throws RpcError:
 * PERMISSION_DENIED for self-approval and non-members, FAILED_PRECONDITION when the
 * ticket is no longer pending or the approver already voted.
 */
export function applyVote(t: Ticket, vote: ApprovalVote, now: number): void {
  const who = vote.approver;
  if (!who?.subject) throw new RpcError(Status.INVALID_ARGUMENT, "the decision names no approver identity");
  if (isFinal(t)) throw new RpcError(Status.FAILED_PRECONDITION, `ticket ${t.id} is already ${stateName(t.state)}${t.stateReason ? ` (${t.stateReason})` : ""}`);
  if (t.expiresUnixMs <= now) throw new RpcError(Status.FAILED_PRECONDITION, `ticket ${t.id} expired at ${new Date(t.expiresUnixMs).toISOString()}`);
  if (who.subject === t.requester?.subject) {
    throw new RpcError(Status.PERMISSION_DENIED, `${who.subject} requested ticket ${t.id} and cannot approve or deny it: self-approval is not allowed`);
  }
  if (!who.groups.some((g) => t.approverGroups.includes(g))) {
    throw new RpcError(
      Status.PERMISSION_DENIED,
      `${who.subject} is not a member of ${t.approverGroups.join(" or ") || "(no approver group)"}, which policy ${t.policyIds.join(", ")} names as approvers of ticket ${t.id} (member of: ${who.groups.join(", ") || "none"})`,
    );
  }
  if (t.votes.some((v) => v.approver?.subject === who.subject)) throw new RpcError(Status.FAILED_PRECONDITION, `${who.subject} already decided on ticket ${t.id}`);
  t.votes.push(vote);
  if (!vote.approve) {
    t.state = TicketState.TICKET_STATE_DENIED;
    t.decidedUnixMs = now;
    t.stateReason = `denied by ${who.subject}${vote.reason ? `: ${vote.reason}` : ""}`;
    return;
  }
  const approvals = t.votes.filter((v) => v.approve);
  if (approvals.length >= Math.max(1, t.minApprovals)) {
    t.state = TicketState.TICKET_STATE_APPROVED;
    t.decidedUnixMs = now;
    t.stateReason = `approved by ${approvals.map((v) => v.approver?.subject).join(", ")}${vote.reason ? `: ${vote.reason}` : ""}`;
  }
}

/** Approvers (subjects) of a ticket's approving votes. */
export function approversOf(t: Ticket): string[] {
  return t.votes.filter((v) => v.approve).map((v) => v.approver?.subject ?? "");
}

export interface NewTicketInput {
  id: string;
  requester: Identity;
  connection: Connection;
  command: Command;
  decision: Decision;
  listenerId: string;
  now: number;
  maxHoldMs: number;
}

export function newTicket(i: NewTicketInput): Ticket {
  const p = holdPattern(i.command, i.decision);
  const req = i.decision.approval;
  const expiresIn = Math.min(req?.expiresInMs || DEFAULT_EXPIRY_MS, i.maxHoldMs);
  return {
    id: i.id,
    state: TicketState.TICKET_STATE_PENDING,
    requester: i.requester,
    connection: i.connection,
    sessionId: i.command.sessionId,
    commandId: i.command.id,
    commandText: i.command.text,
    fingerprint: p.fingerprint,
    policyIds: p.policyIds,
    policyReason: i.decision.reason,
    actions: p.actions,
    tables: p.tables,
    approverGroups: req?.approverGroups ?? [],
    minApprovals: Math.max(1, req?.minApprovals ?? 1),
    createdUnixMs: i.now,
    expiresUnixMs: i.now + expiresIn,
    votes: [],
    decidedUnixMs: 0,
    stateReason: "waiting for approval",
    grantId: "",
    listenerId: i.listenerId,
    policyVersion: i.decision.policyVersion,
  };
}
