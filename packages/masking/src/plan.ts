// A masking plan (what policy decided for this identity and connection) and the
// per-result-set row masker that applies it. The listener (in-process) and the
// masking service run exactly this code.
import {
  MaskStrategyKind,
  type MaskActionCount,
  type MaskingPlan as MaskingPlanProto,
  type MaskStrategy as MaskStrategyProto,
} from "@gatehouse/proto";
import type { ColumnRef, ColumnRule, EntityType, MaskKey, Strategy, StrategyKind } from "./types.js";
import { matchColumn } from "./column.js";
import { maskText, type Scanner } from "./scanner.js";
import { maskCell, PgType, typeHoldsText, typePreservingConstant } from "./types-pg.js";

export interface TextRule {
  /** "*" is the default for every entity without its own rule. */
  entity: EntityType | "*";
  strategy: Strategy;
}

export interface Plan {
  columns: ColumnRule[];
  text: TextRule[];
  policyIds: string[];
}

export const EMPTY_PLAN: Plan = { columns: [], text: [], policyIds: [] };

/** Strategy for a found entity: its own rule, else "*", else redact (fail closed). */
export function textStrategies(rules: TextRule[]): (e: EntityType) => Strategy {
  const by = new Map<string, Strategy>();
  for (const r of rules) if (!by.has(r.entity)) by.set(r.entity, r.strategy);
  const fallback = by.get("*") ?? { kind: "redact" };
  return (e) => by.get(e) ?? fallback;
}

export function strategyFromProto(s: MaskStrategyProto | undefined): Strategy | undefined {
  switch (s?.kind) {
    case MaskStrategyKind.MASK_STRATEGY_KIND_REDACT:
      return { kind: "redact" };
    case MaskStrategyKind.MASK_STRATEGY_KIND_PARTIAL:
      return { kind: "partial", keepLast: s.keepLast };
    case MaskStrategyKind.MASK_STRATEGY_KIND_HASH:
      return { kind: "hash" };
    case MaskStrategyKind.MASK_STRATEGY_KIND_NULL:
      return { kind: "null" };
    case MaskStrategyKind.MASK_STRATEGY_KIND_CLEAR:
      return { kind: "clear" };
    default:
      return undefined;
  }
}

export function strategyToProto(s: Strategy): MaskStrategyProto {
  const kind = {
    redact: MaskStrategyKind.MASK_STRATEGY_KIND_REDACT,
    partial: MaskStrategyKind.MASK_STRATEGY_KIND_PARTIAL,
    hash: MaskStrategyKind.MASK_STRATEGY_KIND_HASH,
    null: MaskStrategyKind.MASK_STRATEGY_KIND_NULL,
    clear: MaskStrategyKind.MASK_STRATEGY_KIND_CLEAR,
  }[s.kind];
  return { kind, keepLast: s.kind === "partial" ? s.keepLast : 0 };
}

const opt = (s: string) => (s === "" ? undefined : s);

export function planFromProto(p: MaskingPlanProto | undefined): Plan {
  if (!p) return EMPTY_PLAN;
  return {
    columns: p.columns.map((c) => {
      const match: ColumnRule["match"] = {};
      for (const k of ["table", "column", "columnPattern", "tag"] as const) {
        const v = opt(c.match?.[k] ?? "");
        if (v !== undefined) match[k] = v;
      }
      const rule: ColumnRule = { match, entity: c.entity || (c.scan ? "TEXT" : "PII") };
      const s = strategyFromProto(c.strategy);
      if (s) rule.strategy = s;
      if (c.scan) rule.scan = true;
      return rule;
    }),
    text: p.text.flatMap((t) => {
      const s = strategyFromProto(t.strategy);
      return s ? [{ entity: t.entity || "*", strategy: s }] : [];
    }),
    policyIds: [...p.policyIds],
  };
}

export function planToProto(p: Plan): MaskingPlanProto {
  return {
    columns: p.columns.map((c) => ({
      match: {
        table: c.match.table ?? "",
        column: c.match.column ?? "",
        columnPattern: c.match.columnPattern ?? "",
        tag: c.match.tag ?? "",
      },
      entity: c.entity,
      strategy: c.strategy ? strategyToProto(c.strategy) : undefined,
      scan: c.scan ?? false,
    })),
    text: p.text.map((t) => ({ entity: t.entity, strategy: strategyToProto(t.strategy) })),
    policyIds: [...p.policyIds],
  };
}

