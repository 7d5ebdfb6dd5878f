//! Levels `checksum` and `decompress`: the run's own files, then every archive read back and
//! compared with the manifest ([`ArchiveRef::check`]). Blocking: run it on a blocking thread.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{DatabaseOutcome, Level, VerifyReport};
use crate::archive::{
    DatabaseEntry, DatabaseStatus, MANIFEST_FILE, Manifest, RECORD_FILES, RunStatus, SUMS_FILE,
};
use crate::progress::{Event, Meter, Progress, Ticker};
use crate::run::{self, ArchiveError, ArchiveRef, ManifestLoadError, ResolvedRun};

/// Check a run at level `checksum` or `decompress` (level `restore` does `decompress` here):
/// the manifest (`Err` is recorded as the run's problem), `SHA256SUMS` against it, files the
/// manifest does not know, then each archive. Reports each problem and archive as an event.
pub fn check_files(
    run: &ResolvedRun,
    level: Level,
    manifest: Result<&Manifest, &ManifestLoadError>,
    progress: &Arc<dyn Progress>,
) -> VerifyReport {
    let mut report = VerifyReport::new(&run.id, level);
    let manifest = match manifest {
        Ok(m) => m,
        Err(e) => {
            add_problems(&mut report, vec![e.problem()], progress.as_ref());
            return report;
        }
    };
    add_problems(&mut report, run_problems(run, manifest), progress.as_ref());
    for db in &manifest.databases {
        report
            .databases
            .push(check_archive(run, db, level, progress));
    }
    report.finish();
    report
}

/// Record run-level problems in `report`, each reported as an [`Event::RunProblem`].
pub fn add_problems(report: &mut VerifyReport, problems: Vec<String>, progress: &dyn Progress) {
    for problem in problems {
        progress.event(&Event::RunProblem {
            problem: problem.clone(),
        });
        report.problems.push(problem);
    }
}

/// Check the archive of one manifest entry at `level` (`restore` reads like `checksum` here:
/// its restore decodes every frame) and report it: [`Event::ArchiveSkipped`] for an entry deliberately not exported,
/// [`Event::ArchiveChecked`] otherwise. `verify` calls it for each entry of a run; `dump
/// --verify` as soon as each archive is committed ([`super::alongside`]). Blocking.
#[must_use]
pub fn check_archive(
    run: &ResolvedRun,
    db: &DatabaseEntry,
    level: Level,
    progress: &Arc<dyn Progress>,
) -> DatabaseOutcome {
    let outcome = check_database(run, db, level, progress);
    if outcome.skipped {
        progress.event(&Event::ArchiveSkipped {
            name: db.name.clone(),
            reason: db.error.clone().unwrap_or_else(|| "not exported".into()),
        });
    } else {
        progress.event(&Event::ArchiveChecked {
            label: outcome.file.clone().unwrap_or_else(|| db.name.clone()),
            ok: outcome.ok,
            stored_bytes: db.compressed_bytes.unwrap_or(0),
            payload_bytes: db.uncompressed_bytes.unwrap_or(0),
            problems: outcome.problems.clone(),
        });
    }
    outcome
}

/// Problems of the run as a whole: a partial run, `SHA256SUMS` against the manifest, files
/// the manifest does not account for. Blocking.
#[must_use]
pub fn run_problems(run: &ResolvedRun, manifest: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    // A run copied or downloaded under another name (FORMAT.md: `aws s3 cp --recursive
    // s3://bucket/prefix/<run-id>/ run/`) is still the same run: its manifest, SHA256SUMS and
    // archives are checked against each other below, which is what proves it. The directory
    // name is not part of the proof.
    if manifest.status == RunStatus::Partial {
        problems.push(format!(
            "{MANIFEST_FILE}: the run is partial: some databases were not dumped"
        ));
    }
    match run::load_sums(run) {
        Ok(lines) => {
            if let Some(p) = compare_sums(manifest, lines) {
                problems.push(p);
            }
        }
        Err(e) => problems.push(e.to_string()),
    }
    // Every file of the run must be accounted for.
    let known: BTreeSet<&str> = manifest
        .databases
        .iter()
        .filter_map(|d| d.file.as_deref())
        .collect();
    match run.storage.list_objects(&run.id) {
        Ok(objects) => {
            for name in objects {
                if !known.contains(name.as_str())
                    && ![MANIFEST_FILE, SUMS_FILE].contains(&name.as_str())
                    && !RECORD_FILES.contains(&name.as_str())
                {
                    problems.push(format!("{name}: extra file, not in the manifest"));
                }
            }
        }
        Err(e) => problems.push(format!("cannot list the run: {e}")),
    }
    problems
}

