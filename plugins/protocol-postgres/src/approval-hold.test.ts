// Holding a command for approval on the wire (the approval service is replaced by
// a test-controlled FAKE requestApproval): notice then wait, approve runs it, deny
// refuses it, the extended protocol holds at Execute, a CancelRequest withdraws,
// a grant runs without a notice, and a held session never blocks another.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type pg from "pg";
import { DependencyError, type ApprovalOutcome, type ApprovalRequest } from "@gatehouse/plugin-sdk";
import { FakeGateway, GOOD_TOKEN, startTestListener, type TestListener } from "./testing/fake-gateway.js";
import { direct, pgClient, scratch } from "./testing/clients.js";

interface Pending {
  req: ApprovalRequest;
  settle(o: Partial<ApprovalOutcome>): void;
}

/** FAKE approval facility: every request becomes a pending hold the test settles. */
class ApprovalFakeGateway extends FakeGateway {
  readonly holds: Pending[] = [];
  /** When set, requests are covered by this grant at once. */
  grant: string | undefined;
  private waiters: Array<(p: Pending) => void> = [];

  requestApproval = (req: ApprovalRequest): Promise<ApprovalOutcome> => {
    const ticketId = `t-${this.holds.length + 1}`;
    if (this.grant) return Promise.resolve({ outcome: "granted", ticketId: "", grantId: this.grant, approvers: ["alice"], reason: "grant" });
    return new Promise((resolve) => {
      const base: ApprovalOutcome = { outcome: "approved", ticketId, grantId: "", approvers: [], reason: "" };
      const p: Pending = { req, settle: (o) => resolve({ ...base, ...o }) };
      req.signal?.addEventListener("abort", () => p.settle({ outcome: "withdrawn", reason: "withdrawn" }), { once: true });
      this.holds.push(p);
      req.onHold?.({ ticketId, url: `http://console.test/console/tickets/${ticketId}`, expiresAtUnixMs: Date.now() + 60_000, approverGroups: ["approvers"] });
      for (const w of this.waiters.splice(0)) w(p);
    });
  };

  nextHold(): Promise<Pending> {
    return new Promise((r) => this.waiters.push(r));
  }
}

