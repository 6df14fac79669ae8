#!/usr/bin/env node
// `npm test`: run every compiled test file (dist/**/*.test.js) with Node's own
// test runner. Extra arguments pass through, e.g.
//   npm test -- --test-name-pattern=decision
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const TOP = ["proto", "packages", "plugins", "services", "test", "scripts", "bench"];

/** All *.test.js files under a dist/ directory, skipping node_modules. */
function collect(dir, insideDist, out) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    if (e.name === "node_modules" || e.name.startsWith(".")) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) collect(p, insideDist || e.name === "dist", out);
    else if (insideDist && e.isFile() && e.name.endsWith(".test.js")) out.push(p);
  }
}

const files = [];
for (const top of TOP) {
  const dir = join(root, top);
  if (existsSync(dir)) collect(dir, false, files);
}
files.sort();
if (files.length === 0) {
  process.stderr.write("run-tests: no compiled tests found (dist/**/*.test.js); run `npm run setup` first.\n");
  process.exit(1);
}
process.stderr.write(`run-tests: ${files.length} test files\n`);

const timeoutMs = Number(process.env.GATEHOUSE_TEST_TIMEOUT_MS ?? 300_000);
const concurrency = process.env.GATEHOUSE_TEST_CONCURRENCY ?? "2";
const args = [
  "--test",
  `--test-concurrency=${concurrency}`,
  `--test-timeout=${timeoutMs}`,
  ...process.argv.slice(2),
  ...files.map((f) => relative(root, f)),
];
const r = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" });
if (r.error) {
  process.stderr.write(`run-tests: could not start node: ${r.error.message}\n`);
  process.exit(1);
}
process.exit(r.status ?? 1);
