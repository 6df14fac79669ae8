// Embedded ClickHouse (chDB, in-process). One data directory per process: the
// engine is a process-wide singleton, so close() before opening another path.
import { mkdirSync } from "node:fs";
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
  return {
    kind: "chdb",
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
