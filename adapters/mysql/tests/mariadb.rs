//! exporter-mysql against the real MariaDB on 127.0.0.1:3306 (root, empty password): every
//! fidelity case of shared/fidelity/mariadb.md that this engine owns (M02–M05) and a seed with
//! every column type and object kind, each dumped, restored with the stock `mariadb` client
//! into fresh databases (also under a strict session sql_mode), and compared with the source;
//! plus the failure cases (unknown database, missing privilege, wrong password, killed
//! connection, consumer gone). The checks every engine shares are in `tests/conformance.rs`.
//!
//! Each test creates its own databases (`exp_my_<test>_<pid>_<nanos>`) and drops them.

#![allow(
    clippy::disallowed_macros,
    clippy::disallowed_methods,
    reason = "tests may print and use std::fs (clippy.toml)"
)]

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{LazyLock, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use exporter_contract::{
    DatabaseUrl, DumpMeta, DumpOptions, DumpSummary, EngineError, ErrorKind, Source,
};
use exporter_mysql::{MysqlSource, fingerprint_database};
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Value};

/// Tests that create databases hold this for reading; the every-schema test holds it for
/// writing, so no database appears or disappears while it reads the whole server.
static SERVER: LazyLock<RwLock<()>> = LazyLock::new(|| RwLock::new(()));

thread_local! {
    /// This thread's share of [`SERVER`]: taken once, however many databases the test makes
    /// (a second read while a writer waits would deadlock), released with the last one.
    /// `#[tokio::test]` runs each test on its own thread.
    static SHARE: RefCell<(usize, Option<RwLockReadGuard<'static, ()>>)> = const { RefCell::new((0, None)) };
}

/// One database's hold on this thread's share of [`SERVER`].
struct ServerShare;

impl ServerShare {
    fn take() -> Self {
        SHARE.with(|s| {
            let mut s = s.borrow_mut();
            if s.0 == 0 {
                s.1 = Some(SERVER.read().unwrap_or_else(PoisonError::into_inner));
            }
            s.0 += 1;
        });
        Self
    }
}

impl Drop for ServerShare {
    fn drop(&mut self) {
        SHARE.with(|s| {
            let mut s = s.borrow_mut();
            s.0 -= 1;
            if s.0 == 0 {
                s.1 = None;
            }
        });
    }
}

const ROOT: &str = "mysql://root@127.0.0.1:3306";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mysql")
}

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("exp_my_{tag}_{}_{nanos}", std::process::id());
    assert!(name.len() <= 64, "database name too long: {name}");
    name
}

/// Run the stock client; returns stdout, panics (with stderr) on failure.
fn client(db: Option<&str>, extra: &[&str], input: &[u8]) -> String {
    let (ok, out, err) = try_client(db, extra, input);
    assert!(ok, "mariadb {extra:?} failed: {err}");
    out
}

fn try_client(db: Option<&str>, extra: &[&str], input: &[u8]) -> (bool, String, String) {
    let mut cmd = Command::new("mariadb");
    cmd.args(["-h127.0.0.1", "-P3306", "-uroot", "--batch"])
        .args(extra);
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
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A database that exists for the test's lifetime.
struct TestDb {
    name: String,
    _share: ServerShare,
}

impl TestDb {
    fn new(tag: &str) -> Self {
        Self::with_charset(tag, "utf8mb4")
    }

    fn with_charset(tag: &str, charset: &str) -> Self {
        let share = ServerShare::take();
        let name = unique(tag);
        client(
            None,
            &[],
            format!("CREATE DATABASE `{name}` CHARACTER SET {charset}").as_bytes(),
        );
        Self {
            name,
            _share: share,
        }
    }

    fn url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&format!("{ROOT}/{}", self.name)).unwrap()
    }

    fn seed(&self, file: &str) {
        let sql = std::fs::read(fixtures().join(file)).unwrap();
        client(Some(&self.name), &["--default-character-set=utf8mb4"], &sql);
    }

    fn run(&self, sql: &str) -> String {
        client(
            Some(&self.name),
            &["--default-character-set=utf8mb4"],
            sql.as_bytes(),
        )
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = try_client(
            None,
            &[],
            format!("DROP DATABASE IF EXISTS `{}`", self.name).as_bytes(),
        );
    }
}

struct Dumped {
    script: Vec<u8>,
    meta: DumpMeta,
    summary: DumpSummary,
}

impl Dumped {
    /// The script as text. Valid UTF-8 unless a definition was created under a non-UTF-8
    /// client charset (see `definitions_written_under_a_latin1_client_keep_their_bytes`).
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.script).into_owned()
    }
}

