// GET /healthz: is the api up, is NATS connected, do the policy and audit services answer.
// Always 200 while the api serves; `status` is "ok" or "degraded" and each
// dependency says what is wrong, so one probe tells an operator where to look.
import type { FastifyInstance } from "fastify";
import type { ApiDeps } from "../deps.js";

export interface DependencyHealth {
  ok: boolean;
  error?: string;
  [detail: string]: unknown;
}

async function probe(fn: () => Promise<Record<string, unknown>>): Promise<DependencyHealth> {
  try {
    return { ok: true, ...(await fn()) };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

export function healthRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get("/healthz", async () => {
    const timeoutMs = deps.probeTimeoutMs;
    const nats: DependencyHealth = deps.nc.isClosed()
      ? { ok: false, error: "connection closed" }
      : { ok: true, server: deps.nc.getServer() };
    const [policy, audit] = await Promise.all([
      probe(async () => {
        const s = await deps.policy.status({}, { timeoutMs });
        return { version: s.version, policies: s.policyCount, errors: s.errors };
      }),
      probe(async () => {
        const s = await deps.audit.stats({}, { timeoutMs });
        return { store: s.store, events: Number(s.events), pending: Number(s.pending) };
      }),
    ]);
    const ok = nats.ok && policy.ok && audit.ok;
    return { status: ok ? "ok" : "degraded", nats, policy, audit };
  });
}
