// Console bench: page latency with 1,000,000 events in the audit store.
//
// Seeds BENCH_CONSOLE_ROWS rows (default 1,000,000) of realistic history into
// embedded ClickHouse through the audit store's insert path
// (support/console-seed.ts), then starts a private nats-server, the real audit
// service process on that store and the api service, and requests each console
// page BENCH_CONSOLE_REPS times (default 50) with an auditor's session cookie:
// the sessions list with and without filters, a session page, a recording and
// each dashboard. Every request goes the whole way: HTTP -> api -> NATS ->
// audit service -> chDB, plus the AuditorQuery event acknowledged by JetStream.
// Prints p50/p95 per page. Target: p95 under 300 ms.
//
//   BENCH_SUITES=console npm run bench
//   node test/dist/bench/console.js
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, loadavg } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { openAuditStore } from "@gatehouse/audit-store";
import { createLogger, connectBus, resolveConfig, type GatehouseConfig, type Logger } from "@gatehouse/runtime";
import type { NatsConnection } from "@nats-io/transport-node";
import { startTokenForge } from "../support/token-forge.js";
import { freePort, repoRoot, startNats, startProcess } from "../support/processes.js";
import { seedConsoleHistory } from "../support/console-seed.js";

interface PageResult {
  page: string;
  p50: number;
  p95: number;
  max: number;
  bytes: number;
}

/** The api service's entry point (loaded from its build: the test package does not depend on it). */
interface ApiModule {
  startApiService(config: GatehouseConfig, opts: { nc: NatsConnection; log: Logger; port: number }): Promise<{ url: string; stop(): Promise<void> }>;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

export async function runConsoleBench(): Promise<PageResult[]> {
  const targetRows = Number(process.env.BENCH_CONSOLE_ROWS ?? 1_000_000);
  const reps = Number(process.env.BENCH_CONSOLE_REPS ?? 50);
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-console-"));
  const chdbPath = join(dir, "clickhouse");
  const out = (s: string) => process.stdout.write(`${s}\n`);
  try {
    const t0 = Date.now();
    const store = await openAuditStore({ chdbPath });
    const seed = await seedConsoleHistory(store, targetRows);
    const seconds = (Date.now() - t0) / 1000;
    const summary = (await store.internalQuery("SELECT (SELECT count() FROM gatehouse.events) AS events, (SELECT uniqExact(session_id) FROM gatehouse.session_summary) AS sessions"))[0]!;
    await store.close();
    out(`seeded ${seed.rows.toLocaleString("en-US")} rows (${seed.events.toLocaleString("en-US")} events, ${seed.sessions.toLocaleString("en-US")} sessions, ${seed.identities} identities) in ${seconds.toFixed(1)} s; store: ${summary.events} rows, ${summary.sessions} sessions`);

    const nats = await startNats();
    const forge = await startTokenForge();
    const cfgFile = join(dir, "gatehouse.yaml");
    writeFileSync(cfgFile, `dataDir: ${JSON.stringify(dir)}\nnats:\n  url: ${nats.url}\naudit:\n  chdbPath: ${JSON.stringify(chdbPath)}\n  grpcPort: ${await freePort()}\n`);
    const audit = await startProcess("audit", process.execPath, [join(repoRoot, "services/audit/dist/main.js"), "--config", cfgFile], { ready: /"msg":"ready"/, env: { NATS_URL: nats.url, CLICKHOUSE_URL: "" }, timeoutMs: 300_000 });
    const nc = await connectBus("bench-console", nats.url);
    const { startApiService } = (await import(pathToFileURL(join(repoRoot, "services/api/dist/index.js")).href)) as ApiModule;
    const config = resolveConfig({ dataDir: dir, nats: { url: nats.url }, identity: { issuers: [forge.issuerConfig()], clockSkewSeconds: 30 } } as never, dir);
    config.nats.url = nats.url;
    const api = await startApiService(config, { nc, log: createLogger("bench-api", "silent"), port: 0 });
    const cookie = `gh_session=${await forge.mint({ sub: "bench-auditor", groups: ["auditors"], kind: "human" })}`;
    const sid = encodeURIComponent(seed.sampleSession);
    const day = new Date(seed.lastMicros / 1000 - 3 * 86_400_000).toISOString().slice(0, 10);
    const pages: Array<[string, string]> = [
      ["sessions (no filter)", "/console/sessions"],
      ["sessions (page 5)", "/console/sessions?page=5"],
      ["sessions (denied + masked)", "/console/sessions?denied=1&masked=1"],
      ["sessions (identity + approved)", `/console/sessions?identity=${encodeURIComponent(seed.sampleIdentity)}&approved=1`],
      ["sessions (connection + time range)", `/console/sessions?connection=pg-prod&from=${day}T00:00&to=${day}T12:00`],
      ["session page", `/console/sessions/${sid}`],
      ["dashboard access (7d)", "/console/dashboards/access?range=7d"],
      ["dashboard access (30d)", "/console/dashboards/access?range=30d"],
      ["dashboard denied (30d)", "/console/dashboards/denied?range=30d"],
      ["dashboard approvals (30d)", "/console/dashboards/approvals?range=30d"],
      ["dashboard masking (30d)", "/console/dashboards/masking?range=30d"],
    ];
    const results: PageResult[] = [];
    try {
      for (const [name, path] of pages) {
        const times: number[] = [];
        let bytes = 0;
        for (let i = 0; i < reps + 3; i++) {
          const t = performance.now();
          const res = await fetch(`${api.url}${path}`, { headers: { cookie } });
          const body = await res.text();
          const ms = performance.now() - t;
          if (res.status !== 200) throw new Error(`${name}: HTTP ${res.status}: ${body.slice(0, 500)}`);
          if (i >= 3) times.push(ms); // the first requests warm caches (JIT, ClickHouse marks)
          bytes = body.length;
        }
        const r = { page: name, p50: pct(times, 50), p95: pct(times, 95), max: Math.max(...times), bytes };
        results.push(r);
        out(`${name.padEnd(36)} p50 ${r.p50.toFixed(1).padStart(7)} ms   p95 ${r.p95.toFixed(1).padStart(7)} ms   max ${r.max.toFixed(1).padStart(7)} ms   ${(bytes / 1024).toFixed(0)} KiB`);
      }
    } finally {
      await api.stop();
      await nc.close();
      await audit.stop();
      await nats.stop();
      await forge.close();
    }
    out(`load average during the run: ${loadavg().map((l) => l.toFixed(2)).join(" ")} (2 cores, shared)`);
    const worst = Math.max(...results.map((r) => r.p95));
    out(`worst p95: ${worst.toFixed(1)} ms (target < 300 ms): ${worst < 300 ? "met" : "MISSED"}`);
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  await runConsoleBench();
}
