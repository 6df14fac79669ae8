// The dev IdP's persistent state under <dataDir>/idp (directory 0700, files 0600):
// signing keys (jwks.json, RS256 + ES256 private JWKs) and secrets.json (the
// gatehouse-cli client secret, cookie keys). Generated on first start, reused
// after, so tokens stay valid across restarts. Never committed.
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { randomBytes, randomUUID } from "node:crypto";
import { join } from "node:path";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { devIdpDir, type DevIdpSecrets } from "@gatehouse/identity";

async function readJson<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message}); delete it to generate a new one`);
  }
}

async function writeSecret(path: string, value: unknown): Promise<void> {
  // `wx`: never overwrite a file another copy created meanwhile.
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600, flag: "wx" });
}

async function newSigningKey(alg: "RS256" | "ES256"): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`, alg, use: "sig" };
}

export interface IdpState {
  dir: string;
  keys: JWK[];
  secrets: DevIdpSecrets;
}

export async function loadOrCreateState(dataDir: string): Promise<IdpState> {
  const dir = devIdpDir(dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const jwksPath = join(dir, "jwks.json");
  const secretsPath = join(dir, "secrets.json");

  let jwks = await readJson<{ keys: JWK[] }>(jwksPath);
  if (!jwks) {
    jwks = { keys: [await newSigningKey("RS256"), await newSigningKey("ES256")] };
    await writeSecret(jwksPath, jwks);
  }
  if (!Array.isArray(jwks.keys) || !jwks.keys.some((k) => k.alg === "RS256" && k.d)) {
    throw new Error(`${jwksPath} has no RS256 private key; delete it to generate new keys`);
  }
  let secrets = await readJson<DevIdpSecrets>(secretsPath);
  if (!secrets) {
    secrets = { cliClientSecret: randomBytes(32).toString("base64url"), cookieKeys: [randomBytes(32).toString("base64url")] };
    await writeSecret(secretsPath, secrets);
  }
  // Tighten permissions of files created by hand or by an older version.
  await chmod(jwksPath, 0o600);
  await chmod(secretsPath, 0o600);
  return { dir, keys: jwks.keys, secrets };
}
