// gatehouse replay SESSION: a recorded session from the audit store (table
// recordings, read through AuditService.Query on NATS): a SQL session as a
// transcript, a terminal session played in the terminal, or `--against DSN` to
// re-run a SQL session on a sandbox and compare result digests.
import { connectCli } from "../bus.js";
import { writeFileSync } from "node:fs";
import type { NatsConnection } from "@nats-io/transport-node";
import { AuditServiceService } from "@gatehouse/proto";
import { configPath, loadConfig, natsClient, RpcError } from "@gatehouse/runtime";
import { parseOptions, type CliCommand } from "../command.js";
import { formatAligned, formatError, formatOffset, loadRemasker, runAgainst, statementsOf, type Column, type Comparison, type ErrorInfo, type Event, type Query } from "./replay-sql.js";

const USAGE = `NAME
    gatehouse replay - print or play a recorded session

SYNOPSIS
    gatehouse replay SESSION [--no-wait | --speed N] [--json] [--config FILE]
    gatehouse replay SESSION --cast FILE
    gatehouse replay SESSION --against DSN [--json]

DESCRIPTION
    Every session through Gatehouse is recorded (docs/recordings.md): SQL
    sessions as a transcript of statements and the results as the client saw
    them (after masking), terminal sessions (SSH shells) as asciicast v2. The
    audit service copies recordings into the audit store (table recordings);
    replay reads them from there through the audit service.

    A SQL session is printed as a transcript: each statement with its time
    offset from the session start, then the result as psql prints it in aligned
    mode (column headers, rows, "(N rows)"), command tags, and errors and notices
    as psql shows them. Masked values appear masked, exactly as the client got
    them. Statements that policy denied or held for approval are marked.

    A terminal session is played in the terminal: its output with the original
    timing. --cast writes the raw asciicast v2 file instead, for other players.

    By default replay waits between events as long as the session did;
    --speed 4 plays four times as fast, --no-wait prints everything at once.

    A recording that hit recordings.maxBytesPerSession (or lost its bus for
    too long) ends with a truncation marker; replay prints it and says so on
    standard error. The session itself went on and is complete in the audit
    trail (gatehouse audit query).

    --against DSN re-runs the SQL session on a sandbox database: every
    statement that was allowed and returned a result set, in order, inside one
    transaction that is rolled back at the end (savepoint per statement). The
    recorded masking of each column is applied to the sandbox's rows (same
    strategies; "hash" needs the deployment's masking key: GATEHOUSE_MASKING_KEY,
    GATEHOUSE_MASKING_KEY_FILE or <dataDir>/masking/hmac.key), and a SHA-256
    digest of each result set (column names, then rows, each value as text or
    NULL) is compared with the recorded one. Each statement is reported as
    match, mismatch (with the first differing row) or skipped (and why).
    Statements that were denied or held are never run, nor are statements whose
    text was masked in the recording. Columns whose masking cannot be
    reproduced here (no masking key) are named and left out of the comparison.

OPTIONS
    --no-wait        print at once, without the recorded pauses
    --speed N        play N times as fast as recorded (default 1)
    --timing         wait like the original (the default; for scripts that say so)
    --json           SQL: print the recording's events as JSON lines
                     ({"t", "code", "data"}, the header first); with --against,
                     the comparison as JSON lines
    --cast FILE      terminal sessions: write the asciicast v2 file (- for
                     standard output) instead of playing it
    --against DSN    SQL sessions: re-run on this PostgreSQL (libpq URI or
                     key=value string) and compare results with the recording
    --config FILE    configuration file (default: $GATEHOUSE_CONFIG, else
                     ./gatehouse.yaml); nats.url says where the audit service is
    -h, --help       show this text

EXAMPLES
    Sessions that have a recording:
        gatehouse audit query "SELECT session_id, kind, bytes, complete, truncated
            FROM recording_index ORDER BY first_time DESC LIMIT 20"

    Read a SQL session at once:
        gatehouse replay 2b0c7a3e-5f0e-4d7a-9f57-0d6f5a8f9c11 --no-wait

    Watch an SSH shell at double speed, or save it for asciinema:
        gatehouse replay 9a1f...e3 --speed 2
        gatehouse replay 9a1f...e3 --cast shell.cast

    Check that a sandbox still gives the rows the agent saw:
        gatehouse replay 2b0c7a3e-... --against "postgres://postgres@127.0.0.1:5432/sandbox"

EXIT STATUS
    0   printed or played; --against: no statement mismatched
    1   no such recording, the audit service did not answer, or --against
        found a mismatch (or could not reach the sandbox)
    2   usage error
`;

/** Chunks fetched per Query call: well under the bus's message size. */
const PAGE_BYTES = 400 * 1024;

