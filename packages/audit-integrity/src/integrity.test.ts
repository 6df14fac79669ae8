import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditBatch, AuditEvent } from "@gatehouse/proto";
import {
  batchEventSlices,
  eventLeafHash,
  leafData,
  checkpointSignatureProblem,
  inclusionPath,
  keySigner,
  leafHash,
  loadSigner,
  merkleRoot,
  messageLeaves,
  nodeHash,
  signCheckpoint,
  verifyInclusion,
  UNDECODABLE_INDEX,
  SIGNING_KEY_ENV,
} from "./index.js";

/** RFC 6962 section 2.1 MTH, written recursively as in the RFC. */
function referenceRoot(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return createHash("sha256").digest();
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(referenceRoot(leaves.slice(0, k)), referenceRoot(leaves.slice(k)));
}

const leaves = (n: number) => Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));

test("an event's leaf hash is the RFC 6962 leaf hash of its leaf data", () => {
  const p = { pos: 7, streamSeq: 3, index: 2 };
  const bytes = Buffer.from("event bytes");
  assert.deepEqual(eventLeafHash(p, bytes), leafHash(leafData(p, bytes)));
  assert.notDeepEqual(eventLeafHash({ ...p, pos: 8 }, bytes), eventLeafHash(p, bytes));
});

test("leaf and node hashes use the RFC 6962 prefixes; the empty tree is SHA-256 of nothing", () => {
  assert.equal(leafHash(Buffer.alloc(0)).toString("hex"), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  assert.equal(merkleRoot([]).toString("hex"), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const [a, b] = leaves(2);
  assert.deepEqual(nodeHash(a!, b!), createHash("sha256").update(Buffer.from([1])).update(a!).update(b!).digest());
});

test("merkleRoot equals the recursive definition, and every leaf's audit path verifies, for 1..70 leaves", () => {
  for (let n = 1; n <= 70; n++) {
    const ls = leaves(n);
    const root = merkleRoot(ls);
    assert.deepEqual(root, referenceRoot(ls), `n=${n}`);
    for (let i = 0; i < n; i++) {
      const path = inclusionPath(i, ls);
      assert.ok(verifyInclusion(ls[i]!, i, n, path, root), `n=${n} i=${i}`);
      // Wrong leaf, wrong index, wrong size, truncated path: refused.
      assert.ok(!verifyInclusion(leafHash(Buffer.from("other")), i, n, path, root));
      if (n > 1) assert.ok(!verifyInclusion(ls[i]!, (i + 1) % n, n, path, root), `index n=${n} i=${i}`);
      if (path.length > 0) assert.ok(!verifyInclusion(ls[i]!, i, n, path.slice(1), root));
    }
  }
});

const unsigned = { fromPos: 1, toPos: 10, fromStreamSeq: 3, toStreamSeq: 7, prevHead: "0".repeat(64), head: "ab".repeat(32), merkleRoot: "cd".repeat(32), time: "2026-01-01T00:00:00.000Z" };

test("checkpoint signatures: valid, any changed field refused, rotated keys both verifiable when pinned, unknown key refused", async () => {
  const k1 = keySigner(generateKeyPairSync("ed25519").privateKey);
  const k2 = keySigner(generateKeyPairSync("ed25519").privateKey);
  const c1 = await signCheckpoint(unsigned, k1);
  const c2 = await signCheckpoint({ ...unsigned, fromPos: 11, toPos: 20, prevHead: unsigned.head }, k2);
  assert.equal(checkpointSignatureProblem(c1), undefined);
  assert.notEqual(c1.keyId, c2.keyId);
  for (const f of ["fromPos", "toPos", "fromStreamSeq", "toStreamSeq", "prevHead", "head", "merkleRoot", "time"] as const) {
    const changed = { ...c1, [f]: typeof c1[f] === "number" ? (c1[f] as number) + 1 : `${c1[f]}x` };
    assert.match(checkpointSignatureProblem(changed) ?? "", /signature/, f);
  }
  // A key swapped in with the checkpoint does not match the key id.
  assert.match(checkpointSignatureProblem({ ...c1, publicKey: k2.publicKey }) ?? "", /does not belong/);
  const pinned = new Map([
    [k1.keyId, k1.publicKey],
    [k2.keyId, k2.publicKey],
  ]);
  assert.equal(checkpointSignatureProblem(c1, pinned), undefined);
  assert.equal(checkpointSignatureProblem(c2, pinned), undefined);
  assert.match(checkpointSignatureProblem(c2, new Map([[k1.keyId, k1.publicKey]])) ?? "", /not among the trusted public keys/);
});

test("signing keys: from the environment, from a file, generated only when asked; a non-Ed25519 key is refused", () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-keys-"));
  try {
    const file = join(dir, "k.pem");
    assert.throws(() => loadSigner({ file, env: {} }), /does not exist.*GATEHOUSE_AUDIT_SIGNING_KEY/);
    const gen = loadSigner({ file, env: {}, generate: true });
    assert.equal(loadSigner({ file, env: {} }).keyId, gen.keyId);
    const pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const fromEnv = loadSigner({ file, env: { [SIGNING_KEY_ENV]: pem } });
    assert.notEqual(fromEnv.keyId, gen.keyId);
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    assert.throws(() => loadSigner({ file, env: { [SIGNING_KEY_ENV]: rsa } }), /Ed25519/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("batch slices are the events' exact bytes; ids and times are filled in from the stream; garbage is one undecodable leaf", () => {
  const events = [1, 2, 3].map((i) => AuditEvent.fromPartial({ id: i === 2 ? "" : `s:${i}`, timeUnixMicros: i === 3 ? 0 : 1_700_000_000_000_000 + i, sessionId: "s" }));
  const data = AuditBatch.encode({ id: "b", events }).finish();
  const slices = batchEventSlices(data) as Uint8Array[];
  assert.equal(slices.length, 3);
  assert.deepEqual(Buffer.from(slices[0]!), Buffer.from(AuditEvent.encode(events[0]!).finish()));
  const ls = messageLeaves(data, 9, 42);
  assert.deepEqual(ls.map((l) => l.eventId), ["s:1", "seq:9:1", "s:3"]);
  assert.equal(AuditEvent.decode(ls[2]!.bytes).timeUnixMicros, 42);
  assert.deepEqual(Buffer.from(ls[0]!.bytes), Buffer.from(slices[0]!));
  const garbage = Uint8Array.from([0xff, 0xff, 0xff]);
  assert.deepEqual(messageLeaves(garbage, 5, 1).map((l) => [l.index, l.eventId]), [[UNDECODABLE_INDEX, "undecodable:5"]]);
  assert.equal(messageLeaves(AuditBatch.encode({ id: "e", events: [] }).finish(), 6, 1)[0]!.index, UNDECODABLE_INDEX);
});
