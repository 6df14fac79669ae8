// One agent's SSH connection to the gateway: authentication (registered key or OIDC
// token as password), the target from "login@connection", and every channel request
// decided by policy and recorded before anything reaches the upstream host.
import { once } from "node:events";
import type { Writable } from "node:stream";
import type { Client, ClientChannel, Connection as Ssh2Connection, PseudoTtyInfo, ServerChannel, Session, AuthContext, ClientInfo } from "ssh2";
import { Command, Effect, type Connection, type Identity } from "@gatehouse/proto";
import { AuthError, DependencyError, type DecisionResult, type GatewayContext } from "@gatehouse/plugin-sdk";
import { PROTOCOL, SessionAudit } from "./audit.js";
import { classifyExec, sshFingerprint, statement } from "./classify.js";
import type { KeyIndex } from "./keys.js";
import { sshUpstream, type SshListenerOptions, type SshUpstream } from "./options.js";
import { Asciicast } from "./recording.js";
import { SftpProxy } from "./sftp.js";
import { connectUpstream } from "./upstream.js";
import type { UpstreamPool } from "./pool.js";
import { outputFilter, type OutputFilter } from "./masking.js";

/** Exit statuses the gateway itself reports (the upstream's own pass through). */
export const EXIT = { DENIED: 126, UNAVAILABLE: 125, GATEWAY: 255 } as const;

interface Target {
  name: string;
  login: string;
  connection: Connection;
  upstream: SshUpstream;
}

interface PtyState {
  pty?: PseudoTtyInfo;
  env: Record<string, string>;
}

export class SshConnection {
  private identity: Identity | undefined;
  private target: Target | undefined;
  /** Why this (authenticated) connection cannot be served: told on every channel. */
  private targetError: string | undefined;
  private readonly audit: SessionAudit;
  private upstream: Promise<Client> | undefined;
  private started: Promise<boolean> | undefined;
  private readonly startedAt = performance.now();
  private commands = 0;
  private seq = 0;
  private shells = 0;
  /** Upstream connections for allowed remote forwards are relayed back to the client. */
  private remoteForwarding = false;
  private closed = false;
  private readonly channels = new Set<{ close(): void }>();
  onEnd: () => void = () => {};

  constructor(
    private readonly ctx: GatewayContext,
    private readonly opts: SshListenerOptions,
    private readonly keys: KeyIndex,
    private readonly client: Ssh2Connection,
    private readonly info: ClientInfo,
    private readonly pool: UpstreamPool,
  ) {
    const sessionId = ctx.newSessionId();
    this.audit = new SessionAudit(sessionId, "", ctx.listenerId, undefined);
    client.on("authentication", (a) => void this.authenticate(a).catch((e) => this.internal(e, () => a.reject())));
    client.on("ready", () => {
      try {
        this.onReady();
      } catch (e) {
        this.internal(e);
        this.end("internal error");
      }
    });
    client.on("session", (accept) => {
      try {
        this.onSession(accept());
      } catch (e) {
        this.internal(e);
      }
    });
    client.on("tcpip", (accept, reject, i) => void this.onDirectTcpip(accept, reject, i).catch((e) => this.internal(e, reject)));
    client.on("request", (accept, reject, name, i) => void this.onGlobalRequest(accept, reject, name, i as { bindAddr: string; bindPort: number }).catch((e) => this.internal(e, reject)));
    client.on("openssh.streamlocal", (_a, reject) => reject());
    client.on("error", (e) => this.end(`client connection error: ${e.message}`));
    client.on("close", () => this.end("client disconnected"));
  }

  get sessionId(): string {
    return this.audit.sessionId;
  }

  private internal(e: unknown, reject?: () => void): void {
    this.ctx.log.error({ session: this.sessionId, err: (e as Error)?.message ?? String(e) }, "ssh connection handler failed");
    try {
      reject?.();
    } catch {
      /* the request may already be answered */
    }
  }

  // ------------------------------------------------------------ authentication

