// First gate for auditor SQL: exactly one SELECT / WITH / SHOW / DESCRIBE /
// EXPLAIN statement. The second gate is the engine itself: the statement runs
// with `SETTINGS readonly=1` appended, which ClickHouse enforces (writes, DDL,
// table functions and setting changes are refused).
//
// The lexer knows ClickHouse's quoting and comments, so a ';' or keyword inside
// a string, a quoted identifier, a heredoc or a comment is not mistaken for one.

const ALLOWED_FIRST = new Set(["SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN"]);

export class ReadOnlyQueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ReadOnlyQueryError";
  }
}

interface Token {
  kind: "word" | "semicolon" | "other";
  text: string;
  start: number;
}

/** Validate and return the statement without a trailing ';' (and what follows it). */
export function checkReadOnlySql(sql: string): string {
  if (sql.includes("\0")) throw new ReadOnlyQueryError("query contains a NUL byte");
  const tokens = lex(sql);
  const words = tokens.filter((t) => t.kind === "word");
  if (words.length === 0) throw new ReadOnlyQueryError("empty query: give one SELECT statement");
  const first = tokens.find((t) => t.kind !== "other" || t.text !== "(");
  const firstWord = first?.kind === "word" ? first.text.toUpperCase() : "";
  if (!ALLOWED_FIRST.has(firstWord)) {
    throw new ReadOnlyQueryError(
      `only read-only queries are allowed (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN); got ${firstWord || (first?.text ?? "")}`.trim(),
    );
  }
  const semi = tokens.findIndex((t) => t.kind === "semicolon");
  let body = sql;
  if (semi >= 0) {
    if (tokens.slice(semi + 1).length > 0) {
      throw new ReadOnlyQueryError("only one statement is allowed: remove everything after the first ';'");
    }
    body = sql.slice(0, tokens[semi]!.start);
  }
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!.text.toUpperCase();
    const next = words[i + 1]?.text.toUpperCase();
    if (w === "INTO" && next === "OUTFILE") throw new ReadOnlyQueryError("INTO OUTFILE is not allowed: queries cannot write files");
  }
  for (let i = 0; i < tokens.length - 1; i++) {
    const t = tokens[i]!;
    const n = tokens[i + 1]!;
    if (t.kind === "word" && t.text.toUpperCase() === "FORMAT" && n.kind === "word" && n.start > t.start + t.text.length) {
      throw new ReadOnlyQueryError("a FORMAT clause is not allowed: the audit store chooses the output format (use --json in the CLI)");
    }
  }
  return body;
}

/** Tokens outside strings and comments; throws on an unterminated one. */
function lex(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if ((c === "-" && sql[i + 1] === "-") || c === "#") {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? n : end + 1;
    } else if (c === "/" && sql[i + 1] === "*") {
      i = skipBlockComment(sql, i);
    } else if (c === "'" || c === '"' || c === "`") {
      const start = i;
      i = skipQuoted(sql, i, c);
      tokens.push({ kind: c === "'" ? "other" : "word", text: sql.slice(start, i), start });
    } else if (c === "$") {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      if (m) {
        const end = sql.indexOf(m[0], i + m[0].length);
        if (end < 0) throw new ReadOnlyQueryError(`unterminated heredoc ${m[0]}`);
        tokens.push({ kind: "other", text: "heredoc", start: i });
        i = end + m[0].length;
      } else {
        tokens.push({ kind: "other", text: c, start: i });
        i++;
      }
    } else if (c === ";") {
      tokens.push({ kind: "semicolon", text: c, start: i });
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      const start = i;
      while (i < n && /[A-Za-z0-9_]/.test(sql[i]!)) i++;
      tokens.push({ kind: "word", text: sql.slice(start, i), start });
    } else {
      tokens.push({ kind: "other", text: c, start: i });
      i++;
    }
  }
  return tokens;
}

function skipQuoted(sql: string, i: number, quote: string): number {
  let j = i + 1;
  while (j < sql.length) {
    const c = sql[j]!;
    if (c === "\\") {
      j += 2;
    } else if (c === quote) {
      if (sql[j + 1] === quote) j += 2;
      else return j + 1;
    } else {
      j++;
    }
  }
  throw new ReadOnlyQueryError(`unterminated ${quote === "'" ? "string literal" : "quoted identifier"} starting at offset ${i}`);
}

// ClickHouse block comments nest.
function skipBlockComment(sql: string, i: number): number {
  let depth = 0;
  let j = i;
  while (j < sql.length) {
    if (sql[j] === "/" && sql[j + 1] === "*") {
      depth++;
      j += 2;
    } else if (sql[j] === "*" && sql[j + 1] === "/") {
      depth--;
      j += 2;
      if (depth === 0) return j;
    } else {
      j++;
    }
  }
  throw new ReadOnlyQueryError(`unterminated /* comment starting at offset ${i}`);
}

/** The statement as the engine runs it: read-only, at most maxRows + 1 rows. */
export function readOnlyStatement(body: string, maxRows: number): string {
  // The newline ends a trailing `--` comment; a SETTINGS clause of the caller's
  // own is applied after ours and so is refused in readonly mode.
  return `${body}\nSETTINGS readonly = 1, max_result_rows = ${maxRows + 1}, result_overflow_mode = 'break'`;
}
