//! `exporter check` (issue 16) and the same check before `dump`: against the real servers, a
//! user lacking a privilege is named with the object and the privilege (exit 1), and the dump
//! of the same inventory stops before anything is written (exit 3); a good inventory reports
//! its server versions, TLS and sizes (exit 0); the destination is proven writable by a test
//! object that is removed again.

use std::path::Path;

use serde_json::Value;

use crate::support::fake::{Fake, seed_with};
use crate::support::s3::{Bucket, KEY_ID, SECRET, endpoint, s3_exporter};
use crate::support::{
    MY_HOST, MY_PORT, MyDb, MyUser, Outcome, RedisServer, TestDb, TestRole, all_files, exporter,
    mariadb, psql, run, s, small_db, tempdir,
};

/// `exporter check ARGS… --to DEST` in `cwd`.
fn check(cwd: &Path, dest: &Path, args: &[&str]) -> Outcome {
    run(exporter(cwd)
        .arg("check")
        .args(args)
        .args(["--to", s(dest)]))
}

/// `exporter dump ARGS… --to DEST` in `cwd`.
fn dump(cwd: &Path, dest: &Path, args: &[&str]) -> Outcome {
    run(exporter(cwd).arg("dump").args(args).args(["--to", s(dest)]))
}

/// The stdout line of database `name` (`name: …`).
#[track_caller]
fn line_of<'a>(out: &'a Outcome, name: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no line for {name}:\n{}", out.stdout))
}

/// A check or dump stopped by the check wrote nothing: the destination does not exist (the
/// check's test object and the directories it created are gone).
#[track_caller]
fn assert_no_trace(dest: &Path) {
    assert!(
        !dest.exists(),
        "{} was left behind: {:?}",
        dest.display(),
        all_files(dest)
    );
}

/// A PostgreSQL role that may not read one table, may not use one schema and would see a
/// table through row-level security: `check` exits 1 naming each object and privilege, and
/// nothing else; `dump` of the same URL stops before writing anything. Once granted, both
/// pass: a check that passes means the dump's privileges are there.
#[test]
fn postgres_missing_privileges_are_named_and_the_dump_writes_nothing() {
    let role = TestRole::create("chkpg");
    let db = TestDb::with_sql(
        "chkpg",
        &format!(
            "CREATE TABLE visible (id integer PRIMARY KEY);
             INSERT INTO visible VALUES (1), (2);
             CREATE TABLE hidden_payroll (id integer PRIMARY KEY, salary numeric);
             CREATE SEQUENCE counter;
             CREATE SCHEMA vault;
             CREATE TABLE vault.keys (k text);
             CREATE TABLE notes (id integer, body text);
             ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
             GRANT SELECT ON visible, notes, vault.keys, counter TO {0};",
            role.0
        ),
    );
    let work = tempdir();
    let dest = work.path().join("dest");
    let url = role.url(&db);
    let out = check(work.path(), &dest, &[&format!("billing={url}")]);
    out.expect_code(1).expect_error_line();
    let problems: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .collect();
    assert_eq!(
        problems,
        [
            "schema vault: USAGE missing: the role may not use the schema, so it cannot read \
             the tables and sequences in it",
            "table public.hidden_payroll: SELECT missing: the role may not read it",
            "table public.notes: BYPASSRLS missing: row-level security would hide rows from the \
             role (the dump reads with row_security off and fails rather than dump fewer rows): \
             dump as its owner, a superuser or a role with BYPASSRLS",
        ],
        "{}",
        out.stdout
    );
    assert!(
        line_of(&out, "billing").starts_with("billing: FAILED: postgresql "),
        "{}",
        out.stdout
    );
    out.stderr_contains("error: the dump would fail: billing: 3 problems");
    assert_no_trace(&dest);

    let out = dump(work.path(), &dest, &[&url]);
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains("the check before the dump failed")
        .stderr_contains("table public.hidden_payroll: SELECT missing")
        .stderr_contains("schema vault: USAGE missing");
    assert_no_trace(&dest);

    psql(
        &db.name,
        &format!(
            "GRANT USAGE ON SCHEMA vault TO {0}; GRANT SELECT ON hidden_payroll TO {0}; \
             ALTER TABLE notes DISABLE ROW LEVEL SECURITY;",
            role.0
        ),
    );
    let out = check(work.path(), &dest, &[&format!("billing={url}")]);
    out.expect_code(0);
    assert!(
        line_of(&out, "billing").starts_with("billing: ok: postgresql "),
        "{}",
        out.stdout
    );
    assert_no_trace(&dest);
    let out = dump(work.path(), &dest, &[&url]);
    out.expect_code(0);
    out.stderr_contains("check: 1 database(s) ready, destination writable");
}

