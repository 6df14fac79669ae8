// Entry point of `npm run bench`: runs each benchmark suite in turn, or only those
// named in BENCH_SUITES (comma-separated), e.g. BENCH_SUITES=pgbench npm run bench.
// Each suite returns a markdown section; bench/RESULTS.md keeps one section per
// suite between `<!-- bench:NAME -->` markers, so a partial run replaces only its
// own sections and hand-written analysis outside the markers stays.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cpus, loadavg, totalmem } from "node:os";
import { repoRoot } from "../support/processes.js";
import { runPgbenchSuite } from "./pgbench.js";
import { runMaskingSuite } from "./masking.js";
import { runMaskingGatewaySuite } from "./masking-gateway.js";
import { runApprovalsSuite } from "./approvals.js";
import { runAuditIngestSuite } from "./audit-ingest.js";
import { runSshSuite } from "./ssh.js";
import { runConsoleBench } from "./console.js";
import { runRecordingSuite } from "./recording.js";

interface Suite {
  title: string;
  issue: string;
  run: () => Promise<string>;
}

const suites: Record<string, Suite> = {
  pgbench: { title: "PostgreSQL path: pgbench -S direct vs Gatehouse vs pgbouncer", issue: "#2", run: runPgbenchSuite },
  masking: { title: "Masking recognizers (precision/recall) and in-process vs MaskingService batches", issue: "#3", run: runMaskingSuite },
  "masking-gateway": { title: "Masking on the data path: 1,000,000-row SELECT", issue: "#3", run: runMaskingGatewaySuite },
  approvals: { title: "Approvals: approval to first result row", issue: "#4", run: runApprovalsSuite },
  "audit-ingest": { title: "Audit trail: sustained ingest and statement-to-queryable lag", issue: "#5", run: runAuditIngestSuite },
  ssh: { title: "SSH: exec throughput and per-connection overhead", issue: "#7", run: runSshSuite },
  recording: { title: "Recording cost on the PostgreSQL data path", issue: "#6", run: runRecordingSuite },
  console: { title: "Auditor console: page latency with 1,000,000 events", issue: "#6", run: runConsoleSuite },
};

async function runConsoleSuite(): Promise<string> {
  const pages = await runConsoleBench();
  const worst = Math.max(...pages.map((p) => p.p95));
  return [
    "Each page requested over HTTP with an auditor's session (api -> NATS -> audit service -> chDB, plus the acknowledged AuditorQuery event), store seeded with 1,000,000 rows:",
    "",
    "| page | p50 (ms) | p95 (ms) | max (ms) | KiB |",
    "|---|---|---|---|---|",
    ...pages.map((p) => `| ${p.page} | ${p.p50.toFixed(1)} | ${p.p95.toFixed(1)} | ${p.max.toFixed(1)} | ${(p.bytes / 1024).toFixed(0)} |`),
    "",
    `Worst p95 ${worst.toFixed(1)} ms; target under 300 ms: ${worst < 300 ? "met" : "NOT met"}.`,
  ].join("\n");
}

const results = process.env.BENCH_RESULTS ?? join(repoRoot, "bench/RESULTS.md");
const wanted = process.env.BENCH_SUITES ? process.env.BENCH_SUITES.split(",").map((s) => s.trim()) : Object.keys(suites);
for (const name of wanted) {
  if (!suites[name]) {
    process.stderr.write(`bench: unknown suite "${name}"; known: ${Object.keys(suites).join(", ")}\n`);
    process.exit(2);
  }
}

const HEADER = `# Benchmark results

Produced by \`npm run bench\` (test/src/bench/run.ts). Each section below is rewritten by the suite named in
its marker; \`BENCH_SUITES=name[,name]\` runs only those. Figures are medians over interleaved repetitions,
with the baseline (direct connection, pgbouncer) measured in the same run. Text outside the markers is
written by hand.
`;

function replaceSection(doc: string, name: string, body: string): string {
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i >= 0 && j > i) return doc.slice(0, i) + block + doc.slice(j + end.length);
  return `${doc.trimEnd()}\n\n${block}\n`;
}

/** The command line that reproduces a suite's run, with the BENCH_* settings in force. */
function command(name: string): string {
  const settings = Object.entries(process.env)
    .filter(([k]) => k.startsWith("BENCH_") && k !== "BENCH_SUITES" && k !== "BENCH_RESULTS")
    .map(([k, v]) => `${k}=${v}`)
    .sort();
  return [`BENCH_SUITES=${name}`, ...settings, "npm run bench"].join(" ");
}

let failed = 0;
for (const name of wanted) {
  const suite = suites[name]!;
  process.stdout.write(`\n== bench suite ${name} ==\n`);
  const load = loadavg()[0]!.toFixed(1);
  const started = Date.now();
  try {
    const body = await suite.run();
    const meta =
      `_Suite \`${name}\` (issue ${suite.issue}), ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ` +
      `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "?"}), ${Math.round(totalmem() / 2 ** 30)} GiB, load ${load} at start, ` +
      `${((Date.now() - started) / 1000).toFixed(0)} s. Command: \`${command(name)}\`._`;
    const doc = existsSync(results) ? readFileSync(results, "utf8") : HEADER;
    writeFileSync(results, replaceSection(doc, name, `## ${suite.title}\n\n${meta}\n\n${body}`));
    process.stdout.write(`bench: section "${name}" written to ${results}\n`);
  } catch (e) {
    failed += 1;
    process.stderr.write(`bench suite ${name} failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  }
}
process.exit(failed ? 1 : 0);
