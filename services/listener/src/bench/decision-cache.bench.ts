// Micro-benchmark of decision-cache hits through PolicyDecider.decide (not a test):
//   node services/listener/dist/bench/decision-cache.bench.js
// Starts a private nats-server and the test policy responder, warms one entry,
// then measures hits/s with the fingerprint precomputed and with fingerprinting
// (libpg-query) on every call, as when a plugin leaves command.fingerprint empty.
import { Command, Connection, Identity } from "@gatehouse/proto";
import { createLogger } from "@gatehouse/runtime";
import { initSql, fingerprintSql } from "@gatehouse/sql";
import { PolicyDecider } from "../decider.js";
import { startNats as startTestNats } from "@gatehouse/testing";
import { startTestPolicyResponder } from "../testing/policy-responder.js";

const nats = await startTestNats();
const nc = await nats.connect();
try {
  await initSql();
  const responder = startTestPolicyResponder(nc);
  await nc.flush();
  const decider = new PolicyDecider(nc, { deadlineMs: 2000, cacheSize: 10000, log: createLogger("bench", "silent") });
  const identity = Identity.fromPartial({ subject: "agent-1", name: "bench", groups: ["agents", "readers", "ci"], kind: "agent", issuer: "http://127.0.0.1:15081" });
  const connection = Connection.fromPartial({ name: "orders", protocol: "postgres" });
  const text = "SELECT o.id, o.total FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = $1";
  await decider.decide(identity, connection, Command.fromPartial({ text }));
  const fp = fingerprintSql(text)!;

  async function measure(label: string, make: () => Command): Promise<void> {
    const n = 200_000;
    for (let i = 0; i < 10_000; i++) await decider.decide(identity, connection, make());
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const r = await decider.decide(identity, connection, make());
      if (r.decidedBy !== "cache") throw new Error("expected a cache hit");
    }
    const ns = Number(process.hrtime.bigint() - t0);
    console.log(`${label}: ${Math.round(n / (ns / 1e9)).toLocaleString("en-US")} hits/s, ${(ns / n / 1000).toFixed(2)} µs/hit`);
  }
  await measure("cache hit, fingerprint given   ", () => Command.fromPartial({ text, fingerprint: fp }));
  await measure("cache hit, fingerprint computed", () => Command.fromPartial({ text }));
  console.log(`policy service calls: ${responder.calls.length}`);
  decider.close();
  await responder.stop();
} finally {
  await nc.close();
  await nats.stop();
}
