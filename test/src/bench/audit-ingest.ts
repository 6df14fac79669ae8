// Audit ingest benchmark (issue 5): the audit service as its own process with
// chaining and checkpoints on, embedded ClickHouse (chDB), a private nats-server.
//
// 1. Sustained ingest: BENCH_AUDIT_EVENTS events (default 200,000; command
//    events, two rows each) are in JetStream before the service starts; events/s
//    from "ready" until every event is chained, stored and sealed.
// 2. End-to-end lag at BENCH_AUDIT_RATE statements/s (default 1,000) for
//    BENCH_AUDIT_SECONDS (default 15): from the moment a listener would record
//    the statement (AuditPublisher.record(), as the listener does) until its
//    row is queryable in ClickHouse; p50 / p99 / max.
//
// Run alone: node test/dist/bench/audit-ingest.js
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { AuditEvent, AuditServiceService, Effect } from "@gatehouse/proto";
import { AuditPublisher, ensureAuditStream, natsClient } from "@gatehouse/runtime";
import { repoRoot, startNats, startProcess } from "@gatehouse/testing";

export interface AuditIngestResult {
  events: number;
  ingestEventsPerSecond: number;
  ingestSeconds: number;
  lagRate: number;
  lagSeconds: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
}

function event(session: string, seq: number): AuditEvent {
  return AuditEvent.fromPartial({
    id: `${session}:${seq}`,
    timeUnixMicros: Date.now() * 1000,
    sessionId: session,
    connection: "demo",
    protocol: "postgres",
    listenerId: "bench",
    identity: { subject: "agent-1", name: "agent-1", groups: ["agents"], kind: "agent", issuer: "http://127.0.0.1:15081" },
    body: {
      $case: "command",
      command: {
        command: { id: `${session}:c${seq}`, sessionId: session, seq, text: `SELECT name, email FROM customers WHERE id = ${seq}`, statements: [{ kind: "select", action: "sql:select", tables: ["customers"] }], fingerprint: "f1", mode: "simple" },
        decision: { effect: Effect.EFFECT_ALLOW, policyIds: ["allow-agents-read"], reason: "allowed", policyVersion: "v1", cacheable: true },
        decidedBy: "cache",
      },
    },
  });
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

export async function runAuditIngestBench(opts: { events?: number; rate?: number; seconds?: number; log?: (s: string) => void } = {}): Promise<AuditIngestResult> {
  const N = opts.events ?? Number(process.env.BENCH_AUDIT_EVENTS ?? 200_000);
  const rate = opts.rate ?? Number(process.env.BENCH_AUDIT_RATE ?? 1000);
  const seconds = opts.seconds ?? Number(process.env.BENCH_AUDIT_SECONDS ?? 15);
  const say = opts.log ?? ((s: string) => process.stdout.write(`${s}\n`));
  const nats = await startNats();
  const nc = await nats.connect();
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-audit-"));
  const config = join(dir, "gatehouse.yaml");
  writeFileSync(config, `dataDir: ${dir}\nnats: { url: "${nats.url}" }\naudit: { chdbPath: ${join(dir, "ch")}, grpcPort: 0, checkpointEvents: 10000, checkpointIntervalMs: 1000 }\n`);
  let svc;
  try {
    // Backlog, published the way listeners do (group commit).
    say(`audit-ingest: publishing ${N} events...`);
    await ensureAuditStream(nc);
    const pub = new AuditPublisher(nc, { ackTimeoutMs: 30_000 });
    const sessions = 100;
    await Promise.all(
      Array.from({ length: sessions }, async (_, s) => {
        for (let i = 1; i <= N / sessions; i++) await pub.record(event(`b${s}`, i));
      }),
    );
    const client = natsClient(nc, AuditServiceService, { timeoutMs: 30_000 });
    const scalar = async (sql: string) => Number(JSON.parse((await client.query({ sql, maxRows: 1, params: {} })).rows[0] ?? "{}").v ?? 0);

    svc = await startProcess("audit", process.execPath, [join(repoRoot, "services/audit/dist/main.js"), "--config", config], { ready: /"msg":"ready"/, timeoutMs: 120_000 });
    const t0 = performance.now();
    for (;;) {
      const sealed = await scalar("SELECT max(to_pos) AS v FROM gatehouse.checkpoints");
      if (sealed >= N) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const ingestSeconds = (performance.now() - t0) / 1000;
    const [counts] = (await client.query({ sql: "SELECT count() AS n, uniqExact(event_id) AS u FROM gatehouse.events WHERE type = 'command'", maxRows: 1, params: {} })).rows.map((l) => JSON.parse(l));
    if (Number(counts.n) !== N || Number(counts.u) !== N) throw new Error(`expected ${N} command rows, got count ${counts.n}, uniqExact ${counts.u}`);
    const ingestEventsPerSecond = N / ingestSeconds;
    say(`audit-ingest: ${N} events chained, stored and sealed in ${ingestSeconds.toFixed(2)} s: ${Math.round(ingestEventsPerSecond)} events/s`);

    // Lag at a steady rate.
    const total = rate * seconds;
    const published: number[] = [];
    const lags: number[] = new Array(total);
    let seen = 0;
    let polling = true;
    const poller = (async () => {
      while (polling || seen < total) {
        const m = (await scalar("SELECT max(chain_pos) AS v FROM gatehouse.events")) - N;
        const now = performance.now();
        for (; seen < Math.min(m, published.length); seen++) lags[seen] = now - published[seen]!;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const start = performance.now();
    const lagPub = new AuditPublisher(nc);
    const pending: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      published.push(performance.now());
      pending.push(lagPub.record(event("lag", i + 1)));
    }
    await Promise.all(pending);
    polling = false;
    await poller;
    await lagPub.close();
    await pub.close();
    const r: AuditIngestResult = {
      events: N,
      ingestEventsPerSecond,
      ingestSeconds,
      lagRate: rate,
      lagSeconds: seconds,
      lagP50Ms: pct(lags, 50),
      lagP99Ms: pct(lags, 99),
      lagMaxMs: Math.max(...lags),
    };
    say(`audit-ingest: lag statement -> queryable at ${rate}/s for ${seconds} s: p50 ${r.lagP50Ms.toFixed(0)} ms, p99 ${r.lagP99Ms.toFixed(0)} ms, max ${r.lagMaxMs.toFixed(0)} ms`);
    return r;
  } finally {
    await svc?.stop();
    await nc.close();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Entry for test/src/bench/run.ts: the report as a section of bench/RESULTS.md. */
export async function runAuditIngestSuite(): Promise<string> {
  const r = await runAuditIngestBench();
  return [
    "The audit service as its own process (hash chain and signed checkpoints on, embedded ClickHouse), fed through a private nats-server by the listeners' group-commit publisher:",
    "",
    "| measure | result | target |",
    "|---|---|---|",
    `| sustained ingest: ${r.events.toLocaleString("en-US")} command events (2 rows each) chained, stored and sealed | ${Math.round(r.ingestEventsPerSecond).toLocaleString("en-US")} events/s (${r.ingestSeconds.toFixed(1)} s) | >= 20,000 events/s: ${r.ingestEventsPerSecond >= 20_000 ? "met" : "NOT met"} |`,
    `| lag, statement recorded -> row queryable, at ${r.lagRate}/s for ${r.lagSeconds} s | p50 ${r.lagP50Ms.toFixed(0)} ms, p99 ${r.lagP99Ms.toFixed(0)} ms, max ${r.lagMaxMs.toFixed(0)} ms | p99 < 2 s: ${r.lagP99Ms < 2000 ? "met" : "NOT met"} |`,
  ].join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const r = await runAuditIngestBench();
  process.stdout.write(JSON.stringify(r) + "\n");
}
