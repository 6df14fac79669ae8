import { parseArgs } from "node:util";

export interface CliCommand {
  /** Full usage text, printed by --help. */
  usage: string;
  /** Run with the arguments after the command name; resolves with the exit code. */
  run(args: string[]): Promise<number>;
}

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean; default?: string | boolean }>;

export interface ParsedOptions {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** Strict option parsing with a readable error naming the bad option. */
export function parseOptions(args: string[], options: OptionSpec, usage: string): ParsedOptions {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true }) as ParsedOptions;
  } catch (e) {
    throw new Error(`${(e as Error).message}\n\n${usage}`);
  }
}
