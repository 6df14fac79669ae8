// Decisions and fail-closed behavior on the wire: denials (simple, extended,
// inside pipelined batches), approval-required, and unavailable dependencies.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Effect } from "@gatehouse/proto";
import type pg from "pg";
import { startTestListener, eventually, type TestListener } from "./testing/fake-gateway.js";
import { direct, pgClient, psql, scratch, UPSTREAM } from "./testing/clients.js";
import { fe, fields, RawConn, types } from "./testing/raw.js";

async function pgError(p: Promise<unknown>): Promise<Error & { code?: string; detail?: string }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string; detail?: string };
  }
  assert.fail("expected the query to fail");
}

describe("policy decisions on the wire", () => {
  let t: TestListener;
  let c: pg.Client;
  const table = scratch("policy");
  before(async () => {
    t = await startTestListener();
    await direct(`CREATE TABLE ${table} (id int primary key, note text)`);
    c = pgClient(t.port);
    await c.connect();
  });
  after(async () => {
    await c.end();
    await direct(`DROP TABLE IF EXISTS ${table}`);
    await t.stop();
  });

  it("a denied simple query gets 42501 naming the policy, is not executed, and the session goes on", async () => {
    const e = await pgError(c.query(`INSERT INTO ${table} VALUES (1, 'gh_forbidden')`));
    assert.equal(e.code, "42501");
    assert.match(e.message, /^gatehouse: denied by policy test-forbid: statements on gh_forbidden are forbidden/);
    assert.match(e.detail ?? "", /statement 1 \(insert\): action sql:insert denied by test-forbid/);
    const rows = await direct(`SELECT * FROM ${table} WHERE id = 1`);
    assert.equal(rows.rowCount, 0, "the denied INSERT never reached the database");
    const ok = await c.query("SELECT 'still here' AS s");
    assert.equal(ok.rows[0].s, "still here");
    const [cmd] = t.gw.commands(`VALUES (1, 'gh_forbidden')`);
    assert.ok(cmd);
    const ev = t.gw.ofKind("command").find((b) => b.command.command?.id === cmd.id)!;
    assert.equal(ev.command.decision?.effect, Effect.EFFECT_DENY);
    assert.equal(t.gw.resultOf(cmd.id), undefined, "no result for a command that did not run");
  });

  it("psql shows the denial and exits non-zero", async () => {
    const r = await psql(t.port, ["-c", "SELECT * FROM gh_forbidden"]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /ERROR:  gatehouse: denied by policy test-forbid/);
  });

  it("a denial inside a transaction keeps the transaction usable (status from upstream)", async () => {
    await c.query("BEGIN");
    await c.query(`INSERT INTO ${table} VALUES (2, 'in tx')`);
    const e = await pgError(c.query("SELECT 1 FROM gh_forbidden"));
    assert.equal(e.code, "42501");
    await c.query("COMMIT");
    const rows = await direct(`SELECT note FROM ${table} WHERE id = 2`);
    assert.equal(rows.rows[0]?.note, "in tx");
  });

  it("a denied extended-protocol query gets 42501 at Parse and the session goes on", async () => {
    const e = await pgError(c.query(`SELECT $1::text AS v FROM gh_forbidden`, ["x"]));
    assert.equal(e.code, "42501");
    assert.match(e.message, /test-forbid/);
    const ok = await c.query(`SELECT $1::int AS v`, [7]);
    assert.equal(ok.rows[0].v, 7);
  });

  it("approval-required is refused with a clear message while approvals are off", async () => {
    const e = await pgError(c.query("SELECT 'gh_needs_approval'"));
    assert.equal(e.code, "42501");
    assert.equal(e.message, "gatehouse: approval required (policy test-approval); approvals are not enabled on this listener");
  });

  it("in a pipelined batch, a denial behaves like a PostgreSQL error at that point", async () => {
    const batch = (middle: string) => [
      fe.parse("", "SELECT 1 AS first /* batch-1 */"),
      fe.bind("", ""),
      fe.execute(""),
      fe.parse("", middle),
      fe.bind("", ""),
      fe.execute(""),
      fe.parse("", "SELECT 3 AS third /* batch-3 */"),
      fe.bind("", ""),
      fe.execute(""),
      fe.sync(),
      fe.query("SELECT 'after' /* batch-after */"),
    ];
    const gw = await RawConn.login(t.port);
    const real = await RawConn.login(UPSTREAM.port, { user: UPSTREAM.user, database: UPSTREAM.database });
    try {
      gw.send(Buffer.concat(batch("SELECT 2 FROM gh_forbidden /* batch-2 */")));
      real.send(Buffer.concat(batch("SELEC 2 /* a real parse error */")));
      const viaGw = [...(await gw.until("Z")), ...(await gw.until("Z"))];
      const direct = [...(await real.until("Z")), ...(await real.until("Z"))];
      assert.equal(types(viaGw), types(direct));
      assert.equal(types(viaGw), "12DCEZTDCZ");
      const err = viaGw.find((m) => m.type === "E")!;
      assert.equal(fields(err).C, "42501");
      assert.equal(t.gw.commands("batch-1").length, 1);
      assert.equal(t.gw.commands("batch-2").length, 1, "the denied statement is recorded");
      assert.equal(t.gw.commands("batch-3").length, 0, "messages after the denial are discarded up to Sync");
      assert.equal(t.gw.commands("batch-after").length, 1);
    } finally {
      gw.close();
      real.close();
    }
  });

  it("an upstream error in a pipelined batch skips the rest of the batch, like PostgreSQL", async () => {
    const gw = await RawConn.login(t.port);
    try {
      gw.send(
        Buffer.concat([
          fe.parse("", "SELECT 1 / (random() * 0)::int /* upstream-err-1 */"),
          fe.bind("", ""),
          fe.execute(""),
          fe.parse("", "SELECT 2 /* upstream-err-2 */"),
          fe.bind("", ""),
          fe.execute(""),
          fe.sync(),
        ]),
      );
      const ms = await gw.until("Z");
      assert.equal(types(ms), "12EZ");
      assert.equal(fields(ms[2]!).C, "22012");
      const [first] = t.gw.commands("upstream-err-1");
      const res = await eventually(() => t.gw.resultOf(first!.id), "result of the failing command");
      assert.equal(res.errorCode, "22012");
      const [second] = t.gw.commands("upstream-err-2");
      const skipped = await eventually(() => t.gw.resultOf(second!.id), "result of the skipped command");
      assert.match(skipped.errorMessage, /not executed/);
    } finally {
      gw.close();
    }
  });

  it("named statements: duplicate names and failed Parses behave like PostgreSQL", async () => {
    const script = [
      // a Parse that fails upstream leaves no statement behind; the name can be reused
      [fe.parse("gh_s1", "SELEC 1"), fe.sync()],
      [fe.parse("gh_s1", "SELECT 1 AS v /* named-ok */"), fe.sync()],
      // a second Parse with the same name is an error
      [fe.parse("gh_s1", "SELECT 2 AS v /* named-dup */"), fe.sync()],
      [fe.bind("", "gh_s1"), fe.execute(""), fe.sync()],
    ];
    const gw = await RawConn.login(t.port);
    const real = await RawConn.login(UPSTREAM.port, { user: UPSTREAM.user, database: UPSTREAM.database });
    try {
      for (const step of script) {
        gw.send(Buffer.concat(step));
        real.send(Buffer.concat(step));
        const a = await gw.until("Z");
        const b = await real.until("Z");
        assert.equal(types(a), types(b));
        const ea = a.find((m) => m.type === "E");
        const eb = b.find((m) => m.type === "E");
        assert.equal(ea && fields(ea).C, eb && fields(eb).C);
      }
      const last = t.gw.commands("named-ok");
      assert.equal(last.length, 1, "the Execute ran the first text and was recorded with it");
      assert.equal(t.gw.commands("named-dup").length, 0);
    } finally {
      gw.close();
      real.close();
    }
  });

  it("node-postgres pipeline mode: [allowed, denied, allowed] settle independently and in order", async () => {
    const p = pgClient(t.port, { pipeline: true } as Partial<pg.ClientConfig>);
    await p.connect();
    try {
      const results = await Promise.allSettled([
        p.query("SELECT $1::int AS v", [1]),
        p.query("SELECT $1::int AS v FROM gh_forbidden", [2]),
        p.query("SELECT $1::int AS v", [3]),
      ]);
      assert.equal(results[0].status, "fulfilled");
      assert.equal((results[0] as PromiseFulfilledResult<pg.QueryResult>).value.rows[0].v, 1);
      assert.equal(results[1].status, "rejected");
      assert.equal(((results[1] as PromiseRejectedResult).reason as { code: string }).code, "42501");
      assert.equal(results[2].status, "fulfilled");
      assert.equal((results[2] as PromiseFulfilledResult<pg.QueryResult>).value.rows[0].v, 3);
    } finally {
      await p.end();
    }
  });

  it("fails closed when the policy service is unavailable (58000), then recovers", async () => {
    t.gw.failDecide = "no answer within 2000 ms";
    try {
      const e1 = await pgError(c.query(`INSERT INTO ${table} VALUES (3, 'no policy')`));
      assert.equal(e1.code, "58000");
      assert.equal(e1.message, "gatehouse: policy unavailable: no answer within 2000 ms; statement not executed");
      const e2 = await pgError(c.query(`INSERT INTO ${table} VALUES ($1, 'no policy')`, [4]));
      assert.equal(e2.code, "58000");
    } finally {
      t.gw.failDecide = undefined;
    }
    assert.equal((await direct(`SELECT * FROM ${table} WHERE id IN (3, 4)`)).rowCount, 0);
    assert.equal((await c.query("SELECT 1 AS one")).rows[0].one, 1);
  });

  it("fails closed when the audit trail does not acknowledge (58000), then recovers", async () => {
    t.gw.failRecord = "JetStream did not acknowledge within 2000 ms";
    try {
      const e1 = await pgError(c.query(`INSERT INTO ${table} VALUES (5, 'no audit')`));
      assert.equal(e1.code, "58000");
      assert.equal(e1.message, "gatehouse: audit unavailable: JetStream did not acknowledge within 2000 ms; statement not executed");
      const e2 = await pgError(c.query({ name: "gh_noaudit", text: `INSERT INTO ${table} VALUES ($1, 'no audit')`, values: [6] }));
      assert.equal(e2.code, "58000");
    } finally {
      t.gw.failRecord = undefined;
    }
    assert.equal((await direct(`SELECT * FROM ${table} WHERE id IN (5, 6)`)).rowCount, 0);
    await c.query({ name: "gh_noaudit", text: `INSERT INTO ${table} VALUES ($1, 'no audit')`, values: [6] });
    assert.equal((await direct(`SELECT * FROM ${table} WHERE id = 6`)).rowCount, 1);
  });
});
