// Structured logs (pino). Anything that could carry a secret is redacted by path;
// code must still never put tokens, passwords or query results in a log line.
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(service: string, level = process.env.GATEHOUSE_LOG_LEVEL ?? "info"): Logger {
  return pino({
    name: service,
    level,
    base: { service, pid: process.pid },
    redact: {
      paths: ["password", "token", "*.password", "*.token", "authorization", "*.authorization", "params", "*.params"],
      censor: "[REDACTED]",
    },
  });
}
