// Why a token was refused. `check` names the failed check so listeners can put it
// on the AuthFailure audit event and in the client's error; the message never
// contains the token itself.
export type TokenCheck =
  | "format"
  | "algorithm"
  | "issuer"
  | "signature"
  | "unknown_key"
  | "audience"
  | "expired"
  | "not_yet_valid"
  | "claims"
  | "jwks_unavailable";

export class TokenError extends Error {
  constructor(
    readonly check: TokenCheck,
    message: string,
  ) {
    super(message);
    this.name = "TokenError";
  }
}

const JWT_LIKE = /\beyJ[\w-]*\.[\w-]*\.[\w-]*/g;

/** Replace anything that looks like a compact JWS in `s` (e.g. an upstream error text). */
export function redactToken(s: string): string {
  return s.replace(JWT_LIKE, "[REDACTED TOKEN]");
}
