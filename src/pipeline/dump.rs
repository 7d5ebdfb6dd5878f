//! The dump path: a [`DumpPlan`] becomes one new run — one archive per database, then
//! `SHA256SUMS`, then `manifest.json` last (design.md section 4; principle 2: success is
//! earned).
//!
//! Per database: the endpoint step ([`EndpointProvider::open`]), `preflight` (vector's "check
//! health before the long work": a database that cannot be read fails before any file is
//! created), then the stream ([`dump_one`]). A database that fails is recorded in the manifest
//! as failed and the run goes on; the run is `partial` then. A database whose stream stops
//! moving for `--stall-timeout` fails the same way ([`super::stall`]). Each finished database
//! leaves a completion record in the run, so an interrupted run can be continued with
//! `--resume` ([`super::resume`]); until the manifest is written the run is registered with
//! the [`Cleanup`] scope, which removes it if nothing in it is finished and keeps it otherwise.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use exporter_contract::{DumpOptions, Endpoint, ErrorKind, FINGERPRINT_ALGORITHM, Source as _};
use futures::StreamExt as _;
use serde::Serialize;

use super::compress::{ArchiveStats, Compression, PipelineError, dump_one};
use super::resume::{self, RunKeeper};
use super::stall::{self, Activity};
use crate::archive::manifest::{FORMAT_NAME, FORMAT_VERSION, PlatformDatabase, Tool};
use crate::archive::{
    DatabaseEntry, DatabaseStatus, MANIFEST_FILE, Manifest, RunStatus, SUMS_FILE, sums,
};
use crate::blocking::{self, ThreadError};
use crate::cleanup::Cleanup;
use crate::endpoint::{EndpointGuard, EndpointProvider, Released};
use crate::engines::EngineOptions;
use crate::error::one_line;
use crate::progress::{DumpMeters, Event, Progress, TableWatch, Ticker};
use crate::settings::{DatabaseTarget, Destination, DumpPlan, SkippedDatabase, platform_label};
use crate::storage::Storage;

/// What made one database's dump fail, as far as a hint is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum FailureCause {
    /// The engine (endpoint, preflight, stream or completion) failed with this kind.
    Engine {
        /// The adapter's error kind.
        #[serde(serialize_with = "kind_name")]
        kind: ErrorKind,
        /// The adapter's own next step ([`exporter_contract::EngineError::hint`], e.g.
        /// `sslmode=verify-ca` after a host name mismatch through a tunnel); it wins over the
        /// generic hint of the kind.
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
    },
    /// Writing to the destination failed.
    Destination {
        /// The destination is a local directory (else S3).
        local: bool,
    },
    /// Nothing moved for `--stall-timeout` ([`super::stall`]).
    Stalled {
        /// The timeout, in seconds.
        timeout_seconds: u64,
    },
    /// Something else (a worker thread failed).
    Internal,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `serialize_with` signature.
fn kind_name<S: serde::Serializer>(kind: &ErrorKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

/// Why one database of a run has no archive: the error and its causes on one line (as the
/// manifest records it, redacted), and what kind of failure it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct DatabaseFailure {
    /// The error chain on one line.
    pub message: String,
    /// Its kind.
    #[serde(flatten)]
    pub cause: FailureCause,
}

impl DatabaseFailure {
    /// Whether this is the failure of an endpoint that died under the dump.
    fn tunnel_lost(&self) -> bool {
        self.message.ends_with("(during the dump)")
    }

    fn from_pipeline(e: &PipelineError, local: bool) -> Self {
        Self {
            message: one_line(e),
            cause: match e {
                PipelineError::Engine(e) => FailureCause::Engine {
                    kind: e.kind(),
                    hint: e.hint().map(str::to_owned),
                },
                PipelineError::Write { .. } => FailureCause::Destination { local },
            },
        }
    }
}

