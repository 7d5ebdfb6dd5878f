//! The Aptible path end to end (issue 13): `dump --all` of a platform environment through
//! real SSH tunnels (the fake platform's sshd) to real PostgreSQL, MariaDB and Redis databases,
//! backups restored into new databases, refusals, pagination, login and tokens, tunnels that
//! fail or die, `exporter tunnel`, and no secret anywhere.

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::fake::{Fake, default_seed, seed_with};
use crate::support::{
    MY_HOST, MY_PORT, Outcome, PG_HOST, PG_PORT, RedisServer, psql, read_json, run, s, tempdir,
};

fn manifest(run_dir: &Path) -> Value {
    read_json(&run_dir.join("manifest.json"))
}

fn entry<'a>(manifest: &'a Value, name: &str) -> &'a Value {
    manifest["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no entry {name} in {manifest:#}"))
}

fn rows(entry: &Value) -> u64 {
    entry["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["rows"].as_u64().unwrap())
        .sum()
}

/// `exporter dump --all --environment prod --to out <extra>` against `fake`.
fn dump_all(fake: &Fake, cwd: &Path, token: &str, extra: &[&str]) -> Outcome {
    run(fake
        .exporter(cwd, Some(token))
        .args(["dump", "--all", "--environment", "prod", "--to", "out"])
        .args(extra))
}

fn run_dir(cwd: &Path, out: &Outcome) -> PathBuf {
    let dir = cwd.join(out.last_stdout_line());
    assert!(dir.join("manifest.json").is_file(), "{out:?}");
    dir
}

fn operations(log: &[Value], kind: &str) -> usize {
    log.iter()
        .filter(|r| r["method"] == "POST" && r["operation_type"] == kind)
        .count()
}

#[test]
fn dump_all_of_postgres_mysql_and_redis_through_ssh_tunnels_restores_equal() {
    let fake = Fake::start(&seed_with(&[100, 110, 120], &[100, 110, 120]), true);
    let token = fake.token_expiring(3600);
    let cwd = tempdir();
    let out = dump_all(&fake, cwd.path(), &token, &["--jobs", "3"]);
    out.expect_code(0);
    let dir = run_dir(cwd.path(), &out);
    let m = manifest(&dir);
    assert_eq!(m["status"], "complete");
    assert_eq!(
        m["source"],
        json!({"kind": "aptible", "environment": "prod"})
    );
    let main = entry(&m, "main-db");
    assert_eq!(main["status"], "ok");
    assert_eq!(main["engine"], "postgresql");
    assert_eq!(main["platform"]["id"], 100);
    assert_eq!(main["platform"]["handle"], "main-db");
    assert_eq!(main["platform"]["environment_id"], 42);
    assert_eq!(main["platform"]["origin"], "live");
    assert_eq!(main["platform"]["version"], "15");
    assert_eq!(main["platform"]["credential_type"], "postgresql");
    assert_eq!(main["tls"]["mode"], "prefer");
    assert_eq!(rows(main), 3, "the seeded customers");
    let shop = entry(&m, "shop-mysql");
    assert_eq!(shop["platform"]["type"], "mysql");
    assert_eq!(rows(shop), 2);
    let cache = entry(&m, "cache");
    assert_eq!(cache["platform"]["type"], "redis");
    // The whole Redis server: db 0's two keys and db 2's one.
    assert_eq!(rows(cache), 3, "{cache:#}");
    assert!(
        out.stderr
            .contains("main-db: tunnel to main-db up on 127.0.0.1:"),
        "{}",
        out.stderr
    );

    // Each archive restores into a scratch database equal to what was dumped.
    let redis = RedisServer::start();
    let verify = run(fake.exporter(cwd.path(), None).args([
        "verify",
        s(&dir),
        "--level",
        "restore",
        "--scratch",
        &format!("postgres://postgres@{PG_HOST}:{PG_PORT}/postgres"),
        "--scratch",
        &format!("mysql://root@{MY_HOST}:{MY_PORT}"),
        "--scratch",
        &redis.url(),
    ]));
    verify.expect_code(0);

    // Three tunnels for the check before the dump and three for the dump, nothing
    // unspecified, nothing destructive, no secret anywhere.
    let log = fake.assert_clean_log(0);
    assert_eq!(operations(&log, "tunnel"), 6);
    fake.assert_no_secret("dump output", &out.all_output());
    fake.assert_no_secret("verify output", &verify.all_output());
    fake.assert_no_secret_in_files(&dir);
}

#[test]
fn from_backup_latest_dumps_the_backup_then_deprovisions_the_restored_database() {
    let fake = Fake::start(&seed_with(&[100], &[100]), true);
    let token = fake.token_expiring(3600);
    // Change the live data after the backups were taken: the dump must show the backup's.
    let backing = fake.backing(100);
    psql(
        backing["dbname"].as_str().unwrap(),
        "INSERT INTO customers VALUES (4, 'dave')",
    );
    let cwd = tempdir();

    // First with --keep-restored: the restored database stays, and is named next time.
    let out = dump_all(
        &fake,
        cwd.path(),
        &token,
        &["--from-backup", "latest", "--keep-restored"],
    );
    out.expect_code(0);
    let m = manifest(&run_dir(cwd.path(), &out));
    let main = entry(&m, "main-db");
    assert_eq!(rows(main), 3, "the backup's rows, not the live four");
    let p = &main["platform"];
    assert_eq!(p["id"], 100, "the original database's id");
    assert_eq!(p["origin"], "backup");
    assert_eq!(
        p["backup"]["id"], 556,
        "the newest backup that is not a copy"
    );
    assert_eq!(p["backup"]["created_at"], "2026-02-04T09:00:00Z");
    assert_eq!(
        p["restored_into"]["handle"],
        "main-db-at-2026-02-04-09-00-00-exporter"
    );
    assert_eq!(p["restored_into"]["kept"], true);
    let log = fake.assert_clean_log(0);
    assert_eq!(operations(&log, "restore"), 1);

    let list = run(fake
        .exporter(cwd.path(), Some(&token))
        .args(["list", "--environment", "prod"]));
    list.expect_code(0);
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with("main-db-at-2026-02-04-09-00-00-exporter")
                && l.contains("restored by an earlier run")),
        "{}",
        list.stdout
    );

    // Again without: the left-over is found and reused (no second restore), then removed.
    fake.clear_requests();
    let out = dump_all(&fake, cwd.path(), &token, &["--from-backup", "latest"]);
    out.expect_code(0);
    out.stderr_contains("reusing main-db-at-2026-02-04-09-00-00-exporter")
        .stderr_contains(
            "deprovisioned the restored database main-db-at-2026-02-04-09-00-00-exporter",
        );
    let m = manifest(&run_dir(cwd.path(), &out));
    let main = entry(&m, "main-db");
    assert_eq!(rows(main), 3);
    assert_eq!(main["platform"]["restored_into"]["kept"], false);
    let log = fake.assert_clean_log(1);
    assert_eq!(operations(&log, "restore"), 0);
    assert_eq!(operations(&log, "deprovision"), 1);

    let list = run(fake.exporter(cwd.path(), Some(&token)).args([
        "list",
        "--environment",
        "prod",
        "--json",
    ]));
    list.expect_code(0);
    let listed: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(
        (&listed["version"], &listed["source"]),
        (&Value::from(1), &Value::from("aptible")),
        "the list --json object of FORMAT.md"
    );
    let handles: Vec<&str> = listed["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["handle"].as_str().unwrap())
        .collect();
    assert_eq!(handles, ["main-db"], "the restored database is gone");
    fake.assert_no_secret("dump output", &out.all_output());
}

