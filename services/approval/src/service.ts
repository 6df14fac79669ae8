// The approval service: ApprovalService over NATS request/reply (queue group, so
// copies share the load) and gRPC. Tickets and grants live in JetStream KV; every
// change is published for holders and consoles, written to the audit trail, and
// sent to the configured webhooks.
import { randomUUID } from "node:crypto";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Server } from "@grpc/grpc-js";
import {
  ApprovalServiceService,
  Effect,
  Ticket,
  TicketState,
  type ApprovalEvent,
  type AuditEvent,
  type Grant,
  type Identity,
} from "@gatehouse/proto";
import {
  approvalSubjects,
  AuditPublisher,
  connectBus,
  createLogger,
  RpcError,
  serveOnNats,
  startGrpcServer,
  Status,
  type GatehouseConfig,
  type Logger,
  type ServiceImplementation,
} from "@gatehouse/runtime";
import { Notifier } from "./notify.js";
import { applyVote, approversOf, formatDuration, grantCovers, holdPattern, isFinal, newTicket, stateName, type HoldPattern } from "./rules.js";
import { ApprovalStore, checkId } from "./store.js";

export interface ApprovalAuditSink {
  record(event: AuditEvent): Promise<void>;
  recordLater(event: AuditEvent): void;
  close(): Promise<void>;
}

