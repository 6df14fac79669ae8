// Bad input never crashes the listener: malformed frames, unsupported protocol
// versions and parameters get a proper ErrorResponse; the listener keeps serving.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import plugin from "./index.js";
import { FakeGateway, startTestListener, eventually, type TestListener } from "./testing/fake-gateway.js";
import { pgClient, psql } from "./testing/clients.js";
import { fe, fields, RawConn, startup } from "./testing/raw.js";

/** The listener still serves a real client. */
async function stillServes(port: number): Promise<void> {
  const r = await psql(port, ["-c", "SELECT 'alive'"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "alive");
}

describe("robustness of the postgres plugin", () => {
  let t: TestListener;
  before(async () => {
    t = await startTestListener({ maxMessageBytes: 1 << 20 });
  });
  after(async () => {
    await t.stop();
  });

  it("a negative frame length after login gets FATAL 08P01 and a close", async () => {
    const c = await RawConn.login(t.port);
    const bad = Buffer.from([0x51, 0xff, 0xff, 0xff, 0xf0, 0x41]);
    c.send(bad);
    const m = await c.next();
    assert.equal(m.type, "E");
    assert.equal(fields(m).S, "FATAL");
    assert.equal(fields(m).C, "08P01");
    assert.match(fields(m).M!, /invalid length/);
    await c.closedByPeer();
    await stillServes(t.port);
  });

  it("a message over the configured size limit gets FATAL 08P01", async () => {
    const c = await RawConn.login(t.port);
    const head = Buffer.alloc(5);
    head[0] = 0x51;
    head.writeInt32BE((2 << 20) + 4, 1);
    c.send(head);
    const m = await c.next();
    assert.equal(fields(m).C, "08P01");
    assert.match(fields(m).M!, /larger than the limit of 1048576 bytes/);
    await c.closedByPeer();
  });

  it("an unknown message type gets FATAL 08P01", async () => {
    const c = await RawConn.login(t.port);
    c.send(fe.raw("~", Buffer.from("junk")));
    const m = await c.next();
    assert.equal(fields(m).C, "08P01");
    assert.match(fields(m).M!, /unexpected message type '~'/);
    await c.closedByPeer();
  });

  it("a truncated Bind body gets FATAL 08P01", async () => {
    const c = await RawConn.login(t.port);
    c.send(Buffer.concat([fe.parse("", "SELECT $1::int"), fe.raw("B", Buffer.from("\0\0\0\x01"))]));
    const m = await c.next();
    assert.equal(fields(m).C, "08P01");
    await c.closedByPeer();
    await stillServes(t.port);
  });

  it("garbage instead of a startup packet gets an error, not a crash", async () => {
    const c = await RawConn.open(t.port);
    c.send(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    const m = await c.next();
    assert.equal(m.type, "E");
    assert.equal(fields(m).C, "08P01");
    await c.closedByPeer();
  });

  it("protocol 2.0 is refused with 0A000", async () => {
    const c = await RawConn.open(t.port);
    c.send(startup({ user: "agent-1", database: "demo" }, 2 << 16));
    const m = await c.next();
    assert.equal(fields(m).C, "0A000");
    assert.equal(fields(m).M, "unsupported frontend protocol 2.0: server supports 3.0 to 3.0");
  });

  it("protocol 3.2 with _pq_ options is negotiated down to 3.0", async () => {
    const c = await RawConn.open(t.port);
    c.send(startup({ user: "agent-1", database: "demo", "_pq_.test_option": "1" }, (3 << 16) | 2));
    const v = await c.next();
    assert.equal(v.type, "v");
    assert.equal(v.body.readInt32BE(0), 0, "newest supported minor version");
    assert.equal(v.body.readInt32BE(4), 1);
    assert.equal(v.body.toString("utf8", 8, v.body.length - 1), "_pq_.test_option");
    const auth = await c.next();
    assert.equal(auth.type, "R");
    c.close();
  });

  it("GSSENCRequest is declined with 'N' and the startup continues", async () => {
    const c = await RawConn.open(t.port);
    const req = Buffer.alloc(8);
    req.writeInt32BE(8, 0);
    req.writeInt32BE(80877104, 4);
    c.send(req);
    assert.equal(await c.byte(), "N");
    c.send(startup({ user: "agent-1", database: "demo" }));
    const auth = await c.next();
    assert.equal(auth.type, "R");
    assert.equal(auth.body.readInt32BE(0), 3, "cleartext password (the access token) requested");
    c.close();
  });

  it("bytes sent together with an SSLRequest (before the answer) are refused", async () => {
    const c = await RawConn.open(t.port);
    const req = Buffer.alloc(8);
    req.writeInt32BE(8, 0);
    req.writeInt32BE(80877103, 4);
    c.send(Buffer.concat([req, startup({ user: "agent-1", database: "demo" })]));
    const m = await c.next();
    assert.equal(fields(m).C, "08P01");
    assert.match(fields(m).M!, /unexpected data after an encryption request/);
  });

  it("a failed TLS handshake closes that connection only", async () => {
    const c = await RawConn.open(t.port);
    const req = Buffer.alloc(8);
    req.writeInt32BE(8, 0);
    req.writeInt32BE(80877103, 4);
    c.send(req);
    assert.equal(await c.byte(), "S");
    c.send(Buffer.from("this is not a TLS ClientHello at all................"));
    await c.closedByPeer();
    await stillServes(t.port);
  });

  it("replication connections are refused", async () => {
    const c = await RawConn.open(t.port);
    c.send(startup({ user: "agent-1", database: "demo", replication: "database" }));
    const m = await c.next();
    assert.equal(fields(m).C, "0A000");
    assert.match(fields(m).M!, /replication connections are not supported/);
  });

  it("a non-password message during authentication gets 08P01", async () => {
    const c = await RawConn.open(t.port);
    c.send(startup({ user: "agent-1", database: "demo" }));
    await c.next();
    c.send(fe.query("SELECT 1"));
    const m = await c.next();
    assert.equal(fields(m).C, "08P01");
    assert.match(fields(m).M!, /expected a password message/);
  });

  it("the function call protocol is refused (it would bypass statement policy)", async () => {
    const c = await RawConn.login(t.port);
    c.send(fe.raw("F", Buffer.from([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])));
    const [err, rfq] = await c.until("Z");
    assert.equal(fields(err!).C, "0A000");
    assert.equal(rfq!.type, "Z");
    c.send(fe.query("SELECT 1"));
    const ms = await c.until("Z");
    assert.equal(ms.map((m) => m.type).join(""), "TDCZ");
    c.close();
  });

  it("Bind to a statement the gateway never saw prepared is refused (26000)", async () => {
    const c = await RawConn.login(t.port);
    c.send(Buffer.concat([fe.bind("", "never_prepared"), fe.execute(""), fe.sync()]));
    const ms = await c.until("Z");
    assert.equal(ms.map((m) => m.type).join(""), "EZ");
    assert.equal(fields(ms[0]!).C, "26000");
    c.close();
  });

  it("an abrupt client disconnect mid-query ends the session with a sessionEnd event", async () => {
    const c = await RawConn.login(t.port);
    c.send(fe.query("SELECT pg_sleep(0.2) /* abrupt */"));
    await eventually(() => t.gw.commands("abrupt").length === 1, "the command");
    const sessionId = t.gw.commands("abrupt")[0]!.sessionId;
    c.close();
    const end = await eventually(() => t.gw.ofKind("sessionEnd", sessionId)[0], "sessionEnd");
    assert.equal(end.sessionEnd.reason, "client disconnected");
    await stillServes(t.port);
  });

  it("start fails with an actionable message when openssl is missing for the dev certificate", async () => {
    const gw = new FakeGateway();
    const path = process.env.PATH;
    process.env.PATH = gw.dataDir; // an empty directory: no openssl on PATH
    try {
      await assert.rejects(plugin.start(gw, { host: "127.0.0.1", port: 0 }), /install openssl \(apt-get install openssl\) or set listeners.postgres.tls.cert\/key/);
    } finally {
      process.env.PATH = path;
      gw.cleanup();
    }
  });

  it("start fails clearly when a configured certificate cannot be read", async () => {
    const gw = new FakeGateway();
    try {
      await assert.rejects(
        plugin.start(gw, { host: "127.0.0.1", port: 0, tls: { cert: "/nonexistent/cert.pem", key: "/nonexistent/key.pem" } }),
        /cannot read TLS certificate\/key: ENOENT/,
      );
      await assert.rejects(plugin.start(gw, { host: "127.0.0.1", port: 0, maxMessageBytes: -1 }), /listeners.postgres.maxMessageBytes must be an integer/);
    } finally {
      gw.cleanup();
    }
  });

  it("stop() ends open sessions with 57P01 and records their end", async () => {
    const own = await startTestListener();
    const c = pgClient(own.port);
    const errors: (Error & { code?: string })[] = [];
    c.on("error", (e) => errors.push(e));
    await c.connect();
    await c.query("SELECT 1");
    await own.listener.stop();
    await eventually(() => errors.length > 0, "client error");
    assert.equal(errors[0]!.code, "57P01");
    assert.equal(own.gw.ofKind("sessionEnd")[0]?.sessionEnd.reason, "listener stopped");
    own.gw.cleanup();
    await c.end().catch(() => undefined);
  });
});
