// A new client connection up to its first ReadyForQuery: TLS / GSSENC
// negotiation, CancelRequest, StartupMessage, token authentication, connection
// lookup, upstream login, sessionStart audit, then hand-over to a Session.
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import type { Connection, Identity } from "@gatehouse/proto";
import { AuthError, type GatewayContext } from "@gatehouse/plugin-sdk";
import type { Logger } from "@gatehouse/runtime";
import { PROTOCOL, SessionAudit } from "./audit.js";
import type { CancelKeys } from "./cancel.js";
import type { PgListenerOptions } from "./options.js";
import {
  authentication,
  backendKeyData,
  CANCEL_REQUEST,
  errorResponse,
  GSSENC_REQUEST,
  negotiateProtocolVersion,
  parseStartupParams,
  ProtocolError,
  readyForQuery,
  SSL_REQUEST,
  T,
  TERMINATE,
  typeName,
  type ErrorFields,
} from "./protocol.js";
import { Session } from "./session.js";
import type { ServerTls } from "./tls.js";
import { ClosedError, StartupStream } from "./stream.js";
import { connectUpstream, UpstreamError, type UpstreamSession } from "./upstream.js";

export interface ListenerDeps {
  ctx: GatewayContext;
  log: Logger;
  opts: PgListenerOptions;
  tls: ServerTls;
  cancelKeys: CancelKeys;
  sessions: Set<Session>;
}

/** PostgreSQL's own limit for startup packets. */
const MAX_STARTUP_PACKET = 10_000;
/** Access tokens are JWTs: a few KiB at most. */
const MAX_TOKEN_MESSAGE = 64 * 1024;
/** Startup parameters that are ours, not the upstream's. */
const NOT_FORWARDED = new Set(["user", "database", "replication"]);

/** A client-facing FATAL that ends the startup. */
class Fatal extends Error {
  constructor(readonly fields: Omit<ErrorFields, "severity">) {
    super(fields.message);
  }
}

