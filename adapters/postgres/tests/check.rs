//! `Source::check` of PostgreSQL beyond the conformance suite: every kind of missing privilege
//! the dump needs (materialized views, large objects, row-level security that applies to the
//! role), named with its object; objects the engine refuses, found by the dry run of the
//! dump's start; a superuser's check of the same database passes; the check right before a
//! dump keeps the dump's start for it (`Source::check_and_hold`).

mod common;

use common::{Role, TestDb, sql, url_for};
use std::time::Duration;

use exporter_contract::{DumpOptions, Source};
use exporter_postgres::PostgresSource;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_each_missing_privilege_and_what_the_engine_refuses() {
    let role = Role::new("chk");
    let db = TestDb::new("chk");
    db.sql(&format!(
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1);
         CREATE MATERIALIZED VIEW mv AS SELECT id FROM t;
         CREATE TABLE own_forced (id int); ALTER TABLE own_forced OWNER TO {r};
         ALTER TABLE own_forced ENABLE ROW LEVEL SECURITY; ALTER TABLE own_forced FORCE ROW LEVEL SECURITY;
         CREATE TABLE own_plain (id int); ALTER TABLE own_plain OWNER TO {r};
         ALTER TABLE own_plain ENABLE ROW LEVEL SECURITY;
         GRANT SELECT ON t TO {r};",
        r = role.0
    ));
    let first_lo: u32 = db
        .sql("SELECT lo_from_bytea(0, 'x')")
        .trim()
        .parse()
        .unwrap();
    db.sql("SELECT lo_from_bytea(0, 'y')");
    let report = PostgresSource::new(url_for(&role.0, &db.name))
        .check(DumpOptions::default())
        .await
        .expect("the role can connect");
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            format!(
                "large object {first_lo}: SELECT missing: the role may not read it, nor 1 more \
                 large object(s)"
            ),
            "materialized view public.mv: SELECT missing: the role may not read it".to_owned(),
            "table public.own_forced: BYPASSRLS missing: row-level security would hide rows from \
             the role (the dump reads with row_security off and fails rather than dump fewer \
             rows): dump as its owner, a superuser or a role with BYPASSRLS"
                .to_owned(),
        ]
    );
    assert_eq!(report.server.engine, "postgresql");
    assert_eq!(
        report.server.version,
        sql("postgres", "SHOW server_version").trim()
    );

    // The superuser may read everything: no problem, and the dump's start passes.
    let report = PostgresSource::new(db.url())
        .check(DumpOptions::default().with_jobs(2))
        .await
        .unwrap();
    assert!(report.passed(), "{:?}", report.problems);
    assert!(report.size_bytes.is_some_and(|b| b > 0), "{report:?}");
    assert!(report.server.tls.is_some());

    // An object the engine cannot export is found by the dry run of the dump's start.
    // (A foreign table partition of a tree loaded through its root: catalog/foreign_tables.rs.)
    db.sql(
        "CREATE FOREIGN DATA WRAPPER exp_fdw; CREATE SERVER exp_srv FOREIGN DATA WRAPPER exp_fdw;
         CREATE TYPE exp_color AS ENUM ('red', 'green');
         CREATE TABLE exp_h (c exp_color) PARTITION BY HASH (c);
         CREATE FOREIGN TABLE exp_h1 PARTITION OF exp_h FOR VALUES WITH (MODULUS 1, REMAINDER 0)
           SERVER exp_srv;",
    );
    let report = PostgresSource::new(db.url())
        .check(DumpOptions::default())
        .await
        .unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let p = &report.problems[0];
    assert_eq!(p.object, "foreign table public.exp_h1");
    assert_eq!(p.privilege, None);
    assert!(
        p.message.contains("cannot be exported faithfully"),
        "{}",
        p.message
    );
}

/// `check_and_hold` that passes (the start is then kept for `keep_for`).
async fn checked_and_kept(source: &PostgresSource, options: DumpOptions, keep_for: Duration) {
    let report = source.check_and_hold(options, keep_for).await.unwrap();
    assert!(report.passed(), "{:?}", report.problems);
}