  private async authenticate(a: AuthContext): Promise<void> {
    const methods: ("publickey" | "password")[] = ["publickey", "password"];
    if (a.method === "publickey") {
      const entry = this.keys.find(a.key.algo, a.key.data);
      if (!entry) {
        this.authFailure(a.username, "publickey", `public key ${this.keys.fingerprintOf(a.key.data)} is not registered to an identity`);
        return a.reject(methods);
      }
      // Without a signature the client only asks whether this key would do.
      if (!a.signature || !a.blob) return a.accept();
      // verify() returns an Error (truthy) for malformed input: only `true` counts.
      if (entry.key.verify(a.blob, a.signature, a.hashAlgo) !== true) {
        this.authFailure(a.username, "signature", "public key signature does not verify");
        return a.reject(methods);
      }
      this.identity = { ...entry.identity, name: a.username };
    } else if (a.method === "password") {
      try {
        this.identity = await this.ctx.authenticate(a.password, a.username);
      } catch (e) {
        const check = e instanceof AuthError ? e.check : "internal";
        this.authFailure(a.username, check, (e as Error).message);
        return a.reject(methods);
      }
    } else {
      return a.reject(methods);
    }
    this.audit.identity = this.identity;
    this.resolveTarget(a.username);
    a.accept();
  }

  private authFailure(user: string, check: string, message: string): void {
    this.ctx.log.info({ session: this.sessionId, user, check, err: message }, "ssh authentication failed");
    this.ctx.recordLater(this.audit.event({ $case: "authFailure", authFailure: { clientAddress: this.info.ip, user, check, message } }));
  }

  /** "login@connection" (the last "@" separates them); a bare name is a connection. */
  private resolveTarget(username: string): void {
    const at = username.lastIndexOf("@");
    const name = at >= 0 ? username.slice(at + 1) : username;
    const login = at >= 0 ? username.slice(0, at) : "";
    this.audit.connection = name;
    const cfg = this.ctx.connection(name);
    if (!cfg || cfg.protocol !== PROTOCOL) {
      this.targetError = `unknown SSH connection "${name}": connect as <login>@<connection> with a connection configured with protocol ssh`;
      this.authFailure(username, "connection", this.targetError);
      return;
    }
    let up: SshUpstream;
    try {
      up = sshUpstream(name, cfg.upstream as unknown as Record<string, unknown>, this.ctx.upstreamPassword(name), process.cwd());
    } catch (e) {
      this.targetError = `connection ${name} is misconfigured: ${(e as Error).message}`;
      return;
    }
    const chosen = login || up.user;
    if (!up.logins.includes(chosen)) {
      this.targetError = `login "${chosen}" is not allowed on connection ${name} (allowed: ${up.logins.join(", ")})`;
      this.authFailure(username, "login", this.targetError);
      return;
    }
    this.target = { name, login: chosen, upstream: up, connection: { name, protocol: PROTOCOL, tags: { ...cfg.tags } } };
  }

  private onReady(): void {
    const t = this.target;
    if (!t) {
      this.started = Promise.resolve(false);
      return;
    }
    // The upstream login runs while the client opens its first channel.
    this.upstream = this.pool.take(`${t.name}\0${t.login}`, () => connectUpstream(t.name, t.upstream, t.login, this.opts.upstreamTimeoutMs));
    this.upstream.then(
      (c) => {
        c.on("error", (e) => this.ctx.log.warn({ session: this.sessionId, err: e.message }, "upstream connection error"));
        c.on("close", () => this.end("upstream closed the connection"));
        if (this.closed) c.end();
      },
      () => {},
    );
    const start = this.audit.event({
      $case: "sessionStart",
      sessionStart: {
        clientAddress: `${this.info.ip}:${this.info.port}`,
        startupParameters: { login: t.login, client: this.info.header?.versions?.software ?? "" },
        tls: false,
        authMethod: this.identity?.issuer === "gatehouse:ssh-key" ? "publickey" : "token",
        upstream: `${t.login}@${t.upstream.host}:${t.upstream.port}`,
      },
    });
    // The session must not open unrecorded.
    this.started = this.ctx.record(start).then(
      () => true,
      (e) => {
        this.targetError = `audit unavailable: ${(e as Error).message}; session not opened`;
        return false;
      },
    );
  }

