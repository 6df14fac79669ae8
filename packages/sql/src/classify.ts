// Statement classification with the real PostgreSQL parser (libpg-query): one
// Statement per statement of the text, never by substring, so comments, string
// literals, casing and quoting cannot hide or fake a statement.
//
// Conventions a policy author relies on:
// - kind: lower snake case from the parse node ("delete", "drop_table", "alter_system"),
//   always one of SQL_KINDS; unknown nodes become "other" with flag "node:<NodeName>".
// - EXPLAIN ANALYZE <stmt> executes <stmt>, so it is classified as <stmt> (kind "delete"
//   for EXPLAIN ANALYZE DELETE ...) with flag "explain_analyze". Any ANALYZE option counts,
//   even "ANALYZE false" (fail closed). Plain EXPLAIN is kind "explain", flag "explain:<inner kind>".
// - PREPARE p AS <stmt> is classified as <stmt> with flag "prepare": the statement runs later
//   through EXECUTE p, whose text no longer says what it does, so it is decided here.
// - hasWhere: a WHERE clause is present on a top-level UPDATE/DELETE. A clause that is only a
//   constant or a bind parameter ("WHERE true", "WHERE $1", "WHERE 't'::bool") counts as
//   ABSENT: PostgreSQL's fingerprint drops constants, so such a text has the same fingerprint
//   as the unbounded statement and must get the same decision. Any other predicate counts as
//   present ("WHERE 1=1" and "WHERE NOT false" too): selectivity is not knowable from syntax.
// - fingerprint: PostgreSQL's fingerprint plus a digest of the classification. The raw
//   fingerprint ignores constants, schema names ("s.t" = "r.t") and trailing digits of table
//   names ("t_2024" = "t_2025"); adding the digest guarantees that two texts with the same
//   fingerprint have the same classification, so it is safe as a decision-cache key.
// - Data-modifying statements nested anywhere (CTEs, COPY (query), rules) are listed in
//   nestedWrites, and add flags "nested_delete_without_where"/"nested_update_without_where".
import { createHash } from "node:crypto";
import { fingerprintSync, parseSync } from "libpg-query";
import type { Statement } from "@gatehouse/proto";
import { isKnownKind, objectName } from "./kinds.js";

export interface Classification {
  statements: Statement[];
  fingerprint: string;
  /** Empty when the text parsed. */
  parseError: string;
}

type Obj = Record<string, unknown>;

const DML = new Set(["InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"]);
const DML_KIND: Record<string, string> = { InsertStmt: "insert", UpdateStmt: "update", DeleteStmt: "delete", MergeStmt: "merge" };

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** The single "NodeName" key of a wrapped node ({"DeleteStmt": {...}}). */
function unwrap(node: unknown): [string, Obj] | undefined {
  if (!isObj(node)) return undefined;
  const keys = Object.keys(node);
  if (keys.length !== 1) return undefined;
  const body = node[keys[0]!];
  return isObj(body) ? [keys[0]!, body] : undefined;
}

function rangeVarName(rv: Obj): string {
  return [rv.catalogname, rv.schemaname, rv.relname].filter((p): p is string => typeof p === "string" && p !== "").join(".");
}

function stringList(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((n) => (isObj(n) && isObj(n.String) && typeof n.String.sval === "string" ? n.String.sval : "")).filter(Boolean);
}

const TRANSACTION: Record<string, string> = {
  TRANS_STMT_BEGIN: "begin",
  TRANS_STMT_START: "begin",
  TRANS_STMT_COMMIT: "commit",
  TRANS_STMT_ROLLBACK: "rollback",
  TRANS_STMT_SAVEPOINT: "savepoint",
  TRANS_STMT_RELEASE: "release",
  TRANS_STMT_ROLLBACK_TO: "rollback_to_savepoint",
  TRANS_STMT_PREPARE: "prepare_transaction",
  TRANS_STMT_COMMIT_PREPARED: "commit_prepared",
  TRANS_STMT_ROLLBACK_PREPARED: "rollback_prepared",
};