/// A MariaDB account with SELECT on one table only, INSERT (so it sees it) on another, and no
/// SHOW VIEW: `check` exits 1 naming the table, the view and the database-wide SELECT the dump
/// requires; `dump` stops before writing anything.
#[test]
fn mariadb_missing_select_on_a_table_is_named_and_the_dump_writes_nothing() {
    let db = MyDb::create("chkmy");
    db.query(
        "CREATE TABLE open_t (id INT PRIMARY KEY); INSERT INTO open_t VALUES (1);
         CREATE TABLE secret (id INT PRIMARY KEY); INSERT INTO secret VALUES (7);
         CREATE VIEW v AS SELECT id FROM open_t;",
    );
    let user = MyUser::create("chkmy", "Chk-pw-42");
    let who = format!("'{}'@'127.0.0.1'", user.name);
    mariadb(
        None,
        &format!(
            "GRANT SELECT ON `{0}`.`open_t` TO {who}; GRANT INSERT ON `{0}`.`secret` TO {who};
             GRANT SELECT ON `{0}`.`v` TO {who}; GRANT TRIGGER, EVENT, EXECUTE ON `{0}`.* TO {who};",
            db.name
        ),
    );
    let url = format!(
        "mysql://{}:Chk-pw-42@{MY_HOST}:{MY_PORT}/{}",
        user.name, db.name
    );
    let work = tempdir();
    let dest = work.path().join("dest");
    let out = check(work.path(), &dest, &[&format!("shop={url}")]);
    out.expect_code(1)
        .expect_error_line()
        .never_shows("Chk-pw-42");
    let q = |t: &str| format!("`{}`.`{t}`", db.name);
    for expected in [
        format!(
            "  table {}: SELECT missing: the account may not read it",
            q("secret")
        ),
        format!(
            "  database `{}`: SELECT missing: the dump needs it database-wide",
            db.name
        ),
        format!("  view {}: SHOW VIEW missing:", q("v")),
    ] {
        assert!(
            out.stdout.lines().any(|l| l.starts_with(&expected)),
            "no line starting {expected:?}:\n{}",
            out.stdout
        );
    }
    assert!(
        !out.stdout.contains(&q("open_t")),
        "a readable table is named:\n{}",
        out.stdout
    );
    assert!(
        line_of(&out, "shop").starts_with("shop: FAILED: mariadb "),
        "{}",
        out.stdout
    );
    assert_no_trace(&dest);

    let out = dump(work.path(), &dest, &[&url]);
    out.expect_code(3)
        .expect_error_line()
        .never_shows("Chk-pw-42")
        .stderr_contains(&format!("table {}: SELECT missing", q("secret")));
    assert_no_trace(&dest);
}

