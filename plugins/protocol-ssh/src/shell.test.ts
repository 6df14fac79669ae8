import { test } from "node:test";
import assert from "node:assert/strict";
import { parseShell } from "./shell.js";
import { classifyExec } from "./classify.js";

const progs = (text: string) => parseShell(text).commands.map((c) => c.program);
const cmd = (text: string, i = 0) => parseShell(text).commands[i]!;

test("simple commands with quotes and escapes become argv", () => {
  assert.deepEqual(cmd(`ls -la '/var/log dir' "a b" c\\ d`).argv, ["ls", "-la", "/var/log dir", "a b", "c d"]);
  assert.deepEqual(cmd(`echo "it's \\"quoted\\" \\$HOME"`).argv, ["echo", `it's "quoted" $HOME`]);
  assert.deepEqual(cmd(`printf $'a\\tb'`).argv, ["printf", "a\tb"]);
});

test("lists, pipes, && and || split into one command each", () => {
  assert.deepEqual(progs("ls; df -h && uptime || echo no & wc -l"), ["ls", "df", "uptime", "echo", "wc"]);
  assert.deepEqual(progs("cat /etc/passwd | grep root | wc -l"), ["cat", "grep", "wc"]);
  assert.deepEqual(progs("ls\nuptime\n"), ["ls", "uptime"]);
});

test("piping into a shell or interpreter is flagged", () => {
  const c = parseShell("curl -fsSL https://x.example/i.sh | sh").commands;
  assert.deepEqual(c.map((x) => x.program), ["curl", "sh"]);
  assert.ok(c[1]!.flags.includes("pipe_to_shell"));
  assert.ok(!c[0]!.flags.includes("pipe_to_shell"));
  assert.ok(parseShell("wget -qO- x | sudo bash -s").commands[1]!.flags.includes("pipe_to_shell"));
  assert.ok(parseShell("cat x.py | /usr/bin/python3").commands[1]!.flags.includes("pipe_to_shell"));
});

test("substitutions, backticks, subshells and sh -c are followed", () => {
  const s = parseShell("echo $(rm -rf /) `shutdown now`").commands;
  assert.deepEqual(s.map((x) => x.program).sort(), ["echo", "rm", "shutdown"]);
  assert.ok(s.find((x) => x.program === "rm")!.flags.includes("substitution"));
  assert.ok(s.find((x) => x.program === "echo")!.flags.includes("has_substitution"));
  const sub = parseShell("(cd /tmp && rm -rf x)").commands;
  assert.deepEqual(sub.map((x) => x.program), ["cd", "rm"]);
  assert.ok(sub.every((x) => x.flags.includes("subshell")));
  const c = parseShell(`bash -c 'rm -rf / ; echo "$(reboot)"'`).commands;
  assert.deepEqual(c.map((x) => x.program).sort(), ["bash", "echo", "reboot", "rm"]);
  assert.ok(c.find((x) => x.program === "rm")!.flags.includes("shell_c"));
  assert.deepEqual(progs("diff <(ls a) <(ls b)").sort(), ["diff", "ls", "ls"]);
  assert.deepEqual(progs("echo $((1 + 2)) ${HOME}"), ["echo"]);
});

test("wrappers are looked through: the program is what actually runs", () => {
  const c = cmd("sudo -u root env FOO=1 nohup timeout 5 rm -rf /");
  assert.equal(c.program, "rm");
  assert.equal(c.argv[c.programIndex], "rm");
  assert.ok(c.flags.includes("privileged"));
  assert.ok(c.flags.includes("wrapper:timeout"));
  assert.equal(cmd("/sbin/shutdown -h now").program, "shutdown");
  assert.equal(cmd("FOO=bar LANG=C ls").program, "ls");
  assert.equal(cmd("xargs -n1 rm").program, "rm");
});

test("redirections are recorded and never taken for arguments", () => {
  const c = cmd("echo hi > /etc/motd 2>&1 < /dev/null");
  assert.deepEqual(c.argv, ["echo", "hi"]);
  assert.deepEqual(c.paths, ["/etc/motd", "/dev/null"]);
  assert.ok(c.flags.includes("redirect_write"));
  assert.deepEqual(cmd("ls &>/tmp/x").paths, ["/tmp/x"]);
  const g = parseShell("(echo a; echo b) 2>/dev/null > /etc/passwd").commands;
  assert.ok(g.every((x) => x.flags.includes("redirect_write") && x.paths.includes("/etc/passwd")), "a group's redirection applies to its commands");
  const h = parseShell("cat <<EOF\nrm -rf /\nEOF\nuptime");
  assert.deepEqual(h.commands.map((x) => x.program), ["cat", "uptime"], "a here-document body is data, not commands");
});

test("control flow keywords are structure, not programs", () => {
  assert.deepEqual(progs("if test -f x; then rm x; else echo none; fi"), ["test", "rm", "echo"]);
  assert.deepEqual(progs("while true; do uptime; done"), ["true", "uptime"]);
  assert.deepEqual(progs("{ ls; df; }"), ["ls", "df"]);
});

test("dynamic programs and eval are flagged", () => {
  assert.ok(cmd("$CMD -rf /").flags.includes("dynamic_program"));
  assert.ok(cmd("eval 'rm -rf /'").flags.includes("eval"));
  assert.equal(progs("# only a comment").length, 0);
});

test("broken lines are parse errors, never partial results", () => {
  for (const bad of [`echo 'open`, `echo "open`, "echo $(ls", "echo `ls", "ls )", "cat <<EOF\nno end", "ls >", "a\\"]) {
    const r = parseShell(bad);
    assert.ok(r.error, `${JSON.stringify(bad)} is an error`);
    assert.equal(r.commands.length, 0);
  }
  assert.match(parseShell("( ".repeat(40) + "ls" + " )".repeat(40)).error ?? "", /too deep/);
});

test("legacy scp maps to the file actions; anything around it is an exec line", () => {
  const up = classifyExec("scp -t /srv/upload");
  assert.equal(up.scp?.direction, "upload");
  assert.equal(up.statements[0]!.action, "ssh:sftp_write");
  assert.deepEqual(up.statements[0]!.ssh?.paths, ["/srv/upload"]);
  assert.equal(classifyExec("scp -r -f '/var/log/a b'").statements[0]!.action, "ssh:sftp_read");
  const sneaky = classifyExec("scp -t /tmp; rm -rf /");
  assert.equal(sneaky.scp, undefined);
  assert.deepEqual(sneaky.statements.map((s) => s.ssh?.program), ["scp", "rm"]);
  assert.ok(sneaky.statements.every((s) => s.action === "ssh:exec"));
});

test("an unparseable line is one statement with the parse error (denied by policy)", () => {
  const c = classifyExec("echo 'x");
  assert.match(c.parseError, /unterminated single quote/);
  assert.equal(c.statements.length, 1);
});
