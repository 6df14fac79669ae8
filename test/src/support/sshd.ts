// A private OpenSSH server for SSH tests: its own config, host key and
// authorized_keys in a temp dir, on a free loopback port, running as the current
// user. Plus an OpenSSH client environment (keys, known_hosts, askpass) to drive
// the real ssh, scp and sftp against it or through the gateway.
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { freePort, startProcess, type Proc } from "@gatehouse/testing";

export const SSHD = ["/usr/sbin/sshd", "/usr/local/sbin/sshd"].find((p) => existsSync(p));

export interface KeyPair {
  privateFile: string;
  publicKey: string;
}

export function keygen(dir: string, name: string, type = "ed25519"): KeyPair {
  const file = join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", name, "-f", file]);
  return { privateFile: file, publicKey: readFileSync(`${file}.pub`, "utf8").trim() };
}

export interface TestSshd {
  dir: string;
  port: number;
  user: string;
  hostKey: string;
  /** The key the gateway logs in upstream with (in authorized_keys). */
  upstreamKey: KeyPair;
  proc: Proc;
  stop(): Promise<void>;
}

export async function startSshd(): Promise<TestSshd> {
  if (!SSHD) throw new Error("sshd not found (install openssh-server)");
  const dir = mkdtempSync(join(tmpdir(), "gh-sshd-"));
  chmodSync(dir, 0o755);
  const host = keygen(dir, "ssh_host_ed25519_key");
  const upstreamKey = keygen(dir, "gateway_upstream_key");
  writeFileSync(join(dir, "authorized_keys"), upstreamKey.publicKey + "\n", { mode: 0o600 });
  const port = await freePort();
  const user = userInfo().username;
  // Privilege separation needs this directory when sshd starts as root.
  if (process.getuid?.() === 0) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  writeFileSync(
    join(dir, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${host.privateFile}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "StrictModes no",
      "PubkeyAuthentication yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      "UsePAM no",
      "AllowTcpForwarding yes",
      "AllowAgentForwarding yes",
      "X11Forwarding no",
      "PrintMotd no",
      "PrintLastLog no",
      "UseDNS no",
      "AcceptEnv LANG LC_* GH_E2E_*",
      "MaxSessions 50",
      "MaxStartups 100:30:200",
      "Subsystem sftp internal-sftp",
      "LogLevel INFO",
      "",
    ].join("\n"),
  );
  const proc = await startProcess("sshd", SSHD, ["-D", "-e", "-f", join(dir, "sshd_config")], { ready: /Server listening on 127\.0\.0\.1 port/, timeoutMs: 15_000 });
  return {
    dir,
    port,
    user,
    hostKey: readFileSync(`${host.privateFile}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" "),
    upstreamKey,
    proc,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface SshClientEnv {
  dir: string;
  knownHosts: string;
  /** Trust `hostKey` for [127.0.0.1]:port. */
  trust(port: number, hostKey: string): void;
  /** Common ssh/scp/sftp options: batch mode, strict host key checking, our known_hosts. */
  opts(port: number, o?: { key?: string; password?: boolean }): string[];
  /** Environment for password auth through SSH_ASKPASS (the token is the password). */
  askpassEnv(password: string): NodeJS.ProcessEnv;
}

export function clientEnv(): SshClientEnv {
  const dir = mkdtempSync(join(tmpdir(), "gh-sshc-"));
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, "");
  const askpass = join(dir, "askpass.sh");
  writeFileSync(askpass, '#!/bin/sh\nprintf "%s\\n" "$GH_TEST_PASSWORD"\n', { mode: 0o700 });
  return {
    dir,
    knownHosts,
    trust(port, hostKey) {
      writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`, { flag: "a" });
    },
    opts(port, o = {}) {
      const a = [
        "-o", `UserKnownHostsFile=${knownHosts}`,
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "UpdateHostKeys=no",
        "-o", "LogLevel=ERROR",
        "-o", "ConnectTimeout=20",
      ];
      if (o.password) {
        a.push("-o", "BatchMode=no", "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1");
      } else {
        a.push("-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none");
        if (o.key) a.push("-i", o.key);
      }
      return a;
    },
    askpassEnv(password) {
      return { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force", DISPLAY: ":0", GH_TEST_PASSWORD: password };
    },
  };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a client program; optional stdin; never rejects on a non-zero exit. */
export function runClient(cmd: string, args: string[], o: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...o.env }, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill("SIGKILL"), o.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.on("error", () => {});
    if (o.input !== undefined) child.stdin.end(o.input);
    else child.stdin.end();
  });
}
