export { startApprovalService, type ApprovalServiceHandle, type ApprovalServiceOptions } from "./service.js";
export { applyVote, approversOf, grantCovers, holdPattern, newTicket, stateFromName, stateName, formatDuration, type HoldPattern } from "./rules.js";
export { jsonPayload, slackPayload, ticketUrl, Notifier } from "./notify.js";
