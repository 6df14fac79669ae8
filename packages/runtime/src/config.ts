// Gatehouse's one configuration file (YAML), with defaults for the local stack and
// environment overrides. Relative paths resolve against the file's directory.
import { readFileSync, existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse } from "yaml";

export interface IssuerConfig {
  /** Expected `iss`. */
  issuer: string;
  /** Expected `aud` (one of). */
  audience: string | string[];
  /** JWKS location; defaults to the issuer's discovery document. */
  jwksUri?: string;
  /** Claim holding the groups (default "groups"). */
  groupsClaim?: string;
  /** Claim holding the identity kind (default: "agent"). */
  kindClaim?: string;
  /** Allowed JWS algorithms (default RS256, ES256, EdDSA, PS256). */
  algorithms?: string[];
}

export interface UpstreamConfig {
  host: string;
  port: number;
  database: string;
  user: string;
  /** Name of the environment variable holding the upstream password. */
  passwordEnv?: string;
  /** "disable" | "prefer" | "require" | "verify-ca" | "verify-full" (default "prefer"). */
  sslmode?: string;
  /** CA bundle (PEM file) for verify-ca / verify-full. */
  sslrootcert?: string;
}

export interface ConnectionConfig {
  protocol: string;
  upstream: UpstreamConfig;
  tags: Record<string, string>;
}

export interface ListenerConfig {
  host: string;
  port: number;
  /** TLS certificate and key (PEM files); a dev certificate is generated when absent. */
  tls?: { cert?: string; key?: string; required?: boolean };
  [option: string]: unknown;
}

export interface GatehouseConfig {
  /** Where this file lives (paths resolve against it). */
  baseDir: string;
  /** Runtime state: dev certificates, embedded ClickHouse, NATS store, IdP keys. */
  dataDir: string;
  nats: { url: string };
  listeners: Record<string, ListenerConfig>;
  identity: { issuers: IssuerConfig[]; clockSkewSeconds: number };
  connections: Record<string, ConnectionConfig>;
  /** Directory of *.cedar files. */
  policies: string;
  policy: { deadlineMs: number; cacheSize: number; grpcPort: number };
  audit: {
    stream: string;
    /** How long a listener waits for JetStream to ack a command's event. */
    ackTimeoutMs: number;
    /** Embedded ClickHouse (chDB) directory, used when clickhouseUrl is empty. */
    chdbPath: string;
    clickhouseUrl?: string;
    clickhouseDatabase: string;
    batchSize: number;
    grpcPort: number;
    /** Ed25519 private key (PEM) that signs checkpoints; $GATEHOUSE_AUDIT_SIGNING_KEY wins. */
    signingKey: string;
    /** Seal a checkpoint every this many events... */
    checkpointEvents: number;
    /** ...or after this long with events not yet sealed. */
    checkpointIntervalMs: number;
    /** JetStream stream holding the signed checkpoints. */
    checkpointStream: string;
    /** Most events per insert; without a backlog the writer collects for flushMs. */
    flushEvents: number;
    flushMs: number;
    /** Lease of the single active (chaining) writer; a crashed writer's successor waits at most this long. */
    writerLockTtlMs: number;
  };
  /** Session recordings (docs/recordings.md). Every session is recorded; there is no off switch. */
  recordings: {
    /** Bytes of one session's recording before it ends with a `truncated` marker; 0 = unlimited. */
    maxBytesPerSession: number;
    /** Bytes one session's writer holds while JetStream does not acknowledge; past it the recording is truncated (marked). */
    maxBacklogBytesPerSession: number;
    /** Data rows of one result set kept in a SQL recording (0 = all); the rest is counted in a `rows_omitted` marker. */
    maxRowsPerResult: number;
  };
  api: { host: string; port: number };
  idp: { enabled: boolean; host: string; port: number; issuer: string; audience: string };
  approvals: ApprovalsConfig;
}

export interface WebhookConfig {
  url: string;
  /** "json" (generic payload) or "slack" (Slack-compatible incoming webhook). */
  format: "json" | "slack";
  /** Attempts after the first one (default 5), waiting backoffMs, 2x, 4x... (capped at 30 s). */
  retries: number;
  backoffMs: number;
}

