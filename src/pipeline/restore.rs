//! The restore path: one archive of a run back into a database, natively and streaming
//! (design.md sections 1 and 6), beside the dump path.
//!
//! Order: resolve the run and read its manifest; pick the entry (`--db`); check its status
//! and that its engine is the target's; open the archive (a missing or malformed entry fails
//! before the target is touched); the endpoint step; connect to the target (`preflight`);
//! refuse a non-empty target unless `--clean` — then read the archive once and compare it
//! with the manifest before anything is dropped, and `clean`; stream the archive into the
//! target ([`restore_archive`]).

// `RestoreError` carries the adapter's `EngineError` by value: boxing it would hide it from
// `error::classify`'s walk of the chain (a `Box<E>` forwards `source()` past `E`), and a
// restore fails at most once per command.
#![allow(
    clippy::result_large_err,
    reason = "RestoreError keeps the EngineError in the error chain; it occurs once per command"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use exporter_contract::{EngineError, PayloadFormat, RestoreOptions, RestoreSummary, Target};

use super::decode::{StreamError, restore_archive};
use crate::archive::DatabaseEntry;
use crate::blocking::{self, ThreadError};
use crate::endpoint::EndpointProvider;
use crate::engines::EngineKind;
use crate::progress::{Event, Meter, Progress, Silent, Ticker};
use crate::run::{
    self, ArchiveError, ArchiveRef, EntryError, ManifestLoadError, OpenArchive, ResolvedRun,
    RunError,
};
use crate::settings::RestorePlan;
use crate::storage::Storage;

/// How many existing objects a refusal names.
const SHOW_OBJECTS: usize = 5;

/// Why a restore did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The run cannot be found.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Its manifest cannot be read.
    #[error(transparent)]
    Manifest(#[from] ManifestLoadError),
    /// No single entry is meant.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// The entry has no archive (its dump failed).
    #[error(
        "database {name} was not dumped in run {run_id} ({error}): there is no archive to restore"
    )]
    NotDumped {
        /// The database.
        name: String,
        /// The run id.
        run_id: String,
        /// The dump's error, as recorded.
        error: String,
    },
    /// The archive's engine is unknown to this build.
    #[error("database {name} is a {engine:?} archive, an engine this build cannot restore")]
    UnknownEngine {
        /// The database.
        name: String,
        /// The manifest's engine name.
        engine: String,
    },
    /// The archive's engine is not the target's.
    #[error(
        "database {name} is a {archive_engine} archive, but --into is a {target_engine} URL ({into})"
    )]
    EngineMismatch {
        /// The database.
        name: String,
        /// The manifest's engine name.
        archive_engine: String,
        /// The archive's engine.
        engine: EngineKind,
        /// The target's engine.
        target_engine: EngineKind,
        /// The target (redacted).
        into: String,
    },
    /// A MySQL archive of one database restored into a server URL, or an archive of every
    /// schema (dumped from a server URL) into a URL naming a database: the script's tables
    /// would land in no database (or the wrong ones), and `--clean` would first drop every
    /// user schema's tables.
    #[error("{name} is {what}, but --into {into} {names}: nothing was touched")]
    DatabaseScope {
        /// The database.
        name: String,
        /// What the archive holds, in words.
        what: &'static str,
        /// The target (redacted).
        into: String,
        /// What the target URL names, in words.
        names: &'static str,
        /// Whether the target must name a database.
        needs_database: bool,
    },
    /// `--clean` with an RDB archive, which `exporter restore` does not load.
    #[error(
        "{label} is an RDB archive, which `exporter restore` does not load; --clean would empty the target for nothing"
    )]
    RdbClean {
        /// The archive file.
        label: String,
    },
    /// The target cannot be reached or used.
    #[error("cannot use the target {target}")]
    Preflight {
        /// The target (redacted).
        target: String,
        /// The adapter's error.
        #[source]
        source: EngineError,
    },
    /// What the target holds cannot be listed.
    #[error("cannot list what is in {target}")]
    ListObjects {
        /// The target (redacted).
        target: String,
        /// The adapter's error.
        #[source]
        source: EngineError,
    },
    /// The target is not empty and `--clean` was not given; nothing was written.
    #[error(
        "the target {target} is not empty ({} object(s): {}); nothing was restored",
        objects.len(),
        first_few(objects)
    )]
    NotEmpty {
        /// The target (redacted).
        target: String,
        /// What it holds.
        objects: Vec<String>,
    },
    /// `--clean`'s check found the archive damaged or unreadable; nothing was dropped.
    #[error(transparent)]
    Precheck(ArchiveError),
    /// `--clean` failed.
    #[error("--clean failed in {target}")]
    Clean {
        /// The target (redacted).
        target: String,
        /// The adapter's error.
        #[source]
        source: EngineError,
    },
    /// The archive is damaged, missing or unreadable; `started` says whether the target may
    /// hold part of it.
    #[error("{error}{}", if *started { "; the target may be partly restored" } else { "" })]
    Archive {
        /// What is wrong with it (shown inline).
        error: ArchiveError,
        /// Whether the restore had started.
        started: bool,
    },
    /// The target failed while restoring (the adapter's error names the statement).
    #[error("restoring {name} into {target} failed")]
    Target {
        /// The database.
        name: String,
        /// The target (redacted).
        target: String,
        /// The archive is an RDB file.
        rdb: bool,
        /// The adapter's error.
        #[source]
        source: EngineError,
    },
    /// A worker thread failed.
    #[error(transparent)]
    Thread(#[from] ThreadError),
}

