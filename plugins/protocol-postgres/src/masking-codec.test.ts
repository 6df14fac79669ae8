// Pure parts of result masking: COPY row splitting and escaping, COPY statement
// analysis, DataRow rewriting of NULLs and lengths, binary re-encoding.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { MaskingRuntime } from "@gatehouse/plugin-sdk";
import { encodeTyped, escapeText, OID, ResultMasker, splitCsv, splitText } from "./masking.js";
import { copySource } from "./masking-session.js";
import { compilePlan } from "./masking-plan.js";
import { T } from "./protocol.js";
import { applyStrategy, generateMaskKey, HASH_TOKEN_BYTES, hashTokenAsciiBytes, hashTokenBatch, partialMaskAsciiBytes } from "@gatehouse/masking";

describe("COPY rows", () => {
  it("csv: quotes, doubled quotes, commas and NULL vs empty string", () => {
    const line = `1,"a,b","say ""hi""",,""`;
    assert.deepEqual(
      splitCsv(line).map((c) => [line.slice(c.start, c.end), c.value]),
      [["1", "1"], [`"a,b"`, "a,b"], [`"say ""hi"""`, `say "hi"`], ["", null], [`""`, ""]],
    );
  });
  it("text: tabs split, \\N is NULL, escapes round-trip", () => {
    const line = "1\\tx\\\\y\\n\t\\N\t";
    assert.deepEqual(splitText(line).map((c) => c.value), ["1\tx\\y\n", null, ""]);
    assert.equal(escapeText("a\tb\\c\nd\re"), "a\\tb\\\\c\\nd\\re");
  });
  it("the query behind a COPY statement and its options", () => {
    assert.deepEqual(copySource(`COPY (SELECT ")" AS x, ')' FROM t WHERE f(a) > 1) TO STDOUT WITH (FORMAT csv, HEADER)`), {
      query: `SELECT ")" AS x, ')' FROM t WHERE f(a) > 1`,
      csv: true,
      header: true,
      custom: false,
    });
    assert.deepEqual(copySource(`copy public.customers (id, email) to stdout`), { query: "SELECT id, email FROM public.customers", csv: false, header: false, custom: false });
    assert.equal(copySource(`COPY t TO STDOUT WITH (DELIMITER ';')`)?.custom, true);
    assert.equal(copySource(`COPY t TO STDOUT CSV HEADER`)?.csv, true);
    assert.equal(copySource(`COPY (SELECT 1 TO STDOUT`), undefined);
  });
});

