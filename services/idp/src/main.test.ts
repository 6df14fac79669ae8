// The IdP as a process (service convention: one "ready" line, clean stop on
// SIGTERM) and `gatehouse token` against it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { freePort } from "@gatehouse/testing";
import { spawn, execFile } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createTokenVerifier } from "@gatehouse/identity";

const repo = resolve(fileURLToPath(import.meta.url), "../../../..");
const run = promisify(execFile);


async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(repo, "packages/cli/dist/main.js"), ...args], { cwd: repo });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

test("idp process: ready line, `gatehouse token` mints a verifiable token, clean SIGTERM stop", async () => {
  const dir = await mkdtemp(join(tmpdir(), "gatehouse-idp-main-"));
  const port = await freePort();
  const configFile = join(dir, "gatehouse.yaml");
  await writeFile(configFile, `dataDir: ./data\nidp:\n  port: ${port}\n`);
  const env = { ...process.env };
  for (const k of ["GATEHOUSE_CONFIG", "GATEHOUSE_DATA_DIR", "GATEHOUSE_IDP_PORT", "GATEHOUSE_IDP_ISSUER"]) delete env[k];
  const child = spawn(process.execPath, [join(repo, "services/idp/dist/main.js"), "--config", configFile], { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  try {
    await new Promise<void>((res, rej) => {
      child.stdout.on("data", (b: Buffer) => {
        out += b.toString();
        if (/"msg":"ready"/.test(out)) res();
      });
      child.stderr.on("data", (b: Buffer) => (out += b.toString()));
      child.once("exit", (code) => rej(new Error(`idp exited ${code}:\n${out}`)));
    });
    const ready = JSON.parse(out.split("\n").find((l) => l.includes('"msg":"ready"'))!) as { issuer: string };
    assert.equal(ready.issuer, `http://127.0.0.1:${port}`);

    const r = await cli(["token", "--config", configFile, "--sub", "agent-1", "--groups", "agents,readers", "--ttl", "2m", "--kind", "ci"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const token = r.stdout.trimEnd();
    assert.equal(r.stdout, `${token}\n`, "stdout holds only the token");
    const id = await createTokenVerifier({ issuers: [{ issuer: ready.issuer, audience: "gatehouse" }], clockSkewSeconds: 0 }).verify(token, "agent-1");
    assert.deepEqual([id.subject, id.groups, id.kind], ["agent-1", ["agents", "readers"], "ci"]);
    assert.ok(id.expiresAtUnix <= Math.floor(Date.now() / 1000) + 120);
    assert.ok(!out.includes(token), "the token is not logged");
  } finally {
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = await exited;
    assert.equal(code, 0, out);
    await rm(dir, { recursive: true, force: true });
  }
});

test("`gatehouse token` with no IdP running says how to start it", async () => {
  const port = await freePort();
  const r = await cli(["token", "--sub", "agent-1", "--issuer", `http://127.0.0.1:${port}`]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, new RegExp(`^gatehouse token: no identity provider at http://127.0.0.1:${port} \\(ECONNREFUSED\\): start the stack with \`npm start\`\\n$`));
});

test("`gatehouse token` option errors exit 2", async () => {
  assert.equal((await cli(["token"])).code, 2);
  assert.match((await cli(["token", "--sub", "a", "--kind", "root"])).stderr, /--kind root: must be one of agent, ci, human, service/);
  assert.match((await cli(["token", "--sub", "a", "--ttl", "3d"])).stderr, /--ttl 3d: expected 1m to 24h/);
  const help = await cli(["token", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /PGPASSWORD=\$\(gatehouse token --sub agent-1 --groups agents\)/);
});
