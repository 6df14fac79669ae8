// `gatehouse up` (and `npm start`): run the whole local stack as child processes,
// in dependency order, each waited on until it logs {"msg":"ready"}; stop them in
// reverse order on Ctrl-C; if one dies, say which and stop the rest.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync } from "node:fs";
import { connect, createServer } from "node:net";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { configPath, DEFAULT_NATS_URL, loadConfig, type GatehouseConfig } from "@gatehouse/runtime";
import { parseOptions, type CliCommand } from "../command.js";
import { generateSigningKeyFile, SIGNING_KEY_ENV } from "@gatehouse/audit-integrity";

const usage = `gatehouse up - run the whole local Gatehouse stack

SYNOPSIS
  gatehouse up [--config FILE] [--nats-port PORT] [--timeout SECONDS]
               [--json-logs | --quiet]
  npm start

DESCRIPTION
  Starts every part of Gatehouse on this machine as its own process, in
  dependency order, and waits for each one to report that it is ready:

    nats      NATS with JetStream (the bus and the durable audit stream)
    idp       embedded OpenID provider that mints agent tokens (dev only)
    demo-db   embedded PostgreSQL (PGlite) with synthetic customers/orders
    policy    Cedar policy service (policies from the configured directory)
    audit     audit writer + query service (embedded ClickHouse unless
              CLICKHOUSE_URL is set)
    approval  holds commands that policy sends for approval: tickets,
              standing grants, webhooks (state in NATS JetStream KV)
    listener  the listeners agents connect to: PostgreSQL, and SSH when
              listeners.ssh is configured
    api       REST API and start page

  NATS: when NATS_URL is set, that server is used; otherwise gatehouse up runs
  its own nats-server on 127.0.0.1 (port: --nats-port, else the port of
  nats.url in the configuration, else 14222) storing data in <dataDir>/nats.
  If nats-server is not installed and gatehouse up runs as root with apt-get
  available, it installs the Debian package (disable with GATEHOUSE_NO_APT=1).

  Each service's log lines are printed prefixed with its name. When everything
  is up, gatehouse up prints how to connect. Ctrl-C (SIGINT) or SIGTERM stops
  the services in reverse order and exits 0. If a service exits on its own,
  gatehouse up names it, shows its last log lines, stops the others and exits 1.
  The idp is skipped when idp.enabled is false; the demo database when
  GATEHOUSE_NO_DEMO_DB=1.

OPTIONS
  --config FILE        configuration file (default: $GATEHOUSE_CONFIG, else
                       ./gatehouse.yaml, else built-in defaults)
  --nats-port PORT     port of the nats-server started here (also
                       GATEHOUSE_NATS_PORT); ignored when NATS_URL is set
  --timeout SECONDS    how long each service may take to become ready
                       (default 120)
  --json-logs          print the services' raw JSON log lines
  --quiet              print only warnings and errors from the services
  -h, --help           show this help

ENVIRONMENT
  NATS_URL             use this NATS server instead of starting one
  GATEHOUSE_CONFIG     configuration file
  GATEHOUSE_NATS_PORT  port of the nats-server started here
  GATEHOUSE_NO_APT=1   never install nats-server with apt-get
  GATEHOUSE_NO_DEMO_DB=1  do not start the embedded demo database
  CLICKHOUSE_URL       write the audit trail to this ClickHouse server
  GATEHOUSE_DATA_DIR, GATEHOUSE_PG_PORT, GATEHOUSE_API_PORT,
  GATEHOUSE_IDP_PORT, GATEHOUSE_DEMO_DB_PORT   see README.md

EXAMPLES
  Start everything with the repository's demo configuration:
    npm start

  Use an existing NATS server and keep the output short:
    NATS_URL=nats://127.0.0.1:4222 gatehouse up --quiet

  Then, in another terminal:
    PGPASSWORD=$(npx gatehouse token --sub agent-1 --groups agents) \\
      psql "host=127.0.0.1 port=15432 user=agent-1 dbname=demo"

EXIT STATUS
  0  stopped by Ctrl-C / SIGTERM (under \`npm start\`, npm itself reports 130
     after a Ctrl-C, as it does for any interrupted script)
  1  a service failed to start or exited unexpectedly, or NATS is unavailable
  2  invalid options
`;

