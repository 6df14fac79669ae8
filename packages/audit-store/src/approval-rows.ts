// Rows for approval events (ticket and grant state changes), in the shared
// gatehouse.events columns: type 'approval', status_tag = the change, effect = the
// ticket state (or "active"/"revoked" for a grant), the rest in details. The
// approval query (deploy/clickhouse/schema.sql, approved_commands) joins them to
// the commands they let run through details.ticket_id / details.grant_id.
import { TicketState, type ApprovalEvent, type ApprovalRef } from "@gatehouse/proto";
import type { EventRow } from "./rows.js";

const STATE: Record<number, string> = {
  [TicketState.TICKET_STATE_PENDING]: "pending",
  [TicketState.TICKET_STATE_APPROVED]: "approved",
  [TicketState.TICKET_STATE_DENIED]: "denied",
  [TicketState.TICKET_STATE_EXPIRED]: "expired",
  [TicketState.TICKET_STATE_WITHDRAWN]: "withdrawn",
};

export function approvalRow(row: EventRow, a: ApprovalEvent, details: (more: Record<string, unknown>) => string): EventRow {
  const t = a.ticket;
  const g = a.grant;
  row.type = "approval";
  row.status_tag = a.kind;
  if (t) {
    row.command_id = t.commandId;
    row.command_text = t.commandText;
    row.actions = t.actions;
    row.tables = t.tables;
    row.policy_ids = t.policyIds;
    row.policy_version = t.policyVersion;
    row.effect = STATE[t.state] ?? "unspecified";
    row.reason = t.stateReason;
  } else if (g) {
    row.actions = g.actions;
    row.tables = g.tables;
    row.policy_ids = g.policyIds;
    row.effect = g.revoked ? "revoked" : "active";
    row.reason = g.reason;
  }
  const approvedBy = t ? t.votes.filter((v) => v.approve).map((v) => v.approver?.subject ?? "") : g?.grantedBy ? [g.grantedBy.subject] : [];
  row.details = details({
    ticket_id: t?.id ?? g?.ticketId ?? "",
    grant_id: g?.id ?? t?.grantId ?? "",
    requester: t?.requester?.subject ?? g?.subject ?? "",
    approver_groups: t?.approverGroups,
    min_approvals: t?.minApprovals,
    created_unix_ms: t?.createdUnixMs ?? g?.createdUnixMs,
    expires_unix_ms: t?.expiresUnixMs ?? g?.expiresUnixMs,
    decided_unix_ms: t?.decidedUnixMs || undefined,
    approved_by: approvedBy,
    vote: a.vote ? { approver: a.vote.approver?.subject, approve: a.vote.approve, reason: a.vote.reason, grant_minutes: a.vote.grantMinutes || undefined } : undefined,
    revoked_by: g?.revokedBy?.subject,
  });
  return row;
}

/** The approval part of a decision row's details. */
export function approvalRefDetails(r: ApprovalRef | undefined): Record<string, unknown> | undefined {
  return r ? { ticket_id: r.ticketId, grant_id: r.grantId, outcome: r.outcome, approvers: r.approvers } : undefined;
}
