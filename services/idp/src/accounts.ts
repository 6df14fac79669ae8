// Dev accounts: whoever logs in on the dev login page, with the groups they chose.
// Kept in memory (a dev IdP: sessions and accounts go away on restart).
export const CONSOLE_GROUPS = ["approvers", "auditors", "admins", "developers"];

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const GROUP = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

export function validSubject(s: string): boolean {
  return NAME.test(s);
}

export function validGroup(g: string): boolean {
  return GROUP.test(g);
}

export class DevAccounts {
  private readonly groups = new Map<string, string[]>();

  login(name: string, groups: string[]): void {
    this.groups.set(name, groups);
  }

  groupsOf(name: string): string[] | undefined {
    return this.groups.get(name);
  }
}
