// Built-in PII and secret recognizers: a candidate regex, then a validator (checksum,
// structure), then a score that context words can raise. Scores below the scanner's
// minScore (0.5 by default) are candidates that need context to count, e.g. a bare
// 9-digit number is an SSN only next to "ssn".
import { regexRecognizer, type Finding, type Recognizer } from "@gatehouse/masking";
import {
  isAwsSecretShape,
  isE164,
  isEmail,
  isIban,
  isIPv4,
  isIPv6,
  isJwt,
  isNanp,
  isPaymentCard,
  isPemPrivateKey,
  isSsn,
} from "./validators.js";

export const DEFAULT_CONTEXT: Record<string, string[]> = {
  EMAIL: ["email", "e-mail", "mail", "contact"],
  CREDIT_CARD: ["card", "credit", "visa", "mastercard", "amex", "payment", "pan"],
  US_SSN: ["ssn", "social security", "social sec", "taxpayer", "tin"],
  PHONE: ["phone", "tel", "call", "mobile", "cell", "fax", "sms", "contact", "whatsapp"],
  IBAN: ["iban", "account", "bank", "transfer"],
  IP_ADDRESS: ["ip", "address", "host", "client", "server"],
  AWS_SECRET_KEY: ["aws_secret", "secret_access_key", "secret access key", "aws secret", "secretaccesskey", "akia", "asia"],
};

function ctx(entity: string, extra: Record<string, string[]>): string[] {
  return [...(DEFAULT_CONTEXT[entity] ?? []), ...(extra[entity] ?? [])];
}

// Three digits in a row: the least any number-shaped entity needs.
const DIGIT_RUN = /\d\d\d/;

const VERSION_BEFORE = /(?:\bversion|\bver\.?|\brelease|\bbuild|\bv)\s*[:=]?\s*$/i;

const URL_AUTHORITY_BEFORE = /[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s/@]*$/;

export function emailRecognizer(extra: Record<string, string[]> = {}): Recognizer {
  return regexRecognizer({
    name: "pii.email",
    requires: "@",
    entity: "EMAIL",
    pattern: /(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])/,
    score: 0.95,
    // "https://token@host" is URL userinfo, not an address; the token recognizers take it.
    validate: (v, text, start) => !URL_AUTHORITY_BEFORE.test(text.slice(Math.max(0, start - 256), start)) && isEmail(v),
    context: ctx("EMAIL", extra),
    contextBoost: 0.05,
  });
}

export function cardRecognizer(extra: Record<string, string[]> = {}): Recognizer {
  return regexRecognizer({
    name: "pii.credit_card",
    requires: DIGIT_RUN,
    entity: "CREDIT_CARD",
    pattern: /(?<![\w.+-])\d(?:[ -]?\d){12,18}(?![\w-]|\.\d)/,
    score: 0.9,
    // 13-digit Visa numbers are long retired, while 13-digit EAN barcodes starting
    // with 4 are everywhere: those need context.
    validate: (v) => (isPaymentCard(v) ? (v.replace(/\D/g, "").length === 13 ? 0.4 : 0.9) : false),
    context: ctx("CREDIT_CARD", extra),
    contextBoost: 0.3,
  });
}

export function ssnRecognizer(extra: Record<string, string[]> = {}): Recognizer {
  return regexRecognizer({
    name: "pii.us_ssn",
    requires: DIGIT_RUN,
    entity: "US_SSN",
    pattern: /(?<![\w.-])\d{3}([- ]?)\d{2}\1\d{4}(?![\w-]|\.\d)/,
    score: 0.3,
    // Dashed is the written SSN form; spaced is weaker; bare 9 digits needs context.
    validate: (v) => (isSsn(v) ? (v.includes("-") ? 0.85 : v.includes(" ") ? 0.45 : 0.3) : false),
    context: ctx("US_SSN", extra),
    contextBoost: 0.4,
  });
}

const NANP_SHAPE = /^(?:1[ .-]?)?(?:\(([2-9]\d\d)\) ?|([2-9]\d\d)([ .-]?))([2-9]\d\d)([ .-]?)(\d{4})$/;

