-- Gatehouse audit store schema (ClickHouse 26.x; also loaded into embedded chDB).
-- Idempotent: every statement is CREATE ... IF NOT EXISTS. The audit service runs
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
