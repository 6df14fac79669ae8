// One proxied session after login: client frames are decided and recorded
// before they are forwarded; upstream frames are relayed as byte ranges while
// a FIFO of expected responses tracks which command they belong to, so the
// gateway can record results and slot its own responses (denials, fail-closed
// errors) in exactly where PostgreSQL would have put them.
import type { Socket } from "node:net";
import { Command, Effect, type ApprovalRef, type Connection, type Identity } from "@gatehouse/proto";
import { DependencyError, type ApprovalOutcome, type DecisionResult, type GatewayContext } from "@gatehouse/plugin-sdk";
import type { Logger, UpstreamConfig } from "@gatehouse/runtime";
import { auditParams, PROTOCOL, SessionAudit } from "./audit.js";
import { FrameReader, OutQueue } from "./frames.js";
import { parseRowDescription, type Field, type ResultMasker } from "./masking.js";
import { SqlRecorder, type EndReason, type RecQ } from "./recording.js";
import { describePortal, maskerFor, maskingEvents, prefetchCatalog, prepareCopies, type MaskingSetup } from "./masking-session.js";
import type { PgListenerOptions } from "./options.js";
import {
  errorResponse,
  parseBind,
  parseErrorFields,
  parseExecute,
  parseParse,
  parseQuery,
  parseTag,
  parseTarget,
  ProtocolError,
  readyForQuery,
  T,
  tagRowCount,
  TERMINATE,
  typeName,
  type BindParam,
} from "./protocol.js";
import { sendCancel, type UpstreamSession } from "./upstream.js";

/** Per-command result accumulator. */
interface Track {
  id: string;
  start: number;
  rows: number;
  /** DataRows of the statement being returned (a simple Query may hold several). */
  stmtRows: number;
  bytes: number;
  tag: string;
  errorCode: string;
  errorMessage: string;
  /** Rewrites this command's result frames when its decision carries a masking plan. */
  masker?: ResultMasker;
  /** Recording: the statement's q line, and (extended) where its result columns come from. */
  q?: RecQ;
  portal?: Portal;
  fields?: Field[];
  colsWritten?: boolean;
}

/** How a result ended, where it differs from what the track collected. */
type TrackOutcome = Partial<Pick<Track, "errorCode" | "errorMessage" | "tag">>;

type Entry =
  | { k: "query"; group: number; track: Track }
  | { k: "execute"; group: number; track: Track }
  | { k: "parse"; group: number; name: string; stmt: Prepared }
  | { k: "bind" | "close" | "sync"; group: number }
  /** A client Describe; its RowDescription tells the recording the statement's or portal's columns. */
  | { k: "describe"; group: number; stmt?: Prepared; portal?: Portal }
  | { k: "synthetic"; group: number; bytes: Buffer; rfq: boolean; q?: RecQ; cmdId?: string }
  /** The gateway's own Describe of a portal it masks: its answer is consumed, not relayed. */
  | { k: "maskdescribe"; group: number; track: Track };

interface Prepared {
  text: string;
  decision: DecisionResult;
  /** Group (Sync-delimited batch) in which `decision` was taken. */
  group: number;
  /** Columns from the client's Describe of the statement (formats not known yet). */
  fields?: Field[];
  fieldsRaw?: Buffer;
}

interface Portal {
  stmt: Prepared;
  params: BindParam[];
  resultFormats: number[];
  /** Columns from the client's Describe of the portal. */
  fields?: Field[];
}

export interface SessionInit {
  ctx: GatewayContext;
  log: Logger;
  opts: PgListenerOptions;
  audit: SessionAudit;
  identity: Identity;
  connection: Connection;
  upstreamConfig: UpstreamConfig;
  client: Socket;
  clientLeftover: Buffer;
  upstream: UpstreamSession;
  startedAt: number;
  onEnd: (s: Session) => void;
}

const UPSTREAM_MAX_FRAME = 0x3fffffff;
/** Pause reading the client when this much is buffered and not yet processed. */
const CLIENT_HIGH_WATER = 1 << 20;

/** Whether a command can drop prepared statements upstream (then our map is stale). */
const DROPS_STATEMENTS = /(^|;)\s*(deallocate|discard)\b/i;

export class Session {
  private readonly ctx: GatewayContext;
  private readonly log: Logger;
  private readonly opts: PgListenerOptions;
  private readonly audit: SessionAudit;
  private readonly client: Socket;
  private readonly up: Socket;
  private readonly clientReader: FrameReader;
  private readonly upReader = new FrameReader(UPSTREAM_MAX_FRAME, "upstream");
  private readonly maskingSetup: MaskingSetup;
  /** The session's SQL transcript (docs/recordings.md); absent only when the gateway offers no recordings. */
  private readonly rec: SqlRecorder | undefined;
  private lastQ: { id: string; q: RecQ } | undefined;

  private readonly queue: Entry[] = [];
  private qHead = 0;
  /** Sync-delimited batch number of client messages. */
  private group = 0;
  /** Group in which the upstream reported an error (it skips to Sync). */
  private failedGroup = -1;
  /** Discarding client messages until Sync after a gateway-side error. */
  private discarding = false;
  private txStatus: number;

  private readonly statements = new Map<string, Prepared>();
  private readonly portals = new Map<string, Portal>();

