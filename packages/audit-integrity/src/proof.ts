// Inclusion proofs: one event, the signed checkpoint that covers it, and the
// RFC 6962 audit path from its leaf to the checkpoint's Merkle root. Checking one
// needs nothing but the file and the signer's public key.
import { AuditEvent } from "@gatehouse/proto";
import { eventLeafHash } from "./chain.js";
import { checkpointSignatureProblem, parseCheckpoint, type Checkpoint } from "./checkpoint.js";
import { inclusionPath, verifyInclusion } from "./merkle.js";
import { keyIdOf, parsePublicKey } from "./signer.js";
import { UNDECODABLE_INDEX } from "./events.js";
import type { QueryFn } from "./verify.js";

export interface InclusionProof {
  version: 1;
  eventId: string;
  chainPos: number;
  streamSeq: number;
  chainIndex: number;
  /** The event's protobuf bytes as published (base64). */
  eventBytes: string;
  /** Position of the leaf in the checkpoint's tree (chainPos - checkpoint.fromPos). */
  leafIndex: number;
  treeSize: number;
  /** Sibling hashes from the leaf up (hex). */
  auditPath: string[];
  checkpoint: Checkpoint;
}

function sqlString(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** Build the proof for an event id from the store and the (JetStream) checkpoints. */
export async function makeProof(query: QueryFn, eventId: string, checkpoints: Checkpoint[], database = "gatehouse"): Promise<InclusionProof> {
  const rows = await query(`SELECT chain_pos, stream_seq, chain_index, event_bytes, event_id FROM ${database}.events FINAL WHERE event_id = ${sqlString(eventId)} LIMIT 1`);
  const row = rows[0];
  if (!row) throw new Error(`no event with id ${eventId} in the audit store`);
  const pos = Number(row.chain_pos);
  if (pos === 0) throw new Error(`event ${eventId} is not part of the hash chain (written before chaining was enabled?)`);
  const cp = checkpoints.find((c) => c.fromPos <= pos && pos <= c.toPos);
  if (!cp) throw new Error(`event ${eventId} (chain position ${pos}) is not covered by a checkpoint yet; the audit service seals one every audit.checkpointEvents events or audit.checkpointIntervalMs; try again shortly`);
  const leafRows = await query(`SELECT chain_pos, stream_seq, chain_index, event_bytes FROM ${database}.events FINAL WHERE event_bytes != '' AND chain_pos BETWEEN ${cp.fromPos} AND ${cp.toPos} ORDER BY chain_pos`);
  if (leafRows.length !== cp.toPos - cp.fromPos + 1) throw new Error(`the store holds ${leafRows.length} events for checkpoint ${cp.fromPos}-${cp.toPos}, expected ${cp.toPos - cp.fromPos + 1}: run gatehouse audit verify`);
  const leaves = leafRows.map((r) => eventLeafHash({ pos: Number(r.chain_pos), streamSeq: Number(r.stream_seq), index: Number(r.chain_index) }, Buffer.from(String(r.event_bytes), "base64")));
  const leafIndex = pos - cp.fromPos;
  const proof: InclusionProof = {
    version: 1,
    eventId: String(row.event_id),
    chainPos: pos,
    streamSeq: Number(row.stream_seq),
    chainIndex: Number(row.chain_index),
    eventBytes: String(row.event_bytes),
    leafIndex,
    treeSize: leaves.length,
    auditPath: inclusionPath(leafIndex, leaves).map((h) => h.toString("hex")),
    checkpoint: cp,
  };
  const check = checkProof(proof, cp.publicKey);
  if (!check.ok) throw new Error(`the store's events do not match checkpoint ${cp.fromPos}-${cp.toPos}: ${check.problems.join("; ")} (run gatehouse audit verify)`);
  return proof;
}

export interface ProofCheck {
  ok: boolean;
  problems: string[];
  /** The event as decoded from the proven bytes. */
  event?: AuditEvent;
}

/** Verify a proof with only the given public key (PEM, base64 SPKI or a file). */
export function checkProof(proof: InclusionProof, publicKey: string): ProofCheck {
  const problems: string[] = [];
  let cp: Checkpoint;
  try {
    cp = parseCheckpoint(JSON.stringify(proof.checkpoint));
  } catch (e) {
    return { ok: false, problems: [`the proof's checkpoint is malformed: ${(e as Error).message}`] };
  }
  let keyB64: string;
  try {
    keyB64 = parsePublicKey(publicKey).export({ type: "spki", format: "der" }).toString("base64");
  } catch (e) {
    return { ok: false, problems: [(e as Error).message] };
  }
  const keyId = keyIdOf(Buffer.from(keyB64, "base64"));
  const sig = checkpointSignatureProblem(cp, new Map([[keyId, keyB64]]));
  if (sig) problems.push(`checkpoint ${cp.fromPos}-${cp.toPos}: ${sig}`);
  if (proof.chainPos < cp.fromPos || proof.chainPos > cp.toPos) problems.push(`chain position ${proof.chainPos} is outside checkpoint ${cp.fromPos}-${cp.toPos}`);
  if (proof.leafIndex !== proof.chainPos - cp.fromPos) problems.push(`leaf index ${proof.leafIndex} does not match chain position ${proof.chainPos} in checkpoint ${cp.fromPos}-${cp.toPos}`);
  if (proof.treeSize !== cp.toPos - cp.fromPos + 1) problems.push(`tree size ${proof.treeSize} does not match checkpoint ${cp.fromPos}-${cp.toPos}`);
  const bytes = Buffer.from(proof.eventBytes ?? "", "base64");
  const leaf = eventLeafHash({ pos: proof.chainPos, streamSeq: proof.streamSeq, index: proof.chainIndex }, bytes);
  const path = (proof.auditPath ?? []).map((h) => Buffer.from(h, "hex"));
  if (!verifyInclusion(leaf, proof.leafIndex, proof.treeSize, path, Buffer.from(cp.merkleRoot, "hex"))) {
    problems.push(`the event's leaf and audit path do not lead to the signed Merkle root of checkpoint ${cp.fromPos}-${cp.toPos}`);
  }
  let event: AuditEvent | undefined;
  if (proof.chainIndex !== UNDECODABLE_INDEX) {
    try {
      event = AuditEvent.decode(bytes);
      if (event.id !== proof.eventId) problems.push(`the proven bytes are event ${event.id}, not ${proof.eventId}`);
    } catch (e) {
      problems.push(`the proven bytes do not decode as an audit event: ${(e as Error).message}`);
    }
  }
  return { ok: problems.length === 0, problems, event };
}
