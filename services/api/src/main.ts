#!/usr/bin/env node
// node services/api/dist/main.js [--config FILE]
import { parseArgs } from "node:util";
import { configPath, createLogger, loadConfig, onShutdown } from "@gatehouse/runtime";
import { startApiService } from "./service.js";

const log = createLogger("api");
try {
  const { values } = parseArgs({ options: { config: { type: "string" } }, strict: true });
  const config = loadConfig(configPath(values.config));
  const api = await startApiService(config, { log });
  onShutdown(log, () => api.stop());
  log.info({ url: api.url, nats: config.nats.url }, "ready");
} catch (e) {
  log.fatal({ err: (e as Error).message }, `api service failed to start: ${(e as Error).message}`);
  process.exit(1);
}
