//! The binary over TLS (issue 12): private servers that accept TLS only, with certificates of a
//! throw-away CA (see `exporter-tls-testing`) — a PostgreSQL cluster (`hostssl` lines only), a
//! `mariadbd` with `require_secure_transport=ON` and `redis-server --port 0 --tls-port N`, each
//! started once for this test binary.
//!
//! - `dump`, `verify --level restore` and `restore` of each engine with the test CA and full
//!   verification (`verify-full`, `VERIFY_IDENTITY`, `rediss://` + `cacert`), and with
//!   encryption only (`require`, `REQUIRED`); the manifest records the TLS per database;
//! - libpq's `PGSSLMODE`/`PGSSLROOTCERT` reach every connection through the endpoint step
//!   (dump, scratch server, restore target);
//! - an unknown CA, an expired certificate and a host name mismatch each exit 3 naming the
//!   cause, with the adapter's hint, and leave no run behind;
//! - a clear-text attempt against a TLS-only server exits 3 and suggests the TLS parameter.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use exporter_tls_testing::{MariaDb, PgServer, RedisTls, TUNNEL_NAME, pki};
use serde_json::Value;

use crate::support::{
    Outcome, db_entry, dump_ok, exporter, manifest, read_json, run, run_dirs, s, tempdir,
};

/// The TLS-only PostgreSQL cluster with the good certificate (for `localhost`).
fn pg() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| PgServer::start(&pki().server, true))
}

/// The TLS-only MariaDB with the good certificate.
fn my() -> &'static MariaDb {
    static SERVER: OnceLock<MariaDb> = OnceLock::new();
    SERVER.get_or_init(|| MariaDb::start(&pki().server, true))
}

/// A unique database name for this test process.
fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "tls_{tag}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The test CA's certificate file.
fn ca() -> &'static str {
    s(&pki().ca)
}

/// A CA that signed none of the servers' certificates.
fn other_ca() -> &'static str {
    s(&pki().other_ca)
}

fn pg_url(host: &str, port: u16, db: &str, params: &str) -> String {
    let query = if params.is_empty() { "" } else { "?" };
    format!("postgres://postgres@{host}:{port}/{db}{query}{params}")
}

fn my_url(host: &str, port: u16, db: &str, params: &str) -> String {
    format!("mysql://root@{host}:{port}/{db}?{params}")
}

/// A PostgreSQL database on [`pg`] with one table of three rows.
fn pg_seeded(tag: &str) -> String {
    let db = unique(tag);
    pg().psql(&format!("CREATE DATABASE {db}"));
    pg().psql_in(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v text); \
         INSERT INTO t VALUES (1, 'one'), (2, 'zwei'), (3, NULL);",
    );
    db
}

/// A MariaDB schema on [`my`] with one table of three rows (one a 70 kB blob).
fn my_seeded(tag: &str) -> String {
    let db = unique(tag);
    my().sql(&format!(
        "CREATE DATABASE {db}; USE {db}; \
         CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), payload MEDIUMBLOB); \
         INSERT INTO items VALUES (1, 'über', REPEAT('x', 70000)), (2, 'two', NULL), \
         (3, 'three', 0x00FF);"
    ));
    db
}

/// `redis-cli` over TLS (verified with the test CA) to `localhost:port`.
fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["--tls", "--cacert", ca(), "-h", "localhost"])
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The TLS fields of the manifest entry `name` of `run_dir`.
fn tls_of(run_dir: &Path, name: &str) -> Value {
    let m = manifest(run_dir);
    db_entry(&m, name)["tls"].clone()
}

/// `verify RUN --level restore --scratch URL` passed: `verify.json` says ok, with the
/// restore check of its only database.
fn assert_verified(out: &Outcome, run_dir: &Path, tables: u64, rows: u64) {
    out.expect_code(0);
    let v = read_json(&run_dir.join("verify.json"));
    assert_eq!(v["level"], "restore", "{v:#}");
    assert_eq!(v["ok"], true, "{v:#}");
    let d = &v["databases"][0];
    assert_eq!(d["restore"]["tables"], tables, "{d:#}");
    assert_eq!(d["restore"]["rows_compared"], rows, "{d:#}");
    assert_eq!(d["restore"]["dropped"], true, "{d:#}");
}

