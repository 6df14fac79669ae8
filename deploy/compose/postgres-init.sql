-- Demo database for docker compose: same tables as the embedded demo database
-- (services/demo-db), filled with deterministic synthetic data generated in SQL.
-- Nothing here is real: example.* mail domains, fictional 555-01xx numbers,
-- SSN-shaped values, Luhn-valid test card numbers.
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

-- Luhn check digit for a string of digits.
CREATE FUNCTION pg_temp.luhn_digit(body text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT ((10 - sum(CASE WHEN i % 2 = 1
                         THEN (d * 2) - CASE WHEN d * 2 > 9 THEN 9 ELSE 0 END
                         ELSE d END) % 10) % 10)::text
  FROM (SELECT substr(reverse(body), i, 1)::int AS d, i
        FROM generate_series(1, length(body)) AS i) AS digits
$$;

WITH base AS (
  SELECT g,
         (ARRAY['Olivia','Liam','Emma','Noah','Ava','Oliver','Sophia','Elijah','Priya','Mateo','Yuki','Omar','Fatima','Chen','Aisha','Diego'])[1 + (g * 7) % 16] AS first,
         (ARRAY['Smith','Johnson','Garcia','Miller','Davis','Nguyen','Patel','Kim','Okafor','Rossi','Novak','Haddad','Larsen','Silva','Cohen','Brown'])[1 + (g * 11) % 16] AS last,
         '4' || lpad(((g * 2654435761::bigint) % 100000000000000)::text, 14, '0') AS card_body
  FROM generate_series(1, 1000) AS g
)
INSERT INTO customers (name, email, phone, ssn, card_number, notes)
SELECT first || ' ' || last,
       lower(first) || '.' || lower(last) || g || '@example.' || (ARRAY['com','org','net'])[1 + g % 3],
       '+1' || (ARRAY['212','305','312','415','503','617'])[1 + g % 6] || '55501' || lpad((g % 100)::text, 2, '0'),
       lpad((1 + (g * 37) % 665)::text, 3, '0') || '-' || lpad((1 + g % 99)::text, 2, '0') || '-' || lpad((1 + (g * 97) % 9999)::text, 4, '0'),
       card_body || pg_temp.luhn_digit(card_body),
       CASE g % 4
         WHEN 0 THEN 'Prefers email contact.'
         WHEN 1 THEN 'Called from +1415555' || lpad((100 + g % 100)::text, 4, '0') || ' about a late delivery.'
         WHEN 2 THEN 'Read their SSN over the phone: ' || lpad((1 + (g * 37) % 665)::text, 3, '0') || '-' || lpad((1 + g % 99)::text, 2, '0') || '-' || lpad((1 + (g * 97) % 9999)::text, 4, '0') || '.'
         ELSE 'Refund issued to card ending ' || right(card_body, 3) || pg_temp.luhn_digit(card_body) || '.'
       END
FROM base ORDER BY g;

INSERT INTO orders (customer_id, total, status, created_at)
SELECT 1 + (g * 7919) % 1000,
       round((5 + (g * 104729) % 99500 / 100.0)::numeric, 2),
       (ARRAY['pending','paid','paid','shipped','delivered','delivered','refunded','cancelled'])[1 + g % 8],
       timestamptz '2025-01-01 00:00:00+00' + make_interval(secs => (g * 10007) % 31536000)
FROM generate_series(1, 3000) AS g ORDER BY g;
