// generateEvidencePack(): query the store, verify the trail, write the CSVs and
// index.html into an empty directory, then the signed manifest.json.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DeploymentVerifyResult } from "@gatehouse/audit-integrity";
import { EvidenceReader, type EvidenceQuery, type Table, type TableId } from "./collect.js";
import { CRITERIA, viewRows } from "./criteria.js";
import { toCsv } from "./csv.js";
import { renderHtml, type CriterionResult } from "./html.js";
import { integritySummary } from "./integrity.js";
import { buildManifest, MANIFEST, type Manifest, type PackSigner } from "./manifest.js";
import { iso, type Period } from "./period.js";

export interface GenerateOptions {
  query: EvidenceQuery;
  database?: string;
  /** Runs the trail verification (verifyDeployment in @gatehouse/audit-integrity). */
  verify: () => Promise<DeploymentVerifyResult>;
  period: Period;
  out: string;
  signer: PackSigner;
  deployment: string;
  /** Audit store kind ("chdb", "clickhouse"). */
  store: string;
  toolVersion?: string;
  now?: () => Date;
}

export interface GenerateResult {
  dir: string;
  manifest: Manifest;
  /** Criteria without evidence in the period. */
  emptyCriteria: string[];
  criteria: CriterionResult[];
  integrityOk: boolean;
  integrityHeadline: string;
  tables: Map<TableId, Table>;
}

/** This package's version (the tool version in the manifest). */
export function toolVersion(): string {
  try {
    return String((JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: string }).version ?? "unknown");
  } catch {
    return "unknown";
  }
}

function prepareDir(out: string): void {
  if (existsSync(out)) {
    const entries = readdirSync(out);
    if (entries.length > 0) throw new Error(`output directory ${out} is not empty (${entries.length} entries): give a new or empty directory, so the pack holds only what the manifest lists`);
  } else mkdirSync(out, { recursive: true });
}

type PolicyLoad = Awaited<ReturnType<EvidenceReader["policyLoads"]>>[number];

/** Accepted loads as intervals per instance: a version is in force from its load until the instance's next load of another version. */
function policyTables(loads: PolicyLoad[], used: Awaited<ReturnType<EvidenceReader["policyVersionsUsed"]>>, period: Period): { versions: Table; loadsTable: Table; usedTable: Table } {
  const from = period.from.getTime();
  const to = period.to.getTime();
  const byInstance = new Map<string, PolicyLoad[]>();
  for (const l of loads) if (l.accepted) byInstance.set(l.instance, [...(byInstance.get(l.instance) ?? []), l]);
  const versionRows: Table["rows"] = [];
  for (const [instance, ls] of [...byInstance].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    // Merge consecutive loads of the same version (a revert is a new interval).
    const intervals: Array<{ load: PolicyLoad; until: string }> = [];
    for (const l of ls) {
      const last = intervals[intervals.length - 1];
      if (last && last.load.version === l.version) continue;
      if (last) last.until = l.time;
      intervals.push({ load: l, until: "" });
    }
    for (const iv of intervals) {
      const start = Date.parse(iv.load.time);
      const end = iv.until ? Date.parse(iv.until) : Infinity;
      if (start >= to || end <= from) continue;
      for (const f of iv.load.files.length ? iv.load.files : [{ path: "(no files)", sha256: "", policies: 0 }]) {
        versionRows.push({
          version: iv.load.version,
          file: f.path,
          sha256: f.sha256,
          policies: f.policies,
          loaded_at: iv.load.time,
          until: iv.until || "still in force at the end of the period (no later load by this instance)",
          trigger: iv.load.trigger,
          instance,
          event_id: iv.load.eventId,
        });
      }
    }
  }
  const inPeriod = loads.filter((l) => Date.parse(l.time) >= from);
  const accepted = new Set(loads.filter((l) => l.accepted).map((l) => l.version));
  return {
    versions: {
      id: "policy_versions",
      file: "policy_versions.csv",
      title: "Policy versions in force",
      columns: ["version", "file", "sha256", "policies", "loaded_at", "until", "trigger", "instance", "event_id"],
      rows: versionRows,
    },
    loadsTable: {
      id: "policy_loads",
      file: "policy_loads.csv",
      title: "Policy load attempts in the period",
      columns: ["time", "instance", "trigger", "accepted", "version", "files", "policies", "errors", "event_id"],
      rows: inPeriod.map((l) => ({
        time: l.time,
        instance: l.instance,
        trigger: l.trigger,
        accepted: l.accepted ? "yes" : "no",
        version: l.version,
        files: l.files.map((f) => `${f.path} sha256:${f.sha256}`),
        policies: l.files.reduce((n, f) => n + f.policies, 0),
        errors: l.errors,
        event_id: l.eventId,
      })),
    },
    usedTable: {
      id: "policy_versions_used",
      file: "policy_versions_used.csv",
      title: "Policy versions named by decisions",
      columns: ["version", "decisions", "first_decision", "last_decision", "loaded"],
      rows: used.map((u) => ({
        version: u.version,
        decisions: u.decisions,
        first_decision: u.first,
        last_decision: u.last,
        loaded: accepted.has(u.version) ? "yes" : "NO: no accepted policy_loaded event names this version",
      })),
    },
  };
}

