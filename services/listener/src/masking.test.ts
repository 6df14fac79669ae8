// The listener's masking pieces: the decision cache keeps a decision's masking
// plan (over real NATS, with a test policy responder), the hash key (generated once
// in the data dir, or from the environment), and the runtime over the real recognizers.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { Command, Connection, Identity, MaskingPlan, MaskStrategyKind } from "@gatehouse/proto";
import { createLogger } from "@gatehouse/runtime";
import { initSql } from "@gatehouse/sql";
import { startNats, type TestNats } from "@gatehouse/testing";
import { PolicyDecider } from "./decider.js";
import { createMaskingRuntime, loadMaskKey } from "./masking.js";
import { allow, startTestPolicyResponder } from "./testing/policy-responder.js";

let nats: TestNats;
let nc: NatsConnection;
const dirs: string[] = [];
before(async () => {
  await initSql();
  nats = await startNats();
  nc = await nats.connect();
});
after(async () => {
  await nc.close();
  await nats.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test("a cached decision carries its masking plan", async () => {
  const responder = startTestPolicyResponder(nc);
  const plan = MaskingPlan.fromPartial({
    columns: [{ match: { table: "customers", column: "email" }, entity: "EMAIL", strategy: { kind: MaskStrategyKind.MASK_STRATEGY_KIND_REDACT } }],
    policyIds: ["mask-agents-pii"],
  });
  responder.answer = () => allow("v1", { masking: plan });
  const dnc = await nats.connect();
  const decider = new PolicyDecider(dnc, { deadlineMs: 2000, cacheSize: 10, log: createLogger("t", "silent") });
  try {
    await nc.flush();
    const id = Identity.fromPartial({ subject: "a", groups: ["agents"], issuer: "i" });
    const conn = Connection.fromPartial({ name: "demo", protocol: "postgres" });
    const first = await decider.decide(id, conn, Command.fromPartial({ text: "SELECT email FROM customers WHERE id = 1" }));
    const second = await decider.decide(id, conn, Command.fromPartial({ text: "SELECT email FROM customers WHERE id = 2" }));
    assert.equal(first.decidedBy, "policy");
    assert.equal(second.decidedBy, "cache");
    assert.equal(responder.calls.length, 1);
    assert.deepEqual(second.decision.masking, plan);
  } finally {
    decider.close();
    await responder.stop();
    await dnc.close();
  }
});

test("the dev hash key is generated once in the data dir (0600) and the environment wins", () => {
  const dir = mkdtempSync(join(tmpdir(), "gh-maskkey-"));
  dirs.push(dir);
  const saved = process.env.GATEHOUSE_MASKING_KEY;
  delete process.env.GATEHOUSE_MASKING_KEY;
  try {
    const k1 = loadMaskKey(dir);
    const k2 = loadMaskKey(dir);
    assert.equal(k1.id, k2.id);
    assert.ok(k1.secret.equals(k2.secret));
    assert.equal(statSync(join(dir, "masking", "hmac.key")).mode & 0o777, 0o600);
    process.env.GATEHOUSE_MASKING_KEY = Buffer.alloc(32, 7).toString("base64");
    assert.notEqual(loadMaskKey(dir).id, k1.id);
    process.env.GATEHOUSE_MASKING_KEY = "c2hvcnQ=";
    assert.throws(() => loadMaskKey(dir), /at least 16 bytes/);
  } finally {
    if (saved === undefined) delete process.env.GATEHOUSE_MASKING_KEY;
    else process.env.GATEHOUSE_MASKING_KEY = saved;
  }
});

test("the runtime masks with the real recognizers; hash tokens are stable per key", () => {
  const dir = mkdtempSync(join(tmpdir(), "gh-maskkey-"));
  dirs.push(dir);
  const rt = createMaskingRuntime(loadMaskKey(dir));
  const r = rt.maskText("reach me at jane.doe@example.com, SSN 536-22-8741", () => ({ kind: "redact" }));
  assert.equal(r.text, "reach me at [REDACTED:EMAIL], SSN [REDACTED:US_SSN]");
  assert.deepEqual(r.actions.map((a) => a.entity), ["EMAIL", "US_SSN"]);
  const h1 = rt.maskValue("4539578763621486", "CREDIT_CARD", { kind: "hash" });
  assert.match(String(h1), /^tok_/);
  assert.equal(createMaskingRuntime(loadMaskKey(dir)).maskValue("4539578763621486", "CREDIT_CARD", { kind: "hash" }), h1, "same key, same token");
  assert.equal(rt.maskValue("x", "EMAIL", { kind: "null" }), null);
  assert.match(String(rt.replaceTyped(23, "SALARY", "98765")), /^-?\d+$/);
});
