import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { once } from "node:events";
import { createTokenVerifier, TokenError, redactToken, type TokenVerifier } from "./index.js";
import { startTokenForge, type TokenForge } from "./testing/token-forge.js";

let forge: TokenForge;
let verifier: TokenVerifier;

before(async () => {
  forge = await startTokenForge();
  verifier = createTokenVerifier({ issuers: [forge.issuerConfig()], clockSkewSeconds: 30, jwks: { cooldownMs: 0 } });
});
after(async () => {
  await forge.close();
});

/** Assert verify() fails with `check`, and that the message never echoes the token. */
async function rejects(token: string, check: string, message?: RegExp, v: TokenVerifier = verifier): Promise<TokenError> {
  try {
    await v.verify(token, "agent-1");
  } catch (e) {
    assert.ok(e instanceof TokenError, `expected TokenError, got ${String(e)}`);
    assert.equal(e.check, check, e.message);
    if (message) assert.match(e.message, message);
    if (token.length > 20) assert.ok(!e.message.includes(token), "message contains the token");
    return e;
  }
  assert.fail(`token was accepted; expected a "${check}" failure`);
}

test("a valid RS256 token maps to an Identity", async () => {
  const exp = Math.floor(Date.now() / 1000) + 600;
  const token = await forge.mint({ sub: "ci-job-7", groups: ["agents", "ci"], kind: "ci", exp, azp: "gatehouse-cli", jti: "jti-1" });
  const id = await verifier.verify(token, "deploy-bot");
  assert.deepEqual(id, {
    subject: "ci-job-7",
    name: "deploy-bot",
    groups: ["agents", "ci"],
    kind: "ci",
    issuer: forge.issuer,
    tokenId: "jti-1",
    clientId: "gatehouse-cli",
    expiresAtUnix: exp,
  });
});

test("a valid ES256 token verifies; kind defaults to agent; client_id used when no azp", async () => {
  const id = await verifier.verify(await forge.mint({ alg: "ES256", sub: "a", client_id: "c1" }), "n");
  assert.equal(id.kind, "agent");
  assert.equal(id.clientId, "c1");
  assert.deepEqual(id.groups, []);
});

test("expired token names the expiry, now and skew", async () => {
  const exp = Math.floor(Date.now() / 1000) - 120;
  const e = await rejects(await forge.mint({ exp }), "expired", /^token expired at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(now .*Z, skew 30s\)$/);
  assert.ok(e.message.includes(new Date(exp * 1000).toISOString().replace(/\.\d{3}Z$/, "Z")));
});

test("expiry within the clock skew is still accepted", async () => {
  const id = await verifier.verify(await forge.mint({ exp: Math.floor(Date.now() / 1000) - 5 }), "n");
  assert.equal(id.subject, "agent-1");
});

test("not yet valid", async () => {
  await rejects(await forge.mint({ nbf: Math.floor(Date.now() / 1000) + 600 }), "not_yet_valid", /not valid before/);
});

test("wrong audience", async () => {
  await rejects(await forge.mint({ aud: "other" }), "audience", /^audience "other" is not "gatehouse"$/);
  await rejects(await forge.mint({ aud: undefined }), "audience", /no "aud" claim/);
  // One matching entry of an array is enough.
  assert.equal((await verifier.verify(await forge.mint({ aud: ["x", "gatehouse"] }), "n")).subject, "agent-1");
});

test("untrusted issuer", async () => {
  await rejects(await forge.mint({ iss: "https://evil" }), "issuer", new RegExp(`^issuer "https://evil" is not a trusted issuer \\(trusted: ${forge.issuer}\\)$`));
});

