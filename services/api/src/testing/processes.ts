// Test support: a private nats-server (JetStream, temp dir, free port) and
// Gatehouse services started from their built entry points until "ready".
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { once } from "node:events";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const NATS_BIN = process.env.NATS_SERVER_BIN ?? (existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server");

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export interface Child {
  proc: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
}

/** Spawn and wait for a line matching `ready` (rejects with the output if it exits or times out). */
export async function spawnUntil(cmd: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<Child> {
  const proc = spawn(cmd, args, { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const exited = once(proc, "exit");
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      rej(new Error(`${cmd} ${args.join(" ")} not ready after ${timeoutMs} ms:\n${out.slice(-3000)}`));
    }, timeoutMs);
    const onData = (b: Buffer) => {
      out += b.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        res();
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`${cmd} ${args.join(" ")} exited with ${code} before it was ready:\n${out.slice(-3000)}`));
    });
  });
  return {
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      const [code] = (await exited) as [number | null];
      clearTimeout(t);
      return code;
    },
  };
}

export async function startNatsServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-api-nats-"));
  const port = await freePort();
  const child = await spawnUntil(NATS_BIN, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], /Server is ready/);
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