/// A Redis ACL user without DUMP, and one whose key patterns leave out a key: `check` exits 1
/// naming the command and the key; `dump` stops before writing anything. The default user
/// passes.
#[test]
fn redis_acl_user_without_dump_is_named_and_the_dump_writes_nothing() {
    let redis = RedisServer::start();
    redis.seed("SET app:1 one\nSET other:1 two\nSELECT 2\nSET app:2 three\n");
    redis.cli(&[
        "ACL", "SETUSER", "nodump", "on", ">Nd-pw-1", "~*", "+@all", "-dump",
    ]);
    redis.cli(&[
        "ACL", "SETUSER", "apponly", "on", ">Ap-pw-1", "~app:*", "+@all",
    ]);
    let url = |user: &str, pw: &str| format!("redis://{user}:{pw}@127.0.0.1:{}", redis.port);
    let work = tempdir();
    let dest = work.path().join("dest");
    let out = check(
        work.path(),
        &dest,
        &[
            &format!("nodump={}", url("nodump", "Nd-pw-1")),
            &format!("apponly={}", url("apponly", "Ap-pw-1")),
            &format!("default={}", redis.url()),
        ],
    );
    out.expect_code(1)
        .expect_error_line()
        .never_shows("Nd-pw-1")
        .never_shows("Ap-pw-1")
        .stderr_contains("2 of 3 databases would fail (nodump, apponly)");
    let block = |name: &str| -> Vec<String> {
        let mut lines = out
            .stdout
            .lines()
            .skip_while(|l| !l.starts_with(&format!("{name}: ")));
        let first = lines.next().unwrap_or_default().to_owned();
        std::iter::once(first)
            .chain(lines.take_while(|l| l.starts_with("  ")).map(str::to_owned))
            .collect()
    };
    let nodump = block("nodump");
    assert!(
        nodump[0].starts_with("nodump: FAILED: redis "),
        "{nodump:?}"
    );
    assert_eq!(
        nodump[1..],
        [
            "  command DUMP: DUMP missing: the user may not run it (the dump reads every key's \
          payload and expiry)"
        ],
        "{}",
        out.stdout
    );
    let apponly = block("apponly");
    assert_eq!(
        apponly[1..],
        [
            "  key \"other:1\" in db0: read access (ACL key patterns) missing: the user's key \
          patterns refuse PEXPIRETIME on it; the dump reads every key (grant ~* or %R~*)"
        ],
        "{}",
        out.stdout
    );
    assert!(
        line_of(&out, "default").starts_with(&format!("default: ok: redis {}", redis.version())),
        "{}",
        out.stdout
    );
    assert_no_trace(&dest);

    let out = dump(work.path(), &dest, &[&url("nodump", "Nd-pw-1")]);
    out.expect_code(3)
        .expect_error_line()
        .never_shows("Nd-pw-1")
        .stderr_contains("command DUMP: DUMP missing");
    assert_no_trace(&dest);
    // Nothing of the check stayed on the server: no key was written, none removed.
    assert_eq!((redis.dbsize(0), redis.dbsize(2)), (2, 1));
}

/// A destination under a regular file (tests run as root, so a read-only directory would not
/// stop them): `check` exits 1 naming it, `dump` exits 3 and the file is untouched.
#[test]
fn an_unwritable_local_destination_is_named() {
    let db = small_db("chkdest", 3);
    let work = tempdir();
    let blocker = work.path().join("not-a-dir");
    std::fs::write(&blocker, b"a file").unwrap();
    let dest = blocker.join("runs");
    let out = check(work.path(), &dest, &[&db.url()]);
    out.expect_code(1).expect_error_line();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("destination "))
        .unwrap_or_else(|| panic!("no destination line:\n{}", out.stdout));
    assert!(
        line.starts_with(&format!("destination {}: FAILED: ", dest.display()))
            && line.contains("is not writable")
            && line.contains("Not a directory"),
        "{line}"
    );
    out.stderr_contains(&format!("destination {} is not writable", dest.display()));
    // The database itself is fine.
    assert!(
        line_of(&out, &db.name).contains(": ok: postgresql "),
        "{}",
        out.stdout
    );
    let out = dump(work.path(), &dest, &[&db.url()]);
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains(s(&blocker));
    assert_eq!(std::fs::read(&blocker).unwrap(), b"a file");
}

/// S3: a bucket that does not exist fails the check naming it; an existing one passes and
/// keeps neither the test object nor an open multipart upload.
#[test]
fn s3_destination_is_checked_with_a_test_object_that_is_removed() {
    let db = small_db("chks3", 3);
    let work = tempdir();
    let missing = format!("exp-chk-missing-{}", std::process::id());
    let out = run(s3_exporter(work.path(), &endpoint(), KEY_ID, SECRET).args([
        "check",
        &db.url(),
        "--to",
        &format!("s3://{missing}/runs"),
    ]));
    out.expect_code(1)
        .expect_error_line()
        .stderr_contains(&format!("bucket {missing} does not exist"));

    let bucket = Bucket::create("chks3");
    let out = run(s3_exporter(work.path(), &endpoint(), KEY_ID, SECRET).args([
        "check",
        &db.url(),
        "--to",
        &bucket.url("team/runs"),
    ]));
    out.expect_code(0);
    assert!(
        out.stdout.contains(&format!(
            "destination {}: writable (a test object was written and removed)",
            bucket.url("team/runs")
        )),
        "{}",
        out.stdout
    );
    assert_eq!(bucket.keys(""), Vec::<String>::new(), "objects were left");
    assert!(bucket.uploads("").is_empty(), "an upload is still open");
}

