#!/usr/bin/env node
// node services/idp/dist/main.js [--config FILE]
import { parseArgs } from "node:util";
import { createLogger, loadConfig, onShutdown } from "@gatehouse/runtime";
import { startDevIdp } from "./service.js";

const log = createLogger("idp");
try {
  const { values } = parseArgs({ options: { config: { type: "string" } }, strict: true });
  const config = loadConfig(values.config);
  const idp = await startDevIdp(config, { log });
  log.info({ issuer: idp.issuer, address: idp.address, audience: config.idp.audience }, "ready");
  onShutdown(log, () => idp.stop());
} catch (e) {
  log.fatal({ err: (e as Error).message }, "identity provider failed to start");
  process.exitCode = 1;
}
