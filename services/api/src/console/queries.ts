// The auditor console's ClickHouse queries. Every query text is constant: what
// the auditor chose (filters, ids, time range) is bound through QueryRequest.params
// as `{name:Type}` placeholders, never spliced into the SQL. The tables and views
// are in deploy/clickhouse/schema.sql ("Auditor console and dashboards").

/** Sessions per list page. */
export const PAGE_SIZE = 50;

export interface ConsoleQuery {
  /** What the auditor asked for, recorded as AuditorQuery.kind. */
  kind: string;
  sql: string;
  params: Record<string, string>;
  maxRows?: number;
}

/** Inclusive lower and exclusive upper bound, "YYYY-MM-DD hh:mm:ss" (UTC). */
export interface TimeRange {
  from: string;
  to: string;
}

export interface SessionFilters extends TimeRange {
  identity: string;
  connection: string;
  denied: boolean;
  approved: boolean;
  masked: boolean;
  /** 0-based page. */
  page: number;
}

// Two steps: the page's sessions are chosen from the summary's cheap columns
// (min/max), then the exact counts (uniqExact merges) are computed for those only.
export const SESSION_PAGE_SQL = `SELECT session_id
FROM gatehouse.session_summary
GROUP BY session_id
HAVING max(has_start) = 1
   AND ({identity:String} = '' OR positionCaseInsensitive(max(identity_subject), {identity:String}) > 0)
   AND ({connection:String} = '' OR max(connection) = {connection:String})
   AND min(started_at) >= {from:DateTime64(6, 'UTC')} AND min(started_at) < {to:DateTime64(6, 'UTC')}
   AND ({denied:UInt8} = 0 OR max(any_denied) = 1)
   AND ({approved:UInt8} = 0 OR max(any_approved) = 1)
   AND ({masked:UInt8} = 0 OR max(any_masked) = 1)
ORDER BY min(started_at) DESC, session_id DESC
LIMIT {limit:UInt32} OFFSET {offset:UInt32}`;

export const SESSION_ROWS_SQL = `SELECT
    session_id,
    max(identity_subject) AS identity_subject,
    max(connection) AS connection,
    max(protocol) AS protocol,
    min(started_at) AS started_at,
    max(ended_at) AS ended_at,
    uniqExactMerge(commands) AS commands,
    uniqExactMerge(denied) AS denied,
    uniqExactMerge(approvals) AS approvals,
    arraySum(arrayMap(x -> x.2, groupUniqArrayMerge(masked))) AS masked_values,
    session_id IN (SELECT session_id FROM gatehouse.recordings WHERE session_id IN (SELECT arrayJoin(splitByChar('\\n', {ids:String})))) AS recorded
FROM gatehouse.session_summary
WHERE session_id IN (SELECT arrayJoin(splitByChar('\\n', {ids:String})))
GROUP BY session_id
ORDER BY started_at DESC, session_id DESC`;

export function sessionsQuery(f: SessionFilters): ConsoleQuery {
  return {
    kind: "sessions",
    sql: SESSION_PAGE_SQL,
    params: {
      identity: f.identity,
      connection: f.connection,
      from: f.from,
      to: f.to,
      denied: f.denied ? "1" : "0",
      approved: f.approved ? "1" : "0",
      masked: f.masked ? "1" : "0",
      // One more than shown: tells whether there is a next page.
      limit: String(PAGE_SIZE + 1),
      offset: String(f.page * PAGE_SIZE),
    },
    maxRows: PAGE_SIZE + 1,
  };
}

/**
 * The page's session ids as one String parameter, one id per line (ids never hold
 * a line break: listeners make them from letters, digits and ':'). The server
 * splits it; nothing is spliced into the SQL.
 */
export function sessionRowsQuery(ids: string[]): ConsoleQuery {
  const safe = ids.filter((id) => !id.includes("\n"));
  return { kind: "sessions", sql: SESSION_ROWS_SQL, params: { ids: safe.join("\n") }, maxRows: safe.length + 1 };
}

