// Masking hook for exec output. When the policy's decision carries a masking plan
// with text rules, stdout and stderr go through the gateway's masking runtime line by
// line (a value split across chunks is still found); without a plan, output passes
// byte for byte. A plan on a gateway without a masking runtime refuses the command
// (fail closed). Interactive shells and SFTP are not masked (recorded instead).
import type { DecisionResult, GatewayContext, MaskStrategy } from "@gatehouse/plugin-sdk";

/** MaskStrategyKind (proto enum) → the SDK's strategy names. */
const KINDS: Record<number, MaskStrategy["kind"]> = { 1: "redact", 2: "partial", 3: "hash", 4: "null", 5: "clear" };
/** Longest partial line held back while waiting for its end. */
const MAX_CARRY = 64 * 1024;

export interface OutputFilter {
  push(b: Buffer): Buffer;
  /** Mask and release the partial line held back (after a pause in the output). */
  flush(): Buffer;
  /** What is still held back, at the end of the stream. */
  end(): Buffer;
}

/** An output filter for one exec channel, or undefined when nothing is masked. */
export function outputFilter(ctx: GatewayContext, d: DecisionResult): (() => OutputFilter) | undefined {
  const plan = d.decision.masking;
  if (!plan || plan.text.length === 0) return undefined;
  const rt = ctx.masking;
  if (!rt) throw new Error("the policy asks for masking but masking is not set up on this gateway");
  const rules = new Map(plan.text.map((r) => [r.entity, r.strategy]));
  const strategyFor = (entity: string): MaskStrategy => {
    const s = rules.get(entity) ?? rules.get("*");
    return s ? { kind: KINDS[s.kind] ?? "redact", keepLast: s.keepLast } : { kind: "redact" };
  };
  const mask = (s: string) => Buffer.from(rt.maskText(s, strategyFor).text, "utf8");
  // One filter per stream (stdout, stderr), each with its own partial line.
  return () => {
    let carry = "";
    const decoder = new TextDecoder();
    return {
      push(b) {
        const s = carry + decoder.decode(b, { stream: true });
        const nl = s.lastIndexOf("\n");
        if (nl < 0 && s.length < MAX_CARRY) {
          carry = s;
          return Buffer.alloc(0);
        }
        carry = nl < 0 ? "" : s.slice(nl + 1);
        return mask(nl < 0 ? s : s.slice(0, nl + 1));
      },
      flush() {
        const s = carry;
        carry = "";
        return s ? mask(s) : Buffer.alloc(0);
      },
      end() {
        const s = carry + decoder.decode();
        carry = "";
        return s ? mask(s) : Buffer.alloc(0);
      },
    };
  };
}
