//! Configuration and usage errors exit 2 naming the key and line, before any connection is
//! attempted; `${VAR}` substitution; `list`.

use std::path::Path;

use serde_json::Value;

use crate::support::{Outcome, db_entry, exporter, manifest, run, run_dirs, small_db, tempdir};

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("exporter.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `exporter --config <cfg> <args…>` in `dir`.
fn with_config(dir: &Path, config: &Path, args: &[&str]) -> Outcome {
    run(exporter(dir).arg("--config").arg(config).args(args))
}

/// Does the error text point at line `n` (`line 7`, `:7:` or `:7 `)?
#[track_caller]
fn assert_names_line(out: &Outcome, n: u32) {
    let e = out.stderr.to_lowercase();
    assert!(
        e.contains(&format!("line {n}"))
            || e.contains(&format!(":{n}:"))
            || e.contains(&format!(":{n} ")),
        "the error does not name line {n}:\n{}",
        out.stderr
    );
}

// Unreachable on purpose: a config error must be reported before connecting (exit 2, not 3).
const URL: &str = "postgres://postgres@127.0.0.1:1/billing";

#[test]
fn unknown_key_is_named_with_its_line() {
    let dir = tempdir();
    let cfg = write(
        dir.path(),
        &format!(
            "[storage]\nto = \"./archives\"\n\n[[databases]]\nname = \"billing\"\nurl = \"{URL}\"\ncolour = \"blue\"\n"
        ),
    );
    for args in [&["dump", "--all"][..], &["list"]] {
        let out = with_config(dir.path(), &cfg, args);
        out.expect_code(2)
            .expect_error_line()
            .stderr_contains("colour");
        assert_names_line(&out, 7);
    }
    let cfg = write(
        dir.path(),
        &format!(
            "[storage]\ndestination = \"x\"\n\n[[databases]]\nname = \"a\"\nurl = \"{URL}\"\n"
        ),
    );
    let out = with_config(dir.path(), &cfg, &["dump", "--all"]);
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("destination");
    assert_names_line(&out, 2);
    assert!(run_dirs(&dir.path().join("archives")).is_empty());
}

#[test]
fn duplicate_names_are_rejected() {
    let dir = tempdir();
    let cfg = write(
        dir.path(),
        &format!(
            "[[databases]]\nname = \"billing\"\nurl = \"{URL}\"\n\n[[databases]]\nname = \"billing\"\nurl = \"postgres://postgres@127.0.0.1:1/other\"\n"
        ),
    );
    let out = with_config(dir.path(), &cfg, &["dump", "--all"]);
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("billing");
    assert!(
        out.stderr.to_lowercase().contains("duplicate"),
        "{}",
        out.stderr
    );
}

#[test]
fn invalid_name_is_rejected() {
    let dir = tempdir();
    let cfg = write(
        dir.path(),
        &format!("[[databases]]\nname = \"../escape\"\nurl = \"{URL}\"\n"),
    );
    let out = with_config(dir.path(), &cfg, &["dump", "--all"]);
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("../escape");
    assert!(!dir.path().join("escape.sql.zst").exists());
}

#[test]
fn bad_url_is_rejected_without_echoing_the_password() {
    let dir = tempdir();
    for (i, url) in [
        "postgres://postgres:hunter2@/billing",
        "postgres://postgres:hunter2@127.0.0.1:notaport/billing",
        "hunter2 is not a url",
    ]
    .into_iter()
    .enumerate()
    {
        let cfg = write(
            dir.path(),
            &format!("[[databases]]\nname = \"billing{i}\"\nurl = \"{url}\"\n"),
        );
        let out = with_config(dir.path(), &cfg, &["dump", "--all"]);
        out.expect_code(2)
            .expect_error_line()
            .never_shows("hunter2");
        assert!(
            out.stderr.contains("url") || out.stderr.contains(&format!("billing{i}")),
            "the error names neither the key nor the database:\n{}",
            out.stderr
        );
        // Same on the command line.
        let out = run(exporter(dir.path()).args(["dump", url, "--to", "d"]));
        out.expect_code(2)
            .expect_error_line()
            .never_shows("hunter2");
    }
}

#[test]
fn unset_variable_is_named_with_key_and_line() {
    let dir = tempdir();
    let cfg = write(
        dir.path(),
        "[storage]\nto = \"./archives\"\n\n[[databases]]\nname = \"billing\"\nurl = \"postgres://postgres:${EXP_CLI_UNSET_PASSWORD}@127.0.0.1:1/billing\"\n",
    );
    let out = run(exporter(dir.path())
        .env_remove("EXP_CLI_UNSET_PASSWORD")
        .arg("--config")
        .arg(&cfg)
        .args(["dump", "--all"]));
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("EXP_CLI_UNSET_PASSWORD")
        .stderr_contains("url");
    assert_names_line(&out, 6);
}

#[test]
fn unsupported_scheme_is_a_usage_error() {
    let dir = tempdir();
    let mongo = "mongodb://app@127.0.0.1:27017/events";
    let cfg = write(
        dir.path(),
        &format!("[[databases]]\nname = \"events\"\nurl = \"{mongo}\"\n"),
    );
    let out = with_config(dir.path(), &cfg, &["dump", "--all"]);
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("mongodb");
    let out = run(exporter(dir.path()).args(["dump", mongo, "--to", "d"]));
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("mongodb");
    assert!(!dir.path().join("d").exists() || run_dirs(&dir.path().join("d")).is_empty());
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempdir();
    // dump with neither --all nor URLs.
    run(exporter(dir.path()).arg("dump"))
        .expect_code(2)
        .expect_error_line();
    // An unknown flag, and no command at all.
    run(exporter(dir.path()).args(["dump", "--frobnicate"])).expect_code(2);
    run(&mut exporter(dir.path())).expect_code(2);
    // --all without a config file: the default ./exporter.toml does not exist.
    let out = run(exporter(dir.path()).args(["dump", "--all"]));
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("exporter.toml");
    // `list` without a config: the hint names what an installed user has (the README's
    // section, `--to`), not a file of the source tree.
    let out = run(exporter(dir.path()).arg("list"));
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("error: nothing to list: there is no config file (exporter.toml does not exist)")
        .stderr_contains("hint: create exporter.toml (README, section \"Configuration\"), pass --config FILE, --to DEST to list the unfinished runs of a destination, or --environment HANDLE");
    assert!(!out.stderr.contains("fixtures/"), "{}", out.stderr);
    // An explicit --config that does not exist, even for commands where config is optional.
    let out = run(exporter(dir.path()).args(["--config", "missing.toml", "dump", "--all"]));
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("missing.toml");
    assert!(
        !dir.path().join("archives").exists(),
        "a usage error created ./archives"
    );
}

/// `${VAR}` is substituted; inside a URL it is percent-encoded (a password with `@` and `/`
/// still connects — trust auth accepts any password — and is never shown).
#[test]
fn env_var_substitution_percent_encodes_urls() {
    let db = small_db("envsubst", 3);
    let work = tempdir();
    let dest_base = work.path().join("base");
    let cfg = write(
        work.path(),
        &format!(
            "[storage]\nto = \"${{EXP_CLI_DEST}}/runs\"\n\n[[databases]]\nname = \"main\"\nurl = \"postgres://postgres:${{EXP_CLI_PW}}@127.0.0.1:5432/{}\"\n",
            db.name
        ),
    );
    let out = run(exporter(work.path())
        .env("EXP_CLI_PW", "p@ss/word")
        .env("EXP_CLI_DEST", &dest_base)
        .arg("--config")
        .arg(&cfg)
        .args(["dump", "--all"]));
    out.expect_code(0)
        .never_shows("p@ss/word")
        .never_shows("p%40ss");
    let run_dir = work.path().join(out.last_stdout_line());
    assert_eq!(
        run_dir.parent().unwrap().canonicalize().unwrap(),
        dest_base.join("runs").canonicalize().unwrap(),
        "${{EXP_CLI_DEST}} in [storage] to was not substituted"
    );
    let m = manifest(&run_dir);
    assert_eq!(
        db_entry(&m, "main")["endpoint"],
        format!("postgres://postgres:****@127.0.0.1:5432/{}", db.name).as_str()
    );
    let text = std::fs::read_to_string(run_dir.join("manifest.json")).unwrap();
    assert!(
        !text.contains("ss/word") && !text.contains("p%40ss"),
        "manifest has the password"
    );
}

#[test]
fn list_shows_the_inventory_redacted() {
    let dir = tempdir();
    let cfg = write(
        dir.path(),
        "[[databases]]\nname = \"billing\"\nurl = \"postgres://app:hunter2@127.0.0.1:1/billing\"\n\n[[databases]]\nname = \"accounts\"\nurl = \"postgresql://app@127.0.0.1:1/accounts\"\n",
    );
    let out = with_config(dir.path(), &cfg, &["list"]);
    out.expect_code(0).never_shows("hunter2");
    for needle in [
        "billing",
        "accounts",
        "postgresql",
        "postgres://app:****@127.0.0.1:1/billing",
    ] {
        assert!(
            out.stdout.contains(needle),
            "list does not show {needle:?}:\n{}",
            out.stdout
        );
    }
    let out = with_config(dir.path(), &cfg, &["list", "--json"]);
    out.expect_code(0).never_shows("hunter2");
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("list --json is not JSON ({e}):\n{}", out.stdout));
    let text = v.to_string();
    assert!(
        text.contains("billing") && text.contains("accounts") && text.contains("****"),
        "{v:#}"
    );
}

