// `gatehouse approvals`: approvers' commands against the REST API, acting as the
// identity in GATEHOUSE_TOKEN or the one saved by `gatehouse login`.
import { loadConfig } from "@gatehouse/runtime";
import { parseOptions, type CliCommand } from "../command.js";
import { currentToken } from "../credentials.js";

const usage = `gatehouse approvals - list, inspect and decide held commands; manage standing grants

SYNOPSIS
  gatehouse approvals list [--state STATES] [--limit N] [--json]
  gatehouse approvals show TICKET [--json]
  gatehouse approvals approve TICKET [--reason TEXT] [--window MINUTES]
  gatehouse approvals deny TICKET [--reason TEXT]
  gatehouse approvals grants [--all] [--json]
  gatehouse approvals revoke GRANT [--reason TEXT]
  common: [--api URL] [--config FILE]

DESCRIPTION
  When a policy answers REQUIRE_APPROVAL, the listener holds the command and opens
  a ticket. Members of the approver groups named by the policy approve or deny it;
  nobody approves their own request. --window MINUTES on approve also opens a
  standing grant: for that many minutes, commands of the same requester on the
  same connection that need approval under the same policies, for the same
  actions and tables, run without a hold. Revoking a grant applies from the next
  command.

  The CLI acts as the identity in GATEHOUSE_TOKEN, else the token saved by
  \`gatehouse login\`, and talks to the REST API (--api, GATEHOUSE_API_URL, else
  approvals.consoleUrl from the configuration, http://127.0.0.1:15080).

OPTIONS
  --state STATES   comma-separated: pending, approved, denied, expired, withdrawn,
                   or "all" (default pending)
  --limit N        at most N tickets (default 50)
  --json           machine-readable output (list, show, grants)
  --reason TEXT    recorded with the decision and shown to the requester
  --window MIN     with approve: standing grant for MIN minutes
  --all            with grants: include expired and revoked grants
  -h, --help       show this help

EXAMPLES
  export GATEHOUSE_TOKEN=$(gatehouse token --sub alice --groups approvers --kind human)
  gatehouse approvals list
  gatehouse approvals approve 3f1c... --reason "ticket OPS-12"
  gatehouse approvals approve 3f1c... --window 10
  gatehouse approvals list --state all --json | jq '.[].state'

EXIT STATUS
  0 success; 1 refused or failed (the message says why); 2 usage error
`;

class Usage extends Error {}

interface Ctx {
  api: string;
  token: string;
}

