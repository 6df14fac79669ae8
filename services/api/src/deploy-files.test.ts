// Deploy files cannot run here (no Docker engine, no Kubernetes), so check what
// can be checked for real: YAML parses, references resolve, configs load with the
// real config loader, nats.conf passes nats-server's own check, the compose demo
// SQL runs on the real PostgreSQL, and the Helm templates only use values that exist.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import { resolveConfig } from "@gatehouse/runtime";
import { repoRoot } from "@gatehouse/testing";

const run = promisify(execFile);
const read = (p: string) => readFileSync(join(repoRoot, p), "utf8");
const SERVICES = ["idp", "demo-db", "policy", "audit", "approval", "listener", "api"];
type Obj = Record<string, any>;

test("root gatehouse.yaml loads and matches the demo stack", () => {
  const raw = parse(read("gatehouse.yaml")) as Obj;
  const saved = { ...process.env };
  for (const k of Object.keys(process.env)) if (k.startsWith("GATEHOUSE_") || k === "NATS_URL" || k === "CLICKHOUSE_URL") delete process.env[k];
  try {
    const c = resolveConfig(raw, repoRoot);
    assert.equal(c.listeners.postgres!.port, 15432);
    assert.equal(c.identity.issuers[0]!.issuer, "http://127.0.0.1:15081");
    assert.equal(c.identity.issuers[0]!.audience, "gatehouse");
    assert.equal(c.connections.demo!.upstream.port, raw.demoDb.port, "the demo connection points at the demo database");
    assert.deepEqual(c.connections.demo!.tags, { env: "dev", classification: "confidential" });
    assert.ok(readdirSync(c.policies).some((f) => f.endsWith(".cedar")), `${c.policies} holds *.cedar policies`);
    assert.equal(c.nats.url, "nats://127.0.0.1:14222");
  } finally {
    process.env = saved;
  }
});

test("docker-compose.yml: services, images, mounts, healthchecks and dependencies are consistent", () => {
  const compose = parse(read("docker-compose.yml"), { merge: true }) as Obj;
  const services = compose.services as Obj;
  for (const name of ["nats", "clickhouse", "postgres", "idp", "policy", "audit", "listener", "api"]) {
    assert.ok(services[name], `service ${name} is defined`);
  }
  for (const [name, svc] of Object.entries(services) as Array<[string, Obj]>) {
    assert.ok(svc.image || svc.build, `${name} has an image or a build`);
    assert.ok(svc.healthcheck?.test, `${name} has a healthcheck`);
    for (const dep of Object.keys(svc.depends_on ?? {})) {
      assert.ok(services[dep], `${name} depends on ${dep}, which is defined`);
      assert.equal(svc.depends_on[dep].condition, "service_healthy");
    }
    for (const v of (svc.volumes ?? []) as string[]) {
      const src = v.split(":")[0]!;
      if (src.startsWith("./")) assert.ok(existsSync(join(repoRoot, src)), `${name} mounts ${src}, which exists`);
      else assert.ok(compose.volumes && src in compose.volumes, `${name} uses volume ${src}, which is declared`);
    }
    if (svc.build) {
      assert.equal(svc.command.length, 1);
      assert.ok(SERVICES.includes(svc.command[0]), `${name} runs a known service (${svc.command[0]})`);
      assert.ok(existsSync(join(repoRoot, "services", svc.command[0], "src/main.ts")));
      assert.equal(svc.environment.NATS_URL, "nats://nats:4222");
    }
  }
  assert.match(services.audit.environment.CLICKHOUSE_URL, /^http:\/\/gatehouse:.+@clickhouse:8123$/);
  assert.ok(services.clickhouse.volumes.some((v: string) => v.startsWith("./deploy/clickhouse/schema.sql:/docker-entrypoint-initdb.d/")));
  assert.ok(services.nats.volumes.some((v: string) => v.startsWith("./deploy/nats/nats.conf:")));
  assert.equal(services.listener.environment.DEMO_PG_PASSWORD, "${DEMO_PG_PASSWORD:-gatehouse-demo}");
});

test("compose gatehouse.yaml loads; the listener's upstream password comes from the env var compose sets", () => {
  const raw = parse(read("deploy/compose/gatehouse.yaml")) as Obj;
  const c = resolveConfig(raw, join(repoRoot, "deploy/compose"));
  const demo = c.connections.demo!;
  assert.equal(demo.upstream.host, "postgres");
  assert.equal(demo.upstream.passwordEnv, "DEMO_PG_PASSWORD");
  assert.equal(c.identity.issuers[0]!.jwksUri, "http://idp:15081/jwks");
  assert.equal(c.identity.issuers[0]!.issuer, raw.idp.issuer);
  assert.equal(c.listeners.postgres!.host, "0.0.0.0");
});

