// Signed checkpoints: every N events or T seconds the audit service seals the
// chain positions since the previous checkpoint.
import { parsePublicKey, keyIdOf, verifySignature, type Signer } from "./signer.js";

export interface Checkpoint {
  version: 1;
  /** First and last chain position covered (inclusive). */
  fromPos: number;
  toPos: number;
  /** JetStream sequences of the first and last covered event's message. */
  fromStreamSeq: number;
  toStreamSeq: number;
  /** Chain hash before fromPos (hex; 64 zeros for the first checkpoint) and at toPos. */
  prevHead: string;
  head: string;
  /** RFC 6962 root over the leaf hashes of fromPos..toPos (hex). */
  merkleRoot: string;
  /** When it was sealed (ISO 8601). */
  time: string;
  keyId: string;
  /** Signer's public key, base64 SPKI DER (its SHA-256 prefix must equal keyId). */
  publicKey: string;
  /** Ed25519 over checkpointPayload() (base64). */
  signature: string;
}

export type UnsignedCheckpoint = Omit<Checkpoint, "keyId" | "publicKey" | "signature" | "version">;

/** The exact bytes signed: one field a line, fixed order. */
export function checkpointPayload(c: Omit<Checkpoint, "publicKey" | "signature">): Buffer {
  return Buffer.from(
    ["gatehouse-audit-checkpoint-v1", c.fromPos, c.toPos, c.fromStreamSeq, c.toStreamSeq, c.prevHead, c.head, c.merkleRoot, c.time, c.keyId, ""].join("\n"),
    "utf8",
  );
}

export async function signCheckpoint(c: UnsignedCheckpoint, signer: Signer): Promise<Checkpoint> {
  const body = { version: 1 as const, ...c, keyId: signer.keyId };
  const signature = Buffer.from(await signer.sign(checkpointPayload(body))).toString("base64");
  return { ...body, publicKey: signer.publicKey, signature };
}

/**
 * Why this checkpoint's signature does not hold, or undefined when it does.
 * `trusted` (key id -> base64 SPKI) pins the keys; without it the key carried
 * in the checkpoint is used (it still has to match the key id).
 */
export function checkpointSignatureProblem(c: Checkpoint, trusted?: Map<string, string>): string | undefined {
  let keyText = c.publicKey;
  if (trusted) {
    const pinned = trusted.get(c.keyId);
    if (!pinned) return `signed with key ${c.keyId}, which is not among the trusted public keys (${[...trusted.keys()].join(", ") || "none"})`;
    keyText = pinned;
  }
  let key;
  try {
    key = parsePublicKey(keyText);
  } catch (e) {
    return (e as Error).message;
  }
  const der = key.export({ type: "spki", format: "der" });
  if (keyIdOf(der) !== c.keyId) return `key id ${c.keyId} does not belong to the public key given with the checkpoint`;
  if (!verifySignature(key, checkpointPayload(c), Buffer.from(c.signature ?? "", "base64"))) {
    return `the Ed25519 signature by key ${c.keyId} does not match the checkpoint's contents`;
  }
  return undefined;
}

const FIELDS: Array<keyof Checkpoint> = ["version", "fromPos", "toPos", "fromStreamSeq", "toStreamSeq", "prevHead", "head", "merkleRoot", "time", "keyId", "publicKey", "signature"];

/** Names of fields where two copies of a checkpoint differ. */
export function checkpointDiff(a: Checkpoint, b: Checkpoint): string[] {
  return FIELDS.filter((f) => String(a[f]) !== String(b[f]));
}

/** Parse and type-check a checkpoint from JSON text. */
export function parseCheckpoint(text: string): Checkpoint {
  const o = JSON.parse(text) as Record<string, unknown>;
  for (const f of ["fromPos", "toPos", "fromStreamSeq", "toStreamSeq"] as const) {
    o[f] = Number(o[f]);
    if (!Number.isSafeInteger(o[f])) throw new Error(`checkpoint field ${f} is not an integer`);
  }
  for (const f of ["prevHead", "head", "merkleRoot", "time", "keyId", "publicKey", "signature"] as const) {
    if (typeof o[f] !== "string") throw new Error(`checkpoint field ${f} is missing`);
  }
  o.version = 1;
  return o as unknown as Checkpoint;
}
