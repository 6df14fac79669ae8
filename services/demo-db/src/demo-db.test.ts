// The embedded demo database, run for real: PGlite on disk in a temp dir, served
// on a free port, queried with the real psql client.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { once } from "node:events";
import { createLogger, resolveConfig } from "@gatehouse/runtime";
import { startDemoDb, luhnValid, CUSTOMERS, ORDERS, type RunningDemoDb } from "./index.js";
import { luhnCheckDigit } from "./fake.js";

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), "gatehouse-demo-db-"));
const config = resolveConfig({ dataDir: tmp }, tmp);
let db: RunningDemoDb;
// A real pino logger at level silent: the tests assert on data, not on logs.
const silentLog = () => createLogger("demo-db-test", "silent");

async function psql(port: number, ...commands: string[]): Promise<string> {
  const args = ["-X", "-At", "-v", "ON_ERROR_STOP=1", `host=127.0.0.1 port=${port} user=postgres dbname=postgres sslmode=disable`];
  for (const c of commands) args.push("-c", c);
  const { stdout } = await run("psql", args, { timeout: 60_000 });
  return stdout.trim();
}

before(async () => {
  db = await startDemoDb(config, { port: 0, log: silentLog() });
});

after(async () => {
  await db?.stop();
  rmSync(tmp, { recursive: true, force: true });
});


test("seeds customers and orders on first start", async () => {
  assert.equal(db.seeded, true);
  assert.equal(await psql(db.port, "SELECT count(*) FROM customers"), String(CUSTOMERS));
  assert.equal(await psql(db.port, "SELECT count(*) FROM orders"), String(ORDERS));
  assert.equal(await psql(db.port, "SELECT count(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL"), "0");
});

test("fake values have realistic shapes", async () => {
  const rows = (await db.db.query<{ email: string; phone: string; ssn: string; card_number: string; notes: string }>(
    "SELECT email, phone, ssn, card_number, notes FROM customers ORDER BY id",
  )).rows;
  assert.equal(rows.length, CUSTOMERS);
  for (const r of rows) {
    assert.match(r.email, /^[a-z]+\.[a-z]+\d+@example\.(com|org|net)$/);
    assert.match(r.phone, /^\+1\d{3}55501\d{2}$/);
    assert.match(r.ssn, /^(?!000|666|9)\d{3}-\d{2}-\d{4}$/);
    assert.ok(luhnValid(r.card_number), `card ${r.card_number} fails the Luhn check`);
  }
  // Some notes carry PII in prose (what masking will have to find later).
  assert.ok(rows.filter((r) => /\d{3}-\d{2}-\d{4}/.test(r.notes)).length > 10);
  assert.ok(rows.filter((r) => /\+1\d{10}/.test(r.notes)).length > 10);
  const emails = new Set(rows.map((r) => r.email));
  assert.equal(emails.size, CUSTOMERS, "emails are unique");
});

test("Luhn helper agrees with known test numbers", () => {
  assert.equal(luhnValid("4111111111111111"), true);
  assert.equal(luhnValid("4111111111111112"), false);
  assert.equal(luhnValid("378282246310005"), true);
  assert.equal(luhnCheckDigit("7992739871"), 3);
});

test("sequential psql sessions each work", async () => {
  for (let i = 0; i < 4; i++) {
    assert.equal(await psql(db.port, `SELECT ${i} + 1`), String(i + 1));
  }
});

test("three concurrent sessions with transactions all complete", async () => {
  await psql(db.port, "CREATE TABLE IF NOT EXISTS concurrency_probe (session int, n int)");
  const outs = await Promise.all(
    [1, 2, 3].map((s) =>
      psql(db.port, "BEGIN", `INSERT INTO concurrency_probe VALUES (${s}, 1), (${s}, 2)`, "SELECT pg_sleep(0.2)", "COMMIT", `SELECT count(*) FROM concurrency_probe WHERE session = ${s}`),
    ),
  );
  for (const o of outs) assert.equal(o.split("\n").at(-1), "2");
  assert.equal(await psql(db.port, "SELECT count(*) FROM concurrency_probe"), "6");
  await psql(db.port, "DROP TABLE concurrency_probe");
});

test("data persists across a restart and is not seeded twice", async () => {
  await psql(db.port, "UPDATE customers SET notes = 'persist-check' WHERE id = 1");
  await db.stop();
  db = await startDemoDb(config, { port: 0, log: silentLog() });
  assert.equal(db.seeded, false);
  assert.equal(await psql(db.port, "SELECT notes FROM customers WHERE id = 1"), "persist-check");
  assert.equal(await psql(db.port, "SELECT count(*) FROM customers"), String(CUSTOMERS));
});

test("a second process on the same data directory is refused", async () => {
  await assert.rejects(startDemoDb(config, { port: 0, log: silentLog() }), /already in use by process/);
});

test("main.js follows the service convention (ready line, SIGTERM exits 0)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-demo-db-main-"));
  try {
    const cfg = join(dir, "gatehouse.yaml");
    writeFileSync(cfg, "dataDir: ./data\ndemoDb:\n  port: 0\n");
    const main = resolve(dirname(fileURLToPath(import.meta.url)), "main.js");
    const child = spawn(process.execPath, [main, "--config", cfg], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, GATEHOUSE_DEMO_DB_PORT: "" } });
    let out = "";
    const ready = new Promise<Record<string, unknown>>((res, rej) => {
      child.stdout.on("data", (b: Buffer) => {
        out += b.toString();
        for (const line of out.split("\n")) {
          if (line.includes('"msg":"ready"')) res(JSON.parse(line));
        }
      });
      child.on("exit", (code) => rej(new Error(`demo-db exited ${code}: ${out}`)));
    });
    const line = await ready;
    assert.equal(typeof line.port, "number");
    assert.equal(await psql(line.port as number, "SELECT count(*) FROM orders"), String(ORDERS));
    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    assert.equal(code, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
