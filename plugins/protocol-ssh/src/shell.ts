// A POSIX-shell-aware splitter for exec command lines. It does not run anything: it
// finds every simple command the line would run (across pipes, lists, subshells,
// $(...) and backticks, `sh -c` strings) so policy sees each program with its argv,
// and flags constructs that hide what runs (pipes into a shell, eval, substitutions).
// Anything it cannot follow is a parse error, which policy denies (fail closed).

export interface SimpleCommand {
  /** Words after quote removal; substitutions stay as written ("$(date)"). */
  argv: string[];
  /** Basename of the program that actually runs, after wrappers such as sudo/env/nohup. */
  program: string;
  /** Index in argv of `program` (0 unless wrapped). */
  programIndex: number;
  flags: string[];
  /** Redirection targets (files written or read). */
  paths: string[];
  /** Byte offset and length in the original text. */
  location: number;
  length: number;
}

export interface ParsedLine {
  commands: SimpleCommand[];
  error?: string;
}

export class ShellParseError extends Error {}

/** Programs that execute their standard input (or a -c string) as code. */
const INTERPRETERS = new Set(["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh", "busybox", "python", "python2", "python3", "perl", "ruby", "node", "php", "lua", "tclsh", "pwsh", "source", "."]);
const SHELLS = new Set(["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"]);
/** Wrappers that run their arguments as a command; value: options that take an argument. */
const WRAPPERS: Record<string, Set<string>> = {
  sudo: new Set(["-u", "-g", "-C", "-h", "-p", "-r", "-t", "-U", "-D", "-R", "-T"]),
  doas: new Set(["-u", "-C"]),
  env: new Set(["-u", "-C", "-S", "--unset", "--chdir"]),
  nohup: new Set(),
  nice: new Set(["-n", "--adjustment"]),
  ionice: new Set(["-c", "-n", "-p", "-P", "-u"]),
  timeout: new Set(["-s", "-k", "--signal", "--kill-after"]),
  stdbuf: new Set(["-i", "-o", "-e"]),
  time: new Set(["-f", "-o"]),
  exec: new Set(["-a"]),
  command: new Set(),
  builtin: new Set(),
  xargs: new Set(["-a", "-d", "-E", "-e", "-I", "-i", "-L", "-l", "-n", "-P", "-s", "--max-args", "--max-procs", "--delimiter", "--arg-file"]),
  setsid: new Set(),
  chroot: new Set(),
  watch: new Set(["-n", "-d", "--interval"]),
};
/** Wrappers whose first non-option argument is not the command (timeout DURATION, chroot DIR). */
const WRAPPER_FIRST_ARG = new Set(["timeout", "chroot"]);
const RESERVED_PREFIX = new Set(["if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"]);
const RESERVED_ALONE = new Set(["fi", "done", "esac", "}", "then", "else", "do"]);

const MAX_DEPTH = 16;
const MAX_COMMANDS = 1000;

interface Word {
  text: string;
  /** Contains an unquoted $ expansion or substitution (its value is not known here). */
  dynamic: boolean;
  quoted: boolean;
  start: number;
}

class Parser {
  private i = 0;
  readonly out: SimpleCommand[] = [];
  private pendingHeredocs: { delim: string; strip: boolean }[] = [];

  constructor(
    private readonly s: string,
    private readonly depth: number,
    /** Flags every command found here inherits (e.g. "substitution"). */
    private readonly inherited: string[],
    private readonly base: number,
  ) {
    if (depth > MAX_DEPTH) throw new ShellParseError("nesting is too deep");
  }

  /** Parse a list until end of input, or until `close` (")" or "`") at top level. */
  parseList(close?: string): void {
    for (;;) {
      this.skipBlanks();
      if (this.i >= this.s.length) {
        if (close) throw new ShellParseError(`missing closing "${close}"`);
        return;
      }
      const c = this.s[this.i]!;
      if (close && c === close) return;
      if (c === ")" ) throw new ShellParseError(`unexpected ")" at offset ${this.base + this.i}`);
      if (c === "\n" || c === ";" || c === "&") {
        if (c === "\n") this.readHeredocBodies();
        this.i++;
        if (c === ";" && this.s[this.i] === ";") this.i++; // case terminator
        continue;
      }
      if (c === "|") {
        // "||" between pipelines
        if (this.s[this.i + 1] === "|") {
          this.i += 2;
          continue;
        }
        throw new ShellParseError(`unexpected "|" at offset ${this.base + this.i}`);
      }
      this.parsePipeline(close);
    }
  }

