// A ClickHouse server over HTTP (@clickhouse/client). Credentials go in the URL
// (http://user:password@host:8123) and are never logged.
import { createClient } from "@clickhouse/client";
import type { Engine } from "./engine.js";

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable URL)";
  }
}

export async function openServerEngine(url: string): Promise<Engine> {
  let client = createClient({ url, request_timeout: 30_000 });
  const ping = await client.ping();
  if (!ping.success) {
    await client.close();
    throw new Error(`cannot reach ClickHouse at ${redactUrl(url)}: ${(ping as { error?: Error }).error?.message ?? "ping failed"} (check audit.clickhouseUrl / CLICKHOUSE_URL)`);
  }
  return {
    kind: "clickhouse",
    async exec(sql) {
      await client.command({ query: sql });
    },
    async insertCompactRows(table, columns, body) {
      const rows = (typeof body === "string" ? body : body.toString("utf8"))
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as unknown[]);
      await client.insert({ table, values: rows, format: "JSONCompactEachRow", columns: [columns[0]!, ...columns.slice(1)] });
    },
    async selectCompact(sql, params) {
      const rs = await client.query({ query: sql, format: "JSONCompactEachRowWithNames", ...(params && Object.keys(params).length > 0 ? { query_params: params } : {}) });
      return rs.text();
    },
    async useDatabase(database) {
      // The HTTP interface takes the default database per client.
      const next = createClient({ url, request_timeout: 30_000, database });
      await client.close();
      client = next;
    },
    async close() {
      await client.close();
    },
  };
}
