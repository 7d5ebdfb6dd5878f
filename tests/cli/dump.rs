//! `dump URL…` without a config, destinations, compression levels, `--json`, run-id
//! collisions, empty databases (A06 c) and passwords in URLs.

use serde_json::Value;

use crate::support::{
    PG_HOST, PG_PORT, TestDb, all_files, db_entry, dump_ok, exporter, fingerprint, is_run_id,
    manifest, restore_with_stock_tools, run, run_dirs, s, small_db, spawn_exporter, table_rows,
    tempdir, user_tables, write_config, zstd_decompress, zstd_list,
};

/// Rows of `public.t` in a database, as sorted COPY lines.
fn rows_of_t(db: &TestDb) -> Vec<Vec<u8>> {
    let t = user_tables(&db.name)
        .into_iter()
        .find(|t| t.name == "\"public\".\"t\"")
        .expect("table t");
    table_rows(&db.name, &t)
}

#[test]
fn dump_url_without_config_names_archive_after_database() {
    let db = small_db("url_noconf", 500);
    let cwd = tempdir();
    assert!(!cwd.path().join("exporter.toml").exists());

    let run_dir = dump_ok(cwd.path(), &["dump", &db.url()]);
    // Default destination: ./archives in the working directory.
    assert_eq!(
        run_dir.parent().unwrap().canonicalize().unwrap(),
        cwd.path().join("archives").canonicalize().unwrap()
    );
    let file = format!("{}.sql.zst", db.name);
    assert!(
        run_dir.join(&file).is_file(),
        "expected {file} in {}",
        run_dir.display()
    );
    let m = manifest(&run_dir);
    assert_eq!(m["status"], "complete");
    let e = db_entry(&m, &db.name);
    assert_eq!(e["file"], file.as_str());
    assert_eq!(e["endpoint"], db.url().as_str());
    let t = &e["tables"][0];
    assert_eq!(t["rows"], 500);
    assert_eq!(t["fingerprint"], fingerprint(&rows_of_t(&db)).as_str());

    let target = TestDb::create("url_noconf_r");
    restore_with_stock_tools(&run_dir.join(&file), &target);
    assert_eq!(rows_of_t(&target), rows_of_t(&db), "restored rows differ");

    // verify with no config and no --to finds the run under ./archives.
    let out = run(exporter(cwd.path()).arg("verify"));
    out.expect_code(0);
    assert!(
        run_dir.join("verify.json").is_file(),
        "verify wrote no verify.json"
    );

    // Table names in the manifest are schema-qualified and quoted where needed, exactly as
    // PostgreSQL's quote_ident writes them (the contract's `public."Order Items"`).
    assert_eq!(t["name"], "public.t", "manifest table name form");
}

#[test]
fn to_flag_overrides_storage_to() {
    let db = small_db("to_override", 10);
    let work = tempdir();
    let config = write_config(work.path(), Some("from-config"), &[("main", &db.url())]);
    let other = work.path().join("elsewhere");
    let run_dir = dump_ok(
        work.path(),
        &["--config", s(&config), "dump", "--all", "--to", s(&other)],
    );
    assert_eq!(
        run_dir.parent().unwrap().canonicalize().unwrap(),
        other.canonicalize().unwrap()
    );
    assert!(run_dir.join("main.sql.zst").is_file());
    assert!(
        !work.path().join("from-config").exists(),
        "--to must override [storage] to, yet from-config/ was created"
    );
    // verify --to finds it there too.
    run(exporter(work.path()).args(["verify", "--to", s(&other)])).expect_code(0);
}

#[test]
fn compression_level_19_is_recorded_and_restorable() {
    let db = small_db("level19", 2000);
    let work = tempdir();
    let dest = work.path().join("dest");
    let run_dir = dump_ok(
        work.path(),
        &[
            "dump",
            &db.url(),
            "--to",
            s(&dest),
            "--compression-level",
            "19",
        ],
    );
    let m = manifest(&run_dir);
    let e = db_entry(&m, &db.name);
    assert_eq!(e["compression_level"], 19);
    let path = run_dir.join(format!("{}.sql.zst", db.name));
    assert_eq!(e["uncompressed_bytes"], zstd_decompress(&path).len() as u64);
    assert_eq!(zstd_list(&path).1, "XXH64");
    let target = TestDb::create("level19_r");
    restore_with_stock_tools(&path, &target);
    assert_eq!(rows_of_t(&target), rows_of_t(&db));
}

