// The dev token grant (development only): gatehouse-cli, authenticated with its
// secret from the data dir, asks for a JWT access token for any subject, groups
// and kind. Issued as a ClientCredentials token for the gatehouse resource; the
// subject/groups/kind are applied by the JWT customizer and extraTokenClaims,
// which read the validated request from ctx.state.
import type { KoaContextWithOIDC } from "oidc-provider";
import { errors } from "oidc-provider";
import { CLI_CLIENT_ID, DEV_TOKEN_GRANT, IDENTITY_KINDS } from "@gatehouse/identity";
import { validGroup, validSubject } from "./accounts.js";
import type { ResourceInfo } from "./provider.js";

export const DEV_GRANT_PARAMS = ["subject", "groups", "kind", "ttl"];
export const MIN_TTL = 60;
export const MAX_TTL = 24 * 3600;
export const DEFAULT_TTL = 15 * 60;

export interface DevGrantState {
  subject: string;
  groups: string[];
  kind: string;
}

export function devGrantOf(ctx: KoaContextWithOIDC): DevGrantState | undefined {
  return (ctx.state as { gatehouseDevGrant?: DevGrantState } | undefined)?.gatehouseDevGrant;
}

export function devGrantHandler(resource: ResourceInfo) {
  return async (ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> => {
    const { client, params } = ctx.oidc;
    if (!client || client.clientId !== CLI_CLIENT_ID) throw new errors.UnauthorizedClient(`only ${CLI_CLIENT_ID} may use this grant`);
    const p = params as Record<string, string | undefined>;
    const subject = p.subject ?? "";
    if (!validSubject(subject)) throw new errors.InvalidRequest("subject must be 1-64 characters: letters, digits, . _ @ - (starting with a letter or digit)");
    const groups = (p.groups ?? "").split(",").map((g) => g.trim()).filter((g) => g !== "");
    const bad = groups.find((g) => !validGroup(g));
    if (bad !== undefined) throw new errors.InvalidRequest(`group "${bad.slice(0, 64)}" is not valid (letters, digits, . _ : -)`);
    const kind = p.kind ?? "agent";
    if (!(IDENTITY_KINDS as readonly string[]).includes(kind)) throw new errors.InvalidRequest(`kind must be one of ${IDENTITY_KINDS.join(", ")}`);
    const ttl = p.ttl === undefined ? DEFAULT_TTL : Number(p.ttl);
    if (!Number.isInteger(ttl) || ttl < MIN_TTL || ttl > MAX_TTL) throw new errors.InvalidRequest(`ttl must be whole seconds between ${MIN_TTL} and ${MAX_TTL}`);

    (ctx.state as { gatehouseDevGrant?: DevGrantState }).gatehouseDevGrant = { subject, groups: [...new Set(groups)], kind };
    const { ClientCredentials } = ctx.oidc.provider;
    // ResourceServer is a provider class missing from the type definitions.
    const ResourceServer = (ctx.oidc.provider as unknown as { ResourceServer: new (indicator: string, info: unknown) => never }).ResourceServer;
    const token = new ClientCredentials({
      client,
      scope: resource.server.scope,
      resourceServer: new ResourceServer(resource.indicator, resource.server),
      expiresIn: ttl,
    });
    ctx.oidc.entity("ClientCredentials", token);
    const value = await token.save();
    ctx.body = { access_token: value, expires_in: token.expiration, token_type: token.tokenType, scope: token.scope };
    await next();
  };
}

export { DEV_TOKEN_GRANT };
