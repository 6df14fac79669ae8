// Policy test files (YAML): cases of principal + connection + SQL with the expected
// effect, run against a policy directory with the same engine the service uses.
//
//   policies: ./            # relative to this file; default: the file's directory
//   connections: { demo: { protocol: postgres, tags: { env: dev } } }
//   cases:
//     - name: agents can read customers
//       principal: { subject: agent-1, groups: [agents], kind: agent, name: agent-1, issuer: x }
//       connection: demo
//       sql: SELECT * FROM customers WHERE id = 1
//       expect: allow            # allow | deny | require_approval
//       policy: agents-read      # optional: must be among the deciding policy ids
//       masking: [mask-agents-pii] # optional: the @mask policies that make up the plan ([] = none)
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse } from "yaml";
import { Command, Effect, type Decision } from "@gatehouse/proto";
import { initSql } from "@gatehouse/sql";
import { PolicyEngine } from "./engine.js";

export interface PolicyTestCaseResult {
  file: string;
  name: string;
  pass: boolean;
  expected: string;
  /** "allow" | "deny" | "require_approval" | "error" */
  actual: string;
  policyIds: string[];
  reason: string;
  /** Why the case failed (empty when it passed). */
  failure: string;
}

export interface PolicyTestReport {
  results: PolicyTestCaseResult[];
  passed: number;
  failed: number;
}

const EXPECT: Record<string, Effect> = {
  allow: Effect.EFFECT_ALLOW,
  deny: Effect.EFFECT_DENY,
  require_approval: Effect.EFFECT_REQUIRE_APPROVAL,
};

function effectName(e: Effect): string {
  return Object.keys(EXPECT).find((k) => EXPECT[k] === e) ?? `unknown(${e})`;
}

type Raw = Record<string, unknown>;
const isRaw = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown, dflt = ""): string => (typeof v === "string" ? v : typeof v === "number" ? String(v) : dflt);

interface ConnectionSpec {
  protocol: string;
  tags: Record<string, string>;
}

function parseConnections(raw: unknown): Map<string, ConnectionSpec> {
  const out = new Map<string, ConnectionSpec>();
  if (!isRaw(raw)) return out;
  for (const [name, c] of Object.entries(raw)) {
    const spec = isRaw(c) ? c : {};
    const tags: Record<string, string> = {};
    if (isRaw(spec.tags)) for (const [k, v] of Object.entries(spec.tags)) tags[k] = str(v);
    out.set(name, { protocol: str(spec.protocol, "postgres"), tags });
  }
  return out;
}

function errorResult(file: string, name: string, expected: string, failure: string): PolicyTestCaseResult {
  return { file, name, pass: false, expected, actual: "error", policyIds: [], reason: "", failure };
}

/** Run one test file; problems with the file itself are reported as failed cases. */
function runFile(file: string): PolicyTestCaseResult[] {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, "utf8"));
  } catch (e) {
    return [errorResult(file, "(file)", "", `cannot read test file: ${(e as Error).message}`)];
  }
  if (!isRaw(doc) || !Array.isArray(doc.cases)) {
    return [errorResult(file, "(file)", "", 'not a policy test file: expected a mapping with a "cases:" list')];
  }
  const dir = resolve(dirname(file), str(doc.policies, "."));
  const engine = new PolicyEngine();
  const load = engine.loadDir(dir);
  if (!engine.version) {
    return [errorResult(file, "(policies)", "", `policies in ${dir} did not load: ${load.errors.join("; ") || "unknown error"}`)];
  }
  const connections = parseConnections(doc.connections);
  return doc.cases.map((c: unknown, i: number): PolicyTestCaseResult => {
    if (!isRaw(c)) return errorResult(file, `case ${i + 1}`, "", "a case must be a mapping");
    const name = str(c.name, `case ${i + 1}`);
    const expected = str(c.expect).toLowerCase();
    if (!(expected in EXPECT)) return errorResult(file, name, expected, `expect must be allow, deny or require_approval (got "${str(c.expect)}")`);
    const p = isRaw(c.principal) ? c.principal : undefined;
    if (!p || !str(p.subject)) return errorResult(file, name, expected, "principal.subject is required");
    const connName = str(c.connection);
    const conn = connections.get(connName);
    if (!conn) return errorResult(file, name, expected, `connection "${connName}" is not defined under connections:`);
    if (typeof c.sql !== "string") return errorResult(file, name, expected, "sql is required (a string)");
    const groups = Array.isArray(p.groups) ? p.groups.map((g) => str(g)) : [];
    let d: Decision;
    try {
      d = engine.decide({
        identity: {
          subject: str(p.subject),
          name: str(p.name, str(p.subject)),
          groups,
          kind: str(p.kind, "agent"),
          issuer: str(p.issuer, "policy-test"),
          tokenId: "",
          clientId: "",
          expiresAtUnix: 0,
        },
        connection: { name: connName, protocol: conn.protocol, tags: conn.tags },
        command: Command.fromPartial({ connection: connName, protocol: conn.protocol, text: c.sql, mode: "simple" }),
      });
    } catch (e) {
      return errorResult(file, name, expected, `decision failed: ${(e as Error).message}`);
    }
    const actual = effectName(d.effect);
    const failures: string[] = [];
    if (actual !== expected) failures.push(`expected ${expected}, got ${actual}`);
    const wantPolicy = c.policy === undefined ? undefined : str(c.policy);
    if (wantPolicy && !d.policyIds.includes(wantPolicy)) failures.push(`expected policy ${wantPolicy} among the deciding policies [${d.policyIds.join(", ")}]`);
    if (c.masking !== undefined) {
      // masking: [policy ids] whose @mask rules must make up the plan ([] = nothing masked).
      const want = (Array.isArray(c.masking) ? c.masking.map((x) => str(x)) : [str(c.masking)]).filter((x) => x !== "").sort();
      const got = [...(d.masking?.policyIds ?? [])].sort();
      if (want.join(",") !== got.join(",")) failures.push(`expected masking by [${want.join(", ")}], got [${got.join(", ")}]`);
    }
    return { file, name, pass: failures.length === 0, expected, actual, policyIds: d.policyIds, reason: d.reason, failure: failures.join("; ") };
  });
}

/** `gatehouse policy test FILE...`: run every case of every file. */
export async function runPolicyTests(files: string[]): Promise<PolicyTestReport> {
  await initSql();
  const results = files.flatMap((f) => runFile(resolve(f)));
  const passed = results.filter((r) => r.pass).length;
  return { results, passed, failed: results.length - passed };
}
