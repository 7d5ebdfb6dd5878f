//! PostgreSQL: the test server (required, never skipped), throw-away databases dropped by a
//! guard, psql, stock-tool restores, and independent reads of tables, rows, fingerprints,
//! sequences and schema for comparisons.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// Session settings that make `COPY … TO STDOUT` text exact and portable; the same ones the
/// PostgreSQL engine fixes for its own session (design.md section 5), so fingerprints computed
/// here over psql's COPY output are comparable with the manifest's.
pub(crate) const PGOPTIONS: &str = "-c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3 \
                         -c TimeZone=UTC -c bytea_output=hex";

/// Where the test PostgreSQL listens.
pub const PG_HOST: &str = "127.0.0.1";
/// Port of the test PostgreSQL.
pub const PG_PORT: u16 = 5432;

/// The test PostgreSQL as a scratch server (`verify --scratch`, `dump --verify restore`).
pub fn pg_scratch() -> String {
    format!("postgres://postgres@{PG_HOST}:{PG_PORT}/postgres")
}

/// Fail the test (never skip) unless PostgreSQL answers at 127.0.0.1:5432. Checked once per
/// test process; also drops leftovers of earlier runs whose process is gone.
#[track_caller]
pub fn require_postgres() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let out = psql_raw("postgres", &["-c", "SELECT 1"], None);
        match out {
            Ok(o) if o.status.success() => {
                drop_stale_databases();
                Ok(())
            }
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
            Err(e) => Err(format!("cannot run psql: {e}")),
        }
    });
    if let Err(e) = ready {
        panic!(
            "PostgreSQL is required at {PG_HOST}:{PG_PORT} (user postgres, trust auth) and is not \
             reachable; start it (.ci/run does) — this test does not skip.\n{e}"
        );
    }
}

fn drop_stale_databases() {
    let Ok(list) = psql_raw(
        "postgres",
        &[
            "-c",
            "SELECT datname FROM pg_database WHERE datname LIKE 'exp\\_cli\\_%'",
        ],
        None,
    ) else {
        return;
    };
    for name in String::from_utf8_lossy(&list.stdout).lines() {
        // exp_cli_<test>_<pid>_<n>
        let parts: Vec<&str> = name.rsplitn(3, '_').collect();
        let Some(pid) = parts.get(1).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = psql_raw(
                "postgres",
                &[
                    "-c",
                    &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                ],
                None,
            );
        }
    }
}

pub fn psql_raw(db: &str, args: &[&str], stdin: Option<&[u8]>) -> std::io::Result<Output> {
    let mut child = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            PG_HOST,
            "-p",
        ])
        .arg(PG_PORT.to_string())
        .args(["-U", "postgres", "-d", db])
        .args(args)
        .env("PGOPTIONS", PGOPTIONS)
        .env("PGCLIENTENCODING", "UTF8")
        .env_remove("PGPASSWORD")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input)?;
    }
    child.wait_with_output()
}

