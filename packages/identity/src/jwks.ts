// Per-issuer signing keys: the JWKS location comes from configuration or from the
// issuer's OpenID discovery document; jose caches the set and refetches it when a
// token names an unknown `kid` (at most once per cooldown period).
import { createRemoteJWKSet, errors, type JWTVerifyGetKey } from "jose";
import type { IssuerConfig } from "@gatehouse/runtime";
import { TokenError } from "./errors.js";

export interface JwksOptions {
  /** Minimum time between refetches triggered by unknown kids (jose default 30 s). */
  cooldownMs?: number;
  /** HTTP timeout for discovery and JWKS requests. */
  timeoutMs?: number;
}

/** Lazily resolves one issuer's key set; failed discovery is retried on the next token. */
export class IssuerKeys {
  private remote?: JWTVerifyGetKey;
  private pending?: Promise<JWTVerifyGetKey>;

  constructor(
    private readonly issuer: IssuerConfig,
    private readonly opts: JwksOptions = {},
  ) {}

  /** Key resolver for jose; every failure becomes a TokenError. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const remote = await this.keySet();
    try {
      return await remote(header, token);
    } catch (e) {
      throw this.keyError(e, header.kid);
    }
  };

  private keyError(e: unknown, kid: string | undefined): TokenError {
    const where = this.issuer.jwksUri ?? `the JWKS of ${this.issuer.issuer}`;
    if (e instanceof errors.JWKSNoMatchingKey) {
      return new TokenError("unknown_key", `no key ${kid ? `with kid "${kid}" ` : ""}for this algorithm in ${where}`);
    }
    if (e instanceof errors.JWKSMultipleMatchingKeys) {
      return new TokenError("unknown_key", `token has no "kid" and several keys in ${where} match`);
    }
    if (e instanceof errors.JWKSTimeout) return new TokenError("jwks_unavailable", `timed out fetching ${where}`);
    return new TokenError("jwks_unavailable", `could not fetch ${where}: ${(e as Error).message}`);
  }

  private async keySet(): Promise<JWTVerifyGetKey> {
    if (this.remote) return this.remote;
    this.pending ??= this.discover().finally(() => (this.pending = undefined));
    this.remote = await this.pending;
    return this.remote;
  }

  private async discover(): Promise<JWTVerifyGetKey> {
    const remoteOpts = { cooldownDuration: this.opts.cooldownMs, timeoutDuration: this.opts.timeoutMs ?? 5000 };
    if (this.issuer.jwksUri) return createRemoteJWKSet(new URL(this.issuer.jwksUri), remoteOpts);
    const url = `${this.issuer.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
    let doc: { issuer?: unknown; jwks_uri?: unknown };
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5000), redirect: "error" });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      doc = (await res.json()) as typeof doc;
    } catch (e) {
      const cause = (e as Error & { cause?: Error }).cause?.message;
      throw new TokenError(
        "jwks_unavailable",
        `could not fetch the discovery document ${url}: ${(e as Error).message}${cause ? ` (${cause})` : ""}; is the identity provider running?`,
      );
    }
    // OpenID Connect Discovery 1.0 §4.3: the document must name the same issuer.
    if (doc.issuer !== this.issuer.issuer) {
      throw new TokenError("jwks_unavailable", `discovery document ${url} names issuer "${String(doc.issuer)}", expected "${this.issuer.issuer}"`);
    }
    if (typeof doc.jwks_uri !== "string") throw new TokenError("jwks_unavailable", `discovery document ${url} has no jwks_uri`);
    return createRemoteJWKSet(new URL(doc.jwks_uri), remoteOpts);
  }
}