describe("DataRow rewriting", () => {
  const rt: MaskingRuntime = {
    keyId: "k",
    maskValue: (v, e, s) => (s.kind === "null" ? null : s.kind === "partial" ? v.slice(-2) : `[${e}]`),
    replaceTyped: () => "7",
    maskText: (t) => ({ text: t, actions: [] }),
  };
  const rowDescription = (cols: [string, number, number][]) => {
    const parts = cols.map(([name, type, format]) => {
      const b = Buffer.alloc(name.length + 19);
      b.write(name);
      b.writeUInt32BE(0, name.length + 1);
      b.writeUInt32BE(type, name.length + 7);
      b.writeInt16BE(format, name.length + 17);
      return b;
    });
    const body = Buffer.concat(parts);
    const h = Buffer.alloc(7);
    h[0] = T.RowDescription;
    h.writeInt32BE(body.length + 6, 1);
    h.writeInt16BE(cols.length, 5);
    return Buffer.concat([h, body]);
  };
  const dataRow = (vals: (Buffer | null)[]) => {
    const body = Buffer.concat(vals.map((v) => {
      const l = Buffer.alloc(4);
      l.writeInt32BE(v ? v.length : -1);
      return v ? Buffer.concat([l, v]) : l;
    }));
    const h = Buffer.alloc(7);
    h[0] = T.DataRow;
    h.writeInt32BE(body.length + 6, 1);
    h.writeInt16BE(vals.length, 5);
    return Buffer.concat([h, body]);
  };
  const cells = (f: Buffer) => {
    const out: (string | null)[] = [];
    let pos = 7;
    for (let i = 0; i < f.readInt16BE(5); i++) {
      const len = f.readInt32BE(pos);
      pos += 4;
      out.push(len < 0 ? null : f.toString("hex", pos, pos + len));
      if (len > 0) pos += len;
    }
    assert.equal(pos, f.length, "lengths add up");
    assert.equal(f.readInt32BE(1), f.length - 1, "frame length recomputed");
    return out;
  };
  it("masks by output name, keeps NULLs and other cells byte for byte, re-encodes binary int4", () => {
    const plan = compilePlan({
      columns: [
        { match: { table: "", column: "email", columnPattern: "", tag: "" }, entity: "EMAIL", strategy: { kind: 1, keepLast: 0 }, scan: false },
        { match: { table: "", column: "n", columnPattern: "", tag: "" }, entity: "NUM", strategy: { kind: 3, keepLast: 0 }, scan: false },
        { match: { table: "", column: "gone", columnPattern: "", tag: "" }, entity: "X", strategy: { kind: 4, keepLast: 0 }, scan: false },
      ],
      text: [],
      policyIds: [],
    })!;
    const m = new ResultMasker({ plan, runtime: rt, catalog: undefined, tags: {} });
    m.rewrite(rowDescription([["id", OID.int4, 1], ["email", OID.text, 1], ["n", OID.int4, 1], ["gone", OID.text, 0], ["other", OID.bytea, 1]]));
    const id = Buffer.from([0, 0, 0, 5]);
    const out = m.rewrite(dataRow([id, Buffer.from("a@b.c"), Buffer.from([0, 0, 1, 0]), Buffer.from("x"), Buffer.from([1, 2, 3])]))!;
    assert.deepEqual(cells(out), ["00000005", Buffer.from("[EMAIL]").toString("hex"), "00000007", null, "010203"]);
    const nulls = m.rewrite(dataRow([id, null, null, null, null]))!;
    assert.deepEqual(cells(nulls), ["00000005", null, null, null, null]);
    assert.deepEqual(m.summary().map((c) => [c.column, c.strategy, c.count]), [["email", "redact", 1], ["n", "hash", 1], ["gone", "null", 1]]);
  });
  // Per row (rewrite) and in row runs (rewriteRows, what the session uses past the
  // recording's row limit); hash tokens one by one, and deferred into batches.
  for (const [batched, runs] of [[false, false], [true, false], [true, true], [false, true]] as const) {
    it(`byte-level partial and hash (memo, then ${batched ? "batched tokens" : "one token at a time"}, ${runs ? "row runs" : "row by row"}) give exactly the text path's cells over a long result`, () => {
      const key = generateMaskKey();
      const batch = hashTokenBatch()!;
      let deferred = 0;
      const real: MaskingRuntime = {
        keyId: key.id,
        maskValue: (v, e, s) => applyStrategy(v, e, s.kind === "partial" ? { kind: "partial", keepLast: s.keepLast ?? 4 } : ({ kind: s.kind } as never), key),
        maskValueUtf8: (v, e, s) => (s.kind === "partial" ? partialMaskAsciiBytes(v, e, s.keepLast ?? 4) : s.kind === "hash" ? hashTokenAsciiBytes(v, e, key) : undefined),
        replaceTyped: () => "7",
        maskText: (t) => ({ text: t, actions: [] }),
        ...(batched && {
          hashTokenBytes: HASH_TOKEN_BYTES,
          deferHashToken: (src: Uint8Array, from: number, to: number, e: string, dst: Uint8Array, at: number) => batch.add(key, e, src, from, to, dst, at) && ++deferred > 0,
          settle: () => batch.settle(),
        }),
      };
      const plan = compilePlan({
        columns: [
          { match: { table: "", column: "email", columnPattern: "", tag: "" }, entity: "EMAIL", strategy: { kind: 2, keepLast: 0 }, scan: false },
          { match: { table: "", column: "ssn", columnPattern: "", tag: "" }, entity: "US_SSN", strategy: { kind: 3, keepLast: 0 }, scan: false },
          { match: { table: "", column: "card", columnPattern: "", tag: "" }, entity: "CREDIT_CARD", strategy: { kind: 2, keepLast: 4 }, scan: false },
        ],
        text: [],
        policyIds: [],
      })!;
      const m = new ResultMasker({ plan, runtime: real, catalog: undefined, tags: {} });
      m.rewrite(rowDescription([["email", OID.text, 0], ["ssn", OID.varchar, 1], ["card", OID.text, 0], ["tail", OID.text, 0]]));
      const rows: Buffer[] = [];
      const want: (string | null)[][] = [];
      // More distinct values than the memo holds (4096), a few of them not ASCII or
      // too long for one block of the batch, some NULL.
      for (let i = 0; i < 9000; i++) {
        const email = i % 997 === 0 ? `jö${i}@exämple.org` : `user${i}@example.com`;
        const ssn = i % 1009 === 0 ? `１２３-${i}` : i % 1013 === 0 ? `${"9".repeat(60)}${i}` : i % 1019 === 0 ? null : String(100000000 + i);
        const card = `4111-1111-${String(i).padStart(4, "0")}-1234`;
        const tail = `row ${i}`;
        rows.push(dataRow([Buffer.from(email), ssn === null ? null : Buffer.from(ssn), Buffer.from(card), Buffer.from(tail)]));
        want.push([applyStrategy(email, "EMAIL", { kind: "partial", keepLast: 0 }, key), ssn === null ? null : applyStrategy(ssn, "US_SSN", { kind: "hash" }, key), applyStrategy(card, "CREDIT_CARD", { kind: "partial", keepLast: 4 }, key), tail].map((v) => (v === null ? null : Buffer.from(v).toString("hex"))));
      }
      const sent: Buffer[] = [];
      if (!runs) for (const r of rows) sent.push(m.rewrite(r)!);
      else {
        // Runs of 37 rows from one buffer each; what comes back is split into frames again.
        for (let i = 0; i < rows.length; i += 37) {
          const src = Buffer.concat([Buffer.from("pre"), ...rows.slice(i, i + 37), Buffer.from("post")]);
          m.rewriteRows(src, 3, src.length - 4, (b) => {
            for (let p = 0; p < b.length; p += 1 + b.readInt32BE(p + 1)) sent.push(b.subarray(p, p + 1 + b.readInt32BE(p + 1)));
          });
        }
      }
      real.settle?.();
      if (batched) assert.ok(deferred > 4000, `tokens past the memo were batched (${deferred})`);
      assert.equal(sent.length, rows.length);
      // Checked after all rows were rebuilt: rows carved from shared slabs never overwrite each other.
      sent.forEach((f, i) => assert.deepEqual(cells(f), want[i], `row ${i}`));
      const hashed = m.summary().find((c) => c.column === "ssn");
      assert.equal(hashed?.count, want.filter((w) => w[1] !== null).length, "every hashed value counted once");
    });
  }
  it("binary encodings PostgreSQL would send", () => {
    assert.deepEqual(encodeTyped(OID.date, "2000-01-02", true), Buffer.from([0, 0, 0, 1]));
    assert.deepEqual(encodeTyped(OID.int8, "-1", true), Buffer.alloc(8, 0xff));
    assert.deepEqual(encodeTyped(OID.jsonb, '"x"', true), Buffer.from('\x01"x"'));
    assert.equal(encodeTyped(OID.numeric, "1", true), null, "types the gateway cannot encode become NULL");
    assert.deepEqual(encodeTyped(OID.numeric, "1", false), Buffer.from("1"));
  });
});
