// gatehouse audit query "SQL": read-only SQL over the audit store, through the
// audit service's Query RPC on NATS.
import { connectCli } from "../bus.js";
import type { NatsConnection } from "@nats-io/transport-node";
import { AuditServiceService } from "@gatehouse/proto";
import { configPath, loadConfig, natsClient, RpcError, Status } from "@gatehouse/runtime";
import { parseOptions, type CliCommand } from "../command.js";
import { INTEGRITY_USAGE, runCheckProof, runExportCheckpoints, runKeys, runProve, runVerify } from "./audit-integrity.js";

const USAGE = `NAME
    gatehouse audit - query and verify the audit trail

SYNOPSIS
    gatehouse audit query "SQL" [--json] [--max-rows N] [--config FILE]
    gatehouse audit verify [--from POS|TIME] [--to POS|TIME] [--public-key KEY]... [--json]
    gatehouse audit prove EVENT_ID [--out FILE]
    gatehouse audit check-proof FILE --public-key KEY
    gatehouse audit export-checkpoints [--out FILE]
    gatehouse audit keys

DESCRIPTION
    query runs one read-only SQL statement (SELECT, WITH, SHOW, DESCRIBE or EXPLAIN)
    on the audit store (ClickHouse, or the embedded chDB of the local stack)
    through the audit service, and prints the result as a table.

    The store refuses anything that writes: INSERT, ALTER, DROP, a second
    statement after ';', INTO OUTFILE, table functions such as file() or url(),
    and SETTINGS clauses.

    Tables and views (database "gatehouse"):
      events                   one row per audit record; type is session_start,
                               session_end, command, decision, result,
                               auth_failure or undecodable. A statement has one
                               'command' row and one 'decision' row.
      commands_with_decisions  each statement with its decision and result
      denied_commands          denied statements, newest first

    Read events with FINAL (FROM gatehouse.events FINAL) when exact counts
    matter: a row written twice after a crash is collapsed only by FINAL.

    Tamper evidence: the audit service links every event into a SHA-256 hash
    chain in JetStream order and seals signed checkpoints (Ed25519, RFC 6962
    Merkle root) to ClickHouse and to the JetStream stream
    GATEHOUSE_AUDIT_CHECKPOINTS, where deletes and purges are denied.
${INTEGRITY_USAGE}
OPTIONS
    --json          query: print one JSON object per row (JSON lines) instead of
                    a table; verify: print the report as JSON
    --max-rows N    return at most N rows (default 1000, at most 100000); a note
                    on standard error says when the result was cut
    --config FILE   configuration file (default: $GATEHOUSE_CONFIG, else
                    ./gatehouse.yaml); nats.url says where the audit service is
    -h, --help      show this text

EXAMPLES
    The last 20 denied commands:
        gatehouse audit query "SELECT time, identity_name, connection, command_text, reason
            FROM gatehouse.denied_commands LIMIT 20"

    Statements per identity and decision today:
        gatehouse audit query "SELECT identity_subject, effect, count() AS n
            FROM gatehouse.commands_with_decisions
            WHERE time >= today() GROUP BY ALL ORDER BY n DESC"

    Failed logins as JSON lines:
        gatehouse audit query --json "SELECT time, client_address, error_code, error_message
            FROM gatehouse.events FINAL WHERE type = 'auth_failure' ORDER BY time DESC"

    Verify the whole trail with the keys you were given:
        gatehouse audit verify --public-key audit-signing.pub

    Prove one statement to a third party:
        gatehouse audit prove s-3f2a:7 --out proof.json
        gatehouse audit check-proof proof.json --public-key audit-signing.pub

EXIT STATUS
    0   the query ran; the trail or proof verified
    1   the query was refused or failed, verification found a problem, or the
        audit service did not answer
    2   usage error
`;

