//! The engine conformance suite (`exporter-conformance`) against dedicated redis-server
//! processes: each database is a server of its own, started with a password (a restore target
//! is a whole server); the adapter's connections are found (and killed) by their client name.

mod common;

use std::sync::Arc;

use common::{Server, closed_port};
use exporter_conformance::{self as conformance, Harness};
use exporter_contract::{DatabaseUrl, Source, Target};
use exporter_redis::{CLIENT_NAME, RedisSource, RedisTarget};

const SECRET: &str = "redis-conformance-s3cret";

struct Redis;

impl Redis {
    /// Ids of the adapter's connections in `CLIENT LIST`.
    fn ours(server: &Server) -> Vec<String> {
        let name = format!("name={CLIENT_NAME} ");
        server
            .cli(&["CLIENT", "LIST"])
            .lines()
            .filter(|l| l.contains(&name))
            .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
            .map(str::to_owned)
            .collect()
    }
}

impl Harness for Redis {
    type Db = Server;

    fn secret(&self) -> &'static str {
        SECRET
    }

    async fn create(&self, _tag: &str) -> Server {
        Server::start_with(&["--requirepass", SECRET], Some(SECRET))
    }

    async fn seed(&self, server: &Server, rows: u64) {
        let mut c = server.client();
        for start in (0..rows).step_by(1000) {
            let mut p = redis::pipe();
            for i in start..(start + 1000).min(rows) {
                let value = format!("{i:08}").repeat(125);
                p.cmd("SET").arg(format!("key:{i}")).arg(value).ignore();
            }
            p.query::<()>(&mut c).unwrap();
        }
    }

    fn url(&self, server: &Server) -> DatabaseUrl {
        server.url_with(&format!(":{SECRET}"), "")
    }

    fn unreachable_url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&format!("redis://:{SECRET}@127.0.0.1:{}", closed_port())).unwrap()
    }

    fn source(&self, url: DatabaseUrl) -> Arc<dyn Source> {
        Arc::new(RedisSource::new(url))
    }

    fn target(&self, url: DatabaseUrl) -> Arc<dyn Target> {
        Arc::new(RedisTarget::new(url))
    }

    async fn connections(&self, server: &Server) -> usize {
        Self::ours(server).len()
    }

    async fn kill_connections(&self, server: &Server) -> usize {
        let ids = Self::ours(server);
        for id in &ids {
            server.cli(&["CLIENT", "KILL", "ID", id]);
        }
        ids.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_ends_and_reports_completion() {
    conformance::dump_ends_and_reports_completion(&Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_into_an_empty_target() {
    conformance::restore_into_an_empty_target(&Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_fingerprints_equal_the_dump() {
    conformance::restore_fingerprints_equal_the_dump(&Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_dump_cancels_server_work() {
    conformance::dropping_a_dump_cancels_server_work(&Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connection_fails_classified() {
    conformance::killed_connection_fails_classified(&Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_never_shows_the_password() {
    conformance::describe_never_shows_the_password(&Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_of_a_readable_database_passes() {
    conformance::check_of_a_readable_database_passes(&Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observer_hears_every_table() {
    conformance::observer_hears_every_table(&Redis).await;
}