#[test]
fn compression_level_out_of_range_is_usage_error() {
    let db = small_db("level99", 1);
    let work = tempdir();
    let dest = work.path().join("dest");
    for level in ["99", "-200", "abc"] {
        let out = run(exporter(work.path()).args([
            "dump",
            &db.url(),
            "--to",
            s(&dest),
            "--compression-level",
            level,
        ]));
        out.expect_code(2).expect_error_line();
        assert!(
            run_dirs(&dest).is_empty(),
            "a usage error must not create a run (level {level})"
        );
    }
}

#[test]
fn dump_json_reports_the_run() {
    let db = small_db("dump_json", 20);
    let work = tempdir();
    let dest = work.path().join("dest");
    let out = run(exporter(work.path()).args(["dump", &db.url(), "--to", s(&dest), "--json"]));
    out.expect_code(0);
    let report: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "dump --json stdout is not one JSON value ({e}):\n{}",
            out.stdout
        )
    });
    let run_dir = work
        .path()
        .join(report["run_dir"].as_str().expect("run_dir"));
    let m = manifest(&run_dir);
    assert_eq!(report["run_id"], m["run_id"]);
    assert_eq!(report["status"], "complete");
    let dbs = report["databases"].as_array().expect("databases");
    assert_eq!(dbs.len(), 1);
    assert_eq!(dbs[0]["name"], db.name.as_str());
}

#[test]
fn two_runs_in_the_same_second_get_distinct_run_ids() {
    let db = small_db("collide", 3);
    let work = tempdir();
    let dest = work.path().join("dest");
    let a = dump_ok(work.path(), &["dump", &db.url(), "--to", s(&dest)]);
    let b = dump_ok(work.path(), &["dump", &db.url(), "--to", s(&dest)]);
    assert_ne!(a, b, "the second run overwrote the first");
    for r in [&a, &b] {
        let id = r.file_name().unwrap().to_str().unwrap();
        assert!(is_run_id(id), "bad run id {id}");
        assert_eq!(manifest(r)["run_id"], id);
    }
    assert_eq!(run_dirs(&dest).len(), 2);
    // The first run is intact.
    run(exporter(work.path()).args(["verify", s(&a)])).expect_code(0);
}

/// A06 (c): a database whose only table is empty still gives a valid, non-empty archive that
/// verifies and restores — distinguishable from the 0-byte failure of A01.
#[test]
fn a06_empty_table_gives_valid_non_empty_archive() {
    let db = TestDb::with_sql(
        "empty_tbl",
        "CREATE TABLE t (id integer PRIMARY KEY, label text);",
    );
    let work = tempdir();
    let run_dir = dump_ok(
        work.path(),
        &["dump", &db.url(), "--to", s(&work.path().join("d"))],
    );
    let m = manifest(&run_dir);
    let e = db_entry(&m, &db.name);
    let path = run_dir.join(format!("{}.sql.zst", db.name));
    assert!(e["compressed_bytes"].as_u64().unwrap() > 0);
    let plain = zstd_decompress(&path);
    assert!(
        !plain.is_empty(),
        "the archive of an empty table decompresses to nothing"
    );
    assert!(
        String::from_utf8_lossy(&plain).contains("CREATE TABLE"),
        "the archive lacks the table definition"
    );
    assert_eq!(e["tables"][0]["rows"], 0);
    assert_eq!(e["tables"][0]["fingerprint"], "0".repeat(32).as_str());
    run(exporter(work.path()).args(["verify", s(&run_dir)])).expect_code(0);
    let target = TestDb::create("empty_tbl_r");
    restore_with_stock_tools(&path, &target);
    assert_eq!(target.query("SELECT count(*) FROM t"), "0");
}

/// A password in the URL (trust auth accepts any) works and never reaches the terminal, the
/// manifest, SHA256SUMS or the payload.
#[test]
fn password_in_url_is_never_written_or_printed() {
    let db = small_db("pw_ok", 5);
    let work = tempdir();
    let dest = work.path().join("d");
    let url = format!("postgres://postgres:hunter2@127.0.0.1:5432/{}", db.name);
    let out = run(exporter(work.path()).args(["-v", "dump", &url, "--to", s(&dest)]));
    out.expect_code(0).never_shows("hunter2");
    let run_dir = work.path().join(out.last_stdout_line());
    let e = db_entry(&manifest(&run_dir), &db.name).clone();
    assert_eq!(
        e["endpoint"],
        format!("postgres://postgres:****@127.0.0.1:5432/{}", db.name).as_str()
    );
    for f in all_files(&dest) {
        let bytes = std::fs::read(&f).unwrap();
        let text = if f.extension().is_some_and(|x| x == "zst") {
            zstd_decompress(&f)
        } else {
            bytes
        };
        assert!(
            !String::from_utf8_lossy(&text).contains("hunter2"),
            "{} contains the password",
            f.display()
        );
    }
}