async fn dump(source: MysqlSource) -> Dumped {
    let d = source
        .dump(DumpOptions::default())
        .await
        .expect("dump starts");
    let meta = d.meta.clone();
    let mut body = d.body;
    let mut script = Vec::new();
    while let Some(chunk) = body.next().await {
        script.extend_from_slice(&chunk.expect("body chunk"));
    }
    let summary = d.completion.await.expect("dump completes");
    Dumped {
        script,
        meta,
        summary,
    }
}

/// Everything we compare between a source and a restored database: per table CHECKSUM TABLE
/// and every row (every column, INVISIBLE and generated included, as hex of its bytes), and
/// `SHOW CREATE` of every table, sequence, view, routine, trigger and event.
async fn describe(db: &str) -> Vec<String> {
    let opts = Opts::from_url(&format!("{ROOT}/{db}")).unwrap();
    let mut conn = Conn::new(opts).await.unwrap();
    conn.query_drop("SET NAMES utf8mb4").await.unwrap();
    let mut out = Vec::new();
    let lit = format!("'{db}'");
    let tables: Vec<(String, String)> = conn
        .query(format!(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = {lit} ORDER BY TABLE_NAME"
        ))
        .await
        .unwrap();
    for (t, kind) in &tables {
        let create: Vec<Value> = conn
            .query_first::<mysql_async::Row, _>(format!("SHOW CREATE TABLE `{t}`"))
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        out.push(format!("{kind} {t}: {:?}", create.get(1)));
        if kind != "BASE TABLE" {
            continue;
        }
        let sum: Option<(String, Option<u64>)> = conn
            .query_first(format!("CHECKSUM TABLE `{t}` EXTENDED"))
            .await
            .unwrap();
        out.push(format!("checksum {t}: {:?}", sum.map(|s| s.1)));
        let cols: Vec<String> = conn
            .query(format!(
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {lit} AND TABLE_NAME = '{t}' ORDER BY ORDINAL_POSITION"
            ))
            .await
            .unwrap();
        let exprs: Vec<String> = cols
            .iter()
            .map(|c| format!("IFNULL(HEX(CAST(`{c}` AS BINARY)), 'NULL')"))
            .collect();
        let mut rows: Vec<String> = conn
            .query(format!(
                "SELECT CONCAT_WS(',', {}) FROM `{t}`",
                exprs.join(", ")
            ))
            .await
            .unwrap();
        rows.sort();
        out.push(format!("rows {t}: {}", rows.len()));
        out.extend(rows.into_iter().map(|r| format!("row {t}: {r}")));
    }
    let objects: Vec<(String, String)> = conn
        .query(format!(
            "SELECT 'PROCEDURE', ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {lit} AND ROUTINE_TYPE = 'PROCEDURE' \
             UNION ALL SELECT 'FUNCTION', ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {lit} AND ROUTINE_TYPE = 'FUNCTION' \
             UNION ALL SELECT 'TRIGGER', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {lit} \
             UNION ALL SELECT 'EVENT', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {lit} ORDER BY 1, 2"
        ))
        .await
        .unwrap();
    for (kind, name) in &objects {
        let row: Vec<Value> = conn
            .query_first::<mysql_async::Row, _>(format!("SHOW CREATE {kind} `{name}`"))
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // Everything but the creation timestamp of triggers.
        let keep = if kind == "TRIGGER" { 6 } else { row.len() };
        out.push(format!("{kind} {name}: {:?}", &row[..keep]));
    }
    let orders: Vec<(String, String, u64)> = conn
        .query(format!(
            "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, ACTION_ORDER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {lit} ORDER BY 1, 2"
        ))
        .await
        .unwrap();
    out.extend(orders.iter().map(|o| format!("trigger order {o:?}")));
    conn.disconnect().await.unwrap();
    out
}

/// Restore `script` into a fresh database with the stock client, as a user would.
fn restore(tag: &str, script: &[u8], extra: &[&str]) -> TestDb {
    let target = TestDb::new(tag);
    let (ok, _, err) = try_client(Some(&target.name), extra, script);
    assert!(ok, "restore with {extra:?} failed: {err}");
    target
}

const STRICT: &str =
    "--init-command=SET SESSION sql_mode='STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE'";

/// Dump `source`, restore it twice (plain, and strict with a latin1 client), and compare
/// everything: `describe`, the case's check queries, and fingerprints.
async fn round_trip(source: &TestDb, check: Option<&str>) -> Dumped {
    let dumped = dump(MysqlSource::new(source.url())).await;
    let before = describe(&source.name).await;
    let fp_source = fingerprint_database(&source.url()).await.unwrap();
    assert_eq!(
        dumped.summary.tables, fp_source,
        "dump-time and live fingerprints differ"
    );
    // Restorable into any database: nothing but the header comment names the source.
    let text = String::from_utf8_lossy(&dumped.script);
    let named: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("--") && l.contains(&source.name))
        .collect();
    assert!(
        named.is_empty(),
        "the script refers to the source database: {named:?}"
    );
    let plain = restore("rt", &dumped.script, &[]);
    let strict = restore(
        "rs",
        &dumped.script,
        &[STRICT, "--default-character-set=latin1"],
    );
    for target in [&plain, &strict] {
        assert_eq!(
            describe(&target.name).await,
            before,
            "restored {} differs from the source",
            target.name
        );
        assert_eq!(
            fingerprint_database(&target.url()).await.unwrap(),
            fp_source
        );
        if let Some(check) = check {
            let sql = std::fs::read_to_string(fixtures().join("fidelity").join(check)).unwrap();
            assert_eq!(
                target.run(&sql),
                source.run(&sql),
                "check queries of {check} differ"
            );
        }
    }
    dumped
}

