// Issue 3 acceptance, end to end: the demo policy (deploy/policies/demo.cedar) masks
// customers' email, phone, ssn, card_number and PII in notes for group agents,
// shows emails partially to support, and clear values to dba. Real psql,
// node-postgres (text and binary) and postgres.js through the listener to a
// database of our own on the real PostgreSQL; then every ClickHouse table (and
// the protobuf bytes stored in it) is scanned for every seeded clear value.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import postgres from "postgres";
import { startStack, type Stack } from "../support/stack.js";
import { asAdmin, psql } from "../support/clients.js";

const DB = `gh_mask_e2e_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
const AGENT = `mask-agent-${process.pid}`;
const SUPPORT = `mask-support-${process.pid}`;
const DBA = `mask-dba-${process.pid}`;
const ROWS = 40;

// Deterministic synthetic PII that the recognizers accept (valid SSN areas, Luhn cards, NANP phones).
let seed = 42;
const rnd = (n: number) => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed % n;
};
const digits = (n: number) => Array.from({ length: n }, () => rnd(10)).join("");
function luhnCard(): string {
  const body = "4" + digits(14);
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return body + String((10 - (sum % 10)) % 10);
}
const ssn = () => `${String(100 + rnd(500)).padStart(3, "0")}-${String(10 + rnd(89))}-${String(1000 + rnd(8999))}`;
const phone = () => `+1415${String(200 + rnd(700))}${digits(4)}`;

interface Customer {
  id: number;
  name: string;
  email: string;
  phone: string;
  ssn: string;
  card_number: string;
  notes: string;
}
const customers: Customer[] = Array.from({ length: ROWS }, (_, i) => {
  const id = i + 1;
  const c = { id, name: `Person ${id}`, email: `person.${id}.${digits(5)}@example.net`, phone: phone(), ssn: ssn(), card_number: luhnCard(), notes: "" };
  c.notes = id % 2 === 0 ? `asked to be reached at alt.${id}.${digits(4)}@example.org or ${phone()}; verified SSN ${ssn()}` : `no contact preference (${id})`;
  return c;
});
/** Every confidential value seeded, plus those an agent and a dba type in later. */
const secrets = new Set<string>();
for (const c of customers) {
  for (const v of [c.email, c.phone, c.ssn, c.card_number]) secrets.add(v);
  for (const m of c.notes.matchAll(/[\w.]+@[\w.]+|\+1\d{10}|\d{3}-\d{2}-\d{4}/g)) secrets.add(m[0]);
}
const AGENT_INSERT_SSN = ssn();
const AGENT_INSERT_EMAIL = `inserted.${digits(6)}@example.com`;
const DBA_WHERE_SSN = customers[2]!.ssn;
const DBA_PARAM_EMAIL = customers[3]!.email;
for (const v of [AGENT_INSERT_SSN, AGENT_INSERT_EMAIL]) secrets.add(v);

let stack: Stack;
const tokens: Record<string, string> = {};

function client(who: string, binary = false): pg.Client {
  return new pg.Client({ host: "127.0.0.1", port: stack.pgPort, user: who, database: "maskdb", password: tokens[who], binary } as pg.ClientConfig);
}

before(async () => {
  await asAdmin("test", (c) => c.query(`CREATE DATABASE ${DB}`));
  await asAdmin(DB, async (c) => {
    await c.query("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text, phone text, ssn text, card_number text, notes text)");
    for (const x of customers) {
      await c.query("INSERT INTO customers VALUES ($1, $2, $3, $4, $5, $6, $7)", [x.id, x.name, x.email, x.phone, x.ssn, x.card_number, x.notes]);
    }
    await c.query("INSERT INTO customers (id, name) VALUES (1000, 'No Contact')");
  });
  stack = await startStack({
    connections: { maskdb: { protocol: "postgres", upstream: { host: "127.0.0.1", port: 5432, database: DB, user: "postgres", sslmode: "disable" }, tags: { env: "test" } } },
  });
  tokens[AGENT] = await stack.forge.mint({ sub: AGENT, groups: ["agents"] });
  tokens[SUPPORT] = await stack.forge.mint({ sub: SUPPORT, groups: ["support"] });
  tokens[DBA] = await stack.forge.mint({ sub: DBA, groups: ["dba"] });
});

after(async () => {
  await stack?.stop();
  await asAdmin("test", (c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
});

const dsn = (who: string) => stack.dsn(tokens[who]!, { user: who, database: "maskdb" });
const SELECT = "SELECT id, name, email, phone, ssn, card_number, notes FROM customers ORDER BY id";

function assertAgentView(rows: Record<string, unknown>[]): void {
  assert.equal(rows.length, ROWS + 1);
  for (const [i, r] of rows.slice(0, ROWS).entries()) {
    const c = customers[i]!;
    assert.equal(r.id, c.id);
    assert.equal(r.name, c.name, "unmasked columns are untouched");
    assert.equal(r.email, "[REDACTED:EMAIL]");
    assert.equal(r.phone, "[REDACTED:PHONE]");
    assert.equal(r.ssn, "[REDACTED:US_SSN]");
    assert.equal(r.card_number, "[REDACTED:CREDIT_CARD]");
    if (c.id % 2 === 0) assert.match(String(r.notes), /^asked to be reached at \[REDACTED:EMAIL\] or \[REDACTED:PHONE\]; verified SSN \[REDACTED:US_SSN\]$/);
    else assert.equal(r.notes, c.notes, "notes without PII are untouched");
  }
  const last = rows[ROWS]!;
  assert.deepEqual([last.email, last.phone, last.ssn, last.card_number, last.notes], [null, null, null, null, null], "NULLs stay NULL");
  const all = JSON.stringify(rows);
  for (const v of secrets) assert.ok(!all.includes(v), `agent result holds no ${v}`);
}

describe("masking through the gateway (demo policy)", () => {
  test("psql as an agent: every PII column and PII in notes masked", async () => {
    const r = await psql(dsn(AGENT), SELECT, ["-F", "\t"]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout
      .trim()
      .split("\n")
      .map((l) => {
        const [id, name, email, phone, ssnV, card, notes] = l.split("\t");
        const nul = (v: string | undefined) => (v === "" || v === undefined ? null : v);
        return { id: Number(id), name, email: nul(email), phone: nul(phone), ssn: nul(ssnV), card_number: nul(card), notes: nul(notes) };
      });
    assertAgentView(rows);
  });

  test("node-postgres in text and binary mode as an agent: masked, same columns and types", async () => {
    for (const binary of [false, true]) {
      const c = client(AGENT, binary);
      await c.connect();
      try {
        const r = await c.query(`${SELECT.replace("ORDER BY", "WHERE id > $1 ORDER BY")}`, [0]);
        assert.deepEqual(r.fields.map((f) => f.name), ["id", "name", "email", "phone", "ssn", "card_number", "notes"]);
        assert.deepEqual(r.fields.map((f) => f.dataTypeID), [23, 25, 25, 25, 25, 25, 25]);
        if (binary) assert.ok(r.fields.every((f) => f.format === "binary"));
        assertAgentView(r.rows);
      } finally {
        await c.end();
      }
    }
  });

  test("postgres.js as an agent, including a cursor with a row limit", async () => {
    const sql = postgres({ host: "127.0.0.1", port: stack.pgPort, user: AGENT, database: "maskdb", password: tokens[AGENT], max: 1, onnotice: () => undefined });
    try {
      const rows = await sql.unsafe(SELECT);
      assertAgentView(rows as unknown as Record<string, unknown>[]);
      const batched: Record<string, unknown>[] = [];
      for await (const b of sql.unsafe(SELECT).cursor(7)) batched.push(...(b as unknown as Record<string, unknown>[]));
      assertAgentView(batched);
    } finally {
      await sql.end();
    }
  });

  test("COPY TO STDOUT as an agent (psql, text and csv) is masked column by column", async () => {
    const text = await psql(dsn(AGENT), "COPY customers TO STDOUT");
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trim().split("\n");
    assert.equal(lines.length, ROWS + 1);
    assert.deepEqual(lines[0]!.split("\t"), ["1", "Person 1", "[REDACTED:EMAIL]", "[REDACTED:PHONE]", "[REDACTED:US_SSN]", "[REDACTED:CREDIT_CARD]", customers[0]!.notes]);
    const csv = await psql(dsn(AGENT), "COPY (SELECT id, email, notes FROM customers WHERE id = 2) TO STDOUT WITH (FORMAT csv)");
    assert.equal(csv.code, 0, csv.stderr);
    assert.match(csv.stdout.trim(), /^2,"\[REDACTED:EMAIL\]","asked to be reached at \[REDACTED:EMAIL\] or \[REDACTED:PHONE\]; verified SSN \[REDACTED:US_SSN\]"$/);
    for (const v of secrets) assert.ok(!text.stdout.includes(v) && !csv.stdout.includes(v), `COPY output holds no ${v}`);
  });

  test("a value an agent inserts is masked when it reads it back", async () => {
    const c = client(AGENT);
    await c.connect();
    try {
      await c.query(`INSERT INTO customers (id, name, ssn, notes) VALUES (2000, 'Inserted', '${AGENT_INSERT_SSN}', 'write to ${AGENT_INSERT_EMAIL}')`);
      const r = await c.query("SELECT ssn, notes, ssn AS s2, upper(notes) AS n2 FROM customers WHERE id = 2000");
      assert.deepEqual(r.rows[0], { ssn: "[REDACTED:US_SSN]", notes: "write to [REDACTED:EMAIL]", s2: "[REDACTED:US_SSN]", n2: "WRITE TO [REDACTED:EMAIL]" });
    } finally {
      await c.end();
    }
  });

  test("support sees emails partially and no other PII; dba sees clear values", async () => {
    const s = client(SUPPORT);
    await s.connect();
    try {
      const r = await s.query("SELECT id, email, phone, ssn FROM customers WHERE id <= 3 ORDER BY id");
      for (const [i, row] of r.rows.entries()) {
        const c = customers[i]!;
        assert.equal(row.email, `p***@${c.email.split("@")[1]}`);
        assert.equal(row.phone, "[REDACTED:PHONE]");
        assert.equal(row.ssn, "[REDACTED:US_SSN]");
      }
    } finally {
      await s.end();
    }
    const d = client(DBA, true);
    await d.connect();
    try {
      const r = await d.query(`SELECT id, email, ssn, card_number, notes FROM customers WHERE ssn = '${DBA_WHERE_SSN}' OR email = $1 ORDER BY id`, [DBA_PARAM_EMAIL]);
      assert.deepEqual(
        r.rows.map((x) => [x.id, x.email, x.ssn, x.card_number, x.notes]),
        [customers[2]!, customers[3]!].map((c) => [c.id, c.email, c.ssn, c.card_number, c.notes]),
      );
    } finally {
      await d.end();
    }
  });

  test("the audit store shows what was masked per session, and holds no seeded clear value anywhere", async () => {
    const masked = await stack.waitForAudit(
      `SELECT identity_subject, source, column, entity, strategy, sum(count) AS n FROM gatehouse.masking_events GROUP BY ALL`,
      (rows) => rows.some((r) => r.identity_subject === DBA && r.source === "audit" && r.column === "param") && rows.some((r) => r.identity_subject === SUPPORT),
      30_000,
    );
    const has = (who: string, column: string, entity: string, strategy: string, source = "result") =>
      masked.some((r) => r.identity_subject === who && r.column === column && r.entity === entity && r.strategy === strategy && r.source === source && Number(r.n) > 0);
    assert.ok(has(AGENT, "customers.email", "EMAIL", "redact"), JSON.stringify(masked));
    assert.ok(has(AGENT, "customers.card_number", "CREDIT_CARD", "redact"));
    assert.ok(has(AGENT, "customers.notes", "US_SSN", "redact"));
    assert.ok(has(AGENT, "query_text", "US_SSN", "redact", "audit"), "the agent's INSERT literal was masked in the audit trail");
    assert.ok(has(SUPPORT, "customers.email", "EMAIL", "partial"));
    assert.ok(!masked.some((r) => r.identity_subject === DBA && r.source === "result"), "nothing masked on screen for dba");
    assert.ok(has(DBA, "query_text", "US_SSN", "redact", "audit") && has(DBA, "param", "EMAIL", "redact", "audit"), "dba's literal and parameter masked in audit");
    const perSession = await stack.auditQuery(`SELECT session_id, sum(values_masked) AS n FROM gatehouse.masking_by_session WHERE identity_subject = '${AGENT}' GROUP BY session_id`);
    assert.ok(perSession.length >= 4 && perSession.every((r) => Number(r.n) > 0), JSON.stringify(perSession));

    // Every table of the audit database, every column, and the protobuf bytes kept for verification.
    const tables = await stack.auditQuery("SELECT name FROM system.tables WHERE database = 'gatehouse' AND engine NOT LIKE '%View%'");
    assert.ok(tables.some((t) => t.name === "events"));
    let scanned = 0;
    for (const { name } of tables) {
      const rows = await stack.auditQuery(`SELECT * FROM gatehouse.${String(name)}`);
      scanned += rows.length;
      let text = JSON.stringify(rows);
      for (const r of rows) if (typeof r.event_bytes === "string" && r.event_bytes) text += Buffer.from(r.event_bytes, "base64").toString("latin1");
      for (const v of secrets) assert.ok(!text.includes(v), `audit table ${String(name)} holds the clear value ${v}`);
      for (const v of [DBA_WHERE_SSN, DBA_PARAM_EMAIL]) assert.ok(!text.includes(v), `audit table ${String(name)} holds dba's clear value ${v}`);
    }
    assert.ok(scanned > 20, `scanned ${scanned} audit rows`);
    // The scan reads the right text: what is not confidential stays readable in the audit trail.
    const insert = await stack.auditQuery(`SELECT command_text FROM gatehouse.events WHERE type = 'command' AND identity_subject = '${AGENT}' AND command_text LIKE 'INSERT%'`);
    assert.match(String(insert[0]?.command_text), /VALUES \(2000, 'Inserted', '\[REDACTED:US_SSN\]', 'write to \[REDACTED:EMAIL\]'\)/);
  });
});
