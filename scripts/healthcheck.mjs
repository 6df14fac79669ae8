#!/usr/bin/env node
// Container healthcheck without curl/nc in the image:
//   healthcheck.mjs tcp HOST PORT   -> 0 when a TCP connection opens
//   healthcheck.mjs http URL        -> 0 on a 2xx answer
import { connect } from "node:net";

const [kind, a, b] = process.argv.slice(2);
const fail = (why) => {
  process.stderr.write(`unhealthy: ${why}\n`);
  process.exit(1);
};
setTimeout(() => fail("no answer within 3 s"), 3000).unref();

if (kind === "tcp" && a && b) {
  const s = connect({ host: a, port: Number(b) }, () => {
    s.end();
    process.exit(0);
  });
  s.on("error", (e) => fail(`${a}:${b}: ${e.message}`));
} else if (kind === "http" && a) {
  fetch(a).then(
    (r) => (r.ok ? process.exit(0) : fail(`${a}: HTTP ${r.status}`)),
    (e) => fail(`${a}: ${e.message}`),
  );
} else {
  fail("usage: healthcheck.mjs tcp HOST PORT | http URL");
}
