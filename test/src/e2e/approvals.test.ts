// Issue 4 acceptance: just-in-time approvals with real psql and node-postgres
// through the listener to the real PostgreSQL, approvers acting through the CLI,
// the REST API and the web console in headless Chromium (OIDC login at the dev
// IdP), standing grants, a SIGKILLed approval service, and the ClickHouse query
// that names the approver of every executed privileged command.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { startApprovalStack, type ApprovalStack } from "../support/approval-stack.js";

const AGENT = `agent-ap-${process.pid}`;
let stack: ApprovalStack;
let agentToken: string;
/** CLI approver tokens (forge issuer). */
let alice: string;
let dave: string;
/** Commands that ran after approval (ticket or grant), for the ClickHouse check. */
const executed: string[] = [];

interface Held {
  ticket: Promise<string>;
  done: Promise<{ code: number; stdout: string; stderr: string }>;
  exited(): boolean;
  interrupt(): void;
}

/** Run one statement with psql; `ticket` resolves when the approval notice arrives. */
function psqlHeld(sql: string, token = agentToken): Held {
  const child = spawn("psql", [stack.dsn(token, AGENT), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let exited = false;
  let onTicket!: (id: string) => void;
  let onNoTicket!: (e: Error) => void;
  const ticket = new Promise<string>((res, rej) => ((onTicket = res), (onNoTicket = rej)));
  child.stdout.on("data", (b) => (stdout += b));
  child.stderr.on("data", (b) => {
    stderr += b;
    const m = /NOTICE:\s+gatehouse: approval required .* ticket ([0-9a-f-]{36})/.exec(stderr);
    if (m) onTicket(m[1]!);
  });
  const done = new Promise<{ code: number; stdout: string; stderr: string }>((res) =>
    child.on("exit", (code) => {
      exited = true;
      onNoTicket(new Error(`psql exited without an approval notice: ${stderr}${stdout}`));
      res({ code: code ?? 1, stdout, stderr });
    }),
  );
  ticket.catch(() => undefined);
  return { ticket, done, exited: () => exited, interrupt: () => void child.kill("SIGINT") };
}

async function orderExists(id: number): Promise<boolean> {
  const c = await stack.upstream();
  try {
    return (await c.query("SELECT 1 FROM orders WHERE id = $1", [id])).rowCount === 1;
  } finally {
    await c.end();
  }
}

const approveCli = (id: string, token = alice, extra: string[] = []) => stack.cli(["approvals", "approve", id, "--reason", "e2e", ...extra], { GATEHOUSE_TOKEN: token });

before(async () => {
  stack = await startApprovalStack();
  agentToken = await stack.forge.mint({ sub: AGENT, groups: ["agents"] });
  alice = await stack.forge.mint({ sub: "alice", groups: ["approvers"] });
  dave = await stack.forge.mint({ sub: "dave", groups: ["developers"] });
});

after(async () => {
  await stack?.stop();
});

describe("held commands", () => {
  test("psql: DELETE FROM orders WHERE id = 7 shows the notice and blocks; approved via the CLI it completes", async () => {
    const sql = "DELETE FROM orders WHERE id = 7";
    const h = psqlHeld(sql);
    const id = await h.ticket;
    // Held: psql is still waiting and the row is still there.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(h.exited(), false, "psql must block while the ticket is pending");
    assert.equal(await orderExists(7), true, "nothing reached the database before the approval");

    const list = await stack.cli(["approvals", "list", "--json"], { GATEHOUSE_TOKEN: alice });
    assert.equal(list.code, 0, list.stderr);
    const pending = JSON.parse(list.stdout) as Array<{ id: string; command: string; requester: { subject: string }; policy_ids: string[] }>;
    const mine = pending.find((t) => t.id === id);
    assert.ok(mine, `ticket ${id} in ${list.stdout}`);
    assert.equal(mine.command, sql);
    assert.equal(mine.requester.subject, AGENT);
    assert.deepEqual(mine.policy_ids, ["orders-delete-needs-approval"]);
    const show = await stack.cli(["approvals", "show", id], { GATEHOUSE_TOKEN: alice });
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /state\s+pending/);

    const ok = await approveCli(id);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`ticket ${id}: approved`));
    const r = await h.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /DELETE 1/);
    assert.match(r.stderr, /console\/tickets\//, "the notice names the console URL");
    assert.equal(await orderExists(7), false);
    executed.push(sql);
  });

  test("a denial gives an error naming the ticket and the decision; the session stays usable", async () => {
    const c = new pg.Client(stack.pgOptions(agentToken, AGENT));
    await c.connect();
    try {
      let ticket = "";
      c.on("notice", (n) => {
        const m = /ticket ([0-9a-f-]{36})/.exec(n.message ?? "");
        if (m) {
          ticket = m[1]!;
          void stack.cli(["approvals", "deny", ticket, "--reason", "not during the freeze"], { GATEHOUSE_TOKEN: alice });
        }
      });
      await assert.rejects(c.query("DELETE FROM orders WHERE id = 9"), (e: Error & { code?: string }) => {
        assert.equal(e.code, "42501");
        assert.match(e.message, new RegExp(`approval ticket ${ticket} denied: denied by alice: not during the freeze`));
        return true;
      });
      assert.equal((await c.query("SELECT count(*)::int AS n FROM orders WHERE id = 9")).rows[0].n, 1, "session usable, row kept");
    } finally {
      await c.end();
    }
  });

  test("an expiry gives an error naming the ticket", async () => {
    const c = new pg.Client(stack.pgOptions(agentToken, AGENT));
    await c.connect();
    try {
      let notice = "";
      c.on("notice", (n) => (notice = n.message ?? ""));
      const t0 = Date.now();
      await assert.rejects(c.query("DELETE FROM order_archive WHERE id = 3"), (e: Error & { code?: string }) => {
        assert.equal(e.code, "42501");
        assert.match(e.message, /approval ticket [0-9a-f-]{36} expired: expired after 3s without a decision/);
        return true;
      });
      assert.match(notice, /approval required \(policy archive-delete-short-approval\)/);
      assert.ok(Date.now() - t0 >= 2900, "held until the expiry");
      assert.equal((await c.query("SELECT 1 AS one")).rows[0].one, 1);
    } finally {
      await c.end();
    }
  });

  test("self-approval and approval by a non-member are refused", async () => {
    const selfToken = await stack.forge.mint({ sub: AGENT, groups: ["agents", "approvers"] });
    const h = psqlHeld("DELETE FROM orders WHERE id = 20");
    const id = await h.ticket;
    const self = await approveCli(id, selfToken);
    assert.equal(self.code, 1);
    assert.match(self.stderr, /self-approval is not allowed/);
    const other = await approveCli(id, dave);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /dave is not a member of approvers/);
    assert.equal(h.exited(), false);
    // Not signed in at all:
    const anon = await stack.cli(["approvals", "list"], { GATEHOUSE_TOKEN: "" });
    assert.equal(anon.code, 1);
    assert.match(anon.stderr, /not signed in: set GATEHOUSE_TOKEN/);
    // The client gives up: CancelRequest (psql on SIGINT) withdraws the ticket.
    h.interrupt();
    const r = await h.done;
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`canceling statement due to user request: gatehouse approval ticket ${id} withdrawn`));
    const show = await stack.cli(["approvals", "show", id, "--json"], { GATEHOUSE_TOKEN: alice });
    assert.equal((JSON.parse(show.stdout) as { ticket: { state: string } }).ticket.state, "withdrawn");
    assert.equal(await orderExists(20), true);
  });
});

