//! `exporter teardown` against the fake platform (issue 14), with its request log asserted:
//! the plan and every refusal send no destructive request; a full apply removes everything in
//! the cancellation guide's order; a failure at the apps step stops there and a re-run
//! finishes without repeating the drains; the evidence report names every database, archive,
//! verification and operation. Covering runs are made with the real `dump --all` and `verify
//! --level restore` through the fake's sshd into the local PostgreSQL.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::fake::{Fake, seed_with};
use crate::support::{Outcome, PG_HOST, PG_PORT, read_json, run, s, tempdir};

/// The environment: a PostgreSQL primary with a replica, a MongoDB database (not exportable),
/// a deleted database with an orphaned backup (backed by a real database, so that backup can be
/// restored and dumped), automatic, manual and copied backups (558 is a
/// copy of the manual 556, so it outlives the database), an app with an endpoint, two log
/// drains (one `tail`) and a metric drain.
fn seed() -> Value {
    let mut seed = seed_with(&[100, 101, 130, 140], &[100, 140]);
    seed["backups"].as_array_mut().unwrap().push(json!({
        "id": 558, "database": 100, "created_at": "2026-02-04T10:00:00.000Z", "manual": true,
        "size": 10, "copied_from": 556, "aws_region": "us-east-2"
    }));
    seed
}

fn teardown(fake: &Fake, cwd: &Path, token: &str, extra: &[&str]) -> Outcome {
    run(fake
        .exporter(cwd, Some(token))
        .args(["teardown", "--environment", "prod", "--to", "out"])
        .args(extra))
}

