// Every query an auditor runs on the audit store is itself audited: one
// AuditorQuery event per console page, dashboard, recording view or API query,
// with the auditor's identity, published to the JetStream audit stream like a
// listener's events. Results are released only after JetStream acknowledged the
// event; if it cannot be recorded the caller gets AuditUnrecorded (a 503) and
// sees nothing (fail closed). The audit store writes the event as a row of type
// `auditor_query` (packages/audit-store/src/auditor-rows.ts).
import { randomUUID } from "node:crypto";
import type { AuditEvent, Identity } from "@gatehouse/proto";
import { RpcError, Status, type AuditPublisher, type Logger, type ServiceClient } from "@gatehouse/runtime";
import type { AuditServiceService } from "@gatehouse/proto";

export interface StoreQuery {
  sql: string;
  params: Record<string, string>;
  maxRows?: number;
}

export interface StoreResult {
  columns: string[];
  rows: Record<string, unknown>[];
  truncated: boolean;
}

export interface AuditorRequest {
  identity: Identity;
  /** "console" or "api". */
  via: string;
  /** AuditorQuery.kind: "sessions", "session", "dashboard:denied", "recording", "sql"... */
  kind: string;
  /** What the auditor chose (filters, ids); never a token. */
  params: Record<string, string>;
}

/** The event could not be recorded: nothing was shown. */
export class AuditUnrecorded extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuditUnrecorded";
  }
}

/** The store refused or failed the query (the failure is recorded too). */
export class StoreQueryError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
    this.name = "StoreQueryError";
  }
}

function httpStatus(e: RpcError): number {
  switch (e.code) {
    case Status.INVALID_ARGUMENT:
      return 400;
    case Status.UNAVAILABLE:
    case Status.DEADLINE_EXCEEDED:
      return 503;
    default:
      return 502;
  }
}

export interface AuditorQueries {
  /**
   * Run the queries (concurrently), record one AuditorQuery event for all of
   * them, and return their results once the event is durable.
   */
  run(req: AuditorRequest, queries: StoreQuery[]): Promise<StoreResult[]>;
  /**
   * Like run(), for a page whose later queries depend on earlier results: `steps`
   * calls exec() as often as it needs; one event records every query it ran.
   */
  runSteps<T>(req: AuditorRequest, steps: (exec: (queries: StoreQuery[]) => Promise<StoreResult[]>) => Promise<T>): Promise<T>;
}

export function auditorQueries(audit: ServiceClient<typeof AuditServiceService>, publisher: AuditPublisher, log: Logger, listenerId = "api"): AuditorQueries {
  // Event ids are "<session>:<n>" like the listeners'; one "session" per api process.
  const sessionId = `api-${randomUUID()}`;
  let n = 0;
  const runSteps = async <T>(req: AuditorRequest, steps: (exec: (queries: StoreQuery[]) => Promise<StoreResult[]>) => Promise<T>): Promise<T> => {
    const started = process.hrtime.bigint();
    const ran: string[] = [];
    let rows = 0;
    let failure: StoreQueryError | undefined;
    const exec = async (queries: StoreQuery[]): Promise<StoreResult[]> => {
      for (const q of queries) ran.push(q.sql.trim());
      const settled = await Promise.allSettled(queries.map((q) => audit.query({ sql: q.sql, maxRows: q.maxRows ?? 0, params: q.params })));
      const results: StoreResult[] = [];
      for (const s of settled) {
        if (s.status === "fulfilled") {
          results.push({ columns: s.value.columns, rows: s.value.rows.map((r) => JSON.parse(r) as Record<string, unknown>), truncated: s.value.truncated });
          rows += s.value.rows.length;
        } else {
          const e = s.reason as Error;
          failure ??= e instanceof RpcError ? new StoreQueryError(`audit service: ${e.message}`, httpStatus(e), Status[e.code] ?? "error") : new StoreQueryError(`audit service: ${e.message}`, 502, "error");
        }
      }
      if (failure) throw failure;
      return results;
    };
    let value: T | undefined;
    let thrown: unknown;
    try {
      value = await steps(exec);
    } catch (e) {
      thrown = e;
    }
    const event: AuditEvent = {
      id: `${sessionId}:${++n}`,
      timeUnixMicros: Date.now() * 1000,
      sessionId,
      connection: "",
      protocol: "http",
      identity: req.identity,
      listenerId,
      body: {
        $case: "auditorQuery",
        auditorQuery: {
          kind: req.kind,
          query: ran.join(";\n"),
          params: req.params,
          rows,
          durationMicros: Number((process.hrtime.bigint() - started) / 1000n),
          error: failure?.message ?? (thrown ? String((thrown as Error).message ?? thrown) : ""),
          via: req.via,
        },
      },
    };
    try {
      await publisher.record(event);
    } catch (e) {
      log.error({ subject: req.identity.subject, kind: req.kind, err: (e as Error).message }, "auditor query refused: its audit event was not recorded");
      throw new AuditUnrecorded(`the audit trail did not record this query, so its result is withheld: ${(e as Error).message}. Try again when the audit stream is available.`);
    }
    if (thrown !== undefined) throw thrown;
    return value as T;
  };
  return {
    runSteps,
    run: (req, queries) => runSteps(req, (exec) => exec(queries)),
  };
}