/// PostgreSQL, MariaDB and Redis that are all ready: exit 0, each line with the server's
/// version, how the connection travelled and a size; `--json` is the documented report
/// (FORMAT.md, "Reports on stdout").
#[test]
fn a_good_inventory_reports_versions_tls_and_sizes() {
    let pg = small_db("chkgood", 2000);
    let my = MyDb::create("chkgood");
    my.query("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO t VALUES (1, 'a');");
    let redis = RedisServer::start();
    redis.seed("SET k v\n");
    let work = tempdir();
    let dest = work.path().join("dest");
    let dbs = [
        format!("pg={}", pg.url()),
        format!("my={}", my.url()),
        format!("cache={}", redis.url()),
    ];
    let args: Vec<&str> = dbs.iter().map(String::as_str).collect();
    let out = check(work.path(), &dest, &args);
    out.expect_code(0);
    let pg_version = psql("postgres", "SHOW server_version");
    let my_version = mariadb(None, "SELECT VERSION()");
    // The test PostgreSQL has ssl = on: libpq's default `prefer` gets TLS.
    let pg_line = line_of(&out, "pg");
    assert!(
        pg_line.starts_with(&format!(
            "pg: ok: postgresql {}, TLSv1.3 (prefer, checked none), about ",
            pg_version.trim()
        )),
        "{pg_line}"
    );
    assert!(
        line_of(&out, "my").starts_with(&format!("my: ok: mariadb {}, ", my_version.trim())),
        "{}",
        out.stdout
    );
    assert!(
        line_of(&out, "cache").starts_with(&format!(
            "cache: ok: redis {}, clear text (redis), about ",
            redis.version()
        )),
        "{}",
        out.stdout
    );
    let last = out.last_stdout_line();
    assert!(
        last.starts_with("ready: 3 database(s) and the destination; about ")
            && last.ends_with(" at an assumed 32.0 MiB/s"),
        "{last}"
    );
    assert_no_trace(&dest);

    let out =
        run(exporter(work.path())
            .arg("check")
            .args(&args)
            .args(["--to", s(&dest), "--json"]));
    out.expect_code(0);
    let report: Value = serde_json::from_str(&out.stdout).expect("check --json is JSON");
    assert_eq!(report["version"], 1);
    assert_eq!(report["passed"], true);
    assert_eq!(report["assumed_bytes_per_second"], 32 * 1024 * 1024);
    assert_eq!(report["destination"]["writable"], true);
    assert_eq!(report["destination"]["location"], s(&dest));
    let dbs = report["databases"].as_array().unwrap();
    let names: Vec<&str> = dbs.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pg", "my", "cache"]);
    let engines: Vec<&str> = dbs.iter().map(|d| d["engine"].as_str().unwrap()).collect();
    assert_eq!(engines, ["postgresql", "mariadb", "redis"]);
    for d in dbs {
        assert_eq!(d["status"], "ok", "{d:#}");
        assert_eq!(d["problems"], serde_json::json!([]), "{d:#}");
        assert!(d["error"].is_null(), "{d:#}");
        assert!(d["server_version"].is_string(), "{d:#}");
        assert!(d["tls"]["mode"].is_string(), "{d:#}");
        let size = d["size_bytes"].as_u64().expect("a size");
        assert!(size > 0, "{d:#}");
        let seconds = d["estimated_seconds"].as_f64().expect("an estimate");
        assert!((seconds - size as f64 / f64::from(32 * 1024 * 1024)).abs() < 1e-9);
    }
    assert_eq!(dbs[0]["tls"]["encrypted"], true);
    assert_eq!(dbs[0]["endpoint"], pg.url());
    let total: u64 = dbs.iter().map(|d| d["size_bytes"].as_u64().unwrap()).sum();
    assert_eq!(report["total_bytes"], total);
}

