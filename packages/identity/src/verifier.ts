// OIDC access-token verification: the gate every agent passes before a session
// opens. Order matters: cheap structural checks first, the issuer is picked from
// the unverified payload only to select its keys, then everything is verified.
import { compactVerify, errors, type JWTPayload } from "jose";
import type { Identity } from "@gatehouse/proto";
import type { IssuerConfig } from "@gatehouse/runtime";
import { TokenError } from "./errors.js";
import { IssuerKeys, type JwksOptions } from "./jwks.js";
import { checkAudience, checkTime, toIdentity } from "./claims.js";

export const DEFAULT_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"];

export interface TokenVerifierOptions {
  issuers: IssuerConfig[];
  clockSkewSeconds: number;
  jwks?: JwksOptions;
  /** Current time in ms (tests); defaults to Date.now. */
  now?: () => number;
}

export interface TokenVerifier {
  /** Verify `token` and map it to an Identity named `clientName`; throws TokenError. */
  verify(token: string, clientName: string): Promise<Identity>;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function decodePart(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch {
    throw new TokenError("format", `token ${what} is not base64url-encoded JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new TokenError("format", `token ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

export function createTokenVerifier(opts: TokenVerifierOptions): TokenVerifier {
  const byIssuer = new Map<string, { config: IssuerConfig; keys: IssuerKeys; algorithms: string[] }>();
  for (const config of opts.issuers) {
    const algorithms = (config.algorithms ?? DEFAULT_ALGORITHMS).filter((a) => a !== "none" && !a.startsWith("HS"));
    byIssuer.set(config.issuer, { config, keys: new IssuerKeys(config, opts.jwks), algorithms });
  }
  const trusted = [...byIssuer.keys()].join(", ") || "none configured";
  const now = opts.now ?? Date.now;
  const skew = opts.clockSkewSeconds;

  return {
    async verify(token, clientName) {
      if (typeof token !== "string" || token.length === 0) throw new TokenError("format", "no token given (expected an OIDC access token as the password)");
      if (token.length > 16384) throw new TokenError("format", `token is ${token.length} bytes; at most 16384 are accepted`);
      const parts = token.trim().split(".");
      if (parts.length !== 3 || !parts.every((p) => B64URL.test(p)) || parts[0] === "" || parts[1] === "") {
        throw new TokenError("format", "token is not a JWS in compact form (header.payload.signature)");
      }
      const header = decodePart(parts[0]!, "header");
      const payload = decodePart(parts[1]!, "payload") as JWTPayload;
      const alg = header.alg;
      if (typeof alg !== "string") throw new TokenError("format", 'token header has no "alg"');
      // Refused for every issuer: unsigned tokens and HMAC (a public key used as an HMAC secret would verify).
      if (alg.toLowerCase() === "none" || alg.toUpperCase().startsWith("HS")) {
        throw new TokenError("algorithm", `algorithm "${alg}" is not allowed (allowed: ${DEFAULT_ALGORITHMS.join(", ")})`);
      }
      const iss = payload.iss;
      if (typeof iss !== "string") throw new TokenError("issuer", `token has no "iss" claim (trusted: ${trusted})`);
      const entry = byIssuer.get(iss);
      if (!entry) throw new TokenError("issuer", `issuer "${iss}" is not a trusted issuer (trusted: ${trusted})`);
      if (!entry.algorithms.includes(alg)) {
        throw new TokenError("algorithm", `algorithm "${alg}" is not allowed (allowed: ${entry.algorithms.join(", ")})`);
      }
      if (parts[2] === "") throw new TokenError("signature", "token has an empty signature");
      try {
        await compactVerify(token.trim(), entry.keys.getKey, { algorithms: entry.algorithms });
      } catch (e) {
        if (e instanceof TokenError) throw e;
        if (e instanceof errors.JWSSignatureVerificationFailed) {
          throw new TokenError("signature", `signature does not verify with the key "${String(header.kid ?? "(no kid)")}" of ${iss}`);
        }
        if (e instanceof errors.JOSEAlgNotAllowed) throw new TokenError("algorithm", `algorithm "${alg}" is not allowed (allowed: ${entry.algorithms.join(", ")})`);
        if (e instanceof errors.JWSInvalid) throw new TokenError("format", `token is not a valid JWS: ${e.message}`);
        if (e instanceof errors.JOSENotSupported) throw new TokenError("algorithm", `token uses an unsupported algorithm or key: ${e.message}`);
        throw new TokenError("signature", `signature check failed: ${(e as Error).message}`);
      }
      const exp = checkTime(payload, now() / 1000, skew);
      checkAudience(payload, entry.config);
      return toIdentity(payload, entry.config, clientName, exp);
    },
  };
}
