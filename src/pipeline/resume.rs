//! Resumable runs (issue 16): how a dump opens its run — a new one, or with `--resume` the
//! newest unfinished run of the same inventory — and what keeps a run resumable while it is
//! written.
//!
//! The rules (FORMAT.md, "Unfinished runs"):
//!
//! - A run gets a run record (`.partial/run.json`) when it is created, and each database a
//!   completion record (`.partial/<file>.json`: its manifest entry) right after its archive was
//!   committed. A database counts as finished in an unfinished run only with both its archive
//!   and its record.
//! - `--resume` picks the newest run without a manifest whose run record names the same
//!   inventory source; it claims it ([`Storage::lock_run`]), discards what a killed writer left
//!   (temporary files, open multipart uploads), and keeps each recorded archive whose stored
//!   length and SHA-256 still equal its record's and whose name, engine and file match a
//!   database of this dump. Everything else of the run is removed, said, and dumped again (a
//!   database of the inventory) or left out (one that is not in it any more).
//! - Until the manifest is written the run is registered with the cleanup scope
//!   ([`RunKeeper`]): removed if nothing in it is finished (as before resumable runs), kept —
//!   and said — once one database is, so an error, Ctrl-C or SIGTERM leaves it for `--resume`.
//!   A killed process leaves it as it is; a half-written archive never has a final name or a
//!   record.

use std::collections::BTreeSet;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

use super::dump::DumpError;
use crate::archive::manifest::SourceInfo;
use crate::archive::partial::{
    self, CompletionRecord, PARTIAL_DIR, RUN_RECORD, RunRecord, partial_path, record_name,
};
use crate::archive::{DatabaseEntry, MANIFEST_FILE, SUMS_FILE, check, run_id};
use crate::blocking;
use crate::cleanup::{self, Cleanup};
use crate::engines::{EngineKind, EngineOptions};
use crate::progress::{Event, Progress};
use crate::run::unfinished::{self, UnfinishedRun};
use crate::settings::{DatabaseTarget, Destination, DumpPlan};
use crate::storage::{RunLock, Storage};

/// The run a dump writes into.
#[derive(Debug)]
pub struct OpenedRun {
    /// The run id.
    pub id: String,
    /// When the run started (a resumed run: when it was first started).
    pub started_at: DateTime<Utc>,
    /// Databases finished by an earlier invocation and kept (their archives checked), in
    /// record order.
    pub kept: Vec<DatabaseEntry>,
    /// The claim on the run, held until the dump ends.
    pub lock: Option<RunLock>,
}

/// The inventory source a plan dumps, as the manifest and the run record name it.
#[must_use]
pub fn source_of(plan: &DumpPlan) -> SourceInfo {
    SourceInfo {
        kind: plan.inventory.as_str().into(),
        environment: plan
            .platform
            .as_ref()
            .map(|p| p.settings.environment.clone()),
    }
}

/// The archive file of a target, as this dump names it.
#[must_use]
pub fn file_of(db: &DatabaseTarget, options: EngineOptions) -> String {
    format!(
        "{}.{}.zst",
        db.name(),
        db.engine().format(options).extension()
    )
}

/// Open the run of a dump: with `plan.resume` the newest unfinished run of the same inventory
/// (its finished databases checked and kept), else — or when there is none, which is said — a
/// new run with its run record.
///
/// # Errors
///
/// [`DumpError::CreateRun`] when a new run cannot be created, locked or recorded;
/// [`DumpError::RunBusy`] when the unfinished run is being written by another process;
/// [`DumpError::Resume`] when the unfinished runs cannot be read or prepared.
pub async fn open_run(
    plan: &DumpPlan,
    storage: &Arc<dyn Storage>,
    progress: &Arc<dyn Progress>,
) -> Result<OpenedRun, DumpError> {
    let source = source_of(plan);
    if plan.resume {
        let found = {
            let storage = storage.clone();
            let source = source.clone();
            blocking::run("reading the unfinished runs", move || {
                Ok::<_, io::Error>(
                    unfinished::list(storage.as_ref())?
                        .into_iter()
                        .find(|r| r.resumable_by(&source)),
                )
            })
            .await?
            .map_err(|source| DumpError::Resume {
                destination: plan.destination.to_string(),
                source,
            })?
        };
        match found {
            Some(run) => match foreign(&run, plan) {
                // A run of other databases (or of these names on other servers) is not this
                // dump's to continue: taking it over would drop its finished archives or keep
                // another database's data under this name. It stays as it is.
                Some(why) => progress.event(&Event::ResumeNote {
                    name: None,
                    note: format!(
                        "the newest unfinished run {}/{} is not this dump's ({why}): it is left \
                         as it is, and a new run starts",
                        storage.describe(),
                        run.id
                    ),
                }),
                None => return resume(plan, storage, progress, run).await,
            },
            None => progress.event(&Event::NothingToResume {
                destination: storage.describe(),
                source: source.kind.clone(),
            }),
        }
    }
    let started_at = Utc::now();
    let storage = storage.clone();
    let wanted = run_id(started_at);
    blocking::run("creating the run", move || -> io::Result<OpenedRun> {
        let id = storage.create_run(&wanted)?;
        let lock = storage.lock_run(&id)?;
        let record = RunRecord::new(&id, started_at, source);
        storage.put_object(&id, &partial_path(RUN_RECORD), &partial::to_json(&record))?;
        Ok(OpenedRun {
            id,
            started_at,
            kept: Vec::new(),
            lock,
        })
    })
    .await?
    .map_err(|source| DumpError::CreateRun {
        destination: plan.destination.to_string(),
        local: matches!(plan.destination, Destination::Local(_)),
        source,
    })
}

