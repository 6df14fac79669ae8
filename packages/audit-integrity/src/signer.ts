// Checkpoint signing keys (Ed25519, node:crypto). A Signer is the one thing the
// audit service needs: a key id, the public key, and sign(). A KMS-backed signer
// implements the same interface (sign() is async for that reason).
//
// Key id: the first 16 hex digits of SHA-256 over the public key's SPKI DER, so
// it names the key and cannot be attached to another one. Public keys travel as
// base64 SPKI DER ("MCowBQYDK2VwAyEA..."), or as PEM in files.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export interface Signer {
  readonly algorithm: "Ed25519";
  readonly keyId: string;
  /** Base64 SPKI DER of the public key. */
  readonly publicKey: string;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

export function keyIdOf(publicKeyDer: Uint8Array): string {
  return createHash("sha256").update(publicKeyDer).digest("hex").slice(0, 16);
}

function spki(key: KeyObject): Buffer {
  return key.export({ type: "spki", format: "der" });
}

/** A signer over an Ed25519 private key held in this process. */
export function keySigner(privateKey: KeyObject): Signer {
  if (privateKey.asymmetricKeyType !== "ed25519") {
    throw new Error(`the audit signing key must be an Ed25519 key, got ${privateKey.asymmetricKeyType ?? "a non-asymmetric key"}`);
  }
  const pub = spki(createPublicKey(privateKey));
  return {
    algorithm: "Ed25519",
    keyId: keyIdOf(pub),
    publicKey: pub.toString("base64"),
    async sign(data) {
      return sign(null, data, privateKey);
    },
  };
}

/** Parse a private key given as PEM text or base64 PKCS#8 DER. */
export function parsePrivateKey(text: string, where: string): KeyObject {
  const t = text.trim();
  try {
    if (t.startsWith("-----BEGIN")) return createPrivateKey(t);
    return createPrivateKey({ key: Buffer.from(t, "base64"), format: "der", type: "pkcs8" });
  } catch (e) {
    throw new Error(`${where} is not an Ed25519 private key in PEM or base64 PKCS#8 form: ${(e as Error).message}`);
  }
}

/** Parse a public key given as PEM, base64 SPKI DER, or a file holding either. */
export function parsePublicKey(textOrFile: string): KeyObject {
  let t = textOrFile.trim();
  if (!t.startsWith("-----BEGIN") && !/^[A-Za-z0-9+/=]{40,}$/.test(t) && existsSync(t)) t = readFileSync(t, "utf8").trim();
  try {
    const key = t.startsWith("-----BEGIN") ? createPublicKey(t) : createPublicKey({ key: Buffer.from(t, "base64"), format: "der", type: "spki" });
    if (key.asymmetricKeyType !== "ed25519") throw new Error(`not Ed25519 but ${key.asymmetricKeyType}`);
    return key;
  } catch (e) {
    throw new Error(`public key "${textOrFile.slice(0, 60)}" is not an Ed25519 public key (PEM, base64 SPKI DER, or a file with one): ${(e as Error).message}`);
  }
}

export function publicKeyBase64(key: KeyObject): string {
  return spki(key).toString("base64");
}

export function verifySignature(publicKey: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(null, data, publicKey, signature);
  } catch {
    return false;
  }
}

/** Write a new Ed25519 private key (PEM, mode 0600). Refuses to overwrite. */
export function generateSigningKeyFile(path: string): Signer {
  if (existsSync(path)) throw new Error(`${path} exists already; not overwriting a signing key`);
  const { privateKey } = generateKeyPairSync("ed25519");
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600, flag: "wx" });
  chmodSync(path, 0o600);
  return keySigner(privateKey);
}

export const SIGNING_KEY_ENV = "GATEHOUSE_AUDIT_SIGNING_KEY";

/**
 * The signer configured for this process: $GATEHOUSE_AUDIT_SIGNING_KEY (the key
 * itself, PEM or base64 PKCS#8) wins; else the key file. With `generate`, a
 * missing file is created (development: `gatehouse up` and the default path).
 */
export function loadSigner(opts: { file: string; env?: NodeJS.ProcessEnv; generate?: boolean }): Signer {
  const fromEnv = (opts.env ?? process.env)[SIGNING_KEY_ENV];
  if (fromEnv) return keySigner(parsePrivateKey(fromEnv, `$${SIGNING_KEY_ENV}`));
  if (!existsSync(opts.file)) {
    if (opts.generate) return generateSigningKeyFile(opts.file);
    throw new Error(`audit signing key ${opts.file} does not exist: set audit.signingKey to an Ed25519 PEM key file or $${SIGNING_KEY_ENV} (generate one with: openssl genpkey -algorithm ed25519 -out FILE)`);
  }
  let text: string;
  try {
    text = readFileSync(opts.file, "utf8");
  } catch (e) {
    throw new Error(`cannot read the audit signing key ${opts.file}: ${(e as Error).message}`);
  }
  return keySigner(parsePrivateKey(text, `audit signing key ${opts.file}`));
}
