// HMAC-SHA256 (RFC 2104, FIPS 180-4) for the hash strategy's many short values.
//
// Why not node:crypto: createHmac() costs one object and four native calls per
// value, 2-8 µs each time on the 2-core bench machine, which made hashing a
// result column the most expensive masking strategy by far (bench/RESULTS.md,
// masking-gateway). A key's ipad and opad blocks are compressed once here
// (the "midstates"), so a value of up to 55 bytes (with its prefix) costs two
// SHA-256 compressions in JavaScript and no allocation. The output is
// bit-identical to createHmac("sha256", key); masking.test.ts checks that on
// random keys and values of every length class.

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
const BLOCK = 64;

// Scratch space shared by all instances (single-threaded; nothing is kept across calls).
const W = new Int32Array(64);
const state = new Int32Array(8);
let msg = Buffer.allocUnsafe(4096);
const outerBlock = new Uint8Array(BLOCK);

/** One SHA-256 compression of the 64-byte block at b[off..] into st. */
function compress(st: Int32Array, b: Uint8Array, off: number): void {
  const w = W;
  for (let i = 0; i < 16; i++) {
    const j = off + 4 * i;
    w[i] = (b[j]! << 24) | (b[j + 1]! << 16) | (b[j + 2]! << 8) | b[j + 3]!;
  }
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15]!;
    const y = w[i - 2]!;
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
  }
  let a = st[0]!;
  let b1 = st[1]!;
  let c = st[2]!;
  let d = st[3]!;
  let e = st[4]!;
  let f = st[5]!;
  let g = st[6]!;
  let h = st[7]!;
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b1) ^ (a & c) ^ (b1 & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b1;
    b1 = a;
    a = (t1 + t2) | 0;
  }
  st[0] = (st[0]! + a) | 0;
  st[1] = (st[1]! + b1) | 0;
  st[2] = (st[2]! + c) | 0;
  st[3] = (st[3]! + d) | 0;
  st[4] = (st[4]! + e) | 0;
  st[5] = (st[5]! + f) | 0;
  st[6] = (st[6]! + g) | 0;
  st[7] = (st[7]! + h) | 0;
}

/** Pad the message in msg[0..n) (after `before` bytes already compressed) and compress it into st. */
function finish(st: Int32Array, n: number, before: number): void {
  const blocks = Math.ceil((n + 9) / BLOCK);
  const end = blocks * BLOCK;
  if (msg.length < end) {
    const bigger = Buffer.allocUnsafe(Math.max(end, msg.length * 2));
    msg.copy(bigger, 0, 0, n);
    msg = bigger;
  }
  const m = msg;
  m[n] = 0x80;
  for (let i = n + 1; i < end - 8; i++) m[i] = 0;
  // Message length in bits, 64-bit big-endian (values here are far below 2^53 bits).
  const bits = (before + n) * 8;
  const hi = Math.floor(bits / 0x100000000) >>> 0;
  const lo = bits >>> 0;
  m[end - 8] = hi >>> 24;
  m[end - 7] = hi >>> 16;
  m[end - 6] = hi >>> 8;
  m[end - 5] = hi;
  m[end - 4] = lo >>> 24;
  m[end - 3] = lo >>> 16;
  m[end - 2] = lo >>> 8;
  m[end - 1] = lo;
  for (let o = 0; o < end; o += BLOCK) compress(st, m, o);
}

export class HmacSha256 {
  private readonly inner = new Int32Array(8);
  private readonly outer = new Int32Array(8);

  constructor(key: Uint8Array) {
    // Keys longer than a block are hashed first (RFC 2104); ours are 32 bytes.
    let k = key;
    if (k.length > BLOCK) {
      const st = new Int32Array(IV);
      if (msg.length < k.length + BLOCK) msg = Buffer.allocUnsafe(k.length + 2 * BLOCK);
      msg.set(k, 0);
      finish(st, k.length, 0);
      k = digestBytes(st);
    }
    const pad = new Uint8Array(BLOCK);
    for (const [st, x] of [[this.inner, 0x36], [this.outer, 0x5c]] as const) {
      pad.fill(x);
      for (let i = 0; i < k.length; i++) pad[i] = k[i]! ^ x;
      st.set(IV);
      compress(st, pad, 0);
    }
  }

  /**
   * HMAC(key, prefix || utf8(value)) as its 8 big-endian words, in a scratch array
   * that the next call overwrites.
   */
  macWords(prefix: Uint8Array, value: string): Int32Array {
    // UTF-8 needs at most 3 bytes per UTF-16 unit.
    const need = prefix.length + 3 * value.length + 2 * BLOCK;
    if (msg.length < need) msg = Buffer.allocUnsafe(Math.max(need, msg.length * 2));
    msg.set(prefix, 0);
    return this.macMessage(prefix.length + msg.write(value, prefix.length, "utf8"));
  }

  /** macWords() for a value already in bytes. */
  macBytesWords(prefix: Uint8Array, value: Uint8Array): Int32Array {
    const need = prefix.length + value.length + 2 * BLOCK;
    if (msg.length < need) msg = Buffer.allocUnsafe(Math.max(need, msg.length * 2));
    const m = msg;
    let n = 0;
    for (let i = 0; i < prefix.length; i++) m[n++] = prefix[i]!;
    if (value.length > 64) {
      m.set(value, n);
      n += value.length;
    } else for (let i = 0; i < value.length; i++) m[n++] = value[i]!;
    return this.macMessage(n);
  }

  /** The MAC of the n message bytes in msg, as words (the shared `state`). */
  private macMessage(n: number): Int32Array {
    const st = state;
    st.set(this.inner);
    finish(st, n, BLOCK);
    const ob = outerBlock;
    for (let i = 0; i < 8; i++) {
      const v = st[i]!;
      ob[4 * i] = v >>> 24;
      ob[4 * i + 1] = v >>> 16;
      ob[4 * i + 2] = v >>> 8;
      ob[4 * i + 3] = v;
    }
    // The inner digest (32 bytes) after the opad block: one padded block of 96 bytes in all.
    ob[32] = 0x80;
    ob.fill(0, 33, 62);
    ob[62] = (96 * 8) >>> 8;
    ob[63] = (96 * 8) & 0xff;
    st.set(this.outer);
    compress(st, ob, 0);
    return st;
  }

  /** Inner then outer midstate (16 words), for the batched WebAssembly HMAC (hash-batch.ts). */
  midstates(): Int32Array {
    const m = new Int32Array(16);
    m.set(this.inner, 0);
    m.set(this.outer, 8);
    return m;
  }

  /** The whole 32-byte MAC as a new Buffer. */
  mac(prefix: Uint8Array, value: string): Buffer {
    return Buffer.from(digestBytes(this.macWords(prefix, value)));
  }
}

function digestBytes(st: Int32Array): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = (st[i >> 2]! >>> (24 - 8 * (i & 3))) & 0xff;
  return out;
}
