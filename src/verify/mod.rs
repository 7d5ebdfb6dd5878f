//! Verification as a value: read a run back from storage and prove it (design.md section 6,
//! levels `checksum`, `decompress` and `restore`), returning a [`VerifyReport`] that is also
//! written as `verify.json` next to the manifest.
//!
//! - [`files`]: levels `checksum` and `decompress` — the manifest, `SHA256SUMS`, extra files,
//!   then every archive's length, SHA-256 and (with `decompress`) every zstd frame;
//! - [`scratch`]: level `restore` — each good archive restored into a scratch database that
//!   the tool creates and always drops (also on failure and on Ctrl-C: the scratch database is
//!   registered with the cleanup scope), its fingerprints compared with the manifest's;
//! - [`overlap`]: how level `restore` checks two archives at once — one fingerprinted and
//!   dropped while the next is restored — with the events still in manifest order.
//!
//! - [`alongside`]: the same checks of a run while it is written (`dump --verify LEVEL`):
//!   each archive as soon as it is committed, then the run's own files, one `verify.json`.
//!
//! Progress (per-archive lines) goes out as [`Event`]s; nothing here prints.

pub mod alongside;
pub mod files;
pub mod overlap;
pub mod report;
pub mod scratch;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::archive::VERIFY_FILE;
use crate::archive::manifest::SourceInfo;
use crate::blocking::{self, ThreadError};
use crate::cleanup::Cleanup;
use crate::endpoint::EndpointProvider;
use crate::progress::{Event, Progress};
use crate::run::{self, ResolvedRun, RunError};
use crate::settings::VerifyPlan;
use crate::storage::Storage;

pub use report::{DatabaseOutcome, RestoreCheck, Verdict, VerifyReport};

/// How deep to check; each level includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Length and SHA-256.
    Checksum,
    /// Also every zstd frame, its content checksum, frame count and uncompressed length.
    Decompress,
    /// Also a restore into a scratch database and a comparison of its fingerprints with the
    /// manifest's.
    Restore,
}

impl Level {
    /// `checksum`, `decompress` or `restore`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Checksum => "checksum",
            Self::Decompress => "decompress",
            Self::Restore => "restore",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a verification could not run, or what its report says when it failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The run cannot be found.
    #[error(transparent)]
    Run(#[from] RunError),
    /// At level `restore`, an engine of the run has no `--scratch` server (checked before
    /// anything is restored).
    #[error("level restore needs a --scratch server for {engines}")]
    MissingScratch {
        /// `engine (for db, db); …`.
        engines: String,
    },
    /// At level `restore`, a `--scratch` server cannot serve (a Redis server that is not
    /// empty, one that cannot be reached), found before anything is restored.
    #[error("--scratch server {server} cannot be used")]
    ScratchRefused {
        /// The server (redacted).
        server: String,
        /// The adapter's error.
        #[source]
        source: exporter_contract::EngineError,
    },
    /// `verify.json` cannot be written.
    #[error("cannot write {VERIFY_FILE} in {location}")]
    WriteRecord {
        /// `<storage>/<run-id>`.
        location: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The report found problems (see [`Verification::check`]).
    #[error(
        "run {run_id} failed verification: {bad} of {total} archive(s) bad, {problems} run-level problem(s)"
    )]
    Failed {
        /// The run id.
        run_id: String,
        /// Databases that failed a check.
        bad: usize,
        /// Databases in the report.
        total: usize,
        /// Run-level problems.
        problems: usize,
        /// Where the run's databases came from (the manifest's `source`; `None` when it
        /// could not be read), for the hint on how to dump them again.
        origin: Option<SourceInfo>,
    },
    /// Only the scratch servers failed — a scratch database could not be created, or the
    /// scratch server stopped a restore (a privilege its role lacks, a session it refused, a
    /// tablespace it lacks): nothing is known to be wrong with the archives, but level
    /// `restore` was not reached.
    #[error(
        "run {run_id} could not be verified at level restore: the scratch server could not take it \
         (a scratch database could not be created, or the server stopped the restore: see above)"
    )]
    ScratchUnavailable {
        /// The run id.
        run_id: String,
        /// The adapter's hint for the first server that failed (e.g. a TLS parameter).
        hint: Option<String>,
    },
    /// A worker thread failed.
    #[error(transparent)]
    Thread(#[from] ThreadError),
}

impl VerifyError {
    /// [`VerifyError::Failed`] for a report with findings about a run dumped from `source`.
    #[must_use]
    pub fn failed(report: &VerifyReport, source: Option<&SourceInfo>) -> Self {
        Self::Failed {
            run_id: report.run_id.clone(),
            bad: report.bad(),
            total: report.databases.len(),
            problems: report.problems.len(),
            origin: source.cloned(),
        }
    }
}

