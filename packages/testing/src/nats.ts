// A private JetStream-enabled nats-server per test file. The server picks its own
// port (-p -1) and we read it from its log, so parallel test files can never
// end up talking to each other's server.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { natsServerBin, startProcess, type Proc } from "./processes.js";

export interface TestNats {
  url: string;
  port: number;
  /** JetStream store directory (removed by stop()). */
  dir: string;
  /** The running server process (changes on restart()). */
  readonly proc: ChildProcess;
  output(): string;
  connect(): Promise<NatsConnection>;
  /** SIGSTOP / SIGCONT: a server that is alive but answers nothing. */
  pause(): void;
  resume(): void;
  /** Stop the server (keeping its store) and start it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startNats(opts: { jetstream?: boolean } = {}): Promise<TestNats> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-test-nats-"));
  const launch = (port: number) =>
    startProcess("nats-server", natsServerBin(), ["-a", "127.0.0.1", "-p", String(port), ...(opts.jetstream === false ? [] : ["-js", "-sd", dir])], {
      ready: /Server is ready/,
      timeoutMs: 30_000,
      // As `gatehouse up` runs it: one Go scheduler thread (docs/decisions.md).
      env: { GOMAXPROCS: process.env.GOMAXPROCS ?? "1" },
    });
  let proc: Proc = await launch(-1);
  const m = /Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(proc.output());
  if (!m) {
    await proc.stop();
    throw new Error(`could not read nats-server's port from its log:\n${proc.output()}`);
  }
  const port = Number(m[1]);
  const url = `nats://127.0.0.1:${port}`;
  return {
    url,
    port,
    dir,
    get proc() {
      return proc.child;
    },
    output: () => proc.output(),
    connect: () => connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 100 }),
    pause: () => void proc.child.kill("SIGSTOP"),
    resume: () => void proc.child.kill("SIGCONT"),
    async restart() {
      await proc.stop();
      proc = await launch(port);
    },
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
