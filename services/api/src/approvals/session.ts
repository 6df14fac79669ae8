// Who is calling the approvals API: a bearer token (CLI, scripts), or the web
// console's session cookie set after the OIDC login. Both carry the same kind of
// access token, verified the same way. Cookie-authenticated requests that change
// state must also send the console's header, which a cross-site form cannot.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Identity } from "@gatehouse/proto";
import { TokenError } from "@gatehouse/identity";
import type { ApiDeps } from "../deps.js";

export const SESSION_COOKIE = "gh_session";
export const LOGIN_COOKIE = "gh_login";
export const CONSOLE_HEADER = "x-gatehouse-console";

export function cookies(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i <= 0) continue;
    const k = part.slice(0, i).trim();
    try {
      out[k] = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      // malformed cookie value: ignore it
    }
  }
  return out;
}

export interface Caller {
  identity: Identity;
  via: "bearer" | "cookie";
}

function refuse(reply: FastifyReply, status: 401 | 403, check: string, message: string): null {
  if (status === 401) void reply.header("www-authenticate", `Bearer realm="gatehouse", error="invalid_token", error_description="${message.replace(/["\\\r\n]/g, " ")}"`);
  void reply.code(status).send({ error: status === 401 ? "unauthorized" : "forbidden", check, message });
  return null;
}

/** The verified caller, or null after a 401/403 has been sent. */
export async function caller(deps: ApiDeps, req: FastifyRequest, reply: FastifyReply, opts: { mutating?: boolean } = {}): Promise<Caller | null> {
  const header = req.headers.authorization;
  let token: string | undefined;
  let via: Caller["via"] = "bearer";
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) return refuse(reply, 401, "format", "the Authorization header must be `Bearer <access token>`");
    token = m[1];
  } else {
    token = cookies(req)[SESSION_COOKIE];
    via = "cookie";
    if (!token) {
      return refuse(reply, 401, "missing_token", "not signed in: send `Authorization: Bearer <access token>` (CLI: set GATEHOUSE_TOKEN or run `gatehouse login`) or sign in to the console at /console");
    }
    if (opts.mutating && req.headers[CONSOLE_HEADER] !== "1") {
      return refuse(reply, 403, "csrf", `requests authenticated by the console cookie must send the ${CONSOLE_HEADER}: 1 header`);
    }
  }
  try {
    return { identity: await deps.verifier.verify(token!, "api"), via };
  } catch (e) {
    if (e instanceof TokenError) return refuse(reply, 401, e.check, `access token rejected (${e.check}): ${e.message}${via === "cookie" ? "; sign in again at /console" : ""}`);
    deps.log.error({ err: (e as Error).message }, "token verification failed unexpectedly");
    return refuse(reply, 401, "internal", "the access token could not be verified");
  }
}
