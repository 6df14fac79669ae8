import { HmacSha256 } from "./hmac-sha256.js";
import type { EntityType, MaskKey, Strategy } from "./types.js";

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** RFC 4648 base32 (lower case, no padding). */
export function base32(buf: Uint8Array): string {
  let out = "";
  let bits = 0;
  let acc = 0;
  for (const b of buf) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(acc << (5 - bits)) & 31];
  return out;
}

// Midstates per key secret, and the "<entity>\0" prefix bytes per entity.
const macs = new WeakMap<Buffer, HmacSha256>();
const prefixes = new Map<string, Buffer>();

/** The HMAC of a key with its midstates computed (one per key secret). */
export function macForKey(key: MaskKey): HmacSha256 {
  let m = macs.get(key.secret);
  if (!m) macs.set(key.secret, (m = new HmacSha256(key.secret)));
  return m;
}

/** The bytes "<entity>\0" a hash token's MAC covers before the value. */
export function prefixFor(entity: EntityType): Buffer {
  let p = prefixes.get(entity);
  if (!p) prefixes.set(entity, (p = Buffer.from(entity + "\0", "utf8")));
  return p;
}

/** HMAC-SHA256(key, entity || 0x00 || value). The entity is bound in so equal strings of
 *  different kinds do not collide, while the same email in two tables still joins. */
export function hmacDigest(key: MaskKey, entity: EntityType, value: string): Buffer {
  return macForKey(key).mac(prefixFor(entity), value);
}

/** Length in bytes of a hash token. */
export const HASH_TOKEN_BYTES = 30;
const tokenChars = Buffer.alloc(HASH_TOKEN_BYTES);
const BASE32_CODES = Buffer.from(BASE32, "latin1");

/** Stable token: "tok_" + 26 base32 chars (130 bits of the HMAC). */
export function hashToken(value: string, entity: EntityType, key: MaskKey): string {
  tokenFromWords(macForKey(key).macWords(prefixFor(entity), value), 0, 1, tokenChars, 0);
  return tokenChars.toString("latin1");
}

/**
 * hashToken() of an ASCII value given as bytes, as the token's ASCII bytes (the
 * same token as hashToken on the decoded text); undefined when a byte is not
 * ASCII, where the caller decodes and uses hashToken.
 */
export function hashTokenAsciiBytes(raw: Uint8Array, entity: EntityType, key: MaskKey): Buffer | undefined {
  for (let i = 0; i < raw.length; i++) if (raw[i]! > 127) return undefined;
  const out = Buffer.allocUnsafe(HASH_TOKEN_BYTES);
  tokenFromWords(macForKey(key).macBytesWords(prefixFor(entity), raw), 0, 1, out, 0);
  return out;
}

/**
 * "tok_" + base32 of the first 130 bits of a MAC given as big-endian words
 * (words[first], words[first + stride], ...), 5 bits per character, most
 * significant first, at out[at..].
 */
export function tokenFromWords(words: Int32Array, first: number, stride: number, out: Uint8Array, at: number): void {
  out[at] = 116; // t
  out[at + 1] = 111; // o
  out[at + 2] = 107; // k
  out[at + 3] = 95; // _
  for (let i = 0; i < 26; i++) {
    const bit = 5 * i;
    const w = first + stride * (bit >> 5);
    const off = bit & 31;
    const hi = words[w]!;
    // The 5 bits at `off` from the word's top, borrowing from the next word past bit 27.
    const v = off <= 27 ? hi >>> (27 - off) : (hi << (off - 27)) | (words[w + stride]! >>> (59 - off));
    out[at + 4 + i] = BASE32_CODES[v & 31]!;
  }
}

export function redactLabel(entity: EntityType): string {
  return `[REDACTED:${entity}]`;
}

/**
 * Partial view. EMAIL: first character of the local part, "***", then "@domain"
 * ("j***@example.com"); keepLast is ignored because the domain is the useful part.
 * Anything else: every letter/digit except the last `keepLast` becomes "*", separators
 * stay ("4111-1111-1111-1234" -> "****-****-****-1234"). Values with fewer than
 * 2*keepLast letters/digits are fully starred so short secrets do not leak.
 */
