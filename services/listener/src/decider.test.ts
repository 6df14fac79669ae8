import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { NatsConnection } from "@nats-io/transport-node";
import { Command, Connection, Effect, Identity } from "@gatehouse/proto";
import { createLogger, subjects } from "@gatehouse/runtime";
import { DependencyError } from "@gatehouse/plugin-sdk";
import { initSql } from "@gatehouse/sql";
import { PolicyDecider, policyVersionOf } from "./decider.js";
import { startNats as startTestNats, type TestNats } from "@gatehouse/testing";
import { allow, startTestPolicyResponder, type TestPolicyResponder } from "./testing/policy-responder.js";

let nats: TestNats;
let nc: NatsConnection;
const log = createLogger("listener-test", "silent");

before(async () => {
  await initSql();
  nats = await startTestNats();
  nc = await nats.connect();
});
after(async () => {
  await nc.close();
  await nats.stop();
});

const alice = Identity.fromPartial({ subject: "alice", name: "agent-1", groups: ["agents", "readers"], kind: "agent", issuer: "http://idp" });
const db = Connection.fromPartial({ name: "orders", protocol: "postgres", tags: { env: "prod" } });
const cmd = (text: string) => Command.fromPartial({ id: "s:1", text, protocol: "postgres", connection: "orders" });

