// The decision engine: classify a command with the PostgreSQL parser, authorize every
// statement with Cedar against the current policy set, combine. Default deny, and
// anything unexpected (no policy set, unparseable SQL, a forbid policy that fails to
// evaluate) denies.
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { Effect, type ApprovalRequirement, type ClassifyResponse, type Decision, type DecideRequest, type PolicyStatus, type Statement, type StatementDecision } from "@gatehouse/proto";
import { actionParents, classifySql } from "@gatehouse/sql";
import { compilePolicies, DEFAULT_APPROVAL_EXPIRY_MS, formatProblem, readPolicyDir, type CompiledPolicies, type LoadedPolicy, type PolicyFile } from "./policies.js";
import { checkPreclassified, SSH_ACTIONS, sshContext } from "./ssh-actions.js";
import { MaskPolicies } from "./masking.js";

const NS = "Gatehouse";

/** One statement's Cedar request, kept to evaluate the masking policies once allowed. */
type MaskCall = Omit<cedar.StatefulAuthorizationCall, "preparsedPolicySetId">;

interface ActiveSet {
  version: string;
  files: string[];
  byId: Map<string, LoadedPolicy>;
  loadedAt: number;
}

export interface LoadResult {
  /** True when a new, valid policy set replaced the previous one. */
  changed: boolean;
  version: string;
  errors: string[];
  warnings: string[];
  /** What loadDir() read: the files (with their hashes) and the policies they hold. */
  files?: PolicyFile[];
  policies?: LoadedPolicy[];
  /** Content version of the files read (differs from `version` when they were rejected). */
  readVersion?: string;
}

let engines = 0;

export class PolicyEngine {
  // Name of this engine's preparsed policy set inside the Cedar wasm module.
  private readonly psetId = `gatehouse-engine-${++engines}`;
  /** @mask policies: evaluated apart, they select the masking plan and grant nothing. */
  private readonly masks = new MaskPolicies();
  private active: ActiveSet | undefined;
  private lastErrors: string[] = [];

  /** Version of the active policy set ("" when none is loaded). */
  get version(): string {
    return this.active?.version ?? "";
  }

  /** Read `dir` and, if every file is valid, swap the new set in. Never throws. */
  loadDir(dir: string): LoadResult {
    let compiled: CompiledPolicies;
    let files: PolicyFile[];
    try {
      files = readPolicyDir(dir);
      compiled = compilePolicies(files);
    } catch (e) {
      return { ...this.reject([(e as Error).message], []), files: [], policies: [], readVersion: "" };
    }
    return { ...this.install(compiled), files, policies: compiled.policies, readVersion: compiled.version };
  }

  /** Install a compiled set if it has no errors; otherwise keep the current one. */
  install(compiled: CompiledPolicies): LoadResult {
    const warnings = compiled.warnings.map(formatProblem);
    if (compiled.errors.length > 0) return this.reject(compiled.errors.map(formatProblem), warnings);
    if (this.active?.version === compiled.version) {
      this.lastErrors = [];
      return { changed: false, version: compiled.version, errors: [], warnings };
    }
    const staticPolicies: Record<string, string> = {};
    for (const p of compiled.policies) if (!p.mask) staticPolicies[p.id] = p.text;
    const maskErrors = this.masks.install(compiled.policies.filter((p) => p.mask).map((p) => ({ id: p.id, text: p.text, plan: p.mask! })));
    if (maskErrors.length > 0) return this.reject(maskErrors, warnings);
    // Synchronous, so no decision can observe a half-swapped set.
    const pre = cedar.preparsePolicySet(this.psetId, { staticPolicies });
    if (pre.type === "failure") return this.reject(pre.errors.map((e) => e.message), warnings);
    this.active = {
      version: compiled.version,
      files: compiled.files,
      byId: new Map(compiled.policies.map((p) => [p.id, p])),
      loadedAt: Date.now(),
    };
    this.lastErrors = [];
    return { changed: true, version: compiled.version, errors: [], warnings };
  }

  private reject(errors: string[], warnings: string[]): LoadResult {
    this.lastErrors = errors;
    return { changed: false, version: this.version, errors, warnings };
  }

  status(): PolicyStatus {
    return {
      version: this.version,
      policyCount: this.active?.byId.size ?? 0,
      files: this.active?.files ?? [],
      loadedAtUnixMs: this.active?.loadedAt ?? 0,
      errors: this.lastErrors,
    };
  }