  private async ready(): Promise<Client | string> {
    if (!(await (this.started ?? Promise.resolve(false)))) return this.targetError ?? "not authenticated";
    if (this.targetError || !this.upstream) return this.targetError ?? "no upstream";
    try {
      return await this.upstream;
    } catch (e) {
      return (e as Error).message;
    }
  }

  // ------------------------------------------------------------ decisions

  private newCommand(text: string, mode: string, statements: Command["statements"], parseError = ""): Command {
    return Command.fromPartial({
      id: this.audit.ids.next(),
      sessionId: this.sessionId,
      connection: this.target!.name,
      protocol: PROTOCOL,
      text,
      mode,
      seq: ++this.seq,
      statements,
      parseError,
      fingerprint: sshFingerprint(`${mode}\n${text}`),
    });
  }

  /**
   * Decide, record, and settle approvals. Resolves true when the command may run;
   * otherwise `tell` got the message for the client.
   */
  private async admit(cmd: Command, tell: (msg: string) => void, signal?: AbortSignal): Promise<{ ok: boolean; status: number; decision?: DecisionResult }> {
    const t = this.target!;
    let d: DecisionResult;
    try {
      d = await this.ctx.decide(this.identity!, t.connection, cmd);
      await this.ctx.record(this.audit.command(cmd, d));
      this.commands++;
    } catch (e) {
      const dep = e instanceof DependencyError ? e.dependency : "policy";
      tell(`gatehouse: ${dep} unavailable: ${(e as Error).message}; not executed`);
      return { ok: false, status: EXIT.UNAVAILABLE };
    }
    const dec = d.decision;
    if (dec.effect === Effect.EFFECT_ALLOW) return { ok: true, status: 0, decision: d };
    if (dec.effect === Effect.EFFECT_REQUIRE_APPROVAL) {
      if (!this.ctx.requestApproval) {
        tell(`gatehouse: approval required by policy ${dec.policyIds.join(", ")}: ${dec.reason}; approvals are not set up on this gateway, so it was not executed`);
        return { ok: false, status: EXIT.DENIED };
      }
      try {
        const out = await this.ctx.requestApproval({
          identity: this.identity!,
          connection: t.connection,
          command: cmd,
          decision: dec,
          signal,
          onHold: (h) => tell(`gatehouse: held for approval by ${h.approverGroups.join(", ")} (policy ${dec.policyIds.join(", ")}): ticket ${h.ticketId} ${h.url}; waiting...`),
        });
        if (out.outcome === "approved" || out.outcome === "granted") {
          tell(`gatehouse: ticket ${out.ticketId} ${out.outcome}${out.approvers.length ? ` by ${out.approvers.join(", ")}` : ""}; running`);
          return { ok: true, status: 0, decision: d };
        }
        tell(`gatehouse: ticket ${out.ticketId} ${out.outcome}: ${out.reason}; not executed`);
        return { ok: false, status: EXIT.DENIED };
      } catch (e) {
        tell(`gatehouse: approval required by policy ${dec.policyIds.join(", ")} (${dec.reason}), but the approval service is unavailable: ${(e as Error).message}`);
        return { ok: false, status: EXIT.UNAVAILABLE };
      }
    }
    tell(`gatehouse: denied by policy ${dec.policyIds.join(", ")}: ${dec.reason}`);
    return { ok: false, status: EXIT.DENIED };
  }

  private result(commandId: string, r: { bytes: number; statusTag: string; errorCode?: string; errorMessage?: string; startedAt: number; rows?: number }): void {
    this.ctx.recordLater(
      this.audit.result({
        commandId,
        rows: r.rows ?? 0,
        bytes: r.bytes,
        durationMicros: Math.round((performance.now() - r.startedAt) * 1000),
        errorCode: r.errorCode ?? "",
        errorMessage: r.errorMessage ?? "",
        statusTag: r.statusTag,
      }),
    );
  }

  // ------------------------------------------------------------ session channels

