// POST /api/v1/audit/query {sql, maxRows?}: read-only SQL on the audit store for
// auditors and DBAs. The audit service enforces read-only; this route enforces who.
import type { FastifyInstance } from "fastify";
import { RpcError, Status } from "@gatehouse/runtime";
import type { ApiDeps } from "../deps.js";
import { AUDIT_READER_GROUPS, requireIdentity } from "../auth.js";

interface QueryBody {
  sql?: unknown;
  maxRows?: unknown;
}

/** gRPC status -> HTTP status for errors coming back from the audit service. */
function httpStatus(e: RpcError): number {
  switch (e.code) {
    case Status.INVALID_ARGUMENT:
      return 400;
    case Status.UNAVAILABLE:
    case Status.DEADLINE_EXCEEDED:
      return 503;
    default:
      return 502;
  }
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
      const res = await deps.audit.query({ sql: body.sql, maxRows, params: {} });
      return {
        columns: res.columns,
        rows: res.rows.map((r) => JSON.parse(r) as unknown),
        truncated: res.truncated,
      };
    } catch (e) {
      if (e instanceof RpcError) {
        return reply.code(httpStatus(e)).send({ error: Status[e.code] ?? "error", message: `audit service: ${e.message}` });
      }
      throw e;
    }
  });
}