  private readonly clientOut = new OutQueue();
  /** During an upstream read: results finished in it, recorded once the client has them (flushClient). */
  private deferFinish = false;
  private readonly finished: Array<{ tr: Track; over: TrackOutcome; end: number }> = [];
  private readonly upOut = new OutQueue();
  /** upOut holds a message that makes the upstream produce results (Query, Execute, Sync...). */
  private upOutHasWork = false;
  private pumping = false;
  private clientPausedForUp = false;
  private upPausedForClient = false;

  private seq = 0;
  private commands = 0;
  private closed = false;
  private sentTerminate = false;
  private upstreamFatal: string | undefined;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(private readonly init: SessionInit) {
    this.ctx = init.ctx;
    this.log = init.log;
    this.opts = init.opts;
    this.audit = init.audit;
    this.audit.masking = init.ctx.masking;
    this.maskingSetup = { ctx: init.ctx, connection: init.connection.name, tags: init.connection.tags, upstream: init.upstreamConfig, timeoutMs: init.opts.upstreamTimeoutMs };
    // Before the client can open a transaction (a single-backend upstream would make the lookup wait for it).
    prefetchCatalog(this.maskingSetup);
    this.client = init.client;
    this.up = init.upstream.socket;
    this.txStatus = init.upstream.txStatus;
    this.clientReader = new FrameReader(init.opts.maxMessageBytes, "client");
    this.done = new Promise((r) => (this.resolveDone = r));
    this.rec = init.ctx.recording
      ? new SqlRecorder(init.ctx.recording(init.audit.sessionId, "sql"), init.startedAt, { sessionId: init.audit.sessionId, connection: init.connection.name, identity: init.identity }, init.ctx.masking)
      : undefined;
  }

  get sessionId(): string {
    return this.audit.sessionId;
  }

  /** Start relaying (after the login answer has been written to the client). */
  run(): void {
    const { client, up } = this;
    client.setNoDelay(true);
    client.on("data", (c: Buffer) => this.guard(() => this.onClientData(c)));
    client.on("drain", () => this.guard(() => this.maybeResumeUpstream()));
    client.on("error", (e) => this.end(`client connection error: ${e.message}`));
    client.on("close", () => this.end("client disconnected"));
    up.on("data", (c: Buffer) => this.guard(() => this.onUpstreamData(c)));
    up.on("drain", () => this.guard(() => this.maybeResumeClient()));
    up.on("error", (e) => this.end(`upstream connection error: ${e.message}`));
    up.on("close", () => this.end(this.upstreamFatal ? `upstream ended the session: ${this.upstreamFatal}` : "upstream closed the connection"));
    if (this.init.upstream.leftover.length) this.onUpstreamData(this.init.upstream.leftover);
    if (this.init.clientLeftover.length) this.onClientData(this.init.clientLeftover);
    client.resume();
    up.resume();
  }

  /** Resolves once both sides are closed and sessionEnd is recorded. */
  whenDone(): Promise<void> {
    return this.done;
  }

  /** Forward a CancelRequest to the upstream backend running this session's query. */
  async cancel(): Promise<void> {
    // A command held for approval is not upstream yet: cancelling it withdraws its ticket.
    if (this.holdAbort) return void this.holdAbort.abort("the client cancelled the statement (CancelRequest)");
    const u = this.init.upstream;
    await sendCancel(this.init.upstreamConfig, u.pid, u.secret, this.opts.upstreamTimeoutMs);
  }

  /** Listener shutdown: tell the client like PostgreSQL does, then close. */
  shutdown(): Promise<void> {
    if (!this.closed) {
      this.clientOut.push(errorResponse({ severity: "FATAL", code: "57P01", message: "gatehouse: terminating connection because the listener is shutting down" }));
      this.end("listener stopped");
    }
    return this.done;
  }

  // ------------------------------------------------------------ lifecycle

