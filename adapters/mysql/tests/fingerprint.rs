//! The fingerprint pass of `verify --level restore` on several connections (issue 17),
//! against the real MariaDB on 127.0.0.1:3306 (root, empty password): the sample (a sequence,
//! a MyISAM table, a table of several MiB, every column type, triggers) dumped and restored
//! natively into a fresh database, whose fingerprints on one connection, on four, and through
//! `Target::fingerprint_with(4)` as `verify` calls it are all the dump's, in the dump's
//! order; a changed row changes them.
//!
//! Each test creates its own databases (`exp_fp_<tag>_<pid>_<nanos>`) and drops them.

#![allow(
    clippy::disallowed_macros,
    clippy::disallowed_methods,
    reason = "tests may print and use std::fs (clippy.toml)"
)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use exporter_contract::{
    DatabaseUrl, DumpOptions, EngineError, PayloadFormat, RestoreOptions, Source, Target,
};
use exporter_mysql::{MysqlSource, MysqlTarget, fingerprint_database, fingerprint_database_with};
use futures::StreamExt;

const ROOT: &str = "mysql://root@127.0.0.1:3306";

/// Run the stock client on `db` with `sql` on stdin; panics unless it succeeds.
fn client(db: Option<&str>, sql: &[u8]) -> String {
    let mut cmd = Command::new("mariadb");
    cmd.args([
        "-h127.0.0.1",
        "-P3306",
        "-uroot",
        "--batch",
        "--default-character-set=utf8mb4",
    ]);
    if let Some(db) = db {
        cmd.arg(db);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the mariadb client must be installed");
    let mut stdin = child.stdin.take().unwrap();
    let input = sql.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "mariadb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A database that exists for the test's lifetime.
struct TestDb {
    name: String,
}

impl TestDb {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("exp_fp_{tag}_{}_{nanos}", std::process::id());
        client(
            None,
            format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4").as_bytes(),
        );
        Self { name }
    }

    fn url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&format!("{ROOT}/{}", self.name)).unwrap()
    }

    fn run(&self, sql: &str) -> String {
        client(Some(&self.name), sql.as_bytes())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args(["-h127.0.0.1", "-P3306", "-uroot", "-e"])
            .arg(format!("DROP DATABASE IF EXISTS `{}`", self.name))
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprint_on_four_connections_equals_one_and_the_dump() {
    let source = TestDb::new("src");
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mysql/sample.sql");
    client(Some(&source.name), &std::fs::read(sample).unwrap());
    source.run(
        "CREATE TABLE wide (id INT PRIMARY KEY, pad VARCHAR(64)) ENGINE=InnoDB;
         INSERT INTO wide SELECT seq, MD5(seq) FROM seq_1_to_20000;
         CREATE TABLE empty_one (id INT) ENGINE=InnoDB;",
    );
    let dump = MysqlSource::new(source.url())
        .dump(DumpOptions::default())
        .await
        .expect("dump starts");
    let mut body = dump.body;
    let mut script = Vec::new();
    while let Some(chunk) = body.next().await {
        script.extend_from_slice(&chunk.expect("body chunk"));
    }
    let dumped = dump.completion.await.expect("dump completes");
    let names: Vec<&str> = dumped.tables.iter().map(|t| t.name.as_str()).collect();
    for expected in ["order_no", "bulk", "legacy_myisam", "wide", "empty_one"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert!(
        dumped.tables.len() >= 8,
        "several entries to spread: {names:?}"
    );

    let restored = TestDb::new("dst");
    let target = MysqlTarget::new(restored.url());
    let parts: Vec<Result<Bytes, EngineError>> = script
        .chunks(64 << 10)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    target
        .restore(
            PayloadFormat::Sql,
            futures::stream::iter(parts).boxed(),
            RestoreOptions::default(),
        )
        .await
        .expect("native restore");

    let one = fingerprint_database(&restored.url()).await.unwrap();
    assert_eq!(one, dumped.tables, "one connection: the dump's summaries");
    let four = fingerprint_database_with(&restored.url(), 4).await.unwrap();
    assert_eq!(four, one, "four connections");
    assert_eq!(
        target.fingerprint_with(4).await.unwrap(),
        one,
        "Target::fingerprint_with(4)"
    );
    // More connections than entries, and 0 (counted as 1), come to the same.
    assert_eq!(
        fingerprint_database_with(&restored.url(), 64)
            .await
            .unwrap(),
        one
    );
    assert_eq!(
        fingerprint_database_with(&restored.url(), 0).await.unwrap(),
        one
    );
    // A changed row changes its table's fingerprint, and only that one.
    restored.run("UPDATE wide SET pad = 'changed' WHERE id = 777");
    let changed = fingerprint_database_with(&restored.url(), 4).await.unwrap();
    let differing: Vec<&str> = changed
        .iter()
        .zip(&one)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.name.as_str())
        .collect();
    assert_eq!(differing, ["wide"]);
}
