// Table and column names behind RowDescription's (table OID, attribute number), so
// masking rules written as `customers.email` also catch `SELECT email AS e` and
// `SELECT * FROM (SELECT email FROM customers) s`. The catalog is read over a
// separate upstream connection (never inside the client's session, whose
// transaction state it must not touch), once per connection and listener, and
// again after `ttlMs` or when a result names a table it does not know.
import type { UpstreamSession } from "./upstream.js";
import { body, parseErrorFields, T, TERMINATE } from "./protocol.js";
import { FrameReader } from "./frames.js";

export interface ColumnName {
  schema: string;
  table: string;
  column: string;
}

export class Catalog {
  constructor(
    private readonly tables: Map<number, { schema: string; table: string; columns: Map<number, string> }>,
    readonly loadedAt: number,
  ) {}

  column(tableOid: number, attnum: number): ColumnName | undefined {
    const t = this.tables.get(tableOid);
    const column = t?.columns.get(attnum);
    return t && column !== undefined ? { schema: t.schema, table: t.table, column } : undefined;
  }

  get size(): number {
    return this.tables.size;
  }
}

const CATALOG_SQL =
  "SELECT c.oid::int8, n.nspname, c.relname, a.attnum, a.attname " +
  "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid " +
  "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace " +
  "WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','v','m','p','f') " +
  "AND n.nspname NOT LIKE 'pg_toast%'";

function query(text: string): Buffer {
  const t = Buffer.from(text + "\0", "utf8");
  const b = Buffer.allocUnsafe(5 + t.length);
  b[0] = T.Query;
  b.writeInt32BE(4 + t.length, 1);
  t.copy(b, 5);
  return b;
}

/** Run the catalog query on a logged-in upstream session and close it. */
export function readCatalog(up: UpstreamSession, timeoutMs: number): Promise<Catalog> {
  return new Promise((resolve, reject) => {
    const tables = new Map<number, { schema: string; table: string; columns: Map<number, string> }>();
    const reader = new FrameReader(1 << 26, "upstream");
    let error: string | undefined;
    let settled = false;
    const finish = (e?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      up.socket.removeAllListeners("data");
      if (!up.socket.destroyed) up.socket.end(TERMINATE);
      if (e) reject(e);
      else resolve(new Catalog(tables, Date.now()));
    };
    const timer = setTimeout(() => finish(new Error(`catalog query did not complete within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      try {
        reader.push(chunk);
        for (let f = reader.next(); f; f = reader.next()) {
          if (f[0] === T.DataRow) {
            const r = body(f);
            const cells: string[] = [];
            const n = r.int16();
            for (let i = 0; i < n; i++) {
              const len = r.int32();
              cells.push(len < 0 ? "" : r.bytes(len).toString("utf8"));
            }
            const oid = Number(cells[0]);
            let t = tables.get(oid);
            if (!t) tables.set(oid, (t = { schema: cells[1]!, table: cells[2]!, columns: new Map() }));
            t.columns.set(Number(cells[3]), cells[4]!);
          } else if (f[0] === T.ErrorResponse) {
            error = parseErrorFields(f).M ?? "error";
          } else if (f[0] === T.ReadyForQuery) {
            return finish(error ? new Error(`catalog query failed: ${error}`) : undefined);
          }
        }
      } catch (e) {
        finish(e as Error);
      }
    };
    up.socket.on("data", onData);
    up.socket.once("close", () => finish(new Error("upstream closed the catalog connection")));
    up.socket.on("error", (e) => finish(e));
    if (up.leftover.length) onData(up.leftover);
    up.socket.write(query(CATALOG_SQL));
    up.socket.resume();
  });
}

/** One cached catalog per upstream connection; concurrent callers share one refresh. */
export class CatalogCache {
  private current: Catalog | undefined;
  private loading: Promise<Catalog> | undefined;
  private stale = false;

  constructor(
    private readonly load: () => Promise<Catalog>,
    private readonly ttlMs: number,
  ) {}

  /** Refresh before the next use (a result named an unknown table). */
  invalidate(): void {
    this.stale = true;
  }

  /**
   * The catalog. Only the first load is awaited; later refreshes run in the
   * background while the current snapshot keeps serving (columns of tables it does
   * not know are scanned meanwhile), so a refresh never stalls a statement, for
   * example on a single-backend upstream while the client holds a transaction.
   */
  async get(): Promise<Catalog> {
    const c = this.current;
    if (!c) return this.refresh();
    const age = Date.now() - c.loadedAt;
    // A stale mark refreshes at most once a second, so queries on unknown relations cannot hammer the upstream.
    if (age >= this.ttlMs || (this.stale && age >= 1000)) this.refresh().catch(() => undefined);
    return c;
  }

  private refresh(): Promise<Catalog> {
    this.loading ??= this.load()
      .then((cat) => {
        this.current = cat;
        this.stale = false;
        return cat;
      })
      .finally(() => (this.loading = undefined));
    return this.loading;
  }
}