/// Why a dump produced no run, or only part of one.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The run could not be created at the destination.
    #[error("cannot create a run in destination {destination}")]
    CreateRun {
        /// The destination.
        destination: String,
        /// It is a local directory (else S3).
        local: bool,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The run's only database failed; no run was written.
    #[error("failed to dump {name} ({endpoint}); no run was written")]
    Failed {
        /// The database.
        name: String,
        /// Its redacted endpoint.
        endpoint: String,
        /// Why.
        #[source]
        failure: DatabaseFailure,
    },
    /// Every database failed; no run was written.
    #[error("every database failed ({}); no run was written", names.join(", "))]
    AllFailed {
        /// The databases, in plan order.
        names: Vec<String>,
        /// Why each failed, in the same order.
        failures: Vec<DatabaseFailure>,
    },
    /// `--resume`: the unfinished run is being written by another process.
    #[error("cannot resume {run}")]
    RunBusy {
        /// `<destination>/<run-id>`.
        run: String,
        /// The lock's error.
        #[source]
        source: std::io::Error,
    },
    /// `--resume`: the unfinished runs could not be read, or the one chosen not prepared.
    #[error("cannot resume an unfinished run in {destination}")]
    Resume {
        /// The destination (or the run, once chosen).
        destination: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing `SHA256SUMS` or the manifest failed; the run is not committed.
    #[error("failed to write the manifest of run {run_id}")]
    WriteManifest {
        /// The run id.
        run_id: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Some databases failed; the run is committed as `partial` (see [`DumpReport::check`]).
    #[error("{} of {total} databases failed: {}", failed.len(), failed.join(" "))]
    Partial {
        /// The databases that failed.
        failed: Vec<String>,
        /// How many the run holds.
        total: usize,
    },
    /// A worker thread failed.
    #[error(transparent)]
    Thread(#[from] ThreadError),
}

/// A committed run.
#[derive(Debug, Clone)]
pub struct DumpReport {
    /// The run id.
    pub run_id: String,
    /// `<destination>/<run-id>`.
    pub location: String,
    /// The manifest as written.
    pub manifest: Manifest,
}

impl DumpReport {
    /// The entries of databases that failed.
    pub fn failed(&self) -> impl Iterator<Item = &DatabaseEntry> {
        self.manifest
            .databases
            .iter()
            .filter(|e| e.status == DatabaseStatus::Failed)
    }

    /// Whether every database has its archive.
    ///
    /// # Errors
    ///
    /// [`DumpError::Partial`] naming the databases that failed.
    pub fn check(&self) -> Result<(), DumpError> {
        let failed: Vec<String> = self.failed().map(|e| e.name.clone()).collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(DumpError::Partial {
                failed,
                total: self.manifest.databases.len(),
            })
        }
    }
}

/// What the dump of a run needs besides the plan.
pub struct DumpContext<'a> {
    /// The destination's storage ([`crate::storage::open`]).
    pub storage: Arc<dyn Storage>,
    /// Turns each target into a live endpoint.
    pub endpoints: &'a dyn EndpointProvider,
    /// The command's cleanup scope: the run is registered there until committed.
    pub cleanup: &'a Cleanup,
    /// Receives the progress events.
    pub progress: Arc<dyn Progress>,
    /// Told of each archive as soon as it is committed (`dump --verify`:
    /// [`crate::verify::alongside`] checks it while the next databases are dumped); `None`
    /// for nobody.
    pub committed: Option<tokio::sync::mpsc::UnboundedSender<Committed>>,
}

/// One archive committed to the run being written (visible under its final name; the run
/// itself is committed only by its manifest).
#[derive(Debug, Clone)]
pub struct Committed {
    /// The run id.
    pub run_id: String,
    /// The archive's manifest entry, as it will be written.
    pub entry: DatabaseEntry,
}

/// Dump a plan into a new run — or, with `plan.resume`, into the newest unfinished run of the
/// same inventory, keeping the databases it finished ([`resume::open_run`]).
///
/// # Errors
///
/// [`DumpError`]: the run cannot be created (or resumed), every database failed (the run is
/// removed), or the manifest cannot be written. A run where only some databases failed is
/// committed as `partial` and returned; [`DumpReport::check`] turns it into an error.
///
/// # Cancel safety
///
/// Dropping the future cancels the server work and aborts every object not yet committed; when
/// the cleanup scope closes, the run is removed if no database in it is finished, and kept
/// for `--resume` otherwise.
pub async fn dump(plan: &DumpPlan, cx: &DumpContext<'_>) -> Result<DumpReport, DumpError> {
    let storage = cx.storage.clone();
    let opened = resume::open_run(plan, &storage, &cx.progress).await?;
    let (id, started_at, kept) = (opened.id, opened.started_at, opened.kept);
    let _claim = opened.lock;
    let location = format!("{}/{id}", storage.describe());
    // Until the manifest is written, the run is not a run: if the dump does not get that far
    // (a failure, SIGINT/SIGTERM) the scope removes it — unless a database in it is finished,
    // then it is kept for `--resume`.
    let keeper = RunKeeper::new(
        cx.cleanup,
        &storage,
        &id,
        &location,
        kept.iter().map(|e| e.name.clone()).collect(),
    );
    let todo: Vec<&DatabaseTarget> = plan
        .databases
        .iter()
        .filter(|db| !kept.iter().any(|k| k.name == db.name()))
        .collect();
    cx.progress.event(&Event::DumpStarted {
        run_id: id.clone(),
        location: location.clone(),
        databases: todo.len() + plan.skipped.len(),
    });

    let job = Job {
        local: matches!(plan.destination, Destination::Local(_)),
        storage: storage.clone(),
        run_id: id.clone(),
        options: DumpOptions::default()
            .with_jobs(plan.jobs)
            .with_ownership(plan.ownership),
        engine_options: plan.engine_options,
        compression: Compression {
            level: plan.compression_level,
            workers: zstd_workers(plan.jobs, todo.len()),
        },
        endpoints: cx.endpoints,
        progress: cx.progress.clone(),
        keeper: &keeper,
        stall_timeout: plan.stall_timeout,
    };
    if let Some(to) = &cx.committed {
        // A resumed run's kept archives are committed too: the verification alongside
        // proves them like the new ones. A receiver that is gone wants no more news.
        for entry in &kept {
            let _ = to.send(Committed {
                run_id: id.clone(),
                entry: entry.clone(),
            });
        }
    }
    let parallel = plan.jobs.clamp(1, todo.len().max(1));
    let results: Vec<(DatabaseEntry, Option<DatabaseFailure>)> = futures::stream::iter(todo)
        .map(|db| async {
            let result = dump_database(db, &job).await;
            if let (Some(to), (entry, None)) = (&cx.committed, &result) {
                // A receiver that is gone wants no more news; the dump goes on.
                let _ = to.send(Committed {
                    run_id: id.clone(),
                    entry: entry.clone(),
                });
            }
            result
        })
        .buffered(parallel)
        .collect()
        .await;
    if kept.is_empty() && results.iter().all(|(_, f)| f.is_some()) {
        // A run without archives is no run: dropping `keeper` leaves it to the scope.
        return Err(all_failed(results));
    }
    // Inventory order, the kept databases in their places.
    let mut dumped = results.into_iter().map(|(e, _)| e);
    let mut entries: Vec<DatabaseEntry> = plan
        .databases
        .iter()
        .filter_map(|db| match kept.iter().find(|k| k.name == db.name()) {
            Some(k) => Some(k.clone()),
            None => dumped.next(),
        })
        .collect();
    entries.extend(plan.skipped.iter().map(|s| skipped_entry(s, started_at)));
    let manifest = manifest(plan, &id, started_at, entries);
    write_manifest(&storage, &id, &manifest).await?;
    keeper.committed();
    if let Some(e) = resume::forget_records(&storage, &id).await {
        tracing::warn!(run = %location, error = %e, "could not remove the run's .partial records (they are ignored)");
    }
    Ok(DumpReport {
        run_id: id,
        location,
        manifest,
    })
}

/// The error for a run in which every database failed.
fn all_failed(results: Vec<(DatabaseEntry, Option<DatabaseFailure>)>) -> DumpError {
    let mut failed: Vec<(DatabaseEntry, DatabaseFailure)> = results
        .into_iter()
        .filter_map(|(e, f)| Some((e, f?)))
        .collect();
    if failed.len() == 1 {
        let (entry, failure) = failed.remove(0);
        DumpError::Failed {
            name: entry.name,
            endpoint: entry.endpoint,
            failure,
        }
    } else {
        let (names, failures) = failed.into_iter().map(|(e, f)| (e.name, f)).unzip();
        DumpError::AllFailed { names, failures }
    }
}

/// The manifest of a run whose entries are all known.
fn manifest(
    plan: &DumpPlan,
    run_id: &str,
    started_at: DateTime<Utc>,
    databases: Vec<DatabaseEntry>,
) -> Manifest {
    let status = if databases.iter().all(|e| e.status != DatabaseStatus::Failed) {
        RunStatus::Complete
    } else {
        RunStatus::Partial
    };
    Manifest {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION.into(),
        tool: Tool::current(),
        run_id: run_id.to_owned(),
        started_at,
        finished_at: Utc::now(),
        status,
        source: resume::source_of(plan),
        fingerprint_algorithm: FINGERPRINT_ALGORITHM.into(),
        databases,
    }
}

/// Write `SHA256SUMS`, then the manifest — the commit marker — last.
async fn write_manifest(
    storage: &Arc<dyn Storage>,
    run_id: &str,
    manifest: &Manifest,
) -> Result<(), DumpError> {
    let sums_text = sums::render(
        manifest
            .databases
            .iter()
            .filter_map(|e| Some((e.sha256.as_deref()?, e.file.as_deref()?))),
    );
    let storage = storage.clone();
    let run = run_id.to_owned();
    let manifest_bytes = manifest.to_json();
    blocking::run("writing the manifest", move || -> std::io::Result<()> {
        storage.put_object(&run, SUMS_FILE, sums_text.as_bytes())?;
        storage.put_object(&run, MANIFEST_FILE, &manifest_bytes)
    })
    .await?
    .map_err(|source| DumpError::WriteManifest {
        run_id: run_id.to_owned(),
        source,
    })
}

/// What every database of a run shares.
struct Job<'a> {
    /// The destination is a local directory (for hints: free space there, not credentials).
    local: bool,
    storage: Arc<dyn Storage>,
    run_id: String,
    options: DumpOptions,
    engine_options: EngineOptions,
    compression: Compression,
    endpoints: &'a dyn EndpointProvider,
    progress: Arc<dyn Progress>,
    /// The run's registration with the cleanup scope: told of each finished database.
    keeper: &'a RunKeeper,
    /// `--stall-timeout`; `None`: off.
    stall_timeout: Option<Duration>,
}