#[tokio::test]
async fn m02_zero_dates_restore_under_strict_mode() {
    let db = TestDb::new("m02");
    db.seed("fidelity/M02.sql");
    let d = round_trip(&db, Some("M02.check.sql")).await;
    let text = d.text();
    assert!(
        // Columns in name order (d, dt, id, ts, y): the canonical order of fingerprints.
        text.contains("('0000-00-00','0000-00-00 00:00:00',1,'0000-00-00 00:00:00',0)"),
        "{text}"
    );
    assert!(
        text.contains("('0000-00-00','1000-01-01 00:00:00',3,'1970-01-01 00:00:01',1901)"),
        "{text}"
    );
    // The check output itself, pinned: zero defaults survive.
    let out = db.run("SELECT COLUMN_NAME, COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'legacy_dates' ORDER BY ORDINAL_POSITION;");
    assert!(out.contains("d\t'0000-00-00'"), "{out}");
}

#[tokio::test]
async fn m03_binary_bit_and_spatial_values_are_exact() {
    let db = TestDb::new("m03");
    db.seed("fidelity/M03.sql");
    let d = round_trip(&db, Some("M03.check.sql")).await;
    assert!(
        std::str::from_utf8(&d.script).is_ok(),
        "binary data never makes the script invalid UTF-8"
    );
    let text = d.text();
    assert!(
        text.contains("0x00275C1A22FF0D0A090000000000000A"),
        "BINARY as hex"
    );
    assert!(
        text.contains("0xE61000000101000000000000000000F83F00000000000002C0"),
        "POINT with SRID 4326 as internal-format hex"
    );
    let check = db.run("SELECT ST_SRID(pt), HEX(bit64), LENGTH(bl) FROM bin_types WHERE id = 1");
    assert!(check.contains("4326\tFFFFFFFFFFFFFFFF\t512"), "{check}");
}

#[tokio::test]
async fn m04_charsets_are_byte_exact() {
    let db = TestDb::with_charset("m04", "latin1");
    db.seed("fidelity/M04.sql");
    let d = round_trip(&db, Some("M04.check.sql")).await;
    assert!(
        std::str::from_utf8(&d.script).is_ok(),
        "binary data never makes the script invalid UTF-8"
    );
    let text = d.text();
    assert!(
        text.contains("'emoji 😀 and 𝄞 and 𠜎'"),
        "utf8mb4 text stays readable"
    );
    assert!(
        text.contains("_latin1 0xE9E8"),
        "latin1 text as its stored bytes"
    );
    // Also into a database whose default charset differs from the source's.
    let other = TestDb::with_charset("m04t", "utf8mb3");
    let (ok, _, err) = try_client(Some(&other.name), &[], &d.script);
    assert!(ok, "{err}");
    let sql = std::fs::read_to_string(fixtures().join("fidelity/M04.check.sql")).unwrap();
    assert_eq!(other.run(&sql), db.run(&sql));
    let hex = db.run("SELECT HEX(mb4) FROM charsets WHERE id = 1");
    assert!(hex.contains("F09F9880"), "{hex}");
}

#[tokio::test]
async fn m05_invisible_and_generated_columns() {
    let db = TestDb::new("m05");
    db.seed("fidelity/M05.sql");
    let d = round_trip(&db, Some("M05.check.sql")).await;
    let text = d.text();
    assert!(
        text.contains("INSERT INTO `hidden_cols` (`created`,`id`,`name`,`secret`) VALUES ('2020-01-01 00:00:00',1,'alice','s3cret'),('2001-02-03 04:05:06',2,'bob',NULL);"),
        "{text}"
    );
}

