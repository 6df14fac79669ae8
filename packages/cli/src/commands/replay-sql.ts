// SQL transcripts (docs/recordings.md, kind "sql") for `gatehouse replay`: the
// statements and results as psql shows them, and `--against DSN`, which re-runs
// the allowed statements that returned rows on a sandbox database, applies the
// recorded masking to what it gets back and compares result digests.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { applyStrategy, createScanner, loadMaskKey, maskText, typePreservingReplacement, type EntityType, type MaskKey, type Scanner, type Strategy } from "@gatehouse/masking";
import { builtinRecognizers } from "@gatehouse/plugin-masking-pii";

export type Event = [number, string, unknown];

export interface ColumnMask {
  strategy?: Strategy["kind"] | "clear";
  entity?: string;
  keep_last?: number;
  key_id?: string;
  scan?: boolean;
  text?: Record<string, { strategy: Strategy["kind"] | "clear"; keep_last?: number }>;
}

export interface Column {
  name: string;
  type_oid: number;
  format: number;
  mask?: ColumnMask;
}

export interface Query {
  t: number;
  command_id: string;
  text: string;
  params: (string | null)[];
  param_formats?: number[];
  protocol: "simple" | "extended";
  decision: "allow" | "deny" | "require_approval";
  policy_ids: string[];
  masked?: boolean;
}

export interface ResultSet {
  t: number;
  columns: Column[];
  rows: (string | null)[][];
  /** CommandComplete seen (the recording holds the whole result, or its first rows and the count of the rest). */
  complete: boolean;
  tag: string;
  /** Rows left out by recordings.maxRowsPerResult (the recording holds the first `rows`). */
  omittedRows?: number;
}

export interface ErrorInfo {
  code: string;
  message: string;
  severity: string;
  detail?: string;
  hint?: string;
  position?: number;
}

/** One statement of the recording and what the client got for it. */
export interface Statement {
  q: Query;
  results: ResultSet[];
  errors: ErrorInfo[];
  tags: string[];
}

const RIGHT_ALIGNED = new Set([20, 21, 23, 26, 28, 29, 700, 701, 790, 1700, 5069]);

// ------------------------------------------------------------ psql's aligned format

/** Display width as a terminal shows it: wide East Asian characters take 2 columns, combining marks 0. */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if ((c >= 0x300 && c <= 0x36f) || c === 0x200b) continue;
    if (
      (c >= 0x1100 && c <= 0x115f) ||
      (c >= 0x2e80 && c <= 0xa4cf && c !== 0x303f) ||
      (c >= 0xac00 && c <= 0xd7a3) ||
      (c >= 0xf900 && c <= 0xfaff) ||
      (c >= 0xfe30 && c <= 0xfe4f) ||
      (c >= 0xff00 && c <= 0xff60) ||
      (c >= 0xffe0 && c <= 0xffe6) ||
      (c >= 0x1f300 && c <= 0x1f64f) ||
      (c >= 0x1f900 && c <= 0x1f9ff) ||
      (c >= 0x20000 && c <= 0x3fffd)
    )
      w += 2;
    else w += 1;
  }
  return w;
}

