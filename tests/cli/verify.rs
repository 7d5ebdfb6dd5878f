//! `verify`: a good run passes at both levels; every kind of damage (A06 included) exits 1
//! naming the bad file; the default run choice.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::support::{
    Outcome, TestDb, assert_failed_line, assert_ok_line, db_entry_mut, dump_ok, exporter, manifest,
    pg_scratch, read_json, restore_with_stock_tools, rewrite_sha256sums, run, s, sha256_bytes,
    sha256_file, small_db, tempdir, write_json, zstd_decompress, zstd_frame,
};

/// A good run of a one-table database (a few KB of archive).
struct GoodRun {
    _work: TempDir,
    db: TestDb,
    dest: PathBuf,
    run_dir: PathBuf,
    file: String,
}

impl GoodRun {
    fn new(test: &str) -> Self {
        let db = small_db(test, 3000);
        let work = tempdir();
        let dest = work.path().join("dest");
        let run_dir = dump_ok(work.path(), &["dump", &db.url(), "--to", s(&dest)]);
        let file = format!("{}.sql.zst", db.name);
        Self {
            _work: work,
            db,
            dest,
            run_dir,
            file,
        }
    }

    fn archive(&self) -> PathBuf {
        self.run_dir.join(&self.file)
    }

    fn verify(&self, extra: &[&str]) -> Outcome {
        run(exporter(&self.dest)
            .arg("verify")
            .arg(&self.run_dir)
            .args(extra))
    }

    /// verify must exit 1 at `level`, print `FAILED <file>` and record ok=false.
    #[track_caller]
    fn expect_failure(&self, level: &str, bad_file: &str) {
        let out = self.verify(&["--level", level]);
        out.expect_code(1);
        assert_failed_line(&out, bad_file);
        let v = read_json(&self.run_dir.join("verify.json"));
        assert_eq!(
            v["ok"], false,
            "verify.json must record the failure:\n{v:#}"
        );
        assert_eq!(v["level"], level);
    }

    /// Make the manifest and SHA256SUMS describe the archive as it is now (as if the tool had
    /// written it this way), with `frames` frames and `plain_len` uncompressed bytes.
    fn reseal(&self, frames: u64, plain_len: u64) {
        let bytes = std::fs::read(self.archive()).unwrap();
        let sha = sha256_bytes(&bytes);
        let path = self.run_dir.join("manifest.json");
        let mut m = read_json(&path);
        let e = db_entry_mut(&mut m, &self.db.name);
        e["compressed_bytes"] = (bytes.len() as u64).into();
        e["sha256"] = sha.clone().into();
        e["zstd_frames"] = frames.into();
        e["uncompressed_bytes"] = plain_len.into();
        write_json(&path, &m);
        rewrite_sha256sums(&self.run_dir, &self.file, &sha);
    }
}

fn truncate(path: &Path, len: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
}

#[test]
fn good_run_passes_at_both_levels_by_path_and_by_id() {
    let g = GoodRun::new("v_good");
    let out = g.verify(&[]);
    out.expect_code(0);
    assert_ok_line(&out, &g.file);
    assert_eq!(
        read_json(&g.run_dir.join("verify.json"))["level"],
        "decompress"
    );

    // A check at a lower level passes and keeps the stronger record.
    let out = g.verify(&["--level", "checksum"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains(
            "verified at level checksum; verify.json keeps the level decompress verification"
        ),
        "{}",
        out.all_output()
    );
    let v = read_json(&g.run_dir.join("verify.json"));
    assert_eq!(v["level"], "decompress");
    assert_eq!(v["ok"], true);

    // By run id under --to.
    let id = g.run_dir.file_name().unwrap().to_str().unwrap();
    run(exporter(&g.dest).args(["verify", id, "--to", s(&g.dest)])).expect_code(0);

    // A run copied (or downloaded) under another directory name is the same run: its files
    // prove it, not its directory's name (FORMAT.md's `aws s3 cp … run/`).
    let copy = g.dest.join("copied").join("run");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&g.run_dir).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let out = run(exporter(&g.dest).arg("verify").arg(&copy));
    out.expect_code(0);
    assert_ok_line(&out, &g.file);
    assert_eq!(read_json(&copy.join("verify.json"))["ok"], true);
}

#[test]
fn flipped_byte_in_the_middle_fails() {
    let g = GoodRun::new("v_flip");
    let mut bytes = std::fs::read(g.archive()).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(g.archive(), &bytes).unwrap();
    g.expect_failure("decompress", &g.file);
    g.expect_failure("checksum", &g.file);
}