export function phoneRecognizers(extra: Record<string, string[]> = {}): Recognizer[] {
  const context = ctx("PHONE", extra);
  const e164 = regexRecognizer({
    name: "pii.phone_e164",
    requires: "+",
    entity: "PHONE",
    pattern: /(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,6}(?![\w-]|\.\d)/,
    score: 0.85,
    validate: isE164,
    context,
    contextBoost: 0.1,
  });
  const nanp = regexRecognizer({
    name: "pii.phone_nanp",
    requires: DIGIT_RUN,
    entity: "PHONE",
    // not the national part of a "+1 ..." number (the E.164 recognizer has it)
    pattern: /(?<![\w+().-])(?<!\+1[ .-]?)(?:1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-]?)\d{3}[ .-]?\d{4}(?![\w-]|\.\d)/,
    score: 0.35,
    validate: (v) => {
      const m = NANP_SHAPE.exec(v);
      if (!m) return false;
      const npa = m[1] ?? m[2]!;
      const sep1 = m[1] !== undefined ? null : m[3]!;
      const sep2 = m[5]!;
      if (sep1 !== null && sep1 !== sep2) return false;
      if (!isNanp(npa, m[4]!)) return false;
      // Formatted numbers are phones; 10 bare digits need context.
      return m[1] !== undefined || sep2 !== "" ? 0.75 : 0.35;
    },
    context,
    contextBoost: 0.4,
  });
  return [e164, nanp];
}

/** IBAN: the candidate may run into a following word, so try the longest valid prefix. */
export function ibanRecognizer(): Recognizer {
  const re = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,32}(?![A-Za-z0-9])/g;
  return {
    name: "pii.iban",
    entity: "IBAN",
    find(text: string): Finding[] {
      const out: Finding[] = [];
      if (!/[A-Z]{2}\d\d/.test(text)) return out;
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        const raw = m[0];
        // positions (in raw) of each non-space char
        const pos: number[] = [];
        for (let i = 0; i < raw.length; i++) if (raw[i] !== " ") pos.push(i);
        const compact = raw.replace(/ /g, "");
        for (let len = compact.length; len >= 15; len--) {
          const endInRaw = pos[len - 1]! + 1;
          if (endInRaw < raw.length && raw[endInRaw] !== " ") continue; // must end at a group boundary
          if (isIban(compact.slice(0, len))) {
            out.push({ entity: "IBAN", start: m.index, end: m.index + endInRaw, score: 0.95, recognizer: "pii.iban" });
            re.lastIndex = m.index + endInRaw;
            break;
          }
        }
      }
      return out;
    },
  };
}

export function ipRecognizers(extra: Record<string, string[]> = {}): Recognizer[] {
  const context = ctx("IP_ADDRESS", extra);
  return [
    regexRecognizer({
      name: "pii.ipv4",
      requires: ".",
      entity: "IP_ADDRESS",
      pattern: /(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)/,
      score: 0.85,
      // "version 10.2.0.1", "v1.2.3.4": dotted quads that are versions, not hosts
      validate: (v, text, start) => isIPv4(v) && !VERSION_BEFORE.test(text.slice(Math.max(0, start - 24), start)),
      context,
      contextBoost: 0.1,
    }),
    regexRecognizer({
      name: "pii.ipv6",
      requires: ":",
      entity: "IP_ADDRESS",
      pattern: /(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4})?(?:%[\w.]+)?(?![\w:])/,
      score: 0.85,
      validate: (v) => /[0-9A-Fa-f]/.test(v.replace(/%.*$/, "")) && isIPv6(v),
      context,
      contextBoost: 0.1,
    }),
  ];
}