describe("standing grants", () => {
  test("a 10-minute grant lets three matching commands run without a hold; a non-matching one is held; revoked, the next is held", async () => {
    const first = "DELETE FROM orders WHERE id = 10";
    const h = psqlHeld(first);
    const id = await h.ticket;
    const ok = await approveCli(id, alice, ["--window", "10"]);
    assert.equal(ok.code, 0, ok.stderr);
    const grantId = /standing grant (g-[0-9a-f-]+)/.exec(ok.stdout)?.[1];
    assert.ok(grantId, ok.stdout);
    assert.equal((await h.done).code, 0);
    executed.push(first);

    const c = new pg.Client(stack.pgOptions(agentToken, AGENT));
    await c.connect();
    const notices: string[] = [];
    c.on("notice", (n) => notices.push(n.message ?? ""));
    try {
      for (const n of [11, 12, 13]) {
        const sql = `DELETE FROM orders WHERE id = ${n}`;
        const r = await c.query(sql);
        assert.equal(r.rowCount, 1);
        executed.push(sql);
      }
      assert.deepEqual(notices, [], "no hold for commands covered by the grant");

      // Touches another table: outside the grant's pattern, so held.
      let heldTicket = "";
      // Settled into a value at once: the rejection is asserted below.
      const other = c.query("DELETE FROM orders WHERE id IN (SELECT order_id FROM order_notes)").then(() => undefined, (e: Error) => e);
      const deadline = Date.now() + 10_000;
      while (!heldTicket && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        heldTicket = /ticket ([0-9a-f-]{36})/.exec(notices.join("\n"))?.[1] ?? "";
      }
      assert.ok(heldTicket, "the non-matching command is held");
      const deny = await stack.cli(["approvals", "deny", heldTicket], { GATEHOUSE_TOKEN: alice });
      assert.equal(deny.code, 0, deny.stderr);
      assert.match(String((await other)?.message), /denied by alice/);

      const grants = await stack.cli(["approvals", "grants", "--json"], { GATEHOUSE_TOKEN: alice });
      const g = (JSON.parse(grants.stdout) as Array<{ id: string; subject: string; tables: string[]; active: boolean }>).find((x) => x.id === grantId);
      assert.ok(g?.active);
      assert.equal(g.subject, AGENT);
      assert.deepEqual(g.tables, ["orders"]);
      const rv = await stack.cli(["approvals", "revoke", grantId], { GATEHOUSE_TOKEN: alice });
      assert.equal(rv.code, 0, rv.stderr);

      notices.length = 0;
      const again = c.query("DELETE FROM orders WHERE id = 15").then(() => undefined, (e: Error) => e);
      let t2 = "";
      while (!t2 && Date.now() < deadline + 10_000) {
        await new Promise((r) => setTimeout(r, 50));
        t2 = /ticket ([0-9a-f-]{36})/.exec(notices.join("\n"))?.[1] ?? "";
      }
      assert.ok(t2, "after revocation the next matching command is held again");
      await stack.cli(["approvals", "deny", t2, "--reason", "grant revoked"], { GATEHOUSE_TOKEN: alice });
      assert.match(String((await again)?.message), /denied by alice: grant revoked/);
    } finally {
      await c.end();
    }
  });
});