/// "a, b, c and 4 more".
fn first_few(objects: &[String]) -> String {
    let shown = objects
        .iter()
        .take(SHOW_OBJECTS)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if objects.len() > SHOW_OBJECTS {
        format!("{shown} and {} more", objects.len() - SHOW_OBJECTS)
    } else {
        shown
    }
}

/// A finished restore.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// The run id.
    pub run_id: String,
    /// The database's name in the run.
    pub database: String,
    /// The archive file.
    pub file: String,
    /// The manifest's engine name.
    pub engine: String,
    /// The target (redacted).
    pub target: String,
    /// Objects `--clean` dropped first (0 without `--clean`).
    pub cleaned: usize,
    /// What the target did.
    pub summary: RestoreSummary,
    /// Wall time of the restore proper.
    pub elapsed: Duration,
    /// The manifest entry restored (its archive's format, sizes and SHA-256 — the archive
    /// read matched them —, its tables and warnings).
    pub entry: DatabaseEntry,
}

/// What a restore needs besides the plan.
pub struct RestoreContext<'a> {
    /// The destination's storage ([`crate::storage::open`]).
    pub storage: Arc<dyn Storage>,
    /// Turns the target into a live endpoint.
    pub endpoints: &'a dyn EndpointProvider,
    /// Receives the progress events.
    pub progress: Arc<dyn Progress>,
}

