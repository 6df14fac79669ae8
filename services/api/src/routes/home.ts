// GET /: a small page saying what this is and how to connect, with the ports of
// this deployment. (The web console for approvers and auditors comes later.)
import type { FastifyInstance } from "fastify";
import type { ApiDeps } from "../deps.js";

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

export function homePage(deps: ApiDeps): string {
  const { config } = deps;
  const pg = Object.entries(config.listeners).find(([name]) => name === "postgres")?.[1];
  const connection = Object.entries(config.connections).find(([, c]) => c.protocol === "postgres")?.[0] ?? "demo";
  const issuer = config.identity.issuers[0]?.issuer ?? config.idp.issuer;
  const psql = pg
    ? `PGPASSWORD=$(npx gatehouse token --sub agent-1 --groups agents) \\\n  psql "host=${pg.host} port=${pg.port} user=agent-1 dbname=${connection}"`
    : "(no postgres listener configured)";
  const idpLink = config.idp.enabled ? `<a href="${esc(config.idp.issuer)}/.well-known/openid-configuration">${esc(config.idp.issuer)}</a> (embedded development IdP)` : esc(issuer);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gatehouse</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#1d2330}
pre{background:#f3f4f7;padding:1rem;overflow:auto;border-radius:6px}code{font-size:.92em}h1{margin-bottom:.2rem}</style></head>
<body>
<h1>Gatehouse</h1>
<p>An access gateway that makes AI agents and CI jobs safe near production. Agents connect to
Gatehouse instead of the database; every statement is authenticated (OIDC access token), decided by
Cedar policies and durably recorded in the audit trail <em>before</em> it reaches the database.
No decision or no audit acknowledgement means no access.</p>
<h2>Connect an agent</h2>
<pre><code>${esc(psql)}</code></pre>
<p>The password is an OIDC access token. Connections configured here: ${Object.keys(config.connections).map((c) => `<code>${esc(c)}</code>`).join(", ") || "none"}.</p>
<h2>Identity provider</h2>
<p>Tokens are accepted from ${idpLink}.</p>
<h2>Approvals</h2>
<p>Commands that policy sends for approval wait in the gateway. Approvers decide in the
<a href="/console">web console</a> (sign in with the identity provider) or with
<code>npx gatehouse approvals list</code>.</p>
<h2>Audit trail</h2>
<pre><code>npx gatehouse audit query "SELECT time, type, identity_subject, command_text, effect, policy_ids FROM events ORDER BY time DESC LIMIT 20"</code></pre>
<p>Or <code>POST /api/v1/audit/query</code> with <code>{"sql": "..."}</code> and a bearer token of a member of the
<code>auditors</code> or <code>dba</code> group. Health: <a href="/healthz">/healthz</a>.</p>
</body></html>
`;
}

export function homeRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const page = homePage(deps);
  app.get("/", async (_req, reply) => reply.type("text/html; charset=utf-8").send(page));
}
