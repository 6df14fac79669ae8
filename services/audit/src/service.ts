// AuditService (Query, Stats): one implementation for NATS and gRPC.
import { AuditServiceService, QueryResponse, StatsResponse } from "@gatehouse/proto";
import { ReadOnlyQueryError, DEFAULT_MAX_ROWS, type AuditStore } from "@gatehouse/audit-store";
import { RpcError, Status, type ServiceImplementation } from "@gatehouse/runtime";
import type { AuditWriter } from "./writer.js";

export function auditServiceImpl(store: AuditStore, writer: AuditWriter): ServiceImplementation<typeof AuditServiceService> {
  return {
    async query(req) {
      const maxRows = req.maxRows > 0 ? req.maxRows : DEFAULT_MAX_ROWS;
      try {
        const r = await store.query(req.sql, maxRows, req.params);
        return QueryResponse.fromPartial({
          columns: r.columns,
          rows: r.rows.map((row) => JSON.stringify(row)),
          truncated: r.truncated,
        });
      } catch (e) {
        if (e instanceof ReadOnlyQueryError) throw new RpcError(Status.INVALID_ARGUMENT, e.message);
        const msg = (e as Error).message;
        // A ClickHouse exception is about the SQL; anything else is the store itself.
        if (/DB::Exception|Code: \d+/.test(msg)) throw new RpcError(Status.INVALID_ARGUMENT, msg);
        throw new RpcError(Status.UNAVAILABLE, `audit store (${store.kind}) unavailable: ${msg}`);
      }
    },
    async stats() {
      let pending = -1;
      try {
        pending = await writer.pending();
      } catch {
        // JetStream unreachable right now: report -1 rather than fail the call.
      }
      return StatsResponse.fromPartial({
        events: await store.countEvents(),
        lastStreamSeq: writer.stats.lastStreamSeq,
        pending,
        store: store.kind,
      });
    },
  };
}
