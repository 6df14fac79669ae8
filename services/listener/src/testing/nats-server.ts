// A private nats-server (with JetStream) for tests: free port, temp store dir,
// stopped and removed afterwards.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { once } from "node:events";
import { connect, type NatsConnection } from "@nats-io/transport-node";

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface TestNats {
  url: string;
  connect(): Promise<NatsConnection>;
  /** Stop the server (keeping its store) and start it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestNats(): Promise<TestNats> {
  const dir = await mkdtemp(join(tmpdir(), "gatehouse-listener-nats-"));
  const port = await freePort();
  const launch = async (): Promise<ChildProcess> => {
    const child = spawn("/usr/sbin/nats-server", ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    await new Promise<void>((resolve, reject) => {
      const onData = (b: Buffer) => {
        out += b.toString();
        if (out.includes("Server is ready")) resolve();
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.once("exit", (code) => reject(new Error(`nats-server exited (${code}):\n${out}`)));
    });
    return child;
  };
  const halt = async (child: ChildProcess) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  };
  let child = await launch();
  const url = `nats://127.0.0.1:${port}`;
  return {
    url,
    connect: () => connect({ servers: url, reconnectTimeWait: 100, maxReconnectAttempts: -1 }),
    async restart() {
      await halt(child);
      child = await launch();
    },
    async stop() {
      await halt(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