/** A result column: name/table for rule matching, type OID for type-preserving output. */
export interface ResultColumn extends ColumnRef {
  typeOid: number;
}

export interface ActionCount {
  /** Index of the result column. */
  column: number;
  entity: EntityType;
  strategy: StrategyKind;
  count: number;
}

export interface RowMasker {
  /** Per result column: true when the column is masked or scanned. */
  readonly masked: readonly boolean[];
  /** Mask one cell (text format). Cells of unmasked columns come back unchanged. */
  maskCell(column: number, value: string | null): string | null;
  /** Mask a row in place and return it. */
  maskRow(row: (string | null)[]): (string | null)[];
  /** Counts since the last call (then reset): evidence without values. */
  takeCounts(): ActionCount[];
}

export interface RowMaskerOptions {
  scanner: Scanner;
  key: MaskKey;
  /** Column classifications declared on the connection ("table.column" | "column" -> tag). */
  tags?: Record<string, string>;
  /**
   * Scan every text column not matched by a column rule (query text, notes the plan
   * did not name). Default false: only rules decide.
   */
  scanUnmatchedText?: boolean;
}

type CellFn = (value: string, bump: (entity: EntityType, strategy: StrategyKind, n?: number) => void) => string | null;

/**
 * Compile the plan against one result's columns. Returns null when nothing in this
 * result is masked, so the caller can forward rows untouched.
 */
export function compileRowMasker(plan: Plan, columns: ResultColumn[], opts: RowMaskerOptions): RowMasker | null {
  const tags = opts.tags ?? {};
  const strategyFor = textStrategies(plan.text);
  const counts = new Map<string, ActionCount>();
  const fns: (CellFn | undefined)[] = columns.map((col) => {
    const rule = matchColumn(col, plan.columns, tags);
    // Text replacement inside a value is only valid for text and JSON columns; any other
    // type with a finding gets its constant stand-in so the client can still parse it.
    const textual = typeHoldsText(col.typeOid) || col.typeOid === PgType.json || col.typeOid === PgType.jsonb;
    const scan = (value: string, bump: Parameters<CellFn>[1]) => {
      const r = maskText(value, opts.scanner, strategyFor, opts.key);
      for (const a of r.actions) bump(a.entity, a.strategy);
      if (!textual && r.actions.length > 0) return typePreservingConstant(col.typeOid, r.actions[0]!.entity);
      return r.text;
    };
    if (!rule) return opts.scanUnmatchedText ? scan : undefined;
    if (rule.scan) return scan;
    const strategy = rule.strategy ?? strategyFor(rule.entity);
    return (value, bump) => {
      bump(rule.entity, strategy.kind);
      return maskCell(value, col.typeOid, rule.entity, strategy, opts.key);
    };
  });
  if (fns.every((f) => f === undefined)) return null;
  const bumpers = columns.map((_, i) => (entity: EntityType, strategy: StrategyKind, n = 1) => {
    const k = `${i}\0${entity}\0${strategy}`;
    const c = counts.get(k);
    if (c) c.count += n;
    else counts.set(k, { column: i, entity, strategy, count: n });
  });
  const maskOne = (i: number, value: string | null): string | null => {
    const f = fns[i];
    if (!f || value === null) return value;
    return f(value, bumpers[i]!);
  };
  return {
    masked: fns.map((f) => f !== undefined),
    maskCell: maskOne,
    maskRow(row) {
      for (let i = 0; i < row.length; i++) if (fns[i]) row[i] = maskOne(i, row[i]!);
      return row;
    },
    takeCounts() {
      const out = [...counts.values()];
      counts.clear();
      return out;
    },
  };
}

export function actionCountsToProto(counts: ActionCount[]): MaskActionCount[] {
  return counts.map((c) => ({ columnIndex: c.column, entity: c.entity, strategy: c.strategy, count: c.count }));
}
