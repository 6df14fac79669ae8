// Event bytes -> rows. The audit writer and the verifier both use this, so a
// verifier re-derives exactly the rows the writer stored.
import { AuditBatch, AuditEvent } from "@gatehouse/proto";
import { eventRows, undecodableRow, type EventRow } from "@gatehouse/audit-store";
import { batchEventSlices } from "./batch.js";

/** chain_index of a leaf whose bytes are a whole message that is not a usable AuditBatch. */
export const UNDECODABLE_INDEX = 0xffffffff;

/** Why a message is not a usable AuditBatch, or undefined when it is one with events. */
export function batchProblem(data: Uint8Array): string | undefined {
  let decoded: AuditBatch;
  try {
    decoded = AuditBatch.decode(data);
  } catch (e) {
    return `not an AuditBatch: ${(e as Error).message}`;
  }
  return decoded.events.length === 0 ? "AuditBatch without events" : undefined;
}

/**
 * Rows for one chained leaf. For an undecodable message the row's time is the
 * JetStream message time, which the bytes do not hold (`fallbackMicros`).
 */
export function deriveRows(bytes: Uint8Array, streamSeq: number, index: number, fallbackMicros: number): EventRow[] {
  if (index === UNDECODABLE_INDEX) {
    return [undecodableRow(streamSeq, bytes, batchProblem(bytes) ?? "undecodable", fallbackMicros)];
  }
  return eventRows(AuditEvent.decode(bytes), streamSeq, fallbackMicros);
}

export interface LeafInput {
  /** Index within the message, or UNDECODABLE_INDEX for a whole undecodable message. */
  index: number;
  eventId: string;
  /** The bytes that are hashed and stored. */
  bytes: Uint8Array;
  event?: AuditEvent;
}

/**
 * The chain leaves of one JetStream message. An event without an id or a time
 * gets them from its stream position / message time and is re-encoded (the
 * stored bytes then hold everything its rows show); all others are taken as
 * published, byte for byte.
 */
export function messageLeaves(data: Uint8Array, streamSeq: number, messageMicros: number): LeafInput[] {
  // The wire walk finds the events without decoding the batch as a whole; each
  // event is decoded once, here, and reused for its rows.
  const slices = batchEventSlices(data);
  const undecodable = (): LeafInput[] => [{ index: UNDECODABLE_INDEX, eventId: `undecodable:${streamSeq}`, bytes: data }];
  if (slices instanceof Error || slices.length === 0) return undecodable();
  const out: LeafInput[] = [];
  for (let i = 0; i < slices.length; i++) {
    let bytes = slices[i]!;
    let event: AuditEvent;
    try {
      event = AuditEvent.decode(bytes);
    } catch {
      return undecodable();
    }
    if (!event.id || event.timeUnixMicros <= 0) {
      event = { ...event, id: event.id || `seq:${streamSeq}:${i}`, timeUnixMicros: event.timeUnixMicros > 0 ? event.timeUnixMicros : messageMicros };
      bytes = AuditEvent.encode(event).finish();
    }
    out.push({ index: i, eventId: event.id, bytes, event });
  }
  return out;
}
