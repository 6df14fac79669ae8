// Child processes for tests: spawned, waited on until they print a ready line,
// and stopped (SIGTERM, then SIGKILL) afterwards.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";

/** The repository's root directory (this file is packages/testing/dist/processes.js). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/**
 * A port that was free a moment ago. Another process may take it before the
 * caller binds it: prefer letting the server pick (port 0 / -1) and reading it back.
 */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, "close");
  return port;
}

export interface Proc {
  name: string;
  child: ChildProcess;
  /** Everything the process printed so far (for failure messages). */
  output(): string;
  /** SIGTERM (or `signal`), then SIGKILL after a grace period; resolves with the exit code once it exited. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  /** Resolves once the combined stdout+stderr matches. */
  ready: RegExp;
  timeoutMs?: number;
  cwd?: string;
}

/** Spawn a process and resolve once its output matches `ready`; rejects with its output if it exits or times out first. */
export async function startProcess(name: string, cmd: string, args: string[], opts: StartOptions): Promise<Proc> {
  const child = spawn(cmd, args, { cwd: opts.cwd ?? repoRoot, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  const onData = (b: Buffer) => {
    out += b.toString();
    if (out.length > 400_000) out = out.slice(-200_000);
    if (opts.ready.test(out)) onReady();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = once(child, "exit").catch(() => [null]);
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    ready.then(() => "ready" as const),
    exited.then(() => "exited" as const),
    new Promise<"timed out">((r) => (timer = setTimeout(() => r("timed out"), opts.timeoutMs ?? 60_000))),
  ]);
  clearTimeout(timer);
  if (outcome !== "ready") {
    child.kill("SIGKILL");
    throw new Error(`${name} (${cmd} ${args.join(" ")}) did not become ready: ${outcome}; output:\n${out.slice(-4000)}`);
  }
  return {
    name,
    child,
    output: () => out,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGCONT"); // a paused process cannot handle SIGTERM
      child.kill(signal);
      const t = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const [code] = (await exited) as [number | null];
      clearTimeout(t);
      return code;
    },
  };
}

/** The nats-server binary: $NATS_SERVER_BIN, Debian's /usr/sbin/nats-server, or PATH. */
export function natsServerBin(): string {
  return process.env.NATS_SERVER_BIN ?? (existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server");
}