  private parsePipeline(close?: string): void {
    const stages: SimpleCommand[][] = [];
    for (;;) {
      const before = this.out.length;
      this.parseCommand(close);
      stages.push(this.out.slice(before));
      this.skipBlanks();
      if (this.s[this.i] === "|" && this.s[this.i + 1] !== "|") {
        this.i++;
        if (this.s[this.i] === "&") this.i++;
        // a newline may follow a pipe
        while (this.i < this.s.length && /[ \t\n]/.test(this.s[this.i]!)) this.i++;
        continue;
      }
      break;
    }
    if (stages.length < 2) return;
    for (let k = 0; k < stages.length; k++) {
      for (const cmd of stages[k]!) {
        if (k > 0) addFlag(cmd, "piped_input");
        if (k < stages.length - 1) addFlag(cmd, "piped_output");
        if (k > 0 && INTERPRETERS.has(cmd.program)) {
          addFlag(cmd, "pipe_to_shell");
        }
      }
    }
  }

  private parseCommand(close?: string): void {
    this.skipBlanks();
    const c = this.s[this.i];
    if (c === "(" ) {
      // subshell (or "((" arithmetic, which runs no program)
      if (this.s[this.i + 1] === "(") {
        this.skipArithmetic(this.i);
        return;
      }
      this.i++;
      const sub = new Parser(this.s, this.depth + 1, [...this.inherited, "subshell"], this.base);
      sub.i = this.i;
      sub.parseList(")");
      this.i = sub.i + 1;
      // "(a; b) > file": the group's redirections apply to every command in it.
      const r = this.readRedirectsAfterGroup();
      for (const cmd of sub.out) {
        for (const f of r.flags) addFlag(cmd, f);
        cmd.paths.push(...r.paths);
      }
      this.out.push(...sub.out);
      this.checkCount();
      return;
    }
    const start = this.i;
    const words: Word[] = [];
    const flags = [...this.inherited];
    const paths: string[] = [];
    for (;;) {
      this.skipBlanks();
      if (this.i >= this.s.length) break;
      const ch = this.s[this.i]!;
      if (ch === "#" ) {
        while (this.i < this.s.length && this.s[this.i] !== "\n") this.i++;
        break;
      }
      if (ch === "\n" || ch === ";" || ch === "|" || ch === ")" || (close && ch === close)) break;
      if (ch === "&") {
        if (this.s[this.i + 1] === ">") {
          this.i += this.s[this.i + 2] === ">" ? 3 : 2;
          paths.push(this.redirTarget(flags, "redirect_write"));
          continue;
        }
        if (this.s[this.i + 1] !== "&") addFlag0(flags, "background");
        break;
      }
      if (ch === "<" || ch === ">") {
        this.readRedirect(flags, paths);
        continue;
      }
      if (ch === "(") {
        // "name() {" function definitions and stray parentheses: not followed here.
        throw new ShellParseError(`unexpected "(" at offset ${this.base + this.i}`);
      }
      const w = this.readWord(flags);
      // IO number: digits directly followed by a redirection operator
      if (/^\d+$/.test(w.text) && !w.quoted && (this.s[this.i] === "<" || this.s[this.i] === ">")) {
        this.readRedirect(flags, paths);
        continue;
      }
      words.push(w);
    }
    this.finish(words, flags, paths, start);
  }

