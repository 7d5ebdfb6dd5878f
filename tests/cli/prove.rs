//! `exporter dump --verify LEVEL [--scratch URL…]` (issue 16, "dump and prove in one
//! command"): each archive verified as soon as it is committed, beside the dumps still
//! running, with one `verify.json` for the run — the record `exporter verify` writes. The
//! scratch servers are checked before the first dump; a failed verification exits as
//! `verify` would, with the run committed; Ctrl-C drops the scratch database; a platform
//! environment dumped through tunnels is proven against plain scratch URLs.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::fake::{Fake, seed_with};
use crate::support::{
    MY_HOST, MY_PORT, MyDb, Outcome, PG_HOST, PG_PORT, REDIS_SEED, REDIS_SEED_KEYS, RedisServer,
    TestDb, dump_ok, exporter, free_port, interrupt_when, mariadb, pg_scratch, psql, read_json,
    run, run_dirs, s, sha256_file, small_db, spawn_exporter, tempdir,
};

/// The MariaDB server as a scratch server.
fn my_scratch() -> String {
    format!("mysql://root@{MY_HOST}:{MY_PORT}")
}

/// `exporter dump <args>` in `cwd`.
fn dump(cwd: &Path, args: &[&str]) -> Outcome {
    run(exporter(cwd).arg("dump").args(args))
}

/// The run id of a run directory.
fn run_id(run_dir: &Path) -> String {
    run_dir.file_name().unwrap().to_string_lossy().into_owned()
}