export interface ApprovalsConfig {
  /** JetStream KV bucket holding tickets and grants. */
  bucket: string;
  /** Base URL of the web console, put into notices and notifications. */
  consoleUrl: string;
  /** OIDC issuer and public client the console logs approvers in with (authorization code + PKCE). */
  oidc: { issuer: string; clientId: string; scopes: string };
  /** Longest hold a listener accepts, whatever a policy says (ms). */
  maxHoldMs: number;
  /** Per-call deadline of approval RPCs (ms). */
  deadlineMs: number;
  /** gRPC port of the approval service (127.0.0.1). */
  grpcPort: number;
  /** Longest standing grant an approver may open (minutes). */
  maxGrantMinutes: number;
  /** Groups whose members may create and revoke standing grants directly (approving a ticket with a window needs only ticket approval rights). */
  grantorGroups: string[];
  webhooks: WebhookConfig[];
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name}=${v} is not a port number`);
  return n;
}

/** Find the config file: explicit path, GATEHOUSE_CONFIG, or ./gatehouse.yaml. */
export function configPath(explicit?: string): string | undefined {
  const p = explicit ?? process.env.GATEHOUSE_CONFIG;
  if (p) return resolve(p);
  const local = resolve("gatehouse.yaml");
  return existsSync(local) ? local : undefined;
}

export function loadConfig(path = configPath()): GatehouseConfig {
  let raw: DeepPartial<GatehouseConfig> & Record<string, unknown> = {};
  let baseDir = process.cwd();
  if (path) {
    if (!existsSync(path)) throw new Error(`configuration file ${path} does not exist (set --config or GATEHOUSE_CONFIG)`);
    try {
      raw = (parse(readFileSync(path, "utf8")) ?? {}) as typeof raw;
    } catch (e) {
      throw new Error(`configuration file ${path} is not valid YAML: ${(e as Error).message}`);
    }
    baseDir = dirname(path);
  }
  return resolveConfig(raw, baseDir);
}

export function resolveConfig(raw: DeepPartial<GatehouseConfig> & Record<string, unknown>, baseDir: string): GatehouseConfig {
  const at = (p: string) => resolve(baseDir, p);
  const dataDir = at(process.env.GATEHOUSE_DATA_DIR ?? raw.dataDir ?? ".gatehouse");
  const idpPort = envInt("GATEHOUSE_IDP_PORT") ?? raw.idp?.port ?? 15081;
  const idpHost = raw.idp?.host ?? "127.0.0.1";
  const issuer = process.env.GATEHOUSE_IDP_ISSUER ?? raw.idp?.issuer ?? `http://${idpHost}:${idpPort}`;
  const listeners: Record<string, ListenerConfig> = {};
  for (const [name, l] of Object.entries(raw.listeners ?? { postgres: {} })) {
    // Default ports: 15432 for postgres (and unknown protocols), 15022 for ssh.
    listeners[name] = { ...(l as object), host: l?.host ?? "127.0.0.1", port: l?.port ?? (name === "ssh" ? 15022 : 15432) } as ListenerConfig;
  }
  if (listeners.postgres) listeners.postgres.port = envInt("GATEHOUSE_PG_PORT") ?? listeners.postgres.port;
  const connections: Record<string, ConnectionConfig> = {};
  for (const [name, c] of Object.entries(raw.connections ?? {})) {
    if (!c?.upstream?.host || !c.upstream.port) throw new Error(`connection ${name}: upstream.host and upstream.port are required`);
    connections[name] = {
      protocol: c.protocol ?? "postgres",
      upstream: { ...(c.upstream as UpstreamConfig), database: c.upstream.database ?? name, user: c.upstream.user ?? "postgres" },
      tags: { ...(c.tags as Record<string, string> | undefined) },
    };
  }
  const issuers = (raw.identity?.issuers as IssuerConfig[] | undefined) ?? [{ issuer, audience: raw.idp?.audience ?? "gatehouse", groupsClaim: "groups" }];
  return {
    baseDir,
    dataDir,
    nats: { url: process.env.NATS_URL ?? raw.nats?.url ?? "nats://127.0.0.1:4222" },
    listeners,
    identity: { issuers, clockSkewSeconds: raw.identity?.clockSkewSeconds ?? 30 },
    connections,
    policies: at((raw.policies as string | undefined) ?? "policies"),
    policy: {
      deadlineMs: raw.policy?.deadlineMs ?? 2000,
      cacheSize: raw.policy?.cacheSize ?? 10000,
      grpcPort: envInt("GATEHOUSE_POLICY_GRPC_PORT") ?? raw.policy?.grpcPort ?? 15091,
    },
    audit: {
      stream: raw.audit?.stream ?? "GATEHOUSE_AUDIT",
      ackTimeoutMs: raw.audit?.ackTimeoutMs ?? 2000,
      chdbPath: at(raw.audit?.chdbPath ?? `${dataDir}/clickhouse`),
      clickhouseUrl: process.env.CLICKHOUSE_URL ?? raw.audit?.clickhouseUrl,
      clickhouseDatabase: raw.audit?.clickhouseDatabase ?? "gatehouse",
      batchSize: raw.audit?.batchSize ?? 5000,
      grpcPort: envInt("GATEHOUSE_AUDIT_GRPC_PORT") ?? raw.audit?.grpcPort ?? 15092,
      signingKey: at(raw.audit?.signingKey ?? `${dataDir}/audit/signing-key.pem`),
      checkpointEvents: raw.audit?.checkpointEvents ?? 10_000,
      checkpointIntervalMs: raw.audit?.checkpointIntervalMs ?? 10_000,
      checkpointStream: raw.audit?.checkpointStream ?? "GATEHOUSE_AUDIT_CHECKPOINTS",
      flushEvents: raw.audit?.flushEvents ?? 30_000,
      flushMs: raw.audit?.flushMs ?? 1000,
      writerLockTtlMs: raw.audit?.writerLockTtlMs ?? 10_000,
    },
    recordings: recordingsConfig(raw.recordings),
    api: { host: raw.api?.host ?? "127.0.0.1", port: envInt("GATEHOUSE_API_PORT") ?? raw.api?.port ?? 15080 },
    approvals: approvalsConfig(raw, `http://${raw.api?.host ?? "127.0.0.1"}:${envInt("GATEHOUSE_API_PORT") ?? raw.api?.port ?? 15080}`, issuer),
    idp: {
      enabled: raw.idp?.enabled ?? true,
      host: idpHost,
      port: idpPort,
      issuer,
      audience: raw.idp?.audience ?? "gatehouse",
    },
  };
}

