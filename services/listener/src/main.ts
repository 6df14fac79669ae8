#!/usr/bin/env node
// node services/listener/dist/main.js [--config FILE]
import { parseArgs } from "node:util";
import { createLogger, loadConfig, onShutdown } from "@gatehouse/runtime";
import { startListenerService } from "./service.js";

const log = createLogger("listener");
try {
  const { values } = parseArgs({ options: { config: { type: "string" } }, strict: true });
  const config = loadConfig(values.config);
  const svc = await startListenerService(config, { log });
  log.info({ listeners: svc.listeners.map((l) => ({ protocol: l.protocol, address: `${l.host}:${l.port}` })), listenerId: svc.context.listenerId }, "ready");
  onShutdown(log, () => svc.stop());
} catch (e) {
  log.fatal({ err: (e as Error).message }, "listener failed to start");
  process.exitCode = 1;
}
