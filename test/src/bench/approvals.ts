// Approval latency: the time from an approver's decision to the held command's
// first result row at the client. A node-postgres client runs
// `DELETE ... RETURNING id` (held by the demo policy); when the approval notice
// arrives, the bench POSTs the approval to the REST API (as the CLI and the
// console do) and measures until the first DataRow. Median over 20 approvals
// (BENCH_APPROVALS), after 2 warm-up rounds. Target: under 100 ms.
import { performance } from "node:perf_hooks";
import pg from "pg";
import { startApprovalStack } from "../support/approval-stack.js";

const ROUNDS = Number(process.env.BENCH_APPROVALS ?? 20);
const WARMUP = 2;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

export interface ApprovalsBenchResult {
  medianMs: number;
  p90Ms: number;
  answerMedianMs: number;
  samples: number[];
}

export async function runApprovalsBench(): Promise<ApprovalsBenchResult> {
  const stack = await startApprovalStack();
  try {
    const agent = await stack.forge.mint({ sub: "bench-agent", groups: ["agents"] });
    const approver = await stack.forge.mint({ sub: "bench-approver", groups: ["approvers"] });
    const client = new pg.Client(stack.pgOptions(agent, "bench-agent"));
    await client.connect();
    const toRow: number[] = [];
    const toAnswer: number[] = [];
    try {
      for (let i = 0; i < WARMUP + ROUNDS; i++) {
        let approvedAt = 0;
        let firstRowAt = 0;
        let answeredAt = 0;
        let approving: Promise<void> | undefined;
        const onNotice = (n: { message?: string }) => {
          const id = /ticket ([0-9a-f-]{36})/.exec(n.message ?? "")?.[1];
          if (!id || approving) return;
          approvedAt = performance.now();
          approving = fetch(`${stack.apiUrl}/api/v1/approvals/tickets/${id}/approve`, {
            method: "POST",
            headers: { authorization: `Bearer ${approver}`, "content-type": "application/json" },
            body: JSON.stringify({ reason: "bench" }),
          }).then(async (res) => {
            answeredAt = performance.now();
            if (!res.ok) throw new Error(`approve failed: ${res.status} ${await res.text()}`);
          });
        };
        client.on("notice", onNotice);
        const q = client.query(new pg.Query(`DELETE FROM orders WHERE id = ${100 + i} RETURNING id`));
        await new Promise<void>((resolve, reject) => {
          q.on("row", () => {
            if (!firstRowAt) firstRowAt = performance.now();
          });
          q.on("end", () => resolve());
          q.on("error", reject);
        });
        client.off("notice", onNotice);
        await approving;
        if (!firstRowAt || !approvedAt) throw new Error(`round ${i}: the command was not held and approved`);
        if (i >= WARMUP) {
          toRow.push(firstRowAt - approvedAt);
          toAnswer.push(answeredAt - approvedAt);
        }
      }
    } finally {
      await client.end();
    }
    const m = median(toRow);
    const report = {
      suite: "approvals",
      rounds: ROUNDS,
      approval_to_first_row_ms: { median: round(m), p90: round(pct(toRow, 90)), min: round(Math.min(...toRow)), max: round(Math.max(...toRow)) },
      approve_request_round_trip_ms: { median: round(median(toAnswer)) },
      target_ms: 100,
      within_target: m < 100,
    };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return { medianMs: m, p90Ms: pct(toRow, 90), answerMedianMs: median(toAnswer), samples: toRow };
  } finally {
    await stack.stop();
  }
}

const round = (x: number) => Math.round(x * 10) / 10;

/** Entry for test/src/bench/run.ts: the report as a section of bench/RESULTS.md. */
export async function runApprovalsSuite(): Promise<string> {
  const r = await runApprovalsBench();
  return [
    `${r.samples.length} approvals of a held \`DELETE ... RETURNING id\` (node-postgres client, demo policy), each approved through the REST API as soon as the hold notice arrives:`,
    "",
    "| measure | median (ms) | p90 (ms) | min (ms) | max (ms) |",
    "|---|---|---|---|---|",
    `| approval request sent -> first result row at the client | ${round(r.medianMs)} | ${round(r.p90Ms)} | ${round(Math.min(...r.samples))} | ${round(Math.max(...r.samples))} |`,
    `| approval request round trip (REST answer) | ${round(r.answerMedianMs)} | | | |`,
    "",
    `Target: median under 100 ms: ${r.medianMs < 100 ? "met" : "NOT met"}.`,
  ].join("\n");
}

// Standalone: node test/dist/bench/approvals.js
if (import.meta.url === `file://${process.argv[1]}`) {
  runApprovalsBench().then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}
