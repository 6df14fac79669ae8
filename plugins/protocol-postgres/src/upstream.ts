// Opening the upstream PostgreSQL connection: TCP, optional TLS (sslmode),
// StartupMessage and authentication (trust, cleartext, MD5, SCRAM-SHA-256)
// with credentials the client never sees.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import type { UpstreamConfig } from "@gatehouse/runtime";
import { ScramClient, ScramError } from "./scram.js";
import { StartupStream } from "./stream.js";
import { body, cancelRequest, parseErrorFields, passwordMessage, SSL_REQUEST, startupMessage, startupPacket, T, typeName } from "./protocol.js";

/** The upstream refused or failed; `code` is the SQLSTATE to give the client. */
export class UpstreamError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "UpstreamError";
  }
}

export interface UpstreamSession {
  socket: Socket;
  tls: boolean;
  pid: number;
  secret: number;
  /** ParameterStatus and NoticeResponse frames to relay to the client, in order. */
  relay: Buffer[];
  txStatus: number;
  /** Bytes received after ReadyForQuery (normally none). */
  leftover: Buffer;
}

export interface UpstreamLogin {
  upstream: UpstreamConfig;
  password: string | undefined;
  /** Client startup parameters to forward (application_name, options...). */
  params: Record<string, string>;
  timeoutMs: number;
}

const MAX_STARTUP_FRAME = 1 << 20;