export interface ApprovalServiceOptions {
  nc?: NatsConnection;
  log?: Logger;
  /** Audit sink instead of a new AuditPublisher on the bus. */
  audit?: ApprovalAuditSink;
  /** gRPC port override (default approvals.grpcPort; 0: any free port; -1: no gRPC server). */
  grpcPort?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface ApprovalServiceHandle {
  grpcPort: number;
  store: ApprovalStore;
  stop(): Promise<void>;
}

const SERVICE_IDENTITY = "approval-service";

function micros(ms: number): number {
  return Math.round(ms * 1000);
}

export async function startApprovalService(config: GatehouseConfig, opts: ApprovalServiceOptions = {}): Promise<ApprovalServiceHandle> {
  const log = opts.log ?? createLogger("approval");
  const now = opts.now ?? Date.now;
  const cfg = config.approvals;
  const ownBus = !opts.nc;
  const nc = opts.nc ?? (await connectBus("gatehouse-approval", config.nats.url));
  const audit: ApprovalAuditSink = opts.audit ?? new AuditPublisher(nc, { ackTimeoutMs: config.audit.ackTimeoutMs, log });
  const notifier = new Notifier(cfg.webhooks, cfg.consoleUrl, log);
  const timers = new Map<string, NodeJS.Timeout>();
  let stopped = false;

  const schedule = (t: Ticket) => {
    if (stopped || isFinal(t) || timers.has(t.id)) return;
    // setTimeout holds at most ~24.8 days; maxHoldMs is far below that.
    const timer = setTimeout(() => {
      timers.delete(t.id);
      void expire(t.id);
    }, Math.max(0, t.expiresUnixMs - now()) + 20);
    timer.unref();
    timers.set(t.id, timer);
  };

  const store = await ApprovalStore.open(nc, cfg.bucket, log, (key) => {
    // Another copy created or changed a ticket: it may need our expiry timer too.
    if (key.startsWith("ticket.")) {
      const t = store.tickets.get(key.slice(7))?.value;
      if (t) schedule(t);
    }
  });
  for (const { value } of store.tickets.values()) schedule(value);

  const announce = (t: Ticket | undefined, g: Grant | undefined) => {
    try {
      if (t) nc.publish(approvalSubjects.ticket(t.id), Ticket.encode(t).finish());
      nc.publish(approvalSubjects.changed, t ? `ticket.${t.id}` : `grant.${g!.id}`);
    } catch (e) {
      log.warn({ err: (e as Error).message }, "could not publish an approval change (holders fall back to polling)");
    }
  };

  /** Audit event for a change; awaited, but a slow audit trail never loses the change (retried later). */
  const recordChange = async (kind: string, actor: Identity | undefined, body: ApprovalEvent, discriminator = "") => {
    const t = body.ticket;
    const g = body.grant;
    const ref = t ? `ticket:${t.id}` : `grant:${g?.id}`;
    const ev: AuditEvent = {
      id: `approval:${ref}:${kind}${discriminator ? `:${discriminator}` : ""}`,
      timeUnixMicros: micros(now()),
      sessionId: t?.sessionId ?? "",
      connection: t?.connection?.name ?? g?.connection ?? "",
      protocol: t?.connection?.protocol ?? "",
      identity: actor ?? { subject: SERVICE_IDENTITY, name: SERVICE_IDENTITY, groups: [], kind: "service", issuer: "", tokenId: "", clientId: "", expiresAtUnix: 0 },
      listenerId: SERVICE_IDENTITY,
      body: { $case: "approval", approval: body },
    };
    try {
      await audit.record(ev);
    } catch (e) {
      log.warn({ event: ev.id, err: (e as Error).message }, "approval audit event not acknowledged yet; retrying in the background");
      audit.recordLater(ev);
    }
  };

  const changed = async (kind: string, actor: Identity | undefined, t: Ticket | undefined, g: Grant | undefined, vote?: ApprovalEvent["vote"], discriminator?: string) => {
    announce(t, g);
    if (t && isFinal(t)) {
      clearTimeout(timers.get(t.id));
      timers.delete(t.id);
    }
    notifier.notify({ kind, ticket: t, grant: g });
    await recordChange(kind, actor, { kind, ticket: t, grant: g, vote }, discriminator);
  };

  async function expire(id: string): Promise<Ticket | undefined> {
    try {
      const { ticket, changed: did } = await store.updateTicket(id, (t) => {
        if (isFinal(t) || t.expiresUnixMs > now()) return false;
        t.state = TicketState.TICKET_STATE_EXPIRED;
        t.decidedUnixMs = now();
        t.stateReason = `expired after ${formatDuration(t.expiresUnixMs - t.createdUnixMs)} without a decision`;
        return true;
      });
      if (did) await changed("expired", undefined, ticket, undefined);
      else if (!isFinal(ticket)) schedule(ticket);
      return ticket;
    } catch (e) {
      log.warn({ ticket: id, err: (e as Error).message }, "could not expire ticket; retrying");
      const timer = setTimeout(() => {
        timers.delete(id);
        void expire(id);
      }, 1000);
      timer.unref();
      timers.set(id, timer);
      return undefined;
    }
  }

  /** An active grant covering the pattern, confirmed against the KV (a revocation applies from the next command). */
  const findGrant = async (requester: Identity, connection: string, p: HoldPattern): Promise<Grant | undefined> => {
    const t = now();
    for (const { value } of store.grants.values()) {
      if (!grantCovers(value, requester, connection, p, t)) continue;
      const fresh = await store.getGrant(value.id);
      if (fresh && grantCovers(fresh.value, requester, connection, p, now())) return fresh.value;
    }
    return undefined;
  };

  const isGrantor = (who: Identity | undefined) => !!who?.groups.some((g) => cfg.grantorGroups.includes(g));

  const makeGrant = (granter: Identity, subject: string, issuer: string, connection: string, p: HoldPattern, minutes: number, ticketId: string, reason: string): Grant => {
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > cfg.maxGrantMinutes) {
      throw new RpcError(Status.INVALID_ARGUMENT, `a grant window must be 1 to ${cfg.maxGrantMinutes} minutes (approvals.maxGrantMinutes), got ${minutes}`);
    }
    if (granter.subject === subject) throw new RpcError(Status.PERMISSION_DENIED, `${subject} cannot grant standing access to themselves`);
    const t = now();
    return {
      id: `g-${randomUUID()}`,
      subject,
      issuer,
      connection,
      policyIds: p.policyIds,
      actions: p.actions,
      tables: p.tables,
      fingerprint: p.fingerprint,
      grantedBy: granter,
      createdUnixMs: t,
      expiresUnixMs: t + minutes * 60_000,
      revoked: false,
      revokedBy: undefined,
      revokedUnixMs: 0,
      ticketId,
      reason,
    };
  };