  /** Run a socket handler; nothing a peer sends may throw out of it. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.fail(e);
    }
  }

  private fail(e: unknown): void {
    if (this.closed) return;
    if (e instanceof ProtocolError) {
      this.log.warn({ session: this.sessionId, err: e.message }, "client protocol violation");
      this.clientOut.push(errorResponse({ severity: "FATAL", code: "08P01", message: `gatehouse: protocol violation: ${e.message}` }));
      this.end(`protocol violation: ${e.message}`);
    } else {
      this.log.error({ session: this.sessionId, err: e }, "session failed");
      this.clientOut.push(errorResponse({ severity: "FATAL", code: "XX000", message: `gatehouse: internal error: ${(e as Error).message}` }));
      this.end(`internal error: ${(e as Error).message}`);
    }
  }

  private end(reason: string): void {
    if (this.closed) return;
    this.flushClient();
    this.closed = true;
    this.holdAbort?.abort(`session ended: ${reason}`);
    if (!this.up.destroyed) {
      if (this.up.writable && !this.sentTerminate) this.up.end(TERMINATE);
      else this.up.end();
      setTimeout(() => this.up.destroy(), 2000).unref();
    }
    if (!this.client.destroyed) {
      this.client.end();
      setTimeout(() => this.client.destroy(), 2000).unref();
    }
    // Commands forwarded but never answered still get a result row.
    for (let i = this.qHead; i < this.queue.length; i++) {
      const e = this.queue[i]!;
      if (e.k === "query" || e.k === "execute") this.finishTrack(e.track, { errorCode: "08006", errorMessage: `session ended before the result: ${reason}` });
    }
    this.queue.length = 0;
    this.qHead = 0;
    this.ctx.recordLater(
      this.audit.event({
        $case: "sessionEnd",
        sessionEnd: { reason, durationMicros: Math.round((performance.now() - this.init.startedAt) * 1000), commands: this.commands },
      }),
    );
    if (this.rec) {
      this.rec.flush();
      this.rec.end(endReason(reason), reason);
    }
    this.log.info({ session: this.sessionId, reason, commands: this.commands }, "session ended");
    this.init.onEnd(this);
    this.resolveDone();
  }

  // ---------------------------------------------------- client -> upstream

  private onClientData(chunk: Buffer): void {
    if (this.closed) return;
    this.clientReader.push(chunk);
    if (this.clientReader.buffered > CLIENT_HIGH_WATER) this.client.pause();
    if (!this.pumping) void this.pump();
  }

  /** Handle client frames strictly in order; awaits only for decisions and audit acks. */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      for (;;) {
        if (this.closed) return;
        const f = this.clientReader.next();
        if (!f) break;
        const pending = this.handleClient(f);
        if (pending) {
          // Let the upstream start on already-decided work while we wait; Parse/Bind
          // alone produce nothing yet, so they wait to share one write with their Execute.
          if (this.upOutHasWork) this.flushUpstream();
          this.flushClient();
          await pending;
        }
      }
      this.flushUpstream();
      this.flushClient();
    } catch (e) {
      this.fail(e);
    } finally {
      this.pumping = false;
      this.maybeResumeClient();
    }
  }

  private handleClient(f: Buffer): Promise<void> | void {
    const t = f[0]!;
    if (this.discarding) {
      // PostgreSQL ignores everything up to Sync after an error; Flush stays harmless.
      if (t === T.Sync) {
        this.discarding = false;
        return this.onSync(f);
      }
      if (t === T.Flush) return this.forward(f);
      if (t === T.Terminate) return this.terminate(f);
      return;
    }
    switch (t) {
      case T.Query:
        return this.onQuery(f);
      case T.Parse:
        return this.onParse(f);
      case T.Bind:
        return this.onBind(f);
      case T.Execute:
        return this.onExecute(f);
      case T.Describe: {
        const { kind, name } = parseTarget(f);
        this.forward(f);
        if (kind === 0x53) return this.expect({ k: "describe", group: this.group, stmt: this.statements.get(name) });
        return this.expect({ k: "describe", group: this.group, portal: this.portals.get(name) });
      }
      case T.Close: {
        const { kind, name } = parseTarget(f);
        if (kind === 0x53) this.statements.delete(name);
        else this.portals.delete(name);
        this.forward(f);
        return this.expect({ k: "close", group: this.group });
      }
      case T.Sync:
        return this.onSync(f);
      case T.CopyData:
        this.rec?.copy("in", f);
        return this.forward(f);
      case T.Flush:
      case T.CopyDone:
      case T.CopyFail:
        // COPY payload belongs to a COPY statement that was already decided and recorded.
        return this.forward(f);
      case T.Terminate:
        return this.terminate(f);
      case T.FunctionCall:
        // Calls a function by OID, bypassing statement policy: refused.
        return this.synthesize(
          errorResponse({ severity: "ERROR", code: "0A000", message: "gatehouse: the function call protocol is not supported; call the function with a SQL statement" }),
          true,
        );
      default:
        throw new ProtocolError(`unexpected message type ${typeName(t)}`);
    }
  }

  private onSync(f: Buffer): void {
    this.forward(f);
    this.expect({ k: "sync", group: this.group });
    this.group++;
  }

  private terminate(f: Buffer): void {
    this.forward(f);
    this.sentTerminate = true;
    this.flushUpstream();
    this.end("client terminated the session");
  }

  private newCommand(text: string, mode: string): Command {
    return Command.fromPartial({
      id: this.audit.ids.next(),
      sessionId: this.sessionId,
      connection: this.init.connection.name,
      protocol: PROTOCOL,
      text,
      mode,
      seq: ++this.seq,
    });
  }

  private async decide(cmd: Command): Promise<DecisionResult | undefined> {
    try {
      const d = await this.ctx.decide(this.init.identity, this.init.connection, cmd);
      // The session may have ended while we waited: then nothing more happens for this command.
      return this.closed ? undefined : d;
    } catch (e) {
      if (!this.closed) this.failClosed(e, "policy", cmd.id);
      return undefined;
    }
  }

  /** Durably record the command event; false (and a 58000 answer) when audit is unavailable. */
  private async record(cmd: Command, d: DecisionResult, approval?: ApprovalRef): Promise<boolean> {
    if (this.closed) return false;
    try {
      const ev = this.audit.command(cmd, d);
      if (approval && ev.body?.$case === "command") ev.body.command.approval = approval;
      await this.ctx.record(ev);
      for (const ev of this.audit.takeTextMasking()) this.ctx.recordLater(ev);
      this.commands++;
      return !this.closed;
    } catch (e) {
      if (!this.closed) this.failClosed(e, "audit", cmd.id);
      return false;
    }
  }

  /** The recording's q line of a command (made once; written before its first response). */
  private qFor(cmd: Command, d: DecisionResult): RecQ | undefined {
    if (!this.rec) return undefined;
    if (this.lastQ?.id === cmd.id) return this.lastQ.q;
    const m = this.audit.shown(cmd);
    const e = d.decision.effect;
    const q = this.rec.statement({
      commandId: cmd.id,
      text: m.text,
      params: m.params,
      protocol: cmd.mode === "extended" ? "extended" : "simple",
      decision: e === Effect.EFFECT_ALLOW ? "allow" : e === Effect.EFFECT_REQUIRE_APPROVAL ? "require_approval" : "deny",
      policyIds: d.decision.policyIds,
      textMasked: m.masked,
    });
    this.lastQ = { id: cmd.id, q };
    return q;
  }

  private failClosed(e: unknown, fallback: DependencyError["dependency"], cmdId = ""): void {
    const dep = e instanceof DependencyError ? e.dependency : fallback;
    const msg = (e as Error)?.message ?? String(e);
    this.log.warn({ session: this.sessionId, dependency: dep, err: msg }, "statement refused: dependency unavailable");
    this.refuse(errorResponse({ severity: "ERROR", code: "58000", message: `gatehouse: ${dep} unavailable: ${msg}; statement not executed` }), undefined, cmdId);
  }

  /** Answer the current message with an error: a simple Query also gets ReadyForQuery, extended discards to Sync. */
  private refuse(err: Buffer, q?: RecQ, cmdId?: string): void {
    if (this.current === "simple") {
      this.synthesize(err, true, q, cmdId);
    } else {
      this.synthesize(err, false, q, cmdId);
      this.discarding = true;
    }
  }
  private current: "simple" | "extended" = "simple";

  private async onQuery(f: Buffer): Promise<void> {
    this.current = "simple";
    const cmd = this.newCommand(parseQuery(f), "simple");
    const d = await this.decide(cmd);
    if (!d) return;
    const run = await this.admit(cmd, d);
    if (!run) return;
    this.forward(f);
    const track = newTrack(cmd.id, run.masker);
    track.q = run.q;
    this.expect({ k: "query", group: this.group, track });
    this.group++;
  }

  private async onParse(f: Buffer): Promise<void> {
    this.current = "extended";
    const { name, text } = parseParse(f);
    // Decided now (cheap through the gateway's cache) so a denial answers the Parse like a parse error.
    const probe = Command.fromPartial({ sessionId: this.sessionId, connection: this.init.connection.name, protocol: PROTOCOL, text, mode: "extended" });
    const d = await this.decide(probe);
    if (!d) return;
    // A statement that needs approval is prepared as usual and held when it is executed.
    if (d.decision.effect !== Effect.EFFECT_ALLOW && !(d.decision.effect === Effect.EFFECT_REQUIRE_APPROVAL && this.ctx.requestApproval)) {
      if (name === "") this.statements.delete("");
      const cmd = this.newCommand(text, "extended");
      cmd.statements = probe.statements;
      cmd.fingerprint = probe.fingerprint;
      if (!(await this.record(cmd, d))) return;
      return this.refuse(denial(d, cmd), this.qFor(cmd, d), cmd.id);
    }
    if (name !== "" && this.statements.has(name)) {
      // PostgreSQL would refuse it too; forwarding would leave our text out of step with the upstream's.
      return this.refuse(errorResponse({ severity: "ERROR", code: "42P05", message: `prepared statement "${name}" already exists` }));
    }
    const stmt: Prepared = { text, decision: d, group: this.group };
    this.statements.set(name, stmt);
    this.forward(f);
    this.expect({ k: "parse", group: this.group, name, stmt });
  }

  private onBind(f: Buffer): void {
    this.current = "extended";
    const b = parseBind(f);
    const stmt = this.statements.get(b.statement);
    if (!stmt) {
      const what = b.statement === "" ? "unnamed prepared statement" : `prepared statement "${b.statement}"`;
      return this.refuse(
        errorResponse({
          severity: "ERROR",
          code: "26000",
          message: `${what} does not exist`,
          hint: "gatehouse only binds statements prepared with a Parse message on this session",
        }),
      );
    }
    this.portals.set(b.portal, { stmt, params: b.params, resultFormats: b.resultFormats });
    this.forward(f);
    this.expect({ k: "bind", group: this.group });
  }

  private async onExecute(f: Buffer): Promise<void> {
    this.current = "extended";
    const name = parseExecute(f);
    const portal = this.portals.get(name);
    if (!portal) return this.refuse(errorResponse({ severity: "ERROR", code: "34000", message: `portal "${name}" does not exist` }));
    const stmt = portal.stmt;
    const cmd = this.newCommand(stmt.text, "extended");
    cmd.params = auditParams(portal.params, this.opts.maxAuditParamBytes);
    cmd.statements = stmt.decision.decision.classified;
    let d = stmt.decision;
    if (stmt.group !== this.group) {
      // Prepared in an earlier batch: decide again so policy changes apply to long-lived statements.
      const fresh = await this.decide(cmd);
      if (!fresh) return;
      d = stmt.decision = fresh;
      stmt.group = this.group;
    }
    const run = await this.admit(cmd, d);
    if (!run) return;
    const track = newTrack(cmd.id, run.masker);
    track.q = run.q;
    track.portal = portal;
    if (run.masker) {
      // Ask for the portal's row layout (with its result formats) right before it runs.
      this.forward(describePortal(name));
      this.expect({ k: "maskdescribe", group: this.group, track });
    }
    this.forward(f);
    this.expect({ k: "execute", group: this.group, track });
  }

  /**
   * After the decision, for a simple Query and an Execute alike: hold it for approval,
   * set up masking, record the command event (durable before anything runs) and refuse
   * what may not run. Returns what the command runs with, or undefined when it has
   * been answered already.
   */
  private async admit(cmd: Command, d: DecisionResult): Promise<{ masker: ResultMasker | undefined; q: RecQ | undefined } | undefined> {
    const approval = await this.hold(cmd, d);
    if (approval === null) return undefined;
    const masker = await this.maskerFor(approval ? approvedDecision(d) : d);
    if (masker === null || !(await this.record(cmd, d, approval))) return undefined;
    const q = this.qFor(cmd, d);
    if (d.decision.effect !== Effect.EFFECT_ALLOW && !approval) {
      this.refuse(denial(d, cmd), q, cmd.id);
      return undefined;
    }
    // COPY sends no column descriptions: describe its rows first (on a side connection).
    if (masker && cmd.statements.some((st) => st.flags.includes("copy_to"))) {
      await prepareCopies(this.maskingSetup, masker, cmd.text, cmd.statements);
      if (this.closed) return undefined;
    }
    if (DROPS_STATEMENTS.test(cmd.text)) this.statements.clear();
    return { masker, q };
  }

  /**
   * REQUIRE_APPROVAL: hold the command until approvers decide (NoticeResponse with the
   * ticket, then wait; only this session waits). Returns the approval that lets it run,
   * undefined when no hold applies, or null when the command was refused and answered
   * (denied, expired, withdrawn, approval service unavailable).
   */
  private async hold(cmd: Command, d: DecisionResult): Promise<ApprovalRef | undefined | null> {
    if (d.decision.effect !== Effect.EFFECT_REQUIRE_APPROVAL || !this.ctx.requestApproval) return undefined;
    const abort = (this.holdAbort = new AbortController());
    // The statement goes into the recording before its hold notice.
    const q = this.qFor(cmd, d);
    // Approvers see the command as the audit trail does: masked when masking is set up.
    const text = this.audit.shown(cmd).text;
    let out: ApprovalOutcome;
    try {
      out = await this.ctx.requestApproval({
        identity: this.init.identity,
        connection: this.init.connection,
        command: { ...cmd, text, params: [] },
        decision: d.decision,
        signal: abort.signal,
        onHold: (h) => {
          if (this.closed) return;
          const mins = Math.max(1, Math.round((h.expiresAtUnixMs - Date.now()) / 60_000));
          this.synthesize(
            errorResponse(
              {
                severity: "NOTICE",
                code: "00000",
                message: `gatehouse: approval required (policy ${d.decision.policyIds.join(", ")}); waiting for ${h.approverGroups.join(" or ")} on ticket ${h.ticketId}`,
                detail: d.decision.reason,
                hint: `approve or deny at ${h.url} or with: gatehouse approvals approve ${h.ticketId}; the ticket expires in ${mins} min; cancel (Ctrl-C) withdraws it`,
              },
              T.NoticeResponse,
            ),
            false,
            q,
            cmd.id,
          );
          this.flushClient();
        },
      });
    } catch (e) {
      if (!this.closed) this.failClosed(e, "approval", cmd.id);
      return null;
    } finally {
      if (this.holdAbort === abort) this.holdAbort = undefined;
    }
    const ref: ApprovalRef = { ticketId: out.ticketId, grantId: out.grantId, outcome: out.outcome, approvers: out.approvers };
    if (this.closed) {
      // The client left while the command was held: it never ran, but it is still recorded.
      const ev = this.audit.command(cmd, d);
      if (ev.body?.$case === "command") ev.body.command.approval = ref;
      this.ctx.recordLater(ev);
      return null;
    }
    if (out.outcome === "approved" || out.outcome === "granted") return ref;
    // Not run: still recorded, with how the ticket ended.
    if (!(await this.record(cmd, d, ref))) return null;
    const withdrawn = out.outcome === "withdrawn";
    this.refuse(
      errorResponse({
        severity: "ERROR",
        code: withdrawn ? "57014" : "42501",
        message: withdrawn
          ? `canceling statement due to user request: gatehouse approval ticket ${out.ticketId} withdrawn`
          : `gatehouse: approval ticket ${out.ticketId} ${out.outcome}: ${out.reason}; statement not executed`,
        detail: `policy ${d.decision.policyIds.join(", ")}: ${d.decision.reason}`,
      }),
    );
    return null;
  }
  private holdAbort: AbortController | undefined;

  /** The command's result masker (undefined: nothing to mask; null: refused, fail closed). */
  private async maskerFor(d: DecisionResult): Promise<ResultMasker | undefined | null> {
    if (d.decision.effect !== Effect.EFFECT_ALLOW) return undefined;
    try {
      const m = await maskerFor(this.maskingSetup, d.decision);
      return this.closed ? null : m;
    } catch (e) {
      if (!this.closed) this.failClosed(e, "masking");
      return null;
    }
  }

  private forward(f: Buffer): void {
    this.upOut.push(f);
    const t = f[0];
    if (t !== T.Parse && t !== T.Bind && t !== T.Describe && t !== T.Close) this.upOutHasWork = true;
  }

  private flushUpstream(): void {
    if (this.upOut.empty || this.closed) return;
    const out = this.upOut.take();
    this.upOutHasWork = false;
    const ok = writeAll(this.up, out);
    if (!ok && !this.clientPausedForUp) {
      this.clientPausedForUp = true;
      this.client.pause();
    }
  }

  private maybeResumeClient(): void {
    if (this.closed) return;
    if (this.clientPausedForUp && !this.up.writableNeedDrain) this.clientPausedForUp = false;
    if (!this.clientPausedForUp && this.clientReader.buffered <= CLIENT_HIGH_WATER && this.client.isPaused()) this.client.resume();
  }

  // ---------------------------------------------------- upstream -> client

  private expect(e: Entry): void {
    this.queue.push(e);
    if (this.queue.length - this.qHead === 1) this.advance();
  }

  /** A gateway-made response, delivered when everything before it has been answered. */
  private synthesize(bytes: Buffer, rfq: boolean, q?: RecQ, cmdId?: string): void {
    this.expect({ k: "synthetic", group: this.group, bytes, rfq, q, cmdId });
    if (rfq) this.group++;
  }

  private get head(): Entry | undefined {
    return this.qHead < this.queue.length ? this.queue[this.qHead] : undefined;
  }

  private pop(): void {
    this.queue[this.qHead++] = undefined as unknown as Entry;
    if (this.qHead === this.queue.length) {
      this.queue.length = 0;
      this.qHead = 0;
    } else if (this.qHead > 1024 && this.qHead * 2 > this.queue.length) {
      this.queue.splice(0, this.qHead);
      this.qHead = 0;
    }
    this.advance();
  }

  /** Emit synthetic responses at the head; drop what the upstream skipped after an error. */
  private advance(): void {
    for (let e = this.head; e; e = this.head) {
      if (e.k === "synthetic") {
        this.qHead++;
        if (e.group !== this.failedGroup) {
          this.clientOut.push(e.bytes);
          if (e.rfq) this.clientOut.push(readyForQuery(this.txStatus));
          if (this.rec) this.recordSynthetic(e.bytes, e.q, e.cmdId ?? "");
        }
      } else if (e.group === this.failedGroup && e.k !== "sync" && e.k !== "query") {
        this.qHead++;
        if (e.k === "parse") this.forget(e);
        if (e.k === "execute") {
          this.rec?.q(e.track.q);
          this.finishTrack(e.track, { errorCode: "", errorMessage: "not executed: an earlier message of the same batch failed", tag: "" });
        }
      } else break;
    }
    if (this.qHead === this.queue.length) {
      this.queue.length = 0;
      this.qHead = 0;
    }
  }

  private onUpstreamData(chunk: Buffer): void {
    if (this.closed) return;
    this.deferFinish = true;
    this.upReader.push(chunk);
    for (;;) {
      if (this.rowRun()) continue;
      const f = this.upReader.next();
      if (!f) break;
      const h = this.head;
      const out = this.maskFrame(f);
      if (out) this.clientOut.push(out);
      if (this.rec) {
        // A row the recording keeps is read now: its deferred hash tokens first.
        if (out !== f && out?.[0] === T.DataRow && this.rec.keepsNextRow()) this.ctx.masking?.settle?.();
        this.recordFrame(out, f, h);
      }
      this.onUpstreamFrame(f);
      if (this.closed) return;
    }
    this.flushClient();
  }

  /**
   * The DataRows of the current result that are next in the upstream read, relayed
   * (and masked) as one run instead of frame by frame; false when the next frame is
   * not such a row. Rows the recording keeps take the frame path (it reads each row).
   */
  private rowRun(): boolean {
    const h = this.head;
    if (h === undefined || (h.k !== "query" && h.k !== "execute")) return false;
    const tr = h.track;
    const m = tr.masker;
    if (m && !m.takesRowRuns) return false;
    if (this.rec && (!tr.colsWritten || this.rec.keepsNextRow())) return false;
    const run = this.upReader.takeRun(T.DataRow);
    if (!run) return false;
    let sent = 0;
    if (m) {
      m.rewriteRows(run.buf, run.start, run.end, (rows) => {
        this.clientOut.push(rows);
        sent += rows.length;
      });
    } else {
      this.clientOut.push(run.buf.subarray(run.start, run.end));
      sent = run.end - run.start;
    }
    this.rec?.omitRows(run.count, sent);
    tr.stmtRows += run.count;
    tr.bytes += run.end - run.start - 5 * run.count;
    return true;
  }

  /** What the client gets for an upstream frame: masked results, nothing for the gateway's own Describe. */
  private maskFrame(f: Buffer): Buffer | undefined {
    const h = this.head;
    if (h === undefined) return f;
    if (h.k === "query" || h.k === "execute") return h.track.masker ? h.track.masker.rewrite(f) : f;
    if (h.k === "maskdescribe") {
      if (f[0] === T.RowDescription) return void h.track.masker!.setFields(f);
      if (f[0] === T.NoData) return void h.track.masker!.clearFields();
    }
    return f;
  }

  private onUpstreamFrame(f: Buffer): void {
    const t = f[0]!;
    const head = this.head;
    switch (t) {
      case T.DataRow:
      case T.CopyData:
        if (head && (head.k === "query" || head.k === "execute")) {
          head.track.stmtRows++;
          head.track.bytes += f.length - 5;
        }
        return;
      case T.CommandComplete:
      case T.EmptyQueryResponse:
      case T.PortalSuspended: {
        if (!head || (head.k !== "query" && head.k !== "execute")) return this.desync(t);
        const tr = head.track;
        if (t === T.CommandComplete) {
          tr.tag = parseTag(f);
          // Statements returning rows count their DataRows; others report affected rows in the tag.
          tr.rows += tr.stmtRows > 0 ? tr.stmtRows : (tagRowCount(tr.tag) ?? 0);
        } else tr.rows += tr.stmtRows;
        tr.stmtRows = 0;
        if (head.k === "execute") {
          this.finishTrack(tr, {});
          this.pop();
        }
        return;
      }
      case T.ErrorResponse:
        return this.onUpstreamError(f, head);
      case T.ReadyForQuery:
        this.txStatus = f[5]!;
        if (!head || (head.k !== "sync" && head.k !== "query")) return this.desync(t);
        if (head.k === "query") this.finishTrack(head.track, {});
        if (head.group === this.failedGroup) this.failedGroup = -1;
        return this.pop();
      case T.ParseComplete:
        return head?.k === "parse" ? this.pop() : this.desync(t);
      case T.BindComplete:
        return head?.k === "bind" ? this.pop() : this.desync(t);
      case T.CloseComplete:
        return head?.k === "close" ? this.pop() : this.desync(t);
      case T.RowDescription:
      case T.NoData:
        if (head?.k === "describe" || head?.k === "maskdescribe") this.pop();
        return;
      default:
        // ParameterStatus, Notice, Notification, ParameterDescription, Copy*Response, CopyDone: relay only.
        return;
    }
  }

  private onUpstreamError(f: Buffer, head: Entry | undefined): void {
    const e = parseErrorFields(f);
    const severity = e.V ?? e.S ?? "ERROR";
    if (severity === "FATAL" || severity === "PANIC") {
      // The upstream will close; the client sees the error, then the close.
      this.upstreamFatal = `${e.C ?? ""} ${e.M ?? ""}`.trim();
      return;
    }
    if (!head) return;
    if (head.k === "query") {
      if (!head.track.errorCode) {
        head.track.errorCode = e.C ?? "";
        head.track.errorMessage = e.M ?? "";
      }
      head.track.stmtRows = 0;
      return;
    }
    if (head.k === "sync") return;
    // Extended protocol: the upstream now skips everything up to Sync.
    this.failedGroup = head.group;
    if (head.k === "parse") this.forget(head);
    if (head.k === "execute") this.finishTrack(head.track, { errorCode: e.C ?? "", errorMessage: e.M ?? "" });
    this.pop();
  }

  /** A Parse the upstream rejected or skipped: the statement does not exist there. */
  private forget(e: { name: string; stmt: Prepared }): void {
    if (this.statements.get(e.name) === e.stmt) this.statements.delete(e.name);
  }

  private desync(t: number): void {
    throw new Error(`upstream sent ${typeName(t)} while ${this.head ? `expecting a response to ${this.head.k}` : "no response was expected"}`);
  }

  private finishTrack(tr: Track, over: TrackOutcome, end = performance.now()): void {
    if (this.deferFinish) {
      this.finished.push({ tr, over, end });
      return;
    }
    const refusal = tr.masker?.refusal;
    this.ctx.recordLater(
      this.audit.result({
        commandId: tr.id,
        rows: tr.rows,
        bytes: tr.bytes,
        durationMicros: Math.round((end - tr.start) * 1000),
        errorCode: over.errorCode ?? (refusal ? "0A000" : tr.errorCode),
        errorMessage: over.errorMessage ?? (refusal ? `gatehouse: ${refusal}` : tr.errorMessage),
        statusTag: over.tag ?? tr.tag,
      }),
    );
    for (const ev of this.audit.takeTextMasking()) this.ctx.recordLater(ev);
    if (tr.masker) {
      for (const ev of maskingEvents((b) => this.audit.event(b), tr.id, tr.masker.summary(), this.ctx.masking?.keyId)) this.ctx.recordLater(ev);
    }
  }

  // ------------------------------------------------------------ recording

  /** Record what the client gets for one upstream frame (`out`, after masking; undefined when consumed). */
  private recordFrame(out: Buffer | undefined, f: Buffer, h: Entry | undefined): void {
    const rec = this.rec!;
    if (!out) {
      // The gateway's own Describe of a portal it masks: the columns the Execute returns.
      if (h?.k === "maskdescribe" && f[0] === T.RowDescription) h.track.fields = parseRowDescription(f);
      return;
    }
    const tr = h && (h.k === "query" || h.k === "execute") ? h.track : undefined;
    switch (out[0]) {
      case T.RowDescription:
        if (tr) {
          rec.q(tr.q);
          tr.colsWritten = true;
          rec.rowDescription(out, () => parseRowDescription(out), tr.masker?.columnMasks());
        } else if (h?.k === "describe") {
          const target = h.portal ?? h.stmt;
          if (target && !(h.stmt && h.stmt.fieldsRaw?.equals(out))) {
            target.fields = parseRowDescription(out);
            if (h.stmt) h.stmt.fieldsRaw = Buffer.from(out);
          }
        }
        return;
      case T.NoData:
        if (h?.k === "describe") {
          const target = h.portal ?? h.stmt;
          if (target) target.fields = [];
        }
        return;
      case T.DataRow:
        if (!tr) return;
        this.recordExecColumns(tr, out);
        return rec.dataRow(out);
      case T.CommandComplete:
      case T.EmptyQueryResponse:
      case T.PortalSuspended: {
        if (!tr) return;
        this.recordExecColumns(tr);
        const tag = out[0] === T.CommandComplete ? parseTag(out) : "";
        return rec.done(tr.id, tag, tr.stmtRows > 0 ? tr.stmtRows : (tagRowCount(tag) ?? 0), out[0] === T.PortalSuspended);
      }
      case T.ErrorResponse:
        if (tr) rec.q(tr.q);
        return rec.error(tr?.id ?? "", parseErrorFields(out));
      case T.NoticeResponse:
        if (tr) rec.q(tr.q);
        return rec.notice(parseErrorFields(out));
      case T.CopyOutResponse:
      case T.CopyInResponse:
        if (tr) rec.q(tr.q);
        return rec.copyStart(out[0] === T.CopyInResponse ? "in" : "out", out);
      case T.CopyData:
        if (tr) rec.copy("out", out);
        return;
      default:
        return;
    }
  }

  /** An extended Execute's result columns: from the gateway's or the client's Describe, with the Bind's formats. */
  private recordExecColumns(tr: Track, row?: Buffer): void {
    const rec = this.rec!;
    rec.q(tr.q);
    if (tr.colsWritten) return;
    tr.colsWritten = true;
    const p = tr.portal;
    if (!p) return;
    let fields = tr.fields ?? p.fields;
    if (!fields && p.stmt.fields) fields = withFormats(p.stmt.fields, p.resultFormats);
    if (!fields && row && row.length >= 7) {
      // Never described: the count is known, names and types are not.
      const n = row.readInt16BE(5);
      fields = withFormats(Array.from({ length: n }, () => ({ name: "?column?", tableOid: 0, attnum: 0, typeOid: 0, format: 0 })), p.resultFormats);
    }
    if (fields && fields.length > 0) rec.columns(fields, tr.masker?.columnMasks());
  }

  private recordSynthetic(bytes: Buffer, q: RecQ | undefined, cmdId: string): void {
    const rec = this.rec!;
    rec.q(q);
    if (bytes[0] === T.ErrorResponse) rec.error(cmdId, parseErrorFields(bytes));
    else if (bytes[0] === T.NoticeResponse) rec.notice(parseErrorFields(bytes));
  }

  /** Send what the client is owed, then the bookkeeping that can wait for it (recording lines, result events). */
  private flushClient(): void {
    // Hash tokens deferred into rebuilt rows (masking.ts) are written before anything is sent.
    this.ctx.masking?.settle?.();
    if (!this.clientOut.empty && !this.closed && !this.client.destroyed) {
      const ok = writeAll(this.client, this.clientOut.take());
      if (!ok && !this.upPausedForClient) {
        this.upPausedForClient = true;
        this.up.pause();
      }
    }
    this.rec?.flush();
    if (this.deferFinish) {
      this.deferFinish = false;
      for (const f of this.finished) this.finishTrack(f.tr, f.over, f.end);
      this.finished.length = 0;
    }
  }

  private maybeResumeUpstream(): void {
    if (this.upPausedForClient && !this.closed) {
      this.upPausedForClient = false;
      this.up.resume();
    }
  }
}

