// Schema and deterministic seed data of the demo database (seeded once per data dir).
import type { PGlite } from "@electric-sql/pglite";
import { Prng } from "./prng.js";
import { customer, order } from "./fake.js";

export const SEED = 20251122;
export const CUSTOMERS = 1000;
export const ORDERS = 3000;

const SCHEMA = `
CREATE TABLE customers (
  id serial PRIMARY KEY,
  name text NOT NULL,
  email text NOT NULL,
  phone text,
  ssn text,
  card_number text,
  notes text
);
CREATE TABLE orders (
  id serial PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customers,
  total numeric(10,2) NOT NULL,
  status text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX orders_customer_id ON orders (customer_id);
CREATE TABLE gatehouse_demo_seed (seed int NOT NULL, seeded_at timestamptz NOT NULL DEFAULT now());
`;

/** Insert rows in chunks with bind parameters ($1, $2, ...). */
async function insertRows(db: PGlite, table: string, columns: string[], rows: unknown[][]): Promise<void> {
  const chunk = 250;
  for (let start = 0; start < rows.length; start += chunk) {
    const part = rows.slice(start, start + chunk);
    const params: unknown[] = [];
    const tuples = part.map((row) => `(${row.map((v) => (params.push(v), `$${params.length}`)).join(", ")})`);
    await db.query(`INSERT INTO ${table} (${columns.join(", ")}) VALUES ${tuples.join(", ")}`, params);
  }
}

/** Create and fill the demo tables unless a previous run already did. Returns true when it seeded. */
export async function seedIfEmpty(db: PGlite): Promise<boolean> {
  const done = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_catalog.pg_tables WHERE schemaname = 'public' AND tablename = 'gatehouse_demo_seed'",
  );
  if (done.rows[0]!.n > 0) return false;
  const r = new Prng(SEED);
  const customers = Array.from({ length: CUSTOMERS }, (_, i) => customer(r, i + 1));
  const orders = Array.from({ length: ORDERS }, () => order(r, CUSTOMERS));
  await db.transaction(async (tx) => {
    await tx.exec(SCHEMA);
    const t = tx as unknown as PGlite;
    await insertRows(t, "customers", ["name", "email", "phone", "ssn", "card_number", "notes"],
      customers.map((c) => [c.name, c.email, c.phone, c.ssn, c.card_number, c.notes]));
    await insertRows(t, "orders", ["customer_id", "total", "status", "created_at"],
      orders.map((o) => [o.customer_id, o.total, o.status, o.created_at]));
    await tx.query("INSERT INTO gatehouse_demo_seed (seed) VALUES ($1)", [SEED]);
  });
  return true;
}