  private onSession(session: Session): void {
    const st: PtyState = { env: {} };
    let upCh: ClientChannel | undefined;
    let cast: Asciicast | undefined;
    let used = false;
    const once1 = (accept: (() => void) | undefined, reject: (() => void) | undefined): boolean => {
      // One exec/shell/subsystem per channel (RFC 4254 6.5).
      if (used) {
        reject?.();
        return false;
      }
      used = true;
      void accept;
      return true;
    };
    // Nothing a client sends may throw out of a handler (it would end the listener).
    const safe =
      <A extends unknown[]>(fn: (...a: A) => void) =>
      (...a: A) => {
        try {
          fn(...a);
        } catch (e) {
          this.internal(e);
        }
      };
    session.on(
      "pty",
      safe((accept, _reject, i) => {
        st.pty = i;
        accept?.();
      }),
    );
    session.on(
      "window-change",
      safe((accept, _reject, i) => {
        if (st.pty) Object.assign(st.pty, { cols: i.cols, rows: i.rows, width: i.width, height: i.height });
        upCh?.setWindow(i.rows, i.cols, i.height, i.width);
        cast?.resize(i.cols, i.rows);
        accept?.();
      }),
    );
    session.on(
      "env",
      safe((accept, reject, i) => {
        if (this.envAllowed(i.key)) {
          st.env[i.key] = i.val;
          accept?.();
        } else reject?.();
      }),
    );
    session.on("auth-agent", safe((_a, reject) => reject?.()));
    session.on("x11", safe((_a, reject) => reject?.()));
    session.on(
      "signal",
      safe((accept, _reject, i) => {
        upCh?.signal(i.name);
        accept?.();
      }),
    );
    session.on(
      "exec",
      safe((accept, reject, i) => {
        if (!once1(accept, reject)) return;
        const ch = accept();
        void this.exec(ch, i.command, st, (c) => (upCh = c)).catch((e) => this.channelFail(ch, e));
      }),
    );
    session.on(
      "shell",
      safe((accept, reject) => {
        if (!once1(accept, reject)) return;
        const ch = accept();
        void this.shell(ch, st, (c) => (upCh = c), (c) => (cast = c)).catch((e) => this.channelFail(ch, e));
      }),
    );
    session.on(
      "subsystem",
      safe((accept, reject, i) => {
        if (!once1(accept, reject)) return;
        if (i.name !== "sftp") return reject?.();
        const ch = accept();
        void this.sftp(ch).catch((e) => this.channelFail(ch, e));
      }),
    );
  }

  private envAllowed(key: string): boolean {
    return this.opts.allowedEnv.some((p) => (p.endsWith("*") ? key.startsWith(p.slice(0, -1)) : key === p));
  }

  private channelFail(ch: ServerChannel, e: unknown): void {
    this.ctx.log.error({ session: this.sessionId, err: (e as Error)?.message ?? String(e) }, "ssh channel failed");
    this.finish(ch, EXIT.GATEWAY, `gatehouse: internal error: ${(e as Error)?.message ?? String(e)}`);
  }

  /** Tell the client why (stderr), report an exit status, close the channel. */
  private finish(ch: ServerChannel, status: number, message?: string): void {
    try {
      if (message) ch.stderr.write(message.replace(/\n/g, "\r\n").replace(/\r\r/g, "\r") + "\r\n");
      ch.exit(status);
      ch.end();
    } catch {
      /* channel already gone */
    }
  }

