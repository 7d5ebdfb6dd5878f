//! The parallel restore (`RestoreOptions::jobs` > 1) against the real MariaDB on
//! 127.0.0.1:3306 (root, empty password): our dump of the sample and the system-versioned
//! fixture restored with 1 and 4 jobs (same summary, same fingerprints as the dump, same
//! objects); INSERTs of one table running at once on several connections; session state on
//! every connection; AUTO_INCREMENT values the script leaves to the server; a deadlock
//! victim run again; a failing data statement named like the serial restore names it;
//! mariadb-dump scripts with and without `LOCK TABLES`.
//!
//! Each test creates its own databases (`exp_pr_<tag>_<pid>_<nanos>`) and drops them.

#![allow(
    clippy::disallowed_macros,
    clippy::disallowed_methods,
    reason = "tests may print and use std::fs (clippy.toml)"
)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use exporter_contract::{
    DatabaseUrl, DumpOptions, DumpSummary, EngineError, ErrorKind, PayloadFormat, RestoreOptions,
    RestoreSummary, Source, TableSummary, Target,
};
use exporter_mysql::{MysqlSource, MysqlTarget};
use futures::StreamExt;
use futures::stream::BoxStream;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Row, Value};

const ROOT: &str = "mysql://root@127.0.0.1:3306";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/mysql")
}

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("exp_pr_{tag}_{}_{nanos}", std::process::id());
    assert!(name.len() <= 64, "database name too long: {name}");
    name
}

/// Run the stock client; returns (success, stdout, stderr).
fn try_client(db: Option<&str>, input: &[u8]) -> (bool, String, String) {
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
}

impl TestDb {
    fn new(tag: &str) -> Self {
        let name = unique(tag);
        let (ok, _, err) = try_client(
            None,
            format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4").as_bytes(),
        );
        assert!(ok, "{err}");
        Self { name }
    }

    fn url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&format!("{ROOT}/{}", self.name)).unwrap()
    }

    fn target(&self) -> MysqlTarget {
        MysqlTarget::new(self.url())
    }

    fn run(&self, sql: &str) -> String {
        let (ok, out, err) = try_client(Some(&self.name), sql.as_bytes());
        assert!(ok, "{sql}: {err}");
        out
    }

    fn seed(&self, file: &str) {
        let sql = std::fs::read(fixtures().join(file)).unwrap();
        let (ok, _, err) = try_client(Some(&self.name), &sql);
        assert!(ok, "{file}: {err}");
    }

    async fn conn(&self) -> Conn {
        Conn::new(Opts::from_url(&format!("{ROOT}/{}", self.name)).unwrap())
            .await
            .unwrap()
    }

    /// Rows of a query as text cells, for comparisons.
    async fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let mut conn = self.conn().await;
        let rows: Vec<Row> = conn.query(sql).await.unwrap();
        conn.disconnect().await.unwrap();
        rows.into_iter()
            .map(|r| {
                r.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        Value::NULL => "NULL".to_owned(),
                        Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                        other => other.as_sql(true),
                    })
                    .collect()
            })
            .collect()
    }

    async fn fingerprint(&self) -> Vec<TableSummary> {
        self.target().fingerprint().await.unwrap()
    }

    /// Every table's, view's, routine's, trigger's and event's `SHOW CREATE` (without a
    /// trigger's creation time; the database's name as `DB`).
    async fn objects(&self) -> Vec<String> {
        let lit = format!("'{}'", self.name);
        let names = self
            .rows(&format!(
                "SELECT IF(TABLE_TYPE = 'VIEW', 'VIEW', 'TABLE'), TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = {lit} AND TABLE_TYPE <> 'SEQUENCE' \
                 UNION ALL SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {lit} \
                 UNION ALL SELECT 'TRIGGER', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {lit} \
                 UNION ALL SELECT 'EVENT', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {lit} ORDER BY 1, 2"
            ))
            .await;
        let mut out = Vec::new();
        for kv in &names {
            let (kind, name) = (&kv[0], &kv[1]);
            let row = &self
                .rows(&format!("SHOW CREATE {kind} `{}`.`{name}`", self.name))
                .await[0];
            let keep = if kind == "TRIGGER" { 6 } else { row.len() };
            out.push(format!("{kind} {name}: {:?}", &row[..keep]).replace(&self.name, "DB"));
        }
        out
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = try_client(
            None,
            format!("DROP DATABASE IF EXISTS `{}`", self.name).as_bytes(),
        );
    }
}

