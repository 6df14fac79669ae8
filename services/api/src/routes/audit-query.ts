// POST /api/v1/audit/query {sql, maxRows?}: read-only SQL on the audit store for
// auditors and DBAs. The audit service enforces read-only; this route enforces who,
// and records the query as an AuditorQuery event before it answers (fail closed).
import type { FastifyInstance } from "fastify";
import type { ApiDeps } from "../deps.js";
import { AUDIT_READER_GROUPS, requireIdentity } from "../auth.js";
import { AuditUnrecorded, StoreQueryError } from "../auditor-audit.js";

interface QueryBody {
  sql?: unknown;
  maxRows?: unknown;
}

export function auditQueryRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post<{ Body: QueryBody }>("/api/v1/audit/query", async (req, reply) => {
    const identity = await requireIdentity(deps, req, reply, AUDIT_READER_GROUPS);
    if (!identity) return reply;
    const body = (req.body ?? {}) as QueryBody;
    if (typeof body.sql !== "string" || body.sql.trim() === "") {
      return reply.code(400).send({ error: "bad_request", message: 'the JSON body needs "sql": a read-only query, e.g. {"sql": "SELECT time, type, command_text FROM events ORDER BY time DESC LIMIT 20"}' });
    }
    let maxRows = 0;
    if (body.maxRows !== undefined) {
      if (typeof body.maxRows !== "number" || !Number.isInteger(body.maxRows) || body.maxRows < 1 || body.maxRows > 100_000) {
        return reply.code(400).send({ error: "bad_request", message: '"maxRows" must be an integer between 1 and 100000' });
      }
      maxRows = body.maxRows;
    }
    // Who read the audit trail is itself worth knowing (the SQL, never a token).
    deps.log.info({ subject: identity.subject, groups: identity.groups, sql: body.sql.slice(0, 500) }, "audit query");
    try {
      const [res] = await deps.auditor.run({ identity, via: "api", kind: "sql", params: maxRows ? { maxRows: String(maxRows) } : {} }, [{ sql: body.sql, params: {}, maxRows }]);
      return { columns: res!.columns, rows: res!.rows, truncated: res!.truncated };
    } catch (e) {
      if (e instanceof AuditUnrecorded) return reply.code(503).send({ error: "audit_unavailable", message: e.message });
      if (e instanceof StoreQueryError) return reply.code(e.status).send({ error: e.code, message: e.message });
      throw e;
    }
  });
}
