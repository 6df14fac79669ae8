// Listener options (listeners.postgres.* in gatehouse.yaml) with defaults.
import type { ListenerConfig } from "@gatehouse/runtime";

export interface PgListenerOptions {
  /** Largest client message accepted (bytes); hard ceiling 1 GiB like PostgreSQL. */
  maxMessageBytes: number;
  /** Time a client has to finish TLS, startup and authentication. */
  startupTimeoutMs: number;
  /** Time allowed to connect and log in to the upstream. */
  upstreamTimeoutMs: number;
  /** Longest bind parameter value copied into a command event; longer values are cut with a marker. */
  maxAuditParamBytes: number;
  /** Refuse clients that did not negotiate TLS. */
  tlsRequired: boolean;
}

const GiB = 1024 * 1024 * 1024;

function num(cfg: ListenerConfig, key: string, dflt: number, min: number, max: number): number {
  const v = cfg[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
    throw new Error(`listeners.postgres.${key} must be an integer between ${min} and ${max} (got ${JSON.stringify(v)})`);
  return v;
}

export function listenerOptions(cfg: ListenerConfig): PgListenerOptions {
  return {
    maxMessageBytes: num(cfg, "maxMessageBytes", 64 * 1024 * 1024, 1024, GiB),
    startupTimeoutMs: num(cfg, "startupTimeoutMs", 30_000, 100, 600_000),
    upstreamTimeoutMs: num(cfg, "upstreamTimeoutMs", 10_000, 100, 600_000),
    maxAuditParamBytes: num(cfg, "maxAuditParamBytes", 8192, 16, 16 * 1024 * 1024),
    tlsRequired: cfg.tls?.required === true,
  };
}