  const impl: ServiceImplementation<typeof ApprovalServiceService> = {
    async createTicket(req) {
      checkId("ticket", req.ticketId);
      if (!req.requester?.subject) throw new RpcError(Status.INVALID_ARGUMENT, "CreateTicket needs the requester identity");
      if (!req.connection?.name) throw new RpcError(Status.INVALID_ARGUMENT, "CreateTicket needs the connection");
      if (!req.command || !req.decision) throw new RpcError(Status.INVALID_ARGUMENT, "CreateTicket needs the command and its decision");
      if (req.decision.effect !== Effect.EFFECT_REQUIRE_APPROVAL) throw new RpcError(Status.INVALID_ARGUMENT, "CreateTicket is only for commands whose decision is REQUIRE_APPROVAL");
      const p = holdPattern(req.command, req.decision);
      const grant = await findGrant(req.requester, req.connection.name, p);
      if (grant) return { grant, ticket: undefined };
      const ticket = newTicket({ id: req.ticketId, requester: req.requester, connection: req.connection, command: req.command, decision: req.decision, listenerId: req.listenerId, now: now(), maxHoldMs: cfg.maxHoldMs });
      if (ticket.approverGroups.length === 0) {
        throw new RpcError(Status.FAILED_PRECONDITION, `policy ${ticket.policyIds.join(", ")} requires approval but names no approver group (@approval("group"))`);
      }
      if (!(await store.createTicket(ticket))) {
        const existing = await store.getTicket(req.ticketId);
        return { grant: undefined, ticket: existing?.value };
      }
      schedule(ticket);
      log.info({ ticket: ticket.id, requester: ticket.requester?.subject, connection: ticket.connection?.name, policies: ticket.policyIds }, "ticket opened");
      await changed("ticket_created", req.requester, ticket, undefined);
      return { grant: undefined, ticket };
    },

    async getTicket(req) {
      const cur = await store.getTicket(req.id);
      if (!cur) throw new RpcError(Status.NOT_FOUND, `no ticket ${req.id}`);
      // Overdue but not yet expired by a timer (e.g. right after a restart): expire now.
      if (!isFinal(cur.value) && cur.value.expiresUnixMs <= now()) return (await expire(req.id)) ?? cur.value;
      return cur.value;
    },

    async listTickets(req) {
      const states = new Set(req.states);
      const limit = req.limit > 0 ? Math.min(req.limit, 1000) : 200;
      return {
        tickets: [...store.tickets.values()]
          .map((v) => v.value)
          .filter((t) => states.size === 0 || states.has(t.state))
          .sort((a, b) => b.createdUnixMs - a.createdUnixMs)
          .slice(0, limit),
      };
    },

    async decideTicket(req) {
      checkId("ticket", req.id);
      const vote = { approver: req.approver, approve: req.approve, reason: req.reason.slice(0, 1000), timeUnixMs: now(), grantMinutes: req.approve ? req.grantMinutes : 0 };
      let grant: Grant | undefined;
      const { ticket } = await store.updateTicket(req.id, (t) => {
        grant = undefined;
        if (!isFinal(t) && t.expiresUnixMs <= now()) throw new RpcError(Status.FAILED_PRECONDITION, `ticket ${t.id} expired at ${new Date(t.expiresUnixMs).toISOString()}`);
        applyVote(t, { ...vote }, now());
        if (t.state === TicketState.TICKET_STATE_APPROVED && vote.grantMinutes > 0) {
          const p: HoldPattern = { policyIds: t.policyIds, actions: t.actions, tables: t.tables, fingerprint: "" };
          grant = makeGrant(req.approver!, t.requester!.subject, t.requester!.issuer, t.connection!.name, p, vote.grantMinutes, t.id, vote.reason);
          t.grantId = grant.id;
        }
        return true;
      });
      if (grant) await store.putGrant(grant);
      const kind = ticket.state === TicketState.TICKET_STATE_PENDING ? "vote" : stateName(ticket.state);
      log.info({ ticket: ticket.id, approver: req.approver?.subject, approve: req.approve, state: stateName(ticket.state), grant: grant?.id }, "ticket decision");
      await changed(kind, req.approver, ticket, undefined, vote, kind === "vote" ? req.approver?.subject : "");
      if (grant) await changed("grant_created", req.approver, undefined, grant);
      return ticket;
    },

    async withdrawTicket(req) {
      const { ticket, changed: did } = await store.updateTicket(req.id, (t) => {
        if (isFinal(t)) return false;
        t.state = TicketState.TICKET_STATE_WITHDRAWN;
        t.decidedUnixMs = now();
        t.stateReason = `withdrawn: ${req.reason || "the requester gave up"}`;
        return true;
      });
      if (did) await changed("withdrawn", ticket.requester, ticket, undefined);
      return ticket;
    },

    async createGrant(req) {
      if (!isGrantor(req.grantedBy)) throw new RpcError(Status.PERMISSION_DENIED, `${req.grantedBy?.subject ?? "caller"} is not in a grantor group (${cfg.grantorGroups.join(", ")}; approvals.grantorGroups)`);
      if (!req.subject || !req.connection || req.policyIds.length === 0) throw new RpcError(Status.INVALID_ARGUMENT, "a grant needs subject, connection and at least one policy id");
      const p: HoldPattern = { policyIds: [...req.policyIds].sort(), actions: [...req.actions].sort(), tables: [...req.tables].sort(), fingerprint: req.fingerprint };
      const grant = makeGrant(req.grantedBy!, req.subject, req.issuer, req.connection, p, req.minutes, "", req.reason);
      await store.putGrant(grant);
      await changed("grant_created", req.grantedBy, undefined, grant);
      return grant;
    },

    async listGrants(req) {
      const t = now();
      return {
        grants: [...store.grants.values()]
          .map((v) => v.value)
          .filter((g) => req.includeInactive || (!g.revoked && g.expiresUnixMs > t))
          .sort((a, b) => b.createdUnixMs - a.createdUnixMs),
      };
    },

    async revokeGrant(req) {
      for (let attempt = 0; ; attempt++) {
        const cur = await store.getGrant(req.id);
        if (!cur) throw new RpcError(Status.NOT_FOUND, `no grant ${req.id}`);
        const g = cur.value;
        if (!isGrantor(req.revokedBy) && req.revokedBy?.subject !== g.grantedBy?.subject) {
          throw new RpcError(Status.PERMISSION_DENIED, `${req.revokedBy?.subject ?? "caller"} may not revoke grant ${g.id}: only its granter or members of ${cfg.grantorGroups.join(", ")}`);
        }
        if (g.revoked) return g;
        g.revoked = true;
        g.revokedBy = req.revokedBy;
        g.revokedUnixMs = now();
        if (req.reason) g.reason = `${g.reason ? `${g.reason}; ` : ""}revoked: ${req.reason}`;
        try {
          await store.putGrant(g, cur.revision);
        } catch (e) {
          if (attempt < 5 && /wrong last sequence/i.test((e as Error).message)) continue;
          throw e;
        }
        log.info({ grant: g.id, by: req.revokedBy?.subject }, "grant revoked");
        await changed("grant_revoked", req.revokedBy, undefined, g);
        return g;
      }
    },

    async matchGrant(req) {
      if (!req.requester?.subject || !req.connection?.name) throw new RpcError(Status.INVALID_ARGUMENT, "MatchGrant needs the requester and the connection");
      return { grant: await findGrant(req.requester, req.connection.name, holdPattern(req.command, req.decision)) };
    },
  };

