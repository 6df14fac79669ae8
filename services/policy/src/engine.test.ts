import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { Command, Effect, type DecideRequest } from "@gatehouse/proto";
import { ACTION_GROUPS, actionParents, initSql, SQL_KINDS } from "@gatehouse/sql";
import { PolicyEngine, runPolicyTests, validatePolicyDir, loadSchema } from "./index.js";

const DEMO_DIR = fileURLToPath(new URL("../../../deploy/policies/", import.meta.url));

const dirs: string[] = [];
function policyDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-policy-"));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
function engineFor(files: Record<string, string>): PolicyEngine {
  const e = new PolicyEngine();
  const r = e.loadDir(policyDir(files));
  assert.deepEqual(r.errors, [], "test policies load");
  return e;
}
function request(sql: string, groups: string[] = ["agents"], subject = "agent-1", tags: Record<string, string> = { env: "dev" }): DecideRequest {
  return {
    identity: { subject, name: subject, groups, kind: "agent", issuer: "test", tokenId: "", clientId: "", expiresAtUnix: 0 },
    connection: { name: "demo", protocol: "postgres", tags },
    command: Command.fromPartial({ text: sql, connection: "demo", protocol: "postgres" }),
  };
}

const READ = `@id("agents-read")
@reason("agents may read")
permit (principal in Gatehouse::Group::"agents", action in Gatehouse::Action::"sql:read", resource);
`;

before(() => initSql());
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("demo policy", () => {
  test("demo.test.yaml passes with at least 30 cases", async () => {
    const report = await runPolicyTests([join(DEMO_DIR, "demo.test.yaml")]);
    const failures = report.results.filter((r) => !r.pass).map((r) => `${r.name}: ${r.failure} (${r.reason})`);
    assert.deepEqual(failures, []);
    assert.ok(report.passed >= 30, `only ${report.passed} cases`);
  });
  test("the demo directory validates without errors or warnings", () => {
    const r = validatePolicyDir(DEMO_DIR);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.warnings, []);
    assert.ok(r.policies.every((p) => p.reason !== "" && !p.id.includes("#")), "every demo policy has @id and @reason");
  });
});

