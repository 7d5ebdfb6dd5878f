//! S3 storage through the binary, against a real S3-compatible server process (moto, installed
//! and started by `.ci/run`; see README.md "Testing" to start it by hand). The server is found
//! at `EXPORTER_TEST_S3_ENDPOINT` (default `http://127.0.0.1:5900`) and the stock client
//! (boto3, in the same virtual environment) at `EXPORTER_TEST_S3_PYTHON` (default
//! `target/s3-venv/bin/python`). A missing server fails the tests; it never skips them.
//!
//! Each test makes its own bucket. Fault tests route the exporter through a small TCP proxy
//! that watches the requests (multipart starts, parts, aborts) and can slow the upload down or
//! reset every connection after a number of bytes.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::s3::*;
use crate::support::{
    MyDb, REDIS_SEED, RedisServer, TestDb, copy_out, db_entry, free_port, psql, read_json,
    repo_root, restore_mysql_with_stock_tools, restore_with_stock_tools, run, sha256sum_check,
    small_db, tempdir, wait_child, write_config,
};

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// PostgreSQL, MariaDB and Redis dumped into one run on S3, verified from S3, then downloaded
/// with a stock client (boto3), checked with `sha256sum -c SHA256SUMS` and restored with `psql`,
/// `mariadb` and `redis-cli --pipe`. A newer prefix without a manifest is not taken for a run.
#[test]
fn s3_run_of_three_engines_verifies_downloads_and_restores() {
    let bucket = Bucket::create("three");
    let pg = multipart_db("s3pg", 400_000);
    let my = MyDb::from_fixture("s3my", "fidelity/M02.sql");
    let redis = RedisServer::start();
    redis.seed(REDIS_SEED);
    let work = tempdir();
    let config = write_config(
        work.path(),
        Some(&bucket.url("team/runs")),
        &[
            ("pg", &pg.url()),
            ("my", &my.url()),
            ("cache", &redis.url()),
        ],
    );
    let out = run(s3_exporter(work.path(), &endpoint(), KEY_ID, SECRET).args([
        "--config",
        config.to_str().unwrap(),
        "dump",
        "--all",
    ]));
    out.expect_code(0);
    assert_no_secrets(&out);
    let printed = out.last_stdout_line().to_owned();
    let run_id = printed
        .strip_prefix(&format!("{}/", bucket.url("team/runs")))
        .unwrap_or_else(|| panic!("dump printed {printed:?}, not a run under the prefix"))
        .to_owned();
    let prefix = format!("team/runs/{run_id}/");
    let mut keys = bucket.keys(&prefix);
    keys.sort();
    assert_eq!(
        keys,
        [
            "SHA256SUMS",
            "cache.resp.zst",
            "manifest.json",
            "my.sql.zst",
            "pg.sql.zst"
        ]
        .map(|k| format!("{prefix}{k}"))
    );
    assert!(bucket.uploads("").is_empty(), "no upload left open");

    // A prefix that sorts later but has no manifest is not a run.
    bucket.put(
        "team/runs/29991231T235959Z/x.sql.zst",
        b"partial",
        work.path(),
    );
    let out = run(s3_exporter(work.path(), &endpoint(), KEY_ID, SECRET).args([
        "--config",
        config.to_str().unwrap(),
        "verify",
    ]));
    out.expect_code(0);
    assert_no_secrets(&out);
    for f in ["pg.sql.zst", "my.sql.zst", "cache.resp.zst"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("ok {f} "))),
            "verify did not report {f} ok:\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout
            .contains(&format!("run {run_id}: all 3 archive(s) verified"))
    );

    // The stock path: download, sha256sum -c, restore.
    let dir = bucket.download(&prefix, work.path());
    let (ok, text) = sha256sum_check(&dir);
    assert!(ok, "sha256sum -c failed:\n{text}");
    let m = read_json(&dir.join("manifest.json"));
    let e = db_entry(&m, "pg");
    assert!(
        e["compressed_bytes"].as_u64().unwrap() > 8 << 20,
        "the PostgreSQL archive should span several parts: {e:#}"
    );
    assert!(
        !std::fs::read_to_string(dir.join("manifest.json"))
            .unwrap()
            .contains(SECRET)
    );
    let verify_record = read_json(&dir.join("verify.json"));
    assert_eq!(verify_record["ok"], true);

    let pg_target = TestDb::create("s3pgr");
    restore_with_stock_tools(&dir.join("pg.sql.zst"), &pg_target);
    assert_eq!(
        copy_out(&pg_target.name, "(SELECT * FROM t ORDER BY id)"),
        copy_out(&pg.name, "(SELECT * FROM t ORDER BY id)")
    );
    let my_target = MyDb::create("s3myr");
    restore_mysql_with_stock_tools(&dir.join("my.sql.zst"), &my_target, &[]);
    let q = "SELECT * FROM legacy_dates ORDER BY id";
    assert_eq!(my_target.query(q), my.query(q));
    let redis_target = RedisServer::start();
    redis_target.restore_pipe(&dir.join("cache.resp.zst"));
    assert_eq!(redis_target.snapshot(), redis.snapshot());
}