// packages/cli/dist/commands/up.js -> repository root
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

interface ServiceSpec {
  name: string;
  main: string;
}

const SERVICE_ORDER = ["idp", "demo-db", "policy", "audit", "approval", "listener", "api"] as const;

type Output = "pretty" | "json" | "quiet";

// ---------------------------------------------------------------- output ----

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: string, s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
const NAME_COLORS: Record<string, string> = { nats: "36", idp: "35", "demo-db": "34", policy: "33", audit: "32", approval: "93", listener: "96", api: "95", up: "1" };
const LEVELS: Record<number, [string, string]> = { 10: ["TRACE", "90"], 20: ["DEBUG", "90"], 30: ["INFO ", "32"], 40: ["WARN ", "33"], 50: ["ERROR", "31"], 60: ["FATAL", "41"] };
const HIDDEN_KEYS = new Set(["level", "time", "pid", "hostname", "service", "name", "msg", "v"]);

function prefix(name: string): string {
  return paint(NAME_COLORS[name] ?? "0", name.padEnd(8));
}

function say(msg: string): void {
  process.stderr.write(`${prefix("up")} ${msg}\n`);
}

function fmtValue(v: unknown): string {
  if (typeof v === "string") return /[\s="]/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** One child log line -> what we print (undefined: print nothing). */
export function formatLine(name: string, line: string, mode: Output): string | undefined {
  if (line.trim() === "") return undefined;
  if (mode === "json") return line;
  let rec: Record<string, unknown> | undefined;
  if (line.startsWith("{")) {
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      rec = undefined;
    }
  }
  if (!rec || typeof rec.level !== "number") {
    // nats-server: "[pid] date time [INF] text"; anything else verbatim.
    const m = /^\[\d+\] \S+ (\S+) \[(\w+)\] (.*)$/.exec(line);
    if (m) {
      const lvl = m[2] === "INF" ? 30 : m[2] === "WRN" ? 40 : m[2] === "DBG" || m[2] === "TRC" ? 20 : 50;
      if (mode === "quiet" && lvl < 40) return undefined;
      // nats-server's start banner is long; keep its few lines that matter.
      if (lvl < 40 && !/Server is ready|Listening for client|Store Directory|Server Exiting/.test(m[3]!)) return undefined;
      const [label, code] = LEVELS[lvl]!;
      return `${prefix(name)} ${m[1]!.slice(0, 8)} ${paint(code, label)} ${m[3]}`;
    }
    return mode === "quiet" ? undefined : `${prefix(name)} ${line}`;
  }
  const level = rec.level as number;
  if (mode === "quiet" && level < 40) return undefined;
  const [label, code] = LEVELS[level] ?? ["?    ", "0"];
  const time = typeof rec.time === "number" ? new Date(rec.time).toTimeString().slice(0, 8) : "";
  const extras = Object.entries(rec)
    .filter(([k]) => !HIDDEN_KEYS.has(k))
    .map(([k, v]) => `${paint("90", `${k}=`)}${fmtValue(v)}`)
    .join(" ");
  return `${prefix(name)} ${time} ${paint(code, label)} ${String(rec.msg ?? "")}${extras ? ` ${extras}` : ""}`;
}

// ------------------------------------------------------------- children ----

class Child {
  readonly proc: ChildProcess;
  private tail: string[] = [];
  private partial = { out: "", err: "" };
  private readyWaiters: Array<() => void> = [];
  ready = false;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stopping = false;

  constructor(
    readonly name: string,
    cmd: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    private readonly mode: Output,
    private readonly isReady: (line: string) => boolean,
  ) {
    // Own process group: a terminal's Ctrl-C reaches only us, and we stop the
    // services one by one in reverse order.
    this.proc = spawn(cmd, args, { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.exited = new Promise((res) => this.proc.once("exit", (code, signal) => res({ code, signal })));
    this.proc.once("error", (e) => this.onLine(`failed to run ${cmd}: ${e.message}`));
    this.proc.stdout!.on("data", (b: Buffer) => this.onData("out", b));
    this.proc.stderr!.on("data", (b: Buffer) => this.onData("err", b));
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null && this.proc.pid !== undefined;
  }

  lastLines(n = 15): string {
    return this.tail
      .slice(-n)
      .map((l) => `    ${formatLine(this.name, l, "pretty") ?? l}`)
      .join("\n");
  }

  waitReady(): Promise<void> {
    return this.ready ? Promise.resolve() : new Promise((r) => this.readyWaiters.push(r));
  }

  private onData(stream: "out" | "err", b: Buffer): void {
    const text = this.partial[stream] + b.toString("utf8");
    const lines = text.split("\n");
    this.partial[stream] = lines.pop()!;
    for (const l of lines) this.onLine(l.replace(/\r$/, ""));
  }

  private onLine(line: string): void {
    this.tail.push(line);
    if (this.tail.length > 50) this.tail.shift();
    const out = formatLine(this.name, line, this.mode);
    if (out !== undefined) process.stdout.write(`${out}\n`);
    if (!this.ready && this.isReady(line)) {
      this.ready = true;
      for (const w of this.readyWaiters.splice(0)) w();
    }
  }

  /** SIGTERM, SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 15_000): Promise<void> {
    this.stopping = true;
    if (!this.alive) return;
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => {
      say(`${this.name} did not stop within ${graceMs / 1000} s; killing it`);
      this.proc.kill("SIGKILL");
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

function isServiceReady(line: string): boolean {
  if (!line.includes('"ready"')) return false;
  try {
    return (JSON.parse(line) as { msg?: unknown }).msg === "ready";
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------ nats ----

function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/sbin"];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** nats-server, installing Debian's package when allowed; throws how to get it otherwise. */
function natsServerBinary(): string {
  const found = findExecutable("nats-server");
  if (found) return found;
  const hint = "install nats-server: apt-get install nats-server, or set NATS_URL";
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  if (!isRoot || process.env.GATEHOUSE_NO_APT === "1" || !findExecutable("apt-get")) throw new Error(hint);
  say("nats-server is not installed; installing the Debian package (set GATEHOUSE_NO_APT=1 to prevent this)");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () => spawnSync("apt-get", ["install", "-y", "-qq", "nats-server"], { stdio: ["ignore", "inherit", "inherit"], env });
  if (install().status !== 0) {
    spawnSync("apt-get", ["update", "-qq"], { stdio: ["ignore", "inherit", "inherit"], env });
    if (install().status !== 0) throw new Error(`apt-get could not install nats-server; ${hint}`);
  }
  const after = findExecutable("nats-server");
  if (!after) throw new Error(`nats-server is still not on PATH after installing it; ${hint}`);
  return after;
}

function natsPort(opt: string | undefined, config: GatehouseConfig): number {
  const raw = opt ?? process.env.GATEHOUSE_NATS_PORT;
  if (raw !== undefined && raw !== "") {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`--nats-port / GATEHOUSE_NATS_PORT must be a port number, got "${raw}"`);
    return n;
  }
  // The configuration's nats.url names the port the CLI commands will use.
  if (config.nats.url !== DEFAULT_NATS_URL) {
    try {
      const u = new URL(config.nats.url.split(",")[0]!);
      if (["127.0.0.1", "localhost"].includes(u.hostname) && u.port) return Number(u.port);
    } catch {
      // not a URL: fall through to the default
    }
  }
  return 14222;
}

// -------------------------------------------------------------- preflight ----

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once("error", () => res(false));
    s.listen(port, host, () => s.close(() => res(true)));
  });
}