const command: CliCommand = {
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    let parsed;
    try {
      parsed = parseOptions(
        args,
        {
          json: { type: "boolean" },
          "max-rows": { type: "string" },
          config: { type: "string" },
          from: { type: "string" },
          to: { type: "string" },
          "public-key": { type: "string", multiple: true },
          out: { type: "string" },
        },
        USAGE,
      );
    } catch (e) {
      process.stderr.write(`gatehouse audit: ${(e as Error).message}`);
      return 2;
    }
    const [sub, sql, ...extra] = parsed.positionals;
    if (sub && INTEGRITY_SUBCOMMANDS.has(sub)) return runIntegrity(sub, parsed.positionals.slice(1), parsed.values);
    if (sub !== "query") {
      process.stderr.write(`gatehouse audit: ${sub ? `unknown subcommand "${sub}"` : "missing subcommand"}; use: gatehouse audit query "SQL" | verify | prove EVENT_ID | check-proof FILE | export-checkpoints | keys\n\n${USAGE}`);
      return 2;
    }
    if (!sql || extra.length > 0) {
      process.stderr.write(`gatehouse audit query: give the SQL as one quoted argument, e.g. gatehouse audit query "SELECT count() FROM gatehouse.events FINAL"\n`);
      return 2;
    }
    let maxRows = 1000;
    const rawMax = parsed.values["max-rows"];
    if (typeof rawMax === "string") {
      maxRows = Number(rawMax);
      if (!Number.isInteger(maxRows) || maxRows < 1 || maxRows > 100_000) {
        process.stderr.write(`gatehouse audit query: --max-rows must be an integer from 1 to 100000, got "${rawMax}"\n`);
        return 2;
      }
    }
    const config = loadConfig(configPath(parsed.values.config as string | undefined));
    const url = config.nats.url;
    let nc: NatsConnection;
    try {
      nc = await connectCli(url);
    } catch (e) {
      process.stderr.write(`gatehouse audit query: ${(e as Error).message}\n`);
      return 1;
    }
    try {
      const client = natsClient(nc, AuditServiceService, { timeoutMs: 30_000 });
      const res = await client.query({ sql, maxRows, params: {} });
      const rows = res.rows.map((l) => JSON.parse(l) as Record<string, unknown>);
      if (parsed.values.json) {
        for (const l of res.rows) process.stdout.write(`${l}\n`);
      } else {
        process.stdout.write(formatTable(res.columns, rows));
        process.stdout.write(`(${rows.length} row${rows.length === 1 ? "" : "s"})\n`);
      }
      if (res.truncated) process.stderr.write(`gatehouse audit query: result cut at ${maxRows} rows; raise --max-rows or add LIMIT/WHERE\n`);
      return 0;
    } catch (e) {
      if (e instanceof RpcError && (e.code === Status.UNAVAILABLE || e.code === Status.DEADLINE_EXCEEDED) && /not running|no responders|did not answer/.test(e.message)) {
        process.stderr.write(
          `gatehouse audit query: no audit service answered on NATS at ${url}: start it with \`npm start\` or \`node services/audit/dist/main.js\`\n`,
        );
      } else {
        process.stderr.write(`gatehouse audit query: ${(e as Error).message}\n`);
      }
      return 1;
    } finally {
      await nc.close();
    }
  },
};
export default command;

const INTEGRITY_SUBCOMMANDS = new Set(["verify", "prove", "check-proof", "export-checkpoints", "keys"]);

async function runIntegrity(sub: string, args: string[], values: Record<string, unknown>): Promise<number> {
  const usageError = (msg: string) => {
    process.stderr.write(`gatehouse audit ${sub}: ${msg}\n`);
    return 2;
  };
  const expect = (n: number, what: string) => (args.length === n ? undefined : usageError(args.length < n ? `missing ${what}` : `unexpected argument "${args[n]}"`));
  try {
    if (sub === "check-proof") {
      const bad = expect(1, "the proof FILE");
      if (bad !== undefined) return bad;
      const keys = (values["public-key"] as string[] | undefined) ?? [];
      if (keys.length !== 1) return usageError("give the signer's public key with --public-key KEY (PEM, base64 SPKI, or a file)");
      return runCheckProof(args[0]!, keys[0]!, process.stdout);
    }
    const config = loadConfig(configPath(values.config as string | undefined));
    switch (sub) {
      case "verify": {
        const bad = expect(0, "");
        return bad ?? (await runVerify(config, values, process.stdout, process.stderr));
      }
      case "prove": {
        const bad = expect(1, "the EVENT_ID");
        return bad ?? (await runProve(config, args[0]!, values, process.stdout));
      }
      case "export-checkpoints": {
        const bad = expect(0, "");
        return bad ?? (await runExportCheckpoints(config, values, process.stdout, process.stderr));
      }
      default: {
        const bad = expect(0, "");
        return bad ?? (await runKeys(config, process.stdout));
      }
    }
  } catch (e) {
    process.stderr.write(`gatehouse audit ${sub}: ${(e as Error).message}\n`);
    return 1;
  }
}

const MAX_CELL = 60;

function cell(v: unknown): string {
  const s = v === null || v === undefined ? "NULL" : typeof v === "string" ? v : JSON.stringify(v);
  const flat = s.replace(/\s+/g, " ");
  return flat.length > MAX_CELL ? `${flat.slice(0, MAX_CELL - 1)}…` : flat;
}

/** A plain text table; long values are cut (use --json for the full values). */
export function formatTable(columns: string[], rows: Record<string, unknown>[]): string {
  if (columns.length === 0) return "";
  const cells = rows.map((r) => columns.map((c) => cell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd() + "\n";
  return line(columns) + line(widths.map((w) => "-".repeat(w))) + cells.map(line).join("");
}
