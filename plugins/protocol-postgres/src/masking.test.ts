// Result rewriting through the real plugin and real PostgreSQL with real clients
// (psql, node-postgres in text and binary mode, postgres.js): masked values,
// types and column counts kept, NULLs, aliases and computed columns, several
// statements, COPY TO STDOUT, portals with a row limit, wide rows, and masking
// evidence without clear values. The masking runtime here is a small stand-in
// (the recognizers live in @gatehouse/masking and are tested there).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import { Decision, MaskingPlan, MaskStrategyKind, type Command, type Connection, type Identity } from "@gatehouse/proto";
import type { DecisionResult, MaskingRuntime, MaskStrategy } from "@gatehouse/plugin-sdk";
import { classifySql, initSql } from "@gatehouse/sql";
import { FakeGateway, startTestListener, eventually, type TestListener } from "./testing/fake-gateway.js";
import { direct, pgClient, postgresJs, psql, scratch } from "./testing/clients.js";

function fakeValue(value: string, entity: string, s: MaskStrategy): string | null {
  switch (s.kind) {
    case "redact":
      return `[REDACTED:${entity}]`;
    case "partial":
      return "*".repeat(Math.max(0, value.length - (s.keepLast ?? 4))) + value.slice(-(s.keepLast ?? 4));
    case "hash":
      return "tok_" + createHash("sha256").update(entity + "\0" + value).digest("hex").slice(0, 12);
    case "null":
      return null;
    case "clear":
      return value;
  }
}

const FINDERS: [RegExp, string][] = [
  // Bounded local part: an unbounded one is quadratic on a long run of letters without "@".
  [/[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,24}/g, "EMAIL"],
  [/\b\d{3}-\d{2}-\d{4}\b/g, "US_SSN"],
];

const fakeRuntime: MaskingRuntime = {
  keyId: "test-key",
  maskValue: fakeValue,
  replaceTyped(typeOid, _entity, value) {
    const h = createHash("sha256").update(value).digest();
    if (typeOid === 23 || typeOid === 21) return String(h.readUInt16BE(0));
    if (typeOid === 20) return String(h.readUInt32BE(0));
    if (typeOid === 1082) return "1999-12-31";
    if (typeOid === 2950) return "00000000-0000-8000-8000-000000000000";
    return null;
  },
  maskText(text, strategyFor) {
    const actions: { entity: string; strategy: MaskStrategy["kind"] }[] = [];
    let out = text;
    for (const [re, entity] of FINDERS) {
      out = out.replace(re, (m) => {
        const s = strategyFor(entity);
        actions.push({ entity, strategy: s.kind });
        return s.kind === "clear" ? m : (fakeValue(m, entity, s) ?? `[REDACTED:${entity}]`);
      });
    }
    return { text: out, actions };
  },
};

const S = (kind: MaskStrategyKind, keepLast = 0) => ({ kind, keepLast });

class MaskingGateway extends FakeGateway {
  masking: MaskingRuntime | undefined = fakeRuntime;
  plan: MaskingPlan | undefined;
  override async decide(identity: Identity, connection: Connection, command: Command): Promise<DecisionResult> {
    // The real classification (COPY flags matter here), not the fake gateway's keyword split.
    if (command.statements.length === 0) command.statements = classifySql(command.text).statements;
    const d = await super.decide(identity, connection, command);
    return { decision: Decision.fromPartial({ ...d.decision, masking: this.plan }), decidedBy: d.decidedBy };
  }
}