#[test]
fn an_unexportable_database_refuses_before_any_tunnel_and_is_skipped_on_request() {
    let fake = Fake::start(&seed_with(&[100, 130], &[100]), true);
    let token = fake.token_expiring(3600);
    let cwd = tempdir();
    let out = dump_all(&fake, cwd.path(), &token, &[]);
    out.expect_code(1)
        .expect_error_line()
        .stderr_contains("events (mongodb)")
        .stderr_contains("hint: record them as skipped with --skip-unsupported");
    assert!(!cwd.path().join("out").exists(), "no run was created");
    let log = fake.assert_clean_log(0);
    assert_eq!(
        operations(&log, "tunnel"),
        0,
        "no tunnel operation was posted"
    );
    assert!(
        !log.iter().any(|r| r["path"]
            .as_str()
            .unwrap()
            .ends_with("/ssh_portal_connections")),
        "{log:#?}"
    );

    let out = dump_all(&fake, cwd.path(), &token, &["--skip-unsupported"]);
    out.expect_code(0);
    let dir = run_dir(cwd.path(), &out);
    let m = manifest(&dir);
    assert_eq!(m["status"], "complete");
    let events = entry(&m, "events");
    assert_eq!(events["status"], "skipped");
    assert_eq!(events["platform"]["type"], "mongodb");
    assert_eq!(events["platform"]["id"], 130);
    assert!(
        events["error"]
            .as_str()
            .unwrap()
            .contains("exporter tunnel events")
    );
    assert_eq!(entry(&m, "main-db")["status"], "ok");
    let out = run(fake.exporter(cwd.path(), None).args(["verify", s(&dir)]));
    out.expect_code(0);
    // The skipped database is reported as such, never counted as a verified archive.
    let archives = m["databases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "ok")
        .count();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("skipped events: not exported")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "all {archives} archive(s) verified at level decompress; 1 database(s) skipped at dump time, not exported"
        )),
        "{}",
        out.stdout
    );
    let record = read_json(&dir.join("verify.json"));
    let events = record["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "events")
        .unwrap();
    assert_eq!(events["skipped"], true, "{record:#}");
    fake.assert_no_secret_in_files(&dir);
}

