// The embedded demo database: PGlite (PostgreSQL 18 compiled to WASM) persisted
// in <dataDir>/demo-db and served over the PostgreSQL wire protocol by
// pglite-socket, so the local stack needs no PostgreSQL installation.
//
// Limitation (pglite-socket 0.2): PGlite is ONE backend. The socket server accepts
// several client connections but runs their messages one at a time on that single
// backend; while one connection is inside a transaction the others wait. Session
// state (SET, prepared statement names, temp tables) is shared by all connections.
// Fine for a demo with a few agents; use a real PostgreSQL for anything else.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { createLogger, type GatehouseConfig, type Logger } from "@gatehouse/runtime";
import { seedIfEmpty } from "./seed.js";

export const DEFAULT_DEMO_DB_PORT = 15433;

export interface DemoDbOptions {
  host?: string;
  /** TCP port; 0 picks a free one. Default: env GATEHOUSE_DEMO_DB_PORT, config demoDb.port, 15433. */
  port?: number;
  /** Data directory (default <config.dataDir>/demo-db). */
  dir?: string;
  /** Client connections accepted at once (default 32). */
  maxConnections?: number;
  log?: Logger;
}

export interface RunningDemoDb {
  host: string;
  port: number;
  dir: string;
  /** True when this start created and filled the tables. */
  seeded: boolean;
  db: PGlite;
  stop(): Promise<void>;
}

type WithDemoDb = GatehouseConfig & { demoDb?: { host?: string; port?: number } };

export function demoDbPort(config: GatehouseConfig, explicit?: number): number {
  if (explicit !== undefined) return explicit;
  const env = process.env.GATEHOUSE_DEMO_DB_PORT;
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`GATEHOUSE_DEMO_DB_PORT=${env} is not a port number`);
    return n;
  }
  return (config as WithDemoDb).demoDb?.port ?? DEFAULT_DEMO_DB_PORT;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** One process per data directory: PGlite would corrupt files shared by two. */
function takeLock(dir: string): () => void {
  const lock = `${dir}.lock`;
  mkdirSync(dirname(lock), { recursive: true });
  try {
    writeFileSync(lock, String(process.pid), { flag: "wx" });
  } catch {
    const pid = Number(readFileSync(lock, "utf8").trim());
    if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) {
      throw new Error(`the demo database in ${dir} is already in use by process ${pid}; stop it first (or set dataDir to another directory)`);
    }
    writeFileSync(lock, String(process.pid)); // stale lock from a crashed run
  }
  return () => rmSync(lock, { force: true });
}

export async function startDemoDb(config: GatehouseConfig, opts: DemoDbOptions = {}): Promise<RunningDemoDb> {
  const log = opts.log ?? createLogger("demo-db");
  const host = opts.host ?? (config as WithDemoDb).demoDb?.host ?? "127.0.0.1";
  const port = demoDbPort(config, opts.port);
  const dir = opts.dir ?? join(config.dataDir, "demo-db");
  mkdirSync(dir, { recursive: true });
  const unlock = takeLock(dir);
  let db: PGlite | undefined;
  try {
    db = await PGlite.create({ dataDir: dir });
    const seeded = await seedIfEmpty(db);
    if (seeded) log.info({ dir }, "seeded the demo database (customers, orders)");
    const server = new PGLiteSocketServer({ db, host, port, maxConnections: opts.maxConnections ?? 32 });
    try {
      await server.start();
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === "EADDRINUSE") {
        throw new Error(`demo database port ${host}:${port} is already in use; stop what uses it or set GATEHOUSE_DEMO_DB_PORT / demoDb.port`);
      }
      throw e;
    }
    const bound = Number(server.getServerConn().split(":").at(-1));
    const running = db;
    let stopped = false;
    return {
      host,
      port: bound,
      dir,
      seeded,
      db: running,
      async stop() {
        if (stopped) return;
        stopped = true;
        await server.stop();
        await running.close();
        unlock();
      },
    };
  } catch (e) {
    await db?.close().catch(() => undefined);
    unlock();
    throw e;
  }
}