/// Why `run` is not this dump's to continue, or `None` when it is: every database it finished
/// must be in the plan's inventory under the same name and engine and, for a URL, the same
/// server, port, user and database (a changed URL is another database: its archive must not
/// be kept under the name). `--resume` never takes over a run by removing what it finished.
fn foreign(run: &UnfinishedRun, plan: &DumpPlan) -> Option<String> {
    for record in &run.done {
        let entry = &record.entry;
        let Some(db) = plan.databases.iter().find(|d| d.name() == entry.name) else {
            return Some(format!(
                "it finished {}, which this dump does not name",
                entry.name
            ));
        };
        if EngineKind::for_manifest_engine(&entry.engine) != Some(db.engine()) {
            return Some(format!(
                "its {} is a {} database, this dump's is {}",
                entry.name,
                entry.engine,
                db.engine().name()
            ));
        }
        if let DatabaseTarget::Url(target) = db
            && !same_database(&entry.endpoint, &target.url)
        {
            return Some(format!(
                "its {} is {}, this dump's is {}",
                entry.name,
                entry.endpoint,
                target.url.redacted()
            ));
        }
    }
    None
}

/// Whether the recorded (redacted) endpoint names the same database as `url`: host (case
/// ignored), port, user and database; the password and parameters do not count.
fn same_database(recorded: &str, url: &exporter_contract::DatabaseUrl) -> bool {
    exporter_contract::DatabaseUrl::parse(recorded).is_ok_and(|had| {
        had.host().eq_ignore_ascii_case(url.host())
            && had.port() == url.port()
            && had.username() == url.username()
            && had.database() == url.database()
    })
}

/// A database this dump wants, as a kept archive must match it.
struct Wanted {
    name: String,
    engine: EngineKind,
    file: String,
    platform_id: Option<u64>,
}

/// Continue `run`: claim it, discard unfinished writes, keep what checks out.
async fn resume(
    plan: &DumpPlan,
    storage: &Arc<dyn Storage>,
    progress: &Arc<dyn Progress>,
    run: UnfinishedRun,
) -> Result<OpenedRun, DumpError> {
    let wanted: Vec<Wanted> = plan
        .databases
        .iter()
        .map(|db| Wanted {
            name: db.name().to_owned(),
            engine: db.engine(),
            file: file_of(db, plan.engine_options),
            platform_id: db.platform().map(|p| p.id),
        })
        .collect();
    let location = format!("{}/{}", storage.describe(), run.id);
    let id = run.id.clone();
    let started_at = run.record.as_ref().map_or_else(Utc::now, |r| r.started_at);
    let (storage2, progress2, location2) = (storage.clone(), progress.clone(), location.clone());
    let result = blocking::run("checking the unfinished run", move || {
        prepare(
            &storage2,
            progress2.as_ref(),
            &run,
            &wanted,
            &location2,
            started_at,
        )
    })
    .await?;
    match result {
        Ok((kept, lock)) => Ok(OpenedRun {
            id,
            started_at,
            kept,
            lock,
        }),
        Err(source) if source.kind() == io::ErrorKind::WouldBlock => Err(DumpError::RunBusy {
            run: location,
            source,
        }),
        Err(source) => Err(DumpError::Resume {
            destination: location,
            source,
        }),
    }
}

