import type { EntityType, Finding, MaskKey, Recognizer, Strategy, StrategyKind } from "./types.js";
import { applyStrategy, redactLabel } from "./strategy.js";

export interface Scanner {
  /** Non-overlapping findings sorted by start. */
  scan(text: string): Finding[];
}

export interface ScannerOptions {
  /** Findings scoring below this are dropped (default 0.5). */
  minScore?: number;
}

/**
 * Keep the best of overlapping findings: higher score wins, then the longer span,
 * then the earlier one. A finding inside a longer one of the same entity is part of
 * it ("+1 415 555 2671" vs "415 555 2671"), whatever context did to the scores.
 * Findings are first split into clusters of mutually overlapping spans, so a cell
 * with thousands of separate findings stays linear.
 */
export function resolveOverlaps(findings: Finding[]): Finding[] {
  const byStart = findings.filter((f) => f.end > f.start).sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Finding[] = [];
  let cluster: Finding[] = [];
  let clusterEnd = -1;
  const flush = () => {
    if (cluster.length === 1) out.push(cluster[0]!);
    else if (cluster.length > 1) out.push(...resolveCluster(cluster));
    cluster = [];
  };
  for (const f of byStart) {
    if (f.start >= clusterEnd) {
      flush();
      clusterEnd = f.end;
    } else clusterEnd = Math.max(clusterEnd, f.end);
    cluster.push(f);
  }
  flush();
  return out.sort((a, b) => a.start - b.start);
}

function resolveCluster(findings: Finding[]): Finding[] {
  const whole = findings.filter(
    (f) => !findings.some((g) => g !== f && g.entity === f.entity && g.start <= f.start && g.end >= f.end && g.end - g.start > f.end - f.start),
  );
  const ranked = whole.sort(
    (a, b) => b.score - a.score || b.end - b.start - (a.end - a.start) || a.start - b.start,
  );
  const kept: Finding[] = [];
  for (const f of ranked) {
    if (kept.some((k) => f.start < k.end && k.start < f.end)) continue;
    kept.push(f);
  }
  return kept;
}

export function createScanner(recognizers: Recognizer[], opts: ScannerOptions = {}): Scanner {
  const minScore = opts.minScore ?? 0.5;
  const list = [...recognizers];
  return {
    scan(text: string): Finding[] {
      if (text.length === 0) return [];
      const all: Finding[] = [];
      for (const r of list) {
        for (const f of r.find(text)) if (f.score >= minScore) all.push(f);
      }
      return all.length <= 1 ? all : resolveOverlaps(all);
    },
  };
}

export interface MaskAction {
  entity: EntityType;
  strategy: StrategyKind;
  start: number;
  end: number;
}

/**
 * Replace every finding in free text. Offsets in `actions` refer to the input text.
 * Inside text a "null" strategy cannot remove part of a string, so it redacts.
 * "clear" findings are reported (so audit can count them) but left as they are.
 */
export function maskText(
  text: string,
  scanner: Scanner,
  strategyFor: (e: EntityType) => Strategy,
  key: MaskKey,
): { text: string; actions: MaskAction[] } {
  const findings = scanner.scan(text);
  if (findings.length === 0) return { text, actions: [] };
  const actions: MaskAction[] = [];
  let out = "";
  let pos = 0;
  for (const f of findings) {
    const s = strategyFor(f.entity);
    const value = text.slice(f.start, f.end);
    const replaced = s.kind === "null" ? redactLabel(f.entity) : (applyStrategy(value, f.entity, s, key) ?? "");
    out += text.slice(pos, f.start) + replaced;
    pos = f.end;
    actions.push({ entity: f.entity, strategy: s.kind, start: f.start, end: f.end });
  }
  out += text.slice(pos);
  return { text: out, actions };
}
