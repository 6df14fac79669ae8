// Issue 7 acceptance: the real OpenSSH client (ssh, scp, sftp) through the gateway's
// SSH listener to a real sshd started here, with the demo policies, keys and OIDC
// tokens, and every exec, file operation and session start/end in the audit store.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createConnection } from "node:net";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import xterm from "@xterm/headless";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { ApprovalServiceService, Identity } from "@gatehouse/proto";
import { natsClient } from "@gatehouse/runtime";
import { startStack, type Stack } from "../support/stack.js";
import { clientEnv, keygen, runClient, SSHD, startSshd, type KeyPair, type SshClientEnv, type TestSshd } from "../support/sshd.js";
import { freePort, repoRoot } from "../support/processes.js";

const SUB = `e2e-ssh-agent-${process.pid}`;
const OPS = `e2e-ssh-ops-${process.pid}`;
let stack: Stack;
let sshd: TestSshd;
let env: SshClientEnv;
let gwPort: number;
let agentKey: KeyPair;
let opsKey: KeyPair;
let strangerKey: KeyPair;
let dbaKey: KeyPair;
let tunnelKey: KeyPair;
let work: string;

const HELD_POLICY = `@id("e2e-touch-needs-approval")
@reason("creating files over SSH needs an approver")
@approval("approvers")
permit (principal in Gatehouse::Group::"agents", action == Gatehouse::Action::"ssh:exec", resource)
when { context.program == "touch" };
`;

const skip = SSHD ? false : "sshd is not installed (apt-get install openssh-server)";

/** The gateway's user name is "login@connection"; the host is the gateway. */
const as = (user: string) => ["-o", `User=${user}`];

function ssh(key: KeyPair, user: string, command: string[], extra: string[] = [], input?: string) {
  return runClient("ssh", [...env.opts(gwPort, { key: key.privateFile }), "-p", String(gwPort), ...as(user), ...extra, "127.0.0.1", ...command], { input });
}

before(async () => {
  if (skip) return;
  sshd = await startSshd();
  env = clientEnv();
  work = join(env.dir, "work");
  mkdirSync(work);
  agentKey = keygen(env.dir, "agent_key");
  opsKey = keygen(env.dir, "ops_key");
  strangerKey = keygen(env.dir, "stranger_key");
  dbaKey = keygen(env.dir, "dba_key");
  tunnelKey = keygen(env.dir, "tunnel_key");
  const wrongPin = keygen(env.dir, "not_the_host_key");
  gwPort = await freePort();
  // The demo policies, plus one that holds `touch` for approval (so the test can see it run).
  const policies = join(env.dir, "policies");
  cpSync(join(repoRoot, "deploy/policies"), policies, { recursive: true });
  rmSync(join(policies, "demo.test.yaml"), { force: true });
  writeFileSync(join(policies, "zz-e2e-ssh.cedar"), HELD_POLICY);
  const upstream = { host: "127.0.0.1", port: sshd.port, user: sshd.user, hostKey: sshd.hostKey, keyFile: sshd.upstreamKey.privateFile };
  stack = await startStack({
    policies,
    approvals: true,
    listeners: {
      ssh: {
        host: "127.0.0.1",
        port: gwPort,
        authorizedKeys: [
          { key: agentKey.publicKey, subject: SUB, groups: ["agents"] },
          { key: opsKey.publicKey, subject: OPS, groups: ["agents", "ssh-shell"] },
          { key: dbaKey.publicKey, subject: `${SUB}-dba`, groups: ["dba"] },
          { key: tunnelKey.publicKey, subject: `${SUB}-tunnel`, groups: ["db-tunnel"] },
        ],
      },
    },
    connections: {
      box: { protocol: "ssh", upstream, tags: { env: "test" } },
      pinned_wrong: { protocol: "ssh", upstream: { ...upstream, hostKey: wrongPin.publicKey.split(" ").slice(0, 2).join(" ") }, tags: { env: "test" } },
    },
  });
  const gwHostKey = readFileSync(join(stack.dir, "data", "ssh", "gatehouse_host_ed25519_key.pub"), "utf8").trim().split(" ").slice(0, 2).join(" ");
  env.trust(gwPort, gwHostKey);
  env.trust(sshd.port, sshd.hostKey);
});

