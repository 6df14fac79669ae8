// Embedded ClickHouse (chDB, in-process). One data directory per process: the
// engine is a process-wide singleton, so close() before opening another path.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Session } from "chdb";
import type { Engine } from "./engine.js";

export function openChdbEngine(path: string): Engine {
  try {
    mkdirSync(path, { recursive: true });
  } catch (e) {
    throw new Error(`cannot create the embedded ClickHouse directory ${path}: ${(e as Error).message} (set audit.chdbPath)`);
  }
  let session: Session;
  try {
    session = new Session(path);
  } catch (e) {
    throw new Error(
      `cannot open embedded ClickHouse (chDB) at ${path}: ${(e as Error).message} ` +
        "(only one chDB data directory can be open per process; is another audit store open here?)",
    );
  }
  // chDB's insert() takes text formats only; RowBinary goes through a file in the
  // data directory (page cache, removed after the insert) and INSERT ... FROM INFILE.
  let inserts = 0;
  return {
    kind: "chdb",
    async insertRowBinary(table, columns, body) {
      const file = join(path, `.insert-${process.pid}-${++inserts}.rowbinary`);
      writeFileSync(file, body);
      try {
        await session.queryAsync(`INSERT INTO ${table} (${columns.join(", ")}) FROM INFILE '${file.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}' FORMAT RowBinary`);
      } finally {
        rmSync(file, { force: true });
      }
    },
    async exec(sql) {
      await session.queryAsync(sql);
    },
    async insertCompactRows(table, columns, body) {
      await session.insert({ table, columns: [...columns], values: typeof body === "string" ? Buffer.from(body, "utf8") : body, format: "JSONCompactEachRow" });
    },
    async selectCompact(sql, params) {
      if (params && Object.keys(params).length > 0) {
        return (await session.queryBindAsync(sql, params, { format: "JSONCompactEachRowWithNames" })).text();
      }
      return (await session.queryAsync(sql, { format: "JSONCompactEachRowWithNames" })).text();
    },
    async useDatabase(database) {
      await session.queryAsync(`USE ${database}`);
    },
    async close() {
      session.close();
    },
  };
}