#[test]
fn list_shows_the_tls_mode_of_each_database() {
    let dir = tempdir();
    let cfg = write(
        dir.path(),
        "[[databases]]\nname = \"billing\"\nurl = \"postgres://app@127.0.0.1:1/billing\"\n\n\
         [[databases]]\nname = \"ledger\"\nurl = \"postgres://app@db.example:1/ledger?sslmode=verify-full&sslrootcert=/etc/ca.pem\"\n\n\
         [[databases]]\nname = \"shop\"\nurl = \"mysql://app@127.0.0.1:1/shop?ssl-mode=VERIFY_IDENTITY\"\n\n\
         [[databases]]\nname = \"cache\"\nurl = \"rediss://127.0.0.1:1\"\n",
    );
    // libpq's PGSSLMODE is the default of URLs that name no sslmode.
    let out = run(exporter(dir.path())
        .env("PGSSLMODE", "require")
        .arg("--config")
        .arg(&cfg)
        .args(["list", "--json"]));
    out.expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let tls: Vec<(&str, &str)> = v["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["tls"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tls,
        vec![
            ("billing", "require"),
            ("ledger", "verify-full"),
            ("shop", "VERIFY_IDENTITY"),
            ("cache", "rediss"),
        ]
    );
    let out = with_config(dir.path(), &cfg, &["list"]);
    out.expect_code(0);
    let header = out.stdout.lines().next().unwrap_or_default();
    assert!(header.contains("TLS"), "{}", out.stdout);
    let billing = out
        .stdout
        .lines()
        .find(|l| l.starts_with("billing"))
        .unwrap();
    assert!(billing.contains(" prefer "), "libpq's default: {billing}");
}

