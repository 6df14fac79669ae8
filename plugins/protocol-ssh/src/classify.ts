// Exec command lines and file operations as policy statements ("ssh:<kind>").
import { createHash } from "node:crypto";
import type { Statement } from "@gatehouse/proto";
import { parseShell } from "./shell.js";

export function statement(kind: string, facts: { argv?: string[]; program?: string; paths?: string[]; host?: string; port?: number }, flags: string[] = [], location = 0, length = 0): Statement {
  return {
    kind,
    action: `ssh:${kind}`,
    tables: [],
    writeTables: [],
    hasWhere: false,
    functions: [],
    nestedWrites: [],
    flags,
    location,
    length,
    ssh: { argv: facts.argv ?? [], program: facts.program ?? "", paths: facts.paths ?? [], host: facts.host ?? "", port: facts.port ?? 0 },
  };
}

export interface ClassifiedExec {
  statements: Statement[];
  parseError: string;
  /** Legacy SCP (`scp -t` / `scp -f`): the transfer direction and target. */
  scp?: { direction: "upload" | "download"; path: string; recursive: boolean };
}

/**
 * Classify an exec request. Legacy SCP runs as `scp -t <path>` (upload) or
 * `scp -f <path>` (download) on the server: those map to the SFTP file actions so
 * one read-only policy covers sftp and scp.
 */
export function classifyExec(text: string): ClassifiedExec {
  const scp = parseScp(text);
  if (scp) {
    const kind = scp.direction === "upload" ? "sftp_write" : "sftp_read";
    return { statements: [statement(kind, { argv: ["scp", scp.direction === "upload" ? "-t" : "-f", scp.path], program: "scp", paths: [scp.path] }, ["scp"], 0, text.length)], parseError: "", scp };
  }
  const p = parseShell(text);
  if (p.error !== undefined) {
    // One statement so the command is still attributable; the policy service denies parse errors.
    return { statements: [statement("exec", { argv: [], program: "" }, ["text_parse_error"], 0, text.length)], parseError: p.error };
  }
  if (p.commands.length === 0) return { statements: [], parseError: "" };
  return {
    statements: p.commands.map((c) => statement("exec", { argv: c.argv, program: c.program, paths: c.paths }, c.flags, c.location, c.length)),
    parseError: "",
  };
}

function parseScp(text: string): ClassifiedExec["scp"] | undefined {
  // Only a single plain `scp` command counts: `scp -t x; rm -rf /` is an exec line.
  const p = parseShell(text);
  if (p.error !== undefined || p.commands.length !== 1) return undefined;
  const c = p.commands[0]!;
  if (c.argv[0] !== "scp" || c.flags.length > 0) return undefined;
  let to = false;
  let from = false;
  let recursive = false;
  const rest: string[] = [];
  for (const a of c.argv.slice(1)) {
    if (rest.length === 0 && /^-[a-zA-Z]+$/.test(a)) {
      to ||= a.includes("t");
      from ||= a.includes("f");
      recursive ||= a.includes("r");
    } else if (!(rest.length === 0 && a === "--")) rest.push(a);
  }
  if (to === from || rest.length !== 1) return undefined;
  return { direction: to ? "upload" : "download", path: rest[0]!, recursive };
}

/** Decision cache key for SSH commands: the exact text, with a protocol prefix. */
export function sshFingerprint(text: string): string {
  return "ssh:" + createHash("sha256").update(text).digest("hex");
}
