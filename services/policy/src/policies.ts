// Loading a policy directory: read *.cedar files, parse and validate each against the
// shipped schema, and turn them into one policy set keyed by policy id. Every problem
// is reported with its file and line so an author can fix it.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import type { MaskingPlan } from "@gatehouse/proto";
import { parseMask } from "./masking.js";

/** The Cedar schema shipped with the service (services/policy/schema/gatehouse.cedarschema). */
export const SCHEMA_PATH = fileURLToPath(new URL("../schema/gatehouse.cedarschema", import.meta.url));

let schemaText: string | undefined;
export function loadSchema(): string {
  schemaText ??= readFileSync(SCHEMA_PATH, "utf8");
  return schemaText;
}

export interface PolicyFile {
  /** File name inside the directory ("demo.cedar"). */
  name: string;
  text: string;
  /** SHA-256 (hex) of the file's bytes as read (set by readPolicyDir). */
  sha256?: string;
}

export interface LoadedPolicy {
  /** `@id` annotation, or "<file>#<n>" (n counts from 1 in file order). */
  id: string;
  file: string;
  line: number;
  effect: "permit" | "forbid";
  text: string;
  /** `@reason`, empty when absent. */
  reason: string;
  /** `@approval` (who approves), undefined when absent. */
  approval?: string;
  /** `@approval("g1,g2")` split into groups. */
  approverGroups?: string[];
  /** `@min_approvals("N")`, default 1. */
  minApprovals?: number;
  /** `@expires("15m")` in ms, default 15 minutes. */
  expiresMs?: number;
  /** `@mask("...")`: a masking policy (grants nothing; selects what is masked). See masking.ts. */
  mask?: MaskingPlan;
}

/** How long a held command waits when a policy sets no @expires. */
export const DEFAULT_APPROVAL_EXPIRY_MS = 15 * 60_000;

/** "90s" | "15m" | "2h" | "1d" -> ms; undefined when malformed. */
export function parseDurationMs(s: string): number | undefined {
  const m = /^\s*(\d+)\s*(ms|s|m|h|d)\s*$/.exec(s);
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms" | "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}

/**
 * Check the approval annotations of one policy; returns problems as messages.
 * @approval only makes sense on a permit (a forbid is never overridden by a human).
 */
function approvalAnnotations(p: LoadedPolicy, ann: Record<string, string>): string[] {
  const problems: string[] = [];
  if (ann.approval === undefined) {
    if (ann.min_approvals !== undefined || ann.expires !== undefined) problems.push(`policy "${p.id}": @min_approvals and @expires need an @approval("group") annotation`);
    return problems;
  }
  if (p.effect !== "permit") problems.push(`policy "${p.id}": @approval is only allowed on permit policies (a forbid cannot be approved)`);
  const groups = ann.approval.split(",").map((g) => g.trim()).filter((g) => g !== "");
  if (groups.length === 0) problems.push(`policy "${p.id}": @approval must name at least one approver group, e.g. @approval("approvers")`);
  p.approverGroups = groups;
  const min = ann.min_approvals === undefined ? 1 : Number(ann.min_approvals);
  if (!Number.isInteger(min) || min < 1 || min > 10) problems.push(`policy "${p.id}": @min_approvals must be an integer from 1 to 10, got "${ann.min_approvals}"`);
  p.minApprovals = min;
  const exp = ann.expires === undefined ? DEFAULT_APPROVAL_EXPIRY_MS : parseDurationMs(ann.expires);
  if (exp === undefined || exp < 1000 || exp > 7 * 86_400_000) problems.push(`policy "${p.id}": @expires must be a duration from 1s to 7d such as "90s", "15m" or "2h", got "${ann.expires}"`);
  p.expiresMs = exp ?? DEFAULT_APPROVAL_EXPIRY_MS;
  return problems;
}

export interface PolicyProblem {
  file: string;
  line: number;
  column: number;
  message: string;
  severity: "error" | "warning";
}

