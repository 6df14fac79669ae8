import { createHmac } from "node:crypto";
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

/** HMAC-SHA256(key, entity || 0x00 || value). The entity is bound in so equal strings of
 *  different kinds do not collide, while the same email in two tables still joins. */
export function hmacDigest(key: MaskKey, entity: EntityType, value: string): Buffer {
  return createHmac("sha256", key.secret).update(entity).update("\0").update(value).digest();
}

/** Stable token: "tok_" + 26 base32 chars (130 bits of the HMAC). */
export function hashToken(value: string, entity: EntityType, key: MaskKey): string {
  return "tok_" + base32(hmacDigest(key, entity, value).subarray(0, 17)).slice(0, 26);
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
