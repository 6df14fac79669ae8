import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { Command, Effect, type DecideRequest, type Statement } from "@gatehouse/proto";
import { initSql } from "@gatehouse/sql";
import { loadSchema, PolicyEngine } from "./index.js";
import { SSH_ACTION_GROUPS, SSH_ACTIONS } from "./ssh-actions.js";

const DEMO_DIR = fileURLToPath(new URL("../../../deploy/policies/", import.meta.url));

function st(kind: string, f: { argv?: string[]; program?: string; paths?: string[]; host?: string; port?: number } = {}, flags: string[] = []): Statement {
  return {
    kind,
    action: `ssh:${kind}`,
    tables: [],
    writeTables: [],
    hasWhere: false,
    functions: [],
    nestedWrites: [],
    flags,
    location: 0,
    length: 0,
    ssh: { argv: f.argv ?? [], program: f.program ?? "", paths: f.paths ?? [], host: f.host ?? "", port: f.port ?? 0 },
  };
}
const exec = (argv: string[], flags: string[] = [], program = argv[0]!.split("/").pop()!) => st("exec", { argv, program }, flags);

function req(statements: Statement[], groups = ["agents"], protocol = "ssh", text = "x"): DecideRequest {
  return {
    identity: { subject: "agent-1", name: "agent-1", groups, kind: "agent", issuer: "test", tokenId: "", clientId: "", expiresAtUnix: 0 },
    connection: { name: "box", protocol, tags: { env: "prod" } },
    command: Command.fromPartial({ text, connection: "box", protocol, statements }),
  };
}

let demo: PolicyEngine;
before(async () => {
  await initSql();
  demo = new PolicyEngine();
  const r = demo.loadDir(DEMO_DIR);
  assert.deepEqual(r.errors, []);
});

describe("ssh statements with the demo policies", () => {
  test("agents may run read-only commands", () => {
    const d = demo.decide(req([exec(["ls", "-la", "/var/log"]), exec(["grep", "-c", "x"], ["piped_input"])]));
    assert.equal(d.effect, Effect.EFFECT_ALLOW, d.reason);
    assert.deepEqual(d.policyIds, ["agents-ssh-read-only-exec"]);
  });

  test("catastrophes are denied by name, for everyone", () => {
    for (const [s, policy] of [
      [exec(["rm", "-rf", "/"]), "forbid-ssh-rm-root"],
      [exec(["sudo", "rm", "-rf", "/*"], ["privileged"], "rm"), "forbid-ssh-rm-root"],
      [exec(["shutdown", "-h", "now"]), "forbid-ssh-power"],
      [exec(["systemctl", "reboot"]), "forbid-ssh-power"],
      [exec(["sh"], ["pipe_to_shell", "piped_input"]), "forbid-ssh-pipe-to-shell"],
    ] as const) {
      for (const groups of [["agents"], ["dba"]]) {
        const d = demo.decide(req([s], groups));
        assert.equal(d.effect, Effect.EFFECT_DENY, `${s.ssh!.argv.join(" ")} for ${groups[0]}`);
        assert.ok(d.policyIds.includes(policy), `${d.policyIds.join(",")} includes ${policy}`);
      }
    }
  });

  test("a redirect that writes, find -delete and unknown programs are not read-only", () => {
    assert.equal(demo.decide(req([exec(["echo", "x"], ["redirect_write"])])).effect, Effect.EFFECT_DENY);
    const f = demo.decide(req([exec(["find", "/", "-name", "x", "-delete"])]));
    assert.deepEqual(f.policyIds, ["forbid-ssh-find-actions"]);
    const u = demo.decide(req([exec(["python3", "-c", "print(1)"])]));
    assert.deepEqual(u.policyIds, ["default-deny"]);
    assert.match(u.reason, /no policy permits ssh:exec on connection box for agent-1/);
  });

  test("one denied simple command denies the whole line", () => {
    const d = demo.decide(req([exec(["echo", "hi"]), exec(["rm", "-rf", "/"], ["substitution"])]));
    assert.equal(d.effect, Effect.EFFECT_DENY);
    assert.match(d.reason, /statement 2 \(ssh:exec\): rm of \/ or \/\* is never allowed/);
  });

  test("restarting a service is held for approval", () => {
    const d = demo.decide(req([exec(["systemctl", "restart", "nginx"])]));
    assert.equal(d.effect, Effect.EFFECT_REQUIRE_APPROVAL);
    assert.deepEqual(d.policyIds, ["ssh-restart-needs-approval"]);
    assert.deepEqual(d.approval?.approverGroups, ["approvers"]);
  });

  test("files: agents read, never write; shells need ssh-shell", () => {
    assert.equal(demo.decide(req([st("sftp_read", { paths: ["/etc/hosts"] })])).effect, Effect.EFFECT_ALLOW);
    assert.equal(demo.decide(req([st("sftp_list", { paths: ["/"] })])).effect, Effect.EFFECT_ALLOW);
    for (const k of ["sftp_write", "sftp_remove", "sftp_rename", "sftp_mkdir", "sftp_setstat"]) {
      assert.equal(demo.decide(req([st(k, { paths: ["/tmp/x"] })])).effect, Effect.EFFECT_DENY, k);
    }
    assert.equal(demo.decide(req([st("shell")])).effect, Effect.EFFECT_DENY);
    assert.equal(demo.decide(req([st("shell")], ["agents", "ssh-shell"])).effect, Effect.EFFECT_ALLOW);
  });

  test("forwarding is allowed only to the exact destination a policy names", () => {
    assert.equal(demo.decide(req([st("forward", { host: "127.0.0.1", port: 5432 })], ["db-tunnel"])).effect, Effect.EFFECT_ALLOW);
    assert.equal(demo.decide(req([st("forward", { host: "127.0.0.1", port: 22 })], ["db-tunnel"])).effect, Effect.EFFECT_DENY);
    assert.equal(demo.decide(req([st("forward", { host: "127.0.0.1", port: 5432 })], ["agents"])).effect, Effect.EFFECT_DENY);
    assert.equal(demo.decide(req([st("remote_forward", { host: "0.0.0.0", port: 8080 })], ["db-tunnel"])).effect, Effect.EFFECT_DENY);
  });
});

