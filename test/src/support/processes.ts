// Child processes for end-to-end tests: free ports, a private nats-server, and
// services started from their built entry points, waited on until "ready".
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

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
  /** SIGTERM, then SIGKILL after a grace period; resolves when it exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Spawn a process and resolve once a line matching `ready` appears. */
export async function startProcess(
  name: string,
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; ready: RegExp; timeoutMs?: number; cwd?: string },
): Promise<Proc> {
  const child = spawn(cmd, args, { cwd: opts.cwd ?? repoRoot, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let readyResolve: () => void;
  const readyPromise = new Promise<void>((r) => (readyResolve = r));
  const onData = (b: Buffer) => {
    out += b.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
    if (opts.ready.test(out)) readyResolve();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = once(child, "exit");
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    readyPromise.then(() => "ready" as const),
    exited.then(() => "exited" as const),
    new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (outcome !== "ready") {
    child.kill("SIGKILL");
    throw new Error(`${name} did not become ready (${outcome}); output:\n${out.slice(-4000)}`);
  }
  return {
    name,
    child,
    output: () => out,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** A private JetStream-enabled nats-server on a free port. */
export async function startNats(storeDir: string): Promise<Proc & { url: string; port: number }> {
  const port = await freePort();
  const p = await startProcess("nats", "nats-server", ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir], {
    ready: /Server is ready/,
  });
  return Object.assign(p, { url: `nats://127.0.0.1:${port}`, port });
}
