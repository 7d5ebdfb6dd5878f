//! The teardown service (issue 14, design.md section 8): the cancellation guide's steps 2 to 7
//! for one platform environment, gated on archives proven restorable.
//!
//! - [`assess`] reads the environment (every resource) and every run under the destination
//!   (manifests, their SHA-256, `verify.json`) and returns an [`Assessment`]: the
//!   [`TeardownPlan`] (steps in the guide's order, each database's coverage, what is missing)
//!   and what the gate and the executor need. No side effects.
//! - [`Gate`] is a typestate: a `Gate<Unchecked>` made from an assessment becomes a
//!   `Gate<Verified>` only through [`Gate::check`], which refuses unless every database is
//!   covered, the confirmation is the environment's handle, and every covering manifest still
//!   has the SHA-256 its verification recorded (read again from storage).
//! - [`executor::execute`] takes only a `Gate<Verified>`: it is the one place that calls the
//!   platform client's destructive methods (`clippy.toml` bans them everywhere else). It keeps
//!   the [`journal`] and writes the evidence [`report`].
//!
//! Nothing here prints: the command layer renders the plan and the report, and progress goes
//! out as [`Event`]s.

pub mod coverage;
pub mod executor;
pub mod gate;
pub mod journal;
pub mod plan;
pub mod report;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use exporter_aptible::{Client, Environment, ErrorKind, Inventory};

use crate::archive::{JOURNAL_FILE, MANIFEST_FILE, VERIFY_FILE};
use crate::blocking::{self, ThreadError};
use crate::engines::EngineKind;
use crate::progress::{Event, Progress};
use crate::run::{self, ResolvedRun, SMALL_OBJECT_LIMIT};
use crate::settings::TeardownOptions;
use crate::storage::{self, Storage};
use crate::verify::{Level, VerifyReport};

pub use coverage::{Coverage, DatabaseCoverage, Status};
pub use executor::execute;
pub use gate::{Gate, Unchecked, Verified};
pub use journal::Journal;
pub use plan::{Step, StepKind, TeardownPlan};
pub use report::TeardownReport;

/// Why a teardown did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    /// The platform could not be read (listing, token, network).
    #[error("cannot read environment {environment}")]
    Platform {
        /// The environment's handle.
        environment: String,
        /// The client's error.
        #[source]
        source: Box<exporter_aptible::Error>,
    },
    /// The destination could not be read or a record not written.
    #[error("{what} in {location}")]
    Storage {
        /// What failed (`cannot write teardown-journal.json`).
        what: String,
        /// `<destination>` or `<destination>/<run-id>`.
        location: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The gate refused: some database is not covered (nothing was sent).
    #[error("teardown of {environment} refused: {}\n  - {}", count(gaps.len()), gaps.join("\n  - "))]
    Refused {
        /// The environment's handle.
        environment: String,
        /// Each gap as `handle: reason`.
        gaps: Vec<String>,
    },
    /// The confirmation is not the environment's handle (nothing was sent).
    #[error(
        "teardown of {environment} refused: the confirmation {typed:?} is not the environment's handle"
    )]
    Confirmation {
        /// The environment's handle.
        environment: String,
        /// What was typed.
        typed: String,
    },
    /// `--apply` without `--confirm` and without a terminal to ask on.
    #[error(
        "--apply needs the environment's handle typed again, and there is no terminal to ask on"
    )]
    NoConfirmation,
    /// A step failed: the teardown stopped there (nothing after it was sent).
    #[error("teardown of {environment} stopped at {resource} ({request})")]
    StepFailed {
        /// The environment's handle.
        environment: String,
        /// The resource in words.
        resource: String,
        /// The request.
        request: String,
        /// The platform's error.
        #[source]
        source: Box<exporter_aptible::Error>,
    },
    /// A step's request was accepted (its operation id is journalled) but its operation could
    /// not be followed to its end: the step stays `sent`, and the next `--apply` follows that
    /// operation instead of sending the request again.
    #[error(
        "teardown of {environment} stopped at {resource} ({request}): operation #{operation_id} was accepted, but its outcome is unknown"
    )]
    OutcomeUnknown {
        /// The environment's handle.
        environment: String,
        /// The resource in words.
        resource: String,
        /// The request.
        request: String,
        /// The accepted request's operation.
        operation_id: u64,
        /// Why it could not be followed.
        #[source]
        source: Box<exporter_aptible::Error>,
    },
    /// A teardown journal exists but cannot be read: nothing is sent, and it is never
    /// replaced (it is the record of what earlier `--apply` runs removed).
    #[error("cannot read the teardown journal {location}: {reason}")]
    Journal {
        /// `<destination>/<run-id>/teardown-journal.json`.
        location: String,
        /// The storage or JSON error.
        reason: String,
    },
    /// Resources remain before the environment's deletion (the listing is not empty).
    #[error("environment {environment} still holds {}: not deleting it", remaining.join(", "))]
    Remaining {
        /// The environment's handle.
        environment: String,
        /// What remains, in words.
        remaining: Vec<String>,
    },
    /// A worker thread failed.
    #[error(transparent)]
    Thread(#[from] ThreadError),
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 database is not covered".to_owned()
    } else {
        format!("{n} databases are not covered")
    }
}

