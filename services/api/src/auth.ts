// Bearer-token authentication for the REST API: the same OIDC access tokens the
// listeners accept, verified by @gatehouse/identity, plus a group check.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Identity } from "@gatehouse/proto";
import { TokenError } from "@gatehouse/identity";
import type { ApiDeps } from "./deps.js";

/** Groups allowed to read the audit trail. */
export const AUDIT_READER_GROUPS = ["auditors", "dba"] as const;

function deny(reply: FastifyReply, status: 401 | 403, check: string, message: string): null {
  if (status === 401) {
    // RFC 6750: tell the client what was wrong with its token (never echo it).
    const desc = message.replace(/["\\\r\n]/g, " ");
    void reply.header("www-authenticate", `Bearer realm="gatehouse", error="invalid_token", error_description="${desc}"`);
  }
  void reply.code(status).send({ error: status === 401 ? "unauthorized" : "forbidden", check, message });
  return null;
}

/**
 * Verify the request's bearer token and require one of `groups`. Sends the 401/403
 * itself and returns null when the caller must stop.
 */
export async function requireIdentity(deps: ApiDeps, req: FastifyRequest, reply: FastifyReply, groups: readonly string[]): Promise<Identity | null> {
  const header = req.headers.authorization;
  if (!header) return deny(reply, 401, "missing_token", "no Authorization header; send `Authorization: Bearer <access token>` (get one with `npx gatehouse token --sub NAME --groups auditors`)");
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) return deny(reply, 401, "format", "the Authorization header must be `Bearer <access token>`");
  let identity: Identity;
  try {
    identity = await deps.verifier.verify(m[1]!, "api");
  } catch (e) {
    if (e instanceof TokenError) return deny(reply, 401, e.check, `access token rejected (${e.check}): ${e.message}`);
    deps.log.error({ err: (e as Error).message }, "token verification failed unexpectedly");
    return deny(reply, 401, "internal", "the access token could not be verified");
  }
  if (!identity.groups.some((g) => groups.includes(g))) {
    return deny(reply, 403, "groups", `${identity.subject} is not in any of the groups ${groups.join(", ")} (member of: ${identity.groups.join(", ") || "none"})`);
  }
  return identity;
}
