// The policy service against a real nats-server (started here on a free port) and a
// real gRPC server: Decide/Classify/Status on both transports, hot reload, main.ts.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { startNats, type TestNats } from "@gatehouse/testing";
import { Command, Effect, PolicyServiceService, type DecideRequest } from "@gatehouse/proto";
import { createLogger, grpcClient, natsClient, resolveConfig, subjects } from "@gatehouse/runtime";
import { startPolicyService, type PolicyServiceHandle } from "./index.js";

const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));


/** Wait until `check` returns a value (polling), or fail naming what was awaited. */
async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const READ = `@id("agents-read")\n@reason("agents may read")\npermit (principal in Gatehouse::Group::"agents", action in Gatehouse::Action::"sql:read", resource);\n`;

function request(sql: string): DecideRequest {
  return {
    identity: { subject: "agent-1", name: "agent-1", groups: ["agents"], kind: "agent", issuer: "test", tokenId: "", clientId: "", expiresAtUnix: 0 },
    connection: { name: "demo", protocol: "postgres", tags: { env: "dev" } },
    command: Command.fromPartial({ text: sql }),
  };
}

let tmp: string;
let policies: string;
let nats: TestNats;
let natsUrl: string;
let nc: NatsConnection;
let svc: PolicyServiceHandle;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "gatehouse-policy-svc-"));
  policies = join(tmp, "policies");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(policies);
  writeFileSync(join(policies, "read.cedar"), READ);
  nats = await startNats({ jetstream: false });
  natsUrl = nats.url;
  nc = await nats.connect();
  const config = resolveConfig({ policies, nats: { url: natsUrl }, policy: { grpcPort: 0 } }, tmp);
  svc = await startPolicyService(config, { log: createLogger("policy-test", "silent"), reloadIntervalMs: 200 });
});

after(async () => {
  await svc?.stop();
  await nc?.close();
  await nats?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("policy service", () => {
  test("Decide over NATS", async () => {
    const client = natsClient(nc, PolicyServiceService, { timeoutMs: 5000 });
    const allow = await client.decide(request("SELECT * FROM t WHERE id = 1"));
    assert.equal(allow.effect, Effect.EFFECT_ALLOW);
    assert.deepEqual(allow.policyIds, ["agents-read"]);
    assert.equal(allow.policyVersion, svc.engine.version);
    const deny = await client.decide(request("DROP TABLE t"));
    assert.equal(deny.effect, Effect.EFFECT_DENY);
    assert.equal(deny.reason, "no policy permits sql:drop_table on connection demo for agent-1");
  });

  test("Classify and Status over gRPC", async () => {
    const client = grpcClient(`127.0.0.1:${svc.grpcPort}`, PolicyServiceService);
    try {
      const c = await client.classify({ text: "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d" });
      assert.equal(c.statements[0]!.kind, "select");
      assert.deepEqual(c.statements[0]!.nestedWrites, ["delete"]);
      assert.notEqual(c.fingerprint, "");
      const bad = await client.classify({ text: "SELEC 1" });
      assert.match(bad.parseError, /syntax error/);
      const s = await client.status({});
      assert.equal(s.version, svc.engine.version);
      assert.equal(s.policyCount, 1);
      assert.deepEqual(s.files, ["read.cedar"]);
      const d = await client.decide(request("SELECT 1"));
      assert.equal(d.effect, Effect.EFFECT_ALLOW);
    } finally {
      client.close();
    }
  });

  test("a garbage request body gets an error reply, and the service keeps serving", async () => {
    const reply = await nc.request("gatehouse.rpc.gatehouse.v1.PolicyService.Decide", new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]), { timeout: 5000 });
    assert.ok(reply.headers?.get("Grpc-Status"), "error status header");
    const client = natsClient(nc, PolicyServiceService, { timeoutMs: 5000 });
    assert.equal((await client.decide(request("SELECT 1"))).effect, Effect.EFFECT_ALLOW);
  });

  test("a valid change reloads and announces the version; an invalid one keeps the old set", async () => {
    const client = natsClient(nc, PolicyServiceService, { timeoutMs: 5000 });
    const v1 = svc.engine.version;
    const announced: string[] = [];
    const sub = nc.subscribe(subjects.policyChanged, {
      callback: (_e, m) => {
        announced.push(m.string());
      },
    });
    await nc.flush();
    try {
      writeFileSync(join(policies, "insert.cedar"), `@id("agents-insert")\npermit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"sql:insert", resource);\n`);
      const v2 = await eventually("the new version to be announced", () => announced.find((v) => v !== v1));
      assert.equal(v2, svc.engine.version);
      const d = await client.decide(request("INSERT INTO t VALUES (1)"));
      assert.equal(d.effect, Effect.EFFECT_ALLOW);
      assert.equal(d.policyVersion, v2);

      writeFileSync(join(policies, "broken.cedar"), "forbid (principal, action, resource) when {\n");
      const status = await eventually("the invalid change to be reported", async () => {
        const s = await client.status({});
        return s.errors.length > 0 ? s : undefined;
      });
      assert.match(status.errors[0]!, /^broken\.cedar:1:\d+: error: .*unexpected end of input/);
      assert.equal(status.version, v2, "old set kept");
      assert.equal((await client.decide(request("INSERT INTO t VALUES (1)"))).effect, Effect.EFFECT_ALLOW);
      assert.equal(announced.filter((v) => v !== v1 && v !== v2).length, 0, "nothing announced for the invalid set");

      rmSync(join(policies, "broken.cedar"));
      rmSync(join(policies, "insert.cedar"));
      await eventually("the revert to be announced", () => (announced.at(-1) === v1 ? true : undefined));
      assert.equal((await client.decide(request("INSERT INTO t VALUES (1)"))).effect, Effect.EFFECT_DENY);
    } finally {
      sub.unsubscribe();
    }
  });

  test("main.js logs ready once and stops cleanly on SIGTERM", async () => {
    const cfg = join(tmp, "gatehouse.yaml");
    writeFileSync(cfg, `policies: ./policies\nnats: { url: "${natsUrl}" }\npolicy: { grpcPort: 0 }\n`);
    const child = spawn(process.execPath, [MAIN, "--config", cfg], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await eventually("the ready line", () => (out.includes('"msg":"ready"') ? true : undefined));
      const ready = out.split("\n").filter((l) => l.includes('"msg":"ready"'));
      assert.equal(ready.length, 1);
      assert.equal(JSON.parse(ready[0]!).service, "policy");
    } finally {
      child.kill("SIGTERM");
    }
    assert.equal(await exited, 0, out);
  });
});
