-- Realistic benchmark data for MariaDB/MySQL: several tables of different sizes and column types
-- (bigint, UUID, varchar of varied length, DECIMAL, DATETIME(6), TIMESTAMP(3), ENUM, JSON, INET6,
-- DOUBLE, BIT, TEXT, BLOB), compressing about 3-4x with zstd -3. Generated set-wise with
-- INSERT ... SELECT from the SEQUENCE engine (seq_1_to_N), never row by row.
-- Scale: set @scale before sourcing; scale 1 ~ 0.55 GB of mariadb-dump --hex-blob output.
-- Usage: mariadb -h127.0.0.1 -uroot -e "SET @scale = 1; SOURCE bench/gen-mysql.sql"
-- (bench/run does this; it creates the schema exporter_bench first.)
SET @scale = COALESCE(@scale, 1);
SET @n_customers = GREATEST(1, FLOOR(300000 * @scale));
SET @n_events    = GREATEST(1, FLOOR(1500000 * @scale));
SET @n_documents = GREATEST(1, FLOOR(70000 * @scale));
SET SESSION unique_checks = 0, foreign_key_checks = 0;
SET SESSION time_zone = '+00:00';

DROP TABLE IF EXISTS bench_meta, bench_events, bench_customers, bench_documents, bench_small_lookup;

CREATE TABLE bench_customers (
    id          BIGINT NOT NULL PRIMARY KEY,
    uid         UUID NOT NULL,
    email       VARCHAR(120) NOT NULL,
    name        VARCHAR(80) NOT NULL,
    balance     DECIMAL(14,2) NOT NULL,
    created_at  DATETIME(6) NOT NULL,
    active      TINYINT(1) NOT NULL,
    country     CHAR(2) NOT NULL,
    tags        JSON NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO bench_customers
SELECT seq,
       UUID(),
       CONCAT('user', seq, '@', ELT(1 + seq % 3, 'example.com', 'mail.test', 'corp.invalid')),
       CONCAT(UPPER(LEFT(MD5(seq * 7), 1)), SUBSTR(MD5(seq * 7), 2, 5 + seq % 9), ' ',
              UPPER(LEFT(MD5(seq * 13), 1)), SUBSTR(MD5(seq * 13), 2, 4 + seq % 7)),
       ROUND(RAND() * 100000, 2),
       TIMESTAMP'2020-01-01 00:00:00' + INTERVAL (seq % 100000) * 37 MINUTE + INTERVAL FLOOR(RAND() * 1000000) MICROSECOND,
       seq % 5 <> 0,
       ELT(1 + seq % 6, 'DE', 'FR', 'US', 'GB', 'NL', 'SE'),
       CASE WHEN seq % 4 = 0 THEN JSON_ARRAY('vip', CONCAT('region-', seq % 17)) END
FROM seq_1_to_1000000000 WHERE seq <= @n_customers;

CREATE TABLE bench_events (
    id          BIGINT NOT NULL PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    kind        ENUM('page_view','click','purchase','refund','signup','login','logout') NOT NULL,
    amount      DECIMAL(12,2) NULL,
    at          TIMESTAMP(3) NOT NULL,
    ip          INET6 NULL,
    score       DOUBLE NULL,
    flags       BIT(8) NOT NULL,
    payload     JSON NOT NULL,
    note        TEXT NULL,
    KEY (customer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO bench_events
SELECT seq,
       1 + (seq * 7919) % @n_customers,
       1 + seq % 7,
       CASE WHEN seq % 3 <> 0 THEN ROUND(RAND() * 500, 2) END,
       TIMESTAMP'2023-01-01 00:00:00' + INTERVAL seq SECOND + INTERVAL seq % 1000 * 1000 MICROSECOND,
       CASE WHEN seq % 10 <> 0 THEN CONCAT('::ffff:10.', FLOOR(RAND() * 255), '.', FLOOR(RAND() * 255), '.', FLOOR(RAND() * 255)) END,
       CASE WHEN seq % 4 <> 0 THEN RAND() * 1000 END,
       seq % 256,
       JSON_OBJECT('ua', ELT(1 + seq % 3, 'Mozilla/5.0 (X11; Linux x86_64)', 'Mozilla/5.0 (Macintosh)', 'curl/8.5.0'),
                   'session', MD5(seq DIV 20), 'trace', MD5(RAND()), 'n', FLOOR(RAND() * 1000000),
                   'path', CONCAT('/shop/', ELT(1 + seq % 5, 'cart', 'item', 'search', 'account', 'checkout'), '/', seq % 1000)),
       CASE WHEN seq % 2 = 0 THEN CONCAT('ref ', SUBSTR(MD5(RAND()), 1, 6 + seq % 20), ' ', REPEAT(CONCAT(SUBSTR(MD5(seq), 1, 8), ' '), 1 + seq % 6)) END
FROM seq_1_to_1000000000 WHERE seq <= @n_events;

CREATE TABLE bench_documents (
    id      BIGINT NOT NULL PRIMARY KEY,
    title   VARCHAR(200) NOT NULL,
    body    MEDIUMTEXT NOT NULL,
    blob_   BLOB NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT INTO bench_documents
SELECT seq,
       CONCAT('Document ', seq, ' — ', ELT(1 + seq % 4, 'Überblick', 'résumé', 'notes', '報告')),
       CONCAT(REPEAT(CONCAT('Lorem ipsum dolor sit amet, ', MD5(RAND()), ' consectetur adipiscing elit. '), 2 + seq % 6),
              MD5(RAND()), MD5(RAND())),
       CASE WHEN seq % 3 = 0 THEN CONCAT(UNHEX(MD5(RAND())), UNHEX(MD5(RAND())), REPEAT(UNHEX(MD5(seq)), 4)) END
FROM seq_1_to_1000000000 WHERE seq <= @n_documents;

CREATE TABLE bench_small_lookup (
    code  VARCHAR(16) NOT NULL PRIMARY KEY,
    label VARCHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO bench_small_lookup SELECT CONCAT('c', seq), CONCAT('Label number ', seq) FROM seq_1_to_1000;

-- The marker bench/run checks to skip regeneration at the same scale.
CREATE TABLE bench_meta (k VARCHAR(32) NOT NULL PRIMARY KEY, v VARCHAR(64) NOT NULL) ENGINE=InnoDB;
INSERT INTO bench_meta VALUES ('scale', CAST(@scale AS CHAR));
ANALYZE TABLE bench_customers, bench_events, bench_documents, bench_small_lookup;