  private async exec(ch: ServerChannel, text: string, st: PtyState, setUp: (c: ClientChannel) => void): Promise<void> {
    const up = await this.ready();
    if (typeof up === "string") return this.finish(ch, EXIT.GATEWAY, `gatehouse: ${up}`);
    const cls = classifyExec(text);
    const cmd = this.newCommand(text, cls.scp ? "scp" : "exec", cls.statements, cls.parseError);
    const abort = new AbortController();
    ch.once("close", () => abort.abort());
    const tell = (m: string) => ch.stderr.write(m + "\r\n");
    const admitted = await this.admit(cmd, tell, abort.signal);
    if (!admitted.ok) return this.finish(ch, admitted.status);
    // A client that left while the command was decided or held must not have it run.
    if (abort.signal.aborted || this.closed) {
      this.result(cmd.id, { bytes: 0, statusTag: "not run", errorCode: "client_gone", errorMessage: "the client closed the channel before the command ran", startedAt: performance.now() });
      return;
    }
    let filter: ReturnType<typeof outputFilter>;
    try {
      // Legacy scp is a binary file transfer (like SFTP): recorded, not masked.
      filter = cls.scp ? undefined : outputFilter(this.ctx, admitted.decision!);
    } catch (e) {
      return this.finish(ch, EXIT.UNAVAILABLE, `gatehouse: ${(e as Error).message}; not executed`);
    }
    const startedAt = performance.now();
    const opts = { pty: st.pty ? { rows: st.pty.rows, cols: st.pty.cols, height: st.pty.height, width: st.pty.width, term: st.pty.term, modes: st.pty.modes } : undefined, env: st.env };
    const uch = await new Promise<ClientChannel | Error>((res) => up.exec(text, opts as never, (err, c) => res(err ?? c)));
    if (uch instanceof Error) {
      this.result(cmd.id, { bytes: 0, statusTag: "failed", errorCode: "upstream", errorMessage: uch.message, startedAt });
      return this.finish(ch, EXIT.GATEWAY, `gatehouse: upstream refused the command: ${uch.message}`);
    }
    setUp(uch);
    const r = await this.relay(ch, uch, filter);
    this.result(cmd.id, { ...r, startedAt, rows: 0 });
  }

  /**
   * Pipe a client channel and an upstream channel both ways with backpressure, pass the
   * exit status or signal on, and resolve with what happened.
   */
  private async relay(ch: ServerChannel, uch: ClientChannel, filter?: () => OutputFilter, onOut?: (b: Buffer) => void, onIn?: (b: Buffer) => void): Promise<{ bytes: number; statusTag: string; errorCode?: string; errorMessage?: string }> {
    let bytesOut = 0;
    let bytesIn = 0;
    let exit: { code?: number; signal?: string; core?: boolean; desc?: string } = {};
    const closer = { close: () => uch.close() };
    this.channels.add(closer);
    uch.on("exit", (code: number | null, signal?: string, core?: boolean, desc?: string) => {
      exit = code !== null && code !== undefined ? { code } : { signal: signal ?? "KILL", core, desc };
    });
    const idleTimers = new Map<OutputFilter, NodeJS.Timeout>();
    const pipe = (from: NodeJS.ReadableStream, to: Writable, count: (n: number) => void, tap?: (b: Buffer) => void, f?: OutputFilter) => {
      from.on("data", (b: Buffer) => {
        let out: Buffer;
        try {
          count(b.length);
          tap?.(b);
          out = f ? f.push(b) : b;
        } catch (e) {
          // Masking or recording failed: stop this channel rather than pass data unchecked.
          this.internal(e);
          uch.close();
          return;
        }
        if (f) {
          // A prompt without a newline must not wait for one: mask what is held after a pause.
          const prev = idleTimers.get(f);
          if (prev) clearTimeout(prev);
          idleTimers.set(
            f,
            setTimeout(() => {
              idleTimers.delete(f);
              const rest = f.flush();
              if (rest.length > 0 && to.writable) to.write(rest);
            }, 50),
          );
        }
        if (out.length > 0 && !to.write(out)) {
          from.pause();
          to.once("drain", () => from.resume());
        }
      });
    };
    const fOut = filter?.();
    const fErr = filter?.();
    pipe(uch, ch, (n) => (bytesOut += n), onOut, fOut);
    pipe(uch.stderr, ch.stderr, (n) => (bytesOut += n), onOut, fErr);
    pipe(ch, uch, (n) => (bytesIn += n), onIn);
    ch.on("end", () => uch.end());
    ch.on("close", () => uch.close());
    await once(uch, "close");
    this.channels.delete(closer);
    for (const t of idleTimers.values()) clearTimeout(t);
    try {
      if (fOut) ch.write(fOut.end());
      if (fErr) ch.stderr.write(fErr.end());
    } catch {
      /* client gone */
    }
    // Everything the upstream sent must reach the client before the exit status.
    await drained(ch);
    await drained(ch.stderr);
    try {
      if (exit.code !== undefined) ch.exit(exit.code);
      else if (exit.signal) ch.exit(exit.signal, exit.core ?? false, exit.desc ?? "");
      ch.end();
    } catch {
      /* client gone */
    }
    const statusTag = exit.code !== undefined ? `exit ${exit.code}` : exit.signal ? `signal ${exit.signal}` : "closed";
    return { bytes: bytesOut + bytesIn, statusTag, errorCode: exit.code ? String(exit.code) : exit.signal ? `SIG${exit.signal}` : undefined };
  }

