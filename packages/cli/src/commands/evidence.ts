// gatehouse evidence --from DATE --to DATE --out DIR: the SOC 2 evidence pack
// (packages/evidence), read through AuditService.Query with bound parameters and
// the same trail verification as `gatehouse audit verify`.
// gatehouse evidence verify DIR: re-hash the pack and check its signature.
import { hostname } from "node:os";
import { AuditServiceService } from "@gatehouse/proto";
import { configPath, loadConfig, natsClient, RpcError, Status, type GatehouseConfig } from "@gatehouse/runtime";
import { pinnedKeys, verifyDeployment } from "@gatehouse/audit-integrity";
import { generateEvidencePack, loadPackSigner, parsePeriod, SIGNING_KEY_ENV, verifyPack, type EvidenceQuery } from "@gatehouse/evidence";
import { parseOptions, type CliCommand } from "../command.js";
import { openAuditConnection, writerPending } from "./audit-integrity.js";

const USAGE = `NAME
    gatehouse evidence - SOC 2 evidence pack from the audit trail

SYNOPSIS
    gatehouse evidence --from DATE --to DATE --out DIR [--signing-key FILE]
                       [--deployment NAME] [--audit-key KEY]... [--config FILE]
    gatehouse evidence verify DIR [--public-key KEY]

DESCRIPTION
    Writes an evidence pack for the period into DIR (new or empty):

      index.html                  self-contained report: a cover (period,
                                  deployment, generation time, integrity result)
                                  and one section per criterion the gateway
                                  supports (CC6.1, CC6.2, CC6.3, CC6.6, CC6.8,
                                  CC7.2, CC7.3, CC8.1, C1.1, C1.2) with figures,
                                  tables and links to the CSVs behind them
      identities.csv              per identity: kind, groups, connections,
                                  sessions, commands allowed/denied/held, first
                                  and last seen
      privileged_operations.csv   commands held for approval: requester, masked
                                  text, ticket or grant, approvers, decision
                                  time, latency, whether it ran
      denied_attempts.csv         denied commands with policy ids and reason
      masking_events.csv          what was masked (column, entity, strategy,
                                  count), never a value
      sessions.csv                session index with recording presence
      policy_versions.csv         policy versions in force: file, SHA-256,
                                  loaded at, until
      policy_loads.csv            every policy load attempt (rejected ones too)
      policy_versions_used.csv    versions named by decisions, and whether a
                                  load record exists for each
      auth_failures.csv           failed authentications
      integrity.csv               the checks of \`gatehouse audit verify\`:
                                  chain, signatures, Merkle roots, continuity,
                                  tail
      checkpoints.csv             the signed checkpoints covering the period
      manifest.json               SHA-256 and size of every file, the period,
                                  generation time and tool version, signed
                                  with Ed25519

    CSVs are RFC 4180 (header row, CRLF, UTF-8); lists inside a cell are joined
    with "; ". Times are UTC. A criterion without evidence is shown as "no
    evidence in this period" and listed on standard error.

    verify re-hashes every file named in manifest.json, looks for missing and
    extra files, and checks the signature. Without --public-key the signature
    is checked against the key inside the manifest, which proves only that the
    pack is unchanged since someone signed it: pin the key you were given.

OPTIONS
    --from DATE         first UTC day of the period (2026-11-01), or an ISO
                        date-time (2026-11-01T08:00:00Z; no zone means UTC)
    --to DATE           end of the period, EXCLUSIVE: --from 2026-11-01
                        --to 2026-11-08 is the seven days 1-7 November
    --out DIR           where to write the pack (created; must be empty)
    --signing-key FILE  Ed25519 private key (PEM PKCS#8) that signs the
                        manifest; else $${SIGNING_KEY_ENV} (PEM or base64
                        PKCS#8); else a key is generated for this pack and its
                        public key printed (integrity only against that key).
                        Generate one with: openssl genpkey -algorithm ed25519 -out FILE
    --deployment NAME   name on the cover (default: $GATEHOUSE_DEPLOYMENT, else
                        this host's name)
    --audit-key KEY     pin the audit checkpoint signing key(s) for the
                        integrity check (as \`gatehouse audit verify --public-key\`)
    --public-key KEY    verify: the pack signer's public key (PEM, base64 SPKI,
                        or a file)
    --config FILE       configuration file (default: $GATEHOUSE_CONFIG, else
                        ./gatehouse.yaml); nats.url says where the audit service is
    -h, --help          show this text

EXAMPLES
    gatehouse evidence --from 2026-11-01 --to 2026-11-08 --out evidence-2026-w45 \\
        --signing-key /etc/gatehouse/evidence-signing.pem
    gatehouse evidence verify evidence-2026-w45 --public-key evidence-signing.pub

EXIT STATUS
    0   the pack was written (sections without evidence are listed) / it verified
    1   the pack was written but the audit trail failed verification; the audit
        service did not answer; or verify found a changed, missing or extra
        file or a bad signature (each is named)
    2   usage error (bad or missing dates, non-empty --out, ...)
`;