describe("decisions", () => {
  test("allow lists the permitting policy; decision is cacheable and carries the classification", () => {
    const e = engineFor({ "a.cedar": READ });
    const d = e.decide(request("SELECT * FROM customers WHERE id = 1"));
    assert.equal(d.effect, Effect.EFFECT_ALLOW);
    assert.deepEqual(d.policyIds, ["agents-read"]);
    assert.equal(d.cacheable, true);
    assert.equal(d.policyVersion, e.version);
    assert.deepEqual(d.classified.map((s) => s.action), ["sql:select"]);
    assert.deepEqual(d.classified[0]!.tables, ["customers"]);
  });
  test("default deny names the action, the connection and the subject", () => {
    const e = engineFor({ "a.cedar": READ });
    const d = e.decide(request("DROP DATABASE demo"));
    assert.equal(d.effect, Effect.EFFECT_DENY);
    assert.deepEqual(d.policyIds, ["default-deny"]);
    assert.equal(d.reason, "no policy permits sql:drop_database on connection demo for agent-1");
  });
  test("an explicit forbid reports its @id and @reason", () => {
    const e = engineFor({
      "a.cedar": READ,
      "b.cedar": `@id("no-sleep")\n@reason("pg_sleep wastes connections")\nforbid (principal, action, resource) when { context.functions.contains("pg_sleep") };\n`,
    });
    const d = e.decide(request("SELECT pg_catalog.pg_sleep(10)"));
    assert.equal(d.effect, Effect.EFFECT_DENY);
    assert.deepEqual(d.policyIds, ["no-sleep"]);
    assert.equal(d.reason, "pg_sleep wastes connections");
  });
  test("policies without @id are named file#n in file order", () => {
    const e = engineFor({
      "z.cedar": `permit (principal, action == Gatehouse::Action::"sql:insert", resource);\npermit (principal, action in Gatehouse::Action::"sql:read", resource);\n`,
    });
    assert.deepEqual(e.decide(request("SELECT 1")).policyIds, ["z.cedar#2"]);
    assert.deepEqual(e.decide(request("INSERT INTO t VALUES (1)")).policyIds, ["z.cedar#1"]);
  });
  test("every statement is decided; one denial denies the command", () => {
    const e = engineFor({ "a.cedar": READ });
    const d = e.decide(request("SELECT 1; DELETE FROM t WHERE id = 1; SELECT 2"));
    assert.equal(d.effect, Effect.EFFECT_DENY);
    assert.deepEqual(
      d.statements.map((s) => [s.index, s.action, s.effect]),
      [
        [0, "sql:select", Effect.EFFECT_ALLOW],
        [1, "sql:delete", Effect.EFFECT_DENY],
        [2, "sql:select", Effect.EFFECT_ALLOW],
      ],
    );
    assert.deepEqual(d.policyIds, ["default-deny"]);
    assert.match(d.reason, /^statement 2 \(sql:delete\): no policy permits sql:delete/);
  });
  test("context carries statement_count", () => {
    const e = engineFor({
      "a.cedar": READ + `@id("one-at-a-time")\nforbid (principal, action, resource) when { context.statement_count > 1 };\n`,
    });
    assert.equal(e.decide(request("SELECT 1")).effect, Effect.EFFECT_ALLOW);
    assert.deepEqual(e.decide(request("SELECT 1; SELECT 2")).policyIds, ["one-at-a-time"]);
  });
  test("connection tags are usable as attributes and as Cedar tags", () => {
    const e = engineFor({
      "a.cedar":
        READ +
        `@id("prod-no-read")\nforbid (principal, action, resource) when { resource.tags has env && resource.tags.env == "prod" };\n` +
        `@id("team-x")\nforbid (principal, action, resource) when { resource.hasTag("team") && resource.getTag("team") == "x" };\n`,
    });
    assert.equal(e.decide(request("SELECT 1", ["agents"], "a", { env: "dev" })).effect, Effect.EFFECT_ALLOW);
    assert.deepEqual(e.decide(request("SELECT 1", ["agents"], "a", { env: "prod" })).policyIds, ["prod-no-read"]);
    assert.deepEqual(e.decide(request("SELECT 1", ["agents"], "a", { team: "x" })).policyIds, ["team-x"]);
  });
  test("a permit annotated @approval requires approval", () => {
    const e = engineFor({
      "a.cedar":
        READ +
        `@id("deletes-need-approval")\n@reason("deletes need a dba's approval")\n@approval("dba")\npermit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"sql:delete", resource);\n`,
    });
    const d = e.decide(request("SELECT 1; DELETE FROM t WHERE id = 1"));
    assert.equal(d.effect, Effect.EFFECT_REQUIRE_APPROVAL);
    assert.deepEqual(d.policyIds, ["deletes-need-approval"]);
    assert.match(d.reason, /deletes need a dba's approval/);
    assert.equal(e.decide(request("SELECT 1")).effect, Effect.EFFECT_ALLOW);
  });
  test("a forbid that fails to evaluate denies (Cedar alone would skip it and allow)", () => {
    const e = engineFor({
      "a.cedar": READ + `@id("overflows")\nforbid (principal, action, resource) when { context.statement_count * 9223372036854775807 > 0 };\n`,
    });
    const d = e.decide(request("SELECT 1; SELECT 2"));
    assert.equal(d.effect, Effect.EFFECT_DENY);
    assert.deepEqual(d.policyIds, ["overflows"]);
    assert.match(d.reason, /could not be evaluated/);
  });
  test("unparseable SQL is denied with the parser's message", () => {
    const e = engineFor({ "a.cedar": READ });
    const d = e.decide(request("SELEC * FROM t"));
    assert.equal(d.effect, Effect.EFFECT_DENY);
    assert.deepEqual(d.policyIds, ["parse-error"]);
    assert.match(d.parseError, /syntax error at or near "SELEC"/);
    assert.equal(d.cacheable, false);
  });
  test("a client's own statement classification is ignored", () => {
    const e = engineFor({ "a.cedar": READ });
    const req = request("DELETE FROM t");
    req.command!.statements = [{ kind: "select", action: "sql:select", tables: [], writeTables: [], hasWhere: false, functions: [], nestedWrites: [], flags: [], location: 0, length: 13 }];
    assert.equal(e.decide(req).effect, Effect.EFFECT_DENY);
  });
  test("requests without identity or connection are denied", () => {
    const e = engineFor({ "a.cedar": READ });
    const noId = request("SELECT 1");
    noId.identity = undefined;
    assert.equal(e.decide(noId).effect, Effect.EFFECT_DENY);
    const noConn = request("SELECT 1");
    noConn.connection = undefined;
    assert.equal(e.decide(noConn).effect, Effect.EFFECT_DENY);
  });
  test("with no valid policy set, everything is denied with the load error", () => {
    const e = new PolicyEngine();
    const r = e.loadDir(policyDir({ "bad.cedar": "permit (principal, action, resource" }));
    assert.equal(r.errors.length, 1);
    const d = e.decide(request("SELECT 1"));
    assert.equal(d.effect, Effect.EFFECT_DENY);
    assert.deepEqual(d.policyIds, ["no-policies"]);
    assert.match(d.reason, /bad\.cedar:1:/);
  });
  test("an empty command is allowed (nothing runs)", () => {
    const e = engineFor({ "a.cedar": READ });
    const d = e.decide(request(" ; -- nothing"));
    assert.equal(d.effect, Effect.EFFECT_ALLOW);
    assert.equal(d.cacheable, false);
  });
});

describe("loading and validation", () => {
  test("syntax and schema errors come with file and line", () => {
    const dir = policyDir({
      "a.cedar": READ,
      "b.cedar": `// comment\n\npermit (principal, action == Gatehouse::Action::"sql:frobnicate", resource);\n`,
      "c.cedar": `\n\n\nforbid (principal, action, resource) when { context.nope };\n`,
      "d.cedar": `permit (principal,\n  action,\n  resource) when { 1 + };\n`,
    });
    const r = validatePolicyDir(dir);
    const at = r.errors.map((e) => `${e.file}:${e.line}`);
    assert.ok(at.includes("b.cedar:3"), at.join(" "));
    assert.equal(at.filter((a) => a === "c.cedar:4").length, 1, "one error per mistake, not one per action");
    assert.ok(at.includes("d.cedar:3"), at.join(" "));
    assert.ok(!at.some((a) => a.startsWith("a.cedar")));
    assert.match(r.errors.find((e) => e.file === "b.cedar")!.message, /unrecognized action `Gatehouse::Action::"sql:frobnicate"`/);
  });
  test("duplicate and reserved ids are errors", () => {
    const r = validatePolicyDir(
      policyDir({
        "a.cedar": READ,
        "b.cedar": `\n@id("agents-read")\npermit (principal, action, resource);\n@id("default-deny")\nforbid (principal, action, resource);\n`,
      }),
    );
    assert.deepEqual(
      r.errors.map((e) => [e.file, e.line]),
      [
        ["b.cedar", 2],
        ["b.cedar", 4],
      ],
    );
    assert.match(r.errors[0]!.message, /duplicate policy id "agents-read" \(first used at a\.cedar:1\)/);
  });
  test("an invalid change keeps the previous set and reports the errors", () => {
    const dir = policyDir({ "a.cedar": READ });
    const e = new PolicyEngine();
    assert.equal(e.loadDir(dir).changed, true);
    const v1 = e.version;
    writeFileSync(join(dir, "b.cedar"), "forbid (principal, action, resource) when {");
    const r = e.loadDir(dir);
    assert.equal(r.changed, false);
    assert.equal(e.version, v1);
    assert.equal(e.status().errors.length, 1);
    assert.equal(e.decide(request("SELECT 1")).effect, Effect.EFFECT_ALLOW);
    // Fixing it swaps the new set in and clears the errors.
    writeFileSync(join(dir, "b.cedar"), `@id("no-select")\nforbid (principal, action == Gatehouse::Action::"sql:select", resource);\n`);
    assert.equal(e.loadDir(dir).changed, true);
    assert.notEqual(e.version, v1);
    assert.deepEqual(e.status().errors, []);
    assert.deepEqual(e.decide(request("SELECT 1")).policyIds, ["no-select"]);
  });
  test("the version is sha256 over sorted file names and contents", () => {
    const files = { "b.cedar": READ, "a.cedar": `permit (principal, action == Gatehouse::Action::"sql:insert", resource);\n` };
    const e = engineFor(files);
    const h = createHash("sha256");
    for (const name of ["a.cedar", "b.cedar"]) h.update(name).update("\0").update(files[name as keyof typeof files]).update("\0");
    assert.equal(e.version, h.digest("hex").slice(0, 16));
    assert.deepEqual(e.status().files, ["a.cedar", "b.cedar"]);
    assert.equal(e.status().policyCount, 2);
  });
  test("a missing directory is reported, not thrown", () => {
    const e = new PolicyEngine();
    const r = e.loadDir(join(tmpdir(), "gatehouse-no-such-dir-" + process.pid));
    assert.match(r.errors[0]!, /does not exist/);
  });
  test("the shipped schema declares exactly the classifier's actions and groups", () => {
    const json = cedar.schemaToJson(loadSchema());
    assert.equal(json.type, "success");
    if (json.type !== "success") return;
    const actions = json.json.Gatehouse!.actions;
    const groups = new Set(["all", ...ACTION_GROUPS.map((g) => `sql:${g}`)]);
    assert.deepEqual(Object.keys(actions).filter((a) => groups.has(a)).sort(), [...groups].sort());
    // SSH actions are checked against SSH_ACTIONS in ssh-actions.test.ts.
    const declared = Object.keys(actions).filter((a) => !groups.has(a) && !a.startsWith("ssh:"));
    assert.deepEqual(declared.sort(), SQL_KINDS.map((k) => `sql:${k}`).sort());
    for (const k of SQL_KINDS) {
      const parents = (actions[`sql:${k}`]!.memberOf ?? []).map((m) => m.id).sort();
      assert.deepEqual(parents, actionParents(k).sort(), k);
    }
  });
});

describe("policy test runner", () => {
  test("reports failing cases with the decision and malformed cases as failures", async () => {
    const dir = policyDir({ "a.cedar": READ });
    const file = join(dir, "t.test.yaml");
    writeFileSync(
      file,
      `connections: { demo: { protocol: postgres } }
cases:
  - { name: right, principal: { subject: a, groups: [agents] }, connection: demo, sql: "SELECT 1", expect: allow, policy: agents-read }
  - { name: wrong effect, principal: { subject: a, groups: [agents] }, connection: demo, sql: "DELETE FROM t WHERE id = 1", expect: allow }
  - { name: wrong policy, principal: { subject: a, groups: [agents] }, connection: demo, sql: "SELECT 1", expect: allow, policy: other }
  - { name: bad connection, principal: { subject: a }, connection: nope, sql: "SELECT 1", expect: allow }
  - { name: bad expect, principal: { subject: a }, connection: demo, sql: "SELECT 1", expect: maybe }
`,
    );
    const r = await runPolicyTests([file]);
    assert.equal(r.passed, 1);
    assert.equal(r.failed, 4);
    const byName = new Map(r.results.map((x) => [x.name, x]));
    assert.equal(byName.get("wrong effect")!.failure, "expected allow, got deny");
    assert.deepEqual(byName.get("wrong effect")!.policyIds, ["default-deny"]);
    assert.match(byName.get("wrong policy")!.failure, /expected policy other among the deciding policies \[agents-read\]/);
    assert.match(byName.get("bad connection")!.failure, /connection "nope" is not defined/);
    assert.match(byName.get("bad expect")!.failure, /expect must be allow, deny or require_approval/);
  });
  test("a file that is not a test file is one failure", async () => {
    const dir = policyDir({ "x.yaml": "just: a mapping\n" });
    const r = await runPolicyTests([join(dir, "x.yaml")]);
    assert.equal(r.failed, 1);
    assert.match(r.results[0]!.failure, /"cases:" list/);
  });
});

describe("performance (reported, not asserted)", () => {
  test("microseconds per Decide with the demo policy", () => {
    const e = new PolicyEngine();
    assert.deepEqual(e.loadDir(DEMO_DIR).errors, []);
    const samples = ["SELECT * FROM customers WHERE id = 1", "UPDATE orders SET status = 'x' WHERE id = 2", "BEGIN; INSERT INTO t VALUES (1); COMMIT"];
    for (let i = 0; i < 200; i++) e.decide(request(samples[i % 3]!));
    const n = 2000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) e.decide(request(samples[i % 3]!));
    const us = Number(process.hrtime.bigint() - t0) / n / 1000;
    const stmts = (1 + 1 + 3) / 3;
    // Visible in the test output; the number goes into the report.
    console.log(`# Decide: ${us.toFixed(1)} µs per command (${(us / stmts).toFixed(1)} µs per statement), ${readFileSync(join(DEMO_DIR, "demo.cedar"), "utf8").match(/@id\(/g)!.length} policies`);
    assert.ok(us > 0);
  });
});
