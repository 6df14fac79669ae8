import { test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { createHmac, randomBytes } from "node:crypto";
import { HmacSha256 } from "./hmac-sha256.js";
import {
  applyStrategy,
  base32,
  hmacDigest,
  compileRowMasker,
  createScanner,
  generateMaskKey,
  hashToken,
  hashTokenAsciiBytes,
  matchColumn,
  maskCell,
  maskKeyFromSecret,
  maskText,
  parseStrategy,
  partialMask,
  partialMaskAsciiBytes,
  planFromProto,
  planToProto,
  PgType,
  regexRecognizer,
  resolveOverlaps,
  typePreservingConstant,
  typePreservingReplacement,
  validateColumnRules,
  type ColumnRule,
  type Plan,
  type Recognizer,
} from "./index.js";

const key = generateMaskKey();

test("strategies: redact, partial, hash, null, clear", () => {
  assert.equal(applyStrategy("jane@example.com", "EMAIL", { kind: "redact" }, key), "[REDACTED:EMAIL]");
  assert.equal(applyStrategy("jane@example.com", "EMAIL", { kind: "partial", keepLast: 4 }, key), "j***@example.com");
  assert.equal(applyStrategy("4111-1111-1111-1234", "CREDIT_CARD", { kind: "partial", keepLast: 4 }, key), "****-****-****-1234");
  assert.equal(partialMask("123-45-6789", "US_SSN", 4), "***-**-6789");
  // too short to keep 4 without revealing half of it: all starred
  assert.equal(partialMask("abc123", "SECRET", 4), "******");
  assert.equal(applyStrategy("x", "EMAIL", { kind: "null" }, key), null);
  assert.equal(applyStrategy("x", "EMAIL", { kind: "clear" }, key), "x");
});

test("hash: stable for a key, different across keys and entities, no clear text", () => {
  const secret = Buffer.alloc(32, 7).toString("base64");
  const k1 = maskKeyFromSecret(secret);
  const k1again = maskKeyFromSecret(secret);
  const a = applyStrategy("jane@example.com", "EMAIL", { kind: "hash" }, k1)!;
  assert.match(a, /^tok_[a-z2-7]{26}$/);
  assert.equal(applyStrategy("jane@example.com", "EMAIL", { kind: "hash" }, k1again), a, "same key, new session: same token");
  assert.equal(k1.id, k1again.id);
  assert.notEqual(hashToken("jane@example.com", "EMAIL", generateMaskKey()), a);
  assert.notEqual(hashToken("jane@example.com", "TEXT", k1), a);
  assert.notEqual(hashToken("john@example.com", "EMAIL", k1), a);
  assert.ok(!a.includes("jane"));
});

test("hash: the JavaScript HMAC-SHA256 equals node:crypto's for keys and values of every length class", () => {
  // RFC 4231 test case 2 anchors it independently of node:crypto.
  assert.equal(new HmacSha256(Buffer.from("Jefe")).mac(Buffer.alloc(0), "what do ya want for nothing?").toString("hex"), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const values = ["", "a", "jane@example.com", "ünïcødé ✓ 𝄞", "\u0000x"];
  // Message lengths around the padding boundaries (55/56/64 bytes with the prefix) and several blocks.
  for (let n = 40; n <= 140; n++) values.push("v".repeat(n));
  values.push("x".repeat(5000), "é".repeat(3000));
  for (const keyLen of [16, 32, 64, 65, 100]) {
    const k = { id: "k", secret: randomBytes(keyLen) };
    for (const entity of ["EMAIL", "US_SSN", "CREDIT_CARD"]) {
      for (const v of values) {
        const want = createHmac("sha256", k.secret).update(entity).update("\0").update(v).digest();
        assert.deepEqual(hmacDigest(k, entity, v), want, `key ${keyLen} bytes, ${entity}, value of ${v.length} chars`);
        const token = "tok_" + base32(want.subarray(0, 17)).slice(0, 26);
        assert.equal(hashToken(v, entity, k), token);
        const bytes = hashTokenAsciiBytes(Buffer.from(v, "utf8"), entity, k);
        if (/^[\x00-\x7f]*$/.test(v)) assert.equal(bytes?.toString("latin1"), token);
        else assert.equal(bytes, undefined, "non-ASCII goes to the text path");
      }
    }
  }
});

test("partial: the byte-level ASCII path gives exactly partialMask's bytes", () => {
  const values = ["", "@", "a@", "@b.com", "jane@example.com", "a@b@c.org", "123-45-6789", "4111-1111-1111-1234", "+1 (555) 010-9999", "abc", "ab12", "ab123", "\u0001x\u007f", "  padded  "];
  for (let i = 0; i < 300; i++) values.push(Array.from({ length: i % 40 }, (_, j) => String.fromCharCode(32 + ((i * 31 + j * 17) % 95))).join(""));
  for (const entity of ["EMAIL", "US_SSN", "CREDIT_CARD", "PHONE"]) {
    for (const keep of [0, 1, 2, 4, 6]) {
      for (const v of values) {
        assert.deepEqual(partialMaskAsciiBytes(Buffer.from(v, "latin1"), entity, keep), Buffer.from(partialMask(v, entity, keep), "utf8"), `${entity} keep ${keep}: ${JSON.stringify(v)}`);
      }
    }
  }
  assert.equal(partialMaskAsciiBytes(Buffer.from("jöhn@example.com"), "EMAIL", 4), undefined, "non-ASCII goes to the text path");
});

test("keys: short or malformed secrets are refused with a hint", () => {
  assert.throws(() => maskKeyFromSecret("c2hvcnQ="), /at least 16 bytes.*openssl rand/);
  assert.equal(maskKeyFromSecret("hex:" + "ab".repeat(16)).secret.length, 16);
});

test("parseStrategy accepts the config syntax and explains mistakes", () => {
  assert.deepEqual(parseStrategy("partial:2"), { kind: "partial", keepLast: 2 });
  assert.deepEqual(parseStrategy("partial"), { kind: "partial", keepLast: 4 });
  assert.deepEqual(parseStrategy(" HASH "), { kind: "hash" });
  assert.throws(() => parseStrategy("scramble"), /unknown masking strategy "scramble": use redact/);
  assert.throws(() => parseStrategy("partial:-1"), /whole number/);
});

const digits: Recognizer = regexRecognizer({ name: "t.digits", entity: "NUM", pattern: /\d{4,}/, score: 0.6 });
const card: Recognizer = regexRecognizer({ name: "t.card", entity: "CARD", pattern: /\d{16}/, score: 0.9 });
const weak: Recognizer = regexRecognizer({
  name: "t.weak",
  entity: "ID",
  pattern: /\bID\d{3}\b/,
  score: 0.3,
  context: ["badge"],
  contextBoost: 0.4,
});

test("scanner resolves overlaps (higher score, then longer) and applies minScore/context", () => {
  const s = createScanner([digits, card, weak]);
  const text = "pay 4111111111111111 ref 12345 ID123, badge ID456";
  const f = s.scan(text);
  assert.deepEqual(
    f.map((x) => [x.entity, text.slice(x.start, x.end)]),
    [
      ["CARD", "4111111111111111"],
      ["NUM", "12345"],
      ["ID", "ID123"], // "badge" is within the window after ID123 too
      ["ID", "ID456"],
    ],
  );
  assert.deepEqual(createScanner([weak]).scan("plain ID123 here"), [], "weak without context is below minScore");
  assert.equal(createScanner([weak], { minScore: 0.2 }).scan("plain ID123 here").length, 1);
  const same = resolveOverlaps([
    { entity: "A", start: 0, end: 5, score: 0.8, recognizer: "a" },
    { entity: "B", start: 2, end: 9, score: 0.8, recognizer: "b" },
  ]);
  assert.deepEqual(same.map((x) => x.entity), ["B"], "tie on score: the longer wins");
});

test("a (?<value>) group marks the exact part to mask, even when it repeats earlier", () => {
  const r = regexRecognizer({ name: "kv", entity: "PIN", pattern: /(?<key>\d{4})=(?<value>\d{4})/, score: 0.9 });
  const text = "x 1234=1234";
  assert.deepEqual(r.find(text).map((f) => [f.start, f.end]), [[7, 11]]);
});

test("maskText replaces findings, reports positions in the input, never the values", () => {
  const s = createScanner([digits, card]);
  const text = "card 4111111111111111 and 98765";
  const r = maskText(text, s, (e) => (e === "CARD" ? { kind: "partial", keepLast: 4 } : { kind: "null" }), key);
  assert.equal(r.text, "card ************1111 and [REDACTED:NUM]");
  assert.deepEqual(r.actions, [
    { entity: "CARD", strategy: "partial", start: 5, end: 21 },
    { entity: "NUM", strategy: "null", start: 26, end: 31 },
  ]);
  assert.ok(!JSON.stringify(r.actions).includes("4111"));
  assert.deepEqual(maskText("", s, () => ({ kind: "redact" }), key), { text: "", actions: [] });
});

test("matchColumn: table.column, schema-qualified tables, patterns, tags, first match wins", () => {
  const rules: ColumnRule[] = [
    { match: { table: "public.customers", column: "email" }, entity: "EMAIL", strategy: { kind: "partial", keepLast: 0 } },
    { match: { tag: "secret" }, entity: "SECRET" },
    { match: { columnPattern: "(^|_)ssn$" }, entity: "US_SSN" },
    { match: { table: "customers", column: "notes" }, entity: "TEXT", scan: true },
  ];
  const tags = { "customers.api_token": "secret", password: "SECRET" };
  assert.equal(matchColumn({ table: "customers", column: "email" }, rules, tags)?.entity, "EMAIL");
  assert.equal(matchColumn({ table: "public.customers", column: "EMAIL" }, rules, tags)?.entity, "EMAIL");
  assert.equal(matchColumn({ table: "crm.customers", column: "email" }, rules, tags), undefined, "other schema");
  assert.equal(matchColumn({ table: "orders", column: "email" }, rules, tags), undefined);
  assert.equal(matchColumn({ column: "email" }, rules, tags), undefined, "no table known: a table rule cannot match");
  assert.equal(matchColumn({ table: "customers", column: "api_token" }, rules, tags)?.entity, "SECRET");
  assert.equal(matchColumn({ table: "users", column: "password" }, rules, tags)?.entity, "SECRET");
  assert.equal(matchColumn({ table: "x", column: "customer_ssn" }, rules, tags)?.entity, "US_SSN");
  assert.equal(matchColumn({ table: "x", column: "ssn_hash_v" }, rules, tags), undefined);
  assert.equal(matchColumn({ table: "customers", column: "notes" }, rules, tags)?.scan, true);
  assert.throws(() => validateColumnRules([{ match: { columnPattern: "(" }, entity: "X" }]), /rule #1: columnPattern "\(" is not a valid/);
});

test("plan round-trips through the proto MaskingPlan", () => {
  const plan: Plan = {
    columns: [
      { match: { table: "customers", column: "email" }, entity: "EMAIL", strategy: { kind: "partial", keepLast: 2 } },
      { match: { column: "notes" }, entity: "TEXT", scan: true },
      { match: { tag: "pii" }, entity: "PII" },
    ],
    text: [
      { entity: "*", strategy: { kind: "redact" } },
      { entity: "EMAIL", strategy: { kind: "hash" } },
    ],
    policyIds: ["agents-mask"],
  };
  assert.deepEqual(planFromProto(planToProto(plan)), plan);
  assert.deepEqual(planFromProto(undefined), { columns: [], text: [], policyIds: [] });
});

test("compileRowMasker masks matched columns, scans free text, counts actions, passes others", () => {
  const s = createScanner([regexRecognizer({ name: "e", entity: "EMAIL", pattern: /\b\w+@\w+\.com\b/, score: 0.9 })]);
  const plan: Plan = {
    columns: [
      { match: { table: "customers", column: "email" }, entity: "EMAIL" },
      { match: { column: "ssn" }, entity: "US_SSN", strategy: { kind: "null" } },
      { match: { column: "customer_id" }, entity: "ID", strategy: { kind: "hash" } },
      { match: { column: "notes" }, entity: "TEXT", scan: true },
    ],
    text: [
      { entity: "EMAIL", strategy: { kind: "partial", keepLast: 4 } },
      { entity: "*", strategy: { kind: "redact" } },
    ],
    policyIds: [],
  };
  const cols = [
    { table: "customers", column: "id", typeOid: PgType.int4 },
    { table: "customers", column: "email", typeOid: PgType.text },
    { table: "customers", column: "ssn", typeOid: PgType.varchar },
    { table: "customers", column: "customer_id", typeOid: PgType.int8 },
    { table: "customers", column: "notes", typeOid: PgType.text },
  ];
  const m = compileRowMasker(plan, cols, { scanner: s, key })!;
  assert.deepEqual(m.masked, [false, true, true, true, true]);
  const row = m.maskRow(["1", "ann@example.com", "123-45-6789", "42", "write to bob@mail.com today"]);
  assert.equal(row[0], "1");
  assert.equal(row[1], "a***@example.com");
  assert.equal(row[2], null);
  assert.match(row[3]!, /^\d+$/, "int8 column stays an integer");
  assert.equal(row[3], m.maskCell(3, "42"), "hash replacement is stable");
  assert.equal(row[4], "write to b***@mail.com today");
  assert.deepEqual(m.maskRow(["2", null, null, null, "nothing here"]), ["2", null, null, null, "nothing here"]);
  const counts = m.takeCounts().sort((a, b) => a.column - b.column);
  assert.deepEqual(
    counts.map((c) => [c.column, c.entity, c.strategy, c.count]),
    [
      [1, "EMAIL", "partial", 1],
      [2, "US_SSN", "null", 1],
      [3, "ID", "hash", 2],
      [4, "EMAIL", "partial", 1],
    ],
  );
  assert.deepEqual(m.takeCounts(), [], "counts reset after take");
  assert.equal(compileRowMasker(plan, [{ table: "orders", column: "total", typeOid: PgType.numeric }], { scanner: s, key }), null);
  // a scanned column that is not text: a finding turns the whole value into the type's constant
  const inet = compileRowMasker(
    { columns: [{ match: { column: "src" }, entity: "TEXT", scan: true }], text: [], policyIds: [] },
    [{ column: "src", typeOid: PgType.inet }],
    { scanner: createScanner([regexRecognizer({ name: "ip", entity: "IP", pattern: /\d+\.\d+\.\d+\.\d+/, score: 0.9 })]), key },
  )!;
  assert.deepEqual(inet.maskRow(["10.1.2.3/32"]), ["0.0.0.0"]);
});

test("maskCell: non-text columns: hash stays stable and distinct, redact reveals not even equality", () => {
  const h1 = maskCell("1001", PgType.int4, "ID", { kind: "hash" }, key);
  assert.equal(maskCell("1001", PgType.int4, "ID", { kind: "hash" }, key), h1);
  assert.notEqual(maskCell("1002", PgType.int4, "ID", { kind: "hash" }, key), h1);
  assert.equal(maskCell("1001", PgType.int4, "ID", { kind: "redact" }, key), "0");
  assert.equal(maskCell("1002", PgType.int4, "ID", { kind: "partial", keepLast: 2 }, key), "0");
  assert.equal(maskCell("2020-02-02", PgType.date, "DOB", { kind: "redact" }, key), "1970-01-01");
  assert.equal(maskCell("2020-02-02", PgType.date, "DOB", { kind: "null" }, key), null);
});

test("maskCell: json columns get JSON, bool gets NULL, clear passes through", () => {
  assert.equal(maskCell("\"a@b.com\"", PgType.jsonb, "EMAIL", { kind: "redact" }, key), '"[REDACTED:EMAIL]"');
  assert.equal(maskCell("t", PgType.bool, "FLAG", { kind: "redact" }, key), null);
  assert.equal(maskCell("x", PgType.int4, "N", { kind: "clear" }, key), "x");
});

// Every type-preserving replacement must be accepted by PostgreSQL's input function for
// its type: checked against the real server.
test("typePreservingReplacement output parses in PostgreSQL for its type", async (t) => {
  const client = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "test" });
  try {
    await client.connect();
  } catch (e) {
    t.skip(`PostgreSQL at 127.0.0.1:5432 not reachable: ${(e as Error).message}`);
    return;
  }
  try {
    const types: [number, string][] = [
      [PgType.int2, "int2"],
      [PgType.int4, "int4"],
      [PgType.int8, "int8"],
      [PgType.numeric, "numeric"],
      [PgType.float4, "float4"],
      [PgType.float8, "float8"],
      [PgType.money, "money"],
      [PgType.date, "date"],
      [PgType.timestamp, "timestamp"],
      [PgType.timestamptz, "timestamptz"],
      [PgType.time, "time"],
      [PgType.timetz, "timetz"],
      [PgType.interval, "interval"],
      [PgType.uuid, "uuid"],
      [PgType.inet, "inet"],
      [PgType.cidr, "cidr"],
      [PgType.macaddr, "macaddr"],
      [PgType.bytea, "bytea"],
      [PgType.json, "json"],
      [PgType.jsonb, "jsonb"],
      [PgType.text, "text"],
      [PgType.varchar, "varchar"],
      [PgType.bpchar, "bpchar"],
      [PgType.char, '"char"'],
      [PgType.name, "name"],
    ];
    for (const [oid, name] of types) {
      for (const value of ["123-45-6789", "jane@example.com", "x"]) {
        for (const rep of [typePreservingReplacement(oid, "US_SSN", value, key), typePreservingConstant(oid, "US_SSN")]) {
          assert.notEqual(rep, null, `${name} has a replacement`);
          const r = await client.query(`SELECT $1::${name} AS v, pg_typeof($1::${name})::text AS t`, [rep]);
          assert.equal(r.rowCount, 1, `${name} accepts ${rep}`);
          if (value.length > 3) assert.ok(!String(rep).includes(value), `${name} replacement does not contain the value`);
        }
      }
    }
    assert.equal(typePreservingReplacement(PgType.bool, "X", "t", key), null);
    assert.equal(typePreservingReplacement(999999, "X", "t", key), null, "unknown type: NULL, never the value");
  } finally {
    await client.end();
  }
});