/** Write buffers to a socket in one system call; false when it wants a drain. */
function writeAll(sock: Socket, out: Buffer[]): boolean {
  if (out.length === 1) return sock.write(out[0]!);
  let ok = true;
  sock.cork();
  for (const b of out) ok = sock.write(b);
  sock.uncork();
  return ok;
}

function newTrack(id: string, masker?: ResultMasker): Track {
  return { id, start: performance.now(), rows: 0, stmtRows: 0, bytes: 0, tag: "", errorCode: "", errorMessage: "", masker };
}

/** The decision an approved command runs under (for result masking): the policy's, allowed. */
function approvedDecision(d: DecisionResult): DecisionResult {
  return { ...d, decision: { ...d.decision, effect: Effect.EFFECT_ALLOW } };
}

/** The client-facing error for a DENY or REQUIRE_APPROVAL decision. */
function denial(d: DecisionResult, cmd: Command): Buffer {
  const dec = d.decision;
  const ids = dec.policyIds.length ? dec.policyIds.join(", ") : "default-deny";
  const details: string[] = [];
  for (const s of dec.statements) {
    if (s.effect === Effect.EFFECT_ALLOW) continue;
    const st = cmd.statements[s.index];
    const kind = st?.kind ? ` (${st.kind})` : "";
    const by = s.policyIds.length ? ` by ${s.policyIds.join(", ")}` : "";
    details.push(`statement ${s.index + 1}${kind}: action ${s.action || st?.action || "unknown"} ${s.effect === Effect.EFFECT_REQUIRE_APPROVAL ? "requires approval" : "denied"}${by}${s.reason ? `: ${s.reason}` : ""}`);
  }
  const message =
    dec.effect === Effect.EFFECT_REQUIRE_APPROVAL
      ? `gatehouse: approval required (policy ${ids}); approvals are not enabled on this listener`
      : `gatehouse: denied by policy ${ids}: ${dec.reason || "not permitted"}`;
  return errorResponse({ severity: "ERROR", code: "42501", message, detail: details.join("\n") || undefined });
}

/** Statement-Describe columns with the result formats a Bind asked for. */
function withFormats(fields: Field[], formats: number[]): Field[] {
  if (formats.length === 0) return fields;
  return fields.map((f, i) => ({ ...f, format: formats.length === 1 ? formats[0]! : (formats[i] ?? 0) }));
}

/** The recording's end reason for a session end reason. */
function endReason(reason: string): EndReason {
  if (reason === "client terminated the session") return "terminate";
  if (reason.startsWith("client")) return "client_closed";
  if (reason.startsWith("upstream")) return "upstream_closed";
  if (reason === "listener stopped") return "shutdown";
  return "error";
}
