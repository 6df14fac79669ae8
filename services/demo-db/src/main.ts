#!/usr/bin/env node
// node services/demo-db/dist/main.js [--config FILE]
import { parseArgs } from "node:util";
import { configPath, createLogger, loadConfig, onShutdown } from "@gatehouse/runtime";
import { startDemoDb } from "./server.js";
import { rawDemoDbSettings } from "./config-file.js";

const log = createLogger("demo-db");
try {
  const { values } = parseArgs({ options: { config: { type: "string" } }, strict: true });
  const file = configPath(values.config);
  const config = loadConfig(file);
  const raw = rawDemoDbSettings(file);
  const envPort = process.env.GATEHOUSE_DEMO_DB_PORT;
  const db = await startDemoDb(config, {
    log,
    ...(raw.host ? { host: raw.host } : {}),
    ...(raw.port !== undefined && !envPort ? { port: raw.port } : {}),
  });
  onShutdown(log, () => db.stop());
  log.info({ host: db.host, port: db.port, dir: db.dir, database: "postgres", user: "postgres" }, "ready");
} catch (e) {
  log.fatal({ err: e }, `demo database failed to start: ${(e as Error).message}`);
  process.exit(1);
}