/// A dump (or any command) that failed with exit 3 naming `cause`, with a `hint:` line
/// holding `hint`, and left no run in `dest`.
#[track_caller]
fn assert_failed_without_run(out: &Outcome, dest: &Path, cause: &str, hint: &str) {
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains(cause)
        .stderr_contains("hint: ")
        .stderr_contains(hint);
    let hint_line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_default();
    assert!(
        hint_line.contains(hint),
        "the adapter's hint must be the hint: line, not a generic one:\n{}",
        out.stderr
    );
    assert!(
        !dest.exists() || run_dirs(dest).is_empty(),
        "a failed command left a run behind in {}",
        dest.display()
    );
}

#[test]
fn dump_over_verified_tls_records_it_in_the_manifest() {
    let db = pg_seeded("dump");
    let dir = tempdir();
    let url = pg_url(
        "localhost",
        pg().port,
        &db,
        &format!("sslmode=verify-full&sslrootcert={}", ca()),
    );
    let out = run(exporter(dir.path()).args(["dump", &url, "--to", "archives"]));
    out.expect_code(0);
    assert!(
        out.stderr.contains("(verify-full, checked chain+hostname)"),
        "the progress line shows the TLS: {}",
        out.stderr
    );
    let run_dir = dir.path().join(out.last_stdout_line());
    let m = manifest(&run_dir);
    let tls = &db_entry(&m, &db)["tls"];
    assert_eq!(tls["mode"], "verify-full", "{m:#}");
    assert_eq!(tls["encrypted"], true);
    assert_eq!(tls["verified"], "chain+hostname");
    assert_eq!(tls["protocol"], "TLSv1.3");
    assert_eq!(tls["peer_certificate_sha256"], pki().server.sha256.as_str());
    assert_eq!(db_entry(&m, &db)["tables"][0]["rows"], 3);
}

