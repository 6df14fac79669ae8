// @gatehouse/protocol-ssh: SSH through Gatehouse. Exec lines are split into simple
// commands and decided by policy ("ssh:exec"), interactive shells are recorded as
// asciicast v2, SFTP/SCP file operations and port forwarding are decided one by one.
import type { ProtocolPlugin } from "@gatehouse/plugin-sdk";
import { startSshListener } from "./listener.js";

const plugin: ProtocolPlugin = {
  protocol: "ssh",
  start: (ctx, config) => startSshListener(ctx, config),
};
export default plugin;

export { parseShell, type SimpleCommand, type ParsedLine } from "./shell.js";
export { classifyExec } from "./classify.js";
export { DEFAULT_PORT } from "./options.js";
export { EXIT } from "./connection.js";