/** A result set as psql prints it in aligned mode (border 1): header, rule, rows, "(N rows)". */
export function formatAligned(columns: Column[], rows: (string | null)[][]): string {
  const n = columns.length;
  const right = columns.map((c) => RIGHT_ALIGNED.has(c.type_oid));
  const cells = rows.map((r) => columns.map((_, i) => (r[i] ?? "").split("\n")));
  const widths = columns.map((c, i) => {
    let w = displayWidth(c.name);
    for (const r of cells) for (const l of r[i]!) w = Math.max(w, displayWidth(l));
    return w;
  });
  const pad = (s: string, w: number) => s + " ".repeat(Math.max(0, w - displayWidth(s)));
  let out = "";
  if (n > 0) {
    out +=
      " " +
      columns
        .map((c, i) => {
          const free = widths[i]! - displayWidth(c.name);
          return " ".repeat(Math.floor(free / 2)) + c.name + " ".repeat(Math.ceil(free / 2));
        })
        .join(" | ") +
      " \n";
    out += widths.map((w) => "-".repeat(w + 2)).join("+") + "\n";
  }
  for (const r of cells) {
    const height = Math.max(1, ...r.map((c) => c.length));
    for (let k = 0; k < height; k++) {
      let line = " ";
      for (let i = 0; i < n; i++) {
        const parts = r[i]!;
        const text = parts[k] ?? "";
        const more = k < parts.length - 1;
        const last = i === n - 1;
        if (k >= parts.length) line += last ? "" : " ".repeat(widths[i]!);
        else if (right[i]) line += " ".repeat(Math.max(0, widths[i]! - displayWidth(text))) + text;
        else line += last && !more ? text : pad(text, widths[i]!);
        if (!last) line += more ? "+| " : " | ";
        else if (more) line += "+";
      }
      out += line + "\n";
    }
  }
  out += `(${rows.length} ${rows.length === 1 ? "row" : "rows"})\n`;
  return out;
}

/** An error or notice as psql prints it (LINE/caret when the position is known). */
export function formatError(e: ErrorInfo, statement?: string): string {
  let out = `${e.severity}:  ${e.message}\n`;
  if (e.position && statement) {
    const chars = [...statement];
    const before = chars.slice(0, e.position - 1).join("");
    const lineNo = before.split("\n").length;
    const lines = statement.split("\n");
    const text = lines[lineNo - 1] ?? "";
    const col = displayWidth(before.slice(before.lastIndexOf("\n") + 1));
    const prefix = `LINE ${lineNo}: `;
    out += `${prefix}${text}\n${" ".repeat(prefix.length + col)}^\n`;
  }
  if (e.detail) out += `DETAIL:  ${e.detail}\n`;
  if (e.hint) out += `HINT:  ${e.hint}\n`;
  return out;
}

export function formatOffset(t: number): string {
  return `[+${t.toFixed(3)}s]`;
}

// ------------------------------------------------------------- statements of a recording

/** Group the events into statements with their results (events before the first q are ignored). */
export function statementsOf(events: Event[]): Statement[] {
  const out: Statement[] = [];
  let cur: Statement | undefined;
  let rs: ResultSet | undefined;
  for (const [t, code, data] of events) {
    if (code === "q") {
      cur = { q: { ...(data as Omit<Query, "t">), t }, results: [], errors: [], tags: [] };
      rs = undefined;
      out.push(cur);
    } else if (!cur) continue;
    else if (code === "cols") {
      rs = { t, columns: (data as { columns: Column[] }).columns, rows: [], complete: false, tag: "" };
      cur.results.push(rs);
    } else if (code === "rows" && rs) for (const r of data as (string | null)[][]) rs.rows.push(r);
    else if (code === "rows_omitted" && rs) rs.omittedRows = (rs.omittedRows ?? 0) + (data as { count: number }).count;
    else if (code === "done") {
      const tag = (data as { tag: string }).tag;
      if (rs && !rs.complete) {
        rs.complete = true;
        rs.tag = tag;
      } else cur.tags.push(tag);
      rs = undefined;
    } else if (code === "error") {
      cur.errors.push(data as ErrorInfo);
      rs = undefined;
    }
  }
  return out;
}

// ------------------------------------------------------------------------ --against

export interface Comparison {
  commandId: string;
  t: number;
  text: string;
  outcome: "match" | "mismatch" | "skipped";
  why: string;
  /** Columns left out of the comparison (their masking cannot be reproduced here). */
  notCompared: string[];
}

/** What re-applying a recording's masking needs on this machine. */
export interface Remasker {
  key: MaskKey | undefined;
  keyProblem: string;
  scanner: Scanner;
}

