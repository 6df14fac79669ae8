// A test responder for PolicyService on NATS (not the real policy service): it
// answers Decide with a configurable decision and counts the calls, so tests can
// tell cache hits from misses.
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { ClassifyResponse, Decision, Effect, PolicyServiceService, PolicyStatus, type DecideRequest } from "@gatehouse/proto";
import { serveOnNats } from "@gatehouse/runtime";

export interface TestPolicyResponder {
  calls: DecideRequest[];
  /** Decision returned for the next requests. */
  answer: (req: DecideRequest) => Decision | Promise<Decision>;
  stop(): Promise<void>;
}

export function allow(version = "v1", partial: Partial<Decision> = {}): Decision {
  return Decision.fromPartial({
    effect: Effect.EFFECT_ALLOW,
    policyVersion: version,
    cacheable: true,
    policyIds: ["allow-all"],
    classified: [{ kind: "select", action: "sql:select", tables: ["t"] }],
    ...partial,
  });
}

export function startTestPolicyResponder(nc: NatsConnection): TestPolicyResponder {
  const state: TestPolicyResponder = {
    calls: [],
    answer: () => allow(),
    async stop() {
      await sub.drain();
    },
  };
  const sub: Subscription = serveOnNats(nc, PolicyServiceService, {
    async decide(req) {
      state.calls.push(req);
      return state.answer(req);
    },
    async classify() {
      return ClassifyResponse.fromPartial({});
    },
    async status() {
      return PolicyStatus.fromPartial({ version: "v1" });
    },
  });
  return state;
}
