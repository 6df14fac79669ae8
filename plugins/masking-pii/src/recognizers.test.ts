import { test } from "node:test";
import assert from "node:assert/strict";
import { createScanner, generateMaskKey, maskText } from "@gatehouse/masking";
import plugin, { defaultRecognizers, recognizersFromConfig, luhn, isSsn, isE164, isJwt } from "./index.js";

const scanner = createScanner(defaultRecognizers());
const found = (text: string) => scanner.scan(text).map((f) => [f.entity, text.slice(f.start, f.end)]);

test("validators: Luhn, SSN rules, E.164/NANP, JWT header", () => {
  assert.ok(luhn("4111111111111111"));
  assert.ok(!luhn("4111111111111112"));
  assert.ok(isSsn("123-45-6780"));
  for (const bad of ["000-12-3456", "666-12-3456", "912-12-3456", "123-00-4567", "123-45-0000", "078-05-1120", "123-456789"]) {
    assert.ok(!isSsn(bad), bad);
  }
  assert.ok(isE164("+14155552671"));
  assert.ok(!isE164("+11115552671"), "NPA 111 invalid");
  assert.ok(!isE164("+4112"), "too short");
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  assert.ok(isJwt(`${enc({ alg: "HS256" })}.${enc({ sub: "1" })}.${"a".repeat(43)}`));
  assert.ok(!isJwt(`${enc({ typ: "JWT" })}.${enc({ sub: "1" })}.${"a".repeat(43)}`), "no alg");
  assert.ok(isJwt(`${enc({ alg: "none" })}.${enc({ sub: "1" })}.`));
});

test("free text: several entities, near misses left alone", () => {
  const text =
    "Ticket: jane.doe@example.com called (415) 555-2671 re card 4111 1111 1111 1111; order 4111 1111 1111 1112; " +
    "SSN 123-45-6780; invoice 123456789; ip 10.1.2.3 at 12:30:45; iban GB82 WEST 1234 5698 7654 32.";
  assert.deepEqual(found(text), [
    ["EMAIL", "jane.doe@example.com"],
    ["PHONE", "(415) 555-2671"],
    ["CREDIT_CARD", "4111 1111 1111 1111"],
    ["US_SSN", "123-45-6780"],
    ["IP_ADDRESS", "10.1.2.3"],
    ["IBAN", "GB82 WEST 1234 5698 7654 32"],
  ]);
});

test("context words lift weak candidates: bare SSN, 10-digit phone, AWS secret", () => {
  assert.deepEqual(found("ref 123456780"), []);
  assert.deepEqual(found("ssn 123456780"), [["US_SSN", "123456780"]]);
  assert.deepEqual(found("ref 4155552671"), []);
  assert.deepEqual(found("call 4155552671"), [["PHONE", "4155552671"]]);
  const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEK3";
  assert.deepEqual(found(`value ${secret}`), []);
  assert.deepEqual(found(`aws_secret_access_key=${secret}`), [["AWS_SECRET_KEY", secret]]);
  assert.deepEqual(found(`aws_secret_access_key=${"0123456789abcdef".repeat(2)}01234567`), [], "hex digest is not a key");
});

test("tokens and keys", () => {
  const gh = "ghp_" + "A1b2C3d4E5".repeat(3) + "xYz123";
  const pem = `-----BEGIN RSA PRIVATE KEY-----\n${Buffer.concat([Buffer.from([0x30, 0x82]), Buffer.alloc(90, 1)]).toString("base64")}\n-----END RSA PRIVATE KEY-----`;
  const text = `git clone https://${gh}@github.com/o/r\nkey ${pem}\nSTRIPE=sk_live_${"a1B2".repeat(6)} xoxb-1234567890-1234567890-${"a".repeat(24)} AKIAIOSFODNN7EXAMPLQ`;
  assert.deepEqual(
    found(text).map((x) => x[0]),
    ["GITHUB_TOKEN", "PRIVATE_KEY", "STRIPE_KEY", "SLACK_TOKEN", "AWS_ACCESS_KEY"],
  );
  const masked = maskText(text, scanner, () => ({ kind: "redact" }), generateMaskKey()).text;
  assert.ok(!masked.includes(gh) && !masked.includes("sk_live_") && !masked.includes("BEGIN RSA"), masked);
});

