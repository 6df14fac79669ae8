// oidc-provider configuration for the local stack: JWT access tokens for the
// gatehouse audience, the dev token grant for `gatehouse token`, and
// authorization code + PKCE for the web console with a dev login page.
import Provider, { errors, type Configuration, type JWKS, type KoaContextWithOIDC, type ResourceServer } from "oidc-provider";
import type { GatehouseConfig } from "@gatehouse/runtime";
import { CLI_CLIENT_ID, CONSOLE_CLIENT_ID, DEV_TOKEN_GRANT } from "@gatehouse/identity";
import type { DevAccounts } from "./accounts.js";
import { memoryAdapterFactory } from "./memory-adapter.js";
import { DEV_GRANT_PARAMS, devGrantHandler, devGrantOf } from "./dev-grant.js";
import type { IdpState } from "./state.js";

export interface ResourceInfo {
  /** Resource indicator (RFC 8707) under which the gatehouse audience is issued. */
  indicator: string;
  server: ResourceServer;
}

export function resourceInfo(config: GatehouseConfig): ResourceInfo {
  return {
    indicator: "urn:gatehouse:resource",
    server: {
      scope: "gatehouse",
      audience: config.idp.audience,
      accessTokenFormat: "jwt",
      accessTokenTTL: 15 * 60,
      jwt: { sign: { alg: "RS256" } },
    },
  };
}

export function consoleRedirectUris(config: GatehouseConfig): string[] {
  const port = config.api.port;
  return [`http://127.0.0.1:${port}/auth/callback`, `http://localhost:${port}/auth/callback`];
}

export function createProvider(config: GatehouseConfig, state: IdpState, accounts: DevAccounts): Provider {
  const resource = resourceInfo(config);
  const configuration: Configuration = {
    adapter: memoryAdapterFactory(),
    clients: [
      {
        client_id: CLI_CLIENT_ID,
        client_secret: state.secrets.cliClientSecret,
        grant_types: ["client_credentials", DEV_TOKEN_GRANT],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_basic",
      },
      {
        client_id: CONSOLE_CLIENT_ID,
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code"],
        response_types: ["code"],
        redirect_uris: consoleRedirectUris(config),
      },
    ],
    jwks: { keys: state.keys } as JWKS,
    cookies: { keys: state.secrets.cookieKeys },
    pkce: { required: () => true },
    claims: { openid: ["sub"], profile: ["name"], groups: ["groups", "kind"] },
    scopes: ["openid", "profile", "groups"],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource.indicator,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== resource.indicator) throw new errors.InvalidTarget(`unknown resource indicator ${indicator.slice(0, 200)}`);
          return resource.server;
        },
      },
    },
    async findAccount(_ctx, sub) {
      const groups = accounts.groupsOf(sub);
      if (!groups) return undefined;
      return { accountId: sub, claims: async () => ({ sub, name: sub, groups, kind: "human" }) };
    },
    // The console is first-party: its grant covers the gatehouse resource without a consent screen.
    async loadExistingGrant(ctx) {
      const { oidc } = ctx;
      const grantId = oidc.result?.consent?.grantId ?? oidc.session?.grantIdFor(oidc.client!.clientId);
      if (grantId) return oidc.provider.Grant.find(grantId);
      if (oidc.client?.clientId !== CONSOLE_CLIENT_ID || !oidc.session?.accountId) return undefined;
      const grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
      grant.addOIDCScope("openid profile groups");
      grant.addResourceScope(resource.indicator, resource.server.scope);
      await grant.save();
      return grant;
    },
    async extraTokenClaims(ctx: KoaContextWithOIDC, token) {
      const dev = devGrantOf(ctx);
      if (dev) return { groups: dev.groups, kind: dev.kind };
      const accountId = (token as { accountId?: string }).accountId;
      if (accountId) return { groups: accounts.groupsOf(accountId) ?? [], kind: "human" };
      return { groups: [], kind: "service" };
    },
    formats: {
      customizers: {
        jwt(ctx, _token, jwt) {
          // Dev grant tokens name the requested subject instead of the client.
          const dev = devGrantOf(ctx);
          if (dev) jwt.payload.sub = dev.subject;
          return jwt;
        },
      },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: {
      AccessToken: 15 * 60,
      AuthorizationCode: 60,
      ClientCredentials: 15 * 60,
      IdToken: 3600,
      Interaction: 600,
      Session: 8 * 3600,
      Grant: 8 * 3600,
    },
    renderError(ctx, out) {
      ctx.type = "text/plain";
      ctx.body = `${out.error}: ${out.error_description ?? ""}\n`;
    },
  };
  const provider = new Provider(config.idp.issuer, configuration);
  provider.registerGrantType(DEV_TOKEN_GRANT, devGrantHandler(resource), DEV_GRANT_PARAMS);
  return provider;
}
