//! Rendered text pinned with insta (rustic pins its errors the same way): representative
//! errors, the `--help` of every command, and the verification report in its text and
//! `--json` forms. Paths, run ids, times, sizes and digests are filtered; `-q` keeps progress
//! lines out.
//!
//! After an intended change of wording: `cargo insta review` (or `INSTA_UPDATE=always cargo
//! test --test cli snapshots`) and commit the `.snap` files.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{exporter, run, sha256_bytes, tempdir, write_json, zstd_frame};

/// Snapshot stderr with the temp dir, run ids and times replaced.
fn assert_stderr_snapshot(name: &str, tmp: &Path, stderr: &str) {
    assert_filtered_snapshot(name, tmp, stderr);
}

/// Snapshot `text` with the temp dir, run ids, times and durations replaced.
pub(crate) fn assert_filtered_snapshot(name: &str, tmp: &Path, text: &str) {
    assert_filtered_snapshot_with(name, tmp, text, &[]);
}

/// [`assert_filtered_snapshot`] with more filters (regex, replacement), applied first.
fn assert_filtered_snapshot_with(name: &str, tmp: &Path, text: &str, filters: &[(&str, &str)]) {
    let mut settings = insta::Settings::clone_current();
    for (pattern, replacement) in filters {
        settings.add_filter(pattern, *replacement);
    }
    let canonical = tmp.canonicalize().unwrap_or_else(|_| tmp.to_path_buf());
    for path in [canonical.as_path(), tmp] {
        settings.add_filter(&regex_escape(&path.display().to_string()), "[TMP]");
    }
    settings.add_filter(r"\d{8}T\d{6}Z(-\d+)?", "[RUN_ID]");
    settings.add_filter(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
        "[TIME]",
    );
    settings.add_filter(r"\b\d+(\.\d+)?\s?(ms|s)\b", "[DURATION]");
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[SHA256]");
    settings.add_filter(r"\b\d+(\.\d)? (B|KiB|MiB)\b", "[SIZE]");
    settings.add_filter(r"\b\d+ bytes\b", "[N] bytes");
    settings.add_filter(r"manifest says \d+", "manifest says [N]");
    settings.add_filter(
        &format!(
            r#""tool_version": "{}""#,
            regex_escape(env!("CARGO_PKG_VERSION"))
        ),
        r#""tool_version": "[VERSION]""#,
    );
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, text));
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[test]
fn snapshot_unknown_config_key() {
    let dir = crate::support::tempdir();
    let cfg = dir.path().join("exporter.toml");
    std::fs::write(
        &cfg,
        "[storage]\nto = \"./archives\"\n\n[[databases]]\nname = \"billing\"\nurl = \"postgres://postgres@127.0.0.1:1/billing\"\ncolour = \"blue\"\n",
    )
    .unwrap();
    let out = run(exporter(dir.path()).args(["-q", "dump", "--all"]));
    out.expect_code(2);
    assert_stderr_snapshot("unknown_config_key", dir.path(), &out.stderr);
}

#[test]
fn snapshot_unset_variable() {
    let dir = crate::support::tempdir();
    let cfg = dir.path().join("exporter.toml");
    std::fs::write(
        &cfg,
        "[[databases]]\nname = \"billing\"\nurl = \"postgres://postgres:${EXP_CLI_SNAP_UNSET}@127.0.0.1:1/billing\"\n",
    )
    .unwrap();
    let out = run(exporter(dir.path())
        .env_remove("EXP_CLI_SNAP_UNSET")
        .args(["-q", "dump", "--all"]));
    out.expect_code(2);
    assert_stderr_snapshot("unset_variable", dir.path(), &out.stderr);
}

#[test]
fn snapshot_unreachable_database() {
    let dir = crate::support::tempdir();
    let out = run(exporter(dir.path()).args([
        "-q",
        "dump",
        "postgres://postgres:hunter2@127.0.0.1:1/billing",
        "--to",
        "out",
    ]));
    out.expect_code(3);
    assert_stderr_snapshot("unreachable_database", dir.path(), &out.stderr);
}