/// PostgreSQL: dump with verify-full, `verify --level restore` on a TLS-only scratch server,
/// `restore` into the TLS-only server with `require`; then the same through libpq's
/// environment variables, which reach the scratch server and the restore target too (an
/// unknown CA given there fails each, naming it, with the adapter's hint).
#[test]
fn pg_verify_at_level_restore_and_restore_over_tls() {
    let server = pg();
    let db = pg_seeded("rv");
    let dir = tempdir();
    let full = format!("sslmode=verify-full&sslrootcert={}", ca());
    let run_dir = dump_ok(
        dir.path(),
        &[
            "dump",
            &pg_url("localhost", server.port, &db, &full),
            "--to",
            "archives",
        ],
    );

    let scratch = pg_url("localhost", server.port, "postgres", &full);
    let out = run(exporter(dir.path()).args([
        "verify",
        s(&run_dir),
        "--level",
        "restore",
        "--scratch",
        &scratch,
    ]));
    assert_verified(&out, &run_dir, 1, 3);
    assert_eq!(
        server
            .psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'exporter_verify_%'")
            .trim(),
        "0",
        "the scratch database was left behind"
    );

    let target = unique("rv_target");
    server.psql(&format!("CREATE DATABASE {target}"));
    let into = pg_url("localhost", server.port, &target, "sslmode=require");
    let out = run(exporter(dir.path()).args(["restore", s(&run_dir), "--into", &into]));
    out.expect_code(0).stderr_contains("restored ");
    assert_eq!(
        server
            .psql_in(
                &target,
                "SELECT string_agg(id || ':' || coalesce(v, '-'), ',' ORDER BY id) FROM t"
            )
            .trim(),
        "1:one,2:zwei,3:-"
    );

    // libpq's variables are the defaults of URLs that set no sslmode/sslrootcert: with the
    // test CA the verification passes on the scratch server ...
    let plain_scratch = pg_url("localhost", server.port, "postgres", "");
    let out = run(exporter(dir.path())
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", ca())
        .args([
            "verify",
            s(&run_dir),
            "--level",
            "restore",
            "--scratch",
            &plain_scratch,
        ]));
    assert_verified(&out, &run_dir, 1, 3);
    // ... and with another CA it fails there — when the scratch server is checked, before
    // anything is restored —, and at the restore target, naming the cause.
    let out = run(exporter(dir.path())
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", other_ca())
        .args([
            "verify",
            s(&run_dir),
            "--level",
            "restore",
            "--scratch",
            &plain_scratch,
        ]));
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains("--scratch server")
        .stderr_contains("cannot be used")
        .stderr_contains("unknown CA")
        .stderr_contains("hint: give the CA certificate that signed the server's certificate with sslrootcert=FILE");
    assert!(
        !out.stdout.lines().any(|l| l.starts_with("ok restore")),
        "nothing was restored:\n{}",
        out.stdout
    );
    let target2 = unique("rv_target2");
    server.psql(&format!("CREATE DATABASE {target2}"));
    let out = run(exporter(dir.path())
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", other_ca())
        .args([
            "restore",
            s(&run_dir),
            "--into",
            &pg_url("localhost", server.port, &target2, ""),
        ]));
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains("cannot use the target")
        .stderr_contains("unknown CA")
        .stderr_contains("hint: give the CA certificate that signed the server's certificate with sslrootcert=FILE");
    assert_eq!(
        server
            .psql_in(
                &target2,
                "SELECT count(*) FROM pg_class WHERE relname = 't'"
            )
            .trim(),
        "0",
        "nothing was restored"
    );
    // `require` with a root certificate (here PGSSLROOTCERT's) checks the chain, as libpq
    // does ...
    let out = run(exporter(dir.path()).env("PGSSLROOTCERT", other_ca()).args([
        "restore",
        s(&run_dir),
        "--into",
        &pg_url("localhost", server.port, &target2, "sslmode=require"),
    ]));
    out.expect_code(3).stderr_contains("unknown CA");
    // ... and a URL's own parameter wins over the environment.
    let out = run(exporter(dir.path())
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", other_ca())
        .args([
            "restore",
            s(&run_dir),
            "--into",
            &pg_url(
                "localhost",
                server.port,
                &target2,
                &format!("sslrootcert={}", ca()),
            ),
        ]));
    out.expect_code(0);
    assert_eq!(
        server.psql_in(&target2, "SELECT count(*) FROM t").trim(),
        "3"
    );
    for target in [&target, &target2] {
        server.psql(&format!("DROP DATABASE {target}"));
    }
    server.psql(&format!("DROP DATABASE {db}"));
}

/// MySQL/MariaDB: dump with VERIFY_IDENTITY, `verify --level restore` on the TLS-only server
/// as scratch, `restore` with REQUIRED.
#[test]
fn mysql_dump_verify_at_level_restore_and_restore_over_tls() {
    let server = my();
    let db = my_seeded("rv");
    let dir = tempdir();
    let full = format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", ca());
    let run_dir = dump_ok(
        dir.path(),
        &[
            "dump",
            &my_url("localhost", server.port, &db, &full),
            "--to",
            "archives",
        ],
    );
    let tls = tls_of(&run_dir, &db);
    assert_eq!(tls["mode"], "VERIFY_IDENTITY", "{tls:#}");
    assert_eq!(tls["encrypted"], true);
    assert_eq!(tls["verified"], "chain+hostname");
    assert_eq!(tls["peer_certificate_sha256"], pki().server.sha256.as_str());

    let scratch = format!("mysql://root@localhost:{}?{full}", server.port);
    let out = run(exporter(dir.path()).args([
        "verify",
        s(&run_dir),
        "--level",
        "restore",
        "--scratch",
        &scratch,
    ]));
    assert_verified(&out, &run_dir, 1, 3);
    assert_eq!(
        server
            .sql("SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'exporter_verify_%'")
            .trim(),
        "0",
        "the scratch database was left behind"
    );

    let target = unique("rv_target");
    server.sql(&format!("CREATE DATABASE {target}"));
    let into = my_url("localhost", server.port, &target, "ssl-mode=REQUIRED");
    let out = run(exporter(dir.path()).args(["restore", s(&run_dir), "--into", &into]));
    out.expect_code(0).stderr_contains("restored ");
    assert_eq!(
        server
            .sql(&format!(
                "SELECT GROUP_CONCAT(id, ':', name, ':', COALESCE(LENGTH(payload), -1) ORDER BY id) FROM {target}.items"
            ))
            .trim(),
        "1:über:70000,2:two:-1,3:three:2"
    );
    server.sql(&format!("DROP DATABASE {target}; DROP DATABASE {db}"));
}

