// Validators that turn a regex candidate into a finding. Checksums and structure
// rules, so near misses (order numbers, dates, hashes) are rejected.
import validator from "validator";

/** Luhn mod-10 over the digits of `s` (separators ignored). */
export function luhn(s: string): boolean {
  let sum = 0;
  let dbl = false;
  let n = 0;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) continue;
    n++;
    let d = c;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return n > 0 && sum % 10 === 0;
}

/** Payment card: 13-19 digits, one consistent separator style, known issuer prefix, Luhn. */
export function isPaymentCard(value: string): boolean {
  if (value.includes(" ") && value.includes("-")) return false;
  // Printed cards group as 4-4-4-4, 4-6-5, 4-6-4, 4-4-4-4-3: first group 4, others 3..6.
  const groups = value.split(/[ -]/);
  if (groups.length > 1 && (groups[0]!.length !== 4 || groups.some((g) => g.length < 3 || g.length > 6))) return false;
  const digits = value.replace(/[ -]/g, "");
  if (!/^\d{13,19}$/.test(digits)) return false;
  if (/^(\d)\1+$/.test(digits)) return false; // 0000..., 4444...: test fillers
  return validator.isCreditCard(digits) && luhn(digits);
}

/** US SSN rules: area not 000/666/900-999, group not 00, serial not 0000; known advertised numbers rejected. */
export function isSsn(value: string): boolean {
  const m = /^(\d{3})([- ]?)(\d{2})\2(\d{4})$/.exec(value);
  if (!m) return false;
  const [, area, , group, serial] = m;
  if (area === "000" || area === "666" || area![0] === "9") return false;
  if (group === "00" || serial === "0000") return false;
  const compact = area! + group! + serial!;
  if (compact === "078051120" || compact === "219099999" || compact === "123456789") return false;
  if (/^(\d)\1{8}$/.test(compact)) return false;
  return true;
}

// ITU-T E.164 country calling codes (1-3 digits); used to reject "+" numbers with no country.
const CC1 = new Set(["1", "7"]);
const CC2 = new Set(
  "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98".split(" "),
);
const CC3_PREFIXES = ["21", "22", "23", "24", "25", "26", "29", "35", "37", "38", "42", "50", "59", "67", "68", "69", "80", "85", "87", "88", "96", "97", "99"];

export function e164CountryCode(digits: string): string | undefined {
  if (CC1.has(digits[0]!)) return digits[0];
  if (CC2.has(digits.slice(0, 2))) return digits.slice(0, 2);
  if (CC3_PREFIXES.includes(digits.slice(0, 2))) return digits.slice(0, 3);
  return undefined;
}

/** NANP: NPA (area code) and NXX (exchange) start with 2-9 and are not N11 service codes; N9X area codes are unassigned. */
export function isNanp(npa: string, nxx: string): boolean {
  if (!/^[2-9]\d\d$/.test(npa) || !/^[2-9]\d\d$/.test(nxx)) return false;
  if (npa[1] === "1" && npa[2] === "1") return false;
  if (nxx[1] === "1" && nxx[2] === "1") return false;
  if (npa[1] === "9") return false; // N9X area codes are reserved for expansion
  return true;
}

/** E.164: "+", country code, 8-15 digits in total; NANP numbers must also pass isNanp. */
export function isE164(value: string): boolean {
  const digits = value.replace(/[^\d]/g, "");
  if (!value.startsWith("+") || digits.length < 8 || digits.length > 15) return false;
  const cc = e164CountryCode(digits);
  if (!cc) return false;
  if (cc === "1") return digits.length === 11 && isNanp(digits.slice(1, 4), digits.slice(4, 7));
  return true;
}

export function isIban(compact: string): boolean {
  return validator.isIBAN(compact);
}

export function isIPv4(value: string): boolean {
  if (!validator.isIP(value, 4)) return false;
  // Leading zeros are ambiguous (octal in some parsers); real addresses are not written so.
  return value.split(".").every((o) => o === "0" || !o.startsWith("0"));
}

export function isIPv6(value: string): boolean {
  if (!validator.isIP(value, 6)) return false;
  // A "::", all eight groups, or an embedded IPv4; times ("12:30:45") and MACs never qualify.
  return value.includes("::") || value.split(":").length >= 8 || /\d+\.\d+\.\d+\.\d+$/.test(value);
}

function b64urlJson(part: string): unknown {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return undefined;
  try {
    return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
}

/** JWT (JWS compact): header is base64url JSON with a string "alg", payload is a JSON object. */
export function isJwt(value: string): boolean {
  const parts = value.split(".");
  if (parts.length !== 3) return false;
  const header = b64urlJson(parts[0]!);
  if (typeof header !== "object" || header === null || typeof (header as { alg?: unknown }).alg !== "string") return false;
  const payload = b64urlJson(parts[1]!);
  if (typeof payload !== "object" || payload === null) return false;
  return parts[2] === "" ? (header as { alg: string }).alg.toLowerCase() === "none" : /^[A-Za-z0-9_-]{16,}$/.test(parts[2]!);
}

/** 40-char AWS secret: base64 alphabet, mixed case and a digit; rejects hex digests (git SHA-1s). */
export function isAwsSecretShape(value: string): boolean {
  if (!/^[A-Za-z0-9/+]{40}$/.test(value)) return false;
  if (/^[0-9a-fA-F]{40}$/.test(value)) return false;
  return /[A-Z]/.test(value) && /[a-z]/.test(value) && /\d/.test(value);
}

/** PEM body: base64 lines (optionally RFC 1421 headers) that decode to DER or an OpenSSH key. */
export function isPemPrivateKey(block: string): boolean {
  // Keys pasted into JSON or env files carry "\n" escapes instead of line breaks.
  const body = block
    .replace(/\\r/g, "")
    .replace(/\\n/g, "\n")
    .split(/\r?\n/)
    .filter((l) => !l.startsWith("-----") && !/^[\w-]+:/.test(l))
    .join("")
    .replace(/\s+/g, "");
  if (body.length < 32 || !/^[A-Za-z0-9+/]+=*$/.test(body)) return false;
  const der = Buffer.from(body, "base64");
  return der[0] === 0x30 || der.subarray(0, 14).toString("latin1") === "openssh-key-v1" || /ENCRYPTED|PGP/.test(block);
}

export function isEmail(value: string): boolean {
  return validator.isEmail(value, { allow_utf8_local_part: false, require_tld: true, allow_ip_domain: false });
}

/** Validators available to recognizers declared in config, by name. */
export const namedValidators: Record<string, (value: string) => boolean> = {
  luhn,
  card: isPaymentCard,
  ssn: isSsn,
  e164: isE164,
  iban: (v) => isIban(v.replace(/\s+/g, "")),
  ipv4: isIPv4,
  ipv6: isIPv6,
  ip: (v) => isIPv4(v) || isIPv6(v),
  jwt: isJwt,
  email: isEmail,
};

/**
 * A validator by config name: one of namedValidators, or any string check of the
 * `validator` package by its function name ("isUUID", "isMACAddress", ...).
 */
export function validatorByName(name: string): (value: string) => boolean {
  const own = namedValidators[name];
  if (own) return own;
  const fn = (validator as unknown as Record<string, unknown>)[name];
  if (typeof fn === "function" && name.startsWith("is")) return (v) => Boolean((fn as (s: string) => boolean)(v));
  throw new Error(
    `unknown validator "${name}": use one of ${Object.keys(namedValidators).join(", ")} or a validator.js check such as isUUID`,
  );
}
