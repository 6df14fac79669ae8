// Benchmark (not a test): N concurrent loops calling AuditPublisher.record(),
// each waiting for its JetStream ack before the next, like sessions running
// statements one after another. Prints acked events/s and p50/p99 latency.
//
//   node services/audit/dist/bench-publisher.js [--loops 1,8] [--seconds 5] [--nats URL]
//
// Without --nats it starts its own nats-server (JetStream, file storage, temp
// dir) so the real audit stream is left alone.
import { parseArgs } from "node:util";
import { Effect } from "@gatehouse/proto";
import { AuditPublisher, ensureAuditStream } from "@gatehouse/runtime";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { startNats, type TestNats } from "./testing/nats-server.js";
import { commandEvent } from "./testing/events.js";

const { values } = parseArgs({
  options: { loops: { type: "string", default: "1,8" }, seconds: { type: "string", default: "5" }, nats: { type: "string" } },
});
const loopCounts = String(values.loops).split(",").map(Number);
const seconds = Number(values.seconds);

const event = (session: string, seq: number) =>
  commandEvent(session, seq, {
    identity: { subject: "bench-agent", name: "bench", groups: ["ci"], kind: "agent" },
    command: { text: "SELECT id, name FROM users WHERE id = $1", params: [{ text: "42" }], statements: [{ kind: "select", action: "sql:select", tables: ["users"] }] },
    decision: { effect: Effect.EFFECT_ALLOW, policyIds: ["allow-read"], reason: "", policyVersion: "v1" },
  });

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function run(nc: NatsConnection, loops: number): Promise<void> {
  const pub = new AuditPublisher(nc);
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  const run = `${process.pid}-${loops}-${Date.now()}`;
  await Promise.all(
    Array.from({ length: loops }, async (_, l) => {
      for (let i = 1; performance.now() < end; i++) {
        const t0 = performance.now();
        await pub.record(event(`${run}-${l}`, i));
        latencies.push(performance.now() - t0);
      }
    }),
  );
  await pub.close();
  latencies.sort((a, b) => a - b);
  const rate = latencies.length / seconds;
  console.log(
    `loops=${loops}  events=${latencies.length}  ${rate.toFixed(0)} acked events/s  p50=${pct(latencies, 50).toFixed(2)} ms  p99=${pct(latencies, 99).toFixed(2)} ms`,
  );
}

let server: TestNats | undefined;
const url = values.nats ?? (server = await startNats()).url;
const nc = await connect({ servers: url });
try {
  await ensureAuditStream(nc);
  for (const loops of loopCounts) await run(nc, loops);
} finally {
  await nc.close();
  await server?.stop();
}