/// `--no-owner` leaves ownership and privilege statements out; `--jobs 1` is accepted and the
/// archive still restores.
#[test]
fn no_owner_and_jobs_flags() {
    let db = small_db("noowner", 10);
    db.run_script("CREATE VIEW v AS SELECT id FROM t; GRANT SELECT ON t TO PUBLIC;");
    let work = tempdir();
    let dest = work.path().join("d");
    let run_dir = dump_ok(
        work.path(),
        &[
            "dump",
            &db.url(),
            "--to",
            s(&dest),
            "--no-owner",
            "--jobs",
            "1",
        ],
    );
    let path = run_dir.join(format!("{}.sql.zst", db.name));
    let sql = String::from_utf8(zstd_decompress(&path)).unwrap();
    for forbidden in ["OWNER TO", "GRANT ", "REVOKE "] {
        assert!(
            !sql.contains(forbidden),
            "--no-owner dump contains {forbidden:?}"
        );
    }
    let target = TestDb::create("noowner_r");
    restore_with_stock_tools(&path, &target);
    assert_eq!(rows_of_t(&target), rows_of_t(&db));
    assert_eq!(target.query("SELECT count(*) FROM v"), "10");
}

#[test]
fn closed_stdout_does_not_turn_a_committed_run_into_a_crash() {
    // `exporter dump … | head -0`: the reader is gone before the run directory is printed.
    let db = small_db("closed_stdout", 50);
    let work = tempdir();
    let dest = work.path().join("dest");
    let mut child = spawn_exporter(work.path(), &["dump", &db.url(), "--to", s(&dest)]);
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for exporter");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let runs = run_dirs(&dest);
    assert_eq!(runs.len(), 1);
    assert!(runs[0].join("manifest.json").is_file());
}

/// Issue 16: the closing message suggested `exporter verify …`, which is not on `PATH` after
/// `cargo run`; it names the program as it was started, and the command works as printed.
#[test]
fn the_closing_message_names_the_program_as_started() {
    let db = small_db("closing_message", 3);
    let work = tempdir();
    let out = run(exporter(work.path()).args(["dump", &db.url(), "--to", "out"]));
    out.expect_code(0);
    let bin = env!("CARGO_BIN_EXE_exporter");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("check it with"))
        .unwrap_or_else(|| panic!("no closing message:\n{}", out.stderr));
    let suggested = line
        .split_once(&format!("`{bin} "))
        .and_then(|(_, rest)| rest.strip_suffix('`'))
        .unwrap_or_else(|| panic!("the suggestion does not start with {bin}: {line}"));
    let args: Vec<&str> = suggested.split(' ').collect();
    assert_eq!(args[0], "verify", "{line}");
    run(exporter(work.path()).args(&args)).expect_code(0);
}

/// Issue 16: an `exporter.toml` whose databases use an unset `${VAR}` made `exporter dump URL`
/// fail; URLs on the command line need only its `[storage]`.
#[test]
fn urls_do_not_need_the_configs_databases() {
    let db = small_db("urls_ignore_config_dbs", 3);
    let work = tempdir();
    std::fs::write(
        work.path().join("exporter.toml"),
        "[storage]\nto = \"from-config\"\n[[databases]]\nname = \"a\"\nurl = \"postgres://u:${EXP_CLI_UNSET_FOR_URLS}@h/a\"\n",
    )
    .unwrap();
    let out = run(exporter(work.path())
        .env_remove("EXP_CLI_UNSET_FOR_URLS")
        .args(["dump", &db.url()]));
    out.expect_code(0);
    assert!(
        out.stdout.trim().starts_with("from-config/"),
        "[storage] to still applies: {}",
        out.stdout
    );
}

/// Issue 16: two URLs whose derived names collide are named on the command line, `NAME=URL`.
#[test]
fn name_equals_url_names_the_archive() {
    let db = small_db("name_equals_url", 3);
    let work = tempdir();
    let url = db.url();
    let out = run(exporter(work.path()).args(["dump", &url, &url, "--to", "out"]));
    out.expect_code(2)
        .stderr_contains("would both be written as")
        .stderr_contains("hint: name them");
    let run_dir = dump_ok(
        work.path(),
        &[
            "dump",
            &format!("first={url}"),
            &format!("second={url}"),
            "--to",
            "out",
        ],
    );
    let m = crate::support::manifest(&run_dir);
    let names: Vec<&str> = m["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first", "second"]);
    assert!(run_dir.join("first.sql.zst").is_file());
}