  private finish(words: Word[], flags: string[], paths: string[], start: number): void {
    // Leading assignments (VAR=value cmd) set the environment of the command.
    let k = 0;
    while (k < words.length && !words[k]!.quoted && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[k]!.text)) {
      addFlag0(flags, "env_assignment");
      k++;
    }
    // Reserved words in command position are structure, not programs.
    while (k < words.length && !words[k]!.quoted && RESERVED_PREFIX.has(words[k]!.text)) k++;
    const rest = words.slice(k);
    if (rest.length === 0) return;
    if (rest.length === 1 && !rest[0]!.quoted && RESERVED_ALONE.has(rest[0]!.text)) return;
    const argv = rest.map((w) => w.text);
    if (rest[0]!.dynamic) addFlag0(flags, "dynamic_program");
    let pi = 0;
    const seen = new Set<string>();
    for (;;) {
      const name = basename(argv[pi] ?? "");
      const opts = WRAPPERS[name];
      if (!opts || seen.has(name)) break;
      seen.add(name);
      addFlag0(flags, `wrapper:${name}`);
      if (name === "sudo" || name === "doas") addFlag0(flags, "privileged");
      let j = pi + 1;
      let skippedFirst = !WRAPPER_FIRST_ARG.has(name);
      while (j < argv.length) {
        const a = argv[j]!;
        if (a === "--") {
          j++;
          break;
        }
        if (name === "env" && /^[A-Za-z_][A-Za-z0-9_]*=/.test(a)) {
          j++;
          continue;
        }
        if (a.startsWith("-") && a.length > 1) {
          j += opts.has(a) ? 2 : 1;
          continue;
        }
        if (!skippedFirst) {
          skippedFirst = true;
          j++;
          continue;
        }
        break;
      }
      if (j >= argv.length) break;
      pi = j;
    }
    const program = basename(argv[pi]!);
    if (program === "eval") addFlag0(flags, "eval");
    if (INTERPRETERS.has(program)) addFlag0(flags, "interpreter");
    const cmd: SimpleCommand = {
      argv,
      program,
      programIndex: pi,
      flags,
      paths,
      location: this.base + start,
      length: this.i - start,
    };
    this.out.push(cmd);
    this.checkCount();
    // `sh -c 'code'`: the code is shell too; follow it.
    if (SHELLS.has(program)) {
      const ci = argv.indexOf("-c", pi + 1);
      const code = ci > 0 ? argv[ci + 1] : undefined;
      if (code !== undefined) {
        const sub = new Parser(code, this.depth + 1, [...this.inherited, "shell_c"], cmd.location);
        sub.parseList();
        this.out.push(...sub.out);
        this.checkCount();
      }
    }
  }

  private checkCount(): void {
    if (this.out.length > MAX_COMMANDS) throw new ShellParseError(`more than ${MAX_COMMANDS} commands in one line`);
  }

  private readRedirectsAfterGroup(): { flags: string[]; paths: string[] } {
    const flags: string[] = [];
    const paths: string[] = [];
    for (;;) {
      this.skipBlanks();
      const ch = this.s[this.i];
      if (ch === "<" || ch === ">") this.readRedirect(flags, paths);
      else if (/\d/.test(ch ?? "") && /^\d+[<>]/.test(this.s.slice(this.i, this.i + 12))) {
        while (/\d/.test(this.s[this.i]!)) this.i++;
        this.readRedirect(flags, paths);
      } else return { flags, paths };
    }
  }

  private readRedirect(flags: string[], paths: string[]): void {
    const s = this.s;
    if (s.startsWith("<<<", this.i)) {
      this.i += 3;
      this.redirTarget(flags, "here_string");
      return;
    }
    if (s.startsWith("<<", this.i)) {
      this.i += 2;
      const strip = s[this.i] === "-";
      if (strip) this.i++;
      this.skipBlanks();
      const w = this.readWord(flags);
      addFlag0(flags, "heredoc");
      this.pendingHeredocs.push({ delim: w.text, strip });
      return;
    }
    if (s[this.i] === "<" && s[this.i + 1] === "(") {
      this.processSubstitution(flags);
      return;
    }
    if (s[this.i] === ">" && s[this.i + 1] === "(") {
      this.processSubstitution(flags);
      return;
    }
    const write = s[this.i] === ">";
    this.i++;
    if (write && (s[this.i] === ">" || s[this.i] === "|")) this.i++; // >> >|
    else if (!write && s[this.i] === ">") this.i++; // <>
    if (s[this.i] === "&") this.i++; // >& <& (duplicate a descriptor, or >&file)
    const target = this.redirTarget(flags, write ? "redirect_write" : "redirect_read");
    if (!/^\d+$|^-$/.test(target)) paths.push(target);
  }

  private processSubstitution(flags: string[]): void {
    this.i += 2;
    const sub = new Parser(this.s, this.depth + 1, [...this.inherited, "substitution"], this.base);
    sub.i = this.i;
    sub.parseList(")");
    this.i = sub.i + 1;
    this.out.push(...sub.out);
    addFlag0(flags, "has_substitution");
  }

  private redirTarget(flags: string[], flag: string): string {
    this.skipBlanks();
    addFlag0(flags, flag);
    const ch = this.s[this.i];
    if (ch === undefined || "\n;|&<>()".includes(ch)) throw new ShellParseError(`redirection without a target at offset ${this.base + this.i}`);
    return this.readWord(flags).text;
  }

  private readHeredocBodies(): void {
    if (this.pendingHeredocs.length === 0) return;
    const docs = this.pendingHeredocs;
    this.pendingHeredocs = [];
    let pos = this.i + 1;
    for (const d of docs) {
      for (;;) {
        if (pos > this.s.length) throw new ShellParseError(`here-document delimited by "${d.delim}" is not terminated`);
        let end = this.s.indexOf("\n", pos);
        if (end < 0) end = this.s.length;
        let line = this.s.slice(pos, end);
        if (d.strip) line = line.replace(/^\t+/, "");
        pos = end + 1;
        if (line === d.delim) break;
      }
    }
    // Continue parsing after the bodies (this.i points at the newline that the caller skips).
    this.i = Math.min(pos, this.s.length) - 1;
  }

  private skipBlanks(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (c === " " || c === "\t" || c === "\r") this.i++;
      else if (c === "\\" && s[this.i + 1] === "\n") this.i += 2;
      else break;
    }
  }

  private skipArithmetic(from: number): void {
    // "((" ... "))": arithmetic; find the matching close, counting parentheses.
    let depth = 0;
    let i = from;
    for (; i < this.s.length; i++) {
      const c = this.s[i];
      if (c === "(") depth++;
      else if (c === ")") {
        depth--;
        if (depth === 0) {
          this.i = i + 1;
          return;
        }
      }
    }
    throw new ShellParseError("unterminated arithmetic expression");
  }

  private readWord(flags: string[]): Word {
    const s = this.s;
    const start = this.i;
    let text = "";
    let dynamic = false;
    let quoted = false;
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (" \t\r\n;|&<>()".includes(c)) {
        // "(" inside a word like "a=(x)" arrays: treat as end
        break;
      }
      if (c === "\\") {
        if (s[this.i + 1] === "\n") {
          this.i += 2;
          continue;
        }
        if (this.i + 1 >= s.length) throw new ShellParseError("line ends with a lone backslash");
        text += s[this.i + 1];
        quoted = true;
        this.i += 2;
        continue;
      }
      if (c === "'") {
        const end = s.indexOf("'", this.i + 1);
        if (end < 0) throw new ShellParseError(`unterminated single quote at offset ${this.base + this.i}`);
        text += s.slice(this.i + 1, end);
        quoted = true;
        this.i = end + 1;
        continue;
      }
      if (c === '"') {
        quoted = true;
        this.i++;
        for (;;) {
          if (this.i >= s.length) throw new ShellParseError(`unterminated double quote at offset ${this.base + start}`);
          const d = s[this.i]!;
          if (d === '"') {
            this.i++;
            break;
          }
          if (d === "\\" && this.i + 1 < s.length && '$`"\\\n'.includes(s[this.i + 1]!)) {
            if (s[this.i + 1] !== "\n") text += s[this.i + 1];
            this.i += 2;
            continue;
          }
          if (d === "$" || d === "`") {
            const r = this.readDollarOrBacktick(flags);
            text += r.text;
            dynamic ||= r.dynamic;
            continue;
          }
          text += d;
          this.i++;
        }
        continue;
      }
      if (c === "$" || c === "`") {
        const r = this.readDollarOrBacktick(flags);
        text += r.text;
        dynamic ||= r.dynamic;
        continue;
      }
      text += c;
      this.i++;
    }
    if (this.i === start) throw new ShellParseError(`unexpected "${s[this.i] ?? "end of input"}" at offset ${this.base + this.i}`);
    return { text, dynamic, quoted, start };
  }

  /** At "$" or "`": read an expansion, parsing command substitutions as commands. */
  private readDollarOrBacktick(flags: string[]): { text: string; dynamic: boolean } {
    const s = this.s;
    const start = this.i;
    if (s[this.i] === "`") {
      let j = this.i + 1;
      let code = "";
      for (;;) {
        if (j >= s.length) throw new ShellParseError(`unterminated backtick at offset ${this.base + start}`);
        if (s[j] === "\\" && j + 1 < s.length && "$`\\".includes(s[j + 1]!)) {
          code += s[j + 1];
          j += 2;
          continue;
        }
        if (s[j] === "`") break;
        code += s[j];
        j++;
      }
      const sub = new Parser(code, this.depth + 1, [...this.inherited, "substitution"], this.base + start + 1);
      sub.parseList();
      this.out.push(...sub.out);
      this.checkCount();
      addFlag0(flags, "has_substitution");
      this.i = j + 1;
      return { text: s.slice(start, this.i), dynamic: true };
    }
    // "$"
    const n = s[this.i + 1];
    if (n === "(" && s[this.i + 2] === "(") {
      this.skipArithmetic(this.i + 1);
      return { text: s.slice(start, this.i), dynamic: true };
    }
    if (n === "(") {
      const sub = new Parser(s, this.depth + 1, [...this.inherited, "substitution"], this.base);
      sub.i = this.i + 2;
      sub.parseList(")");
      this.out.push(...sub.out);
      this.checkCount();
      addFlag0(flags, "has_substitution");
      this.i = sub.i + 1;
      return { text: s.slice(start, this.i), dynamic: true };
    }
    if (n === "{") {
      let depth = 0;
      let j = this.i + 1;
      for (; j < s.length; j++) {
        if (s[j] === "{") depth++;
        else if (s[j] === "}" && --depth === 0) break;
      }
      if (j >= s.length) throw new ShellParseError(`unterminated "\${" at offset ${this.base + start}`);
      this.i = j + 1;
      addFlag0(flags, "variable");
      return { text: s.slice(start, this.i), dynamic: true };
    }
    if (n === "'") {
      // $'...' ANSI-C quoting: take the content with simple escapes resolved.
      const end = findAnsiEnd(s, this.i + 2);
      if (end < 0) throw new ShellParseError(`unterminated $'...' at offset ${this.base + start}`);
      const raw = s.slice(this.i + 2, end);
      this.i = end + 1;
      return { text: unescapeAnsi(raw), dynamic: false };
    }
    const m = /^\$([A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])/.exec(s.slice(this.i, this.i + 256));
    if (m) {
      this.i += m[0].length;
      addFlag0(flags, "variable");
      return { text: m[0], dynamic: true };
    }
    this.i++;
    return { text: "$", dynamic: false };
  }
}

