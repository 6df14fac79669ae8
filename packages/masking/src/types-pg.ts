import type { EntityType, MaskKey, Strategy } from "./types.js";
import { applyStrategy, hmacDigest, redactLabel } from "./strategy.js";

/** PostgreSQL type OIDs the masking layer cares about. */
export const PgType = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  xml: 142,
  cidr: 650,
  float4: 700,
  float8: 701,
  unknown: 705,
  money: 790,
  macaddr: 829,
  inet: 869,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
  citext: -1, // extension type, OID varies per database; never matches
} as const;

const TEXT_OIDS = new Set<number>([PgType.text, PgType.varchar, PgType.bpchar, PgType.name, PgType.unknown, PgType.xml]);

/** True when any string (e.g. "[REDACTED:EMAIL]") is a valid text-format value of the type. */
export function typeHoldsText(typeOid: number): boolean {
  return TEXT_OIDS.has(typeOid);
}

function digestInt(key: MaskKey, entity: EntityType, value: string, max: bigint): bigint {
  const d = hmacDigest(key, entity, value);
  return d.readBigUInt64BE(0) % max;
}

/**
 * A text-format replacement valid for `typeOid`, derived from the HMAC of the value so
 * it is stable (equal inputs give equal outputs, joins still work) but reveals nothing.
 * Returns null (SQL NULL) for types where no meaningful stand-in exists (bool, unknown types).
 */
export function typePreservingReplacement(typeOid: number, entity: EntityType, value: string, key: MaskKey): string | null {
  switch (typeOid) {
    case PgType.text:
    case PgType.varchar:
    case PgType.bpchar:
    case PgType.name:
    case PgType.unknown:
    case PgType.xml:
      return redactLabel(entity);
    case PgType.char:
      return "*";
    case PgType.int2:
      return String(digestInt(key, entity, value, 32768n));
    case PgType.int4:
    case PgType.oid:
      return String(digestInt(key, entity, value, 2147483648n));
    case PgType.int8:
      return String(digestInt(key, entity, value, 9223372036854775808n));
    case PgType.numeric:
    case PgType.float4:
    case PgType.float8:
      return String(digestInt(key, entity, value, 1000000n));
    case PgType.money:
      return "0.00";
    case PgType.date: {
      // 1900-01-01 .. ~2173: always a valid date
      const days = Number(digestInt(key, entity, value, 100000n));
      return new Date(Date.UTC(1900, 0, 1) + days * 86400000).toISOString().slice(0, 10);
    }
    case PgType.timestamp:
    case PgType.timestamptz: {
      const days = Number(digestInt(key, entity, value, 100000n));
      const iso = new Date(Date.UTC(1900, 0, 1) + days * 86400000).toISOString().slice(0, 10);
      return typeOid === PgType.timestamptz ? `${iso} 00:00:00+00` : `${iso} 00:00:00`;
    }
    case PgType.time:
      return "00:00:00";
    case PgType.timetz:
      return "00:00:00+00";
    case PgType.interval:
      return "00:00:00";
    case PgType.uuid: {
      const h = hmacDigest(key, entity, value).subarray(0, 16);
      h[6] = (h[6]! & 0x0f) | 0x80; // version 8: custom
      h[8] = (h[8]! & 0x3f) | 0x80; // RFC 4122 variant
      const x = h.toString("hex");
      return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
    }
    case PgType.inet:
    case PgType.cidr: {
      // 198.18.0.0/15 is reserved for benchmarking; never a real host.
      const n = Number(digestInt(key, entity, value, 131072n));
      return `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}${typeOid === PgType.cidr ? "/32" : ""}`;
    }
    case PgType.macaddr:
      return "00:00:00:00:00:00";
    case PgType.bytea:
      return "\\x" + hmacDigest(key, entity, value).subarray(0, 16).toString("hex");
    case PgType.json:
    case PgType.jsonb:
      return JSON.stringify(redactLabel(entity));
    default:
      return null;
  }
}

/**
 * A constant text-format value valid for `typeOid` that reveals nothing, not even
 * whether two values were equal (what "redact" means for a non-text column).
 * Returns null (SQL NULL) where no neutral value exists.
 */
export function typePreservingConstant(typeOid: number, entity: EntityType): string | null {
  switch (typeOid) {
    case PgType.int2:
    case PgType.int4:
    case PgType.int8:
    case PgType.oid:
    case PgType.numeric:
    case PgType.float4:
    case PgType.float8:
      return "0";
    case PgType.money:
      return "0.00";
    case PgType.date:
      return "1970-01-01";
    case PgType.timestamp:
      return "1970-01-01 00:00:00";
    case PgType.timestamptz:
      return "1970-01-01 00:00:00+00";
    case PgType.uuid:
      return "00000000-0000-0000-0000-000000000000";
    case PgType.inet:
      return "0.0.0.0";
    case PgType.cidr:
      return "0.0.0.0/32";
    case PgType.bytea:
      return "\\x";
    default:
      return typePreservingReplacement(typeOid, entity, "", { id: "", secret: Buffer.alloc(0) });
  }
}

/**
 * Mask one cell value (text format) of a column of type `typeOid`: the strategy when the
 * type holds text, else a type-preserving stand-in: HMAC-derived for "hash" (stable),
 * a constant for "redact"/"partial"; "null" gives NULL and "clear" the value.
 */
export function maskCell(value: string, typeOid: number, entity: EntityType, s: Strategy, key: MaskKey): string | null {
  if (s.kind === "clear") return value;
  if (s.kind === "null") return null;
  if (typeHoldsText(typeOid)) return applyStrategy(value, entity, s, key);
  if (typeOid === PgType.json || typeOid === PgType.jsonb) {
    const v = applyStrategy(value, entity, s, key);
    return v === null ? null : JSON.stringify(v);
  }
  // hash keeps equal values equal (joins, GROUP BY); redact and partial reveal nothing
  return s.kind === "hash" ? typePreservingReplacement(typeOid, entity, value, key) : typePreservingConstant(typeOid, entity);
}
