// Load with failures: the audit service runs as its own process and is killed
// with SIGKILL twice (and restarted) while 50,000 events are published, then
// stopped for a while in the middle of another load. Afterwards ClickHouse
// holds every event exactly once (count() and uniqExact(), no FINAL), no
// publish ever failed, and the trail verifies.
//
// GATEHOUSE_AUDIT_STOP_SECONDS sets how long the service stays down in the
// second test (default 60, as in the issue; GATEHOUSE_AUDIT_STOP_SECONDS=10 for a quick run).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { AuditServiceService, Effect } from "@gatehouse/proto";
import { AuditPublisher, natsClient } from "@gatehouse/runtime";
import { openAuditStore } from "@gatehouse/audit-store";
import { generateSigningKeyFile, readCheckpoints, streamTail, verifyTrail } from "@gatehouse/audit-integrity";
import { startNats, type Proc, type TestNats } from "@gatehouse/testing";
import { commandEvent as fixtureEvent, startAuditProcess } from "./testing/events.js";

const STOP_SECONDS = Number(process.env.GATEHOUSE_AUDIT_STOP_SECONDS ?? 60);
let nats: TestNats;
let nc: NatsConnection;
let dir: string;
let configFile: string;
let svc: Proc | undefined;

before(async () => {
  nats = await startNats();
  nc = await nats.connect();
  dir = mkdtempSync(join(tmpdir(), "gatehouse-audit-load-"));
  const key = join(dir, "key.pem");
  generateSigningKeyFile(key);
  configFile = join(dir, "gatehouse.yaml");
  writeFileSync(
    configFile,
    [
      `dataDir: ${dir}`,
      `nats: { url: "${nats.url}" }`,
      `audit: { chdbPath: ${join(dir, "ch")}, grpcPort: 0, signingKey: ${key}, checkpointEvents: 5000, checkpointIntervalMs: 500, writerLockTtlMs: 3000 }`,
      "",
    ].join("\n"),
  );
});

after(async () => {
  await svc?.stop();
  await nc?.close();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const start = () => startAuditProcess(configFile);

const event = (session: string, seq: number) =>
  fixtureEvent(session, seq, {
    identity: { subject: "agent-1", groups: ["ci"], kind: "agent" },
    command: { text: `UPDATE t SET v = ${seq} WHERE id = ${seq % 97}`, statements: [{ kind: "update", action: "sql:update", tables: ["t"] }] },
    decision: { effect: Effect.EFFECT_ALLOW, policyIds: ["p1"], reason: "ok", policyVersion: "v1" },
  });

/** `total` events from `sessions` concurrent sessions; onProgress sees the count published so far. */
async function publish(prefix: string, total: number, sessions: number, onProgress: (n: number) => Promise<void> | void, paceMs = 0): Promise<number> {
  const pub = new AuditPublisher(nc, { ackTimeoutMs: 10_000 });
  let done = 0;
  let failures = 0;
  const per = total / sessions;
  await Promise.all(
    Array.from({ length: sessions }, async (_, s) => {
      for (let i = 1; i <= per; i++) {
        try {
          await pub.record(event(`${prefix}${s}`, i));
        } catch {
          failures++;
        }
        done++;
        await onProgress(done);
        if (paceMs) await new Promise((r) => setTimeout(r, paceMs));
      }
    }),
  );
  await pub.close();
  return failures;
}

const audit = () => natsClient(nc, AuditServiceService, { timeoutMs: 30_000 });

async function sql(q: string): Promise<Record<string, unknown>[]> {
  const res = await audit().query({ sql: q, maxRows: 100_000, params: {} });
  return res.rows.map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function counts(prefix: string): Promise<{ n: number; u: number }> {
  const [r] = await sql(`SELECT count() AS n, uniqExact(event_id) AS u FROM gatehouse.events WHERE type = 'command' AND startsWith(session_id, '${prefix}')`);
  return { n: Number(r!.n), u: Number(r!.u) };
}

async function waitDrained(prefix: string, expected: number): Promise<void> {
  const deadline = Date.now() + 240_000;
  for (;;) {
    try {
      const s = await audit().stats({});
      const c = await counts(prefix);
      if (s.pending === 0 && c.u >= expected) {
        const cps = await readCheckpoints(nc);
        if (cps.length && cps[cps.length - 1]!.toPos === Number((await sql("SELECT max(chain_pos) AS m FROM gatehouse.events"))[0]!.m)) return;
      }
    } catch {
      // the service may be starting
    }
    if (Date.now() > deadline) throw new Error(`the backlog did not drain:\n${svc?.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Stop the service and verify its store in this process (the CLI does the same through the audit service). */
async function verifyStopped() {
  await svc!.stop();
  svc = undefined;
  const store = await openAuditStore({ chdbPath: join(dir, "ch") });
  try {
    return await verifyTrail(async (q) => (await store.query(q, 100_000)).rows, { checkpoints: await readCheckpoints(nc), streamTail: streamTail(nc, "GATEHOUSE_AUDIT") });
  } finally {
    await store.close();
  }
}

test("50,000 events with the audit service SIGKILLed twice: exactly 50,000 stored, the trail verifies", { timeout: 600_000 }, async () => {
  svc = await start();
  const kills = [15_000, 32_000];
  let restarting: Promise<void> = Promise.resolve();
  const failures = await publish("k", 50_000, 50, (n) => {
    if (kills.length && n >= kills[0]!) {
      kills.shift();
      restarting = restarting.then(async () => {
        svc!.child.kill("SIGKILL");
        await svc!.stop();
        svc = await start();
      });
    }
  });
  await restarting;
  assert.equal(failures, 0, "no publish may fail while the audit service is down");
  await waitDrained("k", 50_000);
  assert.deepEqual(await counts("k"), { n: 50_000, u: 50_000 });
  const [dec] = await sql("SELECT count() AS n, uniqExact(event_id) AS u FROM gatehouse.events WHERE type = 'decision'");
  assert.deepEqual({ n: Number(dec!.n), u: Number(dec!.u) }, { n: 50_000, u: 50_000 });
  const r = await verifyStopped();
  assert.deepEqual(r.problems, []);
  assert.equal(r.eventsChecked, 50_000);
  svc = await start();
});

test(`audit service stopped for ${STOP_SECONDS} s in the middle of a load: no publish fails, the backlog drains, nothing is lost`, { timeout: 600_000 }, async () => {
  const total = 20_000;
  let stoppedAt = 0;
  let restarted: Promise<void> = Promise.resolve();
  // Paced so that publishing spans the whole outage.
  const paceMs = Math.ceil(((STOP_SECONDS + 6) * 1000 * 20) / total);
  const failures = await publish("p", total, 20, (n) => {
    if (!stoppedAt && n >= total / 5) {
      stoppedAt = Date.now();
      const old = svc!;
      restarted = (async () => {
        await old.stop("SIGTERM");
        await new Promise((r) => setTimeout(r, STOP_SECONDS * 1000));
        svc = await start();
      })();
    }
  }, paceMs);
  await restarted;
  assert.equal(failures, 0);
  await waitDrained("p", total);
  assert.deepEqual(await counts("p"), { n: total, u: total });
  const r = await verifyStopped();
  assert.deepEqual(r.problems, []);
  assert.equal(r.eventsChecked, 70_000);
});
