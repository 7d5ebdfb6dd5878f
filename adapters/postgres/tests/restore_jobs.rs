//! The parallel restore (`RestoreOptions::jobs` > 1, issue 17) against the real server: the
//! same rows, fingerprints and schema as the serial restore and as psql, for a database with
//! foreign keys between tables (one deferred), a table spread over many `COPY` blocks, a
//! partitioned table, indexes and check constraints; session state reaching every worker;
//! failures in a data block and in a unique index named by statement and table, with nothing
//! of the failing block committed.

mod common;

use std::fmt::Write as _;

use bytes::Bytes;
use common::TestDb;
use exporter_contract::{
    DumpOptions, EngineError, ErrorKind, PayloadFormat, RestoreOptions, RestoreSummary, Target,
};
use exporter_postgres::PostgresTarget;
use futures::StreamExt;
use futures::stream::BoxStream;

/// `script` as a stream of chunks of `size` bytes.
fn body(script: &[u8], size: usize) -> BoxStream<'static, Result<Bytes, EngineError>> {
    let mut rest = Bytes::copy_from_slice(script);
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        chunks.push(Ok(rest.split_to(size.min(rest.len()))));
    }
    futures::stream::iter(chunks).boxed()
}

async fn restore(script: &[u8], db: &TestDb, jobs: usize) -> Result<RestoreSummary, EngineError> {
    PostgresTarget::new(db.url())
        .restore(
            PayloadFormat::Sql,
            body(script, 64 << 10),
            RestoreOptions::default().with_jobs(jobs),
        )
        .await
}

const SOURCE: &str = r"
CREATE SCHEMA app;
CREATE TABLE app.customers (id int PRIMARY KEY, email text UNIQUE, region int);
CREATE TABLE app.orders (
    id bigint PRIMARY KEY,
    customer int REFERENCES app.customers (id) DEFERRABLE INITIALLY DEFERRED,
    total numeric(12, 2) CHECK (total >= 0),
    note text
);
CREATE INDEX orders_customer ON app.orders (customer);
CREATE TABLE app.lines (
    order_id bigint REFERENCES app.orders (id),
    n int,
    sku text,
    PRIMARY KEY (order_id, n)
);
CREATE TABLE app.events (k int NOT NULL, v text) PARTITION BY RANGE (k);
CREATE TABLE app.events_a PARTITION OF app.events FOR VALUES FROM (0) TO (5000);
CREATE TABLE app.events_b PARTITION OF app.events FOR VALUES FROM (5000) TO (10000);
ALTER TABLE app.events ADD PRIMARY KEY (k);
CREATE INDEX events_v ON app.events (v);
CREATE SEQUENCE app.ticket;
SELECT setval('app.ticket', 77);
CREATE VIEW app.big_orders AS SELECT id, total FROM app.orders WHERE total > 100;
INSERT INTO app.customers SELECT g, 'user' || g || '@example.com', g % 7 FROM generate_series(1, 2000) g;
INSERT INTO app.orders SELECT g, 1 + g % 2000, (g % 500) * 1.25, repeat('n', g % 40)
  FROM generate_series(1, 30000) g;
INSERT INTO app.lines SELECT 1 + g / 3, g % 3, 'sku-' || (g % 97) FROM generate_series(0, 29999) g;
INSERT INTO app.events SELECT g, md5(g::text) FROM generate_series(0, 9999) g;
";

/// Restore one dump serially and with 4 jobs: the same summary, the dump's fingerprints, and
/// no difference pg_dump can see, for both; a table of many blocks; the constraints work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_restore_equals_the_serial_one() {
    let source = TestDb::new("rj_src");
    source.sql(SOURCE);
    let (script, summary) = common::dump(source.url(), DumpOptions::default().with_jobs(2))
        .await
        .expect("dump succeeds");
    let text = String::from_utf8_lossy(&script);
    let order_blocks = text.matches("COPY app.orders (").count();
    assert!(
        order_blocks > 1,
        "app.orders must be spread over several COPY blocks, got {order_blocks}"
    );

    let serial = TestDb::new("rj_one");
    let parallel = TestDb::new("rj_four");
    let one = restore(&script, &serial, 1).await.expect("serial restore");
    let four = restore(&script, &parallel, 4)
        .await
        .expect("parallel restore");
    assert_eq!(one, four, "same statements, rows and skipped");
    assert_eq!(one.rows, 30000 + 30000 + 2000 + 10000);
    for db in [&serial, &parallel] {
        assert_eq!(
            PostgresTarget::new(db.url()).fingerprint().await.unwrap(),
            summary.tables,
            "{}: fingerprints equal the dump's",
            db.name
        );
        assert_eq!(
            PostgresTarget::new(db.url())
                .fingerprint_with(4)
                .await
                .unwrap(),
            summary.tables,
            "{}: fingerprints on 4 connections equal the dump's",
            db.name
        );
        assert_eq!(
            common::schema_only(&source.name),
            common::schema_only(&db.name),
            "{}: schema",
            db.name
        );
    }
    // The constraints are in force, the deferred one deferred.
    assert_eq!(
        parallel.sql(
            "SELECT condeferrable, condeferred FROM pg_constraint WHERE conname = 'orders_customer_fkey'"
        ),
        "t|t\n"
    );
    let violation = std::process::Command::new("psql")
        .args([
            "-X",
            "-h",
            common::HOST,
            "-U",
            common::SUPERUSER,
            "-d",
            &parallel.name,
        ])
        .args(["-c", "INSERT INTO app.lines VALUES (999999, 1, 'x')"])
        .output()
        .expect("psql runs");
    assert!(!violation.status.success());
    assert!(
        String::from_utf8_lossy(&violation.stderr)
            .contains("violates foreign key constraint \"lines_order_id_fkey\""),
        "{violation:?}"
    );
}