// Node names whose kind does not depend on fields.
const FIXED: Record<string, string> = {
  InsertStmt: "insert", UpdateStmt: "update", DeleteStmt: "delete", MergeStmt: "merge", TruncateStmt: "truncate",
  DoStmt: "do", VariableShowStmt: "show", ListenStmt: "listen", UnlistenStmt: "unlisten", NotifyStmt: "notify",
  ExecuteStmt: "execute", DeallocateStmt: "deallocate", CallStmt: "call", LockStmt: "lock", DiscardStmt: "discard",
  DeclareCursorStmt: "declare_cursor", ClosePortalStmt: "close", CheckPointStmt: "checkpoint", LoadStmt: "load",
  ClusterStmt: "cluster", ReindexStmt: "reindex", RefreshMatViewStmt: "refresh_materialized_view",
  ConstraintsSetStmt: "set_constraints", CreateStmt: "create_table", ViewStmt: "create_view", IndexStmt: "create_index",
  CreateSchemaStmt: "create_schema", CreatedbStmt: "create_database", CreateRoleStmt: "create_role",
  CreateSeqStmt: "create_sequence", CreateExtensionStmt: "create_extension", CreateTrigStmt: "create_trigger",
  CreateEventTrigStmt: "create_event_trigger", CompositeTypeStmt: "create_type", CreateEnumStmt: "create_type",
  CreateRangeStmt: "create_type", CreateDomainStmt: "create_domain", CreatePolicyStmt: "create_policy",
  RuleStmt: "create_rule", CreateForeignTableStmt: "create_foreign_table", CreateForeignServerStmt: "create_foreign_server",
  CreateFdwStmt: "create_foreign_data_wrapper", CreateUserMappingStmt: "create_user_mapping",
  CreateTableSpaceStmt: "create_tablespace", CreatePLangStmt: "create_language", CreateAmStmt: "create_access_method",
  CreateOpClassStmt: "create_operator_class", CreateOpFamilyStmt: "create_operator_family", CreateStatsStmt: "create_statistics",
  CreateConversionStmt: "create_conversion", CreateCastStmt: "create_cast", CreateTransformStmt: "create_transform",
  CreatePublicationStmt: "create_publication", CreateSubscriptionStmt: "create_subscription",
  ImportForeignSchemaStmt: "import_foreign_schema", CommentStmt: "comment", SecLabelStmt: "security_label",
  AlterDomainStmt: "alter_domain", AlterSeqStmt: "alter_sequence", AlterEnumStmt: "alter_type", AlterTypeStmt: "alter_type",
  AlterExtensionStmt: "alter_extension", AlterExtensionContentsStmt: "alter_extension",
  AlterFdwStmt: "alter_foreign_data_wrapper", AlterForeignServerStmt: "alter_foreign_server",
  AlterUserMappingStmt: "alter_user_mapping", DropUserMappingStmt: "drop_user_mapping", AlterPolicyStmt: "alter_policy",
  AlterEventTrigStmt: "alter_event_trigger", AlterOpFamilyStmt: "alter_operator_family", AlterOperatorStmt: "alter_operator",
  AlterStatsStmt: "alter_statistics", AlterCollationStmt: "alter_collation",
  AlterTSDictionaryStmt: "alter_text_search_dictionary", AlterTSConfigurationStmt: "alter_text_search_configuration",
  AlterPublicationStmt: "alter_publication", AlterSubscriptionStmt: "alter_subscription",
  DropSubscriptionStmt: "drop_subscription", AlterTableSpaceOptionsStmt: "alter_tablespace",
  DropTableSpaceStmt: "drop_tablespace", AlterDatabaseStmt: "alter_database", AlterDatabaseSetStmt: "alter_database",
  AlterDatabaseRefreshCollStmt: "alter_database", DropdbStmt: "drop_database", AlterRoleStmt: "alter_role",
  AlterRoleSetStmt: "alter_role", DropRoleStmt: "drop_role", AlterDefaultPrivilegesStmt: "alter_default_privileges",
  DropOwnedStmt: "drop_owned", ReassignOwnedStmt: "reassign_owned", AlterSystemStmt: "alter_system",
};

