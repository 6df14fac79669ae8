// `gatehouse token`: mint an access token from the local dev identity provider.
import { loadConfig } from "@gatehouse/runtime";
import { discoverTokenEndpoint, IDENTITY_KINDS, readDevIdpSecrets, requestDevToken } from "@gatehouse/identity";
import { parseOptions, type CliCommand } from "../command.js";

const usage = `gatehouse token - mint an access token from the local dev identity provider

SYNOPSIS
  gatehouse token --sub NAME [--groups G1,G2] [--ttl DURATION] [--kind KIND]
                  [--issuer URL] [--config FILE]

DESCRIPTION
  Asks the identity provider embedded in the local stack (started by
  \`npm start\` / \`gatehouse up\`) for a signed JWT access token with audience
  "gatehouse" for any subject and groups, and prints only the token on stdout,
  so it can be used directly as the PostgreSQL password of an agent.

  This is a development convenience: the IdP accepts the request because the
  client secret of "gatehouse-cli" is read from the local data directory
  (<dataDir>/idp/secrets.json). Production deployments trust a real IdP and
  agents get their tokens from it (client credentials, CI OIDC tokens).

OPTIONS
  --sub NAME        subject of the token (required): letters, digits, . _ @ -
  --groups LIST     comma-separated groups, e.g. agents,readers (default: none)
  --ttl DURATION    lifetime: 90s, 15m, 2h or plain seconds; 1m to 24h
                    (default 15m)
  --kind KIND       identity kind: ${IDENTITY_KINDS.join(", ")} (default agent)
  --issuer URL      identity provider (default: idp.issuer from the
                    configuration, http://127.0.0.1:15081)
  --config FILE     configuration file (default: $GATEHOUSE_CONFIG, else
                    ./gatehouse.yaml); its dataDir holds the client secret
  -h, --help        show this help

EXAMPLES
  Connect psql through the gateway as agent-1 in group "agents":
    PGPASSWORD=$(gatehouse token --sub agent-1 --groups agents) \\
      psql "host=127.0.0.1 port=15432 user=agent-1 dbname=demo"

  A CI identity valid for one hour:
    gatehouse token --sub ci-deploy --groups ci,deployers --kind ci --ttl 1h

EXIT STATUS
  0  the token was printed
  1  the identity provider is not running or refused the request
  2  invalid options
`;

/** "90s" | "15m" | "2h" | "1d" | "900" -> seconds. */
export function parseTtl(s: string): number | undefined {
  const m = /^(\d+)([smhd]?)$/.exec(s.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "" | "s" | "m" | "h" | "d"];
  return n * unit;
}

const command: CliCommand = {
  usage,
  async run(args) {
    let values;
    try {
      ({ values } = parseOptions(
        args,
        {
          sub: { type: "string" },
          groups: { type: "string" },
          ttl: { type: "string" },
          kind: { type: "string" },
          issuer: { type: "string" },
          config: { type: "string" },
        },
        usage,
      ));
    } catch (e) {
      process.stderr.write(`gatehouse token: ${(e as Error).message}`);
      return 2;
    }
    const fail = (msg: string, code = 2) => {
      process.stderr.write(`gatehouse token: ${msg}\n`);
      return code;
    };
    const sub = values.sub as string | undefined;
    if (!sub) return fail("--sub NAME is required (the subject of the token); see gatehouse token --help");
    const groups = ((values.groups as string | undefined) ?? "").split(",").map((g) => g.trim()).filter((g) => g !== "");
    const kind = (values.kind as string | undefined) ?? "agent";
    if (!(IDENTITY_KINDS as readonly string[]).includes(kind)) return fail(`--kind ${kind}: must be one of ${IDENTITY_KINDS.join(", ")}`);
    let ttlSeconds: number | undefined;
    if (values.ttl !== undefined) {
      ttlSeconds = parseTtl(values.ttl as string);
      if (ttlSeconds === undefined || ttlSeconds < 60 || ttlSeconds > 86400) return fail(`--ttl ${String(values.ttl)}: expected 1m to 24h, e.g. 90s, 15m, 2h`);
    }
    try {
      const config = loadConfig(values.config as string | undefined);
      const issuer = (values.issuer as string | undefined) ?? config.idp.issuer;
      // Reach the IdP first: "not running" is the likelier and more useful message.
      await discoverTokenEndpoint(issuer);
      const { cliClientSecret } = await readDevIdpSecrets(config.dataDir);
      const { accessToken } = await requestDevToken({ issuer, clientSecret: cliClientSecret, subject: sub, groups, kind, ttlSeconds });
      process.stdout.write(`${accessToken}\n`);
      return 0;
    } catch (e) {
      return fail((e as Error).message, 1);
    }
  },
};
export default command;
