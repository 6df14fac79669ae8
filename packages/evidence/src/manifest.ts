// manifest.json: every file of the pack with its SHA-256 and size, the period,
// the generation time and tool version, and an Ed25519 signature over the
// canonical form of all of that (keys sorted at every level, no whitespace;
// the manifest holds only strings, integers, booleans, arrays and objects, so
// this equals RFC 8785 canonical JSON for it).
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { keyIdOf, parsePrivateKey, parsePublicKey, verifySignature } from "@gatehouse/audit-integrity";

export const MANIFEST = "manifest.json";
export const MANIFEST_FORMAT = "gatehouse-evidence-manifest";
export const SIGNING_KEY_ENV = "GATEHOUSE_EVIDENCE_SIGNING_KEY";

export interface ManifestFile {
  path: string;
  sha256: string;
  bytes: number;
}

/** The signed part. */
export interface ManifestBody {
  format: typeof MANIFEST_FORMAT;
  version: 1;
  period: { from: string; to: string; to_exclusive: true };
  generated_at: string;
  deployment: string;
  tool: { name: string; version: string };
  files: ManifestFile[];
  signing: { algorithm: "Ed25519"; key_id: string; public_key: string; key_source: "file" | "env" | "generated" };
}

export interface Manifest extends ManifestBody {
  /** Base64 Ed25519 signature over canonicalJson(body). */
  signature: string;
}

export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== "object") {
    if (typeof v === "number" && !Number.isSafeInteger(v)) throw new Error(`canonical JSON: ${v} is not a safe integer`);
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(",")}}`;
}

export function sha256File(path: string): { sha256: string; bytes: number } {
  const data = readFileSync(path);
  return { sha256: createHash("sha256").update(data).digest("hex"), bytes: data.length };
}

/** Every file under dir (relative, "/"-separated, sorted), the manifest itself excluded. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p).split(sep).join("/"));
    }
  };
  walk(dir);
  return out.filter((p) => p !== MANIFEST).sort();
}

export interface PackSigner {
  keyId: string;
  /** Base64 SPKI DER. */
  publicKey: string;
  publicKeyPem: string;
  source: "file" | "env" | "generated";
  sign(data: Uint8Array): Buffer;
}

function signerFor(key: KeyObject, source: PackSigner["source"]): PackSigner {
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`the evidence signing key must be an Ed25519 key, got ${key.asymmetricKeyType ?? "another kind of key"}`);
  const pub = createPublicKey(key);
  const der = pub.export({ type: "spki", format: "der" });
  return {
    keyId: keyIdOf(der),
    publicKey: der.toString("base64"),
    publicKeyPem: String(pub.export({ type: "spki", format: "pem" })),
    source,
    sign: (data) => sign(null, data, key),
  };
}

/**
 * The pack's signing key: --signing-key FILE (PEM PKCS#8 Ed25519), else
 * $GATEHOUSE_EVIDENCE_SIGNING_KEY (PEM or base64 PKCS#8), else a key generated for
 * this pack only (the caller must say that it proves integrity only against the
 * printed public key).
 */
export function loadPackSigner(file: string | undefined, env: NodeJS.ProcessEnv = process.env): PackSigner {
  if (file) {
    if (!existsSync(file)) throw new Error(`--signing-key ${file} does not exist (generate one with: openssl genpkey -algorithm ed25519 -out ${file})`);
    let key: KeyObject;
    try {
      key = createPrivateKey(readFileSync(file, "utf8"));
    } catch (e) {
      throw new Error(`--signing-key ${file} is not a PEM PKCS#8 private key: ${(e as Error).message}`);
    }
    return signerFor(key, "file");
  }
  const fromEnv = env[SIGNING_KEY_ENV];
  if (fromEnv) return signerFor(parsePrivateKey(fromEnv, `$${SIGNING_KEY_ENV}`), "env");
  return signerFor(generateKeyPairSync("ed25519").privateKey, "generated");
}