interface Recording {
  kind: string;
  header: Record<string, unknown>;
  events: Event[];
  /** Raw text (header + lines) for --cast. */
  text: string;
  complete: boolean;
  missing: number[];
}

const command: CliCommand = {
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    let parsed;
    try {
      parsed = parseOptions(
        args,
        {
          "no-wait": { type: "boolean" },
          timing: { type: "boolean" },
          speed: { type: "string" },
          json: { type: "boolean" },
          cast: { type: "string" },
          against: { type: "string" },
          config: { type: "string" },
        },
        USAGE,
      );
    } catch (e) {
      process.stderr.write(`gatehouse replay: ${(e as Error).message}`);
      return 2;
    }
    const v = parsed.values;
    const [session, ...extra] = parsed.positionals;
    if (!session || extra.length > 0) {
      process.stderr.write(`gatehouse replay: give one session id, e.g. gatehouse replay 2b0c7a3e-5f0e-4d7a-9f57-0d6f5a8f9c11 (see gatehouse replay --help)\n`);
      return 2;
    }
    let speed = 1;
    if (typeof v.speed === "string") {
      speed = Number(v.speed);
      if (!Number.isFinite(speed) || speed <= 0) {
        process.stderr.write(`gatehouse replay: --speed must be a positive number, got "${v.speed}"\n`);
        return 2;
      }
    }
    if (v["no-wait"] && (v.timing || typeof v.speed === "string")) {
      process.stderr.write("gatehouse replay: --no-wait cannot be combined with --timing or --speed\n");
      return 2;
    }
    const wait = !v["no-wait"];
    const config = loadConfig(configPath(v.config as string | undefined));
    let nc: NatsConnection;
    try {
      nc = await connectCli(config.nats.url);
    } catch (e) {
      process.stderr.write(`gatehouse replay: ${(e as Error).message}\n`);
      return 1;
    }
    try {
      const query = queryFn(nc);
      const rec = await fetchRecording(query, session);
      if (!rec) {
        process.stderr.write(`gatehouse replay: ${await noRecording(query, session)}\n`);
        return 1;
      }
      if (rec.missing.length > 0) {
        process.stderr.write(`gatehouse replay: chunks ${rec.missing.join(", ")} of this recording are not in the audit store yet; what follows them is left out\n`);
      }
      if (!rec.complete) process.stderr.write("gatehouse replay: the recording has no final chunk yet (the session may still be open, or the audit service is still copying it)\n");
      const truncated = rec.events.find((e) => e[1] === "truncated");
      if (truncated) {
        const d = truncated[2] as { reason?: string };
        process.stderr.write(`gatehouse replay: this recording was TRUNCATED at +${truncated[0]}s (${d.reason ?? "no reason given"}); nothing after that point was recorded\n`);
      }
      if (typeof v.cast === "string") {
        if (rec.kind !== "asciicast") {
          process.stderr.write(`gatehouse replay: --cast is for terminal recordings; session ${session} is a ${rec.kind} recording (print it, or use --json)\n`);
          return 2;
        }
        if (v.cast === "-") process.stdout.write(rec.text);
        else writeFileSync(v.cast, rec.text);
        return 0;
      }
      if (typeof v.against === "string") {
        if (rec.kind !== "sql") {
          process.stderr.write(`gatehouse replay: --against re-runs SQL sessions; session ${session} is a ${rec.kind} recording\n`);
          return 2;
        }
        return await against(rec, v.against, config.dataDir, Boolean(v.json));
      }
      if (rec.kind === "asciicast") return await play(rec, wait, speed);
      if (rec.kind === "sql") {
        if (v.json) {
          process.stdout.write(JSON.stringify(rec.header) + "\n");
          for (const [t, code, data] of rec.events) process.stdout.write(JSON.stringify({ t, code, data }) + "\n");
          return 0;
        }
        return await transcript(rec, wait, speed);
      }
      process.stderr.write(`gatehouse replay: session ${session} has a recording of unknown kind "${rec.kind}"; use gatehouse audit query to read it\n`);
      return 1;
    } catch (e) {
      const msg = e instanceof RpcError ? `the audit service answered: ${e.message}` : (e as Error).message;
      process.stderr.write(`gatehouse replay: ${msg}\n`);
      return 1;
    } finally {
      await nc.close();
    }
  },
};

export default command;

type QueryFn = (sql: string, params: Record<string, string>) => Promise<Record<string, unknown>[]>;

function queryFn(nc: NatsConnection): QueryFn {
  const client = natsClient(nc, AuditServiceService, { timeoutMs: 30_000 });
  return async (sql, params) => {
    try {
      const res = await client.query({ sql, maxRows: 100_000, params });
      return res.rows.map((l) => JSON.parse(l) as Record<string, unknown>);
    } catch (e) {
      if (/no responders|timeout/i.test((e as Error).message)) throw new Error(`the audit service did not answer on NATS (${(e as Error).message}); is it running?`);
      throw e;
    }
  };
}