/// `exporter check` with a missing privilege (exit 1): the report on stdout names the table
/// and the privilege, the error repeats it once, and the destination stays untouched. The
/// server version, TLS protocol, sizes and durations are filtered.
#[test]
fn snapshot_check_missing_privilege() {
    let role = crate::support::TestRole::create("snapchk");
    let db = crate::support::TestDb::with_sql(
        "snapchk",
        &format!(
            "CREATE TABLE visible (id integer PRIMARY KEY);
             CREATE TABLE hidden_payroll (id integer PRIMARY KEY, salary numeric);
             GRANT SELECT ON visible TO {};",
            role.0
        ),
    );
    let dir = tempdir();
    let out = run(exporter(dir.path()).args([
        "-q",
        "check",
        &format!("billing={}", role.url(&db)),
        "--to",
        "out",
    ]));
    out.expect_code(1);
    assert!(!dir.path().join("out").exists());
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        r"postgresql \d+(\.\d+)*( \([^)]*\))?",
        "postgresql [VERSION]",
    );
    settings.add_filter(r"TLSv1\.\d", "[TLS]");
    settings.bind(|| {
        assert_filtered_snapshot(
            "check_missing_privilege",
            dir.path(),
            &format!(
                "--- stdout ---\n{}--- stderr ---\n{}",
                out.stdout, out.stderr
            ),
        );
    });
}

/// `--help` of the program and of every command (stdout, exit 0).
#[test]
fn snapshot_help_of_every_command() {
    let dir = tempdir();
    for (name, args) in [
        ("help", vec!["--help"]),
        ("help_dump", vec!["dump", "--help"]),
        ("help_check", vec!["check", "--help"]),
        ("help_verify", vec!["verify", "--help"]),
        ("help_restore", vec!["restore", "--help"]),
        ("help_list", vec!["list", "--help"]),
        ("help_uploads", vec!["uploads", "--help"]),
        ("help_login", vec!["login", "--help"]),
        ("help_tunnel", vec!["tunnel", "--help"]),
        ("help_teardown", vec!["teardown", "--help"]),
        ("help_completions", vec!["completions", "--help"]),
        ("help_man", vec!["man", "--help"]),
    ] {
        let out = run(exporter(dir.path()).args(&args));
        out.expect_code(0);
        assert!(out.stderr.is_empty(), "{name}: {}", out.stderr);
        // Nothing to filter: help text is the same on every machine.
        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_snapshot!(name, out.stdout));
    }
}

const RUN_ID: &str = "20261129T074800Z";

/// A run written by hand (no database needed): `good.sql.zst` intact; with `damaged`, also
/// `cut.sql.zst` cut short, `gone.sql.zst` listed but missing, `cache` failed at dump time
/// (the run is partial) and an extra file. Returns the run directory.
fn handmade_run(dest: &Path, damaged: bool) -> std::path::PathBuf {
    let run_dir = dest.join(RUN_ID);
    std::fs::create_dir_all(&run_dir).unwrap();
    let time = "2026-11-29T07:48:00Z";
    let mut entries = Vec::new();
    let mut sums = String::new();
    let mut archive = |name: &str, payload: &[u8], stored_cut: usize| {
        let stored = zstd_frame(payload);
        let sha = sha256_bytes(&stored);
        std::fs::write(
            run_dir.join(format!("{name}.sql.zst")),
            &stored[..stored.len() - stored_cut],
        )
        .unwrap();
        let _ = writeln!(sums, "{sha}  {name}.sql.zst");
        entries.push(json!({
            "name": name, "engine": "postgresql", "endpoint": format!("postgres://app:****@db.internal:5432/{name}"),
            "status": "ok", "server_version": "15.4", "file": format!("{name}.sql.zst"), "format": "sql",
            "compressed_bytes": stored.len(), "uncompressed_bytes": payload.len(), "sha256": sha,
            "zstd_frames": 1, "compression_level": 3, "consistency": "snapshot",
            "started_at": time, "finished_at": time, "tables": [], "warnings": []
        }));
    };
    let payload: Vec<u8> = (0..2000)
        .flat_map(|i| format!("{i}\trow {i}\n").into_bytes())
        .collect();
    archive("good", &payload, 0);
    if damaged {
        archive("cut", &payload, 7);
        archive("gone", b"SELECT 1;\n", 0);
        std::fs::remove_file(run_dir.join("gone.sql.zst")).unwrap();
        entries.push(json!({
            "name": "cache", "engine": "redis", "endpoint": "redis://:****@cache.internal:6379",
            "status": "failed", "error": "redis://:****@cache.internal:6379: connection refused",
            "started_at": time, "finished_at": time, "tables": [], "warnings": []
        }));
        std::fs::write(run_dir.join("stray.txt"), b"not part of the run").unwrap();
    }
    std::fs::write(run_dir.join("SHA256SUMS"), sums).unwrap();
    let manifest: Value = json!({
        "format": "exporter-archive", "format_version": "1.0",
        "tool": {"name": "exporter", "version": "0.1.0"}, "run_id": RUN_ID,
        "started_at": time, "finished_at": time,
        "status": if damaged { "partial" } else { "complete" },
        "source": {"kind": "config"}, "fingerprint_algorithm": "xxh3-128-wrapping-sum",
        "databases": entries
    });
    write_json(&run_dir.join("manifest.json"), &manifest);
    run_dir
}

