// The demo database's own settings live under `demoDb:` in gatehouse.yaml, a key
// the shared config loader does not know (yet), so read it from the raw file.
import { existsSync, readFileSync } from "node:fs";
import { parse } from "yaml";

export function rawDemoDbSettings(file: string | undefined): { host?: string; port?: number } {
  if (!file || !existsSync(file)) return {};
  const raw = parse(readFileSync(file, "utf8")) as { demoDb?: { host?: unknown; port?: unknown } } | null;
  const d = raw?.demoDb;
  if (!d) return {};
  const out: { host?: string; port?: number } = {};
  if (typeof d.host === "string") out.host = d.host;
  if (d.port !== undefined) {
    if (typeof d.port !== "number" || !Number.isInteger(d.port) || d.port < 0 || d.port > 65535) {
      throw new Error(`${file}: demoDb.port must be a port number (got ${JSON.stringify(d.port)})`);
    }
    out.port = d.port;
  }
  return out;
}