export function formatProblem(p: PolicyProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.severity}: ${p.message}`;
}

export interface CompiledPolicies {
  /** sha256 over the sorted file names and contents, first 16 hex digits. */
  version: string;
  files: string[];
  policies: LoadedPolicy[];
  errors: PolicyProblem[];
  warnings: PolicyProblem[];
}

/** The *.cedar files of `dir`, sorted by name. Throws a readable error if `dir` is unusable. */
export function readPolicyDir(dir: string): PolicyFile[] {
  const abs = resolve(dir);
  if (!existsSync(abs)) throw new Error(`policy directory ${abs} does not exist (set "policies:" in gatehouse.yaml)`);
  if (!statSync(abs).isDirectory()) throw new Error(`policy path ${abs} is not a directory`);
  return readdirSync(abs)
    .filter((n) => n.endsWith(".cedar"))
    .sort()
    .map((name) => {
      // Hash the bytes on disk, so the hash matches `sha256sum` of the file.
      const bytes = readFileSync(join(abs, name));
      return { name, text: bytes.toString("utf8"), sha256: createHash("sha256").update(bytes).digest("hex") };
    });
}

export function policyVersion(files: PolicyFile[]): string {
  const h = createHash("sha256");
  for (const f of [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    h.update(f.name).update("\0").update(f.text).update("\0");
  }
  return h.digest("hex").slice(0, 16);
}

/** 1-based line and column of a character index. */
function lineCol(text: string, charIndex: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, charIndex));
  const line = before.split("\n").length;
  return { line, column: charIndex - before.lastIndexOf("\n") };
}

/** Cedar reports byte offsets (UTF-8); convert to a character index. */
function byteToChar(text: string, byteOffset: number): number {
  return Buffer.from(text, "utf8").subarray(0, byteOffset).toString("utf8").length;
}

function problem(file: PolicyFile, err: cedar.DetailedError, severity: "error" | "warning"): PolicyProblem {
  const loc = err.sourceLocations?.[0];
  const { line, column } = loc ? lineCol(file.text, byteToChar(file.text, loc.start)) : { line: 1, column: 1 };
  const label = loc?.label ? ` (${loc.label})` : "";
  const help = err.help ? `; ${err.help}` : "";
  // Cedar names policies "policy0".. per file; our ids are what authors know, so drop that.
  const message = err.message.replace(/^for policy `policy\d+`, /, "");
  return { file: file.name, line, column, message: `${message}${label}${help}`, severity };
}

/** Parse, validate (strict, against the schema) and index the policies of `files`. */
export function compilePolicies(files: PolicyFile[], schema = loadSchema()): CompiledPolicies {
  const errors: PolicyProblem[] = [];
  const warnings: PolicyProblem[] = [];
  const policies: LoadedPolicy[] = [];
  const schemaCheck = cedar.checkParseSchema(schema);
  if (schemaCheck.type === "failure") {
    for (const e of schemaCheck.errors) errors.push({ file: SCHEMA_PATH, line: 1, column: 1, message: e.message, severity: "error" });
  }
  for (const file of files) {
    const parsed = cedar.checkParsePolicySet({ staticPolicies: file.text });
    if (parsed.type === "failure") {
      for (const e of parsed.errors) errors.push(problem(file, e, "error"));
      continue;
    }
    if (schemaCheck.type === "success") {
      const v = cedar.validate({ schema, policies: { staticPolicies: file.text }, validationSettings: { mode: "strict" } });
      if (v.type === "failure") {
        for (const e of v.errors) errors.push(problem(file, e, "error"));
      } else {
        for (const e of v.validationErrors) errors.push(problem(file, e.error, "error"));
        for (const e of v.validationWarnings) warnings.push(problem(file, e.error, "warning"));
      }
    }
    const parts = cedar.policySetTextToParts(file.text);
    if (parts.type === "failure") {
      for (const e of parts.errors) errors.push(problem(file, e, "error"));
      continue;
    }
    if (parts.policy_templates.length > 0) {
      errors.push({ file: file.name, line: 1, column: 1, message: "policy templates (?principal/?resource slots) are not supported; write static policies", severity: "error" });
    }
    // Parts come back sorted by internal id, verbatim: find each one's place in the file.
    const located = parts.policies.map((text) => ({ text, at: -1 }));
    const used = new Set<number>();
    for (const p of located) {
      let at = file.text.indexOf(p.text);
      while (at >= 0 && used.has(at)) at = file.text.indexOf(p.text, at + 1);
      p.at = at;
      if (at >= 0) used.add(at);
    }
    located.sort((a, b) => a.at - b.at);
    located.forEach((p, i) => {
      const json = cedar.policyToJson(p.text);
      const line = p.at >= 0 ? lineCol(file.text, p.at).line : 1;
      if (json.type === "failure") {
        for (const e of json.errors) errors.push({ file: file.name, line, column: 1, message: e.message, severity: "error" });
        return;
      }
      const ann = json.json.annotations ?? {};
      const loaded: LoadedPolicy = {
        id: ann.id?.trim() || `${file.name}#${i + 1}`,
        file: file.name,
        line,
        effect: json.json.effect,
        text: p.text,
        reason: ann.reason ?? "",
        approval: ann.approval,
      };
      for (const message of approvalAnnotations(loaded, ann as Record<string, string>)) errors.push({ file: file.name, line, column: 1, message, severity: "error" });
      if (ann.mask !== undefined) {
        const m = parseMask(ann.mask, loaded.id);
        loaded.mask = m.plan;
        if (loaded.effect !== "permit") m.errors.push(`policy "${loaded.id}": @mask is only allowed on permit policies (they select masking and grant nothing)`);
        if (ann.approval !== undefined) m.errors.push(`policy "${loaded.id}": a policy cannot carry both @mask and @approval; write two policies`);
        for (const message of m.errors) errors.push({ file: file.name, line, column: 1, message, severity: "error" });
      }
      policies.push(loaded);
    });
  }
  // Ids must be unique across the whole directory: they are what decisions report.
  const seen = new Map<string, LoadedPolicy>();
  for (const p of policies) {
    const first = seen.get(p.id);
    if (first) {
      errors.push({ file: p.file, line: p.line, column: 1, message: `duplicate policy id "${p.id}" (first used at ${first.file}:${first.line})`, severity: "error" });
    } else seen.set(p.id, p);
    if (p.id === "default-deny" || p.id === "parse-error" || p.id === "no-policies") {
      errors.push({ file: p.file, line: p.line, column: 1, message: `policy id "${p.id}" is reserved by Gatehouse; choose another @id`, severity: "error" });
    }
  }
  return { version: policyVersion(files), files: files.map((f) => f.name), policies, errors: dedupe(errors), warnings: dedupe(warnings) };
}

/** Strict validation repeats one mistake once per applicable action; report it once. */
function dedupe(problems: PolicyProblem[]): PolicyProblem[] {
  const seen = new Set<string>();
  const out: PolicyProblem[] = [];
  for (const p of problems) {
    const message = p.message.replace(/ for Gatehouse::Action::"[^"]*"/g, "");
    // The suggestion differs per context type (SQL, SSH): not part of the mistake's identity.
    const key = `${p.file}\0${p.line}\0${p.column}\0${message.replace(/; did you mean `[^`]*`\?$/, "")}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ ...p, message });
  }
  return out;
}

export interface ValidationReport extends CompiledPolicies {
  dir: string;
}

/** `gatehouse policy validate`: read, parse and validate every *.cedar file in `dir`. */
export function validatePolicyDir(dir: string): ValidationReport {
  const files = readPolicyDir(dir);
  return { dir: resolve(dir), ...compilePolicies(files) };
}