describe("approval holds on the wire", () => {
  let t: TestListener;
  let gw: ApprovalFakeGateway;
  const table = scratch("hold");
  before(async () => {
    gw = new ApprovalFakeGateway();
    t = await startTestListener({}, gw);
    await direct(`CREATE TABLE ${table} (id int primary key, note text)`);
  });
  after(async () => {
    await direct(`DROP TABLE IF EXISTS ${table}`);
    await t.stop();
  });

  it("simple query: a notice names the ticket and URL, the command waits, approve runs it and records the approval", async () => {
    const c = pgClient(t.port);
    await c.connect();
    const notices: string[] = [];
    c.on("notice", (n) => notices.push(`${n.message} | ${(n as { hint?: string }).hint ?? ""}`));
    try {
      const next = gw.nextHold();
      const q = c.query(`INSERT INTO ${table} VALUES (1, 'gh_needs_approval')`);
      const hold = await next;
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await direct(`SELECT 1 FROM ${table} WHERE id = 1`)).rowCount, 0, "nothing runs while held");
      assert.match(notices.join("\n"), /approval required \(policy test-approval\); waiting for approvers on ticket t-\d+ \| approve or deny at http:\/\/console\.test\/console\/tickets\/t-\d+/);
      hold.settle({ outcome: "approved", approvers: ["alice"] });
      assert.equal((await q).rowCount, 1);
      const cmd = gw.commands(`VALUES (1, 'gh_needs_approval')`)[0]!;
      const ev = gw.ofKind("command").find((b) => b.command.command?.id === cmd.id)!;
      assert.match(ev.command.approval?.ticketId ?? "", /^t-\d+$/);
      assert.equal(ev.command.approval?.outcome, "approved");
      assert.deepEqual(ev.command.approval?.approvers, ["alice"]);
      assert.equal(hold.req.command.text, cmd.text);
    } finally {
      await c.end();
    }
  });

  it("extended protocol: Parse succeeds, Execute is held; a denial is 42501 naming the ticket; the session goes on", async () => {
    const c = pgClient(t.port);
    await c.connect();
    try {
      const next = gw.nextHold();
      const q = c.query(`INSERT INTO ${table} VALUES ($1, 'gh_needs_approval')`, [2]).then(
        () => assert.fail("must be denied"),
        (e: Error & { code?: string }) => e,
      );
      const hold = await next;
      hold.settle({ outcome: "denied", reason: "denied by bob: no" });
      const e = await q;
      assert.equal(e.code, "42501");
      assert.match(e.message, /gatehouse: approval ticket t-\d+ denied: denied by bob: no; statement not executed/);
      assert.equal((await c.query("SELECT 2 AS n")).rows[0].n, 2);
      assert.equal((await direct(`SELECT 1 FROM ${table} WHERE id = 2`)).rowCount, 0);
    } finally {
      await c.end();
    }
  });

  it("a held session does not block other sessions", async () => {
    const a = pgClient(t.port);
    const b = pgClient(t.port);
    await a.connect();
    await b.connect();
    try {
      const next = gw.nextHold();
      const held = a.query(`INSERT INTO ${table} VALUES (3, 'gh_needs_approval')`);
      const hold = await next;
      for (let i = 0; i < 5; i++) assert.equal((await b.query("SELECT $1::int AS i", [i])).rows[0].i, i);
      hold.settle({ outcome: "approved" });
      assert.equal((await held).rowCount, 1);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it("a CancelRequest (psql on SIGINT) withdraws the ticket", async () => {
    const next = gw.nextHold();
    const child = spawn("psql", [`host=127.0.0.1 port=${t.port} user=agent-1 dbname=demo sslmode=disable`, "-X", "-c", `INSERT INTO ${table} VALUES (4, 'gh_needs_approval')`], {
      env: { ...process.env, PGPASSWORD: GOOD_TOKEN },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const exit = new Promise<number | null>((r) => child.on("exit", r));
    const hold = await next;
    child.kill("SIGINT");
    const code = await exit;
    assert.notEqual(code, 0);
    assert.match(stderr, /canceling statement due to user request: gatehouse approval ticket t-\d+ withdrawn/);
    assert.equal(hold.req.signal?.aborted, true);
    assert.equal((await direct(`SELECT 1 FROM ${table} WHERE id = 4`)).rowCount, 0);
  });

  it("approval service unavailable: 58000, not executed, the session goes on (fail closed)", async () => {
    const c = pgClient(t.port);
    await c.connect();
    const original = gw.requestApproval;
    gw.requestApproval = () => Promise.reject(new DependencyError("approval", "approval service is not running (no responders); the statement was not executed"));
    try {
      const e = await c.query(`INSERT INTO ${table} VALUES (6, 'gh_needs_approval')`).then(
        () => assert.fail("must be refused"),
        (err: Error & { code?: string }) => err,
      );
      assert.equal(e.code, "58000");
      assert.match(e.message, /gatehouse: approval unavailable: approval service is not running/);
      assert.equal((await c.query("SELECT 1 AS one")).rows[0].one, 1);
      assert.equal((await direct(`SELECT 1 FROM ${table} WHERE id = 6`)).rowCount, 0);
    } finally {
      gw.requestApproval = original;
      await c.end();
    }
  });

  it("a standing grant runs the command at once, without a notice, and records the grant id", async () => {
    gw.grant = "g-test";
    const c: pg.Client = pgClient(t.port);
    await c.connect();
    const notices: string[] = [];
    c.on("notice", (n) => notices.push(n.message ?? ""));
    try {
      assert.equal((await c.query(`INSERT INTO ${table} VALUES (5, 'gh_needs_approval')`)).rowCount, 1);
      assert.deepEqual(notices, []);
      const cmd = gw.commands(`VALUES (5, 'gh_needs_approval')`)[0]!;
      const ev = gw.ofKind("command").find((b) => b.command.command?.id === cmd.id)!;
      assert.equal(ev.command.approval?.grantId, "g-test");
      assert.equal(ev.command.approval?.outcome, "granted");
    } finally {
      gw.grant = undefined;
      await c.end();
    }
  });
});
