// What the api routes need from the rest of Gatehouse, built once at start so
// routes stay small and testable.
import type { NatsConnection } from "@nats-io/transport-node";
import { AuditServiceService, PolicyServiceService } from "@gatehouse/proto";
import { natsClient, type GatehouseConfig, type Logger, type ServiceClient } from "@gatehouse/runtime";
import { createTokenVerifier, type TokenVerifier } from "@gatehouse/identity";

export interface ApiDeps {
  config: GatehouseConfig;
  nc: NatsConnection;
  log: Logger;
  verifier: TokenVerifier;
  audit: ServiceClient<typeof AuditServiceService>;
  policy: ServiceClient<typeof PolicyServiceService>;
  /** Timeout of the health probes (ms). */
  probeTimeoutMs: number;
}

export function createDeps(config: GatehouseConfig, nc: NatsConnection, log: Logger, opts: { probeTimeoutMs?: number; verifier?: TokenVerifier } = {}): ApiDeps {
  return {
    config,
    nc,
    log,
    verifier: opts.verifier ?? createTokenVerifier({ issuers: config.identity.issuers, clockSkewSeconds: config.identity.clockSkewSeconds }),
    audit: natsClient(nc, AuditServiceService, { timeoutMs: 10_000 }),
    policy: natsClient(nc, PolicyServiceService, { timeoutMs: 2000 }),
    probeTimeoutMs: opts.probeTimeoutMs ?? 1000,
  };
}