/// `dump --all --skip-unsupported --include-orphaned-backups` of prod into `out`: the run
/// directory (old-db, deleted, is dumped from its orphaned backup).
fn dump(fake: &Fake, cwd: &Path, token: &str) -> PathBuf {
    let out = run(fake.exporter(cwd, Some(token)).args([
        "dump",
        "--all",
        "--environment",
        "prod",
        "--to",
        "out",
        "--skip-unsupported",
        "--include-orphaned-backups",
    ]));
    out.expect_code(0);
    let dir = cwd.join(out.last_stdout_line());
    assert!(dir.join("manifest.json").is_file(), "{out:?}");
    // The dump's only destructive request: deprovisioning the database it restored old-db's
    // backup into (recorded in the manifest). The log is then cleared, so that what follows
    // is the teardown's alone; every check before this point was made by its caller.
    let restored = read_json(&dir.join("manifest.json"))["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "old-db")
        .expect("old-db dumped from its orphaned backup")["platform"]["restored_into"]["id"]
        .as_u64()
        .unwrap();
    let log = fake.assert_clean_log(1);
    assert_eq!(
        destructive(&log),
        [format!("POST /databases/{restored}/operations")]
    );
    fake.clear_requests();
    dir
}

/// The scratch database's name derives from the run id (a timestamp to the second) and the
/// database's name: two of these tests dumping in the same second would collide on it, so
/// their verifications take turns.
static VERIFY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn verify(fake: &Fake, cwd: &Path, dir: &Path, level: &str) -> Outcome {
    let _turn = VERIFY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let scratch = format!("postgres://postgres@{PG_HOST}:{PG_PORT}/postgres");
    let mut args = vec!["verify", s(dir), "--level", level];
    if level == "restore" {
        args.extend(["--scratch", &scratch]);
    }
    run(fake.exporter(cwd, None).args(&args))
}

fn destructive(log: &[Value]) -> Vec<String> {
    log.iter()
        .filter(|r| r["destructive"] == true)
        .map(|r| {
            format!(
                "{} {}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .collect()
}

fn md_has_op(dir: &Path, id: u64) -> bool {
    std::fs::read_to_string(dir.join("teardown-report.md"))
        .unwrap()
        .contains(&format!("| #{id} | **failed**"))
}

#[track_caller]
fn refused(out: &Outcome, reason: &str) {
    out.expect_code(1)
        .expect_error_line()
        .stderr_contains("teardown of prod refused")
        .stderr_contains(reason);
}

#[test]
fn the_plan_and_every_refusal_send_no_destructive_request() {
    let fake = Fake::start(&seed(), true);
    let token = fake.token_expiring(3600);
    let cwd = tempdir();
    let cwd = cwd.path();
    let accept = ["--accept-unexported", "events"];
    let apply = [
        "--apply",
        "--confirm",
        "prod",
        "--accept-unexported",
        "events",
    ];

    // No archive at all: the plan says what is missing, --apply refuses.
    let plan = teardown(&fake, cwd, &token, &[]);
    plan.expect_code(0);
    for needle in [
        "teardown of environment prod (#42): each database needs an archive under out verified at level restore and at most 24h old",
        "metric drain datadog (#80, datadog): POST /metric_drains/80/operations {\"type\":\"deprovision\"}",
        "log drain tail-1 (#71, tail): POST /log_drains/71/operations",
        "app web (#10): POST /apps/10/operations",
        "endpoint #60 elb-web-60.aptible.in goes with it",
        "backup #590 (automatic, orphaned, of old-db",
        "environment prod (#42): DELETE /accounts/42",
        "missing before --apply:",
        "  - main-db: no archive in any run under out",
        "  - events: a mongodb database, which this tool cannot export",
        "  - old-db: deleted; its 1 backup(s) would be purged with no verified archive of them: dump them with `exporter dump --all --include-orphaned-backups`",
    ] {
        assert!(
            plan.stdout.contains(needle),
            "{needle:?} not in:\n{}",
            plan.stdout
        );
    }
    refused(
        &teardown(&fake, cwd, &token, &apply),
        "main-db: no archive in any run under out",
    );

    // Verified only at level decompress: refused by default, accepted by an explicit and
    // stated downgrade.
    let dir = dump(&fake, cwd, &token);
    let run_id = dir.file_name().unwrap().to_str().unwrap().to_owned();
    verify(&fake, cwd, &dir, "decompress").expect_code(0);
    refused(
        &teardown(&fake, cwd, &token, &apply),
        &format!(
            "main-db: archive {run_id}/main-db.sql.zst was verified only at level decompress; the gate requires level restore"
        ),
    );
    let plan = teardown(
        &fake,
        cwd,
        &token,
        &[
            "--require-level",
            "decompress",
            "--accept-unexported",
            "events",
        ],
    );
    plan.expect_code(0);
    assert!(
        plan.stdout
            .contains("DOWNGRADE: --require-level decompress"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains(
            " teardown --environment prod --to out --apply --confirm prod` runs these steps"
        ),
        "{}",
        plan.stdout
    );

    // A failed verification.
    let archive = dir.join("main-db.sql.zst");
    let good = std::fs::read(&archive).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&archive, &bad).unwrap();
    verify(&fake, cwd, &dir, "decompress").expect_code(1);
    refused(
        &teardown(
            &fake,
            cwd,
            &token,
            &[&apply[..], &["--require-level", "decompress"]].concat(),
        ),
        &format!(
            "main-db: archive {run_id}/main-db.sql.zst failed its verification at level decompress"
        ),
    );
    std::fs::write(&archive, &good).unwrap();

    // Proven at level restore: what remains is the unexported MongoDB database...
    verify(&fake, cwd, &dir, "restore").expect_code(0);
    refused(
        &teardown(&fake, cwd, &token, &["--apply", "--confirm", "prod"]),
        "events: a mongodb database, which this tool cannot export: export it with its own tools (`exporter tunnel events`), then accept its loss here with --accept-unexported events",
    );
    // ... and with it accepted the plan is ready.
    let plan = teardown(&fake, cwd, &token, &[&accept[..], &["--json"]].concat());
    plan.expect_code(0);
    let p: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(p["missing"], json!([]));
    assert_eq!(p["required_level"], "restore");
    assert_eq!(p["downgraded"], false);
    assert_eq!(p["journal_run"], run_id.as_str());
    let cov = p["coverage"]["databases"].as_array().unwrap();
    let by = |h: &str| cov.iter().find(|d| d["handle"] == h).unwrap().clone();
    let main = by("main-db");
    assert_eq!(main["coverage"], "covered");
    assert_eq!(main["archive"]["file"], "main-db.sql.zst");
    assert_eq!(main["archive"]["run_id"], run_id.as_str());
    let manifest = read_json(&dir.join("manifest.json"));
    assert_eq!(
        main["archive"]["sha256"],
        manifest["databases"][0]["sha256"]
    );
    assert_eq!(main["archive"]["verification"]["level"], "restore");
    assert_eq!(
        main["archive"]["tables"],
        json!([{"name": "public.customers", "rows": 3}])
    );
    assert_eq!(by("main-db-replica")["coverage"], "covered_by_primary");
    // The deleted database's orphaned backup is purged only because an archive of it covers.
    let old = by("old-db");
    assert_eq!(old["coverage"], "covered", "{old:#}");
    assert_eq!(old["archive"]["origin"], "backup", "{old:#}");
    assert_eq!(by("events")["coverage"], "accepted_unexported");
    let keys: Vec<&str> = p["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys[..7],
        [
            "metric_drain:80",
            "log_drain:70",
            "log_drain:71",
            "app:10",
            "database:101",
            "database:130",
            "database:100"
        ]
    );
    assert_eq!(keys.last(), Some(&"environment:42"));

    // No terminal to type the handle on, and no --confirm: a usage error.
    let out = teardown(
        &fake,
        cwd,
        &token,
        &["--apply", "--accept-unexported", "events"],
    );
    out.expect_code(2)
        .stderr_contains("no terminal to ask on")
        .stderr_contains("hint: pass --confirm HANDLE");
    // A wrong confirmation.
    let out = teardown(
        &fake,
        cwd,
        &token,
        &[
            "--apply",
            "--confirm",
            "staging",
            "--accept-unexported",
            "events",
        ],
    );
    out.expect_code(1).stderr_contains(
        "teardown of prod refused: the confirmation \"staging\" is not the environment's handle",
    );
    // A stale archive.
    refused(
        &teardown(
            &fake,
            cwd,
            &token,
            &[&apply[..], &["--max-age", "1s"]].concat(),
        ),
        "old, older than --max-age 1s",
    );
    // A manifest changed in storage after its verification.
    let manifest_path = dir.join("manifest.json");
    let original = std::fs::read(&manifest_path).unwrap();
    std::fs::write(&manifest_path, [&original[..], b"\n"].concat()).unwrap();
    refused(
        &teardown(&fake, cwd, &token, &apply),
        &format!("main-db: manifest.json of run {run_id} changed after its verification"),
    );
    std::fs::write(&manifest_path, &original).unwrap();
    // An archive damaged or deleted after its verification: the gate reads every covering
    // archive again (length and SHA-256) before anything is sent.
    std::fs::write(&archive, [&good[..], b"x"].concat()).unwrap();
    refused(
        &teardown(&fake, cwd, &token, &apply),
        "main-db: archive main-db.sql.zst is corrupt: length",
    );
    std::fs::remove_file(&archive).unwrap();
    refused(
        &teardown(&fake, cwd, &token, &apply),
        "main-db: archive main-db.sql.zst is listed in the manifest but missing from storage",
    );
    std::fs::write(&archive, &good).unwrap();
    // A database whose handle only looks like one this tool restored needs its own archive.
    fake.post(
        "/databases",
        json!({"id": 160, "account": 42, "handle": "payroll-at-2026-01-01-00-00-00-exporter", "type": "postgresql", "image": 5}),
    );
    refused(
        &teardown(&fake, cwd, &token, &apply),
        "payroll-at-2026-01-01-00-00-00-exporter: no archive",
    );
    // A database created after the dump.
    fake.post(
        "/databases",
        json!({"id": 150, "account": 42, "handle": "late-db", "type": "postgresql", "image": 5}),
    );
    refused(
        &teardown(&fake, cwd, &token, &apply),
        "late-db: no archive: created ",
    );
    teardown(&fake, cwd, &token, &apply).stderr_contains(&format!("after the newest run {run_id}"));

    // Nothing destructive, nothing the spec does not describe, no secret anywhere.
    let log = fake.assert_clean_log(0);
    assert!(destructive(&log).is_empty());
    assert!(
        !dir.join("teardown-journal.json").exists(),
        "a refusal writes no journal"
    );
    fake.assert_no_secret_in_files(&dir);
}

#[test]
fn apply_stops_at_a_failed_app_resumes_without_repeating_and_reports_everything() {
    let fake = Fake::start(&seed(), true);
    let token = fake.token_expiring(3600);
    let cwd = tempdir();
    let cwd = cwd.path();
    let dir = dump(&fake, cwd, &token);
    verify(&fake, cwd, &dir, "restore").expect_code(0);
    let apply = [
        "--apply",
        "--confirm",
        "prod",
        "--accept-unexported",
        "events",
    ];

    // The app's deprovision fails: everything before it is done, nothing after it is sent.
    fake.post(
        "/fail/operation",
        json!({"type": "deprovision", "resource": "apps/10"}),
    );
    let first = teardown(&fake, cwd, &token, &apply);
    first
        .expect_code(3)
        .expect_error_line()
        .stderr_contains("teardown of prod stopped at app web (#10) (POST /apps/10/operations {\"type\":\"deprovision\"})")
        .stderr_contains("(deprovision) failed.")
        .stderr_contains("run `exporter teardown --apply` again to resume");
    let log = fake.requests();
    assert_eq!(
        destructive(&log),
        [
            "POST /metric_drains/80/operations",
            "POST /log_drains/70/operations",
            "POST /log_drains/71/operations",
            "POST /apps/10/operations",
        ]
    );
    let stopped = read_json(&dir.join("teardown-report.json"));
    assert_eq!(stopped["status"], "stopped");
    assert!(
        stopped["stopped_at"]
            .as_str()
            .unwrap()
            .contains("app web (#10)")
    );
    let journal = read_json(&dir.join("teardown-journal.json"));
    let states: Vec<(&str, &str)> = journal["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("metric_drain:80", "gone"),
            ("log_drain:70", "gone"),
            ("log_drain:71", "gone"),
            ("app:10", "failed")
        ]
    );

    // The re-run re-checks the gate, resumes at the app and finishes.
    let second = teardown(&fake, cwd, &token, &apply);
    second.expect_code(0);
    assert!(
        second
            .stderr
            .contains("resuming the teardown journalled in run"),
        "{}",
        second.stderr
    );
    let run_id = dir.file_name().unwrap().to_str().unwrap();
    assert!(
        second
            .last_stdout_line()
            .ends_with(&format!("{run_id}/teardown-report.md")),
        "{}",
        second.stdout
    );
    let log = fake.requests();
    let all = destructive(&log);
    let again = &all[4..];
    assert!(
        again.iter().all(|r| !r.contains("drains")),
        "drains repeated: {again:?}"
    );
    // Apps, databases (the replica before its primary), backups, the environment last.
    assert_eq!(
        again[..4],
        [
            "POST /apps/10/operations",
            "POST /databases/101/operations",
            "POST /databases/130/operations",
            "POST /databases/100/operations",
        ]
    );
    assert_eq!(
        again.last().map(String::as_str),
        Some("DELETE /accounts/42")
    );
    let purges: Vec<&str> = again[4..again.len() - 1]
        .iter()
        .map(String::as_str)
        .collect();
    assert!(
        purges.iter().all(|p| p.starts_with("POST /backups/")),
        "{purges:?}"
    );
    // Three final backups (one per deprovisioned database), the final backup of the database
    // the dump restored old-db's backup into, the manual 556, the orphaned 590, then the copy
    // 558 (already gone with 556: its purge answers 404, which is done).
    assert_eq!(purges.len(), 7, "{purges:?}");
    assert!(purges.contains(&"POST /backups/556/operations"));
    assert!(purges.contains(&"POST /backups/590/operations"));
    assert_eq!(purges.last(), Some(&"POST /backups/558/operations"));
    let purge_558 = log
        .iter()
        .find(|r| r["path"] == "/backups/558/operations")
        .unwrap();
    assert_eq!(purge_558["status"], 404);
    fake.assert_clean_log(all.len());
    // The environment is gone: only staging is left.
    let list = run(fake
        .exporter(cwd, Some(&token))
        .args(["list", "--environment", "prod"]));
    list.expect_code(3)
        .stderr_contains("environment prod: not found (visible: staging)");

    // The evidence report names every database, archive, verification and operation.
    let report = read_json(&dir.join("teardown-report.json"));
    assert_eq!(report["status"], "finished");
    assert_eq!(report["environment"], "prod");
    assert_eq!(report["required_level"], "restore");
    assert_eq!(report["accepted_unexported"], json!(["events"]));
    let manifest = read_json(&dir.join("manifest.json"));
    let entry = &manifest["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "main-db")
        .unwrap()
        .clone();
    let dbs = report["databases"].as_array().unwrap();
    let handles: Vec<&str> = dbs.iter().map(|d| d["handle"].as_str().unwrap()).collect();
    assert_eq!(
        handles,
        [
            "events",
            "main-db",
            "main-db-replica",
            "old-db",
            "old-db-at-2025-06-01-00-00-00-exporter"
        ]
    );
    let main = &dbs[1];
    assert_eq!(main["archive"]["sha256"], entry["sha256"]);
    assert_eq!(
        main["archive"]["compressed_bytes"],
        entry["compressed_bytes"]
    );
    assert_eq!(main["archive"]["origin"], "live");
    assert_eq!(main["archive"]["consistency"], "snapshot");
    assert_eq!(main["archive"]["verification"]["level"], "restore");
    assert_eq!(main["archive"]["verification"]["rows_compared"], 3);
    let steps = report["steps"].as_array().unwrap();
    // One record per resource; the app's was sent twice (once per --apply).
    assert_eq!(steps.len(), all.len() - 1);
    for step in steps {
        let state = step["state"].as_str().unwrap();
        assert!(state == "succeeded" || state == "gone", "{step:#}");
        assert!(step["finished_at"].is_string(), "{step:#}");
        if step["kind"] != "environment" && step["key"] != "backup:558" {
            assert!(step["operation_id"].is_u64(), "{step:#}");
        }
    }
    let app = steps.iter().find(|s| s["key"] == "app:10").unwrap();
    assert_eq!(app["attempts"], 2);
    assert_eq!(app["earlier"][0]["state"], "failed");
    let failed_op = app["earlier"][0]["operation_id"].as_u64().unwrap();
    assert!(
        md_has_op(&dir, failed_op),
        "the failed operation #{failed_op} is in the report"
    );
    let listing = &report["final_listing"];
    assert_eq!(listing["environment_listed_after"], false);
    assert_eq!(listing["before_deletion"]["databases"], json!([]));
    assert_eq!(listing["before_deletion"]["backups"], json!([]));
    assert_eq!(listing["environments_visible"], json!(["staging"]));
    assert!(
        report["remaining_manual_action"][0]
            .as_str()
            .unwrap()
            .contains("organization's name and a reason")
    );

    let md = std::fs::read_to_string(dir.join("teardown-report.md")).unwrap();
    for needle in [
        "# Teardown of environment prod (#42)",
        "Status: **finished**",
        "### main-db (#100, postgresql)",
        "main-db.sql.zst",
        entry["sha256"].as_str().unwrap(),
        "- Verified: level restore at ",
        "| public.customers | 3 |",
        "### main-db-replica (#101, postgresql)",
        "A replica: its primary main-db's archive covers it.",
        "**Not exported: its loss was accepted** (--accept-unexported events).",
        "metric drain datadog (#80, datadog)",
        "log drain tail-1 (#71, tail)",
        "`DELETE /accounts/42`",
        "environment prod no longer listed",
        "estimated-costs page",
    ] {
        assert!(md.contains(needle), "{needle:?} not in:\n{md}");
    }
    for step in steps {
        if let Some(id) = step["operation_id"].as_u64() {
            assert!(
                md.contains(&format!("#{id}")),
                "operation #{id} not in the report"
            );
        }
    }
    for out in [&first, &second] {
        fake.assert_no_secret("teardown output", &out.all_output());
    }
    fake.assert_no_secret_in_files(&dir);
    // The run still verifies: the teardown's records are not foreign files.
    verify(&fake, cwd, &dir, "decompress").expect_code(0);
}

const APPLY: [&str; 5] = [
    "--apply",
    "--confirm",
    "prod",
    "--accept-unexported",
    "events",
];

/// `--apply` as a child process (to be killed), with the same environment as
/// [`Fake::exporter`].
fn spawn_apply(fake: &Fake, cwd: &Path, token: &str) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_exporter"))
        .current_dir(cwd)
        .args(["teardown", "--environment", "prod", "--to", "out"])
        .args(APPLY)
        .env("NO_COLOR", "1")
        .env("APTIBLE_API_ROOT_URL", &fake.api)
        .env("APTIBLE_AUTH_ROOT_URL", &fake.auth)
        .env("APTIBLE_CONFIG_PATH", fake.config_dir())
        .env("APTIBLE_ACCESS_TOKEN", token)
        .env_remove("HOME")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn exporter teardown")
}

#[track_caller]
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The journalled operation id of step `key`, once the journal holds one.
fn journalled_operation(dir: &Path, key: &str) -> Option<u64> {
    let bytes = std::fs::read(dir.join("teardown-journal.json")).ok()?;
    let j: Value = serde_json::from_slice(&bytes).ok()?;
    j["steps"].as_array()?.iter().find(|s| s["key"] == key)?["operation_id"].as_u64()
}

/// SIGKILL the apply once step `key` has its operation id journalled (its operation is
/// running: the exporter waits a second before its first poll): no code of ours runs after.
fn kill_when_sent(mut child: std::process::Child, dir: &Path, key: &str) -> u64 {
    wait_until(&format!("{key} journalled with its operation"), || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the apply ended before {key} was sent"
        );
        journalled_operation(dir, key).is_some()
    });
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    child.wait().unwrap();
    journalled_operation(dir, key).unwrap()
}

fn step_of<'a>(doc: &'a Value, key: &str) -> &'a Value {
    doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no step {key} in {doc:#}"))
}