/// The verification report of a good run and of a damaged one, as text and as `--json`.
#[test]
fn snapshot_verify_report_text_and_json() {
    for (damaged, code, name) in [
        (false, 0, "verify_report_ok"),
        (true, 1, "verify_report_failed"),
    ] {
        let dir = tempdir();
        let run_dir = handmade_run(dir.path(), damaged);
        let text = run(exporter(dir.path()).args(["-q", "verify", crate::support::s(&run_dir)]));
        text.expect_code(code);
        assert_filtered_snapshot(&format!("{name}_text"), dir.path(), &text.stdout);
        // Issue 16: a failed verification's summary was printed twice (stdout and `error:`).
        assert_eq!(
            text.all_output().matches("failed verification").count(),
            usize::from(damaged),
            "{}",
            text.all_output()
        );
        let json =
            run(exporter(dir.path()).args(["-q", "verify", crate::support::s(&run_dir), "--json"]));
        json.expect_code(code);
        let report: Value =
            serde_json::from_str(&json.stdout).expect("--json prints one JSON value");
        assert_eq!(
            report,
            crate::support::read_json(&run_dir.join("verify.json")),
            "--json prints the verify.json record"
        );
        assert_filtered_snapshot(&format!("{name}_json"), dir.path(), &json.stdout);
        if damaged {
            assert_filtered_snapshot(&format!("{name}_stderr"), dir.path(), &json.stderr);
        }
    }
}

