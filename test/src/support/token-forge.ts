// Token forge for end-to-end tests: a real discovery/JWKS server with keys made at
// test time. The implementation lives in @gatehouse/identity/testing so the
// identity package's own unit tests use the same forge.
export { startTokenForge, type TokenForge, type ForgeClaims } from "@gatehouse/identity/testing";
