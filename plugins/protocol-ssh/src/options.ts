// Listener options (listeners.ssh in gatehouse.yaml) and per-connection upstream
// settings (connections.<name>.upstream), validated when the listener starts so a
// mistake is reported with the key that holds it.
import { existsSync, mkdirSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { utils } from "./ssh2.js";
import type { ListenerConfig } from "@gatehouse/runtime";

export interface AuthorizedKeyConfig {
  /** Public key in authorized_keys format ("ssh-ed25519 AAAA... comment"). */
  key: string;
  subject: string;
  groups?: string[];
  kind?: string;
  name?: string;
}

export interface SshListenerOptions {
  host: string;
  port: number;
  /** Gateway host key (OpenSSH private key file); generated in the data dir when absent. */
  hostKeyFile: string;
  authorizedKeys: AuthorizedKeyConfig[];
  upstreamTimeoutMs: number;
  /** Environment variables a client may set (exact names or "PREFIX*"). */
  allowedEnv: string[];
  /** Largest SFTP packet accepted from a client. */
  maxSftpPacket: number;
  /** Keep one logged-in spare upstream connection per used target this long (0: off). */
  warmUpstreamMs: number;
}

export const DEFAULT_PORT = 15022;

function fail(key: string, msg: string): never {
  throw new Error(`listeners.ssh.${key} ${msg}`);
}

export function parseOptions(cfg: ListenerConfig, dataDir: string, baseDir = process.cwd()): SshListenerOptions {
  const port = cfg.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail("port", `must be a port number (0-65535), got ${String(cfg.port)}`);
  const hostKey = cfg.hostKey;
  if (hostKey !== undefined && (typeof hostKey !== "string" || hostKey === "")) fail("hostKey", "must be the path of an OpenSSH private key file");
  const keys = cfg.authorizedKeys ?? [];
  if (!Array.isArray(keys)) fail("authorizedKeys", "must be a list of { key, subject, groups }");
  const authorizedKeys: AuthorizedKeyConfig[] = [];
  keys.forEach((k: unknown, i: number) => {
    const e = k as Partial<AuthorizedKeyConfig>;
    if (typeof e?.key !== "string" || typeof e.subject !== "string" || e.subject === "") fail(`authorizedKeys[${i}]`, "needs key (authorized_keys line) and subject");
    if (e.groups !== undefined && (!Array.isArray(e.groups) || e.groups.some((g) => typeof g !== "string"))) fail(`authorizedKeys[${i}].groups`, "must be a list of group names");
    const parsed = utils.parseKey(e.key);
    if (parsed instanceof Error) fail(`authorizedKeys[${i}].key`, `is not a public key: ${parsed.message}`);
    authorizedKeys.push(e as AuthorizedKeyConfig);
  });
  const num = (key: string, def: number, min: number, max: number): number => {
    const v = cfg[key] ?? def;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) fail(key, `must be an integer between ${min} and ${max}`);
    return v;
  };
  const allowedEnv = cfg.allowedEnv ?? ["LANG", "LC_*", "TZ"];
  if (!Array.isArray(allowedEnv) || allowedEnv.some((v) => typeof v !== "string")) fail("allowedEnv", "must be a list of variable names");
  return {
    host: cfg.host ?? "127.0.0.1",
    port,
    hostKeyFile: hostKey ? (isAbsolute(hostKey) ? hostKey : resolve(baseDir, hostKey)) : join(dataDir, "ssh", "gatehouse_host_ed25519_key"),
    authorizedKeys,
    upstreamTimeoutMs: num("upstreamTimeoutMs", 10_000, 100, 600_000),
    allowedEnv: allowedEnv as string[],
    maxSftpPacket: num("maxSftpPacketBytes", 256 * 1024 + 1024, 34_000, 16 * 1024 * 1024),
    warmUpstreamMs: num("warmUpstreamMs", 60_000, 0, 3_600_000),
  };
}

/** The gateway host key: read it, or generate and keep it (so clients can pin it). */
export function loadOrCreateHostKey(file: string): Buffer {
  if (existsSync(file)) {
    const data = readFileSync(file);
    const k = utils.parseKey(data);
    if (k instanceof Error || !k.isPrivateKey()) throw new Error(`listeners.ssh.hostKey: ${file} is not an unencrypted OpenSSH private key${k instanceof Error ? `: ${k.message}` : ""}`);
    return data;
  }
  const pair = utils.generateKeyPairSync("ed25519", { comment: "gatehouse-gateway" });
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, pair.private, { mode: 0o600 });
  chmodSync(file, 0o600);
  writeFileSync(`${file}.pub`, pair.public + "\n");
  return Buffer.from(pair.private);
}

export interface SshUpstream {
  host: string;
  port: number;
  /** Default login; `login@connection` may pick another listed in `logins`. */
  user: string;
  logins: string[];
  /** Pinned upstream host key ("ssh-ed25519 AAAA..."). */
  hostKey: Buffer;
  hostKeyType: string;
  privateKey?: Buffer;
  password?: string;
}

/** Upstream settings of an SSH connection; throws naming the connection's key. */
export function sshUpstream(name: string, upstream: Record<string, unknown>, password: string | undefined, baseDir: string): SshUpstream {
  const where = `connections.${name}.upstream`;
  const hk = upstream.hostKey;
  if (typeof hk !== "string" || hk === "") throw new Error(`${where}.hostKey is required for SSH: the upstream's public host key ("ssh-ed25519 AAAA..."), e.g. from ssh-keyscan`);
  const parsed = utils.parseKey(hk);
  if (parsed instanceof Error) throw new Error(`${where}.hostKey is not a public key: ${parsed.message}`);
  let privateKey: Buffer | undefined;
  if (upstream.keyFile !== undefined) {
    if (typeof upstream.keyFile !== "string") throw new Error(`${where}.keyFile must be a path`);
    const p = isAbsolute(upstream.keyFile) ? upstream.keyFile : resolve(baseDir, upstream.keyFile);
    try {
      privateKey = readFileSync(p);
    } catch (e) {
      throw new Error(`${where}.keyFile ${p} cannot be read: ${(e as Error).message}`);
    }
  }
  if (!privateKey && password === undefined) throw new Error(`${where} needs keyFile (a private key) or passwordEnv (a variable holding the password) to log in upstream`);
  const user = typeof upstream.user === "string" && upstream.user !== "" ? upstream.user : "root";
  const logins = Array.isArray(upstream.logins) ? (upstream.logins as unknown[]).filter((l): l is string => typeof l === "string") : [user];
  return {
    host: String(upstream.host),
    port: Number(upstream.port),
    user,
    logins,
    hostKey: parsed.getPublicSSH(),
    hostKeyType: parsed.type,
    privateKey,
    password,
  };
}
