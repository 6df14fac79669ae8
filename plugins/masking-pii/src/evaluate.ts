// Precision and recall of a scanner on a labelled corpus (scripts/gen-corpus.mjs).
// A finding counts only when entity, start and end match a label exactly.
import { fileURLToPath } from "node:url";
import type { Scanner } from "@gatehouse/masking";

export interface CorpusLabel {
  entity: string;
  start: number;
  end: number;
}

export interface CorpusItem {
  id: number;
  entity: string;
  kind: "positive" | "prose" | "near_miss";
  text: string;
  labels: CorpusLabel[];
}

export interface EntityScore {
  entity: string;
  tp: number;
  fp: number;
  fn: number;
  /** Items made for this entity (positives, prose, near misses). */
  items: number;
  nearMisses: number;
  precision: number;
  recall: number;
}

export interface Evaluation {
  items: number;
  perEntity: EntityScore[];
  /** A few misclassified examples per entity, for debugging (values are synthetic). */
  errors: { entity: string; kind: "fp" | "fn"; text: string }[];
}

export function evaluate(items: CorpusItem[], scanner: Scanner): Evaluation {
  const by = new Map<string, EntityScore>();
  const get = (e: string) => {
    let s = by.get(e);
    if (!s) {
      s = { entity: e, tp: 0, fp: 0, fn: 0, items: 0, nearMisses: 0, precision: 1, recall: 1 };
      by.set(e, s);
    }
    return s;
  };
  const errors: Evaluation["errors"] = [];
  for (const item of items) {
    const s = get(item.entity);
    s.items++;
    if (item.kind === "near_miss") s.nearMisses++;
    const findings = scanner.scan(item.text);
    const key = (x: { entity: string; start: number; end: number }) => `${x.entity}:${x.start}:${x.end}`;
    const labelled = new Set(item.labels.map(key));
    const found = new Set(findings.map(key));
    for (const f of findings) {
      if (labelled.has(key(f))) get(f.entity).tp++;
      else {
        get(f.entity).fp++;
        errors.push({ entity: f.entity, kind: "fp", text: item.text });
      }
    }
    for (const l of item.labels) {
      if (!found.has(key(l))) {
        get(l.entity).fn++;
        errors.push({ entity: l.entity, kind: "fn", text: item.text });
      }
    }
  }
  const perEntity = [...by.values()]
    // MIXED and NONE items are made for no single entity; their findings count under the entity found.
    .filter((s) => s.items > 0 || s.tp + s.fp + s.fn > 0)
    .map((s) => ({
      ...s,
      precision: s.tp + s.fp === 0 ? 1 : s.tp / (s.tp + s.fp),
      recall: s.tp + s.fn === 0 ? 1 : s.tp / (s.tp + s.fn),
    }))
    .sort((a, b) => a.entity.localeCompare(b.entity));
  return { items: items.length, perEntity, errors };
}

export function formatEvaluation(ev: Evaluation): string {
  const head = ["entity", "items", "near-miss", "TP", "FP", "FN", "precision", "recall"];
  const rows = ev.perEntity
    .filter((s) => s.entity !== "MIXED" && s.entity !== "NONE")
    .map((s) => [s.entity, s.items, s.nearMisses, s.tp, s.fp, s.fn, s.precision.toFixed(4), s.recall.toFixed(4)].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const clean = ev.perEntity.find((s) => s.entity === "NONE")?.items ?? 0;
  const mixed = ev.perEntity.find((s) => s.entity === "MIXED")?.items ?? 0;
  return [
    `corpus: ${ev.items} labelled values (${clean} with no entity, ${mixed} multi-entity notes; their findings count under each entity)`,
    line(head),
    ...rows.map(line),
  ].join("\n");
}

/** Load the generator (committed script) and build the corpus in memory. */
export async function loadCorpus(seed?: number): Promise<CorpusItem[]> {
  const script = fileURLToPath(new URL("../scripts/gen-corpus.mjs", import.meta.url));
  const mod = (await import(script)) as { generateCorpus(opts?: { seed?: number }): CorpusItem[] };
  return mod.generateCorpus(seed === undefined ? {} : { seed });
}
