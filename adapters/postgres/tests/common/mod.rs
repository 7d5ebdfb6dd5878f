//! Helpers shared by the integration tests: throwaway databases on the local server, dumping
//! through the adapter, restoring with stock `psql`.

#![allow(
    clippy::disallowed_macros,
    clippy::disallowed_methods,
    reason = "tests may print and use std::fs (clippy.toml)"
)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use exporter_contract::{DatabaseUrl, DumpOptions, DumpSummary, EngineError, Source};
use exporter_postgres::PostgresSource;
use futures::StreamExt;

pub const HOST: &str = "127.0.0.1";
pub const PORT: u16 = 5432;
pub const SUPERUSER: &str = "postgres";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique, lower-case name for a throwaway object.
pub fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("exp_pg_{tag}_{}_{nanos}_{n}", std::process::id())
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/postgres")
        .join(rel)
}

/// Run psql as the superuser; panic with its stderr unless it succeeds.
pub fn psql(db: &str, args: &[&str]) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            HOST,
            "-p",
            &PORT.to_string(),
            "-U",
            SUPERUSER,
            "-d",
            db,
        ])
        .args(args)
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {args:?} on {db} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn sql(db: &str, statement: &str) -> String {
    psql(db, &["-A", "-t", "-c", statement])
}

/// A database that is dropped when the value goes out of scope.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub fn new(tag: &str) -> Self {
        let name = unique(tag);
        sql("postgres", &format!("CREATE DATABASE {name}"));
        Self { name }
    }

    pub fn url(&self) -> DatabaseUrl {
        url_for(SUPERUSER, &self.name)
    }

    pub fn run_file(&self, path: &Path) {
        psql(&self.name, &["-f", path.to_str().unwrap()]);
    }

    pub fn sql(&self, statement: &str) -> String {
        sql(&self.name, statement)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-X", "-q", "-h", HOST, "-U", SUPERUSER, "-d", "postgres", "-c",
            ])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// A LOGIN role that exists until dropped (after the databases that reference it).
pub struct Role(pub String);

impl Role {
    pub fn new(tag: &str) -> Self {
        let name = unique(tag);
        sql("postgres", &format!("CREATE ROLE {name} LOGIN"));
        Self(name)
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                "-X", "-q", "-h", HOST, "-U", SUPERUSER, "-d", "postgres", "-c",
            ])
            .arg(format!("DROP ROLE IF EXISTS {}", self.0))
            .output();
    }
}

pub fn url_for(user: &str, db: &str) -> DatabaseUrl {
    DatabaseUrl::parse(&format!("postgres://{user}@{HOST}:{PORT}/{db}")).unwrap()
}

/// Dump through the adapter: the whole body, then the completion.
pub async fn dump(
    url: DatabaseUrl,
    options: DumpOptions,
) -> Result<(Vec<u8>, DumpSummary), EngineError> {
    let source = PostgresSource::new(url);
    let mut dump = source.dump(options).await?;
    assert_eq!(dump.meta.engine, "postgresql");
    let mut script = Vec::new();
    while let Some(chunk) = dump.body.next().await {
        script.extend_from_slice(&chunk?);
    }
    let summary = dump.completion.await?;
    Ok((script, summary))
}

/// Restore a script into `db` with stock psql exactly as a user would; returns stderr.
pub fn restore(script: &[u8], db: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dump.sql");
    std::fs::write(&file, script).unwrap();
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            HOST,
            "-U",
            SUPERUSER,
            "-d",
            db,
            "-f",
        ])
        .arg(&file)
        .output()
        .expect("psql runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "restore failed: {stderr}");
    stderr
}

/// Output of a check file with headers, so names and values are compared.
pub fn check_output(db: &str, check: &Path) -> String {
    psql(db, &["-A", "-F", "|", "-f", check.to_str().unwrap()])
}

/// Dump `source`, restore into a fresh database, assert that the restore printed nothing on
/// stderr and that fingerprints match on both sides; returns the restored database.
pub async fn round_trip(source: &TestDb) -> (TestDb, Vec<u8>, DumpSummary) {
    round_trip_with(source, DumpOptions::default()).await
}

/// [`round_trip`] with explicit dump options (e.g. parallel jobs).
pub async fn round_trip_with(
    source: &TestDb,
    options: DumpOptions,
) -> (TestDb, Vec<u8>, DumpSummary) {
    let (script, summary) = dump(source.url(), options).await.expect("dump succeeds");
    let target = TestDb::new("restore");
    let stderr = restore(&script, &target.name);
    assert_eq!(stderr.trim(), "", "restore printed errors or warnings");
    let before = exporter_postgres::fingerprint_database(&source.url())
        .await
        .expect("source fingerprints");
    assert_eq!(
        before, summary.tables,
        "fingerprint_database equals the dump's summary"
    );
    let after = exporter_postgres::fingerprint_database(&target.url())
        .await
        .expect("target fingerprints");
    assert_eq!(before, after, "restored content equals the source");
    (target, script, summary)
}

/// `pg_dump`'s plain output of `db` (the reference tool), with the per-run `\restrict` keys
/// removed: two databases with equal schemas, data, owners and privileges give equal text.
pub fn pg_dump_text(db: &str) -> String {
    let out = Command::new("pg_dump")
        .args(["-h", HOST, "-U", SUPERUSER, "-d", db])
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "pg_dump {db} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("pg_dump output is UTF-8")
        .lines()
        .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Assert that pg_dump sees no difference between `source` and `target`; on failure, show the
/// first differing lines.
pub fn assert_pg_dump_equal(source: &str, target: &str) {
    let a = pg_dump_text(source);
    let b = pg_dump_text(target);
    if a != b {
        let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
        let first = la.iter().zip(&lb).take_while(|(x, y)| x == y).count();
        let end = |v: &Vec<&str>| v[first..(first + 12).min(v.len())].join("\n");
        panic!(
            "pg_dump of {source} and {target} differ from line {} on:\n--- source\n{}\n--- target\n{}",
            first + 1,
            end(&la),
            end(&lb)
        );
    }
}

/// `pg_dump --schema-only` of `db` without the per-run `\restrict` keys: for comparing the
/// schema of a source and a restore whose rows were loaded in parallel (another physical
/// order, which pg_dump's data section would show; rows are compared by fingerprint).
pub fn schema_only(db: &str) -> String {
    let out = Command::new("pg_dump")
        .args(["-h", HOST, "-U", SUPERUSER, "--schema-only", "-d", db])
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
        .collect::<Vec<_>>()
        .join("\n")
}
