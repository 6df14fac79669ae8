#!/usr/bin/env node
// Checks that proto/src/gen is exactly what `buf generate` makes from proto/ with
// the locked ts-proto: it generates into a temporary directory and compares every
// file. Run by `npm run proto` (after generating) and by the test suite, so a
// hand-edited or stale generated file fails the build's tests.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const protoDir = join(root, "proto");
const committed = join(protoDir, "src", "gen");
const buf = join(root, "node_modules", ".bin", "buf");

function files(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

const out = mkdtempSync(join(tmpdir(), "gatehouse-proto-"));
try {
  const r = spawnSync(buf, ["generate", "-o", out], { cwd: protoDir, encoding: "utf8" });
  if (r.status !== 0) {
    process.stderr.write(`check-proto: buf generate failed (exit ${r.status ?? r.signal}):\n${r.stderr}${r.error ? r.error.message : ""}\n`);
    process.exit(2);
  }
  const fresh = join(out, "src", "gen");
  const a = files(committed);
  const b = files(fresh);
  const problems = [];
  for (const f of b) if (!a.includes(f)) problems.push(`${f}: generated but not committed`);
  for (const f of a) if (!b.includes(f)) problems.push(`${f}: committed but not generated from proto/`);
  for (const f of a.filter((x) => b.includes(x))) {
    if (!readFileSync(join(committed, f)).equals(readFileSync(join(fresh, f)))) problems.push(`${f}: differs from what buf generate produces`);
  }
  if (problems.length) {
    process.stderr.write(`check-proto: proto/src/gen is not reproducible from proto/:\n  ${problems.join("\n  ")}\nRun \`npm run proto\` and commit the result.\n`);
    process.exit(1);
  }
  process.stdout.write(`check-proto: ${a.length} generated files match proto/\n`);
} finally {
  rmSync(out, { recursive: true, force: true });
}
