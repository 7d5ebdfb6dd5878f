//! Issue 16, progress and events: bars on a terminal (the binary run under a pseudo-terminal
//! by `script`), no escape sequence on a stderr that is not a terminal, and the JSON event
//! stream of `--log-format json` (FORMAT.md, "Events on stderr").

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{
    EXPORTER_TIMEOUT, MyDb, Outcome, PG_HOST, PG_PORT, REDIS_SEED, REDIS_SEED_KEYS, RedisServer,
    TestDb, exporter, run, s, small_db, tempdir,
};

/// A database whose dump takes a moment: a million rows, 38 MiB of `COPY` text — big enough
/// that the reading of its table spans many redraws of the bars even on a loaded machine,
/// where the drawing thread may be held back for a while (300,000 rows were once read
/// between two frames during a full test run).
fn sizeable_db(test: &str) -> TestDb {
    TestDb::with_sql(
        test,
        "CREATE TABLE t (id integer PRIMARY KEY, label text);\n\
         INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 1000000) AS i;\n",
    )
}

/// The pseudo-terminal's width.
const COLUMNS: usize = 120;

/// Run `exporter <args>` in `cwd` with stdout and stderr on a pseudo-terminal (util-linux
/// `script`, 120 columns), `extra_env` set; returns the exit code and everything the terminal
/// received.
fn on_a_terminal(cwd: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> (i32, String) {
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_exporter"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let inner = format!("stty cols {COLUMNS} rows 40; exec {}", quoted.join(" "));
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &inner, "/dev/null"])
        .current_dir(cwd)
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .env_remove("EXPORTER_PROGRESS_INTERVAL")
        .env_remove("PGPASSWORD")
        .stdin(std::process::Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` is installed (it runs the binary on a pseudo-terminal)");
    let out = crate::support::wait_child(child, EXPORTER_TIMEOUT, &format!("script -c {inner}"));
    (out.code, out.stdout)
}

/// Escape sequences (`ESC [ parameters letter`) of `raw`, each with its final letter.
fn escapes(raw: &str) -> Vec<(String, char)> {
    let mut found = Vec::new();
    let mut rest = raw;
    while let Some(at) = rest.find("\x1b[") {
        rest = &rest[at + 2..];
        let end = rest
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let params = rest[..end].to_owned();
        let letter = rest[end..].chars().next().unwrap_or(' ');
        found.push((params, letter));
        rest = &rest[(end + 1).min(rest.len())..];
    }
    found
}

/// The terminal's output as the lines and redrawn line states a person saw: colour removed,
/// split at newlines, carriage returns and cursor movements.
fn screens(raw: &str) -> Vec<String> {
    let mut plain = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find("\x1b[") {
        plain.push_str(&rest[..at]);
        rest = &rest[at + 2..];
        let end = rest
            .find(|c: char| c.is_ascii_alphabetic())
            .map_or(rest.len(), |e| e + 1);
        if !rest[..end].ends_with('m') {
            plain.push('\n');
        }
        rest = &rest[end..];
    }
    plain.push_str(rest);
    // A bar fills the terminal's width and relies on the terminal to wrap.
    let mut lines = Vec::new();
    for line in plain.split(['\n', '\r']) {
        let chars: Vec<char> = line.chars().collect();
        for row in chars.chunks(COLUMNS) {
            let row: String = row.iter().collect();
            let row = row.trim_end();
            if !row.is_empty() {
                lines.push(row.to_owned());
            }
        }
    }
    lines
}

/// The last line the terminal received (after the last newline that has text after it),
/// without escape sequences: nothing may be drawn after the summary.
fn last_line(raw: &str) -> String {
    let line = raw.trim_end().rsplit('\n').next().unwrap_or_default();
    let mut plain = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("\x1b[") {
        plain.push_str(&rest[..at]);
        rest = &rest[at + 2..];
        let end = rest
            .find(|c: char| c.is_ascii_alphabetic())
            .map_or(rest.len(), |e| e + 1);
        rest = &rest[end..];
    }
    plain.push_str(rest);
    plain.trim().to_owned()
}

/// Two databases dumped at once on a terminal: a bar per database (its name, bytes in MiB, a
/// rate, the rows read so far and the table being read) and an overall bar are drawn, in
/// colour, and what stays at the end is the summary. Then `verify` on a terminal with
/// `NO_COLOR`: bars for the archives, no colour. The dump redraws every 20 ms
/// (`EXPORTER_PROGRESS_INTERVAL`), so a frame catches each table while it is read.
#[test]
fn bars_on_a_terminal() {
    let (left, right) = (sizeable_db("bars_left"), sizeable_db("bars_right"));
    let work = tempdir();
    let (code, raw) = on_a_terminal(
        work.path(),
        &[
            "dump",
            &format!("left={}", left.url()),
            &format!("right={}", right.url()),
            "--to",
            "out",
            "-j",
            "2",
        ],
        &[("EXPORTER_PROGRESS_INTERVAL", "0.02")],
    );
    let lines = screens(&raw);
    assert_eq!(code, 0, "{raw}");
    for name in ["left", "right"] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("  {name} "))
                && l.contains("MiB")
                && l.contains("/s")),
            "no bar of {name} with a MiB figure and a rate:\n{}",
            lines.join("\n")
        );
        // Issue 16: rows or keys and the current table in the bar (`12,345 rows, reading
        // public.t`).
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("  {name} "))
                && bar_rows(l).is_some_and(|n| n > 0)
                && l.contains(" rows, reading public.t")),
            "no bar of {name} with a row count and the table being read:\n{}",
            lines.join("\n")
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("dump ") && l.contains("/2 databases")),
        "no overall bar:\n{}",
        lines.join("\n")
    );
    assert!(
        escapes(&raw).iter().any(|(p, l)| *l == 'm' && p == "36"),
        "the bars are in colour (cyan):\n{raw:?}"
    );
    let last = last_line(&raw);
    assert!(
        last.starts_with("run ") && last.contains("complete: 2 archive(s)"),
        "the output ends with the summary, not with {last:?}:\n{}",
        lines.join("\n")
    );
    let run_dir = lines
        .iter()
        .find(|l| l.starts_with("out/"))
        .expect("the run directory on stdout");

    let (code, raw) = on_a_terminal(
        work.path(),
        &["verify", run_dir, "--level", "checksum"],
        &[("NO_COLOR", "1")],
    );
    let lines = screens(&raw);
    assert_eq!(code, 0, "{raw}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("verify ") && l.contains("/2 archives read back")),
        "no overall bar:\n{}",
        lines.join("\n")
    );
    let escapes = escapes(&raw);
    assert!(
        escapes.iter().all(|(_, l)| *l != 'm'),
        "NO_COLOR: no colour:\n{raw:?}"
    );
    assert!(!escapes.is_empty(), "bars were drawn:\n{raw:?}");
    let last = last_line(&raw);
    assert!(
        last.contains("all 2 archive(s) verified at level checksum"),
        "the output ends with the summary, not with {last:?}:\n{}",
        lines.join("\n")
    );
}

