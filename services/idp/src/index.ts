export { startDevIdp, type DevIdp } from "./service.js";
export { consoleRedirectUris, resourceInfo } from "./provider.js";
export { CONSOLE_GROUPS } from "./accounts.js";
export { loadOrCreateState } from "./state.js";