export function partialMask(value: string, entity: EntityType, keepLast: number): string {
  if (entity === "EMAIL") {
    const at = value.lastIndexOf("@");
    if (at > 0) return value[0] + "***" + value.slice(at);
  }
  const n = Math.max(0, Math.floor(keepLast));
  // ASCII values (ids, card numbers, phones): char codes, no regex per character.
  const ascii = asciiPartial(value, n);
  if (ascii !== undefined) return ascii;
  let alnum = 0;
  for (const ch of value) if (ALNUM.test(ch)) alnum++;
  const keep = alnum >= 2 * n ? n : 0;
  let seen = 0;
  let out = "";
  for (const ch of value) {
    if (ALNUM.test(ch)) {
      seen++;
      out += seen > alnum - keep ? ch : "*";
    } else out += ch;
  }
  return out;
}

const ALNUM = /[\p{L}\p{N}]/u;

const isAsciiAlnum = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

/** partialMask for a value of ASCII characters only; undefined when it has others. */
function asciiPartial(value: string, n: number): string | undefined {
  let alnum = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c > 127) return undefined;
    if (isAsciiAlnum(c)) alnum++;
  }
  const keep = alnum >= 2 * n ? n : 0;
  let seen = 0;
  let out = "";
  for (let i = 0; i < value.length; i++) {
    if (isAsciiAlnum(value.charCodeAt(i))) {
      seen++;
      out += seen > alnum - keep ? value[i] : "*";
    } else out += value[i];
  }
  return out;
}

/**
 * partialMask() of a value given as its UTF-8 bytes, returning the masked bytes,
 * for ASCII values only (undefined when a byte is not ASCII: use partialMask on
 * the decoded text). Same result byte for byte; it saves the listener decoding
 * and re-encoding each cell of a masked result column.
 */
export function partialMaskAsciiBytes(raw: Uint8Array, entity: EntityType, keepLast: number): Buffer | undefined {
  let alnum = 0;
  let at = -1;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c > 127) return undefined;
    if (isAsciiAlnum(c)) alnum++;
    else if (c === 64) at = i;
  }
  if (entity === "EMAIL" && at > 0) {
    const out = Buffer.allocUnsafe(4 + raw.length - at);
    out[0] = raw[0]!;
    out[1] = out[2] = out[3] = 42;
    out.set(raw.subarray(at), 4);
    return out;
  }
  const n = Math.max(0, Math.floor(keepLast));
  const keep = alnum >= 2 * n ? n : 0;
  const out = Buffer.allocUnsafe(raw.length);
  let seen = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (isAsciiAlnum(c)) {
      seen++;
      out[i] = seen > alnum - keep ? c : 42;
    } else out[i] = c;
  }
  return out;
}

/** Apply `s` to a whole value. Returns null only for the "null" strategy. */
export function applyStrategy(value: string, entity: EntityType, s: Strategy, key: MaskKey): string | null {
  switch (s.kind) {
    case "redact":
      return redactLabel(entity);
    case "partial":
      return partialMask(value, entity, s.keepLast);
    case "hash":
      return hashToken(value, entity, key);
    case "null":
      return null;
    case "clear":
      return value;
  }
}

/** Parse "redact" | "partial" | "partial:4" | "hash" | "null" | "clear". */
export function parseStrategy(spec: string): Strategy {
  const [kind, arg] = spec.trim().toLowerCase().split(":", 2);
  switch (kind) {
    case "redact":
    case "hash":
    case "null":
    case "clear":
      return { kind };
    case "partial": {
      const n = arg === undefined || arg === "" ? 4 : Number(arg);
      if (!Number.isInteger(n) || n < 0 || n > 64) {
        throw new Error(`masking strategy "${spec}": partial takes a whole number of characters 0..64, e.g. "partial:4"`);
      }
      return { kind: "partial", keepLast: n };
    }
    default:
      throw new Error(`unknown masking strategy "${spec}": use redact, partial[:N], hash, null or clear`);
  }
}

export function formatStrategy(s: Strategy): string {
  return s.kind === "partial" ? `partial:${s.keepLast}` : s.kind;
}