#[test]
fn list_pages_through_more_databases_than_one_page() {
    let mut seed = default_seed();
    let mut dbs = Vec::new();
    for i in 0..105u64 {
        dbs.push(json!({
            "id": 1000 + i, "account": 42, "handle": format!("db-{i:03}"), "type": "postgresql",
            "image": 5, "backing": false,
            "credentials": [{"id": 5000 + i, "type": "postgresql", "default": true, "password": format!("pw-{i}-Page-Secret")}]
        }));
    }
    seed["databases"] = Value::Array(dbs);
    seed["backups"] = json!([]);
    let fake = Fake::start(&seed, false);
    let token = fake.token_expiring(3600);
    let cwd = tempdir();
    let out = run(fake.exporter(cwd.path(), Some(&token)).args([
        "list",
        "--environment",
        "prod",
        "--json",
    ]));
    out.expect_code(0);
    let listed: Value = serde_json::from_str(&out.stdout).unwrap();
    let handles: Vec<String> = listed["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["handle"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(handles.len(), 105);
    assert_eq!(handles[0], "db-000");
    assert_eq!(handles[104], "db-104");
    assert!(listed["databases"][7]["action"] == "live", "{listed:#}");
    let log = fake.assert_clean_log(0);
    assert!(
        log.iter()
            .any(|r| r["path"] == "/accounts/42/databases" && r["query"]["page"] == "2"),
        "the second page was read: {log:#?}"
    );
    assert!(!out.all_output().contains("Page-Secret"));
}

#[test]
fn token_file_expired_token_and_two_factor_login() {
    let fake = Fake::start(&seed_with(&[100], &[]), false);
    let cwd = tempdir();
    let dir = fake.config_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = dir.join("tokens.json");
    std::fs::write(&tokens, "{\"https://other.example\": \"other-token\"}\n").unwrap();

    // No token at all: exit 3 and the hint.
    let out = run(fake
        .exporter(cwd.path(), None)
        .args(["list", "--environment", "prod"]));
    out.expect_code(3)
        .stderr_contains("hint: run exporter login");

    // A two-factor account: without a code and without a terminal, a clean refusal; with a
    // wrong code, a "no"; with the code, the token file.
    let login = |otp: Option<&str>| {
        let mut cmd = fake.exporter(cwd.path(), None);
        cmd.args(["login", "--email", "twofa@example.com"])
            .env("APTIBLE_PASSWORD", "twofa-Login-Pass-9043");
        if let Some(code) = otp {
            cmd.args(["--otp-token", code]);
        }
        run(&mut cmd)
    };
    login(None).expect_code(2).stderr_contains("one-time code");
    login(Some("000000")).expect_code(1).expect_error_line();
    let ok = login(Some("424242"));
    ok.expect_code(0)
        .stderr_contains("logged in as twofa@example.com (with a one-time code)");
    let written: Value = read_json(&tokens);
    assert_eq!(
        written["https://other.example"], "other-token",
        "other keys kept"
    );
    let token = written[fake.auth.as_str()].as_str().unwrap().to_owned();
    fake.remember_token(&token);
    let mode = std::fs::metadata(&tokens).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    fake.assert_no_secret("login output", &ok.all_output());

    // The token file is used when APTIBLE_ACCESS_TOKEN is not set.
    let out = run(fake
        .exporter(cwd.path(), None)
        .args(["list", "--environment", "prod"]));
    out.expect_code(0);
    assert!(out.stdout.contains("main-db"), "{}", out.stdout);

    // An expired token: exit 3 with the hint, the token never shown.
    let expired = fake.token_expiring(-60);
    let out = run(fake.exporter(cwd.path(), Some(&expired)).args([
        "dump",
        "--all",
        "--environment",
        "prod",
        "--to",
        "out",
    ]));
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains("hint: run exporter login");
    fake.assert_no_secret("expired token output", &out.all_output());
    let log = fake.assert_clean_log(0);
    assert!(
        log.iter().any(|r| r["server"] == "auth"
            && r["path"] == "/tokens"
            && (r["status"] == 201 || r["status"] == 200)),
        "{log:#?}"
    );
}

#[test]
fn a_tunnel_that_does_not_come_up_fails_that_database_and_the_others_go_on() {
    let fake = Fake::start(&seed_with(&[100, 110], &[100, 110]), true);
    let token = fake.token_expiring(3600);
    fake.post("/fail/portal", json!({"count": 1}));
    let cwd = tempdir();
    // `--no-check`: the check before the dump would stop it at the first failed tunnel.
    let out = dump_all(&fake, cwd.path(), &token, &["--jobs", "1", "--no-check"]);
    out.expect_code(3)
        .stderr_contains("main-db: FAILED:")
        .stderr_contains("Tunnel did not come up");
    let m = manifest(&run_dir(cwd.path(), &out));
    assert_eq!(m["status"], "partial");
    let main = entry(&m, "main-db");
    assert_eq!(main["status"], "failed");
    assert!(
        main["error"]
            .as_str()
            .unwrap()
            .contains("Tunnel did not come up")
    );
    assert_eq!(main["platform"]["handle"], "main-db");
    assert_eq!(entry(&m, "shop-mysql")["status"], "ok");
    fake.assert_no_secret("dump output", &out.all_output());
    fake.assert_clean_log(0);
    assert_eq!(fake.ssh_clients(), 0, "every tunnel was stopped");
}

#[test]
fn a_tunnel_killed_mid_dump_fails_that_database_and_the_others_complete() {
    let mut seed = seed_with(&[100, 110, 120], &[100, 110, 120]);
    // Enough rows that the dump is still streaming when the portal session is killed.
    seed["databases"][0]["seed"] = json!(
        "CREATE TABLE customers (id integer PRIMARY KEY, name text NOT NULL); \
         INSERT INTO customers SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 300000) g;"
    );
    let fake = Fake::start(&seed, true);
    let token = fake.token_expiring(3600);
    let cwd = tempdir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_exporter"))
        .current_dir(cwd.path())
        .args([
            "dump",
            "--all",
            "--environment",
            "prod",
            "--to",
            "out",
            "--jobs",
            "1",
        ])
        .env("NO_COLOR", "1")
        .env("APTIBLE_API_ROOT_URL", &fake.api)
        .env("APTIBLE_AUTH_ROOT_URL", &fake.auth)
        .env("APTIBLE_ACCESS_TOKEN", &token)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn exporter");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    // Kill the portal's session as soon as main-db's dump has started streaming.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("main-db's dump did not start");
        if line.starts_with("  main-db: dumping") {
            std::thread::sleep(Duration::from_millis(150));
            fake.post("/portal/kill", json!({}));
            break;
        }
    }
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let status = child.wait().unwrap();
    let out = Outcome {
        code: status.code().expect("an exit code"),
        stdout,
        stderr: reader.join().unwrap(),
        command: "exporter dump --all".to_owned(),
    };
    out.expect_code(3);
    let m = manifest(&run_dir(cwd.path(), &out));
    assert_eq!(m["status"], "partial");
    let main = entry(&m, "main-db");
    assert_eq!(main["status"], "failed");
    assert!(
        main["error"]
            .as_str()
            .unwrap()
            .contains("the tunnel to main-db ended"),
        "{main:#}"
    );
    assert_eq!(entry(&m, "cache")["status"], "ok");
    assert_eq!(entry(&m, "shop-mysql")["status"], "ok");
    assert!(
        !cwd.path()
            .join(out.last_stdout_line())
            .join("main-db.sql.zst")
            .exists()
    );
    fake.assert_no_secret("dump output", &out.all_output());
}

