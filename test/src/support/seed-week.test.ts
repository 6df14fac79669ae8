// The evidence pack over the seeded week, end to end: a real nats-server, the
// real audit service (embedded ClickHouse) chaining and sealing the seeded
// events, and the real `gatehouse evidence` CLI as a separate process reading
// through AuditService over NATS/gRPC.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { Effect } from "@gatehouse/proto";
import { createLogger, resolveConfig } from "@gatehouse/runtime";
import { startNats, type TestNats } from "@gatehouse/testing";
import { generateSigningKeyFile, readCheckpoints } from "@gatehouse/audit-integrity";
import { startAuditService, type AuditServiceHandle } from "@gatehouse/audit-service";
import { CRITERIA, NO_EVIDENCE, parseCsv } from "@gatehouse/evidence";
import { repoRoot } from "./processes.js";
import { buildSeedWeek, publishSeedWeek, type SeededWeek } from "./seed-week.js";

const CLI = join(repoRoot, "packages/cli/dist/main.js");
let nats: TestNats;
let nc: NatsConnection;
let dir: string;
let cfgFile: string;
let keyFile: string;
let publicKeyPem: string;
let svc: AuditServiceHandle;
let week: SeededWeek;
let pack: string;

async function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, GATEHOUSE_EVIDENCE_SIGNING_KEY: "" } });
  let out = "";
  let err = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (err += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  return { code, out, err };
}

async function store(sql: string, params: Record<string, string> = {}): Promise<Record<string, unknown>[]> {
  return (await svc.store.query(sql, 100_000, params)).rows;
}

const WEEK = { from: "2026-11-01 00:00:00.000000", to: "2026-11-08 00:00:00.000000" };
const IN_WEEK = "time >= parseDateTime64BestEffort({from:String}, 6, 'UTC') AND time < parseDateTime64BestEffort({to:String}, 6, 'UTC')";
async function storeCount(where: string, table = "gatehouse.events FINAL"): Promise<number> {
  return Number((await store(`SELECT count() AS n FROM ${table} WHERE ${IN_WEEK} AND ${where}`, WEEK))[0]!.n);
}

function csvRows(packDir: string, file: string): Record<string, string>[] {
  const [head, ...rows] = parseCsv(readFileSync(join(packDir, file), "utf8"));
  return rows.map((r) => Object.fromEntries(head!.map((h, i) => [h, r[i] ?? ""])));
}

/** The HTML of one criterion's section. */
function section(html: string, id: string): string {
  const m = new RegExp(`<section id="[^"]*" data-criterion="${id.replace(".", "\\.")}"[^>]*>[\\s\\S]*?</section>`).exec(html);
  assert.ok(m, `section ${id} is in index.html`);
  return m[0];
}

before(async () => {
  nats = await startNats();
  nc = await nats.connect();
  dir = mkdtempSync(join(tmpdir(), "gatehouse-evidence-"));
  const auditKey = join(dir, "audit-key.pem");
  generateSigningKeyFile(auditKey);
  const config = resolveConfig(
    { dataDir: join(dir, "data"), nats: { url: nats.url }, audit: { chdbPath: join(dir, "ch"), grpcPort: 0, signingKey: auditKey, checkpointEvents: 400, checkpointIntervalMs: 300 } },
    dir,
  );
  svc = await startAuditService(config, { nc, log: createLogger("evidence-test", "silent") });
  cfgFile = join(dir, "gatehouse.yaml");
  writeFileSync(cfgFile, `dataDir: ./data\nnats: { url: "${nats.url}" }\naudit: { grpcPort: ${svc.grpcPort} }\n`);
  const kp = generateKeyPairSync("ed25519");
  keyFile = join(dir, "evidence-key.pem");
  writeFileSync(keyFile, kp.privateKey.export({ type: "pkcs8", format: "pem" }));
  publicKeyPem = join(dir, "evidence-key.pub.pem");
  writeFileSync(publicKeyPem, kp.publicKey.export({ type: "spki", format: "pem" }));

  week = buildSeedWeek({ seed: 7, start: "2026-11-01" });
  await publishSeedWeek(nc, week);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const cps = await readCheckpoints(nc);
    if (cps.length > 0 && cps[cps.length - 1]!.toPos === week.events.length) break;
    if (Date.now() > deadline) throw new Error("the seeded week was not chained and sealed in time");
    await new Promise((r) => setTimeout(r, 200));
  }
  pack = join(dir, "pack");
  const r = await cli(["evidence", "--from", "2026-11-01", "--to", "2026-11-08", "--out", pack, "--signing-key", keyFile, "--deployment", "seeded-test", "--config", cfgFile]);
  assert.equal(r.code, 0, `${r.out}\n${r.err}`);
  assert.match(r.out, /every criterion section has evidence/);
  assert.match(r.out, /integrity: PASS/);
  // To look at a pack by hand: GATEHOUSE_KEEP_EVIDENCE=/tmp/pack node --test ...
  if (process.env.GATEHOUSE_KEEP_EVIDENCE) cpSync(pack, process.env.GATEHOUSE_KEEP_EVIDENCE, { recursive: true });
});