/// A platform environment, through the same tunnels as the dump: every database is checked
/// through its own tunnel (and the tunnel stopped); with `--from-backup latest` nothing is
/// restored for the check, the database is reported as not checked.
#[test]
fn a_platform_environment_is_checked_through_its_tunnels() {
    let fake = Fake::start(&seed_with(&[100, 110, 120], &[100, 110, 120]), true);
    let token = fake.token_expiring(3600);
    let cwd = tempdir();
    let out = run(fake.exporter(cwd.path(), Some(&token)).args([
        "check",
        "--all",
        "--environment",
        "prod",
        "--to",
        "out",
    ]));
    out.expect_code(0);
    for (name, engine) in [
        ("main-db", "postgresql"),
        ("shop-mysql", "mariadb"),
        ("cache", "redis"),
    ] {
        assert!(
            line_of(&out, name).starts_with(&format!("{name}: ok: {engine} ")),
            "{}",
            out.stdout
        );
    }
    out.stderr_contains("main-db: tunnel to main-db up on 127.0.0.1:");
    fake.assert_no_secret("check output", &out.all_output());
    let log = fake.assert_clean_log(0);
    let tunnels = log
        .iter()
        .filter(|r| r["method"] == "POST" && r["operation_type"] == "tunnel")
        .count();
    assert_eq!(tunnels, 3);
    assert_eq!(fake.ssh_clients(), 0, "every tunnel was stopped");
    assert!(!cwd.path().join("out").exists());

    fake.clear_requests();
    let out = run(fake.exporter(cwd.path(), Some(&token)).args([
        "check",
        "--all",
        "--environment",
        "prod",
        "--to",
        "out",
        "--from-backup",
        "latest",
        "--json",
    ]));
    out.expect_code(0);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let statuses: Vec<(&str, &str)> = report["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["name"].as_str().unwrap(), d["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("cache", "not_checked"),
            ("main-db", "not_checked"),
            ("shop-mysql", "not_checked")
        ]
    );
    let log = fake.assert_clean_log(0);
    assert!(
        !log.iter().any(|r| r["method"] == "POST"),
        "the check posted an operation: {log:#?}"
    );
}

/// Issue 18: a dependency cycle the PostgreSQL dump cannot break (a domain whose default
/// reads a table that has a column of the domain) is a refusal, not a missing privilege:
/// `check` exits 1 naming the cycle and `dump` stops (exit 3), both with the refusal's hint
/// (README "What is supported", PARITY.md) and without the privilege hint; `dump --no-check`
/// fails that database with the same refusal and a hint that does not mention privileges.
#[test]
fn an_unbreakable_cycle_gets_the_refusal_hint_not_the_privilege_one() {
    let db = TestDb::with_sql(
        "chkcycle",
        "CREATE DOMAIN dn AS int;
         CREATE TABLE w (id int, v dn);
         CREATE FUNCTION w_next() RETURNS int LANGUAGE sql
           BEGIN ATOMIC SELECT count(*)::int FROM public.w; END;
         ALTER DOMAIN dn SET DEFAULT w_next();",
    );
    let work = tempdir();
    let dest = work.path().join("dest");
    let url = db.url();
    let cycle = "public.dn: circular dependency between schema objects: public.dn, public.w, \
                 public.w_next()";
    let hint = "hint: exporter refuses what it cannot export faithfully rather than leave it \
                out, and no privilege changes that: README, \"What is supported\", and PARITY.md \
                list what the PostgreSQL dump refuses and why";
    let out = check(work.path(), &dest, &[&format!("app={url}")]);
    out.expect_code(1).expect_error_line();
    assert!(
        out.stdout.lines().any(|l| l == format!("  {cycle}")),
        "{}",
        out.stdout
    );
    out.stderr_contains(hint);
    assert!(!out.stderr.contains("grant"), "{}", out.stderr);
    assert_no_trace(&dest);

    let out = dump(work.path(), &dest, &[&url]);
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains(cycle)
        .stderr_contains(hint);
    assert!(!out.stderr.contains("grant"), "{}", out.stderr);
    assert_no_trace(&dest);

    let out = dump(work.path(), &dest, &["--no-check", &url]);
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains("circular dependency between schema objects")
        .stderr_contains("PARITY.md lists what the PostgreSQL dump refuses");
    assert!(!out.stderr.contains("grant"), "{}", out.stderr);
}

