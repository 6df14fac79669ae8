// `gatehouse up` end to end: the whole local stack as real processes on free
// ports (own nats-server, dev IdP, demo database, policy, audit, listener, api),
// the README walkthrough with real psql, then Ctrl-C and a crashed service.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { promisify } from "node:util";
import { freePort, repoRoot } from "@gatehouse/testing";

const run = promisify(execFile);
const cli = join(repoRoot, "packages/cli/dist/main.js");
const tmp = mkdtempSync(join(tmpdir(), "gatehouse-stack-"));
const cfg = join(tmp, "gatehouse.yaml");
const ports: Record<string, number> = {};
// The stack must start its own NATS and use only this file's ports.
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "NATS_URL" && !k.startsWith("GATEHOUSE_") && k !== "CLICKHOUSE_URL" && k !== "GOMAXPROCS"));

before(async () => {
  for (const k of ["nats", "pg", "idp", "demoDb", "api", "policyGrpc", "auditGrpc"]) ports[k] = await freePort();
  writeFileSync(
    cfg,
    `dataDir: ./data
nats: { url: "nats://127.0.0.1:${ports.nats}" }
listeners: { postgres: { host: 127.0.0.1, port: ${ports.pg} } }
idp: { port: ${ports.idp} }
demoDb: { port: ${ports.demoDb} }
connections:
  demo:
    protocol: postgres
    upstream: { host: 127.0.0.1, port: ${ports.demoDb}, database: postgres, user: postgres, sslmode: disable }
    tags: { env: dev, classification: confidential }
policies: ${JSON.stringify(join(repoRoot, "deploy/policies"))}
policy: { grpcPort: ${ports.policyGrpc} }
audit: { grpcPort: ${ports.auditGrpc} }
api: { port: ${ports.api} }
`,
  );
});

after(() => rmSync(tmp, { recursive: true, force: true }));

interface Stack {
  proc: ChildProcess;
  out(): string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
}

async function startStack(extra: string[] = []): Promise<Stack> {
  const proc = spawn(process.execPath, [cli, "up", "--config", cfg, ...extra], { cwd: tmp, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  proc.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  const exited = once(proc, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  const ok = await Promise.race([
    (async () => {
      while (!out.includes("Gatehouse is up")) {
        if (proc.exitCode !== null) return false;
        await new Promise((r) => setTimeout(r, 100));
      }
      return true;
    })(),
    exited.then(() => false),
  ]);
  assert.ok(ok, `gatehouse up did not come up:\n${out.slice(-5000)}`);
  return { proc, out: () => out, exited };
}

async function gatehouse(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [cli, ...args], { cwd: tmp, env, timeout: 60_000 });
  return stdout;
}

async function psql(token: string, sql: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run("psql", ["-X", "-At", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", `host=127.0.0.1 port=${ports.pg} user=agent-1 dbname=demo`, "-c", sql], {
      env: { ...env, PGPASSWORD: token },
      timeout: 60_000,
    });
    return { code: 0, stdout: stdout.trim(), stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** The environment of the nats-server listening on `port` (from /proc). */
function natsServerEnv(port: number): Record<string, string> {
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    let cmd: string[];
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    } catch {
      continue; // ended meanwhile
    }
    if (!/nats-server$/.test(cmd[0] ?? "") || cmd[cmd.indexOf("-p") + 1] !== String(port)) continue;
    const entries = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
    return Object.fromEntries(entries.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
  }
  throw new Error(`no nats-server process listens on port ${port}`);
}

/** The pids the services logged (pino's base "pid") in --json-logs mode. */
function pidOf(out: string, service: string): number {
  for (const line of out.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const rec = JSON.parse(line) as { service?: string; msg?: string; pid?: number };
      if (rec.service === service && rec.msg === "ready" && rec.pid) return rec.pid;
    } catch {
      // not JSON
    }
  }
  throw new Error(`no ready line from ${service}`);
}

test("npm start walkthrough: token, psql allowed and denied, audit rows, Ctrl-C exits 0", async () => {
  const stack = await startStack();
  let stopped = false;
  try {
    assert.match(stack.out(), new RegExp(`psql "host=127.0.0.1 port=${ports.pg} user=agent-1 dbname=demo"`));
    // A second `gatehouse up` on the same ports names them instead of half-starting.
    const second = await run(process.execPath, [cli, "up", "--config", cfg], { cwd: tmp, env, timeout: 60_000 }).then(() => 0, (e: { code: number; stderr: string }) => {
      assert.match(e.stderr, /ports already in use: 127\.0\.0\.1:\d+ \(nats/);
      return e.code;
    });
    assert.equal(second, 1);
    // Its own nats-server runs with one Go scheduler thread (docs/decisions.md).
    assert.equal(natsServerEnv(ports.nats!).GOMAXPROCS, "1");

    const token = (await gatehouse("token", "--config", cfg, "--sub", "agent-1", "--groups", "agents")).trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);

    const select = await psql(token, "SELECT count(*) FROM customers");
    assert.equal(select.code, 0, select.stderr);
    assert.equal(select.stdout, "1000");

    const drop = await psql(token, "DROP TABLE customers");
    assert.notEqual(drop.code, 0);
    assert.match(drop.stderr, /42501/);
    assert.match(drop.stderr, /denied by policy/);

    // The denied DROP is in the audit trail as a command row and a decision row.
    const sql = "SELECT type, command_text, policy_ids FROM gatehouse.events FINAL WHERE identity_subject = 'agent-1' AND command_text = 'DROP TABLE customers' ORDER BY type";
    let rows: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 100 && rows.length < 2; i++) {
      const out = await gatehouse("audit", "query", "--config", cfg, "--json", sql);
      rows = out.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      if (rows.length < 2) await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(rows.map((r) => r.type), ["command", "decision"]);
    assert.ok((rows[1]!.policy_ids as string[]).length > 0, "the decision row names the deciding policies");

    const health = (await (await fetch(`http://127.0.0.1:${ports.api}/healthz`)).json()) as { status: string };
    assert.equal(health.status, "ok");

    stack.proc.kill("SIGINT");
    const [code] = await stack.exited;
    stopped = true;
    assert.equal(code, 0, stack.out().slice(-3000));
    assert.match(stack.out(), /stopping api[\s\S]*stopping listener[\s\S]*stopping nats/);
    // Everything let go of its port.
    const probe = await fetch(`http://127.0.0.1:${ports.api}/healthz`).then(() => "answered", () => "refused");
    assert.equal(probe, "refused");
  } finally {
    if (!stopped) {
      stack.proc.kill("SIGINT");
      await stack.exited;
    }
  }
});

test("a service that dies is named and the rest are stopped (exit 1)", async () => {
  const stack = await startStack(["--json-logs"]);
  const policyPid = pidOf(stack.out(), "policy");
  process.kill(policyPid, "SIGKILL");
  const [code] = await stack.exited;
  assert.equal(code, 1);
  assert.match(stack.out(), /policy exited unexpectedly \(SIGKILL\)/);
  for (const svc of ["api", "listener", "audit", "demo-db", "idp"]) {
    const pid = pidOf(stack.out(), svc);
    assert.throws(() => process.kill(pid, 0), `${svc} (pid ${pid}) was stopped`);
  }
});