after(async () => {
  await svc?.stop();
  await nc?.close();
  await nats?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the seeded week is stored exactly once, chained and sealed, with no clear confidential value", async () => {
  assert.equal(Number((await store("SELECT count() AS n FROM gatehouse.events WHERE event_bytes != ''"))[0]!.n), week.events.length);
  assert.ok(week.secrets.length >= 20, `the week uses confidential values (${week.secrets.length})`);
  const text = (await store("SELECT command_text, error_message, details, arrayStringConcat(arrayMap(x -> ifNull(x, ''), command_params), ' ') AS p FROM gatehouse.events")).map((r) => `${r.command_text} ${r.error_message} ${r.details} ${r.p}`).join("\n");
  for (const s of week.secrets) assert.ok(!text.includes(s), `clear value ${s} is not in the store`);
  assert.ok(text.includes("[REDACTED:EMAIL]"), "masked text is stored");
});

test("every criterion section is present with non-empty evidence, and the CSVs match the store", async () => {
  const html = readFileSync(join(pack, "index.html"), "utf8");
  assert.doesNotMatch(html, /<script|<link|src="http|href="http/i, "self-contained");
  for (const c of CRITERIA) {
    const s = section(html, c.id);
    assert.doesNotMatch(s, new RegExp(NO_EVIDENCE), `${c.id} has evidence`);
    assert.ok(Number(/data-evidence-rows="(\d+)"/.exec(s)![1]) > 0, `${c.id} counts evidence rows`);
    assert.match(s, /What it asks\./);
    assert.match(s, /<table>/);
    assert.match(s, /href="[a-z_]+\.csv"/);
  }
  assert.match(html, /Period<\/dt><dd>2026-11-01T00:00:00Z to 2026-11-08T00:00:00Z/);
  assert.match(html, /Deployment<\/dt><dd>seeded-test/);
  assert.match(html, /id="integrity-result" class="pass">PASS/);

  // Each CSV row count against a query on the store, and against what the generator made.
  const denied = csvRows(pack, "denied_attempts.csv");
  assert.equal(denied.length, await storeCount("type = 'decision' AND effect = 'deny'"));
  assert.equal(denied.length, week.expected.denied);
  const held = csvRows(pack, "privileged_operations.csv");
  assert.equal(held.length, await storeCount("type = 'decision' AND effect = 'require_approval'"));
  assert.equal(held.length, week.expected.held);
  const masking = csvRows(pack, "masking_events.csv");
  assert.equal(masking.length, await storeCount("1 = 1", "gatehouse.masking_events"));
  assert.equal(masking.length, week.expected.maskingEvents);
  assert.ok(masking.some((r) => r.source === "result") && masking.some((r) => r.source === "audit"));
  const auth = csvRows(pack, "auth_failures.csv");
  assert.equal(auth.length, await storeCount("type = 'auth_failure'"));
  assert.equal(auth.length, week.expected.authFailures);
  const sessions = csvRows(pack, "sessions.csv");
  assert.equal(sessions.length, await storeCount("type = 'session_start'"));
  assert.equal(sessions.length, week.expected.sessions);
  const identities = csvRows(pack, "identities.csv");
  assert.equal(identities.length, week.expected.identities);
  const agent = identities.find((r) => r.subject === "agent-orders")!;
  assert.equal(Number(agent.commands_denied), await storeCount("type = 'decision' AND effect = 'deny' AND identity_subject = 'agent-orders'"));
  assert.equal(agent.groups, "agents");
  const loads = csvRows(pack, "policy_loads.csv");
  assert.equal(loads.length, week.expected.policyLoads);
  assert.deepEqual(loads.map((l) => l.accepted), ["yes", "no", "yes"]);
  assert.match(loads[1]!.errors, /zz-draft\.cedar/);

  // Approvals: who approved, when, how long it took.
  const approved = held.filter((r) => r.outcome === "approved");
  assert.ok(approved.length > 0);
  for (const r of approved) {
    assert.match(r.approvers, /^(alice|bob)$/);
    assert.ok(Number(r.latency_ms) >= 20_000, `latency ${r.latency_ms}`);
    assert.equal(r.executed, "yes");
  }
  const granted = held.filter((r) => r.outcome === "granted");
  assert.ok(granted.length > 0 && granted.every((r) => r.grant_id === "grant-7-1" && r.approvers === "alice"));
  assert.ok(held.some((r) => r.outcome === "denied" && r.executed === "no"));

  // Policy versions in force: v1 from before the week until the reload, then v2; hashes from the loads.
  const versions = csvRows(pack, "policy_versions.csv");
  const [v1, v2] = week.policyVersions;
  assert.deepEqual([...new Set(versions.map((r) => r.version))], [v1, v2]);
  assert.ok(versions.every((r) => /^[0-9a-f]{64}$/.test(r.sha256)));
  assert.ok(csvRows(pack, "policy_versions_used.csv").every((r) => r.loaded === "yes"));

  // Integrity: every check passed; the checkpoints cover the period.
  for (const r of csvRows(pack, "integrity.csv").filter((x) => x.result !== "info")) assert.equal(r.result, "pass", `${r.check}: ${r.detail}`);
  const cps = csvRows(pack, "checkpoints.csv");
  assert.ok(cps.length >= 2);
  assert.ok(cps.every((c) => /^[0-9a-f]{16}$/.test(c.key_id) && c.signature.length > 40));
});