/// Run SQL in `db` through psql (unaligned, tuples only) and return stdout; panics with psql's
/// stderr on failure.
#[track_caller]
pub fn psql(db: &str, sql: &str) -> String {
    let out = psql_raw(db, &["-c", sql], None).expect("run psql");
    assert!(
        out.status.success(),
        "psql -d {db} -c {sql:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("psql output is UTF-8")
}

/// Raw bytes of `COPY (query) TO STDOUT` / `COPY table TO STDOUT` in text format.
#[track_caller]
pub fn copy_out(db: &str, copy_source: &str) -> Vec<u8> {
    let sql = format!("COPY {copy_source} TO STDOUT");
    let out = psql_raw(db, &["-c", &sql], None).expect("run psql");
    assert!(
        out.status.success(),
        "psql -d {db} -c {sql:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub(crate) static DB_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A database created for one test and dropped (`WITH (FORCE)`) when the guard goes away.
#[derive(Debug)]
pub struct TestDb {
    /// The database name, `exp_cli_<test>_<pid>_<n>`.
    pub name: String,
}

impl TestDb {
    /// Create an empty database with a unique name derived from `test` (keep it short: names
    /// are limited to 63 bytes).
    #[track_caller]
    pub fn create(test: &str) -> Self {
        require_postgres();
        let n = DB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("exp_cli_{test}_{}_{n}", std::process::id());
        assert!(name.len() <= 63, "database name too long: {name}");
        psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        Self { name }
    }

    /// Create a database and run `sql` in it.
    #[track_caller]
    pub fn with_sql(test: &str, sql: &str) -> Self {
        let db = Self::create(test);
        db.run_script(sql);
        db
    }

    /// Create a database loaded from a sample file in `fixtures/sample/`.
    #[track_caller]
    pub fn from_sample(test: &str, file: &str) -> Self {
        let db = Self::create(test);
        let path = sample_sql(file);
        let out = psql_raw(&db.name, &["-f", path.to_str().expect("utf-8 path")], None)
            .expect("run psql -f");
        assert!(
            out.status.success(),
            "loading {} failed:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        db
    }

    /// Run a multi-statement script (fed on stdin, ON_ERROR_STOP).
    #[track_caller]
    pub fn run_script(&self, sql: &str) {
        let out = psql_raw(&self.name, &[], Some(sql.as_bytes())).expect("run psql");
        assert!(
            out.status.success(),
            "script in {} failed:\n{}\n--- script ---\n{sql}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run one query and return its trimmed unaligned output.
    #[track_caller]
    pub fn query(&self, sql: &str) -> String {
        psql(&self.name, sql).trim_end().to_owned()
    }

    /// `postgres://postgres@127.0.0.1:5432/<name>`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@{PG_HOST}:{PG_PORT}/{}", self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = psql_raw(
            "postgres",
            &[
                "-c",
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
            ],
            None,
        );
    }
}

/// A login role for one test (`exp_cli_<test>_<pid>`, no password: the test server trusts
/// local connections), dropped when the guard goes away (declare it before the databases it
/// has grants in, so they are dropped first).
pub struct TestRole(pub String);

impl TestRole {
    /// Create the role (replacing a leftover of the same name).
    #[track_caller]
    pub fn create(test: &str) -> Self {
        require_postgres();
        let name = format!("exp_cli_{test}_{}", std::process::id());
        psql("postgres", &format!("DROP ROLE IF EXISTS {name}"));
        psql("postgres", &format!("CREATE ROLE {name} LOGIN"));
        Self(name)
    }

    /// `postgres://<role>@127.0.0.1:5432/<db>`.
    pub fn url(&self, db: &TestDb) -> String {
        format!("postgres://{}@{PG_HOST}:{PG_PORT}/{}", self.0, db.name)
    }
}

impl Drop for TestRole {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            psql("postgres", &format!("DROP ROLE IF EXISTS {}", self.0))
        });
    }
}

/// A one-table database: `public.t (id int primary key, label text)` with `rows` rows.
#[track_caller]
pub fn small_db(test: &str, rows: u32) -> TestDb {
    TestDb::with_sql(
        test,
        &format!(
            "CREATE TABLE t (id integer PRIMARY KEY, label text);\n\
             INSERT INTO t SELECT i, 'row ' || i FROM generate_series(1, {rows}) AS i;\n"
        ),
    )
}

/// Restore an archive with the stock tools only, exactly as a user without exporter would:
/// `zstd -dc x.sql.zst | psql -X -v ON_ERROR_STOP=1 -q -d <db>`, and assert both succeed.
#[track_caller]
pub fn restore_with_stock_tools(archive: &Path, db: &TestDb) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            "set -euo pipefail; zstd -q -dc \"$1\" | psql -X -v ON_ERROR_STOP=1 -q -h \"$2\" -p \"$3\" -U postgres -d \"$4\"",
        )
        .arg("restore")
        .arg(archive)
        .arg(PG_HOST)
        .arg(PG_PORT.to_string())
        .arg(&db.name)
        .env_remove("PGOPTIONS")
        .stdin(Stdio::null())
        .output()
        .expect("run zstd | psql");
    assert!(
        out.status.success(),
        "restoring {} into {} with `zstd -dc | psql` failed ({:?}):\n{}",
        archive.display(),
        db.name,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One user table: quoted qualified name as the manifest writes it (`"public"."t"`), its
/// relkind (`r` table, `p` partitioned) and its partition root, if it is a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// `"schema"."table"`.
    pub name: String,
    /// `r` or `p`.
    pub relkind: char,
    /// The quoted name of the top of its partition tree, if it is a partition.
    pub partition_root: Option<String>,
}

