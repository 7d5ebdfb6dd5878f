//! A01: a failed dump is never recorded as a good backup. Every run here exits 3, writes no
//! manifest for what failed and leaves nothing under a final name.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    Locker, PG_HOST, PG_PORT, TestDb, TestRole, all_files, assert_nothing_final, assert_ok_line,
    db_entry, dump_ok, exporter, manifest, psql, read_sha256sums, run, run_dirs, s,
    sha256sum_check, small_db, spawn_exporter, tempdir, wait_child,
};

const UNREACHABLE: &str = "postgres://postgres@127.0.0.1:1/x";
const GONE: &str = "postgres://postgres@127.0.0.1:1/exp_cli_gone";

#[test]
fn a01_unreachable_host_exits_3_and_leaves_nothing() {
    let work = tempdir();
    let dest = work.path().join("dest");
    let out = run(exporter(work.path()).args(["dump", UNREACHABLE, "--to", s(&dest)]));
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains(UNREACHABLE);
    assert_nothing_final(&dest);
    assert!(
        run_dirs(&dest)
            .iter()
            .all(|d| std::fs::read_dir(d).unwrap().next().is_some()),
        "an empty run directory must be removed when every database failed"
    );
}

#[test]
fn a01_missing_database_exits_3() {
    crate::support::require_postgres();
    let work = tempdir();
    let dest = work.path().join("dest");
    let name = format!("exp_cli_nonexistent_{}", std::process::id());
    let url = format!("postgres://postgres@{PG_HOST}:{PG_PORT}/{name}");
    let out = run(exporter(work.path()).args(["dump", &url, "--to", s(&dest)]));
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains(&name);
    assert_nothing_final(&dest);
}

#[test]
fn a01_password_never_printed_on_failure() {
    let work = tempdir();
    let dest = work.path().join("dest");
    let url = "postgres://postgres:hunter2@127.0.0.1:1/x";
    for verbosity in [None, Some("-v")] {
        let mut cmd = exporter(work.path());
        if let Some(v) = verbosity {
            cmd.arg(v);
        }
        let out = run(cmd.args(["dump", url, "--to", s(&dest)]));
        out.expect_code(3)
            .never_shows("hunter2")
            .stderr_contains("postgres://postgres:****@127.0.0.1:1/x");
        for f in all_files(&dest) {
            let bytes = std::fs::read(&f).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("hunter2"),
                "{} contains the password",
                f.display()
            );
        }
    }
}

/// One good database and one unreachable, without the check before the dump (which would
/// stop it before any work): the good one is archived, the run is `partial`, exit 3, and
/// verify says no (exit 1) naming the failed database.
#[test]
fn a01_one_of_two_fails_gives_partial_run() {
    let good = small_db("partial", 50);
    let work = tempdir();
    let dest = work.path().join("dest");
    let out = run(exporter(work.path()).args([
        "dump",
        "--no-check",
        &good.url(),
        GONE,
        "--to",
        s(&dest),
    ]));
    out.expect_code(3).expect_error_line().stderr_contains(GONE);
    let runs = run_dirs(&dest);
    assert_eq!(runs.len(), 1, "expected one run dir, found {runs:?}");
    let run_dir = &runs[0];
    let m = manifest(run_dir);
    assert_eq!(m["status"], "partial");
    let ok = db_entry(&m, &good.name);
    assert_eq!(ok["status"], "ok");
    let file = format!("{}.sql.zst", good.name);
    assert_eq!(ok["file"], file.as_str());
    assert!(run_dir.join(&file).is_file());
    let failed = db_entry(&m, "exp_cli_gone");
    assert_eq!(failed["status"], "failed");
    let err = failed["error"]
        .as_str()
        .expect("a failed entry carries its error");
    assert!(!err.is_empty());
    assert!(
        failed.get("file").is_none_or(serde_json::Value::is_null),
        "a failed entry has no file: {failed}"
    );
    // Nothing of the failed database exists under a final name.
    let names: Vec<String> = crate::support::file_names(run_dir);
    assert!(
        names
            .iter()
            .all(|n| n.starts_with('.') || !n.starts_with("exp_cli_gone.")),
        "files of the failed database in {names:?}"
    );
    let sums = read_sha256sums(run_dir);
    assert_eq!(
        sums.keys().cloned().collect::<Vec<_>>(),
        std::slice::from_ref(&file)
    );
    let (sums_ok, text) = sha256sum_check(run_dir);
    assert!(sums_ok, "{text}");

    let out = run(exporter(work.path()).args(["verify", s(run_dir)]));
    out.expect_code(1);
    // The good archive still verifies.
    assert_ok_line(&out, &file);
    assert!(
        out.all_output()
            .lines()
            .any(|l| l.starts_with("FAILED") && l.contains("exp_cli_gone")),
        "verify must name the failed database `exp_cli_gone` on a FAILED line:\n{}",
        out.stdout
    );
}

