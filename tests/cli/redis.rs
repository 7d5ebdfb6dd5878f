//! Redis through the binary, each test on its own redis-server: the point-in-time RDB format
//! (`--redis-format rdb`) loads into a stock server; a wrong password exits 3 and is never
//! shown; a `/db` URL dumps that logical database only; and a run mixing a good Redis with an
//! unreachable MySQL is `partial`.

use crate::support::{
    REDIS_SEED, REDIS_SEED_KEYS, RedisServer, all_files, assert_failed_line, assert_lines_equal,
    assert_nothing_final, assert_ok_line, db_entry, dump_ok, exporter, file_names, manifest,
    read_sha256sums, run, run_dirs, s, sha256_file, sha256sum_check, tempdir, write_config,
    zstd_decompress,
};

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

/// `--redis-format rdb`: `<name>.rdb.zst`, point in time, verified; the decompressed file is
/// an RDB that a stock redis-server started with `--dir D --dbfilename dump.rdb` loads, giving
/// exactly the source's keys, values and expiries.
#[test]
fn rdb_format_loads_into_a_stock_server() {
    let source = RedisServer::start();
    source.seed(REDIS_SEED);
    let before = source.snapshot();
    let work = tempdir();
    let config = write_config(work.path(), Some("out"), &[("cache", &source.url())]);
    let run_dir = dump_ok(
        work.path(),
        &[
            "--config",
            s(&config),
            "dump",
            "--all",
            "--redis-format",
            "rdb",
        ],
    );
    assert_eq!(
        file_names(&run_dir),
        ["SHA256SUMS", "cache.rdb.zst", "manifest.json"]
    );
    let (ok, text) = sha256sum_check(&run_dir);
    assert!(ok, "{text}");
    let m = manifest(&run_dir);
    let e = db_entry(&m, "cache");
    assert_eq!(e["engine"], "redis");
    assert_eq!(e["status"], "ok");
    assert_eq!(e["format"], "rdb");
    assert_eq!(e["consistency"], "point_in_time", "{e:#}");
    assert_eq!(e["server_version"], source.version().as_str());
    assert_eq!(
        e["sha256"],
        sha256_file(&run_dir.join("cache.rdb.zst")).as_str()
    );

    let out = run(exporter(work.path()).args(["--config", s(&config), "verify"]));
    out.expect_code(0);
    assert_ok_line(&out, "cache.rdb.zst");

    let rdb = zstd_decompress(&run_dir.join("cache.rdb.zst"));
    assert_eq!(e["uncompressed_bytes"], rdb.len() as u64);
    assert!(
        rdb.starts_with(b"REDIS0"),
        "the payload is not an RDB file: {:?}",
        &rdb[..rdb.len().min(16)]
    );
    let version: u16 = std::str::from_utf8(&rdb[5..9])
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("REDISnnnn header");
    assert_eq!(
        e["payload_version"],
        format!("rdb {version}").as_str(),
        "payload_version of an RDB dump: the file's RDB version"
    );
    let loaded = RedisServer::on_rdb(&rdb);
    assert_eq!(
        (loaded.dbsize(0), loaded.dbsize(1)),
        REDIS_SEED_KEYS,
        "keys loaded from the RDB"
    );
    assert_lines_equal(
        "resp.py snapshot of the source and of a server started on the RDB",
        &lines(&before),
        &lines(&loaded.snapshot()),
    );
}

/// A server with `--requirepass`: a wrong password, or none, exits 3 and no password (given or
/// real) appears in stdout, stderr (also with -v) or any file; the right one dumps, and is not
/// stored either.
#[test]
fn wrong_password_exits_3_and_never_shows_it() {
    const REAL: &str = "R3dis$ecretPw";
    const WRONG: &str = "N0tTheRightOne";
    let server = RedisServer::with_password(REAL);
    server.cli(&["SET", "k", "v"]);
    let work = tempdir();
    let dest = work.path().join("dest");
    let url = format!("redis://:{WRONG}@127.0.0.1:{}", server.port);
    let redacted = format!("redis://:****@127.0.0.1:{}", server.port);
    for verbosity in [None, Some("-v"), Some("-vv")] {
        let mut cmd = exporter(work.path());
        if let Some(v) = verbosity {
            cmd.arg(v);
        }
        let out = run(cmd.args(["dump", &url, "--to", s(&dest)]));
        out.expect_code(3)
            .expect_error_line()
            .never_shows(WRONG)
            .never_shows(REAL)
            .stderr_contains(&redacted);
    }
    // No password at all: exit 3 too, saying a password is needed.
    let out = run(exporter(work.path()).args(["dump", &server.url(), "--to", s(&dest)]));
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains("NOAUTH");
    assert_nothing_final(&dest);

    let good = format!("redis://:{REAL}@127.0.0.1:{}", server.port);
    let out = run(exporter(work.path()).args(["-v", "dump", &good, "--to", s(&dest)]));
    out.expect_code(0).never_shows(REAL);
    let run_dir = run_dirs(&dest)
        .into_iter()
        .find(|d| d.join("manifest.json").is_file())
        .expect("a run with a manifest");
    let m = manifest(&run_dir);
    let e = &m["databases"][0];
    assert_eq!(e["endpoint"], redacted.as_str());
    assert_eq!(e["tables"][0]["name"], "db0");
    assert_eq!(e["tables"][0]["rows"], 1);
    for f in all_files(&dest) {
        let bytes = std::fs::read(&f).unwrap();
        let plain = if f.extension().is_some_and(|x| x == "zst") {
            zstd_decompress(&f)
        } else {
            bytes
        };
        let text = String::from_utf8_lossy(&plain);
        assert!(
            !text.contains(REAL) && !text.contains(WRONG),
            "{} contains a password",
            f.display()
        );
    }
}