describe("pre-classified statements are checked", () => {
  test("a parse error from the plugin denies", () => {
    const r = req([exec(["echo"])]);
    r.command!.parseError = "unterminated single quote at offset 5";
    const d = demo.decide(r);
    assert.equal(d.effect, Effect.EFFECT_DENY);
    assert.deepEqual(d.policyIds, ["parse-error"]);
  });

  test("postgres commands are always classified by the policy service", () => {
    // A client claiming "this DELETE is an ls" gets the SQL classifier anyway.
    const d = demo.decide(req([exec(["ls"])], ["agents"], "postgres", "DELETE FROM orders"));
    assert.equal(d.classified[0]!.action, "sql:delete");
    assert.equal(d.effect, Effect.EFFECT_DENY);
  });

  test("unknown or SQL actions in an SSH command are refused", () => {
    const bad = exec(["ls"]);
    bad.action = "sql:select";
    const d = demo.decide(req([bad]));
    assert.equal(d.effect, Effect.EFFECT_DENY);
    assert.deepEqual(d.policyIds, ["invalid-request"]);
  });
});

test("the shipped schema declares exactly the SSH actions and groups of SSH_ACTIONS", () => {
  const json = cedar.schemaToJson(loadSchema());
  assert.equal(json.type, "success");
  if (json.type !== "success") return;
  const actions = json.json.Gatehouse!.actions;
  const declared = Object.keys(actions).filter((a) => a.startsWith("ssh:"));
  assert.deepEqual(declared.sort(), [...Object.keys(SSH_ACTIONS), ...Object.keys(SSH_ACTION_GROUPS)].sort());
  for (const [a, parents] of Object.entries({ ...SSH_ACTIONS, ...SSH_ACTION_GROUPS })) {
    assert.deepEqual((actions[a]!.memberOf ?? []).map((m) => m.id).sort(), [...parents].sort(), a);
  }
});
