import { test } from "node:test";
import assert from "node:assert/strict";
import { MaskingServiceService, MaskStrategyKind, type MaskingPlan } from "@gatehouse/proto";
import { generateMaskKey, PgType, hashToken } from "@gatehouse/masking";
import { natsClient, RpcError } from "@gatehouse/runtime";
import { startNats } from "@gatehouse/testing";
import { startMaskingService } from "./service.js";

const plan: MaskingPlan = {
  columns: [
    { match: { table: "customers", column: "email", columnPattern: "", tag: "" }, entity: "EMAIL", strategy: { kind: MaskStrategyKind.MASK_STRATEGY_KIND_PARTIAL, keepLast: 4 }, scan: false },
    { match: { table: "", column: "ssn", columnPattern: "", tag: "" }, entity: "US_SSN", strategy: { kind: MaskStrategyKind.MASK_STRATEGY_KIND_HASH, keepLast: 0 }, scan: false },
    { match: { table: "", column: "", columnPattern: "", tag: "secret" }, entity: "SECRET", strategy: undefined, scan: false },
    { match: { table: "customers", column: "notes", columnPattern: "", tag: "" }, entity: "", strategy: undefined, scan: true },
  ],
  text: [{ entity: "*", strategy: { kind: MaskStrategyKind.MASK_STRATEGY_KIND_REDACT, keepLast: 0 } }],
  policyIds: ["p1"],
};

const cell = (s: string | null) => (s === null ? { value: Buffer.alloc(0), isNull: true } : { value: Buffer.from(s), isNull: false });

test("MaskingService over NATS: MaskRows and MaskText with the real recognizers", async () => {
  const nats = await startNats();
  const nc = await nats.connect();
  const key = generateMaskKey();
  const svc = await startMaskingService({ dataDir: "/nonexistent", nats: { url: nats.url } } as never, { nc, key });
  try {
    const client = natsClient(nc, MaskingServiceService, { timeoutMs: 10_000 });
    const columns = [
      { name: "id", table: "customers", tableOid: 0, columnAttr: 1, typeOid: PgType.int4 },
      { name: "email", table: "customers", tableOid: 0, columnAttr: 2, typeOid: PgType.text },
      { name: "ssn", table: "customers", tableOid: 0, columnAttr: 3, typeOid: PgType.text },
      { name: "api_key", table: "customers", tableOid: 0, columnAttr: 4, typeOid: PgType.text },
      { name: "notes", table: "customers", tableOid: 0, columnAttr: 5, typeOid: PgType.text },
    ];
    const res = await client.maskRows({
      plan,
      columns,
      columnTags: { "customers.api_key": "secret" },
      sessionId: "s1",
      rows: [
        { cells: [cell("1"), cell("ann@example.com"), cell("123-45-6780"), cell("k-1"), cell("call (415) 555-2671 or ann@example.com")] },
        { cells: [cell("2"), cell(null), cell(null), cell(null), cell("nothing")] },
      ],
    });
    const text = res.rows.map((r) => r.cells.map((c) => (c.isNull ? null : c.value.toString())));
    assert.deepEqual(text, [
      ["1", "a***@example.com", hashToken("123-45-6780", "US_SSN", key), "[REDACTED:SECRET]", "call [REDACTED:PHONE] or [REDACTED:EMAIL]"],
      ["2", null, null, null, "nothing"],
    ]);
    const actions = res.actions.map((a) => `${a.columnIndex}:${a.entity}:${a.strategy}:${a.count}`).sort();
    assert.deepEqual(actions, ["1:EMAIL:partial:1", "2:US_SSN:hash:1", "3:SECRET:redact:1", "4:EMAIL:redact:1", "4:PHONE:redact:1"]);
    assert.ok(!JSON.stringify(res.actions).includes("ann@"), "evidence carries no values");

    const t = await client.maskText({ plan, texts: ["WHERE ssn = '123-45-6780'", "select 1"], sessionId: "s1" });
    assert.deepEqual(t.texts, ["WHERE ssn = '[REDACTED:US_SSN]'", "select 1"]);
    assert.deepEqual(t.findings.map((f) => [f.textIndex, f.entity, f.start, f.end]), [[0, "US_SSN", 13, 24]]);

    // a malformed batch is refused with a reason, and the service keeps serving
    await assert.rejects(
      client.maskRows({ plan, columns, columnTags: {}, sessionId: "s1", rows: [{ cells: [cell("1")] }] }),
      (e: unknown) => e instanceof RpcError && /row 0 has 1 cells but 5 columns/.test(e.message),
    );
    const again = await client.maskText({ plan: undefined, texts: ["x@example.com"], sessionId: "" });
    assert.deepEqual(again.texts, ["[REDACTED:EMAIL]"], "no plan: every finding is redacted (fail closed)");
  } finally {
    await svc.stop();
    await nc.drain();
    await nats.stop();
  }
});

test("plugins load by module name with their config; bad plugins are named", async () => {
  const { loadMaskingPlugins, createScanner } = await import("@gatehouse/masking");
  const loaded = await loadMaskingPlugins([
    { module: "@gatehouse/plugin-masking-pii", config: { entities: ["EMAIL"], recognizers: [{ name: "emp", entity: "EMPLOYEE_ID", pattern: "\\bEMP-\\d{6}\\b", score: 0.9 }] } },
    { module: "@gatehouse/plugin-masking-column", config: { rules: [{ column: "customers.email", entity: "EMAIL" }] } },
  ]);
  assert.deepEqual(loaded.plugins, ["masking-pii", "masking-column"]);
  assert.deepEqual(loaded.columnRules.map((r) => r.match), [{ table: "customers", column: "email" }]);
  const s = createScanner(loaded.recognizers);
  assert.deepEqual(s.scan("EMP-123456 a@example.com 123-45-6780").map((f) => f.entity), ["EMPLOYEE_ID", "EMAIL"]);
  await assert.rejects(loadMaskingPlugins([{ module: "@gatehouse/no-such-plugin" }]), /masking plugin "@gatehouse\/no-such-plugin" cannot be loaded/);
  await assert.rejects(loadMaskingPlugins([{ module: "node:os" }]), /must default-export \{ name/);
  await assert.rejects(
    loadMaskingPlugins([{ module: "@gatehouse/plugin-masking-column", config: { rules: [{ tag: "public" }] } }]),
    /masking plugin masking-column \(@gatehouse\/plugin-masking-column\): masking-column config: rules\[0\]\.tag/,
  );
});
