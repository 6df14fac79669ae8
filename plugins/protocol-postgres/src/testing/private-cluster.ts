// A private, throwaway PostgreSQL cluster for tests that need upstream password
// authentication (SCRAM, MD5, cleartext) and upstream TLS, which the shared
// trust-auth server cannot offer. Runs as the `postgres` OS user (initdb refuses
// root) on a free port; stop() shuts it down and removes its directory.
import { spawn, type ChildProcess } from "node:child_process";
import { chownSync, mkdtempSync, rmSync, writeFileSync, appendFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { run } from "./clients.js";

const BIN = ["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"].find((d) => existsSync(join(d, "initdb")));

export interface PrivateCluster {
  port: number;
  /** Run SQL as the superuser over TCP (trust for `postgres` only). */
  sql(text: string): Promise<string>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
    });
  });
}

/** Why a private cluster cannot run here, or undefined when it can. */
export function privateClusterUnavailable(): string | undefined {
  if (!BIN) return "initdb not found under /usr/lib/postgresql/*/bin";
  try {
    execFileSync("id", ["postgres"], { stdio: "ignore" });
  } catch {
    return "no postgres OS user";
  }
  if (process.getuid?.() !== 0) return "needs root to run the cluster as the postgres user";
  return undefined;
}

export async function startPrivateCluster(hba: string[]): Promise<PrivateCluster> {
  const dir = mkdtempSync(join(tmpdir(), "gh-pgcluster-"));
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString());
  chownSync(dir, uid, gid);
  const data = join(dir, "data");
  const asPg = (cmd: string, args: string[]) => run("runuser", ["-u", "postgres", "--", cmd, ...args]);
  let child: ChildProcess | undefined;
  try {
    const init = await asPg(join(BIN!, "initdb"), ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
    if (init.code !== 0) throw new Error(`initdb failed: ${init.stderr}`);
    const ssl = await asPg("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
      "-keyout", join(data, "server.key"), "-out", join(data, "server.crt"),
    ]);
    if (ssl.code !== 0) throw new Error(`openssl failed: ${ssl.stderr}`);
    const port = await freePort();
    appendFileSync(
      join(data, "postgresql.conf"),
      `\nport = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\nssl = on\nfsync = off\n`,
    );
    writeFileSync(join(data, "pg_hba.conf"), ["local all all trust", "host all postgres 127.0.0.1/32 trust", ...hba, "host all all 127.0.0.1/32 reject", ""].join("\n"));
    chownSync(join(data, "pg_hba.conf"), uid, gid);
    child = spawn("runuser", ["-u", "postgres", "--", join(BIN!, "postgres"), "-D", data], { stdio: ["ignore", "ignore", "pipe"] });
    const started = child;
    await new Promise<void>((resolve, reject) => {
      let log = "";
      const onData = (c: Buffer) => {
        log += c.toString();
        if (log.includes("ready to accept connections")) {
          started.stderr?.off("data", onData);
          started.stderr?.resume();
          resolve();
        }
      };
      started.stderr?.on("data", onData);
      started.once("exit", (code) => reject(new Error(`postgres exited with ${code}: ${log}`)));
    });
    const sql = async (text: string) => {
      const r = await run("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", `host=127.0.0.1 port=${port} user=postgres dbname=postgres`, "-c", text]);
      if (r.code !== 0) throw new Error(`private cluster SQL failed: ${r.stderr}`);
      return r.stdout.trim();
    };
    return {
      port,
      sql,
      async stop() {
        await stop(started, data);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    if (child) await stop(child, data);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

async function stop(child: ChildProcess, data: string): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const r = await run("runuser", ["-u", "postgres", "--", join(BIN!, "pg_ctl"), "stop", "-D", data, "-m", "fast", "-w"]);
  if (r.code !== 0) child.kill("SIGKILL");
  await exited;
}