/// The blocking part of [`resume`]: returns the kept entries and the run's lock.
fn prepare(
    storage: &Arc<dyn Storage>,
    progress: &dyn Progress,
    run: &UnfinishedRun,
    wanted: &[Wanted],
    location: &str,
    started_at: DateTime<Utc>,
) -> io::Result<(Vec<DatabaseEntry>, Option<RunLock>)> {
    let id = &run.id;
    let lock = storage.lock_run(id)?;
    progress.event(&Event::ResumeStarted {
        run_id: id.clone(),
        location: location.to_owned(),
        started_at,
        recorded: run.done.len(),
    });
    let discarded = storage.discard_unfinished(id)?;
    if discarded > 0 {
        progress.event(&Event::ResumeNote {
            name: None,
            note: format!(
                "discarded {discarded} unfinished write(s) the interrupted dump left (temporary files or multipart uploads)"
            ),
        });
    }
    let warn = |name: &str, note: String| {
        progress.event(&Event::ResumeWarning {
            name: name.to_owned(),
            warning: note,
        });
    };
    let mut kept = Vec::new();
    // Archives and records of this run that are not kept: removed below, so that the run
    // holds exactly what its manifest will list.
    let mut drop_files: BTreeSet<String> = BTreeSet::new();
    let mut drop_records: BTreeSet<String> = BTreeSet::new();
    for (name, why) in &run.unusable {
        let file = name.strip_suffix(".json").unwrap_or(name).to_owned();
        warn(
            &file,
            format!("its completion record {why}: it is not kept"),
        );
        drop_records.insert(name.clone());
        drop_files.insert(file);
    }
    for record in &run.done {
        let entry = &record.entry;
        let file = entry.file.clone().unwrap_or_default();
        let Some(want) = wanted.iter().find(|w| w.name == entry.name) else {
            warn(
                &entry.name,
                format!(
                    "finished in the unfinished run but not in this dump's inventory: left out of \
                     the manifest, and its archive {file} removed from the run"
                ),
            );
            drop_records.insert(record_name(&file));
            drop_files.insert(file);
            continue;
        };
        let engine = EngineKind::for_manifest_engine(&entry.engine);
        let mismatch = if engine != Some(want.engine) {
            Some(format!(
                "the unfinished run's archive is of a {} database, this dump's {} is {}",
                entry.engine,
                want.name,
                want.engine.name()
            ))
        } else if file != want.file {
            Some(format!(
                "the unfinished run holds {file}, this dump writes {}",
                want.file
            ))
        } else if let (Some(had), Some(now)) =
            (entry.platform.as_ref().map(|p| p.id), want.platform_id)
            && had != now
        {
            Some(format!(
                "the unfinished run's archive is of platform database #{had}, this dump's is #{now}"
            ))
        } else {
            None
        };
        if let Some(why) = mismatch {
            warn(&entry.name, format!("{why}: dumping it again"));
            drop_records.insert(record_name(&file));
            drop_files.insert(file);
            continue;
        }
        // The SHA-256 and length of the stored bytes, read back from storage.
        match check_kept(storage.as_ref(), id, entry) {
            Ok(()) => {
                progress.event(&Event::ArchiveKept {
                    name: entry.name.clone(),
                    file: file.clone(),
                    compressed_bytes: entry.compressed_bytes.unwrap_or_default(),
                    finished_at: entry.finished_at,
                });
                kept.push(entry.clone());
            }
            Err(e) => {
                warn(
                    &entry.name,
                    format!("the kept archive {file} failed its check ({e}): dumping it again"),
                );
                drop_records.insert(record_name(&file));
                drop_files.insert(file);
            }
        }
    }
    let kept_files: BTreeSet<&str> = kept.iter().filter_map(|e| e.file.as_deref()).collect();
    for object in storage.list_objects(id)? {
        // Archive names end in `.zst` as this tool writes them (FORMAT.md).
        let is_archive = std::path::Path::new(&object)
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("zst"));
        if !is_archive || kept_files.contains(object.as_str()) {
            // `SHA256SUMS` of a dump killed while writing its manifest is replaced at the
            // end; nothing else is expected here.
            if object != SUMS_FILE && object != MANIFEST_FILE && !is_archive {
                tracing::debug!(%object, "left in the unfinished run");
            }
            continue;
        }
        if !drop_files.contains(&object)
            && let Some(w) = wanted.iter().find(|w| w.file == object)
        {
            warn(
                &w.name,
                format!(
                    "{object} has no completion record (the dump stopped before recording it): \
                     dumping it again"
                ),
            );
        }
        drop_files.insert(object);
    }
    for file in &drop_files {
        storage.remove_object(id, file)?;
    }
    for record in &drop_records {
        storage.remove_object(id, &partial_path(record))?;
    }
    Ok((kept, lock))
}