/// A finished verification: the report (as written to `verify.json`) and the databases that
/// could not be checked at level `restore` because their scratch database could not be
/// created (a runtime failure, not a finding about the archive).
#[derive(Debug, Clone)]
pub struct Verification {
    /// The report.
    pub report: VerifyReport,
    /// Databases whose scratch database could not be created.
    pub scratch_unavailable: scratch::Unavailable,
    /// The manifest's `source` (config, URLs or a platform environment), when it was read.
    pub source: Option<SourceInfo>,
    /// The run's earlier verification at a higher level, kept as `verify.json` because this
    /// one passed at a lower level on the same manifest (not replaced by it).
    pub kept: Option<VerifyReport>,
}

impl Verification {
    /// Whether the run passed.
    ///
    /// # Errors
    ///
    /// [`VerifyError::ScratchUnavailable`] when the only failures are scratch databases that
    /// could not be created, [`VerifyError::Failed`] for any other failure.
    pub fn check(&self) -> Result<(), VerifyError> {
        let report = &self.report;
        if report.ok {
            return Ok(());
        }
        let unavailable = &self.scratch_unavailable;
        if only_unavailable(report, unavailable) {
            return Err(VerifyError::ScratchUnavailable {
                run_id: report.run_id.clone(),
                hint: unavailable.hint.clone(),
            });
        }
        Err(VerifyError::failed(report, self.source.as_ref()))
    }
}

/// Whether the only failures of `report` are scratch databases that could not be created: the
/// verification did not reach level `restore`, and nothing is known about the archives.
fn only_unavailable(report: &VerifyReport, unavailable: &scratch::Unavailable) -> bool {
    !report.ok
        && unavailable.databases > 0
        && unavailable.databases == report.bad()
        && report.problems.is_empty()
}

/// What a verification needs besides the plan.
pub struct VerifyContext<'a> {
    /// The destination's storage ([`crate::storage::open`]).
    pub storage: Arc<dyn Storage>,
    /// Turns `--scratch` servers into live endpoints.
    pub endpoints: &'a dyn EndpointProvider,
    /// The command's cleanup scope: scratch databases are registered there.
    pub cleanup: &'a Cleanup,
    /// Receives the progress events.
    pub progress: Arc<dyn Progress>,
}

/// Verify a run at the plan's level and record the result as `verify.json` (unless the only
/// failures are scratch databases that could not be created: then the previous record stays).
///
/// # Errors
///
/// [`VerifyError`]: the run cannot be found; at level `restore` an engine without a
/// `--scratch` server; `verify.json` cannot be written. Findings about the archives are not
/// errors here: they are in the report ([`Verification::check`]).
///
/// # Cancel safety
///
/// Dropping the future stops the reads; scratch databases are dropped when the cleanup scope
/// closes; nothing is recorded.
pub async fn verify(
    plan: &VerifyPlan,
    cx: &VerifyContext<'_>,
) -> Result<Verification, VerifyError> {
    let level = plan.level;
    let (run, manifest) = {
        let destination = plan.destination.clone();
        let wanted = plan.run.clone();
        let storage = cx.storage.clone();
        let progress = cx.progress.clone();
        blocking::run("the verification thread", move || {
            let run = run::resolve(&destination, storage, wanted.as_deref(), progress.as_ref())?;
            let manifest = run::load_manifest_with_digest(&run);
            Ok::<_, VerifyError>((run, manifest))
        })
        .await??
    };
    let (manifest, manifest_sha256) = match manifest {
        Ok((manifest, digest)) => (Ok(manifest), Some(digest)),
        Err(e) => (Err(e), None),
    };
    if level == Level::Restore
        && let Ok(manifest) = &manifest
    {
        scratch::check_coverage(plan, manifest)?;
        scratch::check_servers(plan, manifest, cx).await?;
    }
    cx.progress.event(&Event::VerifyStarted {
        run_id: run.id.clone(),
        level,
        location: run.location(),
        archives: manifest.as_ref().map_or(0, |m| m.databases.len()),
    });
    let (mut report, manifest) = {
        let (run, progress) = (run.clone(), cx.progress.clone());
        blocking::run("the verification thread", move || {
            let mut report = files::check_files(&run, level, manifest.as_ref(), &progress);
            report.manifest_sha256 = manifest_sha256;
            (report, manifest)
        })
        .await?
    };
    let mut scratch_unavailable = scratch::Unavailable::default();
    if level == Level::Restore
        && let Ok(manifest) = &manifest
    {
        scratch_unavailable = scratch::restore_stage(plan, &run, manifest, &mut report, cx).await;
        report.finish();
    }
    // A verification that could not reach its level (no scratch database could be created)
    // found nothing about the archives: the record of the last real verification is kept
    // rather than replaced by one that would call good archives bad.
    // A passing check at a lower level than the passing record of the same manifest keeps
    // that record: the proof the teardown gate needs (level restore) is not replaced by a
    // weaker one that says nothing against it. A failing check is always recorded.
    let mut kept = None;
    if !only_unavailable(&report, &scratch_unavailable) {
        kept = stronger_record(&run, &report).await;
        if kept.is_none() {
            record(&run, &report).await?;
        }
    }
    Ok(Verification {
        report,
        scratch_unavailable,
        source: manifest.ok().map(|m| m.source),
        kept,
    })
}