/// Redis: dump a TLS-only server over `rediss://` with the test CA, `verify --level restore`
/// on another TLS-only server as scratch (whole server), `restore` into it afterwards.
#[test]
fn redis_dump_verify_at_level_restore_and_restore_over_tls() {
    let source = RedisTls::start(&pki().server, "optional");
    redis_cli(source.port, &["SET", "plain", "value"]);
    redis_cli(source.port, &["HSET", "hash", "a", "1", "b", "2"]);
    redis_cli(source.port, &["-n", "3", "RPUSH", "list", "x", "y", "z"]);
    let scratch = RedisTls::start(&pki().server, "optional");
    let dir = tempdir();
    let url = format!("rediss://localhost:{}?cacert={}", source.port, ca());
    let run_dir = dump_ok(dir.path(), &["dump", &url, "--to", "archives"]);
    let tls = tls_of(&run_dir, "localhost");
    assert_eq!(tls["mode"], "rediss", "{tls:#}");
    assert_eq!(tls["encrypted"], true);
    assert_eq!(tls["verified"], "chain+hostname");
    assert_eq!(tls["peer_certificate_sha256"], pki().server.sha256.as_str());

    let scratch_url = format!("rediss://localhost:{}?cacert={}", scratch.port, ca());
    let out = run(exporter(dir.path()).args([
        "verify",
        s(&run_dir),
        "--level",
        "restore",
        "--scratch",
        &scratch_url,
    ]));
    assert_verified(&out, &run_dir, 2, 3);
    assert_eq!(
        redis_cli(scratch.port, &["DBSIZE"]),
        "0",
        "scratch left keys"
    );

    let out = run(exporter(dir.path()).args(["restore", s(&run_dir), "--into", &scratch_url]));
    out.expect_code(0).stderr_contains("restored ");
    assert_eq!(redis_cli(scratch.port, &["GET", "plain"]), "value");
    assert_eq!(redis_cli(scratch.port, &["HGET", "hash", "b"]), "2");
    assert_eq!(
        redis_cli(scratch.port, &["-n", "3", "LRANGE", "list", "0", "-1"]),
        "x\ny\nz"
    );
}