/** The recording's chunks in seq order, fetched in pages that fit the bus. */
async function fetchRecording(query: QueryFn, session: string): Promise<Recording | undefined> {
  const index = await query("SELECT seq, bytes, kind, last FROM recordings FINAL WHERE session_id = {session:String} ORDER BY seq", { session });
  if (index.length === 0) return undefined;
  const missing: number[] = [];
  let expect = 1;
  for (const r of index) {
    const seq = Number(r.seq);
    for (; expect < seq; expect++) missing.push(expect);
    expect = seq + 1;
  }
  // Only the gap-free prefix is usable: a missing chunk could hold any lines.
  const usable = missing.length > 0 ? index.filter((r) => Number(r.seq) < missing[0]!) : index;
  let text = "";
  for (let i = 0; i < usable.length; ) {
    let bytes = 0;
    let j = i;
    while (j < usable.length && (j === i || bytes + Number(usable[j]!.bytes) <= PAGE_BYTES)) bytes += Number(usable[j++]!.bytes);
    const from = Number(usable[i]!.seq);
    const to = Number(usable[j - 1]!.seq);
    const rows = await query("SELECT data FROM recordings FINAL WHERE session_id = {session:String} AND seq >= {from:UInt32} AND seq <= {to:UInt32} ORDER BY seq", {
      session,
      from: String(from),
      to: String(to),
    });
    for (const r of rows) text += String(r.data);
    i = j;
  }
  const lines = text.split("\n").filter((l) => l !== "");
  let header: Record<string, unknown> = {};
  const events: Event[] = [];
  for (const [n, l] of lines.entries()) {
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch {
      throw new Error(`line ${n + 1} of the recording is not JSON; the stored recording is damaged`);
    }
    if (n === 0 && !Array.isArray(v)) header = v as Record<string, unknown>;
    else if (Array.isArray(v)) events.push(v as Event);
  }
  const kind = String(index[0]!.kind || (header.format === "gatehouse-sql" ? "sql" : "asciicast"));
  return { kind, header, events, text, complete: index.some((r) => r.last === true || r.last === 1 || r.last === "true"), missing };
}