describe("resilience", () => {
  test("approval service SIGKILLed while a ticket is pending, restarted, then approve: the held command completes", async () => {
    const sql = "DELETE FROM orders WHERE id = 30";
    const h = psqlHeld(sql);
    const id = await h.ticket;
    await stack.stopService("approval", "SIGKILL");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(h.exited(), false, "the held command keeps waiting while the approval service is down");
    await stack.startService("approval");
    const ok = await approveCli(id);
    assert.equal(ok.code, 0, ok.stderr);
    const r = await h.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await orderExists(30), false);
    executed.push(sql);
  });
});

describe("web console", () => {
  test("an approver signs in (OIDC code + PKCE at the dev IdP), sees the ticket in the live queue and approves it with a click", async (t) => {
    const chromium = "/usr/bin/chromium";
    if (!existsSync(chromium)) return t.skip(`${chromium} is not installed (apt-get install chromium); the console test needs a real browser`);
    const { chromium: pw } = await import("playwright-core");
    const browser = await pw.launch({ executablePath: chromium, headless: true, args: ["--no-sandbox"] });
    try {
      const page = await browser.newPage();
      await page.goto(`${stack.apiUrl}/console`);
      // Redirected to the IdP's login page.
      await page.waitForSelector('input[name="username"]', { timeout: 20_000 });
      assert.ok(page.url().startsWith(stack.idpUrl), page.url());
      await page.fill('input[name="username"]', "carol");
      await page.check('input[name="groups"][value="approvers"]');
      await Promise.all([page.waitForURL(`${stack.apiUrl}/console`, { timeout: 20_000 }), page.click('button[type="submit"]')]);
      await page.waitForSelector("#empty, #queue", { timeout: 10_000 });

      // A command is held now: it appears in the queue through the event stream.
      const sql = "DELETE FROM orders WHERE id = 8";
      const h = psqlHeld(sql);
      const id = await h.ticket;
      const row = `tr[data-ticket="${id}"]`;
      await page.waitForSelector(row, { timeout: 10_000 });
      await page.click(`${row} a`);
      await page.waitForSelector("#approve", { timeout: 10_000 });
      assert.equal((await page.textContent("#command"))?.trim(), sql);
      assert.match((await page.textContent("#requester")) ?? "", new RegExp(AGENT));
      assert.match((await page.textContent("#policy")) ?? "", /orders-delete-needs-approval/);
      await page.waitForSelector("#activity tr", { timeout: 10_000 });
      await page.fill("#reason", "checked in the console");
      await page.click("#approve");
      await page.waitForSelector("#state.approved", { timeout: 10_000 });
      const r = await h.done;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await orderExists(8), false);
      executed.push(sql);
      // The console's session cookie is HttpOnly: no script can read the token.
      assert.equal(await page.evaluate("document.cookie.includes('gh_session')"), false);
    } finally {
      await browser.close();
    }
  });
});

