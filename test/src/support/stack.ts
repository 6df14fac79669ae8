// A whole Gatehouse stack for end-to-end tests: a private nats-server, the
// policy, audit and listener services as separate processes (as in production),
// a token forge as the trusted OIDC issuer, and the real PostgreSQL on :5432 as
// the upstream of connection "pg".
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { AuditServiceService } from "@gatehouse/proto";
import { connectBus, natsClient } from "@gatehouse/runtime";
import type { NatsConnection } from "@nats-io/transport-node";
import { freePort, repoRoot, startNats, startProcess, type Proc } from "./processes.js";
import { startTokenForge, type TokenForge } from "./token-forge.js";

export type ServiceName = "policy" | "audit" | "listener" | "approval";

export interface StackOptions {
  /** Policy directory (default: the demo policies in deploy/policies). */
  policies?: string;
  /** Extra connections besides "pg". */
  connections?: Record<string, unknown>;
  /** Extra listeners besides "postgres" (e.g. ssh). */
  listeners?: Record<string, unknown>;
  /** Also run the approval service (held commands wait for DecideTicket over NATS). */
  approvals?: boolean;
  policyDeadlineMs?: number;
  auditAckTimeoutMs?: number;
  /** The `recordings` section of the configuration (e.g. a small maxBytesPerSession). */
  recordings?: Record<string, unknown>;
}

export interface Stack {
  dir: string;
  natsUrl: string;
  pgPort: number;
  forge: TokenForge;
  nc: NatsConnection;
  configFile: string;
  /** A libpq connection string for `user` with `token` as the password. */
  dsn(token: string, opts?: { user?: string; database?: string; sslmode?: string; extra?: string }): string;
  /** Read-only SQL on the audit store, through the audit service. */
  auditQuery(sql: string): Promise<Record<string, unknown>[]>;
  /** Poll until `sql` returns rows that satisfy `done` (the audit store is asynchronous). */
  waitForAudit(sql: string, done: (rows: Record<string, unknown>[]) => boolean, timeoutMs?: number): Promise<Record<string, unknown>[]>;
  startService(name: ServiceName): Promise<void>;
  stopService(name: ServiceName, signal?: NodeJS.Signals): Promise<void>;
  /** What a running service has logged (for assertion messages). */
  serviceOutput(name: ServiceName): string;
  stop(): Promise<void>;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-e2e-"));
  const nats = await startNats();
  const forge = await startTokenForge();
  const pgPort = await freePort();
  const config = {
    dataDir: join(dir, "data"),
    nats: { url: nats.url },
    listeners: { postgres: { host: "127.0.0.1", port: pgPort }, ...opts.listeners },
    identity: { issuers: [forge.issuerConfig()], clockSkewSeconds: 5 },
    connections: {
      pg: {
        protocol: "postgres",
        upstream: { host: "127.0.0.1", port: 5432, database: "test", user: "postgres", sslmode: "disable" },
        tags: { env: "test" },
      },
      ...opts.connections,
    },
    policies: opts.policies ?? join(repoRoot, "deploy/policies"),
    policy: { deadlineMs: opts.policyDeadlineMs ?? 1000, grpcPort: await freePort() },
    audit: { ackTimeoutMs: opts.auditAckTimeoutMs ?? 2000, chdbPath: join(dir, "clickhouse"), grpcPort: await freePort() },
    idp: { enabled: false },
    ...(opts.recordings ? { recordings: opts.recordings } : {}),
    ...(opts.approvals ? { approvals: { bucket: `approvals_e2e_${process.pid}_${Date.now() % 100000}`, consoleUrl: "http://127.0.0.1:9", grpcPort: await freePort() } } : {}),
  };
  const configFile = join(dir, "gatehouse.yaml");
  writeFileSync(configFile, stringify(config));
  const procs = new Map<ServiceName, Proc>();
  const env = { NATS_URL: nats.url, GATEHOUSE_CONFIG: configFile, GATEHOUSE_LOG_LEVEL: "info" };
  const startService = async (name: ServiceName) => {
    const p = await startProcess(name, process.execPath, [join(repoRoot, `services/${name}/dist/main.js`), "--config", configFile], {
      env,
      ready: /"msg":"ready"/,
      timeoutMs: 60_000,
    });
    procs.set(name, p);
  };
  // Order: audit first (creates the stream), policy, then the listener.
  for (const s of ["audit", "policy", ...(opts.approvals ? (["approval"] as const) : []), "listener"] as const) await startService(s);
  const nc = await connectBus("e2e-test", nats.url);
  const audit = natsClient(nc, AuditServiceService, { timeoutMs: 10_000 });
  const auditQuery = async (sql: string) => {
    const res = await audit.query({ sql, maxRows: 100_000, params: {} });
    return res.rows.map((r) => JSON.parse(r) as Record<string, unknown>);
  };
  return {
    dir,
    natsUrl: nats.url,
    pgPort,
    forge,
    nc,
    configFile,
    dsn(token, o = {}) {
      const parts = [
        `host=127.0.0.1`,
        `port=${pgPort}`,
        `user=${o.user ?? "agent-1"}`,
        `dbname=${o.database ?? "pg"}`,
        `password=${token}`,
        `sslmode=${o.sslmode ?? "disable"}`,
      ];
      if (o.extra) parts.push(o.extra);
      return parts.join(" ");
    },
    auditQuery,
    async waitForAudit(sql, done, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const rows = await auditQuery(sql);
        if (done(rows) || Date.now() > until) return rows;
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    startService,
    serviceOutput: (name) => procs.get(name)?.output() ?? "",
    async stopService(name, signal) {
      await procs.get(name)?.stop(signal);
      procs.delete(name);
    },
    async stop() {
      await nc.close().catch(() => {});
      for (const s of ["listener", "approval", "policy", "audit"] as const) await procs.get(s)?.stop();
      await nats.stop();
      await forge.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Output of a service, for assertion messages. */
export function describeFailure(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