  const sub: Subscription = serveOnNats(nc, ApprovalServiceService, impl, {
    onError: (method, err) => {
      if (err instanceof RpcError && err.code !== Status.INTERNAL) log.info({ method, code: err.codeName, err: err.message }, "approval request refused");
      else log.warn({ method, err: (err as Error).message }, "approval rpc failed");
    },
  });
  const wantPort = opts.grpcPort ?? cfg.grpcPort;
  let server: Server | undefined;
  let grpcPort = -1;
  if (wantPort >= 0) {
    try {
      ({ server, port: grpcPort } = await startGrpcServer(`127.0.0.1:${wantPort}`, [{ def: ApprovalServiceService, impl }]));
    } catch (e) {
      sub.unsubscribe();
      store.close();
      if (ownBus) await nc.close();
      throw new Error(`approval service: cannot listen for gRPC on 127.0.0.1:${wantPort} (${(e as Error).message}); set approvals.grpcPort or GATEHOUSE_APPROVAL_GRPC_PORT`);
    }
  }

  // A backstop for timers lost to clock jumps: sweep pending tickets every few seconds.
  const sweep = setInterval(() => {
    const t = now();
    for (const { value } of store.tickets.values()) if (!isFinal(value) && value.expiresUnixMs <= t && !timers.has(value.id)) schedule(value);
  }, 5000);
  sweep.unref();

  return {
    grpcPort,
    store,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(sweep);
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      if (server) await new Promise<void>((resolve) => server!.tryShutdown(() => resolve()));
      try {
        await sub.drain();
      } catch {
        // connection already closed
      }
      await notifier.close();
      store.close();
      if (!opts.audit) await audit.close();
      if (ownBus) await nc.close();
    },
  };
}

export { approversOf };
