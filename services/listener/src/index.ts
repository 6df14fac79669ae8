export { startListenerService, type ListenerService, type ListenerServiceOptions } from "./service.js";
export { createGatewayContext, type ListenerContext, type ContextOptions, type AuditSink } from "./context.js";
export { PolicyDecider, policyVersionOf } from "./decider.js";
export { DecisionCache, decisionKey, type CacheStats } from "./decision-cache.js";
export { loadPlugin, pluginSpecifier } from "./plugins.js";