async function noRecording(query: QueryFn, session: string): Promise<string> {
  const [ev] = await query("SELECT count() AS n, any(protocol) AS protocol, min(time) AS first FROM events WHERE session_id = {session:String}", { session });
  const n = Number(ev?.n ?? 0);
  if (n > 0) {
    return (
      `session ${session} exists in the audit trail (${n} events, protocol ${String(ev!.protocol)}, from ${String(ev!.first)} UTC) but has no recording in gatehouse.recordings: ` +
      "the audit service may still be copying it (try again in a few seconds); an SSH session's shells are recorded under the session id (and <session>-2, -3... for further shells), exec commands are not recorded"
    );
  }
  return `no recording and no audit events for session ${session}; list recorded sessions with: gatehouse audit query "SELECT session_id, kind, bytes, complete FROM recording_index ORDER BY first_time DESC LIMIT 20"`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait as long as the recording did between two events (scaled), when waiting at all. */
function pacer(wait: boolean, speed: number): (t: number) => Promise<void> {
  let prev = 0;
  return async (t) => {
    if (wait && t > prev) await sleep(((t - prev) * 1000) / speed);
    prev = Math.max(prev, t);
  };
}

async function play(rec: Recording, wait: boolean, speed: number): Promise<number> {
  const pace = pacer(wait, speed);
  for (const [t, code, data] of rec.events) {
    if (code === "o") {
      await pace(t);
      process.stdout.write(String(data));
    } else if (code === "truncated") {
      await pace(t);
      process.stdout.write(`\r\n[gatehouse: recording truncated here: ${(data as { reason?: string }).reason ?? ""}]\r\n`);
    }
  }
  return 0;
}

async function transcript(rec: Recording, wait: boolean, speed: number): Promise<number> {
  const h = rec.header;
  const id = (h.identity ?? {}) as { subject?: string; groups?: string[] };
  const started = typeof h.timestamp === "number" ? new Date(h.timestamp * 1000).toISOString() : "unknown time";
  const conn = String(h.connection ?? "");
  const out = (s: string) => process.stdout.write(s);
  out(`-- recording of session ${String(h.session_id ?? "")}: ${String(h.protocol ?? "sql")} connection ${conn}, identity ${id.subject ?? "?"}${id.groups?.length ? ` (${id.groups.join(", ")})` : ""}, started ${started}\n\n`);
  const pace = pacer(wait, speed);
  let cols: Column[] | undefined;
  let rows: (string | null)[][] = [];
  let q: Query | undefined;
  let omitted: { unit: string; count: number; limit: number } | undefined;
  const endResult = () => {
    if (!cols) return;
    let table = formatAligned(cols, rows);
    if (omitted && omitted.unit === "rows") {
      table = table.replace(/\(\d+ rows?\)\n$/, `(${rows.length + omitted.count} rows; the first ${rows.length} recorded, ${omitted.count} left out by recordings.maxRowsPerResult = ${omitted.limit})\n`);
    }
    out(table + "\n");
    cols = undefined;
    rows = [];
    omitted = undefined;
  };
  for (const [t, code, data] of rec.events) {
    await pace(t);
    switch (code) {
      case "q": {
        endResult();
        q = { ...(data as Omit<Query, "t">), t };
        const mark = q.decision === "deny" ? `   -- denied (${q.policy_ids.join(", ")})` : q.decision === "require_approval" ? `   -- held for approval (${q.policy_ids.join(", ")})` : "";
        const params = q.params.length > 0 ? `\n${" ".repeat(formatOffset(t).length)} params: ${JSON.stringify(q.params)}` : "";
        out(`${formatOffset(t)} ${conn}=> ${q.text.replace(/\n/g, "\n" + " ".repeat(formatOffset(t).length + conn.length + 4))}${mark}${params}\n`);
        break;
      }
      case "cols":
        endResult();
        cols = (data as { columns: Column[] }).columns;
        break;
      case "rows":
        for (const r of data as (string | null)[][]) rows.push(r);
        break;
      case "rows_omitted": {
        const d = data as { unit: string; count: number; bytes: number; limit: number };
        if (d.unit === "rows" && cols) omitted = d;
        else out(`-- ${d.count} more COPY data message(s) (${d.bytes} bytes) left out of the recording by recordings.maxRowsPerResult = ${d.limit}\n`);
        break;
      }
      case "done": {
        const d = data as { tag: string; suspended?: boolean };
        if (cols) endResult();
        else if (d.tag) out(`${d.tag}\n`);
        break;
      }
      case "error":
        endResult();
        out(formatError(data as ErrorInfo, q?.text));
        break;
      case "notice":
        out(formatError(data as ErrorInfo));
        break;
      case "copy": {
        const c = data as { direction: string; data: string; binary?: boolean };
        out(c.binary ? `-- ${c.direction === "in" ? "COPY FROM STDIN" : "COPY TO STDOUT"} binary data, ${c.data.length / 2} bytes\n` : c.direction === "out" ? c.data : `-- COPY FROM STDIN data:\n${c.data}`);
        break;
      }
      case "truncated": {
        endResult();
        const d = data as { reason?: string };
        out(`\n-- RECORDING TRUNCATED at ${formatOffset(t)}: ${d.reason ?? "no reason given"}; nothing after this point was recorded (the session went on and is in the audit trail)\n`);
        break;
      }
      case "end": {
        endResult();
        const d = data as { reason?: string; detail?: string };
        out(`-- ${formatOffset(t)} session ended (${d.reason ?? "?"}${d.detail ? `: ${d.detail}` : ""})\n`);
        break;
      }
    }
  }
  endResult();
  return 0;
}

async function against(rec: Recording, dsn: string, dataDir: string, json: boolean): Promise<number> {
  const statements = statementsOf(rec.events);
  let results: Comparison[];
  try {
    results = await runAgainst(statements, { dsn, remasker: loadRemasker(dataDir), textScanned: rec.header.text_values === "scanned" });
  } catch (e) {
    process.stderr.write(`gatehouse replay --against: ${(e as Error).message}\n`);
    return 1;
  }
  const counts = { match: 0, mismatch: 0, skipped: 0 };
  for (const r of results) {
    counts[r.outcome]++;
    if (json) {
      process.stdout.write(JSON.stringify({ command_id: r.commandId, t: r.t, text: r.text, outcome: r.outcome, why: r.why, not_compared: r.notCompared }) + "\n");
      continue;
    }
    const label = r.outcome === "skipped" ? `skipped (${r.why})` : r.outcome === "mismatch" ? `MISMATCH: ${r.why}` : "match";
    process.stdout.write(`${formatOffset(r.t)} ${r.text.replace(/\s+/g, " ").trim()}\n    ${label}\n`);
    if (r.notCompared.length > 0) process.stdout.write(`    not compared: ${r.notCompared.join("; ")}\n`);
  }
  const summary = `${counts.match} match, ${counts.mismatch} mismatch, ${counts.skipped} skipped`;
  if (json) process.stderr.write(summary + "\n");
  else process.stdout.write(`\n${summary}\n`);
  return counts.mismatch > 0 ? 1 : 0;
}