test("no seeded clear confidential value appears anywhere in the pack", () => {
  const all = readdirSync(pack).map((f) => readFileSync(join(pack, f), "utf8")).join("\n");
  for (const s of week.secrets) assert.ok(!all.includes(s), `clear value ${s} is not in the pack`);
  assert.ok(!all.includes("should-never-be-stored"), "startup-parameter secrets are not in the pack");
  assert.ok(all.includes("[REDACTED:CREDIT_CARD]"), "the masked form of the denied commands is in the pack");
});

test("evidence verify passes, and a changed byte, a missing file, an extra file and an altered signature are each named", async () => {
  const ok = await cli(["evidence", "verify", pack, "--public-key", publicKeyPem]);
  assert.equal(ok.code, 0, ok.out + ok.err);
  assert.match(ok.out, /^OK: 12 files match manifest\.json; signature by key [0-9a-f]{16} is valid\n/);
  const manifest = JSON.parse(readFileSync(join(pack, "manifest.json"), "utf8")) as { files: Array<{ path: string }> };
  assert.equal(manifest.files.length, 12);

  let n = 0;
  const tampered = async (change: (d: string) => void) => {
    const d = join(dir, `tampered-${++n}`);
    cpSync(pack, d, { recursive: true });
    change(d);
    return cli(["evidence", "verify", d, "--public-key", publicKeyPem]);
  };
  const byte = await tampered((d) => {
    const f = join(d, "denied_attempts.csv");
    const b = readFileSync(f);
    b[b.length - 5] = b[b.length - 5]! ^ 0x01;
    writeFileSync(f, b);
  });
  assert.equal(byte.code, 1);
  assert.match(byte.out, /changed file denied_attempts\.csv/);
  assert.doesNotMatch(byte.out, /missing file|extra file|bad signature/);

  const missing = await tampered((d) => rmSync(join(d, "sessions.csv")));
  assert.equal(missing.code, 1);
  assert.match(missing.out, /missing file sessions\.csv/);

  const extra = await tampered((d) => writeFileSync(join(d, "notes.txt"), "added later"));
  assert.equal(extra.code, 1);
  assert.match(extra.out, /extra file notes\.txt/);

  const sig = await tampered((d) => {
    const f = join(d, "manifest.json");
    const m = JSON.parse(readFileSync(f, "utf8")) as { signature: string };
    const b = Buffer.from(m.signature, "base64");
    b[0] = b[0]! ^ 0x80;
    m.signature = b.toString("base64");
    writeFileSync(f, JSON.stringify(m, null, 2));
  });
  assert.equal(sig.code, 1);
  assert.match(sig.out, /bad signature/);

  // A manifest edited to hide a change breaks the signature too.
  const edited = await tampered((d) => {
    writeFileSync(join(d, "identities.csv"), "subject\r\n");
    const f = join(d, "manifest.json");
    const m = JSON.parse(readFileSync(f, "utf8")) as { files: Array<{ path: string; sha256: string; bytes: number }> };
    const e = m.files.find((x) => x.path === "identities.csv")!;
    e.sha256 = "a".repeat(64);
    writeFileSync(f, JSON.stringify(m, null, 2));
  });
  assert.equal(edited.code, 1);
  assert.match(edited.out, /bad signature/);
  assert.match(edited.out, /changed file identities\.csv/);

  const other = join(dir, "other.pub.pem");
  writeFileSync(other, generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }));
  const wrongKey = await cli(["evidence", "verify", pack, "--public-key", other]);
  assert.equal(wrongKey.code, 1);
  assert.match(wrongKey.out, /not with the given public key/);
});

