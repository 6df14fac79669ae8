import type { EntityType, Finding, Recognizer } from "./types.js";

export interface RegexRecognizerSpec {
  name: string;
  entity: EntityType;
  /** Candidate pattern; the "g" flag is added. Use (?<value>...) to mark the part to mask. */
  pattern: RegExp | string;
  /** Score of a candidate that passes validation (0..1). */
  score: number;
  /** Return false to reject a candidate, or a number to override its score. */
  validate?: (value: string, text: string, start: number) => boolean | number;
  /** Words near the match (case-insensitive) that raise the score by `contextBoost`. */
  context?: string[];
  contextBoost?: number;
  /** Characters looked at on each side for context words (default 48). */
  contextWindow?: number;
  /**
   * Cheap pre-check: skip the text unless it contains this (e.g. "@" for emails).
   * Most cells hold none of an entity's required characters, so this is most of the speed.
   */
  requires?: string | RegExp;
}

/** A recognizer from a candidate regex plus a validator and optional context words. */
export function regexRecognizer(spec: RegexRecognizerSpec): Recognizer {
  const src = typeof spec.pattern === "string" ? spec.pattern : spec.pattern.source;
  const flags = typeof spec.pattern === "string" ? "" : spec.pattern.flags;
  let f = flags.includes("g") ? flags : flags + "g";
  // exact offsets of a (?<value>...) group need match indices
  if (src.includes("(?<value>") && !f.includes("d")) f += "d";
  const re = new RegExp(src, f);
  const context = (spec.context ?? []).map((w) => w.toLowerCase()).filter((w) => w.length > 0);
  const boost = spec.contextBoost ?? 0.3;
  const window = spec.contextWindow ?? 48;
  const req = spec.requires instanceof RegExp ? new RegExp(spec.requires.source, spec.requires.flags.replace("g", "")) : spec.requires;
  const present =
    req === undefined ? () => true : typeof req === "string" ? (t: string) => t.includes(req) : (t: string) => req.test(t);
  return {
    name: spec.name,
    entity: spec.entity,
    find(text: string): Finding[] {
      if (!present(text)) return [];
      const out: Finding[] = [];
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        const group = m.groups?.["value"];
        const start = group !== undefined ? m.indices!.groups!["value"]![0] : m.index;
        const value = group ?? m[0];
        let score = spec.score;
        if (spec.validate) {
          const v = spec.validate(value, text, start);
          if (v === false) continue;
          if (typeof v === "number") score = v;
        }
        if (context.length > 0 && score < 1) {
          const around = (
            text.slice(Math.max(0, start - window), start) +
            " " +
            text.slice(start + value.length, start + value.length + window)
          ).toLowerCase();
          if (context.some((w) => around.includes(w))) score = Math.min(1, score + boost);
        }
        if (score > 0) out.push({ entity: spec.entity, start, end: start + value.length, score, recognizer: spec.name });
      }
      return out;
    },
  };
}