/// verify from S3 reports a tampered object, a truncated one, a missing one and an object
/// without a manifest entry, each by name, and exits 1.
#[test]
fn s3_verify_reports_tampered_truncated_missing_and_extra_objects() {
    let bucket = Bucket::create("tamper");
    let dbs = [
        small_db("s3ta", 3000),
        small_db("s3tb", 3000),
        small_db("s3tc", 3000),
    ];
    let work = tempdir();
    let config = write_config(
        work.path(),
        Some(&bucket.url("runs")),
        &[
            ("a", &dbs[0].url()),
            ("b", &dbs[1].url()),
            ("c", &dbs[2].url()),
        ],
    );
    let cfg = config.to_str().unwrap();
    let out = run(s3_exporter(work.path(), &endpoint(), KEY_ID, SECRET)
        .args(["--config", cfg, "dump", "--all"]));
    out.expect_code(0);
    let run_id = out
        .last_stdout_line()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let key = |f: &str| format!("runs/{run_id}/{f}");

    let dir = bucket.download(&format!("runs/{run_id}/"), work.path());
    let mut a = std::fs::read(dir.join("a.sql.zst")).unwrap();
    let mid = a.len() / 2;
    a[mid] ^= 0x20;
    bucket.put(&key("a.sql.zst"), &a, work.path());
    let b = std::fs::read(dir.join("b.sql.zst")).unwrap();
    bucket.put(&key("b.sql.zst"), &b[..b.len() - 10], work.path());
    bucket.client(&["delete", &bucket.name, &key("c.sql.zst")]);
    bucket.put(&key("stray.bin"), b"not from exporter", work.path());

    let out = run(s3_exporter(work.path(), &endpoint(), KEY_ID, SECRET)
        .args(["--config", cfg, "verify", &run_id]));
    out.expect_code(1);
    let line = |prefix: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?}:\n{}", out.stdout))
            .to_owned()
    };
    assert!(line("FAILED a.sql.zst:").contains("sha256"));
    let b_line = line("FAILED b.sql.zst:");
    assert!(
        b_line.contains(&format!(
            "length {} bytes, manifest says {}",
            b.len() - 10,
            b.len()
        )),
        "{b_line}"
    );
    assert!(line("FAILED c.sql.zst:").contains("missing"));
    assert!(line("FAILED stray.bin:").contains("extra file"));
    assert_no_secrets(&out);
}

/// The source fails while the multipart upload is under way (its backend is terminated):
/// exit 3, the upload is aborted, nothing under the run's prefix, no manifest.
#[test]
fn s3_source_failing_midway_aborts_the_upload() {
    let bucket = Bucket::create("srcfail");
    // About 36 MiB compressed, while one part in flight and one being filled hold 16 MiB:
    // backpressure keeps the source reading while the upload crawls at 1 MiB/s.
    let db = multipart_db("s3src", 1_000_000);
    let proxy = Proxy::start(port_of(&endpoint()), None, Some(1 << 20));
    let work = tempdir();
    let config = work.path().join("exporter.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nto = \"{}\"\nupload_concurrency = 1\n",
            bucket.url("runs")
        ),
    )
    .unwrap();
    // `--no-check`: the check's test upload would be counted by the proxy too.
    let child = spawn_s3_exporter(
        work.path(),
        &proxy.endpoint(),
        &["dump", "--no-check", &db.url()],
    );
    let start = Instant::now();
    while proxy.seen().1 == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no part upload started: {:?}",
            proxy.seen().0
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = psql(
        "postgres",
        &format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'exporter'",
            db.name
        ),
    );
    assert_ne!(killed.trim(), "0", "no exporter backend to terminate");
    let out = wait_child(
        child,
        Duration::from_secs(120),
        "exporter dump (source killed)",
    );
    out.expect_code(3);
    out.expect_error_line();
    assert_no_secrets(&out);
    let (creates, _parts, aborts) = proxy.seen();
    assert_eq!(creates, 1, "one multipart upload was started");
    assert!(
        aborts >= 1,
        "the multipart upload was not aborted:\n{}",
        out.stderr
    );
    assert!(bucket.uploads("").is_empty(), "an upload is still open");
    assert_eq!(bucket.keys(""), Vec::<String>::new(), "objects were left");
}

