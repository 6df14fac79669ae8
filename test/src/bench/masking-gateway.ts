// Masking on the data path: a 1,000,000-row SELECT (10 columns, 2 masked) read
// directly from PostgreSQL, through the gateway without masking (an identity no
// @mask policy applies to) and through the gateway with masking, in the same run;
// rows/s, wall time, and the listener's peak RSS while streaming 100k and 1M rows.
// The client is a minimal wire-protocol reader that counts DataRows and keeps
// none, so the figures are the gateway's, not a client's buffering.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startStack } from "../support/stack.js";
import { run } from "../support/clients.js";

const DB = `gh_bench_mask_${process.pid}`;
const ROWS = Number(process.env.BENCH_MASK_ROWS ?? 1_000_000);
const REPS = Number(process.env.BENCH_MASK_REPS ?? 3);
const SMALL = Number(process.env.BENCH_MASK_SMALL ?? 100_000);

const POLICY = `
@id("bench-read") permit (principal in Gatehouse::Group::"bench", action, resource);
@id("bench-mask-redact")
@mask("bench_rows.email=redact; bench_rows.ssn=redact")
permit (principal in Gatehouse::Group::"bench-redacted", action, resource);
@id("bench-mask")
@mask("bench_rows.email=redact; bench_rows.ssn=partial(4)")
permit (principal in Gatehouse::Group::"bench-masked", action, resource);
@id("bench-mask-hash")
@mask("bench_rows.email=redact; bench_rows.ssn=hash")
permit (principal in Gatehouse::Group::"bench-hashed", action, resource);
`;

function frame(type: string | null, body: Buffer): Buffer {
  const head = Buffer.alloc(type ? 5 : 4);
  if (type) head.write(type, 0, "latin1");
  head.writeInt32BE(body.length + 4, type ? 1 : 0);
  return Buffer.concat([head, body]);
}

/** Log in (trust or cleartext password), run one simple query, count DataRows and their bytes. */
function countRows(port: number, user: string, database: string, password: string, sql: string): Promise<{ rows: number; bytes: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect({ host: "127.0.0.1", port, noDelay: true });
    const params = Buffer.from(`user\0${user}\0database\0${database}\0\0`);
    const ver = Buffer.alloc(4);
    ver.writeInt32BE(196608);
    let buf: Buffer = Buffer.alloc(0);
    let rows = 0;
    let bytes = 0;
    let start = 0;
    let sent = false;
    s.on("connect", () => s.write(frame(null, Buffer.concat([ver, params]))));
    s.on("error", reject);
    s.on("data", (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      let pos = 0;
      while (buf.length - pos >= 5) {
        const len = buf.readInt32BE(pos + 1);
        if (buf.length - pos < len + 1) break;
        const t = buf[pos]!;
        if (t === 0x44) {
          rows++;
          bytes += len + 1;
        } else if (t === 0x52 && buf.readInt32BE(pos + 5) === 3) {
          s.write(frame("p", Buffer.from(password + "\0")));
        } else if (t === 0x45) {
          reject(new Error(`server error: ${buf.toString("utf8", pos + 5, pos + 1 + len)}`));
          s.destroy();
          return;
        } else if (t === 0x5a) {
          if (!sent) {
            sent = true;
            start = performance.now();
            s.write(frame("Q", Buffer.from(sql + "\0")));
          } else {
            const ms = performance.now() - start;
            s.end(frame("X", Buffer.alloc(0)));
            resolve({ rows, bytes, ms });
          }
        }
        pos += len + 1;
      }
      buf = buf.subarray(pos);
    });
  });
}

