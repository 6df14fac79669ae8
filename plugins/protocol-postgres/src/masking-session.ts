// The session's side of masking: turn a decision's plan into a ResultMasker (with
// the connection's catalog), describe portals the gateway must understand, and
// turn what was masked into audit events.
import type { AuditEvent, Decision, Statement } from "@gatehouse/proto";
import { DependencyError, type GatewayContext } from "@gatehouse/plugin-sdk";
import type { UpstreamConfig } from "@gatehouse/runtime";
import { CatalogCache, readCatalog, type Catalog } from "./masking-catalog.js";
import { planFromDecision, type ResultPlan } from "./masking-plan.js";
import { parseRowDescription, ResultMasker, type CopySpec, type Field, type MaskCount } from "./masking.js";
import { connectUpstream } from "./upstream.js";
import { FrameReader } from "./frames.js";
import { parseErrorFields, SYNC, T, TERMINATE } from "./protocol.js";

const CATALOG_TTL_MS = 30_000;
const catalogs = new Map<string, CatalogCache>();

function catalogFor(ctx: GatewayContext, connection: string, upstream: UpstreamConfig, timeoutMs: number): CatalogCache {
  const key = `${ctx.listenerId}\0${connection}`;
  let c = catalogs.get(key);
  if (!c) {
    c = new CatalogCache(async () => {
      const up = await connectUpstream({ upstream, password: ctx.upstreamPassword(connection), params: { application_name: "gatehouse-masking-catalog" }, timeoutMs });
      return readCatalog(up, timeoutMs);
    }, CATALOG_TTL_MS);
    catalogs.set(key, c);
  }
  return c;
}

export interface MaskingSetup {
  ctx: GatewayContext;
  connection: string;
  tags: Record<string, string>;
  upstream: UpstreamConfig;
  timeoutMs: number;
}

/**
 * The masker for an allowed command, undefined when its decision masks nothing.
 * Throws DependencyError("masking") when a plan exists but cannot be applied
 * (no masking runtime, catalog unreadable): the command is then refused.
 */
export async function maskerFor(s: MaskingSetup, decision: Decision): Promise<ResultMasker | undefined> {
  const plan: ResultPlan | undefined = planFromDecision(decision);
  if (!plan) return undefined;
  const runtime = s.ctx.masking;
  if (!runtime) throw new DependencyError("masking", "the decision requires masking but masking is not set up on this listener");
  let catalog: Catalog | undefined;
  const cache = catalogFor(s.ctx, s.connection, s.upstream, s.timeoutMs);
  try {
    catalog = await cache.get();
  } catch (e) {
    if (plan.needsCatalog) throw new DependencyError("masking", `could not read the column catalog of connection "${s.connection}": ${(e as Error).message}`);
  }
  return new ResultMasker({ plan, runtime, catalog, tags: s.tags, onUnknownTable: () => cache.invalidate() });
}

/** Load the connection's catalog ahead of the first masked statement (errors surface then). */
export function prefetchCatalog(s: MaskingSetup): void {
  if (!s.ctx.masking) return;
  catalogFor(s.ctx, s.connection, s.upstream, s.timeoutMs)
    .get()
    .catch(() => undefined);
}

/** Describe portal: the gateway asks for the row layout of every Execute it must mask. */
export function describePortal(name: string): Buffer {
  const n = Buffer.from(name + "\0", "utf8");
  const b = Buffer.allocUnsafe(6 + n.length);
  b[0] = 0x44; // 'D'
  b.writeInt32BE(5 + n.length, 1);
  b[5] = 0x50; // 'P'
  n.copy(b, 6);
  return b;
}

/** Masking events of one command (one per column and entity; never a value). */
export function maskingEvents(event: (body: AuditEvent["body"]) => AuditEvent, commandId: string, counts: MaskCount[], keyId: string | undefined): AuditEvent[] {
  return counts.map((c) =>
    event({
      $case: "masking",
      masking: { commandId, column: c.column, position: c.position, entity: c.entity, strategy: c.strategy, count: c.count, keyId: c.strategy === "hash" ? (keyId ?? "") : "", source: "result" },
    }),
  );
}

// ------------------------------------------------------------- COPY TO STDOUT
// COPY sends no column descriptions. For a COPY under a masking plan the gateway
// describes the same rows on a separate upstream connection first (Parse + Describe
// of the COPY's query, or of SELECT <columns> FROM <table>), so COPY rows are masked
// column by column like SELECT results. Options it cannot parse rows for (DELIMITER,
// QUOTE, ESCAPE, NULL...) or a COPY it cannot describe are refused when a column of
// the plan could be in it; otherwise the rows are only scanned.

