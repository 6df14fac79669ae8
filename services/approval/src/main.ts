#!/usr/bin/env node
// node services/approval/dist/main.js [--config FILE]
import { parseArgs } from "node:util";
import { createLogger, loadConfig, onShutdown } from "@gatehouse/runtime";
import { startApprovalService } from "./service.js";

const log = createLogger("approval");
try {
  const { values } = parseArgs({ options: { config: { type: "string" } }, strict: true });
  const config = loadConfig(values.config ? values.config : undefined);
  const svc = await startApprovalService(config, { log });
  log.info({ grpcPort: svc.grpcPort, bucket: config.approvals.bucket, tickets: svc.store.tickets.size, grants: svc.store.grants.size, webhooks: config.approvals.webhooks.length }, "ready");
  onShutdown(log, () => svc.stop());
} catch (e) {
  log.fatal({ err: (e as Error).message }, "approval service failed to start");
  process.exitCode = 1;
}