/** Can a TCP connection be opened to the first server of a NATS URL? */
function natsReachable(url: string): Promise<boolean> {
  let host = "127.0.0.1";
  let port = 4222;
  try {
    const u = new URL(url.split(",")[0]!.trim());
    host = u.hostname || host;
    port = u.port ? Number(u.port) : port;
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((res) => {
    const s = connect({ host, port, timeout: 3000 });
    s.once("connect", () => {
      s.destroy();
      res(true);
    });
    s.once("timeout", () => {
      s.destroy();
      res(false);
    });
    s.once("error", () => res(false));
  });
}

/** Name every configured port that something else already holds. */
async function busyPorts(ports: Array<{ what: string; host: string; port: number }>): Promise<string[]> {
  const busy: string[] = [];
  for (const p of ports) {
    if (p.port > 0 && !(await portFree(p.host, p.port))) busy.push(`${p.host}:${p.port} (${p.what})`);
  }
  return busy;
}

class UsageError extends Error {}

// ------------------------------------------------------------------- run ----

function banner(config: GatehouseConfig, cfgFile: string | undefined, natsUrl: string, started: string[]): string {
  const pg = config.listeners.postgres;
  const connection = Object.entries(config.connections).find(([, c]) => c.protocol === "postgres")?.[0] ?? "demo";
  const cfg = cfgFile && resolve(cfgFile) !== resolve("gatehouse.yaml") ? ` --config ${cfgFile}` : "";
  const natsNote = natsUrl !== config.nats.url ? `\n  (NATS is at ${natsUrl}; export NATS_URL=${natsUrl} for the CLI commands)` : "";
  const lines = [
    "",
    paint("1", `Gatehouse is up: ${started.join(", ")}`),
    "",
    "  Get a token for an agent (prints a JWT, valid 15 minutes):",
    `    npx gatehouse token${cfg} --sub agent-1 --groups agents`,
    "",
  ];
  if (pg) {
    lines.push(
      "  Connect through the gateway with psql:",
      `    PGPASSWORD=$(npx gatehouse token${cfg} --sub agent-1 --groups agents) \\`,
      `      psql "host=${pg.host} port=${pg.port} user=agent-1 dbname=${connection}"`,
      "    then: SELECT name, email FROM customers LIMIT 5;   (allowed)",
      "          DROP TABLE customers;                        (denied by policy)",
      "          DELETE FROM orders WHERE id = 7;             (held for approval by group approvers)",
      "  Approve it (console or CLI):",
      `    ${config.approvals.consoleUrl}/console`,
      `    GATEHOUSE_TOKEN=$(npx gatehouse token${cfg} --sub alice --groups approvers --kind human) npx gatehouse approvals list`,
      "",
    );
  }
  const sshListener = config.listeners.ssh;
  const sshConnection = Object.entries(config.connections).find(([, c]) => c.protocol === "ssh");
  if (sshListener && sshConnection) {
    lines.push(
      "  SSH through the gateway (token as the password, or a key in listeners.ssh.authorizedKeys):",
      `    ssh -p ${sshListener.port} -o User=${sshConnection[1].upstream.user}@${sshConnection[0]} ${sshListener.host} uptime`,
      `    gateway host key (pin it in known_hosts): ${config.dataDir}/ssh/gatehouse_host_ed25519_key.pub`,
      "",
    );
  }
  lines.push(
    "  See the audit trail:",
    `    npx gatehouse audit query${cfg} "SELECT time, type, identity_subject, command_text, effect, policy_ids FROM events ORDER BY time DESC LIMIT 20"`,
    "",
    `  Start page and API: http://${config.api.host}:${config.api.port}/   health: http://${config.api.host}:${config.api.port}/healthz`,
  );
  if (config.idp.enabled) lines.push(`  Identity provider:  ${config.idp.issuer}`);
  lines.push(`  Data directory:     ${config.dataDir}${natsNote}`, "", "  Press Ctrl-C to stop.", "");
  return lines.join("\n");
}

async function up(values: Record<string, unknown>): Promise<number> {
  const mode: Output = values["json-logs"] ? "json" : values.quiet ? "quiet" : "pretty";
  const cfgFile = configPath(values.config as string | undefined);
  const config = loadConfig(cfgFile);
  const timeoutMs = Number(values.timeout ?? 120) * 1000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout must be a number of seconds, got "${String(values.timeout)}"`);

  // demoDb is not (yet) a key of the shared configuration; an env var turns it off.
  const demoDbEnabled = process.env.GATEHOUSE_NO_DEMO_DB !== "1";
  const services: ServiceSpec[] = SERVICE_ORDER.filter((s) => (s === "idp" ? config.idp.enabled : s === "demo-db" ? demoDbEnabled : true)).map((name) => ({
    name,
    main: join(repoRoot, "services", name, "dist", "main.js"),
  }));
  const missing = services.filter((s) => !existsSync(s.main));
  if (missing.length) {
    throw new Error(`not built: ${missing.map((s) => s.main).join(", ")}; run \`npm run setup\` (npm start does it for you)`);
  }

  const externalNats = process.env.NATS_URL;
  const port = externalNats ? 0 : natsPort(values["nats-port"] as string | undefined, config);
  const natsUrl = externalNats ?? `nats://127.0.0.1:${port}`;
  const ports = [
    ...(externalNats ? [] : [{ what: "nats, --nats-port", host: "127.0.0.1", port }]),
    ...(config.idp.enabled ? [{ what: "idp, idp.port / GATEHOUSE_IDP_PORT", host: config.idp.host, port: config.idp.port }] : []),
    ...Object.entries(config.listeners).map(([n, l]) => ({ what: `listener ${n}, listeners.${n}.port`, host: l.host, port: l.port })),
    { what: "api, api.port / GATEHOUSE_API_PORT", host: config.api.host, port: config.api.port },
    { what: "policy gRPC, policy.grpcPort", host: "127.0.0.1", port: config.policy.grpcPort },
    { what: "audit gRPC, audit.grpcPort", host: "127.0.0.1", port: config.audit.grpcPort },
    { what: "approval gRPC, approvals.grpcPort", host: "127.0.0.1", port: config.approvals.grpcPort },
  ];
  const busy = await busyPorts(ports);
  if (busy.length) {
    throw new Error(`ports already in use: ${busy.join("; ")}. Is another \`gatehouse up\` running? Stop it, or change the ports in ${cfgFile ?? "the configuration"}`);
  }

  const env: NodeJS.ProcessEnv = { ...process.env, NATS_URL: natsUrl };
  if (cfgFile) env.GATEHOUSE_CONFIG = cfgFile;
  const running: Child[] = [];
  let shuttingDown = false;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));

  const stopAll = async (code: number, why: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    say(why);
    for (const c of [...running].reverse()) {
      if (!c.alive) continue;
      say(`stopping ${c.name}`);
      await c.stop();
    }
    resolveDone(code);
  };
  let firstSignalAt = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (shuttingDown) {
      // A terminal's Ctrl-C reaches both `npm start` and us, and npm forwards it
      // too: only a second Ctrl-C a moment later means "force".
      if (Date.now() - firstSignalAt < 1500) return;
      say(`${sig} again: killing everything now`);
      for (const c of running) if (c.alive) c.proc.kill("SIGKILL");
      process.exit(130);
    }
    firstSignalAt = Date.now();
    void stopAll(0, `${sig}: stopping the stack`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // Last resort if we die abruptly: do not leave detached services behind.
  process.on("exit", () => {
    for (const c of running) if (c.alive) c.proc.kill("SIGTERM");
  });

  const launch = async (name: string, cmd: string, args: string[], ready: (line: string) => boolean, extraEnv: NodeJS.ProcessEnv = {}): Promise<boolean> => {
    const child = new Child(name, cmd, args, { ...env, ...extraEnv }, mode, ready);
    running.push(child);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      child.waitReady().then(() => "ready" as const),
      child.exited.then(() => "exited" as const),
      new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (outcome === "ready") {
      child.exited.then(({ code, signal }) => {
        if (!child.stopping && !shuttingDown) {
          process.stderr.write(`${prefix("up")} ${paint("31", `${name} exited unexpectedly (${signal ?? `exit code ${code}`}); its last log lines:`)}\n${child.lastLines()}\n`);
          void stopAll(1, "stopping the other services");
        }
      });
      return true;
    }
    if (shuttingDown) return false;
    const { code, signal } = child.alive ? { code: null, signal: null } : await child.exited;
    const what = outcome === "timeout" ? `did not become ready within ${timeoutMs / 1000} s (raise --timeout if this machine is slow)` : `exited before it was ready (${signal ?? `exit code ${code}`})`;
    process.stderr.write(`${prefix("up")} ${paint("31", `${name} ${what}; its last log lines:`)}\n${child.lastLines()}\n`);
    await stopAll(1, "stopping what was started");
    return false;
  };

  try {
    if (externalNats) {
      if (!(await natsReachable(natsUrl))) {
        throw new Error(`no NATS server answers at ${natsUrl} (NATS_URL): start it, or unset NATS_URL to let gatehouse up run its own`);
      }
      say(`using the NATS server at ${natsUrl} (NATS_URL)`);
    } else {
      const bin = natsServerBinary();
      const store = join(config.dataDir, "nats");
      mkdirSync(store, { recursive: true });
      say(`starting nats-server on 127.0.0.1:${port} (JetStream data in ${store})`);
      // One Go scheduler thread: on a small machine shared with the services, Go's
      // hand-offs between threads cost more than the messages (docs/decisions.md).
      const natsEnv = { GOMAXPROCS: process.env.GOMAXPROCS ?? "1" };
      if (!(await launch("nats", bin, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", store], (l) => l.includes("Server is ready"), natsEnv))) return done;
    }
    // Development key that signs the audit checkpoints: generated once in the
    // data directory (never committed); production sets audit.signingKey or
    // $GATEHOUSE_AUDIT_SIGNING_KEY.
    if (!process.env[SIGNING_KEY_ENV] && !existsSync(config.audit.signingKey)) {
      const signer = generateSigningKeyFile(config.audit.signingKey);
      say(`generated a development audit signing key ${config.audit.signingKey} (key id ${signer.keyId})`);
    }
    for (const s of services) {
      if (shuttingDown) break;
      say(`starting ${s.name}`);
      if (!(await launch(s.name, process.execPath, [s.main, ...(cfgFile ? ["--config", cfgFile] : [])], isServiceReady))) return done;
    }
  } catch (e) {
    void stopAll(1, (e as Error).message);
    return done;
  }
  if (!shuttingDown) {
    process.stdout.write(banner(config, cfgFile && values.config ? (values.config as string) : undefined, natsUrl, running.map((c) => c.name)));
  }
  return done;
}

const command: CliCommand = {
  usage,
  async run(args) {
    let values: Record<string, unknown>;
    try {
      ({ values } = parseOptions(
        args,
        {
          config: { type: "string" },
          "nats-port": { type: "string" },
          timeout: { type: "string" },
          "json-logs": { type: "boolean" },
          quiet: { type: "boolean", short: "q" },
        },
        usage,
      ));
    } catch (e) {
      process.stderr.write(`gatehouse up: ${(e as Error).message}`);
      return 2;
    }
    try {
      return await up(values);
    } catch (e) {
      process.stderr.write(`gatehouse up: ${(e as Error).message}\n`);
      return e instanceof UsageError ? 2 : 1;
    }
  },
};
export default command;
