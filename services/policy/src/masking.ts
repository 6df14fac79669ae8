// Masking policies: a Cedar `permit` annotated with @mask("...") does not grant
// access; it selects what an identity may not see in clear. Such policies are kept
// out of the authorizing policy set and evaluated separately for every allowed
// statement; the @mask rules of all that match are merged into the decision's
// MaskingPlan (the gateway applies the strictest rule matching a column).
//
// @mask syntax: rules separated by ";", each `<selector> = <strategy> [as <ENTITY>]`.
//   selector   table.column | schema.table.column | *.column (any table)
//              | ~regex (column names) | tag:<classification> (connection column tags)
//              | text | text.<ENTITY> (strategy for values the recognizers find in scanned text)
//   strategy   redact | partial | partial(N) | hash | null | clear
//              | scan | scan(<strategy>) (scan the column's text, mask only what is found)
//   ENTITY     label for evidence and "[REDACTED:<ENTITY>]"; inferred from the column
//              name when absent (email -> EMAIL, ssn -> US_SSN, card -> CREDIT_CARD...)
// Example: @mask("customers.email=partial(4); customers.ssn=redact; customers.notes=scan; text=redact")
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { MaskStrategyKind, type MaskColumnRule, type MaskingPlan, type MaskStrategy, type MaskTextRule } from "@gatehouse/proto";

const KINDS: Record<string, MaskStrategyKind> = {
  redact: MaskStrategyKind.MASK_STRATEGY_KIND_REDACT,
  partial: MaskStrategyKind.MASK_STRATEGY_KIND_PARTIAL,
  hash: MaskStrategyKind.MASK_STRATEGY_KIND_HASH,
  null: MaskStrategyKind.MASK_STRATEGY_KIND_NULL,
  clear: MaskStrategyKind.MASK_STRATEGY_KIND_CLEAR,
};

const ENTITY_BY_COLUMN: [RegExp, string][] = [
  [/e_?mail/i, "EMAIL"],
  [/ssn|social_security/i, "US_SSN"],
  [/card|cc_?num|pan$/i, "CREDIT_CARD"],
  [/phone|mobile|msisdn|fax/i, "PHONE"],
  [/iban/i, "IBAN"],
  [/(^|_)ip(_|$)|ip_?addr/i, "IP_ADDRESS"],
  [/token|secret|api_?key|password/i, "SECRET"],
];

/** Entity label for a column without "as ENTITY". */
export function entityForColumn(column: string): string {
  for (const [re, e] of ENTITY_BY_COLUMN) if (re.test(column)) return e;
  return column.replace(/[^A-Za-z0-9]+/g, "_").toUpperCase() || "CONFIDENTIAL";
}

function parseStrategy(s: string): { strategy?: MaskStrategy; scan: boolean; error?: string } {
  const m = /^(\w+)\s*(?:\(\s*([\w]*)\s*\))?$/.exec(s.trim());
  if (!m) return { scan: false, error: `"${s}" is not a strategy (redact, partial(N), hash, null, clear, scan)` };
  const [, name, arg] = m;
  if (name === "scan") {
    if (!arg) return { scan: true };
    const inner = parseStrategy(arg);
    if (inner.error || inner.scan) return { scan: true, error: inner.error ?? "scan(scan) is not a strategy" };
    return { scan: true, strategy: inner.strategy };
  }
  const kind = KINDS[name!];
  if (kind === undefined) return { scan: false, error: `unknown strategy "${name}" (use redact, partial(N), hash, null, clear or scan)` };
  if (name === "partial") {
    const n = arg ? Number(arg) : 4;
    if (!Number.isInteger(n) || n < 0 || n > 64) return { scan: false, error: `partial(${arg}) must keep 0 to 64 characters` };
    return { scan: false, strategy: { kind, keepLast: n } };
  }
  if (arg) return { scan: false, error: `${name} takes no argument` };
  return { scan: false, strategy: { kind, keepLast: 0 } };
}

