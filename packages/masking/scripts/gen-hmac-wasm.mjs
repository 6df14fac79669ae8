#!/usr/bin/env node
// Generates src/hmac-sha256x4-wasm.ts: a WebAssembly module (SIMD, 4 lanes) that
// computes HMAC-SHA256 of four one-block messages at once from a key's midstates.
// Run: npm run gen:wasm -w @gatehouse/masking (the output is committed; a test
// checks that it matches this script). An argument writes elsewhere.
//
// The module is emitted byte by byte (WebAssembly binary format, SIMD proposal
// as shipped in V8), so no assembler is needed. Exports:
//   memory
//   hmac(mid, inp, out, groups)
//     mid:  16 i32 (little-endian): inner midstate a..h, then outer midstate a..h
//     inp:  groups x 4 blocks of 64 bytes, each already SHA-256 padded
//           (message after the ipad block: prefix, value, 0x80, zeros, bit length)
//     out:  groups x 8 v128: state word k of lanes 0..3 at out + 128*g + 16*k
// One block per message: the caller keeps longer messages on the scalar path.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// Round constants (FIPS 180-4 4.2.2): the first 32 bits of the fractional parts of
// the cube roots of the first 64 primes.
const primes = [];
for (let n = 2; primes.length < 64; n++) if (primes.every((p) => n % p !== 0)) primes.push(n);
const K = primes.map((p) => {
  const r = Math.cbrt(p);
  return Math.floor((r - Math.floor(r)) * 2 ** 32) >>> 0;
});

const u32 = (n) => {
  const out = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const s32 = (n) => {
  const out = [];
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return out.push(b), out;
    out.push(b | 0x80);
  }
};
const str = (s) => [...u32(s.length), ...Buffer.from(s, "utf8")];
const section = (id, body) => [id, ...u32(body.length), ...body];
const vec = (items) => [...u32(items.length), ...items.flat()];

// Instructions.
const code = [];
const op = (...b) => code.push(...b);
const simd = (n, ...imm) => op(0xfd, ...u32(n), ...imm);
const get = (i) => op(0x20, ...u32(i));
const set = (i) => op(0x21, ...u32(i));
const tee = (i) => op(0x22, ...u32(i));
const i32c = (n) => op(0x41, ...s32(n));
const i32load = (offset) => op(0x28, 2, ...u32(offset));
const v128load = (offset) => simd(0x00, 4, ...u32(offset));
const v128store = (offset) => simd(0x0b, 4, ...u32(offset));
const v128splatConst = (n) => simd(0x0c, ...[0, 1, 2, 3].flatMap(() => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]));
const shuffle = (lanes) => simd(0x0d, ...lanes);
const splat = () => simd(0x11);
const or = () => simd(0x50);
const xor = () => simd(0x51);
const bitselect = () => simd(0x52);
const shl = () => simd(0xab);
const shrU = () => simd(0xad);
const add = () => simd(0xae);

// Locals: params mid, inp, out, groups; then v128: state L0..L7, W0..W15, T1, R0..R3.
const MID = 0;
const INP = 1;
const OUT = 2;
const GROUPS = 3;
const L = (j) => 4 + j;
const W = (j) => 12 + j;
const T1 = 28;
const R = (j) => 29 + j;
const V128_LOCALS = 29; // L0..7, W0..15, T1, R0..3

function rotr(x, n) {
  get(x);
  i32c(n);
  shrU();
  get(x);
  i32c(32 - n);
  shl();
  or();
}
function bigSigma(x, a, b, c) {
  rotr(x, a);
  rotr(x, b);
  xor();
  rotr(x, c);
  xor();
}
function smallSigma(x, a, b, c) {
  rotr(x, a);
  rotr(x, b);
  xor();
  get(x);
  i32c(c);
  shrU();
  xor();
}

/** 64 rounds over W0..W15 (the schedule is expanded in place) on state L0..L7. */
function rounds() {
  for (let i = 0; i < 64; i++) {
    const s = (j) => L((j - i + 64) % 8);
    const [a, b, c, d, e, f, g, h] = [0, 1, 2, 3, 4, 5, 6, 7].map(s);
    // t1 = h + Σ1(e) + Ch(e,f,g) + K[i] + W[i]
    get(h);
    bigSigma(e, 6, 11, 25);
    add();
    get(f);
    get(g);
    get(e);
    bitselect();
    add();
    v128splatConst(K[i]);
    add();
    if (i < 16) get(W(i));
    else {
      get(W((i - 16) & 15));
      smallSigma(W((i - 15) & 15), 7, 18, 3);
      add();
      get(W((i - 7) & 15));
      add();
      smallSigma(W((i - 2) & 15), 17, 19, 10);
      add();
      tee(W(i & 15));
    }
    add();
    tee(T1);
    // d += t1
    get(d);
    add();
    set(d);
    // h = t1 + Σ0(a) + Maj(a,b,c); Maj = bitselect(c, b, a ^ b)
    get(T1);
    bigSigma(a, 2, 13, 22);
    add();
    get(c);
    get(b);
    get(a);
    get(b);
    xor();
    bitselect();
    add();
    set(h);
  }
}

