//! Runs as they are read back: which run a command means, its manifest and `SHA256SUMS`
//! (read once, with one size limit), the entry a restore picks, and its archives opened and
//! compared with what the manifest says ([`archive`]).
//!
//! Everything here is blocking (storage is a blocking interface): call it from a blocking
//! thread. Nothing prints; a run passed over while looking for the latest one is reported as a
//! [`Event::RunSkipped`].

pub mod archive;
pub mod unfinished;

use std::io;
use std::path::Path;

use sha2::Digest as _;
use std::sync::Arc;

use crate::archive::manifest::ManifestError;
use crate::archive::{DatabaseEntry, MANIFEST_FILE, Manifest, SUMS_FILE, sums};
use crate::progress::{Event, Progress};
use crate::settings::Destination;
use crate::storage::{self, LocalStorage, Storage};

pub use archive::{ArchiveError, ArchiveRef, OpenArchive, open_archive};

/// Largest manifest or `SHA256SUMS` accepted, in bytes.
pub const SMALL_OBJECT_LIMIT: u64 = 64 << 20;

/// A run found in storage.
#[derive(Clone)]
pub struct ResolvedRun {
    /// The storage holding the run (for a run named by path: its parent directory).
    pub storage: Arc<dyn Storage>,
    /// The run id.
    pub id: String,
}

impl ResolvedRun {
    /// `<storage>/<run-id>`, for messages.
    #[must_use]
    pub fn location(&self) -> String {
        format!("{}/{}", self.storage.describe(), self.id)
    }
}

impl std::fmt::Debug for ResolvedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedRun")
            .field("location", &self.location())
            .finish()
    }
}

/// Why no run could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run was given as a path that cannot be resolved.
    #[error("cannot open run directory {run}")]
    Directory {
        /// The path as given.
        run: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The run was given as a path (it has a `/`, which no run id has) to a local destination,
    /// and nothing there is a run directory.
    #[error("no run directory {run}: {reason}")]
    NoRunPath {
        /// The path as given.
        run: String,
        /// `it does not exist` or `it is not a directory`.
        reason: &'static str,
    },
    /// The destination cannot be listed.
    #[error("cannot list runs in {destination}")]
    List {
        /// The destination.
        destination: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// No run of that id.
    #[error("no run {run:?} in {destination}")]
    NotFound {
        /// The id as given.
        run: String,
        /// The destination.
        destination: String,
    },
    /// The destination is a local directory that does not exist (a mistyped `--to`, or a
    /// command run from another directory than the dump).
    #[error("the destination directory {destination} does not exist")]
    NoDestination {
        /// The directory as given.
        destination: String,
    },
    /// No run has a manifest.
    #[error("no run with a manifest in {destination}")]
    NoRuns {
        /// The destination.
        destination: String,
    },
}

/// Choose the run a command means: `run` may be a path to a run directory or a run id under
/// the destination; without it, the latest run that has a manifest (runs without one are
/// reported as [`Event::RunSkipped`]).
///
/// # Errors
///
/// [`RunError`]: a path that cannot be resolved or is no directory, a local destination that does not exist, a
/// destination that cannot be listed, an id that is not there, or no run with a manifest at
/// all.
pub fn resolve(
    destination: &Destination,
    storage: Arc<dyn Storage>,
    run: Option<&str>,
    progress: &dyn Progress,
) -> Result<ResolvedRun, RunError> {
    if let (Some(r), Destination::Local(_)) = (run, destination)
        && let Some(found) = LocalStorage::run_at(r)
    {
        let (storage, id) = found.map_err(|source| RunError::Directory {
            run: r.to_owned(),
            source,
        })?;
        return Ok(ResolvedRun {
            storage: Arc::new(storage),
            id,
        });
    }
    // A path that is no run directory: name it, not the destination it was not looked up in.
    if let (Some(r), Destination::Local(_)) = (run, destination)
        && looks_like_path(r)
    {
        let path = Path::new(r);
        let reason = if path.exists() {
            "it is not a directory"
        } else {
            "it does not exist"
        };
        return Err(RunError::NoRunPath {
            run: r.to_owned(),
            reason,
        });
    }
    // A missing directory lists as empty (a dump creates it); a command that reads runs
    // names it instead of saying there is no run in it.
    if let Destination::Local(dir) = destination
        && !dir.is_dir()
    {
        return Err(RunError::NoDestination {
            destination: destination.to_string(),
        });
    }
    let runs = storage.list_runs().map_err(|source| RunError::List {
        destination: destination.to_string(),
        source,
    })?;
    if let Some(r) = run {
        if runs.iter().any(|x| x == r) {
            return Ok(ResolvedRun {
                storage,
                id: r.to_owned(),
            });
        }
        return Err(RunError::NotFound {
            run: r.to_owned(),
            destination: destination.to_string(),
        });
    }
    for id in runs.iter().rev() {
        let has_manifest = storage
            .list_objects(id)
            .is_ok_and(|o| o.iter().any(|n| n == MANIFEST_FILE));
        if has_manifest {
            return Ok(ResolvedRun {
                storage,
                id: id.clone(),
            });
        }
        // Say so: the user may expect the newest dump to be the one checked.
        progress.event(&Event::RunSkipped {
            run_id: id.clone(),
            reason: format!("it has no {MANIFEST_FILE} (an interrupted or failed dump)"),
        });
    }
    Err(RunError::NoRuns {
        destination: destination.to_string(),
    })
}

/// Whether a RUN argument is a path rather than a run id: it has a path separator, which a
/// run id (`20261129T074800Z`, `…-2`) never has.
fn looks_like_path(run: &str) -> bool {
    run.contains('/') || (cfg!(windows) && run.contains('\\'))
}

/// Why a run's manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestLoadError {
    /// The run has no manifest: it is not a (complete) run.
    #[error(
        "run {run_id} has no {MANIFEST_FILE}: it is incomplete (an interrupted or failed dump)"
    )]
    Missing {
        /// The run id.
        run_id: String,
    },
    /// Storage could not read it (or it is larger than [`SMALL_OBJECT_LIMIT`]).
    #[error("cannot read {MANIFEST_FILE} of {location}")]
    Read {
        /// `<storage>/<run-id>`.
        location: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// It is not a manifest this build reads.
    #[error("run {run_id}")]
    Invalid {
        /// The run id.
        run_id: String,
        /// What is wrong with it.
        #[source]
        source: ManifestError,
    },
}

