// Statement fingerprints: the real PostgreSQL parser's fingerprint (constants,
// comments and whitespace ignored), used as the decision-cache key.
import { loadModule, fingerprintSync } from "libpg-query";

let loaded: Promise<void> | undefined;

/** Load the parser (wasm) once; call before any *Sync function of this package. */
export function initSql(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

/** Fingerprint of `text`, or undefined when it does not parse. */
export function fingerprintSql(text: string): string | undefined {
  try {
    return fingerprintSync(text);
  } catch {
    return undefined;
  }
}
