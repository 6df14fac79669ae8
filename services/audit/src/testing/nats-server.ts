// Test support: a real nats-server with JetStream on a free port and a temp dir.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";

export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? "/usr/sbin/nats-server";

export interface TestNats {
  url: string;
  proc: ChildProcess;
  connect(): Promise<NatsConnection>;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startNats(): Promise<TestNats> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-nats-"));
  const port = await freePort();
  const proc = spawn(NATS_SERVER_BIN, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const url = `nats://127.0.0.1:${port}`;
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  // Wait until it accepts connections (or exits).
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`nats-server exited: ${stderr}`);
    try {
      const nc = await connect({ servers: url, timeout: 500 });
      await nc.close();
      break;
    } catch {
      if (i > 100) throw new Error(`nats-server did not start on ${url}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    proc,
    connect: () => connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 }),
    async stop() {
      if (proc.exitCode === null) {
        proc.kill("SIGCONT");
        proc.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