const QUOTED_NAME: &str = "'\"' || replace(n.nspname, '\"', '\"\"') || '\".\"' || replace(c.relname, '\"', '\"\"') || '\"'";

/// Every user table (relkind `r` and `p`) outside the system schemas.
#[track_caller]
pub fn user_tables(db: &str) -> Vec<TableInfo> {
    let sql = format!(
        "SELECT {QUOTED_NAME}, c.relkind,
                coalesce((SELECT '\"' || replace(rn.nspname, '\"', '\"\"') || '\".\"' || replace(rc.relname, '\"', '\"\"') || '\"'
                          FROM pg_partition_root(c.oid) r(oid)
                          JOIN pg_class rc ON rc.oid = r.oid
                          JOIN pg_namespace rn ON rn.oid = rc.relnamespace
                          WHERE r.oid <> c.oid), '')
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
         ORDER BY 1"
    );
    psql(db, &sql)
        .lines()
        .map(|l| {
            let mut f = l.split('|');
            let name = f.next().expect("name").to_owned();
            let relkind = f
                .next()
                .expect("relkind")
                .chars()
                .next()
                .expect("relkind char");
            let root = f.next().unwrap_or_default();
            TableInfo {
                name,
                relkind,
                partition_root: (!root.is_empty()).then(|| root.to_owned()),
            }
        })
        .collect()
}

/// The non-generated columns of a table, quoted, in byte order of their names: the column
/// order of the fingerprint's canonical rows (FORMAT.md, "Fingerprints").
#[track_caller]
pub fn copy_columns(db: &str, table: &str) -> String {
    table_columns(db, table, "attname COLLATE \"C\"")
}

/// The non-generated columns of a table, quoted, in attnum order (the table's own order).
#[track_caller]
pub fn attnum_columns(db: &str, table: &str) -> String {
    table_columns(db, table, "attnum")
}

#[track_caller]
fn table_columns(db: &str, table: &str, order: &str) -> String {
    psql(
        db,
        &format!(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY {order}) FROM pg_attribute
             WHERE attrelid = '{}'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''",
            table.replace('\'', "''")
        ),
    )
    .trim()
    .to_owned()
}

/// COPY text lines of one table's own rows (`ONLY` for plain tables; the whole tree for a
/// partitioned table), sorted, without generated columns.
#[track_caller]
pub fn table_rows(db: &str, table: &TableInfo) -> Vec<Vec<u8>> {
    let cols = copy_columns(db, &table.name);
    let from = if table.relkind == 'p' {
        table.name.clone()
    } else {
        format!("ONLY {}", table.name)
    };
    let bytes = copy_out(db, &format!("(SELECT {cols} FROM {from})"));
    let mut lines: Vec<Vec<u8>> = bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    lines.sort();
    lines
}

