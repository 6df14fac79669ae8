// The audit store against the real embedded ClickHouse (chDB) in a temp dir.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditEvent, Effect } from "@gatehouse/proto";
import { openAuditStore, type AuditStore } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "gatehouse-audit-store-"));
let store: AuditStore;

before(async () => {
  store = await openAuditStore({ chdbPath: join(dir, "ch") });
});
after(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const identity = { subject: "agent-7", name: "deploy-bot", groups: ["ci", "readers"], kind: "agent", issuer: "http://idp", tokenId: "jti-1", clientId: "c1", expiresAtUnix: 0 };

function commandEvent(session: string, seq: number, text: string, effect: Effect): AuditEvent {
  return AuditEvent.fromPartial({
    id: `${session}:${seq}`,
    timeUnixMicros: 1_700_000_000_123_456 + seq,
    sessionId: session,
    connection: "prod",
    protocol: "postgres",
    identity,
    listenerId: "l1",
    body: {
      $case: "command",
      command: {
        command: { id: `${session}:c${seq}`, sessionId: session, text, seq, params: [{ isNull: false, text: "42" }, { isNull: true }], statements: [{ kind: "delete", action: "sql:delete", tables: ["public.users"] }] },
        decision: { effect, policyIds: ["forbid-delete"], reason: "deletes need a WHERE", policyVersion: "v1" },
        decidedBy: "policy",
      },
    },
  });
}

test("a command event becomes one command row and one decision row, and a re-insert adds no visible row", async () => {
  const ev = commandEvent("s1", 1, "DELETE FROM users", Effect.EFFECT_DENY);
  const result = AuditEvent.fromPartial({ id: "s1:2", sessionId: "s1", connection: "prod", identity, body: { $case: "result", result: { commandId: "s1:c1", rows: 0, errorCode: "42501", errorMessage: "denied" } } });
  assert.equal(await store.insertEvents([{ event: ev, streamSeq: 10 }, { event: result, streamSeq: 10 }]), 3);
  assert.equal(await store.insertEvents([{ event: ev, streamSeq: 10 }]), 2);
  assert.equal(await store.countEvents(), 3);
  const rows = await store.query("SELECT event_id, type, effect, command_params, time, identity_groups FROM gatehouse.events FINAL ORDER BY event_id");
  assert.deepEqual(rows.columns, ["event_id", "type", "effect", "command_params", "time", "identity_groups"]);
  assert.deepEqual(
    rows.rows.map((r) => [r.event_id, r.type, r.effect]),
    [
      ["s1:1", "command", ""],
      ["s1:1:decision", "decision", "deny"],
      ["s1:2", "result", ""],
    ],
  );
  assert.deepEqual(rows.rows[0]!.command_params, ["42", null]);
  assert.equal(rows.rows[0]!.time, "2023-11-14 22:13:20.123457");
  assert.deepEqual(rows.rows[0]!.identity_groups, ["ci", "readers"]);
  const view = await store.query("SELECT command_text, effect, policy_ids, has_result, error_code FROM gatehouse.commands_with_decisions");
  assert.deepEqual(view.rows, [{ command_text: "DELETE FROM users", effect: "deny", policy_ids: ["forbid-delete"], has_result: true, error_code: "42501" }]);
});

test("secret-looking startup parameters are not stored", async () => {
  const ev = AuditEvent.fromPartial({ id: "s2:1", sessionId: "s2", body: { $case: "sessionStart", sessionStart: { clientAddress: "10.0.0.1:5555", startupParameters: { application_name: "psql", password: "hunter2", api_token: "abc" } } } });
  await store.insertEvents([{ event: ev, streamSeq: 11 }]);
  const r = await store.query("SELECT startup_parameters FROM gatehouse.events WHERE event_id = 's2:1'");
  assert.deepEqual(r.rows[0]!.startup_parameters, { application_name: "psql", password: "[REDACTED]", api_token: "[REDACTED]" });
});

test("max rows truncates and says so", async () => {
  const r = await store.query("SELECT number FROM system.numbers LIMIT 50", 7);
  assert.equal(r.rows.length, 7);
  assert.equal(r.truncated, true);
  const all = await store.query("SELECT number FROM numbers(5)", 7);
  assert.equal(all.rows.length, 5);
  assert.equal(all.truncated, false);
});

test("read-only: writes, DDL, second statements, files and settings changes are refused", async () => {
  const refused = [
    ["INSERT INTO gatehouse.events (event_id) VALUES ('x')", /only read-only queries/],
    ["DROP TABLE gatehouse.events", /only read-only queries/],
    ["ALTER TABLE gatehouse.events DELETE WHERE 1", /only read-only queries/],
    ["SELECT 1; DROP TABLE gatehouse.events", /only one statement/],
    ["SELECT 1;\nINSERT INTO gatehouse.events (event_id) VALUES ('x')", /only one statement/],
    ["SELECT * FROM file('/etc/hostname', 'LineAsString')", /read-only mode/],
    ["SELECT 1 SETTINGS readonly = 0", /read-only mode/],
    ["SELECT 1 INTO OUTFILE '/tmp/gatehouse-x.txt'", /INTO OUTFILE/],
    ["SELECT 1 FORMAT CSV", /FORMAT clause/],
    ["SELECT 'unterminated", /unterminated string/],
    ["/* SELECT */ TRUNCATE TABLE gatehouse.events", /only read-only queries/],
    ["", /empty query/],
  ] as const;
  for (const [sql, re] of refused) {
    await assert.rejects(store.query(sql), re, sql);
  }
  // Nothing was changed by any of them.
  assert.equal(await store.countEvents(), 4);
  // Look-alikes inside strings and comments are fine; a trailing ';' too.
  const ok = await store.query("SELECT 'a; DROP TABLE x' AS s -- ; comment\n;");
  assert.deepEqual(ok.rows, [{ s: "a; DROP TABLE x" }]);
  const show = await store.query("SHOW TABLES FROM gatehouse");
  assert.ok(show.rows.some((r) => r.name === "events"));
});

test("query parameters are bound by the engine, never spliced: a quote in a value stays a value", async () => {
  const hit = await store.query("SELECT event_id FROM gatehouse.events FINAL WHERE session_id = {s:String} ORDER BY event_id", 10, { s: "s2" });
  assert.deepEqual(hit.rows.map((r) => r.event_id), ["s2:1"]);
  const evil = await store.query("SELECT count() AS n FROM gatehouse.events WHERE session_id = {s:String}", 10, { s: "x' OR '1'='1" });
  assert.equal(Number(evil.rows[0]!.n), 0);
  const typed = await store.query("SELECT {n:UInt32} + 1 AS v, {t:DateTime64(6, 'UTC')} AS t", 10, { n: "41", t: "2026-01-02 03:04:05.000006" });
  assert.equal(Number(typed.rows[0]!.v), 42);
  await assert.rejects(store.query("SELECT {n:UInt32} AS v", 10, { n: "not a number" }));
});

test("data persists across close and reopen of the same directory", async () => {
  await store.close();
  store = await openAuditStore({ chdbPath: join(dir, "ch") });
  assert.equal(await store.countEvents(), 4);
});

test("the compact insert format names every row field, in the order its values are written", async () => {
  const { EVENT_COLUMNS, rowValuesJson } = await import("./rows.js");
  const { eventRows } = await import("./index.js");
  for (const row of eventRows(commandEvent("s9", 1, "SELECT 1", Effect.EFFECT_ALLOW), 3)) {
    // time_us is the `time` column again, as the number RowBinary writes.
    assert.deepEqual([...EVENT_COLUMNS, "time_us"].sort(), Object.keys(row).sort());
    assert.equal(row.time_us, 1_700_000_000_123_456 + 1);
    assert.equal(row.time, "2023-11-14 22:13:20.123457");
    const values = JSON.parse(rowValuesJson(row)) as unknown[];
    assert.deepEqual(values, EVENT_COLUMNS.map((c) => row[c]));
  }
});

test("RowBinary rows (the embedded engine's insert path) read back exactly as the same rows sent as JSON", async () => {
  const { RowBinaryBuffer } = await import("./row-binary.js");
  const { eventRows, rowValuesJson, EVENT_COLUMNS } = await import("./rows.js");
  const long = "é".repeat(70) + " 🚀 " + "x".repeat(300);
  const rows = [
    ...eventRows(commandEvent("rb1", 1, "DELETE FROM users WHERE id = $1", Effect.EFFECT_DENY), 9_007_199_254_740_000),
    ...eventRows(commandEvent("rb1", 2, long, Effect.EFFECT_ALLOW), 2),
    ...eventRows(AuditEvent.fromPartial({ id: "rb2:1", timeUnixMicros: 1_700_000_000_000_001, sessionId: "rb2", identity, body: { $case: "sessionStart", sessionStart: { clientAddress: "[::1]:5", startupParameters: { application_name: "psql ✓", search_path: "", ["k".repeat(31)]: "v".repeat(30) + "é", ["a".repeat(32)]: "é" + "b".repeat(30) } } } }), 3),
    ...eventRows(AuditEvent.fromPartial({ id: "rb2:2", timeUnixMicros: 1_700_000_001_999_999, sessionId: "rb2", body: { $case: "result", result: { commandId: "c", rows: -1, bytes: 0, durationMicros: 12, errorCode: "57014", errorMessage: "ééééééééééééééééééééééééééééééééééééééééé" } } }), 4),
  ];
  rows.forEach((r, i) => {
    r.chain_pos = 2 ** 40 + i;
    r.chain_index = 4_000_000_000;
    r.chain_hash = "ab".repeat(32);
    r.event_bytes = i === 0 ? Buffer.from([0, 1, 2, 255]).toString("base64") : "";
  });
  for (const r of rows) assert.equal(r.time_us % 1_000_000, Number(r.time.slice(20)), r.time);
  const b = new RowBinaryBuffer(1);
  for (const r of rows) b.add(r);
  await store.insertRowBuffer(b);
  await store.adminExec("CREATE TABLE gatehouse.events_json_check AS gatehouse.events");
  try {
    await store.adminExec(`INSERT INTO gatehouse.events_json_check (${EVENT_COLUMNS.join(", ")}) FORMAT JSONCompactEachRow ${rows.map(rowValuesJson).join("\n")}`);
    const cols = EVENT_COLUMNS.join(", ");
    const viaBinary = await store.query(`SELECT ${cols} FROM gatehouse.events WHERE session_id IN ('rb1', 'rb2') ORDER BY event_id`);
    const viaJson = await store.query(`SELECT ${cols} FROM gatehouse.events_json_check ORDER BY event_id`);
    assert.equal(viaBinary.rows.length, rows.length);
    assert.deepEqual(viaBinary.rows, viaJson.rows);
    assert.equal(viaBinary.rows.find((r) => r.event_id === "rb1:2")!.command_text, long);
    assert.equal(Number(viaBinary.rows.find((r) => r.event_id === "rb2:2")!.rows), -1);
  } finally {
    await store.adminExec("DROP TABLE gatehouse.events_json_check");
  }
});