/// `LIKE` patterns of the scratch databases of the run in `run_dir`, one per database of its
/// manifest (`exporter_verify_<run id>_<name>`, lowercase, other characters as `_`, cut
/// where a long name is cut): only this run's, so a test verifying another run of the same
/// second beside it is not counted.
fn scratch_patterns(run_dir: &Path) -> Vec<String> {
    let id = run_id(run_dir).to_lowercase();
    crate::support::manifest(run_dir)["databases"]
        .as_array()
        .expect("databases")
        .iter()
        .map(|d| {
            let full: String = format!("exporter_verify_{id}_{}", d["name"].as_str().unwrap())
                .chars()
                .map(|c| {
                    let c = c.to_ascii_lowercase();
                    if c.is_ascii_alphanumeric() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let prefix: String = full.chars().take(54).collect();
            format!("{}%", prefix.replace('_', "\\_"))
        })
        .collect()
}

/// PostgreSQL databases left of the scratch databases of the run in `run_dir`.
fn pg_scratch_left(run_dir: &Path) -> String {
    let likes: Vec<String> = scratch_patterns(run_dir)
        .iter()
        .map(|p| format!("datname LIKE '{p}'"))
        .collect();
    psql(
        "postgres",
        &format!(
            "SELECT string_agg(datname, ',') FROM pg_database WHERE {}",
            likes.join(" OR ")
        ),
    )
    .trim()
    .to_owned()
}

/// MariaDB databases left of the scratch databases of the run in `run_dir`.
fn my_scratch_left(run_dir: &Path) -> String {
    let likes: Vec<String> = scratch_patterns(run_dir)
        .iter()
        .map(|p| format!("SCHEMA_NAME LIKE '{p}'"))
        .collect();
    mariadb(
        None,
        &format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE {}",
            likes.join(" OR ")
        ),
    )
    .trim()
    .to_owned()
}

/// A `verify.json` record without what differs between two verifications of one run: its
/// time and each restore's duration.
fn timeless(mut record: Value) -> Value {
    record["verified_at"] = Value::Null;
    for d in record["databases"].as_array_mut().expect("databases") {
        if d.get("restore").is_some() {
            d["restore"]["millis"] = Value::Null;
        }
    }
    record
}

/// The headline test: one dump of a PostgreSQL, a MariaDB and a Redis database with
/// `--verify restore` ends with a `verify.json` that lists all three restored and equal to the
/// manifest — the same record, field for field, that `exporter verify --level restore` then
/// writes for the run — and leaves no scratch database behind.
#[test]
fn dump_verify_restore_proves_postgres_mariadb_and_redis() {
    let pg = small_db("pvall", 300);
    let my = MyDb::create("pvall");
    my.query(
        "CREATE TABLE u (k INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO u VALUES (1, 'a'), (2, 'b'), (3, NULL);",
    );
    let cache = RedisServer::start();
    cache.seed(REDIS_SEED);
    let redis_scratch = RedisServer::start();
    let work = tempdir();
    let cache_arg = format!("cache{}={}", cache.port, cache.url());
    let args = [
        &pg.url(),
        &my.url(),
        cache_arg.as_str(),
        "--to",
        "out",
        "--verify",
        "restore",
        "--scratch",
        &pg_scratch(),
        "--scratch",
        &my_scratch(),
        "--scratch",
        &redis_scratch.url(),
    ];
    let out = dump(work.path(), &args);
    out.expect_code(0);
    let run_dir = work.path().join(out.last_stdout_line());
    let id = run_id(&run_dir);
    let files = [
        format!("{}.sql.zst", pg.name),
        format!("{}.sql.zst", my.name),
        format!("cache{}.resp.zst", cache.port),
    ];
    for file in &files {
        assert!(
            out.stderr.contains(&format!("{file}: verified: restored")),
            "no verified line for {file}:\n{}",
            out.stderr
        );
    }
    assert!(
        out.stderr.contains(&format!(
            "run {id} complete: 3 archive(s), verified at level restore (verify.json)"
        )),
        "{}",
        out.stderr
    );

    let record = read_json(&run_dir.join("verify.json"));
    assert_eq!(record["run_id"], id.as_str());
    assert_eq!(record["level"], "restore");
    assert_eq!(record["ok"], true, "{record:#}");
    assert_eq!(record["problems"], Value::Array(vec![]));
    assert_eq!(
        record["manifest_sha256"],
        sha256_file(&run_dir.join("manifest.json")).as_str(),
        "the record names the manifest as stored"
    );
    let dbs = record["databases"].as_array().expect("databases");
    let listed: Vec<&str> = dbs.iter().map(|d| d["file"].as_str().unwrap()).collect();
    assert_eq!(listed, files.iter().map(String::as_str).collect::<Vec<_>>());
    let expected_rows = [300, 3, REDIS_SEED_KEYS.0 + REDIS_SEED_KEYS.1];
    for (d, rows) in dbs.iter().zip(expected_rows) {
        assert_eq!(d["ok"], true, "{d:#}");
        assert_eq!(d["restore"]["dropped"], true, "{d:#}");
        assert_eq!(d["restore"]["rows_compared"], rows, "{d:#}");
        assert_eq!(d["restore"]["rows_restored"], rows, "{d:#}");
    }
    assert_eq!(
        pg_scratch_left(&run_dir),
        "",
        "PostgreSQL scratch left behind"
    );
    assert_eq!(
        my_scratch_left(&run_dir),
        "0",
        "MariaDB scratch left behind"
    );
    assert_eq!(
        redis_scratch.dbsize(0),
        0,
        "the Redis scratch was not flushed"
    );

    // `exporter verify --level restore` of the same run writes the same record.
    let again = run(exporter(work.path()).args([
        "verify",
        s(&run_dir),
        "--level",
        "restore",
        "--scratch",
        &pg_scratch(),
        "--scratch",
        &my_scratch(),
        "--scratch",
        &redis_scratch.url(),
    ]));
    again.expect_code(0);
    assert_eq!(
        timeless(read_json(&run_dir.join("verify.json"))),
        timeless(record),
        "dump --verify restore and verify --level restore record the same"
    );
}

/// Holds `ACCESS EXCLUSIVE` on a table in an open transaction until dropped.
struct Locker(Child);

impl Locker {
    fn lock(db: &TestDb, table: &str) -> Self {
        let mut child = Command::new("psql")
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
            "SET application_name = 'exp_cli_prove_locker'; BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;"
        )
        .unwrap();
        child.stdin.as_mut().unwrap().flush().unwrap();
        let start = Instant::now();
        while psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE a.application_name = 'exp_cli_prove_locker' AND a.datname = '{}'
                   AND l.mode = 'AccessExclusiveLock' AND l.granted",
                db.name
            ),
        )
        .trim()
            == "0"
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the locker never got its lock"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child)
    }
}

