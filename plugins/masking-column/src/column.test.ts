import { test } from "node:test";
import assert from "node:assert/strict";
import { matchColumn } from "@gatehouse/masking";
import plugin, { columnRulesFromConfig, columnTagsFromConfig } from "./index.js";

test("rules from config: table.column, pattern, tag; specific rules first", () => {
  const rules = columnRulesFromConfig({
    rules: [
      { pattern: "(^|_)phone$", entity: "PHONE" },
      { tag: "secret", strategy: "null" },
      { column: "customers.email", entity: "EMAIL", strategy: "partial" },
      { column: "public.customers.notes", scan: true },
      { table: "customers", column: "ssn", entity: "US_SSN", strategy: "hash" },
    ],
  });
  assert.deepEqual(
    rules.map((r) => r.match),
    [
      { table: "customers", column: "email" },
      { table: "public.customers", column: "notes" },
      { table: "customers", column: "ssn" },
      { tag: "secret" },
      { columnPattern: "(^|_)phone$" },
    ],
  );
  assert.deepEqual(rules[0]!.strategy, { kind: "partial", keepLast: 4 });
  assert.equal(rules[1]!.scan, true);
  assert.equal(rules[1]!.entity, "TEXT");
  assert.equal(rules[3]!.entity, "SECRET");
  const tags = columnTagsFromConfig({ "customers.api_token": "Secret" });
  assert.equal(matchColumn({ table: "customers", column: "api_token" }, rules, tags)?.strategy?.kind, "null");
  assert.equal(matchColumn({ table: "customers", column: "mobile_phone" }, rules, tags)?.entity, "PHONE");
  assert.equal(matchColumn({ table: "customers", column: "name" }, rules, tags), undefined);
});

test("builtin name patterns", () => {
  const rules = plugin.columnRules!({ builtinPatterns: true });
  const entity = (column: string) => matchColumn({ table: "t", column }, rules, {})?.entity;
  assert.equal(entity("email"), "EMAIL");
  assert.equal(entity("billing_email"), "EMAIL");
  assert.equal(entity("phone_number"), "PHONE");
  assert.equal(entity("ssn"), "US_SSN");
  assert.equal(entity("card_number"), "CREDIT_CARD");
  assert.equal(entity("iban"), "IBAN");
  assert.equal(entity("password"), "SECRET");
  assert.equal(entity("email_verified_at") ?? "none", "none");
  assert.equal(entity("name") ?? "none", "none");
});

test("config errors name the rule and the fix", () => {
  assert.throws(() => columnRulesFromConfig({ rules: [{ entity: "X" }] }), /rules\[0\]: needs column, pattern or tag/);
  assert.throws(() => columnRulesFromConfig({ rules: [{ column: "a.b" }] }), /rules\[0\]: entity is required/);
  assert.throws(() => columnRulesFromConfig({ rules: [{ tag: "public" }] }), /tag must be one of pii, confidential, secret/);
  assert.throws(() => columnRulesFromConfig({ rules: [{ column: "a", entity: "X", strategy: "shred" }] }), /rules\[0\]: unknown masking strategy "shred"/);
  assert.throws(() => columnRulesFromConfig({ rules: [{ pattern: "([", entity: "X" }] }), /not a valid regular expression/);
  assert.throws(() => columnRulesFromConfig({ rules: [{ column: "t.c", table: "u", entity: "X" }] }), /either in column/);
  assert.throws(() => columnTagsFromConfig({ "t.c": "internal" }), /column tag of "t.c" is "internal"/);
  assert.throws(() => columnTagsFromConfig(["x"]), /must map/);
});
