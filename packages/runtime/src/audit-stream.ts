// The JetStream stream that holds the audit trail between listeners and the audit
// service. Both sides call ensureAuditStream() at start, so it creates the stream
// or brings an existing one to this configuration (idempotent).
//
// Limits, chosen for an audit log:
// - no max age, no max messages, no max bytes: nothing ages out on its own. The
//   audit service acks after writing to ClickHouse, but the stream keeps the
//   messages (limits retention) as a second copy. Operators that need a bound
//   set max_bytes/max_age on the stream themselves; ensureAuditStream() keeps
//   whatever limits it finds.
// - discard "new": if an operator-set limit is ever reached the stream refuses
//   new events (publishers fail, listeners refuse statements: fail closed)
//   instead of silently dropping old audit history.
// - deny_delete / deny_purge: messages cannot be removed through the API.
// - duplicate window 2 minutes keyed by Nats-Msg-Id: a publisher retrying a
//   batch with the same id is stored once.
// Only features of NATS server 2.9 are used.
import type { NatsConnection } from "@nats-io/transport-node";
import {
  DiscardPolicy,
  JetStreamApiError,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";

export const AUDIT_STREAM = "GATEHOUSE_AUDIT";
export const AUDIT_SUBJECTS = "gatehouse.audit.>";
export const AUDIT_EVENTS_SUBJECT = "gatehouse.audit.events";
/** Duplicate window (ms): a retried batch within this window is stored once. */
export const AUDIT_DUPLICATE_WINDOW_MS = 2 * 60_000;

const NANOS_PER_MS = 1_000_000;

/** Settings enforced on every start, also on an existing stream. */
function enforcedSettings() {
  return {
    description: "Gatehouse audit trail (durable, deduplicated, deletes and purges denied)",
    subjects: [AUDIT_SUBJECTS],
    discard: DiscardPolicy.New,
    duplicate_window: AUDIT_DUPLICATE_WINDOW_MS * NANOS_PER_MS,
    deny_delete: true,
    deny_purge: true,
  };
}

/** The full configuration of a new audit stream. */
export function auditStreamConfig(name = AUDIT_STREAM): Partial<StreamConfig> & { name: string } {
  return {
    name,
    ...enforcedSettings(),
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    max_age: 0,
    max_msgs: -1,
    max_bytes: -1,
    num_replicas: 1,
  };
}

/** Create the audit stream, or update an existing one to the audit settings. */
export async function ensureAuditStream(nc: NatsConnection, name = AUDIT_STREAM): Promise<void> {
  let jsm;
  try {
    jsm = await jetstreamManager(nc);
  } catch (e) {
    throw new Error(
      `JetStream is not available on the NATS server (${(e as Error).message}): start nats-server with -js (JetStream enabled)`,
    );
  }
  let existing: StreamConfig | undefined;
  try {
    existing = (await jsm.streams.info(name)).config;
  } catch (e) {
    if (!(e instanceof JetStreamApiError && e.status === 404)) {
      throw new Error(`cannot read audit stream ${name}: ${(e as Error).message}`);
    }
  }
  try {
    if (!existing) {
      await jsm.streams.add(auditStreamConfig(name));
      return;
    }
    // Keep operator-chosen limits and storage (storage cannot change on update).
    const settings = enforcedSettings();
    const needsUpdate =
      existing.subjects?.join(",") !== AUDIT_SUBJECTS ||
      existing.discard !== settings.discard ||
      existing.duplicate_window !== settings.duplicate_window ||
      !existing.deny_delete ||
      !existing.deny_purge;
    if (needsUpdate) await jsm.streams.update(name, { ...existing, ...settings });
  } catch (e) {
    // Another copy of a service may have created it at the same moment.
    if (!existing && e instanceof JetStreamApiError && (await streamExists(jsm, name))) return;
    throw new Error(`cannot create or update audit stream ${name}: ${(e as Error).message}`);
  }
}

async function streamExists(jsm: Awaited<ReturnType<typeof jetstreamManager>>, name: string): Promise<boolean> {
  try {
    await jsm.streams.info(name);
    return true;
  } catch {
    return false;
  }
}
