// Real clients through the real plugin against the real PostgreSQL, with the
// fake gateway context (see testing/fake-gateway.ts) standing in for the services.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type pg from "pg";
import { startTestListener, eventually, type TestListener } from "./testing/fake-gateway.js";
import { direct, pgClient, postgresJs, psql, run, scratch, conninfo } from "./testing/clients.js";

describe("clients through the postgres plugin", () => {
  let t: TestListener;
  const table = scratch("clients");
  before(async () => {
    t = await startTestListener();
    await direct(`CREATE TABLE ${table} (id int primary key, name text, data bytea)`);
  });
  after(async () => {
    await direct(`DROP TABLE IF EXISTS ${table}`);
    await t.stop();
  });

  it("psql -c runs a query and records one command event with its result", async () => {
    const r = await psql(t.port, ["-c", `SELECT 40 + 2 AS answer /* psql-c */`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "42");
    const [cmd] = t.gw.commands("psql-c");
    assert.ok(cmd);
    assert.equal(t.gw.commands("psql-c").length, 1);
    assert.equal(cmd.mode, "simple");
    assert.equal(cmd.connection, "demo");
    const res = await eventually(() => t.gw.resultOf(cmd.id), "result event");
    assert.equal(res.rows, 1);
    assert.equal(res.statusTag, "SELECT 1");
    assert.equal(res.errorCode, "");
  });

  it("psql -f runs a script with a transaction and several statements", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gh-psql-"));
    try {
      const file = join(dir, "script.sql");
      writeFileSync(
        file,
        [
          "BEGIN;",
          `INSERT INTO ${table} VALUES (1, 'one'), (2, 'two');`,
          `UPDATE ${table} SET name = 'uno' WHERE id = 1;`,
          "COMMIT;",
          `SELECT name FROM ${table} ORDER BY id;`,
        ].join("\n"),
      );
      const r = await psql(t.port, ["-f", file]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n"), ["uno", "two"]);
      const ins = t.gw.commands(`INSERT INTO ${table}`);
      assert.equal(ins.length, 1);
      const res = await eventually(() => t.gw.resultOf(ins[0]!.id), "insert result");
      assert.equal(res.rows, 2);
      assert.equal(res.statusTag, "INSERT 0 2");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("node-postgres: simple, parameterized, named prepared (reused) and pipelined queries", async () => {
    const c = pgClient(t.port);
    await c.connect();
    try {
      const simple = await c.query("SELECT 'simple' AS s");
      assert.equal(simple.rows[0].s, "simple");

      const p = await c.query(`SELECT $1::int + $2::int AS sum, $3::text AS label /* pg-param */`, [2, 3, null]);
      assert.deepEqual(p.rows[0], { sum: 5, label: null });
      const [pc] = t.gw.commands("pg-param");
      assert.ok(pc);
      assert.equal(pc.mode, "extended");
      assert.deepEqual(
        pc.params.map((x) => [x.isNull, x.text]),
        [
          [false, "2"],
          [false, "3"],
          [true, ""],
        ],
      );

      for (let i = 0; i < 3; i++) {
        const r = await c.query({ name: "gh_named", text: `SELECT $1::int * 10 AS v /* pg-named */`, values: [i] });
        assert.equal(r.rows[0].v, i * 10);
      }
      const named = t.gw.commands("pg-named");
      assert.equal(named.length, 3, "one command event per execution of the named statement");
      assert.deepEqual(
        named.map((x) => x.params[0]!.text),
        ["0", "1", "2"],
      );

      // Binary parameter: recorded as \x hex.
      await c.query(`INSERT INTO ${table} (id, name, data) VALUES ($1, $2, $3) /* pg-bytea */`, [10, "bin", Buffer.from([0xde, 0xad, 0xbe, 0xef])]);
      const [bc] = t.gw.commands("pg-bytea");
      assert.ok(bc);
      const bin = bc.params[2]!;
      assert.equal(bin.binary ? bin.text : bin.text.toLowerCase(), "\\xdeadbeef");
      const res = await eventually(() => t.gw.resultOf(bc.id), "bytea insert result");
      assert.equal(res.rows, 1);

    } finally {
      await c.end();
    }
    // Several queries without awaiting, sent back to back (pg's pipeline mode): results come back in order.
    const p = pgClient(t.port, { pipeline: true } as Partial<pg.ClientConfig>);
    await p.connect();
    try {
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => p.query(`SELECT $1::int AS i /* pg-pipe */`, [i])));
      assert.deepEqual(
        many.map((r) => r.rows[0].i),
        Array.from({ length: 20 }, (_, i) => i),
      );
      assert.equal(t.gw.commands("pg-pipe").length, 20);
    } finally {
      await p.end();
    }
  });

  it("postgres.js: pipelined named statements, a transaction and results in order", async () => {
    const sql = postgresJs(t.port);
    try {
      const rows = await Promise.all(Array.from({ length: 30 }, (_, i) => sql`SELECT ${i}::int AS i, 'pjs' AS tag`));
      assert.deepEqual(
        rows.map((r) => r[0]!.i),
        Array.from({ length: 30 }, (_, i) => i),
      );
      await sql.begin(async (tx) => {
        await tx`INSERT INTO ${tx(table)} (id, name) VALUES (${100}, ${"pjs"})`;
        const [r] = await tx`SELECT name FROM ${tx(table)} WHERE id = ${100}`;
        assert.equal(r!.name, "pjs");
      });
      const [count] = await sql`SELECT count(*)::int AS n FROM ${sql(table)} WHERE id = 100`;
      assert.equal(count!.n, 1);
      const cmds = t.gw.commands("'pjs' AS tag");
      assert.equal(cmds.length, 30);
      assert.deepEqual(
        cmds.map((c) => c.params[0]!.text).sort((a, b) => Number(a) - Number(b)),
        Array.from({ length: 30 }, (_, i) => String(i)),
      );
    } finally {
      await sql.end();
    }
  });

  it("pgbench -i and -S in simple, extended and prepared modes with no failed transactions", async () => {
    const schema = scratch("bench");
    await direct(`CREATE SCHEMA ${schema}`);
    try {
      const env = { PGPASSWORD: "good-token", PGOPTIONS: `-c search_path=${schema}` };
      const init = await run("pgbench", ["-i", "-s", "1", "-q", "-n", conninfo(t.port, "sslmode=disable")], env);
      assert.equal(init.code, 0, init.stderr);
      const n = await direct<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.pgbench_accounts`);
      assert.equal(n.rows[0]!.n, 100_000, "COPY FROM STDIN through the gateway loaded every row");
      for (const mode of ["simple", "extended", "prepared"]) {
        const r = await run("pgbench", ["-n", "-S", "-M", mode, "-T", "3", "-c", "2", conninfo(t.port, "sslmode=disable")], env);
        assert.equal(r.code, 0, `${mode}: ${r.stderr}`);
        const processed = Number(r.stdout.match(/number of transactions actually processed: (\d+)/)?.[1]);
        const failed = Number(r.stdout.match(/number of failed transactions: (\d+)/)?.[1] ?? "0");
        assert.ok(processed > 0, `${mode}: ${r.stdout}`);
        assert.equal(failed, 0, `${mode}: ${r.stdout}`);
      }
    } finally {
      await direct(`DROP SCHEMA ${schema} CASCADE`);
    }
  });
});