fn count(log: &[String], request: &str) -> usize {
    log.iter().filter(|r| *r == request).count()
}

/// Adversarial report, case 4: a failed *poll* (GET /operations/N answering 500 after the
/// deprovision was accepted) is not the platform's verdict. The step stays `sent` with its
/// operation id, the apply stops naming it (exit 3), and the re-run follows that operation
/// (gone after the deprovision: done) instead of sending the request again.
#[test]
fn td04_a_failed_poll_keeps_the_step_sent_and_the_resume_follows_its_operation() {
    let fake = Fake::start(&seed(), true);
    let token = fake.token_expiring(3600);
    let cwd = tempdir();
    let cwd = cwd.path();
    let dir = dump(&fake, cwd, &token);
    verify(&fake, cwd, &dir, "restore").expect_code(0);

    let mut cmd = fake.exporter(cwd, Some(&token));
    cmd.args(["teardown", "--environment", "prod", "--to", "out"])
        .args(APPLY);
    let first = std::thread::scope(|scope| {
        let apply = scope.spawn(move || run(&mut cmd));
        // While the app's operation runs (the first poll comes a second after the request).
        wait_until("the app's deprovision", || {
            destructive(&fake.requests()).contains(&"POST /apps/10/operations".to_owned())
        });
        fake.post(
            "/fail/http",
            json!({"method": "GET", "path_prefix": "/operations/", "status": 500, "count": 6}),
        );
        apply.join().unwrap()
    });
    let journal = read_json(&dir.join("teardown-journal.json"));
    let app = step_of(&journal, "app:10");
    let op = app["operation_id"]
        .as_u64()
        .expect("the operation id is journalled");
    first
        .expect_code(3)
        .expect_error_line()
        .stderr_contains(&format!(
            "teardown of prod stopped at app web (#10) (POST /apps/10/operations {{\"type\":\"deprovision\"}}): operation #{op} was accepted, but its outcome is unknown"
        ))
        .stderr_contains(&format!(
            "run `exporter teardown --apply` again to follow operation #{op} and resume"
        ));
    assert_eq!(app["state"], "sent", "{app:#}");
    assert_eq!(app["error"], Value::Null, "{app:#}");
    assert!(
        app["poll_error"]
            .as_str()
            .unwrap()
            .contains(&format!("GET /operations/{op}: Injected failure")),
        "{app:#}"
    );
    assert_eq!(
        destructive(&fake.requests()),
        [
            "POST /metric_drains/80/operations",
            "POST /log_drains/70/operations",
            "POST /log_drains/71/operations",
            "POST /apps/10/operations",
        ]
    );
    let stopped = read_json(&dir.join("teardown-report.json"));
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(step_of(&stopped, "app:10")["state"], "sent");
    let md = std::fs::read_to_string(dir.join("teardown-report.md")).unwrap();
    assert!(
        md.contains(&format!(
            "| #{op} | sent, outcome unknown (following its operation failed:"
        )),
        "{md}"
    );

    // The re-run follows operation #op (the app is gone: 404 after a deprovision is done)
    // and never sends the app's request again.
    fake.clear_requests();
    let second = teardown(&fake, cwd, &token, &APPLY);
    second.expect_code(0).stderr_contains(&format!(
        "app web (#10): following operation #{op} of an earlier --apply"
    ));
    let log = fake.requests();
    let sent = destructive(&log);
    assert_eq!(count(&sent, "POST /apps/10/operations"), 0, "{sent:?}");
    assert_eq!(sent[0], "POST /databases/101/operations", "{sent:?}");
    let polled = log
        .iter()
        .position(|r| r["method"] == "GET" && r["path"] == format!("/operations/{op}"))
        .expect("the journalled operation is followed");
    let first_destructive = log.iter().position(|r| r["destructive"] == true).unwrap();
    assert!(
        polled < first_destructive,
        "followed before anything is sent"
    );

    let journal = read_json(&dir.join("teardown-journal.json"));
    let app = step_of(&journal, "app:10");
    assert_eq!(
        (&app["state"], &app["attempts"], &app["operation_id"]),
        (&json!("gone"), &json!(1), &json!(op)),
        "{app:#}"
    );
    assert_eq!(app.get("earlier"), None, "{app:#}");
    assert_eq!(app.get("poll_error"), None, "{app:#}");
    let report = read_json(&dir.join("teardown-report.json"));
    assert_eq!(report["status"], "finished");
    for step in report["steps"].as_array().unwrap() {
        let state = step["state"].as_str().unwrap();
        assert!(state == "succeeded" || state == "gone", "{step:#}");
    }
    let outcomes: Vec<&str> = report["applies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes.len(), 2);
    assert!(
        outcomes[0].starts_with("stopped: teardown of prod stopped at app web (#10)"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[1], "finished");
    let md = std::fs::read_to_string(dir.join("teardown-report.md")).unwrap();
    assert!(!md.contains("**failed**"), "{md}");
    assert!(!md.contains("outcome unknown"), "{md}");
    fake.assert_no_secret("teardown output", &first.all_output());
    fake.assert_no_secret_in_files(&dir);
}

/// Adversarial report, case 5: after a SIGKILL while an operation runs, the resume follows
/// that operation although its resource left the listing, and records the platform's
/// verdict (`failed` only when the operation failed); an apply that never recorded its end
/// is `interrupted` in the journal and the report.
#[test]
fn td05_after_a_kill_the_resume_follows_the_operation_of_an_unlisted_resource() {
    let fake = Fake::start(&seed(), true);
    let token = fake.token_expiring(3600);
    let cwd = tempdir();
    let cwd = cwd.path();
    let dir = dump(&fake, cwd, &token);
    verify(&fake, cwd, &dir, "restore").expect_code(0);

    // 1: killed while the app's (failing) deprovision runs.
    fake.post(
        "/fail/operation",
        json!({"type": "deprovision", "resource": "apps/10"}),
    );
    let app_op = kill_when_sent(spawn_apply(&fake, cwd, &token), &dir, "app:10");
    let journal = read_json(&dir.join("teardown-journal.json"));
    assert_eq!(journal["applies"][0]["outcome"], "running");

    // 2: the resume follows it and records the platform's verdict: failed. Nothing is sent.
    fake.clear_requests();
    let second = teardown(&fake, cwd, &token, &APPLY);
    second
        .expect_code(3)
        .stderr_contains("teardown of prod stopped at app web (#10)")
        .stderr_contains(&format!("Operation #{app_op} (deprovision) failed."));
    assert!(destructive(&fake.requests()).is_empty());
    let journal = read_json(&dir.join("teardown-journal.json"));
    assert_eq!(journal["applies"][0]["outcome"], "interrupted");
    let app = step_of(&journal, "app:10");
    assert_eq!(
        (&app["state"], &app["attempts"]),
        (&json!("failed"), &json!(1))
    );

    // 3: the app is sent again (the user ran --apply again); killed while the primary
    // database's deprovision runs.
    fake.clear_requests();
    let db_op = kill_when_sent(spawn_apply(&fake, cwd, &token), &dir, "database:100");
    assert_eq!(
        destructive(&fake.requests()),
        [
            "POST /apps/10/operations",
            "POST /databases/101/operations",
            "POST /databases/130/operations",
            "POST /databases/100/operations",
        ]
    );
    // Its operation ends, and the database leaves the listing.
    wait_until("main-db deprovisioned", || {
        fake.get("/backing")["100"]["deleted"] == true
    });

    // 4: the resume follows operation #db_op although main-db is no longer listed, then
    // finishes.
    fake.clear_requests();
    let fourth = teardown(&fake, cwd, &token, &APPLY);
    fourth.expect_code(0).stderr_contains(&format!(
        "database main-db (#100, postgresql): following operation #{db_op} of an earlier --apply"
    ));
    let log = fake.requests();
    let sent = destructive(&log);
    assert!(
        sent.iter().all(|r| !r.starts_with("POST /databases/")),
        "{sent:?}"
    );
    assert!(
        log.iter()
            .any(|r| r["method"] == "GET" && r["path"] == format!("/operations/{db_op}")),
        "operation #{db_op} is followed"
    );
    let journal = read_json(&dir.join("teardown-journal.json"));
    let db = step_of(&journal, "database:100");
    assert_eq!(
        (&db["state"], &db["operation_id"], &db["attempts"]),
        (&json!("gone"), &json!(db_op), &json!(1)),
        "{db:#}"
    );
    let report = read_json(&dir.join("teardown-report.json"));
    assert_eq!(report["status"], "finished");
    let outcomes: Vec<&str> = report["applies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
    assert_eq!(outcomes[0], "interrupted");
    assert!(
        outcomes[1].starts_with("stopped: teardown of prod stopped at app web (#10)"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[2..], ["interrupted", "finished"]);
    assert!(
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "succeeded" || s["state"] == "gone"),
        "{report:#}"
    );
    let app = step_of(&report, "app:10");
    assert_eq!(app["attempts"], 2);
    assert_eq!(app["earlier"][0]["operation_id"], app_op);
    assert_eq!(app["earlier"][0]["state"], "failed");
    let md = std::fs::read_to_string(dir.join("teardown-report.md")).unwrap();
    assert!(!md.contains("outcome unknown"), "{md}");
    assert!(md.contains(&format!("| #{db_op} | done (gone) |")), "{md}");
    assert!(md.contains("): interrupted"), "{md}");
}

/// Adversarial report, case 6: a journal that cannot be read stops the plan and the apply
/// (exit 3, naming it, nothing sent, the file left as it is); a deleted one lets the apply
/// proceed, but the report says no journal of earlier applies was found and what showed
/// the environment was already partly torn down.
#[test]
fn td06_a_corrupt_journal_is_an_error_and_a_missing_one_is_stated_in_the_report() {
    let fake = Fake::start(&seed(), true);
    let token = fake.token_expiring(3600);
    let cwd = tempdir();
    let cwd = cwd.path();
    let dir = dump(&fake, cwd, &token);
    verify(&fake, cwd, &dir, "restore").expect_code(0);
    let run_id = dir.file_name().unwrap().to_str().unwrap().to_owned();
    let journal_path = dir.join("teardown-journal.json");

    std::fs::write(&journal_path, b"{\"format\": \"exporter-teardown-jour").unwrap();
    for args in [&["--accept-unexported", "events"][..], &APPLY[..]] {
        teardown(&fake, cwd, &token, args)
            .expect_code(3)
            .expect_error_line()
            .stderr_contains(&format!(
                "cannot read the teardown journal out/{run_id}/teardown-journal.json: EOF while parsing"
            ))
            .stderr_contains("never replaced");
    }
    assert_eq!(
        std::fs::read(&journal_path).unwrap(),
        b"{\"format\": \"exporter-teardown-jour"
    );
    assert!(destructive(&fake.requests()).is_empty());
    std::fs::remove_file(&journal_path).unwrap();

    // Stopped at the first purge: drains, app and databases are gone. Then the journal is
    // lost.
    fake.post("/fail/operation", json!({"type": "purge"}));
    teardown(&fake, cwd, &token, &APPLY)
        .expect_code(3)
        .stderr_contains("stopped at backup #");
    std::fs::remove_file(&journal_path).unwrap();

    let plan = teardown(&fake, cwd, &token, &[]);
    plan.expect_code(0);
    let note = format!(
        "no teardown journal found, but the environment looks partly torn down already (database main-db (#100), archived in run {run_id}, is no longer listed"
    );
    assert!(
        plan.stdout.contains(&note),
        "{note:?} not in:\n{}",
        plan.stdout
    );
    // Without the journal nothing proves what the deprovisioned replica's final backup holds
    // (replicas have no archive of their own): the gate names it, and its loss must be
    // accepted explicitly.
    refused(
        &teardown(&fake, cwd, &token, &APPLY),
        "main-db-replica: deleted; its 1 backup(s) would be purged with no verified archive of them",
    );
    let last = teardown(
        &fake,
        cwd,
        &token,
        &[&APPLY[..], &["--accept-unexported", "main-db-replica"]].concat(),
    );
    last.expect_code(0);
    let report = read_json(&dir.join("teardown-report.json"));
    assert_eq!(report["status"], "finished");
    let signs = &report["begun_without_journal"]["signs"];
    assert!(
        signs.as_array().unwrap().contains(&json!(format!(
            "database main-db (#100), archived in run {run_id}, is no longer listed"
        ))),
        "{signs:#}"
    );
    assert_eq!(report["applies"].as_array().unwrap().len(), 1);
    let md = std::fs::read_to_string(dir.join("teardown-report.md")).unwrap();
    assert!(
        md.contains("**No journal of an earlier --apply was found** when this journal was begun"),
        "{md}"
    );
    assert!(md.contains("anything an earlier --apply removed is not listed here. The environment already looked partly torn down: database main-db (#100)"), "{md}");
}
