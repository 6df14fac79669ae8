// Real PostgreSQL clients pointed at a test listener (psql, pgbench, pg, postgres.js)
// and a direct superuser connection to the upstream for setup and checks.
import { execFile } from "node:child_process";
import pg from "pg";
import postgres from "postgres";
import { GOOD_TOKEN } from "./fake-gateway.js";

export const UPSTREAM = { host: "127.0.0.1", port: 5432, user: "postgres", database: "test" };

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command without blocking the event loop (the gateway runs in this process). */
export function run(cmd: string, args: string[], env: Record<string, string> = {}, input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export function conninfo(port: number, extra = ""): string {
  return `host=127.0.0.1 port=${port} user=agent-1 dbname=demo ${extra}`.trim();
}

/** psql through the gateway; `args` after the connection string. */
export function psql(port: number, args: string[], opts: { extra?: string; token?: string; env?: Record<string, string>; input?: string } = {}): Promise<RunResult> {
  return run(
    "psql",
    [conninfo(port, opts.extra ?? "sslmode=disable"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", ...args],
    { PGPASSWORD: opts.token ?? GOOD_TOKEN, PGCONNECT_TIMEOUT: "10", ...(opts.env ?? {}) },
    opts.input,
  );
}

export function pgClient(port: number, extra: Partial<pg.ClientConfig> = {}): pg.Client {
  return new pg.Client({ host: "127.0.0.1", port, user: "agent-1", database: "demo", password: GOOD_TOKEN, ssl: false, ...extra });
}

export function directClient(): pg.Client {
  return new pg.Client({ ...UPSTREAM });
}

export function postgresJs(port: number, extra: postgres.Options<Record<string, never>> = {}) {
  return postgres({ host: "127.0.0.1", port, user: "agent-1", database: "demo", password: GOOD_TOKEN, ssl: false, max: 1, onnotice: () => undefined, ...extra });
}

/** Run one query on a direct superuser connection. */
export async function direct<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
  const c = directClient();
  await c.connect();
  try {
    return await c.query<R>(text, values);
  } finally {
    await c.end();
  }
}

/** A unique scratch name for tables/schemas a test creates and drops. */
export function scratch(prefix: string): string {
  return `gh_${prefix}_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
}