/** The deployment's masking key when it exists (never generated here) and the recognizers. */
export function loadRemasker(dataDir: string): Remasker {
  const scanner = createScanner(builtinRecognizers());
  const env = process.env;
  const file = env.GATEHOUSE_MASKING_KEY_FILE || join(dataDir, "masking", "hmac.key");
  if (!env.GATEHOUSE_MASKING_KEY && !existsSync(file)) {
    return { key: undefined, keyProblem: `the masking key is not available here (set GATEHOUSE_MASKING_KEY or GATEHOUSE_MASKING_KEY_FILE; ${file} does not exist)`, scanner };
  }
  try {
    return { key: loadMaskKey(dataDir), keyProblem: "", scanner };
  } catch (e) {
    return { key: undefined, keyProblem: `the masking key cannot be loaded: ${(e as Error).message}`, scanner };
  }
}

const TEXTUAL = new Set([18, 19, 25, 114, 142, 705, 1042, 1043, 3802]);
const NO_KEY: MaskKey = { id: "", secret: Buffer.alloc(32) };

function toStrategy(kind: string, keepLast?: number): Strategy {
  return kind === "partial" ? { kind: "partial", keepLast: keepLast ?? 4 } : ({ kind } as Strategy);
}

function usesHash(m: ColumnMask): boolean {
  return m.strategy === "hash" || Object.values(m.text ?? {}).some((s) => s.strategy === "hash");
}

/** Why a column's recorded masking cannot be re-applied here ("" when it can). */
function maskProblem(c: Column, r: Remasker): string {
  const m = c.mask;
  if (!m || !usesHash(m)) return "";
  if (!r.key) return r.keyProblem;
  if (m.key_id && m.key_id !== r.key.id) return `it was hashed with masking key ${m.key_id}, and the key here is ${r.key.id}`;
  return "";
}

/** Apply a column's recorded masking to a clear value, as the listener did (packages/masking). */
export function remask(c: Column, value: string | null, r: Remasker): string | null {
  const m = c.mask;
  if (!m || value === null) return value;
  const key = r.key ?? NO_KEY;
  if (m.scan) {
    const own = m.strategy && m.strategy !== "clear" ? toStrategy(m.strategy, m.keep_last) : undefined;
    const text = m.text ?? {};
    return maskText(value, r.scanner, (e: EntityType) => {
      if (own) return own;
      const s = text[e] ?? text["*"] ?? { strategy: "redact" };
      return s.strategy === "clear" ? ({ kind: "clear" } as Strategy) : toStrategy(s.strategy, s.keep_last);
    }, key).text;
  }
  if (!m.strategy || m.strategy === "clear") return value;
  if (m.strategy === "null") return null;
  const entity = (m.entity ?? "CONFIDENTIAL") as EntityType;
  if (TEXTUAL.has(c.type_oid)) {
    const v = applyStrategy(value, entity, toStrategy(m.strategy, m.keep_last), key);
    // JSON columns stay valid JSON: the masked text became a JSON string.
    return v !== null && (c.type_oid === 114 || c.type_oid === 3802) ? JSON.stringify(v) : v;
  }
  return typePreservingReplacement(c.type_oid, entity, value, key);
}

/** SHA-256 over the column names, then each row; values as text or null, canonical JSON. */
export function resultDigest(names: string[], rows: (string | null)[][]): string {
  const h = createHash("sha256");
  h.update(JSON.stringify(names) + "\n");
  for (const r of rows) h.update(JSON.stringify(r) + "\n");
  return h.digest("hex");
}

