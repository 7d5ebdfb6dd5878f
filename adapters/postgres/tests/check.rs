//! `Source::check` of PostgreSQL beyond the conformance suite: every kind of missing privilege
//! the dump needs (materialized views, large objects, row-level security that applies to the
//! role), named with its object; objects the engine refuses, found by the dry run of the
//! dump's start; a superuser's check of the same database passes.

mod common;

use common::{Role, TestDb, sql, url_for};
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
