// The approval service against a private nats-server (JetStream KV): approval
// rules, persistence across a restart, expiry, standing grants, audit events and
// webhooks with retries.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import { once } from "node:events";
import type { NatsConnection } from "@nats-io/transport-node";
import { ApprovalServiceService, Command, Decision, Effect, Ticket, TicketState, type AuditEvent, type Identity } from "@gatehouse/proto";
import { approvalSubjects, createLogger, natsClient, resolveConfig, RpcError, Status, type GatehouseConfig, type ServiceClient } from "@gatehouse/runtime";
import { startNats, type TestNats } from "@gatehouse/testing";
import { startApprovalService, type ApprovalServiceHandle } from "./service.js";
import { jsonPayload, slackPayload } from "./notify.js";

const log = createLogger("approval-test", "silent");
const person = (subject: string, groups: string[], kind = "human"): Identity => ({ subject, name: subject, groups, kind, issuer: "test", tokenId: "", clientId: "", expiresAtUnix: 0 });
const AGENT = person("agent-7", ["agents"], "agent");
const ALICE = person("alice", ["approvers"]);
const BOB = person("bob", ["approvers"]);
const MALLORY = person("mallory", ["developers"]);

function decision(opts: { tables?: string[]; expiresInMs?: number; minApprovals?: number } = {}): Decision {
  return Decision.fromPartial({
    effect: Effect.EFFECT_REQUIRE_APPROVAL,
    policyIds: ["orders-delete-needs-approval"],
    reason: "deleting orders needs approval",
    policyVersion: "v1",
    statements: [{ index: 0, effect: Effect.EFFECT_REQUIRE_APPROVAL, action: "sql:delete", policyIds: ["orders-delete-needs-approval"], reason: "" }],
    classified: [{ kind: "delete", action: "sql:delete", tables: opts.tables ?? ["orders"], writeTables: ["orders"], hasWhere: true }],
    cacheable: true,
    parseError: "",
    approval: { policyIds: ["orders-delete-needs-approval"], approverGroups: ["approvers"], minApprovals: opts.minApprovals ?? 1, expiresInMs: opts.expiresInMs ?? 600_000 },
  });
}

let nats: TestNats;
let nc: NatsConnection;
let config: GatehouseConfig;
let svc: ApprovalServiceHandle;
let client: ServiceClient<typeof ApprovalServiceService>;
const events: AuditEvent[] = [];
const audit = { record: async (e: AuditEvent) => void events.push(e), recordLater: (e: AuditEvent) => void events.push(e), close: async () => undefined };
let hook: Server;
const hookBodies: Array<{ path: string; body: Record<string, unknown> }> = [];
let hookFailures = 0;

async function create(opts: Parameters<typeof decision>[0] = {}, requester = AGENT, connection = "pg") {
  return client.createTicket({
    ticketId: randomUUID(),
    requester,
    connection: { name: connection, protocol: "postgres", tags: {} },
    command: Command.fromPartial({ id: `s1:${Math.random()}`, sessionId: "s1", text: "DELETE FROM orders WHERE id = 7", fingerprint: "fp-delete-orders" }),
    decision: decision(opts),
    listenerId: "test",
  });
}

async function refused(p: Promise<unknown>, code: Status, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof RpcError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return true;
  });
}

before(async () => {
  nats = await startNats();
  nc = await nats.connect();
  hook = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      // The JSON hook fails twice before accepting: exercises retries with backoff.
      if (req.url === "/json" && hookFailures < 2) {
        hookFailures++;
        res.writeHead(503).end();
        return;
      }
      hookBodies.push({ path: req.url ?? "", body: JSON.parse(body) as Record<string, unknown> });
      res.writeHead(200).end("ok");
    });
  });
  hook.listen(0, "127.0.0.1");
  await once(hook, "listening");
  const port = (hook.address() as { port: number }).port;
  config = resolveConfig(
    {
      nats: { url: nats.url },
      approvals: {
        bucket: `approvals_test_${process.pid}`,
        consoleUrl: "http://console.test",
        maxGrantMinutes: 60,
        webhooks: [
          { url: `http://127.0.0.1:${port}/json`, format: "json", retries: 4, backoffMs: 20 },
          { url: `http://127.0.0.1:${port}/slack`, format: "slack" },
        ],
      },
    } as never,
    process.cwd(),
  );
  svc = await startApprovalService(config, { nc, log, audit, grpcPort: -1 });
  client = natsClient(nc, ApprovalServiceService, { timeoutMs: 5000 });
});

