// RFC 6962 (Certificate Transparency) Merkle tree hashing over leaf hashes:
//   leaf hash  = SHA-256(0x00 || leaf data)
//   inner node = SHA-256(0x01 || left || right)
// A tree of n > 1 leaves splits at k, the largest power of two below n. The
// inclusion-proof check is the one of RFC 9162 section 2.1.3.2.
import * as cryptoModule from "node:crypto";
import { createHash } from "node:crypto";

const LEAF_PREFIX = Buffer.from([0]);
const NODE_PREFIX = Buffer.from([1]);

export function leafHash(data: Uint8Array): Buffer {
  return createHash("sha256").update(LEAF_PREFIX).update(data).digest();
}

type OneShot = (algorithm: string, data: Uint8Array, encoding: "buffer") => Buffer;
const oneShot: OneShot | undefined = (cryptoModule as unknown as { hash?: OneShot }).hash;
const nodeScratch = Buffer.alloc(65, 1);

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (oneShot && left.length === 32 && right.length === 32) {
    // One-shot over a reused buffer: a checkpoint hashes one inner node per event.
    nodeScratch.set(left, 1);
    nodeScratch.set(right, 33);
    return oneShot("sha256", nodeScratch, "buffer");
  }
  return createHash("sha256").update(NODE_PREFIX).update(left).update(right).digest();
}

function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Root of the tree over these leaf hashes (SHA-256 of nothing for an empty tree). */
export function merkleRoot(leaves: readonly Uint8Array[]): Buffer {
  if (leaves.length === 0) return createHash("sha256").digest();
  // Bottom-up with RFC 6962 shape: pairing left to right and carrying an odd
  // last node up unchanged gives the same root as the recursive definition.
  let level: Uint8Array[] = leaves.slice();
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return Buffer.from(level[0]!);
}

/** Audit path for leaf `index` (RFC 6962 PATH(m, D[n])), deepest sibling first. */
export function inclusionPath(index: number, leaves: readonly Uint8Array[]): Buffer[] {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) throw new Error(`leaf index ${index} is outside a tree of ${leaves.length} leaves`);
  const path: Buffer[] = [];
  const walk = (m: number, lo: number, hi: number): void => {
    const n = hi - lo;
    if (n <= 1) return;
    const k = splitPoint(n);
    if (m < k) {
      walk(m, lo, lo + k);
      path.push(merkleRoot(leaves.slice(lo + k, hi)));
    } else {
      walk(m - k, lo + k, hi);
      path.push(merkleRoot(leaves.slice(lo, lo + k)));
    }
  };
  walk(index, 0, leaves.length);
  return path;
}

/** True when `leaf` is leaf `index` of the tree of `size` leaves with this root. */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, path: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && Buffer.compare(Buffer.from(r), Buffer.from(root)) === 0;
}
