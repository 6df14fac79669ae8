// `gatehouse policy validate|test`: formatting only; the work is in @gatehouse/policy-service.
import { formatProblem, runPolicyTests, validatePolicyDir, SCHEMA_PATH } from "@gatehouse/policy-service";
import { loadConfig } from "@gatehouse/runtime";
import { parseOptions, type CliCommand } from "../command.js";

const USAGE = `NAME
  gatehouse policy - check Cedar policies and run policy test files

SYNOPSIS
  gatehouse policy validate [DIR] [--config FILE]
  gatehouse policy test FILE...

DESCRIPTION
  validate  Parses every *.cedar file in DIR and validates it (Cedar strict mode)
            against the Gatehouse schema:
              ${SCHEMA_PATH}
            Prints each error and warning as FILE:LINE:COLUMN. DIR defaults to the
            "policies" directory of the configuration (--config, $GATEHOUSE_CONFIG,
            ./gatehouse.yaml; default ./policies).

  test      Runs policy test files (YAML). Each case names a principal, a connection,
            SQL and the expected effect; the SQL is classified with the PostgreSQL
            parser and decided exactly as the policy service would. Prints one line per
            case and a closing "N passed, N failed" line.

            policies: ./                 # policy dir, relative to the test file
            connections: { demo: { protocol: postgres, tags: { env: dev } } }
            cases:
              - name: agents can read customers
                principal: { subject: agent-1, groups: [agents] }
                connection: demo
                sql: SELECT * FROM customers WHERE id = 1
                expect: allow            # allow | deny | require_approval
                policy: agents-read      # optional: among the deciding policy ids

OPTIONS
  --config FILE   configuration file, for the default policy directory
  -h, --help      show this help

EXAMPLES
  gatehouse policy validate deploy/policies
  gatehouse policy test deploy/policies/demo.test.yaml

EXIT STATUS
  0  all policies valid / all cases passed
  1  validation errors / a failed case
  2  usage error
`;

async function validate(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, { config: { type: "string" } }, USAGE);
  if (positionals.length > 1) {
    process.stderr.write(`gatehouse policy validate: expected at most one directory, got ${positionals.length}\n\n${USAGE}`);
    return 2;
  }
  const dir = positionals[0] ?? loadConfig(typeof values.config === "string" ? values.config : undefined).policies;
  const report = validatePolicyDir(dir);
  for (const p of [...report.errors, ...report.warnings]) process.stdout.write(`${formatProblem(p)}\n`);
  if (report.files.length === 0) process.stdout.write(`${report.dir}: warning: no *.cedar files; every command will be denied\n`);
  const n = report.errors.length;
  process.stdout.write(
    n === 0
      ? `${report.dir}: ${report.policies.length} policies in ${report.files.length} files are valid (version ${report.version})\n`
      : `${report.dir}: ${n} error${n === 1 ? "" : "s"}\n`,
  );
  return n === 0 ? 0 : 1;
}

async function test(args: string[]): Promise<number> {
  const { positionals } = parseOptions(args, {}, USAGE);
  if (positionals.length === 0) {
    process.stderr.write(`gatehouse policy test: name at least one test file\n\n${USAGE}`);
    return 2;
  }
  const report = await runPolicyTests(positionals);
  for (const r of report.results) {
    if (r.pass) {
      process.stdout.write(`PASS ${r.name} (${r.actual}${r.policyIds.length ? ` by ${r.policyIds.join(", ")}` : ""})\n`);
    } else {
      const got = r.actual === "error" ? "" : ` [decision: ${r.actual}; policies: ${r.policyIds.join(", ") || "none"}; reason: ${r.reason}]`;
      process.stdout.write(`FAIL ${r.name}: ${r.failure}${got} (${r.file})\n`);
    }
  }
  process.stdout.write(`${report.passed} passed, ${report.failed} failed\n`);
  return report.failed === 0 && report.results.length > 0 ? 0 : 1;
}

const command: CliCommand = {
  usage: USAGE,
  async run(args) {
    const [sub, ...rest] = args;
    switch (sub) {
      case "validate":
        return validate(rest);
      case "test":
        return test(rest);
      default:
        process.stderr.write(`gatehouse policy: ${sub ? `unknown subcommand "${sub}"` : "missing subcommand"} (validate or test)\n\n${USAGE}`);
        return 2;
    }
  },
};
export default command;