/// Read a recorded archive back from storage and compare its length and SHA-256 with its
/// completion record: `Err` says what differs (or why it cannot be read).
fn check_kept(storage: &dyn Storage, run_id: &str, entry: &DatabaseEntry) -> Result<(), String> {
    let (Some(file), Some(sha256), Some(bytes)) =
        (&entry.file, &entry.sha256, entry.compressed_bytes)
    else {
        return Err("its record lacks file, sha256 or size".to_owned());
    };
    let reader = storage.open_object(run_id, file).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            "it is missing".to_owned()
        } else {
            format!("it cannot be read: {e}")
        }
    })?;
    let facts = check::scan(reader, false).map_err(|e| format!("it cannot be read: {e}"))?;
    let mut problems = Vec::new();
    if facts.bytes != bytes {
        problems.push(format!(
            "length {} bytes, its completion record says {bytes}",
            facts.bytes
        ));
    }
    if !facts.sha256.eq_ignore_ascii_case(sha256) {
        problems.push(format!(
            "sha256 {}, its completion record says {sha256}",
            facts.sha256
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Write the completion record of `entry` (an `ok` entry whose archive is committed).
///
/// # Errors
///
/// I/O errors naming the record.
pub async fn record_completion(
    storage: &Arc<dyn Storage>,
    run_id: &str,
    entry: &DatabaseEntry,
) -> io::Result<()> {
    let file = entry.file.clone().unwrap_or_default();
    let bytes = partial::to_json(&CompletionRecord::new(run_id, entry.clone()));
    let (storage, run_id) = (storage.clone(), run_id.to_owned());
    blocking::run("recording a finished database", move || {
        storage.put_object(&run_id, &partial_path(&record_name(&file)), &bytes)
    })
    .await
    .map_err(io::Error::other)?
}

/// Remove the records of a committed run (best effort: readers ignore `.partial/` once the
/// manifest exists). Returns the error, if any, for a diagnostic.
pub async fn forget_records(storage: &Arc<dyn Storage>, run_id: &str) -> Option<String> {
    let (storage, run_id) = (storage.clone(), run_id.to_owned());
    match blocking::run("removing the run's records", move || {
        storage.remove_dir(&run_id, PARTIAL_DIR)
    })
    .await
    {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    }
}

/// The run's registration with the cleanup scope until its manifest is written: removal while
/// nothing in it is finished, keeping (and saying so) once something is.
pub struct RunKeeper {
    cleanup: Cleanup,
    storage: Arc<dyn Storage>,
    run_id: String,
    location: String,
    state: Mutex<KeeperState>,
}

struct KeeperState {
    guard: Option<cleanup::Guard>,
    done: Vec<String>,
}

impl RunKeeper {
    /// Register run `run_id` at `location`; `kept` are the databases it already holds
    /// finished (a resumed run: it is never removed then).
    #[must_use]
    pub fn new(
        cleanup: &Cleanup,
        storage: &Arc<dyn Storage>,
        run_id: &str,
        location: &str,
        kept: Vec<String>,
    ) -> Self {
        let keeper = Self {
            cleanup: cleanup.clone(),
            storage: storage.clone(),
            run_id: run_id.to_owned(),
            location: location.to_owned(),
            state: Mutex::new(KeeperState {
                guard: None,
                done: Vec::new(),
            }),
        };
        let guard = if kept.is_empty() {
            keeper.register_removal()
        } else {
            keeper.register_keep(kept.clone())
        };
        *keeper.lock() = KeeperState {
            guard: Some(guard),
            done: kept,
        };
        keeper
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KeeperState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Until something is finished, the run is not worth keeping: the scope removes it.
    fn register_removal(&self) -> cleanup::Guard {
        let storage = self.storage.clone();
        let run_id = self.run_id.clone();
        self.cleanup.register(
            cleanup::Task::UncommittedRun {
                run: self.location.clone(),
            },
            move || {
                Box::pin(async move {
                    tokio::task::spawn_blocking(move || storage.remove_uncommitted_run(&run_id))
                        .await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())
                })
            },
        )
    }

    /// Something is finished: the scope keeps the run for `--resume`, and says so.
    fn register_keep(&self, done: Vec<String>) -> cleanup::Guard {
        self.cleanup.register(
            cleanup::Task::UnfinishedRun {
                run: self.location.clone(),
                done,
            },
            || Box::pin(async { Ok(()) }),
        )
    }

    /// Database `name` is finished (its archive committed and recorded).
    pub fn completed(&self, name: &str) {
        let mut state = self.lock();
        state.done.push(name.to_owned());
        let next = self.register_keep(state.done.clone());
        if let Some(previous) = state.guard.replace(next) {
            previous.disarm();
        }
    }

    /// The manifest is written: nothing is left to undo or keep.
    pub fn committed(self) {
        if let Some(guard) = self.lock().guard.take() {
            guard.disarm();
        }
    }
}
