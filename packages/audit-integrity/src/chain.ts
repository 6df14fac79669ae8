// The hash chain. Each chained event has a position (1, 2, 3, ... in JetStream
// order: stream sequence, then index within the batch message) and its leaf:
//
//   leaf data  = "GHA1" || pos (u64 BE) || stream_seq (u64 BE) || index (u32 BE) || event bytes
//   leaf hash  = SHA-256(0x00 || leaf data)                (RFC 6962 leaf)
//   chain hash = SHA-256(previous chain hash || leaf hash)  (genesis: 32 zero bytes)
//
// "Event bytes" are the event's protobuf bytes exactly as the listener published
// them inside the AuditBatch (or the whole message when it is not decodable):
// nothing is re-serialized, so the encoding needs no canonical JSON form; the
// stored columns are checked by re-deriving them from these bytes.
import * as cryptoModule from "node:crypto";
import { createHash } from "node:crypto";

export const GENESIS = Buffer.alloc(32);
const MAGIC = Buffer.from("GHA1");

export interface ChainPosition {
  pos: number;
  streamSeq: number;
  index: number;
}

export function leafData(p: ChainPosition, eventBytes: Uint8Array): Buffer {
  const head = Buffer.allocUnsafe(24);
  MAGIC.copy(head, 0);
  head.writeBigUInt64BE(BigInt(p.pos), 4);
  head.writeBigUInt64BE(BigInt(p.streamSeq), 12);
  head.writeUInt32BE(p.index, 20);
  return Buffer.concat([head, eventBytes]);
}

// One-shot hashing over a reused scratch buffer: the writer hashes two values per
// event, and a Hash object plus a concatenation per value cost more than the hashing.
type OneShot = (algorithm: string, data: Uint8Array, encoding: "buffer") => Buffer;
const oneShot: OneShot | undefined = (cryptoModule as unknown as { hash?: OneShot }).hash;
let scratch = Buffer.allocUnsafe(4096);

function sha256(data: Uint8Array): Buffer {
  return oneShot ? oneShot("sha256", data, "buffer") : createHash("sha256").update(data).digest();
}

/** leafHash(leafData(p, eventBytes)) without allocating the concatenation. */
export function eventLeafHash(p: ChainPosition, eventBytes: Uint8Array): Buffer {
  const n = 25 + eventBytes.length;
  if (scratch.length < n) scratch = Buffer.allocUnsafe(Math.max(n, scratch.length * 2));
  scratch[0] = 0;
  MAGIC.copy(scratch, 1);
  scratch.writeBigUInt64BE(BigInt(p.pos), 5);
  scratch.writeBigUInt64BE(BigInt(p.streamSeq), 13);
  scratch.writeUInt32BE(p.index, 21);
  scratch.set(eventBytes, 25);
  return sha256(scratch.subarray(0, n));
}

const pair = Buffer.allocUnsafe(64);

export function chainNext(prev: Uint8Array, leaf: Uint8Array): Buffer {
  if (prev.length !== 32 || leaf.length !== 32) return createHash("sha256").update(prev).update(leaf).digest();
  pair.set(prev, 0);
  pair.set(leaf, 32);
  return sha256(pair);
}
