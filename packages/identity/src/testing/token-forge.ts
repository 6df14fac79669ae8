// Test-side token forge: a real JWKS/discovery HTTP server with keys generated at
// test time, plus helpers that mint valid tokens and the classic bad ones (alg
// none, HMAC keyed with the public key, tampered payload). Not a fake: tokens are
// real JWS objects that the verifier checks against real HTTP endpoints.
import { createServer, type Server } from "node:http";
import { createHmac, randomUUID } from "node:crypto";
import { once } from "node:events";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import type { IssuerConfig } from "@gatehouse/runtime";

export interface ForgeClaims {
  sub?: string;
  groups?: string[] | string;
  /** Default "gatehouse". */
  aud?: string | string[];
  /** Default: the forge's issuer. */
  iss?: string;
  /** Absolute unix seconds; default now + 300; null leaves the claim out. */
  exp?: number | null;
  nbf?: number;
  /** Header kid; default the kid of the chosen key. */
  kid?: string;
  /** "RS256" (default) or "ES256". */
  alg?: "RS256" | "ES256";
  [claim: string]: unknown;
}

export interface TokenForge {
  /** The forge's base URL (http://127.0.0.1:<port>). */
  readonly url: string;
  /** The issuer its discovery document names. */
  readonly issuer: string;
  /** How many times /jwks was fetched. */
  readonly jwksFetches: number;
  mint(claims?: ForgeClaims): Promise<string>;
  /** An unsigned token (alg "none"). */
  mintNone(claims?: ForgeClaims): string;
  /** HS256 keyed with the RSA public key's PEM bytes (algorithm-confusion attack). */
  mintHmacWithPublicKey(claims?: ForgeClaims): Promise<string>;
  /** Change a payload claim (groups += "admins", sub) and keep the original signature. */
  tamper(token: string): string;
  /** Generate a new key of `alg` and publish it; returns its kid. */
  rotate(alg?: "RS256" | "ES256"): Promise<string>;
  issuerConfig(overrides?: Partial<IssuerConfig>): IssuerConfig;
  close(): Promise<void>;
}

interface ForgeKey {
  kid: string;
  alg: "RS256" | "ES256";
  privateKey: CryptoKey;
  publicJwk: JWK;
  spkiPem: string;
}

async function newKey(alg: "RS256" | "ES256"): Promise<ForgeKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`;
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, publicJwk, spkiPem: await exportSPKI(publicKey) };
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

export async function startTokenForge(opts: { issuer?: string; audience?: string } = {}): Promise<TokenForge> {
  const keys: ForgeKey[] = [await newKey("RS256"), await newKey("ES256")];
  let jwksFetches = 0;
  let url = "";
  let issuer = "";
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/.well-known/openid-configuration") {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ issuer, jwks_uri: `${url}/jwks`, id_token_signing_alg_values_supported: ["RS256", "ES256"] }));
    } else if (path === "/jwks") {
      jwksFetches += 1;
      res.setHeader("content-type", "application/jwk-set+json");
      res.end(JSON.stringify({ keys: keys.map((k) => k.publicJwk) }));
    } else {
      res.statusCode = 404;
      res.end("not found");
    }
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  issuer = opts.issuer ?? url;
  const audience = opts.audience ?? "gatehouse";

  const payloadOf = (claims: ForgeClaims) => {
    const { kid: _kid, alg: _alg, exp, ...rest } = claims;
    const now = Math.floor(Date.now() / 1000);
    const p: Record<string, unknown> = { sub: "agent-1", aud: audience, iss: issuer, iat: now, jti: randomUUID(), ...rest };
    if (exp !== null) p.exp = exp ?? now + 300;
    for (const k of Object.keys(p)) if (p[k] === undefined) delete p[k];
    return p;
  };
  const keyFor = (alg: "RS256" | "ES256") => [...keys].reverse().find((k) => k.alg === alg)!;

  return {
    url,
    issuer,
    get jwksFetches() {
      return jwksFetches;
    },
    async mint(claims = {}) {
      const key = keyFor(claims.alg ?? "RS256");
      return new SignJWT(payloadOf(claims)).setProtectedHeader({ alg: key.alg, kid: claims.kid ?? key.kid, typ: "at+jwt" }).sign(key.privateKey);
    },
    mintNone(claims = {}) {
      return `${b64({ alg: "none", typ: "JWT" })}.${b64(payloadOf(claims))}.`;
    },
    async mintHmacWithPublicKey(claims = {}) {
      const key = keyFor("RS256");
      const input = `${b64({ alg: "HS256", typ: "JWT", kid: key.kid })}.${b64(payloadOf(claims))}`;
      const sig = createHmac("sha256", Buffer.from(key.spkiPem)).update(input).digest("base64url");
      return `${input}.${sig}`;
    },
    tamper(token) {
      const [h, p, s] = token.split(".");
      const payload = JSON.parse(Buffer.from(p!, "base64url").toString()) as Record<string, unknown>;
      payload.groups = [...(Array.isArray(payload.groups) ? payload.groups : []), "admins"];
      payload.sub = `${String(payload.sub)}-tampered`;
      return `${h}.${b64(payload)}.${s}`;
    },
    async rotate(alg = "RS256") {
      const key = await newKey(alg);
      keys.push(key);
      return key.kid;
    },
    issuerConfig(overrides = {}) {
      const base: IssuerConfig = { issuer, audience, groupsClaim: "groups" };
      if (issuer !== url) base.jwksUri = `${url}/jwks`;
      return { ...base, ...overrides };
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