describe("CLI login", () => {
  test("gatehouse login --token-stdin saves a token (mode 600) that gatehouse approvals then acts as", async () => {
    const file = join(stack.dir, "cli-token");
    const env = { GATEHOUSE_TOKEN: "", GATEHOUSE_TOKEN_FILE: file };
    const login = await stack.cli(["login", "--token-stdin"], env, alice);
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stderr, /signed in as alice \[approvers\]/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const list = await stack.cli(["approvals", "list", "--state", "approved", "--json"], env);
    assert.equal(list.code, 0, list.stderr);
    assert.ok((JSON.parse(list.stdout) as unknown[]).length >= 1);
    assert.equal((await stack.cli(["login", "--logout"], env)).code, 0);
    const after = await stack.cli(["approvals", "list"], env);
    assert.equal(after.code, 1);
    assert.match(after.stderr, /not signed in/);
  });
});

describe("audit evidence", () => {
  test("the ClickHouse approval query names the approver of every executed command that needed one", async () => {
    const rows = await stack.waitForAudit(
      "SELECT command_text, outcome, ticket_id, grant_id, approvers, has_result FROM approved_commands",
      (r) => executed.every((sql) => r.some((x) => x.command_text === sql && (x.approvers as string[]).length > 0 && x.has_result === true)),
      60_000,
    );
    for (const sql of executed) {
      const matching = rows.filter((x) => x.command_text === sql);
      assert.equal(matching.length, 1, `${sql}: ${JSON.stringify(rows)}`);
      const row = matching[0]!;
      assert.ok((row.approvers as string[]).length > 0, `${sql} has no approver: ${JSON.stringify(row)}`);
      if (row.outcome === "granted") assert.ok(String(row.grant_id).startsWith("g-"));
      else assert.equal(row.outcome, "approved");
    }
    const byApprover = new Set(rows.flatMap((x) => x.approvers as string[]));
    assert.ok(byApprover.has("alice"));
    assert.ok(byApprover.has("carol") || !existsSync("/usr/bin/chromium"));
    // Held commands that did not run are never listed as executed.
    assert.ok(!rows.some((x) => String(x.command_text).includes("id = 9") || String(x.command_text).includes("order_archive") || String(x.command_text).includes("id = 20")));
    // Every ticket change is an audit event.
    const changes = await stack.auditQuery("SELECT status_tag, count() AS n FROM events FINAL WHERE type = 'approval' GROUP BY status_tag");
    const kinds = new Set(changes.map((c) => c.status_tag));
    for (const k of ["ticket_created", "approved", "denied", "expired", "withdrawn", "grant_created", "grant_revoked"]) assert.ok(kinds.has(k), `no ${k} event: ${JSON.stringify(changes)}`);
  });
});
