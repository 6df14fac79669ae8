// The approvers' web console: OIDC authorization code + PKCE login against the
// configured issuer (the dev IdP locally, any OIDC issuer in production), a live
// queue of pending tickets (server-sent events) and a ticket page to approve or
// deny. The code is exchanged by this server (no token in the browser's URL or
// script); the access token is kept in an HttpOnly, SameSite=Strict cookie.
import { createHash, randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ApiDeps } from "../deps.js";
import { CONSOLE_HEADER, cookies, LOGIN_COOKIE, SESSION_COOKIE } from "../approvals/session.js";
import { consoleUser, forbiddenPage, type ConsoleUser } from "../console/user.js";

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function cookie(name: string, value: string, maxAgeS: number, sameSite: "Strict" | "Lax", secure: boolean): string {
  return `${name}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=${sameSite}; Max-Age=${Math.max(0, Math.floor(maxAgeS))}${secure ? "; Secure" : ""}`;
}

/** Only our own console paths are valid places to return to after login. */
function safeReturn(p: unknown): string {
  return typeof p === "string" && /^\/console(\/[\w./-]*)?$/.test(p) ? p : "/console";
}

export function consoleRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const cfg = deps.config.approvals;
  const secure = cfg.consoleUrl.startsWith("https:");
  const redirectUri = `${cfg.consoleUrl}/auth/callback`;
  let discovery: Discovery | undefined;
  const discover = async (): Promise<Discovery> => {
    if (discovery) return discovery;
    const url = `${cfg.oidc.issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`OIDC discovery at ${url} answered ${res.status}`);
    const d = (await res.json()) as Partial<Discovery>;
    if (!d.authorization_endpoint || !d.token_endpoint) throw new Error(`OIDC discovery at ${url} lacks authorization_endpoint/token_endpoint`);
    discovery = { authorization_endpoint: d.authorization_endpoint, token_endpoint: d.token_endpoint };
    return discovery;
  };

  app.get<{ Querystring: { return?: string } }>("/auth/login", async (req, reply) => {
    let d: Discovery;
    try {
      d = await discover();
    } catch (e) {
      return reply.code(503).type("text/plain").send(`console login unavailable: ${(e as Error).message} (approvals.oidc.issuer)\n`);
    }
    const verifier = randomBytes(32).toString("base64url");
    const state = randomBytes(16).toString("base64url");
    const auth = new URL(d.authorization_endpoint);
    auth.search = new URLSearchParams({
      client_id: cfg.oidc.clientId,
      response_type: "code",
      redirect_uri: redirectUri,
      scope: cfg.oidc.scopes,
      state,
      code_challenge: createHash("sha256").update(verifier).digest("base64url"),
      code_challenge_method: "S256",
    }).toString();
    // Lax: the cookie must come back on the IdP's top-level redirect to /auth/callback.
    void reply.header("set-cookie", cookie(LOGIN_COOKIE, JSON.stringify({ state, verifier, ret: safeReturn(req.query.return) }), 600, "Lax", secure));
    return reply.redirect(auth.href, 302);
  });

  app.get<{ Querystring: { code?: string; state?: string; error?: string; error_description?: string } }>("/auth/callback", async (req, reply) => {
    const q = req.query;
    if (q.error) return reply.code(400).type("text/plain").send(`login failed at the identity provider: ${q.error} ${q.error_description ?? ""}\n`);
    let pending: { state?: string; verifier?: string; ret?: string } = {};
    try {
      pending = JSON.parse(cookies(req)[LOGIN_COOKIE] ?? "{}") as typeof pending;
    } catch {
      pending = {};
    }
    if (!q.code || !q.state || !pending.state || q.state !== pending.state || !pending.verifier) {
      return reply.code(400).type("text/plain").send("login state missing or mismatched (cookie expired or another login started): open /console again\n");
    }
    let token: string;
    try {
      const d = await discover();
      const res = await fetch(d.token_endpoint, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "authorization_code", code: q.code, redirect_uri: redirectUri, client_id: cfg.oidc.clientId, code_verifier: pending.verifier }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!res.ok || !body.access_token) throw new Error(`token endpoint answered ${res.status}: ${body.error ?? ""} ${body.error_description ?? ""}`);
      token = body.access_token;
    } catch (e) {
      return reply.code(502).type("text/plain").send(`login failed: ${(e as Error).message}\n`);
    }
    let exp = 15 * 60;
    try {
      const id = await deps.verifier.verify(token, "console");
      if (id.expiresAtUnix) exp = id.expiresAtUnix - Math.floor(Date.now() / 1000);
      deps.log.info({ subject: id.subject, groups: id.groups }, "console login");
    } catch (e) {
      return reply.code(403).type("text/plain").send(`the identity provider's token is not accepted here: ${(e as Error).message} (identity.issuers)\n`);
    }
    void reply.header("set-cookie", [cookie(SESSION_COOKIE, token, exp, "Strict", secure), cookie(LOGIN_COOKIE, "", 0, "Lax", secure)]);
    return reply.redirect(safeReturn(pending.ret), 302);
  });

  app.post("/auth/logout", async (_req, reply) => {
    void reply.header("set-cookie", cookie(SESSION_COOKIE, "", 0, "Strict", secure));
    return { ok: true };
  });

  // Approvers get the approval pages; auditors who are not approvers go to their
  // sessions page; anyone else gets a 403 page naming the groups needed.
  const page = async (req: FastifyRequest, reply: FastifyReply, title: string, script: string) => {
    const user = await consoleUser(deps, req, reply);
    if (!user) return reply;
    if (!user.approver) {
      if (user.auditor && req.url.split("?")[0] === "/console") return reply.redirect("/console/sessions", 302);
      return forbiddenPage(deps, reply, user, user.auditor ? "approver" : "any");
    }
    return reply.type("text/html; charset=utf-8").header("cache-control", "no-store").send(shell(title, script, user));
  };
  app.get("/console", async (req, reply) => page(req, reply, "Pending approvals", QUEUE_JS));
  app.get<{ Params: { id: string } }>("/console/tickets/:id", async (req, reply) => page(req, reply, `Ticket ${esc(req.params.id)}`, TICKET_JS));
}