export function buildManifest(dir: string, body: Omit<ManifestBody, "files" | "signing" | "format" | "version">, signer: PackSigner): Manifest {
  const files = listFiles(dir).map((path) => ({ path, ...sha256File(join(dir, path)) }));
  const signed: ManifestBody = {
    format: MANIFEST_FORMAT,
    version: 1,
    ...body,
    files,
    signing: { algorithm: "Ed25519", key_id: signer.keyId, public_key: signer.publicKey, key_source: signer.source },
  };
  return { ...signed, signature: signer.sign(Buffer.from(canonicalJson(signed), "utf8")).toString("base64") };
}

export interface PackProblem {
  kind: "changed file" | "missing file" | "extra file" | "bad signature" | "untrusted key" | "bad manifest";
  path?: string;
  what: string;
}

export interface PackVerifyResult {
  ok: boolean;
  problems: PackProblem[];
  manifest?: Manifest;
  filesChecked: number;
  /** Whether the signature was checked against a key the caller gave (else the manifest's own). */
  keyPinned: boolean;
}

/** Re-hash every file, look for missing and extra ones, and check the signature. */
export function verifyPack(dir: string, publicKey?: string): PackVerifyResult {
  const problems: PackProblem[] = [];
  const path = join(dir, MANIFEST);
  const fail = (what: string): PackVerifyResult => ({ ok: false, problems: [{ kind: "bad manifest", path: MANIFEST, what }], filesChecked: 0, keyPinned: publicKey !== undefined });
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return fail(`${dir} is not a directory`);
  if (!existsSync(path)) return { ...fail(`${MANIFEST} is missing: this is not an evidence pack, or its manifest was removed`), problems: [{ kind: "missing file", path: MANIFEST, what: `missing file ${MANIFEST}` }] };
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(path, "utf8")) as Manifest;
  } catch (e) {
    return fail(`${MANIFEST} is not JSON: ${(e as Error).message}`);
  }
  if (m?.format !== MANIFEST_FORMAT || m.version !== 1 || !Array.isArray(m.files) || typeof m.signature !== "string" || !m.signing) {
    return fail(`${MANIFEST} is not a version 1 ${MANIFEST_FORMAT}`);
  }
  // Signature over everything but the signature itself.
  const { signature, ...body } = m;
  let key: KeyObject | undefined;
  try {
    key = parsePublicKey(publicKey ?? m.signing.public_key);
  } catch (e) {
    problems.push({ kind: publicKey ? "bad signature" : "bad manifest", what: (e as Error).message });
  }
  if (key) {
    const der = key.export({ type: "spki", format: "der" });
    if (publicKey && keyIdOf(der) !== m.signing.key_id) {
      problems.push({ kind: "untrusted key", what: `the manifest was signed with key ${m.signing.key_id}, not with the given public key ${keyIdOf(der)}` });
    } else if (!verifySignature(key, Buffer.from(canonicalJson(body), "utf8"), Buffer.from(signature, "base64"))) {
      problems.push({ kind: "bad signature", path: MANIFEST, what: `bad signature: the signature in ${MANIFEST} does not match its content for key ${m.signing.key_id} (the manifest or its signature was altered)` });
    }
  }
  const listed = new Set<string>();
  let filesChecked = 0;
  for (const f of m.files) {
    listed.add(f.path);
    const p = join(dir, f.path);
    if (f.path.includes("..") || f.path.startsWith("/")) {
      problems.push({ kind: "bad manifest", path: f.path, what: `the manifest lists a path outside the pack: ${f.path}` });
      continue;
    }
    if (!existsSync(p)) {
      problems.push({ kind: "missing file", path: f.path, what: `missing file ${f.path}` });
      continue;
    }
    const got = sha256File(p);
    filesChecked++;
    if (got.sha256 !== f.sha256 || got.bytes !== f.bytes) {
      problems.push({ kind: "changed file", path: f.path, what: `changed file ${f.path}: SHA-256 ${got.sha256} (${got.bytes} bytes), the manifest says ${f.sha256} (${f.bytes} bytes)` });
    }
  }
  for (const p of listFiles(dir)) if (!listed.has(p)) problems.push({ kind: "extra file", path: p, what: `extra file ${p}: not in the manifest` });
  return { ok: problems.length === 0, problems, manifest: m, filesChecked, keyPinned: publicKey !== undefined };
}