export async function handleConnection(raw: Socket, deps: ListenerDeps): Promise<void> {
  const { ctx, log, opts } = deps;
  raw.setNoDelay(true);
  const clientAddress = `${raw.remoteAddress ?? "?"}:${raw.remotePort ?? 0}`;
  const startedAt = performance.now();
  let socket: Socket = raw;
  let stream = new StartupStream(raw, "client");
  let tls = false;
  let upstream: UpstreamSession | undefined;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    socket.end(errorResponse({ severity: "FATAL", code: "08006", message: `gatehouse: startup did not complete within ${opts.startupTimeoutMs} ms` }));
    setTimeout(() => socket.destroy(), 1000).unref();
  }, opts.startupTimeoutMs);
  const fatal = (f: Omit<ErrorFields, "severity">) => {
    if (!socket.destroyed) socket.end(errorResponse({ ...f, severity: "FATAL" }));
  };

  try {
    // --- negotiation packets until the StartupMessage
    let params: Record<string, string>;
    for (;;) {
      const pkt = await stream.readUntyped(MAX_STARTUP_PACKET);
      const code = pkt.readInt32BE(0);
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        // Bytes sent before the answer would bypass encryption (CVE-2021-23222 class): refuse.
        if (stream.pending > 0) throw new ProtocolError("unexpected data after an encryption request");
        if (code === GSSENC_REQUEST || tls) {
          socket.write("N");
          continue;
        }
        stream.detach();
        socket.write("S");
        const secure = new TLSSocket(socket, { isServer: true, secureContext: deps.tls.context });
        secure.setNoDelay(true);
        socket = secure;
        tls = true;
        stream = new StartupStream(secure, "client");
        secure.resume();
        continue;
      }
      if (code === CANCEL_REQUEST) {
        if (pkt.length !== 12) throw new ProtocolError("invalid CancelRequest length");
        const target = deps.cancelKeys.lookup(pkt.readInt32BE(4), pkt.readInt32BE(8));
        socket.destroy();
        clearTimeout(timer);
        if (target) await target.cancel().catch((e) => log.warn({ err: (e as Error).message }, "cancel request could not be forwarded"));
        return;
      }
      const major = code >>> 16;
      const minor = code & 0xffff;
      if (major !== 3)
        throw new Fatal({ code: "0A000", message: `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0` });
      params = parseStartupParams(pkt.subarray(4));
      const unrecognized = Object.keys(params).filter((k) => k.startsWith("_pq_."));
      // Newer 3.x clients (3.2) are told we speak 3.0, as PostgreSQL does.
      if (minor > 0 || unrecognized.length > 0) socket.write(negotiateProtocolVersion(0, unrecognized));
      for (const k of unrecognized) delete params[k];
      break;
    }
    if (opts.tlsRequired && !tls) throw new Fatal({ code: "28000", message: "gatehouse requires TLS (use sslmode=require)" });
    const user = params.user;
    if (!user) throw new Fatal({ code: "28000", message: "no PostgreSQL user name specified in startup packet" });
    const repl = params.replication?.toLowerCase();
    if (repl !== undefined && !["false", "off", "no", "0"].includes(repl))
      throw new Fatal({ code: "0A000", message: "gatehouse: replication connections are not supported", hint: "remove the replication parameter" });
    const database = params.database || user;

    // --- token authentication (before anything about connections is revealed)
    socket.write(authentication(3));
    const pf = await stream.readFrame(MAX_TOKEN_MESSAGE);
    if (pf[0] !== T.Password) throw new ProtocolError(`expected a password message, got message type ${typeName(pf[0]!)}`);
    const nul = pf.indexOf(0, 5);
    const token = pf.toString("utf8", 5, nul < 0 ? pf.length : nul);
    const audit = new SessionAudit(ctx.newSessionId(), database, ctx.listenerId, undefined);
    let identity: Identity;
    try {
      identity = await ctx.authenticate(token, user);
    } catch (e) {
      if (!(e instanceof AuthError)) {
        log.warn({ clientAddress, user, err: (e as Error).message }, "access token could not be verified");
        throw new Fatal({ code: "58000", message: `gatehouse: could not verify the access token: ${(e as Error).message}` });
      }
      ctx.recordLater(audit.event({ $case: "authFailure", authFailure: { clientAddress, user, check: e.check, message: e.message } }));
      log.info({ clientAddress, user, check: e.check }, "client authentication failed");
      throw new Fatal({ code: "28000", message: `gatehouse: access token rejected (${e.check}): ${e.message}` });
    }
    if (!identity.name) identity = { ...identity, name: user };
    audit.identity = identity;

    const conn = ctx.connection(database);
    if (!conn || conn.protocol !== PROTOCOL) {
      const list = ` (configured: ${ctx.connectionNames(PROTOCOL).join(", ") || "none"})`;
      throw new Fatal({ code: "3D000", message: `gatehouse: unknown connection "${database}"${list}`, hint: "the database name selects a gatehouse connection" });
    }

    // --- upstream login with the gateway's credentials
    const forward: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) if (!NOT_FORWARDED.has(k)) forward[k] = v;
    try {
      upstream = await connectUpstream({ upstream: conn.upstream, password: ctx.upstreamPassword(database), params: forward, timeoutMs: opts.upstreamTimeoutMs });
    } catch (e) {
      const u = e as UpstreamError;
      const verb = u.code === "08006" ? "connect to" : "log in to";
      log.warn({ connection: database, err: u.message }, `could not ${verb} upstream`);
      throw new Fatal({ code: u.code ?? "08006", message: `gatehouse: could not ${verb} upstream "${database}": ${u.message}` });
    }
    const upstreamDesc = `${conn.upstream.host}:${conn.upstream.port}/${conn.upstream.database} as ${conn.upstream.user}${upstream.tls ? " (tls)" : ""}`;

    // --- durable sessionStart before the client may send anything
    try {
      await ctx.record(
        audit.event({ $case: "sessionStart", sessionStart: { clientAddress, startupParameters: params, tls, authMethod: "access-token", upstream: upstreamDesc } }),
      );
    } catch (e) {
      throw new Fatal({ code: "58000", message: `gatehouse: audit unavailable: ${(e as Error).message}; session not started` });
    }
    if (timedOut || socket.destroyed || stream.failed) throw new ClosedError("client went away during startup");
    clearTimeout(timer);

    const connection: Connection = { name: database, protocol: PROTOCOL, tags: conn.tags };
    const session = new Session({
      ctx,
      log,
      opts,
      audit,
      identity,
      connection,
      upstreamConfig: conn.upstream,
      client: socket,
      clientLeftover: stream.detach(),
      upstream,
      startedAt,
      onEnd: (s) => {
        deps.sessions.delete(s);
        deps.cancelKeys.revoke(key.pid);
      },
    });
    const key = deps.cancelKeys.issue(session);
    deps.sessions.add(session);
    socket.cork();
    socket.write(authentication(0));
    for (const f of upstream.relay) socket.write(f);
    socket.write(backendKeyData(key.pid, key.secret));
    socket.write(readyForQuery(upstream.txStatus));
    socket.uncork();
    log.info({ session: audit.sessionId, connection: database, subject: identity.subject, clientAddress, tls }, "session started");
    session.run();
  } catch (e) {
    clearTimeout(timer);
    if (upstream) upstream.socket.end(TERMINATE);
    if (e instanceof Fatal) fatal(e.fields);
    else if (e instanceof ProtocolError) {
      log.warn({ clientAddress, err: e.message }, "client protocol violation during startup");
      fatal({ code: "08P01", message: `gatehouse: protocol violation: ${e.message}` });
    } else if (e instanceof ClosedError) {
      socket.destroy();
    } else {
      log.error({ clientAddress, err: e }, "startup failed");
      fatal({ code: "XX000", message: `gatehouse: internal error during startup: ${(e as Error).message}` });
    }
    setTimeout(() => socket.destroy(), 1000).unref();
  }
}