function shell(title: string, script: string, user: ConsoleUser): string {
  const nav = `<nav id="nav"><a href="/console" class="active">Approvals</a>${user.auditor ? '<a href="/console/sessions">Sessions</a><a href="/console/dashboards">Dashboards</a>' : ""}</nav>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title} - Gatehouse</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 1rem;color:#1d2330}
header{display:flex;gap:1.5rem;align-items:baseline;border-bottom:1px solid #ddd;margin-bottom:1rem}header nav a{margin-right:1rem}#me{margin-left:auto;color:#555}
pre{background:#f3f4f7;padding:.8rem;overflow:auto;border-radius:6px;white-space:pre-wrap}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:.35rem .5rem;text-align:left;vertical-align:top}
.state{font-weight:600}.pending{color:#a36b00}.approved{color:#137333}.denied,.expired,.withdrawn{color:#b3261e}
.err{color:#b3261e}button{padding:.4rem 1rem;margin-right:.5rem}textarea{width:100%;min-height:3rem}
</style></head>
<body>
<header><h1><a href="/console">Gatehouse approvals</a></h1>${nav}<span id="me">${esc(user.identity.subject)}</span></header>
<main id="main">Loading…</main>
<script>
const H = {"${CONSOLE_HEADER}": "1", "content-type": "application/json"};
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
async function api(path, opts = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...opts, headers: { ...H, ...(opts.headers || {}) } });
  if (res.status === 401) { location.href = "/auth/login?return=" + encodeURIComponent(location.pathname); throw new Error("signed out"); }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.message || ("HTTP " + res.status));
  return body;
}
${script}
</script>
</body></html>`;
}

// The pending queue, kept live by the server-sent event stream (read with fetch so
// the same-origin cookie and the console header go with it).
const QUEUE_JS = `
const tickets = new Map();
function render() {
  const rows = [...tickets.values()].filter((t) => t.state === "pending").sort((a, b) => a.created_at < b.created_at ? 1 : -1);
  document.getElementById("main").innerHTML = rows.length === 0 ? '<p id="empty">No pending approvals.</p>' :
    '<table id="queue"><tr><th>Ticket</th><th>Requester</th><th>Connection</th><th>Command</th><th>Policy</th><th>Expires</th></tr>' +
    rows.map((t) => '<tr data-ticket="' + esc(t.id) + '"><td><a href="/console/tickets/' + encodeURIComponent(t.id) + '">' + esc(t.id.slice(0, 8)) + '</a></td><td>' + esc(t.requester && t.requester.subject) +
      '</td><td>' + esc(t.connection) + '</td><td><code>' + esc(t.command.slice(0, 120)) + '</code></td><td>' + esc(t.policy_ids.join(", ")) + '</td><td>' + esc(t.expires_at) + '</td></tr>').join("") + '</table>';
}
async function stream() {
  for (;;) {
    try {
      const res = await fetch("/api/v1/approvals/stream", { credentials: "same-origin", headers: H });
      if (res.status === 401) { location.href = "/auth/login?return=/console"; return; }
      const reader = res.body.getReader(); const dec = new TextDecoder(); let buf = "";
      for (;;) {
        const { value, done } = await reader.read(); if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\\n\\n")) >= 0) {
          const chunk = buf.slice(0, i); buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(chunk)?.[1]; const data = /^data: (.*)$/m.exec(chunk)?.[1];
          if (!ev || !data) continue;
          const body = JSON.parse(data);
          if (ev === "snapshot") { tickets.clear(); for (const t of body) tickets.set(t.id, t); render(); }
          if (ev === "ticket") { tickets.set(body.id, body); render(); }
        }
      }
    } catch (e) { document.getElementById("main").insertAdjacentHTML("afterbegin", '<p class="err">' + esc(e.message) + '; reconnecting…</p>'); }
    await new Promise((r) => setTimeout(r, 2000));
  }
}
stream();
`;

