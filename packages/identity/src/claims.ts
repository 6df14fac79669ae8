// Claim checks with specific messages (jose's generic ones name no values) and the
// mapping from verified claims to a gatehouse Identity.
import type { JWTPayload } from "jose";
import type { Identity } from "@gatehouse/proto";
import type { IssuerConfig } from "@gatehouse/runtime";
import { TokenError } from "./errors.js";

/** Unix seconds as "2026-11-22T04:10:00Z". */
export function isoSeconds(unix: number): string {
  return new Date(Math.floor(unix) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function checkTime(payload: JWTPayload, nowSec: number, skew: number): number {
  const { exp, nbf } = payload;
  if (exp === undefined) throw new TokenError("claims", 'token has no "exp" claim; tokens without an expiry are not accepted');
  if (typeof exp !== "number" || !Number.isFinite(exp)) throw new TokenError("claims", '"exp" claim is not a number');
  if (nowSec - skew >= exp) {
    throw new TokenError("expired", `token expired at ${isoSeconds(exp)} (now ${isoSeconds(nowSec)}, skew ${skew}s)`);
  }
  if (nbf !== undefined) {
    if (typeof nbf !== "number" || !Number.isFinite(nbf)) throw new TokenError("claims", '"nbf" claim is not a number');
    if (nowSec + skew < nbf) {
      throw new TokenError("not_yet_valid", `token is not valid before ${isoSeconds(nbf)} (now ${isoSeconds(nowSec)}, skew ${skew}s)`);
    }
  }
  return exp;
}

export function checkAudience(payload: JWTPayload, issuer: IssuerConfig): void {
  const expected = Array.isArray(issuer.audience) ? issuer.audience : [issuer.audience];
  const aud = payload.aud;
  const got = aud === undefined ? [] : Array.isArray(aud) ? aud : [aud];
  if (got.some((a) => typeof a === "string" && expected.includes(a))) return;
  const want = expected.map((a) => `"${a}"`).join(" or ");
  if (got.length === 0) throw new TokenError("audience", `token has no "aud" claim (expected ${want})`);
  const shown = got.map((a) => `"${String(a)}"`).join(", ");
  throw new TokenError("audience", `audience ${shown} is not ${want}`);
}

/** Groups from an array claim or a space/comma separated string. */
export function parseGroups(value: unknown, claim: string): string[] {
  if (value === undefined || value === null) return [];
  if (typeof value === "string") return value.split(/[\s,]+/).filter((g) => g.length > 0);
  if (Array.isArray(value) && value.every((g) => typeof g === "string")) return value.filter((g) => g.length > 0);
  throw new TokenError("claims", `"${claim}" claim must be an array of strings or a space/comma separated string`);
}

function optionalString(payload: JWTPayload, claim: string): string | undefined {
  const v = payload[claim];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new TokenError("claims", `"${claim}" claim is not a string`);
  return v;
}

export function toIdentity(payload: JWTPayload, issuer: IssuerConfig, clientName: string, exp: number): Identity {
  const sub = payload.sub;
  if (typeof sub !== "string" || sub === "") throw new TokenError("claims", 'token has no "sub" claim (the subject is required)');
  const groupsClaim = issuer.groupsClaim ?? "groups";
  const kindClaim = issuer.kindClaim ?? "kind";
  return {
    subject: sub,
    name: clientName,
    groups: parseGroups(payload[groupsClaim], groupsClaim),
    kind: optionalString(payload, kindClaim) || "agent",
    issuer: issuer.issuer,
    tokenId: optionalString(payload, "jti") ?? "",
    clientId: optionalString(payload, "azp") ?? optionalString(payload, "client_id") ?? "",
    expiresAtUnix: exp,
  };
}
