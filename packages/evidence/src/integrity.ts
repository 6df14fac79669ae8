// The integrity section: the trail verification (the same run as `gatehouse
// audit verify`) turned into one row per check, and the checkpoints that cover
// the period.
import type { Checkpoint, DeploymentVerifyResult, Problem } from "@gatehouse/audit-integrity";
import type { Table } from "./collect.js";

interface Check {
  check: string;
  covers: string;
  matches: (p: Problem) => boolean;
}

const CHECKS: Check[] = [
  { check: "signatures", covers: "every checkpoint's Ed25519 signature and key id", matches: (p) => /^checkpoint \d+-\d+: .*(signature|key)/.test(p.what) },
  { check: "continuity", covers: "each checkpoint starts where the previous one ended, from its chain head", matches: (p) => /does not continue|previous chain head|empty or reversed/.test(p.what) },
  { check: "checkpoint copies", covers: "the ClickHouse copy of every checkpoint equals the signed copy in JetStream", matches: (p) => /in ClickHouse|missing from ClickHouse/.test(p.what) },
  { check: "rows outside the chain", covers: "no stored row is outside the hash chain", matches: (p) => /not part of the hash chain/.test(p.what) },
  { check: "merkle roots", covers: "each checkpoint's RFC 6962 Merkle root and chain head over the stored events", matches: (p) => /Merkle root|chain head recomputed/.test(p.what) },
  { check: "tail", covers: "events newer than the last checkpoint equal the JetStream audit stream (a cut tail is detected)", matches: (p) => /audit stream but not in the store|has no JetStream message|differs from the JetStream message/.test(p.what) },
  { check: "chain", covers: "one event per chain position, its recomputed chain hash, and every stored column against the event's own bytes", matches: () => true },
];

export interface IntegritySummary {
  ok: boolean;
  /** One line for the cover and the command's output. */
  headline: string;
  table: Table;
  checkpoints: Table;
}

export function integritySummary(v: DeploymentVerifyResult, range: { min: number; max: number; events: number }, verifiedAt: Date): IntegritySummary {
  const r = v.report;
  const byCheck = new Map<string, Problem[]>();
  for (const p of r.problems) {
    const c = CHECKS.find((x) => x.matches(p))!;
    byCheck.set(c.check, [...(byCheck.get(c.check) ?? []), p]);
  }
  // verifyTrail stops after 20 problems: later checks then did not run to the end.
  const stopped = r.problems.length >= 20;
  const rows: Table["rows"] = CHECKS.map((c) => {
    const ps = byCheck.get(c.check) ?? [];
    return {
      check: c.check,
      result: ps.length ? "FAIL" : stopped ? "not completed" : "pass",
      covers: c.covers,
      detail: ps.length ? ps.map((p) => p.what).join(" | ") : stopped ? "verification stopped after the first 20 problems" : "",
    };
  });
  const facts: Array<[string, string]> = [
    ["events checked", String(r.eventsChecked)],
    ["checkpoints checked", String(r.checkpointsChecked)],
    ["last sealed chain position", String(r.lastCheckpointPos)],
    ["highest stored chain position", String(r.lastStoredPos)],
    ["audit stream sequence checked up to", String(v.untilStreamSeq)],
    ["signing key ids", r.keyIds.join("; ") || "none"],
    ["writer backlog at start", v.pendingAtStart < 0 ? "unknown" : String(v.pendingAtStart)],
    ["verified at", verifiedAt.toISOString()],
    ["period events in the chain", `${range.events} (chain positions ${range.min}-${range.max})`],
  ];
  for (const [k, val] of facts) rows.push({ check: k, result: "info", covers: "", detail: val });
  const covering = coveringCheckpoints(v.checkpoints, range);
  const lastSealed = r.lastCheckpointPos;
  const unsealed = range.max > lastSealed ? ` Events at positions ${Math.max(range.min, lastSealed + 1)}-${range.max} are not sealed by a checkpoint yet; they were checked against the JetStream audit stream.` : "";
  const headline = r.ok
    ? `PASS: the audit trail is complete and unaltered (${r.eventsChecked} events, ${r.checkpointsChecked} signed checkpoints).${unsealed}`
    : `FAIL: ${r.problems.length} problem${r.problems.length === 1 ? "" : "s"}; first: ${r.problems[0]!.what}`;
  return {
    ok: r.ok,
    headline,
    table: { id: "integrity", file: "integrity.csv", title: "Integrity verification", columns: ["check", "result", "covers", "detail"], rows },
    checkpoints: {
      id: "checkpoints",
      file: "checkpoints.csv",
      title: "Checkpoints covering the period",
      columns: ["from_pos", "to_pos", "from_stream_seq", "to_stream_seq", "time", "key_id", "public_key", "prev_head", "head", "merkle_root", "signature"],
      rows: covering.map((c) => ({
        from_pos: c.fromPos,
        to_pos: c.toPos,
        from_stream_seq: c.fromStreamSeq,
        to_stream_seq: c.toStreamSeq,
        time: c.time,
        key_id: c.keyId,
        public_key: c.publicKey,
        prev_head: c.prevHead,
        head: c.head,
        merkle_root: c.merkleRoot,
        signature: c.signature,
      })),
    },
  };
}

function coveringCheckpoints(cps: Checkpoint[], range: { min: number; max: number; events: number }): Checkpoint[] {
  if (range.events === 0) return [];
  return cps.filter((c) => c.toPos >= range.min && c.fromPos <= range.max);
}