/// Every connection is reset after 1 MiB, so each 8 MiB part fails on every attempt: exit 3,
/// the upload is aborted, nothing under the final key, no manifest.
#[test]
fn s3_part_the_server_rejects_aborts_the_upload() {
    let bucket = Bucket::create("reset");
    let db = multipart_db("s3reset", 400_000);
    let proxy = Proxy::start(port_of(&endpoint()), Some(1 << 20), None);
    let work = tempdir();
    // `--no-check`: the check's test upload would be counted by the proxy too.
    let out = run(
        s3_exporter(work.path(), &proxy.endpoint(), KEY_ID, SECRET).args([
            "dump",
            "--no-check",
            &db.url(),
            "--to",
            &bucket.url("runs"),
        ]),
    );
    out.expect_code(3);
    out.expect_error_line();
    assert_no_secrets(&out);
    out.stderr_contains("part 1 of s3://");
    let (creates, parts, aborts) = proxy.seen();
    assert_eq!(creates, 1, "one multipart upload was started");
    assert!(
        parts >= 2,
        "the part was not retried (seen {parts} attempts)"
    );
    assert!(aborts >= 1, "the multipart upload was not aborted");
    assert!(bucket.uploads("").is_empty(), "an upload is still open");
    assert_eq!(bucket.keys(""), Vec::<String>::new(), "objects were left");
}

/// Ctrl-C (SIGINT) during a multipart upload: non-zero exit, the upload is aborted, nothing
/// is left under the prefix.
#[test]
fn s3_interrupt_aborts_the_upload() {
    let bucket = Bucket::create("sigint");
    let db = multipart_db("s3int", 400_000);
    let proxy = Proxy::start(port_of(&endpoint()), None, Some(1 << 20));
    let work = tempdir();
    // `--no-check`: the check's test upload (and its abort) would be counted too.
    let child = spawn_s3_exporter(
        work.path(),
        &proxy.endpoint(),
        &["dump", "--no-check", &db.url(), "--to", &bucket.url("runs")],
    );
    let start = Instant::now();
    while proxy.seen().1 == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no part upload started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = wait_child(child, Duration::from_secs(120), "exporter dump (SIGINT)");
    out.expect_code(3);
    out.stderr_contains("interrupted by SIGINT");
    assert!(proxy.seen().2 >= 1, "no abort was sent:\n{}", out.stderr);
    assert!(bucket.uploads("").is_empty(), "an upload is still open");
    assert_eq!(bucket.keys(""), Vec::<String>::new(), "objects were left");
}

/// A bucket that does not exist: exit 3 naming it, and the bucket is not created.
#[test]
fn s3_missing_bucket_exits_3_naming_it() {
    require_s3();
    let db = small_db("s3nob", 10);
    let work = tempdir();
    let missing = format!("exp-missing-{}", std::process::id());
    let out = run(s3_exporter(work.path(), &endpoint(), KEY_ID, SECRET).args([
        "dump",
        &db.url(),
        "--to",
        &format!("s3://{missing}/runs"),
    ]));
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains(&format!("bucket {missing} does not exist"));
    assert_no_secrets(&out);
    let probe = Bucket {
        name: missing.clone(),
        endpoint: endpoint(),
    };
    let listing = Command::new(python())
        .arg(repo_root().join("tests/cli/s3_client.py"))
        .args(["keys", &missing, ""])
        .env("AWS_ENDPOINT_URL", &probe.endpoint)
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listing.stderr).contains("NoSuchBucket"),
        "the missing bucket was created or is listable"
    );
}

