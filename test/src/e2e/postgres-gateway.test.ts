// Issue 2 acceptance: real psql, node-postgres and pgbench through the listener to
// the real PostgreSQL, with the demo policy, OIDC tokens from a test issuer, and
// every statement found in the audit store exactly once.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { createConnection } from "node:net";
import { once } from "node:events";
import { startStack, type Stack } from "../support/stack.js";
import { psql, run } from "../support/clients.js";

const SUB = `e2e-agent-${process.pid}`;
let stack: Stack;
let token: string;
/** Every statement text sent through the gateway by these tests, with how many times. */
const sent = new Map<string, number>();
const note = (text: string) => sent.set(text, (sent.get(text) ?? 0) + 1);

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ host: "127.0.0.1", port: stack.pgPort, user: "agent-1", database: "pg", password: token });
  await c.connect();
  return c;
}

before(async () => {
  stack = await startStack();
  token = await stack.forge.mint({ sub: SUB, groups: ["agents"] });
  const admin = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "test" });
  await admin.connect();
  await admin.query("DROP TABLE IF EXISTS gh_e2e_items; CREATE TABLE gh_e2e_items (id int primary key, name text)");
  await admin.query("INSERT INTO gh_e2e_items SELECT g, 'item ' || g FROM generate_series(1, 100) g");
  await admin.end();
});

after(async () => {
  const admin = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "test" });
  await admin.connect();
  await admin.query("DROP TABLE IF EXISTS gh_e2e_items");
  await admin.end();
  await stack?.stop();
});

describe("allowed statements", () => {
  test("psql simple protocol", async () => {
    const sql = "SELECT count(*) FROM gh_e2e_items";
    const r = await psql(stack.dsn(token), sql);
    note(sql);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "100");
  });

  test("comments and string literals never trigger a rule", async () => {
    for (const sql of ["/* DROP TABLE x */ SELECT 1", "SELECT 'truncate'", "SELECT $$DROP DATABASE test$$ AS t"]) {
      const r = await psql(stack.dsn(token), sql);
      note(sql);
      assert.equal(r.code, 0, `${sql}: ${r.stderr}`);
      assert.equal(r.stderr, "", sql);
    }
  });

  test("node-postgres: parameters, a reused named prepared statement, pipelining", async () => {
    const c = await client();
    try {
      const byId = "SELECT name FROM gh_e2e_items WHERE id = $1";
      const r1 = await c.query(byId, [7]);
      note(byId);
      assert.equal(r1.rows[0].name, "item 7");
      for (const id of [3, 4, 5]) {
        const r = await c.query({ name: "item-by-id", text: byId, values: [id] });
        note(byId);
        assert.equal(r.rows[0].name, `item ${id}`);
      }
      // Pipelining: node-postgres queues these and sends them without waiting.
      const results = await Promise.all([1, 2, 3, 4, 5, 6].map((id) => c.query(byId, [id])));
      for (let i = 0; i < 6; i++) note(byId);
      assert.deepEqual(results.map((r) => r.rows[0].name), [1, 2, 3, 4, 5, 6].map((i) => `item ${i}`));
      const upd = "UPDATE gh_e2e_items SET name = $1 WHERE id = $2";
      await c.query(upd, ["renamed", 100]);
      note(upd);
      const tx = ["BEGIN", "INSERT INTO gh_e2e_items VALUES (1000, 'tx')", "ROLLBACK"];
      for (const s of tx) {
        await c.query(s);
        note(s);
      }
    } finally {
      await c.end();
    }
  });

  test("COPY FROM STDIN and COPY TO STDOUT", async () => {
    const copyIn = "COPY gh_e2e_items (id, name) FROM STDIN";
    const r1 = await run("psql", [stack.dsn(token), "-X", "-v", "ON_ERROR_STOP=1", "-c", copyIn], { input: "501\tcopied a\n502\tcopied b\n\\.\n" });
    note(copyIn);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stdout, /COPY 2/);
    const copyOut = "COPY (SELECT id, name FROM gh_e2e_items WHERE id > 500 ORDER BY id) TO STDOUT";
    const r2 = await run("psql", [stack.dsn(token), "-X", "-c", copyOut]);
    note(copyOut);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(r2.stdout, "501\tcopied a\n502\tcopied b\n");
    const del = "DELETE FROM gh_e2e_items WHERE id > 500";
    assert.equal((await psql(stack.dsn(token), del)).code, 0);
    note(del);
  });

  test("a CancelRequest cancels a running pg_sleep", async () => {
    const c = await client();
    try {
      const sleep = "SELECT pg_sleep(30)";
      const started = Date.now();
      const q = c.query(sleep).then(
        () => undefined,
        (e: { code?: string }) => e,
      );
      note(sleep);
      await new Promise((r) => setTimeout(r, 500));
      // What libpq's PQcancel does: a CancelRequest on a new connection with the key
      // the server (here: the gateway) gave this session in BackendKeyData.
      const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
      const sock = createConnection({ host: "127.0.0.1", port: stack.pgPort });
      await once(sock, "connect");
      const msg = Buffer.alloc(16);
      msg.writeInt32BE(16, 0);
      msg.writeInt32BE(80877102, 4);
      msg.writeInt32BE(processID, 8);
      msg.writeInt32BE(secretKey, 12);
      sock.end(msg);
      const err = await q;
      assert.equal((err as { code?: string } | undefined)?.code, "57014", "query_canceled");
      assert.ok(Date.now() - started < 25_000);
      const ok = "SELECT 1 AS still_usable";
      assert.equal((await c.query(ok)).rows[0].still_usable, 1);
      note(ok);
    } finally {
      await c.end();
    }
  });
});

