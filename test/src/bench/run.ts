// Entry point of `npm run bench`: runs each benchmark suite in turn, or only those
// named in BENCH_SUITES (comma-separated), e.g. BENCH_SUITES=pgbench npm run bench.
import { runPgbenchSuite } from "./pgbench.js";
import { runRecordingSuite } from "./recording.js";

const suites: Record<string, () => Promise<void>> = {
  pgbench: runPgbenchSuite,
  recording: runRecordingSuite,
};

const wanted = process.env.BENCH_SUITES ? process.env.BENCH_SUITES.split(",").map((s) => s.trim()) : Object.keys(suites);
for (const name of wanted) {
  if (!suites[name]) {
    process.stderr.write(`bench: unknown suite "${name}"; known: ${Object.keys(suites).join(", ")}\n`);
    process.exit(2);
  }
}
let failed = 0;
for (const name of wanted) {
  process.stdout.write(`\n== bench suite ${name} ==\n`);
  try {
    await suites[name]!();
  } catch (e) {
    failed += 1;
    process.stderr.write(`bench suite ${name} failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  }
}
process.exit(failed ? 1 : 0);