/// Kills a child process when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private moto server with signature checks on: wrong credentials exit 3 without showing
/// them, leave no object and no upload; the right ones (a real IAM key) dump and verify.
#[test]
fn s3_wrong_credentials_exit_3_and_right_ones_work() {
    require_s3();
    let port = free_port();
    let moto = python().with_file_name("moto_server");
    let mut server = Command::new(&moto)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", moto.display()));
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "private moto did not start"
        );
        if let Some(status) = server.try_wait().unwrap() {
            panic!("private moto exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _server = Kill(server);
    let ep = format!("http://127.0.0.1:{port}");
    let bucket = Bucket::create_on("auth", &ep, "setup", "setup");
    let creds = bucket.client_as("setup", "setup", &["iam-user"]);
    let (good_key, good_secret) = creds.trim().split_once(' ').expect("KEY SECRET");
    bucket.client_as("setup", "setup", &["enable-auth"]);

    let db = small_db("s3auth", 100);
    let work = tempdir();
    let out = run(s3_exporter(work.path(), &ep, KEY_ID, SECRET).args([
        "dump",
        &db.url(),
        "--to",
        &bucket.url("runs"),
    ]));
    out.expect_code(3).expect_error_line();
    assert_no_secrets(&out);
    assert!(
        out.stderr.contains("403") || out.stderr.contains("InvalidAccessKeyId"),
        "the error does not say access was denied:\n{}",
        out.stderr
    );
    let list = |what: &str| -> Vec<String> {
        bucket
            .client_as(good_key, good_secret, &[what, &bucket.name, ""])
            .lines()
            .map(str::to_owned)
            .collect()
    };
    assert!(list("keys").is_empty(), "objects were left");
    assert!(list("uploads").is_empty(), "an upload was left open");

    let out = run(s3_exporter(work.path(), &ep, good_key, good_secret).args([
        "dump",
        &db.url(),
        "--to",
        &bucket.url("runs"),
    ]));
    out.expect_code(0);
    out.never_shows(good_secret);
    let out = run(s3_exporter(work.path(), &ep, good_key, good_secret).args([
        "verify",
        "--to",
        &bucket.url("runs"),
    ]));
    out.expect_code(0);
}

/// `exporter uploads` lists a stray multipart upload under the prefix (and not one outside
/// it); `--abort` aborts it and leaves completed objects alone.
#[test]
fn s3_uploads_command_lists_and_aborts_stray_uploads() {
    let bucket = Bucket::create("stray");
    let work = tempdir();
    bucket.put(
        "runs/20260101T000000Z/kept.sql.zst",
        b"complete",
        work.path(),
    );
    let id = bucket
        .client(&[
            "start-upload",
            &bucket.name,
            "runs/20260101T000000Z/x.sql.zst",
        ])
        .trim()
        .to_owned();
    let other = bucket
        .client(&["start-upload", &bucket.name, "elsewhere/y.sql.zst"])
        .trim()
        .to_owned();
    let to = bucket.url("runs");
    let out =
        run(s3_exporter(work.path(), &endpoint(), KEY_ID, SECRET).args(["uploads", "--to", &to]));
    out.expect_code(0);
    assert_eq!(
        out.stdout
            .lines()
            .map(|l| l.split('\t').take(2).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>(),
        [format!("runs/20260101T000000Z/x.sql.zst {id}")]
    );
    // Uploads younger than --older-than are kept (a dump may still be writing them). The
    // test server reports a fixed start time years ago, so an age beyond that keeps it.
    let out = run(s3_exporter(work.path(), &endpoint(), KEY_ID, SECRET).args([
        "uploads",
        "--to",
        &to,
        "--abort",
        "--older-than",
        "100000d",
    ]));
    out.expect_code(0);
    out.stderr_contains("kept runs/20260101T000000Z/x.sql.zst");
    assert_eq!(
        bucket.uploads("runs/"),
        [format!("runs/20260101T000000Z/x.sql.zst {id}")]
    );
    let out = run(s3_exporter(work.path(), &endpoint(), KEY_ID, SECRET).args([
        "uploads",
        "--to",
        &to,
        "--abort",
        "--older-than",
        "0",
    ]));
    out.expect_code(0);
    assert_eq!(bucket.uploads("runs/"), Vec::<String>::new());
    assert_eq!(bucket.uploads(""), [format!("elsewhere/y.sql.zst {other}")]);
    assert_eq!(bucket.keys("runs/"), ["runs/20260101T000000Z/kept.sql.zst"]);
}