export async function generateEvidencePack(opts: GenerateOptions): Promise<GenerateResult> {
  const now = opts.now ?? (() => new Date());
  prepareDir(opts.out);
  const reader = new EvidenceReader(opts.query, opts.period, opts.database);
  const [identities, privileged, denied, masking, sessions, auth, loads, used, range, eventTypes] = [
    await reader.identities(),
    await reader.privilegedOperations(),
    await reader.deniedAttempts(),
    await reader.maskingEvents(),
    await reader.sessions(),
    await reader.authFailures(),
    await reader.policyLoads(),
    await reader.policyVersionsUsed(),
    await reader.chainRange(),
    await reader.eventTypes(),
  ];
  const policy = policyTables(loads, used, opts.period);
  const verification = await opts.verify();
  const integrity = integritySummary(verification, range, now());
  const tables = new Map<TableId, Table>();
  for (const t of [identities, privileged, denied, masking, sessions, policy.versions, policy.loadsTable, policy.usedTable, auth, integrity.table, integrity.checkpoints]) tables.set(t.id, t);

  const criteria: CriterionResult[] = CRITERIA.map((c) => {
    const rows = c.evidence.reduce((n, v) => n + viewRows(v, tables).length, 0);
    return { id: c.id, rows, empty: rows === 0 };
  });
  for (const t of tables.values()) writeFileSync(join(opts.out, t.file), toCsv(t.columns, t.rows));
  const generatedAt = iso(now());
  const version = opts.toolVersion ?? toolVersion();
  writeFileSync(
    join(opts.out, "index.html"),
    renderHtml(
      {
        period: { from: iso(opts.period.from), to: iso(opts.period.to) },
        deployment: opts.deployment,
        generatedAt,
        toolVersion: version,
        store: opts.store,
        keyId: opts.signer.keyId,
        keySource: opts.signer.source === "generated" ? "a key generated for this pack only" : `key from ${opts.signer.source === "file" ? "--signing-key" : "$GATEHOUSE_EVIDENCE_SIGNING_KEY"}`,
        eventTypes,
      },
      tables,
      integrity,
      criteria,
    ),
  );
  const manifest = buildManifest(
    opts.out,
    { period: { from: iso(opts.period.from), to: iso(opts.period.to), to_exclusive: true }, generated_at: generatedAt, deployment: opts.deployment, tool: { name: "gatehouse", version } },
    opts.signer,
  );
  writeFileSync(join(opts.out, MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
  return {
    dir: opts.out,
    manifest,
    emptyCriteria: criteria.filter((c) => c.empty).map((c) => c.id),
    criteria,
    integrityOk: integrity.ok,
    integrityHeadline: integrity.headline,
    tables,
  };
}