describe("denied statements name the policy", () => {
  const denied = [
    "DROP DATABASE test",
    "TRUNCATE gh_e2e_items",
    "DELETE FROM gh_e2e_items",
    "WITH d AS (DELETE FROM gh_e2e_items RETURNING *) SELECT count(*) FROM d",
    "/* harmless */ dRoP DaTaBaSe test",
    "-- just a comment\nTRUNCATE TABLE \"gh_e2e_items\"",
    "SELECT 1; DELETE FROM gh_e2e_items",
    "delete /* where id = 1 */ from \"public\".\"gh_e2e_items\"",
    "SELECT 1; DROP DATABASE \"test\"",
    "with x as (select 1), d as (delete from gh_e2e_items returning id) select * from d",
  ];
  for (const sql of denied) {
    test(JSON.stringify(sql), async () => {
      const r = await psql(stack.dsn(token), sql);
      note(sql);
      assert.match(r.stderr, /ERROR:\s+gatehouse: denied by policy [\w-]+/, r.stderr);
    });
  }

  test("extended protocol denial keeps the session usable", async () => {
    const c = await client();
    try {
      const unbounded = "DELETE FROM gh_e2e_items";
      await assert.rejects(c.query(unbounded, []), (e: { code?: string; message: string }) => e.code === "42501" && /denied by policy/.test(e.message));
      note(unbounded);
      const r = await c.query("SELECT count(*)::int AS n FROM gh_e2e_items");
      note("SELECT count(*)::int AS n FROM gh_e2e_items");
      assert.equal(r.rows[0].n, 100);
    } finally {
      await c.end();
    }
  });
});

