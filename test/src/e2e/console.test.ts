// Issue 6 acceptance, the auditor console in headless Chromium: real sessions run
// through the whole stack (psql to the listener to the real PostgreSQL: a masked
// SELECT, a denied DROP, a DELETE held for approval and approved through the CLI),
// then an auditor signs in at the dev IdP (OIDC code + PKCE), filters sessions,
// opens a session timeline, reads its SQL transcript, plays a terminal recording
// (asciinema-player renders it) and views each dashboard; a developer is refused.
// Both recordings are real: the psql session's SQL transcript, and an interactive
// shell that the real OpenSSH client opens through the gateway's SSH listener to a
// real sshd started here (listener -> RECORDINGS -> audit service -> ClickHouse).
// Screenshots: test-results/console/*.png.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { startApprovalStack, type ApprovalStack } from "../support/approval-stack.js";
import { freePort, repoRoot } from "../support/processes.js";
import { clientEnv, keygen, runClient, SSHD, startSshd, type SshClientEnv, type TestSshd } from "../support/sshd.js";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = join(repoRoot, "test-results/console");
const AGENT = `console-agent-${process.pid}`;
const OTHER = `console-other-${process.pid}`;
const OPS = `console-ops-${process.pid}`;
let stack: ApprovalStack;
let pgSession = "";
let sshSession = "";
let sshd: TestSshd | undefined;
let sshEnv: SshClientEnv | undefined;
const missing = !existsSync(CHROMIUM) ? `${CHROMIUM} is not installed (apt-get install chromium); the console test needs a real browser` : !SSHD ? "sshd is not installed (apt-get install openssh-server); the console test records a real shell" : "";

function psql(token: string, user: string, sql: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("psql", [stack.dsn(token, user), "-X", "-A", "-t", "-c", sql], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b) => (stdout += b));
    child.stderr.on("data", (b) => (stderr += b));
    child.on("exit", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** One psql session running several statements, one after the other (-c per statement). */
function psqlSession(token: string, user: string, statements: string[], onStderr?: (s: string) => void): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const args = [stack.dsn(token, user), "-X", "-A", "-t"];
    for (const s of statements) args.push("-c", s);
    const child = spawn("psql", args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b) => (stdout += b));
    child.stderr.on("data", (b) => {
      stderr += b;
      onStderr?.(stderr);
    });
    child.on("exit", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}