/// The row count a dump's bar shows (`…, 12,345 rows, …`), if any.
fn bar_rows(line: &str) -> Option<u64> {
    let before = line.split(" rows").next()?;
    let number = before.rsplit(' ').next()?;
    number.replace(',', "").parse().ok()
}

/// When stderr is a pipe (CI, a log file), dump, verify and restore write plain lines — the
/// "still running" ones included, with the rows read and the current table — and no escape
/// sequence, even with a colour-capable `TERM` and no `NO_COLOR`.
#[test]
fn no_escape_sequence_reaches_a_pipe() {
    let db = sizeable_db("plain_lines");
    let work = tempdir();
    let plain = |args: &[&str]| -> Outcome {
        let out = run(exporter(work.path())
            .env_remove("NO_COLOR")
            .env("TERM", "xterm-256color")
            .env("EXPORTER_PROGRESS_INTERVAL", "0.05")
            .args(args));
        out.expect_code(0);
        for (stream, text) in [("stderr", &out.stderr), ("stdout", &out.stdout)] {
            assert!(
                !text.contains('\x1b'),
                "`{}` wrote an escape sequence on its {stream}:\n{text:?}",
                out.command
            );
        }
        out
    };
    let dump = plain(&[
        "dump",
        &format!("plain={}", db.url()),
        "--to",
        "out",
        "-j",
        "1",
    ]);
    assert!(
        dump.stderr.contains("  plain: still dumping: "),
        "{}",
        dump.stderr
    );
    assert!(
        dump.stderr
            .lines()
            .any(|l| l.starts_with("  plain: still dumping: ")
                && l.ends_with(" rows, reading public.t")),
        "a plain line with the rows and the table being read:\n{}",
        dump.stderr
    );
    let run_dir = work.path().join(dump.last_stdout_line());
    let scratch = format!("postgres://postgres@{PG_HOST}:{PG_PORT}/postgres");
    plain(&[
        "verify",
        s(&run_dir),
        "--level",
        "restore",
        "--scratch",
        &scratch,
    ]);
    let target = TestDb::create("plain_lines_target");
    plain(&["restore", s(&run_dir), "--into", &target.url()]);
}