after(async () => {
  await svc?.stop();
  await nc?.close();
  await nats?.stop();
  hook?.close();
});

describe("tickets", () => {
  test("a ticket opens pending, is published on its subject, and one approval from a member approves it", async () => {
    const id = randomUUID();
    const seen: Ticket[] = [];
    const sub = nc.subscribe(approvalSubjects.ticket(id), { callback: (_e, m) => void seen.push(Ticket.decode(m.data)) });
    const res = await client.createTicket({
      ticketId: id,
      requester: AGENT,
      connection: { name: "pg", protocol: "postgres", tags: {} },
      command: Command.fromPartial({ id: "s9:1", sessionId: "s9", text: "DELETE FROM orders WHERE id = 7" }),
      decision: decision(),
      listenerId: "test",
    });
    assert.equal(res.grant, undefined);
    const t = res.ticket!;
    assert.equal(t.state, TicketState.TICKET_STATE_PENDING);
    assert.deepEqual(t.approverGroups, ["approvers"]);
    assert.deepEqual(t.actions, ["sql:delete"]);
    assert.deepEqual(t.tables, ["orders"]);
    assert.equal(t.commandText, "DELETE FROM orders WHERE id = 7");
    // Creating the same id again is idempotent.
    const again = await client.createTicket({ ticketId: id, requester: AGENT, connection: { name: "pg", protocol: "postgres", tags: {} }, command: Command.fromPartial({ id: "s9:1", text: "x" }), decision: decision(), listenerId: "test" });
    assert.equal(again.ticket?.commandText, "DELETE FROM orders WHERE id = 7");

    const done = await client.decideTicket({ id, approver: ALICE, approve: true, reason: "ticket OPS-1", grantMinutes: 0 });
    assert.equal(done.state, TicketState.TICKET_STATE_APPROVED);
    assert.match(done.stateReason, /approved by alice: ticket OPS-1/);
    await nc.flush();
    await new Promise((r) => setTimeout(r, 50));
    sub.unsubscribe();
    assert.deepEqual(seen.map((s) => s.state), [TicketState.TICKET_STATE_PENDING, TicketState.TICKET_STATE_APPROVED]);
    // Audit events: deterministic ids, the actor as identity.
    const mine = events.filter((e) => e.body?.$case === "approval" && e.body.approval.ticket?.id === id);
    assert.deepEqual(mine.map((e) => e.id), [`approval:ticket:${id}:ticket_created`, `approval:ticket:${id}:approved`]);
    assert.equal(mine[1]!.identity?.subject, "alice");
    await refused(client.decideTicket({ id, approver: BOB, approve: false, reason: "", grantMinutes: 0 }), Status.FAILED_PRECONDITION, /already approved/);
  });

  test("self-approval and approval by a non-member are refused and leave the ticket pending", async () => {
    const t = (await create()).ticket!;
    const selfApprover = { ...AGENT, groups: ["agents", "approvers"] };
    await refused(client.decideTicket({ id: t.id, approver: selfApprover, approve: true, reason: "", grantMinutes: 0 }), Status.PERMISSION_DENIED, /self-approval is not allowed/);
    await refused(client.decideTicket({ id: t.id, approver: MALLORY, approve: true, reason: "", grantMinutes: 0 }), Status.PERMISSION_DENIED, /mallory is not a member of approvers/);
    assert.equal((await client.getTicket({ id: t.id })).state, TicketState.TICKET_STATE_PENDING);
  });

  test("min approvals: two distinct approvers are needed; one deny denies", async () => {
    const t = (await create({ minApprovals: 2 })).ticket!;
    let after1 = await client.decideTicket({ id: t.id, approver: ALICE, approve: true, reason: "", grantMinutes: 0 });
    assert.equal(after1.state, TicketState.TICKET_STATE_PENDING);
    await refused(client.decideTicket({ id: t.id, approver: ALICE, approve: true, reason: "", grantMinutes: 0 }), Status.FAILED_PRECONDITION, /already decided/);
    after1 = await client.decideTicket({ id: t.id, approver: BOB, approve: true, reason: "", grantMinutes: 0 });
    assert.equal(after1.state, TicketState.TICKET_STATE_APPROVED);
    assert.match(after1.stateReason, /approved by alice, bob/);

    const d = (await create({ minApprovals: 2 })).ticket!;
    const denied = await client.decideTicket({ id: d.id, approver: BOB, approve: false, reason: "not during the freeze", grantMinutes: 0 });
    assert.equal(denied.state, TicketState.TICKET_STATE_DENIED);
    assert.equal(denied.stateReason, "denied by bob: not during the freeze");
  });

  test("expiry: an undecided ticket expires on time and cannot be approved afterwards", async () => {
    const t = (await create({ expiresInMs: 600 })).ticket!;
    const deadline = Date.now() + 10_000;
    let cur = t;
    while (cur.state === TicketState.TICKET_STATE_PENDING && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      cur = await client.getTicket({ id: t.id });
    }
    assert.equal(cur.state, TicketState.TICKET_STATE_EXPIRED);
    assert.match(cur.stateReason, /expired after 1s without a decision/);
    await refused(client.decideTicket({ id: t.id, approver: ALICE, approve: true, reason: "", grantMinutes: 0 }), Status.FAILED_PRECONDITION, /already expired/);
  });

  test("withdraw: a pending ticket is withdrawn; a decided one stays decided", async () => {
    const t = (await create()).ticket!;
    const w = await client.withdrawTicket({ id: t.id, reason: "client cancelled" });
    assert.equal(w.state, TicketState.TICKET_STATE_WITHDRAWN);
    assert.equal(w.stateReason, "withdrawn: client cancelled");
    const a = (await create()).ticket!;
    await client.decideTicket({ id: a.id, approver: ALICE, approve: true, reason: "", grantMinutes: 0 });
    assert.equal((await client.withdrawTicket({ id: a.id, reason: "late" })).state, TicketState.TICKET_STATE_APPROVED);
  });

  test("bad input is refused with a clear error, never a crash", async () => {
    await refused(client.getTicket({ id: "../../etc" }), Status.INVALID_ARGUMENT, /ticket id must be/);
    await refused(client.getTicket({ id: "nope" }), Status.NOT_FOUND, /no ticket nope/);
    await refused(client.createTicket({ ticketId: randomUUID(), requester: AGENT, connection: undefined, command: undefined, decision: undefined, listenerId: "" }), Status.INVALID_ARGUMENT, /needs the connection/);
    const d = { ...decision(), effect: Effect.EFFECT_ALLOW };
    await refused(
      client.createTicket({ ticketId: randomUUID(), requester: AGENT, connection: { name: "pg", protocol: "postgres", tags: {} }, command: Command.fromPartial({ text: "x" }), decision: d, listenerId: "" }),
      Status.INVALID_ARGUMENT,
      /only for commands whose decision is REQUIRE_APPROVAL/,
    );
  });
});

