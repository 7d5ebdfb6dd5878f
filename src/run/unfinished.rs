//! Unfinished runs as they are read back: a run without `manifest.json` and what its
//! `.partial/` records say (FORMAT.md, "Unfinished runs"). `dump --resume` continues the newest
//! one of its inventory; `list` shows them.
//!
//! Blocking (storage is): call from a blocking thread.

use std::io;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::archive::DatabaseEntry;
use crate::archive::manifest::SourceInfo;
use crate::archive::partial::{
    CompletionRecord, PARTIAL_DIR, RUN_RECORD, RunRecord, is_record_name, partial_path,
};
use crate::storage::{self, Storage};

use super::SMALL_OBJECT_LIMIT;

/// A run without a manifest, and the records it holds.
#[derive(Debug, Clone)]
pub struct UnfinishedRun {
    /// The run id.
    pub id: String,
    /// Its run record; `None` when it has none (a run killed before it wrote one, or made by a
    /// build without records): nothing of it can be resumed.
    pub record: Option<RunRecord>,
    /// Its databases with a usable completion record, in record-name order (archives not
    /// checked yet).
    pub done: Vec<CompletionRecord>,
    /// Records that cannot be used: `(name in .partial, why)`.
    pub unusable: Vec<(String, String)>,
}

impl UnfinishedRun {
    /// Whether `dump --resume` of `source` may continue it: it has a run record of the same
    /// inventory (kind and platform environment).
    #[must_use]
    pub fn resumable_by(&self, source: &SourceInfo) -> bool {
        self.record.as_ref().is_some_and(|r| r.source == *source)
    }
}

/// Read one unfinished run's records. Unreadable or foreign records are listed in
/// [`UnfinishedRun::unusable`], not errors.
///
/// # Errors
///
/// I/O errors listing `.partial/`.
pub fn read(storage: &dyn Storage, id: &str) -> io::Result<UnfinishedRun> {
    let names = storage.list_dir(id, PARTIAL_DIR)?;
    let load =
        |name: &str| storage::read_small(storage, id, &partial_path(name), SMALL_OBJECT_LIMIT);
    let record = if names.iter().any(|n| n == RUN_RECORD) {
        load(RUN_RECORD)
            .ok()
            .and_then(|b| RunRecord::from_json(&b).ok())
            .filter(|r| r.run_id == id)
    } else {
        None
    };
    let mut done = Vec::new();
    let mut unusable = Vec::new();
    for name in names.iter().filter(|n| is_record_name(n)) {
        match load(name) {
            Ok(bytes) => match CompletionRecord::from_json(&bytes, id, name) {
                Ok(r) => done.push(r),
                Err(e) => unusable.push((name.clone(), e.to_string())),
            },
            Err(e) => unusable.push((name.clone(), format!("cannot be read: {e}"))),
        }
    }
    Ok(UnfinishedRun {
        id: id.to_owned(),
        record,
        done,
        unusable,
    })
}

/// Every unfinished run of the storage, newest first.
///
/// # Errors
///
/// I/O errors listing the destination or a run's `.partial/`.
pub fn list(storage: &dyn Storage) -> io::Result<Vec<UnfinishedRun>> {
    let mut runs = Vec::new();
    for id in storage.list_unfinished_runs()?.iter().rev() {
        runs.push(read(storage, id)?);
    }
    Ok(runs)
}

/// An unfinished run as `list` reports it (FORMAT.md, "Reports on stdout").
#[derive(Debug, Clone, Serialize)]
pub struct UnfinishedSummary {
    /// The run id.
    pub run_id: String,
    /// `<destination>/<run-id>`.
    pub location: String,
    /// When it started (its run record; `null` without one).
    pub started_at: Option<DateTime<Utc>>,
    /// Its inventory's kind (`config`, `urls`, `aptible`), `null` without a run record.
    pub source: Option<String>,
    /// The platform environment, for a platform's run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The databases finished in it (completion records), by name.
    pub done: Vec<DoneDatabase>,
    /// Whether `dump --resume` can continue it (it has a run record).
    pub resumable: bool,
}

/// One finished database of an unfinished run.
#[derive(Debug, Clone, Serialize)]
pub struct DoneDatabase {
    /// The database's name in the run.
    pub name: String,
    /// Its archive.
    pub file: String,
    /// Stored bytes, as recorded.
    pub compressed_bytes: u64,
    /// When its dump finished.
    pub finished_at: DateTime<Utc>,
}

impl UnfinishedRun {
    /// The summary `list` shows; `destination` is the storage's description.
    #[must_use]
    pub fn summary(&self, destination: &str) -> UnfinishedSummary {
        UnfinishedSummary {
            run_id: self.id.clone(),
            location: format!("{destination}/{}", self.id),
            started_at: self.record.as_ref().map(|r| r.started_at),
            source: self.record.as_ref().map(|r| r.source.kind.clone()),
            environment: self
                .record
                .as_ref()
                .and_then(|r| r.source.environment.clone()),
            done: self.done.iter().map(|r| done_database(&r.entry)).collect(),
            resumable: self.record.is_some(),
        }
    }
}

fn done_database(e: &DatabaseEntry) -> DoneDatabase {
    DoneDatabase {
        name: e.name.clone(),
        file: e.file.clone().unwrap_or_default(),
        compressed_bytes: e.compressed_bytes.unwrap_or_default(),
        finished_at: e.finished_at,
    }
}
