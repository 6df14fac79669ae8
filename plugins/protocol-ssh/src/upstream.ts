// The gateway's own SSH connection to the target host: pinned host key (refused on
// mismatch), credentials from configuration (never seen by the agent).
import { createHash } from "node:crypto";
import type { Algorithms, Client as Ssh2Client } from "ssh2";
import { Client, utils } from "./ssh2.js";
import type { SshUpstream } from "./options.js";

/** Ciphers Node's crypto runs fast (AES-GCM/CTR); chacha20 would run in JavaScript. */
export const FAST_CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr"] as const;

export function fingerprint(pub: Buffer): string {
  return "SHA256:" + createHash("sha256").update(pub).digest("base64").replace(/=+$/, "");
}

function hostKeyAlgorithms(type: string): string[] {
  if (type === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  return [type];
}

export class UpstreamError extends Error {}

export function connectUpstream(connection: string, up: SshUpstream, login: string, timeoutMs: number): Promise<Ssh2Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let mismatch: string | undefined;
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (err) {
        client.end();
        reject(err);
      } else resolve(client);
    };
    client.once("ready", () => done());
    // Later errors (a reset idle connection...) surface as "close"; never as an uncaught 'error'.
    client.on("error", () => {});
    client.once("error", (e) => {
      if (mismatch) return done(new UpstreamError(mismatch));
      const level = (e as Error & { level?: string }).level;
      if (level === "client-authentication") {
        return done(new UpstreamError(`the upstream of connection ${connection} (${up.host}:${up.port}) refused the gateway's credentials for login "${login}"; check connections.${connection}.upstream.keyFile/passwordEnv`));
      }
      done(new UpstreamError(`cannot reach the upstream of connection ${connection} (${up.host}:${up.port}): ${e.message}`));
    });
    client.once("close", () => done(new UpstreamError(`the upstream of connection ${connection} closed the connection during login`)));
    const algorithms: Algorithms = {
      serverHostKey: hostKeyAlgorithms(up.hostKeyType) as Algorithms["serverHostKey"],
      cipher: [...FAST_CIPHERS] as Algorithms["cipher"],
    };
    client.connect({
      host: up.host,
      port: up.port,
      username: login,
      privateKey: up.privateKey,
      password: up.password,
      readyTimeout: timeoutMs,
      keepaliveInterval: 30_000,
      algorithms,
      hostVerifier: (key: Buffer) => {
        if (Buffer.compare(key, up.hostKey) === 0) return true;
        mismatch = `host key of the upstream of connection ${connection} (${up.host}:${up.port}) does not match connections.${connection}.upstream.hostKey: expected ${fingerprint(up.hostKey)}, got ${fingerprint(key)}; refusing to connect`;
        return false;
      },
    });
  });
}

export { utils };
