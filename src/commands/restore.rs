//! `exporter restore`: put one archive of a run back into a database, natively and streaming
//! (design.md sections 1 and 6), and the archive-to-[`Target`] pipeline that
//! `verify --level restore` shares.
//!
//! The pipeline: a blocking thread reads the stored object through [`Storage::open_object`],
//! hashes every stored byte (SHA-256 and length), decodes every zstd frame (content checksums
//! checked by zstd) and hands the payload to [`Target::restore`] as [`Bytes`] chunks of at most
//! [`OUT_CHUNK`] bytes through a channel of [`CHANNEL_DEPTH`] chunks, so memory stays bounded
//! whatever the archive's size. At the end of the stored bytes the thread compares length,
//! SHA-256, frame count and payload length with the manifest *before* it ends the stream: a
//! mismatch is sent as an error item, so the adapter aborts instead of finishing (the contract's
//! protocol, point 3), and the command reports the archive as corrupt (exit 1).

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use bytes::Bytes;
use exporter_contract::{
    EngineError, ErrorKind, PayloadFormat, RestoreOptions, RestoreSummary, Target,
};
use futures::StreamExt as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use zstd::stream::raw::{Decoder, InBuffer, Operation as _, OutBuffer};

use super::Ui;
use crate::archive::{DatabaseEntry, DatabaseStatus, MANIFEST_FILE, Manifest};
use crate::engines::EngineKind;
use crate::error::{ExitStatus, Failure};
use crate::settings::RestorePlan;
use crate::storage::{self, Storage};

/// Bytes read from storage at a time.
const READ_CHUNK: usize = 1 << 20;
/// Largest payload chunk handed to the target, in bytes.
pub const OUT_CHUNK: usize = 128 << 10;
/// Payload chunks buffered between the decoding thread and the target.
pub const CHANNEL_DEPTH: usize = 8;
/// Largest manifest accepted, in bytes.
const MANIFEST_LIMIT: u64 = 64 << 20;
/// How many existing objects a refusal names.
const SHOW_OBJECTS: usize = 5;

/// Why restoring an archive stopped.
#[derive(Debug)]
pub enum RestoreError {
    /// The stored object is not what the manifest describes (length, SHA-256, a zstd frame,
    /// frame count or payload length): exit 1. One line per finding.
    Corrupt {
        /// The archive file.
        file: String,
        /// What differs.
        problems: Vec<String>,
    },
    /// The manifest names a file that storage does not have: exit 1.
    Missing {
        /// The archive file.
        file: String,
    },
    /// Storage could not be read: exit 3.
    Storage {
        /// The archive file.
        file: String,
        /// The I/O error.
        error: io::Error,
    },
    /// The target failed (the adapter's error names the statement): exit 3 (2 for
    /// [`ErrorKind::Unsupported`]).
    Target(EngineError),
}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Corrupt { file, problems } => {
                write!(f, "archive {file} is corrupt: {}", problems.join("; "))
            }
            Self::Missing { file } => write!(
                f,
                "archive {file} is listed in the manifest but missing from storage"
            ),
            Self::Storage { file, error } => write!(f, "cannot read archive {file}: {error}"),
            Self::Target(e) => write!(f, "{e}"),
        }
    }
}

/// An archive opened for reading, with what the manifest says about it.
pub struct OpenArchive {
    reader: Box<dyn Read + Send>,
    file: String,
    format: PayloadFormat,
    expect: Expected,
}

impl OpenArchive {
    /// The payload format recorded in the manifest.
    #[must_use]
    pub fn format(&self) -> PayloadFormat {
        self.format
    }
}

/// The manifest's facts about one stored object.
#[derive(Debug, Clone)]
struct Expected {
    bytes: u64,
    sha256: String,
    frames: Option<u64>,
    uncompressed: Option<u64>,
}

