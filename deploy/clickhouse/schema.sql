-- Gatehouse audit store schema (ClickHouse 26.x; also loaded into embedded chDB).
-- Idempotent: every statement is CREATE ... IF NOT EXISTS or ALTER ... MODIFY SETTING. The audit service runs
-- this file at start; against a server you can also run
--   clickhouse-client --multiquery < deploy/clickhouse/schema.sql
--
-- One row per audit record. One bus CommandEvent becomes two rows: type
-- 'command' (event_id = the bus event id) and type 'decision' (event_id = the bus
-- event id + ':decision'), so an auditor finds exactly one command row and one
-- decision row per statement.
--
-- Exactly-once view: the audit service may write an event again after a crash
-- (it acks JetStream only after the insert). ReplacingMergeTree ordered by
-- event_id collapses such copies, but only when parts merge. Queries where
-- exactness matters (counts, evidence exports) must read `events FINAL` (or
-- group by event_id with argMax); the views below already do.

CREATE DATABASE IF NOT EXISTS gatehouse;

CREATE TABLE IF NOT EXISTS gatehouse.events
(
    event_id            String,
    stream_seq          UInt64,
    time                DateTime64(6, 'UTC'),
    -- session_start, session_end, command, decision, result, auth_failure, undecodable
    type                LowCardinality(String),
    session_id          String,
    connection          LowCardinality(String),
    protocol            LowCardinality(String),
    listener_id         LowCardinality(String),
    identity_subject    String,
    identity_name       String,
    identity_groups     Array(String),
    identity_kind       LowCardinality(String),
    identity_issuer     LowCardinality(String),
    client_address      String,
    command_id          String,
    command_seq         UInt64,
    command_text        String,
    -- Bind parameters as text, NULL for SQL NULL (masking comes later).
    command_params      Array(Nullable(String)),
    statement_kinds     Array(LowCardinality(String)),
    actions             Array(LowCardinality(String)),
    tables              Array(String),
    -- allow, deny, require_approval ('' on rows that are not decisions)
    effect              LowCardinality(String),
    policy_ids          Array(String),
    policy_version      String,
    reason              String,
    decided_by          LowCardinality(String),
    rows                Int64,
    bytes               Int64,
    duration_us         Int64,
    error_code          LowCardinality(String),
    error_message       String,
    status_tag          String,
    startup_parameters  Map(String, String),
    -- JSON object with everything else the event carried.
    details             String,
    -- When the audit service wrote the row; the newest copy wins in FINAL.
    inserted_at         DateTime64(6, 'UTC') DEFAULT now64(6),
    INDEX idx_time time TYPE minmax GRANULARITY 1,
    INDEX idx_seq stream_seq TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(time)
ORDER BY (event_id);

-- Compact parts (all columns in one file) up to 256 MiB: each insert and the first
-- merges then write a handful of files instead of two or three per column, which
-- measured ~20 % more ingest per core (docs/decisions.md). Larger merges are wide.
-- An ALTER, so that a store created before this setting gets it too.
ALTER TABLE gatehouse.events MODIFY SETTING min_bytes_for_wide_part = 268435456;

-- Each statement with its decision and (when it ran) its result.
CREATE VIEW IF NOT EXISTS gatehouse.commands_with_decisions AS
SELECT
    c.time                  AS time,
    c.event_id              AS event_id,
    c.stream_seq            AS stream_seq,
    c.session_id            AS session_id,
    c.connection            AS connection,
    c.protocol              AS protocol,
    c.identity_subject      AS identity_subject,
    c.identity_name         AS identity_name,
    c.identity_groups       AS identity_groups,
    c.identity_kind         AS identity_kind,
    c.command_id            AS command_id,
    c.command_seq           AS command_seq,
    c.command_text          AS command_text,
    c.statement_kinds       AS statement_kinds,
    c.actions               AS actions,
    c.tables                AS tables,
    d.effect                AS effect,
    d.policy_ids            AS policy_ids,
    d.policy_version        AS policy_version,
    d.reason                AS reason,
    d.decided_by            AS decided_by,
    toBool(r.event_id != '') AS has_result,
    r.rows                  AS rows,
    r.bytes                 AS bytes,
    r.duration_us           AS duration_us,
    r.error_code            AS error_code,
    r.error_message         AS error_message,
    r.status_tag            AS status_tag
FROM (SELECT * FROM gatehouse.events FINAL WHERE type = 'command') AS c
LEFT JOIN (SELECT * FROM gatehouse.events FINAL WHERE type = 'decision') AS d
    ON d.session_id = c.session_id AND d.command_id = c.command_id
LEFT JOIN (SELECT * FROM gatehouse.events FINAL WHERE type = 'result') AS r
    ON r.session_id = c.session_id AND r.command_id = c.command_id;

-- Denied statements, newest first.
CREATE VIEW IF NOT EXISTS gatehouse.denied_commands AS
SELECT time, identity_subject, identity_name, connection, command_text, actions, tables, policy_ids, reason
FROM gatehouse.commands_with_decisions
WHERE effect = 'deny'
ORDER BY time DESC;

-- Tamper evidence (packages/audit-integrity, docs/decisions.md). The audit
-- service links events in a hash chain in JetStream order. Every row of an event
-- carries its chain position; the event's first row also carries the event's
-- protobuf bytes as published (base64) and the chain hash after it, so
-- `gatehouse audit verify` can recompute the chain and re-derive every column.
-- Added with ALTER so existing stores gain them too.
ALTER TABLE gatehouse.events ADD COLUMN IF NOT EXISTS chain_pos UInt64 DEFAULT 0;
ALTER TABLE gatehouse.events ADD COLUMN IF NOT EXISTS chain_index UInt32 DEFAULT 0;
ALTER TABLE gatehouse.events ADD COLUMN IF NOT EXISTS chain_hash String DEFAULT '';
ALTER TABLE gatehouse.events ADD COLUMN IF NOT EXISTS event_bytes String DEFAULT '';
ALTER TABLE gatehouse.events ADD INDEX IF NOT EXISTS idx_chain_pos chain_pos TYPE minmax GRANULARITY 1;

-- Signed checkpoints (also kept in the JetStream stream GATEHOUSE_AUDIT_CHECKPOINTS,
-- which is the copy verify trusts; this one must match it).
CREATE TABLE IF NOT EXISTS gatehouse.checkpoints
(
    from_pos            UInt64,
    to_pos              UInt64,
    from_stream_seq     UInt64,
    to_stream_seq       UInt64,
    prev_head           String,
    head                String,
    merkle_root         String,
    time                String,
    key_id              String,
    public_key          String,
    signature           String,
    inserted_at         DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(inserted_at)
ORDER BY from_pos;

-- Masking evidence (plugins/protocol-postgres masking, issue 3): one 'masking' row
-- per command, column (or position) and entity, with the strategy and how many
-- values were masked; never a value. source = 'result' (what the client saw) or
-- 'audit' (bind parameters, query text and error messages masked in the audit trail).
CREATE VIEW IF NOT EXISTS gatehouse.masking_events AS
SELECT
    time,
    event_id,
    session_id,
    connection,
    identity_subject,
    identity_groups,
    command_id,
    JSONExtractString(details, 'column')   AS column,
    JSONExtractInt(details, 'position')    AS position,
    JSONExtractString(details, 'entity')   AS entity,
    JSONExtractString(details, 'strategy') AS strategy,
    JSONExtractString(details, 'source')   AS source,
    JSONExtractString(details, 'key_id')   AS key_id,
    rows                                   AS count
FROM gatehouse.events FINAL
WHERE type = 'masking';

-- Per session: what was masked, how often.
CREATE VIEW IF NOT EXISTS gatehouse.masking_by_session AS
SELECT session_id, any(identity_subject) AS identity_subject, source, column, entity, strategy,
       sum(count) AS values_masked, uniqExact(command_id) AS commands, min(time) AS first_time, max(time) AS last_time
FROM gatehouse.masking_events
GROUP BY session_id, source, column, entity, strategy;

-- Approvals (services/approval, docs/approvals.md). Ticket and grant state changes
-- are rows of type 'approval' (status_tag: ticket_created, vote, approved, denied,
-- expired, withdrawn, grant_created, grant_revoked; details: ticket_id, grant_id,
-- approved_by...). The decision row of a command that needed approval carries
-- details.approval = {ticket_id, grant_id, outcome, approvers}.
--
-- Every executed privileged command (decision require_approval, outcome approved or
-- granted) with the approval service's own record of who approved it: the ticket's
-- 'approved' event, or for a standing grant the 'grant_created' event.
CREATE VIEW IF NOT EXISTS gatehouse.approved_commands AS
SELECT
    c.time                  AS time,
    c.session_id            AS session_id,
    c.command_id            AS command_id,
    c.identity_subject      AS requester,
    c.connection            AS connection,
    c.command_text          AS command_text,
    d.policy_ids            AS policy_ids,
    d.outcome               AS outcome,
    d.ticket_id             AS ticket_id,
    d.grant_id              AS grant_id,
    a.approved_by           AS approvers,
    a.time                  AS approved_at,
    a.event_id              AS approval_event_id,
    toBool(r.event_id != '') AS has_result,
    r.rows                  AS rows,
    r.error_code            AS error_code
FROM
(
    SELECT
        *,
        JSONExtractString(details, 'approval', 'outcome')   AS outcome,
        JSONExtractString(details, 'approval', 'ticket_id') AS ticket_id,
        JSONExtractString(details, 'approval', 'grant_id')  AS grant_id,
        if(outcome = 'granted', concat('grant:', grant_id), concat('ticket:', ticket_id)) AS approval_ref
    FROM gatehouse.events FINAL
    WHERE type = 'decision' AND effect = 'require_approval'
) AS d
INNER JOIN (SELECT * FROM gatehouse.events FINAL WHERE type = 'command') AS c
    ON c.session_id = d.session_id AND c.command_id = d.command_id
LEFT JOIN
(
    SELECT
        event_id,
        time,
        if(status_tag = 'grant_created', concat('grant:', JSONExtractString(details, 'grant_id')), concat('ticket:', JSONExtractString(details, 'ticket_id'))) AS approval_ref,
        JSONExtract(details, 'approved_by', 'Array(String)') AS approved_by
    FROM gatehouse.events FINAL
    WHERE type = 'approval' AND status_tag IN ('approved', 'grant_created')
) AS a
    ON a.approval_ref = d.approval_ref
LEFT JOIN (SELECT * FROM gatehouse.events FINAL WHERE type = 'result') AS r
    ON r.session_id = d.session_id AND r.command_id = d.command_id
WHERE d.outcome IN ('approved', 'granted');

-- Every ticket with its final state, requester, approvers and how long it waited.
CREATE VIEW IF NOT EXISTS gatehouse.approval_tickets AS
SELECT
    JSONExtractString(details, 'ticket_id')                      AS ticket_id,
    argMax(effect, time)                                         AS state,
    argMax(JSONExtractString(details, 'requester'), time)        AS requester,
    any(connection)                                              AS connection,
    any(command_text)                                            AS command_text,
    any(policy_ids)                                              AS policy_ids,
    argMax(JSONExtract(details, 'approved_by', 'Array(String)'), time) AS approved_by,
    argMax(reason, time)                                         AS state_reason,
    min(time)                                                    AS opened_at,
    max(time)                                                    AS last_change_at,
    dateDiff('millisecond', min(time), max(time))                AS wait_ms
FROM gatehouse.events FINAL
WHERE type = 'approval' AND JSONExtractString(details, 'ticket_id') != '' AND status_tag NOT IN ('grant_created', 'grant_revoked')
GROUP BY ticket_id;

-- Session recordings (docs/recordings.md): one row per JetStream chunk of stream
-- RECORDINGS. Concatenating `data` in `seq` order gives the recording (JSON lines:
-- asciicast v2 for terminals, the Gatehouse SQL transcript for SQL sessions).
-- Rows are deterministic per (session_id, seq), so a re-insert after a crash
-- collapses in FINAL.
CREATE TABLE IF NOT EXISTS gatehouse.recordings
(
    session_id   String,
    seq          UInt32,
    kind         LowCardinality(String),
    time         DateTime64(6, 'UTC'),
    stream_seq   UInt64,
    data         String,
    last         Bool,
    bytes        UInt32,
    inserted_at  DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(inserted_at)
ORDER BY (session_id, seq);

-- One row per recorded session.
CREATE VIEW IF NOT EXISTS gatehouse.recording_index AS
SELECT
    session_id,
    any(kind)                                   AS kind,
    count()                                     AS chunks,
    sum(bytes)                                  AS bytes,
    min(time)                                   AS first_time,
    max(time)                                   AS last_time,
    max(last)                                   AS complete,
    -- The marker as the writer emits it; a value "truncated" in a row is never followed by {"reason".
    max(position(data, ',"truncated",{"reason":') > 0) AS truncated
FROM gatehouse.recordings FINAL
GROUP BY session_id;

-- Auditor console and dashboards (services/api console, deploy/grafana). The
-- `events` table is ordered by event_id, so a query over a time range or over all
-- sessions reads the whole table. These tables are kept up to date by
-- materialized views on every insert into `events` and answer the console pages
-- without scanning it. Exactly once: the audit writer may insert the same rows
-- again after a crash, so nothing here sums raw rows. Session and hourly rollups
-- use only duplicate-insensitive aggregates (min, max, uniqExact of event ids,
-- groupUniqArray of (event id, count)); the narrow per-kind tables are
-- ReplacingMergeTree keyed by the event id and read with FINAL.
--
-- A store created before these tables existed fills them once with the INSERT
-- statements in docs/console.md (safe to repeat: the same aggregates and keys).

-- One row per session (after merges): who, where, when, and what happened.
CREATE TABLE IF NOT EXISTS gatehouse.session_summary
(
    session_id        String,
    started_at        SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
    last_at           SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    ended_at          SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    identity_subject  SimpleAggregateFunction(max, String),
    identity_name     SimpleAggregateFunction(max, String),
    connection        SimpleAggregateFunction(max, String),
    protocol          SimpleAggregateFunction(max, String),
    client_address    SimpleAggregateFunction(max, String),
    has_start         SimpleAggregateFunction(max, UInt8),
    any_denied        SimpleAggregateFunction(max, UInt8),
    any_approval      SimpleAggregateFunction(max, UInt8),
    any_approved      SimpleAggregateFunction(max, UInt8),
    any_masked        SimpleAggregateFunction(max, UInt8),
    commands          AggregateFunction(uniqExact, String),
    denied            AggregateFunction(uniqExact, String),
    approvals         AggregateFunction(uniqExact, String),
    masked            AggregateFunction(groupUniqArray, Tuple(String, Int64))
)
ENGINE = AggregatingMergeTree
ORDER BY session_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS gatehouse.session_summary_mv TO gatehouse.session_summary AS
SELECT
    session_id,
    min(time)                                                       AS started_at,
    max(time)                                                       AS last_at,
    maxIf(time, type = 'session_end')                               AS ended_at,
    max(identity_subject)                                           AS identity_subject,
    max(identity_name)                                              AS identity_name,
    max(connection)                                                 AS connection,
    max(protocol)                                                   AS protocol,
    max(client_address)                                             AS client_address,
    max(toUInt8(type = 'session_start'))                            AS has_start,
    max(toUInt8(type = 'decision' AND effect = 'deny'))             AS any_denied,
    max(toUInt8(type = 'decision' AND effect = 'require_approval')) AS any_approval,
    max(toUInt8(type = 'decision' AND effect = 'require_approval'
        AND JSONExtractString(details, 'approval', 'outcome') IN ('approved', 'granted'))) AS any_approved,
    max(toUInt8(type = 'masking'))                                  AS any_masked,
    uniqExactIfState(command_id, type = 'command')                  AS commands,
    uniqExactIfState(command_id, type = 'decision' AND effect = 'deny') AS denied,
    uniqExactIfState(command_id, type = 'decision' AND effect = 'require_approval') AS approvals,
    groupUniqArrayIfState((event_id, rows), type = 'masking')       AS masked
FROM gatehouse.events
WHERE session_id != '' AND type IN ('session_start', 'session_end', 'command', 'decision', 'result', 'masking')
GROUP BY session_id;

-- Statements per hour, identity and connection (decision rows: one per statement).
CREATE TABLE IF NOT EXISTS gatehouse.access_hourly
(
    hour              DateTime('UTC'),
    identity_subject  String,
    connection        LowCardinality(String),
    commands          AggregateFunction(uniqExact, String),
    denied            AggregateFunction(uniqExact, String),
    held              AggregateFunction(uniqExact, String),
    sessions          AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
ORDER BY (hour, identity_subject, connection);

CREATE MATERIALIZED VIEW IF NOT EXISTS gatehouse.access_hourly_mv TO gatehouse.access_hourly AS
SELECT
    toStartOfHour(time)                                   AS hour,
    identity_subject,
    connection,
    uniqExactState(event_id)                              AS commands,
    uniqExactIfState(event_id, effect = 'deny')           AS denied,
    uniqExactIfState(event_id, effect = 'require_approval') AS held,
    uniqExactState(session_id)                            AS sessions
FROM gatehouse.events
WHERE type = 'decision'
GROUP BY hour, identity_subject, connection;

-- Denied statements, ordered by time (read with FINAL: a re-inserted row collapses).
CREATE TABLE IF NOT EXISTS gatehouse.denied_log
(
    time              DateTime64(6, 'UTC'),
    event_id          String,
    session_id        String,
    identity_subject  String,
    connection        LowCardinality(String),
    command_text      String,
    actions           Array(LowCardinality(String)),
    policy_ids        Array(String),
    reason            String,
    inserted_at       DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(time)
ORDER BY (time, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS gatehouse.denied_log_mv TO gatehouse.denied_log AS
SELECT time, event_id, session_id, identity_subject, connection, command_text, actions, policy_ids, reason, inserted_at
FROM gatehouse.events
WHERE type = 'decision' AND effect = 'deny';

-- Masking actions (what was masked, never a value), ordered by time.
CREATE TABLE IF NOT EXISTS gatehouse.masking_log
(
    time              DateTime64(6, 'UTC'),
    event_id          String,
    session_id        String,
    identity_subject  String,
    connection        LowCardinality(String),
    command_id        String,
    column            String,
    entity            LowCardinality(String),
    strategy          LowCardinality(String),
    source            LowCardinality(String),
    count             Int64,
    inserted_at       DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(time)
ORDER BY (time, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS gatehouse.masking_log_mv TO gatehouse.masking_log AS
SELECT time, event_id, session_id, identity_subject, connection, command_id,
       JSONExtractString(details, 'column') AS column, JSONExtractString(details, 'entity') AS entity,
       JSONExtractString(details, 'strategy') AS strategy, JSONExtractString(details, 'source') AS source,
       rows AS count, inserted_at
FROM gatehouse.events
WHERE type = 'masking';

-- Approval ticket and grant changes, ordered by time.
CREATE TABLE IF NOT EXISTS gatehouse.approval_log
(
    time              DateTime64(6, 'UTC'),
    event_id          String,
    session_id        String,
    connection        LowCardinality(String),
    command_id        String,
    command_text      String,
    status_tag        LowCardinality(String),
    state             LowCardinality(String),
    policy_ids        Array(String),
    reason            String,
    ticket_id         String,
    grant_id          String,
    requester         String,
    actor             String,
    approved_by       Array(String),
    inserted_at       DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(time)
ORDER BY (time, event_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS gatehouse.approval_log_mv TO gatehouse.approval_log AS
SELECT time, event_id, session_id, connection, command_id, command_text, status_tag, effect AS state, policy_ids, reason,
       JSONExtractString(details, 'ticket_id') AS ticket_id, JSONExtractString(details, 'grant_id') AS grant_id,
       JSONExtractString(details, 'requester') AS requester, identity_subject AS actor,
       JSONExtract(details, 'approved_by', 'Array(String)') AS approved_by, inserted_at
FROM gatehouse.events
WHERE type = 'approval';

-- Per ticket: final state, requester, approvers, time to decision (ms; NULL while pending).
CREATE VIEW IF NOT EXISTS gatehouse.approval_latency AS
SELECT
    ticket_id,
    argMax(state, time)                                   AS state,
    argMax(requester, time)                               AS requester,
    any(connection)                                       AS connection,
    anyIf(command_text, command_text != '')               AS command_text,
    argMax(approved_by, time)                             AS approved_by,
    min(time)                                             AS opened_at,
    minIf(time, status_tag IN ('approved', 'denied', 'expired', 'withdrawn')) AS decided_at,
    if(countIf(status_tag IN ('approved', 'denied', 'expired', 'withdrawn')) = 0, NULL,
       dateDiff('millisecond', min(time), minIf(time, status_tag IN ('approved', 'denied', 'expired', 'withdrawn')))) AS latency_ms
FROM gatehouse.approval_log FINAL
WHERE ticket_id != '' AND status_tag NOT IN ('grant_created', 'grant_revoked')
GROUP BY ticket_id;

-- Every query an auditor ran (the audit trail records its readers).
CREATE VIEW IF NOT EXISTS gatehouse.auditor_queries AS
SELECT time, event_id, identity_subject, identity_groups, status_tag AS kind, command_text AS query,
       JSONExtractRaw(details, 'params') AS params, JSONExtractString(details, 'via') AS via,
       rows, duration_us, error_message AS error
FROM gatehouse.events FINAL
WHERE type = 'auditor_query';
