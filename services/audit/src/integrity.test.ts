// Tamper evidence end to end: a real nats-server and embedded ClickHouse. A
// populated store is copied once per scenario, changed the way a ClickHouse
// administrator could, and verified against the signed checkpoints in JetStream.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { AuditEvent, Effect } from "@gatehouse/proto";
import { openAuditStore, type AuditStore } from "@gatehouse/audit-store";
import { AuditPublisher, createLogger, resolveConfig, type GatehouseConfig } from "@gatehouse/runtime";
import { CHECKPOINT_STREAM, checkProof, generateSigningKeyFile, makeProof, readCheckpoints, streamTail, verifyTrail, type Checkpoint, type VerifyReport } from "@gatehouse/audit-integrity";
import { startNats, type TestNats } from "@gatehouse/testing";
import { startAuditService, type AuditServiceHandle } from "./index.js";

const log = createLogger("integrity-test", "silent");
const COMMANDS = 240;
const SESSIONS = 4;
let nats: TestNats;
let nc: NatsConnection;
let dir: string;
let config: GatehouseConfig;
let svc: AuditServiceHandle | undefined;
let checkpoints: Checkpoint[];
let publicKey: string;
/** event id -> chain position, from the untouched store */
const posOf = new Map<string, number>();
let total = 0;

function commandEvent(session: string, seq: number): AuditEvent {
  return AuditEvent.fromPartial({
    id: `${session}:${seq}`,
    timeUnixMicros: Date.now() * 1000 + seq,
    sessionId: session,
    connection: "prod",
    protocol: "postgres",
    identity: { subject: "agent-1", name: "bot", groups: ["ci"], kind: "agent" },
    body: {
      $case: "command",
      command: {
        command: { id: `${session}:c${seq}`, sessionId: session, seq, text: `SELECT ${seq} FROM t`, statements: [{ kind: "select", action: "sql:select", tables: ["t"] }] },
        decision: { effect: seq % 7 === 0 ? Effect.EFFECT_DENY : Effect.EFFECT_ALLOW, policyIds: ["p1"], reason: "r", policyVersion: "v1" },
        decidedBy: "policy",
      },
    },
  });
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  nats = await startNats();
  nc = await nats.connect();
  dir = mkdtempSync(join(tmpdir(), "gatehouse-integrity-"));
  const keyFile = join(dir, "key.pem");
  publicKey = generateSigningKeyFile(keyFile).publicKey;
  config = resolveConfig(
    { nats: { url: nats.url }, audit: { chdbPath: join(dir, "ch"), grpcPort: 0, signingKey: keyFile, checkpointEvents: 64, checkpointIntervalMs: 200, writerLockTtlMs: 3000 } },
    dir,
  );
  svc = await startAuditService(config, { nc, log });
  const pub = new AuditPublisher(nc);
  const work: Promise<void>[] = [];
  for (let i = 1; i <= COMMANDS / SESSIONS; i++) for (let s = 0; s < SESSIONS; s++) work.push(pub.record(commandEvent(`s${s}`, i)));
  await Promise.all(work);
  // A poison message is chained too.
  await jetstream(nc).publish("gatehouse.audit.events", Uint8Array.from([0xff, 0xff, 0x01]), { msgID: "poison-1" });
  await pub.record(commandEvent("late", 1));
  await pub.close();
  total = COMMANDS + 2;
  await waitFor("every event chained and sealed", async () => {
    const cps = await readCheckpoints(nc);
    return cps.length > 0 && cps[cps.length - 1]!.toPos === total;
  });
  await svc.stop();
  svc = undefined;
  checkpoints = await readCheckpoints(nc);
  const store = await openAuditStore({ chdbPath: join(dir, "ch") });
  for (const r of await store.internalQuery("SELECT event_id, chain_pos FROM gatehouse.events WHERE event_bytes != ''")) posOf.set(String(r.event_id), Number(r.chain_pos));
  await store.close();
});