/** The query whose rows a `COPY ... TO STDOUT` sends, and its format options. */
export function copySource(stmt: string): { query: string; csv: boolean; header: boolean; custom: boolean } | undefined {
  const m = /^\s*copy\s+/i.exec(stmt);
  if (!m) return undefined;
  let rest = stmt.slice(m[0].length);
  let query: string;
  if (rest.startsWith("(")) {
    // Balanced parentheses, skipping quoted strings and identifiers.
    let depth = 0;
    let i = 0;
    for (; i < rest.length; i++) {
      const ch = rest[i]!;
      if (ch === "'" || ch === '"') {
        const close = rest.indexOf(ch, i + 1);
        if (close < 0) return undefined;
        i = close;
      } else if (ch === "(") depth++;
      else if (ch === ")" && --depth === 0) break;
    }
    if (depth !== 0) return undefined;
    query = rest.slice(1, i);
    rest = rest.slice(i + 1);
  } else {
    const t = /^((?:"[^"]+"|[A-Za-z_][\w$]*)(?:\s*\.\s*(?:"[^"]+"|[A-Za-z_][\w$]*))?)\s*(?:\(([^()]*)\))?/.exec(rest);
    if (!t) return undefined;
    query = `SELECT ${t[2]?.trim() || "*"} FROM ${t[1]}`;
    rest = rest.slice(t[0].length);
  }
  const opts = rest.replace(/^\s*to\s+stdout\s*/i, "").toLowerCase();
  const custom = /\b(delimiter|quote|escape|null|force_quote|force_not_null|force_null|encoding|default)\b/.test(opts);
  const csv = /\bformat\s+'?csv'?|\bcsv\b/.test(opts);
  const header = /\bheader\b(?!\s+(false|off|0)\b)/.test(opts);
  return { query, csv, header, custom };
}

/** Parse + Describe a query on a separate upstream connection: its row description. */
function describeOnSide(s: MaskingSetup, query: string): Promise<Field[]> {
  return connectUpstream({ upstream: s.upstream, password: s.ctx.upstreamPassword(s.connection), params: { application_name: "gatehouse-masking-describe" }, timeoutMs: s.timeoutMs }).then(
    (up) =>
      new Promise<Field[]>((resolve, reject) => {
        const reader = new FrameReader(1 << 24, "upstream");
        let fields: Field[] | undefined;
        let error: string | undefined;
        const timer = setTimeout(() => done(new Error(`describe did not complete within ${s.timeoutMs} ms`)), s.timeoutMs);
        const done = (e?: Error) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          up.socket.removeAllListeners("data");
          if (!up.socket.destroyed) up.socket.end(TERMINATE);
          if (e) reject(e);
          else resolve(fields ?? []);
        };
        let settled = false;
        up.socket.on("error", (e) => done(e));
        up.socket.once("close", () => done(new Error("upstream closed the connection")));
        up.socket.on("data", (chunk: Buffer) => {
          try {
            reader.push(chunk);
            for (let f = reader.next(); f; f = reader.next()) {
              if (f[0] === T.RowDescription) fields = parseRowDescription(f);
              else if (f[0] === T.ErrorResponse) error = parseErrorFields(f).M ?? "error";
              else if (f[0] === T.ReadyForQuery) return done(error ? new Error(error) : undefined);
            }
          } catch (e) {
            done(e as Error);
          }
        });
        const q = Buffer.from(`\0${query}\0\0\0`, "utf8");
        const parse = Buffer.allocUnsafe(5 + q.length);
        parse[0] = T.Parse;
        parse.writeInt32BE(4 + q.length, 1);
        q.copy(parse, 5);
        const describe = Buffer.from([0x44, 0, 0, 0, 6, 0x53, 0]);
        up.socket.write(Buffer.concat([parse, describe, SYNC]));
        up.socket.resume();
      }),
  );
}

/** Tell the masker how to treat each COPY TO STDOUT of a command, in order. */
export async function prepareCopies(s: MaskingSetup, masker: ResultMasker, text: string, statements: Statement[]): Promise<void> {
  const bytes = Buffer.from(text, "utf8");
  for (const st of statements) {
    if (!st.flags.includes("copy_to") || !st.flags.includes("copy_stdio")) continue;
    const stmt = bytes.toString("utf8", st.location, st.length > 0 ? st.location + st.length : bytes.length);
    const src = copySource(stmt);
    let spec: CopySpec;
    if (!src) spec = { mode: "refuse", reason: "this COPY TO STDOUT cannot be analysed for masking, and a masking plan applies to this session" };
    else {
      try {
        const fields = await describeOnSide(s, src.query);
        spec = src.custom ? customCopy(masker, fields) : { mode: "columns", fields, csv: src.csv, header: src.header };
      } catch (e) {
        spec = { mode: "refuse", reason: `the rows of this COPY could not be described for masking (${(e as Error).message})` };
      }
    }
    masker.expectCopy(spec);
  }
}

/** Custom COPY options: rows cannot be split into columns; allowed (scanned) only if no column is masked as a whole. */
function customCopy(masker: ResultMasker, fields: Field[]): CopySpec {
  const { cols } = masker.columnsFor(fields);
  if (cols.some((c) => c?.rule && !c.rule.scan)) {
    return { mode: "refuse", reason: "COPY with DELIMITER/QUOTE/ESCAPE/NULL options cannot be masked column by column, and it includes masked columns" };
  }
  return { mode: "scan" };
}