/** Parse one @mask annotation into a plan; errors name the offending rule. */
export function parseMask(text: string, policyId: string): { plan: MaskingPlan; errors: string[] } {
  const plan: MaskingPlan = { columns: [], text: [], policyIds: [policyId] };
  const errors: string[] = [];
  const rules = text.split(";").map((r) => r.trim()).filter((r) => r !== "");
  if (rules.length === 0) errors.push(`policy "${policyId}": @mask is empty; write rules such as @mask("customers.email=redact")`);
  for (const rule of rules) {
    const eq = rule.indexOf("=");
    if (eq <= 0) {
      errors.push(`policy "${policyId}": @mask rule "${rule}" must look like <selector>=<strategy>, e.g. customers.email=redact`);
      continue;
    }
    const selector = rule.slice(0, eq).trim();
    let rhs = rule.slice(eq + 1).trim();
    let entity: string | undefined;
    const as = /\s+as\s+([A-Za-z][\w]*)$/i.exec(rhs);
    if (as) {
      entity = as[1]!.toUpperCase();
      rhs = rhs.slice(0, as.index).trim();
    }
    const st = parseStrategy(rhs);
    if (st.error) {
      errors.push(`policy "${policyId}": @mask rule "${rule}": ${st.error}`);
      continue;
    }
    if (selector === "text" || selector.startsWith("text.")) {
      if (st.scan || !st.strategy) {
        errors.push(`policy "${policyId}": @mask rule "${rule}": text rules take a strategy (redact, partial(N), hash, null, clear), not scan`);
        continue;
      }
      const t: MaskTextRule = { entity: selector === "text" ? "*" : selector.slice(5).toUpperCase(), strategy: st.strategy };
      plan.text.push(t);
      continue;
    }
    const col: MaskColumnRule = { match: { table: "", column: "", columnPattern: "", tag: "" }, entity: entity ?? "", strategy: st.strategy, scan: st.scan };
    if (selector.startsWith("~")) {
      const re = selector.slice(1);
      try {
        new RegExp(re, "i");
      } catch (e) {
        errors.push(`policy "${policyId}": @mask rule "${rule}": invalid column pattern: ${(e as Error).message}`);
        continue;
      }
      col.match!.columnPattern = re;
      col.entity ||= entityForColumn(re.replace(/[^A-Za-z_]/g, ""));
    } else if (selector.startsWith("tag:")) {
      col.match!.tag = selector.slice(4).trim();
      col.entity ||= col.match!.tag.toUpperCase();
    } else {
      const parts = selector.split(".").map((p) => p.trim());
      if (parts.length < 2 || parts.some((p) => p === "" || !/^(\*|[A-Za-z_][\w$]*)$/.test(p))) {
        errors.push(`policy "${policyId}": @mask selector "${selector}" must be table.column, schema.table.column, *.column, ~regex, tag:<name> or text`);
        continue;
      }
      const column = parts.pop()!;
      const table = parts.join(".");
      if (column === "*") {
        errors.push(`policy "${policyId}": @mask selector "${selector}": name the column (or use ~.* to mean every column)`);
        continue;
      }
      col.match!.column = column;
      if (table !== "*") col.match!.table = table;
      col.entity ||= entityForColumn(column);
    }
    plan.columns.push(col);
  }
  return { plan, errors };
}

const STRICTNESS: Record<number, number> = {
  [MaskStrategyKind.MASK_STRATEGY_KIND_CLEAR]: 0,
  [MaskStrategyKind.MASK_STRATEGY_KIND_PARTIAL]: 1,
  [MaskStrategyKind.MASK_STRATEGY_KIND_HASH]: 2,
  [MaskStrategyKind.MASK_STRATEGY_KIND_REDACT]: 3,
  [MaskStrategyKind.MASK_STRATEGY_KIND_NULL]: 4,
};

/** Union of plans: every column rule; per text entity the strictest strategy. */
export function mergePlans(plans: MaskingPlan[]): MaskingPlan | undefined {
  if (plans.length === 0) return undefined;
  if (plans.length === 1) return plans[0];
  const text = new Map<string, MaskTextRule>();
  for (const p of plans)
    for (const t of p.text) {
      const prev = text.get(t.entity);
      if (!prev || (STRICTNESS[t.strategy?.kind ?? 0] ?? 0) > (STRICTNESS[prev.strategy?.kind ?? 0] ?? 0)) text.set(t.entity, t);
    }
  return { columns: plans.flatMap((p) => p.columns), text: [...text.values()], policyIds: [...new Set(plans.flatMap((p) => p.policyIds))] };
}

export interface MaskPolicy {
  id: string;
  text: string;
  plan: MaskingPlan;
}

let sets = 0;

/** The masking policies of the active set, preparsed in their own Cedar policy set. */
export class MaskPolicies {
  private readonly psetId = `gatehouse-masks-${++sets}`;
  private plans = new Map<string, MaskingPlan>();

  /** Replace the set; returns errors (then the previous set stays). */
  install(policies: MaskPolicy[]): string[] {
    const staticPolicies: Record<string, string> = {};
    for (const p of policies) staticPolicies[p.id] = p.text;
    const pre = cedar.preparsePolicySet(this.psetId, { staticPolicies });
    if (pre.type === "failure") return pre.errors.map((e) => e.message);
    this.plans = new Map(policies.map((p) => [p.id, p.plan]));
    return [];
  }

  get size(): number {
    return this.plans.size;
  }

  /**
   * The plan for requests (one per statement) that were allowed. A masking policy
   * that fails to evaluate masks anyway (its rules apply): never fail open.
   */
  plan(calls: Omit<cedar.StatefulAuthorizationCall, "preparsedPolicySetId">[]): MaskingPlan | undefined {
    if (this.plans.size === 0) return undefined;
    const matched = new Set<string>();
    for (const call of calls) {
      const answer = cedar.statefulIsAuthorized({ ...call, preparsedPolicySetId: this.psetId });
      if (answer.type === "failure") {
        for (const id of this.plans.keys()) matched.add(id);
        continue;
      }
      for (const id of answer.response.diagnostics.reason) matched.add(id);
      for (const e of answer.response.diagnostics.errors) matched.add(e.policyId);
    }
    const ids = [...matched].sort();
    return mergePlans(ids.map((id) => this.plans.get(id)).filter((p): p is MaskingPlan => p !== undefined));
  }
}
