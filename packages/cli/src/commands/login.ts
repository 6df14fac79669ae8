// `gatehouse login`: save the access token the CLI acts as (for `gatehouse approvals`).
import { createInterface } from "node:readline";
import { loadConfig } from "@gatehouse/runtime";
import { discoverTokenEndpoint, readDevIdpSecrets, requestDevToken } from "@gatehouse/identity";
import { parseOptions, type CliCommand } from "../command.js";
import { forgetToken, peekClaims, saveToken } from "../credentials.js";

const usage = `gatehouse login - save the access token the CLI acts as

SYNOPSIS
  gatehouse login --token-stdin
  gatehouse login --sub NAME [--groups G1,G2] [--config FILE]     (local dev IdP)
  gatehouse login --logout

DESCRIPTION
  Saves an OIDC access token to $XDG_CONFIG_HOME/gatehouse/token (or
  GATEHOUSE_TOKEN_FILE), readable only by you. \`gatehouse approvals\` uses it
  when GATEHOUSE_TOKEN is not set.

  --token-stdin reads a token from your organisation's IdP from standard input.
  With --sub, a token for a human identity is minted by the local stack's dev
  identity provider, like \`gatehouse token --kind human\`.

OPTIONS
  --token-stdin    read the token from standard input
  --sub NAME       dev IdP: subject of the token
  --groups LIST    dev IdP: comma-separated groups (e.g. approvers)
  --logout         delete the saved token
  --config FILE    configuration file (dev IdP issuer and data directory)

EXIT STATUS
  0 saved; 1 failed; 2 usage error
`;

async function readStdin(): Promise<string> {
  const rl = createInterface({ input: process.stdin });
  let text = "";
  for await (const l of rl) text += l;
  return text.trim();
}

const command: CliCommand = {
  usage,
  async run(args) {
    let values: Record<string, unknown>;
    try {
      ({ values } = parseOptions(args, { "token-stdin": { type: "boolean" }, sub: { type: "string" }, groups: { type: "string" }, logout: { type: "boolean" }, config: { type: "string" } }, usage));
    } catch (e) {
      process.stderr.write(`gatehouse login: ${(e as Error).message}`);
      return 2;
    }
    try {
      if (values.logout) {
        process.stderr.write(forgetToken() ? "signed out\n" : "no saved token\n");
        return 0;
      }
      let token: string;
      if (values["token-stdin"]) token = await readStdin();
      else if (values.sub) {
        const config = loadConfig(values.config as string | undefined);
        await discoverTokenEndpoint(config.idp.issuer);
        const { cliClientSecret } = await readDevIdpSecrets(config.dataDir);
        const groups = String(values.groups ?? "").split(",").map((g) => g.trim()).filter(Boolean);
        ({ accessToken: token } = await requestDevToken({ issuer: config.idp.issuer, clientSecret: cliClientSecret, subject: values.sub as string, groups, kind: "human", ttlSeconds: 8 * 3600 }));
      } else {
        process.stderr.write(`gatehouse login: give --token-stdin or --sub NAME\n\n${usage}`);
        return 2;
      }
      const claims = peekClaims(token);
      if (!claims?.sub) throw new Error("that is not a JWT access token (no sub claim)");
      const file = saveToken(token);
      process.stderr.write(`signed in as ${String(claims.sub)}${Array.isArray(claims.groups) ? ` [${claims.groups.join(", ")}]` : ""}; token saved to ${file}\n`);
      return 0;
    } catch (e) {
      process.stderr.write(`gatehouse login: ${(e as Error).message}\n`);
      return 1;
    }
  },
};
export default command;
