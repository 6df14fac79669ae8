// The GatewayContext a protocol plugin gets: identity, decisions, durable audit.
// Every dependency failure surfaces as AuthError / DependencyError so the plugin
// refuses the one request with a clear protocol error and keeps running.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import type { AuditEvent, Identity } from "@gatehouse/proto";
import { AuditPublisher, type GatehouseConfig, type Logger } from "@gatehouse/runtime";
import { AuthError, DependencyError, type GatewayContext } from "@gatehouse/plugin-sdk";
import { createTokenVerifier, TokenError, redactToken } from "@gatehouse/identity";
import { initSql } from "@gatehouse/sql";
import { PolicyDecider } from "./decider.js";
import { createMaskingRuntime, loadMaskKey } from "./masking.js";
import { Recordings } from "./recordings.js";
import { ApprovalHolder } from "./approvals.js";
import type { CacheStats } from "./decision-cache.js";

/** What the context needs from an audit publisher (AuditPublisher from @gatehouse/runtime). */
export interface AuditSink {
  record(event: AuditEvent): Promise<void>;
  recordLater(event: AuditEvent): void;
  close(): Promise<void>;
}

export interface ListenerContext extends GatewayContext {
  cacheStats(): CacheStats;
  /** Stop listening for policy changes and flush/close the audit publisher. */
  close(): Promise<void>;
}

export interface ContextOptions {
  /** Audit publisher to use instead of a new AuditPublisher on `nc`. */
  audit?: AuditSink;
  listenerId?: string;
}

export async function createGatewayContext(config: GatehouseConfig, nc: NatsConnection, log: Logger, opts: ContextOptions = {}): Promise<ListenerContext> {
  // The SQL parser (wasm) must be loaded before fingerprints are computed on the hot path.
  await initSql();
  const verifier = createTokenVerifier({ issuers: config.identity.issuers, clockSkewSeconds: config.identity.clockSkewSeconds });
  const decider = new PolicyDecider(nc, { deadlineMs: config.policy.deadlineMs, cacheSize: config.policy.cacheSize, log });
  const audit: AuditSink = opts.audit ?? new AuditPublisher(nc, { ackTimeoutMs: config.audit.ackTimeoutMs, log });
  const recordings = new Recordings(nc, log, config.recordings);
  const listenerId = opts.listenerId ?? `listener-${hostname()}-${randomUUID().slice(0, 8)}`;
  // Recognizers and the hash key are loaded once; every session of every plugin shares them.
  const masking = createMaskingRuntime(loadMaskKey(config.dataDir, log));
  const approvals = new ApprovalHolder(nc, { config: config.approvals, listenerId, log });

  return {
    listenerId,
    log,
    dataDir: config.dataDir,
    connection: (name) => (Object.hasOwn(config.connections, name) ? config.connections[name] : undefined),
    connectionNames: (protocol) => Object.keys(config.connections).filter((n) => config.connections[n]!.protocol === protocol),
    upstreamPassword(name) {
      const env = Object.hasOwn(config.connections, name) ? config.connections[name]!.upstream.passwordEnv : undefined;
      return env ? process.env[env] : undefined;
    },
    async authenticate(token: string, clientName: string): Promise<Identity> {
      try {
        return await verifier.verify(token, clientName);
      } catch (e) {
        if (e instanceof TokenError) throw new AuthError(e.check, e.message);
        log.error({ err: redactToken(String((e as Error)?.message ?? e)) }, "token verification failed unexpectedly");
        throw new AuthError("internal", "token verification failed unexpectedly; see the listener log");
      }
    },
    decide: (identity, connection, command) => decider.decide(identity, connection, command),
    async record(event) {
      try {
        await audit.record(event);
      } catch (e) {
        throw new DependencyError("audit", `audit trail did not record the event (${(e as Error).message}); the statement was not executed`);
      }
    },
    recordLater(event) {
      try {
        audit.recordLater(event);
      } catch (e) {
        log.error({ eventId: event.id, err: (e as Error).message }, "audit event could not be queued");
      }
    },
    newSessionId: () => randomUUID(),
    masking,
    recording: (sessionId, kind) => recordings.writer(sessionId, kind),
    requestApproval: (request) => approvals.request(request),
    cacheStats: () => decider.cache.stats(),
    async close() {
      decider.close();
      await recordings.drain(5000);
      await audit.close();
    },
  };
}