function rowsLimit(v: unknown): number {
  if (v === undefined) return 1000;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new Error(`recordings.maxRowsPerResult must be a whole number of rows (0 = every row), got ${JSON.stringify(v)}`);
  return v;
}

function recordingsConfig(raw: DeepPartial<GatehouseConfig["recordings"]> & Record<string, unknown> | undefined): GatehouseConfig["recordings"] {
  if (raw && "enabled" in raw) throw new Error("recordings.enabled is not a setting: every session is recorded; limit the size with recordings.maxBytesPerSession");
  const bytes = (key: "maxBytesPerSession" | "maxBacklogBytesPerSession", def: number, min: number, unlimited: boolean) => {
    const v = raw?.[key] ?? def;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || (v === 0 && !unlimited) || (v > 0 && v < min)) {
      throw new Error(`recordings.${key} must be a whole number of bytes (${unlimited ? "0 = unlimited, else " : ""}at least ${min}), got ${JSON.stringify(v)}`);
    }
    return v;
  };
  return {
    maxBytesPerSession: bytes("maxBytesPerSession", 64 * 1024 * 1024, 256, true),
    // Memory while JetStream is down must stay bounded: no "unlimited" here.
    maxBacklogBytesPerSession: bytes("maxBacklogBytesPerSession", 16 * 1024 * 1024, 64 * 1024, false),
    maxRowsPerResult: rowsLimit(raw?.maxRowsPerResult),
  };
}

function approvalsConfig(raw: Record<string, unknown>, apiUrl: string, idpIssuer: string): ApprovalsConfig {
  const a = (raw.approvals ?? {}) as Partial<Omit<ApprovalsConfig, "webhooks" | "oidc">> & { webhooks?: Array<Partial<WebhookConfig>>; oidc?: Partial<ApprovalsConfig["oidc"]> };
  const webhooks = (a.webhooks ?? []).map((w, i) => {
    if (!w?.url || !/^https?:\/\//.test(w.url)) throw new Error(`approvals.webhooks[${i}].url must be an http(s) URL`);
    const format = w.format ?? "json";
    if (format !== "json" && format !== "slack") throw new Error(`approvals.webhooks[${i}].format must be "json" or "slack", got "${String(format)}"`);
    return { url: w.url, format, retries: w.retries ?? 5, backoffMs: w.backoffMs ?? 500 };
  });
  return {
    bucket: a.bucket ?? "gatehouse_approvals",
    consoleUrl: (process.env.GATEHOUSE_CONSOLE_URL ?? a.consoleUrl ?? apiUrl).replace(/\/+$/, ""),
    oidc: { issuer: a.oidc?.issuer ?? idpIssuer, clientId: a.oidc?.clientId ?? "gatehouse-console", scopes: a.oidc?.scopes ?? "openid profile groups" },
    maxHoldMs: a.maxHoldMs ?? 24 * 3_600_000,
    deadlineMs: a.deadlineMs ?? 2000,
    grpcPort: envInt("GATEHOUSE_APPROVAL_GRPC_PORT") ?? a.grpcPort ?? 15093,
    maxGrantMinutes: a.maxGrantMinutes ?? 8 * 60,
    grantorGroups: a.grantorGroups ?? ["approvers"],
    webhooks,
  };
}