#[tokio::test]
async fn sample_every_type_and_object_round_trips() {
    let db = TestDb::new("sample");
    db.seed("sample.sql");
    let d = round_trip(&db, None).await;
    assert!(
        std::str::from_utf8(&d.script).is_ok(),
        "binary data never makes the script invalid UTF-8"
    );
    let text = d.text();
    // Script shape.
    assert!(
        text.starts_with("-- exporter SQL dump of database"),
        "{}",
        &text[..200]
    );
    assert!(!text.contains("sandbox"));
    assert!(
        !text.contains("\nUSE ") && !text.contains("CREATE DATABASE"),
        "no USE / CREATE DATABASE with a database in the URL"
    );
    for needle in [
        "SET NAMES utf8mb4;",
        "SQL_MODE='NO_AUTO_VALUE_ON_ZERO'",
        "SET TIME_ZONE='+00:00';",
        "FOREIGN_KEY_CHECKS=0",
        "UNIQUE_CHECKS=0",
        "AUTO_INCREMENT=500",
        "DO SETVAL(`order_no`,",
        "1.2345677614212036e0",
        "-- exporter: dump complete",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
    assert!(
        text.contains("DEFINER=`root`@"),
        "definers are kept by default (issue 15, kind 5)"
    );
    // Views after what they depend on; functions before views.
    let pos = |s: &str| text.find(s).unwrap_or_else(|| panic!("missing {s}"));
    assert!(pos("-- view `v_base`") < pos("-- view `z_on_view`"));
    assert!(pos("-- view `z_on_view`") < pos("-- view `a_on_view_on_view`"));
    assert!(pos("-- function `add_tax`") < pos("-- view `v_fn`"));
    assert!(pos("INSERT INTO `child`") < pos("-- trigger `child_ai`"));
    assert!(pos("-- trigger `child_ai`") < pos("-- trigger `child_ai2`"));
    // Bounded statements: the 3 MB table takes several.
    let bulk: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("INSERT INTO `bulk`"))
        .collect();
    assert!(bulk.len() >= 3, "{}", bulk.len());
    assert!(
        bulk.iter()
            .all(|l| l.len() <= exporter_mysql::stream::INSERT_LIMIT)
    );
    // Meta and summary.
    assert_eq!(d.meta.engine, "mariadb");
    assert!(d.meta.server_version.contains("MariaDB"));
    assert!(
        d.meta.size_hint.is_some(),
        "size hint from information_schema.TABLES"
    );
    assert_eq!(
        d.summary.consistency,
        Some(exporter_contract::Consistency::BestEffort)
    );
    assert_eq!(d.summary.warnings.len(), 1);
    assert!(
        d.summary.warnings[0].contains("legacy_myisam") && d.summary.warnings[0].contains("MyISAM")
    );
    let counts: Vec<(&str, u64)> = d
        .summary
        .tables
        .iter()
        .map(|t| (t.name.as_str(), t.rows))
        .collect();
    assert_eq!(
        counts,
        [
            ("order_no", 1),
            ("audit_log", 0),
            ("bulk", 3000),
            ("child", 3),
            ("every_type", 4),
            ("legacy_myisam", 1),
            ("parent", 2)
        ]
    );
    // The row with id 0 kept 0 (AUTO_INCREMENT + NO_AUTO_VALUE_ON_ZERO), FLOAT exact.
    let restored = restore("samp0", &d.script, &[]);
    let q = "SELECT id, CAST(f AS DOUBLE), seqd FROM every_type WHERE id = 0;";
    assert_eq!(restored.run(q), db.run(q));
    assert!(
        restored.run(q).contains("0\t1.2345677614212036\t7"),
        "{}",
        restored.run(q)
    );
    // The sequence continues after every value the source may have handed out (its cache).
    let next = db.run("SELECT next_not_cached_value FROM order_no");
    assert_eq!(
        restored.run("SELECT NEXTVAL(order_no)").lines().nth(1),
        next.lines().nth(1)
    );
    // The restored triggers work, the procedure runs, and the view calling a function answers.
    let act = "CALL bump(1); INSERT INTO child (parent_id) VALUES (1); SELECT what FROM audit_log ORDER BY id; SELECT * FROM v_fn ORDER BY id; SELECT * FROM a_on_view_on_view;";
    assert_eq!(restored.run(act), db.run(act));
}

#[tokio::test]
async fn definitions_written_under_a_latin1_client_keep_their_bytes() {
    let db = TestDb::new("lat1def");
    // 0xE9 is 'é' in latin1: the stored definitions are not UTF-8.
    client(
        Some(&db.name),
        &[],
        b"SET NAMES latin1; CREATE TABLE t (c VARCHAR(5) CHARACTER SET latin1); INSERT INTO t VALUES ('\xe9'); \
          CREATE VIEW v AS SELECT '\xe9' AS c, t.c AS tc FROM t; CREATE PROCEDURE p() SELECT '\xe9' AS c; \
          CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.c = CONCAT(NEW.c, '\xe9');",
    );
    let d = round_trip(&db, None).await;
    assert!(
        std::str::from_utf8(&d.script).is_err(),
        "the latin1 bytes are written unconverted"
    );
    let target = restore("lat1r", &d.script, &[]);
    let q = "SELECT HEX(c), HEX(tc) FROM v; CALL p(); INSERT INTO t VALUES ('a'); SELECT HEX(c) FROM t ORDER BY 1;";
    assert_eq!(target.run(q), db.run(q));
    assert!(
        db.run("SELECT HEX(c), HEX(tc) FROM v").contains("E9\tE9"),
        "the view returns latin1 'é'"
    );
}

