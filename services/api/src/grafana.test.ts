// deploy/grafana cannot run here (no Docker), so check what can be checked for
// real: the provisioning files and the dashboard JSON parse and agree with each
// other and with docker-compose.yml, and every panel's SQL, with Grafana's macros
// replaced by concrete values, runs on the real schema in embedded ClickHouse and
// returns the rows the console shows for the same data.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { AuditEvent, Command, Decision, Effect } from "@gatehouse/proto";
import { openAuditStore, type AuditStore } from "@gatehouse/audit-store";
import { repoRoot } from "@gatehouse/testing";

interface Target {
  refId: string;
  rawSql: string;
  datasource: { uid: string; type: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: Target[];
  datasource?: { uid: string; type: string };
}

const read = (p: string) => readFileSync(join(repoRoot, p), "utf8");
const dashboard = JSON.parse(read("deploy/grafana/dashboards/gatehouse-audit.json")) as { uid: string; panels: Panel[] };
const tmp = mkdtempSync(join(tmpdir(), "gatehouse-grafana-"));
let store: AuditStore;
const FROM = Date.UTC(2026, 10, 20, 0, 0, 0) / 1000;
const TO = FROM + 86_400;

/** Grafana ClickHouse plugin macros -> what they expand to for the range [FROM, TO]. */
function expand(sql: string): string {
  return sql
    .replace(/\$__timeFilter\((\w+)\)/g, (_m, c: string) => `${c} >= toDateTime(${FROM}) AND ${c} <= toDateTime(${TO})`)
    .replace(/\$__timeInterval\((\w+)\)/g, (_m, c: string) => `toStartOfInterval(toDateTime(${c}), INTERVAL 3600 second)`)
    .replace(/\$__fromTime/g, `toDateTime(${FROM})`)
    .replace(/\$__toTime/g, `toDateTime(${TO})`);
}

before(async () => {
  store = await openAuditStore({ chdbPath: join(tmp, "clickhouse") });
  const t = (FROM + 3600) * 1_000_000;
  const ident = { subject: "agent-g", name: "agent-g", groups: ["agents"], kind: "agent" };
  const ev = [
    AuditEvent.fromPartial({ id: "g1:1", timeUnixMicros: t, sessionId: "g1", connection: "pg", protocol: "postgres", identity: ident, body: { $case: "sessionStart", sessionStart: { clientAddress: "127.0.0.1:1" } } }),
    AuditEvent.fromPartial({ id: "g1:2", timeUnixMicros: t + 1, sessionId: "g1", connection: "pg", protocol: "postgres", identity: ident, body: { $case: "command", command: { command: Command.fromPartial({ id: "g1:c1", text: "DROP TABLE x", seq: 1 }), decision: Decision.fromPartial({ effect: Effect.EFFECT_DENY, policyIds: ["forbid-drop"] }) } } }),
    AuditEvent.fromPartial({ id: "g1:3", timeUnixMicros: t + 2, sessionId: "g1", connection: "pg", protocol: "postgres", identity: ident, body: { $case: "masking", masking: { commandId: "g1:c1", column: "customers.email", entity: "EMAIL", strategy: "partial", count: 4, source: "result" } } }),
    AuditEvent.fromPartial({ id: "approval:ticket:tk:ticket_created", timeUnixMicros: t + 3, sessionId: "g1", connection: "pg", identity: ident, body: { $case: "approval", approval: { kind: "ticket_created", ticket: { id: "tk", state: 1, requester: ident } } } }),
    AuditEvent.fromPartial({ id: "approval:ticket:tk:approved", timeUnixMicros: t + 2_000_003, sessionId: "g1", connection: "pg", identity: { subject: "alice", groups: ["approvers"] }, body: { $case: "approval", approval: { kind: "approved", ticket: { id: "tk", state: 2, requester: ident, votes: [{ approver: { subject: "alice" }, approve: true }] } } } }),
  ].map((event, i) => ({ event, streamSeq: i + 1 }));
  await store.insertEvents(ev);
  await store.insertEvents(ev); // re-insert: the panels must not double count
});

after(async () => {
  await store?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test("the dashboard JSON parses and every query panel uses the provisioned ClickHouse data source", () => {
  const ds = parse(read("deploy/grafana/provisioning/datasources/clickhouse.yaml")) as { datasources: Array<{ uid: string; type: string; jsonData: Record<string, unknown> }> };
  const source = ds.datasources[0]!;
  assert.equal(source.type, "grafana-clickhouse-datasource");
  assert.equal(source.jsonData.defaultDatabase, "gatehouse");
  const queryPanels = dashboard.panels.filter((p) => p.type !== "row");
  assert.ok(queryPanels.length >= 12, `${queryPanels.length} panels`);
  assert.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, "panel ids are unique");
  for (const p of queryPanels) {
    assert.equal(p.datasource?.uid, source.uid, p.title);
    assert.equal(p.targets?.length, 1, p.title);
    assert.equal(p.targets![0]!.datasource.uid, source.uid, p.title);
  }
  // The console's four dashboards are all there.
  const rows = dashboard.panels.filter((p) => p.type === "row").map((p) => p.title);
  assert.deepEqual(rows, ["Access by identity", "Denied commands", "Approvals", "Masking"]);
});

test("every panel's SQL runs on the real schema (chDB) with the macros expanded, and counts each event once", async () => {
  const results = new Map<string, Record<string, unknown>[]>();
  for (const p of dashboard.panels.filter((x) => x.type !== "row")) {
    const sql = expand(p.targets![0]!.rawSql);
    assert.doesNotMatch(sql, /\$__/, `${p.title}: every macro is expanded`);
    const r = await store.query(sql, 1000).catch((e: Error) => assert.fail(`${p.title}: ${e.message}\n${sql}`));
    results.set(p.title, r.rows);
  }
  assert.deepEqual(results.get("Denied by policy"), [{ policy_id: "forbid-drop", denied: 1 }]);
  assert.deepEqual(results.get("Denied by identity"), [{ identity_subject: "agent-g", denied: 1 }]);
  assert.equal(results.get("Top identities")![0]!.statements, 1);
  assert.deepEqual(results.get("Masked values by entity and strategy"), [{ entity_strategy: "EMAIL (partial)", values_masked: 4 }]);
  const outcome = results.get("Tickets by outcome, time to decision (ms)")!;
  assert.equal(outcome[0]!.state, "approved");
  assert.equal(outcome[0]!.tickets, 1);
  assert.equal(outcome[0]!.median_ms, 2000);
  assert.deepEqual(results.get("Approvals by approver"), [{ approver: "alice", approvals: 1 }]);
});

test("docker-compose.yml: the grafana service provisions both, from files that exist", () => {
  const compose = parse(read("docker-compose.yml"), { merge: true }) as { services: Record<string, any>; volumes: Record<string, unknown> };
  const g = compose.services.grafana;
  assert.ok(g, "grafana service is defined");
  assert.match(g.environment.GF_INSTALL_PLUGINS, /grafana-clickhouse-datasource/);
  assert.equal(g.depends_on.clickhouse.condition, "service_healthy");
  const mounts = new Map((g.volumes as string[]).map((v) => [v.split(":")[1]!, v.split(":")[0]!]));
  assert.equal(mounts.get("/etc/grafana/provisioning/datasources"), "./deploy/grafana/provisioning/datasources");
  assert.equal(mounts.get("/etc/grafana/provisioning/dashboards"), "./deploy/grafana/provisioning/dashboards");
  for (const [, src] of mounts) {
    if (src.startsWith("./")) assert.ok(existsSync(join(repoRoot, src)), `${src} exists`);
    else assert.ok(src in compose.volumes, `volume ${src} is declared`);
  }
  // The dashboard provider reads the directory the dashboards are mounted at.
  const provider = parse(read("deploy/grafana/provisioning/dashboards/gatehouse.yaml")) as { providers: Array<{ options: { path: string } }> };
  const path = provider.providers[0]!.options.path;
  assert.equal(mounts.get(path), "./deploy/grafana/dashboards");
  assert.ok(existsSync(join(repoRoot, "deploy/grafana/dashboards/gatehouse-audit.json")));
  // The data source's password comes from the environment compose sets.
  assert.equal(g.environment.CLICKHOUSE_PASSWORD, "${CLICKHOUSE_PASSWORD:-gatehouse-dev}");
});