/** The listener process of a stack (its command line names the stack's config file). */
function listenerPid(configFile: string): number {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8");
      if (cmd.includes("services/listener/dist/main.js") && cmd.includes(configFile)) return Number(d);
    } catch {
      // process ended meanwhile
    }
  }
  throw new Error("listener process not found");
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Run `fn` while sampling the listener's RSS every 20 ms; returns fn's result and the peak. */
async function withPeakRss<T>(pid: number, fn: () => Promise<T>): Promise<{ result: T; peakMiB: number }> {
  let peak = rssMiB(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 20);
  try {
    const result = await fn();
    peak = Math.max(peak, rssMiB(pid));
    return { result, peakMiB: peak };
  } finally {
    clearInterval(timer);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function runMaskingGatewaySuite(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-mask-"));
  writeFileSync(join(dir, "bench.cedar"), POLICY);
  const psql = (sql: string, db = "postgres") => run("psql", ["-X", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-c", sql], { timeoutMs: 600_000 });
  await psql(`DROP DATABASE IF EXISTS ${DB}`);
  const created = await psql(`CREATE DATABASE ${DB}`);
  if (created.code !== 0) throw new Error(created.stderr);
  const fill = await psql(
    `CREATE TABLE bench_rows AS SELECT g AS id, 'user' || g || '@example.com' AS email, lpad((100000000 + g)::text, 9, '0') AS ssn,
       'name ' || g AS c4, md5(g::text) AS c5, g * 3 AS c6, now() AS c7, 'status-' || (g % 7) AS c8, g % 1000 AS c9, repeat('x', 20) AS c10
     FROM generate_series(1, ${ROWS}) g`,
    DB,
  );
  if (fill.code !== 0) throw new Error(fill.stderr);
  const stack = await startStack({
    policies: dir,
    connections: { benchmask: { protocol: "postgres", upstream: { host: "127.0.0.1", port: 5432, database: DB, user: "postgres", sslmode: "disable" }, tags: { env: "bench" } } },
  });
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const clearTok = await stack.forge.mint({ sub: "bench-clear", groups: ["bench"], exp });
  const maskTok = await stack.forge.mint({ sub: "bench-masked", groups: ["bench", "bench-masked"], exp });
  const redactTok = await stack.forge.mint({ sub: "bench-redacted", groups: ["bench", "bench-redacted"], exp });
  const hashTok = await stack.forge.mint({ sub: "bench-hashed", groups: ["bench", "bench-hashed"], exp });
  const pid = listenerPid(stack.configFile);
  const q = (n: number) => `SELECT id, email, ssn, c4, c5, c6, c7, c8, c9, c10 FROM bench_rows WHERE id <= ${n}`;
  const all = {
    direct: (sql: string) => countRows(5432, "postgres", DB, "", sql),
    "gateway, no masking": (sql: string) => countRows(stack.pgPort, "bench-clear", "benchmask", clearTok, sql),
    "gateway, 2 masked (redact, redact)": (sql: string) => countRows(stack.pgPort, "bench-redacted", "benchmask", redactTok, sql),
    "gateway, 2 masked (redact, partial)": (sql: string) => countRows(stack.pgPort, "bench-masked", "benchmask", maskTok, sql),
    "gateway, 2 masked (redact, hash)": (sql: string) => countRows(stack.pgPort, "bench-hashed", "benchmask", hashTok, sql),
  };
  // BENCH_MASK_TARGETS=regex keeps only the matching targets (direct always stays: it is the baseline).
  const only = process.env.BENCH_MASK_TARGETS ? new RegExp(process.env.BENCH_MASK_TARGETS) : undefined;
  const targets = Object.fromEntries(Object.entries(all).filter(([name]) => name === "direct" || !only || only.test(name)));
  const lines: string[] = [];
  try {
    // Warm-up (not measured): JIT, decision cache, catalog.
    for (const f of Object.values(targets)) await f(q(10_000));
    const samples = new Map<string, number[]>();
    const peaks = new Map<string, number>();
    for (const n of [SMALL, ROWS]) {
      for (let rep = 0; rep < REPS; rep++) {
        for (const [name, f] of Object.entries(targets)) {
          const { result, peakMiB } = await withPeakRss(pid, () => f(q(n)));
          if (result.rows !== n) throw new Error(`${name}: ${result.rows} rows, expected ${n}`);
          const key = `${n}\0${name}`;
          samples.set(key, [...(samples.get(key) ?? []), result.ms]);
          if (name !== "direct") peaks.set(key, Math.max(peaks.get(key) ?? 0, peakMiB));
          process.stdout.write(`${n} rows ${name} rep ${rep + 1}: ${result.ms.toFixed(0)} ms, ${((n / result.ms) * 1000).toFixed(0)} rows/s, listener RSS peak ${peakMiB.toFixed(0)} MiB\n`);
        }
      }
    }
    lines.push(
      "| rows | target | wall time (ms) | rows/s | vs direct | listener peak RSS (MiB) |",
      "|---|---|---|---|---|---|",
    );
    for (const n of [SMALL, ROWS]) {
      const d = median(samples.get(`${n}\0direct`)!);
      for (const name of Object.keys(targets)) {
        const ms = median(samples.get(`${n}\0${name}`)!);
        const peak = peaks.get(`${n}\0${name}`);
        lines.push(`| ${n} | ${name} | ${ms.toFixed(0)} | ${((n / ms) * 1000).toFixed(0)} | ${(ms / d).toFixed(2)}x | ${peak === undefined ? "-" : peak.toFixed(0)} |`);
      }
    }
  } finally {
    await stack.stop();
    await psql(`DROP DATABASE IF EXISTS ${DB}`);
    rmSync(dir, { recursive: true, force: true });
  }
  const title = `A SELECT of 10 columns (every value distinct), 2 masked, direct vs through the gateway; median of ${REPS} interleaved runs; a minimal wire client that keeps no rows; listener peak RSS sampled every 20 ms:`;
  process.stdout.write(`\n${title}\n${lines.join("\n")}\n`);
  return `${title}\n\n${lines.join("\n")}`;
}

// Run directly: node test/dist/bench/masking-gateway.js
if (import.meta.url === `file://${process.argv[1]}`) await runMaskingGatewaySuite();