describe("standing grants", () => {
  test("approve with a window opens a grant: matching commands skip the hold, others do not; revocation applies to the next command", async () => {
    const t = (await create({}, person("agent-g", ["agents"], "agent"))).ticket!;
    const approved = await client.decideTicket({ id: t.id, approver: ALICE, approve: true, reason: "batch cleanup", grantMinutes: 10 });
    assert.ok(approved.grantId, "the ticket names its grant");
    const agent = person("agent-g", ["agents"], "agent");
    for (let i = 0; i < 3; i++) {
      const r = await create({}, agent);
      assert.equal(r.grant?.id, approved.grantId, "a matching command is covered by the grant");
      assert.equal(r.ticket, undefined);
    }
    const g = (await client.listGrants({ includeInactive: false })).grants.find((x) => x.id === approved.grantId)!;
    assert.equal(g.subject, "agent-g");
    assert.equal(g.grantedBy?.subject, "alice");
    assert.ok(Math.abs(g.expiresUnixMs - g.createdUnixMs - 10 * 60_000) < 5);
    // Not covered: other tables, another connection, another identity.
    assert.ok((await create({ tables: ["orders", "customers"] }, agent)).ticket, "an extra table is outside the grant");
    assert.ok((await create({}, agent, "other")).ticket, "another connection is outside the grant");
    assert.ok((await create({}, person("agent-h", ["agents"], "agent"))).ticket, "another identity is outside the grant");
    // The grantee cannot revoke; an approver can.
    await refused(client.revokeGrant({ id: g.id, revokedBy: agent, reason: "" }), Status.PERMISSION_DENIED, /may not revoke/);
    const revoked = await client.revokeGrant({ id: g.id, revokedBy: BOB, reason: "done" });
    assert.equal(revoked.revoked, true);
    assert.ok((await create({}, agent)).ticket, "after revocation the next command is held again");
    assert.ok(events.some((e) => e.id === `approval:grant:${g.id}:grant_created`));
    assert.ok(events.some((e) => e.id === `approval:grant:${g.id}:grant_revoked` && e.identity?.subject === "bob"));
  });

  test("grant windows are bounded and nobody grants to themselves", async () => {
    const t = (await create()).ticket!;
    await refused(client.decideTicket({ id: t.id, approver: ALICE, approve: true, reason: "", grantMinutes: 61 }), Status.INVALID_ARGUMENT, /1 to 60 minutes/);
    assert.equal((await client.getTicket({ id: t.id })).state, TicketState.TICKET_STATE_PENDING, "a refused window leaves the ticket undecided");
    await refused(
      client.createGrant({ grantedBy: ALICE, subject: "alice", issuer: "", connection: "pg", policyIds: ["p"], actions: ["sql:delete"], tables: ["orders"], fingerprint: "", minutes: 5, reason: "" }),
      Status.PERMISSION_DENIED,
      /cannot grant standing access to themselves/,
    );
    await refused(
      client.createGrant({ grantedBy: MALLORY, subject: "agent-7", issuer: "", connection: "pg", policyIds: ["p"], actions: ["sql:delete"], tables: ["orders"], fingerprint: "", minutes: 5, reason: "" }),
      Status.PERMISSION_DENIED,
      /not in a grantor group/,
    );
  });
});