/// Restore one archive of a run into the plan's target (see the module docs).
///
/// # Errors
///
/// [`RestoreError`], each naming its object. Nothing is written to the target before the
/// archive is known to exist (and, with `--clean`, to be intact).
///
/// # Cancel safety
///
/// Dropping the future stops reading and the adapter's work; the target keeps whatever was
/// applied before (restore it again with `--clean`).
pub async fn restore(
    plan: &RestorePlan,
    cx: &RestoreContext<'_>,
) -> Result<RestoreReport, RestoreError> {
    let (run, entry) = locate(plan, cx.storage.clone()).await?;
    let label = entry.file.clone().unwrap_or_else(|| entry.name.clone());
    check_entry(plan, &run, &entry)?;
    // Open once now, so a missing or malformed entry fails before the target is touched; the
    // object is opened again for the restore itself (after a possible --clean check).
    let format = open(&run, &entry).await?.format;
    if format == PayloadFormat::Rdb && plan.clean {
        // Refused before anything is dropped: the target would be emptied for an archive
        // `exporter restore` cannot load (a stock redis-server loads RDB files, FORMAT.md).
        return Err(RestoreError::RdbClean { label });
    }

    // The endpoint step: held until the restore is done.
    let endpoint = cx
        .endpoints
        .open(&plan.into.clone().into())
        .await
        .map_err(|source| RestoreError::Preflight {
            target: plan.into.url.redacted(),
            source,
        })?;
    let target = plan.into.engine.target(endpoint.endpoint());
    let describe = target.describe();
    let cleaned = make_room(plan, cx, target.as_ref(), &run, &entry).await?;

    let archive = open(&run, &entry).await?;
    cx.progress.event(&Event::RestoreStarted {
        database: entry.name.clone(),
        label: label.clone(),
        run_id: run.id.clone(),
        target: describe.clone(),
    });
    let started = Instant::now();
    let read = Meter::default();
    let _ticker = Ticker::start(cx.progress.heartbeat(), {
        let (progress, read) = (cx.progress.clone(), read.clone());
        let (label, total_bytes) = (label.clone(), entry.compressed_bytes);
        move |elapsed| {
            progress.event(&Event::RestoreProgress {
                label: label.clone(),
                bytes_read: read.get(),
                total_bytes,
                seconds: elapsed.as_secs_f64(),
            });
        }
    });
    let summary = restore_archive(
        archive,
        target.as_ref(),
        RestoreOptions::default()
            .with_ownership(plan.ownership)
            .with_definer(plan.definer)
            .with_tablespaces(plan.tablespaces)
            .with_jobs(plan.jobs),
        &read,
    )
    .await
    .map_err(|e| match e {
        StreamError::Target(source) => RestoreError::Target {
            name: entry.name.clone(),
            target: describe.clone(),
            rdb: format == PayloadFormat::Rdb,
            source,
        },
        StreamError::Archive(error) => RestoreError::Archive {
            error,
            started: true,
        },
    })?;
    let elapsed = started.elapsed();
    drop(target);
    drop(endpoint);
    Ok(RestoreReport {
        run_id: run.id,
        database: entry.name.clone(),
        file: label,
        engine: entry.engine.clone(),
        target: describe,
        cleaned,
        summary,
        elapsed,
        entry,
    })
}

/// The run and the manifest entry the plan means (on a blocking thread).
async fn locate(
    plan: &RestorePlan,
    storage: Arc<dyn Storage>,
) -> Result<(ResolvedRun, DatabaseEntry), RestoreError> {
    let destination = plan.destination.clone();
    let wanted = plan.run.clone();
    let db = plan.db.clone();
    blocking::run("reading the run", move || {
        let run = run::resolve(&destination, storage, Some(&wanted), &Silent)?;
        let manifest = run::load_manifest(&run)?;
        let entry = run::pick_entry(&manifest, db.as_deref())?.clone();
        Ok((run, entry))
    })
    .await?
}

/// Connect to the target and make sure it is empty: refuse one that is not, unless `--clean`
/// — then prove the archive intact (length and SHA-256) before dropping anything, and drop.
/// Returns how many objects were dropped.
async fn make_room(
    plan: &RestorePlan,
    cx: &RestoreContext<'_>,
    target: &dyn Target,
    run: &ResolvedRun,
    entry: &DatabaseEntry,
) -> Result<usize, RestoreError> {
    let describe = target.describe();
    target
        .preflight()
        .await
        .map_err(|source| RestoreError::Preflight {
            target: describe.clone(),
            source,
        })?;
    let existing = target
        .existing_objects()
        .await
        .map_err(|source| RestoreError::ListObjects {
            target: describe.clone(),
            source,
        })?;
    if existing.is_empty() {
        return Ok(0);
    }
    if !plan.clean {
        return Err(RestoreError::NotEmpty {
            target: describe,
            objects: existing,
        });
    }
    // A damaged archive must not cost the target what it holds now (the target may be the
    // only other copy).
    cx.progress.event(&Event::CleanCheckStarted {
        label: entry.file.clone().unwrap_or_else(|| entry.name.clone()),
    });
    let (checked_run, checked_entry) = (run.clone(), entry.clone());
    blocking::run("checking the archive", move || {
        ArchiveRef::from_entry(&checked_entry)?.check(&checked_run, false)
    })
    .await?
    .map_err(RestoreError::Precheck)?;
    cx.progress.event(&Event::CleanStarted {
        target: describe.clone(),
        objects: existing.len(),
    });
    target.clean().await.map_err(|source| RestoreError::Clean {
        target: describe,
        source,
    })?;
    Ok(existing.len())
}

