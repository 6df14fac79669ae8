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

/** Helper for session-scoped event ids: "<session>:<n>". */
export class EventIds {
  private n = 0;
  constructor(readonly sessionId: string) {}
  next(): string {
    this.n += 1;
    return `${this.sessionId}:${this.n}`;
  }
}
