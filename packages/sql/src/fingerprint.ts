// Statement fingerprints, used as the decision-cache key.
import { loadModule } from "libpg-query";
import { classifySql } from "./classify.js";

let loaded: Promise<void> | undefined;

/** Load the parser (wasm) once; call before any *Sync function of this package. */
export function initSql(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

// Exact-text memo in front of the parse: prepared statements, and many ORM
// queries, repeat the very same text, and the fingerprint is a pure function of
// the text (same parser, same classifier), so a repeat skips both parses. It
// holds no decision; bounded by entries and by total text length.
const MEMO_MAX_ENTRIES = 4096;
const MEMO_MAX_CHARS = 4 * 1024 * 1024;
const MEMO_MAX_TEXT = 16 * 1024;
const memo = new Map<string, string>();
let memoChars = 0;

/**
 * Fingerprint of `text`, or undefined when it does not parse (or holds no statement).
 * This is PostgreSQL's fingerprint (constants, comments and whitespace ignored) plus a
 * digest of the statement classification: the raw fingerprint alone also ignores schema
 * names and a "WHERE true", so two texts a policy treats differently could share it.
 * Same as classifySql(text).fingerprint.
 */
export function fingerprintSql(text: string): string | undefined {
  const known = memo.get(text);
  if (known !== undefined) return known || undefined;
  const fp = classifySql(text).fingerprint;
  if (text.length <= MEMO_MAX_TEXT) {
    memo.set(text, fp);
    memoChars += text.length + fp.length;
    // Map iteration is insertion order: drop the oldest texts first.
    for (const k of memo.keys()) {
      if (memo.size <= MEMO_MAX_ENTRIES && memoChars <= MEMO_MAX_CHARS) break;
      memoChars -= k.length + memo.get(k)!.length;
      memo.delete(k);
    }
  }
  return fp || undefined;
}
