// Loads deploy/clickhouse/schema.sql, the one source of the audit schema.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Location of schema.sql (this file is packages/audit-store/dist/schema.js at run time). */
export const SCHEMA_PATH = fileURLToPath(new URL("../../../deploy/clickhouse/schema.sql", import.meta.url));

/** The schema's statements, with the database renamed when it is not "gatehouse". */
export function schemaStatements(database = "gatehouse", path = SCHEMA_PATH): string[] {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) {
    throw new Error(`audit database name "${database}" is not a plain identifier (letters, digits, underscore)`);
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`cannot read the audit schema ${path}: ${(e as Error).message}`);
  }
  // Drop comment lines; the file holds no ';' inside strings, so it splits on ';'.
  const sql = text
    .split("\n")
    .filter((l) => !l.trim().startsWith("--"))
    .join("\n")
    .replace(/\bgatehouse\./g, `${database}.`)
    .replace(/DATABASE IF NOT EXISTS gatehouse\b/, `DATABASE IF NOT EXISTS ${database}`);
  return sql
    .split(";")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}