/// A01 step 4: the dump's connection is terminated while it waits for a table lock (the engine
/// takes ACCESS SHARE locks) → exit 3, no final file, no manifest. (`--no-check`: the check
/// before the dump would wait on the lock first.)
#[test]
fn a01_connection_terminated_midway_exits_3() {
    let db = small_db("terminate", 1000);
    let work = tempdir();
    let dest = work.path().join("dest");
    let locker = Locker::lock(&db, "t");
    let mut child = spawn_exporter(
        work.path(),
        &["dump", "--no-check", &db.url(), "--to", s(&dest)],
    );

    // Find the exporter's backend waiting on the lock.
    let start = Instant::now();
    let (pid, app) = loop {
        let row = psql(
            "postgres",
            &format!(
                "SELECT pid, application_name FROM pg_stat_activity
                 WHERE datname = '{}' AND wait_event_type = 'Lock'
                   AND application_name <> 'exp_cli_locker' ORDER BY backend_start LIMIT 1",
                db.name
            ),
        );
        if let Some((pid, app)) = row.trim().split_once('|') {
            break (pid.to_owned(), app.to_owned());
        }
        let exited = child.try_wait().expect("try_wait").is_some();
        if exited || start.elapsed() > Duration::from_secs(60) {
            drop(locker);
            let out = wait_child(child, Duration::from_secs(60), "exporter dump");
            panic!(
                "no backend of the exporter waited on the table lock (exited early: {exited}); \
                 the dump exited {} with stderr:\n{}",
                out.code, out.stderr
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let terminated = psql("postgres", &format!("SELECT pg_terminate_backend({pid})"));
    assert_eq!(terminated.trim(), "t", "pg_terminate_backend({pid}) failed");

    let out = wait_child(
        child,
        Duration::from_secs(120),
        "exporter dump (terminated)",
    );
    drop(locker);
    out.expect_code(3);
    out.expect_error_line();
    assert_nothing_final(&dest);
    assert_eq!(
        app, "exporter",
        "the engine's connections should identify themselves with application_name=exporter"
    );
}

#[test]
fn a01_destination_under_a_regular_file_exits_3_naming_it() {
    let db = small_db("unwritable", 5);
    let work = tempdir();
    let blocker = work.path().join("not-a-dir");
    std::fs::write(&blocker, b"I am a file").unwrap();
    let dest = blocker.join("dest");
    let out = run(exporter(work.path()).args(["dump", &db.url(), "--to", s(&dest)]));
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains(s(&blocker));
    assert_eq!(std::fs::read(&blocker).unwrap(), b"I am a file");
}

/// A tmpfs mount removed (lazily) when the test ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test needs to mount a small tmpfs (it runs as root in CI): mount failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A01 step 3: the destination fills up mid-stream → exit 3, no final file, no manifest for
/// the failed run, and the previous good run in the same destination is byte-identical.
#[test]
fn a01_destination_full_keeps_previous_run_intact() {
    let tiny = small_db("full_tiny", 10);
    // ~2 MB of hex text: compresses to roughly half, far more than the 256 KiB tmpfs.
    let big = TestDb::with_sql(
        "full_big",
        "CREATE TABLE blob (id integer PRIMARY KEY, payload text);
         INSERT INTO blob SELECT i, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text)
         FROM generate_series(1, 20000) AS i;",
    );
    let work = tempdir();
    let mnt = work.path().join("mnt");
    let _tmpfs = Tmpfs::mount(&mnt, "256k");
    let dest = mnt.join("dest");

    let good = dump_ok(work.path(), &["dump", &tiny.url(), "--to", s(&dest)]);
    let before: Vec<(PathBuf, Vec<u8>)> = all_files(&good)
        .into_iter()
        .map(|f| {
            let b = std::fs::read(&f).unwrap();
            (f, b)
        })
        .collect();

    let out = run(exporter(work.path()).args(["dump", &big.url(), "--to", s(&dest)]));
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains("No space left on device");

    let after: Vec<(PathBuf, Vec<u8>)> = all_files(&good)
        .into_iter()
        .map(|f| {
            let b = std::fs::read(&f).unwrap();
            (f, b)
        })
        .collect();
    assert_eq!(before, after, "the previous good run changed");
    for other in run_dirs(&dest).into_iter().filter(|d| *d != good) {
        assert_nothing_final(&other);
    }
    // The good run is still the default choice and still verifies (leftover temporary files
    // of the failed run are removed first: they may still fill the tmpfs).
    for other in run_dirs(&dest).into_iter().filter(|d| *d != good) {
        std::fs::remove_dir_all(other).unwrap();
    }
    run(exporter(work.path()).args(["verify", "--to", s(&dest)])).expect_code(0);
}

/// A01 step 2: the role the tool uses cannot read one table → exit 3 naming the table; never
/// a dump that silently lacks it. The check before the dump says so first; without it, the
/// dump's own start does.
#[test]
fn a01_unreadable_table_exits_3_naming_it() {
    let role = TestRole::create("noread");
    let db = TestDb::with_sql(
        "noread",
        &format!(
            "CREATE TABLE visible (id integer PRIMARY KEY);
             INSERT INTO visible VALUES (1), (2);
             CREATE TABLE hidden_payroll (id integer PRIMARY KEY, salary numeric);
             INSERT INTO hidden_payroll VALUES (1, 100);
             GRANT SELECT ON visible TO {0};
             REVOKE ALL ON hidden_payroll FROM {0};",
            role.0
        ),
    );
    let work = tempdir();
    let dest = work.path().join("dest");
    let url = role.url(&db);
    let out = run(exporter(work.path()).args(["dump", &url, "--to", s(&dest)]));
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains("the check before the dump failed")
        .stderr_contains("hidden_payroll");
    assert!(!dest.exists(), "the check created {}", dest.display());
    let out = run(exporter(work.path()).args(["dump", "--no-check", &url, "--to", s(&dest)]));
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains("hidden_payroll");
    assert_nothing_final(&dest);
}

/// An interrupted dump (SIGINT while it waits for a table lock) exits non-zero and leaves
/// nothing under a final name. (`--no-check`: the run must exist when the signal comes.)
fn interrupted_dump(signal: &str) {
    let db = small_db(&format!("sig{}", signal.to_lowercase()), 100);
    let work = tempdir();
    let dest = work.path().join("dest");
    let locker = Locker::lock(&db, "t");
    let mut child = spawn_exporter(
        work.path(),
        &["dump", "--no-check", &db.url(), "--to", s(&dest)],
    );
    let start = Instant::now();
    loop {
        let waiting = psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock'
                   AND application_name <> 'exp_cli_locker'",
                db.name
            ),
        );
        if waiting.trim() != "0" {
            break;
        }
        let exited = child.try_wait().expect("try_wait").is_some();
        assert!(
            !exited && start.elapsed() < Duration::from_secs(60),
            "the dump never waited on the lock (exited early: {exited})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let out = wait_child(
        child,
        Duration::from_secs(60),
        &format!("exporter dump (SIG{signal})"),
    );
    drop(locker);
    assert_eq!(
        out.code, 3,
        "an interrupted dump must exit 3:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("interrupted by SIG{signal}")),
        "{}",
        out.stderr
    );
    assert_nothing_final(&dest);
    // The uncommitted run is removed entirely: no directory without a manifest is left.
    let leftovers: Vec<_> = std::fs::read_dir(&dest)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "an interrupted dump left {leftovers:?} in {}",
        dest.display()
    );
}

#[test]
fn a01_interrupted_dump_leaves_nothing_final() {
    interrupted_dump("INT");
}

#[test]
fn a01_terminated_dump_leaves_nothing_final() {
    interrupted_dump("TERM");
}