async function call(c: Ctx, method: "GET" | "POST", path: string, body?: unknown): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(`${c.api}${path}`, {
      method,
      headers: { authorization: `Bearer ${c.token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(15_000),
    });
  } catch (e) {
    throw new Error(`cannot reach the Gatehouse API at ${c.api} (${(e as Error).message}); is \`gatehouse up\` running? (--api / GATEHOUSE_API_URL)`);
  }
  const out = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${String(out.message ?? `HTTP ${res.status}`)}`);
  return out;
}

type T = Record<string, any>;

function line(t: T): string {
  const cmd = String(t.command ?? "").replace(/\s+/g, " ");
  return `${t.id}  ${String(t.state).padEnd(9)} ${String(t.requester?.subject ?? "").padEnd(16)} ${String(t.connection).padEnd(10)} ${cmd.length > 60 ? `${cmd.slice(0, 59)}…` : cmd}`;
}

function detail(t: T): string {
  const votes = (t.votes as T[]).map((v) => `    ${v.approve ? "approved" : "denied  "} by ${v.approver} at ${v.time}${v.reason ? `: ${v.reason}` : ""}${v.grant_minutes ? ` (grant ${v.grant_minutes} min)` : ""}`);
  return [
    `ticket      ${t.id}`,
    `state       ${t.state}${t.state_reason ? ` (${t.state_reason})` : ""}`,
    `requester   ${t.requester?.subject} [${(t.requester?.groups ?? []).join(", ")}]`,
    `connection  ${t.connection}`,
    `policy      ${(t.policy_ids as string[]).join(", ")}: ${t.policy_reason}`,
    `approvers   ${t.min_approvals} of ${(t.approver_groups as string[]).join(", ")}`,
    `created     ${t.created_at}`,
    `expires     ${t.expires_at}`,
    ...(t.grant_id ? [`grant       ${t.grant_id}`] : []),
    `command`,
    ...String(t.command).split("\n").map((l) => `    ${l}`),
    ...(votes.length ? ["decisions", ...votes] : []),
  ].join("\n");
}

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(
    args,
    {
      state: { type: "string" },
      limit: { type: "string" },
      json: { type: "boolean" },
      reason: { type: "string" },
      window: { type: "string" },
      all: { type: "boolean" },
      api: { type: "string" },
      config: { type: "string" },
    },
    usage,
  );
  const [sub, arg] = positionals;
  if (!sub) throw new Usage(`a subcommand is required\n\n${usage}`);
  const needArg = (what: string) => {
    if (!arg) throw new Usage(`gatehouse approvals ${sub} needs ${what}`);
    return encodeURIComponent(arg);
  };
  const SUBS = ["list", "show", "approve", "deny", "grants", "revoke"];
  if (!SUBS.includes(sub)) throw new Usage(`unknown subcommand "${sub}"; use ${SUBS.join(", ")}`);
  if (["show", "approve", "deny", "revoke"].includes(sub)) needArg(sub === "revoke" ? "a grant id" : "a ticket id");
  const api = ((values.api as string | undefined) ?? process.env.GATEHOUSE_API_URL ?? loadConfig(values.config as string | undefined).approvals.consoleUrl).replace(/\/+$/, "");
  const c: Ctx = { api, token: currentToken().token };
  const out = (s: string) => process.stdout.write(`${s}\n`);
  switch (sub) {
    case "list": {
      const state = (values.state as string | undefined) ?? "pending";
      const limit = (values.limit as string | undefined) ?? "50";
      const q = new URLSearchParams({ limit });
      if (state !== "all") q.set("state", state);
      const res = await call(c, "GET", `/api/v1/approvals/tickets?${q}`);
      const tickets = res.tickets as T[];
      if (values.json) out(JSON.stringify(tickets, null, 2));
      else if (tickets.length === 0) out(state === "pending" ? "no pending tickets" : "no tickets");
      else for (const t of tickets) out(line(t));
      return 0;
    }
    case "show": {
      const res = await call(c, "GET", `/api/v1/approvals/tickets/${needArg("a ticket id")}`);
      if (values.json) out(JSON.stringify(res, null, 2));
      else {
        out(detail(res.ticket as T));
        const act = (res.activity as T[] | undefined) ?? [];
        if (act.length) {
          out("recent activity of the requester");
          for (const a of act.slice(0, 10)) out(`    ${a.time} ${String(a.type).padEnd(13)} ${String(a.effect ?? "").padEnd(16)} ${String(a.command_text ?? "").replace(/\s+/g, " ").slice(0, 70)}`);
        }
      }
      return 0;
    }
    case "approve":
    case "deny": {
      const id = needArg("a ticket id");
      let grantMinutes: number | undefined;
      if (values.window !== undefined) {
        if (sub === "deny") throw new Usage("--window only goes with approve");
        grantMinutes = Number(values.window);
        if (!Number.isInteger(grantMinutes) || grantMinutes < 1) throw new Usage(`--window must be a whole number of minutes, got "${String(values.window)}"`);
      }
      const res = await call(c, "POST", `/api/v1/approvals/tickets/${id}/${sub}`, { reason: (values.reason as string | undefined) ?? "", grantMinutes });
      const t = res.ticket as T;
      out(`ticket ${t.id}: ${t.state}${t.state_reason ? ` (${t.state_reason})` : ""}${t.grant_id ? `; standing grant ${t.grant_id}` : ""}`);
      return 0;
    }
    case "grants": {
      const res = await call(c, "GET", `/api/v1/approvals/grants${values.all ? "?all=1" : ""}`);
      const grants = res.grants as T[];
      if (values.json) out(JSON.stringify(grants, null, 2));
      else if (grants.length === 0) out(values.all ? "no grants" : "no active grants");
      else for (const g of grants) out(`${g.id}  ${g.active ? "active " : g.revoked ? "revoked" : "expired"} ${String(g.subject).padEnd(16)} ${String(g.connection).padEnd(10)} ${(g.actions as string[]).join(",")} on ${(g.tables as string[]).join(",") || "-"} until ${g.expires_at} (by ${g.granted_by})`);
      return 0;
    }
    case "revoke": {
      const res = await call(c, "POST", `/api/v1/approvals/grants/${needArg("a grant id")}/revoke`, { reason: (values.reason as string | undefined) ?? "" });
      const g = res.grant as T;
      out(`grant ${g.id}: revoked by ${g.revoked_by}`);
      return 0;
    }
    default:
      throw new Usage(`unknown subcommand "${sub}"; use list, show, approve, deny, grants or revoke`);
  }
}

const command: CliCommand = {
  usage,
  async run(args) {
    try {
      return await run(args);
    } catch (e) {
      process.stderr.write(`gatehouse approvals: ${(e as Error).message}\n`);
      return e instanceof Usage || /^(Unknown option|Option)/.test((e as Error).message) ? 2 : 1;
    }
  },
};
export default command;