after(async () => {
  await svc?.stop();
  await nc?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

let copyN = 0;
/** A copy of the populated store, changed by `tamper`, then verified. */
async function verifyCopy(tamper: (store: AuditStore) => Promise<void>, cps?: Checkpoint[]): Promise<VerifyReport> {
  const copy = join(dir, `copy${++copyN}`);
  cpSync(join(dir, "ch"), copy, { recursive: true });
  const store = await openAuditStore({ chdbPath: copy });
  try {
    await tamper(store);
    return await verifyTrail(async (sql) => (await store.query(sql, 100_000)).rows, {
      checkpoints: cps ?? (await readCheckpoints(nc)),
      streamTail: streamTail(nc, config.audit.stream),
      pageSize: 50,
    });
  } finally {
    await store.close();
    rmSync(copy, { recursive: true, force: true });
  }
}

const M = "SETTINGS mutations_sync = 2";

test("the store holds every event exactly once, each in the chain, all sealed by signed checkpoints", async () => {
  assert.equal(posOf.size, total);
  assert.deepEqual([...posOf.values()].sort((a, b) => a - b), Array.from({ length: total }, (_, i) => i + 1));
  assert.ok(checkpoints.length >= Math.ceil(total / 64));
  assert.equal(checkpoints[0]!.fromPos, 1);
});

test("the checkpoint stream refuses deletes and purges", async () => {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(CHECKPOINT_STREAM);
  assert.equal(info.config.deny_delete, true);
  assert.equal(info.config.deny_purge, true);
  await assert.rejects(jsm.streams.purge(CHECKPOINT_STREAM));
  await assert.rejects(jsm.streams.deleteMessage(CHECKPOINT_STREAM, 1));
  assert.equal((await readCheckpoints(nc)).length, checkpoints.length);
});

test("an untouched store verifies", async () => {
  const r = await verifyCopy(async () => undefined);
  assert.deepEqual(r.problems, []);
  assert.equal(r.ok, true);
  assert.equal(r.eventsChecked, total);
  assert.equal(r.lastCheckpointPos, total);
});

test("one event's text changed is named, with the column", async () => {
  const r = await verifyCopy((s) => s.adminExec(`ALTER TABLE gatehouse.events UPDATE command_text = 'SELECT 1 FROM harmless' WHERE event_id = 's2:17' ${M}`));
  assert.equal(r.ok, false);
  assert.equal(r.problems[0]!.eventId, "s2:17");
  assert.equal(r.problems[0]!.pos, posOf.get("s2:17"));
  assert.match(r.problems[0]!.what, /command_text/);
});

test("one event's bytes and text changed consistently still breaks the chain at that event", async () => {
  const forged = AuditEvent.encode({ ...commandEvent("s1", 9), sessionId: "s1" }).finish();
  const ev = AuditEvent.decode(forged);
  if (ev.body?.$case === "command") ev.body.command.command!.text = "SELECT nothing";
  const b64 = Buffer.from(AuditEvent.encode(ev).finish()).toString("base64");
  const r = await verifyCopy((s) =>
    s.adminExec(`ALTER TABLE gatehouse.events UPDATE event_bytes = '${b64}', command_text = 'SELECT nothing' WHERE event_id = 's1:9' ${M}`),
  );
  assert.equal(r.ok, false);
  assert.equal(r.problems[0]!.eventId, "s1:9");
  assert.match(r.problems[0]!.what, /chain hash/);
});

test("one event deleted: its chain position is reported missing", async () => {
  const r = await verifyCopy((s) => s.adminExec(`ALTER TABLE gatehouse.events DELETE WHERE event_id IN ('s3:40', 's3:40:decision') ${M}`));
  assert.equal(r.ok, false);
  assert.equal(r.problems[0]!.pos, posOf.get("s3:40"));
  assert.match(r.problems[0]!.what, /no event at chain position/);
});

test("a forged event inserted at a position is reported there", async () => {
  const pos = posOf.get("s0:30")!;
  const forged = Buffer.from(AuditEvent.encode(commandEvent("forged", 1)).finish()).toString("base64");
  const r = await verifyCopy((s) =>
    s.adminExec(
      `INSERT INTO gatehouse.events (event_id, stream_seq, time, type, session_id, command_text, chain_pos, chain_index, chain_hash, event_bytes) VALUES ('forged:1', 1, now64(6), 'command', 'forged', 'SELECT 1', ${pos}, 0, '00', '${forged}')`,
    ),
  );
  assert.equal(r.ok, false);
  assert.equal(r.problems[0]!.pos, pos);
  assert.match(r.problems[0]!.what, /2 events claim chain position/);
});

test("a forged row outside the chain is reported", async () => {
  const r = await verifyCopy((s) => s.adminExec(`INSERT INTO gatehouse.events (event_id, time, type, session_id, command_text) VALUES ('forged:2', now64(6), 'command', 'forged', 'DROP TABLE x')`));
  assert.equal(r.ok, false);
  assert.ok(r.problems.some((p) => p.eventId === "forged:2" && /not part of the hash chain/.test(p.what)), JSON.stringify(r.problems));
});

test("two events swapped: reported at the first of the two positions", async () => {
  const a = posOf.get("s1:20")!;
  const b = posOf.get("s2:20")!;
  const r = await verifyCopy((s) =>
    s.adminExec(`ALTER TABLE gatehouse.events UPDATE chain_pos = multiIf(chain_pos = ${a}, ${b}, chain_pos = ${b}, ${a}, chain_pos) WHERE chain_pos IN (${a}, ${b}) ${M}`),
  );
  assert.equal(r.ok, false);
  assert.equal(r.problems[0]!.pos, Math.min(a, b));
  assert.match(r.problems[0]!.what, /chain hash/);
});

test("the newest 10 events dropped: the cut is reported at the first missing position", async () => {
  const r = await verifyCopy((s) => s.adminExec(`ALTER TABLE gatehouse.events DELETE WHERE chain_pos > ${total - 10} ${M}`));
  assert.equal(r.ok, false);
  assert.equal(r.problems[0]!.pos, total - 9);
  assert.match(r.problems[0]!.what, /no event at chain position/);
});

test("the newest 10 events and their checkpoints dropped from ClickHouse: JetStream still shows the cut", async () => {
  const r = await verifyCopy(async (s) => {
    await s.adminExec(`ALTER TABLE gatehouse.events DELETE WHERE chain_pos > ${total - 10} ${M}`);
    await s.adminExec(`ALTER TABLE gatehouse.checkpoints DELETE WHERE to_pos > ${total - 10} ${M}`);
  });
  assert.equal(r.ok, false);
  assert.ok(r.problems.some((p) => /missing from ClickHouse/.test(p.what)), JSON.stringify(r.problems));
  assert.ok(r.problems.some((p) => p.pos === total - 9 && /no event at chain position/.test(p.what)), JSON.stringify(r.problems));
});

test("newest 10 events not sealed yet and dropped: the JetStream audit stream shows them missing", async () => {
  // As if the last checkpoint had not been sealed when the tail was cut.
  const unsealed = checkpoints.slice(0, -1);
  const last = checkpoints[checkpoints.length - 1]!;
  const dropped = [...posOf].filter(([, p]) => p > total - 10).map(([id]) => id);
  const r = await verifyCopy(async (s) => {
    await s.adminExec(`ALTER TABLE gatehouse.events DELETE WHERE chain_pos > ${total - 10} ${M}`);
    await s.adminExec(`ALTER TABLE gatehouse.checkpoints DELETE WHERE from_pos = ${last.fromPos} ${M}`);
  }, unsealed);
  assert.equal(r.ok, false);
  const missing = r.problems.filter((p) => /in the audit stream but not in the store/.test(p.what)).map((p) => p.eventId);
  assert.deepEqual(missing.sort(), dropped.sort(), JSON.stringify(r.problems));
});

test("--from/--to check only the checkpoints covering the range", async () => {
  const early = posOf.get("s0:2")!; // in the first checkpoint
  const cp3 = checkpoints[2]!;
  const copy = join(dir, "copy-range");
  cpSync(join(dir, "ch"), copy, { recursive: true });
  const store = await openAuditStore({ chdbPath: copy });
  try {
    await store.adminExec(`ALTER TABLE gatehouse.events UPDATE command_text = 'x' WHERE chain_pos = ${early} AND type = 'command' ${M}`);
    const q = async (sql: string) => (await store.query(sql, 100_000)).rows;
    const later = await verifyTrail(q, { checkpoints, from: cp3.fromPos + 1, to: cp3.toPos });
    assert.deepEqual(later.problems, []);
    assert.equal(later.eventsChecked, cp3.toPos - cp3.fromPos + 1);
    const covering = await verifyTrail(q, { checkpoints, from: early, to: early });
    assert.equal(covering.problems[0]!.pos, early);
  } finally {
    await store.close();
    rmSync(copy, { recursive: true, force: true });
  }
});

test("a checkpoint altered in ClickHouse is reported", async () => {
  const cp = checkpoints[1]!;
  const r = await verifyCopy((s) => s.adminExec(`ALTER TABLE gatehouse.checkpoints UPDATE merkle_root = '${"0".repeat(64)}' WHERE from_pos = ${cp.fromPos} ${M}`));
  assert.equal(r.ok, false);
  assert.equal(r.problems[0]!.pos, cp.fromPos);
  assert.match(r.problems[0]!.what, /differs from the signed copy in JetStream: merkleRoot/);
});

test("a checkpoint whose signature does not hold is reported (pinned key, altered fields)", async () => {
  const altered = checkpoints.map((c, i) => (i === 2 ? { ...c, head: c.head.replace(/^./, (x) => (x === "0" ? "1" : "0")) } : c));
  const store = await openAuditStore({ chdbPath: join(dir, "ch") });
  try {
    const r = await verifyTrail(async (sql) => (await store.query(sql, 100_000)).rows, {
      checkpoints: altered,
      trustedKeys: new Map([[checkpoints[0]!.keyId, publicKey]]),
    });
    assert.equal(r.ok, false);
    assert.equal(r.problems[0]!.pos, altered[2]!.fromPos);
    assert.match(r.problems[0]!.what, /signature/);
  } finally {
    await store.close();
  }
});

test("prove an event, check the proof with only the public key; a changed proof fails", async () => {
  const store = await openAuditStore({ chdbPath: join(dir, "ch") });
  try {
    const proof = await makeProof(async (sql) => (await store.query(sql, 100_000)).rows, "s2:33", checkpoints);
    const ok = checkProof(JSON.parse(JSON.stringify(proof)), publicKey);
    assert.deepEqual(ok.problems, []);
    assert.equal(ok.event?.id, "s2:33");
    const ev = AuditEvent.decode(Buffer.from(proof.eventBytes, "base64"));
    if (ev.body?.$case === "command") ev.body.command.command!.text = "SELECT harmless";
    const changed = { ...proof, eventBytes: Buffer.from(AuditEvent.encode(ev).finish()).toString("base64") };
    assert.match(checkProof(changed, publicKey).problems.join(";"), /do not lead to the signed Merkle root/);
    const other = generateSigningKeyFile(join(dir, "other.pem")).publicKey;
    assert.match(checkProof(proof, other).problems.join(";"), /not among the trusted public keys/);
  } finally {
    await store.close();
  }
});

test("key rotation: checkpoints after a restart with a new key verify with both keys pinned; the old key alone does not cover them", async () => {
  const newKey = join(dir, "key2.pem");
  const newPub = generateSigningKeyFile(newKey).publicKey;
  const rotated = resolveConfig({ nats: { url: nats.url }, audit: { ...config.audit, signingKey: newKey, grpcPort: 0 } }, dir);
  svc = await startAuditService(rotated, { nc, log });
  const pub = new AuditPublisher(nc);
  await Promise.all(Array.from({ length: 10 }, (_, i) => pub.record(commandEvent("rotated", i + 1))));
  await pub.close();
  await waitFor("the new events sealed", async () => {
    const cps = await readCheckpoints(nc);
    return cps[cps.length - 1]!.toPos === total + 10;
  });
  await svc.stop();
  svc = undefined;
  const cps = await readCheckpoints(nc);
  const oldId = checkpoints[0]!.keyId;
  assert.equal(new Set(cps.map((c) => c.keyId)).size, 2);
  const store = await openAuditStore({ chdbPath: join(dir, "ch") });
  try {
    const q = async (sql: string) => (await store.query(sql, 100_000)).rows;
    const newId = cps[cps.length - 1]!.keyId;
    const both = await verifyTrail(q, { checkpoints: cps, trustedKeys: new Map([[oldId, publicKey], [newId, newPub]]) });
    assert.deepEqual(both.problems, []);
    const onlyOld = await verifyTrail(q, { checkpoints: cps, trustedKeys: new Map([[oldId, publicKey]]) });
    assert.equal(onlyOld.problems[0]!.pos, checkpoints[checkpoints.length - 1]!.toPos + 1);
    assert.match(onlyOld.problems[0]!.what, /not among the trusted public keys/);
  } finally {
    await store.close();
  }
});