#[test]
fn truncated_by_a_few_bytes_fails() {
    let g = GoodRun::new("v_trunc");
    let len = std::fs::metadata(g.archive()).unwrap().len();
    truncate(&g.archive(), len - 3);
    g.expect_failure("decompress", &g.file);
    g.expect_failure("checksum", &g.file);
}

/// A06: a valid zstd frame appended behind the archive's frames. `zstd -t` cannot tell; the
/// recorded length and SHA-256 can.
#[test]
fn a06_appended_valid_frame_fails() {
    let g = GoodRun::new("v_append");
    let mut bytes = std::fs::read(g.archive()).unwrap();
    bytes.extend(zstd_frame(b"-- an extra frame\n"));
    std::fs::write(g.archive(), &bytes).unwrap();
    let t = std::process::Command::new("zstd")
        .arg("-qt")
        .arg(g.archive())
        .status()
        .unwrap();
    assert!(
        t.success(),
        "precondition: zstd -t accepts the file with the appended frame"
    );
    g.expect_failure("decompress", &g.file);
    g.expect_failure("checksum", &g.file);
}

/// A06: a multi-frame archive is decoded whole (every frame), and a cut exactly at its first
/// frame boundary — which looks valid to `zstd -t` — is caught; when the checksums were
/// rewritten to match the cut, the decompress level still catches it by frame count and
/// uncompressed length.
#[test]
fn a06_multi_frame_archive_and_cut_at_frame_boundary() {
    let g = GoodRun::new("v_frames");
    let original = std::fs::read(g.archive()).unwrap();
    let m = manifest(&g.run_dir);
    let frames0 = m["databases"][0]["zstd_frames"]
        .as_u64()
        .expect("zstd_frames");
    let plain0 = zstd_decompress(&g.archive());
    // The second frame is real SQL, so a restore proves both frames were applied.
    // Schema-qualified: the dump empties search_path, as pg_dump's output does.
    let extra_sql = b"CREATE TABLE public.second_frame (x integer);\n\
                      INSERT INTO public.second_frame VALUES (42);\n";
    let mut multi = original.clone();
    multi.extend(zstd_frame(extra_sql));
    std::fs::write(g.archive(), &multi).unwrap();
    g.reseal(frames0 + 1, (plain0.len() + extra_sql.len()) as u64);

    // (a) every frame is decoded: the resealed multi-frame run verifies.
    let out = g.verify(&[]);
    out.expect_code(0);
    let target = TestDb::create("v_frames_r");
    restore_with_stock_tools(&g.archive(), &target);
    assert_eq!(target.query("SELECT x FROM second_frame"), "42");
    assert_eq!(target.query("SELECT count(*) FROM t"), "3000");

    // (b) cut at the frame boundary, nothing else touched: length and SHA-256 differ.
    truncate(&g.archive(), original.len() as u64);
    let t = std::process::Command::new("zstd")
        .arg("-qt")
        .arg(g.archive())
        .status()
        .unwrap();
    assert!(
        t.success(),
        "precondition: the cut file looks valid to zstd -t"
    );
    g.expect_failure("decompress", &g.file);
    g.expect_failure("checksum", &g.file);

    // (c) checksums rewritten to match the cut, frame count and uncompressed length not:
    // only the decompress level can see it.
    let bytes = std::fs::read(g.archive()).unwrap();
    assert_eq!(bytes, original);
    let sha = sha256_file(&g.archive());
    let path = g.run_dir.join("manifest.json");
    let mut m = read_json(&path);
    let e = db_entry_mut(&mut m, &g.db.name);
    e["compressed_bytes"] = (bytes.len() as u64).into();
    e["sha256"] = sha.clone().into();
    write_json(&path, &m);
    rewrite_sha256sums(&g.run_dir, &g.file, &sha);
    g.verify(&["--level", "checksum"]).expect_code(0);
    g.expect_failure("decompress", &g.file);

    // (d) level restore decodes the frames on its restore's stream, not in a pass of its
    // own before it: it sees the same and fails, and the scratch database is gone.
    let out = g.verify(&["--level", "restore", "--scratch", &pg_scratch()]);
    out.expect_code(1);
    assert!(
        out.all_output().contains("frame"),
        "the frame count is named: {}",
        out.all_output()
    );
    assert_eq!(read_json(&g.run_dir.join("verify.json"))["ok"], false);
    let id = g
        .run_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase();
    assert_eq!(
        crate::support::psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname LIKE 'exporter_verify_{id}%'")
        )
        .trim(),
        "0"
    );
}

