// Issue 6 acceptance (recording and replay), end to end: real psql as an agent
// through the real gateway stack (listener, policy and audit services as
// processes, a private nats-server, the demo policies that mask customers' PII
// for agents) to a table this test creates in the `test` database. The session's
// recording goes through JetStream into ClickHouse; `gatehouse replay` (the real
// CLI, over NATS) must print what psql printed, `--against` must match on the
// unchanged table and name the statement whose row was changed, a tiny size
// limit must be marked while the session goes on, and a SIGKILLed audit service
// must still store every chunk exactly once.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import pg from "pg";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { startStack, type Stack } from "../support/stack.js";
import { run, type RunResult } from "../support/clients.js";
import { repoRoot } from "../support/processes.js";

const SCHEMA = `gh_rec_e2e_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
const AGENT = `rec-agent-${process.pid}`;
const TRUNC_AGENT = `rec-trunc-${process.pid}`;
const BULK_AGENT = `rec-bulk-${process.pid}`;
const LIMIT = 64 * 1024;
const SANDBOX = "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable";

const PEOPLE = [
  [1, "Ada Lovelace", "ada.lovelace.1815@example.org", "219-09-9999", "prefers mail to ada.l@example.com"],
  [2, "Grace Hopper", "grace.hopper@example.net", "078-05-1120", "no contact preference"],
  [3, "Alan Turing", "alan.turing@example.com", "457-55-5462", "call +14155550123 after 5"],
  [4, "Katherine Johnson", "kj@example.org", "123-45-6789", ""],
] as const;

let stack: Stack;
let token: string;

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "test" });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** psql as a person uses it: aligned output, statements from standard input. */
function psqlSession(who: string, tok: string, sql: string): Promise<RunResult> {
  return run("psql", [stack.dsn(tok, { user: who }), "-X", "-v", "ON_ERROR_STOP=0"], { input: sql, env: { PGCONNECT_TIMEOUT: "10" } });
}

function replay(...args: string[]): Promise<RunResult> {
  return run(process.execPath, [join(repoRoot, "packages/cli/dist/main.js"), "replay", ...args], {
    env: { GATEHOUSE_CONFIG: stack.configFile, NATS_URL: stack.natsUrl },
    timeoutMs: 60_000,
  });
}

/** The id of the newest session of `who`. */
async function sessionOf(who: string): Promise<string> {
  const rows = await stack.waitForAudit(
    `SELECT session_id FROM events FINAL WHERE identity_subject = '${who}' AND type = 'session_end' ORDER BY time DESC LIMIT 1`,
    (r) => r.length === 1,
  );
  assert.equal(rows.length, 1, `no ended session for ${who}`);
  return String(rows[0]!.session_id);
}

async function waitForRecording(session: string): Promise<Record<string, unknown>> {
  const rows = await stack.waitForAudit(`SELECT kind, chunks, bytes, complete, truncated FROM recording_index WHERE session_id = '${session}'`, (r) => r.length === 1 && Boolean(r[0]!.complete), 30_000);
  assert.equal(rows.length, 1, `no complete recording of ${session} in ClickHouse`);
  return rows[0]!;
}

before(async () => {
  await admin(async (c) => {
    await c.query(`CREATE SCHEMA ${SCHEMA}`);
    await c.query(`CREATE TABLE ${SCHEMA}.customers (id int PRIMARY KEY, name text, email text, ssn text, notes text)`);
    for (const p of PEOPLE) await c.query(`INSERT INTO ${SCHEMA}.customers VALUES ($1, $2, $3, $4, $5)`, [...p]);
  });
  stack = await startStack({ recordings: { maxBytesPerSession: LIMIT } });
  token = await stack.forge.mint({ sub: AGENT, groups: ["agents"] });
});

after(async () => {
  await stack?.stop();
  await admin((c) => c.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`));
});

const STATEMENTS = [
  `SELECT id, name, email, ssn, notes FROM ${SCHEMA}.customers ORDER BY id;`,
  `SELECT count(*) AS n FROM ${SCHEMA}.customers;`,
  `SELECT id, upper(name) AS shout, email FROM ${SCHEMA}.customers WHERE id <= 2 ORDER BY id;`,
  `DROP TABLE ${SCHEMA}.customers;`,
];

