// The listener service: one process hosting the configured protocol plugins.
import type { NatsConnection } from "@nats-io/transport-node";
import { connectBus, createLogger, ensureAuditStream, type GatehouseConfig, type Logger } from "@gatehouse/runtime";
import type { RunningListener } from "@gatehouse/plugin-sdk";
import { createGatewayContext, type AuditSink, type ListenerContext } from "./context.js";
import { loadPlugin } from "./plugins.js";

export interface ListenerServiceOptions {
  /** Use this connection (not drained on stop) instead of connecting to config.nats.url. */
  nc?: NatsConnection;
  log?: Logger;
  audit?: AuditSink;
}

export interface ListenerService {
  listeners: RunningListener[];
  context: ListenerContext;
  stop(): Promise<void>;
}

export async function startListenerService(config: GatehouseConfig, opts: ListenerServiceOptions = {}): Promise<ListenerService> {
  const log = opts.log ?? createLogger("listener");
  const ownNc = !opts.nc;
  const nc = opts.nc ?? (await connectBus("gatehouse-listener", config.nats.url));
  const listeners: RunningListener[] = [];
  let context: ListenerContext | undefined;
  try {
    await ensureAuditStream(nc, config.audit.stream);
    context = await createGatewayContext(config, nc, log, { audit: opts.audit });
    for (const [name, listenerConfig] of Object.entries(config.listeners)) {
      const plugin = await loadPlugin(name, listenerConfig, config.baseDir);
      const running = await plugin.start(context, listenerConfig);
      listeners.push(running);
      log.info({ listener: name, protocol: running.protocol, address: `${running.host}:${running.port}` }, "listener started");
    }
  } catch (e) {
    await Promise.allSettled(listeners.map((l) => l.stop()));
    await context?.close();
    if (ownNc) await nc.close();
    throw e;
  }
  const ctx = context;
  return {
    listeners,
    context: ctx,
    async stop() {
      // Plugins first (sessions end and record their last events), then the audit publisher, then the bus.
      const results = await Promise.allSettled(listeners.map((l) => l.stop()));
      await ctx.close();
      if (ownNc) await nc.drain();
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;
    },
  };
}