function findAnsiEnd(s: string, from: number): number {
  for (let j = from; j < s.length; j++) {
    if (s[j] === "\\") j++;
    else if (s[j] === "'") return j;
  }
  return -1;
}

function unescapeAnsi(raw: string): string {
  const map: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", "'": "'", '"': '"', a: "\x07", b: "\b", e: "\x1b", f: "\f", v: "\v" };
  return raw.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e.startsWith("x")) return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]+$/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return map[e] ?? e;
  });
}

function addFlag(cmd: SimpleCommand, f: string): void {
  addFlag0(cmd.flags, f);
}
function addFlag0(flags: string[], f: string): void {
  if (!flags.includes(f)) flags.push(f);
}

export function basename(p: string): string {
  const i = p.lastIndexOf("/");
  return i >= 0 ? p.slice(i + 1) : p;
}

/** Split a command line into the simple commands it runs. Never throws. */
export function parseShell(text: string): ParsedLine {
  if (text.length > 1 << 20) return { commands: [], error: "command line is longer than 1 MiB" };
  try {
    const p = new Parser(text, 0, [], 0);
    p.parseList();
    return { commands: p.out };
  } catch (e) {
    if (e instanceof ShellParseError) return { commands: [], error: e.message };
    return { commands: [], error: `could not parse the command line: ${(e as Error).message}` };
  }
}