impl Drop for Locker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The verification overlaps the dumps: the first database's archive is restored and proven
/// while the second database's dump is held up (by a lock the test holds, released only after
/// it read the first archive's "verified" line); the record lists both at the end.
#[test]
fn dump_verify_proves_each_archive_while_the_next_is_dumped() {
    let first = small_db("pvfirst", 50);
    let second = small_db("pvsecond", 20);
    let locker = Locker::lock(&second, "t");
    let work = tempdir();
    let dest = work.path().join("out");
    let mut child = spawn_exporter(
        work.path(),
        &[
            "dump",
            "--no-check",
            &first.url(),
            &second.url(),
            "--to",
            s(&dest),
            "--jobs",
            "2",
            "--verify",
            "restore",
            "--scratch",
            &pg_scratch(),
        ],
    );
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let verified_first = format!("{}.sql.zst: verified: restored", first.name);
    let start = Instant::now();
    while !lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains(&verified_first))
    {
        let exited = child.try_wait().expect("try_wait").is_some();
        assert!(
            !exited && start.elapsed() < Duration::from_secs(120),
            "the first archive was not verified while the second dump waited (exited: {exited}):\n{}",
            lines.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let waiting = psql(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock' \
             AND application_name <> 'exp_cli_prove_locker'",
            second.name
        ),
    );
    assert_ne!(
        waiting.trim(),
        "0",
        "the second dump should still be waiting"
    );
    drop(locker);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!(
                "the dump did not finish after the lock was released:\n{}",
                lines.lock().unwrap().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().unwrap();
    let stderr = lines.lock().unwrap().join("\n");
    assert!(status.success(), "{status}:\n{stderr}");
    let dumped_second = format!("  {}: ok {}.sql.zst", second.name, second.name);
    let at = |needle: &str| {
        stderr
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{stderr}"))
    };
    assert!(
        at(&verified_first) < at(&dumped_second),
        "the first archive is proven before the second is dumped:\n{stderr}"
    );
    let runs = run_dirs(&dest);
    assert_eq!(runs.len(), 1);
    let record = read_json(&runs[0].join("verify.json"));
    assert_eq!(record["ok"], true, "{record:#}");
    let rows: Vec<u64> = record["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["restore"]["rows_compared"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [50, 20]);
}

/// A scratch server that cannot serve stops the command before anything is dumped, with the
/// exit code `verify` gives for the same server: 3 for one that cannot be reached, 2 for a
/// Redis one that is not empty.
#[test]
fn dump_verify_with_a_bad_scratch_server_fails_before_any_dump() {
    let db = small_db("pvbad", 5);
    let cache = RedisServer::start();
    cache.seed("SET k v\n");
    let busy_scratch = RedisServer::start();
    busy_scratch.seed("SET someone else\n");
    let work = tempdir();
    // A run to verify with the same servers, for the exit codes `verify` gives.
    let cache_arg = format!("cache{}={}", cache.port, cache.url());
    let good = dump_ok(
        work.path(),
        &["dump", &db.url(), cache_arg.as_str(), "--to", "good"],
    );
    let unreachable = format!("postgres://postgres@{PG_HOST}:{}/postgres", free_port());
    let redis_ok = RedisServer::start();
    for (scratch, code, what) in [
        (
            [unreachable.clone(), redis_ok.url()],
            3,
            "cannot be reached",
        ),
        ([pg_scratch(), busy_scratch.url()], 2, "not empty"),
    ] {
        let dest = work.path().join("out");
        let out = dump(
            work.path(),
            &[
                &db.url(),
                cache_arg.as_str(),
                "--to",
                s(&dest),
                "--verify",
                "restore",
                "--scratch",
                &scratch[0],
                "--scratch",
                &scratch[1],
            ],
        );
        out.expect_code(code)
            .expect_error_line()
            .stderr_contains("--scratch server")
            .stderr_contains("cannot be used")
            .stderr_contains("hint: nothing was restored");
        assert!(
            !out.stderr.contains("dumping"),
            "{what}: a dump started:\n{}",
            out.stderr
        );
        assert!(
            run_dirs(&dest).is_empty(),
            "{what}: a run was created in {}",
            dest.display()
        );
        let verify = run(exporter(work.path()).args([
            "verify",
            s(&good),
            "--level",
            "restore",
            "--scratch",
            &scratch[0],
            "--scratch",
            &scratch[1],
        ]));
        verify.expect_code(code);
    }
    assert_eq!(
        busy_scratch.dbsize(0),
        1,
        "the busy scratch was not touched"
    );
}

/// Usage errors, each before anything is dumped: `--verify restore` without `--scratch`,
/// `--scratch` without `--verify restore`, RDB archives, a MySQL server's every schema, and
/// (found from the plan's databases) an engine without its scratch server.
#[test]
fn dump_verify_usage_errors() {
    let db = small_db("pvusage", 5);
    let cache = RedisServer::start();
    let work = tempdir();
    let dest = work.path().join("out");
    let whole_server = format!("mysql://root@{MY_HOST}:{MY_PORT}");
    for (args, message) in [
        (
            vec![db.url(), "--verify".into(), "restore".into()],
            "--verify restore needs a --scratch server",
        ),
        (
            vec![db.url(), "--scratch".into(), pg_scratch()],
            "--scratch is only used with --verify restore",
        ),
        (
            vec![
                db.url(),
                "--verify".into(),
                "decompress".into(),
                "--scratch".into(),
                pg_scratch(),
            ],
            "--scratch is only used with --verify restore (the level is decompress)",
        ),
        (
            vec![
                cache.url(),
                "--redis-format".into(),
                "rdb".into(),
                "--verify".into(),
                "restore".into(),
                "--scratch".into(),
                pg_scratch(),
            ],
            "--verify restore cannot check RDB archives",
        ),
        (
            vec![
                whole_server,
                "--verify".into(),
                "restore".into(),
                "--scratch".into(),
                my_scratch(),
            ],
            "an archive of every schema of a MySQL server",
        ),
        (
            vec![
                db.url(),
                cache.url(),
                "--verify".into(),
                "restore".into(),
                "--scratch".into(),
                pg_scratch(),
            ],
            "level restore needs a --scratch server for redis",
        ),
    ] {
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["--to", s(&dest)]);
        let out = dump(work.path(), &args);
        out.expect_code(2)
            .expect_error_line()
            .stderr_contains(message);
        assert!(!out.stderr.contains("dumping"), "{}", out.stderr);
        assert!(run_dirs(&dest).is_empty(), "{message}: a run was created");
    }
}

/// A function that a `CHECK` constraint calls: false in a scratch database of this tool, so
/// the scratch restore fails while the source and the dump are fine.
const FAILS_IN_SCRATCH: &str = "CREATE FUNCTION public.not_in_scratch(i integer) RETURNS boolean \
     LANGUAGE sql AS $$ SELECT current_database() NOT LIKE 'exporter\\_verify\\_%' $$;\n\
     CREATE TABLE checked (id integer CHECK (public.not_in_scratch(id)));\n\
     INSERT INTO checked VALUES (1), (2);\n";

/// A verification that fails exits as `verify` would (1, its error and hint), while the run
/// is committed (manifest written) and its `verify.json` records the failure; the other
/// database's proof is in the same record.
#[test]
fn dump_verify_failure_exits_as_verify_with_the_run_committed() {
    let good = small_db("pvgood", 10);
    let bad = TestDb::with_sql("pvfail", FAILS_IN_SCRATCH);
    let work = tempdir();
    let dest = work.path().join("out");
    let out = dump(
        work.path(),
        &[
            &good.url(),
            &bad.url(),
            "--to",
            s(&dest),
            "--verify",
            "restore",
            "--scratch",
            &pg_scratch(),
        ],
    );
    out.expect_code(1)
        .expect_error_line()
        .stderr_contains("failed verification: 1 of 2 archive(s) bad")
        .stderr_contains("hint: do not delete the source databases");
    assert!(
        out.stderr.contains(&format!(
            "{}.sql.zst: verification FAILED: restore:",
            bad.name
        )),
        "{}",
        out.stderr
    );
    let runs = run_dirs(&dest);
    assert_eq!(runs.len(), 1, "the run is committed");
    let run_dir = &runs[0];
    assert_eq!(Path::new(out.last_stdout_line()), run_dir.as_path());
    let manifest = read_json(&run_dir.join("manifest.json"));
    assert_eq!(manifest["status"], "complete");
    let record = read_json(&run_dir.join("verify.json"));
    assert_eq!(record["ok"], false);
    assert_eq!(record["databases"][0]["ok"], true, "{record:#}");
    assert_eq!(record["databases"][1]["ok"], false, "{record:#}");
    assert_eq!(
        record["databases"][1]["restore"]["dropped"], true,
        "{record:#}"
    );
    let problem = record["databases"][1]["problems"][0].as_str().unwrap();
    assert!(problem.contains("checked"), "{problem}");
    assert_eq!(pg_scratch_left(run_dir), "");
    let verify = run(exporter(work.path()).args([
        "verify",
        s(run_dir),
        "--level",
        "restore",
        "--scratch",
        &pg_scratch(),
    ]));
    verify
        .expect_code(1)
        .stderr_contains("failed verification: 1 of 2 archive(s) bad");
}

/// Ctrl-C while the last archive's scratch restore runs (held in a `CHECK` function that sleeps
/// in scratch databases): exit 3, the scratch database is dropped on the way out, no
/// `verify.json` is written, and the run — committed before its last proof — stays.
#[test]
fn dump_verify_interrupted_drops_the_scratch_database() {
    let db = TestDb::with_sql(
        "pvint",
        "CREATE FUNCTION public.slow_in_scratch(i integer) RETURNS boolean LANGUAGE sql AS \
         $$ SELECT CASE WHEN current_database() LIKE 'exporter\\_verify\\_%' \
         THEN pg_sleep(120) IS NOT NULL ELSE true END $$;\n\
         CREATE TABLE slow (id integer CHECK (public.slow_in_scratch(id)));\n\
         INSERT INTO slow VALUES (1);\n",
    );
    let work = tempdir();
    let dest = work.path().join("out");
    let child = spawn_exporter(
        work.path(),
        &[
            "dump",
            &db.url(),
            "--to",
            s(&dest),
            "--verify",
            "restore",
            "--scratch",
            &pg_scratch(),
        ],
    );
    let sleeping = || {
        psql(
            "postgres",
            &format!(
                "SELECT string_agg(datname, ',') FROM pg_stat_activity WHERE wait_event = 'PgSleep' \
                 AND datname LIKE 'exporter\\_verify\\_%\\_{}'",
                db.name
            ),
        )
        .trim()
        .to_owned()
    };
    let (scratch, out) = interrupt_when(
        child,
        || {
            let found = sleeping();
            (!found.is_empty()).then_some(found)
        },
        "exporter dump --verify",
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("interrupted by SIGINT"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("dropped scratch database {scratch}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: scratch databases are dropped"),
        "{}",
        out.stderr
    );
    assert_eq!(
        psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{scratch}'")
        )
        .trim(),
        "0",
        "the interrupted verification left its scratch database behind"
    );
    let runs = run_dirs(&dest);
    assert_eq!(runs.len(), 1, "the committed run stays");
    assert!(runs[0].join("manifest.json").is_file());
    assert!(
        !runs[0].join("verify.json").exists(),
        "an interrupted verification records nothing"
    );
}

/// `--verify decompress` needs no scratch server; `--json` carries the record, which is the
/// run's `verify.json`.
#[test]
fn dump_verify_decompress_with_json() {
    let db = small_db("pvjson", 40);
    let work = tempdir();
    let out = dump(
        work.path(),
        &[&db.url(), "--to", "out", "--verify", "decompress", "--json"],
    );
    out.expect_code(0);
    let summary: Value = serde_json::from_str(&out.stdout).expect("one JSON value");
    let run_dir = work.path().join(summary["run_dir"].as_str().unwrap());
    let record = read_json(&run_dir.join("verify.json"));
    assert_eq!(summary["verification"], record);
    assert_eq!(record["level"], "decompress");
    assert_eq!(record["ok"], true);
    assert!(
        record["databases"][0].get("restore").is_none(),
        "{record:#}"
    );
    assert!(
        out.stderr.contains(&format!(
            "{}.sql.zst: verified at level decompress",
            db.name
        )),
        "{}",
        out.stderr
    );
    // Without --verify the summary has no verification.
    let plain = dump(work.path(), &[&db.url(), "--to", "out2", "--json"]);
    plain.expect_code(0);
    let summary: Value = serde_json::from_str(&plain.stdout).unwrap();
    assert!(summary.get("verification").is_none(), "{summary:#}");
}

/// `dump --all` of a platform environment with `--verify restore`: the databases come through
/// SSH tunnels, the scratch servers are plain URLs; the record lists both restored and equal.
/// (Handles made unique, so that scratch names cannot meet another test's.)
#[test]
fn dump_verify_restore_of_a_platform_environment() {
    let mut seed = seed_with(&[100, 120], &[100, 120]);
    let tag = std::process::id();
    for d in seed["databases"].as_array_mut().unwrap() {
        let handle = format!("pv-{}-{tag}", d["handle"].as_str().unwrap());
        d["handle"] = handle.into();
    }
    let fake = Fake::start(&seed, true);
    let token = fake.token_expiring(3600);
    let cwd = tempdir();
    let redis_scratch = RedisServer::start();
    let out = run(fake.exporter(cwd.path(), Some(&token)).args([
        "dump",
        "--all",
        "--environment",
        "prod",
        "--to",
        "out",
        "--verify",
        "restore",
        "--scratch",
        &pg_scratch(),
        "--scratch",
        &redis_scratch.url(),
    ]));
    out.expect_code(0);
    let run_dir = cwd.path().join(out.last_stdout_line());
    let record = read_json(&run_dir.join("verify.json"));
    assert_eq!(record["ok"], true, "{record:#}");
    let mut names: Vec<&str> = record["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [format!("pv-cache-{tag}"), format!("pv-main-db-{tag}")]
    );
    for d in record["databases"].as_array().unwrap() {
        assert_eq!(d["restore"]["dropped"], true, "{d:#}");
        assert_eq!(d["restore"]["rows_compared"], 3, "{d:#}");
    }
    assert_eq!(pg_scratch_left(&run_dir), "");
    assert_eq!(redis_scratch.dbsize(0), 0);
    fake.assert_clean_log(0);
    fake.assert_no_secret("dump --verify output", &out.all_output());
    fake.assert_no_secret_in_files(&run_dir);
}
