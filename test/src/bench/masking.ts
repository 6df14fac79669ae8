// `npm run bench` suite "masking": decide by measurement whether result rows are
// masked inside the listener or sent in batches to the masking service over NATS.
// Same rows (10 text-format columns), same plan, same engine on both sides:
//   rules: 2 masked columns (email partial, phone redact)
//   rules+scan: the same plus the free-text notes column scanned by every recognizer
// In-process cost includes UTF-8 decode/encode of the masked cells (the listener holds
// DataRow bytes). The NATS figures include protobuf encode/decode on both ends and a
// separate masking-service process, with 1 and 4 batches in flight.
// Also prints the recognizers' precision/recall on the labelled corpus.
import { performance } from "node:perf_hooks";
import { join } from "node:path";
import { MaskingServiceService, MaskStrategyKind, type MaskingPlan, type MaskRow } from "@gatehouse/proto";
import { compileRowMasker, createScanner, generateMaskKey, planFromProto, PgType, type ResultColumn } from "@gatehouse/masking";
import { defaultRecognizers, evaluate, formatEvaluation, loadCorpus } from "@gatehouse/plugin-masking-pii";
import { natsClient } from "@gatehouse/runtime";
import { repoRoot, startNats, startProcess } from "@gatehouse/testing";

const ROWS = Number(process.env.BENCH_MASK_ROWS ?? 200_000);
const BATCHES = (process.env.BENCH_MASK_BATCHES ?? "500,5000").split(",").map(Number);

const strategy = (kind: MaskStrategyKind, keepLast = 0) => ({ kind, keepLast });
const sel = (table: string, column: string) => ({ table, column, columnPattern: "", tag: "" });

function plans(): Record<string, MaskingPlan> {
  const rules = [
    { match: sel("customers", "email"), entity: "EMAIL", strategy: strategy(MaskStrategyKind.MASK_STRATEGY_KIND_PARTIAL, 4), scan: false },
    { match: sel("customers", "phone"), entity: "PHONE", strategy: strategy(MaskStrategyKind.MASK_STRATEGY_KIND_REDACT), scan: false },
  ];
  const text = [{ entity: "*", strategy: strategy(MaskStrategyKind.MASK_STRATEGY_KIND_REDACT) }];
  return {
    rules: { columns: rules, text, policyIds: ["bench"] },
    "rules+scan": {
      columns: [...rules, { match: sel("customers", "notes"), entity: "TEXT", strategy: undefined, scan: true }],
      text,
      policyIds: ["bench"],
    },
  };
}

const COLUMNS: ResultColumn[] = [
  ["id", PgType.int4],
  ["name", PgType.text],
  ["email", PgType.text],
  ["phone", PgType.text],
  ["city", PgType.text],
  ["created_at", PgType.timestamptz],
  ["amount", PgType.numeric],
  ["status", PgType.text],
  ["country", PgType.text],
  ["notes", PgType.text],
].map(([column, typeOid]) => ({ table: "customers", column: column as string, typeOid: typeOid as number }));

function makeRows(n: number): Buffer[][] {
  const notes = [
    "prefers email contact",
    "called about invoice 4471, resolved",
    "new address: jane.doe@example.org, phone (415) 555-2671",
    "VIP since 2019; card ending 1111",
    "escalated by support; see ticket 99812",
  ];
  const rows: Buffer[][] = [];
  for (let i = 0; i < n; i++) {
    rows.push(
      [
        String(i + 1),
        `Customer ${i}`,
        `user${i}@example.com`,
        `(415) 555-${String(i % 10000).padStart(4, "0")}`,
        ["Berlin", "Lisbon", "Austin", "Osaka"][i % 4]!,
        "2025-01-02 03:04:05+00",
        `${(i % 997) + 0.5}`,
        i % 3 ? "active" : "closed",
        ["DE", "PT", "US", "JP"][i % 4]!,
        notes[i % notes.length]!,
      ].map((s) => Buffer.from(s)),
    );
  }
  return rows;
}

export interface MaskingBenchResult {
  rows: number;
  inProcess: Record<string, { rowsPerSec: number; ms: number }>;
  nats: { plan: string; batch: number; inFlight: number; rowsPerSec: number; ms: number; p50BatchMs: number }[];
}

function inProcess(rows: Buffer[][], plan: MaskingPlan): { rowsPerSec: number; ms: number } {
  const masker = compileRowMasker(planFromProto(plan), COLUMNS, { scanner: createScanner(defaultRecognizers()), key: generateMaskKey() })!;
  const masked = masker.masked;
  let bytes = 0;
  const t0 = performance.now();
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      if (!masked[i]) {
        bytes += row[i]!.length;
        continue;
      }
      const out = masker.maskCell(i, row[i]!.toString("utf8"));
      bytes += out === null ? 0 : Buffer.byteLength(out);
    }
  }
  masker.takeCounts();
  const ms = performance.now() - t0;
  if (bytes === 0) throw new Error("nothing processed");
  return { rowsPerSec: rows.length / (ms / 1000), ms };
}

