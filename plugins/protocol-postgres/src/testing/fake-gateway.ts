// FAKE GATEWAY for tests only: a stand-in for the listener service's
// GatewayContext (token verifier, policy service, audit publisher are other
// processes). It accepts one fixed token, decides with a test-only rule, and
// keeps recorded events in memory. The plugin under test is real, and so are
// PostgreSQL and the clients the tests drive through it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditEvent, Command, Decision, Effect, type Connection, type Identity, type Statement } from "@gatehouse/proto";
import { AuthError, DependencyError, type DecisionResult, type GatewayContext, type RecordingWriter, type RunningListener } from "@gatehouse/plugin-sdk";
import { createLogger, type ConnectionConfig, type ListenerConfig, type Logger } from "@gatehouse/runtime";
import plugin from "../index.js";

export const GOOD_TOKEN = "good-token";
/** Statements mentioning this word are denied by the fake policy "test-forbid". */
export const FORBIDDEN = "gh_forbidden";
/** Statements mentioning this word require approval (policy "test-approval"). */
export const NEEDS_APPROVAL = "gh_needs_approval";

export class FakeGateway implements GatewayContext {
  readonly listenerId = "test-listener-1";
  readonly log: Logger = createLogger("protocol-postgres-test", process.env.TEST_LOG_LEVEL ?? "silent");
  readonly dataDir: string;
  readonly events: AuditEvent[] = [];
  readonly connections: Record<string, ConnectionConfig>;
  readonly passwords: Record<string, string> = {};
  /** When set, decide() throws DependencyError("policy", failDecide). */
  failDecide: string | undefined;
  /** When set, record() throws DependencyError("audit", failRecord). */
  failRecord: string | undefined;
  decideCalls = 0;
  /** FAKE recording sink: what the plugin wrote per recording, in memory (the JetStream writer is tested in services/listener). */
  readonly recordings = new Map<string, { kind: string; text: string; closed: boolean }>();
  /** Rows per result set the fake recordings keep (0 = all), as recordings.maxRowsPerResult. */
  recordingMaxRows = 0;
  private sessions = 0;

  constructor(connections?: Record<string, ConnectionConfig>) {
    this.dataDir = mkdtempSync(join(tmpdir(), "gh-pg-test-"));
    this.connections = connections ?? {
      demo: { protocol: "postgres", upstream: { host: "127.0.0.1", port: 5432, database: "test", user: "postgres", sslmode: "prefer" }, tags: { env: "test" } },
      sshbox: { protocol: "ssh", upstream: { host: "127.0.0.1", port: 22, database: "", user: "root" }, tags: {} },
    };
  }

  connection(name: string): ConnectionConfig | undefined {
    return this.connections[name];
  }
  connectionNames(protocol: string): string[] {
    return Object.keys(this.connections).filter((n) => this.connections[n]!.protocol === protocol);
  }
  upstreamPassword(name: string): string | undefined {
    return this.passwords[name];
  }

  async authenticate(token: string, clientName: string): Promise<Identity> {
    if (token !== GOOD_TOKEN) throw new AuthError("signature", "token signature does not verify against the issuer's keys");
    return { subject: "agent-1", name: clientName, groups: ["agents"], kind: "agent", issuer: "test", tokenId: "", clientId: "", expiresAtUnix: 0 };
  }

  async decide(_identity: Identity, _connection: Connection, command: Command): Promise<DecisionResult> {
    this.decideCalls++;
    if (this.failDecide) throw new DependencyError("policy", this.failDecide);
    if (command.statements.length === 0) command.statements = classifyForTest(command.text);
    const text = command.text.toLowerCase();
    let effect = Effect.EFFECT_ALLOW;
    let ids: string[] = ["test-allow-all"];
    let reason = "";
    if (text.includes(FORBIDDEN)) {
      effect = Effect.EFFECT_DENY;
      ids = ["test-forbid"];
      reason = `statements on ${FORBIDDEN} are forbidden in tests`;
    } else if (text.includes(NEEDS_APPROVAL)) {
      effect = Effect.EFFECT_REQUIRE_APPROVAL;
      ids = ["test-approval"];
      reason = "needs a human";
    }
    const decision = Decision.fromPartial({
      effect,
      policyIds: ids,
      reason,
      policyVersion: "test",
      classified: command.statements,
      statements: command.statements.map((s, index) => ({ index, effect, action: s.action, policyIds: ids, reason })),
      cacheable: true,
    });
    return { decision, decidedBy: "policy" };
  }