after(async () => {
  await stack?.stop();
  await sshd?.stop();
  if (env) rmSync(env.dir, { recursive: true, force: true });
});

describe("ssh exec through the gateway", { skip }, () => {
  test("an allowed command runs and its exit status comes back", async () => {
    const ok = await ssh(agentKey, `${sshd.user}@box`, ["echo", "hello-from-box"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "hello-from-box\n");
    const fail = await ssh(agentKey, `${sshd.user}@box`, ["ls /gh-no-such-dir-e2e"]);
    assert.equal(fail.code, 2, "ls's own exit status passes through");
    assert.match(fail.stderr, /gh-no-such-dir-e2e/);
    const falsy = await ssh(agentKey, "box", ["false"]);
    assert.equal(falsy.code, 1);
  });

  test("exec output is masked when the policy's plan says so (agents: PII redacted)", async () => {
    const r = await ssh(agentKey, `${sshd.user}@box`, ["echo contact alice.doe@example.com; printf 'no newline prompt> '"]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /alice\.doe@example\.com/);
    assert.match(r.stdout, /^contact \S*REDACTED\S*\nno newline prompt> $/);
  });

  test("a pipeline of allowed commands runs", async () => {
    const r = await ssh(agentKey, `${sshd.user}@box`, ["seq 1 5 | grep -c . && echo done"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "5\ndone\n");
  });

  test("a denied command fails with the policy's message and never reaches the host", async () => {
    const marker = join(work, "never-created");
    const cases: [string, RegExp][] = [
      ["rm -rf /", /denied by policy forbid-ssh-rm-root: rm of \/ or \/\* is never allowed/],
      ["shutdown -h now", /denied by policy forbid-ssh-power/],
      [`curl -fsSL http://127.0.0.1:1/x | sh; touch ${marker}`, /denied by policy .*forbid-ssh-pipe-to-shell/],
      [`echo $(mkdir ${marker})`, /denied by policy default-deny: statement 1 \(ssh:exec\): no policy permits ssh:exec/],
      [`mkdir ${marker}`, /no policy permits ssh:exec on connection box/],
      [`echo 'unterminated`, /could not be parsed.*unterminated single quote/],
    ];
    for (const [cmd, msg] of cases) {
      const r = await ssh(agentKey, `${sshd.user}@box`, [cmd]);
      assert.equal(r.code, 126, `${cmd}: ${r.stderr}`);
      assert.match(r.stderr, msg, cmd);
      assert.equal(r.stdout, "", cmd);
    }
    assert.equal(existsSync(marker), false, "no denied command ran upstream");
  });

  test("a held command waits with the ticket id on stderr and completes after approval", async () => {
    const marker = join(work, "approved-marker");
    const child = spawn("ssh", [...env.opts(gwPort, { key: agentKey.privateFile }), "-p", String(gwPort), ...as(`${sshd.user}@box`), "127.0.0.1", `touch ${marker} && echo touched`], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let stdout = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b));
    const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    const ticket = await new Promise<string>((resolve, reject) => {
      child.stderr.on("data", (b: Buffer) => {
        stderr += b;
        const m = /held for approval by approvers \(policy e2e-touch-needs-approval\): ticket ([0-9a-f-]{36})/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      void exited.then(() => reject(new Error(`ssh exited without a ticket: ${stderr}`)));
    });
    assert.equal(existsSync(marker), false, "held: not run yet");
    const approvals = natsClient(stack.nc, ApprovalServiceService, { timeoutMs: 10_000 });
    await approvals.decideTicket({
      id: ticket,
      approver: Identity.fromPartial({ subject: "alice-approver", name: "alice-approver", groups: ["approvers"], kind: "human", issuer: "e2e" }),
      approve: true,
      reason: "e2e ssh",
      grantMinutes: 0,
    });
    assert.equal(await exited, 0, stderr);
    assert.equal(stdout, "touched\n");
    assert.match(stderr, /ticket [0-9a-f-]{36} approved by alice-approver; running/);
    assert.equal(existsSync(marker), true, "ran after approval");
  });

  test("a held command is refused when the approver denies it", async () => {
    const marker = join(work, "denied-marker");
    const child = spawn("ssh", [...env.opts(gwPort, { key: agentKey.privateFile }), "-p", String(gwPort), ...as(`${sshd.user}@box`), "127.0.0.1", `touch ${marker}`], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    const ticket = await new Promise<string>((resolve, reject) => {
      child.stderr.on("data", (b: Buffer) => {
        stderr += b;
        const m = /ticket ([0-9a-f-]{36})/.exec(stderr);
        if (m) resolve(m[1]!);
      });
      void exited.then(() => reject(new Error(`ssh exited without a ticket: ${stderr}`)));
    });
    const approvals = natsClient(stack.nc, ApprovalServiceService, { timeoutMs: 10_000 });
    await approvals.decideTicket({ id: ticket, approver: Identity.fromPartial({ subject: "alice-approver", groups: ["approvers"], kind: "human" }), approve: false, reason: "not now", grantMinutes: 0 });
    assert.equal(await exited, 126);
    assert.match(stderr, /denied.*not now.*not executed/);
    assert.equal(existsSync(marker), false);
  });
});

/** Client options using the agent at `sock` (the defaults turn agents off). */
const withAgent = (opts: string[], sock: string) => opts.map((o) => (o === "IdentityAgent=none" ? `IdentityAgent=${sock}` : o));

describe("session requests", { skip }, () => {
  test("only allowed environment variables reach the host; agent forwarding is refused", async () => {
    // An agent for the client to offer (ssh -A); the gateway must not forward it upstream.
    const sock = join(env.dir, "agent.sock");
    const agent = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
    try {
      for (let i = 0; i < 50 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
      const r = await runClient(
        "ssh",
        [...withAgent(env.opts(gwPort, { key: agentKey.privateFile }), sock), "-A", "-o", "SetEnv=LANG=C.UTF-8 GH_E2E_SECRET=leak", "-p", String(gwPort), ...as(`${sshd.user}@box`), "127.0.0.1", 'echo "lang=$LANG secret=$GH_E2E_SECRET agent=$SSH_AUTH_SOCK"'],
        { env: { SSH_AUTH_SOCK: sock } },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "lang=C.UTF-8 secret= agent=\n");
      // The same request straight to sshd gets both through: the gateway is what filters them.
      const direct = await runClient(
        "ssh",
        [...withAgent(env.opts(sshd.port, { key: sshd.upstreamKey.privateFile }), sock), "-A", "-o", "SetEnv=LANG=C.UTF-8 GH_E2E_SECRET=leak", "-p", String(sshd.port), ...as(sshd.user), "127.0.0.1", 'echo "lang=$LANG secret=$GH_E2E_SECRET agent=$SSH_AUTH_SOCK"'],
        { env: { SSH_AUTH_SOCK: sock } },
      );
      assert.equal(direct.code, 0, direct.stderr);
      assert.match(direct.stdout, /^lang=C\.UTF-8 secret=leak agent=\S+\n$/);
    } finally {
      agent.kill();
    }
  });
});

describe("interactive shell", { skip }, () => {
  test("denied without the ssh-shell group", async () => {
    const r = await ssh(agentKey, `${sshd.user}@box`, [], ["-tt"], "echo hi\nexit\n");
    assert.equal(r.code, 126);
    assert.match(r.stderr, /no policy permits ssh:shell/);
  });

  test("allowed, recorded as asciicast v2, and the recording replays to the same output", async () => {
    const r = await ssh(opsKey, `${sshd.user}@box`, [], ["-tt"], "echo gh-$((6*7))-shell\nexit 3\n");
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /gh-42-shell/);
    const rows = await stack.waitForAudit(
      `SELECT session_id, status_tag FROM events FINAL WHERE identity_subject = '${OPS}' AND type = 'result' AND status_tag LIKE '%recording%'`,
      (x) => x.length >= 1,
    );
    assert.equal(rows.length, 1);
    const sessionId = String(rows[0]!.session_id);
    assert.match(String(rows[0]!.status_tag), /^exit 3; recording /);
    const lines = (await readRecording(sessionId)).split("\n").filter((l) => l !== "");
    const header = JSON.parse(lines[0]!) as { version: number; width: number; height: number };
    assert.equal(header.version, 2);
    const events = lines.slice(1).map((l) => JSON.parse(l) as [number, string, string]);
    const output = events.filter((e) => e[1] === "o").map((e) => e[2]).join("");
    const input = events.filter((e) => e[1] === "i").map((e) => e[2]).join("");
    // Replaying the "o" events writes exactly what the client's terminal received...
    assert.equal(output, r.stdout);
    // ...so a terminal of the recorded size shows the same screen as the client's did.
    const replayed = await screenOf(header.width, header.height, events);
    const seen = await screenOf(header.width, header.height, [[0, "o", r.stdout]]);
    assert.equal(replayed, seen);
    assert.match(replayed, /gh-42-shell/);
    assert.match(input, /echo gh-\$\(\(6\*7\)\)-shell/);
    for (let k = 1; k < events.length; k++) assert.ok(events[k]![0] >= events[k - 1]![0], "timestamps never go back");
    const jsm = await jetstreamManager(stack.nc);
    const info = await jsm.streams.info("RECORDINGS");
    assert.equal(info.config.deny_delete, true);
    assert.equal(info.config.deny_purge, true);

    // The audit service copied the same recording into ClickHouse, and the CLI plays it back.
    const idx = await stack.waitForAudit(`SELECT kind, complete FROM recording_index WHERE session_id = '${sessionId}'`, (x) => x.length === 1 && Boolean(x[0]!.complete), 30_000);
    assert.equal(idx[0]?.kind, "asciicast");
    const stored = await stack.auditQuery(`SELECT data FROM recordings FINAL WHERE session_id = '${sessionId}' ORDER BY seq`);
    assert.equal(stored.map((c) => String(c.data)).join(""), lines.join("\n") + "\n", "ClickHouse holds the recording JetStream holds");
    const played = await runClient(process.execPath, [join(repoRoot, "packages/cli/dist/main.js"), "replay", sessionId, "--no-wait"], { env: { GATEHOUSE_CONFIG: stack.configFile, NATS_URL: stack.natsUrl } });
    assert.equal(played.code, 0, played.stderr);
    assert.equal(played.stdout, r.stdout, "replay prints exactly the output the client's terminal received");
  });
});

/** Render asciicast output/resize events in a headless terminal; the visible text. */
async function screenOf(cols: number, rows: number, events: [number, string, string][]): Promise<string> {
  const term = new xterm.Terminal({ cols, rows, allowProposedApi: true });
  for (const [, code, data] of events) {
    if (code === "o") await new Promise<void>((r) => term.write(data, r));
    else if (code === "r") {
      const [c, h] = data.split("x").map(Number);
      term.resize(c!, h!);
    }
  }
  const buf = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)!.translateToString(true));
  term.dispose();
  return lines.join("\n").trimEnd();
}

async function readRecording(sessionId: string): Promise<string> {
  const js = jetstream(stack.nc);
  const jsm = await jetstreamManager(stack.nc);
  // An ephemeral consumer with a single filter subject works on NATS servers before 2.10 too.
  const ci = await jsm.consumers.add("RECORDINGS", { filter_subject: `gatehouse.recording.${sessionId}`, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All, inactive_threshold: 60_000_000_000 });
  const c = await js.consumers.get("RECORDINGS", ci.name);
  let text = "";
  const until = Date.now() + 20_000;
  for (;;) {
    const m = await c.next({ expires: 2000 });
    if (!m) {
      if (Date.now() > until) throw new Error("recording not complete");
      continue;
    }
    text += m.string();
    if (m.headers?.get("Gatehouse-Last") === "true") return text;
  }
}

describe("sftp and scp", { skip }, () => {
  test("download works, upload is blocked by the read-only policy", async () => {
    const remoteDir = join(work, "remote");
    mkdirSync(remoteDir);
    writeFileSync(join(remoteDir, "report.txt"), "quarterly numbers\n".repeat(1000));
    const local = join(work, "local-upload.txt");
    writeFileSync(local, "should never arrive\n");
    const batch = join(work, "batch.txt");
    writeFileSync(batch, `get ${join(remoteDir, "report.txt")} ${join(work, "downloaded.txt")}\n`);
    const get = await runClient("sftp", [...env.opts(gwPort, { key: agentKey.privateFile }), "-P", String(gwPort), "-b", batch, ...as(`${sshd.user}@box`), "127.0.0.1"]);
    assert.equal(get.code, 0, get.stdout + get.stderr);
    assert.equal(readFileSync(join(work, "downloaded.txt"), "utf8"), "quarterly numbers\n".repeat(1000));
    writeFileSync(batch, `put ${local} ${join(remoteDir, "uploaded.txt")}\n`);
    const put = await runClient("sftp", [...env.opts(gwPort, { key: agentKey.privateFile }), "-P", String(gwPort), "-b", batch, ...as(`${sshd.user}@box`), "127.0.0.1"]);
    assert.notEqual(put.code, 0, "sftp put fails");
    assert.match(put.stderr, /[Pp]ermission denied/);
    assert.equal(existsSync(join(remoteDir, "uploaded.txt")), false);
    // scp: the SFTP-based default and the legacy protocol (-O) are decided the same way.
    for (const legacy of [false, true]) {
      const target = join(remoteDir, legacy ? "scp-legacy.txt" : "scp.txt");
      const up = await runClient("scp", [...env.opts(gwPort, { key: agentKey.privateFile }), ...(legacy ? ["-O"] : []), "-P", String(gwPort), ...as(`${sshd.user}@box`), local, `127.0.0.1:${target}`]);
      assert.notEqual(up.code, 0, `scp upload (legacy=${legacy}) fails`);
      assert.equal(existsSync(target), false);
      const dst = join(work, legacy ? "scp-legacy-down.txt" : "scp-down.txt");
      const down = await runClient("scp", [...env.opts(gwPort, { key: agentKey.privateFile }), ...(legacy ? ["-O"] : []), "-P", String(gwPort), ...as(`${sshd.user}@box`), `127.0.0.1:${join(remoteDir, "report.txt")}`, dst]);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(readFileSync(dst, "utf8").length, "quarterly numbers\n".length * 1000);
    }
    const ops = await stack.waitForAudit(
      `SELECT command_text, effect, actions FROM events FINAL WHERE identity_subject = '${SUB}' AND type = 'decision' AND (command_text LIKE 'sftp open%' OR command_text LIKE 'scp %')`,
      (x) => x.filter((r) => r.effect === "deny").length >= 3,
    );
    const denied = ops.filter((r) => r.effect === "deny").map((r) => String(r.command_text));
    assert.ok(denied.some((t) => t.includes("uploaded.txt") && t.startsWith("sftp open")), denied.join("\n"));
    assert.ok(denied.some((t) => t.startsWith("scp -t")), denied.join("\n"));
    const sizes = await stack.waitForAudit(
      `SELECT bytes FROM events FINAL WHERE identity_subject = '${SUB}' AND type = 'result' AND status_tag = 'read'`,
      (x) => x.length >= 2,
    );
    assert.ok(sizes.some((r) => Number(r.bytes) === "quarterly numbers\n".length * 1000), JSON.stringify(sizes));
  });
});

describe("sftp with write access", { skip }, () => {
  test("large uploads and downloads pass unchanged, each file operation audited with its size", async () => {
    const dir = join(work, "rw");
    mkdirSync(dir);
    const blob = randomBytes(3 * 1024 * 1024 + 123);
    const local = join(work, "blob.bin");
    writeFileSync(local, blob);
    const batch = join(work, "rw-batch.txt");
    writeFileSync(batch, [`put ${local} ${join(dir, "blob.bin")}`, `rename ${join(dir, "blob.bin")} ${join(dir, "moved.bin")}`, `get ${join(dir, "moved.bin")} ${join(work, "back.bin")}`, `rm ${join(dir, "moved.bin")}`, ""].join("\n"));
    const r = await runClient("sftp", [...env.opts(gwPort, { key: dbaKey.privateFile }), "-P", String(gwPort), "-b", batch, ...as(`${sshd.user}@box`), "127.0.0.1"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.ok(readFileSync(join(work, "back.bin")).equals(blob), "the file came back byte for byte");
    assert.equal(existsSync(join(dir, "moved.bin")), false, "removed");
    const rows = await stack.waitForAudit(
      `SELECT type, command_text, effect, status_tag, bytes FROM events FINAL WHERE identity_subject = '${SUB}-dba' AND type IN ('decision', 'result')`,
      (x) => x.filter((y) => y.type === "result" && (y.status_tag === "written" || y.status_tag === "read")).length >= 2,
    );
    const decided = rows.filter((y) => y.type === "decision").map((y) => `${String(y.command_text)} ${String(y.effect)}`);
    assert.ok(decided.some((t) => /^sftp open ".*blob\.bin" \(write,creat,trunc\) allow$/.test(t)), decided.join("\n"));
    assert.ok(decided.some((t) => /^sftp rename ".*blob\.bin" ".*moved\.bin" allow$/.test(t)), decided.join("\n"));
    assert.ok(decided.some((t) => /^sftp remove ".*moved\.bin" allow$/.test(t)), decided.join("\n"));
    const sizes = rows.filter((y) => y.type === "result").map((y) => `${String(y.status_tag)} ${String(y.bytes)}`);
    assert.ok(sizes.includes(`written ${blob.length}`), sizes.join(", "));
    assert.ok(sizes.includes(`read ${blob.length}`), sizes.join(", "));
  });
});

describe("forwarding", { skip }, () => {
  test("a forward to the exact destination a policy names works (PostgreSQL on 127.0.0.1:5432)", async () => {
    // PostgreSQL answers an SSLRequest with one byte, "S" or "N".
    const sslRequest = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    const r = await runClient("ssh", [...env.opts(gwPort, { key: tunnelKey.privateFile }), "-p", String(gwPort), ...as(`${sshd.user}@box`), "-W", "127.0.0.1:5432", "127.0.0.1"], { input: sslRequest, timeoutMs: 20_000 });
    assert.match(r.stdout, /^[SN]$/, r.stderr);
    const other = await runClient("ssh", [...env.opts(gwPort, { key: tunnelKey.privateFile }), "-p", String(gwPort), ...as(`${sshd.user}@box`), "-W", `127.0.0.1:${sshd.port}`, "127.0.0.1"], { input: "" });
    assert.notEqual(other.code, 0, "any other destination is refused");
  });

  test("direct-tcpip and remote forwarding are refused without a policy for the destination", async () => {
    const w = await ssh(agentKey, `${sshd.user}@box`, [], ["-W", `127.0.0.1:${sshd.port}`], "");
    assert.notEqual(w.code, 0);
    assert.match(w.stderr, /administratively prohibited|open failed|stdio forwarding failed/);
    const remote = await ssh(agentKey, `${sshd.user}@box`, ["true"], ["-o", "ExitOnForwardFailure=yes", "-R", `127.0.0.1:0:127.0.0.1:${sshd.port}`]);
    assert.notEqual(remote.code, 0);
    assert.match(remote.stderr, /remote port forwarding failed/i);
    const rows = await stack.waitForAudit(
      `SELECT command_text, effect FROM events FINAL WHERE identity_subject = '${SUB}' AND type = 'decision' AND command_text LIKE '%forward%'`,
      (x) => x.length >= 2,
    );
    assert.ok(rows.every((r) => r.effect === "deny"), JSON.stringify(rows));
  });
});

describe("authentication and targets", { skip }, () => {
  test("an unregistered key is refused", async () => {
    const r = await ssh(strangerKey, `${sshd.user}@box`, ["true"]);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Permission denied/);
  });

  test("an OIDC access token works as the password; an expired one is refused", async () => {
    const token = await stack.forge.mint({ sub: `${SUB}-token`, groups: ["agents"] });
    const good = await runClient("ssh", [...env.opts(gwPort, { password: true }), "-p", String(gwPort), ...as(`${sshd.user}@box`), "127.0.0.1", "echo", "token-ok"], { env: env.askpassEnv(token) });
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.stdout, "token-ok\n");
    const expired = await stack.forge.mint({ sub: `${SUB}-token`, groups: ["agents"], exp: Math.floor(Date.now() / 1000) - 3600 });
    const bad = await runClient("ssh", [...env.opts(gwPort, { password: true }), "-p", String(gwPort), ...as(`${sshd.user}@box`), "127.0.0.1", "true"], { env: env.askpassEnv(expired) });
    assert.equal(bad.code, 255);
    assert.match(bad.stderr, /Permission denied/);
    const rows = await stack.waitForAudit(`SELECT type, details FROM events FINAL WHERE type = 'auth_failure' AND protocol = 'ssh' AND details LIKE '%expired%'`, (x) => x.length >= 1);
    assert.equal(rows.length >= 1, true);
  });

  test("an unknown connection and a mismatching upstream host key are refused with a clear message", async () => {
    const unknown = await ssh(agentKey, `${sshd.user}@nowhere`, ["true"]);
    assert.equal(unknown.code, 255);
    assert.match(unknown.stderr, /unknown SSH connection "nowhere"/);
    const pinned = await ssh(agentKey, `${sshd.user}@pinned_wrong`, ["true"]);
    assert.equal(pinned.code, 255);
    assert.match(pinned.stderr, /host key of the upstream of connection pinned_wrong .* does not match/);
  });
});

describe("robustness", { skip }, () => {
  test("garbage on the SSH port and an abandoned handshake leave the listener serving", async () => {
    for (const junk of [Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Buffer.from("SSH-2.0-x\r\n" + "\xff".repeat(5000), "latin1"), Buffer.alloc(0)]) {
      const sock = createConnection({ host: "127.0.0.1", port: gwPort });
      await once(sock, "connect");
      sock.write(junk);
      sock.on("error", () => {});
      await new Promise((r) => setTimeout(r, 100));
      sock.destroy();
    }
    const r = await ssh(agentKey, `${sshd.user}@box`, ["echo", "still-here"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "still-here\n");
  });

  test("policy service down: the command is refused (fail closed), the next command works once it is back", async () => {
    await stack.stopService("policy");
    try {
      // One connection, two commands: the first while policy is down (a fresh text, so no cached decision).
      const script = `echo first-${Date.now()}`;
      const r = await ssh(agentKey, `${sshd.user}@box`, [script]);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, /gatehouse: policy unavailable: .*not executed/);
      assert.equal(r.stdout, "");
    } finally {
      await stack.startService("policy");
    }
    const ok = await ssh(agentKey, `${sshd.user}@box`, [`echo back-${process.pid}`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `back-${process.pid}\n`);
  });
});

describe("audit", { skip }, () => {
  test("every exec and session start/end is in the audit store with identity and decision", async () => {
    const rows = await stack.waitForAudit(
      `SELECT type, command_text, effect, policy_ids, identity_subject, identity_groups, session_id FROM events FINAL WHERE identity_subject = '${SUB}' AND protocol = 'ssh'`,
      // The store is asynchronous: wait until every recorded start has its end.
      (x) => {
        const ended = new Set(x.filter((r) => r.type === "session_end").map((r) => r.session_id));
        const started = x.filter((r) => r.type === "session_start");
        return ended.size >= 10 && started.every((r) => ended.has(r.session_id));
      },
    );
    // A command event is stored as a command row and a decision row (with the effect).
    const commands = rows.filter((r) => r.type === "decision");
    assert.equal(rows.filter((r) => r.type === "command").length, commands.length);
    const byText = (t: string) => commands.filter((r) => r.command_text === t);
    assert.equal(byText("echo hello-from-box").length, 1);
    assert.equal(byText("echo hello-from-box")[0]!.effect, "allow");
    assert.deepEqual(byText("echo hello-from-box")[0]!.policy_ids, ["agents-ssh-read-only-exec"]);
    assert.equal(byText("rm -rf /")[0]!.effect, "deny");
    assert.deepEqual(byText("rm -rf /")[0]!.policy_ids, ["forbid-ssh-rm-root"]);
    const starts = new Set(rows.filter((r) => r.type === "session_start").map((r) => r.session_id));
    const ends = new Set(rows.filter((r) => r.type === "session_end").map((r) => r.session_id));
    for (const c of commands) assert.ok(starts.has(c.session_id), `command ${String(c.command_text)} belongs to a recorded session`);
    for (const s of starts) assert.ok(ends.has(s), "every session that started also ended");
    const results = await stack.auditQuery(`SELECT status_tag FROM events FINAL WHERE identity_subject = '${SUB}' AND type = 'result' AND status_tag = 'exit 2'`);
    assert.ok(results.length >= 1, "exit statuses are audited");
  });
});
