// MaskingService over NATS: the same engine (@gatehouse/masking) and plugins the
// listener runs in-process, for listeners that hand rows over in batches.
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import {
  MaskingServiceService,
  type MaskCell,
  type MaskRow,
  type MaskRowsRequest,
  type MaskRowsResponse,
  type MaskTextRequest,
  type MaskTextResponse,
} from "@gatehouse/proto";
import {
  actionCountsToProto,
  compileRowMasker,
  createScanner,
  loadMaskingPlugins,
  loadMaskKey,
  maskText,
  planFromProto,
  textStrategies,
  type MaskKey,
  type MaskingPluginSpec,
  type Recognizer,
  type Scanner,
} from "@gatehouse/masking";
import { recognizersFromConfig } from "@gatehouse/plugin-masking-pii";
import { connectBus, createLogger, RpcError, serveOnNats, Status, type GatehouseConfig, type Logger, type ServiceImplementation } from "@gatehouse/runtime";

/** Upper bounds per request; a listener sends more in several batches. */
export const LIMITS = { rows: 50_000, columns: 1_600, texts: 10_000, textChars: 16 * 1024 * 1024 } as const;

export interface MaskingEngine {
  scanner: Scanner;
  key: MaskKey;
}

export function maskingServiceImpl(engine: MaskingEngine): ServiceImplementation<typeof MaskingServiceService> {
  return {
    async maskRows(req: MaskRowsRequest): Promise<MaskRowsResponse> {
      const n = req.columns.length;
      if (n > LIMITS.columns) throw new RpcError(Status.INVALID_ARGUMENT, `MaskRows: ${n} columns; at most ${LIMITS.columns}`);
      if (req.rows.length > LIMITS.rows) {
        throw new RpcError(Status.INVALID_ARGUMENT, `MaskRows: ${req.rows.length} rows in one batch; send at most ${LIMITS.rows} per request`);
      }
      req.rows.forEach((r, i) => {
        if (r.cells.length !== n) {
          throw new RpcError(Status.INVALID_ARGUMENT, `MaskRows: row ${i} has ${r.cells.length} cells but ${n} columns were described`);
        }
      });
      const masker = compileRowMasker(
        planFromProto(req.plan),
        req.columns.map((c) => ({
          column: c.name,
          typeOid: c.typeOid,
          ...(c.table ? { table: c.table } : {}),
          ...(c.tableOid ? { tableOid: c.tableOid } : {}),
          ...(c.columnAttr ? { columnAttr: c.columnAttr } : {}),
        })),
        { scanner: engine.scanner, key: engine.key, tags: req.columnTags },
      );
      if (!masker) return { rows: req.rows, actions: [] };
      const masked = masker.masked;
      const rows: MaskRow[] = req.rows.map((r) => ({
        cells: r.cells.map((cell, i): MaskCell => {
          if (!masked[i] || cell.isNull) return cell;
          const out = masker.maskCell(i, cell.value.toString("utf8"));
          return out === null ? { value: Buffer.alloc(0), isNull: true } : { value: Buffer.from(out, "utf8"), isNull: false };
        }),
      }));
      return { rows, actions: actionCountsToProto(masker.takeCounts()) };
    },

    async maskText(req: MaskTextRequest): Promise<MaskTextResponse> {
      if (req.texts.length > LIMITS.texts) throw new RpcError(Status.INVALID_ARGUMENT, `MaskText: ${req.texts.length} texts; at most ${LIMITS.texts}`);
      const total = req.texts.reduce((a, t) => a + t.length, 0);
      if (total > LIMITS.textChars) throw new RpcError(Status.INVALID_ARGUMENT, `MaskText: ${total} characters; at most ${LIMITS.textChars}`);
      const strategyFor = textStrategies(planFromProto(req.plan).text);
      const texts: string[] = [];
      const findings: MaskTextResponse["findings"] = [];
      req.texts.forEach((t, textIndex) => {
        const r = maskText(t, engine.scanner, strategyFor, engine.key);
        texts.push(r.text);
        for (const a of r.actions) findings.push({ textIndex, entity: a.entity, strategy: a.strategy, start: a.start, end: a.end });
      });
      return { texts, findings };
    },
  };
}

export interface MaskingServiceOptions {
  nc?: NatsConnection;
  log?: Logger;
  key?: MaskKey;
  recognizers?: Recognizer[];
  /** masking-pii plugin config (used when neither recognizers nor plugins is given). */
  pii?: Record<string, unknown>;
  /** Plugin modules to load recognizers from (replaces the default masking-pii). */
  plugins?: MaskingPluginSpec[];
}

export interface MaskingServiceHandle {
  engine: MaskingEngine;
  stop(): Promise<void>;
}

export async function startMaskingService(config: GatehouseConfig, opts: MaskingServiceOptions = {}): Promise<MaskingServiceHandle> {
  const log = opts.log ?? createLogger("masking");
  const key = opts.key ?? loadMaskKey(config.dataDir, { onGenerated: (file) => log.warn({ file }, "generated a development masking key; set GATEHOUSE_MASKING_KEY in production") });
  const recognizers = opts.recognizers ?? (opts.plugins ? (await loadMaskingPlugins(opts.plugins)).recognizers : recognizersFromConfig(opts.pii ?? {}));
  const engine: MaskingEngine = { key, scanner: createScanner(recognizers) };
  const ownBus = !opts.nc;
  const nc = opts.nc ?? (await connectBus("masking", config.nats.url));
  const sub: Subscription = serveOnNats(nc, MaskingServiceService, maskingServiceImpl(engine), {
    onError: (method, err) => log.warn({ method, err: (err as Error).message }, "masking call failed"),
  });
  return {
    engine,
    async stop() {
      await sub.drain();
      if (ownBus) await nc.drain();
    },
  };
}
