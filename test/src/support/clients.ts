// Real clients for end-to-end tests: psql and pgbench run as processes, and a
// superuser connection to the real PostgreSQL for set-up.
import { execFile } from "node:child_process";
import pg from "pg";

/** `fn` on a superuser connection to `database` on the real PostgreSQL (127.0.0.1:5432, trust). */
export async function asAdmin<T>(database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ host: "127.0.0.1", port: 5432, user: "postgres", database });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { env: { ...process.env, ...opts.env }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/** psql with no psqlrc, unaligned tuples-only output, continuing after errors. */
export function psql(dsn: string, sql: string, extra: string[] = []): Promise<RunResult> {
  return run("psql", [dsn, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=0", ...extra, "-c", sql]);
}
