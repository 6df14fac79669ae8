// REST API for approvers (CLI, console, scripts): tickets, decisions, standing
// grants, and a server-sent event stream of changes. The approval service enforces
// the rules (no self-approval, approver groups, expiry); this layer verifies who
// is calling and decides what they may see.
import type { FastifyInstance, FastifyReply } from "fastify";
import { ApprovalServiceService, TicketState, type Grant, type Identity, type Ticket } from "@gatehouse/proto";
import { approvalSubjects, natsClient, RpcError, Status } from "@gatehouse/runtime";
import type { ApiDeps } from "../deps.js";
import { caller } from "../approvals/session.js";

const STATES: Record<string, TicketState> = {
  pending: TicketState.TICKET_STATE_PENDING,
  approved: TicketState.TICKET_STATE_APPROVED,
  denied: TicketState.TICKET_STATE_DENIED,
  expired: TicketState.TICKET_STATE_EXPIRED,
  withdrawn: TicketState.TICKET_STATE_WITHDRAWN,
};
const STATE_NAMES = Object.fromEntries(Object.entries(STATES).map(([k, v]) => [v, k])) as Record<number, string>;

/** Groups that see every ticket and grant (besides requesters and each ticket's approvers). */
const OVERSEER_GROUPS = ["auditors", "dba", "admins"];

const iso = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : null);
const who = (i: Identity | undefined) => i && { subject: i.subject, name: i.name, groups: i.groups, kind: i.kind };

export function ticketJson(t: Ticket): Record<string, unknown> {
  return {
    id: t.id,
    state: STATE_NAMES[t.state] ?? "unspecified",
    state_reason: t.stateReason,
    requester: who(t.requester),
    connection: t.connection?.name ?? "",
    command: t.commandText,
    session_id: t.sessionId,
    command_id: t.commandId,
    policy_ids: t.policyIds,
    policy_reason: t.policyReason,
    actions: t.actions,
    tables: t.tables,
    approver_groups: t.approverGroups,
    min_approvals: t.minApprovals,
    created_at: iso(t.createdUnixMs),
    expires_at: iso(t.expiresUnixMs),
    decided_at: iso(t.decidedUnixMs),
    votes: t.votes.map((v) => ({ approver: v.approver?.subject, approve: v.approve, reason: v.reason, time: iso(v.timeUnixMs), grant_minutes: v.grantMinutes || undefined })),
    grant_id: t.grantId || null,
  };
}

export function grantJson(g: Grant): Record<string, unknown> {
  return {
    id: g.id,
    subject: g.subject,
    connection: g.connection,
    policy_ids: g.policyIds,
    actions: g.actions,
    tables: g.tables,
    fingerprint: g.fingerprint || null,
    granted_by: g.grantedBy?.subject,
    created_at: iso(g.createdUnixMs),
    expires_at: iso(g.expiresUnixMs),
    active: !g.revoked && g.expiresUnixMs > Date.now(),
    revoked: g.revoked,
    revoked_by: g.revokedBy?.subject ?? null,
    revoked_at: iso(g.revokedUnixMs),
    ticket_id: g.ticketId || null,
    reason: g.reason,
  };
}

function httpError(reply: FastifyReply, e: unknown): FastifyReply {
  if (e instanceof RpcError) {
    const status =
      e.code === Status.PERMISSION_DENIED ? 403
      : e.code === Status.NOT_FOUND ? 404
      : e.code === Status.FAILED_PRECONDITION ? 409
      : e.code === Status.INVALID_ARGUMENT ? 400
      : e.code === Status.UNAVAILABLE || e.code === Status.DEADLINE_EXCEEDED ? 503
      : 502;
    const error = status === 403 ? "forbidden" : status === 404 ? "not_found" : status === 409 ? "conflict" : status === 400 ? "bad_request" : "unavailable";
    return reply.code(status).send({ error, message: e.message });
  }
  throw e;
}

