// Where the CLI finds the identity it acts as: GATEHOUSE_TOKEN, else the token
// saved by `gatehouse login` (a file only the user can read).
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

export function tokenFile(): string {
  if (process.env.GATEHOUSE_TOKEN_FILE) return process.env.GATEHOUSE_TOKEN_FILE;
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "gatehouse", "token");
}

export function saveToken(token: string): string {
  const file = tokenFile();
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

export function forgetToken(): boolean {
  const file = tokenFile();
  if (!existsSync(file)) return false;
  rmSync(file);
  return true;
}

/** The token to act as, with where it came from; throws how to get one. */
export function currentToken(): { token: string; source: string } {
  const env = process.env.GATEHOUSE_TOKEN?.trim();
  if (env) return { token: env, source: "GATEHOUSE_TOKEN" };
  const file = tokenFile();
  if (existsSync(file)) {
    const t = readFileSync(file, "utf8").trim();
    if (t) return { token: t, source: file };
  }
  throw new Error(
    "not signed in: set GATEHOUSE_TOKEN (locally: export GATEHOUSE_TOKEN=$(gatehouse token --sub alice --groups approvers --kind human)) or run `gatehouse login`",
  );
}

/** Claims of a JWT, unverified (for display only: the server verifies). */
export function peekClaims(token: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