/// Every stderr line of a JSON-mode run, parsed; fails unless each is a JSON object with the
/// schema version and a time.
#[track_caller]
fn events(out: &Outcome) -> Vec<Value> {
    out.stderr
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!(
                    "`{}`: a stderr line is not JSON ({e}): {line:?}\n{}",
                    out.command, out.stderr
                )
            });
            assert_eq!(v["version"], 1, "{line}");
            assert!(v["time"].is_string(), "{line}");
            assert!(v["event"].is_string(), "{line}");
            v
        })
        .collect()
}

fn names(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["event"].as_str()).collect()
}

/// `--log-format json`: every stderr line of a dump (with heartbeats and `-vv` log records),
/// a verification and a failing dump is a JSON event with the version field; the dump's
/// `database_dumped` carries sizes and the SHA-256 of the manifest; the failing dump ends with
/// an `error` event naming the database, and never shows its password.
#[test]
fn every_stderr_line_is_a_json_event() {
    // `a` big enough that its dump outlasts a heartbeat or two (its catalog is read by the
    // check before the dump, so the dump itself starts with the rows).
    let (a, b) = (sizeable_db("events_a"), small_db("events_b", 10));
    let work = tempdir();
    let out = run(exporter(work.path())
        .env("EXPORTER_PROGRESS_INTERVAL", "0.05")
        .args([
            "--log-format",
            "json",
            "-vv",
            "dump",
            &format!("a={}", a.url()),
            &format!("b={}", b.url()),
            "--to",
            "out",
        ]));
    out.expect_code(0);
    let all = events(&out);
    assert!(
        all.iter()
            .any(|e| e["event"] == "log" && e["level"] == "debug"),
        "-vv: log records are events too"
    );
    let dump: Vec<Value> = all.into_iter().filter(|e| e["event"] != "log").collect();
    let kinds = names(&dump);
    assert_eq!(kinds.first(), Some(&"dump_started"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"run_finished"), "{kinds:?}");
    for kind in ["database_started", "database_progress", "database_dumped"] {
        assert!(kinds.contains(&kind), "no {kind} event: {kinds:?}");
    }
    let run_dir = work.path().join(out.stdout.trim());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("manifest.json")).unwrap()).unwrap();
    for entry in manifest["databases"].as_array().unwrap() {
        let done = dump
            .iter()
            .find(|e| e["event"] == "database_dumped" && e["name"] == entry["name"])
            .unwrap_or_else(|| panic!("no database_dumped for {}", entry["name"]));
        for field in ["sha256", "compressed_bytes", "uncompressed_bytes", "file"] {
            assert_eq!(done[field], entry[field], "{field} of {}", entry["name"]);
        }
    }
    let finished = dump.last().expect("events");
    assert_eq!(finished["status"], "complete");
    assert_eq!(finished["databases"], 2);

    let out = run(exporter(work.path()).args(["--log-format", "json", "verify", s(&run_dir)]));
    out.expect_code(0);
    let verify = events(&out);
    let kinds = names(&verify);
    assert_eq!(kinds.first(), Some(&"verify_started"), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "archive_checked").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(verify.last().unwrap()["event"], "run_finished");
    assert_eq!(verify.last().unwrap()["ok"], true);
    assert!(
        out.stdout.contains("ok a.sql.zst"),
        "per-archive lines stay on stdout:\n{}",
        out.stdout
    );

    // The check before the dump says no first: the stream ends with the error naming the
    // database, and no dump event.
    let out = run(exporter(work.path()).args([
        "--log-format",
        "json",
        "dump",
        "broken=postgres://postgres:s3cret-pw@127.0.0.1:1/nowhere",
        "--to",
        "out",
    ]));
    out.expect_code(3).never_shows("s3cret-pw");
    let checked = events(&out);
    let last = checked.last().unwrap();
    assert_eq!(last["event"], "error", "{}", out.stderr);
    assert!(
        last["message"].as_str().unwrap().contains("broken"),
        "the error names the database: {last}"
    );
    assert!(!names(&checked).contains(&"dump_started"), "{}", out.stderr);

    // Past the check, the dump's own failure events.
    let out = run(exporter(work.path()).args([
        "--log-format",
        "json",
        "dump",
        "--no-check",
        "broken=postgres://postgres:s3cret-pw@127.0.0.1:1/nowhere",
        "--to",
        "out",
    ]));
    out.expect_code(3).never_shows("s3cret-pw");
    let failed = events(&out);
    let last = failed.last().unwrap();
    assert_eq!(last["event"], "error", "{}", out.stderr);
    assert_eq!(last["exit_code"], 3);
    assert!(
        last["message"].as_str().unwrap().contains("broken"),
        "the error names the database: {last}"
    );
    assert!(
        names(&failed).contains(&"database_failed"),
        "{}",
        out.stderr
    );
}

