//! Failures must be loud, classified, named — and never contain a password. The checks every
//! engine shares (an unreachable server, a dropped dump, a killed connection) are in
//! `tests/conformance.rs`; these are PostgreSQL's own.

#![allow(
    clippy::disallowed_methods,
    reason = "tests may panic on an unexpected row (tokio_postgres::Row::get, clippy.toml)"
)]

mod common;

use std::time::{Duration, Instant};

use common::{Role, TestDb, dump, unique, url_for};
use exporter_contract::{DatabaseUrl, DumpOptions, EngineError, ErrorKind, Source};
use exporter_postgres::PostgresSource;
use futures::StreamExt;
use tokio_postgres::NoTls;

async fn admin(db: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(
        &format!("host={} user=postgres dbname={db}", common::HOST),
        NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    client
}

fn assert_no_secret(e: &EngineError, secret: &str) {
    assert!(!e.to_string().contains(secret), "{e}");
    assert!(!format!("{e:?}").contains(secret), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_database_is_not_found() {
    let name = unique("missing");
    let url = url_for("postgres", &name);
    let err = dump(url.clone(), DumpOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&name), "{err}");
    let err = PostgresSource::new(url).preflight().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_never_shown() {
    let db = unique("nopw");
    let url =
        DatabaseUrl::parse(&format!("postgres://postgres:s3cretpw@127.0.0.1:5432/{db}")).unwrap();
    let source = PostgresSource::new(url.clone());
    assert_eq!(
        source.describe(),
        format!("postgresql postgres://postgres:****@127.0.0.1:5432/{db}")
    );
    let err = source.preflight().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_no_secret(&err, "s3cretpw");
    // A verifying mode without a root certificate is refused before connecting (libpq does
    // the same), never downgraded.
    let tls =
        DatabaseUrl::parse("postgres://postgres:s3cretpw@127.0.0.1:5432/x?sslmode=verify-full")
            .unwrap();
    let err = PostgresSource::new(tls).preflight().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("sslrootcert=FILE"), "{err}");
    assert_no_secret(&err, "s3cretpw");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_table_is_permission_naming_it() {
    let role = Role::new("limited");
    let db = TestDb::new("perm");
    db.sql(&format!(
        "CREATE TABLE open_t (x int); CREATE TABLE \"Secret T\" (y int); INSERT INTO \"Secret T\" VALUES (1);
         GRANT CONNECT ON DATABASE {db} TO {r}; GRANT USAGE ON SCHEMA public TO {r};
         GRANT SELECT ON open_t TO {r}; REVOKE SELECT ON \"Secret T\" FROM {r}",
        db = db.name,
        r = role.0
    ));
    let url = url_for(&role.0, &db.name);
    let err = PostgresSource::new(url.clone())
        .preflight()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permission, "{err}");
    assert_eq!(err.object(), Some("table public.\"Secret T\""));
    let err = dump(url, DumpOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permission, "{err}");
    assert_eq!(err.object(), Some("table public.\"Secret T\""), "{err}");
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rls_hiding_rows_fails_instead_of_dumping_fewer() {
    let role = Role::new("rls");
    let db = TestDb::new("rls");
    db.sql(&format!(
        "CREATE TABLE hidden (id int, owner_name text);
         INSERT INTO hidden SELECT g, CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END FROM generate_series(1, 40000) g;
         ALTER TABLE hidden ENABLE ROW LEVEL SECURITY; ALTER TABLE hidden FORCE ROW LEVEL SECURITY;
         CREATE POLICY only_a ON hidden FOR SELECT USING (owner_name = 'a');
         GRANT CONNECT ON DATABASE {db} TO {r}; GRANT USAGE ON SCHEMA public TO {r}; GRANT SELECT ON hidden TO {r}",
        db = db.name,
        r = role.0
    ));
    // Large enough for the size estimate to sample it first (1 MiB): that sample fails too,
    // and must change nothing.
    let size: u64 = db
        .sql("SELECT pg_table_size('hidden')")
        .trim()
        .parse()
        .unwrap();
    assert!(size >= 1 << 20, "{size}");
    let url = url_for(&role.0, &db.name);
    // The role can read half of the rows; a dump must not pretend that is all.
    let err = dump(url.clone(), DumpOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permission, "{err}");
    assert_eq!(err.object(), Some("table public.hidden"), "{err}");
    assert!(err.message().contains("row-level security"), "{err}");
    let err = exporter_postgres::fingerprint_database(&url)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permission);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_object_fails_by_name() {
    let db = TestDb::new("unsup");
    // Foreign table partitions of trees loaded through their root (catalog/foreign_tables.rs).
    db.sql(
        "CREATE TABLE t (id int PRIMARY KEY);
         CREATE FOREIGN DATA WRAPPER exp_fdw; CREATE SERVER exp_srv FOREIGN DATA WRAPPER exp_fdw;
         CREATE TYPE exp_color AS ENUM ('red', 'green');
         CREATE TABLE exp_h (c exp_color) PARTITION BY HASH (c);
         CREATE FOREIGN TABLE exp_h0 PARTITION OF exp_h FOR VALUES WITH (MODULUS 2, REMAINDER 0)
           SERVER exp_srv;
         CREATE FOREIGN TABLE exp_h1 PARTITION OF exp_h FOR VALUES WITH (MODULUS 2, REMAINDER 1)
           SERVER exp_srv;",
    );
    let err = dump(db.url(), DumpOptions::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert_eq!(err.object(), Some("foreign table public.exp_h0"), "{err}");
    assert!(
        err.to_string()
            .contains("foreign table public.exp_h0 (a partition of public.exp_h), foreign table public.exp_h1 (a partition of public.exp_h)"),
        "{err}"
    );
}

/// Wait until the exporter's backend on `db` satisfies `cond`, then return its pid.
async fn exporter_backend(admin: &tokio_postgres::Client, db: &str, cond: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = admin
            .query(
                &format!("SELECT pid FROM pg_stat_activity WHERE application_name = 'exporter' AND datname = $1 AND {cond}"),
                &[&db],
            )
            .await
            .unwrap();
        if let Some(row) = rows.first() {
            return row.get(0);
        }
        assert!(
            Instant::now() < deadline,
            "no exporter backend on {db} with {cond}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_terminated_while_waiting_on_lock_fails() {
    let db = TestDb::new("term");
    db.sql("CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
    let holder = admin(&db.name).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let url = db.url();
    let task = tokio::spawn(async move { dump(url, DumpOptions::default()).await });
    let watcher = admin("postgres").await;
    let pid = exporter_backend(&watcher, &db.name, "wait_event_type = 'Lock'").await;
    watcher
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let err = task
        .await
        .unwrap()
        .expect_err("a terminated dump must not succeed");
    assert!(
        matches!(err.kind(), ErrorKind::Protocol | ErrorKind::Cancelled),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("57P01") || err.to_string().contains("closed"),
        "{err}"
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_terminated_mid_copy_fails() {
    let db = TestDb::new("midcopy");
    // ~40 MB of COPY text: far more than the channel and socket buffers hold.
    db.sql("CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 6) AS pad FROM generate_series(1, 200000) g");
    let mut d = PostgresSource::new(db.url())
        .dump(DumpOptions::default())
        .await
        .unwrap();
    let first = d
        .body
        .next()
        .await
        .expect("a first chunk")
        .expect("ok chunk");
    assert!(!first.is_empty());
    let watcher = admin("postgres").await;
    // The dump has two backends: the snapshot's connection (idle in its transaction, its last
    // query a catalog read) and the raw reader running the table's COPY. Terminate the one in
    // the COPY: the backend stays active in it while the unread body holds back its output.
    // (Killing the snapshot's connection instead is a different failure, named by endpoint.)
    let pid = exporter_backend(
        &watcher,
        &db.name,
        "state = 'active' AND query LIKE 'COPY %'",
    )
    .await;
    watcher
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let mut body_error = None;
    while let Some(item) = d.body.next().await {
        if let Err(e) = item {
            body_error = Some(e);
        }
    }
    let completion = d.completion.await;
    let err = completion.expect_err("completion must report the lost connection");
    assert!(
        matches!(err.kind(), ErrorKind::Protocol | ErrorKind::Cancelled),
        "{err:?}"
    );
    assert_eq!(err.object(), Some("table public.big"), "{err}");
    let body_error = body_error.expect("the body ends with an error item");
    assert_eq!(body_error.kind(), err.kind());
}
