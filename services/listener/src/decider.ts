// Decisions for the data path: the cache first, then PolicyService.Decide over
// NATS within the deadline. Any failure to get a decision is a DependencyError:
// the plugin refuses the command (fail closed).
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { Effect, PolicyServiceService, type Command, type Connection, type Decision, type Identity } from "@gatehouse/proto";
import { natsClient, RpcError, Status, subjects, subjectForPath, type Logger, type ServiceClient } from "@gatehouse/runtime";
import { DependencyError, type DecisionResult } from "@gatehouse/plugin-sdk";
import { fingerprintSql } from "@gatehouse/sql";
import { DecisionCache } from "./decision-cache.js";

const NOT_EXECUTED = "the statement was not executed";
const DECIDE_SUBJECT = subjectForPath(PolicyServiceService.decide.path);

/** The version named by a gatehouse.policy.changed message: plain text, or JSON {"version": ...}. */
export function policyVersionOf(data: Uint8Array): string | undefined {
  const text = Buffer.from(data).toString("utf8").trim();
  if (text === "") return undefined;
  if (text.startsWith("{")) {
    try {
      const v = (JSON.parse(text) as { version?: unknown }).version;
      return typeof v === "string" ? v : undefined;
    } catch {
      return undefined;
    }
  }
  return text;
}

function policyError(e: unknown, deadlineMs: number): DependencyError {
  if (e instanceof RpcError) {
    if (e.code === Status.DEADLINE_EXCEEDED) {
      return new DependencyError("policy", `policy service did not answer within ${deadlineMs} ms; ${NOT_EXECUTED}`);
    }
    if (e.code === Status.UNAVAILABLE) {
      return new DependencyError("policy", `policy service is not running (nobody answers on ${DECIDE_SUBJECT}); ${NOT_EXECUTED}`);
    }
    return new DependencyError("policy", `policy service failed (${e.codeName}): ${e.message}; ${NOT_EXECUTED}`);
  }
  return new DependencyError("policy", `policy service could not be asked: ${(e as Error).message}; ${NOT_EXECUTED}`);
}

export interface DeciderOptions {
  deadlineMs: number;
  cacheSize: number;
  log: Logger;
}

export class PolicyDecider {
  readonly cache: DecisionCache;
  private readonly client: ServiceClient<typeof PolicyServiceService>;
  private readonly changes: Subscription;

  constructor(
    nc: NatsConnection,
    private readonly opts: DeciderOptions,
  ) {
    this.cache = new DecisionCache(opts.cacheSize);
    this.client = natsClient(nc, PolicyServiceService, { timeoutMs: opts.deadlineMs });
    // Plain subscription (no queue group): every listener copy must drop its cache.
    this.changes = nc.subscribe(subjects.policyChanged, {
      callback: (err, msg) => {
        if (err) {
          opts.log.warn({ err: err.message }, "policy change subscription failed; decision cache disabled until it recovers");
          this.cache.clear();
          return;
        }
        const version = policyVersionOf(msg.data);
        opts.log.info({ version }, "policy changed: decision cache cleared");
        this.cache.clear(version);
      },
    });
    void this.watchConnection(nc);
  }

  /**
   * A policy change published while this connection was down is never delivered,
   * so the cache is dropped on disconnect and again on reconnect.
   */
  private async watchConnection(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnect") {
        this.cache.clear();
        this.opts.log.warn({ event: s.type }, "NATS connection changed: decision cache cleared");
      }
    }
  }

  async decide(identity: Identity, connection: Connection, command: Command): Promise<DecisionResult> {
    if (!command.fingerprint) command.fingerprint = fingerprintSql(command.text) ?? "";
    // No fingerprint (text does not parse, or not SQL): never cached.
    const fingerprint = command.fingerprint;
    if (fingerprint) {
      const hit = this.cache.get(this.cache.key(identity, connection, fingerprint));
      if (hit) {
        if (command.statements.length === 0) command.statements = hit.classified;
        // A shallow copy, so a plugin writing a field cannot change the shared entry.
        return { decision: { ...hit }, decidedBy: "cache" };
      }
    }
    const gen = this.cache.generation;
    let decision: Decision;
    try {
      decision = await this.client.decide({ identity, connection, command }, { timeoutMs: this.opts.deadlineMs });
    } catch (e) {
      throw policyError(e, this.opts.deadlineMs);
    }
    if (decision.effect !== Effect.EFFECT_ALLOW && decision.effect !== Effect.EFFECT_DENY && decision.effect !== Effect.EFFECT_REQUIRE_APPROVAL) {
      throw new DependencyError("policy", `policy service answered without an effect (${decision.effect}); ${NOT_EXECUTED}`);
    }
    if (command.statements.length === 0) command.statements = decision.classified;
    if (!command.parseError && decision.parseError) command.parseError = decision.parseError;
    if (fingerprint) this.cache.store(identity, connection, fingerprint, decision, gen);
    else this.cache.observe(decision.policyVersion, gen);
    return { decision, decidedBy: "policy" };
  }

  close(): void {
    this.changes.unsubscribe();
  }
}
