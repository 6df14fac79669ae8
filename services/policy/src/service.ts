// The policy service process: one PolicyEngine served over NATS request/reply and gRPC,
// reloading the policy directory on change and announcing each new version on the bus.
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Server } from "@grpc/grpc-js";
import { PolicyServiceService, type ClassifyRequest, type DecideRequest, type StatusRequest } from "@gatehouse/proto";
import { connectBus, createLogger, serveOnNats, startGrpcServer, subjects, type GatehouseConfig, type Logger, type ServiceImplementation } from "@gatehouse/runtime";
import { initSql } from "@gatehouse/sql";
import { PolicyEngine } from "./engine.js";
import { policyVersion, readPolicyDir } from "./policies.js";
import { watchPolicyDir, type PolicyWatcher } from "./watch.js";
import { PolicyLoadRecorder, type LoadReport } from "./load-events.js";

export interface PolicyServiceHandle {
  stop(): Promise<void>;
  /** Name of this instance in its policy_loaded event ids ("<instance>:<n>"). */
  instanceId: string;
  /** policy_loaded events JetStream has not acknowledged yet. */
  pendingAuditEvents(): number;
  grpcPort: number;
  engine: PolicyEngine;
}

export interface PolicyServiceOptions {
  /** Use this bus connection (not closed on stop); otherwise connect to config.nats.url. */
  nc?: NatsConnection;
  log?: Logger;
  /** Period of the fallback hash check of the policy directory (default 2000 ms). */
  reloadIntervalMs?: number;
  /** Name of this instance in policy_loaded event ids (default: host, pid and start time). */
  instanceId?: string;
  /** How long stop() waits for policy_loaded events JetStream has not acknowledged (default 5000 ms). */
  auditCloseTimeoutMs?: number;
}

/** The RPC implementation; the same object serves NATS and gRPC. */
export function policyServiceImpl(engine: PolicyEngine): ServiceImplementation<typeof PolicyServiceService> {
  return {
    decide: async (req: DecideRequest) => engine.decide(req),
    classify: async (req: ClassifyRequest) => engine.classify(req.text),
    status: async (_req: StatusRequest) => engine.status(),
  };
}

function contentVersion(dir: string): string {
  try {
    return policyVersion(readPolicyDir(dir));
  } catch {
    return "unreadable";
  }
}

export async function startPolicyService(config: GatehouseConfig, opts: PolicyServiceOptions = {}): Promise<PolicyServiceHandle> {
  const log = opts.log ?? createLogger("policy");
  await initSql();
  const engine = new PolicyEngine();
  const dir = config.policies;

  const report = (r: ReturnType<PolicyEngine["loadDir"]>) => {
    for (const w of r.warnings) log.warn({ dir }, `policy warning: ${w}`);
    if (r.errors.length > 0) {
      log.error({ dir, errors: r.errors, keptVersion: r.version || null }, `policy set in ${dir} is invalid; ${r.version ? `keeping version ${r.version}` : "denying every command until it is fixed"}`);
    }
  };
  const seenAtStart = contentVersion(dir);
  const firstAt = Date.now();
  const first = engine.loadDir(dir);
  report(first);
  if (first.changed) log.info({ dir, version: first.version, policies: engine.status().policyCount }, "policies loaded");

  const ownBus = !opts.nc;
  const nc = opts.nc ?? (await connectBus("gatehouse-policy", config.nats.url));
  // Every load attempt becomes a policy_loaded audit event, published in the background.
  const recorder = new PolicyLoadRecorder(nc, {
    stream: config.audit.stream,
    log,
    instanceId: opts.instanceId,
    ackTimeoutMs: config.audit.ackTimeoutMs,
    closeTimeoutMs: opts.auditCloseTimeoutMs,
  });
  const recordLoad = (trigger: LoadReport["trigger"], r: ReturnType<PolicyEngine["loadDir"]>, at?: number) => {
    const id = recorder.record(
      { trigger, version: r.readVersion ?? r.version, files: r.files ?? [], policies: r.policies ?? [], errors: r.errors, accepted: r.errors.length === 0 },
      at,
    );
    log.debug({ eventId: id, trigger, version: r.readVersion ?? r.version, accepted: r.errors.length === 0 }, "policy_loaded event queued");
  };
  recordLoad("start", first, firstAt);
  const impl = policyServiceImpl(engine);
  const sub: Subscription = serveOnNats(nc, PolicyServiceService, impl, {
    onError: (method, err) => log.warn({ method, err: (err as Error).message }, "policy rpc failed"),
  });
  let server: Server;
  let grpcPort: number;
  try {
    ({ server, port: grpcPort } = await startGrpcServer(`127.0.0.1:${config.policy.grpcPort}`, [{ def: PolicyServiceService, impl }]));
  } catch (e) {
    sub.unsubscribe();
    await recorder.close();
    if (ownBus) await nc.close();
    throw new Error(`policy service: cannot listen for gRPC on 127.0.0.1:${config.policy.grpcPort} (${(e as Error).message}); set policy.grpcPort or GATEHOUSE_POLICY_GRPC_PORT`);
  }

  const watcher: PolicyWatcher = watchPolicyDir(
    dir,
    seenAtStart,
    () => {
      const r = engine.loadDir(dir);
      report(r);
      recordLoad("reload", r);
      if (r.changed) {
        log.info({ dir, version: r.version, policies: engine.status().policyCount }, "policies reloaded");
        try {
          nc.publish(subjects.policyChanged, r.version);
        } catch (e) {
          log.warn({ err: (e as Error).message }, `could not announce policy version on ${subjects.policyChanged}`);
        }
      }
    },
    opts.reloadIntervalMs,
  );

  let stopped = false;
  return {
    grpcPort,
    engine,
    instanceId: recorder.instanceId,
    pendingAuditEvents: () => recorder.pending,
    async stop() {
      if (stopped) return;
      stopped = true;
      watcher.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      await recorder.close();
      try {
        await sub.drain();
      } catch {
        // Connection already closed.
      }
      if (ownBus) await nc.close();
    },
  };
}