struct Dumped {
    script: Vec<u8>,
    summary: DumpSummary,
}

async fn dump(url: DatabaseUrl) -> Dumped {
    let d = MysqlSource::new(url)
        .dump(DumpOptions::default())
        .await
        .expect("dump starts");
    let mut body = d.body;
    let mut script = Vec::new();
    while let Some(chunk) = body.next().await {
        script.extend_from_slice(&chunk.expect("body chunk"));
    }
    let summary = d.completion.await.expect("dump completes");
    Dumped { script, summary }
}

/// The script in chunks of `size` bytes, as the core hands it over.
fn chunks(script: &[u8], size: usize) -> BoxStream<'static, Result<Bytes, EngineError>> {
    let parts: Vec<Result<Bytes, EngineError>> = script
        .chunks(size)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(parts).boxed()
}

async fn restore(db: &TestDb, script: &[u8], jobs: usize) -> Result<RestoreSummary, EngineError> {
    db.target()
        .restore(
            PayloadFormat::Sql,
            chunks(script, 7919),
            RestoreOptions::default().with_jobs(jobs),
        )
        .await
}

fn mariadb_dump(db: &str, extra: &[&str]) -> Vec<u8> {
    let out = Command::new("mariadb-dump")
        .args(extra)
        .args([
            "-h127.0.0.1",
            "-P3306",
            "-uroot",
            "--single-transaction",
            "--hex-blob",
            "--routines",
            "--triggers",
            "--events",
            db,
        ])
        .output()
        .expect("mariadb-dump must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn occurrences(haystack: &[u8], needle: &str) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle.as_bytes())
        .count()
}

#[tokio::test]
async fn jobs_1_and_4_restore_the_same_database() {
    // Every column type, a sequence and a sequence default, foreign keys (the child table
    // sorts first), a MyISAM table, AUTO_INCREMENT (a row with id 0), a table of several
    // INSERT statements, views, routines, triggers, an event; system-versioned tables with
    // history (loaded under system_versioning_insert_history).
    let source = TestDb::new("src");
    source.seed("sample.sql");
    source.seed("fidelity/M06.sql");
    let d = dump(source.url()).await;
    assert!(
        occurrences(&d.script, "INSERT INTO `bulk`") >= 3,
        "bulk spans several statements"
    );
    assert!(occurrences(&d.script, "system_versioning_insert_history = 1") >= 3);

    let one = TestDb::new("j1");
    let four = TestDb::new("j4");
    let serial = restore(&one, &d.script, 1).await.expect("restore, 1 job");
    let parallel = restore(&four, &d.script, 4).await.expect("restore, 4 jobs");
    assert_eq!(parallel, serial);
    assert!(serial.rows > 3000, "{serial:?}");
    assert_eq!(one.fingerprint().await, d.summary.tables);
    assert_eq!(four.fingerprint().await, d.summary.tables);
    let objects = one.objects().await;
    assert!(objects.len() > 15, "{objects:?}");
    assert_eq!(four.objects().await, objects);
    // The restored objects work alike.
    let act = "CALL bump(1); INSERT INTO child (parent_id) VALUES (1); \
               SELECT what FROM audit_log ORDER BY id; SELECT * FROM v_fn ORDER BY id; \
               SELECT NEXTVAL(order_no);";
    assert_eq!(four.run(act), one.run(act));
}

/// Poll `sql` (one value) on `db` until it returns `want`, for up to 30 s. Over its own
/// connection, never blocking the runtime, so the restore under test keeps running; every
/// 250 ms, since `information_schema.INNODB_TRX` is refreshed only after 100 ms without a
/// read (`CACHE_MIN_IDLE_TIME` of InnoDB's `trx0i_s.cc`).
async fn wait_for(db: &TestDb, sql: &str, want: &str) {
    let mut conn = db.conn().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let got: Option<String> = conn.query_first(sql).await.unwrap();
        if got.as_deref() == Some(want) {
            break;
        }
        if Instant::now() >= deadline {
            let trx: Vec<Row> = conn
                .query("SELECT trx_state, trx_query FROM information_schema.INNODB_TRX")
                .await
                .unwrap();
            let sessions: Vec<Row> = conn
                .query("SELECT DB, COMMAND, STATE, LEFT(INFO, 100) FROM information_schema.PROCESSLIST")
                .await
                .unwrap();
            panic!("{sql}: {got:?}, not {want}; transactions: {trx:?}; sessions: {sessions:?}");
        }
    }
    conn.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_of_one_table_run_at_once_on_several_connections() {
    let db = TestDb::new("overlap");
    db.run("CREATE TABLE t (id INT PRIMARY KEY, v INT)");
    // Another session holds id 5 uncommitted: the INSERT of id 5 waits for it; the other
    // INSERTs, on other connections, do not wait. (The table's first INSERT runs alone, so
    // it is not the one held.)
    let mut holder = db.conn().await;
    holder.query_drop("START TRANSACTION").await.unwrap();
    holder
        .query_drop("INSERT INTO t VALUES (5, 0)")
        .await
        .unwrap();
    let mut script = String::new();
    for i in 1..=12 {
        writeln!(script, "INSERT INTO t VALUES ({i}, {i});").unwrap();
    }
    let target = db.target();
    let restore = tokio::spawn(async move {
        target
            .restore(
                PayloadFormat::Sql,
                chunks(script.as_bytes(), 64),
                RestoreOptions::default().with_jobs(4),
            )
            .await
    });
    // The other ids commit while id 5 waits.
    wait_for(&db, "SELECT COUNT(*) FROM t", "11").await;
    assert!(!restore.is_finished(), "the INSERT of id 5 still waits");
    holder.query_drop("ROLLBACK").await.unwrap();
    let summary = restore.await.unwrap().expect("restore");
    assert_eq!(
        summary,
        RestoreSummary {
            statements: 12,
            rows: 12,
            skipped: 0
        }
    );
    assert_eq!(
        db.rows("SELECT SUM(v) FROM t").await,
        [[(1..=12).sum::<i32>().to_string()]]
    );
    holder.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_victim_runs_again() {
    let db = TestDb::new("deadlock");
    // Not empty: MariaDB locks the whole table for an INSERT … SELECT into an empty one.
    db.run("CREATE TABLE victim (id INT PRIMARY KEY, v INT); INSERT INTO victim VALUES (9999, 0)");
    // Another session holds id 100, and 2000 more rows: it weighs more than the restore's
    // INSERT, so InnoDB picks the restore's as the deadlock victim.
    let mut holder = db.conn().await;
    holder.query_drop("START TRANSACTION").await.unwrap();
    holder
        .query_drop("INSERT INTO victim SELECT seq + 1000, 0 FROM seq_1_to_2000")
        .await
        .unwrap();
    holder
        .query_drop("INSERT INTO victim VALUES (100, 0)")
        .await
        .unwrap();
    let target = db.target();
    let restore = tokio::spawn(async move {
        target
            .restore(
                PayloadFormat::Sql,
                chunks(b"INSERT INTO victim VALUES (1, 1), (100, 1);\n", 8),
                RestoreOptions::default().with_jobs(4),
            )
            .await
    });
    // The restore's INSERT wrote id 1 and waits for id 100.
    let waiting = "SELECT COUNT(*) FROM information_schema.INNODB_TRX \
                   WHERE trx_state = 'LOCK WAIT' AND trx_query LIKE 'INSERT INTO victim VALUES (1, 1)%'";
    wait_for(&db, waiting, "1").await;
    // The holder now waits for the restore's id 1: a deadlock. InnoDB rolls the restore's
    // INSERT back, so the holder's goes through; the restore runs its INSERT again, which
    // waits for the holder's id 1 this time.
    holder
        .query_drop("INSERT INTO victim VALUES (1, 0)")
        .await
        .expect("the holder is not the victim");
    wait_for(&db, waiting, "1").await;
    assert!(!restore.is_finished());
    holder.query_drop("ROLLBACK").await.unwrap();
    let summary = restore.await.unwrap().expect("the victim ran again");
    assert_eq!((summary.statements, summary.rows), (1, 2));
    assert_eq!(
        db.rows("SELECT id, v FROM victim ORDER BY id").await,
        [["1", "1"], ["100", "1"], ["9999", "0"]]
    );
    holder.disconnect().await.unwrap();
}

#[tokio::test]
async fn session_state_reaches_every_connection() {
    // The server's default session is strict and in its own time zone; the script changes
    // both between INSERTs, and switches foreign key checks off: each INSERT must run under
    // the settings before it, on whichever connection runs it.
    let mut script = String::from(
        "CREATE TABLE p (id INT PRIMARY KEY);\n\
         CREATE TABLE c (id INT PRIMARY KEY, p INT, FOREIGN KEY (p) REFERENCES p (id));\n\
         CREATE TABLE ts (id INT PRIMARY KEY, at TIMESTAMP NULL, s VARCHAR(3));\n\
         SET FOREIGN_KEY_CHECKS = 0, time_zone = '+05:00';\n",
    );
    for i in 1..=6 {
        let parent = 100 + i;
        writeln!(
            script,
            "INSERT INTO ts VALUES ({i}, '2024-01-01 00:00:00', 'abc');"
        )
        .unwrap();
        writeln!(script, "INSERT INTO c VALUES ({i}, {parent});").unwrap();
    }
    script.push_str("SET time_zone = '+00:00', SQL_MODE = '';\n");
    for i in 7..=12 {
        writeln!(
            script,
            "INSERT INTO ts VALUES ({i}, '2024-01-01 00:00:00', 'abcdef');"
        )
        .unwrap();
    }
    let dbs = [TestDb::new("sess1"), TestDb::new("sess4")];
    let mut summaries = Vec::new();
    for (db, jobs) in dbs.iter().zip([1, 4]) {
        summaries.push(restore(db, script.as_bytes(), jobs).await.expect("restore"));
    }
    assert_eq!(summaries[0], summaries[1]);
    let query = "SELECT id, UNIX_TIMESTAMP(at), s FROM ts ORDER BY id";
    let rows = dbs[1].rows(query).await;
    assert_eq!(rows, dbs[0].rows(query).await);
    assert_eq!(rows.len(), 12);
    // 2024-01-01 00:00 at +05:00, then at UTC; 'abcdef' cut to 'abc' without strict mode.
    assert_eq!(rows[0], ["1", "1704049200", "abc"]);
    assert_eq!(rows[11], ["12", "1704067200", "abc"]);
    assert_eq!(
        dbs[1].rows("SELECT COUNT(*) FROM c").await,
        [["6".to_owned()]],
        "children of missing parents load with FOREIGN_KEY_CHECKS = 0"
    );
}

#[tokio::test]
async fn auto_increment_values_left_to_the_server_keep_the_script_order() {
    let mut script =
        String::from("CREATE TABLE ai (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(10));\n");
    for i in 0..10 {
        writeln!(script, "INSERT INTO ai (name) VALUES ('a{i}'), ('b{i}');").unwrap();
        writeln!(script, "INSERT INTO ai VALUES (NULL, 'c{i}');").unwrap();
    }
    let dbs = [TestDb::new("ai1"), TestDb::new("ai4")];
    for (db, jobs) in dbs.iter().zip([1, 4]) {
        let summary = restore(db, script.as_bytes(), jobs).await.expect("restore");
        assert_eq!(summary.rows, 30);
    }
    let query = "SELECT id, name FROM ai ORDER BY id";
    let rows = dbs[1].rows(query).await;
    assert_eq!(rows, dbs[0].rows(query).await);
    assert_eq!(rows[3], ["4", "a1"]);
}

#[tokio::test]
async fn a_failing_data_statement_stops_the_parallel_restore_and_names_it() {
    let db = TestDb::new("fail");
    let mut script = String::from(
        "CREATE TABLE u (id INT PRIMARY KEY, code VARCHAR(20), UNIQUE KEY uq_code (code));\n\
         INSERT INTO u VALUES (1, 'a'), (2, 'b');\n\
         INSERT INTO u VALUES (3, 'c'),\n  (4, 'secret-dup'), (5, 'secret-dup');\n",
    );
    // Statement 5 fails too, whenever it runs: statement 3 is still the one reported.
    script.push_str("INSERT INTO u VALUES (6, 'd');\nINSERT INTO u VALUES (7, 'x'), (8, 'x');\n");
    for i in 9..40 {
        writeln!(script, "INSERT INTO u VALUES ({i}, 'v{i}');").unwrap();
    }
    script.push_str("CREATE TABLE after_failure (id INT);\n");
    let e = restore(&db, script.as_bytes(), 4).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Query, "{e}");
    assert_eq!(
        e.object(),
        Some("statement 3 (line 3): INSERT INTO u VALUES")
    );
    let shown = e.to_string();
    assert!(
        shown.contains("ERROR 1062 (23000): Duplicate entry '…' for key 'uq_code'"),
        "{shown}"
    );
    assert!(!shown.contains("secret") && !format!("{e:?}").contains("secret"));
    assert!(
        !db.run("SHOW TABLES").contains("after_failure"),
        "a statement after the failure ran"
    );
    let left = db
        .rows("SELECT COUNT(*) FROM u WHERE id >= 3 AND id <= 5")
        .await;
    assert_eq!(left, [["0".to_owned()]], "the failed statement left no row");
}

#[tokio::test]
async fn mariadb_dump_scripts_restore_with_4_jobs() {
    let source = TestDb::new("md");
    source.seed("fidelity/M06.sql");
    source.run(
        "CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL UNIQUE);\n\
         CREATE TABLE child (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT NOT NULL,\n\
           CONSTRAINT fk_c FOREIGN KEY (parent_id) REFERENCES parent (id));\n\
         CREATE TABLE wide (id INT AUTO_INCREMENT PRIMARY KEY, hidden INT INVISIBLE DEFAULT 7,\n\
           payload VARCHAR(1000), at DATETIME(6));\n\
         INSERT INTO parent VALUES (1, 'one'), (2, 'two');\n\
         INSERT INTO child (parent_id) VALUES (1), (2), (2);\n\
         INSERT INTO wide (hidden, payload, at) SELECT seq % 5, REPEAT(CHAR(65 + seq % 26), 900),\n\
           '2024-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_3000;\n\
         CREATE TRIGGER parent_bi BEFORE INSERT ON parent FOR EACH ROW SET NEW.name = LOWER(NEW.name);\n\
         CREATE VIEW v_children AS SELECT p.name, COUNT(*) AS n FROM parent p JOIN child c ON c.parent_id = p.id GROUP BY p.name;\n\
         CREATE PROCEDURE add_parent(IN i INT) INSERT INTO parent VALUES (i, CONCAT('P', i));",
    );
    let ours = dump(source.url()).await;
    for (flags, tag) in [
        (&["--dump-history"][..], "locks"),
        (&["--dump-history", "--skip-add-locks"][..], "nolocks"),
    ] {
        let script = mariadb_dump(&source.name, flags);
        let locks = occurrences(&script, "LOCK TABLES `wide` WRITE");
        assert_eq!(locks, usize::from(tag == "locks"), "{tag}");
        assert!(occurrences(&script, "INSERT INTO `wide`") >= 3, "{tag}");
        let one = TestDb::new(&format!("{tag}1"));
        let four = TestDb::new(&format!("{tag}4"));
        let serial = restore(&one, &script, 1).await.expect("restore, 1 job");
        let parallel = restore(&four, &script, 4).await.expect("restore, 4 jobs");
        assert_eq!(parallel, serial, "{tag}");
        assert_eq!(four.fingerprint().await, ours.summary.tables, "{tag}");
        assert_eq!(one.fingerprint().await, ours.summary.tables, "{tag}");
        assert_eq!(four.objects().await, one.objects().await, "{tag}");
        let hidden = "SELECT SUM(hidden), COUNT(*) FROM wide";
        assert_eq!(four.rows(hidden).await, source.rows(hidden).await, "{tag}");
    }
}
