// Client side of the embedded dev IdP's token grant (development only). The IdP
// (@gatehouse/dev-idp) and `gatehouse token` share these names from here.
//
// The grant is an extension grant at the IdP's token endpoint, usable only by the
// confidential client "gatehouse-cli" whose secret lives in the local data dir
// (<dataDir>/idp/secrets.json, mode 0600): whoever can read the data dir of the
// local stack can mint tokens for it, nobody else.
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export const DEV_TOKEN_GRANT = "urn:gatehouse:params:oauth:grant-type:dev-token";
export const CLI_CLIENT_ID = "gatehouse-cli";
export const CONSOLE_CLIENT_ID = "gatehouse-console";
export const IDENTITY_KINDS = ["agent", "ci", "human", "service"] as const;

export function devIdpDir(dataDir: string): string {
  return join(dataDir, "idp");
}

export interface DevIdpSecrets {
  cliClientSecret: string;
  cookieKeys: string[];
}

export async function readDevIdpSecrets(dataDir: string): Promise<DevIdpSecrets> {
  const path = join(devIdpDir(dataDir), "secrets.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error(`${path} does not exist: the dev identity provider has not run with this data directory (start the stack with \`npm start\`, or pass --config)`);
    }
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  return JSON.parse(text) as DevIdpSecrets;
}

export interface DevTokenRequest {
  issuer: string;
  clientSecret: string;
  subject: string;
  groups: string[];
  kind?: string;
  ttlSeconds?: number;
}

/** The IdP's token endpoint from its discovery document; the error says how to start the IdP. */
export async function discoverTokenEndpoint(issuer: string): Promise<string> {
  const base = issuer.replace(/\/$/, "");
  try {
    const res = await fetch(`${base}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`HTTP ${res.status} from ${base}/.well-known/openid-configuration`);
    const endpoint = ((await res.json()) as { token_endpoint?: unknown }).token_endpoint;
    if (typeof endpoint !== "string") throw new Error("its discovery document has no token_endpoint");
    return endpoint;
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (e as Error).message;
    throw new Error(`no identity provider at ${base} (${why}): start the stack with \`npm start\``);
  }
}

/** Mint a token at the dev IdP's token endpoint; errors name the IdP and the fix. */
export async function requestDevToken(req: DevTokenRequest): Promise<{ accessToken: string; expiresIn: number }> {
  const issuer = req.issuer.replace(/\/$/, "");
  const tokenEndpoint = await discoverTokenEndpoint(issuer);
  const body = new URLSearchParams({ grant_type: DEV_TOKEN_GRANT, subject: req.subject, groups: req.groups.join(",") });
  if (req.kind) body.set("kind", req.kind);
  if (req.ttlSeconds !== undefined) body.set("ttl", String(req.ttlSeconds));
  const res = await fetch(tokenEndpoint, {
    method: "POST",
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(CLI_CLIENT_ID)}:${encodeURIComponent(req.clientSecret)}`).toString("base64")}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body,
    signal: AbortSignal.timeout(5000),
  });
  const json = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
  if (!res.ok || !json.access_token) {
    const hint = json.error === "invalid_client" ? " (the client secret does not match this IdP: is --config pointing at the data directory of the running stack?)" : "";
    throw new Error(`identity provider ${issuer} refused the token request: ${json.error ?? `HTTP ${res.status}`}${json.error_description ? `: ${json.error_description}` : ""}${hint}`);
  }
  return { accessToken: json.access_token, expiresIn: json.expires_in ?? 0 };
}