/// The entry has an archive, of an engine this build knows, and it is the target's.
fn check_entry(
    plan: &RestorePlan,
    run: &ResolvedRun,
    entry: &DatabaseEntry,
) -> Result<(), RestoreError> {
    if !entry.status.has_archive() {
        return Err(RestoreError::NotDumped {
            name: entry.name.clone(),
            run_id: run.id.clone(),
            error: entry
                .error
                .clone()
                .unwrap_or_else(|| "unknown error".to_owned()),
        });
    }
    let engine = EngineKind::for_manifest_engine(&entry.engine).ok_or_else(|| {
        RestoreError::UnknownEngine {
            name: entry.name.clone(),
            engine: entry.engine.clone(),
        }
    })?;
    if engine != plan.into.engine {
        return Err(RestoreError::EngineMismatch {
            name: entry.name.clone(),
            archive_engine: entry.engine.clone(),
            engine,
            target_engine: plan.into.engine,
            into: plan.into.url.redacted(),
        });
    }
    check_scope(plan, entry, engine)
}

/// MySQL: an archive dumped from a URL naming a database holds that database's objects
/// without `USE`, so its target must name one; an archive dumped from a server URL selects
/// its own databases (`CREATE DATABASE`, `USE`), so its target must not. Checked from the
/// manifest's endpoint before the target is touched: a one-database archive restored into a
/// server URL with `--clean` would drop the tables of every user schema first. Other engines,
/// and endpoints that are not MySQL URLs (a platform database), are not checked here.
fn check_scope(
    plan: &RestorePlan,
    entry: &DatabaseEntry,
    engine: EngineKind,
) -> Result<(), RestoreError> {
    if engine != EngineKind::Mysql {
        return Ok(());
    }
    let Ok(source) = url::Url::parse(&entry.endpoint) else {
        return Ok(());
    };
    if !matches!(source.scheme(), "mysql" | "mariadb") {
        return Ok(());
    }
    let archive_has_database = !source.path().trim_start_matches('/').is_empty();
    let target_has_database = plan.into.url.database().is_some();
    if archive_has_database == target_has_database {
        return Ok(());
    }
    Err(RestoreError::DatabaseScope {
        name: entry.name.clone(),
        what: if archive_has_database {
            "an archive of one database"
        } else {
            "an archive of every schema of a server"
        },
        into: plan.into.url.redacted(),
        names: if target_has_database {
            "names one database"
        } else {
            "names no database"
        },
        needs_database: archive_has_database,
    })
}

/// Open the entry's archive on a blocking thread.
async fn open(run: &ResolvedRun, entry: &DatabaseEntry) -> Result<OpenArchive, RestoreError> {
    let (run, entry) = (run.clone(), entry.clone());
    blocking::run("opening the archive", move || {
        run::open_archive(&run, &entry)
    })
    .await?
    .map_err(|error| RestoreError::Archive {
        error,
        started: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_few_names_and_counts_the_rest() {
        let objs: Vec<String> = (1..=7).map(|i| format!("t{i}")).collect();
        assert_eq!(first_few(&objs[..2]), "t1, t2");
        assert_eq!(first_few(&objs), "t1, t2, t3, t4, t5 and 2 more");
    }
}