describe("recording and replay of a psql session", () => {
  let session: string;
  let psqlOut: RunResult;

  test("the session is recorded, and replay prints the same statements and the same masked rows psql printed", async () => {
    psqlOut = await psqlSession(AGENT, token, STATEMENTS.join("\n") + "\n");
    assert.equal(psqlOut.code, 0, psqlOut.stderr);
    assert.match(psqlOut.stdout, /\[REDACTED:EMAIL\]/, "the agent saw masked emails");
    assert.match(psqlOut.stderr, /ERROR: {2}gatehouse: denied by policy/);
    session = await sessionOf(AGENT);
    const idx = await waitForRecording(session);
    assert.equal(idx.kind, "sql");
    assert.equal(Number(idx.truncated), 0);

    const r = await replay(session, "--no-wait");
    assert.equal(r.code, 0, r.stderr);
    for (const s of STATEMENTS) assert.ok(r.stdout.includes(`=> ${s}`), `replay shows the statement ${s}\n${r.stdout}`);
    // Every result block psql printed (header, rule, rows, row count) appears verbatim.
    const blocks = psqlOut.stdout.split("\n\n").filter((b) => b.trim() !== "");
    assert.equal(blocks.length, 3);
    for (const b of blocks) assert.ok(r.stdout.includes(b + "\n"), `replay lacks psql's block:\n${b}\n--- replay:\n${r.stdout}`);
    const denial = /ERROR: {2}(gatehouse: denied by policy[^\n]*)/.exec(psqlOut.stderr)![1]!;
    assert.ok(r.stdout.includes(`ERROR:  ${denial}`), "the denial is shown as psql showed it");
    assert.match(r.stdout, /-- denied \(/);
    for (const p of PEOPLE) {
      for (const secret of [p[2], p[3]]) assert.ok(!r.stdout.includes(secret), `no clear value in the replay (${secret})`);
    }
    // The recording in ClickHouse holds no clear value either.
    const chunks = await stack.auditQuery(`SELECT data FROM recordings FINAL WHERE session_id = '${session}' ORDER BY seq`);
    const text = chunks.map((c) => String(c.data)).join("");
    for (const p of PEOPLE) for (const secret of [p[2], p[3], "ada.l@example.com", "+14155550123"]) assert.ok(!text.includes(secret), `recording holds ${secret} in clear`);
    assert.match(text, /"mask":\{"strategy":"redact","entity":"EMAIL"\}/);
    assert.match(text, /"mask":\{"scan":true/);

    const json = await replay(session, "--json");
    assert.equal(json.code, 0, json.stderr);
    const lines = json.stdout.trim().split("\n").map((l) => JSON.parse(l) as { code?: string; format?: string });
    assert.equal(lines[0]!.format, "gatehouse-sql");
    assert.deepEqual(
      lines.slice(1).filter((l) => l.code === "q").length,
      STATEMENTS.length,
    );
  });

  test("--against reports a match on the unchanged sandbox, and the changed statement after an UPDATE", async () => {
    const same = await replay(session, "--against", SANDBOX);
    assert.equal(same.code, 0, same.stdout + same.stderr);
    assert.match(same.stdout, /3 match, 0 mismatch, 1 skipped/);
    assert.match(same.stdout, /skipped \(denied by policy in the session; never run\)/);
    const tableStillThere = await admin((c) => c.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.customers`));
    assert.equal(tableStillThere.rows[0].n, PEOPLE.length, "the denied DROP was never run on the sandbox");

    await admin((c) => c.query(`UPDATE ${SCHEMA}.customers SET name = 'Grace B. M. Hopper' WHERE id = 2`));
    const changed = await replay(session, "--against", SANDBOX);
    assert.equal(changed.code, 1, changed.stdout + changed.stderr);
    assert.match(changed.stdout, /1 match, 2 mismatch, 1 skipped/);
    const report = changed.stdout.split("\n");
    const i = report.findIndex((l) => l.includes(STATEMENTS[0]!.slice(0, -1)));
    assert.ok(i >= 0, changed.stdout);
    assert.match(report[i + 1]!, /MISMATCH: row 2 differs: recorded \["2","Grace Hopper",.*sandbox \["2","Grace B\. M\. Hopper"/);
    // The shouted name is a computed column: masked by scanning, and still compared.
    const k = report.findIndex((l) => l.includes("upper(name)"));
    assert.match(report[k + 1]!, /MISMATCH/);
    const json = await replay(session, "--against", SANDBOX, "--json");
    const outcomes = json.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { outcome: string }).outcome);
    assert.deepEqual(outcomes, ["mismatch", "match", "mismatch", "skipped"]);
    await admin((c) => c.query(`UPDATE ${SCHEMA}.customers SET name = 'Grace Hopper' WHERE id = 2`));
  });

  test("a session without a recording and an unknown session get clear errors", async () => {
    const bad = await run("psql", [stack.dsn("not-a-token", { user: `${AGENT}-bad` }), "-X", "-c", "SELECT 1"]);
    assert.notEqual(bad.code, 0);
    const rows = await stack.waitForAudit(`SELECT session_id FROM events FINAL WHERE type = 'auth_failure' AND identity_name = '${AGENT}-bad'`, (r) => r.length === 1);
    assert.equal(rows.length, 1);
    const r1 = await replay(String(rows[0]!.session_id), "--no-wait");
    assert.equal(r1.code, 1);
    assert.match(r1.stderr, /exists in the audit trail \(1 events, protocol postgres.*but has no recording/);
    const r2 = await replay("00000000-0000-4000-8000-000000000000");
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /no recording and no audit events for session 00000000-0000-4000-8000-000000000000/);
  });
});

describe("rows per result set", () => {
  test("a result over recordings.maxRowsPerResult keeps its first rows and the count of the rest; replay and --against say so", async () => {
    await admin((c) => c.query(`CREATE TABLE ${SCHEMA}.bulk AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 1500) g`));
    const tok = await stack.forge.mint({ sub: BULK_AGENT, groups: ["agents"] });
    const r = await psqlSession(BULK_AGENT, tok, `SELECT id, h FROM ${SCHEMA}.bulk ORDER BY id;\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\(1500 rows\)/, "the client gets every row");
    const session = await sessionOf(BULK_AGENT);
    const idx = await waitForRecording(session);
    assert.equal(Number(idx.truncated), 0, "a row limit is not a truncated recording");
    const chunks = await stack.auditQuery(`SELECT data FROM recordings FINAL WHERE session_id = '${session}' ORDER BY seq`);
    const lines = chunks.map((c) => String(c.data)).join("").trim().split("\n").map((l) => JSON.parse(l) as [number, string, unknown]);
    const rows = lines.filter((l) => l[1] === "rows").flatMap((l) => l[2] as unknown[]);
    assert.equal(rows.length, 1000);
    const omitted = lines.find((l) => l[1] === "rows_omitted")![2] as { unit: string; count: number; limit: number };
    assert.deepEqual({ unit: omitted.unit, count: omitted.count, limit: omitted.limit }, { unit: "rows", count: 500, limit: 1000 });

    const rp = await replay(session, "--no-wait");
    assert.equal(rp.code, 0, rp.stderr);
    assert.match(rp.stdout, /\(1500 rows; the first 1000 recorded, 500 left out by recordings\.maxRowsPerResult = 1000\)/);
    const same = await replay(session, "--against", SANDBOX);
    assert.equal(same.code, 0, same.stdout + same.stderr);
    assert.match(same.stdout, /1 match, 0 mismatch/);
    assert.match(same.stdout, /rows 1001-1500/);
    await admin((c) => c.query(`DELETE FROM ${SCHEMA}.bulk WHERE id = 1400`));
    const fewer = await replay(session, "--against", SANDBOX);
    assert.equal(fewer.code, 1, fewer.stdout);
    assert.match(fewer.stdout, /1500 row\(s\) in the session, 1499 from the sandbox/);
    await admin((c) => c.query(`UPDATE ${SCHEMA}.bulk SET h = 'changed' WHERE id = 7`));
    await admin((c) => c.query(`INSERT INTO ${SCHEMA}.bulk VALUES (1400, md5('1400'))`));
    const changed = await replay(session, "--against", SANDBOX);
    assert.equal(changed.code, 1, changed.stdout);
    assert.match(changed.stdout, /row 7 differs/);
  });
});

describe("recording size limit", () => {
  test("a recording over recordings.maxBytesPerSession ends with a truncated marker and the session goes on", async () => {
    const tok = await stack.forge.mint({ sub: TRUNC_AGENT, groups: ["agents"] });
    const r = await psqlSession(TRUNC_AGENT, tok, "SELECT g, repeat('x', 80) AS filler FROM generate_series(1, 3000) g;\nSELECT 'still here' AS after_the_limit;\n");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\(3000 rows\)/);
    assert.match(r.stdout, /still here/, "the session went on after the limit");
    const session = await sessionOf(TRUNC_AGENT);
    const idx = await waitForRecording(session);
    assert.equal(Number(idx.truncated), 1);
    assert.ok(Number(idx.bytes) <= LIMIT + 512, `recording is ${String(idx.bytes)} bytes, the limit is ${LIMIT}`);
    const chunks = await stack.auditQuery(`SELECT data FROM recordings FINAL WHERE session_id = '${session}' ORDER BY seq`);
    const lines = chunks.map((c) => String(c.data)).join("").trim().split("\n");
    const marker = JSON.parse(lines[lines.length - 1]!) as [number, string, { reason: string; limitBytes: number; atBytes: number }];
    assert.equal(marker[1], "truncated");
    assert.equal(marker[2].limitBytes, LIMIT);
    assert.match(marker[2].reason, /recording limit of 65536 bytes reached/);
    assert.ok(marker[2].atBytes <= LIMIT);
    // The statement after the limit is not in the recording, but it is in the audit trail.
    assert.ok(!lines.some((l) => l.includes("still here")));
    const ev = await stack.waitForAudit(`SELECT count() AS n FROM events FINAL WHERE session_id = '${session}' AND type = 'command' AND command_text LIKE '%still here%'`, (x) => Number(x[0]?.n) === 1);
    assert.equal(Number(ev[0]!.n), 1);
    const rp = await replay(session, "--no-wait");
    assert.equal(rp.code, 0, rp.stderr);
    assert.match(rp.stdout, /-- RECORDING TRUNCATED at \[\+[\d.]+s\]: recording limit of 65536 bytes reached/);
    assert.match(rp.stderr, /this recording was TRUNCATED/);
  });
});