/// zstd worker threads per archive: `--jobs` shared by the databases dumped at once (at most
/// `jobs` of them), at least 1, at most 64. Each worker holds its own compression context, and
/// at high levels that is most of the memory (issue 16: about 90 MiB per worker at level 19,
/// README "Resources"); one worker per core in total, instead of `jobs` per database, keeps
/// `--jobs 4` of four databases at level 19 to 4 contexts, not 16.
fn zstd_workers(jobs: usize, databases: usize) -> u32 {
    let at_once = jobs.clamp(1, databases.max(1));
    (jobs / at_once).clamp(1, 64) as u32
}

/// How long a tunnel may take to report its death after the engine's connection error,
/// so the failure names the tunnel rather than the symptom.
const TUNNEL_VERDICT: Duration = Duration::from_secs(2);

/// Dump one database: its manifest entry, and why it failed if it did.
///
/// The endpoint is held for the whole dump and released after it (a platform tunnel stopped,
/// a restored database removed); an endpoint that dies on its own (a tunnel killed mid-dump)
/// fails the dump with its own reason, even if the engine saw nothing wrong yet or reported a
/// connection error first.
async fn dump_database(
    db: &DatabaseTarget,
    job: &Job<'_>,
) -> (DatabaseEntry, Option<DatabaseFailure>) {
    let started_at = Utc::now();
    let name = db.name().to_owned();
    let engine = db.engine();
    let file = format!(
        "{name}.{}.zst",
        engine.format(job.engine_options).extension()
    );
    let fail = |failure: DatabaseFailure, platform: Option<PlatformDatabase>| {
        job.progress.event(&Event::DatabaseFailed {
            name: name.clone(),
            failure: failure.clone(),
        });
        (
            failed_entry(db, started_at, &failure, platform),
            Some(failure),
        )
    };
    // The endpoint step: held until this database's archive is committed or abandoned.
    let endpoint = match job.endpoints.open(db).await {
        Ok(e) => e,
        Err(e) => {
            return fail(
                DatabaseFailure::from_pipeline(&e.into(), job.local),
                db.platform().cloned(),
            );
        }
    };
    // The connection URL, redacted; not how it was reached (a tunnel's port is of no use
    // later).
    let described = endpoint.endpoint().url().redacted();
    let activity = Activity::new();
    let work = dump_through(db, &file, endpoint.endpoint(), job, &activity);
    let stalled = async {
        match job.stall_timeout {
            Some(timeout) => stall::watch(&activity, timeout).await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        biased;
        reason = endpoint.lost() => Err(lost(&reason)),
        s = stalled => Err(DatabaseFailure {
            message: s.message(),
            cause: FailureCause::Stalled { timeout_seconds: s.timeout.as_secs() },
        }),
        r = work => r,
    };
    // The engine may see a dead tunnel first (a reset connection): give the tunnel a moment
    // to say so, and let its reason win.
    let outcome = match outcome {
        Err(f) if endpoint.can_be_lost() && !f.tunnel_lost() => {
            match tokio::time::timeout(TUNNEL_VERDICT, endpoint.lost()).await {
                Ok(reason) => Err(lost(&reason)),
                Err(_) => Err(f),
            }
        }
        other => other,
    };
    let released = release(endpoint).await;
    let notes = || {
        for note in &released.notes {
            job.progress.event(&Event::DatabaseNote {
                name: name.clone(),
                note: note.clone(),
            });
        }
    };
    let stats = match outcome {
        Ok(stats) => stats,
        Err(failure) => {
            notes();
            return fail(failure, released.platform.clone());
        }
    };
    let rows: u64 = stats.summary.tables.iter().map(|t| t.rows).sum();
    job.progress.event(&Event::DatabaseDumped {
        name: name.clone(),
        engine,
        file: file.clone(),
        format: stats.meta.format,
        tables: stats.summary.tables.len() as u64,
        rows,
        uncompressed_bytes: stats.uncompressed_bytes,
        compressed_bytes: stats.compressed_bytes,
        sha256: stats.sha256.clone(),
        seconds: stats.seconds,
        tls: stats.meta.tls.clone(),
    });
    for w in &stats.summary.warnings {
        job.progress.event(&Event::DatabaseWarning {
            name: name.clone(),
            warning: w.clone(),
        });
    }
    notes();
    let entry = DatabaseEntry {
        name,
        engine: stats.meta.engine.clone(),
        endpoint: described,
        status: DatabaseStatus::Ok,
        error: None,
        server_version: Some(stats.meta.server_version.clone()),
        file: Some(file),
        format: Some(stats.meta.format),
        compressed_bytes: Some(stats.compressed_bytes),
        uncompressed_bytes: Some(stats.uncompressed_bytes),
        sha256: Some(stats.sha256),
        zstd_frames: Some(stats.zstd_frames),
        compression_level: Some(job.compression.level),
        consistency: Some(stats.consistency),
        payload_version: stats.summary.payload_version.clone(),
        started_at: stats.started_at,
        finished_at: stats.finished_at,
        tables: stats.summary.tables,
        warnings: stats.summary.warnings,
        platform: released.platform.clone(),
        tls: stats.meta.tls.clone(),
    };
    // Finished only once recorded: the completion record is what `--resume` keeps.
    if let Err(e) = resume::record_completion(&job.storage, &job.run_id, &entry).await {
        let failure = DatabaseFailure {
            message: format!("cannot record the completion of {}: {e}", file_name(&entry)),
            cause: FailureCause::Destination { local: job.local },
        };
        // Not in the manifest, so not in the run either (best effort).
        let (storage, run_id, file) = (job.storage.clone(), job.run_id.clone(), file_name(&entry));
        let _ = blocking::run("removing an unrecorded archive", move || {
            storage.remove_object(&run_id, &file)
        })
        .await;
        job.progress.event(&Event::DatabaseFailed {
            name: entry.name.clone(),
            failure: failure.clone(),
        });
        return (
            failed_entry(db, started_at, &failure, entry.platform.clone()),
            Some(failure),
        );
    }
    job.keeper.completed(&entry.name);
    (entry, None)
}

fn file_name(entry: &DatabaseEntry) -> String {
    entry.file.clone().unwrap_or_default()
}

/// Release an endpoint after its work: stop what it holds and say what that did.
async fn release(endpoint: Arc<EndpointGuard>) -> Released {
    match Arc::try_unwrap(endpoint) {
        Ok(guard) => guard.release().await,
        // Still shared (never expected: sources hold endpoints, not guards): dropping the
        // last reference releases it.
        Err(shared) => Released {
            platform: shared.platform().cloned(),
            notes: Vec::new(),
        },
    }
}

/// The failure of a dump whose endpoint died under it.
fn lost(reason: &str) -> DatabaseFailure {
    DatabaseFailure {
        message: format!("{reason} (during the dump)"),
        cause: FailureCause::Engine {
            kind: ErrorKind::Connect,
            hint: Some(
                "the tunnel died during the dump: run the dump again (`exporter tunnel HANDLE` \
                 shows whether a tunnel stays up)"
                    .to_owned(),
            ),
        },
    }
}

/// `preflight`, the object, the stream: the part of a dump that runs while the endpoint is
/// held.
async fn dump_through(
    db: &DatabaseTarget,
    file: &str,
    endpoint: &Endpoint,
    job: &Job<'_>,
    activity: &Activity,
) -> Result<ArchiveStats, DatabaseFailure> {
    let engine_source = db.engine().source(endpoint, job.engine_options);
    let source = stall::Watched::new(engine_source.as_ref(), activity.clone());
    job.progress.event(&Event::DatabaseStarted {
        name: db.name().to_owned(),
        source: source.describe(),
    });
    // Validate, then check health before the long work (vector's pattern): a database that
    // cannot be read fails here, before any file is created.
    let server = source
        .preflight()
        .await
        .map_err(|e| DatabaseFailure::from_pipeline(&e.into(), job.local))?;
    for note in server.notes {
        job.progress.event(&Event::ConnectionNote {
            name: db.name().to_owned(),
            note,
        });
    }
    let object = {
        let storage = job.storage.clone();
        let run_id = job.run_id.clone();
        let name = file.to_owned();
        match tokio::task::spawn_blocking(move || storage.create_object(&run_id, &name)).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                return Err(DatabaseFailure {
                    message: format!("cannot create {file}: {e}"),
                    cause: FailureCause::Destination { local: job.local },
                });
            }
            Err(e) => {
                return Err(DatabaseFailure {
                    message: e.to_string(),
                    cause: FailureCause::Internal,
                });
            }
        }
    };
    // Say every so often that the dump is still running (issue 16: minutes without a line),
    // with the rows and the tables the engine reports as it reads them.
    let meters = DumpMeters::default();
    let _ticker = Ticker::start(job.progress.heartbeat(), {
        let (progress, m, name) = (job.progress.clone(), meters.clone(), db.name().to_owned());
        move |elapsed| {
            progress.event(&Event::DatabaseProgress {
                name: name.clone(),
                bytes_read: m.read.get(),
                bytes_written: m.written.get(),
                expected_bytes: Some(m.expected.get()).filter(|n| *n > 0),
                rows: m.rows.get(),
                current_tables: m.tables.names(),
                seconds: elapsed.as_secs_f64(),
            });
        }
    });
    let watch = TableWatch::new(db.name(), &meters, job.progress.clone());
    dump_one(
        &source,
        job.options.clone().with_observer(Arc::new(watch)),
        object,
        file,
        job.compression,
        &meters,
    )
    .await
    .map_err(|e| DatabaseFailure::from_pipeline(&e, job.local))
}

