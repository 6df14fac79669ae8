// Core types shared by the masking engine, the masking plugins and the gateway.

/** Entity kinds known to the built-in recognizers; config may add others (any string). */
export type EntityType =
  | "EMAIL"
  | "CREDIT_CARD"
  | "US_SSN"
  | "PHONE"
  | "IBAN"
  | "IP_ADDRESS"
  | "JWT"
  | "AWS_ACCESS_KEY"
  | "AWS_SECRET_KEY"
  | "GITHUB_TOKEN"
  | "SLACK_TOKEN"
  | "STRIPE_KEY"
  | "PRIVATE_KEY"
  | (string & {});

export const BUILTIN_ENTITIES = [
  "EMAIL",
  "CREDIT_CARD",
  "US_SSN",
  "PHONE",
  "IBAN",
  "IP_ADDRESS",
  "JWT",
  "AWS_ACCESS_KEY",
  "AWS_SECRET_KEY",
  "GITHUB_TOKEN",
  "SLACK_TOKEN",
  "STRIPE_KEY",
  "PRIVATE_KEY",
] as const;

/** A span of `text` (UTF-16 offsets, end exclusive) that a recognizer believes is an entity. */
export interface Finding {
  entity: EntityType;
  start: number;
  end: number;
  /** Confidence 0..1 after context boosting. */
  score: number;
  recognizer: string;
}

export interface Recognizer {
  name: string;
  entity: EntityType;
  find(text: string): Finding[];
}

export type Strategy =
  | { kind: "redact" }
  | { kind: "partial"; keepLast: number }
  | { kind: "hash" }
  | { kind: "null" }
  | { kind: "clear" };

export type StrategyKind = Strategy["kind"];

/** HMAC-SHA256 key for the "hash" strategy. The same key gives the same token in every session. */
export interface MaskKey {
  id: string;
  secret: Buffer;
}

/** A result column as the gateway sees it (RowDescription + catalog lookups). */
export interface ColumnRef {
  table?: string;
  column: string;
  tableOid?: number;
  columnAttr?: number;
}

/**
 * Which columns to mask. Every field given in `match` must match; an empty match
 * matches every column. `strategy` absent means "use the text strategy for `entity`".
 */
export interface ColumnRule {
  match: { table?: string; column?: string; columnPattern?: string; tag?: string };
  entity: EntityType;
  strategy?: Strategy;
  /** Scan the value with the recognizers and mask only the findings (free-text columns). */
  scan?: boolean;
}

/** Module shape of a masking plugin (default export). */
export interface MaskingPlugin {
  name: string;
  recognizers?(config: Record<string, unknown>): Recognizer[];
  columnRules?(config: Record<string, unknown>): ColumnRule[];
}