describe("recordings copier", () => {
  test("with the audit service SIGKILLed in the middle of a stream of chunks, every chunk is stored exactly once", async () => {
    const js = jetstream(stack.nc);
    const prefix = `copier-${process.pid}-${Date.now()}`;
    const SESSIONS = 8;
    const PER_SESSION = 250;
    const total = SESSIONS * PER_SESSION;
    const countStored = async () => Number((await stack.auditQuery(`SELECT count() AS n FROM recordings WHERE startsWith(session_id, '${prefix}')`))[0]!.n);
    let published = 0;
    const publisher = (async () => {
      for (let seq = 1; seq <= PER_SESSION; seq++) {
        const acks: Promise<unknown>[] = [];
        for (let s = 0; s < SESSIONS; s++) {
          const h = natsHeaders();
          h.set("Gatehouse-Kind", "sql");
          h.set("Gatehouse-Seq", String(seq));
          if (seq === PER_SESSION) h.set("Gatehouse-Last", "true");
          const id = `${prefix}-${s}`;
          acks.push(js.publish(`gatehouse.recording.${id}`, `[${seq / 100},"notice",{"code":"00000","message":"chunk ${seq}"}]\n`, { msgID: `${id}:rec:${seq}`, headers: h }));
        }
        await Promise.all(acks);
        published += SESSIONS;
        await new Promise((r) => setTimeout(r, 4));
      }
    })();
    // Kill once the copier has stored some of them and more are still coming.
    const until = Date.now() + 30_000;
    while ((await countStored()) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.ok(published < total, "the audit service is killed while chunks are still being published");
    await stack.stopService("audit", "SIGKILL");
    const atKill = published;
    await stack.startService("audit");
    await publisher;
    assert.ok(atKill < total);
    const rows = await stack.waitForAudit(`SELECT count() AS n FROM recordings WHERE startsWith(session_id, '${prefix}')`, (r) => Number(r[0]!.n) >= total, 60_000);
    assert.equal(Number(rows[0]!.n), total);
    // Without FINAL: no chunk was inserted twice, none is missing, each session is gap-free.
    const agg = await stack.auditQuery(
      `SELECT count() AS n, uniqExact(session_id, seq) AS u, uniqExact(stream_seq) AS s, countIf(last) AS lasts FROM recordings WHERE startsWith(session_id, '${prefix}')`,
    );
    assert.deepEqual([Number(agg[0]!.n), Number(agg[0]!.u), Number(agg[0]!.s), Number(agg[0]!.lasts)], [total, total, total, SESSIONS]);
    const per = await stack.auditQuery(`SELECT session_id, min(seq) AS a, max(seq) AS b, count() AS n FROM recordings WHERE startsWith(session_id, '${prefix}') GROUP BY session_id`);
    assert.equal(per.length, SESSIONS);
    for (const p of per) assert.deepEqual([Number(p.a), Number(p.b), Number(p.n)], [1, PER_SESSION, PER_SESSION]);
  });
});