const TICKET_JS = `
const id = decodeURIComponent(location.pathname.split("/").pop());
async function load() {
  const { ticket: t, activity, activity_error } = await api("/api/v1/approvals/tickets/" + encodeURIComponent(id));
  const votes = t.votes.map((v) => '<li>' + esc(v.approver) + ': ' + (v.approve ? "approved" : "denied") + (v.reason ? " - " + esc(v.reason) : "") + ' (' + esc(v.time) + ')</li>').join("");
  const act = (activity || []).map((a) => '<tr><td>' + esc(a.time) + '</td><td>' + esc(a.type) + '</td><td>' + esc(a.connection) + '</td><td><code>' + esc(a.command_text) + '</code></td><td>' + esc(a.effect) + '</td></tr>').join("");
  document.getElementById("main").innerHTML =
    '<h2>Ticket <code>' + esc(t.id) + '</code> <span id="state" class="state ' + esc(t.state) + '">' + esc(t.state) + '</span></h2>' +
    '<p id="state-reason">' + esc(t.state_reason) + '</p>' +
    '<table><tr><th>Requester</th><td id="requester">' + esc(t.requester && t.requester.subject) + ' (' + esc((t.requester && t.requester.groups || []).join(", ")) + ')</td></tr>' +
    '<tr><th>Connection</th><td>' + esc(t.connection) + '</td></tr>' +
    '<tr><th>Policy</th><td id="policy">' + esc(t.policy_ids.join(", ")) + ': ' + esc(t.policy_reason) + '</td></tr>' +
    '<tr><th>Approvers</th><td>' + esc(t.min_approvals) + ' of ' + esc(t.approver_groups.join(", ")) + '</td></tr>' +
    '<tr><th>Expires</th><td>' + esc(t.expires_at) + '</td></tr></table>' +
    '<h3>Command</h3><pre id="command">' + esc(t.command) + '</pre>' +
    (votes ? '<h3>Decisions</h3><ul>' + votes + '</ul>' : '') +
    (t.state === "pending" ?
      '<h3>Decide</h3><form id="decide" onsubmit="return false"><p><label>Reason<br><textarea id="reason" name="reason"></textarea></label></p>' +
      '<p><label>Also allow matching commands of this requester for <input id="window" name="window" type="number" min="0" step="1" style="width:5rem"> minutes (optional standing grant)</label></p>' +
      '<p><button id="approve" type="button">Approve</button><button id="deny" type="button">Deny</button> <span id="result"></span></p></form>' : '') +
    '<h3>Recent activity of the requester</h3>' + (activity_error ? '<p class="err">' + esc(activity_error) + '</p>' : '') +
    '<table id="activity"><tr><th>Time</th><th>Event</th><th>Connection</th><th>Command</th><th>Effect</th></tr>' + act + '</table>';
  const decide = async (verb) => {
    const out = document.getElementById("result");
    out.textContent = "…";
    try {
      const w = document.getElementById("window").value;
      await api("/api/v1/approvals/tickets/" + encodeURIComponent(id) + "/" + verb, { method: "POST", body: JSON.stringify({ reason: document.getElementById("reason").value, grantMinutes: verb === "approve" && w ? Number(w) : undefined }) });
      await load();
    } catch (e) { out.className = "err"; out.textContent = e.message; }
  };
  if (t.state === "pending") {
    document.getElementById("approve").onclick = () => decide("approve");
    document.getElementById("deny").onclick = () => decide("deny");
  }
}
load().catch((e) => { document.getElementById("main").innerHTML = '<p class="err">' + esc(e.message) + '</p>'; });
`;
