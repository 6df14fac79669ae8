// The JetStream stream that keeps session recordings (asciicast v2 of SSH shells...),
// one subject per session: gatehouse.recording.<session id>. Like the audit stream it
// never ages out on its own and denies deletes and purges.
import type { NatsConnection } from "@nats-io/transport-node";
import { DiscardPolicy, JetStreamApiError, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";

export const RECORDING_STREAM = "RECORDINGS";
export const RECORDING_SUBJECTS = "gatehouse.recording.>";
export const recordingSubject = (sessionId: string) => `gatehouse.recording.${sessionId}`;

/** Create the recordings stream (or enforce its protections on an existing one). */
export async function ensureRecordingStream(nc: NatsConnection, name = RECORDING_STREAM): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const enforced = {
    description: "Gatehouse session recordings (deletes and purges denied)",
    subjects: [RECORDING_SUBJECTS],
    discard: DiscardPolicy.New,
    deny_delete: true,
    deny_purge: true,
    duplicate_window: 2 * 60_000 * 1_000_000,
  };
  try {
    const info = await jsm.streams.info(name);
    await jsm.streams.update(name, { ...info.config, ...enforced });
  } catch (e) {
    if (!(e instanceof JetStreamApiError && e.status === 404)) throw e;
    try {
      await jsm.streams.add({ name, ...enforced, storage: StorageType.File, retention: RetentionPolicy.Limits, max_age: 0, max_msgs: -1, max_bytes: -1, num_replicas: 1 });
    } catch (err) {
      // Another listener may have created it at the same moment.
      await jsm.streams.info(name).catch(() => {
        throw err;
      });
    }
  }
}
