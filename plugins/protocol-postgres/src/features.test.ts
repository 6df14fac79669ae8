// Protocol features relayed through the plugin: COPY, LISTEN/NOTIFY, notices,
// cancel, terminated backends, TLS, startup parameters, large results.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Readable, Writable } from "node:stream";
import type pg from "pg";
import { startTestListener, eventually, type TestListener } from "./testing/fake-gateway.js";
import { direct, pgClient, postgresJs, psql, scratch } from "./testing/clients.js";

describe("protocol features through the postgres plugin", () => {
  let t: TestListener;
  const table = scratch("feat");
  let dir: string;
  before(async () => {
    t = await startTestListener();
    dir = mkdtempSync(join(tmpdir(), "gh-feat-"));
    await direct(`CREATE TABLE ${table} (id int primary key, name text)`);
  });
  after(async () => {
    await direct(`DROP TABLE IF EXISTS ${table}`);
    rmSync(dir, { recursive: true, force: true });
    await t.stop();
  });

  it("psql \\copy FROM STDIN and TO STDOUT", async () => {
    const input = join(dir, "in.csv");
    const output = join(dir, "out.csv");
    const lines = Array.from({ length: 500 }, (_, i) => `${i + 1},name ${i + 1}`);
    writeFileSync(input, lines.join("\n") + "\n");
    const r1 = await psql(t.port, ["-c", `\\copy ${table} (id, name) FROM '${input}' WITH (FORMAT csv)`]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.equal((await direct(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n, 500);
    const [copyIn] = t.gw.commands("FROM STDIN").filter((c) => c.text.includes(table));
    assert.ok(copyIn, `the COPY statement was decided and recorded: ${JSON.stringify(t.gw.ofKind("command").map((c) => c.command.command?.text))}`);
    const resIn = await eventually(() => t.gw.resultOf(copyIn.id), "COPY FROM result");
    assert.equal(resIn.rows, 500);
    assert.equal(resIn.statusTag, "COPY 500");

    const r2 = await psql(t.port, ["-c", `\\copy (SELECT id, name FROM ${table} ORDER BY id) TO '${output}' WITH (FORMAT csv)`]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(readFileSync(output, "utf8").trim().split("\n"), lines);
    const [copyOut] = t.gw.commands("TO STDOUT").filter((c) => c.text.includes(table));
    const resOut = await eventually(() => t.gw.resultOf(copyOut!.id), "COPY TO result");
    assert.equal(resOut.rows, 500);
  });

  it("postgres.js COPY streams in both directions", async () => {
    const sql = postgresJs(t.port);
    try {
      const writable = await sql`COPY ${sql(table)} (id, name) FROM STDIN`.writable();
      await pipeline(Readable.from(Array.from({ length: 100 }, (_, i) => `${1001 + i}\tstreamed\n`)), writable);
      const [n] = await sql`SELECT count(*)::int AS n FROM ${sql(table)} WHERE name = 'streamed'`;
      assert.equal(n!.n, 100);
      const readable = await sql`COPY (SELECT id FROM ${sql(table)} WHERE name = 'streamed' ORDER BY id) TO STDOUT`.readable();
      const chunks: Buffer[] = [];
      await pipeline(
        readable,
        new Writable({
          write(c: Buffer, _e, cb) {
            chunks.push(c);
            cb();
          },
        }),
      );
      const ids = Buffer.concat(chunks).toString().trim().split("\n").map(Number);
      assert.deepEqual(ids, Array.from({ length: 100 }, (_, i) => 1001 + i));
    } finally {
      await sql.end();
    }
  });

  it("a large result streams through intact", async () => {
    const c = pgClient(t.port);
    await c.connect();
    try {
      const r = await c.query("SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 200000) g /* big-result */");
      assert.equal(r.rows.length, 200_000);
      assert.equal(r.rows[199_999].g, 200_000);
      const [cmd] = t.gw.commands("big-result");
      const res = await eventually(() => t.gw.resultOf(cmd!.id), "big result event");
      assert.equal(res.rows, 200_000);
      assert.ok(res.bytes > 200_000 * 100);
    } finally {
      await c.end();
    }
  });

  it("LISTEN/NOTIFY notifications are delivered through the gateway", async () => {
    const c = pgClient(t.port);
    await c.connect();
    const channel = scratch("chan");
    try {
      await c.query(`LISTEN ${channel}`);
      const got = new Promise<pg.Notification>((resolve) => c.on("notification", resolve));
      await direct(`SELECT pg_notify($1, 'hello through gatehouse')`, [channel]);
      const n = await got;
      assert.equal(n.channel, channel);
      assert.equal(n.payload, "hello through gatehouse");
    } finally {
      await c.end();
    }
  });

  it("NOTICE messages and ParameterStatus changes are relayed", async () => {
    const c = pgClient(t.port);
    await c.connect();
    try {
      const notices: string[] = [];
      c.on("notice", (n) => notices.push(n.message ?? ""));
      await c.query("SET client_min_messages = notice");
      await c.query("DROP TABLE IF EXISTS gh_surely_nonexistent_table");
      assert.ok(notices.some((m) => m.includes(`"gh_surely_nonexistent_table" does not exist, skipping`)), notices.join("; "));
      await c.query("SET application_name = 'changed-by-set'");
      const r = await c.query("SHOW application_name");
      assert.equal(r.rows[0].application_name, "changed-by-set");
    } finally {
      await c.end();
    }
  });

  it("CancelRequest with the gateway-issued key cancels a running query (57014)", async () => {
    const sql = postgresJs(t.port);
    try {
      const q = sql`SELECT pg_sleep(30) /* to-cancel */`;
      const settled = q.then(
        () => undefined,
        (e: { code?: string }) => e,
      );
      await eventually(() => t.gw.commands("to-cancel").length === 1, "the sleep to start");
      q.cancel();
      const e = await settled;
      assert.equal(e?.code, "57014");
      const [after] = await sql`SELECT 'after cancel' AS s`;
      assert.equal(after!.s, "after cancel");
    } finally {
      await sql.end();
    }
  });

  it("the gateway-issued BackendKeyData is not the upstream's", async () => {
    const c = pgClient(t.port);
    await c.connect();
    try {
      const r = await c.query("SELECT pg_backend_pid() AS pid");
      assert.notEqual((c as unknown as { processID: number }).processID, r.rows[0].pid);
    } finally {
      await c.end();
    }
  });

  it("a terminated backend gives the client 57P01 and the session ends with a sessionEnd event", async () => {
    const c = pgClient(t.port);
    const errors: (Error & { code?: string })[] = [];
    c.on("error", (e) => errors.push(e));
    await c.connect();
    const pid = (await c.query("SELECT pg_backend_pid() AS pid /* terminate-me */")).rows[0].pid as number;
    const [cmd] = t.gw.commands("terminate-me");
    const sessionId = cmd!.sessionId;
    await direct("SELECT pg_terminate_backend($1)", [pid]);
    await eventually(() => errors.length > 0, "the client to see the termination");
    assert.equal(errors[0]!.code, "57P01");
    const end = await eventually(() => t.gw.ofKind("sessionEnd", sessionId)[0], "sessionEnd");
    assert.match(end.sessionEnd.reason, /57P01/);
    assert.equal(end.sessionEnd.commands, 1);
    await c.end().catch(() => undefined);
  });

  it("TLS: psql sslmode=require and sslmode=disable both work when TLS is optional", async () => {
    const r1 = await psql(t.port, ["-c", "SELECT 'tls ok'"], { extra: "sslmode=require" });
    assert.equal(r1.code, 0, r1.stderr);
    assert.equal(r1.stdout.trim(), "tls ok");
    const r2 = await psql(t.port, ["-c", "SELECT 'plain ok'"], { extra: "sslmode=disable" });
    assert.equal(r2.code, 0, r2.stderr);
    const starts = t.gw.ofKind("sessionStart").map((s) => s.sessionStart.tls);
    assert.ok(starts.includes(true) && starts.includes(false));
  });

  it("TLS required: plaintext clients are refused with a clear message, TLS clients work", async () => {
    const strict = await startTestListener({ tls: { required: true } });
    try {
      const r1 = await psql(strict.port, ["-c", "SELECT 1"], { extra: "sslmode=disable" });
      assert.notEqual(r1.code, 0);
      assert.match(r1.stderr, /gatehouse requires TLS \(use sslmode=require\)/);
      const r2 = await psql(strict.port, ["-c", "SELECT 'secure'"], { extra: "sslmode=require" });
      assert.equal(r2.code, 0, r2.stderr);
      assert.equal(r2.stdout.trim(), "secure");
      const c = pgClient(strict.port, { ssl: { rejectUnauthorized: false } });
      await c.connect();
      assert.equal((await c.query("SELECT $1::text AS v", ["pg over tls"])).rows[0].v, "pg over tls");
      const big = await c.query("SELECT g, md5(g::text) AS h FROM generate_series(1, 100000) g");
      assert.equal(big.rows.length, 100_000);
      assert.equal(big.rows[99_999].g, 100_000);
      await c.end();
    } finally {
      await strict.stop();
    }
  });

  it("startup parameters reach the upstream (application_name, options search_path)", async () => {
    const schema = scratch("sp");
    await direct(`CREATE SCHEMA ${schema}`);
    try {
      const r = await psql(t.port, ["-c", "SELECT current_setting('application_name') || '|' || current_setting('search_path')"], {
        extra: `sslmode=disable application_name=gh-agent-app options='-csearch_path=${schema}'`,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), `gh-agent-app|${schema}`);
      const start = t.gw.ofKind("sessionStart").find((s) => s.sessionStart.startupParameters["application_name"] === "gh-agent-app");
      assert.ok(start);
      assert.equal(start.sessionStart.startupParameters["options"], `-csearch_path=${schema}`);
    } finally {
      await direct(`DROP SCHEMA ${schema} CASCADE`);
    }
  });

  it("a bad token is rejected with 28000, recorded as authFailure without the token", async () => {
    const r = await psql(t.port, ["-c", "SELECT 1"], { token: "not-a-valid-token-xyz" });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /FATAL:  gatehouse: access token rejected \(signature\): token signature does not verify/);
    const failures = t.gw.ofKind("authFailure");
    assert.ok(failures.length > 0);
    assert.equal(failures[0]!.authFailure.check, "signature");
    assert.ok(!JSON.stringify(t.gw.events).includes("not-a-valid-token-xyz"), "the token never reaches an audit event");
  });

  it("an unknown connection gets 3D000 naming the configured ones", async () => {
    const r = await psql(t.port, ["-c", "SELECT 1"], { extra: "sslmode=disable dbname=nope" });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /FATAL:  gatehouse: unknown connection "nope" \(configured: demo\)/);
    const r2 = await psql(t.port, ["-c", "SELECT 1"], { extra: "sslmode=disable dbname=sshbox" });
    assert.match(r2.stderr, /unknown connection "sshbox"/, "a connection of another protocol is not a postgres connection");
  });
});
