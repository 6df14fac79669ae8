// Plugin masking-column: which result columns are masked, by `table.column`, by
// column-name pattern, or by the classification tags declared on the connection.
//
// Config:
//   rules:
//     - column: customers.email      # "table.column", "schema.table.column" or a bare column
//       entity: EMAIL
//       strategy: partial:4           # optional; else the policy's text rule for the entity
//     - pattern: "(^|_)ssn$"          # regex on the column name, case-insensitive
//       entity: US_SSN
//     - tag: secret                   # columns the connection classifies as secret
//       strategy: redact
//     - column: customers.notes
//       scan: true                    # mask what the recognizers find in free text
//   builtinPatterns: true             # add common names (email, phone, ssn, card_number, iban, password...)
//
// Rule order in the result: table.column rules, then tags, then patterns (first match wins).
import { parseStrategy, validateColumnRules, type ColumnRule, type MaskingPlugin } from "@gatehouse/masking";

export const CLASSIFICATIONS = ["pii", "confidential", "secret"] as const;
export type Classification = (typeof CLASSIFICATIONS)[number];

/** Entity reported for a column matched only by its classification. */
export const TAG_ENTITY: Record<Classification, string> = { pii: "PII", confidential: "CONFIDENTIAL", secret: "SECRET" };

/** Common column names; used when builtinPatterns is on. */
export const BUILTIN_PATTERNS: { pattern: string; entity: string }[] = [
  { pattern: "^(e_?mail|email_address|.*_email)$", entity: "EMAIL" },
  { pattern: "^(phone|mobile|cell|telephone|fax)(_?(number|no))?$|_phone$", entity: "PHONE" },
  { pattern: "^(ssn|social_security(_number)?|us_ssn)$|_ssn$", entity: "US_SSN" },
  { pattern: "^(card_?(number|no|num)|credit_card(_number)?|pan|cc_number)$", entity: "CREDIT_CARD" },
  { pattern: "^iban$|_iban$", entity: "IBAN" },
  { pattern: "^(password|passwd|pwd|secret|api_?key|access_token|refresh_token|private_key)$|_(secret|token|password)$", entity: "SECRET" },
];

export interface ColumnRuleConfig {
  column?: string;
  table?: string;
  pattern?: string;
  tag?: string;
  entity?: string;
  strategy?: string;
  scan?: boolean;
}

export interface ColumnPluginConfig {
  rules?: ColumnRuleConfig[];
  builtinPatterns?: boolean;
}

function fail(msg: string): never {
  throw new Error(`masking-column config: ${msg}`);
}

/** "public.customers.email" -> {table: "public.customers", column: "email"}; "email" -> {column}. */
export function splitColumnRef(ref: string): { table?: string; column: string } {
  const i = ref.lastIndexOf(".");
  return i < 0 ? { column: ref } : { table: ref.slice(0, i), column: ref.slice(i + 1) };
}

export function ruleFromConfig(c: ColumnRuleConfig, index = 0): ColumnRule {
  const where = `rules[${index}]`;
  if (typeof c !== "object" || c === null) fail(`${where} must be a mapping`);
  const match: ColumnRule["match"] = {};
  if (c.column !== undefined) {
    if (typeof c.column !== "string" || c.column === "") fail(`${where}.column must be "table.column" or a column name`);
    const ref = splitColumnRef(c.column);
    match.column = ref.column;
    if (ref.table !== undefined) match.table = ref.table;
  }
  if (c.table !== undefined) {
    if (match.table !== undefined) fail(`${where}: give the table either in column ("t.c") or in table, not both`);
    match.table = c.table;
  }
  if (c.pattern !== undefined) match.columnPattern = c.pattern;
  if (c.tag !== undefined) {
    const tag = String(c.tag).toLowerCase();
    if (!(CLASSIFICATIONS as readonly string[]).includes(tag)) fail(`${where}.tag must be one of ${CLASSIFICATIONS.join(", ")}`);
    match.tag = tag;
  }
  if (Object.keys(match).length === 0) fail(`${where}: needs column, pattern or tag (a rule matching every column is not allowed)`);
  const entity = c.entity ?? (match.tag ? TAG_ENTITY[match.tag as Classification] : c.scan ? "TEXT" : undefined);
  if (entity === undefined) fail(`${where}: entity is required (e.g. EMAIL) unless the rule matches a tag or scans`);
  const rule: ColumnRule = { match, entity };
  if (c.strategy !== undefined) {
    try {
      rule.strategy = parseStrategy(String(c.strategy));
    } catch (e) {
      fail(`${where}: ${(e as Error).message}`);
    }
  }
  if (c.scan) rule.scan = true;
  return rule;
}

const rank = (r: ColumnRule) => (r.match.column !== undefined ? 0 : r.match.tag !== undefined ? 1 : 2);

/** ColumnRule[] from plugin config, specific rules first. */
export function columnRulesFromConfig(config: Record<string, unknown> = {}): ColumnRule[] {
  const cfg = config as ColumnPluginConfig;
  const list = cfg.rules ?? [];
  if (!Array.isArray(list)) fail("rules must be a list");
  const rules = list.map((c, i) => ruleFromConfig(c, i));
  if (cfg.builtinPatterns) {
    for (const p of BUILTIN_PATTERNS) rules.push({ match: { columnPattern: p.pattern }, entity: p.entity });
  }
  try {
    validateColumnRules(rules);
  } catch (e) {
    fail((e as Error).message);
  }
  // stable sort keeps config order within each rank
  return rules.map((r, i) => ({ r, i })).sort((a, b) => rank(a.r) - rank(b.r) || a.i - b.i).map((x) => x.r);
}

/**
 * Column tags declared on a connection, e.g. `{ "customers.email": "pii", ssn: "secret" }`.
 * Keys are "table.column" or "column"; values are classifications.
 */
export function columnTagsFromConfig(tags: unknown): Record<string, string> {
  if (tags === undefined || tags === null) return {};
  if (typeof tags !== "object" || Array.isArray(tags)) fail("column tags must map \"table.column\" to pii, confidential or secret");
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags as Record<string, unknown>)) {
    const tag = String(v).toLowerCase();
    if (!(CLASSIFICATIONS as readonly string[]).includes(tag)) {
      fail(`column tag of "${k}" is "${String(v)}"; use one of ${CLASSIFICATIONS.join(", ")}`);
    }
    out[k.toLowerCase()] = tag;
  }
  return out;
}

const plugin: MaskingPlugin = {
  name: "masking-column",
  columnRules: (config) => columnRulesFromConfig(config),
};
export default plugin;