  private async shell(ch: ServerChannel, st: PtyState, setUp: (c: ClientChannel) => void, setCast: (c: Asciicast) => void): Promise<void> {
    const up = await this.ready();
    if (typeof up === "string") return this.finish(ch, EXIT.GATEWAY, `gatehouse: ${up}`);
    const cmd = this.newCommand("(interactive shell)", "shell", [statement("shell", {}, st.pty ? ["pty"] : [])]);
    const tell = (m: string) => ch.stderr.write(m + "\r\n");
    const admitted = await this.admit(cmd, tell);
    if (!admitted.ok) return this.finish(ch, admitted.status);
    if (!this.ctx.recording) return this.finish(ch, EXIT.UNAVAILABLE, "gatehouse: session recording is not available on this gateway; interactive shells are refused");
    const n = ++this.shells;
    const recId = n === 1 ? this.sessionId : `${this.sessionId}-${n}`;
    const cast = new Asciicast(this.ctx.recording(recId, "asciicast"), {
      // A client without a terminal of its own (ssh -tt) reports 0x0: players need a size.
      width: st.pty?.cols || 80,
      height: st.pty?.rows || 24,
      term: st.pty?.term,
      title: `${this.identity!.subject} ${this.target!.login}@${this.target!.name}`,
    });
    setCast(cast);
    const startedAt = performance.now();
    const win = st.pty ? { rows: st.pty.rows, cols: st.pty.cols, height: st.pty.height, width: st.pty.width, term: st.pty.term, modes: st.pty.modes } : false;
    const uch = await new Promise<ClientChannel | Error>((res) => up.shell(win as never, { env: st.env }, (err, c) => res(err ?? c)));
    if (uch instanceof Error) {
      await cast.close();
      this.result(cmd.id, { bytes: 0, statusTag: "failed", errorCode: "upstream", errorMessage: uch.message, startedAt });
      return this.finish(ch, EXIT.GATEWAY, `gatehouse: upstream refused the shell: ${uch.message}`);
    }
    setUp(uch);
    const r = await this.relay(ch, uch, undefined, (b) => cast.output(b), (b) => cast.input(b));
    await cast.close();
    this.result(cmd.id, { ...r, statusTag: `${r.statusTag}; recording ${recId}`, startedAt });
  }

  private async sftp(ch: ServerChannel): Promise<void> {
    const up = await this.ready();
    if (typeof up === "string") return this.finish(ch, EXIT.GATEWAY, `gatehouse: ${up}`);
    const uch = await new Promise<ClientChannel | Error>((res) => up.subsys("sftp", (err, c) => res(err ?? c)));
    if (uch instanceof Error) return this.finish(ch, EXIT.GATEWAY, `gatehouse: upstream refused the sftp subsystem: ${uch.message}`);
    const proxy = new SftpProxy(ch, uch, {
      decide: async (kind, text, paths, flags) => {
        const cmd = this.newCommand(text, "sftp", [statement(kind, { paths }, flags)]);
        let message = "";
        const a = await this.admit(cmd, (m) => (message = m));
        return a.ok ? { ok: true, commandId: cmd.id } : { ok: false, message };
      },
      result: (commandId, r) => this.result(commandId, r),
      onError: (m) => {
        this.ctx.log.warn({ session: this.sessionId, err: m }, "sftp session ended");
        uch.close();
        ch.close();
      },
    }, this.opts.maxSftpPacket);
    proxy.start();
    // scp in SFTP mode checks the exit status of the subsystem.
    let status: number | undefined;
    uch.on("exit", (code: number | null) => (status = code ?? undefined));
    ch.on("end", () => uch.end());
    ch.on("close", () => uch.close());
    uch.on("close", () => {
      proxy.finish();
      try {
        ch.exit(status ?? 0);
        ch.end();
      } catch {
        /* gone */
      }
    });
  }

