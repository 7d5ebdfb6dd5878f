//! The engine conformance suite (`exporter-conformance`) against the local MariaDB: each
//! database is a throwaway schema with a user of its own (with a password, so redaction is
//! checked); the adapter's connections are found (and killed) by that user in the process list.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use exporter_conformance::{self as conformance, Harness};
use exporter_contract::{DatabaseUrl, Source, Target};
use exporter_mysql::{MysqlSource, MysqlTarget};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

const ROOT: &str = "mysql://root@127.0.0.1:3306";
const SECRET: &str = "my-conformance-s3cret";
/// The hosts the user is created for (TCP from 127.0.0.1 may match either name).
const HOSTS: [&str; 3] = ["%", "127.0.0.1", "localhost"];

static COUNTER: AtomicU32 = AtomicU32::new(0);

async fn root() -> Conn {
    Conn::new(Opts::from_url(ROOT).unwrap())
        .await
        .expect("MariaDB must be reachable at 127.0.0.1:3306 as root")
}

/// A schema and a user that may do anything in it, both dropped with the value.
struct Schema {
    name: String,
}

impl Schema {
    /// The user has the schema's name.
    fn user(&self) -> &str {
        &self.name
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: clean up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut c = root().await;
                let _ = c
                    .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                    .await;
                for host in HOSTS {
                    let _ = c
                        .query_drop(format!("DROP USER IF EXISTS '{name}'@'{host}'"))
                        .await;
                }
            });
        })
        .join();
    }
}

struct Mysql;

impl Mysql {
    /// Ids of the schema user's connections.
    async fn ours(schema: &Schema) -> Vec<u64> {
        root()
            .await
            .exec(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?",
                (schema.user(),),
            )
            .await
            .unwrap()
    }
}

impl Harness for Mysql {
    type Db = Schema;

    fn secret(&self) -> &'static str {
        SECRET
    }

    async fn create(&self, tag: &str) -> Schema {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let schema = Schema {
            name: format!("exp_myc_{tag}_{}_{n}", std::process::id()),
        };
        let mut c = root().await;
        c.query_drop(format!("CREATE DATABASE `{}`", schema.name))
            .await
            .unwrap();
        for host in HOSTS {
            c.query_drop(format!(
                "CREATE USER '{}'@'{host}' IDENTIFIED BY '{SECRET}'",
                schema.user()
            ))
            .await
            .unwrap();
            c.query_drop(format!(
                "GRANT ALL ON `{}`.* TO '{}'@'{host}'",
                schema.name,
                schema.user()
            ))
            .await
            .unwrap();
        }
        schema
    }

    async fn seed(&self, schema: &Schema, rows: u64) {
        let half = rows / 2;
        let mut c = root().await;
        c.query_drop(format!(
            "USE `{}`;
             SET SESSION max_recursive_iterations = 1000000;
             CREATE TABLE a (id INT PRIMARY KEY, pad VARCHAR(1100));
             CREATE TABLE b (id INT PRIMARY KEY, pad VARCHAR(1100), n DECIMAL(12,4));
             INSERT INTO a WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {half})
               SELECT i, REPEAT(MD5(i), 31) FROM s;
             INSERT INTO b WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {})
               SELECT i, REPEAT(MD5(i), 31), i / 7 FROM s;",
            schema.name,
            rows - half
        ))
        .await
        .unwrap();
    }

    fn url(&self, schema: &Schema) -> DatabaseUrl {
        DatabaseUrl::parse(&format!(
            "mysql://{}:{SECRET}@127.0.0.1:3306/{}",
            schema.user(),
            schema.name
        ))
        .unwrap()
    }

    fn unreachable_url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&format!("mysql://root:{SECRET}@127.0.0.1:1/x")).unwrap()
    }

    fn source(&self, url: DatabaseUrl) -> Arc<dyn Source> {
        Arc::new(MysqlSource::new(url))
    }

    fn target(&self, url: DatabaseUrl) -> Arc<dyn Target> {
        Arc::new(MysqlTarget::new(url))
    }

    async fn connections(&self, schema: &Schema) -> usize {
        Self::ours(schema).await.len()
    }

    async fn kill_connections(&self, schema: &Schema) -> usize {
        let ids = Self::ours(schema).await;
        let mut c = root().await;
        for id in &ids {
            let _ = c.query_drop(format!("KILL {id}")).await;
        }
        ids.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_ends_and_reports_completion() {
    conformance::dump_ends_and_reports_completion(&Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_into_an_empty_target() {
    conformance::restore_into_an_empty_target(&Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_fingerprints_equal_the_dump() {
    conformance::restore_fingerprints_equal_the_dump(&Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_dump_cancels_server_work() {
    conformance::dropping_a_dump_cancels_server_work(&Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connection_fails_classified() {
    conformance::killed_connection_fails_classified(&Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_never_shows_the_password() {
    conformance::describe_never_shows_the_password(&Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_of_a_readable_database_passes() {
    conformance::check_of_a_readable_database_passes(&Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_hears_every_table() {
    conformance::observer_hears_every_table(&Mysql).await;
}
