// The generated TypeScript must be exactly what `npm run proto` makes from proto/
// (reproducible contracts): scripts/check-proto.mjs regenerates into a temporary
// directory with the locked buf and ts-proto and compares byte for byte.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

test("proto/src/gen is reproducible from proto/ with the committed command", () => {
  const r = spawnSync(process.execPath, [join(root, "scripts", "check-proto.mjs")], { encoding: "utf8" });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /generated files match/);
});