/// Open the archive of a manifest entry (blocking: call it from a blocking thread).
///
/// # Errors
///
/// [`RestoreError::Corrupt`] for an entry without file, format, size or SHA-256,
/// [`RestoreError::Missing`] if storage does not have the file, [`RestoreError::Storage`] for
/// other read errors.
pub fn open_archive(
    storage: &dyn Storage,
    run_id: &str,
    entry: &DatabaseEntry,
) -> Result<OpenArchive, RestoreError> {
    let (Some(file), Some(format), Some(sha256), Some(bytes)) = (
        &entry.file,
        entry.format,
        &entry.sha256,
        entry.compressed_bytes,
    ) else {
        return Err(RestoreError::Corrupt {
            file: entry.file.clone().unwrap_or_else(|| entry.name.clone()),
            problems: vec![format!(
                "manifest entry {} lacks file, format, sha256 or size",
                entry.name
            )],
        });
    };
    check_file_name(file)?;
    let reader = storage
        .open_object(run_id, file)
        .map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => RestoreError::Missing { file: file.clone() },
            _ => RestoreError::Storage {
                file: file.clone(),
                error,
            },
        })?;
    Ok(OpenArchive {
        reader,
        file: file.clone(),
        format,
        expect: Expected {
            bytes,
            sha256: sha256.to_ascii_lowercase(),
            frames: entry.zstd_frames,
            uncompressed: entry.uncompressed_bytes,
        },
    })
}

/// A manifest's `file` must name an object of the run itself: a plain name of
/// `[A-Za-z0-9._-]` not starting with `.` (what `dump` writes). A manifest edited to say
/// `../x` or `/etc/passwd` is refused rather than followed out of the run.
fn check_file_name(file: &str) -> Result<(), RestoreError> {
    let plain = !file.is_empty()
        && file.len() <= 255
        && !file.starts_with('.')
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if plain {
        Ok(())
    } else {
        Err(RestoreError::Corrupt {
            file: file.to_owned(),
            problems: vec![format!(
                "the manifest names file {file:?}, which is not a plain file name of the run"
            )],
        })
    }
}

