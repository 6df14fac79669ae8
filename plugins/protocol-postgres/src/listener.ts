// The TCP listener: accepts clients, runs their startup, tracks sessions for
// cancel requests and shutdown.
import { createServer, type Socket } from "node:net";
import type { GatewayContext, RunningListener } from "@gatehouse/plugin-sdk";
import type { ListenerConfig } from "@gatehouse/runtime";
import { CancelKeys } from "./cancel.js";
import { listenerOptions } from "./options.js";
import type { Session } from "./session.js";
import { handleConnection, type ListenerDeps } from "./startup.js";
import { loadServerTls } from "./tls.js";

export async function startPostgresListener(ctx: GatewayContext, config: ListenerConfig): Promise<RunningListener> {
  const opts = listenerOptions(config);
  const tls = await loadServerTls(config.tls, ctx.dataDir);
  const log = ctx.log.child({ plugin: "protocol-postgres" });
  const sessions = new Set<Session>();
  const starting = new Set<Socket>();
  const deps: ListenerDeps = { ctx, log, opts, tls, cancelKeys: new CancelKeys(), sessions };

  const server = createServer({ noDelay: true, keepAlive: true, pauseOnConnect: false }, (socket) => {
    starting.add(socket);
    socket.on("error", () => undefined); // reported through the startup/session handlers
    handleConnection(socket, deps)
      .catch((e) => log.error({ err: e }, "connection handler failed"))
      .finally(() => starting.delete(socket));
  });
  server.on("error", (e) => log.error({ err: e }, "listener socket error"));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  log.info({ host: config.host, port, tls: tls.source, tlsRequired: opts.tlsRequired }, "postgres listener started");

  let stopping: Promise<void> | undefined;
  return {
    protocol: "postgres",
    host: config.host,
    port,
    stop() {
      stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const s of starting) s.destroy();
        await Promise.all([...sessions].map((s) => s.shutdown()));
        await closed;
        log.info({ port }, "postgres listener stopped");
      })();
      return stopping;
    },
  };
}