/// Two URLs whose derived names differ only in case clash (one file on a case-insensitive
/// file system): the error names both names and says why; nothing is contacted (the ports
/// are closed, so a connection would fail with exit 3, not 2).
#[test]
fn urls_whose_names_differ_only_in_case_are_both_named() {
    let work = tempdir();
    let out = run(exporter(work.path()).args([
        "dump",
        "postgres://postgres@127.0.0.1:1/nu_Camel-x",
        "postgres://postgres@127.0.0.1:1/nu_camel-X",
        "--to",
        "out",
    ]));
    out.expect_code(2).stderr_contains(
        "error: URLs #1 and #2 would be written as \"nu_Camel-x\" and \"nu_camel-X\", names \
         that differ only in case: archive names are compared ignoring case, as a \
         case-insensitive file system (macOS, Windows) would make them one file\n",
    );
    assert!(
        !work.path().join("out").exists(),
        "a usage error created out/"
    );
}

/// Issue 16: a password that is not percent-encoded was partly printed and the archive named
/// after a fragment of it; the URL is refused, shown redacted up to its last `@`, with a hint.
#[test]
fn an_unencoded_password_is_refused_and_never_shown() {
    let work = tempdir();
    let out = run(exporter(work.path()).args([
        "dump",
        "mysql://user:p@ss/w:rd%#1@127.0.0.1:1/db",
        "--to",
        "out",
    ]));
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("invalid database URL mysql://****@127.0.0.1:1/db")
        .stderr_contains("must be percent-encoded")
        .never_shows("ss/w")
        .never_shows("rd%#1");
    assert!(!work.path().join("out").exists(), "nothing was written");
}

/// Issue 16: no output at all for minutes during a long dump, `verify --level restore` or
/// restore. Each says every `EXPORTER_PROGRESS_INTERVAL` seconds (default 30) that it is
/// still running and how far it got; `-q` silences it, `0` turns it off.
#[test]
fn long_work_says_it_is_still_running() {
    let db = TestDb::with_sql(
        "still_running",
        "CREATE TABLE t (id integer PRIMARY KEY, label text);\n\
         INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 300000) AS i;\n",
    );
    let work = tempdir();
    let dump = |extra: &[&str], interval: &str| {
        run(exporter(work.path())
            .env("EXPORTER_PROGRESS_INTERVAL", interval)
            .args([
                "dump",
                &format!("slow={}", db.url()),
                "--to",
                "out",
                "-j",
                "1",
            ])
            .args(extra))
    };
    let out = dump(&[], "0.05");
    out.expect_code(0);
    let still: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("  slow: still dumping: "))
        .collect();
    assert!(!still.is_empty(), "no progress line:\n{}", out.stderr);
    assert!(still.iter().all(|l| l.contains(" read in ")), "{still:?}");
    let run_dir = work.path().join(out.stdout.trim());
    for (extra, interval) in [(&["-q"][..], "0.05"), (&[][..], "0")] {
        let quiet = dump(extra, interval);
        quiet.expect_code(0);
        assert!(!quiet.stderr.contains("still dumping"), "{}", quiet.stderr);
    }

    let scratch = format!("postgres://postgres@{PG_HOST}:{PG_PORT}/postgres");
    let out = run(exporter(work.path())
        .env("EXPORTER_PROGRESS_INTERVAL", "0.05")
        .args([
            "verify",
            s(&run_dir),
            "--level",
            "restore",
            "--scratch",
            &scratch,
        ]));
    out.expect_code(0);
    assert!(
        out.stderr
            .lines()
            .any(|l| (l.starts_with("still restoring slow.sql.zst: ")
                && l.contains("%) read in "))
                || l.starts_with("still checking slow.sql.zst: archive read")),
        "no progress line:\n{}",
        out.stderr
    );

    let target = TestDb::create("still_running_target");
    let out = run(exporter(work.path())
        .env("EXPORTER_PROGRESS_INTERVAL", "0.05")
        .args(["restore", s(&run_dir), "--into", &target.url()]));
    out.expect_code(0);
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("still restoring slow.sql.zst: ") && l.contains("%) read in ")),
        "no progress line:\n{}",
        out.stderr
    );
}
