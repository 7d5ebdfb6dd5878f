//! Archives on disk: run directories, file modes, checksums, zstd, `manifest.json` and
//! `SHA256SUMS` access, configs and temporary directories, per-file verify lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::*;

/// Is `name` shaped like a run id: `YYYYMMDDTHHMMSSZ` with an optional `-N` suffix?
pub fn is_run_id(name: &str) -> bool {
    let (stamp, suffix) = match name.split_once('-') {
        Some((s, n)) => (s, Some(n)),
        None => (name, None),
    };
    let b = stamp.as_bytes();
    b.len() == 16
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && suffix.is_none_or(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// The run directories under a destination, sorted by name.
pub fn run_dirs(dest: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dest) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Names of the entries of a directory, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Every regular file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Assert that after a failed dump nothing under `dest` looks complete: no manifest.json, no
/// SHA256SUMS, no file under a final name (temporary names start with `.` and end in `.tmp`).
#[track_caller]
pub fn assert_nothing_final(dest: &Path) {
    for f in all_files(dest) {
        let name = f
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with('.') && f.extension().is_some_and(|e| e == "tmp"),
            "a failed dump left {} under a final name (only .<name>.tmp files may remain)",
            f.display()
        );
    }
}

/// Mode bits (permissions only) of a path.
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// SHA-256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::encode(Sha256::digest(&bytes))
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Decompress with the stock `zstd -dc` (every frame, checksums checked) and return the bytes.
#[track_caller]
pub fn zstd_decompress(path: &Path) -> Vec<u8> {
    let out = Command::new("zstd")
        .args(["-q", "-dc"])
        .arg(path)
        .output()
        .expect("run zstd");
    assert!(
        out.status.success(),
        "zstd -dc {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Compress bytes into one standalone zstd frame with the stock tool (`zstd -c`, checksum on).
#[track_caller]
pub fn zstd_frame(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("zstd")
        .args(["-q", "-c", "--check"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run zstd -c");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("feed zstd");
    let out = child.wait_with_output().expect("zstd -c");
    assert!(out.status.success(), "zstd -c failed");
    out.stdout
}

/// `zstd -lv`: the number of frames and the content-checksum kind (`XXH64`, `None`, …).
#[track_caller]
pub fn zstd_list(path: &Path) -> (u64, String) {
    let out = Command::new("zstd")
        .args(["-l", "-v"])
        .arg(path)
        .output()
        .expect("run zstd -lv");
    assert!(out.status.success(), "zstd -lv {} failed", path.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let frames = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("# Zstandard Frames:"))
        .unwrap_or_else(|| panic!("no frame count in zstd -lv output:\n{text}"))
        .trim()
        .parse()
        .expect("frame count");
    let check = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Check:"))
        .and_then(|c| c.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    (frames, check)
}

/// Read and parse `manifest.json` of a run.
#[track_caller]
pub fn manifest(run_dir: &Path) -> Value {
    read_json(&run_dir.join("manifest.json"))
}

/// Read and parse a JSON file.
#[track_caller]
pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}\n{text}", path.display()))
}

/// Write JSON back (pretty), keeping the file's mode.
pub fn write_json(path: &Path, value: &Value) {
    let text = serde_json::to_string_pretty(value).expect("serialize");
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The manifest entry of database `name`.
#[track_caller]
pub fn db_entry<'a>(manifest: &'a Value, name: &str) -> &'a Value {
    manifest["databases"]
        .as_array()
        .expect("databases is an array")
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("manifest has no database {name:?}:\n{manifest:#}"))
}

/// Mutable manifest entry of database `name`.
pub fn db_entry_mut<'a>(manifest: &'a mut Value, name: &str) -> &'a mut Value {
    manifest["databases"]
        .as_array_mut()
        .expect("databases is an array")
        .iter_mut()
        .find(|d| d["name"] == name)
        .expect("database in manifest")
}

/// Parse `SHA256SUMS` (`<hex>  <path>` lines) into path -> hash.
#[track_caller]
pub fn read_sha256sums(run_dir: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(run_dir.join("SHA256SUMS")).expect("read SHA256SUMS");
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (hash, path) = l
                .split_once("  ")
                .unwrap_or_else(|| panic!("SHA256SUMS line is not `<hex>  <path>`: {l:?}"));
            (path.to_owned(), hash.to_owned())
        })
        .collect()
}

/// Replace the hash of `file` in `SHA256SUMS`.
pub fn rewrite_sha256sums(run_dir: &Path, file: &str, new_hash: &str) {
    let path = run_dir.join("SHA256SUMS");
    let text = std::fs::read_to_string(&path).expect("read SHA256SUMS");
    let mut found = false;
    let out: String = text
        .lines()
        .map(|l| match l.split_once("  ") {
            Some((_, p)) if p == file => {
                found = true;
                format!("{new_hash}  {p}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    assert!(found, "SHA256SUMS has no line for {file}");
    std::fs::write(&path, out).expect("write SHA256SUMS");
}

/// Run `sha256sum -c SHA256SUMS` inside the run directory; returns (success, output).
pub fn sha256sum_check(run_dir: &Path) -> (bool, String) {
    let out = Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(run_dir)
        .output()
        .expect("run sha256sum");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Write a minimal exporter.toml into `dir` naming `(name, url)` pairs, with an optional
/// `[storage] to`.
pub fn write_config(dir: &Path, to: Option<&str>, dbs: &[(&str, &str)]) -> PathBuf {
    let mut text = String::new();
    if let Some(to) = to {
        let _ = writeln!(text, "[storage]\nto = \"{to}\"\n");
    }
    for (name, url) in dbs {
        let _ = writeln!(text, "[[databases]]\nname = \"{name}\"\nurl = \"{url}\"\n");
    }
    let path = dir.join("exporter.toml");
    std::fs::write(&path, text).expect("write exporter.toml");
    path
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("exp-cli-")
        .tempdir()
        .expect("tempdir")
}

/// Path as &str (test paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Assert that `verify` printed a `FAILED <file>…` line. Both streams are searched so that
/// this helper checks *what* is reported; *where* (stdout, per the CLI contract) is pinned once,
/// by `verify::per_file_lines_and_summary_are_on_stdout`.
#[track_caller]
pub fn assert_failed_line(out: &Outcome, file: &str) {
    assert!(
        out.all_output()
            .lines()
            .any(|l| l.starts_with("FAILED ") && l.contains(file)),
        "verify printed no `FAILED {file}…` line:\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout,
        out.stderr
    );
}

/// Assert that `verify` printed an `ok <file>` line (details may follow after a space); both
/// streams are searched, see [`assert_failed_line`].
#[track_caller]
pub fn assert_ok_line(out: &Outcome, file: &str) {
    let want = format!("ok {file}");
    assert!(
        out.all_output().lines().any(|l| {
            let l = l.trim_end();
            l == want
                || l.strip_prefix(&want)
                    .is_some_and(|rest| rest.starts_with(' '))
        }),
        "verify printed no `ok {file}` line:\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout,
        out.stderr
    );
}
