// Masking of a bulk result through the gateway: more distinct values than the
// hash memo holds, so tokens are computed in batches (hash-batch.ts) and rows past
// the recording's row limit are relayed as runs (FrameReader.takeRun). Every
// token a client receives (node-postgres text and binary, psql) and every token
// in the recording must be the exact HMAC token of its value under the stack's
// key; the recording keeps its row limit and counts the rest; the masking
// evidence counts every value once.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { hashToken, loadMaskKey, type MaskKey } from "@gatehouse/masking";
import { startStack, type Stack } from "../support/stack.js";
import { asAdmin, psql } from "../support/clients.js";

const DB = `gh_mask_bulk_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
const ROWS = 12_000;
const KEEP = 6_000; // recordings.maxRowsPerResult: past the memo (4096 values), before the end
const HASHED = `bulk-hashed-${process.pid}`;

const POLICY = `
@id("bulk-read") permit (principal in Gatehouse::Group::"bulk", action, resource);
@id("bulk-mask")
@mask("bulk_rows.ssn=hash; bulk_rows.email=redact")
permit (principal in Gatehouse::Group::"bulk", action, resource);
`;

/** Row i's values: distinct SSN-like ids, some not ASCII, some too long for one hash block, some NULL. */
function ssnOf(i: number): string | null {
  if (i % 1013 === 0) return null;
  if (i % 997 === 0) return `ｓｓｎ-${i}`;
  if (i % 991 === 0) return `${"7".repeat(64)}-${i}`;
  return String(100000000 + i * 37);
}

let stack: Stack;
let key: MaskKey;
let token: string;
let policyDir: string;

before(async () => {
  policyDir = mkdtempSync(join(tmpdir(), "gatehouse-bulk-policy-"));
  writeFileSync(join(policyDir, "bulk.cedar"), POLICY);
  await asAdmin("test", (c) => c.query(`CREATE DATABASE ${DB}`));
  await asAdmin(DB, async (c) => {
    await c.query("CREATE TABLE bulk_rows (id int PRIMARY KEY, ssn text, email text, note text)");
    const ids = Array.from({ length: ROWS }, (_, i) => i + 1);
    await c.query("INSERT INTO bulk_rows SELECT id, ssn, 'u' || id || '@example.com', 'n' || id FROM unnest($1::int[], $2::text[]) AS t(id, ssn)", [ids, ids.map(ssnOf)]);
  });
  stack = await startStack({
    policies: policyDir,
    recordings: { maxRowsPerResult: KEEP },
    connections: { bulkdb: { protocol: "postgres", upstream: { host: "127.0.0.1", port: 5432, database: DB, user: "postgres", sslmode: "disable" }, tags: { env: "test" } } },
  });
  // The listener generated the development key in the stack's data directory on start.
  key = loadMaskKey(join(stack.dir, "data"), { env: {} });
  token = await stack.forge.mint({ sub: HASHED, groups: ["bulk"] });
});

after(async () => {
  await stack?.stop();
  await asAdmin("test", (c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
  rmSync(policyDir, { recursive: true, force: true });
});

const SELECT = "SELECT id, ssn, email, note FROM bulk_rows ORDER BY id";

function assertRows(rows: { id: number; ssn: string | null; email: string | null; note: string }[], label: string): void {
  assert.equal(rows.length, ROWS, label);
  for (const [i, r] of rows.entries()) {
    const id = i + 1;
    const clear = ssnOf(id);
    assert.equal(Number(r.id), id, `${label}: row order`);
    assert.equal(r.ssn, clear === null ? null : hashToken(clear, "US_SSN", key), `${label}: row ${id} ssn`);
    assert.equal(r.email, "[REDACTED:EMAIL]", `${label}: row ${id} email`);
    assert.equal(r.note, `n${id}`, `${label}: row ${id} unmasked column`);
  }
}

describe("bulk results with hash masking", () => {
  test("node-postgres in text and binary mode gets the exact token of every value", async () => {
    for (const binary of [false, true]) {
      const c = new pg.Client({ host: "127.0.0.1", port: stack.pgPort, user: HASHED, database: "bulkdb", password: token, binary } as pg.ClientConfig);
      await c.connect();
      try {
        const r = await c.query(SELECT);
        assertRows(r.rows, binary ? "binary" : "text");
      } finally {
        await c.end();
      }
    }
  });

  test("psql: the same tokens; the recording keeps its row limit with exact tokens, and the evidence counts every value", async () => {
    const r = await psql(stack.dsn(token, { user: HASHED, database: "bulkdb" }), SELECT, ["-F", "|"]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assertRows(
      lines.map((l) => {
        const [id, ssn, email, note] = l.split("|");
        return { id: Number(id), ssn: ssn === "" ? null : ssn!, email: email!, note: note! };
      }),
      "psql",
    );

    const ended = await stack.waitForAudit(`SELECT session_id FROM events FINAL WHERE identity_subject = '${HASHED}' AND type = 'session_end' ORDER BY time DESC LIMIT 1`, (x) => x.length === 1);
    const session = String(ended[0]!.session_id);
    await stack.waitForAudit(`SELECT complete FROM recording_index WHERE session_id = '${session}'`, (x) => x.length === 1 && Boolean(x[0]!.complete), 30_000);
    const chunks = await stack.auditQuery(`SELECT data FROM recordings FINAL WHERE session_id = '${session}' ORDER BY seq`);
    const rec = chunks.map((c) => String(c.data)).join("").trim().split("\n").map((l) => JSON.parse(l) as [number, string, unknown]);
    const recorded = rec.filter((l) => l[1] === "rows").flatMap((l) => l[2] as unknown[][]);
    assert.equal(recorded.length, KEEP, "the recording keeps recordings.maxRowsPerResult rows");
    recorded.forEach((row, i) => {
      const clear = ssnOf(i + 1);
      assert.equal(row[1], clear === null ? null : hashToken(clear, "US_SSN", key), `recorded row ${i + 1}`);
    });
    const omitted = rec.find((l) => l[1] === "rows_omitted")?.[2] as { count: number; unit: string } | undefined;
    assert.deepEqual(omitted && { count: omitted.count, unit: omitted.unit }, { count: ROWS - KEEP, unit: "rows" });
    const done = rec.find((l) => l[1] === "done")?.[2] as { rows: number } | undefined;
    assert.equal(done?.rows, ROWS);

    const hashed = ROWS - Array.from({ length: ROWS }, (_, i) => ssnOf(i + 1)).filter((v) => v === null).length;
    const evidence = await stack.waitForAudit(
      `SELECT column, strategy, sum(count) AS n FROM gatehouse.masking_events WHERE session_id = '${session}' AND source = 'result' GROUP BY column, strategy ORDER BY column`,
      (x) => x.length === 2,
    );
    assert.deepEqual(
      evidence.map((e) => [e.column, e.strategy, Number(e.n)]),
      [
        ["bulk_rows.email", "redact", ROWS],
        ["bulk_rows.ssn", "hash", hashed],
      ],
    );
  });
});
