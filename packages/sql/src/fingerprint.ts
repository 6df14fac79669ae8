// Statement fingerprints, used as the decision-cache key.
import { loadModule } from "libpg-query";
import { classifySql } from "./classify.js";

let loaded: Promise<void> | undefined;

/** Load the parser (wasm) once; call before any *Sync function of this package. */
export function initSql(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

// Memo in front of the parse. The fingerprint is a pure function of the text
// (same parser, same classifier) that ignores constants, so texts that differ
// only in the values of their literals share one entry: prepared statements and
// ORM queries repeat the very same text, and simple-protocol clients (pgbench -S,
// psql scripts) send the same shape with new numbers. The key is the text's
// literal shape (see literalShape) when it can be computed safely, else the
// exact text. It holds no decision; bounded by entries and by total text length.
const MEMO_MAX_ENTRIES = 4096;
const MEMO_MAX_CHARS = 4 * 1024 * 1024;
const MEMO_MAX_TEXT = 16 * 1024;
const memo = new Map<string, string>();
let memoChars = 0;

const QUOTE = 39; // '
const isDigit = (c: number) => c >= 48 && c <= 57;
// Characters that may continue an identifier or keyword (so a digit or quote after
// them belongs to that token: t1, E'..', B'..', U&'..'), plus anything non-ASCII.
const joinsPrevious = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36 || c === 38 || c >= 128;

/**
 * The text with the value of every plain literal blanked out, keeping its length:
 * digit runs that start a token become zeros, the contents of plain '...' strings
 * become x. Two texts with the same shape differ only inside those literals, so
 * PostgreSQL's lexer splits them into the same tokens and the parser builds the same
 * tree up to constant values, which the fingerprint ignores.
 *
 * That argument only holds where a quote or digit cannot mean something else, so any
 * text with a construct that changes the lexing of what follows returns undefined
 * (the caller keys by exact text): comments (-- and slash-star), quoted identifiers ("),
 * dollar quoting and parameters ($), backslashes (escape strings, or plain strings when
 * standard_conforming_strings is off), and quotes glued to a previous token (E'', B'',
 * X'', N'', U&'') or left unterminated.
 */
export function literalShape(text: string): string | undefined {
  const n = text.length;
  let out = "";
  let from = 0; // text[from, i) is copied verbatim
  let prev = 32;
  for (let i = 0; i < n; ) {
    const c = text.charCodeAt(i);
    if (c === 92 || c === 34 || c === 36 || c === 0) return undefined; // backslash, double quote, dollar, NUL
    if ((c === 45 || c === 47) && i + 1 < n) {
      const d = text.charCodeAt(i + 1);
      if ((c === 45 && d === 45) || (c === 47 && d === 42)) return undefined; // -- /*
    }
    if (c === QUOTE) {
      if (joinsPrevious(prev)) return undefined;
      // A plain string: '' inside is an escaped quote; ends at a lone quote.
      let j = i + 1;
      for (;;) {
        if (j >= n) return undefined;
        const q = text.charCodeAt(j);
        if (q === 92 || q === 0) return undefined;
        if (q === QUOTE) {
          if (j + 1 < n && text.charCodeAt(j + 1) === QUOTE) {
            j += 2;
            continue;
          }
          break;
        }
        j += 1;
      }
      out += text.slice(from, i + 1) + "x".repeat(j - i - 1) + "'";
      from = j + 1;
      prev = QUOTE;
      i = j + 1;
      continue;
    }
    if (isDigit(c) && !joinsPrevious(prev)) {
      let j = i + 1;
      while (j < n && isDigit(text.charCodeAt(j))) j += 1;
      out += text.slice(from, i) + "0".repeat(j - i);
      from = j;
      prev = 48;
      i = j;
      continue;
    }
    prev = c;
    i += 1;
  }
  return out + text.slice(from);
}

/**
 * Fingerprint of `text`, or undefined when it does not parse (or holds no statement).
 * This is PostgreSQL's fingerprint (constants, comments and whitespace ignored) plus a
 * digest of the statement classification: the raw fingerprint alone also ignores schema
 * names and a "WHERE true", so two texts a policy treats differently could share it.
 * Same as classifySql(text).fingerprint.
 */
export function fingerprintSql(text: string): string | undefined {
  // Prefixes keep a shape and an exact text from ever being the same key.
  const shape = text.length <= MEMO_MAX_TEXT ? literalShape(text) : undefined;
  const key = text.length > MEMO_MAX_TEXT ? undefined : shape !== undefined ? "s" + shape : "t" + text;
  const known = key === undefined ? undefined : memo.get(key);
  if (known !== undefined) return known || undefined;
  const fp = classifySql(text).fingerprint;
  if (key !== undefined) {
    memo.set(key, fp);
    memoChars += key.length + fp.length;
    // Map iteration is insertion order: drop the oldest texts first.
    for (const k of memo.keys()) {
      if (memo.size <= MEMO_MAX_ENTRIES && memoChars <= MEMO_MAX_CHARS) break;
      memoChars -= k.length + memo.get(k)!.length;
      memo.delete(k);
    }
  }
  return fp || undefined;
}
