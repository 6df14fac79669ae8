export { TokenError, redactToken, type TokenCheck } from "./errors.js";
export { createTokenVerifier, DEFAULT_ALGORITHMS, type TokenVerifier, type TokenVerifierOptions } from "./verifier.js";
export type { JwksOptions } from "./jwks.js";
export { parseGroups } from "./claims.js";
export {
  DEV_TOKEN_GRANT,
  CLI_CLIENT_ID,
  CONSOLE_CLIENT_ID,
  IDENTITY_KINDS,
  devIdpDir,
  readDevIdpSecrets,
  requestDevToken,
  discoverTokenEndpoint,
  type DevIdpSecrets,
  type DevTokenRequest,
} from "./dev-token.js";
