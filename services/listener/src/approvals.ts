// Holding a command for approval, for the protocol plugins: subscribe to the
// ticket's subject, open the ticket (or match a standing grant) through
// ApprovalService, then wait for the state change. The subscription delivers the
// decision at once; a slow poll of GetTicket covers a missed message or an
// approval service restart. Only the held session waits; nothing here blocks others.
import { randomUUID } from "node:crypto";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { ApprovalServiceService, Ticket, TicketState, type Grant } from "@gatehouse/proto";
import { approvalSubjects, natsClient, RpcError, Status, type ApprovalsConfig, type Logger, type ServiceClient } from "@gatehouse/runtime";
import { DependencyError, type ApprovalOutcome, type ApprovalRequest } from "@gatehouse/plugin-sdk";

const NOT_EXECUTED = "the statement was not executed";

export interface ApprovalHolderOptions {
  config: ApprovalsConfig;
  listenerId: string;
  log: Logger;
  /** Poll period while held (default 2000 ms). */
  pollMs?: number;
}

function outcomeOf(t: Ticket): ApprovalOutcome | undefined {
  const approvers = t.votes.filter((v) => v.approve).map((v) => v.approver?.subject ?? "");
  const base = { ticketId: t.id, grantId: t.grantId, approvers, reason: t.stateReason };
  switch (t.state) {
    case TicketState.TICKET_STATE_APPROVED:
      return { ...base, outcome: "approved" };
    case TicketState.TICKET_STATE_DENIED:
      return { ...base, outcome: "denied" };
    case TicketState.TICKET_STATE_EXPIRED:
      return { ...base, outcome: "expired" };
    case TicketState.TICKET_STATE_WITHDRAWN:
      return { ...base, outcome: "withdrawn" };
    default:
      return undefined;
  }
}

function granted(g: Grant): ApprovalOutcome {
  return { outcome: "granted", ticketId: g.ticketId, grantId: g.id, approvers: g.grantedBy ? [g.grantedBy.subject] : [], reason: `standing grant ${g.id} from ${g.grantedBy?.subject ?? "?"}` };
}

function approvalError(e: unknown): DependencyError {
  if (e instanceof DependencyError) return e;
  if (e instanceof RpcError) {
    if (e.code === Status.UNAVAILABLE) return new DependencyError("approval", `approval service is not running (${e.message}); ${NOT_EXECUTED}`);
    if (e.code === Status.DEADLINE_EXCEEDED) return new DependencyError("approval", `approval service did not answer (${e.message}); ${NOT_EXECUTED}`);
    return new DependencyError("approval", `approval service refused the ticket (${e.codeName}): ${e.message}; ${NOT_EXECUTED}`);
  }
  return new DependencyError("approval", `approval service could not be asked: ${(e as Error).message}; ${NOT_EXECUTED}`);
}

export class ApprovalHolder {
  private readonly client: ServiceClient<typeof ApprovalServiceService>;

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: ApprovalHolderOptions,
  ) {
    this.client = natsClient(nc, ApprovalServiceService, { timeoutMs: opts.config.deadlineMs });
  }

  async request(req: ApprovalRequest): Promise<ApprovalOutcome> {
    const id = randomUUID();
    let sub: Subscription | undefined;
    let wake: ((t: Ticket) => void) | undefined;
    try {
      // Subscribe first so a decision taken right after creation is not missed.
      sub = this.nc.subscribe(approvalSubjects.ticket(id), {
        callback: (err, msg) => {
          if (err) return;
          try {
            wake?.(Ticket.decode(msg.data));
          } catch {
            // not a ticket: ignore, the poll still runs
          }
        },
      });
      let created;
      try {
        created = await this.client.createTicket({ ticketId: id, requester: req.identity, connection: req.connection, command: req.command, decision: req.decision, listenerId: this.opts.listenerId });
      } catch (e) {
        throw approvalError(e);
      }
      if (created.grant) return granted(created.grant);
      const ticket = created.ticket;
      if (!ticket) throw new DependencyError("approval", `approval service answered without a ticket; ${NOT_EXECUTED}`);
      const early = outcomeOf(ticket);
      if (early) return early;
      req.onHold?.({ ticketId: id, url: `${this.opts.config.consoleUrl}/console/tickets/${id}`, expiresAtUnixMs: ticket.expiresUnixMs, approverGroups: ticket.approverGroups });
      return await this.wait(ticket, req.signal, (fn) => (wake = fn));
    } finally {
      sub?.unsubscribe();
    }
  }

  private wait(ticket: Ticket, signal: AbortSignal | undefined, setWake: (fn: (t: Ticket) => void) => void): Promise<ApprovalOutcome> {
    const id = ticket.id;
    const pollMs = this.opts.pollMs ?? 2000;
    // The service expires tickets; if it is down at that time we stop waiting a bit later.
    const giveUpAt = ticket.expiresUnixMs + 30_000;
    return new Promise<ApprovalOutcome>((resolve, reject) => {
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (o: ApprovalOutcome | Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (o instanceof Error) reject(o);
        else resolve(o);
      };
      setWake((t) => {
        const o = outcomeOf(t);
        if (o) finish(o);
      });
      const poll = async () => {
        if (done) return;
        try {
          const t = await this.client.getTicket({ id });
          const o = outcomeOf(t);
          if (o) return finish(o);
        } catch (e) {
          if (Date.now() > giveUpAt) return finish(approvalError(e));
          this.opts.log.warn({ ticket: id, err: (e as Error).message }, "approval service not reachable while a command is held; still waiting");
        }
        if (!done) {
          if (Date.now() > giveUpAt) return finish(new DependencyError("approval", `ticket ${id} was neither decided nor expired by the approval service; ${NOT_EXECUTED}`));
          timer = setTimeout(() => void poll(), Math.min(pollMs, Math.max(50, ticket.expiresUnixMs + 100 - Date.now())));
        }
      };
      const onAbort = () => {
        if (done) return;
        // Withdraw; whatever the service answers (it may have been decided a moment ago) is the outcome.
        this.client
          .withdrawTicket({ id, reason: String(signal?.reason ?? "the client cancelled the statement") })
          .then((t) => finish(outcomeOf(t) ?? { outcome: "withdrawn", ticketId: id, grantId: "", approvers: [], reason: "withdrawn" }))
          .catch(() => finish({ outcome: "withdrawn", ticketId: id, grantId: "", approvers: [], reason: "withdrawn by the client (the approval service was not reachable to record it)" }));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      timer = setTimeout(() => void poll(), pollMs);
    });
  }
}