/// Whether a session other than the kept start's can take `table`'s `ACCESS EXCLUSIVE` lock
/// within 300 ms (the kept start holds `ACCESS SHARE` on every table, which conflicts).
fn exclusive_lock_free(db: &str, table: &str) -> bool {
    let out = std::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-d", db])
        .arg("-c")
        .arg(format!(
            "BEGIN; SET LOCAL lock_timeout = '300ms'; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; ROLLBACK"
        ))
        .output()
        .expect("psql runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || stderr.contains("lock timeout"),
        "the probe failed otherwise: {stderr}"
    );
    out.status.success()
}

/// Sessions on `db` idle inside a transaction: a kept start.
fn idle_in_transaction(db: &str) -> u32 {
    sql(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND state = 'idle in transaction'"
        ),
    )
    .trim()
    .parse()
    .unwrap()
}

/// The rows of `table` in a dump script: the lines of its `COPY` block.
fn copied_rows(script: &[u8], table: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(script);
    let head = format!("COPY {table} ");
    let mut lines = text.lines().skip_while(|l| !l.starts_with(&head));
    assert!(lines.next().is_some(), "no COPY of {table} in:\n{text}");
    lines
        .take_while(|l| *l != "\\.")
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_before_a_dump_keeps_its_start_and_the_dump_continues_it() {
    let db = TestDb::new("chk_hold");
    db.sql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);");
    let source = PostgresSource::new(db.url());
    checked_and_kept(&source, DumpOptions::default(), Duration::from_secs(60)).await;

    // Kept: one session in its transaction, every table locked (no DDL can slip in before
    // the COPY), its snapshot taken at the check.
    assert_eq!(idle_in_transaction(&db.name), 1);
    assert!(!exclusive_lock_free(&db.name, "t"));
    db.sql("INSERT INTO t VALUES (4)");

    // The dump continues the kept start: its snapshot predates the fourth row.
    let (script, summary) = common::dump(db.url(), DumpOptions::default())
        .await
        .unwrap();
    assert_eq!(copied_rows(&script, "public.t"), ["1", "2", "3"]);
    assert_eq!(summary.tables[0].rows, 3);
    assert_eq!(idle_in_transaction(&db.name), 0);
    assert!(exclusive_lock_free(&db.name, "t"));

    // Nothing kept any more: the next dump starts afresh and sees the fourth row.
    let (script, _) = common::dump(db.url(), DumpOptions::default())
        .await
        .unwrap();
    assert_eq!(copied_rows(&script, "public.t"), ["1", "2", "3", "4"]);

    // A plain check keeps nothing.
    assert!(source.check(DumpOptions::default()).await.unwrap().passed());
    assert_eq!(idle_in_transaction(&db.name), 0);
    assert!(exclusive_lock_free(&db.name, "t"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_start_that_is_gone_or_unclaimed_does_not_hold_the_dump_or_the_tables() {
    let db = TestDb::new("chk_gone");
    db.sql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);");
    let source = PostgresSource::new(db.url());

    // Terminated by an administrator while kept: the dump starts afresh and succeeds.
    checked_and_kept(&source, DumpOptions::default(), Duration::from_secs(60)).await;
    db.sql("INSERT INTO t VALUES (2)");
    let killed = sql(
        "postgres",
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = '{}' AND state = 'idle in transaction'",
            db.name
        ),
    );
    assert_eq!(killed.trim(), "1");
    let (script, summary) = common::dump(db.url(), DumpOptions::default())
        .await
        .unwrap();
    assert_eq!(copied_rows(&script, "public.t"), ["1", "2"]);
    assert_eq!(summary.tables[0].rows, 2);

    // Kept for a dump with other options: not taken by this one, and released when its
    // time is up.
    checked_and_kept(
        &source,
        DumpOptions::default().with_ownership(false),
        Duration::from_secs(2),
    )
    .await;
    assert!(!exclusive_lock_free(&db.name, "t"));
    db.sql("INSERT INTO t VALUES (3)");
    let (script, _) = common::dump(db.url(), DumpOptions::default())
        .await
        .unwrap();
    assert_eq!(copied_rows(&script, "public.t"), ["1", "2", "3"]);
    assert_eq!(
        idle_in_transaction(&db.name),
        1,
        "the other start is still kept"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(idle_in_transaction(&db.name), 0);
    assert!(exclusive_lock_free(&db.name, "t"));
}