#[tokio::test]
async fn definers_are_kept_by_default_and_stripped_on_request() {
    let db = TestDb::new("definer");
    db.run("CREATE TABLE t (id INT); CREATE VIEW v AS SELECT id FROM t; CREATE PROCEDURE p() SELECT 1;");
    let d = dump(MysqlSource::new(db.url())).await;
    let text = d.text();
    assert!(text.contains("DEFINER=`root`@"), "{text}");
    assert!(d.summary.warnings.is_empty());
    let target = restore("defr", &d.script, &[]);
    assert_eq!(describe(&target.name).await, describe(&db.name).await);
    let d = dump(MysqlSource::new(db.url()).with_definers(false)).await;
    assert!(!d.text().contains("DEFINER="));
    assert_eq!(d.summary.warnings.len(), 2, "{:?}", d.summary.warnings);
}

#[tokio::test]
// Holding the std lock across awaits is the point: every test runs on its own thread and
// runtime, and the other tests must wait for the whole every-schema dump.
#[allow(clippy::await_holding_lock)]
async fn every_schema_without_a_database_in_the_url() {
    let _exclusive = SERVER.write().unwrap_or_else(PoisonError::into_inner);
    let name = unique("all");
    client(None, &[], format!("CREATE DATABASE `{name}`; CREATE TABLE `{name}`.t (id INT PRIMARY KEY, v VARCHAR(5)); INSERT INTO `{name}`.t VALUES (1, 'x');").as_bytes());
    let url = DatabaseUrl::parse(&format!("{ROOT}/")).unwrap();
    let result = async {
        let d = dump(MysqlSource::new(url.clone())).await;
        let fps = fingerprint_database(&url).await.unwrap();
        (d, fps)
    }
    .await;
    client(None, &[], format!("DROP DATABASE `{name}`").as_bytes());
    let (d, fps) = result;
    let text = d.text();
    assert!(
        text.contains(&format!("CREATE DATABASE IF NOT EXISTS `{name}`")),
        "per-schema CREATE DATABASE"
    );
    assert!(text.contains(&format!("USE `{name}`;")));
    assert!(!text.contains("CREATE DATABASE IF NOT EXISTS `mysql`") && !text.contains("USE `sys`"));
    let entry = d
        .summary
        .tables
        .iter()
        .find(|t| t.name == format!("{name}.t"))
        .expect("qualified table name");
    assert_eq!(entry.rows, 1);
    assert_eq!(d.summary.tables, fps);
}

fn assert_no_secret(e: &EngineError, secret: &str) {
    let mut texts = vec![e.to_string(), format!("{e:?}")];
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        texts.push(c.to_string());
        cause = c.source();
    }
    for t in texts {
        assert!(!t.contains(secret), "the password leaked: {t}");
    }
}