before(async () => {
  if (missing) return;
  sshd = await startSshd();
  sshEnv = clientEnv();
  const opsKey = keygen(sshEnv.dir, "ops_key");
  const sshPort = await freePort();
  stack = await startApprovalStack({
    listeners: { ssh: { host: "127.0.0.1", port: sshPort, authorizedKeys: [{ key: opsKey.publicKey, subject: OPS, groups: ["agents", "ssh-shell"] }] } },
    connections: {
      bastion: { protocol: "ssh", upstream: { host: "127.0.0.1", port: sshd.port, user: sshd.user, hostKey: sshd.hostKey, keyFile: sshd.upstreamKey.privateFile }, tags: { env: "test" } },
    },
  });
  sshEnv.trust(sshPort, readFileSync(join(stack.dir, "data", "ssh", "gatehouse_host_ed25519_key.pub"), "utf8").trim().split(" ").slice(0, 2).join(" "));
  // A real interactive shell through the gateway, recorded as asciicast.
  const shell = await runClient("ssh", [...sshEnv.opts(sshPort, { key: opsKey.privateFile }), "-p", String(sshPort), "-o", `User=${sshd.user}@bastion`, "-tt", "127.0.0.1"], { input: "echo gatehouse-$((6*7))-recorded\nexit\n" });
  assert.match(shell.stdout, /gatehouse-42-recorded/, shell.stdout + shell.stderr);
  const up = await stack.upstream();
  await up.query(`CREATE TABLE customers (id int PRIMARY KEY, name text, email text, phone text);
    INSERT INTO customers VALUES (1, 'Ada Lovelace', 'ada@example.org', '555-0101'), (2, 'Alan Turing', 'alan@example.org', '555-0102');`);
  await up.end();
  const agent = await stack.forge.mint({ sub: AGENT, groups: ["agents"] });
  const other = await stack.forge.mint({ sub: OTHER, groups: ["agents"] });
  const alice = await stack.forge.mint({ sub: "alice", groups: ["approvers"] });
  // Session 1: a masked SELECT, a denied DROP, and a DELETE held for approval (approved by alice via the CLI).
  let approving: Promise<unknown> | undefined;
  const s1 = await psqlSession(agent, AGENT, ["SELECT name, email FROM customers ORDER BY id", "DROP TABLE customers", "DELETE FROM orders WHERE id = 3"], (err) => {
    const m = /ticket ([0-9a-f-]{36})/.exec(err);
    if (m && !approving) approving = stack.cli(["approvals", "approve", m[1]!, "--reason", "console e2e"], { GATEHOUSE_TOKEN: alice });
  });
  assert.match(s1.stdout, /Ada Lovelace\|\[REDACTED/, s1.stdout + s1.stderr);
  assert.match(s1.stderr, /denied by policy/);
  assert.ok(approving, `the DELETE was held: ${s1.stderr}`);
  // Session 2: another agent, allowed only.
  const s2 = await psql(other, OTHER, "SELECT count(*) FROM orders");
  assert.equal(s2.code, 0, s2.stderr);
  const rows = await stack.waitForAudit(
    `SELECT session_id FROM gatehouse.events FINAL WHERE type = 'session_end' AND identity_subject IN ('${AGENT}', '${OTHER}')`,
    (r) => r.length === 2,
  );
  assert.equal(rows.length, 2);
  pgSession = String((await stack.auditQuery(`SELECT session_id FROM gatehouse.events FINAL WHERE type = 'session_start' AND identity_subject = '${AGENT}'`))[0]!.session_id);
  await stack.waitForAudit(`SELECT 1 FROM gatehouse.events FINAL WHERE type = 'masking' AND session_id = '${pgSession}'`, (r) => r.length > 0);
  // The real session's recording, copied by the audit service.
  const rec = await stack.waitForAudit(`SELECT complete FROM gatehouse.recording_index WHERE session_id = '${pgSession}'`, (r) => r.length === 1 && Boolean(r[0]!.complete), 30_000);
  assert.ok(rec.length === 1 && rec[0]!.complete, `the psql session's recording is in ClickHouse: ${JSON.stringify(rec)}`);

  const ssh = await stack.waitForAudit(`SELECT session_id FROM gatehouse.events FINAL WHERE type = 'session_end' AND identity_subject = '${OPS}'`, (r) => r.length === 1);
  sshSession = String(ssh[0]!.session_id);
  const cast = await stack.waitForAudit(`SELECT kind, complete FROM gatehouse.recording_index WHERE session_id = '${sshSession}'`, (r) => r.length === 1 && Boolean(r[0]!.complete), 30_000);
  assert.equal(cast[0]?.kind, "asciicast", `the shell's recording is in ClickHouse: ${JSON.stringify(cast)}`);
  mkdirSync(SHOTS, { recursive: true });
});

after(async () => {
  await stack?.stop();
  await sshd?.stop();
  if (sshEnv) rmSync(sshEnv.dir, { recursive: true, force: true });
});

test("auditor console in Chromium: log in, filter sessions, timeline, SQL transcript, terminal recording, every dashboard; a developer is refused", async (t) => {
  if (missing) return t.skip(missing);
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
  const shot = async (page: import("playwright-core").Page, name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const login = async (page: import("playwright-core").Page, user: string, group: string) => {
    await page.goto(`${stack.apiUrl}/console/sessions`);
    await page.waitForSelector('input[name="username"]', { timeout: 20_000 });
    assert.ok(page.url().startsWith(stack.idpUrl), page.url());
    await page.fill('input[name="username"]', user);
    await page.check(`input[name="groups"][value="${group}"]`);
    await Promise.all([page.waitForURL(`${stack.apiUrl}/console/sessions`, { timeout: 20_000 }), page.click('button[type="submit"]')]);
  };
  try {
    const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
    await login(page, "audrey", "auditors");
    await page.waitForSelector("#sessions", { timeout: 15_000 });
    assert.equal(await page.textContent("#me"), "audrey");
    assert.deepEqual(await page.$$eval("#nav a", (as) => as.map((a) => a.textContent)), ["Sessions", "Dashboards"]);
    await shot(page, "01-sessions");

    // Filter: this agent's sessions with a denied command.
    await page.fill('input[name="identity"]', AGENT);
    await page.check('input[name="denied"]');
    await Promise.all([page.waitForURL(/\/console\/sessions\?/), page.click("#apply")]);
    const listed = await page.$$eval("#sessions tbody tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent?.trim())));
    assert.equal(listed.length, 1, JSON.stringify(listed));
    assert.equal(listed[0]![0], pgSession);
    assert.deepEqual(listed[0]!.slice(1, 4), [AGENT, "pg", "postgres"]);
    assert.deepEqual(listed[0]!.slice(6), ["3", "1", "1", "2", "yes"], "commands, denied, approvals, masked values (2 emails), recording");
    await shot(page, "02-sessions-filtered");
    await page.fill('input[name="identity"]', OTHER);
    await Promise.all([page.waitForURL(/identity=console-other/), page.click("#apply")]);
    await page.waitForSelector("#no-sessions");

    // The session timeline.
    await page.goto(`${stack.apiUrl}/console/sessions/${encodeURIComponent(pgSession)}`);
    await page.waitForSelector("#timeline");
    assert.equal(await page.textContent("#identity"), AGENT);
    const effects = await page.$$eval("#timeline .tl-cmd", (els) => els.map((e) => [e.querySelector(".effect")?.textContent, e.querySelector("pre.command")?.textContent]));
    assert.deepEqual(effects, [
      ["allow", "SELECT name, email FROM customers ORDER BY id"],
      ["deny", "DROP TABLE customers"],
      ["require_approval", "DELETE FROM orders WHERE id = 3"],
    ]);
    assert.match((await page.textContent("#timeline")) ?? "", /approval outcome approved by alice/);
    assert.match((await page.textContent("#timeline")) ?? "", /masked 2 value\(s\) of EMAIL in customers\.email with redact/);
    assert.match((await page.textContent("#timeline")) ?? "", /DELETE 1, 1 row\(s\)/);
    await shot(page, "03-session-timeline");

    // Its SQL transcript.
    await Promise.all([page.waitForURL(/\/recording$/), page.click("#recording-link")]);
    await page.waitForSelector("#transcript");
    const transcript = (await page.textContent("#transcript")) ?? "";
    assert.match(transcript, /SELECT name, email FROM customers ORDER BY id/);
    assert.match(transcript, /Ada Lovelace[\s\S]*\[REDACTED:EMAIL\]/);
    assert.doesNotMatch(transcript, /ada@example\.org/);
    assert.match(transcript, /ERROR 42501/);
    await shot(page, "04-sql-transcript");

    // The shell's terminal recording: the asciinema player renders and plays it.
    await page.goto(`${stack.apiUrl}/console/sessions/${encodeURIComponent(sshSession)}/recording`);
    await page.waitForSelector("#player .ap-player", { timeout: 15_000 });
    // Runs in the page: the terminal's text once playback has reached the last frame.
    await page.waitForFunction('(document.querySelector("#player .ap-term, #player .ap-terminal")?.textContent ?? "").includes("gatehouse-42-recorded")', undefined, { timeout: 20_000 });
    await shot(page, "05-terminal-recording");

    // Every dashboard, with charts that hold data.
    for (const [name, chart, expected] of [["access", "chart-access-over-time", 2], ["denied", "chart-denied-by-policy", 3], ["approvals", "chart-approval-states", 3], ["masking", "chart-masking-by-entity", 3]] as const) {
      await page.goto(`${stack.apiUrl}/console/dashboards/${name}?range=24h`);
      await page.waitForSelector(`svg#${chart}`);
      const points = await page.$$eval(`svg#${chart} .point`, (ps) => ps.length);
      assert.ok(points > 0, `${name}: ${chart} has data points`);
      assert.equal(await page.$$eval("svg.chart", (cs) => cs.length), expected, `${name}: every panel has its chart`);
      await shot(page, `06-dashboard-${name}`);
    }
    await page.goto(`${stack.apiUrl}/console/dashboards/denied?range=24h`);
    assert.match((await page.textContent("#panel-denied_by_identity")) ?? "", new RegExp(AGENT));

    // A developer is refused with the groups named.
    const dev = await (await browser.newContext()).newPage();
    await dev.goto(`${stack.apiUrl}/console/sessions`);
    await dev.waitForSelector('input[name="username"]', { timeout: 20_000 });
    await dev.fill('input[name="username"]', "devon");
    await dev.check('input[name="groups"][value="developers"]');
    const [resp] = await Promise.all([dev.waitForResponse((r) => r.url() === `${stack.apiUrl}/console/sessions`), dev.click('button[type="submit"]')]);
    assert.equal(resp.status(), 403);
    await dev.waitForSelector("#forbidden");
    assert.match((await dev.textContent("main")) ?? "", /needs membership of the group auditors/);
    await shot(dev, "07-forbidden");
  } finally {
    await browser.close();
  }

  // Every view above is in the audit trail under the auditor's subject.
  const kinds = await stack.waitForAudit("SELECT status_tag FROM gatehouse.events FINAL WHERE type = 'auditor_query' AND identity_subject = 'audrey'", (r) => r.length >= 11);
  const count = (k: string) => kinds.filter((r) => r.status_tag === k).length;
  assert.equal(count("sessions"), 3);
  assert.equal(count("session"), 1);
  assert.equal(count("recording"), 2);
  for (const d of ["access", "denied", "approvals", "masking"]) assert.ok(count(`dashboard:${d}`) >= 1, d);
});