/** Wait (bounded) for a condition that another connection's message makes true. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function setup(opts: { cacheSize?: number; deadlineMs?: number } = {}): Promise<{ decider: PolicyDecider; responder: TestPolicyResponder; done(): Promise<void> }> {
  const responder = startTestPolicyResponder(nc);
  const deciderNc = await nats.connect();
  const decider = new PolicyDecider(deciderNc, { deadlineMs: opts.deadlineMs ?? 2000, cacheSize: opts.cacheSize ?? 100, log });
  await nc.flush();
  await deciderNc.flush();
  return {
    decider,
    responder,
    async done() {
      decider.close();
      await responder.stop();
      await deciderNc.close();
    },
  };
}

test("miss then hit: the second identical command is answered from the cache", async () => {
  const { decider, responder, done } = await setup();
  try {
    const c1 = cmd("SELECT * FROM t WHERE id = 1");
    const r1 = await decider.decide(alice, db, c1);
    assert.equal(r1.decidedBy, "policy");
    assert.equal(r1.decision.effect, Effect.EFFECT_ALLOW);
    assert.notEqual(c1.fingerprint, "", "fingerprint filled in");
    assert.deepEqual(c1.statements.map((s) => s.action), ["sql:select"], "statements filled from the classification");
    assert.equal(responder.calls.length, 1);
    assert.equal(responder.calls[0]!.command!.fingerprint, c1.fingerprint, "policy service sees the fingerprint");

    // Different constant, same fingerprint: a hit.
    const c2 = cmd("select *  from t where id = 42");
    const r2 = await decider.decide(alice, db, c2);
    assert.equal(r2.decidedBy, "cache");
    assert.equal(r2.decision.effect, Effect.EFFECT_ALLOW);
    assert.deepEqual(c2.statements.map((s) => s.action), ["sql:select"]);
    assert.equal(responder.calls.length, 1);
    assert.deepEqual({ hits: decider.cache.stats().hits, size: decider.cache.stats().size }, { hits: 1, size: 1 });

    // Mutating the returned decision does not change the cached one.
    r2.decision.effect = Effect.EFFECT_DENY;
    assert.equal((await decider.decide(alice, db, cmd("SELECT * FROM t WHERE id = 3"))).decision.effect, Effect.EFFECT_ALLOW);
  } finally {
    await done();
  }
});

test("different groups, subjects, kinds and connections do not share entries; group order does", async () => {
  const { decider, responder, done } = await setup();
  try {
    const text = "DELETE FROM t WHERE id = 1";
    await decider.decide(alice, db, cmd(text));
    await decider.decide({ ...alice, groups: ["agents"] }, db, cmd(text));
    await decider.decide({ ...alice, subject: "bob" }, db, cmd(text));
    await decider.decide({ ...alice, kind: "ci" }, db, cmd(text));
    await decider.decide(alice, { ...db, name: "billing" }, cmd(text));
    assert.equal(responder.calls.length, 5);
    const r = await decider.decide({ ...alice, groups: ["readers", "agents"] }, db, cmd(text));
    assert.equal(r.decidedBy, "cache");
    assert.equal(responder.calls.length, 5);
  } finally {
    await done();
  }
});

test("text that does not parse is never cached", async () => {
  const { decider, responder, done } = await setup();
  try {
    const c = cmd("SELEC oops FROM");
    assert.equal((await decider.decide(alice, db, c)).decidedBy, "policy");
    assert.equal(c.fingerprint, "");
    assert.equal((await decider.decide(alice, db, cmd("SELEC oops FROM"))).decidedBy, "policy");
    assert.equal(responder.calls.length, 2);
    assert.equal(decider.cache.stats().size, 0);
  } finally {
    await done();
  }
});

test("decisions not marked cacheable are not cached", async () => {
  const { decider, responder, done } = await setup();
  try {
    responder.answer = () => allow("v1", { cacheable: false });
    await decider.decide(alice, db, cmd("SELECT 1"));
    assert.equal((await decider.decide(alice, db, cmd("SELECT 1"))).decidedBy, "policy");
    assert.equal(responder.calls.length, 2);
  } finally {
    await done();
  }
});

test("a gatehouse.policy.changed message clears the cache", async () => {
  const { decider, responder, done } = await setup();
  try {
    await decider.decide(alice, db, cmd("SELECT 1"));
    assert.equal((await decider.decide(alice, db, cmd("SELECT 2"))).decidedBy, "cache");
    const clears = decider.cache.stats().clears;
    nc.publish(subjects.policyChanged, new TextEncoder().encode("v2"));
    await until(() => decider.cache.stats().clears > clears, "the policy change to be seen");
    assert.equal(decider.cache.stats().size, 0);
    assert.equal(decider.cache.stats().version, "v2");
    responder.answer = () => allow("v2", { effect: Effect.EFFECT_DENY });
    const r = await decider.decide(alice, db, cmd("SELECT 3"));
    assert.equal(r.decidedBy, "policy");
    assert.equal(r.decision.effect, Effect.EFFECT_DENY);
    assert.equal(responder.calls.length, 2);
    assert.equal((await decider.decide(alice, db, cmd("SELECT 4"))).decision.effect, Effect.EFFECT_DENY);
    assert.equal(responder.calls.length, 2);
  } finally {
    await done();
  }
});

test("an answer with a different policy version drops the older entries", async () => {
  const { decider, responder, done } = await setup();
  try {
    await decider.decide(alice, db, cmd("SELECT 1"));
    await decider.decide(alice, db, cmd("DELETE FROM t WHERE id = 1"));
    assert.equal(decider.cache.stats().size, 2);
    responder.answer = () => allow("v2", { effect: Effect.EFFECT_DENY });
    // A miss (new fingerprint) answered under v2: the v1 entries go.
    await decider.decide(alice, db, cmd("UPDATE t SET a = 1 WHERE id = 2"));
    assert.equal(decider.cache.stats().size, 1);
    assert.equal(decider.cache.stats().version, "v2");
    const r = await decider.decide(alice, db, cmd("SELECT 1"));
    assert.equal(r.decidedBy, "policy");
    assert.equal(r.decision.effect, Effect.EFFECT_DENY);
  } finally {
    await done();
  }
});

test("an answer that was in flight across a policy change is not cached", async () => {
  const { decider, responder, done } = await setup();
  try {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    responder.answer = async () => {
      await gate;
      return allow("v1");
    };
    const pending = decider.decide(alice, db, cmd("SELECT 1"));
    await until(() => responder.calls.length === 1, "the decide call to arrive");
    const clears = decider.cache.stats().clears;
    nc.publish(subjects.policyChanged, new TextEncoder().encode(JSON.stringify({ version: "v2" })));
    await until(() => decider.cache.stats().clears > clears, "the policy change to be seen");
    release();
    assert.equal((await pending).decidedBy, "policy");
    assert.equal(decider.cache.stats().size, 0, "stale answer was not stored");
    responder.answer = () => allow("v2");
    assert.equal((await decider.decide(alice, db, cmd("SELECT 1"))).decidedBy, "policy");
    assert.equal(responder.calls.length, 2);
  } finally {
    await done();
  }
});

test("a NATS disconnect clears the cache (policy changes may have been missed)", async () => {
  const { decider, responder, done } = await setup();
  try {
    await decider.decide(alice, db, cmd("SELECT 1"));
    assert.equal(decider.cache.stats().size, 1);
    await nats.restart();
    // Cleared on disconnect and again on reconnect.
    await until(() => decider.cache.stats().clears >= 2, "the reconnect to be seen");
    assert.equal(decider.cache.stats().size, 0);
    // Wait until the responder's connection is back too.
    for (let i = 0; ; i++) {
      try {
        await nc.flush();
        break;
      } catch (e) {
        if (i > 100) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.equal((await decider.decide(alice, db, cmd("SELECT 1"))).decidedBy, "policy");
    assert.equal(responder.calls.length, 2);
  } finally {
    await done();
  }
});

test("the cache holds at most cacheSize entries, evicting the least recently used", async () => {
  const { decider, responder, done } = await setup({ cacheSize: 2 });
  try {
    await decider.decide(alice, db, cmd("SELECT a FROM t"));
    await decider.decide(alice, db, cmd("SELECT b FROM t"));
    await decider.decide(alice, db, cmd("SELECT a FROM t")); // touch a
    await decider.decide(alice, db, cmd("SELECT c FROM t")); // evicts b
    assert.equal(responder.calls.length, 3);
    assert.equal((await decider.decide(alice, db, cmd("SELECT a FROM t"))).decidedBy, "cache");
    assert.equal((await decider.decide(alice, db, cmd("SELECT b FROM t"))).decidedBy, "policy");
    assert.equal(decider.cache.stats().size, 2);
  } finally {
    await done();
  }
});

test("fail closed: no policy service -> DependencyError(policy) naming it", async () => {
  const deciderNc = await nats.connect();
  const decider = new PolicyDecider(deciderNc, { deadlineMs: 300, cacheSize: 10, log });
  try {
    await assert.rejects(decider.decide(alice, db, cmd("SELECT 1")), (e: unknown) => {
      assert.ok(e instanceof DependencyError);
      assert.equal(e.dependency, "policy");
      assert.match(e.message, /^policy service is not running .*PolicyService\.Decide.*; the statement was not executed$/);
      return true;
    });
  } finally {
    decider.close();
    await deciderNc.close();
  }
});

test("fail closed: a policy service that does not answer in time -> DependencyError naming the deadline", async () => {
  const { decider, responder, done } = await setup({ deadlineMs: 200 });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  try {
    responder.answer = async () => {
      await gate;
      return allow();
    };
    await assert.rejects(decider.decide(alice, db, cmd("SELECT 1")), (e: unknown) => {
      assert.ok(e instanceof DependencyError);
      assert.equal(e.dependency, "policy");
      assert.equal(e.message, "policy service did not answer within 200 ms; the statement was not executed");
      return true;
    });
    assert.equal(decider.cache.stats().size, 0);
  } finally {
    release();
    await done();
  }
});

test("fail closed: policy errors and answers without an effect are refused", async () => {
  const { decider, responder, done } = await setup();
  try {
    responder.answer = () => {
      throw new Error("cedar evaluation failed");
    };
    await assert.rejects(decider.decide(alice, db, cmd("SELECT 1")), /policy service failed \(INTERNAL\): cedar evaluation failed; the statement was not executed/);
    responder.answer = () => allow("v1", { effect: Effect.EFFECT_UNSPECIFIED });
    await assert.rejects(decider.decide(alice, db, cmd("SELECT 1")), (e: unknown) => e instanceof DependencyError && /without an effect/.test(e.message));
    assert.equal(decider.cache.stats().size, 0);
  } finally {
    await done();
  }
});

test("policyVersionOf reads plain text and JSON", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  assert.equal(policyVersionOf(enc("abc123")), "abc123");
  assert.equal(policyVersionOf(enc('{"version":"v9","files":3}')), "v9");
  assert.equal(policyVersionOf(enc("{broken")), undefined);
  assert.equal(policyVersionOf(enc("")), undefined);
});
