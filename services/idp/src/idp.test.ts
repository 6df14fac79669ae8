import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { freePort } from "@gatehouse/testing";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveConfig, type GatehouseConfig } from "@gatehouse/runtime";
import { createTokenVerifier, readDevIdpSecrets, requestDevToken, TokenError, DEV_TOKEN_GRANT } from "@gatehouse/identity";
import { startDevIdp, type DevIdp } from "./service.js";
import { consoleRedirectUris } from "./provider.js";

let dataDir: string;
let config: GatehouseConfig;
let idp: DevIdp;


before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "gatehouse-idp-"));
  const port = await freePort();
  config = resolveConfig({ dataDir, idp: { port }, api: { port: 15080 } }, dataDir);
  idp = await startDevIdp(config);
});
after(async () => {
  await idp.stop();
  await rm(dataDir, { recursive: true, force: true });
});

const verifier = () => createTokenVerifier({ issuers: config.identity.issuers, clockSkewSeconds: 0 });
const secret = async () => (await readDevIdpSecrets(dataDir)).cliClientSecret;

test("keys and secrets are generated in <dataDir>/idp with mode 0600", async () => {
  for (const f of ["jwks.json", "secrets.json"]) {
    const s = await stat(join(dataDir, "idp", f));
    assert.equal(s.mode & 0o777, 0o600, f);
  }
  const jwks = JSON.parse(await readFile(join(dataDir, "idp", "jwks.json"), "utf8")) as { keys: Array<{ alg: string; d?: string }> };
  assert.deepEqual(jwks.keys.map((k) => k.alg).sort(), ["ES256", "RS256"]);
  // The published JWKS holds public keys only.
  const pub = (await (await fetch(`${idp.issuer}/jwks`)).json()) as { keys: Array<{ d?: string }> };
  assert.equal(pub.keys.length, 2);
  assert.ok(pub.keys.every((k) => k.d === undefined));
});

test("the dev token grant issues a JWT access token that @gatehouse/identity verifies", async () => {
  const { accessToken, expiresIn } = await requestDevToken({ issuer: idp.issuer, clientSecret: await secret(), subject: "agent-1", groups: ["agents", "readers"], kind: "ci", ttlSeconds: 600 });
  assert.equal(expiresIn, 600);
  const id = await verifier().verify(accessToken, "deploy-bot");
  assert.equal(id.subject, "agent-1");
  assert.equal(id.name, "deploy-bot");
  assert.deepEqual(id.groups, ["agents", "readers"]);
  assert.equal(id.kind, "ci");
  assert.equal(id.issuer, idp.issuer);
  assert.equal(id.clientId, "gatehouse-cli");
  assert.ok(id.tokenId.length > 0);
  assert.ok(Math.abs(id.expiresAtUnix - (Date.now() / 1000 + 600)) < 60);
  const header = JSON.parse(Buffer.from(accessToken.split(".")[0]!, "base64url").toString()) as { alg: string; typ: string };
  assert.deepEqual([header.alg, header.typ], ["RS256", "at+jwt"]);
});

test("the dev token grant refuses a wrong secret and bad parameters", async () => {
  await assert.rejects(requestDevToken({ issuer: idp.issuer, clientSecret: "wrong", subject: "a", groups: [] }), /refused the token request: invalid_client.*client secret does not match/);
  const s = await secret();
  await assert.rejects(requestDevToken({ issuer: idp.issuer, clientSecret: s, subject: "bad subject!", groups: [] }), /invalid_request: subject must be/);
  await assert.rejects(requestDevToken({ issuer: idp.issuer, clientSecret: s, subject: "a", groups: ["<script>"] }), /invalid_request: group "<script>" is not valid/);
  await assert.rejects(requestDevToken({ issuer: idp.issuer, clientSecret: s, subject: "a", groups: [], kind: "root" }), /kind must be one of agent, ci, human, service/);
  await assert.rejects(requestDevToken({ issuer: idp.issuer, clientSecret: s, subject: "a", groups: [], ttlSeconds: 10 }), /ttl must be whole seconds between 60 and 86400/);
});

test("the console client cannot use the dev grant", async () => {
  const res = await fetch(`${idp.issuer}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: DEV_TOKEN_GRANT, client_id: "gatehouse-console", subject: "root", groups: "admins" }),
  });
  assert.equal(res.status, 400);
  const body = (await res.json()) as { error: string };
  assert.match(body.error, /unauthorized_client|invalid_request|invalid_client/);
});

test("plain client credentials: subject is the client", async () => {
  const res = await fetch(`${idp.issuer}/token`, {
    method: "POST",
    headers: { authorization: `Basic ${Buffer.from(`gatehouse-cli:${await secret()}`).toString("base64")}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials" }),
  });
  assert.equal(res.status, 200);
  const id = await verifier().verify(((await res.json()) as { access_token: string }).access_token, "n");
  assert.equal(id.subject, "gatehouse-cli");
  assert.deepEqual(id.groups, []);
  assert.equal(id.kind, "service");
});