const command: CliCommand = {
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    let parsed;
    try {
      parsed = parseOptions(
        args,
        {
          from: { type: "string" },
          to: { type: "string" },
          out: { type: "string" },
          "signing-key": { type: "string" },
          deployment: { type: "string" },
          "audit-key": { type: "string", multiple: true },
          "public-key": { type: "string" },
          config: { type: "string" },
        },
        USAGE,
      );
    } catch (e) {
      process.stderr.write(`gatehouse evidence: ${(e as Error).message}`);
      return 2;
    }
    const v = parsed.values;
    const [sub, ...rest] = parsed.positionals;
    if (sub === "verify") {
      if (rest.length !== 1) {
        process.stderr.write(`gatehouse evidence verify: ${rest.length === 0 ? "missing the pack DIR" : `unexpected argument "${rest[1]}"`}; use: gatehouse evidence verify DIR [--public-key KEY]\n`);
        return 2;
      }
      return runVerifyPack(rest[0]!, v["public-key"] as string | undefined);
    }
    if (sub !== undefined) {
      process.stderr.write(`gatehouse evidence: unknown subcommand "${sub}"; use: gatehouse evidence --from DATE --to DATE --out DIR, or gatehouse evidence verify DIR\n`);
      return 2;
    }
    let period;
    let signer;
    try {
      period = parsePeriod(v.from as string | undefined, v.to as string | undefined);
      if (typeof v.out !== "string" || v.out === "") throw new Error("--out DIR is required (a new or empty directory for the pack)");
      signer = loadPackSigner(v["signing-key"] as string | undefined);
    } catch (e) {
      process.stderr.write(`gatehouse evidence: ${(e as Error).message}\n`);
      return 2;
    }
    const config = loadConfig(configPath(v.config as string | undefined));
    const deployment = (v.deployment as string | undefined) ?? process.env.GATEHOUSE_DEPLOYMENT ?? hostname();
    try {
      return await generate(config, { period, signer, out: v.out, deployment, auditKeys: (v["audit-key"] as string[] | undefined) ?? [] });
    } catch (e) {
      const msg = (e as Error).message;
      if (/not empty/.test(msg)) {
        process.stderr.write(`gatehouse evidence: ${msg}\n`);
        return 2;
      }
      if (e instanceof RpcError && (e.code === Status.UNAVAILABLE || e.code === Status.DEADLINE_EXCEEDED)) {
        process.stderr.write(`gatehouse evidence: no audit service answered on NATS at ${config.nats.url} (${msg}): start it with \`npm start\` or \`node services/audit/dist/main.js\`\n`);
      } else process.stderr.write(`gatehouse evidence: ${msg}\n`);
      return 1;
    }
  },
};
export default command;

interface GenerateArgs {
  period: ReturnType<typeof parsePeriod>;
  signer: ReturnType<typeof loadPackSigner>;
  out: string;
  deployment: string;
  auditKeys: string[];
}

async function generate(config: GatehouseConfig, a: GenerateArgs): Promise<number> {
  const trusted = pinnedKeys(a.auditKeys);
  const conn = await openAuditConnection(config, "gatehouse evidence");
  try {
    const client = natsClient(conn.nc, AuditServiceService, { timeoutMs: 120_000 });
    // Values always travel as QueryRequest.params, bound by the store.
    const query: EvidenceQuery = async (sql, params, maxRows) => (await client.query({ sql, params, maxRows })).rows.map((l) => JSON.parse(l) as Record<string, unknown>);
    const stats = await client.stats({});
    const result = await generateEvidencePack({
      query,
      database: config.audit.clickhouseDatabase,
      period: a.period,
      out: a.out,
      signer: a.signer,
      deployment: a.deployment,
      store: stats.store,
      verify: () =>
        verifyDeployment({
          nc: conn.nc,
          query: conn.query,
          database: config.audit.clickhouseDatabase,
          stream: config.audit.stream,
          checkpointStream: config.audit.checkpointStream,
          trustedKeys: trusted,
          pageSize: conn.pageSize,
          pending: writerPending(conn.nc),
        }),
    });
    const out = process.stdout;
    const err = process.stderr;
    out.write(`wrote ${result.manifest.files.length + 1} files to ${a.out} for ${result.manifest.period.from} to ${result.manifest.period.to} (end exclusive)\n`);
    out.write(`integrity: ${result.integrityHeadline}\n`);
    if (result.emptyCriteria.length) err.write(`gatehouse evidence: no evidence in this period for ${result.emptyCriteria.join(", ")} (shown as "no evidence in this period" in the pack)\n`);
    else out.write(`every criterion section has evidence (${result.criteria.map((c) => `${c.id}: ${c.rows}`).join(", ")})\n`);
    out.write(`manifest.json signed with Ed25519 key ${a.signer.keyId}; public key ${a.signer.publicKey}\n`);
    if (a.signer.source === "generated") {
      err.write(
        `gatehouse evidence: WARNING: no signing key was given (--signing-key FILE or $${SIGNING_KEY_ENV}), so the pack was signed with a key generated for it and then discarded. ` +
          `It proves integrity only against the public key printed above: hand that key to the auditor over another channel, or sign with your organisation's key.\n` +
          `${a.signer.publicKeyPem}`,
      );
    }
    if (!result.integrityOk) {
      err.write(`gatehouse evidence: the audit trail FAILED verification; the pack was written and its integrity section names the problems\n`);
      return 1;
    }
    return 0;
  } finally {
    await conn.close();
  }
}

function runVerifyPack(dir: string, publicKey: string | undefined): number {
  const r = verifyPack(dir, publicKey);
  if (r.ok) {
    const m = r.manifest!;
    process.stdout.write(`OK: ${r.filesChecked} files match manifest.json; signature by key ${m.signing.key_id} is valid${r.keyPinned ? "" : " (checked against the key inside the manifest; pin the signer's key with --public-key)"}\n`);
    process.stdout.write(`    period ${m.period.from} to ${m.period.to} (end exclusive), generated ${m.generated_at} by ${m.tool.name} ${m.tool.version}\n`);
    return 0;
  }
  process.stdout.write(`FAILED: ${r.problems.length} problem${r.problems.length === 1 ? "" : "s"} in ${dir}\n`);
  for (const p of r.problems) process.stdout.write(`  ${p.what}\n`);
  return 1;
}