/// The JSON event stream of a small run, pinned: a dump of one database, then its
/// verification (times, sizes, digests, run ids, paths and the database's name filtered).
#[test]
fn snapshot_json_event_stream() {
    let db = small_db("events_snap", 3);
    let work = tempdir();
    let json_run = |args: &[&str]| {
        let out = run(exporter(work.path())
            .env("EXPORTER_PROGRESS_INTERVAL", "0")
            .args(["--log-format", "json"])
            .args(args));
        out.expect_code(0);
        out
    };
    let dump = json_run(&["dump", &format!("app={}", db.url()), "--to", "out"]);
    let run_dir = work.path().join(dump.stdout.trim());
    let verify = json_run(&["verify", s(&run_dir)]);
    let mut text = String::new();
    for (command, out) in [("dump", &dump), ("verify", &verify)] {
        events(out);
        text.push_str("# ");
        text.push_str(command);
        text.push('\n');
        text.push_str(&out.stderr);
    }
    let text = text.replace(&db.name, "[DB]");
    // As emitted (field order included), with what changes from run to run filtered.
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r#""(seconds|millis)":[0-9.e+-]+"#, r#""$1":"[SECONDS]""#);
    settings.add_filter(r#""(\w+_bytes)":\d+"#, r#""$1":"[BYTES]""#);
    settings.bind(|| {
        crate::snapshots::assert_filtered_snapshot("json_event_stream", work.path(), &text);
    });
}

/// Issue 16, "table done" events: a run of a PostgreSQL database with three tables (one
/// empty), a MariaDB database with two tables and a sequence, and a Redis server with two
/// logical databases sends one `table_dumped` per table (Redis: per logical database) of each
/// manifest entry, with the manifest's row counts, before that database's `database_dumped`;
/// the heartbeats' rows never exceed the database's total and name only its tables.
#[test]
fn table_dumped_events_match_the_manifest() {
    let pg = TestDb::with_sql(
        "tables_pg",
        "CREATE TABLE a (id integer PRIMARY KEY, label text);\n\
         INSERT INTO a SELECT i, md5(i::text) FROM generate_series(1, 20000) AS i;\n\
         CREATE TABLE b (id integer);\n\
         INSERT INTO b SELECT generate_series(1, 37);\n\
         CREATE TABLE \"Empty One\" (id integer);\n",
    );
    let my = MyDb::create("tables_my");
    my.query(
        "CREATE TABLE a (id INT PRIMARY KEY, label VARCHAR(40));\n\
         INSERT INTO a SELECT seq, MD5(seq) FROM seq_1_to_5000;\n\
         CREATE TABLE b (id INT);\n\
         INSERT INTO b VALUES (1), (2), (3);\n\
         CREATE SEQUENCE s;",
    );
    let redis = RedisServer::start();
    redis.seed(REDIS_SEED);
    let work = tempdir();
    let out = run(exporter(work.path())
        .env("EXPORTER_PROGRESS_INTERVAL", "0.02")
        .args([
            "--log-format",
            "json",
            "dump",
            &format!("pg={}", pg.url()),
            &format!("my={}", my.url()),
            &format!("rd={}", redis.url()),
            "--to",
            "out",
            "-j",
            "3",
        ]));
    out.expect_code(0);
    let all = events(&out);
    let run_dir = work.path().join(out.stdout.trim());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("manifest.json")).unwrap()).unwrap();
    let entries = manifest["databases"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for entry in entries {
        let name = entry["name"].as_str().unwrap();
        let expected: BTreeMap<String, u64> = entry["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_owned(),
                    t["rows"].as_u64().unwrap(),
                )
            })
            .collect();
        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        let mut dumped_at = None;
        for (i, e) in all.iter().enumerate() {
            if e["name"] != name {
                continue;
            }
            match e["event"].as_str().unwrap() {
                "table_dumped" => {
                    assert!(
                        dumped_at.is_none(),
                        "{name}: a table after the archive: {e}"
                    );
                    let table = e["table"].as_str().unwrap().to_owned();
                    assert!(e["seconds"].as_f64().unwrap() >= 0.0, "{e}");
                    let rows = e["rows"].as_u64().unwrap();
                    assert!(
                        seen.insert(table, rows).is_none(),
                        "{name}: a table reported twice: {e}"
                    );
                }
                "database_dumped" => dumped_at = Some(i),
                "database_progress" => {
                    let total: u64 = expected.values().sum();
                    assert!(e["rows"].as_u64().unwrap() <= total, "{e}");
                    for t in e["current_tables"].as_array().unwrap() {
                        assert!(
                            expected.contains_key(t.as_str().unwrap()),
                            "{name}: a current table not in the manifest: {e}"
                        );
                    }
                }
                _ => {}
            }
        }
        assert!(dumped_at.is_some(), "no database_dumped for {name}");
        assert_eq!(
            seen, expected,
            "{name}: table_dumped events vs the manifest"
        );
    }
    // What the seeds hold, so the comparison above compared something.
    let tables = |name: &str| {
        entries.iter().find(|e| e["name"] == name).unwrap()["tables"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(tables("pg"), 3);
    assert_eq!(tables("my"), 3, "two tables and a sequence");
    assert_eq!(tables("rd"), 2, "two logical databases");
    let rd: Vec<&Value> = all
        .iter()
        .filter(|e| e["event"] == "table_dumped" && e["name"] == "rd")
        .collect();
    let keys: Vec<(&str, u64)> = rd
        .iter()
        .map(|e| (e["table"].as_str().unwrap(), e["rows"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        keys,
        [("db0", REDIS_SEED_KEYS.0), ("db1", REDIS_SEED_KEYS.1)]
    );
}