/// Everything a teardown decision is made of: the plan, and what the gate and the executor
/// need (the client's view of the environment, the destination, the journal).
pub struct Assessment {
    /// The plan, as shown.
    pub plan: TeardownPlan,
    pub(crate) environment: Environment,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) destination: String,
    pub(crate) journal: Option<Journal>,
    pub(crate) required_level: Level,
    /// Without a journal: signs that an earlier `--apply` already removed something (an
    /// archived database no longer listed), for the journal and the report.
    pub(crate) torn_down_signs: Vec<String>,
}

impl std::fmt::Debug for Assessment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assessment")
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

/// The runs of the destination as the teardown reads them: every platform entry of this
/// environment as a coverage candidate, and the newest unfinished journal of it.
struct Runs {
    candidates: Vec<coverage::Candidate>,
    journal: Option<Journal>,
    newest_run: Option<String>,
}

/// Read the environment and the destination and plan the teardown. Sends only GET requests.
///
/// # Errors
///
/// [`TeardownError::Platform`] when the environment cannot be read;
/// [`TeardownError::Storage`] when the destination cannot be listed;
/// [`TeardownError::Journal`] when a teardown journal exists but cannot be read.
pub async fn assess(
    client: &Client,
    storage: Arc<dyn Storage>,
    options: &TeardownOptions,
    progress: Arc<dyn Progress>,
) -> Result<Assessment, TeardownError> {
    let handle = options.platform.environment.clone();
    let platform = |source| TeardownError::Platform {
        environment: handle.clone(),
        source: Box::new(source),
    };
    let environment = client.environment(&handle).await.map_err(platform)?;
    let inventory = client.inventory(&environment).await.map_err(platform)?;
    let env_id = environment.account.id;
    let destination = storage.describe();
    let runs = {
        let storage = storage.clone();
        let progress = progress.clone();
        blocking::run("reading the runs", move || {
            read_runs(&storage, env_id, progress.as_ref())
        })
        .await??
    };
    let now = Utc::now();
    let live = live_databases(&inventory, runs.journal.as_ref());
    let coverage = coverage::assess(
        &live,
        &runs.candidates,
        coverage::Requirements {
            level: options.required_level,
            max_age: options.max_age,
            now,
        },
        &options.accept_unexported,
        &destination,
    );
    let mut steps = plan::steps(&inventory);
    let done: BTreeSet<&str> = runs
        .journal
        .as_ref()
        .map(|j| j.done().collect())
        .unwrap_or_default();
    for s in &mut steps {
        s.done = done.contains(s.key.as_str());
    }
    let mut missing = coverage.gaps();
    let journal_run = runs
        .journal
        .as_ref()
        .map(|j| j.run_id.clone())
        .or_else(|| newest_covering_run(&coverage))
        .or(runs.newest_run.clone());
    if journal_run.is_none() {
        missing.push(format!(
            "no run of environment {handle} under {destination} to keep the journal and the \
             report next to: run `exporter dump --all` first"
        ));
    }
    let mut notes = Vec::new();
    if options.required_level < Level::Restore {
        notes.push(format!(
            "DOWNGRADE: --require-level {}: archives need only intact bytes and zstd frames, \
             not a restore into a scratch database; an archive that cannot be loaded would \
             be found only after its database is gone",
            options.required_level
        ));
    }
    for h in &coverage.unknown_accepted {
        notes.push(format!(
            "--accept-unexported {h} names no database of environment {handle}"
        ));
    }
    let torn_down_signs = if runs.journal.is_none() {
        archived_but_gone(&runs.candidates, &inventory)
    } else {
        Vec::new()
    };
    if let Some(j) = &runs.journal {
        notes.push(format!(
            "resuming the teardown journalled in run {} ({} step(s) done)",
            j.run_id,
            j.done().count()
        ));
        let unfinished = j.unfinished();
        if !unfinished.is_empty() {
            notes.push(format!(
                "--apply first follows the operation(s) an earlier --apply left running: {}",
                unfinished
                    .iter()
                    .map(|s| format!(
                        "{} (operation #{})",
                        s.resource,
                        s.operation_id.unwrap_or_default()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    } else if !torn_down_signs.is_empty() {
        notes.push(format!(
            "no teardown journal found, but the environment looks partly torn down already \
             ({}): the report cannot list what an earlier --apply removed",
            torn_down_signs.join("; ")
        ));
    }
    let plan = TeardownPlan {
        environment: handle.clone(),
        environment_id: env_id,
        destination: destination.clone(),
        required_level: options.required_level,
        downgraded: options.required_level < Level::Restore,
        max_age_seconds: options.max_age.as_secs(),
        planned_at: now,
        resumed_steps: done.len(),
        coverage,
        steps,
        journal_run,
        missing,
        notes,
    };
    Ok(Assessment {
        plan,
        environment,
        storage,
        destination,
        journal: runs.journal,
        required_level: options.required_level,
        torn_down_signs,
    })
}

/// Databases of this environment archived in a run but no longer listed: a sign that an
/// earlier `--apply` (whose journal is gone) deprovisioned them.
fn archived_but_gone(candidates: &[coverage::Candidate], inventory: &Inventory) -> Vec<String> {
    let listed: BTreeSet<u64> = inventory.databases.iter().map(|d| d.database.id).collect();
    let mut gone: Vec<String> = Vec::new();
    for c in candidates {
        let Some(p) = &c.entry.platform else { continue };
        // Only databases dumped live were listed when they were archived; an orphaned
        // backup's database was gone before any teardown.
        if p.origin != crate::archive::manifest::PlatformOrigin::Live {
            continue;
        }
        let sign = format!(
            "database {} (#{}), archived in run {}, is no longer listed",
            p.handle, p.id, c.run_id
        );
        if !listed.contains(&p.id) && !gone.iter().any(|g| g.contains(&format!("(#{})", p.id))) {
            gone.push(sign);
        }
    }
    gone
}

/// The newest run that covers a database (where the journal and the reports go).
fn newest_covering_run(coverage: &Coverage) -> Option<String> {
    coverage
        .databases
        .iter()
        .filter_map(|d| match &d.status {
            Status::Covered { archive } => Some(archive.run_id.clone()),
            _ => None,
        })
        .max_by_key(|r| crate::archive::run_sort_key(r))
}

/// The environment's databases as the gate sees them.
fn live_databases(inventory: &Inventory, journal: Option<&Journal>) -> Vec<coverage::LiveDatabase> {
    // A database this tool restored in an earlier run carries the restore handle convention
    // (exporter_aptible::restore), whose prefix is the original database's handle.
    let mut live: Vec<coverage::LiveDatabase> = inventory
        .databases
        .iter()
        .map(|e| {
            let d = &e.database;
            let replica_of = d
                .initialize_from()
                .and_then(|h| inventory.database_by_href(h))
                .map(|p| (p.database.id, p.database.handle.clone()));
            let restored_copy_of = exporter_aptible::restore::parse_restore_handle(&d.handle)
                .map(|(source, _)| source.to_owned());
            coverage::LiveDatabase {
                id: d.id,
                handle: d.handle.clone(),
                database_type: d.kind.clone(),
                exportable: EngineKind::for_platform_type(&d.kind).is_some(),
                replica_of,
                restored_copy_of,
                created_at: d
                    .created_at
                    .as_deref()
                    .and_then(exporter_aptible::resources::parse_time),
                deleted_with_backups: None,
            }
        })
        .collect();
    // Deleted databases whose backups remain (orphaned backups, purged by the teardown): each
    // is judged like a database, by its id, so its backups are purged only when an archive of
    // one of them covers it or the user accepts their loss.
    let mut deleted: std::collections::BTreeMap<u64, (String, usize)> =
        std::collections::BTreeMap::new();
    for b in &inventory.orphaned_backups {
        let Some(id) = b
            .links
            .href("database")
            .and_then(|h| h.trim_end_matches('/').rsplit('/').next())
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        let handle = b
            .database_handle
            .clone()
            .unwrap_or_else(|| format!("database-{id}"));
        deleted.entry(id).or_insert((handle, 0)).1 += 1;
    }
    for (id, (handle, backups)) in deleted {
        // A database this teardown deprovisioned itself passed the gate while it existed
        // (the journal keeps its coverage); its final backup is purged on that proof.
        if live.iter().any(|d| d.id == id) || journal.is_some_and(|j| j.coverage.contains_key(&id))
        {
            continue;
        }
        live.push(coverage::LiveDatabase {
            id,
            handle,
            database_type: "deleted".to_owned(),
            exportable: false,
            replica_of: None,
            restored_copy_of: None,
            created_at: None,
            deleted_with_backups: Some(backups),
        });
    }
    live
}

/// Read every run under the destination (blocking).
fn read_runs(
    storage: &Arc<dyn Storage>,
    environment_id: u64,
    progress: &dyn Progress,
) -> Result<Runs, TeardownError> {
    let location = storage.describe();
    let ids = storage
        .list_runs()
        .map_err(|source| TeardownError::Storage {
            what: "cannot list the runs".to_owned(),
            location: location.clone(),
            source,
        })?;
    let mut candidates = Vec::new();
    let mut journal: Option<Journal> = None;
    let mut newest_run = None;
    for id in ids.iter().rev() {
        let run = ResolvedRun {
            storage: storage.clone(),
            id: id.clone(),
        };
        let Ok(objects) = storage.list_objects(id) else {
            continue;
        };
        if journal.is_none() && objects.iter().any(|o| o == JOURNAL_FILE) {
            match storage::read_small(storage.as_ref(), id, JOURNAL_FILE, SMALL_OBJECT_LIMIT)
                .map_err(|e| e.to_string())
                .and_then(|b| Journal::from_json(&b))
            {
                Ok(j) if j.environment_id == environment_id && !j.finished => journal = Some(j),
                Ok(_) => {}
                // It may be the only record of what an earlier --apply removed: never start a
                // new history over it.
                Err(reason) => {
                    return Err(TeardownError::Journal {
                        location: format!("{location}/{id}/{JOURNAL_FILE}"),
                        reason,
                    });
                }
            }
        }
        if !objects.iter().any(|o| o == MANIFEST_FILE) {
            continue;
        }
        let (manifest, digest) = match run::load_manifest_with_digest(&run) {
            Ok(m) => m,
            Err(e) => {
                progress.event(&Event::RunSkipped {
                    run_id: id.clone(),
                    reason: e.problem(),
                });
                continue;
            }
        };
        let mine: Vec<_> = manifest
            .databases
            .iter()
            .filter(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.environment_id == environment_id)
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        if newest_run.is_none() {
            newest_run = Some(id.clone());
        }
        let report = if objects.iter().any(|o| o == VERIFY_FILE) {
            storage::read_small(storage.as_ref(), id, VERIFY_FILE, SMALL_OBJECT_LIMIT)
                .ok()
                .and_then(|b| VerifyReport::from_json(&b).ok())
        } else {
            None
        };
        for entry in mine {
            let verification = report.as_ref().and_then(|r| {
                let v = r.verdict(&entry.name)?;
                let mut problems = v.outcome.problems.clone();
                problems.extend(r.problems.iter().cloned());
                Some(coverage::VerificationRecord {
                    level: r.level,
                    verified_at: r.verified_at,
                    manifest_sha256: r.manifest_sha256.clone(),
                    ok: v.outcome.ok && r.problems.is_empty(),
                    problems,
                    restore: v.outcome.restore.clone(),
                })
            });
            candidates.push(coverage::Candidate {
                run_id: id.clone(),
                location: run.location(),
                run_started_at: manifest.started_at,
                manifest_sha256: digest.clone(),
                entry: entry.clone(),
                verification,
            });
        }
    }
    Ok(Runs {
        candidates,
        journal,
        newest_run,
    })
}

/// Whether a client error means the resource is already gone (404).
pub(crate) fn is_gone(e: &exporter_aptible::Error) -> bool {
    e.kind() == ErrorKind::NotFound
}