/// Read a stored archive once and compare its length and SHA-256 with the manifest, without
/// decoding it (blocking). `restore --clean` calls it before dropping anything, so a damaged
/// or truncated archive never costs the target its current contents.
///
/// # Errors
///
/// [`RestoreError::Corrupt`] on a difference, [`RestoreError::Missing`] or
/// [`RestoreError::Storage`] when it cannot be read.
pub fn precheck_archive(
    storage: &dyn Storage,
    run_id: &str,
    entry: &DatabaseEntry,
) -> Result<(), RestoreError> {
    let OpenArchive {
        reader,
        file,
        expect,
        ..
    } = open_archive(storage, run_id, entry)?;
    // The same read as `verify --level checksum`.
    let facts =
        crate::archive::check::scan(reader, false).map_err(|error| RestoreError::Storage {
            file: file.clone(),
            error,
        })?;
    let mut problems = Vec::new();
    if facts.bytes != expect.bytes {
        problems.push(format!(
            "stored length is {} bytes, manifest says {}",
            facts.bytes, expect.bytes
        ));
    }
    if facts.sha256 != expect.sha256 {
        problems.push(format!(
            "sha256 is {}, manifest says {}",
            facts.sha256, expect.sha256
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(RestoreError::Corrupt { file, problems })
    }
}

/// Sets a flag when dropped: tells the reading thread to stop when the restore future is
/// dropped (Ctrl-C) or has failed for a reason the archive cannot explain.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Stream an opened archive into `target` (see the module docs).
///
/// # Errors
///
/// [`RestoreError::Corrupt`] if the stored bytes differ from the manifest in any way (checked
/// whether or not the target succeeded: a statement that fails on damaged data is reported as
/// the damage), [`RestoreError::Storage`] for read errors, [`RestoreError::Target`] with the
/// adapter's error otherwise.
///
/// # Cancel safety
///
/// Dropping the future stops the reading thread and the adapter's work; the target keeps
/// whatever was applied before.
pub async fn restore_archive(
    archive: OpenArchive,
    target: &dyn Target,
    options: RestoreOptions,
) -> Result<RestoreSummary, RestoreError> {
    let OpenArchive {
        reader,
        file,
        format,
        expect,
    } = archive;
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_guard = StopOnDrop(stop.clone());
    let (tx, rx) = mpsc::channel::<Result<Bytes, EngineError>>(CHANNEL_DEPTH);
    let reader_file = file.clone();
    let reader_stop = stop.clone();
    let pump =
        tokio::task::spawn_blocking(move || pump(reader, &reader_file, &expect, &tx, &reader_stop));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed();
    let result = target.restore(format, body, options).await;
    // A failing statement may be the first sign of damaged data: then read on to the end so
    // the checksum can tell. Any other failure (connection, permission, unsupported format)
    // says nothing about the archive: stop reading.
    if let Err(e) = &result
        && !matches!(e.kind(), ErrorKind::Query | ErrorKind::Protocol)
    {
        stop.store(true, Ordering::Relaxed);
    }
    let read = pump.await.map_err(|e| RestoreError::Storage {
        file: file.clone(),
        error: io::Error::other(format!("the reading thread failed: {e}")),
    })?;
    if !read.problems.is_empty() {
        return Err(RestoreError::Corrupt {
            file,
            problems: read.problems,
        });
    }
    if let Some(error) = read.io_error {
        return Err(RestoreError::Storage { file, error });
    }
    let summary = result.map_err(RestoreError::Target)?;
    if !read.delivered_all {
        return Err(RestoreError::Target(
            EngineError::new(
                ErrorKind::Protocol,
                "the target reported success before it had read the whole payload",
            )
            .with_object(file),
        ));
    }
    Ok(summary)
}

/// What the reading thread found.
#[derive(Debug, Default)]
struct ReadOutcome {
    /// Differences from the manifest, or undecodable data.
    problems: Vec<String>,
    /// A read error of storage.
    io_error: Option<io::Error>,
    /// Every payload byte was handed to the target and the stream ended normally.
    delivered_all: bool,
}

/// The reading thread: read, hash, decode, send (see the module docs). Returns when the
/// stored object ends, reading fails, or `stop` is set.
fn pump(
    mut reader: Box<dyn Read + Send>,
    file: &str,
    expect: &Expected,
    tx: &mpsc::Sender<Result<Bytes, EngineError>>,
    stop: &AtomicBool,
) -> ReadOutcome {
    let mut out = ReadOutcome::default();
    let corrupt = |text: &str| {
        EngineError::new(
            ErrorKind::Protocol,
            format!("archive {file} is corrupt: {text}"),
        )
    };
    let mut decoder = match Decoder::new() {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.blocking_send(Err(EngineError::new(
                ErrorKind::Io,
                "cannot start the zstd decoder",
            )
            .with_source(io::Error::new(e.kind(), e.to_string()))));
            out.io_error = Some(e);
            return out;
        }
    };
    let mut hasher = Sha256::new();
    let mut bytes: u64 = 0;
    let mut frames: u64 = 0;
    let mut uncompressed: u64 = 0;
    let mut in_frame = false;
    // Decoding stops after a bad frame or when the target stopped reading; hashing goes on so
    // the final comparison can say whether the archive is intact.
    let mut decoding = true;
    let mut consumer_gone = false;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        if stop.load(Ordering::Relaxed) {
            return out;
        }
        let n = match read_full(&mut reader, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.blocking_send(Err(EngineError::new(
                    ErrorKind::Io,
                    format!("cannot read archive {file}: {e}"),
                )));
                out.io_error = Some(e);
                return out;
            }
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
        if !decoding {
            continue;
        }
        let mut input = InBuffer::around(&buf[..n]);
        'chunk: while input.pos() < n {
            loop {
                let mut chunk = vec![0u8; OUT_CHUNK];
                let mut output = OutBuffer::around(&mut chunk[..]);
                let hint = match decoder.run(&mut input, &mut output) {
                    Ok(hint) => hint,
                    Err(e) => {
                        let text = format!("zstd frame {} does not decode: {e}", frames + 1);
                        let _ = tx.blocking_send(Err(corrupt(&text)));
                        out.problems.push(text);
                        decoding = false;
                        break 'chunk;
                    }
                };
                let produced = output.pos();
                if produced > 0 {
                    uncompressed += produced as u64;
                    chunk.truncate(produced);
                    if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                        consumer_gone = true;
                        decoding = false;
                        break 'chunk;
                    }
                }
                if hint == 0 {
                    // A frame ended, its checksum held, and its output is fully flushed.
                    frames += 1;
                    in_frame = false;
                    break;
                }
                in_frame = true;
                if produced < OUT_CHUNK {
                    break;
                }
            }
        }
    }

    let sha256 = hex::encode(hasher.finalize());
    let decoded_all = decoding;
    if decoded_all {
        if in_frame {
            out.problems.push(format!(
                "zstd data ends inside frame {} (truncated)",
                frames + 1
            ));
        } else if frames == 0 {
            out.problems.push("no zstd frame in the file".to_owned());
        }
    }
    if bytes != expect.bytes {
        out.problems.push(format!(
            "length {bytes} bytes, manifest says {}",
            expect.bytes
        ));
    }
    if sha256 != expect.sha256 {
        out.problems
            .push(format!("sha256 {sha256}, manifest says {}", expect.sha256));
    }
    if decoded_all && out.problems.is_empty() {
        if let Some(expected) = expect.frames
            && frames != expected
        {
            out.problems
                .push(format!("{frames} zstd frame(s), manifest says {expected}"));
        }
        if let Some(expected) = expect.uncompressed
            && uncompressed != expected
        {
            out.problems.push(format!(
                "decompresses to {uncompressed} bytes, manifest says {expected}"
            ));
        }
    }
    if !out.problems.is_empty() && !consumer_gone {
        // Before the stream ends: the target must abort, not finish (contract, point 3).
        let _ = tx.blocking_send(Err(corrupt(&out.problems.join("; "))));
    }
    out.delivered_all = decoded_all && out.problems.is_empty();
    out
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Read and parse a run's manifest (blocking).
///
/// # Errors
///
/// A [`Failure`]: exit 1 for a missing (the run is incomplete) or unreadable manifest, 3 for
/// storage errors.
pub fn load_manifest(storage: &dyn Storage, run_id: &str) -> Result<Manifest, Failure> {
    let where_ = format!("{}/{run_id}", storage.describe());
    let bytes =
        storage::read_small(storage, run_id, MANIFEST_FILE, MANIFEST_LIMIT).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Failure::no(anyhow!(
                    "run {run_id} has no {MANIFEST_FILE}: it is incomplete (an interrupted or failed dump)"
                ))
                .with_hint(Some("restore from a complete run"))
            } else {
                Failure::runtime(
                    anyhow::Error::new(e).context(format!("cannot read {MANIFEST_FILE} of {where_}")),
                )
            }
        })?;
    Manifest::from_json(&bytes)
        .map_err(|e| Failure::no(anyhow::Error::new(e).context(format!("run {run_id}"))))
}