/// A `pg_dump` plain script (one `COPY` per table, `setval`s between data blocks) restores
/// with 4 jobs to what psql restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_dump_script_restores_in_parallel_like_psql() {
    let source = TestDb::new("rj_pgd_src");
    source.sql(SOURCE);
    let out = std::process::Command::new("pg_dump")
        .args([
            "-h",
            common::HOST,
            "-U",
            common::SUPERUSER,
            "-d",
            &source.name,
        ])
        .output()
        .expect("pg_dump runs");
    assert!(out.status.success());
    // pg_dump 17.6+/15.14+ writes `\restrict` lines, which only psql runs.
    let script: Vec<u8> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    let target = TestDb::new("rj_pgd_t");
    let summary = restore(&script, &target, 4)
        .await
        .expect("parallel restore");
    assert_eq!(summary.rows, 72000);
    assert_eq!(
        common::schema_only(&source.name),
        common::schema_only(&target.name)
    );
    assert_eq!(
        PostgresTarget::new(target.url())
            .fingerprint()
            .await
            .unwrap(),
        PostgresTarget::new(source.url())
            .fingerprint()
            .await
            .unwrap(),
    );
}

/// Unqualified names in data blocks resolve on the workers as on the main session: `SET`s
/// before a block reach whichever session loads it, in script order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_settings_reach_every_worker_in_script_order() {
    let db = TestDb::new("rj_session");
    db.sql("CREATE SCHEMA a; CREATE SCHEMA b; CREATE TABLE a.t (x int); CREATE TABLE b.t (x int)");
    let mut script = String::new();
    for round in 0..6 {
        let schema = if round % 2 == 0 { "a" } else { "b" };
        let _ = writeln!(script, "SET search_path = {schema};");
        script.push_str("COPY t (x) FROM stdin;\n");
        for i in 0..200 {
            let _ = writeln!(script, "{}", round * 1000 + i);
        }
        script.push_str("\\.\n");
    }
    script.push_str("SET search_path = '';\nCREATE UNIQUE INDEX t_x ON a.t (x);\n");
    let summary = restore(script.as_bytes(), &db, 4).await.expect("restore");
    assert_eq!(summary.rows, 1200);
    assert_eq!(
        db.sql("SELECT count(*), min(x), max(x) FROM a.t WHERE x / 1000 IN (0, 2, 4)"),
        "600|0|4199\n"
    );
    assert_eq!(db.sql("SELECT count(*) FROM a.t"), "600\n");
    assert_eq!(
        db.sql("SELECT count(*), min(x), max(x) FROM b.t WHERE x / 1000 IN (1, 3, 5)"),
        "600|1000|5199\n"
    );
    assert_eq!(db.sql("SELECT count(*) FROM b.t"), "600\n");
}

/// A duplicate in a unique index fails the parallel restore naming the statement and the
/// table, without data: the restore returns no summary, and nothing after it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_unique_index_is_named_by_statement_and_table() {
    let db = TestDb::new("rj_unique");
    let mut script = String::from("CREATE TABLE public.t (id int, code text);\n");
    for block in 0..4 {
        script.push_str("COPY public.t (code, id) FROM stdin;\n");
        for i in 0..100 {
            let id = block * 100 + i;
            // One code twice, in different blocks.
            let code = if id == 399 {
                "secret-dup".to_owned()
            } else {
                format!("c{id}")
            };
            let code = if id == 5 {
                "secret-dup".to_owned()
            } else {
                code
            };
            let _ = writeln!(script, "{code}\t{id}");
        }
        script.push_str("\\.\n");
    }
    script.push_str("CREATE INDEX t_id ON public.t USING btree (id);\n");
    script.push_str("CREATE UNIQUE INDEX t_code ON public.t USING btree (code);\n");
    script.push_str("CREATE TABLE public.after (x int);\n");
    let err = restore(script.as_bytes(), &db, 4).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Query, "{err:?}");
    assert_eq!(
        err.object(),
        Some("statement 7 (line 411): CREATE UNIQUE INDEX t_code ON (table public.t)"),
        "{err:?}"
    );
    assert!(err.message().contains("(SQLSTATE 23505)"), "{err}");
    assert!(!err.to_string().contains("secret"), "no row data: {err}");
    assert_eq!(db.sql("SELECT count(*) FROM t"), "400\n", "the data is in");
    assert_eq!(
        db.sql("SELECT to_regclass('public.after') IS NULL, to_regclass('public.t_code') IS NULL"),
        "t|t\n",
        "nothing after the failure ran, the index is not there"
    );
}

