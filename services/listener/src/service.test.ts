import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect as tcpConnect, type Socket } from "node:net";
import { once } from "node:events";
import { createInterface, type Interface } from "node:readline";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { AuditBatch, Effect } from "@gatehouse/proto";
import { auditStreamConfig, createLogger, resolveConfig, AUDIT_STREAM, type GatehouseConfig } from "@gatehouse/runtime";
import { startTokenForge, type TokenForge } from "@gatehouse/identity/testing";
import { startListenerService } from "./service.js";
import { startNats as startTestNats, type TestNats } from "@gatehouse/testing";
import { allow, startTestPolicyResponder, type TestPolicyResponder } from "./testing/policy-responder.js";

const linePlugin = fileURLToPath(new URL("./testing/line-plugin.js", import.meta.url));
const log = createLogger("listener-test", "silent");

let nats: TestNats;
let nc: NatsConnection;
let forge: TokenForge;
let responder: TestPolicyResponder;
let dataDir: string;

before(async () => {
  nats = await startTestNats();
  nc = await nats.connect();
  forge = await startTokenForge();
  responder = startTestPolicyResponder(nc);
  await nc.flush();
  dataDir = await mkdtemp(join(tmpdir(), "gatehouse-listener-"));
});
after(async () => {
  await responder.stop();
  await nc.close();
  await nats.stop();
  await forge.close();
  await rm(dataDir, { recursive: true, force: true });
});

function config(listeners: Record<string, Record<string, unknown>>): GatehouseConfig {
  return resolveConfig(
    {
      dataDir,
      nats: { url: nats.url },
      listeners: listeners as never,
      identity: { issuers: [forge.issuerConfig()], clockSkewSeconds: 0 },
      connections: { orders: { protocol: "line", upstream: { host: "127.0.0.1", port: 5432, passwordEnv: "GATEHOUSE_TEST_ORDERS_PW" }, tags: { env: "prod" } } } as never,
      policy: { deadlineMs: 500 },
      audit: { ackTimeoutMs: 1000 },
    },
    dataDir,
  );
}

/** A line-protocol client: send a line, read the answer. */
async function client(port: number): Promise<{ ask(line: string): Promise<string>; close(): void }> {
  const socket: Socket = tcpConnect(port, "127.0.0.1");
  await once(socket, "connect");
  const lines: Interface = createInterface({ input: socket });
  const it = lines[Symbol.asyncIterator]();
  return {
    async ask(line) {
      socket.write(`${line}\n`);
      const next = await it.next();
      assert.equal(next.done, false, "connection closed");
      return next.value as string;
    },
    close: () => socket.destroy(),
  };
}

test("hosts a plugin chosen by config: authenticate, decide (cached), record to JetStream", async () => {
  const svc = await startListenerService(config({ line: { host: "127.0.0.1", port: 0, plugin: linePlugin } }), { nc, log });
  try {
    assert.equal(svc.listeners.length, 1);
    assert.equal(svc.listeners[0]!.protocol, "line");
    assert.ok(svc.listeners[0]!.port > 0);
    process.env.GATEHOUSE_TEST_ORDERS_PW = "s3cret";
    assert.equal(svc.context.upstreamPassword("orders"), "s3cret");
    delete process.env.GATEHOUSE_TEST_ORDERS_PW;
    assert.equal(svc.context.connection("orders")?.tags.env, "prod");
    assert.equal(svc.context.connection("toString"), undefined);
    assert.notEqual(svc.context.newSessionId(), svc.context.newSessionId());

    const c = await client(svc.listeners[0]!.port);
    try {
      assert.match(await c.ask(`AUTH bot ${await forge.mint({ exp: Math.floor(Date.now() / 1000) - 60 })}`), /^ERR auth expired: token expired at /);
      assert.match(await c.ask(`AUTH bot ${forge.mintNone({})}`), /^ERR auth algorithm: algorithm "none" is not allowed/);
      assert.equal(await c.ask(`AUTH bot ${await forge.mint({ sub: "agent-7", groups: ["agents"] })}`), "OK agent-7");
      const before = responder.calls.length;
      assert.equal(await c.ask("SELECT * FROM t WHERE id = 1"), "ALLOW policy");
      assert.equal(await c.ask("SELECT * FROM t WHERE id = 2"), "ALLOW cache");
      assert.equal(responder.calls.length, before + 1);
      assert.equal(responder.calls.at(-1)!.identity!.name, "bot");
      responder.answer = () => allow("v1", { effect: Effect.EFFECT_DENY, cacheable: false });
      assert.equal(await c.ask("DROP TABLE t"), "DENY policy");
    } finally {
      responder.answer = () => allow();
      c.close();
    }
    // The commands are durable in the audit stream, each with its decision.
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(AUDIT_STREAM);
    const events = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(AUDIT_STREAM, { seq });
      if (m) events.push(...AuditBatch.decode(m.data).events);
    }
    const commands = events.flatMap((e) => (e.body?.$case === "command" ? [e.body.command] : []));
    assert.deepEqual(
      commands.map((c) => [c.command!.text, c.decidedBy, Effect[c.decision!.effect]]),
      [
        ["SELECT * FROM t WHERE id = 1", "policy", "EFFECT_ALLOW"],
        ["SELECT * FROM t WHERE id = 2", "cache", "EFFECT_ALLOW"],
        ["DROP TABLE t", "policy", "EFFECT_DENY"],
      ],
    );
    assert.ok(events.every((e) => e.listenerId === svc.context.listenerId && e.identity?.subject === "agent-7"));
  } finally {
    await svc.stop();
  }
});

test("audit not acknowledged -> DependencyError(audit), the session stays usable", async () => {
  // A separate bus whose audit stream refuses new messages after the first
  // (operator limit + discard "new"): JetStream stops acknowledging.
  const nats2 = await startTestNats();
  const nc2 = await nats2.connect();
  const responder2 = startTestPolicyResponder(nc2);
  await nc2.flush();
  await (await jetstreamManager(nc2)).streams.add({ ...auditStreamConfig(), max_msgs: 1 });
  const svc = await startListenerService({ ...config({ line: { host: "127.0.0.1", port: 0, plugin: linePlugin } }), nats: { url: nats2.url } }, { nc: nc2, log });
  try {
    const c = await client(svc.listeners[0]!.port);
    try {
      assert.equal(await c.ask(`AUTH bot ${await forge.mint({})}`), "OK agent-1");
      assert.equal(await c.ask("SELECT 1"), "ALLOW policy");
      assert.match(await c.ask("SELECT 2"), /^ERR audit: audit trail did not record the event \(.+\); the statement was not executed$/);
      assert.match(await c.ask("SELECT 3"), /^ERR audit: /);
    } finally {
      c.close();
    }
  } finally {
    await svc.stop();
    await responder2.stop();
    await nc2.close();
    await nats2.stop();
  }
});

test("a listener whose plugin cannot be loaded fails startup with a clear error", async () => {
  await assert.rejects(
    startListenerService(config({ nosuchproto: { host: "127.0.0.1", port: 0 } }), { nc, log }),
    /listener "nosuchproto": cannot load protocol plugin @gatehouse\/protocol-nosuchproto: .*set listeners\.nosuchproto\.plugin/,
  );
  await assert.rejects(
    startListenerService(config({ x: { host: "127.0.0.1", port: 0, plugin: "node:path" } }), { nc, log }),
    /listener "x": node:path has no default export implementing ProtocolPlugin/,
  );
});