/// Pick the manifest entry to restore: `db` by name, or the only entry.
///
/// # Errors
///
/// A usage [`Failure`] (exit 2) listing the names when `db` is missing and the run holds
/// several entries, or when no entry is called `db`.
pub fn pick_entry<'m>(
    manifest: &'m Manifest,
    db: Option<&str>,
) -> Result<&'m DatabaseEntry, Failure> {
    let names = || {
        manifest
            .databases
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match db {
        Some(name) => manifest
            .databases
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| {
                Failure::usage(anyhow!(
                    "run {} has no database {name:?}; it holds: {}",
                    manifest.run_id,
                    names()
                ))
                .with_hint(Some("pass one of those names to --db"))
            }),
        None => match manifest.databases.as_slice() {
            [only] => Ok(only),
            [] => Err(Failure::no(anyhow!(
                "run {} holds no databases",
                manifest.run_id
            ))),
            many => Err(Failure::usage(anyhow!(
                "run {} holds {} databases; choose one with --db: {}",
                manifest.run_id,
                many.len(),
                names()
            ))
            .with_hint(Some("e.g. --db ".to_owned() + &many[0].name))),
        },
    }
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

/// The `--json` summary of a restore.
#[derive(Debug, Serialize)]
struct RestoreReport<'a> {
    run_id: &'a str,
    database: &'a str,
    file: &'a str,
    engine: &'a str,
    target: String,
    cleaned: usize,
    statements: u64,
    rows: u64,
    skipped: u64,
    millis: u64,
}