/// A bad row in one of several blocks fails the restore naming that block's `COPY`; the
/// block loads nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_block_is_named_and_loads_nothing() {
    let db = TestDb::new("rj_block");
    let mut script = String::from("CREATE TABLE public.t (id int PRIMARY KEY);\n");
    for block in 0..6 {
        script.push_str("COPY public.t (id) FROM stdin;\n");
        for i in 0..50 {
            if block == 3 && i == 20 {
                script.push_str("not-a-number\n");
            } else {
                let _ = writeln!(script, "{}", block * 50 + i);
            }
        }
        script.push_str("\\.\n");
    }
    let err = restore(script.as_bytes(), &db, 3).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Query, "{err:?}");
    assert_eq!(err.object(), Some("statement 5 (line 158): COPY public.t"));
    assert_eq!(
        err.message(),
        "invalid input syntax for type integer: … (SQLSTATE 22P02), at line 21 of the COPY data"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM t WHERE id BETWEEN 150 AND 199"),
        "0\n",
        "the failing block committed nothing"
    );
}

/// A server that refuses more sessions (here the database's connection limit) does not fail
/// the restore: the sessions that connected do the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_refused_by_a_connection_limit_leave_their_share_to_the_others() {
    let role = common::Role::new("rj_limited");
    let db = TestDb::new("rj_limit");
    db.sql(&format!(
        "ALTER DATABASE {db} OWNER TO {role}; ALTER DATABASE {db} CONNECTION LIMIT 2",
        db = db.name,
        role = role.0
    ));
    db.sql(&format!("ALTER SCHEMA public OWNER TO {}", role.0));
    let mut script = String::from("CREATE TABLE public.t (id int);\n");
    for block in 0..8 {
        script.push_str("COPY public.t (id) FROM stdin;\n");
        for i in 0..100 {
            let _ = writeln!(script, "{}", block * 100 + i);
        }
        script.push_str("\\.\n");
    }
    script.push_str("CREATE INDEX t_id ON public.t (id);\n");
    let summary = PostgresTarget::new(common::url_for(&role.0, &db.name))
        .restore(
            PayloadFormat::Sql,
            body(script.as_bytes(), 1 << 10),
            RestoreOptions::default().with_jobs(4),
        )
        .await
        .expect("the restore goes on with the sessions it has");
    assert_eq!(summary.rows, 800);
    assert_eq!(
        db.sql("SELECT count(*), count(DISTINCT id) FROM t"),
        "800|800\n"
    );
}

/// A server that allows the restore one session only (the database's connection limit is 1):
/// a parallel restore finds that before applying anything and restores on that one session
/// (it failed with "too many connections" when the first worker could not connect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_allowed_restores_serially() {
    let role = common::Role::new("rj_single");
    let db = TestDb::new("rj_single");
    db.sql(&format!(
        "ALTER DATABASE {db} OWNER TO {role}; ALTER DATABASE {db} CONNECTION LIMIT 1",
        db = db.name,
        role = role.0
    ));
    db.sql(&format!("ALTER SCHEMA public OWNER TO {}", role.0));
    let mut script = String::from("CREATE TABLE public.t (id int);\n");
    for block in 0..4 {
        script.push_str("COPY public.t (id) FROM stdin;\n");
        for i in 0..100 {
            let _ = writeln!(script, "{}", block * 100 + i);
        }
        script.push_str("\\.\n");
    }
    script.push_str("CREATE UNIQUE INDEX t_id ON public.t (id);\n");
    let summary = PostgresTarget::new(common::url_for(&role.0, &db.name))
        .restore(
            PayloadFormat::Sql,
            body(script.as_bytes(), 1 << 10),
            RestoreOptions::default().with_jobs(4),
        )
        .await
        .expect("the restore runs on the one session allowed");
    assert_eq!(summary.rows, 400);
    assert_eq!(summary.statements, 6);
    assert_eq!(
        db.sql("SELECT count(*), count(DISTINCT id) FROM t"),
        "400|400\n"
    );
}