/** A tiny cookie jar for following the browser flow with fetch. */
class Browser {
  private cookies = new Map<string, string>();
  async go(url: string, init: RequestInit = {}): Promise<Response> {
    const res = await fetch(url, { ...init, redirect: "manual", headers: { ...(init.headers as Record<string, string>), cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ") } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair!.indexOf("=");
      this.cookies.set(pair!.slice(0, i), pair!.slice(i + 1));
    }
    return res;
  }
}

test("authorization code + PKCE for the console with the dev login page", async () => {
  const redirectUri = consoleRedirectUris(config)[0]!;
  const verifierStr = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifierStr).digest("base64url");
  const b = new Browser();
  const auth = new URL(`${idp.issuer}/auth`);
  auth.search = new URLSearchParams({ client_id: "gatehouse-console", response_type: "code", redirect_uri: redirectUri, scope: "openid profile groups", code_challenge: challenge, code_challenge_method: "S256", state: "st-1" }).toString();
  let res = await b.go(auth.href);
  assert.equal(res.status, 303);
  const interaction = new URL(res.headers.get("location")!, idp.issuer).href;
  assert.match(interaction, /\/interaction\/[\w-]+$/);
  res = await b.go(interaction);
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /name="username"/);
  assert.match(html, /value="approvers"/);

  // A group outside the list is refused.
  res = await b.go(`${interaction}/login`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "username=alice&groups=root" });
  assert.equal(res.status, 400);

  res = await b.go(`${interaction}/login`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "username=alice&groups=approvers&groups=auditors" });
  assert.equal(res.status, 303);
  // Follow the resume redirects until the console's callback.
  let location = new URL(res.headers.get("location")!, idp.issuer).href;
  for (let i = 0; i < 5 && !location.startsWith(redirectUri); i++) {
    res = await b.go(location);
    assert.ok([302, 303].includes(res.status), `unexpected ${res.status}: ${await res.text()}`);
    location = new URL(res.headers.get("location")!, idp.issuer).href;
  }
  const cb = new URL(location);
  assert.equal(cb.searchParams.get("state"), "st-1");
  const code = cb.searchParams.get("code");
  assert.ok(code, `no code in ${location}`);

  // Without the verifier the code is refused (PKCE).
  res = await fetch(`${idp.issuer}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code, client_id: "gatehouse-console", redirect_uri: redirectUri, code_verifier: randomBytes(32).toString("base64url") }),
  });
  assert.equal(res.status, 400);

  // With the right verifier the exchange succeeds.
  res = await fetch(`${idp.issuer}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code, client_id: "gatehouse-console", redirect_uri: redirectUri, code_verifier: verifierStr }),
  });
  const body = (await res.json()) as { access_token?: string; id_token?: string; error?: string; error_description?: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  const id = await verifier().verify(body.access_token!, "alice");
  assert.equal(id.subject, "alice");
  assert.deepEqual(id.groups, ["approvers", "auditors"]);
  assert.equal(id.kind, "human");
  assert.equal(id.clientId, "gatehouse-console");
  const idToken = JSON.parse(Buffer.from(body.id_token!.split(".")[1]!, "base64url").toString()) as { sub: string; groups: string[] };
  assert.equal(idToken.sub, "alice");
  assert.deepEqual(idToken.groups, ["approvers", "auditors"]);
});

test("the authorization endpoint refuses a redirect URI that is not registered and a missing PKCE challenge", async () => {
  const auth = new URL(`${idp.issuer}/auth`);
  auth.search = new URLSearchParams({ client_id: "gatehouse-console", response_type: "code", redirect_uri: "http://evil.example/cb", scope: "openid" }).toString();
  const res = await fetch(auth, { redirect: "manual" });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /redirect_uri/);
  auth.search = new URLSearchParams({ client_id: "gatehouse-console", response_type: "code", redirect_uri: consoleRedirectUris(config)[1]!, scope: "openid" }).toString();
  const res2 = await fetch(auth, { redirect: "manual" });
  assert.equal(res2.status, 303);
  assert.match(res2.headers.get("location")!, /error=invalid_request.*PKCE/);
});

test("keys persist across a restart: tokens issued before still verify", async () => {
  const { accessToken } = await requestDevToken({ issuer: idp.issuer, clientSecret: await secret(), subject: "agent-2", groups: [] });
  const before = await readFile(join(dataDir, "idp", "jwks.json"), "utf8");
  await idp.stop();
  idp = await startDevIdp(config);
  assert.equal(await readFile(join(dataDir, "idp", "jwks.json"), "utf8"), before);
  assert.equal((await verifier().verify(accessToken, "n")).subject, "agent-2");
});

test("a token from another IdP instance (other keys) fails the signature or key check", async () => {
  const otherDir = await mkdtemp(join(tmpdir(), "gatehouse-idp-other-"));
  const other = await startDevIdp({ ...config, dataDir: otherDir, idp: { ...config.idp, port: await freePort() } });
  try {
    // Same issuer string as configured, different keys: must not verify against ours.
    const { accessToken } = await requestDevToken({ issuer: `http://${other.address}`, clientSecret: (await readDevIdpSecrets(otherDir)).cliClientSecret, subject: "x", groups: [] });
    await assert.rejects(verifier().verify(accessToken, "n"), (e: unknown) => e instanceof TokenError && ["unknown_key", "signature"].includes(e.check));
  } finally {
    await other.stop();
    await rm(otherDir, { recursive: true, force: true });
  }
});
