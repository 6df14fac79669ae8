// Who is looking at a console page: the console session cookie (set by the OIDC
// login in routes/console.ts), verified on every page like a bearer token, and
// the roles its groups give.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Identity } from "@gatehouse/proto";
import type { ApiDeps } from "../deps.js";
import { cookies, SESSION_COOKIE } from "../approvals/session.js";
import { esc, layout } from "./html.js";

/** The auditor role: read-only access to sessions, recordings and dashboards. */
export const AUDITOR_GROUPS = ["auditors"] as const;

/** Groups that use the approvals pages (approvers, and those who oversee tickets or grant). */
export function approverGroups(deps: ApiDeps): string[] {
  return [...new Set(["approvers", "admins", "dba", ...deps.config.approvals.grantorGroups])];
}

export interface ConsoleUser {
  identity: Identity;
  approver: boolean;
  auditor: boolean;
}

/** The signed-in user, or null after a redirect to the login has been sent. */
export async function consoleUser(deps: ApiDeps, req: FastifyRequest, reply: FastifyReply): Promise<ConsoleUser | null> {
  const token = cookies(req)[SESSION_COOKIE];
  const login = () => {
    void reply.redirect(`/auth/login?return=${encodeURIComponent(req.url.split("?")[0]!)}`, 302);
    return null;
  };
  if (!token) return login();
  let identity: Identity;
  try {
    identity = await deps.verifier.verify(token, "console");
  } catch {
    // Expired or no longer trusted: sign in again (the reason is the IdP's business, not the page's).
    return login();
  }
  const approvers = approverGroups(deps);
  return {
    identity,
    approver: identity.groups.some((g) => approvers.includes(g)),
    auditor: identity.groups.some((g) => (AUDITOR_GROUPS as readonly string[]).includes(g)),
  };
}

/** The 403 page: who is signed in, and which groups each part of the console needs. */
export function forbiddenPage(deps: ApiDeps, reply: FastifyReply, user: ConsoleUser, needed: "auditor" | "approver" | "any"): FastifyReply {
  const groups = user.identity.groups.length ? user.identity.groups.join(", ") : "none";
  const what =
    needed === "auditor"
      ? `This page is for auditors: it needs membership of the group <b>${esc(AUDITOR_GROUPS.join(", "))}</b>.`
      : needed === "approver"
        ? `This page is for approvers: it needs one of the groups <b>${esc(approverGroups(deps).join(", "))}</b>.`
        : `The console needs one of these groups: <b>${esc(approverGroups(deps).join(", "))}</b> for Approvals, or <b>${esc(AUDITOR_GROUPS.join(", "))}</b> for Sessions and Dashboards.`;
  const body = `<h2 id="forbidden">Access denied</h2>
<p>You are signed in as <b>${esc(user.identity.subject)}</b> (groups: ${esc(groups)}).</p>
<p>${what}</p>
<p>Ask your identity provider's administrator to add you to the group, then <a href="/auth/login?return=/console">sign in again</a>.</p>`;
  return reply
    .code(403)
    .type("text/html; charset=utf-8")
    .header("cache-control", "no-store")
    .send(layout("Access denied", { subject: user.identity.subject, approver: user.approver, auditor: user.auditor, active: "sessions" }, body));
}
