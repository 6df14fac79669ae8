// What the api routes need from the rest of Gatehouse, built once at start so
// routes stay small and testable.
import type { NatsConnection } from "@nats-io/transport-node";
import { AuditServiceService, PolicyServiceService } from "@gatehouse/proto";
import { AuditPublisher, natsClient, type GatehouseConfig, type Logger, type ServiceClient } from "@gatehouse/runtime";
import { createTokenVerifier, type TokenVerifier } from "@gatehouse/identity";
import { auditorQueries, type AuditorQueries } from "./auditor-audit.js";

export interface ApiDeps {
  config: GatehouseConfig;
  nc: NatsConnection;
  log: Logger;
  verifier: TokenVerifier;
  audit: ServiceClient<typeof AuditServiceService>;
  policy: ServiceClient<typeof PolicyServiceService>;
  /** Publishes the api's own audit events (auditor queries) to the audit stream. */
  publisher: AuditPublisher;
  /** Audited access to the audit store for auditors (console pages, dashboards, API queries). */
  auditor: AuditorQueries;
  /** Timeout of the health probes (ms). */
  probeTimeoutMs: number;
}

export function createDeps(config: GatehouseConfig, nc: NatsConnection, log: Logger, opts: { probeTimeoutMs?: number; verifier?: TokenVerifier } = {}): ApiDeps {
  const audit = natsClient(nc, AuditServiceService, { timeoutMs: 10_000 });
  const publisher = new AuditPublisher(nc, { ackTimeoutMs: config.audit.ackTimeoutMs, log });
  return {
    config,
    nc,
    log,
    verifier: opts.verifier ?? createTokenVerifier({ issuers: config.identity.issuers, clockSkewSeconds: config.identity.clockSkewSeconds }),
    audit,
    publisher,
    auditor: auditorQueries(audit, publisher, log),
    policy: natsClient(nc, PolicyServiceService, { timeoutMs: 2000 }),
    probeTimeoutMs: opts.probeTimeoutMs ?? 1000,
  };
}
