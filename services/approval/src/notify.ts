// Webhook notifications for approvers: a generic JSON payload or a Slack-compatible
// one ({"text", "blocks"}), sent in the background with retries and exponential
// backoff. A notification never delays or changes a ticket; failures are logged.
import type { Grant, Ticket } from "@gatehouse/proto";
import type { Logger, WebhookConfig } from "@gatehouse/runtime";
import { approversOf, stateName } from "./rules.js";

export interface Notification {
  /** "ticket_created", "approved", "denied", "expired", "withdrawn", "grant_created", "grant_revoked". */
  kind: string;
  ticket?: Ticket;
  grant?: Grant;
}

const MAX_BACKOFF_MS = 30_000;
const TIMEOUT_MS = 5000;

export function ticketUrl(consoleUrl: string, id: string): string {
  return `${consoleUrl}/console/tickets/${encodeURIComponent(id)}`;
}

export function jsonPayload(n: Notification, consoleUrl: string): Record<string, unknown> {
  const t = n.ticket;
  const g = n.grant;
  return {
    type: `gatehouse.approval.${n.kind}`,
    time: new Date().toISOString(),
    ticket: t && {
      id: t.id,
      state: stateName(t.state),
      state_reason: t.stateReason,
      requester: t.requester?.subject,
      requester_groups: t.requester?.groups,
      connection: t.connection?.name,
      command: t.commandText,
      policy_ids: t.policyIds,
      policy_reason: t.policyReason,
      approver_groups: t.approverGroups,
      min_approvals: t.minApprovals,
      approvers: approversOf(t),
      expires_at: new Date(t.expiresUnixMs).toISOString(),
      url: ticketUrl(consoleUrl, t.id),
    },
    grant: g && {
      id: g.id,
      subject: g.subject,
      connection: g.connection,
      policy_ids: g.policyIds,
      actions: g.actions,
      tables: g.tables,
      granted_by: g.grantedBy?.subject,
      expires_at: new Date(g.expiresUnixMs).toISOString(),
      revoked: g.revoked,
    },
  };
}

/** Slack incoming-webhook body: plain `text` (fallback) plus one mrkdwn section. */
export function slackPayload(n: Notification, consoleUrl: string): Record<string, unknown> {
  let text: string;
  const t = n.ticket;
  if (t) {
    const head =
      n.kind === "ticket_created"
        ? `:hourglass: *Approval needed* from ${t.approverGroups.join(" or ")}: *${t.requester?.subject}* on *${t.connection?.name}*`
        : `Ticket ${t.id} is *${stateName(t.state)}*: ${t.stateReason}`;
    const cmd = t.commandText.length > 1500 ? `${t.commandText.slice(0, 1500)}…` : t.commandText;
    text = `${head}\n\`\`\`${cmd.replace(/```/g, "'''")}\`\`\`\nPolicy: ${t.policyIds.join(", ")}\n<${ticketUrl(consoleUrl, t.id)}|Open ticket ${t.id}>`;
  } else if (n.grant) {
    const g = n.grant;
    text =
      n.kind === "grant_revoked"
        ? `Standing grant ${g.id} for *${g.subject}* on *${g.connection}* was revoked by ${g.revokedBy?.subject ?? "?"}`
        : `Standing grant ${g.id}: *${g.subject}* on *${g.connection}* may run ${g.actions.join(", ")} on ${g.tables.join(", ") || "(no tables)"} until ${new Date(g.expiresUnixMs).toISOString()} (granted by ${g.grantedBy?.subject ?? "?"})`;
  } else text = `Gatehouse approval event ${n.kind}`;
  return { text, blocks: [{ type: "section", text: { type: "mrkdwn", text } }] };
}

export class Notifier {
  private readonly inflight = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly hooks: WebhookConfig[],
    private readonly consoleUrl: string,
    private readonly log: Logger,
  ) {}

  notify(n: Notification): void {
    if (this.closed) return;
    for (const h of this.hooks) {
      const body = JSON.stringify(h.format === "slack" ? slackPayload(n, this.consoleUrl) : jsonPayload(n, this.consoleUrl));
      const p = this.deliver(h, body, n.kind).finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }
  }

  private async deliver(h: WebhookConfig, body: string, kind: string): Promise<void> {
    // The URL may carry a secret (Slack's do): log only its origin.
    const where = new URL(h.url).origin;
    for (let attempt = 0; attempt <= h.retries; attempt++) {
      if (attempt > 0) {
        const wait = Math.min(MAX_BACKOFF_MS, h.backoffMs * 2 ** (attempt - 1));
        await new Promise((r) => setTimeout(r, wait).unref());
        if (this.closed) return;
      }
      let status = 0;
      let error = "";
      try {
        const res = await fetch(h.url, { method: "POST", headers: { "content-type": "application/json", "user-agent": "gatehouse-approvals" }, body, signal: AbortSignal.timeout(TIMEOUT_MS) });
        status = res.status;
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return;
        // 4xx other than 408/429: the receiver refuses this payload; retrying will not help.
        if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
          this.log.warn({ webhook: where, status, kind }, "webhook refused the notification; not retrying");
          return;
        }
      } catch (e) {
        error = (e as Error).message;
      }
      this.log.warn({ webhook: where, status: status || undefined, err: error || undefined, attempt: attempt + 1, kind }, "webhook delivery failed");
    }
    this.log.error({ webhook: where, kind, attempts: h.retries + 1 }, "webhook notification given up after retries");
  }

  /** Wait (bounded) for deliveries in flight, then stop retrying. */
  async close(timeoutMs = 2000): Promise<void> {
    await Promise.race([Promise.allSettled([...this.inflight]), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    this.closed = true;
  }
}