#[test]
fn missing_file_fails() {
    let g = GoodRun::new("v_missing");
    std::fs::remove_file(g.archive()).unwrap();
    g.expect_failure("decompress", &g.file);
}

#[test]
fn extra_file_fails() {
    let g = GoodRun::new("v_extra");
    std::fs::write(g.run_dir.join("stray.sql.zst"), zstd_frame(b"SELECT 1;\n")).unwrap();
    g.expect_failure("decompress", "stray.sql.zst");
}

#[test]
fn unparsable_manifest_fails_naming_it() {
    let g = GoodRun::new("v_badmani");
    std::fs::write(
        g.run_dir.join("manifest.json"),
        "{\"format\": \"exporter-archive\", ",
    )
    .unwrap();
    let out = g.verify(&[]);
    out.expect_code(1);
    assert!(
        out.all_output().contains("manifest.json"),
        "verify must name manifest.json:\n{}",
        out.all_output()
    );
}

#[test]
fn disagreeing_sha256sums_fails() {
    let g = GoodRun::new("v_sums");
    let good = sha256_file(&g.archive());
    let mut bad = good.into_bytes();
    bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
    rewrite_sha256sums(&g.run_dir, &g.file, std::str::from_utf8(&bad).unwrap());
    let out = g.verify(&[]);
    out.expect_code(1);
    assert!(
        out.all_output()
            .lines()
            .any(|l| l.starts_with("FAILED ") && l.contains("SHA256SUMS")),
        "verify must report SHA256SUMS on a FAILED line:\n{}",
        out.stdout
    );
}

/// `verify` without RUN picks the latest run under DEST that has a manifest.json; a newer
/// directory without a manifest (an interrupted run) is ignored.
#[test]
fn default_run_is_the_latest_with_a_manifest() {
    let db = small_db("v_latest", 100);
    let work = tempdir();
    let dest = work.path().join("dest");
    let a = dump_ok(work.path(), &["dump", &db.url(), "--to", s(&dest)]);
    let b = dump_ok(work.path(), &["dump", &db.url(), "--to", s(&dest)]);
    assert!(
        a < b,
        "run ids must sort by time: {} !< {}",
        a.display(),
        b.display()
    );
    let interrupted = dest.join("29991231T235959Z");
    std::fs::create_dir(&interrupted).unwrap();
    std::fs::write(
        interrupted.join(format!(".{}.sql.zst.tmp", db.name)),
        b"partial",
    )
    .unwrap();
    let file = format!("{}.sql.zst", db.name);

    // Damage the older run: the default choice must not look at it.
    std::fs::write(a.join(&file), b"garbage").unwrap();
    let out = run(exporter(work.path()).args(["verify", "--to", s(&dest)]));
    out.expect_code(0);
    assert!(
        b.join("verify.json").is_file(),
        "the latest run was not the one verified"
    );
    assert!(
        !a.join("verify.json").exists(),
        "the older run was verified"
    );
    assert!(
        !interrupted.join("verify.json").exists(),
        "the manifest-less dir was chosen"
    );

    // Damage the latest: now the default verify fails, naming the file.
    std::fs::write(b.join(&file), b"garbage").unwrap();
    let out = run(exporter(work.path()).args(["verify", "--to", s(&dest)]));
    out.expect_code(1);
    assert_failed_line(&out, &file);
}

/// The CLI contract puts verify's results on stdout (data), progress on stderr: one `ok <file>`
/// or `FAILED <file>: <reason>` line per file, then, when the run passed, a summary line. A
/// failed run's summary is its `error:` line on stderr, printed once (issue 16: it was
/// printed on both).
#[test]
fn per_file_lines_and_summary_are_on_stdout() {
    let g = GoodRun::new("v_stdout");
    let out = g.verify(&[]);
    out.expect_code(0);
    let last = out.stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("run ") && last.ends_with("verified at level decompress"),
        "no summary line last: {last:?}"
    );
    std::fs::write(g.run_dir.join("stray.txt"), b"x").unwrap();
    let out = g.verify(&[]);
    out.expect_code(1);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let ok = format!("ok {}", g.file);
    assert!(
        lines.iter().any(|l| l.starts_with(&ok)),
        "no `{ok}` line on stdout:\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        lines.iter().any(|l| l.starts_with("FAILED stray.txt")),
        "no `FAILED stray.txt` line on stdout:\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        !out.stdout.contains("failed verification"),
        "the summary is the error line only:\n{}",
        out.stdout
    );
    out.stderr_contains("failed verification: 0 of 1 archive(s) bad, 1 run-level problem(s)");
}