/// A role allowed one session on the server (the role's connection limit) and a run of two
/// databases: the check of one database must not keep a session while the other is checked
/// (a single database's check keeps its dump's start for the dump; with two it would hold
/// the role's only session and the second check would be refused), and each dump runs on
/// its one session.
#[test]
fn postgres_role_allowed_one_session_dumps_two_databases_with_the_check() {
    let role = TestRole::create("onerole");
    let sql =
        "CREATE TABLE t (id integer PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 50);";
    let (one, two) = (
        TestDb::with_sql("onerole_a", sql),
        TestDb::with_sql("onerole_b", sql),
    );
    for db in [&one, &two] {
        psql(&db.name, &format!("GRANT SELECT ON t TO {}", role.0));
    }
    psql(
        "postgres",
        &format!("ALTER ROLE {} CONNECTION LIMIT 1", role.0),
    );
    let work = tempdir();
    let dest = work.path().join("dest");
    let out = run(exporter(work.path()).args([
        "dump",
        &format!("a={}", role.url(&one)),
        &format!("b={}", role.url(&two)),
        "--to",
        s(&dest),
        "--jobs",
        "1",
    ]));
    assert_eq!(out.code, 0, "{}", out.all_output());
    let run_dir = std::fs::read_dir(&dest)
        .expect("dest")
        .map(|e| e.expect("entry").path())
        .find(|p| p.join("manifest.json").exists())
        .expect("a run");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    for i in 0..2 {
        assert_eq!(
            manifest["databases"][i]["tables"][0]["rows"], 50,
            "{manifest:#}"
        );
    }
}

/// A role the database allows one session (its connection limit is 1): `check` passes with a
/// note that the dump copies on fewer sessions, and `dump --jobs 4` completes on the one
/// session, every row there (the COPY sessions it is refused leave their share to the
/// snapshot's own). Both used to fail ("too many connections") where pg_dump -j1 works.
#[test]
fn postgres_one_session_allowed_checks_and_dumps_on_that_session() {
    let role = TestRole::create("onesess");
    let db = TestDb::with_sql(
        "onesess",
        "CREATE TABLE a (id integer PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 300);
         CREATE TABLE b (id integer PRIMARY KEY); INSERT INTO b SELECT generate_series(1, 200);",
    );
    psql(
        &db.name,
        &format!(
            "GRANT SELECT ON a, b TO {r}; ALTER DATABASE {d} CONNECTION LIMIT 1",
            r = role.0,
            d = db.name
        ),
    );
    let work = tempdir();
    let dest = work.path().join("dest");
    let url = role.url(&db);
    let out = check(work.path(), &dest, &[&url]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("a second session could not be opened"),
        "{}",
        out.all_output()
    );
    let out = run(exporter(work.path()).args(["dump", &url, "--to", s(&dest), "--jobs", "4"]));
    assert_eq!(out.code, 0, "{}", out.all_output());
    assert!(
        out.stderr.contains("could not connect"),
        "the refused sessions are said: {}",
        out.all_output()
    );
    let run_dir = std::fs::read_dir(&dest)
        .expect("dest")
        .map(|e| e.expect("entry").path())
        .find(|p| p.join("manifest.json").exists())
        .expect("a run");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    let tables = &manifest["databases"][0]["tables"];
    assert_eq!(tables[0]["name"], "public.a", "{manifest:#}");
    assert_eq!(tables[0]["rows"], 300);
    assert_eq!(tables[1]["name"], "public.b");
    assert_eq!(tables[1]["rows"], 200);

    // One job, with and without the check: the one COPY session is refused too, and every
    // table is copied on the snapshot's own session (it used to fail "too many connections").
    for extra in [&[][..], &["--no-check"][..]] {
        let to = work.path().join(format!("one-job{}", extra.len()));
        let out = run(exporter(work.path())
            .args(["dump", &url, "--to", s(&to), "--jobs", "1"])
            .args(extra));
        assert_eq!(out.code, 0, "{extra:?}: {}", out.all_output());
        assert!(
            out.stderr
                .contains("copying on the snapshot's own connection"),
            "{}",
            out.all_output()
        );
        let run_dir = std::fs::read_dir(&to)
            .expect("dest")
            .map(|e| e.expect("entry").path())
            .find(|p| p.join("manifest.json").exists())
            .expect("a run");
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(run_dir.join("manifest.json")).expect("manifest"),
        )
        .expect("JSON");
        let rows: Vec<i64> = manifest["databases"][0]["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .map(|t| t["rows"].as_i64().expect("rows"))
            .collect();
        assert_eq!(rows, [300, 200], "{manifest:#}");
    }
}