  // ------------------------------------------------------------ forwarding

  private async onDirectTcpip(accept: () => ServerChannel, reject: () => void, i: { srcIP: string; srcPort: number; destIP: string; destPort: number }): Promise<void> {
    const up = await this.ready();
    if (typeof up === "string") return reject();
    const cmd = this.newCommand(`forward ${i.destIP}:${i.destPort}`, "forward", [statement("forward", { host: i.destIP, port: i.destPort })]);
    let why = "";
    const a = await this.admit(cmd, (m) => (why = m));
    if (!a.ok) {
      this.ctx.log.info({ session: this.sessionId, dest: `${i.destIP}:${i.destPort}`, why }, "forwarding refused");
      return reject();
    }
    const startedAt = performance.now();
    up.forwardOut(i.srcIP, i.srcPort, i.destIP, i.destPort, (err, uch) => {
      if (err) {
        this.result(cmd.id, { bytes: 0, statusTag: "failed", errorCode: "upstream", errorMessage: err.message, startedAt });
        return reject();
      }
      const ch = accept();
      let bytes = 0;
      ch.on("data", (b: Buffer) => (bytes += b.length));
      uch.on("data", (b: Buffer) => (bytes += b.length));
      ch.pipe(uch).pipe(ch);
      uch.on("close", () => {
        this.result(cmd.id, { bytes, statusTag: "closed", startedAt });
        ch.close();
      });
    });
  }

  private async onGlobalRequest(accept: (() => void) | undefined, reject: (() => void) | undefined, name: string, i: { bindAddr: string; bindPort: number }): Promise<void> {
    if (name !== "tcpip-forward") return reject?.();
    const up = await this.ready();
    if (typeof up === "string") return reject?.();
    const cmd = this.newCommand(`remote forward ${i.bindAddr}:${i.bindPort}`, "forward", [statement("remote_forward", { host: i.bindAddr, port: i.bindPort })]);
    const a = await this.admit(cmd, () => {});
    if (!a.ok) return reject?.();
    // Allowed remote forwarding: connections the upstream accepts come back to the client.
    up.forwardIn(i.bindAddr, i.bindPort, (err) => {
      if (err) return reject?.();
      accept?.();
    });
    if (this.remoteForwarding) return;
    this.remoteForwarding = true;
    up.on("tcp connection", (info, acceptIn) => {
      this.client.forwardOut(info.destIP, info.destPort, info.srcIP, info.srcPort, (err, ch) => {
        if (err) return;
        const uch = acceptIn();
        uch.pipe(ch).pipe(uch);
      });
    });
  }

  // ------------------------------------------------------------ lifecycle

  private end(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.channels) c.close();
    this.upstream?.then((c) => c.end(), () => {});
    if (this.target) {
      this.ctx.recordLater(
        this.audit.event({
          $case: "sessionEnd",
          sessionEnd: { reason, durationMicros: Math.round((performance.now() - this.startedAt) * 1000), commands: this.commands },
        }),
      );
    }
    try {
      this.client.end();
    } catch {
      /* already closed */
    }
    this.onEnd();
  }

  shutdown(): void {
    this.end("listener stopped");
  }
}

function drained(w: Writable): Promise<void> {
  if (w.destroyed || !w.writable || w.writableLength === 0) return Promise.resolve();
  // 'drain' only comes after a write that returned false; an empty write's callback
  // runs once every earlier write is out, whatever the buffer level.
  return new Promise((r) => {
    const done = () => {
      w.off("close", done);
      r();
    };
    w.once("close", done);
    w.write(Buffer.alloc(0), done);
  });
}
