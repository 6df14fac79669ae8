// The SOC 2 criteria the gateway supports, what each asks (paraphrased), how
// Gatehouse supports it, and which tables of the pack are its evidence.
import type { Table, TableId } from "./collect.js";

export interface CriterionView {
  /** Rows that are evidence for the criterion (a table, possibly filtered). */
  table: TableId;
  filter?: (row: Table["rows"][number]) => boolean;
  note?: string;
}

export interface Criterion {
  id: string;
  title: string;
  asks: string;
  supports: string;
  evidence: CriterionView[];
}

const source = (s: string) => (r: Table["rows"][number]) => r.source === s;

export const CRITERIA: Criterion[] = [
  {
    id: "CC6.1",
    title: "Logical access security",
    asks: "Logical access to protected information assets is restricted by access-control software and architecture.",
    supports:
      "Every connection authenticates with an OIDC access token from a trusted issuer; every command is decided by Cedar policy (default deny) and recorded before it reaches the target.",
    evidence: [{ table: "identities" }, { table: "sessions" }, { table: "auth_failures" }],
  },
  {
    id: "CC6.2",
    title: "Registration and authorization of users",
    asks: "Users are registered and authorized before they are given credentials and access, and access is removed when it is no longer authorized.",
    supports:
      "Gatehouse issues no standing credentials to agents: identity, groups and kind come from the identity provider with each token. The list names every identity that used access in the period, with first and last use, to compare with the provider's register.",
    evidence: [{ table: "identities" }],
  },
  {
    id: "CC6.3",
    title: "Role-based access and least privilege",
    asks: "Access is authorized, changed or removed according to roles and responsibilities, with least privilege and segregation of duties.",
    supports:
      "Policies grant actions per group and connection; anything not permitted is denied, and risky actions are held for a second person from an approver group. Per identity the pack counts allowed, denied and held commands.",
    evidence: [{ table: "identities" }, { table: "denied_attempts" }, { table: "privileged_operations" }],
  },
  {
    id: "CC6.6",
    title: "Protection at the system boundary",
    asks: "Logical access security measures protect against threats from sources outside the system boundaries.",
    supports:
      "Agents reach targets only through the gateway and never see upstream credentials. Tokens are checked for issuer, audience, expiry, algorithm and signature at the boundary; each failure is recorded with the client address and the failed check.",
    evidence: [{ table: "auth_failures" }, { table: "sessions" }],
  },
  {
    id: "CC6.8",
    title: "Unauthorized or malicious software and commands",
    asks: "Controls prevent, or detect and act on, the introduction of unauthorized or malicious software.",
    supports:
      "Commands are classified by real parsers (PostgreSQL's parser, shell splitting for SSH) and dangerous ones, such as dropping tables, terminating backends or piping downloads into a shell, are refused before they reach the target.",
    evidence: [{ table: "denied_attempts" }],
  },
  {
    id: "CC7.2",
    title: "Monitoring for anomalies",
    asks: "System components are monitored for anomalies that indicate malicious acts, disasters or errors, and the anomalies are analysed.",
    supports:
      "Every session, command, decision, result and failed login is an event in a tamper-evident trail; denials and authentication failures are listed here for review.",
    evidence: [{ table: "denied_attempts" }, { table: "auth_failures" }, { table: "sessions" }],
  },
  {
    id: "CC7.3",
    title: "Evaluation of security events",
    asks: "Security events are evaluated to determine whether they could or did cause a failure to meet objectives.",
    supports:
      "Risky commands are held until a human from an approver group evaluates them; the record shows who asked, who approved or refused, when, and how long the evaluation took. Denied attempts show what was stopped and by which policy.",
    evidence: [{ table: "privileged_operations" }, { table: "denied_attempts" }],
  },
  {
    id: "CC8.1",
    title: "Change management",
    asks: "Changes to infrastructure, data, software and procedures are authorized, documented, tested, approved and implemented.",
    supports:
      "Access policy is a directory of Cedar files; every load (at start and on each change) records the SHA-256 of each file and whether it was accepted, an invalid change is refused and the old set stays in force, and every decision names the policy version that made it.",
    evidence: [{ table: "policy_versions" }, { table: "policy_loads" }, { table: "policy_versions_used" }],
  },
  {
    id: "C1.1",
    title: "Identification and protection of confidential information",
    asks: "Confidential information is identified and maintained to meet confidentiality objectives.",
    supports:
      "Masking policies name confidential columns and entity types (e-mail, card numbers, national ids...); values are masked in results before the client sees them, and each masking action is recorded with column, entity, strategy and count, never the value.",
    evidence: [{ table: "masking_events", filter: source("result"), note: "masking of results (source = result)" }],
  },
  {
    id: "C1.2",
    title: "Disposal of confidential information",
    asks: "Confidential information is disposed of to meet confidentiality objectives.",
    supports:
      "Query text, bind parameters and error messages are masked before they are written to the audit trail and recordings, so the trail never holds a clear confidential value that would later need disposal. Each such masking is recorded (source = audit).",
    evidence: [{ table: "masking_events", filter: source("audit"), note: "masking of audit text (source = audit)" }],
  },
];

/** Evidence rows of one view. */
export function viewRows(v: CriterionView, tables: Map<TableId, Table>): Table["rows"] {
  const t = tables.get(v.table);
  if (!t) return [];
  return v.filter ? t.rows.filter(v.filter) : t.rows;
}
