//! The rendered text of representative errors, pinned with insta (rustic pins its errors the
//! same way). Paths, run ids and times are filtered; `-q` keeps progress lines out.
//!
//! After an intended change of wording: `cargo insta review` (or `INSTA_UPDATE=always cargo
//! test --test cli snapshots`) and commit the `.snap` files.

use std::path::Path;

use crate::support::{exporter, run};

/// Snapshot stderr with the temp dir, run ids and times replaced.
fn assert_stderr_snapshot(name: &str, tmp: &Path, stderr: &str) {
    let mut settings = insta::Settings::clone_current();
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
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(name, stderr));
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
