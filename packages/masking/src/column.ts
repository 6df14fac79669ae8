import type { ColumnRef, ColumnRule } from "./types.js";

const norm = (s: string) => s.toLowerCase().replace(/"/g, "");

/** "public.customers" matches a rule "customers" and vice versa; schemas must agree when both give one. */
function tableMatches(ruleTable: string, table: string | undefined): boolean {
  if (table === undefined) return false;
  const r = norm(ruleTable).split(".");
  const t = norm(table).split(".");
  if (r.length === 2 && t.length === 2) return r[0] === t[0] && r[1] === t[1];
  return r[r.length - 1] === t[t.length - 1];
}

const patternCache = new Map<string, RegExp>();
function pattern(src: string): RegExp {
  let re = patternCache.get(src);
  if (!re) {
    re = new RegExp(src, "i");
    patternCache.set(src, re);
  }
  return re;
}

/** Tag of a column from the connection's declarations: "table.column" first, then bare "column". */
export function columnTag(col: ColumnRef, tags: Record<string, string>): string | undefined {
  const c = norm(col.column);
  if (col.table !== undefined) {
    const t = norm(col.table);
    const bare = t.split(".").pop()!;
    for (const k of [`${t}.${c}`, `${bare}.${c}`]) {
      const v = tags[k];
      if (v !== undefined) return v.toLowerCase();
    }
    for (const [k, v] of Object.entries(tags)) {
      if (norm(k) === `${t}.${c}` || norm(k) === `${bare}.${c}`) return v.toLowerCase();
    }
  }
  for (const [k, v] of Object.entries(tags)) if (norm(k) === c) return v.toLowerCase();
  return undefined;
}

/**
 * First rule whose every given `match` field fits the column, in list order, so put
 * specific rules (table.column) before general ones (patterns, tags).
 */
export function matchColumn(col: ColumnRef, rules: ColumnRule[], tags: Record<string, string>): ColumnRule | undefined {
  let tag: string | undefined | null = null; // computed lazily
  for (const rule of rules) {
    const m = rule.match;
    if (m.table !== undefined && !tableMatches(m.table, col.table)) continue;
    if (m.column !== undefined && norm(m.column) !== norm(col.column)) continue;
    if (m.columnPattern !== undefined && !pattern(m.columnPattern).test(col.column)) continue;
    if (m.tag !== undefined) {
      if (tag === null) tag = columnTag(col, tags);
      if (tag !== m.tag.toLowerCase()) continue;
    }
    return rule;
  }
  return undefined;
}

/** Check rules early (bad regexes) so configuration errors name the rule. */
export function validateColumnRules(rules: ColumnRule[]): void {
  rules.forEach((r, i) => {
    if (r.match.columnPattern !== undefined) {
      try {
        pattern(r.match.columnPattern);
      } catch (e) {
        throw new Error(`masking column rule #${i + 1}: columnPattern ${JSON.stringify(r.match.columnPattern)} is not a valid regular expression (${(e as Error).message})`);
      }
    }
    if (!r.entity) throw new Error(`masking column rule #${i + 1}: entity is required`);
  });
}