/// The content fingerprint of design.md section 6 (`xxh3-128-wrapping-sum-by-column-name`)
/// computed independently from psql's COPY text (columns in [`copy_columns`] order): XXH3-128
/// of each line without its newline, summed modulo 2^128, as 32 lowercase hex digits.
pub fn fingerprint(lines: &[Vec<u8>]) -> String {
    let sum = lines.iter().fold(0u128, |acc, l| {
        acc.wrapping_add(xxhash_rust::xxh3::xxh3_128(l))
    });
    format!("{sum:032x}")
}

/// Position of every sequence: `"schema"."seq" -> "last_value|is_called"`.
#[track_caller]
pub fn sequence_positions(db: &str) -> BTreeMap<String, String> {
    let names = psql(
        db,
        &format!(
            "SELECT {QUOTED_NAME} FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'S' ORDER BY 1"
        ),
    );
    names
        .lines()
        .map(|seq| {
            let pos = psql(db, &format!("SELECT last_value, is_called FROM {seq}"));
            (seq.to_owned(), pos.trim().to_owned())
        })
        .collect()
}

/// `pg_dump --schema-only` of a database, normalised: comments, blank lines, the random
/// `\restrict` keys and `SET` preamble lines are removed.
#[track_caller]
pub fn schema_dump(db: &str) -> Vec<String> {
    let out = Command::new("pg_dump")
        .args(["--schema-only", "-h", PG_HOST, "-p"])
        .arg(PG_PORT.to_string())
        .args(["-U", "postgres", "-d", db])
        .env_remove("PGOPTIONS")
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump --schema-only {db} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 pg_dump output")
        .lines()
        .filter(|l| {
            let t = l.trim();
            !(t.is_empty()
                || t.starts_with("--")
                || t.starts_with("\\restrict")
                || t.starts_with("\\unrestrict")
                || t.starts_with("SET ")
                || t.starts_with("SELECT pg_catalog.set_config('search_path'"))
        })
        .map(str::to_owned)
        .collect()
}

/// Assert two line lists are equal, showing the first difference with context.
#[track_caller]
pub fn assert_lines_equal(what: &str, expected: &[String], actual: &[String]) {
    if expected == actual {
        return;
    }
    let first = expected
        .iter()
        .zip(actual)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()));
    let from = first.saturating_sub(5);
    // Long lines (rows as hex) are cut so that the difference stays readable.
    let show = |v: &[String]| {
        v.iter()
            .skip(from)
            .take(15)
            .map(|l| match l.char_indices().nth(400) {
                Some((cut, _)) => format!("{}… ({} bytes)", &l[..cut], l.len()),
                None => l.clone(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    panic!(
        "{what} differ at line {} (expected {} lines, got {}):\n--- expected ---\n{}\n--- actual ---\n{}",
        first + 1,
        expected.len(),
        actual.len(),
        show(expected),
        show(actual)
    );
}

/// A psql session held open on stdin, so it can keep a lock.
pub struct Locker {
    child: Child,
}

impl Locker {
    /// Take `ACCESS EXCLUSIVE` on `table` of `db` and wait until it is granted.
    #[track_caller]
    pub fn lock(db: &TestDb, table: &str) -> Self {
        let mut child = std::process::Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", PG_HOST, "-p"])
            .arg(PG_PORT.to_string())
            .args(["-U", "postgres", "-d", &db.name])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn psql");
        writeln!(
            child.stdin.as_mut().unwrap(),
            "SET application_name = 'exp_cli_locker'; BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;"
        )
        .unwrap();
        child.stdin.as_mut().unwrap().flush().unwrap();
        // Wait until the lock is granted.
        let start = std::time::Instant::now();
        loop {
            let held = psql(
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                     WHERE a.application_name = 'exp_cli_locker' AND a.datname = '{}'
                       AND l.mode = 'AccessExclusiveLock' AND l.granted",
                    db.name
                ),
            );
            if held.trim() != "0" {
                break;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "the locker never got its lock"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Self { child }
    }
}

impl Drop for Locker {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = writeln!(stdin, "ROLLBACK;");
        }
        let _ = self.child.wait();
    }
}
