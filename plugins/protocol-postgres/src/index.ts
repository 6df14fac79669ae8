// @gatehouse/protocol-postgres: the PostgreSQL wire-protocol plugin.
import type { ProtocolPlugin } from "@gatehouse/plugin-sdk";
import { startPostgresListener } from "./listener.js";

export { startPostgresListener } from "./listener.js";
export { listenerOptions, type PgListenerOptions } from "./options.js";
export { ScramClient } from "./scram.js";

const plugin: ProtocolPlugin = {
  protocol: "postgres",
  start: startPostgresListener,
};

export default plugin;