test("real-world shapes: CSV fields, JSON-escaped PEM, EAN barcodes, version numbers", () => {
  assert.deepEqual(found("1,4111111111111111,12,2029"), [["CREDIT_CARD", "4111111111111111"]]);
  assert.deepEqual(found("5,123-45-6780,W-2"), [["US_SSN", "123-45-6780"]]);
  const der = Buffer.concat([Buffer.from([0x30, 0x82]), Buffer.alloc(120, 9)]).toString("base64").match(/.{1,64}/g)!.join("\\n");
  const json = `{"private_key":"-----BEGIN PRIVATE KEY-----\\n${der}\\n-----END PRIVATE KEY-----\\n"}`;
  assert.deepEqual(found(json).map((x) => x[0]), ["PRIVATE_KEY"]);
  // EAN-13 4006381333924 (valid EAN check digit) also passes Luhn and starts with 4: only a card with context
  assert.ok(luhn("4006381333924"));
  assert.deepEqual(found("EAN 4006381333924"), []);
  assert.deepEqual(found("visa card 4006381333924"), [["CREDIT_CARD", "4006381333924"]]);
  assert.deepEqual(found("upgraded to version 10.2.0.1 today"), []);
  assert.deepEqual(found("upgraded host 10.2.0.1 today"), [["IP_ADDRESS", "10.2.0.1"]]);
});

test("config: subset of entities, extra context, custom recognizers with a named validator", () => {
  const only = createScanner(recognizersFromConfig({ entities: ["EMAIL"] }));
  assert.deepEqual(only.scan("a@example.com 123-45-6780").map((f) => f.entity), ["EMAIL"]);
  const noIp = createScanner(recognizersFromConfig({ disable: ["IP_ADDRESS"] }));
  assert.deepEqual(noIp.scan("host 10.0.0.1"), []);
  const ctx = createScanner(recognizersFromConfig({ context: { US_SSN: ["member no"] } }));
  assert.equal(ctx.scan("member no 123456780")[0]?.entity, "US_SSN");
  const custom = createScanner(
    plugin.recognizers!({
      entities: [],
      recognizers: [
        { name: "loyalty", entity: "LOYALTY_CARD", pattern: "\\bLC\\d{12}\\b", validator: "luhn", score: 0.4, context: ["loyalty"] },
        { name: "uuid", entity: "DEVICE_ID", pattern: "[0-9a-f-]{36}", validator: "isUUID", score: 0.8 },
      ],
    }),
  );
  // LC + Luhn-valid 12 digits: only with context
  const lc = "LC" + "411111111111".slice(0, 11);
  const valid = [...Array(10).keys()].map((d) => lc + d).find((v) => luhn(v.slice(2)))!;
  assert.deepEqual(custom.scan(`card ${valid}`).filter((f) => f.entity === "LOYALTY_CARD"), []);
  assert.equal(custom.scan(`loyalty ${valid}`).filter((f) => f.entity === "LOYALTY_CARD").length, 1);
  assert.equal(custom.scan("dev 3b241101-e2bb-4255-8caf-4136c566a962").filter((f) => f.entity === "DEVICE_ID").length, 1);
  assert.equal(custom.scan("dev 3b241101-e2bb-4255-8caf-4136c566a96z-").filter((f) => f.entity === "DEVICE_ID").length, 0);
});

test("config errors are specific", () => {
  assert.throws(() => recognizersFromConfig({ recognizers: [{ name: "x", entity: "lower", pattern: "a" }] }), /recognizers\[0\] \(x\): entity must be UPPER_SNAKE_CASE/);
  assert.throws(() => recognizersFromConfig({ recognizers: [{ name: "x", entity: "X", pattern: "(" }] }), /not a valid regular expression/);
  assert.throws(() => recognizersFromConfig({ recognizers: [{ name: "x", entity: "X", pattern: "a*" }] }), /matches the empty string/);
  assert.throws(() => recognizersFromConfig({ recognizers: [{ name: "x", entity: "X", pattern: "a", validator: "nope" }] }), /unknown validator "nope"/);
  assert.throws(() => recognizersFromConfig({ entities: "EMAIL" }), /entities must be a list of strings/);
});

test("hostile input does not crash or hang the scanner", () => {
  const inputs = [
    "a".repeat(200_000),
    "1".repeat(100_000),
    ":".repeat(50_000) + "1",
    "@".repeat(10_000) + "a@b.cc",
    "-----BEGIN PRIVATE KEY-----".repeat(1000),
    "eyJ" + "a".repeat(50_000) + ".b.c",
    "\u0000\uffff\ud800 1.2.3.4",
  ];
  for (const s of inputs) assert.ok(Array.isArray(scanner.scan(s)));
});
