// Load masking plugins named in configuration. A plugin module's default export is
// `{ name, recognizers?(config), columnRules?(config) }` (MaskingPlugin).
import type { ColumnRule, MaskingPlugin, Recognizer } from "./types.js";

export interface MaskingPluginSpec {
  /** Module specifier, e.g. "@gatehouse/plugin-masking-pii" or an absolute file path. */
  module: string;
  config?: Record<string, unknown>;
}

export interface LoadedMaskingPlugins {
  plugins: string[];
  recognizers: Recognizer[];
  columnRules: ColumnRule[];
}

function isPlugin(x: unknown): x is MaskingPlugin {
  if (typeof x !== "object" || x === null) return false;
  const p = x as Record<string, unknown>;
  return (
    typeof p["name"] === "string" &&
    (p["recognizers"] === undefined || typeof p["recognizers"] === "function") &&
    (p["columnRules"] === undefined || typeof p["columnRules"] === "function")
  );
}

export async function loadMaskingPlugins(specs: MaskingPluginSpec[]): Promise<LoadedMaskingPlugins> {
  const out: LoadedMaskingPlugins = { plugins: [], recognizers: [], columnRules: [] };
  for (const spec of specs) {
    let mod: { default?: unknown };
    try {
      mod = (await import(spec.module)) as { default?: unknown };
    } catch (e) {
      throw new Error(`masking plugin "${spec.module}" cannot be loaded: ${(e as Error).message} (is it installed in this workspace?)`);
    }
    const plugin = mod.default;
    if (!isPlugin(plugin)) {
      throw new Error(`masking plugin "${spec.module}" must default-export { name, recognizers?(config), columnRules?(config) }`);
    }
    const config = spec.config ?? {};
    try {
      if (plugin.recognizers) out.recognizers.push(...plugin.recognizers(config));
      if (plugin.columnRules) out.columnRules.push(...plugin.columnRules(config));
    } catch (e) {
      throw new Error(`masking plugin ${plugin.name} (${spec.module}): ${(e as Error).message}`);
    }
    out.plugins.push(plugin.name);
  }
  return out;
}
