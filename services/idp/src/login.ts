// The dev login page for the authorization code flow: any username, groups picked
// from a list. Served under /interaction/<uid>; oidc-provider owns the rest.
import type { IncomingMessage, ServerResponse } from "node:http";
import type Provider from "oidc-provider";
import { CONSOLE_GROUPS, validGroup, validSubject, type DevAccounts } from "./accounts.js";

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(uid: string, clientId: string, error?: string): string {
  const boxes = CONSOLE_GROUPS.map((g) => `<label><input type="checkbox" name="groups" value="${esc(g)}"> ${esc(g)}</label><br>`).join("\n");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Gatehouse dev login</title>
<style>body{font-family:sans-serif;max-width:26rem;margin:4rem auto}input[type=text]{width:100%}.err{color:#b00}</style></head>
<body>
<h1>Gatehouse dev login</h1>
<p>Development identity provider: any username is accepted. Signing in to <b>${esc(clientId)}</b>.</p>
${error ? `<p class="err">${esc(error)}</p>` : ""}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<p><label>Username<br><input type="text" name="username" required autofocus pattern="[A-Za-z0-9][A-Za-z0-9._@-]{0,63}"></label></p>
<fieldset><legend>Groups</legend>
${boxes}
</fieldset>
<p><button type="submit">Sign in</button></p>
</form>
</body></html>`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16384) throw new Error("form too large");
  }
  return new URLSearchParams(body);
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}

/** Handle /interaction/* requests; resolves false when the path is not ours. */
export async function handleInteraction(provider: Provider, accounts: DevAccounts, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const m = /^\/interaction\/([\w-]+)(\/login)?$/.exec((req.url ?? "").split("?")[0]!);
  if (!m) return false;
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch {
    send(res, 400, "text/plain", "this login request expired or is unknown: start again from the console\n");
    return true;
  }
  if (details.uid !== m[1]) {
    send(res, 400, "text/plain", "login request mismatch: start again from the console\n");
    return true;
  }
  const clientId = String(details.params.client_id ?? "");
  if (!m[2] && req.method === "GET") {
    send(res, 200, "text/html; charset=utf-8", page(details.uid, clientId));
    return true;
  }
  if (m[2] && req.method === "POST") {
    const form = await readForm(req);
    const username = form.get("username") ?? "";
    const groups = [...new Set(form.getAll("groups"))];
    if (!validSubject(username)) {
      send(res, 400, "text/html; charset=utf-8", page(details.uid, clientId, "Username: 1-64 letters, digits, . _ @ -"));
      return true;
    }
    if (!groups.every((g) => validGroup(g) && CONSOLE_GROUPS.includes(g))) {
      send(res, 400, "text/html; charset=utf-8", page(details.uid, clientId, "Pick groups from the list"));
      return true;
    }
    accounts.login(username, groups);
    await provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
    return true;
  }
  send(res, 405, "text/plain", "method not allowed\n");
  return true;
}
