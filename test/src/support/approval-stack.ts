// The stack for the approval suites: like stack.ts, plus the approval service, the
// api service (REST + console) and the dev IdP (console login), each its own
// process. Agents' and CLI approvers' tokens come from the token forge; console
// users sign in at the dev IdP. The upstream is a fresh database on the real
// PostgreSQL with `orders` (and `order_notes`) tables.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { stringify } from "yaml";
import { AuditServiceService } from "@gatehouse/proto";
import { connectBus, natsClient } from "@gatehouse/runtime";
import type { NatsConnection } from "@nats-io/transport-node";
import { freePort, repoRoot, startNats, startProcess, type Proc } from "./processes.js";
import { startTokenForge, type TokenForge } from "./token-forge.js";

export type ApprovalServiceName = "policy" | "audit" | "approval" | "listener" | "api" | "idp";

export interface ApprovalStack {
  dir: string;
  natsUrl: string;
  pgPort: number;
  apiUrl: string;
  idpUrl: string;
  database: string;
  forge: TokenForge;
  nc: NatsConnection;
  configFile: string;
  dsn(token: string, user?: string): string;
  /** node-postgres client options for the gateway. */
  pgOptions(token: string, user?: string): pg.ClientConfig;
  /** A client straight to the upstream database (test setup and checks). */
  upstream(): Promise<pg.Client>;
  auditQuery(sql: string): Promise<Record<string, unknown>[]>;
  waitForAudit(sql: string, done: (rows: Record<string, unknown>[]) => boolean, timeoutMs?: number): Promise<Record<string, unknown>[]>;
  startService(name: ApprovalServiceName): Promise<void>;
  stopService(name: ApprovalServiceName, signal?: NodeJS.Signals): Promise<void>;
  /** Run the CLI (`node packages/cli/dist/main.js ...`) with the given environment. */
  cli(args: string[], env?: NodeJS.ProcessEnv, input?: string): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

/** Extra policies for the suites: a short-lived approval for order_archive deletes (expiry test). */
const TEST_POLICY = `@id("archive-delete-short-approval")
@reason("deleting archived orders needs an approver within 3 seconds")
@approval("approvers")
@expires("3s")
permit (
  principal in Gatehouse::Group::"agents",
  action == Gatehouse::Action::"sql:delete",
  resource
)
when { context.write_tables.contains("order_archive") };
`;

export async function startApprovalStack(opts: { webhooks?: unknown[]; listeners?: Record<string, unknown>; connections?: Record<string, unknown> } = {}): Promise<ApprovalStack> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-approvals-"));
  const policies = join(dir, "policies");
  cpSync(join(repoRoot, "deploy/policies"), policies, { recursive: true });
  rmSync(join(policies, "demo.test.yaml"), { force: true });
  writeFileSync(join(policies, "zz-test-approvals.cedar"), TEST_POLICY);

  const database = `gh_approvals_${process.pid}_${Date.now() % 100000}`;
  const admin = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "test" });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const up = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database });
  await up.connect();
  await up.query(`CREATE TABLE orders (id int PRIMARY KEY, customer_id int, total numeric, status text);
    INSERT INTO orders SELECT g, g % 10, g * 1.5, 'new' FROM generate_series(1, 500) g;
    CREATE TABLE order_notes (order_id int, note text); INSERT INTO order_notes VALUES (14, 'refund');
    CREATE TABLE order_archive (id int PRIMARY KEY); INSERT INTO order_archive SELECT generate_series(1, 50);`);
  await up.end();

  const nats = await startNats();
  const forge = await startTokenForge();
  const [pgPort, apiPort, idpPort, policyGrpc, auditGrpc, approvalGrpc] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const idpUrl = `http://127.0.0.1:${idpPort}`;
  const config = {
    dataDir: join(dir, "data"),
    nats: { url: nats.url },
    listeners: { postgres: { host: "127.0.0.1", port: pgPort }, ...opts.listeners },
    identity: { issuers: [forge.issuerConfig(), { issuer: idpUrl, audience: "gatehouse", groupsClaim: "groups" }], clockSkewSeconds: 5 },
    connections: {
      pg: { protocol: "postgres", upstream: { host: "127.0.0.1", port: 5432, database, user: "postgres", sslmode: "disable" }, tags: { env: "test" } },
      ...opts.connections,
    },
    policies,
    policy: { deadlineMs: 2000, grpcPort: policyGrpc },
    audit: { ackTimeoutMs: 3000, chdbPath: join(dir, "clickhouse"), grpcPort: auditGrpc },
    api: { host: "127.0.0.1", port: apiPort },
    idp: { enabled: true, host: "127.0.0.1", port: idpPort, issuer: idpUrl, audience: "gatehouse" },
    approvals: { bucket: `approvals_e2e_${process.pid}`, consoleUrl: apiUrl, grpcPort: approvalGrpc, webhooks: opts.webhooks ?? [] },
  };
  const configFile = join(dir, "gatehouse.yaml");
  writeFileSync(configFile, stringify(config));
  const procs = new Map<ApprovalServiceName, Proc>();
  const env = { NATS_URL: nats.url, GATEHOUSE_CONFIG: configFile, GATEHOUSE_LOG_LEVEL: "info" };
  const startService = async (name: ApprovalServiceName) => {
    const p = await startProcess(name, process.execPath, [join(repoRoot, `services/${name}/dist/main.js`), "--config", configFile], { env, ready: /"msg":"ready"/, timeoutMs: 60_000 });
    procs.set(name, p);
  };
  const order: ApprovalServiceName[] = ["idp", "audit", "policy", "approval", "listener", "api"];
  for (const s of order) await startService(s);
  const nc = await connectBus("e2e-approvals", nats.url);
  const audit = natsClient(nc, AuditServiceService, { timeoutMs: 10_000 });
  const auditQuery = async (sql: string) => (await audit.query({ sql, maxRows: 100_000, params: {} })).rows.map((r) => JSON.parse(r) as Record<string, unknown>);
  return {
    dir,
    natsUrl: nats.url,
    pgPort,
    apiUrl,
    idpUrl,
    database,
    forge,
    nc,
    configFile,
    dsn: (token, user = "agent-1") => `host=127.0.0.1 port=${pgPort} user=${user} dbname=pg password=${token} sslmode=disable`,
    pgOptions: (token, user = "agent-1") => ({ host: "127.0.0.1", port: pgPort, user, database: "pg", password: token }),
    async upstream() {
      const c = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database });
      await c.connect();
      return c;
    },
    auditQuery,
    async waitForAudit(sql, done, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const rows = await auditQuery(sql);
        if (done(rows) || Date.now() > until) return rows;
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    startService,
    async stopService(name, signal) {
      await procs.get(name)?.stop(signal);
      procs.delete(name);
    },
    async cli(args, extraEnv = {}, input) {
      const { run } = await import("./clients.js");
      return run(process.execPath, [join(repoRoot, "packages/cli/dist/main.js"), ...args], { env: { GATEHOUSE_CONFIG: configFile, GATEHOUSE_API_URL: apiUrl, GATEHOUSE_TOKEN_FILE: join(dir, "no-token"), ...extraEnv }, input });
    },
    async stop() {
      await nc.close().catch(() => {});
      for (const s of [...order].reverse()) await procs.get(s)?.stop();
      await nats.stop();
      await forge.close();
      const a = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database: "test" });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => undefined);
      await a.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
