//! Shared helpers: the exporter binary, throw-away PostgreSQL and MariaDB databases, dedicated
//! redis-server processes, stock-tool restores, manifest access and file inspection.
//!
//! Every test creates its own databases (unique names `exp_cli_<test>_<pid>_<n>`, dropped by a
//! guard), its own redis-server processes (never the shared one on 6379) and its own temporary
//! directories, so tests run in parallel. PostgreSQL must be reachable at 127.0.0.1:5432 as
//! `postgres` (trust auth), MariaDB at 127.0.0.1:3306 as root without password, and
//! redis-server, redis-cli and python3 must be installed; if not, the test fails with a message
//! saying so — never a silent skip (design.md section 10).

#![allow(dead_code)] // Not every test module uses every helper.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Where the test PostgreSQL listens.
pub const PG_HOST: &str = "127.0.0.1";
/// Port of the test PostgreSQL.
pub const PG_PORT: u16 = 5432;
/// How long any single exporter invocation may take before the test fails.
pub const EXPORTER_TIMEOUT: Duration = Duration::from_secs(180);

/// Session settings that make `COPY … TO STDOUT` text exact and portable; the same ones the
/// PostgreSQL engine fixes for its own session (design.md section 5), so fingerprints computed
/// here over psql's COPY output are comparable with the manifest's.
const PGOPTIONS: &str = "-c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3 \
                         -c TimeZone=UTC -c bytea_output=hex";

/// Repository root (the package directory of the `exporter` crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A sample SQL file from `fixtures/sample/`.
pub fn sample_sql(name: &str) -> PathBuf {
    repo_root().join("fixtures/sample").join(name)
}

// ---------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------

/// The exporter binary, run in `cwd` (always a temporary directory: the repository root may
/// hold an `exporter.toml` written by `fixtures/scripts/setup-sample.sh`), with a timeout,
/// `NO_COLOR` set and no stray PostgreSQL or logging environment.
pub fn exporter(cwd: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_exporter"));
    cmd.current_dir(cwd)
        .timeout(EXPORTER_TIMEOUT)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .env_remove("PGPASSWORD")
        .env_remove("PGHOST")
        .env_remove("PGUSER")
        .env_remove("PGDATABASE")
        .env_remove("PGOPTIONS");
    cmd
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code.
    pub code: i32,
    /// stdout, lossily decoded.
    pub stdout: String,
    /// stderr, lossily decoded.
    pub stderr: String,
    /// The command line, for messages.
    pub command: String,
}

