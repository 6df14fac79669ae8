// SSH actions: the SSH plugin classifies its own operations (exec, shell, each SFTP
// operation, forwarding) into statements with these actions; the engine only checks
// that the action is one of them and supplies the action groups.
import type { Statement } from "@gatehouse/proto";

/** Action → its parent groups (most specific first). */
export const SSH_ACTIONS: Record<string, string[]> = {
  "ssh:exec": ["ssh:all", "all"],
  "ssh:shell": ["ssh:all", "all"],
  "ssh:sftp_read": ["ssh:files_read", "ssh:all", "all"],
  "ssh:sftp_list": ["ssh:files_read", "ssh:all", "all"],
  "ssh:sftp_stat": ["ssh:files_read", "ssh:all", "all"],
  "ssh:sftp_write": ["ssh:files_write", "ssh:all", "all"],
  "ssh:sftp_remove": ["ssh:files_write", "ssh:all", "all"],
  "ssh:sftp_rename": ["ssh:files_write", "ssh:all", "all"],
  "ssh:sftp_mkdir": ["ssh:files_write", "ssh:all", "all"],
  "ssh:sftp_rmdir": ["ssh:files_write", "ssh:all", "all"],
  "ssh:sftp_setstat": ["ssh:files_write", "ssh:all", "all"],
  "ssh:sftp_symlink": ["ssh:files_write", "ssh:all", "all"],
  "ssh:forward": ["ssh:all", "all"],
  "ssh:remote_forward": ["ssh:all", "all"],
};

/** Action groups of the SSH actions (declared in the schema without appliesTo). */
export const SSH_ACTION_GROUPS: Record<string, string[]> = {
  "ssh:all": ["all"],
  "ssh:files_read": ["ssh:all", "all"],
  "ssh:files_write": ["ssh:all", "all"],
};

/**
 * Pre-classified statements are accepted only for non-SQL protocols and only with SSH
 * actions: a plugin cannot label SQL as something else to skip the SQL classifier.
 * Returns an error message, or undefined when the statements are acceptable.
 */
export function checkPreclassified(protocol: string, statements: Statement[]): string | undefined {
  if (protocol === "postgres") return "statements of a postgres command are classified by the policy service, not the plugin";
  for (const s of statements) {
    if (!Object.hasOwn(SSH_ACTIONS, s.action)) return `unknown action "${s.action}" in a pre-classified statement`;
  }
  return undefined;
}

/** The Cedar context of one SSH statement (see SshContext in the schema). */
export function sshContext(protocol: string, s: Statement, count: number, parseError: boolean): Record<string, unknown> {
  const f = s.ssh ?? { argv: [], program: "", paths: [], host: "", port: 0 };
  // args: the words after the program (argv may start with wrappers such as sudo).
  const pi = f.program ? f.argv.findIndex((a) => basenameOf(a) === f.program) : 0;
  const effective = f.argv.slice(Math.max(0, pi));
  return {
    protocol,
    statement_kind: s.kind,
    program: f.program,
    argv: f.argv,
    args: effective.slice(1),
    command_line: effective.join(" "),
    paths: f.paths,
    host: f.host,
    port: f.port,
    flags: s.flags,
    statement_count: count,
    text_parse_error: parseError,
    // SQL facts: always empty here, declared so policies over every action still validate.
    tables: [],
    write_tables: [],
    has_where: false,
    functions: [],
    nested_writes: [],
  };
}

function basenameOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i >= 0 ? p.slice(i + 1) : p;
}
