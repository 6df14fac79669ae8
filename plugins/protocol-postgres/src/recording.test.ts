// The SQL transcript (docs/recordings.md) the plugin writes, driven by real psql,
// node-postgres (binary results, extended protocol) and postgres.js (pipelined)
// against the real PostgreSQL. The recording sink is the fake gateway's in-memory
// one; what reaches JetStream and ClickHouse is tested end to end in test/.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { FakeGateway, FORBIDDEN, startTestListener, eventually, type TestListener } from "./testing/fake-gateway.js";
import { direct, directClient, pgClient, postgresJs, psql, scratch } from "./testing/clients.js";

type Line = [number, string, unknown];
const TABLE = scratch("rec");
let t: TestListener;

before(async () => {
  await direct(`CREATE TABLE ${TABLE} (id int PRIMARY KEY, name text, amount numeric(10,2), born date, tok uuid, ok bool, big int8, ratio float8, raw bytea, at timestamp)`);
  await direct(
    `INSERT INTO ${TABLE} VALUES
      (1, 'Ada', 12.50, '1990-01-02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true, 9007199254740993, 0.1, '\\x00ff', '2024-02-29 12:34:56.789'),
      (2, 'Bob "b" \\ q', -0.07, '2000-12-31', '00000000-0000-0000-0000-000000000001', false, -5, 1e300, '\\x', '1999-12-31 23:59:59'),
      (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
  );
  t = await startTestListener({}, new FakeGateway());
});

after(async () => {
  await t?.stop();
  await direct(`DROP TABLE IF EXISTS ${TABLE}`);
});

/** The recording of the newest session, once it has ended. */
async function lastRecording(): Promise<{ header: Record<string, unknown>; events: Line[] }> {
  const id = `test-session-${[...t.gw.recordings.keys()].length}`;
  await eventually(() => t.gw.recordings.get(id)?.closed, `recording ${id} to be closed`);
  const [header, ...events] = t.gw.recordingLines(id) as [Record<string, unknown>, ...Line[]];
  return { header, events };
}

const ofCode = (events: Line[], code: string) => events.filter((e) => e[1] === code).map((e) => e[2] as Record<string, unknown>);

describe("SQL session recording", () => {
  it("records a psql session: statements, columns, rows as sent, errors, notices, denials, COPY and the end", async () => {
    const sql = [
      `SELECT id, name FROM ${TABLE} ORDER BY id;`,
      `SELECT * FROM ${TABLE}_missing;`,
      `DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$;`,
      `SELECT 1 FROM ${FORBIDDEN};`,
      `COPY (SELECT id, name FROM ${TABLE} WHERE id < 3 ORDER BY id) TO STDOUT;`,
      `SELECT 'x' AS a; SELECT 2 AS b;`,
    ].join("\n");
    const r = await psql(t.port, ["-v", "ON_ERROR_STOP=0"], { input: sql });
    assert.equal(r.code, 0, r.stderr);
    const { header, events } = await lastRecording();
    assert.equal(header.format, "gatehouse-sql");
    assert.equal(header.version, 1);
    assert.equal(header.protocol, "postgres");
    assert.equal(header.connection, "demo");
    assert.deepEqual((header.identity as { subject: string }).subject, "agent-1");
    assert.ok(Math.abs(Number(header.timestamp) - Date.now() / 1000) < 60, "timestamp is the session start in Unix seconds");

    // Times are offsets from the start, never decreasing for a client that does not pipeline.
    for (let i = 1; i < events.length; i++) assert.ok(events[i]![0] >= events[i - 1]![0], `line ${i} goes back in time`);
    assert.deepEqual(
      events.map((e) => e[1]),
      ["q", "cols", "rows", "done", "q", "error", "q", "notice", "done", "q", "error", "q", "copy", "done", "q", "cols", "rows", "done", "q", "cols", "rows", "done", "end"],
    );
    const qs = ofCode(events, "q");
    assert.equal(qs[0]!.text, `SELECT id, name FROM ${TABLE} ORDER BY id;`);
    assert.equal(qs[0]!.protocol, "simple");
    assert.equal(qs[0]!.decision, "allow");
    assert.deepEqual(qs[0]!.policy_ids, ["test-allow-all"]);
    const cols = ofCode(events, "cols")[0]!.columns as { name: string; type_oid: number; format: number }[];
    assert.deepEqual(
      cols.map((c) => [c.name, c.type_oid, c.format]),
      [
        ["id", 23, 0],
        ["name", 25, 0],
      ],
    );
    assert.deepEqual(events[2]![2], [
      ["1", "Ada"],
      ["2", 'Bob "b" \\ q'],
      ["3", null],
    ]);
    assert.deepEqual(ofCode(events, "done")[0], { command_id: qs[0]!.command_id, tag: "SELECT 3", rows: 3 });
    const errors = ofCode(events, "error");
    assert.equal(errors[0]!.code, "42P01");
    assert.equal(errors[0]!.command_id, qs[1]!.command_id);
    assert.match(String(errors[0]!.message), /does not exist/);
    assert.equal(ofCode(events, "notice")[0]!.message, "hello from plpgsql");
    assert.equal(qs[3]!.decision, "deny");
    assert.deepEqual(qs[3]!.policy_ids, ["test-forbid"]);
    assert.equal(errors[1]!.code, "42501");
    assert.equal(errors[1]!.command_id, qs[3]!.command_id);
    assert.deepEqual(ofCode(events, "copy")[0], { direction: "out", data: '1\tAda\n2\tBob "b" \\\\ q\n' });
    assert.equal(ofCode(events, "done")[2]!.tag, "COPY 2");
    assert.deepEqual(events.slice(-8, -5).map((e) => e[2]), [{ columns: [{ name: "a", type_oid: 25, format: 0 }] }, [["x"]], { command_id: qs[5]!.command_id, tag: "SELECT 1", rows: 1 }]);
    assert.equal(ofCode(events, "end")[0]!.reason, "terminate");
  });

  it("records two statements of one simple Query as one q with two result sets", async () => {
    const r = await psql(t.port, ["-c", "SELECT 'x' AS a; SELECT 2 AS b"]);
    assert.equal(r.code, 0, r.stderr);
    const { events } = await lastRecording();
    assert.deepEqual(
      events.map((e) => e[1]),
      ["q", "cols", "rows", "done", "cols", "rows", "done", "end"],
    );
    assert.deepEqual(events[5]![2], [["2"]]);
  });

  it("keeps the first recordings.maxRowsPerResult rows of each result and counts the rest explicitly; the client gets everything", async () => {
    t.gw.recordingMaxRows = 5;
    try {
      const r = await psql(t.port, ["-A", "-t", "-c", "SELECT g FROM generate_series(1, 12) g; SELECT 'one' AS x", "-c", "COPY (SELECT g FROM generate_series(1, 9) g) TO STDOUT"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim().split("\n").length, 12 + 1 + 9, r.stdout);
      const { events } = await lastRecording();
      assert.deepEqual(
        events.map((e) => e[1]),
        ["q", "cols", "rows", "rows_omitted", "done", "cols", "rows", "done", "q", "copy", "rows_omitted", "done", "end"],
      );
      const rows = events.filter((e) => e[1] === "rows").map((e) => e[2]);
      assert.deepEqual(rows[0], [["1"], ["2"], ["3"], ["4"], ["5"]]);
      assert.deepEqual(rows[1], [["one"]], "the limit counts per result set");
      const omitted = ofCode(events, "rows_omitted");
      assert.deepEqual(omitted[0], { unit: "rows", count: 7, bytes: omitted[0]!.bytes, limit: 5 });
      assert.ok(Number(omitted[0]!.bytes) > 7 * 7, "the bytes left out are the DataRow frames");
      assert.equal(omitted[1]!.unit, "copy_data");
      assert.equal(omitted[1]!.count, 4);
      assert.equal((ofCode(events, "copy")[0]!.data as string), "1\n2\n3\n4\n5\n");
      assert.equal(ofCode(events, "done")[0]!.tag, "SELECT 12", "the command tag still tells the whole count");
    } finally {
      t.gw.recordingMaxRows = 0;
    }
  });

  it("decodes binary-format results to the text PostgreSQL prints, and records bind parameters", async () => {
    const cols = "id, name, amount, born, tok, ok, big, ratio, raw, at";
    const expected = await direct(`SELECT ${cols} FROM ${TABLE} WHERE id >= $1 ORDER BY id`, [1]);
    const c = pgClient(t.port, { binary: true } as never);
    await c.connect();
    await c.query(`SELECT ${cols} FROM ${TABLE} WHERE id >= $1 ORDER BY id`, [1]);
    await c.end();
    const { events } = await lastRecording();
    const q = ofCode(events, "q").find((x) => String(x.text).includes(TABLE))!;
    assert.equal(q.protocol, "extended");
    assert.deepEqual(q.params, ["1"]);
    const i = events.findIndex((e) => e[2] === q);
    assert.equal(events[i + 1]![1], "cols");
    const columns = (events[i + 1]![2] as { columns: { name: string; format: number }[] }).columns;
    assert.deepEqual(columns.map((x) => x.name), cols.split(", "));
    assert.ok(columns.every((x) => x.format === 1), "node-postgres asked for binary results");
    // The same rows in PostgreSQL's own text output format, unparsed.
    const raw = directClient();
    await raw.connect();
    const text = await raw.query({ text: `SELECT ${cols} FROM ${TABLE} WHERE id >= 1 ORDER BY id`, rowMode: "array", types: { getTypeParser: () => (v: string) => v } } as unknown as string);
    await raw.end();
    assert.deepEqual(events[i + 2]![2], text.rows);
    assert.equal(expected.rowCount, 3);
  });

  it("a named statement executed again records the same columns each time, and its own rows", async () => {
    const c = pgClient(t.port);
    await c.connect();
    for (const id of [1, 2, 1]) await c.query({ name: "rec-again", text: `SELECT id, name FROM ${TABLE} WHERE id = $1`, values: [id] });
    await c.end();
    const { events } = await lastRecording();
    const cols = events.filter((e) => e[1] === "cols").map((e) => e[2]);
    assert.equal(cols.length, 3);
    assert.deepEqual(cols[1], cols[0]);
    assert.deepEqual(cols[2], cols[0]);
    assert.deepEqual((cols[0] as { columns: { name: string }[] }).columns.map((x) => x.name), ["id", "name"]);
    assert.deepEqual(events.filter((e) => e[1] === "rows").map((e) => e[2]), [[["1", "Ada"]], [["2", 'Bob "b" \\ q']], [["1", "Ada"]]]);
  });

  it("keeps each pipelined statement's q line right before its own results", async () => {
    const sql = postgresJs(t.port);
    try {
      await Promise.all([1, 2, 3].map((n) => sql`SELECT ${n}::int AS n, pg_sleep(0.01)::text AS s`));
    } finally {
      await sql.end();
    }
    const { events } = await lastRecording();
    const mine = events.filter((e) => e[1] !== "q" || String((e[2] as { text: string }).text).includes("pg_sleep"));
    const start = mine.findIndex((e) => e[1] === "q");
    const seq = mine.slice(start, start + 12);
    for (let k = 0; k < 3; k++) {
      const [q, cols, rows, done] = seq.slice(k * 4, k * 4 + 4);
      assert.equal(q![1], "q");
      assert.equal(cols![1], "cols");
      assert.equal(rows![1], "rows");
      assert.equal(done![1], "done");
      assert.equal((done![2] as { command_id: string }).command_id, (q![2] as { command_id: string }).command_id);
      assert.deepEqual((q![2] as { params: string[] }).params, [String(k + 1)]);
      assert.equal((rows![2] as string[][])[0]![0], String(k + 1));
    }
  });
});
