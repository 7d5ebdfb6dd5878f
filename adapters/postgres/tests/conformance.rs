//! The engine conformance suite (`exporter-conformance`) against the local PostgreSQL: each
//! database is a throwaway database of the test server; the adapter's connections are found
//! (and terminated) by their `application_name` in `pg_stat_activity`.

mod common;

use std::sync::Arc;

use common::{HOST, PORT, TestDb, sql};
use exporter_conformance::{self as conformance, Harness};
use exporter_contract::{DatabaseUrl, Source, Target};
use exporter_postgres::{PostgresSource, PostgresTarget};

/// The test server trusts local connections, so any password is accepted — and must still
/// never be shown.
const SECRET: &str = "pg-conformance-s3cret";

struct Postgres;

impl Postgres {
    fn count(db: &TestDb, select: &str) -> usize {
        sql(
            "postgres",
            &format!(
                "SELECT {select} FROM pg_stat_activity \
                 WHERE application_name = 'exporter' AND datname = '{}'",
                db.name
            ),
        )
        .trim()
        .parse()
        .expect("a count")
    }
}

impl Harness for Postgres {
    type Db = TestDb;

    fn secret(&self) -> &'static str {
        SECRET
    }

    async fn create(&self, tag: &str) -> TestDb {
        TestDb::new(tag)
    }

    async fn seed(&self, db: &TestDb, rows: u64) {
        let half = rows / 2;
        db.sql(&format!(
            "CREATE TABLE a (id int PRIMARY KEY, pad text);
             CREATE TABLE b (id int PRIMARY KEY, pad text, n numeric);
             INSERT INTO a SELECT g, repeat(md5(g::text), 31) FROM generate_series(1, {half}) g;
             INSERT INTO b SELECT g, repeat(md5(g::text), 31), g / 7.0 FROM generate_series(1, {}) g;",
            rows - half
        ));
    }

    fn url(&self, db: &TestDb) -> DatabaseUrl {
        DatabaseUrl::parse(&format!(
            "postgres://postgres:{SECRET}@{HOST}:{PORT}/{}",
            db.name
        ))
        .unwrap()
    }

    fn unreachable_url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&format!(
            "postgres://postgres:{SECRET}@127.0.0.1:1/postgres"
        ))
        .unwrap()
    }

    fn source(&self, url: DatabaseUrl) -> Arc<dyn Source> {
        Arc::new(PostgresSource::new(url))
    }

    fn target(&self, url: DatabaseUrl) -> Arc<dyn Target> {
        Arc::new(PostgresTarget::new(url))
    }

    async fn connections(&self, db: &TestDb) -> usize {
        Self::count(db, "count(*)")
    }

    async fn kill_connections(&self, db: &TestDb) -> usize {
        Self::count(db, "count(pg_terminate_backend(pid))")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_ends_and_reports_completion() {
    conformance::dump_ends_and_reports_completion(&Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_into_an_empty_target() {
    conformance::restore_into_an_empty_target(&Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_fingerprints_equal_the_dump() {
    conformance::restore_fingerprints_equal_the_dump(&Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_dump_cancels_server_work() {
    conformance::dropping_a_dump_cancels_server_work(&Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connection_fails_classified() {
    conformance::killed_connection_fails_classified(&Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_never_shows_the_password() {
    conformance::describe_never_shows_the_password(&Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_of_a_readable_database_passes() {
    conformance::check_of_a_readable_database_passes(&Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_hears_every_table() {
    conformance::observer_hears_every_table(&Postgres).await;
}
