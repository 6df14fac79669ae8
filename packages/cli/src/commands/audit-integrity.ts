// gatehouse audit verify | prove | check-proof | export-checkpoints | keys:
// the auditor's side of the tamper-evident trail (packages/audit-integrity).
//
// verify and prove read events through the audit service (gRPC on
// audit.grpcPort, large pages; NATS when gRPC is unreachable) and checkpoints
// straight from the JetStream checkpoint stream, which ClickHouse
// administrators cannot rewrite. check-proof needs nothing but the file and a key.
import { connectCli } from "../bus.js";
import { readFileSync, writeFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import type { NatsConnection } from "@nats-io/transport-node";
import { AuditServiceService, QueryResponse, type AuditEvent } from "@gatehouse/proto";
import { natsClient, type GatehouseConfig } from "@gatehouse/runtime";
import {
  checkProof,
  makeProof,
  parsePosition,
  pinnedKeys,
  readCheckpoints,
  verifyDeployment,
  type InclusionProof,
  type QueryFn,
} from "@gatehouse/audit-integrity";

export const INTEGRITY_USAGE = `
    gatehouse audit verify [--from POS|TIME] [--to POS|TIME] [--public-key KEY]... [--json]
        Check the whole trail (or the checkpoints covering --from..--to): every
        checkpoint's Ed25519 signature, continuity between checkpoints, that the
        ClickHouse copy of each checkpoint equals the JetStream copy, the hash
        chain and every stored column of every event against the event's own
        bytes, each checkpoint's Merkle root, rows outside the chain, and that
        the newest events in the JetStream audit stream are all in the store (a
        cut tail is detected). POS is a chain position, TIME an ISO date-time.
        --public-key (PEM, base64 SPKI, or a file; repeat for rotated keys) pins
        the keys; without it the keys published with the checkpoints are used.
        Exits 1 and names the first broken event and what is wrong with it.

    gatehouse audit prove EVENT_ID [--out FILE]
        Print (or write) an inclusion proof for one event: its bytes, the signed
        checkpoint covering it and the RFC 6962 audit path.

    gatehouse audit check-proof FILE --public-key KEY
        Verify a proof offline with nothing but the signer's public key.

    gatehouse audit export-checkpoints [--out FILE]
        Every signed checkpoint from JetStream as JSON lines (with key ids and
        public keys).

    gatehouse audit keys
        Key ids and public keys that signed checkpoints (for --public-key).
`;

/** Query through gRPC with big messages (verification pages are large). */
function grpcQuery(address: string): { query: QueryFn; close(): void } {
  const Ctor = grpc.makeGenericClientConstructor(AuditServiceService as unknown as grpc.ServiceDefinition, "AuditService");
  const raw = new Ctor(address, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": 1024 * 1024 * 1024 }) as unknown as grpc.Client & {
    query(req: unknown, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: QueryResponse) => void): void;
  };
  return {
    query: (sql) =>
      new Promise((resolve, reject) =>
        raw.query({ sql, maxRows: 100_000 }, new grpc.Metadata(), { deadline: new Date(Date.now() + 300_000) }, (err, res) =>
          err ? reject(new Error(err.details || err.message)) : resolve(res.rows.map((l) => JSON.parse(l) as Record<string, unknown>)),
        ),
      ),
    close: () => raw.close(),
  };
}

export interface AuditConnection {
  nc: NatsConnection;
  query: QueryFn;
  /** Chain positions per page that the transport carries. */
  pageSize: number;
  close(): Promise<void>;
}

/** NATS plus the audit store's Query: gRPC (large pages) when it answers, else NATS. */
export async function openAuditConnection(config: GatehouseConfig, cmd: string): Promise<AuditConnection> {
  let nc: NatsConnection;
  try {
    nc = await connectCli(config.nats.url);
  } catch (e) {
    throw new Error(`${(e as Error).message} (${cmd})`);
  }
  const g = grpcQuery(`127.0.0.1:${config.audit.grpcPort}`);
  try {
    await g.query("SELECT 1 AS one");
    return { nc, query: g.query, pageSize: 20_000, close: async () => (g.close(), await nc.close()) };
  } catch {
    g.close();
    // One NATS reply is at most max_payload (1 MiB by default): small pages.
    const client = natsClient(nc, AuditServiceService, { timeoutMs: 60_000 });
    const query: QueryFn = async (sql) => (await client.query({ sql, maxRows: 100_000, params: {} })).rows.map((l) => JSON.parse(l) as Record<string, unknown>);
    return { nc, query, pageSize: 300, close: () => nc.close() };
  }
}

/** Messages the audit service has not written yet (its Stats RPC). */
export function writerPending(nc: NatsConnection): () => Promise<number> {
  const client = natsClient(nc, AuditServiceService, { timeoutMs: 5000 });
  return async () => (await client.stats({})).pending;
}

