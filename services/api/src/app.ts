// The fastify application: one file per route group under routes/.
import Fastify, { type FastifyInstance } from "fastify";
import type { ApiDeps } from "./deps.js";
import { healthRoutes } from "./routes/health.js";
import { homeRoutes } from "./routes/home.js";
import { auditQueryRoutes } from "./routes/audit-query.js";
import { approvalRoutes } from "./routes/approvals.js";
import { consoleRoutes } from "./routes/console.js";
import { auditorConsoleRoutes } from "./routes/auditor-console.js";

export function buildApp(deps: ApiDeps): FastifyInstance {
  // fastify's own request logging stays off: our log lines are explicit and never
  // carry headers (Authorization) or bodies.
  const app = Fastify({ logger: false, bodyLimit: 256 * 1024 });
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) deps.log.error({ err: err.message }, "api request failed");
    void reply.code(status).send({ error: status === 500 ? "internal" : "bad_request", message: status === 500 ? "internal error; see the api service log" : err.message });
  });
  homeRoutes(app, deps);
  healthRoutes(app, deps);
  auditQueryRoutes(app, deps);
  approvalRoutes(app, deps);
  consoleRoutes(app, deps);
  auditorConsoleRoutes(app, deps);
  return app;
}
