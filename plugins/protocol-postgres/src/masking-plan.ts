// A decision's masking plan, compiled for result rewriting: which result columns
// are masked (by table.column, column name, name pattern or connection column tag)
// and how, and which free-text columns are scanned with the recognizers.
import type { MaskStrategy } from "@gatehouse/plugin-sdk";
import type { Decision, MaskingPlan } from "@gatehouse/proto";
// The one conversion from the contract, shared with the masking service.
import { strategyFromProto } from "@gatehouse/masking";

export interface PlanRule {
  /** Unqualified table name (lower case); undefined = any table. */
  table?: string;
  schema?: string;
  /** Column name (lower case); undefined when `pattern` or `tag` selects. */
  column?: string;
  pattern?: RegExp;
  /** Classification declared for the column on the connection (tag "column:<table>.<column>"). */
  tag?: string;
  entity: string;
  strategy: MaskStrategy;
  /** Scan the column's text and mask what the recognizers find, instead of the whole value. */
  scan: boolean;
}

export interface ResultPlan {
  rules: PlanRule[];
  /** Strategy for an entity found by a scan; "*" is the default (redact when absent). */
  text: Map<string, MaskStrategy>;
  /** Whether any rule needs table names (then the catalog is consulted). */
  needsCatalog: boolean;
}

export const REDACT: MaskStrategy = { kind: "redact" };

export function textStrategy(plan: ResultPlan, entity: string): MaskStrategy {
  return plan.text.get(entity) ?? plan.text.get("*") ?? REDACT;
}

/** Where a result column comes from: `table` is known when the catalog resolved its table OID. */
export interface ColumnOrigin {
  /** Output name (alias) from RowDescription. */
  name: string;
  schema?: string;
  table?: string;
  /** Column name in its table (attname). */
  column?: string;
}

/** Tag lookup for connection column tags: "column:<table>.<column>" = "pii" | "confidential" | "secret". */
export function columnTag(tags: Record<string, string>, table: string | undefined, column: string | undefined): string | undefined {
  if (!table || !column) return undefined;
  return tags[`column:${table}.${column}`] ?? tags[`column:${table.toLowerCase()}.${column.toLowerCase()}`];
}

/**
 * The strictest rule matching a column: a whole-value rule beats a scan rule,
 * then the stricter strategy wins. Rules naming a table match only resolved
 * columns; rules naming only a column match the real column name and the output
 * name, so an alias does not hide a masked column.
 */
export function matchRule(plan: ResultPlan, col: ColumnOrigin, tags: Record<string, string>): PlanRule | undefined {
  const name = col.name.toLowerCase();
  const column = col.column?.toLowerCase();
  const table = col.table?.toLowerCase();
  const schema = col.schema?.toLowerCase();
  let best: PlanRule | undefined;
  for (const r of plan.rules) {
    if (r.table !== undefined) {
      if (table !== r.table) continue;
      if (r.schema !== undefined && schema !== r.schema) continue;
    }
    if (r.tag !== undefined) {
      if (columnTag(tags, col.table, col.column) !== r.tag) continue;
    }
    if (r.column !== undefined) {
      if (r.table !== undefined ? column !== r.column : column !== r.column && name !== r.column) continue;
    }
    if (r.pattern !== undefined) {
      if (!(column !== undefined && r.pattern.test(column)) && !r.pattern.test(name)) continue;
    }
    if (!best || (best.scan && !r.scan) || (best.scan === r.scan && stricter(best.strategy, r.strategy) !== best.strategy)) best = r;
  }
  return best;
}

const STRICTNESS: Record<MaskStrategy["kind"], number> = { clear: 0, partial: 1, hash: 2, redact: 3, null: 4 };

/** The stricter of two strategies (used when several policies mask the same thing). */
export function stricter(a: MaskStrategy, b: MaskStrategy): MaskStrategy {
  if (STRICTNESS[a.kind] !== STRICTNESS[b.kind]) return STRICTNESS[a.kind] > STRICTNESS[b.kind] ? a : b;
  if (a.kind === "partial" && b.kind === "partial") return (a.keepLast ?? 4) <= (b.keepLast ?? 4) ? a : b;
  return a;
}


const compiled = new WeakMap<MaskingPlan, ResultPlan | null>();

/**
 * The result plan of a decision; undefined when it masks nothing. Compiled once
 * per plan object (cached decisions share theirs).
 */
export function planFromDecision(d: Decision): ResultPlan | undefined {
  const p = d.masking;
  if (!p || (p.columns.length === 0 && p.text.length === 0)) return undefined;
  let c = compiled.get(p);
  if (c === undefined) {
    c = compilePlan(p);
    compiled.set(p, c);
  }
  return c ?? undefined;
}

export function compilePlan(p: MaskingPlan): ResultPlan | null {
  const text = new Map<string, MaskStrategy>();
  for (const t of p.text) {
    const s = strategyFromProto(t.strategy);
    if (s) text.set(t.entity || "*", s);
  }
  const rules: PlanRule[] = [];
  let needsCatalog = false;
  for (const r of p.columns) {
    const m = r.match;
    const rule: PlanRule = { entity: r.entity || "CONFIDENTIAL", strategy: strategyFromProto(r.strategy) ?? textStrategy({ rules, text, needsCatalog }, r.entity || "*"), scan: r.scan };
    if (m?.table) {
      const parts = m.table.toLowerCase().split(".");
      rule.table = parts.pop();
      if (parts.length) rule.schema = parts.join(".");
      needsCatalog = true;
    }
    if (m?.column) rule.column = m.column.toLowerCase();
    if (m?.columnPattern) {
      try {
        rule.pattern = new RegExp(m.columnPattern, "i");
      } catch {
        // An invalid pattern must not unmask: it matches every column.
        rule.pattern = /.*/;
      }
    }
    if (m?.tag) {
      rule.tag = m.tag;
      needsCatalog = true;
    }
    rules.push(rule);
  }
  if (rules.length === 0 && text.size === 0) return null;
  return { rules, text, needsCatalog };
}
