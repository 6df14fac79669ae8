// The batched WebAssembly HMAC gives exactly the scalar path's tokens, and its
// generated module is what the committed generator script produces.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { hashTokenBatch } from "./hash-batch.js";
import { HASH_TOKEN_BYTES, hashToken, hashTokenAsciiBytes } from "./strategy.js";
import type { MaskKey } from "./types.js";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const keyOf = (n: number): MaskKey => ({ id: `k${n}`, secret: randomBytes(n) });
const ascii = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => 33 + ((i * 7 + n) % 94)));

test("the committed WebAssembly module is what scripts/gen-hmac-wasm.mjs generates", () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-wasm-"));
  try {
    const out = join(dir, "gen.ts");
    execFileSync(process.execPath, [join(pkg, "scripts/gen-hmac-wasm.mjs"), out]);
    assert.equal(readFileSync(out, "utf8"), readFileSync(join(pkg, "src/hmac-sha256x4-wasm.ts"), "utf8"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("batched tokens equal the scalar tokens for every length that fits a block, with any key length", () => {
  const batch = hashTokenBatch();
  assert.ok(batch, "WebAssembly SIMD is available in Node 20");
  for (const keyLen of [16, 32, 64, 100]) {
    const key = keyOf(keyLen);
    for (const entity of ["EMAIL", "US_SSN", "X"]) {
      const holes: { dst: Buffer; at: number; value: Buffer }[] = [];
      // Lengths 0..60: the ones past one block (55 bytes with the "<entity>\0" prefix) are refused.
      for (let len = 0; len <= 60; len++) {
        const value = ascii(len);
        const src = Buffer.concat([Buffer.from("xx"), value, Buffer.from("yy")]);
        const dst = Buffer.alloc(HASH_TOKEN_BYTES + 8, 0xee);
        const fits = entity.length + 1 + len <= 55;
        assert.equal(batch.add(key, entity, src, 2, 2 + len, dst, 4), fits, `${entity}, ${len} bytes`);
        if (fits) holes.push({ dst, at: 4, value });
      }
      assert.equal(batch.pending, holes.length);
      batch.settle();
      assert.equal(batch.pending, 0);
      for (const h of holes) {
        assert.deepEqual(h.dst.subarray(h.at, h.at + HASH_TOKEN_BYTES), hashTokenAsciiBytes(h.value, entity, key), `key ${keyLen} bytes, ${entity}, ${h.value.length} bytes`);
        assert.equal(h.dst[h.at - 1], 0xee, "nothing written before the hole");
        assert.equal(h.dst[h.at + HASH_TOKEN_BYTES], 0xee, "nothing written after the hole");
      }
    }
  }
});

test("a value that is not ASCII is refused and leaves the next value's token intact; another key settles the first", () => {
  const batch = hashTokenBatch()!;
  const [k1, k2] = [keyOf(32), keyOf(32)];
  const a = Buffer.alloc(HASH_TOKEN_BYTES);
  const b = Buffer.alloc(HASH_TOKEN_BYTES);
  const c = Buffer.alloc(HASH_TOKEN_BYTES);
  assert.equal(batch.add(k1, "EMAIL", Buffer.from("jö@exämple.org"), 0, 16, a, 0), false);
  assert.equal(batch.add(k1, "EMAIL", Buffer.from("ab"), 0, 2, a, 0), true);
  assert.equal(batch.add(k2, "EMAIL", Buffer.from("ab"), 0, 2, b, 0), true, "a value under another key");
  assert.deepEqual(a.toString("latin1"), hashToken("ab", "EMAIL", k1), "the first key's token was settled before the switch");
  assert.equal(batch.add(k2, "EMAIL", Buffer.from("cd"), 0, 2, c, 0), true);
  batch.settle();
  assert.deepEqual(b.toString("latin1"), hashToken("ab", "EMAIL", k2));
  assert.deepEqual(c.toString("latin1"), hashToken("cd", "EMAIL", k2));
  assert.notEqual(a.toString("latin1"), b.toString("latin1"), "the key is in the token");
});

test("more values than one batch holds settle on their own, in order", () => {
  const batch = hashTokenBatch()!;
  const key = keyOf(32);
  const n = 4096 * 2 + 3;
  const dst = Buffer.alloc(n * HASH_TOKEN_BYTES);
  const values = Array.from({ length: n }, (_, i) => Buffer.from(String(100000000 + i * 7919)));
  values.forEach((v, i) => assert.ok(batch.add(key, "US_SSN", v, 0, v.length, dst, i * HASH_TOKEN_BYTES)));
  assert.ok(batch.pending < 4096, "full batches were settled as they filled");
  batch.settle();
  values.forEach((v, i) => assert.equal(dst.toString("latin1", i * HASH_TOKEN_BYTES, (i + 1) * HASH_TOKEN_BYTES), hashToken(v.toString(), "US_SSN", key), `value ${i}`));
});
