// Upstream login with the gateway's credentials: SCRAM-SHA-256, MD5, cleartext
// and TLS against a private PostgreSQL cluster configured for them.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ConnectionConfig } from "@gatehouse/runtime";
import { FakeGateway, startTestListener, type TestListener } from "./testing/fake-gateway.js";
import { psql } from "./testing/clients.js";
import { privateClusterUnavailable, startPrivateCluster, type PrivateCluster } from "./testing/private-cluster.js";

const PASSWORD = "s3cret-Ünïcode-pässword";
const skip = privateClusterUnavailable();

describe("upstream authentication", { skip }, () => {
  let cluster: PrivateCluster;
  let t: TestListener;
  before(async () => {
    cluster = await startPrivateCluster([
      "hostssl all gh_tls_only 127.0.0.1/32 scram-sha-256",
      "host all gh_scram 127.0.0.1/32 scram-sha-256",
      "host all gh_md5 127.0.0.1/32 md5",
      "host all gh_clear 127.0.0.1/32 password",
    ]);
    await cluster.sql(`SET password_encryption = 'scram-sha-256'; CREATE ROLE gh_scram LOGIN PASSWORD '${PASSWORD}'; CREATE ROLE gh_tls_only LOGIN PASSWORD '${PASSWORD}'; CREATE ROLE gh_clear LOGIN PASSWORD '${PASSWORD}'`);
    await cluster.sql(`SET password_encryption = 'md5'; CREATE ROLE gh_md5 LOGIN PASSWORD '${PASSWORD}'`);
    const conn = (user: string, sslmode = "prefer"): ConnectionConfig => ({
      protocol: "postgres",
      upstream: { host: "127.0.0.1", port: cluster.port, database: "postgres", user, sslmode },
      tags: {},
    });
    const gw = new FakeGateway({
      scram: conn("gh_scram", "disable"),
      md5: conn("gh_md5", "disable"),
      clear: conn("gh_clear", "require"),
      tls: conn("gh_tls_only", "require"),
      wrong: conn("gh_scram", "disable"),
      nopass: conn("gh_scram", "disable"),
      plainonly: { protocol: "postgres", upstream: { host: "127.0.0.1", port: 5432, database: "test", user: "postgres", sslmode: "require" }, tags: {} },
    });
    for (const name of ["scram", "md5", "clear", "tls"]) gw.passwords[name] = PASSWORD;
    gw.passwords.wrong = "not-the-password";
    t = await startTestListener({}, gw);
  });
  after(async () => {
    await t?.stop();
    await cluster?.stop();
  });

  const whoami = "SELECT current_user || '|' || coalesce((SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()), '?')";

  for (const [name, user, tls] of [
    ["scram", "gh_scram", "false"],
    ["md5", "gh_md5", "false"],
    ["clear", "gh_clear", "true"],
    ["tls", "gh_tls_only", "true"],
  ] as const) {
    it(`logs in upstream with ${name}`, async () => {
      const r = await psql(t.port, ["-c", whoami], { extra: `sslmode=disable dbname=${name}` });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), `${user}|${tls}`);
    });
  }

  it("a wrong upstream password is reported without leaking any password", async () => {
    const r = await psql(t.port, ["-c", "SELECT 1"], { extra: "sslmode=disable dbname=wrong" });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /FATAL:  gatehouse: could not log in to upstream "wrong": password authentication failed for user "gh_scram"/);
    assert.ok(!r.stderr.includes("not-the-password"));
    assert.ok(!JSON.stringify(t.gw.events).includes("not-the-password"));
  });

  it("a missing upstream password is reported with the setting to fix", async () => {
    const r = await psql(t.port, ["-c", "SELECT 1"], { extra: "sslmode=disable dbname=nopass" });
    assert.match(r.stderr, /could not log in to upstream "nopass": upstream asked for a password but none is configured \(set the connection's upstream.passwordEnv\)/);
  });

  it("sslmode=require against an upstream without TLS fails clearly", async () => {
    const r = await psql(t.port, ["-c", "SELECT 1"], { extra: "sslmode=disable dbname=plainonly" });
    assert.match(r.stderr, /could not connect to upstream "plainonly": upstream does not accept TLS but sslmode=require/);
  });
});
