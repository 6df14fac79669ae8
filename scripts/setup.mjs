#!/usr/bin/env node
// `npm run setup` (also run before `npm start` and `npm test`): install
// dependencies when the lockfile changed, then build incrementally. Plain Node,
// no dependencies: it runs before node_modules exists.
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const quiet = process.argv.includes("--quiet");
const say = (msg) => {
  if (!quiet) process.stderr.write(`setup: ${msg}\n`);
};
const fail = (msg) => {
  process.stderr.write(`setup: ${msg}\n`);
  process.exit(1);
};

const major = Number(process.versions.node.split(".")[0]);
if (major < 20) {
  fail(`Node.js ${process.versions.node} is too old; Gatehouse needs Node.js 20 or newer (https://nodejs.org, or: apt-get install nodejs from NodeSource).`);
}

const npm = process.platform === "win32" ? "npm.cmd" : "npm";
function run(cmd, args, what) {
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"], env: process.env });
  if (r.error) fail(`${what} could not start: ${r.error.message}`);
  if (r.status !== 0) fail(`${what} failed (exit ${r.status ?? r.signal}); see the output above.`);
  return Date.now() - started;
}

// 1. Dependencies: npm writes node_modules/.package-lock.json on every install, so
//    it is older than package-lock.json exactly when the lockfile changed since.
const lock = join(root, "package-lock.json");
const installed = join(root, "node_modules", ".package-lock.json");
if (!existsSync(lock)) fail("package-lock.json is missing; run this from a complete checkout of the repository.");
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  say("installing dependencies (npm ci)...");
  const started = Date.now();
  const ci = spawnSync(npm, ["ci", "--no-audit", "--no-fund"], { cwd: root, stdio: ["ignore", "inherit", "pipe"], env: process.env, encoding: "utf8" });
  if (ci.status !== 0) {
    // npm 11 can refuse its own lockfile when it omits other platforms' optional
    // binaries (EUSAGE "Missing: @bufbuild/buf-darwin-arm64 from lock file").
    // `npm install` then installs exactly the locked versions; CI checks that the
    // lockfile stayed unchanged.
    process.stderr.write(ci.stderr ?? "");
    say(`npm ci failed (exit ${ci.status ?? ci.signal}); installing the locked versions with npm install...`);
    run(npm, ["install", "--no-audit", "--no-fund"], "npm install");
  }
  say(`dependencies installed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

// 2. Build: TypeScript project references, incremental (fast when nothing changed).
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
if (!existsSync(tsc)) fail("TypeScript is not installed in node_modules; delete node_modules and run `npm run setup` again.");
say("building (tsc -b tsconfig.build.json)...");
const ms = run(process.execPath, [tsc, "-b", "tsconfig.build.json"], "the TypeScript build");
say(`build done in ${(ms / 1000).toFixed(1)} s`);
