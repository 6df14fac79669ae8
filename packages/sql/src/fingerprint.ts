// Statement fingerprints, used as the decision-cache key.
import { loadModule } from "libpg-query";
import { classifySql } from "./classify.js";

let loaded: Promise<void> | undefined;

/** Load the parser (wasm) once; call before any *Sync function of this package. */
export function initSql(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

/**
 * Fingerprint of `text`, or undefined when it does not parse (or holds no statement).
 * This is PostgreSQL's fingerprint (constants, comments and whitespace ignored) plus a
 * digest of the statement classification: the raw fingerprint alone also ignores schema
 * names and a "WHERE true", so two texts a policy treats differently could share it.
 * Same as classifySql(text).fingerprint.
 */
export function fingerprintSql(text: string): string | undefined {
  return classifySql(text).fingerprint || undefined;
}