  classify(text: string): ClassifyResponse {
    const c = classifySql(text);
    return { statements: c.statements, fingerprint: c.fingerprint, parseError: c.parseError };
  }

  /** Decide a command. Requires `await initSql()` once beforehand. */
  decide(req: DecideRequest): Decision {
    const identity = req.identity;
    const connection = req.connection;
    const text = req.command?.text ?? "";
    const version = this.version;
    const base: Decision = {
      effect: Effect.EFFECT_DENY,
      policyIds: [],
      reason: "",
      policyVersion: version,
      statements: [],
      classified: [],
      cacheable: false,
      parseError: "",
      approval: undefined,
      masking: undefined,
    };
    if (!identity?.subject) return { ...base, policyIds: ["invalid-request"], reason: "request has no identity (identity.subject is empty)" };
    if (!connection?.name) return { ...base, policyIds: ["invalid-request"], reason: "request names no connection (connection.name is empty)" };

    // Non-SQL protocols (SSH) send their statements pre-classified; SQL is always parsed here.
    const preProtocol = connection.protocol || req.command?.protocol || "postgres";
    const pre = req.command?.statements ?? [];
    if (preProtocol !== "postgres" && pre.length > 0) {
      const bad = checkPreclassified(preProtocol, pre);
      if (bad) return { ...base, policyIds: ["invalid-request"], reason: bad };
      const pe = req.command?.parseError ?? "";
      if (pe) return { ...base, policyIds: ["parse-error"], reason: `the command could not be parsed, so it cannot be checked: ${pe}`, parseError: pe };
    }
    // The fingerprint (a second parse) is the caller's cache key; deciding does not need it.
    const c = preProtocol !== "postgres" && pre.length > 0 ? { statements: pre, parseError: "" } : classifySql(text, { fingerprint: false });
    if (c.parseError) {
      return { ...base, policyIds: ["parse-error"], reason: `SQL could not be parsed, so it cannot be checked: ${c.parseError}`, parseError: c.parseError };
    }
    base.classified = c.statements;
    const active = this.active;
    if (!active) {
      const why = this.lastErrors[0] ?? "no policy directory was loaded";
      return { ...base, policyIds: ["no-policies"], reason: `no valid policy set is loaded (${why}); fix the policies and check them with "gatehouse policy validate"` };
    }
    if (c.statements.length === 0) {
      // An empty query (only whitespace, comments or ";") executes nothing.
      return { ...base, effect: Effect.EFFECT_ALLOW, reason: "empty command: no statements to run" };
    }

    const protocol = connection.protocol || req.command?.protocol || "postgres";
    const principal = { type: `${NS}::Identity`, id: identity.subject };
    const resource = { type: `${NS}::Connection`, id: connection.name };
    const tags = { ...connection.tags };
    const fixedEntities: cedar.EntityJson[] = [
      {
        uid: principal,
        attrs: { name: identity.name, kind: identity.kind, issuer: identity.issuer },
        parents: identity.groups.map((g) => ({ type: `${NS}::Group`, id: g })),
      },
      { uid: resource, attrs: { protocol, tags }, parents: [], tags },
    ];

    const calls: MaskCall[] = [];
    const decisions = c.statements.map((s, index) =>
      this.decideStatement(active, s, index, c.statements.length, principal, resource, fixedEntities, protocol, identity.subject, connection.name, calls),
    );
    const label = (d: StatementDecision) => (decisions.length > 1 ? `statement ${d.index + 1} (${d.action}): ${d.reason}` : d.reason);
    const denied = decisions.filter((d) => d.effect === Effect.EFFECT_DENY);
    const held = decisions.filter((d) => d.effect === Effect.EFFECT_REQUIRE_APPROVAL);
    const pick = denied.length > 0 ? denied : held.length > 0 ? held : decisions;
    const effect = denied.length > 0 ? Effect.EFFECT_DENY : held.length > 0 ? Effect.EFFECT_REQUIRE_APPROVAL : Effect.EFFECT_ALLOW;
    return {
      ...base,
      effect,
      policyIds: [...new Set(pick.flatMap((d) => d.policyIds))],
      reason: effect === Effect.EFFECT_ALLOW ? `allowed by ${[...new Set(pick.flatMap((d) => d.policyIds))].join(", ")}` : pick.map(label).join("; "),
      statements: decisions,
      approval: effect === Effect.EFFECT_REQUIRE_APPROVAL ? approvalRequirement(active, held) : undefined,
      // A held command runs once approved: it carries its plan too.
      masking: effect !== Effect.EFFECT_DENY ? this.masks.plan(calls) : undefined,
      // The classification is a function of the fingerprint (see @gatehouse/sql), and the
      // context holds nothing else from the text, so the decision can be cached on it.
      cacheable: true,
    };
  }

