#!/usr/bin/env node
// `gatehouse`: one entry point, one file per command group under commands/.
import type { CliCommand } from "./command.js";

const commands: Record<string, () => Promise<{ default: CliCommand }>> = {
  up: () => import("./commands/up.js"),
  token: () => import("./commands/token.js"),
  policy: () => import("./commands/policy.js"),
  audit: () => import("./commands/audit.js"),
  evidence: () => import("./commands/evidence.js"),
  approvals: () => import("./commands/approvals.js"),
  login: () => import("./commands/login.js"),
  replay: () => import("./commands/replay.js"),
};

const USAGE = `NAME
    gatehouse - access gateway for AI agents and CI jobs

SYNOPSIS
    gatehouse <command> [options]
    gatehouse <command> --help

DESCRIPTION
    Gatehouse sits between automated clients and production resources: it
    verifies the client's OIDC token, decides every statement with Cedar
    policies, and records the statement and its decision in a durable audit
    trail (JetStream, then ClickHouse) before it reaches the target.

COMMANDS
    up                    start the whole local stack (NATS, embedded ClickHouse,
                          dev identity provider, demo database, services)
    token                 print an access token from the local dev identity provider
    policy validate DIR   check Cedar policies against the Gatehouse schema
    policy test FILE...   run policy test files (expected decisions for sample commands)
    audit query "SQL"     run a read-only query on the audit store
    audit verify          check the audit trail's hash chain and signed checkpoints
    audit prove EVENT_ID  print an inclusion proof (check it with audit check-proof)
    evidence --from DATE --to DATE --out DIR
                          SOC 2 evidence pack: HTML report, CSVs, signed manifest
    evidence verify DIR   check an evidence pack's files and signature
    approvals list|show|approve|deny|grants|revoke
                          decide commands held for approval; standing grants
    login                 save the access token the CLI acts as
    replay SESSION        print or play a recorded session; --against DSN re-runs a
                          SQL session on a sandbox and compares the results

GLOBAL OPTIONS
    --config FILE         configuration file (default: $GATEHOUSE_CONFIG, else ./gatehouse.yaml)
    -h, --help            show help; \`gatehouse <command> --help\` for a command

ENVIRONMENT
    GATEHOUSE_CONFIG      configuration file
    GATEHOUSE_TOKEN       access token for \`gatehouse approvals\` (else the one saved by login)
    GATEHOUSE_API_URL     REST API for \`gatehouse approvals\` (default approvals.consoleUrl)
    NATS_URL              the bus (overrides nats.url)
    CLICKHOUSE_URL        a ClickHouse server for the audit store (default: embedded chDB)
    GATEHOUSE_DATA_DIR    runtime state directory (default .gatehouse)
    GATEHOUSE_PG_PORT, GATEHOUSE_API_PORT, GATEHOUSE_IDP_PORT
                          listener, web console/API and dev IdP ports

EXAMPLES
    npm start                                   # or: npx gatehouse up
    PGPASSWORD=$(npx gatehouse token --sub agent-1 --groups agents) \\
      psql "host=127.0.0.1 port=15432 user=agent-1 dbname=demo"
    npx gatehouse audit query "SELECT * FROM denied_commands LIMIT 10"

EXIT STATUS
    0 on success, 1 on failure, 2 on a usage error.
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
