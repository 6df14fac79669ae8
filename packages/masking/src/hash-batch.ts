// Hash tokens of many cells computed together: a result row is assembled with a
// token-sized hole, the cell's bytes go into a batch, and settle() computes the
// batch four messages at a time with WebAssembly SIMD (hmac-sha256x4-wasm.ts) and
// writes each token into its hole. The scalar JavaScript HMAC costs ~1 µs per
// value; the batch ~0.16 µs (docs/decisions.md, "hash tokens in batches").
//
// Whoever defers a token must call settle() before the bytes around the hole are
// read or sent (the PostgreSQL listener does it before every client write and
// before recording a row). The batch settles by itself when it is full or when a
// value for another key arrives, so a hole is never filled with another key's MAC.
import { endianness } from "node:os";
import { HMAC_SHA256X4_WASM } from "./hmac-sha256x4-wasm.js";
import { HASH_TOKEN_BYTES, macForKey, prefixFor, tokenFromWords } from "./strategy.js";
import type { EntityType, MaskKey } from "./types.js";

const CAPACITY = 4096; // messages per settle (the module's memory holds this many blocks)
const MID = 0; // 16 i32: inner then outer midstate
const INP = 1024;
const OUT = INP + CAPACITY * 64;
const ONE_BLOCK = 55; // message bytes that fit one padded block

// The members of the WebAssembly global used here (the project's lib has no DOM types).
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module, imports: object);
    readonly exports: unknown;
  }
}

interface Wasm {
  hmac(mid: number, inp: number, out: number, groups: number): void;
  memory: { readonly buffer: ArrayBuffer };
}

export class HashTokenBatch {
  private readonly wasm: Wasm;
  private readonly u8: Uint8Array;
  private readonly i32: Int32Array;
  private n = 0;
  /** The key of the queued values, and its midstates (inner, outer) for the module. */
  private key: MaskKey | undefined;
  private mid: Int32Array = new Int32Array(16);
  private readonly dsts: (Uint8Array | undefined)[] = new Array(CAPACITY);
  private readonly ats = new Int32Array(CAPACITY);

  constructor() {
    const mod = new WebAssembly.Module(Buffer.from(HMAC_SHA256X4_WASM, "base64"));
    this.wasm = new WebAssembly.Instance(mod, {}).exports as unknown as Wasm;
    // The memory never grows, so these views stay valid.
    this.u8 = new Uint8Array(this.wasm.memory.buffer);
    this.i32 = new Int32Array(this.wasm.memory.buffer);
  }

  /** Tokens waiting for settle(). */
  get pending(): number {
    return this.n;
  }

  /**
   * Queue the token of the ASCII value src[from..to) for dst[at..at+HASH_TOKEN_BYTES).
   * False (nothing queued) when the value is not ASCII or too long for one block:
   * the caller then computes the token itself (hashToken/hashTokenAsciiBytes).
   */
  add(key: MaskKey, entity: EntityType, src: Uint8Array, from: number, to: number, dst: Uint8Array, at: number): boolean {
    const prefix = prefixFor(entity);
    const len = prefix.length + (to - from);
    if (len > ONE_BLOCK) return false;
    if (this.key !== key) {
      this.settle();
      this.key = key;
      this.mid = macForKey(key).midstates();
    }
    const u8 = this.u8;
    const base = INP + this.n * 64;
    let o = base;
    for (let i = 0; i < prefix.length; i++) u8[o++] = prefix[i]!;
    for (let i = from; i < to; i++) {
      const b = src[i]!;
      if (b > 127) {
        u8.fill(0, base, o); // the block area stays zeroed for the next value
        return false;
      }
      u8[o++] = b;
    }
    // SHA-256 padding; the zeros are there already. Length counts the ipad block.
    u8[o] = 0x80;
    const bits = (64 + len) * 8;
    u8[base + 62] = bits >>> 8;
    u8[base + 63] = bits & 0xff;
    this.dsts[this.n] = dst;
    this.ats[this.n] = at;
    if (++this.n === CAPACITY) this.settle();
    return true;
  }

  /** Compute every queued token and write it into its hole. */
  settle(): void {
    const n = this.n;
    if (n === 0) return;
    this.n = 0;
    const groups = (n + 3) >> 2;
    this.i32.set(this.mid, MID >> 2);
    this.wasm.hmac(MID, INP, OUT, groups);
    const i32 = this.i32;
    for (let j = 0; j < n; j++) {
      // Lane j&3 of group j>>2: state word k at OUT + 128*group + 16*k + 4*lane.
      tokenFromWords(i32, (OUT >> 2) + (j >> 2) * 32 + (j & 3), 4, this.dsts[j]!, this.ats[j]!);
      this.dsts[j] = undefined;
    }
    this.u8.fill(0, INP, INP + groups * 256);
  }
}

let shared: HashTokenBatch | undefined | null;

/**
 * The process's batch, or undefined where WebAssembly SIMD is unavailable or the
 * host is big-endian (the layout above assumes little-endian typed arrays).
 */
export function hashTokenBatch(): HashTokenBatch | undefined {
  if (shared === undefined) {
    try {
      shared = endianness() === "LE" ? new HashTokenBatch() : null;
    } catch {
      shared = null;
    }
  }
  return shared ?? undefined;
}