describe("tokens", () => {
  const cases: Array<[string, () => Promise<string>, RegExp]> = [
    ["expired", () => stack.forge.mint({ sub: SUB, groups: ["agents"], exp: Math.floor(Date.now() / 1000) - 600 }), /expired/],
    ["wrong audience", () => stack.forge.mint({ sub: SUB, groups: ["agents"], aud: "somebody-else" }), /audience/],
    ["wrong issuer", () => stack.forge.mint({ sub: SUB, groups: ["agents"], iss: "https://evil.example" }), /issuer/],
    ["alg none", () => Promise.resolve(stack.forge.mintNone({ sub: SUB, groups: ["agents"] })), /algorithm/],
    ["tampered", async () => stack.forge.tamper(await stack.forge.mint({ sub: SUB, groups: ["agents"] })), /signature/],
  ];
  for (const [name, make, message] of cases) {
    test(`${name} token is refused with a specific message`, async () => {
      const r = await psql(stack.dsn(await make()), "SELECT 1");
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /gatehouse: access token rejected/, r.stderr);
      assert.match(r.stderr, message, r.stderr);
    });
  }
});

describe("pgbench", () => {
  test("pgbench -S through the gateway, simple and extended, zero failures", async () => {
    // pgbench's tables live in the upstream "test" database, created directly.
    const init = await run("pgbench", ["-i", "-s", "1", "-q", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "test"]);
    assert.equal(init.code, 0, init.stderr);
    try {
      for (const mode of ["simple", "extended", "prepared"]) {
        const r = await run("pgbench", ["-S", "-M", mode, "-c", "2", "-t", "200", "-n", stack.dsn(token)]);
        assert.equal(r.code, 0, `${mode}: ${r.stderr}`);
        assert.match(r.stdout, /number of transactions actually processed: 400\/400/, r.stdout);
        assert.match(r.stdout, /number of failed transactions: 0 /, r.stdout);
      }
    } finally {
      await run("psql", ["-X", "-h", "127.0.0.1", "-U", "postgres", "test", "-c", "DROP TABLE IF EXISTS pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers"]);
    }
  });
});

describe("audit", () => {
  test("every statement has exactly one command event and one decision event", async () => {
    const texts = [...sent.keys()];
    const expected = [...sent.values()].reduce((a, b) => a + b, 0);
    const relevant = (rows: Record<string, unknown>[]) => rows.filter((r) => texts.includes(String(r.command_text)));
    // Wait until every statement's command row and decision row has landed (or the wait times out).
    const rows = await stack.waitForAudit(
      `SELECT event_id, type, command_text, connection, identity_subject, identity_name, policy_ids, effect FROM events FINAL WHERE identity_subject = '${SUB}' AND type IN ('command', 'decision')`,
      (rs) => relevant(rs).length >= expected * 2,
    );
    const commands = rows.filter((r) => r.type === "command");
    const decisions = new Map(rows.filter((r) => r.type === "decision").map((r) => [String(r.event_id), r]));
    for (const [text, n] of sent) {
      const found = commands.filter((r) => r.command_text === text);
      assert.equal(found.length, n, `command events for ${JSON.stringify(text)}`);
      for (const c of found) {
        assert.equal(c.connection, "pg");
        assert.equal(c.identity_name, "agent-1");
        const d = decisions.get(`${c.event_id}:decision`);
        assert.ok(d, `decision event for ${JSON.stringify(text)}`);
        assert.ok(Array.isArray(d.policy_ids) && (d.policy_ids as string[]).length > 0, `policy ids for ${JSON.stringify(text)}`);
      }
    }
  });
});

describe("fail closed", () => {
  test("stopping the policy service fails statements within the deadline; restarting lets the same session continue", async () => {
    const c = await client();
    try {
      assert.equal((await c.query("SELECT 41 + 1 AS v")).rows[0].v, 42);
      await stack.stopService("policy");
      // A statement never decided before (so no cached decision can answer it).
      const started = Date.now();
      await assert.rejects(c.query("SELECT 'not cached yet' AS v, now()"), (e: { code?: string; message: string }) => {
        assert.equal(e.code, "58000");
        assert.match(e.message, /policy/);
        return true;
      });
      assert.ok(Date.now() - started < 5_000, "failed within the deadline");
      await stack.startService("policy");
      assert.equal((await c.query("SELECT 'not cached yet' AS v, now()")).rows[0].v, "not cached yet");
    } finally {
      await c.end();
    }
  });
});