/** Kind of one top-level node, from its name and fields. */
function kindOf(name: string, body: Obj): string {
  const fixed = FIXED[name];
  if (fixed) return fixed;
  switch (name) {
    case "SelectStmt":
      return body.intoClause ? "create_table_as" : "select"; // SELECT INTO creates a table
    case "CopyStmt":
      return body.is_from ? "copy_from" : "copy_to";
    case "VariableSetStmt":
      return body.kind === "VAR_RESET" || body.kind === "VAR_RESET_ALL" ? "reset" : "set";
    case "TransactionStmt":
      return TRANSACTION[String(body.kind)] ?? "other";
    case "VacuumStmt":
      return body.is_vacuumcmd ? "vacuum" : "analyze";
    case "FetchStmt":
      return body.ismove ? "move" : "fetch";
    case "CreateTableAsStmt":
      return body.objtype === "OBJECT_MATVIEW" ? "create_materialized_view" : "create_table_as";
    case "CreateFunctionStmt":
      return body.is_procedure ? "create_procedure" : "create_function";
    case "DefineStmt":
      return `create_${objectName(body.kind)}`;
    case "DropStmt":
      return `drop_${objectName(body.removeType)}`;
    case "AlterTableStmt":
    case "AlterTableMoveAllStmt":
    case "AlterFunctionStmt":
      return `alter_${objectName(body.objtype)}`;
    case "RenameStmt":
      return `alter_${objectName(body.renameType)}`;
    case "AlterObjectSchemaStmt":
    case "AlterOwnerStmt":
    case "AlterObjectDependsStmt":
      return `alter_${objectName(body.objectType)}`;
    case "GrantStmt":
      return body.is_grant ? "grant" : "revoke";
    case "GrantRoleStmt":
      return body.is_grant ? "grant_role" : "revoke_role";
    case "ExplainStmt":
      return "explain";
    case "PrepareStmt":
      return "prepare";
    default:
      return "other";
  }
}

/** Facts gathered by walking every node below a statement. */
interface Walk {
  tables: Set<string>;
  functions: Set<string>;
  nestedWrites: Set<string>;
  writeTables: Set<string>;
  flags: Set<string>;
}

// Iterative walk over all keys (no recursion: a deeply nested tree cannot overflow the stack).
function walk(root: unknown, into: Walk): void {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (const x of v) if (typeof x === "object" && x !== null) stack.push(x);
      continue;
    }
    if (!isObj(v)) continue;
    // A RangeVar appears wrapped ({"RangeVar": {...}}) or as a typed field ("relation": {...}).
    if (typeof v.relname === "string") into.tables.add(rangeVarName(v));
    for (const [key, child] of Object.entries(v)) {
      if (typeof child !== "object" || child === null) continue;
      if ((key === "FuncCall" || key === "funccall") && isObj(child)) {
        const parts = stringList(child.funcname).map((p) => p.toLowerCase());
        if (parts.length > 0) {
          into.functions.add(parts.join("."));
          into.functions.add(parts[parts.length - 1]!);
        }
      } else if (DML.has(key) && isObj(child)) {
        const kind = DML_KIND[key]!;
        into.nestedWrites.add(kind);
        if (isObj(child.relation)) into.writeTables.add(rangeVarName(child.relation));
        if ((kind === "delete" || kind === "update") && !isPredicate(child.whereClause)) into.flags.add(`nested_${kind}_without_where`);
      }
      stack.push(child);
    }
  }
}

/** A WHERE clause that is more than a constant or a bind parameter (see hasWhere above). */
function isPredicate(where: unknown): boolean {
  let node = unwrap(where);
  while (node?.[0] === "TypeCast") node = unwrap(node[1].arg);
  if (!node) return false;
  return node[0] !== "A_Const" && node[0] !== "ParamRef";
}

function explainAnalyzes(body: Obj): boolean {
  if (!Array.isArray(body.options)) return false;
  return body.options.some((o) => {
    const d = unwrap(o);
    return d?.[0] === "DefElem" && (d[1].defname === "analyze" || d[1].defname === "analyse");
  });
}

