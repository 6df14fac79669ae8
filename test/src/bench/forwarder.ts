// A reference point for the PostgreSQL bench, not part of Gatehouse: a Node.js
// process that copies bytes between each client and its own upstream connection
// and does nothing else (no parsing, identity, policy, audit or recording). What
// it reaches is the ceiling for any gateway written in Node.js on this machine,
// so the suite runs it in the same run as direct, Gatehouse and pgbouncer.
//
// With a NATS URL it also does the one thing the design requires of every
// statement before it runs: a JetStream-acknowledged event (the listener's own
// group-commit AuditPublisher and audit stream settings), here one small event
// per client message. That is the floor of the required design, with nothing
// else of Gatehouse in it.
//
// usage: node forwarder.js LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT [NATS_URL]
import { createServer, connect } from "node:net";
import { AuditPublisher, connectBus, ensureAuditStream } from "@gatehouse/runtime";

const [listenPort, upstreamHost, upstreamPort, natsUrl] = process.argv.slice(2);
if (!listenPort || !upstreamHost || !upstreamPort) {
  console.error("usage: node forwarder.js LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT [NATS_URL]");
  process.exit(2);
}

let publisher: AuditPublisher | undefined;
if (natsUrl) {
  const nc = await connectBus("bench-forwarder", natsUrl);
  await ensureAuditStream(nc);
  publisher = new AuditPublisher(nc);
}

let sessions = 0;
const server = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host: upstreamHost, port: Number(upstreamPort), noDelay: true });
  const sessionId = `fwd-${process.pid}-${++sessions}`;
  let seq = 0;
  // Plain write per chunk, as a proxy that must see every message would do;
  // backpressure is not needed for pgbench's one-statement-at-a-time traffic.
  let tail: Promise<unknown> = Promise.resolve();
  client.on("data", (b: Buffer) => {
    if (!publisher) {
      upstream.write(b);
      return;
    }
    const acked = publisher.record({
      id: `${sessionId}:${++seq}`,
      timeUnixMicros: Date.now() * 1000,
      sessionId,
      connection: "bench",
      protocol: "postgres",
      identity: undefined,
      listenerId: "bench-forwarder",
      body: { $case: "result", result: { commandId: `${sessionId}:${seq}`, rows: 0, bytes: b.length, durationMicros: 0, errorCode: "", errorMessage: "", statusTag: "" } },
    });
    // In order per connection: each chunk goes upstream once it and all before it are acked.
    tail = Promise.all([tail, acked]).then(
      () => upstream.write(b),
      () => client.destroy(),
    );
  });
  upstream.on("data", (b) => client.write(b));
  client.on("close", () => upstream.destroy());
  upstream.on("close", () => client.destroy());
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
});
server.listen(Number(listenPort), "127.0.0.1", () => console.log(`forwarder listening on 127.0.0.1:${listenPort}${publisher ? " (JetStream ack per message)" : ""}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