/// The run's recorded verification, when `report` must not replace it: both passed, the
/// record's level is higher, and both verified the same manifest (its SHA-256). `None` when
/// there is no such record or it cannot be read.
async fn stronger_record(run: &ResolvedRun, report: &VerifyReport) -> Option<VerifyReport> {
    if !report.ok {
        return None;
    }
    let (storage, run_id) = (run.storage.clone(), run.id.clone());
    let bytes = blocking::run("reading the verification record", move || {
        crate::storage::read_small(
            storage.as_ref(),
            &run_id,
            VERIFY_FILE,
            crate::run::SMALL_OBJECT_LIMIT,
        )
    })
    .await
    .ok()?
    .ok()?;
    let recorded = VerifyReport::from_json(&bytes).ok()?;
    keeps(&recorded, report).then_some(recorded)
}

/// Whether the recorded verification `recorded` stands against the new `report` (see
/// [`stronger_record`]).
fn keeps(recorded: &VerifyReport, report: &VerifyReport) -> bool {
    report.ok
        && recorded.ok
        && recorded.level > report.level
        && recorded.run_id == report.run_id
        && recorded.manifest_sha256.is_some()
        && recorded.manifest_sha256 == report.manifest_sha256
}

/// Write `report` as the run's `verify.json` (replacing an earlier one).
async fn record(run: &ResolvedRun, report: &VerifyReport) -> Result<(), VerifyError> {
    let bytes = report.to_json();
    let (storage, run_id, location) = (run.storage.clone(), run.id.clone(), run.location());
    blocking::run("writing the verification record", move || {
        storage.put_object(&run_id, VERIFY_FILE, &bytes)
    })
    .await?
    .map_err(|source| VerifyError::WriteRecord { location, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passed(level: Level, manifest: &str) -> VerifyReport {
        let mut r = VerifyReport::new("20261203T000000Z", level);
        r.manifest_sha256 = Some(manifest.to_owned());
        r.finish();
        r
    }

    #[test]
    fn a_lower_passing_check_keeps_the_stronger_record_and_nothing_else_does() {
        let proof = passed(Level::Restore, "aa");
        assert!(keeps(&proof, &passed(Level::Decompress, "aa")));
        assert!(keeps(&proof, &passed(Level::Checksum, "aa")));
        // The same level, a higher one, another manifest: the new record is written.
        assert!(!keeps(&proof, &passed(Level::Restore, "aa")));
        assert!(!keeps(
            &passed(Level::Checksum, "aa"),
            &passed(Level::Decompress, "aa")
        ));
        assert!(!keeps(&proof, &passed(Level::Decompress, "bb")));
        // A failing check is always recorded: it may be news the proof no longer holds.
        let mut failed = passed(Level::Decompress, "aa");
        failed.problems.push("SHA256SUMS: mismatch".to_owned());
        failed.finish();
        assert!(!keeps(&proof, &failed));
        // A failed record is no proof to keep.
        let mut old_failure = passed(Level::Restore, "aa");
        old_failure.problems.push("x".to_owned());
        old_failure.finish();
        assert!(!keeps(&old_failure, &passed(Level::Decompress, "aa")));
        // Another run's record, or one without the manifest's digest, is never kept.
        let mut other = passed(Level::Restore, "aa");
        other.run_id = "20261203T000001Z".to_owned();
        assert!(!keeps(&other, &passed(Level::Decompress, "aa")));
        let mut undigested = passed(Level::Restore, "aa");
        undigested.manifest_sha256 = None;
        assert!(!keeps(&undigested, &passed(Level::Decompress, "aa")));
    }
}
