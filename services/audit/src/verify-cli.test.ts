// The auditor's commands end to end: `gatehouse audit verify`, `prove`,
// `check-proof`, `export-checkpoints` and `keys` against an audit service
// process, before and after a ClickHouse administrator changed one event.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { AuditEvent } from "@gatehouse/proto";
import { AuditPublisher } from "@gatehouse/runtime";
import { openAuditStore } from "@gatehouse/audit-store";
import { generateSigningKeyFile, readCheckpoints } from "@gatehouse/audit-integrity";
import { freePort, repoRoot, startNats, startProcess, type Proc, type TestNats } from "@gatehouse/testing";

let nats: TestNats;
let nc: NatsConnection;
let dir: string;
let configFile: string;
let svc: Proc | undefined;
let pubKeyFile: string;
const N = 120;

function start(): Promise<Proc> {
  return startProcess("audit", process.execPath, [join(repoRoot, "services/audit/dist/main.js"), "--config", configFile], { ready: /"msg":"ready"/, timeoutMs: 60_000 });
}

function cli(...args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, "packages/cli/dist/main.js"), "audit", ...args, "--config", configFile], { encoding: "utf8", timeout: 120_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

before(async () => {
  nats = await startNats();
  nc = await nats.connect();
  dir = mkdtempSync(join(tmpdir(), "gatehouse-verify-cli-"));
  const key = join(dir, "key.pem");
  const signer = generateSigningKeyFile(key);
  pubKeyFile = join(dir, "key.pub");
  writeFileSync(pubKeyFile, `-----BEGIN PUBLIC KEY-----\n${signer.publicKey}\n-----END PUBLIC KEY-----\n`);
  configFile = join(dir, "gatehouse.yaml");
  writeFileSync(
    configFile,
    `dataDir: ${dir}\nnats: { url: "${nats.url}" }\naudit: { chdbPath: ${join(dir, "ch")}, grpcPort: ${await freePort()}, signingKey: ${key}, checkpointEvents: 50, checkpointIntervalMs: 200, writerLockTtlMs: 3000 }\n`,
  );
  svc = await start();
  const pub = new AuditPublisher(nc);
  await Promise.all(
    Array.from({ length: N }, (_, i) =>
      pub.record(
        AuditEvent.fromPartial({
          id: `cli:${i + 1}`,
          timeUnixMicros: Date.now() * 1000,
          sessionId: "cli",
          connection: "prod",
          identity: { subject: "agent-7" },
          body: { $case: "command", command: { command: { id: `c${i + 1}`, text: `DELETE FROM orders WHERE id = ${i + 1}` }, decidedBy: "policy" } },
        }),
      ),
    ),
  );
  await pub.close();
  const deadline = Date.now() + 60_000;
  for (;;) {
    const cps = await readCheckpoints(nc);
    if (cps.length && cps[cps.length - 1]!.toPos === N) break;
    if (Date.now() > deadline) throw new Error("events were not sealed");
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  await svc?.stop();
  await nc?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("verify passes on the untouched trail; prove and check-proof work with only the public key", () => {
  const v = cli("verify", "--public-key", pubKeyFile);
  assert.equal(v.code, 0, v.out + v.err);
  assert.match(v.out, new RegExp(`checked ${N} events`));
  assert.match(v.out, /OK: the audit trail is complete and unaltered/);
  const ranged = cli("verify", "--from", new Date(Date.now() - 3_600_000).toISOString(), "--to", "60", "--json");
  assert.equal(ranged.code, 0, ranged.out + ranged.err);
  const report = JSON.parse(ranged.out);
  assert.equal(report.ok, true);
  assert.ok(report.eventsChecked >= 60 && report.eventsChecked < N, String(report.eventsChecked));
  const proofFile = join(dir, "proof.json");
  const p = cli("prove", "cli:42", "--out", proofFile);
  assert.equal(p.code, 0, p.err);
  const c = spawnSync(process.execPath, [join(repoRoot, "packages/cli/dist/main.js"), "audit", "check-proof", proofFile, "--public-key", pubKeyFile], { encoding: "utf8" });
  assert.equal(c.status, 0, c.stdout + c.stderr);
  assert.match(c.stdout, /OK: event cli:42 is chain position \d+, included in checkpoint/);
  assert.match(c.stdout, /DELETE FROM orders WHERE id = 42/);
  // A proof edited to claim another statement fails.
  const proof = JSON.parse(readFileSync(proofFile, "utf8"));
  const ev = AuditEvent.decode(Buffer.from(proof.eventBytes, "base64"));
  if (ev.body?.$case === "command") ev.body.command.command!.text = "SELECT 1";
  proof.eventBytes = Buffer.from(AuditEvent.encode(ev).finish()).toString("base64");
  writeFileSync(proofFile, JSON.stringify(proof));
  const bad = spawnSync(process.execPath, [join(repoRoot, "packages/cli/dist/main.js"), "audit", "check-proof", proofFile, "--public-key", pubKeyFile], { encoding: "utf8" });
  assert.equal(bad.status, 1);
  assert.match(bad.stdout, /FAILED: .*Merkle root/);
  const ex = cli("export-checkpoints");
  assert.equal(ex.code, 0, ex.err);
  const lines = ex.out.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines[lines.length - 1].toPos, N);
  const k = cli("keys");
  assert.match(k.out, new RegExp(lines[0].keyId));
});

test("verify passes while events keep arriving (nothing new is reported as missing or forged)", async () => {
  const pub = new AuditPublisher(nc);
  let running = true;
  let sent = 0;
  const load = (async () => {
    while (running) {
      await pub.record(AuditEvent.fromPartial({ id: `live:${++sent}`, timeUnixMicros: Date.now() * 1000, sessionId: "live", body: { $case: "sessionEnd", sessionEnd: { reason: "x" } } }));
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const child = spawn(process.execPath, [join(repoRoot, "packages/cli/dist/main.js"), "audit", "verify", "--config", configFile], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, "exit")) as [number];
  running = false;
  await load;
  await pub.close();
  assert.ok(sent > 50, `only ${sent} events were published during verify`);
  assert.equal(code, 0, out);
  assert.match(out, /OK: the audit trail is complete and unaltered/);
});

test("verify exits 1 and names the event whose text an administrator changed", async () => {
  await svc!.stop();
  const store = await openAuditStore({ chdbPath: join(dir, "ch") });
  await store.adminExec("ALTER TABLE gatehouse.events UPDATE command_text = 'SELECT 1' WHERE event_id = 'cli:77' SETTINGS mutations_sync = 2");
  await store.close();
  svc = await start();
  const v = cli("verify");
  assert.equal(v.code, 1, v.out + v.err);
  assert.match(v.out, /FAILED: first problem at chain position \d+, event cli:77: .*column command_text/);
  const r = cli("verify", "--bogus");
  assert.equal(r.code, 2);
});