impl Outcome {
    /// Assert the exit code, printing everything on mismatch.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "`{}` exited with {} instead of {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, code, self.stdout, self.stderr
        );
        self
    }

    /// stdout and stderr together.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The last non-empty stdout line.
    pub fn last_stdout_line(&self) -> &str {
        self.stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .trim()
    }

    /// Assert stderr has an `error: ` line (the rendering convention of design.md section 9).
    #[track_caller]
    pub fn expect_error_line(&self) -> &Self {
        assert!(
            self.stderr.lines().any(|l| l.starts_with("error: ")),
            "stderr of `{}` has no line starting with `error: `:\n{}",
            self.command,
            self.stderr
        );
        self
    }

    /// Assert stderr contains `needle`.
    #[track_caller]
    pub fn stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr of `{}` does not mention {needle:?}:\n{}",
            self.command,
            self.stderr
        );
        self
    }

    /// Assert neither stdout nor stderr contains `secret`.
    #[track_caller]
    pub fn never_shows(&self, secret: &str) -> &Self {
        assert!(
            !self.all_output().contains(secret),
            "`{}` printed the secret {secret:?}:\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Run a prepared command to completion and capture its outcome. A timeout or a signal fails
/// the test.
#[track_caller]
pub fn run(cmd: &mut assert_cmd::Command) -> Outcome {
    let command = describe_command(cmd);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let Some(code) = out.status.code() else {
        panic!(
            "`{command}` was killed ({:?}) — timed out after {EXPORTER_TIMEOUT:?}?\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            out.status
        );
    };
    Outcome {
        code,
        stdout,
        stderr,
        command,
    }
}

fn describe_command(cmd: &assert_cmd::Command) -> String {
    let mut s = String::from("exporter");
    for a in cmd.get_args() {
        let _ = write!(s, " {}", a.to_string_lossy());
    }
    s
}

/// Run `exporter <args>` (a dump), expect exit 0, and return the run directory printed on the
/// last stdout line (resolved against `cwd`), after checking it holds a manifest.
#[track_caller]
pub fn dump_ok(cwd: &Path, args: &[&str]) -> PathBuf {
    let out = run(exporter(cwd).args(args));
    out.expect_code(0);
    let printed = out.last_stdout_line();
    assert!(
        !printed.is_empty(),
        "dump printed no run directory on stdout:\n{}",
        out.stderr
    );
    let run_dir = cwd.join(printed);
    assert!(
        run_dir.join("manifest.json").is_file(),
        "the printed run directory {} has no manifest.json",
        run_dir.display()
    );
    run_dir
}

/// A spawned exporter process (for tests that act on the server while it runs).
pub fn spawn_exporter(cwd: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_exporter"))
        .current_dir(cwd)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn exporter")
}

/// Wait for a spawned child with a timeout (killing it and failing the test on timeout) and
/// collect its outcome.
#[track_caller]
pub fn wait_child(mut child: Child, timeout: Duration, command: &str) -> Outcome {
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
            panic!("`{command}` did not finish within {timeout:?}; killed it. stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    // Death by a signal is reported the shell's way, 128 + signal number.
    let code = status
        .code()
        .or_else(|| std::os::unix::process::ExitStatusExt::signal(&status).map(|sig| 128 + sig))
        .expect("exit code or signal");
    Outcome {
        code,
        stdout,
        stderr,
        command: command.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

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

static DB_COUNTER: AtomicUsize = AtomicUsize::new(0);

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

/// The non-generated columns of a table, quoted, in attnum order (what `COPY table TO STDOUT`
/// emits).
#[track_caller]
pub fn copy_columns(db: &str, table: &str) -> String {
    psql(
        db,
        &format!(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
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

/// The content fingerprint of design.md section 6 (`xxh3-128-wrapping-sum`) computed
/// independently from psql's COPY text: XXH3-128 of each line without its newline, summed
/// modulo 2^128, as 32 lowercase hex digits.
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

// ---------------------------------------------------------------------------------------------
// Archives on disk
// ---------------------------------------------------------------------------------------------

/// Is `name` shaped like a run id: `YYYYMMDDTHHMMSSZ` with an optional `-N` suffix?
pub fn is_run_id(name: &str) -> bool {
    let (stamp, suffix) = match name.split_once('-') {
        Some((s, n)) => (s, Some(n)),
        None => (name, None),
    };
    let b = stamp.as_bytes();
    b.len() == 16
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && suffix.is_none_or(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// The run directories under a destination, sorted by name.
pub fn run_dirs(dest: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dest) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Names of the entries of a directory, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Every regular file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Assert that after a failed dump nothing under `dest` looks complete: no manifest.json, no
/// SHA256SUMS, no file under a final name (temporary names start with `.` and end in `.tmp`).
#[track_caller]
pub fn assert_nothing_final(dest: &Path) {
    for f in all_files(dest) {
        let name = f
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with('.') && f.extension().is_some_and(|e| e == "tmp"),
            "a failed dump left {} under a final name (only .<name>.tmp files may remain)",
            f.display()
        );
    }
}

/// Mode bits (permissions only) of a path.
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::encode(Sha256::digest(&bytes))
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Decompress with the stock `zstd -dc` (every frame, checksums checked) and return the bytes.
#[track_caller]
pub fn zstd_decompress(path: &Path) -> Vec<u8> {
    let out = Command::new("zstd")
        .args(["-q", "-dc"])
        .arg(path)
        .output()
        .expect("run zstd");
    assert!(
        out.status.success(),
        "zstd -dc {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Compress bytes into one standalone zstd frame with the stock tool (`zstd -c`, checksum on).
#[track_caller]
pub fn zstd_frame(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("zstd")
        .args(["-q", "-c", "--check"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run zstd -c");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("feed zstd");
    let out = child.wait_with_output().expect("zstd -c");
    assert!(out.status.success(), "zstd -c failed");
    out.stdout
}

/// `zstd -lv`: the number of frames and the content-checksum kind (`XXH64`, `None`, …).
#[track_caller]
pub fn zstd_list(path: &Path) -> (u64, String) {
    let out = Command::new("zstd")
        .args(["-l", "-v"])
        .arg(path)
        .output()
        .expect("run zstd -lv");
    assert!(out.status.success(), "zstd -lv {} failed", path.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let frames = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("# Zstandard Frames:"))
        .unwrap_or_else(|| panic!("no frame count in zstd -lv output:\n{text}"))
        .trim()
        .parse()
        .expect("frame count");
    let check = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Check:"))
        .and_then(|c| c.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    (frames, check)
}

/// Read and parse `manifest.json` of a run.
#[track_caller]
pub fn manifest(run_dir: &Path) -> Value {
    read_json(&run_dir.join("manifest.json"))
}

/// Read and parse a JSON file.
#[track_caller]
pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}\n{text}", path.display()))
}

/// Write JSON back (pretty), keeping the file's mode.
pub fn write_json(path: &Path, value: &Value) {
    let text = serde_json::to_string_pretty(value).expect("serialize");
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The manifest entry of database `name`.
#[track_caller]
pub fn db_entry<'a>(manifest: &'a Value, name: &str) -> &'a Value {
    manifest["databases"]
        .as_array()
        .expect("databases is an array")
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("manifest has no database {name:?}:\n{manifest:#}"))
}

/// Mutable manifest entry of database `name`.
pub fn db_entry_mut<'a>(manifest: &'a mut Value, name: &str) -> &'a mut Value {
    manifest["databases"]
        .as_array_mut()
        .expect("databases is an array")
        .iter_mut()
        .find(|d| d["name"] == name)
        .expect("database in manifest")
}

/// Parse `SHA256SUMS` (`<hex>  <path>` lines) into path -> hash.
#[track_caller]
pub fn read_sha256sums(run_dir: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(run_dir.join("SHA256SUMS")).expect("read SHA256SUMS");
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (hash, path) = l
                .split_once("  ")
                .unwrap_or_else(|| panic!("SHA256SUMS line is not `<hex>  <path>`: {l:?}"));
            (path.to_owned(), hash.to_owned())
        })
        .collect()
}

/// Replace the hash of `file` in `SHA256SUMS`.
pub fn rewrite_sha256sums(run_dir: &Path, file: &str, new_hash: &str) {
    let path = run_dir.join("SHA256SUMS");
    let text = std::fs::read_to_string(&path).expect("read SHA256SUMS");
    let mut found = false;
    let out: String = text
        .lines()
        .map(|l| match l.split_once("  ") {
            Some((_, p)) if p == file => {
                found = true;
                format!("{new_hash}  {p}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    assert!(found, "SHA256SUMS has no line for {file}");
    std::fs::write(&path, out).expect("write SHA256SUMS");
}

/// Run `sha256sum -c SHA256SUMS` inside the run directory; returns (success, output).
pub fn sha256sum_check(run_dir: &Path) -> (bool, String) {
    let out = Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(run_dir)
        .output()
        .expect("run sha256sum");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Write a minimal exporter.toml into `dir` naming `(name, url)` pairs, with an optional
/// `[storage] to`.
pub fn write_config(dir: &Path, to: Option<&str>, dbs: &[(&str, &str)]) -> PathBuf {
    let mut text = String::new();
    if let Some(to) = to {
        let _ = writeln!(text, "[storage]\nto = \"{to}\"\n");
    }
    for (name, url) in dbs {
        let _ = writeln!(text, "[[databases]]\nname = \"{name}\"\nurl = \"{url}\"\n");
    }
    let path = dir.join("exporter.toml");
    std::fs::write(&path, text).expect("write exporter.toml");
    path
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("exp-cli-")
        .tempdir()
        .expect("tempdir")
}

/// Path as &str (test paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Assert that `verify` printed a `FAILED <file>…` line. Both streams are searched so that
/// this helper checks *what* is reported; *where* (stdout, per the CLI contract) is pinned once,
/// by `verify::per_file_lines_and_summary_are_on_stdout`.
#[track_caller]
pub fn assert_failed_line(out: &Outcome, file: &str) {
    assert!(
        out.all_output()
            .lines()
            .any(|l| l.starts_with("FAILED ") && l.contains(file)),
        "verify printed no `FAILED {file}…` line:\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout,
        out.stderr
    );
}

/// Assert that `verify` printed an `ok <file>` line (details may follow after a space); both
/// streams are searched, see [`assert_failed_line`].
#[track_caller]
pub fn assert_ok_line(out: &Outcome, file: &str) {
    let want = format!("ok {file}");
    assert!(
        out.all_output().lines().any(|l| {
            let l = l.trim_end();
            l == want
                || l.strip_prefix(&want)
                    .is_some_and(|rest| rest.starts_with(' '))
        }),
        "verify printed no `ok {file}` line:\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout,
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// MariaDB / MySQL
// ---------------------------------------------------------------------------------------------

/// Where the test MariaDB listens (user root, no password).
pub const MY_HOST: &str = "127.0.0.1";
/// Port of the test MariaDB.
pub const MY_PORT: u16 = 3306;

/// A fixture SQL file from `fixtures/mysql/` (e.g. `sample.sql`, `fidelity/M02.sql`).
pub fn mysql_fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures/mysql").join(name)
}

/// Run the stock `mariadb` client as root against the test server with `stdin` as input:
/// `mariadb -h127.0.0.1 -P3306 -uroot --batch <extra…> [db]`.
pub fn mariadb_raw(db: Option<&str>, extra: &[&str], stdin: &[u8]) -> std::io::Result<Output> {
    let mut cmd = Command::new("mariadb");
    cmd.args(["-h", MY_HOST, "-P"])
        .arg(MY_PORT.to_string())
        .args(["-uroot", "--batch"])
        .args(extra);
    if let Some(db) = db {
        cmd.arg(db);
    }
    let mut child = cmd
        .env_remove("MYSQL_PWD")
        .env_remove("MYSQL_HOST")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    // Fed from a thread: a large script must not deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output();
    let _ = writer.join();
    out
}

/// Run SQL through the `mariadb` client (tab-separated, no column names) and return stdout;
/// panics with the client's stderr on failure.
#[track_caller]
pub fn mariadb(db: Option<&str>, sql: &str) -> String {
    let out = mariadb_raw(
        db,
        &["--skip-column-names", "--default-character-set=utf8mb4"],
        sql.as_bytes(),
    )
    .expect("run the mariadb client");
    assert!(
        out.status.success(),
        "mariadb {db:?} failed on {sql:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fail the test (never skip) unless MariaDB answers at 127.0.0.1:3306 as root. Checked once
/// per test process; also drops `exp_cli_*` databases and users of test processes that are gone.
#[track_caller]
pub fn require_mariadb() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| match mariadb_raw(None, &[], b"SELECT 1") {
        Ok(o) if o.status.success() => {
            drop_stale_mariadb_objects();
            Ok(())
        }
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
        Err(e) => Err(format!("cannot run the mariadb client: {e}")),
    });
    if let Err(e) = ready {
        panic!(
            "MariaDB is required at {MY_HOST}:{MY_PORT} (user root, no password) and is not \
             reachable; start it (.ci/run does) — this test does not skip.\n{e}"
        );
    }
}

/// The pid in a name `exp_cli_<test>_<pid>_<n>` (or `exp_cli_<test>_<pid>` for users).
fn pid_in_name(name: &str, with_counter: bool) -> Option<u32> {
    let parts: Vec<&str> = name.rsplitn(3, '_').collect();
    let at = usize::from(with_counter);
    parts.get(at).and_then(|p| p.parse::<u32>().ok())
}

fn drop_stale_mariadb_objects() {
    let Ok(list) = mariadb_raw(
        None,
        &["--skip-column-names"],
        b"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'exp\\_cli\\_%'",
    ) else {
        return;
    };
    for name in String::from_utf8_lossy(&list.stdout).lines() {
        if pid_in_name(name, true).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = mariadb_raw(
                None,
                &[],
                format!("DROP DATABASE IF EXISTS `{name}`").as_bytes(),
            );
        }
    }
    let Ok(users) = mariadb_raw(
        None,
        &["--skip-column-names"],
        b"SELECT CONCAT(User, '\\t', Host) FROM mysql.user WHERE User LIKE 'exp\\_cli\\_%'",
    ) else {
        return;
    };
    for line in String::from_utf8_lossy(&users.stdout).lines() {
        let Some((user, host)) = line.split_once('\t') else {
            continue;
        };
        if pid_in_name(user, false).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        {
            let _ = mariadb_raw(
                None,
                &[],
                format!("DROP USER IF EXISTS '{user}'@'{host}'").as_bytes(),
            );
        }
    }
}

/// A MariaDB database created for one test (`CHARACTER SET utf8mb4`) and dropped when the guard
/// goes away.
#[derive(Debug)]
pub struct MyDb {
    /// The database name, `exp_cli_<test>_<pid>_<n>`.
    pub name: String,
}

impl MyDb {
    /// Create an empty database with a unique name derived from `test` (names are limited to
    /// 64 characters).
    #[track_caller]
    pub fn create(test: &str) -> Self {
        require_mariadb();
        let n = DB_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("exp_cli_{test}_{}_{n}", std::process::id());
        assert!(name.len() <= 64, "database name too long: {name}");
        mariadb(
            None,
            &format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"),
        );
        Self { name }
    }

    /// Create a database and load a fixture of `fixtures/mysql/` into it, the way the adapter's
    /// tests do: the stock client with `--default-character-set=utf8mb4`.
    #[track_caller]
    pub fn from_fixture(test: &str, file: &str) -> Self {
        let db = Self::create(test);
        let path = mysql_fixture(file);
        let sql = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let out = mariadb_raw(Some(&db.name), &["--default-character-set=utf8mb4"], &sql)
            .expect("run the mariadb client");
        assert!(
            out.status.success(),
            "loading {} failed:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        db
    }

    /// Run SQL in this database and return stdout (tab-separated, no column names).
    #[track_caller]
    pub fn query(&self, sql: &str) -> String {
        mariadb(Some(&self.name), sql)
    }

    /// `mysql://root@127.0.0.1:3306/<name>`.
    pub fn url(&self) -> String {
        format!("mysql://root@{MY_HOST}:{MY_PORT}/{}", self.name)
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let _ = mariadb_raw(
            None,
            &[],
            format!("DROP DATABASE IF EXISTS `{}`", self.name).as_bytes(),
        );
    }
}

/// Restore an archive with the stock tools only: `zstd -dc x.sql.zst | mariadb -h127.0.0.1
/// -uroot <extra…> <db>`; asserts both succeed.
#[track_caller]
pub fn restore_mysql_with_stock_tools(archive: &Path, db: &MyDb, extra: &[&str]) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            "set -euo pipefail; a=$1; h=$2; p=$3; d=$4; shift 4; \
             zstd -q -dc \"$a\" | mariadb -h \"$h\" -P \"$p\" -uroot \"$@\" \"$d\"",
        )
        .arg("restore")
        .arg(archive)
        .arg(MY_HOST)
        .arg(MY_PORT.to_string())
        .arg(&db.name)
        .args(extra)
        .env_remove("MYSQL_PWD")
        .stdin(Stdio::null())
        .output()
        .expect("run zstd | mariadb");
    assert!(
        out.status.success(),
        "restoring {} into {} with `zstd -dc | mariadb {extra:?}` failed ({:?}):\n{}",
        archive.display(),
        db.name,
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Base tables and sequences of a database (what the MySQL engine lists in the manifest), with
/// their `TABLE_TYPE`, sorted by name.
#[track_caller]
pub fn my_tables(db: &str) -> Vec<(String, String)> {
    let mut tables: Vec<(String, String)> = mariadb(
        None,
        &format!(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' \
             AND TABLE_TYPE IN ('BASE TABLE', 'SEQUENCE') ORDER BY TABLE_NAME"
        ),
    )
    .lines()
    .map(|l| {
        let (n, t) = l.split_once('\t').expect("name\ttype");
        (n.to_owned(), t.to_owned())
    })
    .collect();
    tables.sort();
    tables
}

/// Everything compared between a MariaDB source and its restore, as lines: `SHOW CREATE` of
/// every table, sequence and view; per base table `CHECKSUM TABLE … EXTENDED`, the row count
/// and every row (every column, as hex of its bytes, sorted); each sequence's state; `SHOW
/// CREATE` of every procedure, function, event and trigger (without the trigger's creation
/// time) and the triggers' action order. The database's own name, which `SHOW CREATE` writes
/// into sequence references (`DEFAULT nextval(`db`.`s`)`), is removed, so a source and its
/// restore under another name compare equal.
#[track_caller]
pub fn my_describe(db: &str) -> Vec<String> {
    let own = format!("`{db}`.");
    my_describe_raw(db)
        .into_iter()
        .map(|l| l.replace(&own, ""))
        .collect()
}

#[track_caller]
fn my_describe_raw(db: &str) -> Vec<String> {
    let q = |sql: &str| mariadb(Some(db), sql);
    let mut out = Vec::new();
    let tables = q(&format!(
        "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' ORDER BY TABLE_NAME"
    ));
    for line in tables.lines() {
        let (t, kind) = line.split_once('\t').expect("name\ttype");
        out.push(format!(
            "{kind} {t}: {}",
            q(&format!("SHOW CREATE TABLE `{t}`")).trim_end()
        ));
        match kind {
            "SEQUENCE" => out.push(format!(
                "sequence {t}: {}",
                q(&format!("SELECT * FROM `{t}`")).trim_end()
            )),
            "BASE TABLE" => {
                let sum = q(&format!("CHECKSUM TABLE `{t}` EXTENDED"));
                let sum = sum
                    .trim_end()
                    .rsplit('\t')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                out.push(format!("checksum {t}: {sum}"));
                let cols = q(&format!(
                    "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{db}' \
                     AND TABLE_NAME = '{t}' ORDER BY ORDINAL_POSITION"
                ));
                let exprs: Vec<String> = cols
                    .lines()
                    .map(|c| format!("IFNULL(HEX(CAST(`{c}` AS BINARY)), 'NULL')"))
                    .collect();
                let rows = q(&format!(
                    "SELECT CONCAT_WS(',', {}) FROM `{t}`",
                    exprs.join(", ")
                ));
                let mut rows: Vec<&str> = rows.lines().collect();
                rows.sort_unstable();
                out.push(format!("rows {t}: {}", rows.len()));
                out.extend(rows.iter().map(|r| format!("row {t}: {r}")));
            }
            _ => {}
        }
    }
    let objects = q(&format!(
        "SELECT 'PROCEDURE', ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{db}' AND ROUTINE_TYPE = 'PROCEDURE' \
         UNION ALL SELECT 'FUNCTION', ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{db}' AND ROUTINE_TYPE = 'FUNCTION' \
         UNION ALL SELECT 'TRIGGER', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{db}' \
         UNION ALL SELECT 'EVENT', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{db}' ORDER BY 1, 2"
    ));
    for line in objects.lines() {
        let (kind, name) = line.split_once('\t').expect("kind\tname");
        let create = q(&format!("SHOW CREATE {kind} `{name}`"));
        let mut fields: Vec<&str> = create.trim_end_matches('\n').split('\t').collect();
        if kind == "TRIGGER" {
            fields.truncate(6); // everything but the creation time
        }
        out.push(format!("{kind} {name}: {}", fields.join("\t")));
    }
    out.push(format!(
        "trigger order: {}",
        q(&format!(
            "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, ACTION_ORDER FROM information_schema.TRIGGERS \
             WHERE TRIGGER_SCHEMA = '{db}' ORDER BY 1, 2"
        ))
        .trim_end()
    ));
    out
}

/// A MariaDB account `'exp_cli_<test>_<pid>'@'127.0.0.1'` with a password, dropped on drop.
#[derive(Debug)]
pub struct MyUser {
    /// The user name.
    pub name: String,
}

impl MyUser {
    /// Create the account (replacing a leftover of the same name).
    #[track_caller]
    pub fn create(test: &str, password: &str) -> Self {
        require_mariadb();
        let name = format!("exp_cli_{test}_{}", std::process::id());
        assert!(name.len() <= 80, "user name too long: {name}");
        mariadb(
            None,
            &format!(
                "DROP USER IF EXISTS '{name}'@'127.0.0.1'; \
                 CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{}';",
                password.replace('\\', "\\\\").replace('\'', "\\'")
            ),
        );
        Self { name }
    }
}

impl Drop for MyUser {
    fn drop(&mut self) {
        let _ = mariadb_raw(
            None,
            &[],
            format!("DROP USER IF EXISTS '{}'@'127.0.0.1'", self.name).as_bytes(),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

/// A port nothing listens on right now (an ephemeral port, bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Fail the test (never skip) unless the Redis tools are installed: every Redis test runs its
/// own `redis-server` (never the shared one on 6379).
#[track_caller]
pub fn require_redis_tools() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        for tool in ["redis-server", "redis-cli"] {
            match Command::new(tool).arg("--version").output() {
                Ok(o) if o.status.success() => {}
                Ok(o) => return Err(format!("{tool} --version failed: {:?}", o.status)),
                Err(e) => return Err(format!("cannot run {tool}: {e}")),
            }
        }
        match Command::new("python3").arg("--version").output() {
            Ok(o) if o.status.success() => Ok(()),
            _ => Err("cannot run python3 (fixtures/redis/resp.py needs it)".to_owned()),
        }
    });
    if let Err(e) = ready {
        panic!(
            "the Redis tests need redis-server, redis-cli and python3 on PATH; they start their \
             own servers — this test does not skip.\n{e}"
        );
    }
}

/// A dedicated `redis-server` on a free loopback port (`--save "" --appendonly no`, its own
/// temporary `--dir`), killed when the guard goes away.
#[derive(Debug)]
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    /// The password given with `--requirepass`, used by [`RedisServer::cli`].
    pub password: Option<String>,
    /// Its working directory.
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Start an empty server.
    #[track_caller]
    pub fn start() -> Self {
        Self::start_in(tempdir(), &[], None)
    }

    /// Start a server that requires `password`.
    #[track_caller]
    pub fn with_password(password: &str) -> Self {
        Self::start_in(tempdir(), &["--requirepass", password], Some(password))
    }

    /// Start a server on an RDB file: `dir/dump.rdb`, `--dir dir --dbfilename dump.rdb`.
    #[track_caller]
    pub fn on_rdb(rdb: &[u8]) -> Self {
        let dir = tempdir();
        std::fs::write(dir.path().join("dump.rdb"), rdb).expect("write dump.rdb");
        Self::start_in(dir, &["--dbfilename", "dump.rdb"], None)
    }

    #[track_caller]
    fn start_in(dir: tempfile::TempDir, extra: &[&str], password: Option<&str>) -> Self {
        require_redis_tools();
        let mut last = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let log = dir.path().join(format!("redis-{port}.log"));
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--dir", s(dir.path())])
                .args(["--logfile", s(&log)])
                // An RDB dump (replication SYNC) starts at once instead of after 5 s.
                .args(["--repl-diskless-sync-delay", "0"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    // Port taken or the RDB refused: say why if it keeps failing.
                    last = format!(
                        "redis-server exited ({status}):\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                    break;
                }
                if redis_ready(port) {
                    return Self {
                        port,
                        password: password.map(str::to_owned),
                        dir,
                        child: Some(child),
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("redis-server on port {port} did not become ready within 10 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start redis-server: {last}");
    }

    /// `redis://127.0.0.1:PORT` (no password, no db).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Run `redis-cli -p PORT [-a PASSWORD] ARGS…` and return stdout; panics on failure or on
    /// an error reply.
    #[track_caller]
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self
            .cli_command()
            .args(args)
            .output()
            .expect("run redis-cli");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && !text.starts_with("ERR") && !text.starts_with("WRONG"),
            "redis-cli {args:?} failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    fn cli_command(&self) -> Command {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-p", &self.port.to_string()]);
        if let Some(p) = &self.password {
            cmd.args(["-a", p, "--no-auth-warning"]);
        }
        cmd
    }

    /// Feed commands (one per line, redis-cli quoting, `"\xff"` escapes inside double quotes,
    /// `SELECT n` switches database) to `redis-cli` on stdin; panics on any error reply.
    #[track_caller]
    pub fn seed(&self, commands: &str) {
        let mut child = self
            .cli_command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run redis-cli");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(commands.as_bytes())
            .expect("feed redis-cli");
        let out = child.wait_with_output().expect("redis-cli");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success()
                && !text
                    .lines()
                    .any(|l| l.starts_with("ERR") || l.starts_with("(error)")),
            "seeding redis on port {} failed:\n{text}{}",
            self.port,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `DBSIZE` of logical database `db`.
    #[track_caller]
    pub fn dbsize(&self, db: u32) -> u64 {
        self.cli(&["-n", &db.to_string(), "DBSIZE"])
            .trim()
            .parse()
            .expect("DBSIZE is a number")
    }

    /// `INFO server`'s `redis_version`.
    #[track_caller]
    pub fn version(&self) -> String {
        self.cli(&["INFO", "server"])
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .expect("redis_version in INFO server")
            .trim()
            .to_owned()
    }

    /// `python3 fixtures/redis/resp.py snapshot PORT`: every key of databases 0–15, byte-exact,
    /// expiry rounded to the second. Needs a server without a password.
    #[track_caller]
    pub fn snapshot(&self) -> String {
        assert!(self.password.is_none(), "resp.py cannot authenticate");
        let out = Command::new("python3")
            .arg(repo_root().join("fixtures/redis/resp.py"))
            .args(["snapshot", &self.port.to_string()])
            .output()
            .expect("run python3 resp.py");
        assert!(
            out.status.success(),
            "resp.py snapshot {} failed: {}",
            self.port,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("resp.py prints ASCII")
    }

    /// Restore with the stock tools only: `zstd -dc x.resp.zst | redis-cli -p PORT --pipe`;
    /// asserts exit 0 and `errors: 0`. Returns redis-cli's report.
    #[track_caller]
    pub fn restore_pipe(&self, archive: &Path) -> String {
        let out = Command::new("bash")
            .arg("-c")
            .arg("set -euo pipefail; zstd -q -dc \"$1\" | redis-cli -p \"$2\" --pipe")
            .arg("restore")
            .arg(archive)
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run zstd | redis-cli --pipe");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains("errors: 0"),
            "`zstd -dc {} | redis-cli --pipe` into port {} failed ({:?}):\n{text}",
            archive.display(),
            self.port,
            out.status
        );
        text
    }

    /// The per-database fingerprints of the Redis engine (`db<n>` → (keys, fingerprint)),
    /// computed here independently from `DUMP` payloads: per key `u64 BE key length ‖ key ‖
    /// u128 BE value digest`, the digest being XXH3-128 of the payload without its 10-byte
    /// trailer, or, for hash-table sets and hashes (RDB types 2 and 4, whose element order
    /// depends on the server's hash seed), XXH3-128 of `type ‖ u64 BE count ‖ u128 BE wrapping
    /// sum of each element's XXH3-128` (adapters/redis/src/lib.rs, "Fingerprints").
    #[track_caller]
    pub fn fingerprints(&self) -> BTreeMap<String, (u64, String)> {
        self.dumps()
            .into_iter()
            .map(|(db, keys)| {
                let sum = keys.iter().fold(0u128, |acc, (key, payload)| {
                    let mut row = (key.len() as u64).to_be_bytes().to_vec();
                    row.extend_from_slice(key);
                    row.extend_from_slice(&redis_value_digest(payload).to_be_bytes());
                    acc.wrapping_add(xxhash_rust::xxh3::xxh3_128(&row))
                });
                (
                    format!("db{db}"),
                    (keys.len() as u64, format!("{sum:032x}")),
                )
            })
            .collect()
    }

    /// The highest RDB version in the trailers of all `DUMP` payloads (what the manifest's
    /// `payload_version` of a RESP dump records as `rdb <n>`).
    #[track_caller]
    pub fn max_dump_rdb_version(&self) -> u16 {
        self.dumps()
            .values()
            .flatten()
            .map(|(_, p)| u16::from_le_bytes([p[p.len() - 10], p[p.len() - 9]]))
            .max()
            .expect("no keys")
    }

    /// Every key of databases 0–15 with its `DUMP` payload, per database holding keys.
    #[track_caller]
    fn dumps(&self) -> BTreeMap<u32, KeyDumps> {
        let mut conn = Resp::connect(self.port, self.password.as_deref());
        let mut out = BTreeMap::new();
        for db in 0..16u32 {
            conn.ok(&[b"SELECT", db.to_string().as_bytes()]);
            let mut keys = Vec::new();
            let mut cursor = b"0".to_vec();
            loop {
                let RespValue::Array(page) = conn.call(&[b"SCAN", &cursor, b"COUNT", b"1000"])
                else {
                    panic!("SCAN reply is not an array");
                };
                let [RespValue::Bulk(Some(next)), RespValue::Array(found)] = &page[..] else {
                    panic!("unexpected SCAN reply {page:?}");
                };
                for k in found {
                    let RespValue::Bulk(Some(k)) = k else {
                        panic!("SCAN key is not a bulk string");
                    };
                    keys.push(k.clone());
                }
                cursor.clone_from(next);
                if cursor == b"0" {
                    break;
                }
            }
            keys.sort();
            keys.dedup();
            if keys.is_empty() {
                continue;
            }
            let dumped = keys
                .into_iter()
                .map(|key| {
                    let RespValue::Bulk(Some(payload)) = conn.call(&[b"DUMP", &key]) else {
                        panic!("DUMP {key:?} returned no payload");
                    };
                    assert!(payload.len() > 10, "DUMP payload too short");
                    (key, payload)
                })
                .collect();
            out.insert(db, dumped);
        }
        out
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Keys and their `DUMP` payloads.
type KeyDumps = Vec<(Vec<u8>, Vec<u8>)>;

/// Ready when `PING` answers `+PONG` (or `-NOAUTH`: up, but it wants a password).
fn redis_ready(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => buf.starts_with(b"+PONG") || buf.starts_with(b"-NOAUTH"),
        _ => false,
    }
}

/// The value digest of one `DUMP` payload (see [`RedisServer::fingerprints`]).
fn redis_value_digest(payload: &[u8]) -> u128 {
    use xxhash_rust::xxh3::{Xxh3, xxh3_128};
    assert!(payload.len() > 10, "DUMP payload too short");
    let body = &payload[..payload.len() - 10];
    let kind = body[0];
    if kind != 2 && kind != 4 {
        return xxh3_128(body);
    }
    let mut at = 1;
    let count = rdb_len(body, &mut at).expect("element count is a plain length");
    let mut sum = 0u128;
    for _ in 0..count {
        let mut h = Xxh3::new();
        if kind == 4 {
            let field = rdb_string(body, &mut at);
            h.update(&(field.len() as u64).to_be_bytes());
            h.update(&field);
        }
        h.update(&rdb_string(body, &mut at));
        sum = sum.wrapping_add(h.digest128());
    }
    assert_eq!(
        at,
        body.len(),
        "bytes after the last element of a type-{kind} payload"
    );
    let mut buf = vec![kind];
    buf.extend_from_slice(&count.to_be_bytes());
    buf.extend_from_slice(&sum.to_be_bytes());
    xxh3_128(&buf)
}

/// An RDB length: `Ok(n)`, or `Err(encoding)` for a specially encoded string.
fn rdb_len(b: &[u8], at: &mut usize) -> Result<u64, u8> {
    let first = b[*at];
    *at += 1;
    match first >> 6 {
        0 => Ok(u64::from(first & 0x3f)),
        1 => {
            let n = (u64::from(first & 0x3f) << 8) | u64::from(b[*at]);
            *at += 1;
            Ok(n)
        }
        2 if first == 0x80 => {
            let n = u32::from_be_bytes(b[*at..*at + 4].try_into().unwrap());
            *at += 4;
            Ok(u64::from(n))
        }
        2 if first == 0x81 => {
            let n = u64::from_be_bytes(b[*at..*at + 8].try_into().unwrap());
            *at += 8;
            Ok(n)
        }
        2 => panic!("unknown RDB length byte {first:#04x}"),
        _ => Err(first & 0x3f),
    }
}

/// An RDB string (integer encodings as their decimal text; LZF is not needed by these tests'
/// short values and fails loudly).
fn rdb_string(b: &[u8], at: &mut usize) -> Vec<u8> {
    match rdb_len(b, at) {
        Ok(n) => {
            let n = n as usize;
            let v = b[*at..*at + n].to_vec();
            *at += n;
            v
        }
        Err(enc @ 0..=2) => {
            let w = 1usize << enc;
            let raw = &b[*at..*at + w];
            *at += w;
            let v = match enc {
                0 => i64::from(raw[0] as i8),
                1 => i64::from(i16::from_le_bytes([raw[0], raw[1]])),
                _ => i64::from(i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])),
            };
            v.to_string().into_bytes()
        }
        Err(enc) => panic!(
            "RDB string encoding {enc} (LZF) in a test payload: keep seeded set/hash elements short"
        ),
    }
}

/// A reply of the minimal RESP2 client below.
#[derive(Debug)]
pub enum RespValue {
    /// `+…`
    Simple(String),
    /// `-…`
    Error(String),
    /// `:…`
    Int(i64),
    /// `$…` (None for nil)
    Bulk(Option<Vec<u8>>),
    /// `*…`
    Array(Vec<RespValue>),
}

/// A minimal binary-safe RESP2 client, independent of the engine's own client.
pub struct Resp {
    stream: std::io::BufReader<std::net::TcpStream>,
}

impl Resp {
    /// Connect to 127.0.0.1:port, authenticating if `password` is given.
    #[track_caller]
    pub fn connect(port: u16, password: Option<&str>) -> Self {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to redis on {port}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        let mut me = Self {
            stream: std::io::BufReader::new(stream),
        };
        if let Some(p) = password {
            me.ok(&[b"AUTH", p.as_bytes()]);
        }
        me
    }

    /// Send one command and read its reply.
    #[track_caller]
    pub fn call(&mut self, args: &[&[u8]]) -> RespValue {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.stream
            .get_mut()
            .write_all(&buf)
            .expect("send to redis");
        self.read()
    }

    /// Send one command and assert it succeeded.
    #[track_caller]
    pub fn ok(&mut self, args: &[&[u8]]) {
        if let RespValue::Error(e) = self.call(args) {
            panic!("{:?} failed: {e}", String::from_utf8_lossy(args[0]));
        }
    }

    fn read(&mut self) -> RespValue {
        use std::io::BufRead as _;
        let mut line = Vec::new();
        self.stream
            .read_until(b'\n', &mut line)
            .expect("read from redis");
        assert!(line.ends_with(b"\r\n"), "bad RESP line {line:?}");
        let rest = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        match line[0] {
            b'+' => RespValue::Simple(rest),
            b'-' => RespValue::Error(rest),
            b':' => RespValue::Int(rest.parse().expect("integer reply")),
            b'$' => {
                let n: i64 = rest.parse().expect("bulk length");
                if n < 0 {
                    return RespValue::Bulk(None);
                }
                let mut data = vec![0u8; n as usize + 2];
                self.stream.read_exact(&mut data).expect("read bulk");
                data.truncate(n as usize);
                RespValue::Bulk(Some(data))
            }
            b'*' => {
                let n: i64 = rest.parse().expect("array length");
                RespValue::Array((0..n.max(0)).map(|_| self.read()).collect())
            }
            other => panic!("unexpected RESP type byte {other:#04x}"),
        }
    }
}

/// A fixed Redis seed with keys of every type in databases 0 and 1: strings (one a binary key
/// with a binary value), a list, an integer set and a string set, a sorted set, hashes, a
/// stream; relative (EXPIRE) and absolute (PEXPIREAT) expiries. Key counts: [`REDIS_SEED_KEYS`].
pub const REDIS_SEED: &str = r#"SELECT 0
SET greeting "hello world"
SET "bin\x00\xffkey" "\x01\x02\xfe\xff"
SET counter 42
SET session:1 "alive" EX 3600
PEXPIREAT counter 4102444800123
RPUSH queue a b c "d e" ""
SADD ints 1 2 3 100000
SADD tags red green blue "with space"
ZADD board 1.5 alice 2 bob -3.25 carol
HSET user:1 name Ada lang "Rust" n 7
HSET user:2 name Bob
EXPIRE user:2 7200
XADD events 1-1 kind login who ada
XADD events 2-0 kind logout who ada
SELECT 1
SET other "db one"
LPUSH l1 x y
SADD s1 m1 m2 m3
HSET h1 f v
PEXPIREAT h1 4102444800000
"#;

/// Key counts of [`REDIS_SEED`]: (db0, db1).
pub const REDIS_SEED_KEYS: (u64, u64) = (11, 4);
