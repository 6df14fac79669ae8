// REQUIRE_APPROVAL from Cedar: a permit annotated @approval gates the statement;
// its annotations become the decision's approval requirement.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, Effect, type DecideRequest } from "@gatehouse/proto";
import { initSql } from "@gatehouse/sql";
import { PolicyEngine, validatePolicyDir } from "./index.js";

const DEMO_DIR = fileURLToPath(new URL("../../../deploy/policies/", import.meta.url));
const dirs: string[] = [];
function dir(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), "gatehouse-approval-policy-"));
  dirs.push(d);
  for (const [n, t] of Object.entries(files)) writeFileSync(join(d, n), t);
  return d;
}
function req(sql: string, groups: string[], subject = "agent-1"): DecideRequest {
  return {
    identity: { subject, name: subject, groups, kind: "agent", issuer: "test", tokenId: "", clientId: "", expiresAtUnix: 0 },
    connection: { name: "demo", protocol: "postgres", tags: { env: "dev" } },
    command: Command.fromPartial({ text: sql, connection: "demo", protocol: "postgres" }),
  };
}

before(() => initSql());
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test("demo policy: DELETE on orders by agents needs approval from approvers; other deletes and updates do not", () => {
  const e = new PolicyEngine();
  assert.deepEqual(e.loadDir(DEMO_DIR).errors, []);
  const d = e.decide(req("DELETE FROM orders WHERE id = 7", ["agents"]));
  assert.equal(d.effect, Effect.EFFECT_REQUIRE_APPROVAL);
  assert.deepEqual(d.policyIds, ["orders-delete-needs-approval"]);
  assert.deepEqual(d.approval, { policyIds: ["orders-delete-needs-approval"], approverGroups: ["approvers"], minApprovals: 1, expiresInMs: 15 * 60_000 });
  assert.equal(d.cacheable, true, "the REQUIRE_APPROVAL decision itself may be cached; the approval never is");
  assert.equal(e.decide(req("DELETE FROM sessions WHERE id = 7", ["agents"])).effect, Effect.EFFECT_ALLOW);
  assert.equal(e.decide(req("UPDATE orders SET status = 'x' WHERE id = 7", ["agents"])).effect, Effect.EFFECT_ALLOW);
  // A forbid still wins over the approval gate: nobody can approve an unbounded delete.
  assert.equal(e.decide(req("DELETE FROM orders", ["agents"])).effect, Effect.EFFECT_DENY);
  // dba are not in the approval policy's scope.
  assert.equal(e.decide(req("DELETE FROM orders WHERE id = 7", ["dba"])).effect, Effect.EFFECT_ALLOW);
  // A transaction with one held statement is held as a whole; the allowed ones carry no approval.
  const multi = e.decide(req("BEGIN; SELECT 1; DELETE FROM orders WHERE id = 7; COMMIT", ["agents"]));
  assert.equal(multi.effect, Effect.EFFECT_REQUIRE_APPROVAL);
  assert.deepEqual(multi.statements.map((s) => s.effect), [Effect.EFFECT_ALLOW, Effect.EFFECT_ALLOW, Effect.EFFECT_REQUIRE_APPROVAL, Effect.EFFECT_ALLOW]);
});

test("@min_approvals and @expires are read; several approval policies combine (all groups, largest minimum, shortest expiry)", () => {
  const e = new PolicyEngine();
  const r = e.loadDir(
    dir({
      "a.cedar": `@id("p1")
@approval("approvers, dba")
@min_approvals("2")
@expires("90s")
permit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"sql:delete", resource);
@id("p2")
@approval("security")
@expires("1h")
permit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"sql:delete", resource) when { context.tables.contains("orders") };
`,
    }),
  );
  assert.deepEqual(r.errors, []);
  const d = e.decide(req("DELETE FROM orders WHERE id = 1", ["agents"]));
  assert.equal(d.effect, Effect.EFFECT_REQUIRE_APPROVAL);
  assert.deepEqual(d.approval?.policyIds.sort(), ["p1", "p2"]);
  assert.deepEqual(d.approval?.approverGroups.sort(), ["approvers", "dba", "security"]);
  assert.equal(d.approval?.minApprovals, 2);
  assert.equal(d.approval?.expiresInMs, 90_000);
});

test("malformed approval annotations are reported with the policy id", () => {
  const report = validatePolicyDir(
    dir({
      "bad.cedar": `@id("forbid-approval")
@approval("approvers")
forbid (principal, action == Gatehouse::Action::"sql:delete", resource);
@id("bad-min")
@approval("approvers")
@min_approvals("zero")
permit (principal, action == Gatehouse::Action::"sql:delete", resource);
@id("bad-exp")
@approval("approvers")
@expires("soon")
permit (principal, action == Gatehouse::Action::"sql:update", resource);
@id("no-group")
@approval(" ")
permit (principal, action == Gatehouse::Action::"sql:insert", resource);
@id("orphan")
@expires("5m")
permit (principal, action == Gatehouse::Action::"sql:select", resource);
`,
    }),
  );
  const text = report.errors.map((e) => e.message).join("\n");
  assert.match(text, /"forbid-approval": @approval is only allowed on permit policies/);
  assert.match(text, /"bad-min": @min_approvals must be an integer/);
  assert.match(text, /"bad-exp": @expires must be a duration/);
  assert.match(text, /"no-group": @approval must name at least one approver group/);
  assert.match(text, /"orphan": @min_approvals and @expires need an @approval/);
});
