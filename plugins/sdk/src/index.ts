// The plugin SDK: what a protocol plugin gets from the gateway and must provide.
//
// A protocol plugin decodes its wire protocol, turns each client request into a
// `Command`, and asks the gateway (this context) who the client is, whether the
// command may run, and to record it durably before it goes upstream. It never
// talks to NATS, Cedar or ClickHouse itself, so adding a protocol changes nothing
// in the services.
import type { AuditEvent, Command, Connection, Decision, Identity } from "@gatehouse/proto";
import type { ConnectionConfig, ListenerConfig, Logger } from "@gatehouse/runtime";

/** Why a client could not be authenticated; `check` names the failed check. */
export class AuthError extends Error {
  constructor(
    readonly check: string,
    message: string,
  ) {
    super(message);
    this.name = "AuthError";
  }
}

/**
 * A dependency of the data path did not answer (fail closed). `dependency` is
 * "policy" or "audit"; the plugin turns it into a protocol error for this one
 * command and keeps the session open.
 */
export class DependencyError extends Error {
  constructor(
    readonly dependency: "policy" | "audit" | "approval" | "masking",
    message: string,
  ) {
    super(message);
    this.name = "DependencyError";
  }
}

export interface DecisionResult {
  decision: Decision;
  /** "policy" when the policy service answered, "cache" when a cached decision was reused. */
  decidedBy: "policy" | "cache";
}

/** What the gateway offers a protocol plugin. */
export interface GatewayContext {
  /** Unique id of this listener process (goes on every audit event). */
  readonly listenerId: string;
  readonly log: Logger;
  /** Directory for runtime state (dev certificates...). */
  readonly dataDir: string;
  /** A configured connection by name, with upstream credentials (never sent to clients). */
  connection(name: string): ConnectionConfig | undefined;
  /** Names of the configured connections of one protocol (for "unknown connection" errors). */
  connectionNames(protocol: string): string[];
  /** The upstream password of a connection (from its passwordEnv), if any. */
  upstreamPassword(name: string): string | undefined;
  /** Verify an OIDC access token (or API key); throws AuthError naming the failed check. */
  authenticate(token: string, clientName: string): Promise<Identity>;
  /**
   * Decide a command. Fills in `command.statements` and `command.fingerprint`
   * when they are empty. Throws DependencyError("policy") when no decision arrives
   * within the deadline.
   */
  decide(identity: Identity, connection: Connection, command: Command): Promise<DecisionResult>;
  /**
   * Record an event durably: resolves once JetStream acknowledged it. Throws
   * DependencyError("audit") when no ack arrives within the deadline.
   */
  record(event: AuditEvent): Promise<void>;
  /** Record an event without waiting (retried in the background until acked). */
  recordLater(event: AuditEvent): void;
  /** Next event id for a session: "<session id>:<n>", deterministic and unique. */
  newSessionId(): string;
  /**
   * Hold a command whose decision is REQUIRE_APPROVAL until approvers decide: a
   * matching standing grant settles it at once ("granted"); otherwise a ticket is
   * opened, `onHold` is called (tell the client and wait), and the promise resolves
   * with the outcome. Aborting `signal` withdraws the ticket ("withdrawn"). Throws
   * DependencyError("approval") when the approval service cannot be reached (fail
   * closed). Absent when approvals are not set up: treat REQUIRE_APPROVAL as a denial.
   */
  requestApproval?(request: ApprovalRequest): Promise<ApprovalOutcome>;
  /**
   * A session recording (e.g. an asciicast v2 of an SSH shell): chunks are published
   * in order to JetStream subject gatehouse.recording.<sessionId> (stream RECORDINGS,
   * deletes and purges denied). Absent when recordings are not set up.
   */
  recording?(sessionId: string, kind: string): RecordingWriter;
  /**
   * Masking engine of this listener (recognizers and key loaded once). Absent when
   * masking is not set up: a plugin then refuses commands whose decision carries a
   * masking plan (fail closed) and leaves audit text unmasked.
   */
  readonly masking?: MaskingRuntime;
}

// ------------------------------------------------------------------ masking

export type MaskStrategyKind = "redact" | "partial" | "hash" | "null" | "clear";
export interface MaskStrategy {
  kind: MaskStrategyKind;
  /** partial: characters kept at the end. */
  keepLast?: number;
}

export interface MaskTextAction {
  entity: string;
  strategy: MaskStrategyKind;
}

