#!/usr/bin/env node
// Labelled corpus for the masking-pii recognizers, generated from a fixed seed so the
// precision/recall figures are reproducible. All values are synthetic (checksums made
// valid or deliberately broken here); nothing is a real person's data or a live secret.
//
//   node plugins/masking-pii/scripts/gen-corpus.mjs [out.jsonl] [--seed N]
//
// Each item: { id, entity, kind: "positive"|"prose"|"near_miss", text, labels: [{entity,start,end}] }
// `entity` is the entity the item was made for; `labels` are every entity span in `text`.
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DIGITS = "0123456789";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const ALNUM = UPPER + LOWER + DIGITS;
const HEX = "0123456789abcdef";

export function generateCorpus({ seed = 20261122, perEntity = { positive: 100, prose: 50, nearMiss: 60 } } = {}) {
  const rnd = mulberry32(seed);
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = (arr) => arr[Math.floor(rnd() * arr.length)];
  const chars = (alphabet, n) => {
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    return s;
  };
  const bytes = (n) => Buffer.from(Array.from({ length: n }, () => int(0, 255)));

  // ---- value makers -------------------------------------------------------
  const luhnCheck = (body) => {
    let sum = 0;
    let dbl = true;
    for (let i = body.length - 1; i >= 0; i--) {
      let d = Number(body[i]);
      if (dbl) {
        d *= 2;
        if (d > 9) d -= 9;
      }
      sum += d;
      dbl = !dbl;
    }
    return String((10 - (sum % 10)) % 10);
  };
  const CARD_KINDS = [
    () => ["4" + chars(DIGITS, 14), "4444"],
    () => ["5" + int(1, 5) + chars(DIGITS, 13), "4444"],
    () => [String(int(2221, 2720)) + chars(DIGITS, 11), "4444"],
    () => ["3" + pick(["4", "7"]) + chars(DIGITS, 12), "465"],
    () => ["6011" + chars(DIGITS, 11), "4444"],
    () => ["35" + int(28, 89) + chars(DIGITS, 11), "4444"],
    () => ["36" + chars(DIGITS, 11), "464"],
  ];
  const group = (digits, pattern, sep) => {
    if (!sep) return digits;
    const out = [];
    let i = 0;
    for (const g of pattern) {
      out.push(digits.slice(i, i + Number(g)));
      i += Number(g);
    }
    return out.join(sep);
  };
  const card = () => {
    const [body, pattern] = pick(CARD_KINDS)();
    const digits = body + luhnCheck(body);
    return group(digits, pattern, pick(["", " ", "-"]));
  };
  const visa19 = () => {
    const body = "4" + chars(DIGITS, 17);
    return body + luhnCheck(body);
  };
  // EAN-13 (weights 1,3): German-range barcodes start with 400-440 like a Visa number
  const ean13 = () => {
    const body = String(int(400, 440)) + chars(DIGITS, 9);
    let sum = 0;
    for (let i = 0; i < 12; i++) sum += Number(body[i]) * (i % 2 ? 3 : 1);
    return body + String((10 - (sum % 10)) % 10);
  };
  const luhnFailing16 = () => {
    const body = chars("123456789", 1) + chars(DIGITS, 14);
    const good = Number(luhnCheck(body));
    return body + String((good + int(1, 9)) % 10);
  };

  const ssnParts = () => {
    let area;
    do area = int(1, 899);
    while (area === 666);
    return [String(area).padStart(3, "0"), String(int(1, 99)).padStart(2, "0"), String(int(1, 9999)).padStart(4, "0")];
  };
  const ssnDashed = () => ssnParts().join("-");

  const npa = () => {
    let s;
    do s = String(int(2, 9)) + String(int(0, 8)) + String(int(0, 9));
    while (s[1] === "1" && s[2] === "1");
    return s;
  };
  const nxx = () => {
    let s;
    do s = String(int(2, 9)) + chars(DIGITS, 2);
    while (s[1] === "1" && s[2] === "1");
    return s;
  };
  const nanp = () => {
    const a = npa();
    const b = nxx();
    const c = chars(DIGITS, 4);
    return pick([
      `(${a}) ${b}-${c}`,
      `${a}-${b}-${c}`,
      `${a}.${b}.${c}`,
      `${a} ${b} ${c}`,
      `1-${a}-${b}-${c}`,
      `+1 ${a} ${b} ${c}`,
      `+1${a}${b}${c}`,
      `+1 (${a}) ${b}-${c}`,
      `+1-${a}-${b}-${c}`,
    ]);
  };
  const intlPhone = () =>
    pick([
      () => `+44 ${pick(["20", "161", "7700"])} ${chars(DIGITS, 3)} ${chars(DIGITS, 4)}`,
      () => `+49 ${int(30, 89)} ${chars(DIGITS, 7)}`,
      () => `+33 ${int(1, 9)} ${chars(DIGITS, 2)} ${chars(DIGITS, 2)} ${chars(DIGITS, 2)} ${chars(DIGITS, 2)}`,
      () => `+81 ${int(3, 9)}-${chars(DIGITS, 4)}-${chars(DIGITS, 4)}`,
      () => `+61 ${int(2, 8)} ${chars(DIGITS, 4)} ${chars(DIGITS, 4)}`,
      () => `+91 ${int(70, 99)}${chars(DIGITS, 3)} ${chars(DIGITS, 5)}`,
      () => `+34${int(600, 799)}${chars(DIGITS, 6)}`,
      () => `+55 11 9${chars(DIGITS, 4)}-${chars(DIGITS, 4)}`,
      () => `+353 ${int(1, 99)} ${chars(DIGITS, 3)} ${chars(DIGITS, 4)}`,
    ])();

  const IBAN_FORMATS = {
    DE: () => chars(DIGITS, 18),
    GB: () => chars(UPPER, 4) + chars(DIGITS, 14),
    FR: () => chars(DIGITS, 10) + chars(UPPER + DIGITS, 11) + chars(DIGITS, 2),
    NL: () => chars(UPPER, 4) + chars(DIGITS, 10),
    ES: () => chars(DIGITS, 20),
    IT: () => chars(UPPER, 1) + chars(DIGITS, 10) + chars(UPPER + DIGITS, 12),
    BE: () => chars(DIGITS, 12),
    CH: () => chars(DIGITS, 5) + chars(UPPER + DIGITS, 12),
    AT: () => chars(DIGITS, 16),
    PL: () => chars(DIGITS, 24),
    SE: () => chars(DIGITS, 20),
    NO: () => chars(DIGITS, 11),
  };
  const ibanCheck = (cc, bban) => {
    const rearranged = (bban + cc + "00").replace(/[A-Z]/g, (ch) => String(ch.charCodeAt(0) - 55));
    return String(98n - (BigInt(rearranged) % 97n)).padStart(2, "0");
  };
  const ibanCompact = () => {
    const cc = pick(Object.keys(IBAN_FORMATS));
    const bban = IBAN_FORMATS[cc]();
    return cc + ibanCheck(cc, bban) + bban;
  };
  const grouped4 = (s) => s.replace(/(.{4})(?=.)/g, "$1 ");
  const iban = () => (rnd() < 0.5 ? ibanCompact() : grouped4(ibanCompact()));

  const ipv4 = () => `${int(1, 223)}.${int(0, 255)}.${int(0, 255)}.${int(1, 254)}`;
  const h4 = () => chars(HEX, int(1, 4)).replace(/^0+(?=.)/, "");
  const ipv6 = () =>
    pick([
      () => Array.from({ length: 8 }, h4).join(":"),
      () => `2001:db8::${h4()}:${h4()}`,
      () => `fe80::${h4()}:${h4()}:${h4()}:${h4()}`,
      () => `${h4()}:${h4()}::${h4()}`,
      () => `::ffff:${ipv4()}`,
      () => `2001:db8:${h4()}:${h4()}::${h4()}`,
    ])();

  const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
  const jwt = () => {
    const alg = pick(["HS256", "RS256", "ES256", "HS512", "PS256", "none"]);
    const header = rnd() < 0.7 ? { alg, typ: "JWT" } : { typ: "JWT", alg, kid: chars(ALNUM, 8) };
    const payload = { sub: chars(DIGITS, int(4, 10)), name: pick(["Ada", "Lin", "Sam", "Kofi", "Mia"]), iat: int(1.6e9, 1.8e9) };
    if (rnd() < 0.5) payload.exp = payload.iat + 3600;
    if (rnd() < 0.3) payload.scope = "read write";
    const sig = alg === "none" ? "" : bytes(pick([32, 64, 256])).toString("base64url");
    return `${b64url(header)}.${b64url(payload)}.${sig}`;
  };
  const AWS32 = UPPER + "234567";
  const awsId = () => pick(["AKIA", "ASIA"]) + chars(AWS32, 16);
  const awsSecret = () => {
    let s;
    do s = chars(ALNUM + "/+", 40);
    while (!(/[A-Z]/.test(s) && /[a-z]/.test(s) && /\d/.test(s)));
    return s;
  };
  const github = () =>
    pick([
      () => pick(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]) + chars(ALNUM, 36),
      () => "github_pat_" + chars(ALNUM, 22) + "_" + chars(ALNUM, 59),
    ])();
  const slack = () =>
    pick([
      () => `xoxb-${chars(DIGITS, int(10, 13))}-${chars(DIGITS, int(10, 13))}-${chars(ALNUM, 24)}`,
      () => `xoxp-${chars(DIGITS, 11)}-${chars(DIGITS, 11)}-${chars(DIGITS, 13)}-${chars(HEX, 32)}`,
      () => `xoxa-${chars(DIGITS, 11)}-${chars(ALNUM, 30)}`,
    ])();
  const stripe = () => pick(["sk_live_", "rk_live_"]) + chars(ALNUM, pick([24, 34, 99]));
  const pem = () => {
    const kind = pick(["RSA ", "", "EC ", "OPENSSH ", "ENCRYPTED "]);
    const der =
      kind === "OPENSSH "
        ? Buffer.concat([Buffer.from("openssh-key-v1\0"), bytes(int(180, 400))])
        : Buffer.concat([Buffer.from([0x30, 0x82]), bytes(int(100, 600))]);
    const lines = der.toString("base64").match(/.{1,64}/g).join("\n");
    return `-----BEGIN ${kind}PRIVATE KEY-----\n${lines}\n-----END ${kind}PRIVATE KEY-----`;
  };

  const FIRST = ["john", "jane", "ada", "li", "omar", "sofia", "kwame", "yuki", "maria", "pat", "alex", "noor"];
  const LAST = ["doe", "smith", "lovelace", "wei", "haddad", "rossi", "mensah", "tanaka", "garcia", "oneill"];
  const DOMAINS = ["example.com", "example.org", "mail.example.net", "corp.example.co.uk", "example.io", "sub.example.de", "test-example.com"];
  const email = () => {
    const local = pick([
      () => `${pick(FIRST)}.${pick(LAST)}`,
      () => `${pick(FIRST)}${int(1, 999)}`,
      () => `${pick(FIRST)}_${pick(LAST)}`,
      () => `${pick(FIRST)}+${pick(["news", "billing", "test"])}`,
      () => `${pick(FIRST)[0]}${pick(LAST)}`,
      () => `${pick(FIRST).toUpperCase()}.${pick(LAST)}`,
    ])();
    const domain = pick(DOMAINS);
    return `${local}@${rnd() < 0.1 ? domain.toUpperCase() : domain}`;
  };

  // ---- per-entity specs: value maker, prose templates ({v}), near misses -------
  const specs = {
    EMAIL: {
      value: email,
      prose: [
        "Please email {v} by Friday.",
        "Reach me at <{v}> anytime",
        "Customer wrote from {v}, asking for a refund.",
        "cc: {v}; thanks",
        "Forwarded message from {v}:",
        '{"email":"{v}"}',
        "mailto:{v}",
        "7,{v},active",
        "(owner: {v})",
      ],
      near: [
        () => `${pick(FIRST)} at ${pick(LAST)} dot com`,
        () => `@${pick(FIRST)}${int(1, 99)} replied on the thread`,
        () => `${pick(FIRST)}@localhost`,
        () => `${pick(FIRST)}@${pick(LAST)}`,
        () => `${pick(FIRST)}@@${pick(DOMAINS)}`,
        () => `user@.${pick(["com", "org"])}`,
        () => `version@${int(1, 9)}.${int(0, 9)}`,
        () => `${pick(FIRST)}@${pick(LAST)}.c`,
        () => `the ${pick(["example.com", "example.org"])} domain`,
      ],
    },
    CREDIT_CARD: {
      value: () => (rnd() < 0.05 ? visa19() : card()),
      prose: ["Card on file: {v}.", "1,{v},visa,2029-04", '{"pan":"{v}"}', "paid with {v} yesterday", "PAN={v}", "Refund to card {v}, approved", "number {v} expires 04/29"],
      near: [
        () => `Order #${luhnFailing16()}`,
        () => luhnFailing16(),
        () => `tracking ${luhnFailing16()} shipped`,
        () => {
          // passes Luhn but no issuer starts with 9
          const body = "9" + chars(DIGITS, 14);
          return body + luhnCheck(body);
        },
        () => `ts ${int(1600000000000, 1800000000000)}`,
        () => `${chars(DIGITS, 4)} ${chars(DIGITS, 4)} ${chars(DIGITS, 3)}`,
        () => "0000 0000 0000 0000",
        () => `EAN ${ean13()}`,
        () => ean13(),
        () => `barcode ${ean13()} scanned`,
      ],
    },
    US_SSN: {
      value: ssnDashed,
      prose: [
        "SSN: {v}",
        "her SSN is {v}, verified",
        "social security number {v}",
        "ssn={bare}",
        "SSN {bare} on file",
        "Social Security No. {bare}",
        "taxpayer id {v}",
        "SSN#{v}",
        "5,{v},W-2",
      ],
      near: [
        () => `Invoice ${chars("123456789", 1)}${chars(DIGITS, 8)}`,
        () => `${chars("123456789", 1)}${chars(DIGITS, 8)}`,
        () => `${int(900, 999)}-${String(int(1, 99)).padStart(2, "0")}-${String(int(1, 9999)).padStart(4, "0")}`,
        () => `000-${String(int(1, 99)).padStart(2, "0")}-${String(int(1, 9999)).padStart(4, "0")}`,
        () => `666-${String(int(1, 99)).padStart(2, "0")}-${String(int(1, 9999)).padStart(4, "0")}`,
        () => `${String(int(1, 665)).padStart(3, "0")}-00-${String(int(1, 9999)).padStart(4, "0")}`,
        () => `${String(int(1, 665)).padStart(3, "0")}-${String(int(10, 99))}-0000`,
        () => `zip ${chars("123456789", 1)}${chars(DIGITS, 4)}-${chars(DIGITS, 4)}`,
        () => `part ${chars(DIGITS, 3)}-${chars(DIGITS, 3)}-${chars(DIGITS, 3)}`,
        () => `20${int(10, 29)}-${String(int(1, 12)).padStart(2, "0")}-${String(int(1, 28)).padStart(2, "0")}`,
      ],
    },
    PHONE: {
      value: () => (rnd() < 0.6 ? nanp() : intlPhone()),
      prose: ["Call me at {v} after 5pm", "phone: {v}", "mobile {v}; office closed", "Tel. {v}", "call {bare10} please", "SMS to {v}.", "tel:{v}", "2,{v},home"],
      near: [
        () => `(${int(0, 1)}${chars(DIGITS, 2)}) ${nxx()}-${chars(DIGITS, 4)}`,
        () => `${nxx()}-${chars(DIGITS, 4)}`,
        () => `Ref ${npa()}${nxx()}${chars(DIGITS, 4)}`,
        () => `20${int(10, 29)}-${String(int(1, 12)).padStart(2, "0")}-${String(int(1, 28)).padStart(2, "0")}`,
        () => `ISBN 978-${int(0, 9)}-${chars(DIGITS, 2)}-${chars(DIGITS, 6)}-${int(0, 9)}`,
        () => `+0 ${chars(DIGITS, 3)} ${chars(DIGITS, 4)}`,
        () => `${int(2, 9)}11-${nxx()}-${chars(DIGITS, 4)}`,
        () => `+${int(1, 9)} ${chars(DIGITS, 3)}`,
        () => `build 1.${int(0, 9)}.${int(0, 99)}`,
      ],
    },
    IBAN: {
      value: iban,
      prose: ["IBAN: {v}", "Please transfer to {v} today", "account {v} (EUR)", "pay {v}."],
      near: [
        () => {
          const s = ibanCompact();
          const c = (Number(s.slice(2, 4)) + int(1, 50)) % 97;
          return s.slice(0, 2) + String(c < 2 ? c + 2 : c).padStart(2, "0") + s.slice(4);
        },
        () => {
          const s = ibanCompact();
          return s.slice(0, -1) + String((Number(s.at(-1)) + int(1, 8)) % 10).replace(/./, (d) => (/\d/.test(s.at(-1)) ? d : "7"));
        },
        () => ibanCompact().slice(0, -2),
        () => `AB${chars(DIGITS, 2)}${chars(UPPER + DIGITS, 16)}`,
        () => `SKU ${chars(UPPER, 2)}${chars(DIGITS, 14)}`,
      ],
    },
    IP_ADDRESS: {
      value: () => (rnd() < 0.55 ? ipv4() : ipv6()),
      prose: ["client {v} connected", "from host {v}.", "X-Forwarded-For: {v}", "blocked {v} after 5 attempts", "[{v}]:443", "GET http://{v4}:8080/health"],
      near: [
        () => `${int(256, 999)}.${int(0, 255)}.${int(0, 255)}.${int(0, 255)}`,
        () => `${int(1, 255)}.${int(0, 255)}.${int(0, 255)}`,
        () => `${int(1, 255)}.${int(0, 255)}.${int(0, 255)}.${int(0, 255)}.${int(0, 255)}`,
        () => `0${int(1, 9)}.0${int(1, 9)}.0${int(0, 9)}.${int(100, 199)}`,
        () => `${String(int(0, 23)).padStart(2, "0")}:${String(int(0, 59)).padStart(2, "0")}:${String(int(0, 59)).padStart(2, "0")}`,
        () => Array.from({ length: 6 }, () => chars(HEX.toUpperCase(), 2)).join(":"),
        () => `v${int(1, 9)}.${int(0, 9)}.${int(0, 9)}.${int(0, 9)}`,
        () => `upgraded to version ${int(1, 20)}.${int(0, 9)}.${int(0, 9)}.${int(0, 99)}`,
        () => `release ${int(1, 20)}.${int(0, 9)}.${int(0, 9)}.${int(0, 99)} notes`,
        () => "std::vector<int> v;",
        () => `${h4()}:${h4()}:${h4()}`,
      ],
    },
    JWT: {
      value: jwt,
      prose: ["Authorization: Bearer {v}", "token={v}&next=/home", "session cookie {v} expired", '{"id_token":"{v}"}'],
      near: [
        () => `${b64url({ alg: "HS256" })}.not-json-${chars(ALNUM, 6)}.${chars(ALNUM, 20)}`,
        () => `${b64url({ typ: "JWT" })}.${b64url({ sub: "1" })}.${chars(ALNUM, 30)}`,
        () => `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url({ sub: "1" })}`,
        () => `eyJ${chars(ALNUM, 20)}.${chars(ALNUM, 10)}.${chars(ALNUM, 20)}`,
        () => `www.${pick(LAST)}.example.co.uk`,
        () => `${pick(LAST)}.${pick(FIRST)}.${pick(LAST)}`,
      ],
    },
    AWS_ACCESS_KEY: {
      value: awsId,
      prose: ["aws_access_key_id = {v}", "AWS_ACCESS_KEY_ID={v}", "key {v} was rotated", '"AccessKeyId": "{v}"'],
      near: [
        () => "AKIA" + chars(AWS32, 15),
        () => ("akia" + chars(AWS32, 16)).toLowerCase(),
        () => "AKIB" + chars(AWS32, 16),
        () => "AKIA" + chars(AWS32, 17),
        () => "XAKIA" + chars(AWS32, 16),
      ],
    },
    AWS_SECRET_KEY: {
      // always with context: a bare 40-char string is not distinguishable from other data
      value: awsSecret,
      contextOnly: true,
      prose: [
        "aws_secret_access_key = {v}",
        "AWS_SECRET_ACCESS_KEY={v}",
        'export AWS_SECRET_ACCESS_KEY="{v}"',
        '"SecretAccessKey": "{v}"',
        "aws secret: {v}",
        "secret access key {v}",
      ],
      near: [
        () => `commit ${chars(HEX, 40)} secret fix`,
        () => `aws_secret_access_key = ${chars(HEX, 40)}`,
        () => `checksum ${awsSecret()}`,
        () => `aws_secret_access_key = ${chars(ALNUM, 39)}`,
        () => `aws_secret_access_key = ${chars(ALNUM, 41)}`,
        () => `sha1 ${chars(HEX.toUpperCase(), 40)}`,
      ],
    },
    GITHUB_TOKEN: {
      value: github,
      prose: ["GITHUB_TOKEN={v}", "git clone https://{v}@github.com/org/repo", "token: {v}", "Authorization: token {v}"],
      near: [
        () => "ghp_" + chars(ALNUM, 35),
        () => "ghx_" + chars(ALNUM, 36),
        () => "ghp-" + chars(ALNUM, 36),
        () => "github_pat_" + chars(ALNUM, 20),
        () => `${pick(FIRST)}_gh_pages`,
      ],
    },
    SLACK_TOKEN: {
      value: slack,
      prose: ["SLACK_BOT_TOKEN={v}", "slack token {v} leaked", "Bearer {v}"],
      near: [
        () => `xoxb-${chars(DIGITS, 4)}`,
        () => `xoxz-${chars(DIGITS, 11)}-${chars(DIGITS, 11)}-${chars(ALNUM, 24)}`,
        () => `xox-${chars(ALNUM, 30)}`,
        () => `box-${chars(DIGITS, 11)}-${chars(ALNUM, 24)}`,
      ],
    },
    STRIPE_KEY: {
      value: stripe,
      prose: ["STRIPE_SECRET_KEY={v}", "stripe.api_key = '{v}'", "key {v} revoked"],
      near: [
        () => "pk_live_" + chars(ALNUM, 24),
        () => "sk_test_" + chars(ALNUM, 24),
        () => "sk_live_" + chars(ALNUM, 10),
        () => "sk_liv_" + chars(ALNUM, 24),
      ],
    },
    PRIVATE_KEY: {
      value: pem,
      prose: ["key:\n{v}\n", "id_rsa contents: {v} (rotate!)", "-- paste --\n{v}", '{"type":"service_account","private_key":"{vjson}\\n"}'],
      near: [
        () => `-----BEGIN PUBLIC KEY-----\n${bytes(200).toString("base64").match(/.{1,64}/g).join("\n")}\n-----END PUBLIC KEY-----`,
        () => `-----BEGIN CERTIFICATE-----\n${bytes(300).toString("base64").match(/.{1,64}/g).join("\n")}\n-----END CERTIFICATE-----`,
        () => "BEGIN PRIVATE KEY (redacted in docs)",
        () => "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----",
        () => "see -----BEGIN RSA PRIVATE KEY----- in the runbook",
      ],
    },
  };

  const items = [];
  let id = 0;
  const push = (entity, kind, text, labels) => items.push({ id: id++, entity, kind, text, labels });
  const fill = (template, entity, v) => {
    const at = template.indexOf("{v}");
    return { text: template.replace("{v}", v), labels: [{ entity, start: at, end: at + v.length }] };
  };

  for (const [entity, spec] of Object.entries(specs)) {
    if (!spec.contextOnly) {
      for (let i = 0; i < perEntity.positive; i++) {
        const v = spec.value();
        push(entity, "positive", v, [{ entity, start: 0, end: v.length }]);
      }
    }
    const proseCount = spec.contextOnly ? perEntity.positive + perEntity.prose : perEntity.prose;
    for (let i = 0; i < proseCount; i++) {
      let template = spec.prose[i % spec.prose.length];
      let v;
      if (template.includes("{bare}")) {
        v = ssnParts().join("");
        template = template.replace("{bare}", "{v}");
      } else if (template.includes("{vjson}")) {
        v = spec.value().replace(/\n/g, "\\n");
        template = template.replace("{vjson}", "{v}");
      } else if (template.includes("{v4}")) {
        v = ipv4();
        template = template.replace("{v4}", "{v}");
      } else if (template.includes("{bare10}")) {
        v = npa() + nxx() + chars(DIGITS, 4);
        template = template.replace("{bare10}", "{v}");
      } else v = spec.value();
      const { text, labels } = fill(template, entity, v);
      push(entity, "prose", text, labels);
    }
    for (let i = 0; i < perEntity.nearMiss; i++) push(entity, "near_miss", spec.near[i % spec.near.length](), []);
  }

  // Ordinary values with no entity at all: whatever a recognizer finds here is a false positive.
  const uuid = () => `${chars(HEX, 8)}-${chars(HEX, 4)}-4${chars(HEX, 3)}-${pick(["8", "9", "a", "b"])}${chars(HEX, 3)}-${chars(HEX, 12)}`;
  const clean = [
    () => uuid(),
    () => `20${int(10, 29)}-${String(int(1, 12)).padStart(2, "0")}-${String(int(1, 28)).padStart(2, "0")}T${String(int(0, 23)).padStart(2, "0")}:${String(int(0, 59)).padStart(2, "0")}:${String(int(0, 59)).padStart(2, "0")}.${chars(DIGITS, 3)}Z`,
    () => `$${int(1, 999)},${chars(DIGITS, 3)},${chars(DIGITS, 3)}.${chars(DIGITS, 2)}`,
    () => `${int(0, 9)}.${int(0, 40)}.${int(0, 99)}-rc.${int(1, 9)}`,
    () => `/var/lib/${pick(LAST)}/${chars(LOWER, 6)}/${int(1000, 99999)}.log`,
    () => `SELECT id, total FROM orders WHERE id = ${int(1, 9_999_999)} LIMIT ${int(1, 500)}`,
    () => `sha256:${chars(HEX, 64)}`,
    () => bytes(int(20, 60)).toString("base64"),
    () => `https://www.example.com/${pick(LAST)}/${chars(LOWER + DIGITS, 10)}?page=${int(1, 99)}`,
    () => `Order ${int(100000, 999999)} shipped ${int(1, 30)} items, total ${int(10, 9999)}.${chars(DIGITS, 2)} EUR`,
    () => `${pick(FIRST)} ${pick(LAST)} moved to ${pick(["Berlin", "Lisbon", "Austin", "Osaka"])} in ${int(1990, 2025)}`,
    () => `latency p99=${int(1, 999)}ms p50=${int(1, 99)}ms rps=${int(100, 99999)}`,
    () => `pid ${int(100, 99999)} exited with status ${int(0, 255)} after ${int(1, 86400)}s`,
    () => `commit ${chars(HEX, 40)}`,
    () => `tel. extension ${int(100, 9999)}`,
  ];
  for (let i = 0; i < 300; i++) push("NONE", "near_miss", clean[i % clean.length](), []);

  // Mixed records: several entities in one free-text note, like a support ticket.
  for (let i = 0; i < 60; i++) {
    const e = email();
    const p = nanp();
    const c = card();
    const parts = [`Ticket ${int(1000, 9999)}: customer `, e, " called from ", p, ", card ", c, " declined."];
    const ents = [null, "EMAIL", null, "PHONE", null, "CREDIT_CARD", null];
    let text = "";
    const labels = [];
    parts.forEach((s, k) => {
      if (ents[k]) labels.push({ entity: ents[k], start: text.length, end: text.length + s.length });
      text += s;
    });
    push("MIXED", "prose", text, labels);
  }
  return items;
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const args = process.argv.slice(2);
  const seedAt = args.indexOf("--seed");
  const seed = seedAt >= 0 ? Number(args.splice(seedAt, 2)[1]) : undefined;
  const items = generateCorpus(seed === undefined ? {} : { seed });
  const out = items.map((x) => JSON.stringify(x)).join("\n") + "\n";
  if (args[0]) {
    writeFileSync(args[0], out);
    process.stderr.write(`gen-corpus: ${items.length} items -> ${args[0]}\n`);
  } else process.stdout.write(out);
}
