// startApiService(): NATS connection + fastify server on config.api.host:port.
import type { NatsConnection } from "@nats-io/transport-node";
import { connectBus, createLogger, ensureAuditStream, type GatehouseConfig, type Logger } from "@gatehouse/runtime";
import type { TokenVerifier } from "@gatehouse/identity";
import { buildApp } from "./app.js";
import { createDeps } from "./deps.js";

export interface ApiServiceOptions {
  nc?: NatsConnection;
  log?: Logger;
  /** Override config.api.port (0 = any free port). */
  port?: number;
  probeTimeoutMs?: number;
  verifier?: TokenVerifier;
}

export interface ApiService {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startApiService(config: GatehouseConfig, opts: ApiServiceOptions = {}): Promise<ApiService> {
  const log = opts.log ?? createLogger("api");
  const ownNc = !opts.nc;
  const nc = opts.nc ?? (await connectBus("gatehouse-api", config.nats.url));
  const deps = createDeps(config, nc, log, opts);
  const app = buildApp(deps);
  try {
    // Auditor queries are recorded on the audit stream (created here if the api starts first).
    await ensureAuditStream(nc, config.audit.stream);
    await app.listen({ host: config.api.host, port: opts.port ?? config.api.port });
  } catch (e) {
    await deps.publisher.close();
    if (ownNc) await nc.close();
    const err = e as NodeJS.ErrnoException;
    if (err.code === "EADDRINUSE") throw new Error(`api port ${config.api.host}:${opts.port ?? config.api.port} is already in use; stop what uses it or set GATEHOUSE_API_PORT / api.port`);
    throw e;
  }
  const addr = app.server.address();
  const port = typeof addr === "object" && addr ? addr.port : config.api.port;
  let stopped = false;
  return {
    url: `http://${config.api.host}:${port}`,
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      await app.close();
      await deps.publisher.close();
      if (ownNc) await nc.drain();
    },
  };
}
