// @mask policies: syntax, validation errors, selection per identity and
// connection, merging, and that a masking policy never grants access.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, Effect, MaskStrategyKind, type DecideRequest } from "@gatehouse/proto";
import { initSql } from "@gatehouse/sql";
import { PolicyEngine } from "./index.js";
import { entityForColumn, mergePlans, parseMask } from "./masking.js";

const dirs: string[] = [];
function load(text: string): { engine: PolicyEngine; errors: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-mask-"));
  dirs.push(dir);
  writeFileSync(join(dir, "p.cedar"), text);
  const engine = new PolicyEngine();
  return { engine, errors: engine.loadDir(dir).errors };
}
function req(sql: string, groups: string[], tags: Record<string, string> = { env: "dev" }): DecideRequest {
  return {
    identity: { subject: "s", name: "s", groups, kind: "agent", issuer: "t", tokenId: "", clientId: "", expiresAtUnix: 0 },
    connection: { name: "demo", protocol: "postgres", tags },
    command: Command.fromPartial({ text: sql, connection: "demo", protocol: "postgres" }),
  };
}

const POLICIES = `
@id("read") permit (principal, action in Gatehouse::Action::"sql:read", resource);
@id("agents-insert") permit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"sql:insert", resource);
@id("mask-agents")
@mask("customers.email=redact; public.customers.ssn=partial(2) as SSN; *.phone=hash; ~^card=null; tag:secret=redact; customers.notes=scan; text=redact; text.EMAIL=hash")
permit (principal in Gatehouse::Group::"agents", action, resource);
@id("mask-prod")
@mask("*.email=partial; text=null")
permit (principal, action, resource) when { resource.tags has env && resource.tags.env == "prod" };
`;

before(() => initSql());
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("@mask policies", () => {
  test("parse every selector and strategy form", () => {
    const { plan, errors } = parseMask("customers.email=redact; public.customers.ssn=partial(2) as SSN; *.phone=hash; ~^card=null; tag:secret=redact; customers.notes=scan(hash); text=redact; text.EMAIL=clear", "p");
    assert.deepEqual(errors, []);
    assert.deepEqual(plan.columns.map((c) => [c.match!.table, c.match!.column, c.match!.columnPattern, c.match!.tag, c.entity, c.strategy?.kind, c.strategy?.keepLast, c.scan]), [
      ["customers", "email", "", "", "EMAIL", MaskStrategyKind.MASK_STRATEGY_KIND_REDACT, 0, false],
      ["public.customers", "ssn", "", "", "SSN", MaskStrategyKind.MASK_STRATEGY_KIND_PARTIAL, 2, false],
      ["", "phone", "", "", "PHONE", MaskStrategyKind.MASK_STRATEGY_KIND_HASH, 0, false],
      ["", "", "^card", "", "CREDIT_CARD", MaskStrategyKind.MASK_STRATEGY_KIND_NULL, 0, false],
      ["", "", "", "secret", "SECRET", MaskStrategyKind.MASK_STRATEGY_KIND_REDACT, 0, false],
      ["customers", "notes", "", "", "NOTES", MaskStrategyKind.MASK_STRATEGY_KIND_HASH, 0, true],
    ]);
    assert.deepEqual(plan.text.map((t) => [t.entity, t.strategy?.kind]), [
      ["*", MaskStrategyKind.MASK_STRATEGY_KIND_REDACT],
      ["EMAIL", MaskStrategyKind.MASK_STRATEGY_KIND_CLEAR],
    ]);
    assert.equal(entityForColumn("contact_email"), "EMAIL");
    assert.equal(entityForColumn("salary"), "SALARY");
  });

  test("mistakes are reported with the policy and the rule", () => {
    const bad = ["customers.email", "customers.email=blur", "customers.email=partial(x)", "email=redact", "customers.*=redact", "~(=redact", "text=scan", ""];
    for (const b of bad) assert.ok(parseMask(b, "p1").errors.length > 0, `"${b}" is rejected`);
    assert.match(parseMask("customers.email=blur", "p1").errors[0]!, /policy "p1": @mask rule "customers.email=blur": unknown strategy "blur"/);
    const { errors } = load(`@id("m") @mask("x.y=redact") forbid (principal, action, resource);`);
    assert.ok(errors.some((e) => /@mask is only allowed on permit policies/.test(e)), errors.join("\n"));
    assert.ok(load(`@id("m") @mask("x.y=wat") permit (principal, action, resource);`).errors.some((e) => /p\.cedar:1:1: error: .*unknown strategy "wat"/.test(e)));
  });

  test("the plan follows identity and connection; a masking policy grants nothing", () => {
    const { engine, errors } = load(POLICIES);
    assert.deepEqual(errors, []);
    const agent = engine.decide(req("SELECT email FROM customers", ["agents"]));
    assert.equal(agent.effect, Effect.EFFECT_ALLOW);
    assert.deepEqual(agent.policyIds, ["read"], "the masking policy is not among the deciding policies");
    assert.deepEqual(agent.masking?.policyIds, ["mask-agents"]);
    assert.equal(agent.masking?.columns.length, 6);

    const other = engine.decide(req("SELECT email FROM customers", ["support"]));
    assert.equal(other.masking, undefined, "no masking policy applies: clear");

    const prod = engine.decide(req("SELECT email FROM customers", ["agents"], { env: "prod" }));
    assert.deepEqual(prod.masking?.policyIds, ["mask-agents", "mask-prod"]);
    assert.equal(prod.masking?.columns.length, 7);
    assert.equal(prod.masking?.text.find((t) => t.entity === "*")?.strategy?.kind, MaskStrategyKind.MASK_STRATEGY_KIND_NULL, "strictest text strategy wins");

    // mask-agents matches every action, but grants none: support cannot insert.
    assert.equal(engine.decide(req("INSERT INTO customers (id) VALUES (1)", ["support"])).effect, Effect.EFFECT_DENY);
    const ins = engine.decide(req("INSERT INTO customers (id) VALUES (1) RETURNING email", ["agents"]));
    assert.equal(ins.effect, Effect.EFFECT_ALLOW);
    assert.deepEqual(ins.masking?.policyIds, ["mask-agents"], "RETURNING rows are masked too");
    assert.equal(engine.decide(req("DELETE FROM customers WHERE id = 1", ["agents"])).masking, undefined, "denied: no plan");
    const held = load(POLICIES + `@id("hold") @approval("approvers") permit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"sql:select", resource) when { context.tables.contains("payroll") };`).engine.decide(req("SELECT * FROM payroll", ["agents"]));
    assert.equal(held.effect, Effect.EFFECT_REQUIRE_APPROVAL);
    assert.deepEqual(held.masking?.policyIds, ["mask-agents"], "a held command carries its plan for when it is approved");
  });

  test("mergePlans keeps every column rule", () => {
    const a = parseMask("a.b=redact; text=partial", "a").plan;
    const b = parseMask("c.d=hash; text=redact", "b").plan;
    const m = mergePlans([a, b])!;
    assert.equal(m.columns.length, 2);
    assert.deepEqual(m.policyIds, ["a", "b"]);
    assert.equal(m.text[0]!.strategy?.kind, MaskStrategyKind.MASK_STRATEGY_KIND_REDACT);
  });
});
