#!/usr/bin/env node
// node services/audit/dist/main.js [--config FILE]
import { configPath, createLogger, loadConfig, onShutdown } from "@gatehouse/runtime";
import { startAuditService } from "./start.js";

const log = createLogger("audit");

function configArg(argv: string[]): string | undefined {
  const i = argv.indexOf("--config");
  if (i >= 0) {
    const v = argv[i + 1];
    if (!v) throw new Error("--config needs a file name");
    return v;
  }
  return argv.find((a) => a.startsWith("--config="))?.slice("--config=".length);
}

try {
  const path = configArg(process.argv.slice(2));
  const config = loadConfig(configPath(path));
  const svc = await startAuditService(config, { log });
  onShutdown(log, () => svc.stop());
  log.info({ grpcPort: svc.grpcPort, store: svc.store.kind }, "ready");
} catch (e) {
  log.fatal({ err: (e as Error).message }, "audit service failed to start");
  process.exit(1);
}
