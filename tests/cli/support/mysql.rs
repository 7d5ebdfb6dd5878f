//! MariaDB / MySQL: the test server (required, never skipped), throw-away schemas and users
//! dropped by guards, the stock client, and independent descriptions for comparisons.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use super::*;

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