/// The manifest entry of a platform database deliberately not dumped.
fn skipped_entry(s: &SkippedDatabase, at: DateTime<Utc>) -> DatabaseEntry {
    DatabaseEntry {
        name: s.name.clone(),
        engine: s.record.database_type.clone(),
        endpoint: platform_label(&s.record),
        status: DatabaseStatus::Skipped,
        error: Some(s.reason.clone()),
        server_version: None,
        file: None,
        format: None,
        compressed_bytes: None,
        uncompressed_bytes: None,
        sha256: None,
        zstd_frames: None,
        compression_level: None,
        consistency: None,
        payload_version: None,
        started_at: at,
        finished_at: at,
        tables: Vec::new(),
        warnings: Vec::new(),
        platform: Some(s.record.clone()),
        tls: None,
    }
}

/// The manifest entry of a database that has no archive.
fn failed_entry(
    db: &DatabaseTarget,
    started_at: DateTime<Utc>,
    failure: &DatabaseFailure,
    platform: Option<PlatformDatabase>,
) -> DatabaseEntry {
    DatabaseEntry {
        name: db.name().to_owned(),
        engine: db.engine().name().into(),
        endpoint: db.describe(),
        status: DatabaseStatus::Failed,
        error: Some(failure.message.clone()),
        server_version: None,
        file: None,
        format: None,
        compressed_bytes: None,
        uncompressed_bytes: None,
        sha256: None,
        zstd_frames: None,
        compression_level: None,
        consistency: None,
        payload_version: None,
        started_at,
        finished_at: Utc::now(),
        tables: Vec::new(),
        warnings: Vec::new(),
        platform,
        tls: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16: every database dumped at once had `--jobs` zstd workers, so memory at high
    /// levels grew with the square of `--jobs`.
    #[test]
    fn zstd_workers_share_the_jobs() {
        assert_eq!(zstd_workers(4, 1), 4, "one database: every core");
        assert_eq!(zstd_workers(4, 4), 1);
        assert_eq!(zstd_workers(4, 2), 2);
        assert_eq!(zstd_workers(2, 10), 1);
        assert_eq!(zstd_workers(3, 2), 1);
        assert_eq!(zstd_workers(1, 0), 1);
        assert_eq!(zstd_workers(200, 1), 64);
    }
}