  async record(event: AuditEvent): Promise<void> {
    if (this.failRecord) throw new DependencyError("audit", this.failRecord);
    this.push(event);
  }

  recordLater(event: AuditEvent): void {
    this.push(event);
  }

  recording(sessionId: string, kind: string): RecordingWriter {
    const r = { kind, text: "", closed: false };
    this.recordings.set(sessionId, r);
    const maxRowsPerResult = this.recordingMaxRows;
    return {
      maxRowsPerResult,
      write(chunk: string) {
        if (r.closed) throw new Error(`recording ${sessionId} written after close`);
        if (!chunk.endsWith("\n")) throw new Error("a recording write must hold complete lines");
        r.text += chunk;
      },
      async close() {
        r.closed = true;
      },
    };
  }

  /** The JSON lines of a recording. */
  recordingLines(sessionId: string): unknown[] {
    const r = this.recordings.get(sessionId);
    if (!r) throw new Error(`no recording for ${sessionId}`);
    return r.text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as unknown);
  }

  newSessionId(): string {
    this.sessions++;
    return `test-session-${this.sessions}`;
  }

  /** Round-trip through protobuf so every event is known to be encodable. */
  private push(event: AuditEvent): void {
    this.events.push(AuditEvent.decode(AuditEvent.encode(event).finish()));
  }

  /** Recorded events of one kind, optionally for one session. */
  ofKind<K extends NonNullable<AuditEvent["body"]>["$case"]>(kind: K, sessionId?: string): Extract<NonNullable<AuditEvent["body"]>, { $case: K }>[] {
    const out: Extract<NonNullable<AuditEvent["body"]>, { $case: K }>[] = [];
    for (const e of this.events) {
      if (e.body?.$case === kind && (sessionId === undefined || e.sessionId === sessionId)) out.push(e.body as Extract<NonNullable<AuditEvent["body"]>, { $case: K }>);
    }
    return out;
  }

  /** Command events whose text contains `needle`. */
  commands(needle: string): Command[] {
    return this.ofKind("command")
      .map((b) => b.command.command!)
      .filter((c) => c.text.includes(needle));
  }

  /** The result event of a command. */
  resultOf(commandId: string) {
    return this.ofKind("result").find((r) => r.result.commandId === commandId)?.result;
  }

  cleanup(): void {
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Test-only classification: first keyword of each ';'-separated part. Not the real parser. */
function classifyForTest(text: string): Statement[] {
  return text
    .split(";")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const kind = (s.match(/^[a-z_]+/i)?.[0] ?? "unknown").toLowerCase();
      return { kind, action: `sql:${kind}`, tables: [], writeTables: [], hasWhere: false, functions: [], nestedWrites: [], flags: [], location: 0, length: 0 };
    });
}

export interface TestListener {
  gw: FakeGateway;
  listener: RunningListener;
  port: number;
  stop(): Promise<void>;
}

/** Start the real plugin on a free port with the fake gateway. */
export async function startTestListener(config: Partial<ListenerConfig> = {}, gw = new FakeGateway()): Promise<TestListener> {
  const listener = await plugin.start(gw, { host: "127.0.0.1", port: 0, ...config });
  return {
    gw,
    listener,
    port: listener.port,
    async stop() {
      await listener.stop();
      gw.cleanup();
    },
  };
}

/** Poll until `check` returns a value (events are recorded asynchronously); fails after `ms`. */
export async function eventually<T>(check: () => T | undefined | false, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