export async function runMaskingBench(report: string[] = []): Promise<MaskingBenchResult> {
  const out = (s: string) => {
    report.push(s);
    process.stdout.write(s + "\n");
  };

  const ev = evaluate(await loadCorpus(), createScanner(defaultRecognizers()));
  out("recognizers on the labelled corpus (plugins/masking-pii/scripts/gen-corpus.mjs):");
  out(formatEvaluation(ev));

  const rows = makeRows(ROWS);
  const result: MaskingBenchResult = { rows: ROWS, inProcess: {}, nats: [] };
  const P = plans();
  for (const [name, plan] of Object.entries(P)) {
    inProcess(rows.slice(0, Math.min(20_000, rows.length)), plan); // warm up
    result.inProcess[name] = inProcess(rows, plan);
  }

  const nats = await startNats();
  const svcKey = generateMaskKey().secret.toString("base64");
  const svc = await startProcess("masking-service", process.execPath, [join(repoRoot, "services/masking/dist/main.js")], {
    env: { NATS_URL: nats.url, GATEHOUSE_MASKING_KEY: svcKey, GATEHOUSE_LOG_LEVEL: "info" },
    ready: /"ready"|ready/,
    timeoutMs: 30_000,
  });
  const nc = await nats.connect();
  try {
    const client = natsClient(nc, MaskingServiceService, { timeoutMs: 60_000 });
    const columns = COLUMNS.map((c, i) => ({ name: c.column, table: c.table!, tableOid: 0, columnAttr: i + 1, typeOid: c.typeOid }));
    for (const [name, plan] of Object.entries(P)) {
      for (const batch of BATCHES) {
        for (const inFlight of [1, 4]) {
          const protoRows: MaskRow[][] = [];
          for (let i = 0; i < rows.length; i += batch) {
            protoRows.push(rows.slice(i, i + batch).map((r) => ({ cells: r.map((value) => ({ value, isNull: false })) })));
          }
          // warm up the service's JIT with one batch
          await client.maskRows({ plan, columns, rows: protoRows[0]!, columnTags: {}, sessionId: "bench" });
          const lat: number[] = [];
          let next = 0;
          let maskedRows = 0;
          const t0 = performance.now();
          const worker = async () => {
            while (next < protoRows.length) {
              const b = protoRows[next++]!;
              const s = performance.now();
              const res = await client.maskRows({ plan, columns, rows: b, columnTags: {}, sessionId: "bench" });
              lat.push(performance.now() - s);
              maskedRows += res.rows.length;
            }
          };
          await Promise.all(Array.from({ length: inFlight }, worker));
          const ms = performance.now() - t0;
          if (maskedRows !== rows.length) throw new Error(`masking service returned ${maskedRows} rows of ${rows.length}`);
          lat.sort((a, b) => a - b);
          result.nats.push({ plan: name, batch, inFlight, rowsPerSec: rows.length / (ms / 1000), ms, p50BatchMs: lat[lat.length >> 1]! });
        }
      }
    }
  } finally {
    await nc.drain();
    await svc.stop();
    await nats.stop();
  }

  const f = (n: number) => Math.round(n).toLocaleString("en-US");
  out(`\nmasking ${f(ROWS)} rows x 10 columns (${BATCHES.join("/")} row batches over NATS):`);
  out("plan        path                       rows/s      wall ms   p50 batch ms");
  for (const [name, r] of Object.entries(result.inProcess)) {
    out(`${name.padEnd(11)} in-process                 ${f(r.rowsPerSec).padStart(10)}  ${f(r.ms).padStart(9)}`);
  }
  for (const r of result.nats) {
    out(
      `${r.plan.padEnd(11)} nats batch=${String(r.batch).padEnd(5)} inflight=${r.inFlight}  ${f(r.rowsPerSec).padStart(10)}  ${f(r.ms).padStart(9)}  ${r.p50BatchMs.toFixed(1).padStart(12)}`,
    );
  }
  return result;
}

/** Entry for test/src/bench/run.ts: the report as a section of bench/RESULTS.md. */
export async function runMaskingSuite(): Promise<string> {
  const report: string[] = [];
  await runMaskingBench(report);
  return "```\n" + report.join("\n").trim() + "\n```";
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  await runMaskingBench();
}