/// Seconds with one decimal, for summaries.
fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// An adapter error as a failure: unsupported requests are usage errors (2), the rest runtime
/// failures (3), with `what` as context.
fn engine_failure(e: EngineError, what: String) -> Failure {
    let status_usage = e.kind() == ErrorKind::Unsupported;
    // The engine's own next step (e.g. `sslmode=verify-ca` after a host name mismatch).
    let hint = e.hint().map(str::to_owned);
    let error = anyhow::Error::new(e).context(what);
    if status_usage {
        Failure::usage(error).with_hint(hint)
    } else {
        Failure::runtime(error).with_hint(hint)
    }
}

/// Run a restore plan.
///
/// Order: resolve the run and read its manifest; pick the entry (`--db`); check its status
/// and that its engine is the target's; open the archive; connect to the target
/// (`preflight`); refuse a non-empty target unless `--clean` (then `clean`); stream the
/// archive into it; print the summary.
///
/// # Errors
///
/// A [`Failure`] with the exit code of README's restore table: 1 for a clean "no" (a failed
/// or corrupt archive, a non-empty target without `--clean` — nothing was written then), 2 for
/// usage errors (no such run or `--db`, `--db` missing with several databases, an engine
/// mismatch, an archive format the engine cannot restore), 3 for runtime failures (storage,
/// connection, a failing statement — named by the adapter).
pub async fn run(plan: RestorePlan, ui: Ui, json: bool) -> Result<ExitStatus, Failure> {
    let storage = super::dump::open_storage(&plan.destination).await?;
    let (storage, run_id, manifest) = {
        let destination = plan.destination.clone();
        let run = plan.run.clone();
        tokio::task::spawn_blocking(move || {
            let (storage, run_id) = super::verify::resolve_run(&destination, storage, Some(&run))?;
            let manifest = load_manifest(storage.as_ref(), &run_id)?;
            Ok::<_, Failure>((storage, run_id, manifest))
        })
        .await
        .map_err(|e| Failure::runtime(anyhow::Error::new(e).context("reading the run failed")))??
    };
    let entry = pick_entry(&manifest, plan.db.as_deref())?.clone();
    let label = entry.file.clone().unwrap_or_else(|| entry.name.clone());
    if entry.status == DatabaseStatus::Failed {
        return Err(Failure::no(anyhow!(
            "database {} was not dumped in run {run_id} ({}): there is no archive to restore",
            entry.name,
            entry.error.as_deref().unwrap_or("unknown error")
        ))
        .with_hint(Some("restore it from another run")));
    }
    let engine = EngineKind::for_manifest_engine(&entry.engine).ok_or_else(|| {
        Failure::usage(anyhow!(
            "database {} is a {:?} archive, an engine this build cannot restore",
            entry.name,
            entry.engine
        ))
    })?;
    if engine != plan.engine {
        return Err(Failure::usage(anyhow!(
            "database {} is a {} archive, but --into is a {} URL ({})",
            entry.name,
            entry.engine,
            plan.engine,
            plan.into
        ))
        .with_hint(Some(format!(
            "restore into a {} database ({} URL)",
            engine,
            engine.name()
        ))));
    }
    // Open once now, so a missing or malformed entry fails before the target is touched;
    // the object is opened again for the restore itself (after a possible --clean check).
    let open = |storage: Arc<dyn Storage>, run_id: String, entry: DatabaseEntry| async move {
        tokio::task::spawn_blocking(move || open_archive(storage.as_ref(), &run_id, &entry))
            .await
            .map_err(|e| Failure::runtime(anyhow::Error::new(e)))?
            .map_err(|e| archive_failure(e, false))
    };
    let format = open(storage.clone(), run_id.clone(), entry.clone())
        .await?
        .format();
    if format == PayloadFormat::Rdb && plan.clean {
        // Refused before anything is dropped: the target would be emptied for an archive
        // `exporter restore` cannot load (a stock redis-server loads RDB files, FORMAT.md).
        return Err(Failure::usage(anyhow!(
            "{label} is an RDB archive, which `exporter restore` does not load; --clean would empty the target for nothing"
        ))
        .with_hint(Some(
            "load the RDB file with a stock redis-server (README, \"Restore by hand\"), or dump with --redis-format resp",
        )));
    }

    let target = engine.target(engine.endpoint(&plan.into, &plan.connections));
    let describe = target.describe();
    target.preflight().await.map_err(|e| {
        let hint = e.hint().map(str::to_owned).or_else(|| {
            (e.kind() == ErrorKind::NotFound)
                .then(|| "create the target database first (it must exist and be empty)".to_owned())
        });
        engine_failure(e, format!("cannot use the target {describe}")).with_hint(hint)
    })?;
    let existing = target
        .existing_objects()
        .await
        .map_err(|e| engine_failure(e, format!("cannot list what is in {describe}")))?;
    let cleaned = existing.len();
    if !existing.is_empty() {
        if !plan.clean {
            return Err(Failure::no(anyhow!(
                "the target {describe} is not empty ({} object(s): {}); nothing was restored",
                existing.len(),
                first_few(&existing)
            ))
            .with_hint(Some("--clean drops them first")));
        }
        // Prove the archive intact before anything is dropped: a damaged archive must not
        // cost the target what it holds now (the target may be the only other copy).
        ui.info(format!(
            "checking {label} (length and SHA-256) before --clean drops anything"
        ));
        {
            let storage = storage.clone();
            let run_id = run_id.clone();
            let entry = entry.clone();
            tokio::task::spawn_blocking(move || {
                precheck_archive(storage.as_ref(), &run_id, &entry)
            })
            .await
            .map_err(|e| Failure::runtime(anyhow::Error::new(e)))?
            .map_err(|e| {
                let failure = archive_failure(e, false);
                failure.with_hint(Some(
                    "nothing was dropped: the target is unchanged; restore from another run",
                ))
            })?;
        }
        ui.info(format!(
            "dropping {} existing object(s) in {describe} (--clean)",
            existing.len()
        ));
        target
            .clean()
            .await
            .map_err(|e| engine_failure(e, format!("--clean failed in {describe}")))?;
    }

    let archive = open(storage.clone(), run_id.clone(), entry.clone()).await?;
    ui.info(format!(
        "restoring {} ({label}) of run {run_id} into {describe}",
        entry.name
    ));
    let started = Instant::now();
    let summary = restore_archive(
        archive,
        target.as_ref(),
        RestoreOptions::default().with_ownership(plan.ownership),
    )
    .await
    .map_err(|e| match e {
        RestoreError::Target(e) => {
            let hint = if e.kind() == ErrorKind::Unsupported && format == PayloadFormat::Rdb {
                "RDB archives are loaded by a stock redis-server (README, \"Restore by hand\")"
            } else if e.kind() == ErrorKind::Unsupported {
                "the archive holds something `exporter restore` does not run; restore it with the stock client (README, \"Restore by hand\") if you trust it"
            } else {
                "the target may be partly restored; fix the cause and run again with --clean"
            };
            engine_failure(
                e,
                format!("restoring {} into {describe} failed", entry.name),
            )
            .with_hint(Some(hint))
        }
        other => archive_failure(other, true),
    })?;
    let elapsed = started.elapsed();
    ui.info(format!(
        "restored {} ({label}) into {describe}: {} statement(s), {} row(s), {} skipped in {}",
        entry.name,
        summary.statements,
        summary.rows,
        summary.skipped,
        seconds(elapsed)
    ));
    if json {
        let report = RestoreReport {
            run_id: &run_id,
            database: &entry.name,
            file: &label,
            engine: &entry.engine,
            target: describe,
            cleaned: if plan.clean { cleaned } else { 0 },
            statements: summary.statements,
            rows: summary.rows,
            skipped: summary.skipped,
            millis: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        };
        super::print_data(&serde_json::to_string_pretty(&report).expect("report serializes"));
    }
    Ok(ExitStatus::Success)
}