function sslMode(u: UpstreamConfig): string {
  const m = (u.sslmode ?? "prefer").toLowerCase();
  if (!["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].includes(m))
    throw new UpstreamError("08006", `invalid sslmode "${u.sslmode}" (use disable, prefer, require, verify-ca or verify-full)`);
  return m;
}

function tcp(u: UpstreamConfig, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: u.host, port: u.port, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new UpstreamError("08006", `connect to ${u.host}:${u.port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(timer);
      s.off("error", onError);
      resolve(s);
    });
    const onError = (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new UpstreamError("08006", `could not connect to ${u.host}:${u.port}: ${e.code ?? e.message}`));
    };
    s.once("error", onError);
  });
}

/**
 * TCP + SSLRequest per sslmode. prefer/require encrypt without verifying the
 * server certificate (as libpq does); verify-ca/verify-full verify it against
 * `upstream.sslrootcert` (PEM file) or the system CAs.
 */
async function open(u: UpstreamConfig, timeoutMs: number): Promise<{ socket: Socket; tls: boolean }> {
  const mode = sslMode(u);
  const raw = await tcp(u, timeoutMs);
  if (mode === "disable" || mode === "allow") return { socket: raw, tls: false };
  const stream = new StartupStream(raw, "upstream");
  raw.write(startupPacket(SSL_REQUEST));
  let answer: number;
  try {
    answer = await stream.readByte();
  } catch (e) {
    raw.destroy();
    throw new UpstreamError("08006", `TLS negotiation failed: ${(e as Error).message}`);
  }
  if (stream.pending > 0) {
    raw.destroy();
    throw new UpstreamError("08006", "upstream sent unexpected bytes after the SSLRequest answer");
  }
  stream.detach();
  if (answer === 0x4e /* N */) {
    if (mode === "prefer") {
      return { socket: raw, tls: false };
    }
    raw.destroy();
    throw new UpstreamError("08006", `upstream does not accept TLS but sslmode=${mode}`);
  }
  if (answer !== 0x53 /* S */) {
    raw.destroy();
    throw new UpstreamError("08006", `unexpected answer ${typeName(answer)} to SSLRequest`);
  }
  const verify = mode === "verify-ca" || mode === "verify-full";
  const rootCert = (u as UpstreamConfig & { sslrootcert?: string }).sslrootcert;
  const options: ConnectionOptions = { socket: raw, rejectUnauthorized: verify };
  if (verify && rootCert) options.ca = readFileSync(rootCert);
  if (mode === "verify-full") options.servername = u.host;
  else options.checkServerIdentity = () => undefined;
  return await new Promise((resolve, reject) => {
    const s = tlsConnect(options);
    s.once("secureConnect", () => {
      s.off("error", onError);
      s.setNoDelay(true);
      resolve({ socket: s, tls: true });
    });
    const onError = (e: Error) => {
      s.destroy();
      reject(new UpstreamError("08006", `TLS handshake with upstream failed: ${e.message}`));
    };
    s.once("error", onError);
  });
}

const md5 = (s: string | Buffer) => createHash("md5").update(s).digest("hex");

/** Connect and log in; resolves at the upstream's first ReadyForQuery. */
export async function connectUpstream(login: UpstreamLogin): Promise<UpstreamSession> {
  const u = login.upstream;
  const { socket, tls } = await open(u, login.timeoutMs);
  const stream = new StartupStream(socket, "upstream");
  socket.resume();
  const timer = setTimeout(() => socket.destroy(new Error(`login did not complete within ${login.timeoutMs} ms`)), login.timeoutMs);
  try {
    socket.write(startupMessage({ ...login.params, user: u.user, database: u.database }));
    const needPassword = (): string => {
      if (login.password === undefined)
        throw new UpstreamError("28P01", "upstream asked for a password but none is configured (set the connection's upstream.passwordEnv)");
      return login.password;
    };
    let scram: ScramClient | undefined;
    const relay: Buffer[] = [];
    let pid = 0;
    let secret = 0;
    for (;;) {
      const f = await stream.readFrame(MAX_STARTUP_FRAME);
      const type = f[0]!;
      if (type === T.ErrorResponse) {
        const e = parseErrorFields(f);
        throw new UpstreamError(e.C ?? "28000", e.M ?? "login failed");
      }
      if (type === T.Authentication) {
        const r = body(f);
        const code = r.int32();
        if (code === 0) continue; // AuthenticationOk
        if (code === 3) {
          socket.write(passwordMessage(Buffer.from(needPassword() + "\0", "utf8")));
        } else if (code === 5) {
          const salt = r.bytes(4);
          const inner = md5(needPassword() + u.user);
          socket.write(passwordMessage(Buffer.from("md5" + md5(Buffer.concat([Buffer.from(inner), salt])) + "\0")));
        } else if (code === 10) {
          const mechanisms: string[] = [];
          for (let m = r.cstring(); m !== ""; m = r.cstring()) mechanisms.push(m);
          if (!mechanisms.includes("SCRAM-SHA-256"))
            throw new UpstreamError("28000", `upstream offers only unsupported SASL mechanisms: ${mechanisms.join(", ")}`);
          scram = new ScramClient(needPassword());
          const first = Buffer.from(scram.first(), "utf8");
          const name = Buffer.from("SCRAM-SHA-256\0");
          const len = Buffer.allocUnsafe(4);
          len.writeInt32BE(first.length);
          socket.write(passwordMessage(Buffer.concat([name, len, first])));
        } else if (code === 11) {
          if (!scram) throw new UpstreamError("08P01", "upstream sent SASLContinue before SASL started");
          socket.write(passwordMessage(Buffer.from(scram.final(f.toString("utf8", 9)), "utf8")));
        } else if (code === 12) {
          if (!scram) throw new UpstreamError("08P01", "upstream sent SASLFinal before SASL started");
          scram.verify(f.toString("utf8", 9));
        } else {
          throw new UpstreamError("28000", `upstream requires an unsupported authentication method (code ${code}); use trust, password, md5 or scram-sha-256`);
        }
      } else if (type === T.ParameterStatus || type === T.NoticeResponse) {
        relay.push(f);
      } else if (type === T.BackendKeyData) {
        const r = body(f);
        pid = r.int32();
        secret = r.int32();
      } else if (type === T.NegotiateProtocolVersion) {
        // We ask for 3.0 with no _pq_ options; nothing to adapt.
      } else if (type === T.ReadyForQuery) {
        clearTimeout(timer);
        const leftover = stream.detach();
        return { socket, tls, pid, secret, relay, txStatus: f[5]!, leftover };
      } else {
        throw new UpstreamError("08P01", `unexpected message ${typeName(type)} from upstream during login`);
      }
    }
  } catch (e) {
    clearTimeout(timer);
    socket.destroy();
    if (e instanceof UpstreamError) throw e;
    if (e instanceof ScramError) throw new UpstreamError("28000", e.message);
    throw new UpstreamError("08006", (e as Error).message);
  }
}

/** Send a CancelRequest for the upstream backend (pid, secret); resolves when sent. */
export async function sendCancel(u: UpstreamConfig, pid: number, secret: number, timeoutMs: number): Promise<void> {
  const { socket } = await open(u, timeoutMs);
  await new Promise<void>((resolve) => {
    socket.on("error", () => resolve());
    socket.on("close", () => resolve());
    socket.end(cancelRequest(pid, secret));
    setTimeout(() => {
      socket.destroy();
      resolve();
    }, timeoutMs).unref();
  });
}