export function jwtRecognizer(): Recognizer {
  return regexRecognizer({
    name: "secret.jwt",
    requires: /e[wy][A-Za-z0-9_-]{8,}\./,
    entity: "JWT",
    pattern: /(?<![\w.-])e[wy][A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*(?![\w.-])/,
    score: 0.95,
    validate: isJwt,
  });
}

export function awsRecognizers(extra: Record<string, string[]> = {}): Recognizer[] {
  return [
    regexRecognizer({
      name: "secret.aws_access_key_id",
      requires: /A[KS]IA/,
      entity: "AWS_ACCESS_KEY",
      pattern: /(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])/,
      score: 0.9,
      // Real key ids are base32 upper case; a run of one character is a placeholder.
      validate: (v) => !/^(?:AKIA|ASIA)(.)\1{15}$/.test(v),
    }),
    regexRecognizer({
      name: "secret.aws_secret_access_key",
      entity: "AWS_SECRET_KEY",
      pattern: /(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/,
      score: 0.35,
      // only ever reported next to a context word, so texts without one are skipped
      requires: new RegExp(ctx("AWS_SECRET_KEY", extra).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "i"),
      validate: isAwsSecretShape,
      context: ctx("AWS_SECRET_KEY", extra),
      contextBoost: 0.55,
      contextWindow: 64,
    }),
  ];
}

export function tokenRecognizers(): Recognizer[] {
  return [
    regexRecognizer({
      name: "secret.github",
      requires: /gh[pousr]_|github_pat_/,
      entity: "GITHUB_TOKEN",
      pattern: /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9_])/,
      score: 0.95,
    }),
    regexRecognizer({
      name: "secret.slack",
      requires: /xox[abposr]-|xapp-/,
      entity: "SLACK_TOKEN",
      pattern: /(?<![A-Za-z0-9-])(?:xox[abposr]-(?:\d{6,14}-){1,3}[A-Za-z0-9]{16,48}|xapp-\d-[A-Z0-9]{8,14}-\d{8,16}-[a-f0-9]{32,80})(?![A-Za-z0-9-])/,
      score: 0.95,
    }),
    regexRecognizer({
      name: "secret.stripe",
      requires: "_live_",
      entity: "STRIPE_KEY",
      pattern: /(?<![A-Za-z0-9_])(?:sk|rk)_live_[A-Za-z0-9]{24,247}(?![A-Za-z0-9_])/,
      score: 0.95,
    }),
  ];
}

/** PEM private keys: BEGIN..END block; a truncated block (no END) still counts up to its last base64 line. */
export function privateKeyRecognizer(): Recognizer {
  const begin = /-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----/g;
  return {
    name: "secret.pem_private_key",
    entity: "PRIVATE_KEY",
    find(text: string): Finding[] {
      const out: Finding[] = [];
      if (!text.includes("PRIVATE KEY")) return out;
      begin.lastIndex = 0;
      for (let m = begin.exec(text); m !== null; m = begin.exec(text)) {
        const endMarker = `-----END ${m[1]}PRIVATE KEY${m[2] ?? ""}-----`;
        const endAt = text.indexOf(endMarker, m.index + m[0].length);
        let end: number;
        let score: number;
        if (endAt >= 0) {
          end = endAt + endMarker.length;
          score = 0.99;
        } else {
          const tail = /^(?:\r?\n(?:[A-Za-z0-9+/=]+|[\w-]+: .*))+/.exec(text.slice(m.index + m[0].length));
          end = m.index + m[0].length + (tail ? tail[0].length : 0);
          score = 0.9;
        }
        const block = text.slice(m.index, end);
        if (isPemPrivateKey(block)) out.push({ entity: "PRIVATE_KEY", start: m.index, end, score, recognizer: "secret.pem_private_key" });
        begin.lastIndex = end;
      }
      return out;
    },
  };
}

/** Every built-in recognizer, with optional extra context words per entity. */
export function builtinRecognizers(extraContext: Record<string, string[]> = {}): Recognizer[] {
  return [
    emailRecognizer(extraContext),
    cardRecognizer(extraContext),
    ssnRecognizer(extraContext),
    ...phoneRecognizers(extraContext),
    ibanRecognizer(),
    ...ipRecognizers(extraContext),
    jwtRecognizer(),
    ...awsRecognizers(extraContext),
    ...tokenRecognizers(),
    privateKeyRecognizer(),
  ];
}
