// The replay's psql-style printing and its re-masking, checked against the real
// thing: real psql's aligned output of the same queries on the real PostgreSQL,
// and @gatehouse/masking's own strategies.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { generateMaskKey, applyStrategy } from "@gatehouse/masking";
import { formatAligned, remask, resultDigest, statementsOf, loadRemasker, type Column } from "./replay-sql.js";

const QUERIES = [
  "SELECT 1 AS id, 'Ada' AS name, 12.5::numeric AS amt, NULL::text AS n",
  "SELECT 'a' || chr(10) || 'bcd' AS x, 5 AS y",
  "SELECT 'a' AS m, 'p' || chr(10) || 'q' AS last",
  "SELECT 'x' AS longheadername, 'é中文' AS u",
  "SELECT 1 WHERE false",
  "SELECT g AS n, repeat('z', g) AS zs, g * 1.5 AS f, (g % 2 = 0) AS even FROM generate_series(1, 12) g",
  "SELECT '' AS empty, ' lead' AS sp, 'trail ' AS sp2",
];

async function viaPg(sql: string): Promise<{ columns: Column[]; rows: (string | null)[][] }> {
  const c = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "test" });
  await c.connect();
  try {
    const r = await c.query({ text: sql, rowMode: "array", types: { getTypeParser: () => (v: string) => v } } as unknown as string);
    return { columns: r.fields.map((f) => ({ name: f.name, type_oid: f.dataTypeID, format: 0 })), rows: r.rows as (string | null)[][] };
  } finally {
    await c.end();
  }
}

describe("replay transcript", () => {
  it("prints result sets exactly as psql does in aligned mode", async () => {
    for (const sql of QUERIES) {
      const want = execFileSync("psql", ["-X", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c", sql], { encoding: "utf8" });
      const { columns, rows } = await viaPg(sql);
      assert.equal(formatAligned(columns, rows) + "\n", want, sql);
    }
  });

  it("groups events into statements with their result sets, errors and tags", () => {
    const s = statementsOf([
      [0.1, "q", { command_id: "s:1", text: "SELECT 1; SELECT 2", params: [], protocol: "simple", decision: "allow", policy_ids: [] }],
      [0.2, "cols", { columns: [{ name: "a", type_oid: 23, format: 0 }] }],
      [0.2, "rows", [["1"]]],
      [0.2, "done", { command_id: "s:1", tag: "SELECT 1", rows: 1 }],
      [0.2, "cols", { columns: [{ name: "b", type_oid: 23, format: 0 }] }],
      [0.2, "rows", [["2"]]],
      [0.2, "rows", [["3"]]],
      [0.3, "done", { command_id: "s:1", tag: "SELECT 2", rows: 2 }],
      [0.4, "q", { command_id: "s:2", text: "DROP TABLE x", params: [], protocol: "simple", decision: "deny", policy_ids: ["p"] }],
      [0.4, "error", { command_id: "s:2", code: "42501", message: "denied", severity: "ERROR" }],
      [0.5, "q", { command_id: "s:3", text: "UPDATE t SET a = 1", params: [], protocol: "simple", decision: "allow", policy_ids: [] }],
      [0.6, "done", { command_id: "s:3", tag: "UPDATE 4", rows: 4 }],
    ]);
    assert.equal(s.length, 3);
    assert.deepEqual(s[0]!.results.map((r) => [r.rows, r.complete, r.tag]), [
      [[["1"]], true, "SELECT 1"],
      [[["2"], ["3"]], true, "SELECT 2"],
    ]);
    assert.equal(s[1]!.errors[0]!.code, "42501");
    assert.deepEqual(s[2]!.tags, ["UPDATE 4"]);
  });

  it("re-applies recorded masking with the same strategies, and digests canonically", () => {
    const r = { ...loadRemasker("/nonexistent-gatehouse-dir"), key: generateMaskKey() };
    const email: Column = { name: "email", type_oid: 25, format: 0, mask: { strategy: "redact", entity: "EMAIL" } };
    assert.equal(remask(email, "ada@example.org", r), "[REDACTED:EMAIL]");
    assert.equal(remask(email, null, r), null);
    const hashed: Column = { name: "email", type_oid: 25, format: 0, mask: { strategy: "hash", entity: "EMAIL" } };
    assert.equal(remask(hashed, "ada@example.org", r), applyStrategy("ada@example.org", "EMAIL", { kind: "hash" }, r.key));
    const notes: Column = { name: "notes", type_oid: 25, format: 0, mask: { scan: true, text: { "*": { strategy: "redact" } } } };
    assert.equal(remask(notes, "mail me at ada@example.org please", r), "mail me at [REDACTED:EMAIL] please");
    assert.equal(remask({ name: "n", type_oid: 25, format: 0 }, "ada@example.org", r), "ada@example.org", "unmasked columns stay");
    assert.equal(resultDigest(["a"], [["1"], [null]]), resultDigest(["a"], [["1"], [null]]));
    assert.notEqual(resultDigest(["a"], [["1"], [null]]), resultDigest(["a"], [["1"], [""]]), "NULL and the empty string differ");
    const dir = mkdtempSync(join(tmpdir(), "gh-replay-"));
    try {
      const none = loadRemasker(dir);
      if (!process.env.GATEHOUSE_MASKING_KEY && !process.env.GATEHOUSE_MASKING_KEY_FILE) {
        assert.equal(none.key, undefined);
        assert.match(none.keyProblem, /masking key is not available/);
        assert.ok(!existsSync(join(dir, "masking")), "replay never generates a masking key");
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
