// A reference point for the PostgreSQL bench, not part of Gatehouse: a Node.js
// process that copies bytes between each client and its own upstream connection
// and does nothing else (no parsing, identity, policy, audit or recording). What
// it reaches is the ceiling for any gateway written in Node.js on this machine,
// so the suite runs it in the same run as direct, Gatehouse and pgbouncer.
//
// usage: node forwarder.js LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT
import { createServer, connect } from "node:net";

const [listenPort, upstreamHost, upstreamPort] = process.argv.slice(2);
if (!listenPort || !upstreamHost || !upstreamPort) {
  console.error("usage: node forwarder.js LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT");
  process.exit(2);
}

const server = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host: upstreamHost, port: Number(upstreamPort), noDelay: true });
  // Plain write per chunk, as a proxy that must see every message would do;
  // backpressure is not needed for pgbench's one-statement-at-a-time traffic.
  client.on("data", (b) => upstream.write(b));
  upstream.on("data", (b) => client.write(b));
  client.on("close", () => upstream.destroy());
  upstream.on("close", () => client.destroy());
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
});
server.listen(Number(listenPort), "127.0.0.1", () => console.log(`forwarder listening on 127.0.0.1:${listenPort}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
