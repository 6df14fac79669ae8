// Protocol plugins are chosen by configuration: `listeners.<name>.plugin` names a
// module specifier, else the package @gatehouse/protocol-<name> is loaded.
import { pathToFileURL } from "node:url";
import { isAbsolute, resolve } from "node:path";
import type { ListenerConfig } from "@gatehouse/runtime";
import type { ProtocolPlugin } from "@gatehouse/plugin-sdk";

export function pluginSpecifier(name: string, listener: ListenerConfig, baseDir: string): string {
  const p = listener.plugin;
  if (p === undefined) return `@gatehouse/protocol-${name}`;
  if (typeof p !== "string" || p === "") throw new Error(`listeners.${name}.plugin must be a module name or path`);
  // Paths are relative to the configuration file, like every other path in it.
  if (p.startsWith(".") || isAbsolute(p)) return pathToFileURL(resolve(baseDir, p)).href;
  return p;
}

function isPlugin(v: unknown): v is ProtocolPlugin {
  return typeof v === "object" && v !== null && typeof (v as ProtocolPlugin).start === "function" && typeof (v as ProtocolPlugin).protocol === "string";
}

export async function loadPlugin(name: string, listener: ListenerConfig, baseDir: string): Promise<ProtocolPlugin> {
  const spec = pluginSpecifier(name, listener, baseDir);
  let mod: { default?: unknown };
  try {
    mod = (await import(spec)) as { default?: unknown };
  } catch (e) {
    throw new Error(`listener "${name}": cannot load protocol plugin ${spec}: ${(e as Error).message} (set listeners.${name}.plugin or install the package)`);
  }
  if (!isPlugin(mod.default)) {
    throw new Error(`listener "${name}": ${spec} has no default export implementing ProtocolPlugin ({ protocol, start(ctx, config) })`);
  }
  return mod.default;
}