/// `exporter completions SHELL`: a script for each shell that names every command; bash's and
/// zsh's parse (`bash -n`, `zsh -n` where zsh is installed); fish's, the most readable, is
/// pinned.
#[test]
fn snapshot_completions() {
    let dir = tempdir();
    let commands = [
        "dump",
        "verify",
        "restore",
        "list",
        "uploads",
        "login",
        "tunnel",
        "completions",
        "man",
    ];
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = run(exporter(dir.path()).args(["completions", shell]));
        out.expect_code(0);
        assert!(out.stderr.is_empty(), "{shell}: {}", out.stderr);
        for command in commands {
            assert!(
                out.stdout.contains(command),
                "{shell} completions do not name {command}"
            );
        }
        assert!(out.stdout.contains("compression-level"), "{shell}");
        if shell == "bash" || (shell == "zsh" && which("zsh")) {
            let script = dir.path().join(format!("exporter.{shell}"));
            std::fs::write(&script, &out.stdout).unwrap();
            let check = std::process::Command::new(shell)
                .arg("-n")
                .arg(&script)
                .output()
                .unwrap();
            assert!(
                check.status.success(),
                "{shell} -n: {}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
        if shell == "fish" {
            let mut settings = insta::Settings::clone_current();
            settings.set_prepend_module_to_snapshot(false);
            settings.bind(|| insta::assert_snapshot!("completions_fish", out.stdout));
        }
    }
    let out = run(exporter(dir.path()).args(["completions", "tcsh"]));
    out.expect_code(2);
}

fn which(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `exporter man`: the program's page (pinned) and each command's (`exporter-dump(1)`, naming
/// every flag `--help` names); an unknown command is a usage error listing the commands.
#[test]
fn snapshot_man_pages() {
    let dir = tempdir();
    let out = run(exporter(dir.path()).arg("man"));
    out.expect_code(0);
    assert!(
        out.stdout.starts_with(".ie"),
        "roff: {}",
        &out.stdout[..80.min(out.stdout.len())]
    );
    assert!(out.stdout.contains(".TH exporter 1"), "{}", out.stdout);
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    let page = out.stdout.replace(env!("CARGO_PKG_VERSION"), "[VERSION]");
    settings.bind(|| insta::assert_snapshot!("man_exporter", page));
    for command in [
        "dump", "verify", "restore", "list", "uploads", "login", "tunnel",
    ] {
        let page = run(exporter(dir.path()).args(["man", command]));
        page.expect_code(0);
        assert!(
            page.stdout.contains(&format!(".TH exporter-{command} 1")),
            "{command}: {}",
            page.stdout
        );
        let help = run(exporter(dir.path()).args([command, "--help"]));
        for flag in help
            .stdout
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| w.starts_with("--") && w.len() > 2)
            .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
        {
            // roff escapes `-` as `\-`.
            let escaped = flag.replace('-', "\\-");
            assert!(
                page.stdout.contains(&escaped),
                "exporter-{command}(1) does not name {flag}"
            );
        }
    }
    let out = run(exporter(dir.path()).args(["man", "nosuch"]));
    out.expect_code(2)
        .stderr_contains("error: there is no command \"nosuch\"")
        .stderr_contains("hint: commands: dump, check, verify, restore");
}

/// `list --json` of a config (FORMAT.md, "exporter list --json"): version, source and one
/// object per database; MySQL-family URLs say `mysql/mariadb` (only the server tells which,
/// and the manifest records it).
#[test]
fn snapshot_list_json() {
    let dir = tempdir();
    let cfg = dir.path().join("exporter.toml");
    std::fs::write(
        &cfg,
        "[[databases]]\nname = \"billing\"\nurl = \"postgres://app:hunter2@db.internal:5432/billing?sslmode=verify-full&sslrootcert=/etc/ca.pem\"\n\n\
         [[databases]]\nname = \"shop\"\nurl = \"mariadb://root@db.internal:3306/shop\"\n\n\
         [[databases]]\nname = \"cache\"\nurl = \"rediss://:hunter2@cache.internal:6380\"\n",
    )
    .unwrap();
    let out = run(exporter(dir.path()).args(["list", "--json"]));
    out.expect_code(0).never_shows("hunter2");
    let v: Value = serde_json::from_str(&out.stdout).expect("one JSON value");
    assert_eq!(v["version"], 1);
    assert_filtered_snapshot("list_json", dir.path(), &out.stdout);
    let text = run(exporter(dir.path()).arg("list"));
    text.expect_code(0);
    assert_filtered_snapshot("list_text", dir.path(), &text.stdout);
}

/// `restore --json` (FORMAT.md, "Reports on stdout"): a versioned report whose archive fields
/// are the manifest entry's, whose counts are the restore's, and whose target is the URL as
/// given with its password redacted.
#[test]
fn snapshot_restore_json() {
    use crate::support::{PG_HOST, PG_PORT, TestDb, db_entry, dump_ok, manifest, s};
    let source = TestDb::with_sql(
        "snaprs",
        "CREATE TABLE t (id integer PRIMARY KEY, label text);\n\
         INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, NULL);\n\
         CREATE TABLE u (k text);\n\
         INSERT INTO u VALUES ('a'), ('b');\n",
    );
    let dir = tempdir();
    let run_dir = dump_ok(dir.path(), &["-q", "dump", &source.url(), "--to", "out"]);
    let target = TestDb::create("snaprt");
    // Trust authentication: the password is not needed, and must not be shown.
    let into = format!(
        "postgres://postgres:hunter2@{PG_HOST}:{PG_PORT}/{}",
        target.name
    );
    let out =
        run(exporter(dir.path()).args(["-q", "restore", s(&run_dir), "--into", &into, "--json"]));
    out.expect_code(0).never_shows("hunter2");
    let report: Value = serde_json::from_str(&out.stdout).expect("one JSON value");
    let m = manifest(&run_dir);
    let entry = db_entry(&m, &source.name);
    assert_eq!(report["version"], 1);
    assert_eq!(report["run_id"], m["run_id"]);
    assert_eq!(report["database"], source.name.as_str());
    assert_eq!(report["engine"], "postgresql");
    for key in [
        "file",
        "format",
        "compressed_bytes",
        "uncompressed_bytes",
        "sha256",
    ] {
        assert_eq!(report["archive"][key], entry[key], "archive.{key}");
    }
    assert_eq!(
        report["target"],
        format!(
            "postgres://postgres:****@{PG_HOST}:{PG_PORT}/{}",
            target.name
        )
        .as_str()
    );
    assert_eq!(report["tables"], 2);
    assert_eq!(report["rows"], 5);
    assert_eq!(report["cleaned"], 0);
    assert!(
        report["seconds"].as_f64().is_some_and(|s| s >= 0.0),
        "{report:#}"
    );
    assert_eq!(report["warnings"], json!([]));
    assert_eq!(target.query("SELECT count(*) FROM t"), "3");
    assert_filtered_snapshot_with(
        "restore_json",
        dir.path(),
        &out.stdout,
        &[
            (r"exp_cli_snapr[st]_\d+_\d+", "[DB]"),
            (
                r#""(compressed|uncompressed)_bytes": \d+"#,
                r#""${1}_bytes": [N]"#,
            ),
            (r#""seconds": [0-9.e-]+"#, r#""seconds": [SECONDS]"#),
        ],
    );
}