/// `redis://host:port/3` dumps logical database 3 only: the manifest lists `db3` alone, and a
/// restore holds exactly the source's db3 keys (in db 3).
#[test]
fn db_path_dumps_only_that_database() {
    let source = RedisServer::start();
    source.seed(
        "SET zero 0\nSELECT 3\nSET three:a 1\nHSET three:h f v\nRPUSH three:l x y\nSET three:ttl t EX 5000\nSELECT 5\nSET five 5\n",
    );
    let work = tempdir();
    let url = format!("{}/3", source.url());
    let config = write_config(work.path(), Some("out"), &[("only3", &url)]);
    let run_dir = dump_ok(work.path(), &["--config", s(&config), "dump", "--all"]);
    assert_eq!(
        file_names(&run_dir),
        ["SHA256SUMS", "manifest.json", "only3.resp.zst"]
    );
    let m = manifest(&run_dir);
    let e = db_entry(&m, "only3");
    assert_eq!(e["endpoint"], url.as_str());
    let tables = e["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 1, "only db3 is dumped: {e:#}");
    assert_eq!(tables[0]["name"], "db3");
    assert_eq!(tables[0]["rows"], 4);
    assert_eq!(
        tables[0]["fingerprint"],
        source.fingerprints()["db3"].1.as_str(),
        "db3 fingerprint vs computed from DUMP payloads"
    );

    let target = RedisServer::start();
    target.restore_pipe(&run_dir.join("only3.resp.zst"));
    let expected: Vec<String> = source
        .snapshot()
        .lines()
        .filter(|l| l.starts_with("3 "))
        .map(str::to_owned)
        .collect();
    assert_eq!(expected.len(), 4);
    assert_lines_equal(
        "db3 of the source vs the restore of a /3 dump",
        &expected,
        &lines(&target.snapshot()),
    );
}

/// One good Redis and one unreachable MySQL in one run (`--no-check`: the check before the
/// dump would stop it first): exit 3, manifest `partial`, the Redis archive stored and
/// checked by `sha256sum -c`, and verify says no (exit 1) naming the failed database.
#[test]
fn partial_run_mixing_engines() {
    let cache = RedisServer::start();
    cache.seed(REDIS_SEED);
    let work = tempdir();
    let gone = "mysql://root@127.0.0.1:1/exp_cli_gone";
    let config = write_config(
        work.path(),
        Some("out"),
        &[("cache", &cache.url()), ("shop_my", gone)],
    );
    let out =
        run(exporter(work.path()).args(["--config", s(&config), "dump", "--all", "--no-check"]));
    out.expect_code(3).expect_error_line().stderr_contains(gone);
    let runs = run_dirs(&work.path().join("out"));
    assert_eq!(runs.len(), 1, "expected one run dir, found {runs:?}");
    let run_dir = &runs[0];
    let m = manifest(run_dir);
    assert_eq!(m["status"], "partial", "{m:#}");
    let ok = db_entry(&m, "cache");
    assert_eq!(ok["status"], "ok");
    assert_eq!(ok["engine"], "redis");
    assert_eq!(ok["file"], "cache.resp.zst");
    let failed = db_entry(&m, "shop_my");
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"].as_str().is_some_and(|e| !e.is_empty()),
        "a failed entry carries its error: {failed}"
    );
    assert!(
        failed.get("file").is_none_or(serde_json::Value::is_null),
        "a failed entry has no file: {failed}"
    );
    let names = file_names(run_dir);
    assert!(
        names
            .iter()
            .all(|n| n.starts_with('.') || !n.starts_with("shop_my")),
        "files of the failed database in {names:?}"
    );
    assert_eq!(
        read_sha256sums(run_dir).keys().cloned().collect::<Vec<_>>(),
        ["cache.resp.zst"]
    );
    let (sums_ok, text) = sha256sum_check(run_dir);
    assert!(sums_ok, "{text}");

    let out = run(exporter(work.path()).args(["verify", s(run_dir)]));
    out.expect_code(1);
    assert_ok_line(&out, "cache.resp.zst");
    assert_failed_line(&out, "shop_my");

    // The Redis archive of the partial run is complete.
    let target = RedisServer::start();
    target.restore_pipe(&run_dir.join("cache.resp.zst"));
    assert_lines_equal(
        "resp.py snapshot of the source and the restore from a partial run",
        &lines(&cache.snapshot()),
        &lines(&target.snapshot()),
    );
}

/// Issue 16: a password given to a Redis server that needs none was warned about twice (one
/// log line per connection, with a timestamp); it is one line per database, in the style of
/// every other line.
#[test]
fn an_unneeded_password_is_warned_about_once() {
    let source = RedisServer::start();
    source.seed(REDIS_SEED);
    let work = tempdir();
    let url = source
        .url()
        .replacen("redis://", "redis://:not-needed-pw@", 1);
    let out = run(exporter(work.path()).args(["dump", &format!("cache={url}"), "--to", "out"]));
    out.expect_code(0).never_shows("not-needed-pw");
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("password"))
        .collect();
    assert_eq!(
        warnings,
        ["  cache: warning: the server needs no password; the one in the URL is ignored"],
        "{}",
        out.stderr
    );
}