test("Dockerfile and container entry point agree", () => {
  const dockerfile = read("Dockerfile");
  assert.match(dockerfile, /^FROM node:20[^\n]* AS build$/m);
  assert.match(dockerfile, /npm ci/);
  assert.match(dockerfile, /ENTRYPOINT \["\/app\/scripts\/container-entrypoint.sh"\]/);
  accessSync(join(repoRoot, "scripts/container-entrypoint.sh"), constants.X_OK);
  const entry = read("scripts/container-entrypoint.sh");
  for (const s of SERVICES) assert.ok(entry.includes(s), `the entry point knows ${s}`);
  assert.ok(read(".dockerignore").includes("node_modules"));
});

test("nats.conf passes nats-server's configuration check", async () => {
  const bin = existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";
  const { stdout, stderr } = await run(bin, ["-c", join(repoRoot, "deploy/nats/nats.conf"), "-t"]);
  assert.match(stdout + stderr, /is valid/);
  assert.match(read("deploy/nats/nats.conf"), /jetstream\s*\{/);
});

test("the compose demo SQL seeds 1000 customers with Luhn-valid cards on real PostgreSQL", async () => {
  const db = `gh_compose_seed_${process.pid}`;
  const psql = (dbname: string, ...args: string[]) => run("psql", ["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-d", dbname, ...args], { timeout: 60_000 });
  await psql("postgres", "-c", `CREATE DATABASE ${db}`);
  try {
    await psql(db, "-q", "-f", join(repoRoot, "deploy/compose/postgres-init.sql"));
    const { stdout } = await psql(db, "-c", "SELECT count(*) FROM customers", "-c", "SELECT count(*) FROM orders", "-c", "SELECT card_number FROM customers");
    const [customers, orders, ...cards] = stdout.trim().split("\n");
    assert.equal(customers, "1000");
    assert.equal(orders, "3000");
    const luhn = (n: string) => [...n].reverse().reduce((s, ch, i) => s + (i % 2 ? ((+ch * 2) > 9 ? +ch * 2 - 9 : +ch * 2) : +ch), 0) % 10 === 0;
    assert.equal(cards.length, 1000);
    for (const c of cards) assert.ok(luhn(c), `card ${c} is Luhn-valid`);
  } finally {
    await psql("postgres", "-c", `DROP DATABASE IF EXISTS ${db}`);
  }
});

/** Dotted paths present in a parsed YAML object (every prefix too). */
function paths(obj: unknown, prefix = "", out = new Set<string>()): Set<string> {
  if (obj && typeof obj === "object" && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) {
      const p = prefix ? `${prefix}.${k}` : k;
      out.add(p);
      paths(v, p, out);
    }
  }
  return out;
}

test("Helm chart: Chart.yaml/values.yaml parse and templates only use values that exist", () => {
  const dir = join(repoRoot, "deploy/helm/gatehouse");
  const chart = parse(readFileSync(join(dir, "Chart.yaml"), "utf8")) as Obj;
  assert.equal(chart.apiVersion, "v2");
  assert.equal(chart.name, "gatehouse");
  assert.match(chart.version, /^\d+\.\d+\.\d+/);
  const values = parse(readFileSync(join(dir, "values.yaml"), "utf8")) as Obj;
  const known = paths(values);
  const templates = readdirSync(join(dir, "templates"));
  for (const t of ["deployment-policy.yaml", "deployment-audit.yaml", "deployment-listener.yaml", "deployment-api.yaml", "service-listener.yaml", "service-api.yaml", "configmap.yaml"]) {
    assert.ok(templates.includes(t), `template ${t} exists`);
  }
  const defines = new Set<string>();
  const texts = templates.map((f) => [f, readFileSync(join(dir, "templates", f), "utf8")] as const);
  for (const [, text] of texts) for (const m of text.matchAll(/define "([^"]+)"/g)) defines.add(m[1]!);
  let refs = 0;
  for (const [file, text] of texts) {
    for (const m of text.matchAll(/\$?\.Values((?:\.[A-Za-z_]\w*)+)/g)) {
      refs++;
      const p = m[1]!.slice(1);
      assert.ok(known.has(p), `${file} uses .Values.${p}, which values.yaml does not define`);
    }
    for (const m of text.matchAll(/include "([^"]+)"/g)) assert.ok(defines.has(m[1]!), `${file} includes undefined template ${m[1]}`);
    // Every block action has its {{ end }}.
    const opens = [...text.matchAll(/\{\{-?\s*(if|range|with|define)\b/g)].length;
    const ends = [...text.matchAll(/\{\{-?\s*end\s*-?\}\}/g)].length;
    assert.equal(opens, ends, `${file}: ${opens} blocks opened, ${ends} closed`);
  }
  assert.ok(refs > 20, "the check saw the templates' value references");
  // Secrets are referenced, never inlined.
  const audit = texts.find(([f]) => f === "deployment-audit.yaml")![1];
  assert.match(audit, /secretKeyRef/);
  assert.ok(values.upstreamSecrets.every((s: Obj) => s.env && s.secretName && s.key));
  const envs = Object.values(values.config.connections as Obj).map((c: Obj) => c.upstream.passwordEnv).filter(Boolean);
  for (const e of envs) assert.ok(values.upstreamSecrets.some((s: Obj) => s.env === e), `passwordEnv ${e} has a secret reference`);
});
