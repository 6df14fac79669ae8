// A writer that dies with a long unsealed tail must resume: after a SIGKILL the
// new writer re-reads every event stored since the last checkpoint to rebuild the
// chain state. Tens of thousands of ids once made that one query exceed
// ClickHouse's max_query_size, and the writer retried it forever.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { AuditServiceService } from "@gatehouse/proto";
import { AuditPublisher, natsClient } from "@gatehouse/runtime";
import { startNats, type Proc, type TestNats } from "@gatehouse/testing";
import { commandEvent, startAuditProcess } from "./testing/events.js";

const EVENTS = 30_000; // ids "resume-tail-session:N": ~800 KB as one IN list
let nats: TestNats;
let nc: NatsConnection;
let dir: string;
let configFile: string;
let svc: Proc | undefined;

before(async () => {
  nats = await startNats();
  nc = await nats.connect();
  dir = mkdtempSync(join(tmpdir(), "gatehouse-audit-resume-"));
  configFile = join(dir, "gatehouse.yaml");
  // Nothing is sealed while the test runs: the whole load stays the unsealed tail.
  writeFileSync(configFile, `dataDir: ${dir}\nnats: { url: "${nats.url}" }\naudit: { chdbPath: ${join(dir, "ch")}, grpcPort: 0, checkpointEvents: 10000000, checkpointIntervalMs: 3600000, writerLockTtlMs: 2000 }\n`);
});

after(async () => {
  await svc?.stop();
  await nc?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const start = () => startAuditProcess(configFile);
const event = (seq: number) => commandEvent("resume-tail-session", seq);

async function commands(): Promise<number> {
  const res = await natsClient(nc, AuditServiceService, { timeoutMs: 30_000 }).query({ sql: "SELECT count() AS n FROM gatehouse.events WHERE type = 'command'", maxRows: 1, params: {} });
  return Number((JSON.parse(res.rows[0]!) as { n: string }).n);
}

async function waitFor(n: number): Promise<void> {
  // No timing assertion: the deadline only keeps a stuck writer from hanging the run.
  const deadline = Date.now() + 120_000;
  let got = 0;
  while ((got = await commands()) < n) {
    if (Date.now() > deadline) throw new Error(`the audit writer stored ${got} of ${n} events; its log:\n${svc?.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test(`SIGKILLed with ${EVENTS} unsealed events, the writer resumes and stores every later event exactly once`, { timeout: 300_000 }, async () => {
  svc = await start();
  const pub = new AuditPublisher(nc, { ackTimeoutMs: 10_000 });
  for (let i = 1; i <= EVENTS; i += 500) await Promise.all(Array.from({ length: Math.min(500, EVENTS - i + 1) }, (_, k) => pub.record(event(i + k))));
  await waitFor(EVENTS);
  await svc.stop("SIGKILL");
  svc = await start();
  await pub.record(event(EVENTS + 1));
  await pub.close();
  await waitFor(EVENTS + 1);
  assert.equal(await commands(), EVENTS + 1, "nothing written twice (counted without FINAL)");
});