describe("durability", () => {
  test("tickets and grants survive a restart of the approval service and of NATS", async () => {
    const t = (await create()).ticket!;
    await svc.stop();
    await nats.restart();
    svc = await startApprovalService(config, { nc, log, audit, grpcPort: -1 });
    assert.equal(svc.store.tickets.get(t.id)?.value.state, TicketState.TICKET_STATE_PENDING, "loaded from the KV bucket");
    const done = await client.decideTicket({ id: t.id, approver: BOB, approve: true, reason: "after restart", grantMinutes: 0 });
    assert.equal(done.state, TicketState.TICKET_STATE_APPROVED);
  });
});

describe("webhooks", () => {
  test("generic JSON (retried with backoff after failures) and Slack-compatible payloads", async () => {
    const t = (await create()).ticket!;
    const deadline = Date.now() + 10_000;
    const find = (path: string) => hookBodies.find((h) => h.path === path && JSON.stringify(h.body).includes(t.id));
    while ((!find("/json") || !find("/slack")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(hookFailures >= 2, "the JSON hook failed before it accepted");
    const j = find("/json")!.body as { type: string; ticket: { id: string; url: string; approver_groups: string[] } };
    assert.equal(j.type, "gatehouse.approval.ticket_created");
    assert.equal(j.ticket.url, `http://console.test/console/tickets/${t.id}`);
    assert.deepEqual(j.ticket.approver_groups, ["approvers"]);
    const s = find("/slack")!.body as { text: string; blocks: Array<{ type: string }> };
    assert.match(s.text, /Approval needed/);
    assert.match(s.text, /DELETE FROM orders WHERE id = 7/);
    assert.equal(s.blocks[0]!.type, "section");
  });

  test("payload builders escape nothing they should not and cut long commands for Slack", () => {
    const t = Ticket.fromPartial({ id: "t1", commandText: "x".repeat(3000) + "```", approverGroups: ["a"], policyIds: ["p"], state: TicketState.TICKET_STATE_PENDING });
    const s = slackPayload({ kind: "ticket_created", ticket: t }, "http://c") as { text: string };
    assert.ok(s.text.length < 2000);
    const j = jsonPayload({ kind: "denied", ticket: { ...t, state: TicketState.TICKET_STATE_DENIED } }, "http://c") as { ticket: { state: string } };
    assert.equal(j.ticket.state, "denied");
  });
});