/// `SHA256SUMS` must list exactly the manifest's files with the manifest's checksums.
fn compare_sums(manifest: &Manifest, lines: Vec<(String, String)>) -> Option<String> {
    let expected: BTreeMap<String, String> = manifest
        .databases
        .iter()
        .filter_map(|d| Some((d.file.clone()?, d.sha256.clone()?)))
        .collect();
    let listed: BTreeMap<String, String> =
        lines.into_iter().map(|(sha, path)| (path, sha)).collect();
    if listed == expected {
        return None;
    }
    let mut diffs = Vec::new();
    for (f, sha) in &expected {
        match listed.get(f) {
            None => diffs.push(format!("{f} missing")),
            Some(s) if s != sha => diffs.push(format!("{f} has another checksum")),
            Some(_) => {}
        }
    }
    for f in listed.keys().filter(|f| !expected.contains_key(*f)) {
        diffs.push(format!("{f} is not in the manifest"));
    }
    Some(format!(
        "{SUMS_FILE}: disagrees with the manifest: {}",
        diffs.join(", ")
    ))
}

/// One archive at `level` (`restore` reads like `decompress` here), reporting its read as
/// [`Event::ArchiveCheckStarted`] and [`Event::ArchiveCheckProgress`].
fn check_database(
    run: &ResolvedRun,
    db: &DatabaseEntry,
    level: Level,
    progress: &Arc<dyn Progress>,
) -> DatabaseOutcome {
    let mut out = DatabaseOutcome {
        name: db.name.clone(),
        file: db.file.clone(),
        ok: false,
        problems: Vec::new(),
        restore: None,
        skipped: false,
    };
    if db.status == DatabaseStatus::Skipped {
        // Deliberately not exported: nothing to check, and not a fault of the run (the
        // teardown treats it as unexported). Reported as skipped, never counted as verified.
        out.ok = true;
        out.skipped = true;
        return out;
    }
    if db.status == DatabaseStatus::Failed {
        out.problems.push(format!(
            "database {} was not dumped in this run: {}",
            db.name,
            db.error.as_deref().unwrap_or("unknown error")
        ));
        return out;
    }
    let label = db.file.clone().unwrap_or_else(|| db.name.clone());
    progress.event(&Event::ArchiveCheckStarted {
        label: label.clone(),
        stored_bytes: db.compressed_bytes.unwrap_or(0),
    });
    let read = Meter::default();
    let _ticker = Ticker::start(progress.heartbeat(), {
        let (progress, read, total_bytes) = (progress.clone(), read.clone(), db.compressed_bytes);
        move |elapsed| {
            progress.event(&Event::ArchiveCheckProgress {
                label: label.clone(),
                bytes_read: read.get(),
                total_bytes,
                seconds: elapsed.as_secs_f64(),
            });
        }
    });
    // Level `restore` decodes every frame as it streams the archive into the scratch
    // database (`pipeline::decode`: each frame's checksum, their count and the payload's size
    // against the manifest), so decoding it here as well would read the payload twice: only
    // its length and SHA-256 are checked first, which keeps a corrupt archive away from the
    // scratch server.
    let decode = level == Level::Decompress;
    let checked =
        ArchiveRef::from_entry(db).and_then(|archive| archive.check_metered(run, decode, &read));
    match checked {
        Ok(()) => {}
        Err(ArchiveError::Corrupt { problems, .. }) => out.problems = problems,
        Err(ArchiveError::Missing { .. }) => out
            .problems
            .push("missing: listed in the manifest but not in storage".into()),
        Err(ArchiveError::Storage { error, .. }) => {
            out.problems.push(format!("cannot be read: {error}"));
        }
    }
    out.ok = out.problems.is_empty();
    out
}