export async function runVerify(config: GatehouseConfig, values: Record<string, unknown>, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const keys = pinnedKeys((values["public-key"] as string[] | undefined) ?? []);
  const fromArg = parsePosition(values.from as string | undefined, "--from");
  const toArg = parsePosition(values.to as string | undefined, "--to");
  const conn = await openAuditConnection(config, "gatehouse audit verify");
  try {
    const { report, pendingAtStart } = await verifyDeployment({
      nc: conn.nc,
      query: conn.query,
      database: config.audit.clickhouseDatabase,
      stream: config.audit.stream,
      checkpointStream: config.audit.checkpointStream,
      trustedKeys: keys,
      from: fromArg,
      to: toArg,
      pageSize: conn.pageSize,
      pending: writerPending(conn.nc),
    });
    if (pendingAtStart > 0) err.write(`gatehouse audit verify: the audit service still has ${pendingAtStart} messages to write; the newest events will be reported as missing\n`);
    if (values.json) {
      out.write(JSON.stringify(report) + "\n");
    } else {
      out.write(
        `checked ${report.eventsChecked} events and ${report.checkpointsChecked} checkpoints (chain positions 1-${Math.max(report.lastStoredPos, report.lastCheckpointPos)}, sealed up to ${report.lastCheckpointPos}); ` +
          `keys: ${report.keyIds.join(", ") || "none"}${keys ? " (pinned)" : " (as published with the checkpoints; pin them with --public-key)"}\n`,
      );
      if (report.ok) out.write("OK: the audit trail is complete and unaltered\n");
      else {
        const first = report.problems[0]!;
        out.write(`FAILED: first problem${first.pos ? ` at chain position ${first.pos}` : ""}${first.eventId ? `, event ${first.eventId}` : ""}: ${first.what}\n`);
        for (const p of report.problems.slice(1)) out.write(`  also: ${p.what}\n`);
      }
    }
    return report.ok ? 0 : 1;
  } finally {
    await conn.close();
  }
}

export async function runProve(config: GatehouseConfig, eventId: string, values: Record<string, unknown>, out: NodeJS.WritableStream): Promise<number> {
  const conn = await openAuditConnection(config, "gatehouse audit prove");
  try {
    const checkpoints = await readCheckpoints(conn.nc, config.audit.checkpointStream);
    const proof = await makeProof(conn.query, eventId, checkpoints, config.audit.clickhouseDatabase);
    const text = JSON.stringify(proof, null, 2) + "\n";
    if (typeof values.out === "string") writeFileSync(values.out, text);
    else out.write(text);
    return 0;
  } finally {
    await conn.close();
  }
}

function describe(ev: AuditEvent | undefined): string {
  if (!ev) return "";
  const b = ev.body;
  const what = b?.$case === "command" ? `command ${JSON.stringify(b.command.command?.text ?? "")} (${b.command.decision ? "decision recorded" : "no decision"})` : (b?.$case ?? "event");
  return `${new Date(ev.timeUnixMicros / 1000).toISOString()} ${ev.identity?.subject ?? "?"} on ${ev.connection || "?"}: ${what}`;
}

export function runCheckProof(file: string, publicKey: string, out: NodeJS.WritableStream): number {
  let proof: InclusionProof;
  try {
    proof = JSON.parse(readFileSync(file, "utf8")) as InclusionProof;
  } catch (e) {
    throw new Error(`cannot read proof ${file}: ${(e as Error).message}`);
  }
  const r = checkProof(proof, publicKey);
  if (r.ok) {
    const cp = proof.checkpoint;
    out.write(`OK: event ${proof.eventId} is chain position ${proof.chainPos}, included in checkpoint ${cp.fromPos}-${cp.toPos} signed by key ${cp.keyId} at ${cp.time}\n`);
    const d = describe(r.event);
    if (d) out.write(`    ${d}\n`);
    return 0;
  }
  out.write(`FAILED: ${r.problems.join("\n        ")}\n`);
  return 1;
}

export async function runExportCheckpoints(config: GatehouseConfig, values: Record<string, unknown>, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const nc = await connectCli(config.nats.url);
  try {
    const cps = await readCheckpoints(nc, config.audit.checkpointStream);
    const text = cps.map((c) => JSON.stringify(c)).join("\n") + (cps.length ? "\n" : "");
    if (typeof values.out === "string") {
      writeFileSync(values.out, text);
      err.write(`wrote ${cps.length} checkpoints to ${values.out}\n`);
    } else out.write(text);
    return 0;
  } finally {
    await nc.close();
  }
}

export async function runKeys(config: GatehouseConfig, out: NodeJS.WritableStream): Promise<number> {
  const nc = await connectCli(config.nats.url);
  try {
    const seen = new Map<string, { publicKey: string; first: string; last: string; n: number }>();
    for (const c of await readCheckpoints(nc, config.audit.checkpointStream)) {
      const k = seen.get(c.keyId);
      if (k) {
        k.last = c.time;
        k.n++;
      } else seen.set(c.keyId, { publicKey: c.publicKey, first: c.time, last: c.time, n: 1 });
    }
    for (const [id, k] of seen) out.write(`${id}  ${k.publicKey}  ${k.n} checkpoints ${k.first} .. ${k.last}\n`);
    if (seen.size === 0) out.write("no checkpoints yet\n");
    return 0;
  } finally {
    await nc.close();
  }
}
