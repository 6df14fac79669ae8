import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { MaskKey } from "./types.js";

/**
 * Build a key from configuration: secret as base64 (or "hex:<hex>"), at least 16 bytes.
 * The id is a fingerprint of the secret unless given, so audit can say which key hashed.
 */
export function maskKeyFromSecret(secret: string, id?: string): MaskKey {
  const s = secret.trim();
  const buf = s.startsWith("hex:") ? Buffer.from(s.slice(4), "hex") : Buffer.from(s, "base64");
  if (buf.length < 16) {
    throw new Error("masking key must be at least 16 bytes (base64, or hex:<hex>); generate one with `openssl rand -base64 32`");
  }
  return { id: id ?? createHash("sha256").update(buf).digest("hex").slice(0, 12), secret: buf };
}

/** A fresh random key (tests, or a dev stack without a configured key). */
export function generateMaskKey(id?: string): MaskKey {
  const secret = randomBytes(32);
  return { id: id ?? createHash("sha256").update(secret).digest("hex").slice(0, 12), secret };
}

/**
 * The deployment's masking key, the same wherever masking runs (listener, masking
 * service) so hash tokens match: $GATEHOUSE_MASKING_KEY (base64 or hex:<hex>), else the
 * file $GATEHOUSE_MASKING_KEY_FILE, else <dataDir>/masking/hmac.key, created (0600) on
 * first use for development.
 */
export function loadMaskKey(dataDir: string, opts: { env?: NodeJS.ProcessEnv; onGenerated?: (file: string) => void } = {}): MaskKey {
  const env = opts.env ?? process.env;
  if (env["GATEHOUSE_MASKING_KEY"]) return maskKeyFromSecret(env["GATEHOUSE_MASKING_KEY"]);
  const explicit = env["GATEHOUSE_MASKING_KEY_FILE"];
  const file = explicit || join(dataDir, "masking", "hmac.key");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT" || explicit) {
      throw new Error(`masking key file ${file} cannot be read: ${(e as Error).message}`);
    }
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    try {
      // "wx": processes starting together keep the first key written
      writeFileSync(file, randomBytes(32).toString("base64") + "\n", { mode: 0o600, flag: "wx" });
      opts.onGenerated?.(file);
    } catch (w) {
      if ((w as NodeJS.ErrnoException).code !== "EEXIST") throw w;
    }
    text = readFileSync(file, "utf8");
  }
  return maskKeyFromSecret(text);
}