impl ManifestLoadError {
    /// The problem as `verify` records it for the run (`manifest.json: …`).
    #[must_use]
    pub fn problem(&self) -> String {
        match self {
            Self::Missing { run_id } => format!(
                "{MANIFEST_FILE}: missing: run {run_id} is incomplete (an interrupted or failed dump)"
            ),
            Self::Read { source, .. } => format!("{MANIFEST_FILE}: cannot be read: {source}"),
            Self::Invalid { source, .. } => format!("{MANIFEST_FILE}: {source}"),
        }
    }
}

/// Read and parse a run's manifest.
///
/// # Errors
///
/// [`ManifestLoadError`]: missing, unreadable or too large, or not a manifest this build
/// reads.
pub fn load_manifest(run: &ResolvedRun) -> Result<Manifest, ManifestLoadError> {
    load_manifest_with_digest(run).map(|(manifest, _)| manifest)
}

/// Read and parse a run's manifest, with the SHA-256 of its stored bytes (64 lowercase hex
/// digits): what `verify.json` records as `manifest_sha256` and what the teardown gate compares
/// it with, so a manifest changed after its verification is detected.
///
/// # Errors
///
/// As [`load_manifest`].
pub fn load_manifest_with_digest(
    run: &ResolvedRun,
) -> Result<(Manifest, String), ManifestLoadError> {
    let bytes = storage::read_small(
        run.storage.as_ref(),
        &run.id,
        MANIFEST_FILE,
        SMALL_OBJECT_LIMIT,
    )
    .map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            ManifestLoadError::Missing {
                run_id: run.id.clone(),
            }
        } else {
            ManifestLoadError::Read {
                location: run.location(),
                source,
            }
        }
    })?;
    let digest = hex::encode(sha2::Sha256::digest(&bytes));
    let manifest = Manifest::from_json(&bytes).map_err(|source| ManifestLoadError::Invalid {
        run_id: run.id.clone(),
        source,
    })?;
    Ok((manifest, digest))
}

/// Why `SHA256SUMS` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SumsError {
    /// Storage could not read it.
    #[error("{SUMS_FILE}: cannot be read: {0}")]
    Read(io::Error),
    /// A line is not in `sha256sum` format.
    #[error("{SUMS_FILE}: line {0} is not in sha256sum format")]
    Syntax(usize),
}

/// Read and parse a run's `SHA256SUMS`: `(sha256, file)` per line.
///
/// # Errors
///
/// [`SumsError`] when it cannot be read or a line does not parse.
pub fn load_sums(run: &ResolvedRun) -> Result<Vec<(String, String)>, SumsError> {
    let bytes = storage::read_small(run.storage.as_ref(), &run.id, SUMS_FILE, SMALL_OBJECT_LIMIT)
        .map_err(SumsError::Read)?;
    sums::parse(&String::from_utf8_lossy(&bytes)).map_err(SumsError::Syntax)
}

/// Why no single manifest entry could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// No entry has that name.
    #[error("run {run_id} has no database {name:?}; it holds: {names}")]
    NoSuchDatabase {
        /// The run id.
        run_id: String,
        /// The name asked for.
        name: String,
        /// The names there are, comma-separated.
        names: String,
    },
    /// The run holds no entries at all.
    #[error("run {run_id} holds no databases")]
    Empty {
        /// The run id.
        run_id: String,
    },
    /// Several entries and no name.
    #[error("run {run_id} holds {count} databases; choose one with --db: {names}")]
    Ambiguous {
        /// The run id.
        run_id: String,
        /// How many.
        count: usize,
        /// Their names, comma-separated.
        names: String,
        /// The first name, for the hint.
        first: String,
    },
}

/// Pick a manifest entry: `db` by name, or the only entry.
///
/// # Errors
///
/// [`EntryError`] naming the entries there are.
pub fn pick_entry<'m>(
    manifest: &'m Manifest,
    db: Option<&str>,
) -> Result<&'m DatabaseEntry, EntryError> {
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
            .ok_or_else(|| EntryError::NoSuchDatabase {
                run_id: manifest.run_id.clone(),
                name: name.to_owned(),
                names: names(),
            }),
        None => match manifest.databases.as_slice() {
            [only] => Ok(only),
            [] => Err(EntryError::Empty {
                run_id: manifest.run_id.clone(),
            }),
            many => Err(EntryError::Ambiguous {
                run_id: manifest.run_id.clone(),
                count: many.len(),
                names: names(),
                first: many[0].name.clone(),
            }),
        },
    }
}