export const CONNECTIONS_SQL = `SELECT DISTINCT connection FROM gatehouse.access_hourly WHERE connection != '' ORDER BY connection`;

// events is ordered by event_id = "<session id>:<n>" (decisions "<session id>:<n>:decision"),
// so the range [sid + ":", sid + ";") reads only this session's granules. No FINAL
// (it merges every part's range before the filter): a re-inserted row is an exact
// copy, and the page keeps one row per event_id (dedupeEvents).
export const SESSION_EVENTS_SQL = `SELECT
    event_id, time, type, identity_subject, identity_name, identity_groups, identity_kind, identity_issuer,
    client_address, connection, protocol, listener_id, command_id, command_seq, command_text, command_params,
    statement_kinds, actions, tables, effect, policy_ids, policy_version, reason, decided_by,
    rows, bytes, duration_us, error_code, error_message, status_tag, startup_parameters, details
FROM gatehouse.events
WHERE event_id >= {lo:String} AND event_id < {hi:String} AND session_id = {session:String}
ORDER BY time, event_id`;

/** One row per event id (rows of one event id are identical copies). */
export function dedupeEvents(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  const seen = new Set<string>();
  return rows.filter((r) => {
    const id = String(r.event_id);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

export const SESSION_APPROVALS_SQL = `SELECT time, event_id, command_id, status_tag, state, ticket_id, grant_id, requester, actor, approved_by, reason, policy_ids
FROM gatehouse.approval_log FINAL
WHERE session_id = {session:String}
ORDER BY time, event_id`;

export const RECORDING_INDEX_SQL = `SELECT any(kind) AS kind, count() AS chunks, sum(bytes) AS bytes, max(last) AS complete,
    max(position(data, '"truncated"') > 0) AS truncated
FROM gatehouse.recordings FINAL
WHERE session_id = {session:String}`;

export function sessionQueries(sessionId: string): ConsoleQuery[] {
  const params = { session: sessionId, lo: `${sessionId}:`, hi: `${sessionId};` };
  return [
    { kind: "session", sql: SESSION_EVENTS_SQL, params, maxRows: 100_000 },
    { kind: "session", sql: SESSION_APPROVALS_SQL, params: { session: sessionId }, maxRows: 10_000 },
    { kind: "session", sql: RECORDING_INDEX_SQL, params: { session: sessionId }, maxRows: 1 },
  ];
}

/** Chunks of one recording, in order (docs/recordings.md). */
export const RECORDING_SQL = `SELECT seq, kind, time, data, last, bytes
FROM gatehouse.recordings FINAL
WHERE session_id = {session:String}
ORDER BY seq`;

export function recordingQuery(sessionId: string, maxChunks: number): ConsoleQuery {
  return { kind: "recording", sql: RECORDING_SQL, params: { session: sessionId }, maxRows: maxChunks };
}

// ---- Dashboards. Buckets: an hour, or a day for ranges over 7 days.

export type DashboardName = "access" | "denied" | "approvals" | "masking";
export const DASHBOARDS: Array<{ name: DashboardName; title: string }> = [
  { name: "access", title: "Access by identity" },
  { name: "denied", title: "Denied commands" },
  { name: "approvals", title: "Approvals" },
  { name: "masking", title: "Masking" },
];

/** Top identities get their own series; the rest are summed as "others". */
export const TOP_IDENTITIES = 8;

export interface DashboardPanelQuery extends ConsoleQuery {
  panel: string;
}

const range = (r: TimeRange) => ({ from: r.from, to: r.to });

export const ACCESS_OVER_TIME_SQL = `SELECT
    toStartOfInterval(hour, toIntervalHour({bucket_hours:UInt32})) AS bucket,
    if(identity_subject IN (
        SELECT identity_subject FROM gatehouse.access_hourly
        WHERE hour >= toStartOfHour({from:DateTime64(6, 'UTC')}) AND hour < {to:DateTime64(6, 'UTC')}
        GROUP BY identity_subject ORDER BY uniqExactMerge(commands) DESC, identity_subject LIMIT {top:UInt32}
    ), identity_subject, '(others)') AS identity,
    uniqExactMerge(commands) AS commands
FROM gatehouse.access_hourly
WHERE hour >= toStartOfHour({from:DateTime64(6, 'UTC')}) AND hour < {to:DateTime64(6, 'UTC')}
GROUP BY bucket, identity
ORDER BY bucket, identity`;

export const ACCESS_BY_IDENTITY_SQL = `SELECT identity_subject, uniqExactMerge(commands) AS commands, uniqExactMerge(denied) AS denied,
    uniqExactMerge(held) AS held, uniqExactMerge(sessions) AS sessions
FROM gatehouse.access_hourly
WHERE hour >= toStartOfHour({from:DateTime64(6, 'UTC')}) AND hour < {to:DateTime64(6, 'UTC')}
GROUP BY identity_subject
ORDER BY commands DESC, identity_subject
LIMIT 20`;

export const DENIED_OVER_TIME_SQL = `SELECT toStartOfInterval(hour, toIntervalHour({bucket_hours:UInt32})) AS bucket, uniqExactMerge(denied) AS denied
FROM gatehouse.access_hourly
WHERE hour >= toStartOfHour({from:DateTime64(6, 'UTC')}) AND hour < {to:DateTime64(6, 'UTC')}
GROUP BY bucket
ORDER BY bucket`;

export const DENIED_BY_POLICY_SQL = `SELECT policy_id, count() AS denied
FROM gatehouse.denied_log FINAL
ARRAY JOIN policy_ids AS policy_id
WHERE time >= {from:DateTime64(6, 'UTC')} AND time < {to:DateTime64(6, 'UTC')}
GROUP BY policy_id
ORDER BY denied DESC, policy_id
LIMIT 20`;

export const DENIED_BY_IDENTITY_SQL = `SELECT identity_subject, count() AS denied
FROM gatehouse.denied_log FINAL
WHERE time >= {from:DateTime64(6, 'UTC')} AND time < {to:DateTime64(6, 'UTC')}
GROUP BY identity_subject
ORDER BY denied DESC, identity_subject
LIMIT 20`;

export const DENIED_RECENT_SQL = `SELECT time, session_id, identity_subject, connection, command_text, policy_ids, reason
FROM gatehouse.denied_log FINAL
WHERE time >= {from:DateTime64(6, 'UTC')} AND time < {to:DateTime64(6, 'UTC')}
ORDER BY time DESC, event_id DESC
LIMIT 20`;

// Tickets opened in the range, as in the approval_latency view (approval_log is small: one row per ticket change).
const TICKETS = `SELECT ticket_id, argMax(state, time) AS state, min(time) AS opened_at,
        if(countIf(status_tag IN ('approved', 'denied', 'expired', 'withdrawn')) = 0, NULL,
           dateDiff('millisecond', min(time), minIf(time, status_tag IN ('approved', 'denied', 'expired', 'withdrawn')))) AS latency_ms
    FROM gatehouse.approval_log FINAL
    WHERE ticket_id != '' AND status_tag NOT IN ('grant_created', 'grant_revoked')
    GROUP BY ticket_id
    HAVING opened_at >= {from:DateTime64(6, 'UTC')} AND opened_at < {to:DateTime64(6, 'UTC')}`;

export const APPROVAL_STATES_SQL = `SELECT state, count() AS tickets,
    quantileExactIf(0.5)(latency_ms, state = 'approved' OR state = 'denied') AS median_ms,
    quantileExactIf(0.95)(latency_ms, state = 'approved' OR state = 'denied') AS p95_ms
FROM (${TICKETS})
GROUP BY state
ORDER BY tickets DESC, state`;

export const APPROVAL_LATENCY_SQL = `SELECT toStartOfInterval(opened_at, toIntervalHour({bucket_hours:UInt32})) AS bucket, count() AS tickets,
    quantileExactIf(0.5)(latency_ms, state IN ('approved', 'denied')) AS median_ms,
    quantileExactIf(0.95)(latency_ms, state IN ('approved', 'denied')) AS p95_ms
FROM (${TICKETS})
GROUP BY bucket
ORDER BY bucket`;

export const APPROVERS_SQL = `SELECT approver, count() AS approvals
FROM gatehouse.approval_log FINAL
ARRAY JOIN approved_by AS approver
WHERE status_tag = 'approved' AND time >= {from:DateTime64(6, 'UTC')} AND time < {to:DateTime64(6, 'UTC')}
GROUP BY approver
ORDER BY approvals DESC, approver
LIMIT 20`;

export const MASKING_BY_ENTITY_SQL = `SELECT entity, strategy, sum(count) AS values_masked, count() AS events, uniqExact(command_id) AS commands
FROM gatehouse.masking_log FINAL
WHERE time >= {from:DateTime64(6, 'UTC')} AND time < {to:DateTime64(6, 'UTC')}
GROUP BY entity, strategy
ORDER BY values_masked DESC, entity, strategy`;

export const MASKING_OVER_TIME_SQL = `SELECT toStartOfInterval(time, toIntervalHour({bucket_hours:UInt32})) AS bucket, entity, sum(count) AS values_masked
FROM gatehouse.masking_log FINAL
WHERE time >= {from:DateTime64(6, 'UTC')} AND time < {to:DateTime64(6, 'UTC')}
GROUP BY bucket, entity
ORDER BY bucket, entity`;

export const MASKING_BY_COLUMN_SQL = `SELECT column, entity, sum(count) AS values_masked
FROM gatehouse.masking_log FINAL
WHERE time >= {from:DateTime64(6, 'UTC')} AND time < {to:DateTime64(6, 'UTC')}
GROUP BY column, entity
ORDER BY values_masked DESC, column
LIMIT 20`;

export function dashboardQueries(name: DashboardName, r: TimeRange, bucketHours: number): DashboardPanelQuery[] {
  const p = { ...range(r), bucket_hours: String(bucketHours) };
  const kind = `dashboard:${name}`;
  switch (name) {
    case "access":
      return [
        { kind, panel: "access_over_time", sql: ACCESS_OVER_TIME_SQL, params: { ...p, top: String(TOP_IDENTITIES) }, maxRows: 20_000 },
        { kind, panel: "access_by_identity", sql: ACCESS_BY_IDENTITY_SQL, params: range(r) },
      ];
    case "denied":
      return [
        { kind, panel: "denied_over_time", sql: DENIED_OVER_TIME_SQL, params: p, maxRows: 20_000 },
        { kind, panel: "denied_by_policy", sql: DENIED_BY_POLICY_SQL, params: range(r) },
        { kind, panel: "denied_by_identity", sql: DENIED_BY_IDENTITY_SQL, params: range(r) },
        { kind, panel: "denied_recent", sql: DENIED_RECENT_SQL, params: range(r) },
      ];
    case "approvals":
      return [
        { kind, panel: "approval_states", sql: APPROVAL_STATES_SQL, params: range(r) },
        { kind, panel: "approval_latency", sql: APPROVAL_LATENCY_SQL, params: p, maxRows: 20_000 },
        { kind, panel: "approvers", sql: APPROVERS_SQL, params: range(r) },
      ];
    case "masking":
      return [
        { kind, panel: "masking_by_entity", sql: MASKING_BY_ENTITY_SQL, params: range(r) },
        { kind, panel: "masking_over_time", sql: MASKING_OVER_TIME_SQL, params: p, maxRows: 20_000 },
        { kind, panel: "masking_by_column", sql: MASKING_BY_COLUMN_SQL, params: range(r) },
      ];
  }
}
