// The two ClickHouse engines behind the audit store share this small surface.
export interface Engine {
  readonly kind: "chdb" | "clickhouse";
  /** Run one statement that returns nothing useful (DDL). */
  exec(sql: string): Promise<void>;
  /** Insert rows given as JSONCompactEachRow (UTF-8 text or bytes: one JSON array per line, values in `columns` order). */
  insertCompactRows(table: string, columns: readonly string[], body: string | Buffer): Promise<void>;
  /** Insert rows in RowBinary (values in `columns` order); only engines that can take it have it. */
  insertRowBinary?(table: string, columns: readonly string[], body: Buffer): Promise<void>;
  /**
   * Run one query; the result in JSONCompactEachRowWithNames format. `params` bind
   * `{name:Type}` placeholders server-side (never spliced into the text).
   */
  selectCompact(sql: string, params?: Record<string, string>): Promise<string>;
  /** Make `database` the default for later queries, so auditors can write `FROM events`. */
  useDatabase(database: string): Promise<void>;
  close(): Promise<void>;
}
