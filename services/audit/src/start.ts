// startAuditService(): stream + consumer -> store, and the Query/Stats API.
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { AuditServiceService } from "@gatehouse/proto";
import { openAuditStore, type AuditStore } from "@gatehouse/audit-store";
import { connectBus, createLogger, ensureAuditStream, serveOnNats, startGrpcServer, type GatehouseConfig, type Logger } from "@gatehouse/runtime";
import { auditServiceImpl } from "./service.js";
import { startWriter } from "./writer.js";
import { startRecordingCopier } from "./recordings.js";
import { loadSigner } from "@gatehouse/audit-integrity";
import { join } from "node:path";

export interface AuditServiceHandle {
  stop(): Promise<void>;
  grpcPort: number;
  store: AuditStore;
}

export async function startAuditService(config: GatehouseConfig, opts: { nc?: NatsConnection; log?: Logger } = {}): Promise<AuditServiceHandle> {
  const log = opts.log ?? createLogger("audit");
  const ownNc = !opts.nc;
  const nc = opts.nc ?? (await connectBus("gatehouse-audit", config.nats.url));
  const cleanups: Array<() => Promise<unknown>> = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch((e: unknown) => log.error({ err: (e as Error).message }, "error while stopping"));
  };
  if (ownNc) cleanups.push(() => nc.drain());
  try {
    await ensureAuditStream(nc, config.audit.stream);
    const store = await openAuditStore({
      chdbPath: config.audit.chdbPath,
      clickhouseUrl: config.audit.clickhouseUrl,
      database: config.audit.clickhouseDatabase,
    });
    cleanups.push(() => store.close());
    // The default key path is the dev setup: generate a key there on first start.
    const devKey = config.audit.signingKey === join(config.dataDir, "audit", "signing-key.pem");
    const signer = loadSigner({ file: config.audit.signingKey, generate: devKey });
    const writer = await startWriter(nc, store, log, {
      stream: config.audit.stream,
      signer,
      checkpointStream: config.audit.checkpointStream,
      checkpointEvents: config.audit.checkpointEvents,
      checkpointIntervalMs: config.audit.checkpointIntervalMs,
      flushEvents: config.audit.flushEvents,
      flushMs: config.audit.flushMs,
      lockTtlMs: config.audit.writerLockTtlMs,
      fetchMessages: config.audit.batchSize,
    });
    cleanups.push(() => writer.stop());
    const copier = startRecordingCopier(nc, store, log, { isLeader: () => writer.holdsLease(), flushMs: config.audit.flushMs });
    cleanups.push(() => copier.stop());
    const impl = auditServiceImpl(store, writer);
    const sub: Subscription = serveOnNats(nc, AuditServiceService, impl, {
      onError: (method, err) => log.warn({ method, err: (err as Error).message }, "audit call failed"),
    });
    cleanups.push(() => sub.drain());
    const grpc = await startGrpcServer(`127.0.0.1:${config.audit.grpcPort}`, [{ def: AuditServiceService, impl }]);
    cleanups.push(() => new Promise<void>((r) => grpc.server.tryShutdown(() => r())));
    log.info({ store: store.kind, stream: config.audit.stream, grpcPort: grpc.port, keyId: signer.keyId }, "audit service started");
    let stopped = false;
    return {
      grpcPort: grpc.port,
      store,
      async stop() {
        if (stopped) return;
        stopped = true;
        await cleanup();
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