#[tokio::test]
async fn unknown_database_is_not_found() {
    let url = DatabaseUrl::parse(&format!("{ROOT}/{}", unique("nope"))).unwrap();
    let e = MysqlSource::new(url.clone())
        .dump(DumpOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("exp_my_nope_"), "{e}");
    assert_eq!(
        MysqlSource::new(url).preflight().await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// The hosts a test user is created for (TCP from 127.0.0.1 may match either name).
const HOSTS: [&str; 3] = ["%", "127.0.0.1", "localhost"];

/// A user that may not SELECT one table: MariaDB needs table-level grants for that.
struct TestUser {
    name: String,
    password: String,
}

impl TestUser {
    fn new(db: &TestDb, denied: &str, allowed: &[&str]) -> Self {
        let name = format!("exp_my_{}", std::process::id());
        let password = format!(
            "Pw-{}-secret",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let mut sql = String::new();
        for host in HOSTS {
            let u = format!("'{name}'@'{host}'");
            let db = &db.name;
            let _ = write!(
                sql,
                "DROP USER IF EXISTS {u}; CREATE USER {u} IDENTIFIED BY '{password}';"
            );
            let _ = write!(
                sql,
                "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, EXECUTE ON `{db}`.* TO {u};"
            );
            let _ = write!(sql, "REVOKE SELECT ON `{db}`.* FROM {u};");
            for t in allowed {
                let _ = write!(sql, "GRANT SELECT ON `{db}`.`{t}` TO {u};");
            }
        }
        let _ = denied;
        client(None, &[], sql.as_bytes());
        Self { name, password }
    }

    fn url(&self, db: &TestDb, password: &str) -> DatabaseUrl {
        DatabaseUrl::parse(&format!(
            "mysql://{}:{password}@127.0.0.1:3306/{}",
            self.name, db.name
        ))
        .unwrap()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let mut sql = String::new();
        for h in HOSTS {
            let _ = write!(sql, "DROP USER IF EXISTS '{}'@'{h}';", self.name);
        }
        let _ = try_client(None, &[], sql.as_bytes());
    }
}

#[tokio::test]
async fn missing_privilege_names_the_table_and_wrong_password_is_auth() {
    let db = TestDb::new("perm");
    db.run("CREATE TABLE open_a (id INT); CREATE TABLE secret_b (id INT); CREATE TABLE open_c (id INT); INSERT INTO secret_b VALUES (1);");
    let user = TestUser::new(&db, "secret_b", &["open_a", "open_c"]);
    let url = user.url(&db, &user.password);
    for e in [
        MysqlSource::new(url.clone()).preflight().await.unwrap_err(),
        MysqlSource::new(url.clone())
            .dump(DumpOptions::default())
            .await
            .unwrap_err(),
        fingerprint_database(&url).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
        let shown = e.to_string();
        assert!(
            shown.contains("secret_b") && shown.contains(&db.name),
            "{shown}"
        );
        assert_no_secret(&e, &user.password);
    }
    // Wrong password: Auth, and neither password appears anywhere.
    let wrong = format!("{}-WRONG", user.password);
    let e = MysqlSource::new(user.url(&db, &wrong))
        .dump(DumpOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert_no_secret(&e, &wrong);
    assert_no_secret(&e, &user.password);
    assert!(
        !MysqlSource::new(user.url(&db, &wrong))
            .describe()
            .contains(&wrong)
    );
}

#[tokio::test]
async fn account_without_trigger_privilege_is_refused() {
    let db = TestDb::new("priv");
    db.run("CREATE TABLE t (id INT);");
    let user = TestUser::new(&db, "", &["t"]);
    let mut revoke = String::new();
    for h in HOSTS {
        let _ = write!(
            revoke,
            "REVOKE TRIGGER ON `{}`.* FROM '{}'@'{h}';",
            db.name, user.name
        );
    }
    client(None, &[], revoke.as_bytes());
    let e = MysqlSource::new(user.url(&db, &user.password))
        .preflight()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
    assert!(e.to_string().contains("TRIGGER"), "{e}");
}

async fn find_connection(admin: &mut Conn, like: &str) -> u64 {
    for _ in 0..200 {
        let id: Option<u64> = admin
            .exec_first(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND ID <> CONNECTION_ID() LIMIT 1",
                (like,),
            )
            .await
            .unwrap();
        if let Some(id) = id {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the dump's connection never showed up in PROCESSLIST ({like})");
}

#[tokio::test]
async fn killed_while_blocked_on_a_lock_is_never_ok() {
    let db = TestDb::new("killlock");
    db.run("CREATE TABLE locked (id INT PRIMARY KEY); INSERT INTO locked VALUES (1);");
    let mut locker = Conn::new(Opts::from_url(&format!("{ROOT}/{}", db.name)).unwrap())
        .await
        .unwrap();
    locker.query_drop("LOCK TABLES locked WRITE").await.unwrap();
    let url = db.url();
    let task = tokio::spawn(async move {
        match MysqlSource::new(url).dump(DumpOptions::default()).await {
            Err(e) => Err(e),
            Ok(d) => {
                let mut body = d.body;
                let mut body_err = None;
                while let Some(item) = body.next().await {
                    if let Err(e) = item {
                        body_err = Some(e);
                    }
                }
                match (d.completion.await, body_err) {
                    (Ok(s), None) => Ok(s),
                    (Err(e), _) | (Ok(_), Some(e)) => Err(e),
                }
            }
        }
    });
    let mut admin = Conn::new(Opts::from_url(ROOT).unwrap()).await.unwrap();
    let id = find_connection(&mut admin, &format!("%`{}`.`locked`%", db.name)).await;
    admin.query_drop(format!("KILL {id}")).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Cancelled | ErrorKind::Protocol),
        "{e:?}"
    );
    locker.query_drop("UNLOCK TABLES").await.unwrap();
}

#[tokio::test]
async fn killed_mid_stream_fails_the_body_or_completion() {
    let db = TestDb::new("killmid");
    // ~24 MB: more than the channel and the socket buffers hold.
    db.run(
        "SET SESSION max_recursive_iterations = 100000; CREATE TABLE big (id INT PRIMARY KEY, p VARCHAR(1200)); \
         INSERT INTO big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT i, REPEAT('x', 1200) FROM n;",
    );
    let d = MysqlSource::new(db.url())
        .dump(DumpOptions::default())
        .await
        .unwrap();
    let mut body = d.body;
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    let mut admin = Conn::new(Opts::from_url(ROOT).unwrap()).await.unwrap();
    let id = find_connection(&mut admin, &format!("%FROM `{}`.`big`%", db.name)).await;
    admin.query_drop(format!("KILL {id}")).await.unwrap();
    let mut body_err = None;
    while let Some(item) = body.next().await {
        if let Err(e) = item {
            body_err = Some(e);
        }
    }
    let completion = d.completion.await;
    assert!(body_err.is_some(), "the body must end with an error");
    let e = completion.expect_err("completion must not be Ok after KILL");
    assert!(
        matches!(e.kind(), ErrorKind::Cancelled | ErrorKind::Protocol),
        "{e:?}"
    );
    assert!(e.to_string().contains("big"), "{e}");
}

#[tokio::test]
async fn consumer_gone_cancels_and_frees_the_server() {
    let db = TestDb::new("drop");
    db.run(
        "SET SESSION max_recursive_iterations = 100000; CREATE TABLE big (id INT PRIMARY KEY, p VARCHAR(1200)); \
         INSERT INTO big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT i, REPEAT('y', 1200) FROM n;",
    );
    let d = MysqlSource::new(db.url())
        .dump(DumpOptions::default())
        .await
        .unwrap();
    let mut body = d.body;
    let _ = body.next().await.unwrap().unwrap();
    drop(body);
    let e = tokio::time::timeout(Duration::from_secs(30), d.completion)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    // The dump's query is gone from the server.
    let mut admin = Conn::new(Opts::from_url(ROOT).unwrap()).await.unwrap();
    let like = format!("%FROM `{}`.`big`%", db.name);
    let mut gone = false;
    for _ in 0..100 {
        let n: Option<u64> = admin
            .exec_first("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND ID <> CONNECTION_ID()", (&like,))
            .await
            .unwrap();
        if n == Some(0) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the server still runs the abandoned dump query");
}

/// An invalid ENUM value written under a permissive sql_mode is stored as index 0 and reads as
/// `''`; written back as `''` it became a real `''` member (index 1) on restore, silently
/// (found by adversarial testing). ENUM and SET now travel as their index / bitmask.
#[tokio::test]
async fn enum_index_zero_and_set_bitmasks_are_exact() {
    let db = TestDb::new("enum0");
    db.run(
        "SET SESSION sql_mode = '';
         CREATE TABLE en (id INT PRIMARY KEY, e ENUM('', 'a', 'it''s, odd'), s SET('', 'x', 'y'));
         INSERT INTO en VALUES (1, '', ''), (2, 'bogus', 'x,y'), (3, 'a', 'y'), (4, 'it''s, odd', NULL), (5, NULL, 'nope');",
    );
    let check = "SELECT id, e + 0, HEX(e), s + 0, HEX(s) FROM en ORDER BY id";
    let source = db.run(check);
    assert!(
        source.contains("\n2\t0\t\t6\t782C79\n"),
        "the source really holds index 0: {source}"
    );
    let d = round_trip(&db, None).await;
    let target = restore("enum0r", &d.script, &[STRICT]);
    assert_eq!(
        target.run(check),
        source,
        "ENUM/SET values changed on restore"
    );
    assert!(
        d.text().contains("(0,2,6)"),
        "index and bitmask written as numbers:\n{}",
        d.text()
    );
}

/// Issue 15, kind 3: a row's canonical bytes are its values in column-name order, so two
/// tables holding the same rows in differently ordered columns have equal fingerprints (a
/// restore may order columns differently), and one changed value in any column changes it.
#[tokio::test]
async fn fingerprints_follow_column_names_not_positions() {
    let a = TestDb::new("fpa");
    let b = TestDb::new("fpb");
    a.run(
        "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(10), qty INT, note TEXT INVISIBLE);
         INSERT INTO t (id, name, qty, note) VALUES (1, 'x', 5, 'a,b'), (2, NULL, 7, NULL);",
    );
    b.run(
        "CREATE TABLE t (qty INT, note TEXT INVISIBLE, name VARCHAR(10), id INT PRIMARY KEY);
         INSERT INTO t (id, name, qty, note) VALUES (1, 'x', 5, 'a,b'), (2, NULL, 7, NULL);",
    );
    let dumped = dump(MysqlSource::new(a.url())).await;
    assert!(
        dumped.text().contains(
            "INSERT INTO `t` (`id`,`name`,`note`,`qty`) VALUES (1,'x','a,b',5),(2,NULL,NULL,7);"
        ),
        "{}",
        dumped.text()
    );
    let fa = fingerprint_database(&a.url()).await.unwrap();
    let fb = fingerprint_database(&b.url()).await.unwrap();
    assert_eq!(fa, dumped.summary.tables);
    assert_eq!(fa, fb, "same rows, columns in another order");
    b.run("UPDATE t SET note = 'a,c' WHERE id = 1");
    let changed = fingerprint_database(&b.url()).await.unwrap();
    assert_eq!(changed[0].rows, fa[0].rows);
    assert_ne!(changed[0].fingerprint, fa[0].fingerprint);
}

/// Issue 15, kind 4: system-versioned tables are dumped with their history (every row
/// version with its period columns, implicit or explicit and INVISIBLE), restored by the
/// stock client on MariaDB 10.11, and fingerprinted history included.
#[tokio::test]
async fn m06_system_versioned_tables_keep_their_history() {
    let db = TestDb::new("m06");
    db.seed("fidelity/M06.sql");
    // round_trip restores with the stock client (also strict, also a latin1 client) and
    // compares the check queries, every SHOW CREATE and the fingerprints.
    let d = round_trip(&db, Some("M06.check.sql")).await;
    let rows = |name: &str| {
        d.summary
            .tables
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} in {:?}", d.summary.tables))
            .rows
    };
    assert_eq!(rows("prices"), 5, "2 current rows and 3 historical ones");
    assert_eq!(rows("stock"), 4);
    assert_eq!(rows("partly"), 2);
    assert_eq!(rows("never_changed"), 0);
    let text = d.text();
    assert!(
        text.contains(
            "SET /* history of `prices` */ @@SESSION.system_versioning_insert_history = 1;\n\
             INSERT INTO `prices` (`ROW_END`,`ROW_START`,`id`,`item`,`price`) VALUES \
             ('2024-02-01 12:30:00.250000','2024-01-01 00:00:00.000000',1,'apple',1.00),"
        ),
        "{text}"
    );
    assert!(text.contains("INSERT INTO `stock` (`id`,`qty`,`valid_from`,`valid_to`) VALUES"));
    // The fingerprint covers the history: without it, the table's differs.
    let target = restore("m06h", &d.script, &[]);
    target.run("DELETE HISTORY FROM prices");
    let after = fingerprint_database(&target.url()).await.unwrap();
    let prices = after.iter().find(|t| t.name == "prices").unwrap();
    assert_eq!(prices.rows, 2, "the current rows only");
    let before = d
        .summary
        .tables
        .iter()
        .find(|t| t.name == "prices")
        .unwrap();
    assert_ne!(prices.fingerprint, before.fingerprint);
}

/// Issue 15, kind 4: a table versioned by transaction id cannot have its history loaded
/// into any other server: the dump fails naming it, never dumping only its current rows.
#[tokio::test]
async fn transaction_versioned_tables_fail_naming_the_table() {
    let db = TestDb::new("trxv");
    db.run(
        "CREATE TABLE ok_one (id INT);
         CREATE TABLE trx (id INT PRIMARY KEY,
             rs BIGINT UNSIGNED GENERATED ALWAYS AS ROW START,
             re BIGINT UNSIGNED GENERATED ALWAYS AS ROW END,
             PERIOD FOR SYSTEM_TIME (rs, re)) ENGINE=InnoDB WITH SYSTEM VERSIONING;
         INSERT INTO trx (id) VALUES (1);",
    );
    let e = MysqlSource::new(db.url())
        .dump(DumpOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert_eq!(
        e.object(),
        Some(format!("table `{}`.`trx`", db.name).as_str()),
        "{e}"
    );
    assert!(e.to_string().contains("transaction id"), "{e}");
}

/// A view whose definer account is missing (a kept definer, issue 15 kind 5) is printed by
/// MariaDB with its columns qualified by the source database; the script drops that
/// qualifier, so it still restores into any database.
#[tokio::test]
async fn a_view_of_a_missing_definer_restores_into_another_database() {
    let db = TestDb::new("vdef");
    db.run(
        "CREATE TABLE t (id INT); INSERT INTO t VALUES (1);
         CREATE DEFINER=`exp_gone`@`%` SQL SECURITY DEFINER VIEW v AS SELECT t.id, 'x.t.id' AS s FROM t;",
    );
    assert!(
        db.run("SHOW CREATE VIEW v")
            .contains(&format!("`{}`.`t`.`id`", db.name)),
        "MariaDB qualifies this view's columns"
    );
    let d = dump(MysqlSource::new(db.url())).await;
    let text = d.text();
    assert!(
        text.contains(
            "DEFINER=`exp_gone`@`%` SQL SECURITY DEFINER VIEW `v` AS select `t`.`id` AS `id`,'x.t.id' AS `s` from `t`"
        ),
        "{text}"
    );
    let target = restore("vdefr", &d.script, &[]);
    assert!(
        target
            .run("SHOW CREATE VIEW v")
            .contains("DEFINER=`exp_gone`@`%` SQL SECURITY DEFINER")
    );
}
