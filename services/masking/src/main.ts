#!/usr/bin/env node
// node services/masking/dist/main.js [--config FILE]
import { parseArgs } from "node:util";
import { configPath, createLogger, loadConfig, onShutdown } from "@gatehouse/runtime";
import { startMaskingService } from "./service.js";

const log = createLogger("masking");
try {
  const { values } = parseArgs({ options: { config: { type: "string" } }, strict: true });
  const config = loadConfig(configPath(values.config));
  const svc = await startMaskingService(config, { log });
  log.info({ keyId: svc.engine.key.id }, "ready");
  onShutdown(log, () => svc.stop());
} catch (e) {
  log.fatal({ err: (e as Error).message }, "masking service failed to start");
  process.exitCode = 1;
}