/** ClickHouse string literal. */
function chString(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

export function approvalRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const approvals = natsClient(deps.nc, ApprovalServiceService, { timeoutMs: deps.config.approvals.deadlineMs + 3000 });
  const overseer = (i: Identity) => i.groups.some((g) => OVERSEER_GROUPS.includes(g) || deps.config.approvals.grantorGroups.includes(g));
  const mayView = (i: Identity, t: Ticket) => overseer(i) || t.requester?.subject === i.subject || i.groups.some((g) => t.approverGroups.includes(g));

  app.get<{ Querystring: { state?: string; limit?: string } }>("/api/v1/approvals/tickets", async (req, reply) => {
    const c = await caller(deps, req, reply);
    if (!c) return reply;
    const states: TicketState[] = [];
    for (const s of (req.query.state ?? "").split(",").filter(Boolean)) {
      const st = STATES[s.trim().toLowerCase()];
      if (st === undefined) return reply.code(400).send({ error: "bad_request", message: `unknown state "${s}"; use ${Object.keys(STATES).join(", ")}` });
      states.push(st);
    }
    const limit = req.query.limit ? Number(req.query.limit) : 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return reply.code(400).send({ error: "bad_request", message: "limit must be an integer from 1 to 1000" });
    try {
      const res = await approvals.listTickets({ states, limit });
      return { tickets: res.tickets.filter((t) => mayView(c.identity, t)).map(ticketJson) };
    } catch (e) {
      return httpError(reply, e);
    }
  });

  app.get<{ Params: { id: string }; Querystring: { activity?: string } }>("/api/v1/approvals/tickets/:id", async (req, reply) => {
    const c = await caller(deps, req, reply);
    if (!c) return reply;
    let t: Ticket;
    try {
      t = await approvals.getTicket({ id: req.params.id });
    } catch (e) {
      return httpError(reply, e);
    }
    if (!mayView(c.identity, t)) return reply.code(403).send({ error: "forbidden", message: `${c.identity.subject} is neither the requester nor in ${t.approverGroups.join(", ")}` });
    const out: Record<string, unknown> = { ticket: ticketJson(t) };
    if (req.query.activity !== "0" && t.requester?.subject) {
      // The requester's recent activity, so an approver sees the context of the request.
      try {
        const res = await deps.audit.query({
          sql: "SELECT time, type, connection, command_text, effect, policy_ids, error_code FROM events WHERE identity_subject = {subject:String} AND type IN ('decision', 'result', 'session_start', 'auth_failure') ORDER BY time DESC LIMIT 25",
          maxRows: 25,
          params: { subject: t.requester.subject },
        });
        out.activity = res.rows.map((r) => JSON.parse(r) as unknown);
      } catch (e) {
        out.activity = [];
        out.activity_error = `recent activity unavailable: ${(e as Error).message}`;
      }
    }
    return out;
  });

  const decide = (approve: boolean) => async (req: { params: { id: string }; body: unknown }, reply: FastifyReply) => {
    const c = await caller(deps, req as never, reply, { mutating: true });
    if (!c) return reply;
    const body = (req.body ?? {}) as { reason?: unknown; grantMinutes?: unknown };
    if (body.reason !== undefined && typeof body.reason !== "string") return reply.code(400).send({ error: "bad_request", message: '"reason" must be a string' });
    let grantMinutes = 0;
    if (body.grantMinutes !== undefined && body.grantMinutes !== null && body.grantMinutes !== "") {
      grantMinutes = Number(body.grantMinutes);
      if (!approve || !Number.isInteger(grantMinutes) || grantMinutes < 0) return reply.code(400).send({ error: "bad_request", message: '"grantMinutes" must be a whole number of minutes, and only when approving' });
    }
    try {
      const t = await approvals.decideTicket({ id: req.params.id, approver: c.identity, approve, reason: (body.reason as string | undefined) ?? "", grantMinutes });
      return { ticket: ticketJson(t) };
    } catch (e) {
      return httpError(reply, e);
    }
  };
  app.post<{ Params: { id: string } }>("/api/v1/approvals/tickets/:id/approve", decide(true));
  app.post<{ Params: { id: string } }>("/api/v1/approvals/tickets/:id/deny", decide(false));

  app.get<{ Querystring: { all?: string } }>("/api/v1/approvals/grants", async (req, reply) => {
    const c = await caller(deps, req, reply);
    if (!c) return reply;
    try {
      const res = await approvals.listGrants({ includeInactive: req.query.all === "1" || req.query.all === "true" });
      const mine = (g: Grant) => overseer(c.identity) || g.subject === c.identity.subject || g.grantedBy?.subject === c.identity.subject;
      return { grants: res.grants.filter(mine).map(grantJson) };
    } catch (e) {
      return httpError(reply, e);
    }
  });

  app.post<{ Params: { id: string } }>("/api/v1/approvals/grants/:id/revoke", async (req, reply) => {
    const c = await caller(deps, req, reply, { mutating: true });
    if (!c) return reply;
    const body = (req.body ?? {}) as { reason?: unknown };
    try {
      const g = await approvals.revokeGrant({ id: req.params.id, revokedBy: c.identity, reason: typeof body.reason === "string" ? body.reason : "" });
      return { grant: grantJson(g) };
    } catch (e) {
      return httpError(reply, e);
    }
  });

  // Server-sent events: a snapshot of pending tickets, then every ticket change.
  app.get("/api/v1/approvals/stream", async (req, reply) => {
    const c = await caller(deps, req, reply);
    if (!c) return reply;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive", "x-accel-buffering": "no" });
    const send = (event: string, data: unknown) => {
      if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const sub = deps.nc.subscribe(approvalSubjects.changed, {
      callback: (err, msg) => {
        if (err) return;
        const key = new TextDecoder().decode(msg.data);
        if (!key.startsWith("ticket.")) return send("grant", { id: key.slice(6) });
        approvals.getTicket({ id: key.slice(7) }).then(
          (t) => {
            if (mayView(c.identity, t)) send("ticket", ticketJson(t));
          },
          () => undefined,
        );
      },
    });
    const keepAlive = setInterval(() => !res.writableEnded && res.write(": keep-alive\n\n"), 15_000);
    const close = () => {
      clearInterval(keepAlive);
      sub.unsubscribe();
    };
    req.raw.on("close", close);
    try {
      const snap = await approvals.listTickets({ states: [TicketState.TICKET_STATE_PENDING], limit: 500 });
      send("snapshot", snap.tickets.filter((t) => mayView(c.identity, t)).map(ticketJson));
    } catch (e) {
      send("error", { message: `approval service unavailable: ${(e as Error).message}` });
    }
  });
}
