// Plugin masking-pii: recognizers that validate (checksums, structure, context).
//
// Config (all optional):
//   entities:   [EMAIL, ...]         only these built-in entities
//   disable:    [IP_ADDRESS, ...]    built-in entities to leave out
//   context:    { US_SSN: ["member id"] }   extra context words per entity
//   recognizers:                      added from config
//     - name: employee_id
//       entity: EMPLOYEE_ID
//       pattern: "\\bEMP-\\d{6}\\b"   (JavaScript regex source; flags: "i" optional)
//       score: 0.6                   (0..1; below the scanner's minScore it needs context)
//       validator: luhn              (luhn, card, ssn, e164, iban, ipv4, ipv6, ip, jwt, email, or a validator.js isXxx)
//       context: [employee, staff]
//       contextBoost: 0.3
import { regexRecognizer, type MaskingPlugin, type Recognizer } from "@gatehouse/masking";
import { builtinRecognizers } from "./recognizers.js";
import { validatorByName } from "./validators.js";

export * from "./recognizers.js";
export * from "./validators.js";

export interface CustomRecognizerConfig {
  name: string;
  entity: string;
  pattern: string;
  flags?: string;
  score?: number;
  validator?: string;
  context?: string[];
  contextBoost?: number;
}

export interface PiiConfig {
  entities?: string[];
  disable?: string[];
  context?: Record<string, string[]>;
  recognizers?: CustomRecognizerConfig[];
}

function fail(msg: string): never {
  throw new Error(`masking-pii config: ${msg}`);
}

function stringList(v: unknown, where: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) fail(`${where} must be a list of strings`);
  return v as string[];
}

export function customRecognizer(c: CustomRecognizerConfig, index = 0): Recognizer {
  const where = `recognizers[${index}]${c && typeof c.name === "string" ? ` (${c.name})` : ""}`;
  if (typeof c !== "object" || c === null) fail(`${where} must be a mapping`);
  if (typeof c.name !== "string" || c.name === "") fail(`${where}: name is required`);
  if (typeof c.entity !== "string" || !/^[A-Z][A-Z0-9_]*$/.test(c.entity)) {
    fail(`${where}: entity must be UPPER_SNAKE_CASE, e.g. EMPLOYEE_ID`);
  }
  if (typeof c.pattern !== "string" || c.pattern === "") fail(`${where}: pattern (a regular expression) is required`);
  const flags = c.flags ?? "";
  if (!/^[imsu]*$/.test(flags)) fail(`${where}: flags may only contain i, m, s, u`);
  let re: RegExp;
  try {
    re = new RegExp(c.pattern, flags);
  } catch (e) {
    fail(`${where}: pattern is not a valid regular expression: ${(e as Error).message}`);
  }
  if (re.test("")) fail(`${where}: pattern matches the empty string`);
  const score = c.score ?? 0.6;
  if (typeof score !== "number" || !(score > 0 && score <= 1)) fail(`${where}: score must be a number in (0, 1]`);
  const check = c.validator !== undefined ? validatorByNameOrFail(c.validator, where) : undefined;
  const spec: Parameters<typeof regexRecognizer>[0] = {
    name: `custom.${c.name}`,
    entity: c.entity,
    pattern: re,
    score,
    context: stringList(c.context, `${where}.context`),
  };
  if (check) spec.validate = check;
  if (c.contextBoost !== undefined) spec.contextBoost = c.contextBoost;
  return regexRecognizer(spec);
}

function validatorByNameOrFail(name: string, where: string): (v: string) => boolean {
  try {
    return validatorByName(name);
  } catch (e) {
    fail(`${where}: ${(e as Error).message}`);
  }
}

/** Recognizers for a plugin config ({} gives every built-in one). */
export function recognizersFromConfig(config: Record<string, unknown> = {}): Recognizer[] {
  const cfg = config as PiiConfig;
  const only = new Set(stringList(cfg.entities, "entities"));
  const disable = new Set(stringList(cfg.disable, "disable"));
  const extra: Record<string, string[]> = {};
  if (cfg.context !== undefined) {
    if (typeof cfg.context !== "object" || cfg.context === null) fail("context must map ENTITY to a list of words");
    for (const [k, v] of Object.entries(cfg.context)) extra[k] = stringList(v, `context.${k}`);
  }
  const builtin = builtinRecognizers(extra).filter(
    (r) => (only.size === 0 || only.has(r.entity)) && !disable.has(r.entity),
  );
  const customs = cfg.recognizers === undefined ? [] : cfg.recognizers;
  if (!Array.isArray(customs)) fail("recognizers must be a list");
  return [...builtin, ...customs.map((c, i) => customRecognizer(c, i))];
}

/** The built-in recognizers with default settings. */
export function defaultRecognizers(): Recognizer[] {
  return builtinRecognizers();
}

const plugin: MaskingPlugin = {
  name: "masking-pii",
  recognizers: (config) => recognizersFromConfig(config),
};
export default plugin;
export * from "./evaluate.js";