describe("masking query results in the postgres plugin", () => {
  let t: TestListener;
  let gw: MaskingGateway;
  const table = scratch("mask");
  const SSN = "219-09-9999";
  const EMAIL = "ada.lovelace@example.com";
  const NOTE_EMAIL = "grace.hopper@example.org";
  const clearValues = [SSN, EMAIL, NOTE_EMAIL, "4111111111111111", "98765"];

  before(async () => {
    await initSql();
    gw = new MaskingGateway();
    t = await startTestListener({}, gw);
    await direct(
      `CREATE TABLE ${table} (id int primary key, name text, email text, ssn varchar(11), card text, salary int4, born date, uid uuid, doc jsonb, notes text)`,
    );
    await direct(
      `INSERT INTO ${table} VALUES
        (1, 'Ada', '${EMAIL}', '${SSN}', '4111111111111111', 98765, '1815-12-10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k":"v"}', 'call ${NOTE_EMAIL} about it'),
        (2, 'Null', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
    );
    gw.plan = MaskingPlan.fromPartial({
      columns: [
        { match: { table, column: "email" }, entity: "EMAIL", strategy: S(MaskStrategyKind.MASK_STRATEGY_KIND_REDACT) },
        { match: { table, column: "ssn" }, entity: "US_SSN", strategy: S(MaskStrategyKind.MASK_STRATEGY_KIND_PARTIAL, 4) },
        { match: { table, column: "card" }, entity: "CREDIT_CARD", strategy: S(MaskStrategyKind.MASK_STRATEGY_KIND_HASH) },
        { match: { table, column: "salary" }, entity: "SALARY", strategy: S(MaskStrategyKind.MASK_STRATEGY_KIND_HASH) },
        { match: { table, column: "born" }, entity: "DATE_OF_BIRTH", strategy: S(MaskStrategyKind.MASK_STRATEGY_KIND_REDACT) },
        { match: { table, column: "uid" }, entity: "ID", strategy: S(MaskStrategyKind.MASK_STRATEGY_KIND_HASH) },
        { match: { table, column: "doc" }, entity: "DOC", strategy: S(MaskStrategyKind.MASK_STRATEGY_KIND_REDACT) },
        { match: { table, column: "notes" }, entity: "NOTES", scan: true },
      ],
      text: [{ entity: "*", strategy: S(MaskStrategyKind.MASK_STRATEGY_KIND_REDACT) }],
      policyIds: ["test-mask"],
    });
  });
  after(async () => {
    await direct(`DROP TABLE IF EXISTS ${table}`);
    await t.stop();
  });

  const expectRow1 = (r: Record<string, unknown>) => {
    assert.equal(r.name, "Ada");
    assert.equal(r.email, "[REDACTED:EMAIL]");
    assert.equal(r.ssn, "*******9999");
    assert.match(String(r.card), /^tok_[0-9a-f]{12}$/);
    assert.notEqual(r.salary, 98765);
    assert.equal(typeof r.salary, "number");
    assert.ok(r.born instanceof Date, `born decodes as a Date: ${String(r.born)}`);
    assert.equal((r.born as Date).getFullYear(), 1999);
    assert.equal(r.uid, "00000000-0000-8000-8000-000000000000");
    assert.equal(r.doc, "[REDACTED:DOC]");
    assert.equal(r.notes, "call [REDACTED:EMAIL] about it");
  };

  it("psql (text format): values masked, other columns and NULLs unchanged", async () => {
    const r = await psql(t.port, ["-F", "|", "-c", `SELECT id, name, email, ssn, salary, notes FROM ${table} ORDER BY id`]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 2);
    const [id, name, email, ssn, salary, notes] = lines[0]!.split("|");
    assert.deepEqual([id, name, email, ssn, notes], ["1", "Ada", "[REDACTED:EMAIL]", "*******9999", "call [REDACTED:EMAIL] about it"]);
    assert.match(salary!, /^\d+$/);
    assert.notEqual(salary, "98765");
    assert.equal(lines[1], "2|Null||||", "NULLs stay NULL");
    for (const v of clearValues) assert.ok(!r.stdout.includes(v), `psql output has no ${v}`);
  });

  it("node-postgres in text mode and in binary mode decode the masked values with the right types", async () => {
    for (const binary of [false, true]) {
      const c = pgClient(t.port, { binary } as Record<string, unknown>);
      await c.connect();
      try {
        const r = await c.query(`SELECT * FROM ${table} WHERE id = $1`, [1]);
        assert.equal(r.fields.length, 10, "column count unchanged");
        assert.equal(r.fields.find((f) => f.name === "salary")!.dataTypeID, 23, "types unchanged");
        if (binary) assert.ok(r.fields.every((f) => f.format === "binary"), "binary result format kept");
        if (binary) {
          // node-postgres has no binary date/uuid/jsonb parsers: compare with PostgreSQL's own binary forms.
          const d = await c.query(`SELECT $1::date AS born, $2::uuid AS uid, $3::jsonb AS doc`, ["1999-12-31", "00000000-0000-8000-8000-000000000000", '"[REDACTED:DOC]"']);
          assert.deepEqual(r.rows[0].born, d.rows[0].born);
          assert.deepEqual(r.rows[0].uid, d.rows[0].uid);
          assert.deepEqual(r.rows[0].doc, d.rows[0].doc);
          r.rows[0].doc = "[REDACTED:DOC]";
          r.rows[0].born = new Date(1999, 11, 31);
          r.rows[0].uid = "00000000-0000-8000-8000-000000000000";
        }
        expectRow1(r.rows[0]);
        const n = await c.query(`SELECT * FROM ${table} WHERE id = 2`);
        assert.equal(n.rows[0].email, null);
        assert.equal(n.rows[0].salary, null);
      } finally {
        await c.end();
      }
    }
  });

  it("postgres.js: masked rows, and a cursor (Execute with a row limit, PortalSuspended) masks every batch", async () => {
    const sql = postgresJs(t.port);
    try {
      const [row] = await sql.unsafe(`SELECT * FROM ${table} WHERE id = 1`);
      expectRow1(row as Record<string, unknown>);
      const seen: string[] = [];
      for await (const rows of sql.unsafe(`SELECT email, ssn FROM ${table} CROSS JOIN generate_series(1, 5) ORDER BY id`).cursor(2)) {
        for (const r of rows) seen.push(String(r.email));
      }
      assert.equal(seen.length, 10);
      assert.deepEqual([...new Set(seen)].sort(), ["[REDACTED:EMAIL]", "null"]);
    } finally {
      await sql.end();
    }
  });

  it("aliases, subqueries and computed columns do not escape the plan", async () => {
    const r = await psql(t.port, [
      "-F",
      "|",
      "-c",
      `SELECT email AS contact, s.x, lower(email) AS low, email || '' AS cat, '${SSN}' AS lit FROM ${table} JOIN (SELECT id, ssn AS x FROM ${table}) s USING (id) WHERE id = 1`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "[REDACTED:EMAIL]|*******9999|[REDACTED:EMAIL]|[REDACTED:EMAIL]|[REDACTED:US_SSN]");
  });

  it("a multi-statement query masks every result set by its own columns", async () => {
    const r = await psql(t.port, ["-c", `SELECT email FROM ${table} WHERE id = 1; SELECT id, name FROM ${table} WHERE id = 1; SELECT ssn FROM ${table} WHERE id = 1`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["[REDACTED:EMAIL]", "1|Ada", "*******9999"]);
  });

  it("COPY TO STDOUT (text and csv) is masked column by column; what cannot be split is refused", async () => {
    const sql = postgresJs(t.port);
    const copyOut = async (q: string) => {
      const readable = await sql.unsafe(q).readable();
      const chunks: Buffer[] = [];
      await pipeline(readable, new Writable({ write: (c, _e, cb) => (chunks.push(c), cb()) }));
      return Buffer.concat(chunks).toString();
    };
    try {
      assert.equal(
        await copyOut(`COPY (SELECT id, email, ssn, notes FROM ${table} ORDER BY id) TO STDOUT`),
        "1\t[REDACTED:EMAIL]\t*******9999\tcall [REDACTED:EMAIL] about it\n2\t\\N\t\\N\t\\N\n",
      );
      assert.equal(
        await copyOut(`COPY ${table} (id, email, ssn) TO STDOUT WITH (FORMAT csv, HEADER)`),
        `id,email,ssn\n1,"[REDACTED:EMAIL]","*******9999"\n2,,\n`,
      );
      // No masked column: custom options are fine.
      assert.equal(await copyOut(`COPY (SELECT id, name FROM ${table} ORDER BY id) TO STDOUT WITH (DELIMITER ';')`), "1;Ada\n2;Null\n");
    } finally {
      await sql.end();
    }
    for (const q of [`COPY ${table} TO STDOUT WITH (FORMAT binary)`, `COPY (SELECT email FROM ${table}) TO STDOUT WITH (DELIMITER ';')`]) {
      const r = await psql(t.port, ["-c", q, "-c", "SELECT 1"]);
      assert.notEqual(r.code, 0, q);
      assert.match(r.stderr, /ERROR:  gatehouse: (binary COPY TO cannot be masked|COPY with DELIMITER)/, q);
      for (const v of clearValues) assert.ok(!r.stdout.includes(v), `${q}: no ${v}`);
    }
  });

  it("large and very wide results stream through masked", async () => {
    const c = pgClient(t.port);
    await c.connect();
    try {
      const wide = await c.query(`SELECT email, repeat('x', 4000000) || ' ${NOTE_EMAIL}' AS notes FROM ${table} WHERE id = 1`);
      assert.equal(wide.rows[0].email, "[REDACTED:EMAIL]");
      assert.ok(wide.rows[0].notes.endsWith(" [REDACTED:EMAIL]"));
      const many = await c.query(`SELECT t.email, g FROM ${table} t CROSS JOIN generate_series(1, 50000) g WHERE t.id = 1`);
      assert.equal(many.rows.length, 50000);
      assert.ok(many.rows.every((r) => r.email === "[REDACTED:EMAIL]"));
    } finally {
      await c.end();
    }
  });

  it("without a plan the values arrive in clear", async () => {
    const saved = gw.plan;
    gw.plan = undefined;
    try {
      const r = await psql(t.port, ["-c", `SELECT email FROM ${table} WHERE id = 1`]);
      assert.equal(r.stdout.trim(), EMAIL);
    } finally {
      gw.plan = saved;
    }
  });

  it("a plan without a masking runtime refuses the statement (fail closed)", async () => {
    const saved = gw.plan;
    gw.plan = MaskingPlan.fromPartial({ columns: [{ match: { column: "email" }, entity: "EMAIL", strategy: S(MaskStrategyKind.MASK_STRATEGY_KIND_REDACT) }] });
    gw.masking = undefined;
    try {
      const r = await psql(t.port, ["-c", `SELECT email FROM ${table} WHERE id = 1`]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /masking unavailable/);
      assert.ok(!r.stdout.includes(EMAIL));
    } finally {
      gw.masking = fakeRuntime;
      gw.plan = saved;
    }
  });

  it("records masking evidence per column, and no audit event holds a clear value", async () => {
    const r = await psql(t.port, ["-c", `SELECT email, notes FROM ${table} WHERE ssn = '${SSN}' OR email = '${EMAIL}'`]);
    assert.equal(r.code, 0, r.stderr);
    const c = pgClient(t.port);
    await c.connect();
    await c.query(`SELECT id FROM ${table} WHERE ssn = $1`, [SSN]);
    // A Buffer goes as a binary-format parameter (shown as \x hex in audit): decoded and scanned too.
    await c.query(`SELECT length($1::bytea) AS n`, [Buffer.from(`mail ${EMAIL}`)]);
    await c.end();
    const masked = await eventually(() => {
      const m = gw.ofKind("masking").map((b) => b.masking);
      return m.some((x) => x.source === "audit" && x.column === "param") ? m : undefined;
    }, "masking events");
    const result = masked.filter((m) => m.source === "result");
    assert.ok(result.some((m) => m.column === `${table}.email` && m.entity === "EMAIL" && m.strategy === "redact" && m.count >= 1), JSON.stringify(result));
    assert.ok(result.some((m) => m.column === `${table}.notes` && m.entity === "EMAIL" && m.position === 1));
    assert.ok(masked.some((m) => m.source === "audit" && m.column === "query_text" && m.entity === "US_SSN"));
    const all = JSON.stringify(gw.events);
    for (const v of [SSN, EMAIL, NOTE_EMAIL]) assert.ok(!all.includes(v), `no audit event contains ${v}`);
    for (const v of [EMAIL]) assert.ok(!all.includes(Buffer.from(v).toString("hex")), `no audit event contains ${v} as hex`);
    assert.ok(gw.commands("length($1::bytea)")[0]?.params[0]?.text === "mail [REDACTED:EMAIL]");
    const cmd = gw.commands("WHERE ssn =").find((x) => x.text.includes("[REDACTED:US_SSN]"));
    assert.ok(cmd, "the query text in the command event is masked");
  });
});