#[test]
fn exporter_tunnel_holds_a_tunnel_for_any_database_type_until_ctrl_c() {
    let fake = Fake::start(&seed_with(&[100, 130], &[100]), true);
    let token = fake.token_expiring(3600);
    let cwd = tempdir();
    let spawn = |args: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_exporter"))
            .current_dir(cwd.path())
            .args(["tunnel", "--environment", "prod"])
            .args(args)
            .env("NO_COLOR", "1")
            .env("APTIBLE_API_ROOT_URL", &fake.api)
            .env("APTIBLE_AUTH_ROOT_URL", &fake.auth)
            .env("APTIBLE_ACCESS_TOKEN", &token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn exporter tunnel");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut head = Vec::new();
        for _ in 0..6 {
            head.push(lines.next().expect("a line").expect("UTF-8"));
        }
        (child, head)
    };
    let interrupt = |mut child: std::process::Child, what: &str| {
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what} ignored SIGINT"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        Outcome {
            code: status.code().expect("an exit code, not a signal"),
            stdout: String::new(),
            stderr,
            command: what.to_owned(),
        }
    };

    // A MongoDB database this tool cannot dump: the URL without its password.
    let (child, head) = spawn(&["events"]);
    assert!(
        head[0].starts_with("mongodb://aptible:****@localhost.aptible.in:"),
        "{head:?}"
    );
    assert_eq!(head[4], "Password: ****");
    let out = interrupt(child, "exporter tunnel events");
    out.expect_code(0)
        .stderr_contains("closed the tunnel to events");

    // PostgreSQL with --show-password: a real query through the printed port.
    let (child, head) = spawn(&["main-db", "--show-password"]);
    assert!(head[0].contains(":pg-Seed-Pass-7731@"), "{head:?}");
    let port: u16 = head[2].strip_prefix("Port: ").unwrap().parse().unwrap();
    let backing = fake.backing(100);
    let q = Command::new("psql")
        .args(["-X", "-At", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", backing["user"].as_str().unwrap()])
        .args(["-d", backing["dbname"].as_str().unwrap()])
        .args(["-c", "SELECT count(*) FROM customers"])
        .env("PGPASSWORD", "pg-Seed-Pass-7731")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&q.stdout).trim(), "3", "{q:?}");
    let out = interrupt(child, "exporter tunnel main-db");
    out.expect_code(0);
    assert_eq!(fake.ssh_clients(), 0, "ssh was stopped");

    // SIGKILL runs no code of ours: the parent-death signal still stops ssh, so no forward
    // outlives the process (a SIGKILL'd dump must not leave a tunnel listening).
    let (mut child, head) = spawn(&["main-db"]);
    let port: u16 = head[2].strip_prefix("Port: ").unwrap().parse().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(fake.ssh_clients(), 0, "ssh outlived a SIGKILL'd exporter");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still forwards after exporter was killed"
    );
    fake.assert_clean_log(0);
}
