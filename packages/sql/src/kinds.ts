// The closed set of statement kinds the classifier can produce, and the action
// groups each belongs to. The policy service uses the groups as Cedar action
// parents (`action in Gatehouse::Action::"sql:read"`), and the shipped Cedar
// schema must declare exactly these actions (a test enforces it).

/** PostgreSQL ObjectType ("OBJECT_MATVIEW") -> the name used in kinds ("materialized_view"). */
const OBJECT_NAMES: Record<string, string> = {
  MATVIEW: "materialized_view",
  FDW: "foreign_data_wrapper",
  LARGEOBJECT: "large_object",
  STATISTIC_EXT: "statistics",
  TABCONSTRAINT: "table_constraint",
  DOMCONSTRAINT: "domain_constraint",
  OPCLASS: "operator_class",
  OPFAMILY: "operator_family",
  TSCONFIGURATION: "text_search_configuration",
  TSDICTIONARY: "text_search_dictionary",
  TSPARSER: "text_search_parser",
  TSTEMPLATE: "text_search_template",
  DEFACL: "default_privileges",
};

// Every PostgreSQL ObjectType (libpg-query 18 / @pgsql/types).
const OBJECT_TYPES = [
  "ACCESS_METHOD", "AGGREGATE", "AMOP", "AMPROC", "ATTRIBUTE", "CAST", "COLUMN", "COLLATION", "CONVERSION",
  "DATABASE", "DEFAULT", "DEFACL", "DOMAIN", "DOMCONSTRAINT", "EVENT_TRIGGER", "EXTENSION", "FDW",
  "FOREIGN_SERVER", "FOREIGN_TABLE", "FUNCTION", "INDEX", "LANGUAGE", "LARGEOBJECT", "MATVIEW", "OPCLASS",
  "OPERATOR", "OPFAMILY", "PARAMETER_ACL", "POLICY", "PROCEDURE", "PUBLICATION", "PUBLICATION_NAMESPACE",
  "PUBLICATION_REL", "ROLE", "ROUTINE", "RULE", "SCHEMA", "SEQUENCE", "SUBSCRIPTION", "STATISTIC_EXT",
  "TABCONSTRAINT", "TABLE", "TABLESPACE", "TRANSFORM", "TRIGGER", "TSCONFIGURATION", "TSDICTIONARY",
  "TSPARSER", "TSTEMPLATE", "TYPE", "USER_MAPPING", "VIEW",
];

/** "OBJECT_MATVIEW" -> "materialized_view"; unknown/absent -> "object". */
export function objectName(objectType: unknown): string {
  if (typeof objectType !== "string" || !objectType.startsWith("OBJECT_")) return "object";
  const raw = objectType.slice("OBJECT_".length);
  return OBJECT_NAMES[raw] ?? raw.toLowerCase();
}

const OBJECTS = [...OBJECT_TYPES.map((t) => objectName(`OBJECT_${t}`)), "object"];

export const READ_KINDS = ["select", "show", "explain", "declare_cursor", "fetch", "move", "close", "copy_to"];
export const WRITE_KINDS = ["insert", "update", "delete", "merge", "copy_from"];
export const TRANSACTION_KINDS = [
  "begin", "commit", "rollback", "savepoint", "release", "rollback_to_savepoint",
  "prepare_transaction", "commit_prepared", "rollback_prepared", "set_constraints",
];
export const SESSION_KINDS = ["set", "show", "reset", "discard", "listen", "unlisten", "notify", "prepare", "execute", "deallocate"];
// Server-wide or privilege-changing operations, and ones that run arbitrary code.
export const ADMIN_KINDS = [
  "alter_system", "create_role", "alter_role", "drop_role", "grant", "revoke", "grant_role", "revoke_role",
  "alter_default_privileges", "drop_owned", "reassign_owned", "vacuum", "analyze", "cluster", "reindex",
  "checkpoint", "load", "lock", "call", "do",
];
// Schema changes besides create_*/alter_*/drop_* (those are generated below).
const EXTRA_DDL_KINDS = [
  "truncate", "create_table_as", "comment", "security_label", "refresh_materialized_view", "import_foreign_schema",
];

const GENERATED_DDL = OBJECTS.flatMap((o) => [`create_${o}`, `alter_${o}`, `drop_${o}`]);

/** Action groups (without the "sql:" prefix), in the order they are declared in the schema. */
export const ACTION_GROUPS = ["read", "write", "ddl", "transaction", "session", "admin"] as const;
export type ActionGroup = (typeof ACTION_GROUPS)[number];

/** Every kind the classifier can produce ("other" is the fallback). */
export const SQL_KINDS: readonly string[] = [
  ...new Set([
    ...READ_KINDS, ...WRITE_KINDS, ...TRANSACTION_KINDS, ...SESSION_KINDS, ...ADMIN_KINDS,
    ...EXTRA_DDL_KINDS, ...GENERATED_DDL, "other",
  ]),
].sort();

const KIND_SET = new Set(SQL_KINDS);

export function isKnownKind(kind: string): boolean {
  return KIND_SET.has(kind);
}

/** Groups of a kind, e.g. "delete" -> ["write"]; "alter_system" -> ["admin"]; "other" -> []. */
export function groupsOfKind(kind: string): ActionGroup[] {
  const groups: ActionGroup[] = [];
  if (READ_KINDS.includes(kind)) groups.push("read");
  if (WRITE_KINDS.includes(kind)) groups.push("write");
  if (ADMIN_KINDS.includes(kind)) groups.push("admin");
  else if (EXTRA_DDL_KINDS.includes(kind) || /^(create|alter|drop)_/.test(kind)) groups.push("ddl");
  if (TRANSACTION_KINDS.includes(kind)) groups.push("transaction");
  if (SESSION_KINDS.includes(kind)) groups.push("session");
  return groups;
}

/** Cedar action ids a kind's action belongs to: its groups plus "all". */
export function actionParents(kind: string): string[] {
  return [...groupsOfKind(kind).map((g) => `sql:${g}`), "all"];
}
