// The listener's masking runtime: recognizers (plugins/masking-pii) and the HMAC
// key of the "hash" strategy, loaded once per listener process and shared by all
// protocol plugins. Masking runs in-process (see docs/decisions.md for the
// measurement behind that choice).
//
// Key: $GATEHOUSE_MASKING_KEY (base64 or hex:<hex>, at least 16 bytes), else the
// file named by $GATEHOUSE_MASKING_KEY_FILE, else <dataDir>/masking/hmac.key, which
// is generated (mode 0600) on first start for development. Tokens are stable as
// long as the key is, so a production key must come from a secret store.
import { applyStrategy, createScanner, HASH_TOKEN_BYTES, hashTokenAsciiBytes, hashTokenBatch, partialMaskAsciiBytes, loadMaskKey as loadSharedMaskKey, maskText, typePreservingReplacement, type MaskKey, type Strategy } from "@gatehouse/masking";
import { builtinRecognizers } from "@gatehouse/plugin-masking-pii";
import type { MaskingRuntime, MaskStrategy } from "@gatehouse/plugin-sdk";
import type { Logger } from "@gatehouse/runtime";

/** The deployment's hash key (shared with services/masking, so tokens from both match). */
export function loadMaskKey(dataDir: string, log?: Logger): MaskKey {
  return loadSharedMaskKey(dataDir, { onGenerated: (file) => log?.warn({ file }, "generated a development masking key; set GATEHOUSE_MASKING_KEY in production") });
}

function toStrategy(s: MaskStrategy): Strategy {
  return s.kind === "partial" ? { kind: "partial", keepLast: s.keepLast ?? 4 } : ({ kind: s.kind } as Strategy);
}

export function createMaskingRuntime(key: MaskKey): MaskingRuntime {
  const scanner = createScanner(builtinRecognizers());
  // The SDK's strategy has the engine's shape; only a partial without keepLast needs a copy.
  const conv = (s: MaskStrategy): Strategy => (s.kind === "partial" && s.keepLast === undefined ? toStrategy(s) : (s as Strategy));
  const batch = hashTokenBatch();
  return {
    keyId: key.id,
    ...(batch && {
      hashTokenBytes: HASH_TOKEN_BYTES,
      deferHashToken: (src: Uint8Array, from: number, to: number, entity: string, dst: Uint8Array, at: number) => batch.add(key, entity, src, from, to, dst, at),
      settle: () => batch.settle(),
    }),
    maskValue: (value, entity, strategy) => applyStrategy(value, entity, conv(strategy), key),
    maskValueUtf8: (value, entity, strategy) =>
      strategy.kind === "partial" ? partialMaskAsciiBytes(value, entity, strategy.keepLast ?? 4) : strategy.kind === "hash" ? hashTokenAsciiBytes(value, entity, key) : undefined,
    replaceTyped: (typeOid, entity, value) => typePreservingReplacement(typeOid, entity, value, key),
    maskText(text, strategyFor) {
      const r = maskText(text, scanner, (e) => conv(strategyFor(e)), key);
      return { text: r.text, actions: r.actions.map((a) => ({ entity: a.entity, strategy: a.strategy })) };
    },
  };
}