/// An unknown CA, an expired certificate and a host name mismatch: each dump exits 3 naming
/// the cause, the `hint:` line is the adapter's, and no run is left. For every engine.
#[test]
fn unknown_ca_expired_certificate_and_host_name_mismatch_exit_3_and_leave_no_run() {
    let pg_expired = PgServer::start(&pki().expired, true);
    let redis_good = RedisTls::start(&pki().server, "optional");
    let redis_expired = RedisTls::start(&pki().expired, "optional");
    let full = format!("sslmode=verify-full&sslrootcert={}", ca());
    let my_full = format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", ca());
    let mismatch = format!(
        "host name mismatch: the server's certificate is for localhost, {TUNNEL_NAME}, not 127.0.0.1"
    );
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "pg unknown CA",
            pg_url(
                "localhost",
                pg().port,
                "postgres",
                &format!("sslmode=verify-full&sslrootcert={}", other_ca()),
            ),
            "signed by an unknown CA",
            "sslrootcert=FILE",
        ),
        (
            "pg expired",
            pg_url("localhost", pg_expired.port, "postgres", &full),
            "certificate expired: it is valid until 2021-01-01 00:00:00 UTC",
            "renewed certificate",
        ),
        (
            "pg host name mismatch",
            pg_url("127.0.0.1", pg().port, "postgres", &full),
            &mismatch,
            "sslmode=verify-ca",
        ),
        (
            "mysql unknown CA",
            my_url(
                "localhost",
                my().port,
                "mysql",
                &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", other_ca()),
            ),
            "signed by an unknown CA",
            "ssl-ca=FILE",
        ),
        (
            "mysql host name mismatch",
            my_url("127.0.0.1", my().port, "mysql", &my_full),
            "host name mismatch",
            "ssl-mode=VERIFY_CA",
        ),
        (
            "redis unknown CA",
            format!(
                "rediss://localhost:{}?cacert={}",
                redis_good.port,
                other_ca()
            ),
            "signed by an unknown CA",
            "cacert=FILE",
        ),
        (
            "redis expired",
            format!("rediss://localhost:{}?cacert={}", redis_expired.port, ca()),
            "certificate expired: it is valid until 2021-01-01 00:00:00 UTC",
            "renewed certificate",
        ),
        (
            "redis host name mismatch",
            format!("rediss://127.0.0.1:{}?cacert={}", redis_good.port, ca()),
            "host name mismatch",
            "connect with a host name the certificate carries",
        ),
    ];
    let dir = tempdir();
    for (i, (case, url, cause, hint)) in cases.iter().enumerate() {
        let dest = dir.path().join(format!("dest{i}"));
        let out = run(exporter(dir.path()).args(["dump", url, "--to", s(&dest)]));
        assert_eq!(out.code, 3, "{case}:\n{}", out.stderr);
        assert_failed_without_run(&out, &dest, cause, hint);
    }
}

/// A clear-text attempt against a server that accepts TLS only fails (exit 3, no run) with a
/// hint naming the TLS parameter, for every engine; also when the clear text comes from
/// libpq's `PGSSLMODE=disable`.
#[test]
fn clear_text_against_a_tls_only_server_suggests_the_tls_parameter() {
    let redis = RedisTls::start(&pki().server, "optional");
    let cases = [
        (
            pg_url("localhost", pg().port, "postgres", "sslmode=disable"),
            None,
            "no encryption",
            "use sslmode=require",
        ),
        (
            pg_url("localhost", pg().port, "postgres", ""),
            Some("disable"),
            "no encryption",
            "use sslmode=require",
        ),
        (
            my_url("127.0.0.1", my().port, "mysql", "ssl-mode=DISABLED"),
            None,
            "Access denied",
            "use ssl-mode=REQUIRED",
        ),
        (
            format!("redis://127.0.0.1:{}?connect_timeout=5", redis.port),
            None,
            "TLS connections only",
            "use rediss://",
        ),
    ];
    let dir = tempdir();
    for (i, (url, pgsslmode, cause, hint)) in cases.iter().enumerate() {
        let dest = dir.path().join(format!("dest{i}"));
        let mut cmd = exporter(dir.path());
        if let Some(mode) = pgsslmode {
            cmd.env("PGSSLMODE", mode);
        }
        let out = run(cmd.args(["dump", url, "--to", s(&dest)]));
        assert_failed_without_run(&out, &dest, cause, hint);
    }
}

/// `PGSSLMODE` is checked with the URLs, before anything connects: an unknown mode is a usage
/// error naming it.
#[test]
fn an_invalid_pgsslmode_is_a_usage_error() {
    let dir = tempdir();
    let out = run(exporter(dir.path()).env("PGSSLMODE", "paranoid").args([
        "dump",
        "postgres://postgres@127.0.0.1:1/x",
        "--to",
        "archives",
    ]));
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("unknown sslmode \"paranoid\"");
    assert!(!dir.path().join("archives").exists());
}