/// `fixtures/exporter.example.toml` documents every key; it must stay a valid config.
/// `list --to DEST` without a config where DEST holds only complete runs (or nothing):
/// one plain line saying there is nothing to list, not a table header without rows; with
/// `--json` the usual object, with both lists empty.
#[test]
fn list_without_databases_or_unfinished_runs_says_nothing_to_list() {
    let dir = tempdir();
    let dest = dir.path().join("archives");
    // A complete run: `list` does not show it.
    let complete = dest.join("20260102T030405Z");
    std::fs::create_dir_all(&complete).unwrap();
    std::fs::write(complete.join("manifest.json"), "{}").unwrap();
    let out = run(exporter(dir.path()).args(["list", "--to", "./archives"]));
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "nothing to list: no config file, and ./archives holds no unfinished runs (`list` \
         shows the config's databases and the destination's unfinished runs; complete runs \
         are read by `verify` and `restore`)\n",
    );
    assert!(!out.stdout.contains("NAME"), "{}", out.stdout);

    let out = run(exporter(dir.path()).args(["list", "--to", "./archives", "--json"]));
    out.expect_code(0);
    let listing: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        listing,
        serde_json::json!({
            "version": 1,
            "source": "config",
            "databases": [],
            "unfinished_runs": [],
        })
    );

    // A config with [storage] alone names itself as the empty inventory.
    let cfg = write(dir.path(), "[storage]\nto = \"./archives\"\n");
    let out = with_config(dir.path(), &cfg, &["list"]);
    out.expect_code(0);
    assert!(
        out.stdout.starts_with(&format!(
            "nothing to list: {} lists no databases, and ./archives holds no unfinished runs",
            cfg.display()
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn example_config_is_valid() {
    let dir = tempdir();
    let example = crate::support::repo_root().join("fixtures/exporter.example.toml");
    let out = run(exporter(dir.path())
        .env("ACCOUNTS_DB_PASSWORD", "p@ss/word")
        .env("SHOP_DB_PASSWORD", "sh0p:pw")
        .env("CACHE_PASSWORD", "c@che")
        .arg("--config")
        .arg(&example)
        .arg("list"));
    out.expect_code(0)
        .never_shows("p@ss/word")
        .never_shows("sh0p:pw")
        .never_shows("c@che");
    for name in ["billing", "accounts", "shop", "cache"] {
        assert!(
            out.stdout.contains(name),
            "list does not show {name}:\n{}",
            out.stdout
        );
    }
}

/// `verify` reads only `[storage]`: it works where the databases' credentials are not set.
#[test]
fn verify_ignores_database_credentials_it_does_not_need() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("exporter.toml"),
        "[storage]\nto = \"runs\"\n[[databases]]\nname = \"a\"\nurl = \"postgres://u:${EXP_UNSET_PW_FOR_VERIFY}@h/a\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("runs")).unwrap();
    let out = run(exporter(dir.path()).arg("verify"));
    // No run exists under ./runs: a clean "no", not a config error about the password.
    out.expect_code(1)
        .stderr_contains("no run with a manifest in runs");
    let out = run(exporter(dir.path()).arg("list"));
    out.expect_code(2)
        .stderr_contains("EXP_UNSET_PW_FOR_VERIFY is not set");
}

/// `--expected-size` is checked when the plan is made: more than S3's 5 TiB per object, or
/// given for a local destination, is a usage error before any database is contacted (the
/// URL points at a closed port, so contacting it would fail differently).
#[test]
fn expected_size_is_checked_before_anything_starts() {
    let dir = tempdir();
    let unreachable = "postgres://postgres@127.0.0.1:9/nowhere";
    let out = run(exporter(dir.path()).args([
        "dump",
        unreachable,
        "--to",
        "s3://some-bucket/runs",
        "--expected-size",
        "6TiB",
    ]));
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("--expected-size")
        .stderr_contains("5 TiB");
    let out = run(exporter(dir.path()).args([
        "dump",
        unreachable,
        "--to",
        "out",
        "--expected-size",
        "1GiB",
    ]));
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("local directory");
    assert!(!dir.path().join("out").exists(), "nothing was created");
}

/// Issue 16: `verify --to DIR` on a directory that does not exist said "no run with a
/// manifest" (exit 1); it names the missing directory (exit 2), for `restore` too.
#[test]
fn verify_to_a_missing_directory_names_it() {
    let dir = tempdir();
    let out = run(exporter(dir.path()).args(["verify", "--to", "no-such-dir"]));
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("the destination directory no-such-dir does not exist")
        .stderr_contains("hint: pass --to the directory the dump wrote to");
    let out = run(exporter(dir.path()).args([
        "restore",
        "20261129T074800Z",
        "--into",
        "postgres://postgres@127.0.0.1:1/x",
        "--to",
        "no-such-dir",
    ]));
    out.expect_code(2)
        .stderr_contains("the destination directory no-such-dir does not exist");
}

/// `verify PATH` and `restore PATH` with a run path that does not exist named the default
/// destination ("the destination directory ./archives does not exist"); they name the path
/// given (exit 2), whether or not the destination exists, and a file is not a run directory.
#[test]
fn a_missing_run_path_is_named() {
    let dir = tempdir();
    let missing = dir.path().join("some/NOPE");
    let missing = missing.to_str().unwrap();
    let expected = format!("error: no run directory {missing}: it does not exist\n");
    for destination_exists in [false, true] {
        if destination_exists {
            std::fs::create_dir(dir.path().join("archives")).unwrap();
        }
        let out = run(exporter(dir.path()).args(["verify", missing]));
        out.expect_code(2)
            .stderr_contains(&expected)
            .stderr_contains("hint: give the path of a run directory (it holds manifest.json)");
        assert!(!out.stderr.contains("destination"), "{}", out.stderr);
        let out = run(exporter(dir.path()).args([
            "restore",
            missing,
            "--into",
            "postgres://postgres@127.0.0.1:1/x",
        ]));
        out.expect_code(2).stderr_contains(&expected);
        assert!(!out.stderr.contains("destination"), "{}", out.stderr);
    }
    std::fs::write(dir.path().join("a-file"), "x").unwrap();
    run(exporter(dir.path()).args(["verify", "./a-file"]))
        .expect_code(2)
        .stderr_contains("error: no run directory ./a-file: it is not a directory\n");
}

/// Issue 16: the quick start's setup script needs `psql` and `pg_isready`, which the README did
/// not list; the README lists them, and the script says which one is missing instead of
/// failing with "command not found".
#[test]
fn the_quick_start_names_the_setup_scripts_tools() {
    let root = crate::support::repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let quick_start = readme
        .split("## Quick start")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a Quick start section");
    for tool in ["psql", "pg_isready"] {
        assert!(
            quick_start.contains(&format!("`{tool}`")),
            "the quick start does not list {tool}"
        );
    }
    // A PATH with nothing but `dirname`: the script stops at the first missing tool.
    let bin = tempdir();
    std::os::unix::fs::symlink("/usr/bin/dirname", bin.path().join("dirname")).unwrap();
    let out = std::process::Command::new("/bin/bash")
        .arg(root.join("fixtures/scripts/setup-sample.sh"))
        .env("PATH", bin.path())
        .current_dir(bin.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: psql is not installed") && stderr.contains("postgresql-client"),
        "{stderr}"
    );
}

/// The setup script's closing suggestion is the README's quick start after the script
/// (`check --all` included), and every `cargo install` the README shows is `--locked`.
#[test]
fn the_setup_script_suggests_the_readmes_next_commands() {
    let root = crate::support::repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let script = std::fs::read_to_string(root.join("fixtures/scripts/setup-sample.sh")).unwrap();
    // `bash fixtures/scripts/setup-sample.sh && A \<newline> && B …`, up to the fence.
    let after = readme
        .split("bash fixtures/scripts/setup-sample.sh && ")
        .nth(1)
        .and_then(|s| s.split("\n```").next())
        .expect("README runs the setup script in a code block");
    let readme_next = after
        .replace('\\', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        readme_next,
        "cargo run --release -- check --all && cargo run --release -- dump --all && cargo run \
         --release -- verify"
    );
    let next = script
        .lines()
        .find_map(|l| l.strip_prefix("echo \"next: "))
        .and_then(|l| l.split('"').next())
        .expect("the script ends with a `next:` suggestion");
    assert_eq!(next, readme_next);
    let installs: Vec<&str> = readme
        .match_indices("cargo install")
        .map(|(i, _)| &readme[i..readme[i..].find('\n').map_or(readme.len(), |e| i + e)])
        .collect();
    assert!(!installs.is_empty());
    for line in installs {
        assert!(
            line.starts_with("cargo install --locked --path ."),
            "{line}"
        );
    }
}

/// docker-compose.yml runs the versions README's support table says are tested.
#[test]
fn docker_compose_runs_the_tested_versions() {
    let root = crate::support::repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    for (engine, image) in [
        ("PostgreSQL", "postgres"),
        ("MariaDB", "mariadb"),
        ("Redis", "redis"),
    ] {
        // `| PostgreSQL | 15 (15.20) | …`: the tested column's major version.
        let tested = readme
            .lines()
            .find_map(|l| l.strip_prefix(&format!("| {engine} | ")))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("README's support table has no {engine} row"));
        let tag = compose
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("image: {image}:")))
            .unwrap_or_else(|| panic!("docker-compose.yml runs no {image} image"));
        assert_eq!(tag, tested, "{engine}");
    }
}