/** L_j = splat(mid[base + j]) (the state to start from). */
function loadState(base) {
  for (let j = 0; j < 8; j++) {
    get(MID);
    i32load(4 * (base + j));
    splat();
    set(L(j));
  }
}
/** L_j += splat(mid[base + j]) (the Davies-Meyer feed-forward). */
function addState(base) {
  for (let j = 0; j < 8; j++) {
    get(L(j));
    get(MID);
    i32load(4 * (base + j));
    splat();
    add();
    set(L(j));
  }
}

// Byte shuffles: rows of 4 big-endian words (one row per lane) to columns of native words.
const SWAP_LO = [3, 2, 1, 0, 19, 18, 17, 16, 7, 6, 5, 4, 23, 22, 21, 20];
const SWAP_HI = [11, 10, 9, 8, 27, 26, 25, 24, 15, 14, 13, 12, 31, 30, 29, 28];
const PICK_LO = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
const PICK_HI = [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31];

op(0x02, 0x40); // block
op(0x03, 0x40); // loop
get(GROUPS);
op(0x45); // i32.eqz
op(0x0d, 1); // br_if 1 (out of the block)
for (let q = 0; q < 4; q++) {
  // Words 4q..4q+3 of lanes 0..3.
  const pair = (lane0, mask, into) => {
    get(INP);
    v128load(lane0 * 64 + q * 16);
    get(INP);
    v128load((lane0 + 1) * 64 + q * 16);
    shuffle(mask);
    set(into);
  };
  pair(0, SWAP_LO, R(0));
  pair(0, SWAP_HI, R(1));
  pair(2, SWAP_LO, R(2));
  pair(2, SWAP_HI, R(3));
  const col = (x, y, mask, into) => {
    get(x);
    get(y);
    shuffle(mask);
    set(into);
  };
  col(R(0), R(2), PICK_LO, W(4 * q));
  col(R(0), R(2), PICK_HI, W(4 * q + 1));
  col(R(1), R(3), PICK_LO, W(4 * q + 2));
  col(R(1), R(3), PICK_HI, W(4 * q + 3));
}
// Inner hash: the message block after the ipad midstate.
loadState(0);
rounds();
addState(0);
// Outer hash: the inner digest, padded (96 bytes in all after the opad block).
for (let j = 0; j < 8; j++) {
  get(L(j));
  set(W(j));
}
v128splatConst(0x80000000);
set(W(8));
for (let j = 9; j < 15; j++) {
  v128splatConst(0);
  set(W(j));
}
v128splatConst(96 * 8);
set(W(15));
loadState(8);
rounds();
addState(8);
for (let j = 0; j < 8; j++) {
  get(OUT);
  get(L(j));
  v128store(16 * j);
}
// Next group.
get(INP);
i32c(256);
op(0x6a);
set(INP);
get(OUT);
i32c(128);
op(0x6a);
set(OUT);
get(GROUPS);
i32c(1);
op(0x6b);
set(GROUPS);
op(0x0c, 0); // br 0 (loop)
op(0x0b); // end loop
op(0x0b); // end block
op(0x0b); // end function

const body = [...vec([[...u32(V128_LOCALS), 0x7b]]), ...code];
const I32 = 0x7f;
const mod = [
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32], [I32]]), 0x00]])),
  ...section(3, vec([[0]])),
  // Memory: 16 pages (1 MiB): midstates, 4096 input blocks (256 KiB), their outputs (128 KiB).
  ...section(5, vec([[0x00, ...u32(16)]])),
  ...section(7, vec([[...str("memory"), 0x02, 0], [...str("hmac"), 0x00, 0]])),
  ...section(10, vec([[...u32(body.length), ...body]])),
];

const wasm = Buffer.from(mod);
const here = dirname(fileURLToPath(import.meta.url));
const target = process.argv[2] ?? join(here, "../src/hmac-sha256x4-wasm.ts");
const b64 = wasm.toString("base64");
const lines = b64.match(/.{1,100}/g).map((l) => `  "${l}",`);
writeFileSync(
  target,
  `// Generated by packages/masking/scripts/gen-hmac-wasm.mjs; do not edit.\n// ${wasm.length} bytes: HMAC-SHA256 of 4 one-block messages per call group (WebAssembly SIMD).\nexport const HMAC_SHA256X4_WASM = [\n${lines.join("\n")}\n].join("");\n`,
);
console.log(`wrote ${target} (${wasm.length} bytes of wasm)`);