  private decideStatement(
    active: ActiveSet,
    s: Statement,
    index: number,
    count: number,
    principal: cedar.TypeAndId,
    resource: cedar.TypeAndId,
    fixedEntities: cedar.EntityJson[],
    protocol: string,
    subject: string,
    connectionName: string,
    calls?: MaskCall[],
  ): StatementDecision {
    const action = { type: `${NS}::Action`, id: s.action };
    const entities: cedar.EntityJson[] = [
      ...fixedEntities,
      { uid: action, attrs: {}, parents: (Object.hasOwn(SSH_ACTIONS, s.action) ? SSH_ACTIONS[s.action]! : actionParents(s.kind)).map((id) => ({ type: `${NS}::Action`, id })) },
    ];
    const context: cedar.Context = Object.hasOwn(SSH_ACTIONS, s.action) ? (sshContext(protocol, s, count, false) as cedar.Context) : {
      protocol,
      statement_kind: s.kind,
      tables: s.tables,
      write_tables: s.writeTables,
      has_where: s.hasWhere,
      functions: s.functions,
      nested_writes: s.nestedWrites,
      flags: s.flags,
      statement_count: count,
      text_parse_error: false,
    };
    const out: StatementDecision = { index, effect: Effect.EFFECT_DENY, action: s.action, policyIds: [], reason: "" };
    calls?.push({ principal, action, resource, context, entities });
    const answer = cedar.statefulIsAuthorized({ principal, action, resource, context, entities, preparsedPolicySetId: this.psetId });
    if (answer.type === "failure") {
      out.policyIds = ["evaluation-error"];
      out.reason = `policy evaluation failed: ${answer.errors.map((e) => e.message).join("; ")}`;
      return out;
    }
    const { decision, diagnostics } = answer.response;
    // Cedar skips a policy whose condition errors; for a forbid that would fail open.
    const brokenForbids = diagnostics.errors.filter((e) => active.byId.get(e.policyId)?.effect !== "permit");
    if (brokenForbids.length > 0) {
      out.policyIds = brokenForbids.map((e) => e.policyId);
      out.reason = `forbid policy ${out.policyIds.join(", ")} could not be evaluated (${brokenForbids[0]!.error.message}); denied to be safe`;
      return out;
    }
    const deciding = diagnostics.reason.map((id) => active.byId.get(id)).filter((p): p is LoadedPolicy => p !== undefined);
    if (decision === "deny") {
      if (deciding.length === 0) {
        out.policyIds = ["default-deny"];
        out.reason = `no policy permits ${s.action} on connection ${connectionName} for ${subject}`;
      } else {
        out.policyIds = deciding.map((p) => p.id);
        out.reason = deciding.map((p) => p.reason || `forbidden by policy ${p.id}`).join("; ");
      }
      return out;
    }
    const approvals = deciding.filter((p) => p.approval !== undefined);
    if (approvals.length > 0) {
      out.effect = Effect.EFFECT_REQUIRE_APPROVAL;
      out.policyIds = approvals.map((p) => p.id);
      out.reason = approvals.map((p) => p.reason || `approval by ${p.approval} required by policy ${p.id}`).join("; ");
      return out;
    }
    out.effect = Effect.EFFECT_ALLOW;
    out.policyIds = deciding.map((p) => p.id);
    out.reason = `allowed by ${out.policyIds.join(", ")}`;
    return out;
  }
}

/**
 * What the held statements' approval policies ask for, combined: every named group may
 * approve, the largest @min_approvals and the shortest @expires apply.
 */
function approvalRequirement(active: ActiveSet, held: StatementDecision[]): ApprovalRequirement {
  const policies = [...new Set(held.flatMap((d) => d.policyIds))].map((id) => active.byId.get(id)).filter((p): p is LoadedPolicy => p?.approval !== undefined);
  return {
    policyIds: policies.map((p) => p.id),
    approverGroups: [...new Set(policies.flatMap((p) => p.approverGroups ?? []))],
    minApprovals: Math.max(1, ...policies.map((p) => p.minApprovals ?? 1)),
    expiresInMs: Math.min(...policies.map((p) => p.expiresMs ?? DEFAULT_APPROVAL_EXPIRY_MS)),
  };
}