test("a period without activity: every section says so, the command lists them and exits 0", async () => {
  const out = join(dir, "empty");
  const r = await cli(["evidence", "--from", "2020-01-01", "--to", "2020-01-02T00:00:00Z", "--out", out, "--config", cfgFile]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.err, new RegExp(`no evidence in this period for ${CRITERIA.map((c) => c.id.replace(".", "\\.")).join(", ")}`));
  assert.match(r.err, /WARNING: no signing key was given/);
  const html = readFileSync(join(out, "index.html"), "utf8");
  for (const c of CRITERIA) assert.match(section(html, c.id), new RegExp(`class="empty">${NO_EVIDENCE}`));
  const v = await cli(["evidence", "verify", out]);
  assert.equal(v.code, 0, v.out);
  assert.match(v.out, /checked against the key inside the manifest/);
});

test("date and directory mistakes get a clear error", async () => {
  const reversed = await cli(["evidence", "--from", "2026-11-08", "--to", "2026-11-01", "--out", join(dir, "x1"), "--config", cfgFile]);
  assert.equal(reversed.code, 2);
  assert.match(reversed.err, /--to \(2026-11-01T00:00:00Z\) must be after --from \(2026-11-08T00:00:00Z\); --to is exclusive/);
  const feb = await cli(["evidence", "--from", "2026-02-30", "--to", "2026-03-02", "--out", join(dir, "x2"), "--config", cfgFile]);
  assert.equal(feb.code, 2);
  assert.match(feb.err, /--from "2026-02-30" has day 30, but 2026-02 has 28 days/);
  const word = await cli(["evidence", "--from", "last week", "--to", "2026-03-02", "--out", join(dir, "x3"), "--config", cfgFile]);
  assert.equal(word.code, 2);
  assert.match(word.err, /--from "last week" is not a date; use a UTC day such as 2026-11-01/);
  const missing = await cli(["evidence", "--from", "2026-11-01", "--out", join(dir, "x4"), "--config", cfgFile]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /--to is required/);
  const notEmpty = await cli(["evidence", "--from", "2026-11-01", "--to", "2026-11-02", "--out", pack, "--config", cfgFile]);
  assert.equal(notEmpty.code, 2);
  assert.match(notEmpty.err, /is not empty/);
});

// Last: it changes the store.
test("the integrity section reports a failure when one event's text was changed in the store", async () => {
  const target = week.events.find((e) => e.body?.$case === "command" && e.body.command.decision?.effect === Effect.EFFECT_DENY && e.timeUnixMicros > Date.parse("2026-11-03T00:00:00Z") * 1000)!;
  await svc.store.adminExec(`ALTER TABLE gatehouse.events UPDATE command_text = 'SELECT 1 FROM harmless' WHERE event_id = '${target.id}:decision' SETTINGS mutations_sync = 2`);
  const out = join(dir, "after-tamper");
  const r = await cli(["evidence", "--from", "2026-11-01", "--to", "2026-11-08", "--out", out, "--signing-key", keyFile, "--config", cfgFile]);
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.out, /integrity: FAIL/);
  assert.match(r.err, /FAILED verification/);
  const chain = csvRows(out, "integrity.csv").find((x) => x.check === "chain")!;
  assert.equal(chain.result, "FAIL");
  assert.match(chain.detail, new RegExp(`event ${target.id}.*column command_text of row ${target.id}:decision`));
  const html = readFileSync(join(out, "index.html"), "utf8");
  assert.match(html, /id="integrity-result" class="fail">FAIL/);
  // The pack itself is still intact and signed: it faithfully reports the broken trail.
  assert.equal((await cli(["evidence", "verify", out, "--public-key", publicKeyPem])).code, 0);
});