/** Why a statement is not re-run ("" when it is). */
function skipReason(s: Statement): string {
  const q = s.q;
  if (q.decision === "deny") return "denied by policy in the session; never run";
  if (q.decision === "require_approval") return "held for approval in the session; never run";
  if (s.results.length === 0) return s.errors.length > 0 ? `it failed in the session (${s.errors[0]!.code})` : "it returned no result set";
  if (s.errors.length > 0) return `it failed in the session (${s.errors[0]!.code})`;
  if (s.results.some((r) => !r.complete)) return "its recorded result is incomplete (the recording ends inside it)";
  if (q.masked) return "its text or parameters were masked in the recording, so the statement itself is not known";
  if (q.param_formats?.some((f) => f === 1)) return "it had binary-format parameters";
  if (q.params.some((p) => p !== null && /…\[truncated, \d+ bytes\]$/.test(p))) return "a parameter was cut in the recording";
  return "";
}

export interface AgainstOptions {
  dsn: string;
  remasker: Remasker;
  /** The recording's text values were scanned and redacted (header text_values). */
  textScanned: boolean;
}

/** A libpq URI (postgres://...) or key=value string as node-postgres options. */
export function clientConfig(dsn: string): pg.ClientConfig {
  if (/^postgres(ql)?:\/\//.test(dsn)) return { connectionString: dsn };
  const kv: Record<string, string> = {};
  const re = /(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/g;
  let rest = dsn;
  for (let m = re.exec(dsn); m; m = re.exec(dsn)) {
    kv[m[1]!] = m[2]!.startsWith("'") ? m[2]!.slice(1, -1).replace(/\\(.)/g, "$1") : m[2]!;
    rest = rest.replace(m[0], "");
  }
  if (rest.trim() !== "") throw new Error(`cannot read the DSN near "${rest.trim().slice(0, 40)}": use postgres://user@host:port/db or key=value pairs (host=... port=... dbname=... user=...)`);
  const known = new Set(["host", "hostaddr", "port", "user", "dbname", "password", "sslmode", "application_name", "connect_timeout"]);
  const unknown = Object.keys(kv).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new Error(`unsupported DSN keyword(s): ${unknown.join(", ")} (supported: ${[...known].join(", ")})`);
  const sslmode = kv.sslmode ?? "disable";
  return {
    host: kv.hostaddr ?? kv.host,
    port: kv.port ? Number(kv.port) : undefined,
    user: kv.user,
    database: kv.dbname,
    password: kv.password,
    application_name: kv.application_name ?? "gatehouse-replay",
    connectionTimeoutMillis: kv.connect_timeout ? Number(kv.connect_timeout) * 1000 : 10_000,
    ssl: sslmode === "disable" || sslmode === "allow" || sslmode === "prefer" ? false : { rejectUnauthorized: sslmode === "verify-ca" || sslmode === "verify-full" },
  };
}

/** Re-run the recording's comparable statements on the sandbox (inside one transaction that is rolled back). */
export async function runAgainst(statements: Statement[], opts: AgainstOptions): Promise<Comparison[]> {
  const client = new pg.Client(clientConfig(opts.dsn));
  // Values as the server's text, unparsed: the recording holds text too.
  const raw = { getTypeParser: () => (v: string) => v };
  try {
    await client.connect();
  } catch (e) {
    throw new Error(`cannot connect to the sandbox database: ${(e as Error).message}`);
  }
  const out: Comparison[] = [];
  try {
    await client.query("BEGIN");
    for (const s of statements) {
      const base = { commandId: s.q.command_id, t: s.q.t, text: s.q.text, notCompared: [] as string[] };
      const why = skipReason(s);
      if (why) {
        out.push({ ...base, outcome: "skipped", why });
        continue;
      }
      await client.query("SAVEPOINT gatehouse_replay");
      let results: pg.QueryResult[];
      try {
        const r = s.q.protocol === "extended" || s.q.params.length > 0
          ? await client.query({ text: s.q.text, values: s.q.params, rowMode: "array", types: raw })
          : await client.query({ text: s.q.text, rowMode: "array", types: raw });
        results = (Array.isArray(r) ? r : [r]) as pg.QueryResult[];
      } catch (e) {
        await client.query("ROLLBACK TO SAVEPOINT gatehouse_replay");
        out.push({ ...base, outcome: "mismatch", why: `the sandbox refused it: ${(e as Error).message}` });
        continue;
      }
      await client.query("RELEASE SAVEPOINT gatehouse_replay");
      out.push(compare(s, results.filter((r) => r.fields.length > 0), opts.remasker, base, opts.textScanned));
    }
  } finally {
    await client.query("ROLLBACK").catch(() => undefined);
    await client.end().catch(() => undefined);
  }
  return out;
}

/** The recorder redacts what the recognizers find in every text value (header text_values: "scanned"). */
function scanned(c: Column, v: string | null, r: Remasker, on: boolean): string | null {
  if (!on || v === null || !TEXTUAL.has(c.type_oid)) return v;
  return maskText(v, r.scanner, () => ({ kind: "redact" }), r.key ?? NO_KEY).text;
}

function compare(s: Statement, got: pg.QueryResult[], r: Remasker, base: Omit<Comparison, "outcome" | "why">, textScanned: boolean): Comparison {
  if (got.length !== s.results.length) return { ...base, outcome: "mismatch", why: `${s.results.length} result set(s) recorded, ${got.length} from the sandbox` };
  const notCompared = new Set<string>();
  for (const [k, rec] of s.results.entries()) {
    const sand = got[k]!;
    const label = s.results.length > 1 ? `result ${k + 1}: ` : "";
    const names = rec.columns.map((c) => c.name);
    const sandNames = sand.fields.map((f) => f.name);
    if (JSON.stringify(names) !== JSON.stringify(sandNames)) {
      return { ...base, outcome: "mismatch", why: `${label}columns differ: recorded ${JSON.stringify(names)}, sandbox ${JSON.stringify(sandNames)}` };
    }
    // Columns whose masking cannot be reproduced here are left out on both sides.
    const keep: number[] = [];
    rec.columns.forEach((c, i) => {
      const p = maskProblem(c, r);
      if (p) notCompared.add(`${c.name} (${p})`);
      else keep.push(i);
    });
    const pick = (row: (string | null)[]) => keep.map((i) => row[i] ?? null);
    const recRows = rec.rows.map(pick);
    // A result recorded in part (recordings.maxRowsPerResult): the sandbox must have
    // the same number of rows, and its first rows are compared with the recorded ones.
    if (rec.omittedRows) {
      const total = rec.rows.length + rec.omittedRows;
      if (sand.rows.length !== total) return { ...base, notCompared: [...notCompared], outcome: "mismatch", why: `${label}${total} row(s) in the session, ${sand.rows.length} from the sandbox` };
      notCompared.add(`${label}rows ${rec.rows.length + 1}-${total} (not in the recording: recordings.maxRowsPerResult; their count matches)`);
    }
    const sandRows = (sand.rows as (string | null)[][]).slice(0, rec.omittedRows ? rec.rows.length : undefined).map((row) => keep.map((i) => scanned(rec.columns[i]!, remask(rec.columns[i]!, row[i] ?? null, r), r, textScanned)));
    const keptNames = keep.map((i) => names[i]!);
    if (resultDigest(keptNames, recRows) === resultDigest(keptNames, sandRows)) continue;
    if (recRows.length !== sandRows.length) {
      const first = firstDifference(recRows, sandRows);
      return { ...base, notCompared: [...notCompared], outcome: "mismatch", why: `${label}${recRows.length} row(s) recorded, ${sandRows.length} from the sandbox${first}` };
    }
    return { ...base, notCompared: [...notCompared], outcome: "mismatch", why: `${label}${firstDifference(recRows, sandRows).slice(2)}` };
  }
  return { ...base, notCompared: [...notCompared], outcome: "match", why: "" };
}

function firstDifference(a: (string | null)[][], b: (string | null)[][]): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (JSON.stringify(x) !== JSON.stringify(y)) return `; row ${i + 1} differs: recorded ${x ? JSON.stringify(x) : "(none)"}, sandbox ${y ? JSON.stringify(y) : "(none)"}`;
  }
  return "";
}