/** Classify one top-level parse node (exported for tests of the generic walk). */
export function classifyNode(stmt: unknown, location: number, length: number): Statement {
  let node = unwrap(stmt);
  const flags = new Set<string>();
  // Wrappers whose inner statement is (or will be) executed are classified as that statement.
  for (let depth = 0; node && depth < 4; depth++) {
    const [name, body] = node;
    const inner = unwrap(body.query);
    if (name === "ExplainStmt" && inner) {
      if (!explainAnalyzes(body)) break;
      flags.add("explain_analyze");
    } else if (name === "PrepareStmt" && inner) {
      flags.add("prepare");
    } else break;
    node = inner;
  }
  if (!node) {
    return statement("other", { flags: [...flags, "node:unknown"], location, length });
  }
  const [name, body] = node;
  let kind = kindOf(name, body);
  if (!isKnownKind(kind) || kind === "other") {
    flags.add(`node:${name}`);
    kind = "other";
  }
  const w: Walk = { tables: new Set(), functions: new Set(), nestedWrites: new Set(), writeTables: new Set(), flags };
  walk(body, w);

  // Top-level write targets.
  if (DML.has(name) && isObj(body.relation)) w.writeTables.add(rangeVarName(body.relation));
  if (name === "TruncateStmt" && Array.isArray(body.relations)) {
    for (const r of body.relations) {
      const u = unwrap(r);
      if (u?.[0] === "RangeVar") w.writeTables.add(rangeVarName(u[1]));
    }
  }
  if (name === "CopyStmt") {
    if (body.is_from && isObj(body.relation)) w.writeTables.add(rangeVarName(body.relation));
    flags.add(body.is_program ? "copy_program" : typeof body.filename === "string" ? "copy_file" : "copy_stdio");
    flags.add(body.is_from ? "copy_from" : "copy_to");
  }
  if (name === "DropStmt" && Array.isArray(body.objects)) {
    // DROP TABLE a, s.b: objects are name lists, not RangeVars.
    for (const o of body.objects) {
      const u = unwrap(o);
      if (u?.[0] === "List") {
        const n = stringList(u[1].items).join(".");
        if (n) w.tables.add(n);
      }
    }
  }
  if (name === "DoStmt") flags.add("do_block");
  if (name === "SelectStmt" && body.intoClause) flags.add("select_into");
  if (name === "SelectStmt" && Array.isArray(body.lockingClause) && body.lockingClause.length > 0) flags.add("row_lock");
  if (name === "VariableSetStmt" || name === "VariableShowStmt") {
    flags.add(`setting:${typeof body.name === "string" ? body.name.toLowerCase() : "all"}`);
  }
  if (name === "ExplainStmt") {
    const inner = unwrap(body.query);
    if (inner) flags.add(`explain:${kindOf(inner[0], inner[1])}`);
  }
  const hasWhere = (name === "UpdateStmt" || name === "DeleteStmt") && isPredicate(body.whereClause);
  return statement(kind, {
    tables: [...w.tables],
    writeTables: [...w.writeTables],
    hasWhere,
    functions: [...w.functions],
    nestedWrites: [...w.nestedWrites],
    flags: [...flags],
    location,
    length,
  });
}

function statement(kind: string, s: Partial<Statement>): Statement {
  return {
    kind,
    action: `sql:${kind}`,
    tables: [],
    writeTables: [],
    hasWhere: false,
    functions: [],
    nestedWrites: [],
    flags: [],
    location: 0,
    length: 0,
    ...s,
  };
}

/** PostgreSQL's fingerprint + digest of everything a policy can see (not positions). */
function decisionFingerprint(text: string, statements: Statement[]): string {
  const facts = statements.map((s) => [
    s.kind, [...s.tables].sort(), [...s.writeTables].sort(), s.hasWhere, [...s.functions].sort(),
    [...s.nestedWrites].sort(), [...s.flags].sort(),
  ]);
  const digest = createHash("sha256").update(JSON.stringify(facts)).digest("hex").slice(0, 16);
  return `${fingerprintSync(text)}-${digest}`;
}

/**
 * Classify every statement of `text`. Call `await initSql()` once before.
 * A text that does not parse yields no statements and the parser's message.
 * An empty text (or only comments/semicolons) yields no statements and no error.
 * `fingerprint: false` skips computing the fingerprint (a second parse) when not needed.
 */
export function classifySql(text: string, opts: { fingerprint?: boolean } = {}): Classification {
  if (text.trim() === "") return { statements: [], fingerprint: "", parseError: "" };
  let parsed: { stmts?: Array<{ stmt?: unknown; stmt_location?: number; stmt_len?: number }> };
  try {
    parsed = parseSync(text) as typeof parsed;
  } catch (e) {
    return { statements: [], fingerprint: "", parseError: e instanceof Error ? e.message : String(e) };
  }
  try {
    const total = Buffer.byteLength(text, "utf8");
    const statements = (parsed.stmts ?? []).map((s) => {
      const location = s.stmt_location ?? 0;
      const length = s.stmt_len && s.stmt_len > 0 ? s.stmt_len : total - location;
      return classifyNode(s.stmt, location, length);
    });
    const wantFingerprint = opts.fingerprint ?? true;
    return { statements, fingerprint: wantFingerprint && statements.length > 0 ? decisionFingerprint(text, statements) : "", parseError: "" };
  } catch (e) {
    // Never let an unexpected tree shape crash a caller: unclassifiable means denied.
    return { statements: [], fingerprint: "", parseError: `could not classify the statement: ${e instanceof Error ? e.message : String(e)}` };
  }
}
