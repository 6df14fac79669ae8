#!/usr/bin/env node
// `gatehouse`: one entry point, one file per command group under commands/.
import type { CliCommand } from "./command.js";

const commands: Record<string, () => Promise<{ default: CliCommand }>> = {
  up: () => import("./commands/up.js"),
  token: () => import("./commands/token.js"),
  policy: () => import("./commands/policy.js"),
  audit: () => import("./commands/audit.js"),
};

const USAGE = `gatehouse - access gateway for AI agents and CI jobs

Usage:
  gatehouse <command> [options]

Commands:
  up                      start the whole local stack (NATS, ClickHouse, IdP, services, demo database)
  token                   mint an access token from the local dev identity provider
  policy validate|test    check Cedar policies, run policy test files
  audit query "SQL"       run a read-only query on the audit store

Global options:
  --config FILE           configuration file (default: $GATEHOUSE_CONFIG, else ./gatehouse.yaml)
  -h, --help              show help for a command: gatehouse <command> --help

Environment:
  GATEHOUSE_CONFIG, NATS_URL, CLICKHOUSE_URL, GATEHOUSE_DATA_DIR,
  GATEHOUSE_PG_PORT, GATEHOUSE_API_PORT, GATEHOUSE_IDP_PORT
`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "-h" || name === "--help" || name === "help") {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`gatehouse: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  const cmd = (await load()).default;
  if (rest.includes("-h") || rest.includes("--help")) {
    process.stdout.write(cmd.usage);
    return 0;
  }
  return cmd.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`gatehouse: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
