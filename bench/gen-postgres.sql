-- Realistic benchmark data for PostgreSQL: several tables of different sizes and column types,
-- compressing about 3-4x with zstd -3. Scale with psql -v scale=N (1 ~ 1 GiB of COPY output).
-- Usage: psql -X -v ON_ERROR_STOP=1 -v scale=1 -d DB -f bench/gen-postgres.sql
\if :{?scale}
\else
\set scale 1
\endif
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_events, bench_customers, bench_documents, bench_small_lookup;

CREATE TABLE bench_customers (
    id          bigint PRIMARY KEY,
    uid         uuid NOT NULL,
    email       text NOT NULL,
    name        text NOT NULL,
    balance     numeric(14,2) NOT NULL,
    created_at  timestamptz NOT NULL,
    tags        text[]
);
INSERT INTO bench_customers
SELECT g,
       gen_random_uuid(),
       'user' || g || '@' || (ARRAY['example.com','mail.test','corp.invalid'])[1 + g % 3],
       initcap(substr(md5((g * 7)::text), 1, 6 + g % 9)) || ' ' || initcap(substr(md5((g * 13)::text), 1, 5 + g % 7)),
       round((random() * 100000)::numeric, 2),
       timestamptz '2020-01-01' + (g % 100000) * interval '37 minutes',
       CASE WHEN g % 4 = 0 THEN ARRAY['vip', 'region-' || (g % 17)] ELSE NULL END
FROM generate_series(1, (600000 * :scale)::int) g;

CREATE TABLE bench_events (
    id          bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    kind        text NOT NULL,
    amount      numeric(12,2),
    at          timestamptz NOT NULL,
    payload     jsonb NOT NULL,
    note        text
);
INSERT INTO bench_events
SELECT g,
       1 + (g::bigint * 7919) % (600000 * :scale)::int,
       (ARRAY['page_view','click','purchase','refund','signup','login','logout'])[1 + g % 7],
       round((random() * 500)::numeric, 2),
       timestamptz '2023-01-01' + g * interval '1 second',
       jsonb_build_object('ip', '10.' || (random() * 255)::int || '.' || (random() * 255)::int || '.' || (random() * 255)::int,
                          'ua', (ARRAY['Mozilla/5.0 (X11; Linux x86_64)','Mozilla/5.0 (Macintosh)','curl/8.5.0'])[1 + g % 3],
                          'session', md5((g / 20)::text), 'trace', md5(random()::text), 'n', (random() * 1000000)::int),
       CASE WHEN g % 2 = 0 THEN 'ref ' || substr(md5(random()::text), 1, 6 + g % 20) || ' ' || repeat(substr(md5(g::text), 1, 8) || ' ', 1 + g % 6) END
FROM generate_series(1, (4000000 * :scale)::int) g;

CREATE TABLE bench_documents (
    id      bigint PRIMARY KEY,
    title   text NOT NULL,
    body    text NOT NULL,
    blob    bytea
);
INSERT INTO bench_documents
SELECT g,
       'Document ' || g,
       repeat('Lorem ipsum dolor sit amet, ' || md5(random()::text) || ' consectetur adipiscing elit. ', 2 + g % 6) || md5(random()::text) || md5(random()::text),
       CASE WHEN g % 3 = 0 THEN decode(md5(random()::text) || md5(random()::text) || repeat(md5(g::text), 4), 'hex') END
FROM generate_series(1, (150000 * :scale)::int) g;

CREATE TABLE bench_small_lookup (code text PRIMARY KEY, label text NOT NULL);
INSERT INTO bench_small_lookup SELECT 'c' || g, 'Label number ' || g FROM generate_series(1, 1000) g;
ANALYZE;
