// What SQL session recording costs on the statement path: pgbench -S through the
// real PostgreSQL plugin, hosted in this process with the plugin tests' fake
// gateway (decisions and audit in memory, so what is left is the relay, masking
// hooks and the recorder), once with a recording sink and once without,
// interleaved. Reports TPS and this process's CPU time per transaction.
// BENCH_SECONDS, BENCH_REPS and BENCH_CLIENTS shorten or lengthen it.
import { join } from "node:path";
import pg from "pg";
import { run } from "../support/clients.js";
import { repoRoot } from "../support/processes.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 4);

interface FakeGatewayLike {
  recording?: unknown;
  recordings: Map<string, { text: string }>;
  events: unknown[];
}
interface TestListenerLike {
  port: number;
  gw: FakeGatewayLike;
  stop(): Promise<void>;
}
interface FakeModule {
  FakeGateway: new (connections?: Record<string, unknown>) => FakeGatewayLike;
  GOOD_TOKEN: string;
  startTestListener(config: Record<string, unknown>, gw: FakeGatewayLike): Promise<TestListenerLike>;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "test" });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

export async function runRecordingSuite(): Promise<string> {
  const fake = (await import(join(repoRoot, "plugins/protocol-postgres/dist/testing/fake-gateway.js"))) as FakeModule;
  const db = `gh_rec_bench_${process.pid}`;
  await admin(`CREATE DATABASE ${db}`);
  try {
    const init = await run("pgbench", ["-i", "-s", "1", "-q", "-h", "127.0.0.1", "-U", "postgres", db]);
    if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    const connections = { demo: { protocol: "postgres", upstream: { host: "127.0.0.1", port: 5432, database: db, user: "postgres", sslmode: "disable" }, tags: {} } };
    const results: Record<string, { tps: number[]; cpuUs: number[]; bytesPerTxn: number[] }> = { recorded: { tps: [], cpuUs: [], bytesPerTxn: [] }, "not recorded": { tps: [], cpuUs: [], bytesPerTxn: [] } };
    for (let rep = 0; rep < REPS; rep++) {
      for (const mode of Object.keys(results)) {
        const gw = new fake.FakeGateway(connections);
        // The fake keeps events in memory; drop them so memory stays flat over a run.
        gw.events.push = () => 0;
        if (mode === "not recorded") gw.recording = undefined;
        const t = await fake.startTestListener({}, gw);
        try {
          const cpu0 = process.cpuUsage();
          const r = await run(
            "pgbench",
            ["-S", "-n", "-M", "simple", "-c", String(CLIENTS), "-j", "2", "-T", String(SECONDS), "-h", "127.0.0.1", "-p", String(t.port), "-U", "agent-1", "demo"],
            { env: { PGPASSWORD: fake.GOOD_TOKEN, PGSSLMODE: "disable" }, timeoutMs: (SECONDS + 60) * 1000 },
          );
          const cpu = process.cpuUsage(cpu0);
          if (r.code !== 0) throw new Error(`pgbench failed: ${r.stderr}`);
          const txns = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1] ?? 0);
          const tps = Number(/tps = ([\d.]+)/.exec(r.stdout)?.[1] ?? 0);
          const bytes = [...gw.recordings.values()].reduce((n, x) => n + Buffer.byteLength(x.text), 0);
          results[mode]!.tps.push(tps);
          results[mode]!.cpuUs.push(((cpu.user + cpu.system) / Math.max(1, txns)));
          results[mode]!.bytesPerTxn.push(bytes / Math.max(1, txns));
        } finally {
          await t.stop();
        }
      }
    }
    const lines = [
      `pgbench -S -M simple, ${CLIENTS} clients, ${SECONDS}s x ${REPS} (interleaved), plugin in this process with the fake gateway (an in-memory recording sink; no bus):`,
      "",
      "| mode | TPS (median) | gateway CPU µs/txn (median) | recording bytes/txn |",
      "|---|---:|---:|---:|",
      ...Object.entries(results).map(([mode, r]) => `| ${mode} | ${Math.round(median(r.tps))} | ${median(r.cpuUs).toFixed(1)} | ${median(r.bytesPerTxn).toFixed(0)} |`),
    ];
    process.stdout.write(lines.join("\n") + "\n");
    return lines.join("\n");
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runRecordingSuite();