/** What a protocol plugin needs to mask values; same code whichever protocol calls it. */
export interface MaskingRuntime {
  /** Id of the HMAC key used by the "hash" strategy (never the key itself). */
  readonly keyId: string;
  /** Mask a whole value of a masked column; null means SQL NULL. */
  maskValue(value: string, entity: string, strategy: MaskStrategy): string | null;
  /**
   * Optional fast path for text columns: the masked UTF-8 bytes of a value given
   * as its UTF-8 bytes, or undefined when this runtime has none for the value or
   * strategy (the caller then uses maskValue). Equal to maskValue's result.
   */
  maskValueUtf8?(value: Uint8Array, entity: string, strategy: MaskStrategy): Buffer | undefined;
  /**
   * Optional batched "hash" strategy for text cells: queue the token of the UTF-8
   * bytes src[from..to) to be written at dst[at..at + hashTokenBytes) and return
   * true, or return false (nothing queued) when this value cannot be queued; the
   * caller then uses maskValueUtf8 or maskValue. Queued tokens are written by
   * settle(), which must run before dst is read or sent.
   */
  deferHashToken?(src: Uint8Array, from: number, to: number, entity: string, dst: Uint8Array, at: number): boolean;
  /** Length in bytes of every hash token (the hole a deferred token fills). */
  readonly hashTokenBytes?: number;
  /** Write every queued hash token (deferHashToken); cheap when none is queued. */
  settle?(): void;
  /**
   * A replacement that is valid input for the column type `typeOid` (int, numeric,
   * date, uuid...), stable for the same value; null when only NULL fits.
   */
  replaceTyped(typeOid: number, entity: string, value: string): string | null;
  /**
   * Find confidential values in free text and mask each with strategyFor(entity);
   * findings whose strategy is "clear" stay.
   */
  maskText(text: string, strategyFor: (entity: string) => MaskStrategy): { text: string; actions: MaskTextAction[] };
}

// ---------------------------------------------------------------- recordings

/** Ordered chunks of one recording; never throws (failures are logged by the gateway). */
export interface RecordingWriter {
  /**
   * Data rows of one result set a recording keeps (0 = all); past it a plugin records
   * only how many rows and bytes it left out (an explicit marker, never silent).
   */
  readonly maxRowsPerResult: number;
  /** Append a chunk (for asciicast: one JSON line, header first). */
  write(chunk: string): void;
  /** Publish what is buffered and end the recording; resolves when acknowledged. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------- approvals

export interface ApprovalRequest {
  identity: Identity;
  connection: Connection;
  /** The command as it will be recorded (text already masked if masking applies). */
  command: Command;
  decision: Decision;
  /** Abort to withdraw the ticket (client cancel or disconnect). */
  signal?: AbortSignal;
  /** Called once a ticket is open and the command is held. */
  onHold?(hold: ApprovalHold): void;
}

export interface ApprovalHold {
  ticketId: string;
  /** Where approvers decide on the ticket (web console). */
  url: string;
  expiresAtUnixMs: number;
  approverGroups: string[];
}

export interface ApprovalOutcome {
  /** "approved" and "granted" mean: run the command. */
  outcome: "approved" | "granted" | "denied" | "expired" | "withdrawn";
  ticketId: string;
  grantId: string;
  /** Subjects whose approval let the command run (the grant's granter for "granted"). */
  approvers: string[];
  /** Human-readable: "denied by bob: not during the freeze", "expired after 15m ...". */
  reason: string;
}

export interface RunningListener {
  readonly protocol: string;
  readonly host: string;
  readonly port: number;
  /** Stop accepting, end sessions cleanly, resolve when done. */
  stop(): Promise<void>;
}

export interface ProtocolPlugin {
  /** Protocol name as used in `connections.<name>.protocol` and `listeners.<name>`. */
  readonly protocol: string;
  start(ctx: GatewayContext, config: ListenerConfig): Promise<RunningListener>;
}

/** A plugin module's default export. */
export type ProtocolPluginModule = { default: ProtocolPlugin };

/** Wall-clock time in Unix microseconds (monotonic within a process). */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * The envelope every audit event of one session carries: session, connection,
 * protocol, identity, listener, and a deterministic "<session>:<n>" id. Protocol
 * plugins extend it with their own event builders.
 */
export class SessionEvents {
  readonly ids: EventIds;
  constructor(
    readonly protocol: string,
    readonly sessionId: string,
    public connection: string,
    readonly listenerId: string,
    public identity: Identity | undefined,
  ) {
    this.ids = new EventIds(sessionId);
  }

  event(body: AuditEvent["body"], id = this.ids.next()): AuditEvent {
    return {
      id,
      timeUnixMicros: nowMicros(),
      sessionId: this.sessionId,
      connection: this.connection,
      protocol: this.protocol,
      identity: this.identity,
      listenerId: this.listenerId,
      body,
    };
  }
}

/** Helper for session-scoped event ids: "<session>:<n>". */
export class EventIds {
  private n = 0;
  constructor(readonly sessionId: string) {}
  next(): string {
    this.n += 1;
    return `${this.sessionId}:${this.n}`;
  }
}