/// An archive problem as a failure; `started` says whether the target may hold part of it.
fn archive_failure(e: RestoreError, started: bool) -> Failure {
    let partly = if started {
        "; the target may be partly restored"
    } else {
        ""
    };
    match e {
        RestoreError::Corrupt { .. } | RestoreError::Missing { .. } => {
            Failure::no(anyhow!("{e}{partly}")).with_hint(Some(if started {
                "restore from another run (`exporter verify` checks one), then use --clean"
            } else {
                "restore from another run (`exporter verify` checks one)"
            }))
        }
        RestoreError::Storage { .. } => Failure::runtime(anyhow!("{e}{partly}")),
        RestoreError::Target(e) => Failure::runtime(anyhow::Error::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8]) -> Vec<u8> {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_checksum(true).unwrap();
        std::io::Write::write_all(&mut enc, data).unwrap();
        enc.finish().unwrap()
    }

    fn payload(lines: u32) -> Vec<u8> {
        (0..lines)
            .flat_map(|i| format!("{i}\trow {i}\n").into_bytes())
            .collect()
    }

    fn expected(stored: &[u8], frames: u64, plain: usize) -> Expected {
        Expected {
            bytes: stored.len() as u64,
            sha256: hex::encode(Sha256::digest(stored)),
            frames: Some(frames),
            uncompressed: Some(plain as u64),
        }
    }

    /// Run the pump over `stored` and collect what the target would receive.
    fn pump_all(stored: Vec<u8>, expect: &Expected) -> (ReadOutcome, Vec<u8>, Vec<String>) {
        let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
        let expect = expect.clone();
        let thread = std::thread::spawn(move || {
            pump(
                Box::new(std::io::Cursor::new(stored)),
                "x.sql.zst",
                &expect,
                &tx,
                &AtomicBool::new(false),
            )
        });
        let mut data = Vec::new();
        let mut errors = Vec::new();
        while let Some(item) = rx.blocking_recv() {
            match item {
                Ok(b) => {
                    assert!(b.len() <= OUT_CHUNK);
                    data.extend_from_slice(&b);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        (thread.join().unwrap(), data, errors)
    }

    #[test]
    fn a_good_multi_frame_archive_is_delivered_whole() {
        let (a, b) = (payload(60_000), payload(10));
        let mut stored = frame(&a);
        stored.extend(frame(&b));
        let expect = expected(&stored, 2, a.len() + b.len());
        let (out, data, errors) = pump_all(stored, &expect);
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        assert!(out.delivered_all);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(data, [a, b].concat());
    }

    #[test]
    fn a_sha_mismatch_is_an_error_item_before_the_end() {
        // Decodes fine, but is not what the manifest describes (an appended valid frame).
        let a = payload(1000);
        let mut stored = frame(&a);
        let expect = expected(&stored, 1, a.len());
        stored.extend(frame(b"DROP TABLE x;\n"));
        let (out, _, errors) = pump_all(stored, &expect);
        assert!(!out.delivered_all);
        assert!(
            out.problems.iter().any(|p| p.starts_with("length ")),
            "{:?}",
            out.problems
        );
        assert!(out.problems.iter().any(|p| p.starts_with("sha256 ")));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("archive x.sql.zst is corrupt: "));
    }

    #[test]
    fn a_flipped_byte_stops_decoding_but_hashing_goes_on() {
        let a = payload(50_000);
        let good = frame(&a);
        let expect = expected(&good, 1, a.len());
        let mut bad = good.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        let (out, data, errors) = pump_all(bad, &expect);
        assert!(!out.delivered_all);
        assert!(data.len() < a.len() || data != a);
        assert!(!errors.is_empty());
        // The checksum comparison still ran over every stored byte.
        assert!(
            out.problems.iter().any(|p| p.starts_with("sha256 ")),
            "{:?}",
            out.problems
        );
    }

    #[test]
    fn a_cut_inside_a_frame_is_truncation() {
        let a = payload(20_000);
        let good = frame(&a);
        let cut = good[..good.len() - 7].to_vec();
        let expect = expected(&cut, 1, a.len());
        let (out, _, errors) = pump_all(cut, &expect);
        assert_eq!(
            out.problems,
            vec!["zstd data ends inside frame 1 (truncated)".to_owned()]
        );
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn first_few_names_and_counts_the_rest() {
        let objs: Vec<String> = (1..=7).map(|i| format!("t{i}")).collect();
        assert_eq!(first_few(&objs[..2]), "t1, t2");
        assert_eq!(first_few(&objs), "t1, t2, t3, t4, t5 and 2 more");
    }
}