test("alg none is refused", async () => {
  await rejects(forge.mintNone({}), "algorithm", /^algorithm "none" is not allowed \(allowed: RS256/);
});

test("HS256 signed with the public key's bytes is refused (algorithm confusion)", async () => {
  await rejects(await forge.mintHmacWithPublicKey({}), "algorithm", /algorithm "HS256" is not allowed/);
});

test("an algorithm outside the issuer's allow-list is refused", async () => {
  const strict = createTokenVerifier({ issuers: [forge.issuerConfig({ algorithms: ["ES256"] })], clockSkewSeconds: 0 });
  await rejects(await forge.mint({ alg: "RS256" }), "algorithm", /algorithm "RS256" is not allowed \(allowed: ES256\)/, strict);
  assert.equal((await strict.verify(await forge.mint({ alg: "ES256" }), "n")).subject, "agent-1");
});

test("tampered payload fails the signature check", async () => {
  await rejects(forge.tamper(await forge.mint({ groups: ["readers"] })), "signature", /signature does not verify/);
});

test("unknown kid", async () => {
  await rejects(await forge.mint({ kid: "no-such-key" }), "unknown_key", /kid "no-such-key"/);
});

test("a key added after the first fetch is found by refetching the JWKS", async () => {
  await verifier.verify(await forge.mint({}), "n");
  const before = forge.jwksFetches;
  const kid = await forge.rotate("RS256");
  const id = await verifier.verify(await forge.mint({ kid }), "n");
  assert.equal(id.subject, "agent-1");
  assert.ok(forge.jwksFetches > before);
});

test("missing exp is refused", async () => {
  await rejects(await forge.mint({ exp: null }), "claims", /no "exp" claim/);
});

test("missing sub is refused", async () => {
  await rejects(await forge.mint({ sub: undefined }), "claims", /"sub"/);
});

test("groups: space or comma separated strings, custom claim, bad types", async () => {
  assert.deepEqual((await verifier.verify(await forge.mint({ groups: "a b,c ,, d" }), "n")).groups, ["a", "b", "c", "d"]);
  const custom = createTokenVerifier({ issuers: [forge.issuerConfig({ groupsClaim: "roles" })], clockSkewSeconds: 0 });
  assert.deepEqual((await custom.verify(await forge.mint({ roles: ["dba"], groups: ["x"] }), "n")).groups, ["dba"]);
  await rejects(await forge.mint({ groups: [1, 2] as unknown as string[] }), "claims", /"groups" claim must be/);
});

test("malformed tokens fail the format check", async () => {
  await rejects("", "format");
  await rejects("not-a-token", "format", /compact form/);
  await rejects("a.b.c.d", "format");
  await rejects("!!!.@@@.###", "format");
  await rejects(`${Buffer.from("[1]").toString("base64url")}.${Buffer.from("{}").toString("base64url")}.sig`, "format", /header is not a JSON object/);
  await rejects("x".repeat(20000), "format", /at most 16384/);
});

test("issuer unreachable: jwks_unavailable with a hint", async () => {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const v = createTokenVerifier({ issuers: [{ issuer: `http://127.0.0.1:${port}`, audience: "gatehouse" }], clockSkewSeconds: 0 });
  await rejects(await forge.mint({ iss: `http://127.0.0.1:${port}` }), "jwks_unavailable", /could not fetch the discovery document .*is the identity provider running/, v);
});

test("discovery document naming another issuer is refused", async () => {
  const other = await startTokenForge({ issuer: "https://idp.example" });
  try {
    // Point an issuer at the other forge's URL: its document names https://idp.example.
    const v = createTokenVerifier({ issuers: [{ issuer: other.url, audience: "gatehouse" }], clockSkewSeconds: 0 });
    await rejects(await other.mint({ iss: other.url }), "jwks_unavailable", /names issuer "https:\/\/idp.example"/, v);
    // With an explicit jwksUri the foreign issuer verifies.
    const v2 = createTokenVerifier({ issuers: [other.issuerConfig()], clockSkewSeconds: 0 });
    assert.equal((await v2.verify(await other.mint({}), "n")).issuer, "https://idp.example");
  } finally {
    await other.close();
  }
});

test("redactToken removes JWT-looking strings", async () => {
  const t = await forge.mint({});
  assert.equal(redactToken(`password=${t} rest`), "password=[REDACTED TOKEN] rest");
});
