// `npm run bench` for the PostgreSQL path: pgbench -S (simple and extended
// protocol, 1 and 8 clients) directly against PostgreSQL, through Gatehouse
// (policy and audit on) and through pgbouncer when it is installed, all in the
// same run. Medians over repetitions; ratios against the direct baseline.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execFileSync } from "node:child_process";
import { run } from "../support/clients.js";
import { freePort, startNats, startProcess, type Proc } from "../support/processes.js";
import { startStack } from "../support/stack.js";
import { cpuDelta, cpuSnapshot } from "./cpu.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const DB = "gatehouse_bench";
const SCALE = Number(process.env.BENCH_SCALE ?? 10);

interface Sample {
  tps: number;
  medianLatencyMs: number;
  /** CPU microseconds per transaction by process, measured in the middle of the run. */
  cpuPerTx: Map<string, number>;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function pgbench(dsn: string, mode: string, clients: number, logDir: string): Promise<Sample> {
  rmSync(logDir, { recursive: true, force: true });
  execFileSync("mkdir", ["-p", logDir]);
  const running = run(
    "pgbench",
    ["-S", "-n", "-M", mode, "-c", String(clients), "-j", String(Math.min(clients, 2)), "-T", String(SECONDS), "-l", "--log-prefix", join(logDir, "tx"), dsn],
    { timeoutMs: (SECONDS + 60) * 1000 },
  );
  // CPU of every process between two points inside the run (connections are up,
  // so no process starts or ends in between), divided by the transactions that
  // completed between the same two points (from pgbench's per-transaction log).
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const margin = Math.min(1000, (SECONDS * 1000) / 5);
  await sleep(margin);
  const t1 = Date.now() * 1000;
  const c1 = cpuSnapshot();
  await sleep(SECONDS * 1000 - 2 * margin);
  const t2 = Date.now() * 1000;
  const c2 = cpuSnapshot();
  const r = await running;
  if (r.code !== 0) throw new Error(`pgbench failed (${mode}, ${clients} clients): ${r.stderr}\n${r.stdout}`);
  const tps = Number(/tps = ([\d.]+)/.exec(r.stdout)?.[1]);
  const failed = Number(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  if (failed > 0) throw new Error(`pgbench reported ${failed} failed transactions (${mode}, ${clients})`);
  // Per-transaction log: client_id tx_no latency_us script_no epoch us
  const lat: number[] = [];
  let inWindow = 0;
  for (const f of readdirSync(logDir)) {
    for (const line of readFileSync(join(logDir, f), "utf8").split("\n")) {
      if (!line) continue;
      const cols = line.split(" ");
      const v = Number(cols[2]);
      if (Number.isFinite(v)) lat.push(v);
      const at = Number(cols[4]) * 1_000_000 + Number(cols[5]);
      if (at >= t1 && at < t2) inWindow++;
    }
  }
  const cpuPerTx = new Map<string, number>();
  for (const [name, us] of cpuDelta(c1, c2)) cpuPerTx.set(name, inWindow > 0 ? us / inWindow : NaN);
  return { tps, medianLatencyMs: median(lat) / 1000, cpuPerTx };
}

async function startPgbouncer(dir: string): Promise<{ port: number; proc: Proc } | undefined> {
  // Debian installs it in /usr/sbin, which is not always on PATH.
  let bin: string;
  try {
    bin = execFileSync("sh", ["-c", "command -v pgbouncer || command -v /usr/sbin/pgbouncer"], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
  const port = await freePort();
  const ini = join(dir, "pgbouncer.ini");
  writeFileSync(join(dir, "userlist.txt"), '"postgres" ""\n');
  writeFileSync(
    ini,
    `[databases]\n${DB} = host=127.0.0.1 port=5432 dbname=${DB}\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = ${port}\nauth_type = trust\nauth_file = ${join(dir, "userlist.txt")}\npool_mode = transaction\nmax_client_conn = 100\ndefault_pool_size = 20\nunix_socket_dir =\nlogfile = ${join(dir, "pgbouncer.log")}\npidfile = ${join(dir, "pgbouncer.pid")}\n`,
  );
  // pgbouncer refuses to run as root unless told the user to switch to.
  const args = process.getuid?.() === 0 ? ["-u", "postgres", ini] : [ini];
  execFileSync("chmod", ["-R", "a+rwX", dir]);
  const proc = await startProcess("pgbouncer", bin, args, { ready: /process up|listening on/i, timeoutMs: 10_000 }).catch(async () => {
    // Some builds log only to the logfile: give it a moment and probe the port.
    return undefined;
  });
  if (!proc) return undefined;
  return { port, proc };
}

/**
 * The CPU budget behind the 8-client target: at 40 % of direct TPS the machine's
 * cores allow cores * 1e6 / (0.4 * direct TPS) µs of CPU per statement, for
 * PostgreSQL, pgbench and everything in between together.
 */
function budgetLines(results: Array<{ mode: string; clients: number; target: string; tps: number; cpu: Map<string, number> }>, shown: string[]): string[] {
  const total = (r: { cpu: Map<string, number> } | undefined) => (r ? shown.reduce((a, k) => a + (r.cpu.get(k) ?? 0), 0) : NaN);
  const out = ["CPU budget of the 8-client target (40 % of direct TPS), from the figures above:", ""];
  for (const mode of ["simple", "extended"]) {
    const at = (target: string) => results.find((r) => r.mode === mode && r.clients === 8 && r.target === target);
    const direct = at("direct");
    if (!direct) continue;
    const budget = (cpus().length * 1e6) / (0.4 * direct.tps);
    const fwd = at("node forwarder");
    const floorRun = at("forwarder + JetStream ack");
    const gh = at("gatehouse");
    const pct = (r: { tps: number } | undefined) => (r ? ((100 * r.tps) / direct.tps).toFixed(0) : "?");
    out.push(
      `- ${mode}: 40 % of ${direct.tps.toFixed(0)} TPS leaves ${budget.toFixed(0)} µs of CPU per statement on ${cpus().length} cores. ` +
        `Direct uses ${total(direct).toFixed(0)} µs; the bare Node.js forwarder run ${total(fwd).toFixed(0)} µs (${pct(fwd)} % of direct); ` +
        `the forwarder with a JetStream ack per message ${total(floorRun).toFixed(0)} µs (${pct(floorRun)} % of direct); ` +
        `Gatehouse ${total(gh).toFixed(0)} µs, of which nats-server alone ${(gh?.cpu.get("nats-server") ?? NaN).toFixed(0)} µs and the audit service ${(gh?.cpu.get("audit") ?? NaN).toFixed(0)} µs.`,
    );
  }
  return out;
}

/** The bare Node.js byte forwarder (forwarder.ts) in front of PostgreSQL. */
async function startForwarder(natsUrl?: string): Promise<{ port: number; proc: Proc }> {
  const port = await freePort();
  const script = join(dirname(fileURLToPath(import.meta.url)), "forwarder.js");
  const args = [script, String(port), "127.0.0.1", "5432", ...(natsUrl ? [natsUrl] : [])];
  const proc = await startProcess("forwarder", process.execPath, args, { ready: /forwarder listening/, timeoutMs: 30_000 });
  return { port, proc };
}

/** The PostgreSQL-path suite; returns its section of bench/RESULTS.md. */
export async function runPgbenchSuite(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-"));
  execFileSync("chmod", ["a+rwx", dir]);
  await run("psql", ["-X", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", `DROP DATABASE IF EXISTS ${DB}`]);
  const created = await run("psql", ["-X", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", `CREATE DATABASE ${DB}`]);
  if (created.code !== 0) throw new Error(created.stderr);
  const init = await run("pgbench", ["-i", "-q", "-s", String(SCALE), "-h", "127.0.0.1", "-U", "postgres", DB], { timeoutMs: 600_000 });
  if (init.code !== 0) throw new Error(init.stderr);
  const stack = await startStack({
    connections: {
      bench: { protocol: "postgres", upstream: { host: "127.0.0.1", port: 5432, database: DB, user: "postgres", sslmode: "disable" }, tags: { env: "bench" } },
    },
  });
  const bouncer = await startPgbouncer(dir);
  const forwarder = await startForwarder();
  // Its own nats-server (run like the stack's), so its stream is not the audit trail.
  const floorNats = await startNats();
  const floor = await startForwarder(floorNats.url);
  const token = await stack.forge.mint({ sub: "bench-agent", groups: ["agents"], exp: Math.floor(Date.now() / 1000) + 3600 });
  const targets: Array<[string, string]> = [
    ["direct", `host=127.0.0.1 port=5432 user=postgres dbname=${DB} sslmode=disable`],
    ["gatehouse", stack.dsn(token, { user: "bench-agent", database: "bench" })],
    ["node forwarder", `host=127.0.0.1 port=${forwarder.port} user=postgres dbname=${DB} sslmode=disable`],
    ["forwarder + JetStream ack", `host=127.0.0.1 port=${floor.port} user=postgres dbname=${DB} sslmode=disable`],
  ];
  if (bouncer) targets.push(["pgbouncer", `host=127.0.0.1 port=${bouncer.port} user=postgres dbname=${DB} sslmode=disable`]);
  const results: Array<{ mode: string; clients: number; target: string; tps: number; lat: number; cpu: Map<string, number> }> = [];
  try {
    // Warm-up (not measured): JIT, connection paths and the decision cache.
    for (const [, dsn] of targets) await run("pgbench", ["-S", "-n", "-c", "2", "-T", "2", dsn]);
    for (const mode of ["simple", "extended"]) {
      for (const clients of [1, 8]) {
        const samples = new Map<string, Sample[]>();
        // Interleave targets per repetition so drift affects all alike.
        for (let rep = 0; rep < REPS; rep++) {
          for (const [name, dsn] of targets) {
            const s = await pgbench(dsn, mode, clients, join(dir, `log-${name}`));
            samples.set(name, [...(samples.get(name) ?? []), s]);
            process.stdout.write(`${mode} c=${clients} ${name} rep ${rep + 1}: ${s.tps.toFixed(0)} tps, median ${s.medianLatencyMs.toFixed(3)} ms\n`);
          }
        }
        for (const [name] of targets) {
          const ss = samples.get(name)!;
          const cpu = new Map<string, number>();
          for (const k of new Set(ss.flatMap((x) => [...x.cpuPerTx.keys()]))) cpu.set(k, median(ss.map((x) => x.cpuPerTx.get(k) ?? 0)));
          results.push({ mode, clients, target: name, tps: median(ss.map((s) => s.tps)), lat: median(ss.map((s) => s.medianLatencyMs)), cpu });
        }
      }
    }
  } finally {
    await bouncer?.proc.stop();
    await forwarder.proc.stop();
    await floor.proc.stop();
    await floorNats.stop();
    await stack.stop();
    await run("psql", ["-X", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", `DROP DATABASE IF EXISTS ${DB}`]);
    rmSync(dir, { recursive: true, force: true });
  }
  const direct = (mode: string, clients: number) => results.find((r) => r.mode === mode && r.clients === clients && r.target === "direct")!;
  const lines = [
    `pgbench -S (select-only) through the PostgreSQL listener, ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"}).`,
    `pgbench -S (select-only), scale ${SCALE}, ${SECONDS} s per run, ${REPS} runs per cell interleaved across targets; figures are medians over the runs;`,
    "latency is the median per-transaction latency from pgbench's transaction log. Gatehouse runs with the demo policy, token auth,",
    "per-statement decision (with its cache) and a JetStream-acked audit event before every statement reaches PostgreSQL.",
    "`node forwarder` is a reference point, not Gatehouse: a Node.js process that only copies bytes between each client and",
    "its upstream connection (test/src/bench/forwarder.ts), so it shows what any Node.js proxy reaches on this machine.",
    "`forwarder + JetStream ack` is the same forwarder that also waits, before each client message goes upstream, for the",
    "JetStream ack of one small event (Gatehouse's group-commit publisher and audit stream settings, its own nats-server):",
    "the floor of the required design, with no parsing, policy, ClickHouse or recording.",
    ...(bouncer ? [] : ["pgbouncer is not installed here, so it was not measured (apt-get install pgbouncer)."]),
    "",
    "| protocol | clients | target | TPS | vs direct | median latency (ms) | added vs direct (ms) |",
    "|---|---|---|---|---|---|---|",
    ...results.map((r) => {
      const d = direct(r.mode, r.clients);
      return `| ${r.mode} | ${r.clients} | ${r.target} | ${r.tps.toFixed(0)} | ${((100 * r.tps) / d.tps).toFixed(0)}% | ${r.lat.toFixed(3)} | ${(r.lat - d.lat).toFixed(3)} |`;
    }),
    "",
  ];
  // Where the CPU goes: per transaction, by process (medians over the runs).
  const shown = ["postgres", "pgbench", "pgbouncer", "forwarder", "listener", "nats-server", "audit", "policy"];
  lines.push(
    "",
    "CPU per transaction by process (µs of user+system CPU between two points inside each run, divided by the transactions completed",
    "between them; `postgres` is every PostgreSQL process on the machine, so other load on it shows there):",
    "",
    `| protocol | clients | target | ${shown.join(" | ")} | total |`,
    `|---|---|---|${shown.map(() => "---|").join("")}---|`,
    ...results.map((r) => {
      const cells = shown.map((k) => r.cpu.get(k) ?? 0);
      return `| ${r.mode} | ${r.clients} | ${r.target} | ${cells.map((c) => (c ? c.toFixed(0) : "-")).join(" | ")} | ${cells.reduce((a, b) => a + b, 0).toFixed(0)} |`;
    }),
  );
  lines.push("", ...budgetLines(results, shown));
  return lines.join("\n");
}
