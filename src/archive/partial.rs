//! The records of an unfinished run (FORMAT.md, "Unfinished runs"): what `dump --resume` needs
//! to keep the databases a run finished before it was interrupted.
//!
//! A run's manifest is assembled only at its end, so while a run is written each finished
//! database leaves a **completion record** in `<run>/.partial/`: its manifest entry exactly as
//! the manifest will hold it (SHA-256, sizes, tables with fingerprints, dump times, TLS, platform
//! record), written after its archive object was committed. The **run record**
//! (`.partial/run.json`) says when the run started and from which inventory. A resumed dump
//! keeps an archive only if its record exists and its stored bytes still have the record's
//! length and SHA-256. Once `manifest.json` exists the directory is removed; where it is left
//! behind (a process killed right after the manifest) readers ignore it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::manifest::{DatabaseEntry, SourceInfo, Tool};

/// The directory of an unfinished run's records, inside the run (`<run>/.partial/`). Archive
/// names never start with `.`, so it never collides with one.
pub const PARTIAL_DIR: &str = ".partial";
/// The run record's name inside [`PARTIAL_DIR`].
pub const RUN_RECORD: &str = "run.json";
/// The lock file's name inside [`PARTIAL_DIR`] (local destinations: held by the process
/// writing the run).
pub const LOCK_FILE: &str = "lock";
/// Value of the records' `format` field.
pub const RECORD_FORMAT: &str = "exporter-partial";
/// The records' version; readers ignore records of another version (the database is dumped
/// again).
pub const RECORD_VERSION: u32 = 1;

/// `.partial/run.json`: written when the run is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// [`RECORD_FORMAT`].
    pub format: String,
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// `run`.
    pub kind: String,
    /// The run id (the directory name).
    pub run_id: String,
    /// When the run started: the manifest's `started_at` when it is finished.
    pub started_at: DateTime<Utc>,
    /// The inventory the run dumps: a resumed dump continues only a run of the same source
    /// (kind and platform environment).
    pub source: SourceInfo,
    /// The tool that started the run.
    pub tool: Tool,
}

impl RunRecord {
    /// The record of a run started now by this build.
    #[must_use]
    pub fn new(run_id: &str, started_at: DateTime<Utc>, source: SourceInfo) -> Self {
        Self {
            format: RECORD_FORMAT.into(),
            version: RECORD_VERSION,
            kind: "run".into(),
            run_id: run_id.to_owned(),
            started_at,
            source,
            tool: Tool::current(),
        }
    }
}

/// `.partial/<file>.json`: one finished database, written after its archive was committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionRecord {
    /// [`RECORD_FORMAT`].
    pub format: String,
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// `database`.
    pub kind: String,
    /// The run id.
    pub run_id: String,
    /// The manifest entry, as the manifest will hold it (`status: ok`, with `file`,
    /// `compressed_bytes` and `sha256` of the committed archive).
    pub entry: DatabaseEntry,
}

impl CompletionRecord {
    /// The record of `entry` in run `run_id`.
    #[must_use]
    pub fn new(run_id: &str, entry: DatabaseEntry) -> Self {
        Self {
            format: RECORD_FORMAT.into(),
            version: RECORD_VERSION,
            kind: "database".into(),
            run_id: run_id.to_owned(),
            entry,
        }
    }
}

/// Why a record could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Not JSON, or not the expected shape.
    #[error("does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    /// Another kind of file, another version, or the record of another run.
    #[error("{0}")]
    Foreign(String),
}

fn check(format: &str, version: u32, kind: &str, want: &str) -> Result<(), RecordError> {
    if format != RECORD_FORMAT || kind != want {
        return Err(RecordError::Foreign(format!(
            "is not an {RECORD_FORMAT} {want} record"
        )));
    }
    if version != RECORD_VERSION {
        return Err(RecordError::Foreign(format!(
            "has version {version}, this build reads {RECORD_VERSION}"
        )));
    }
    Ok(())
}

impl RunRecord {
    /// Parse and check a run record.
    ///
    /// # Errors
    ///
    /// [`RecordError`] for bad JSON, another format, kind or version.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RecordError> {
        let r: Self = serde_json::from_slice(bytes)?;
        check(&r.format, r.version, &r.kind, "run")?;
        Ok(r)
    }
}

impl CompletionRecord {
    /// Parse and check a completion record of run `run_id`, whose name in [`PARTIAL_DIR`] is
    /// `name`: its entry must be `ok` and name the archive the record is named after.
    ///
    /// # Errors
    ///
    /// [`RecordError`] for bad JSON, another format, kind or version, another run, or an
    /// entry that does not describe the archive `name` is the record of.
    pub fn from_json(bytes: &[u8], run_id: &str, name: &str) -> Result<Self, RecordError> {
        let r: Self = serde_json::from_slice(bytes)?;
        check(&r.format, r.version, &r.kind, "database")?;
        if r.run_id != run_id {
            return Err(RecordError::Foreign(format!(
                "belongs to run {}, not {run_id}",
                r.run_id
            )));
        }
        let e = &r.entry;
        let complete = e.status.has_archive()
            && e.sha256.is_some()
            && e.compressed_bytes.is_some()
            && e.file.as_deref().map(record_name).as_deref() == Some(name);
        if !complete {
            return Err(RecordError::Foreign(format!(
                "does not describe a finished archive named {}",
                name.strip_suffix(".json").unwrap_or(name)
            )));
        }
        Ok(r)
    }
}

/// Pretty JSON with a trailing newline.
#[must_use]
pub fn to_json<T: Serialize>(record: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(record).expect("records serialize");
    v.push(b'\n');
    v
}

/// The completion record's name in [`PARTIAL_DIR`] for archive `file`: `<file>.json`
/// (`billing.sql.zst.json`; never [`RUN_RECORD`] or [`LOCK_FILE`], since archives end in
/// `.zst`).
#[must_use]
pub fn record_name(file: &str) -> String {
    format!("{file}.json")
}

/// Whether a name in [`PARTIAL_DIR`] is a completion record.
#[must_use]
pub fn is_record_name(name: &str) -> bool {
    name.ends_with(".zst.json") && !name.starts_with('.')
}

/// The path of a record relative to the run: `.partial/<name>`.
#[must_use]
pub fn partial_path(name: &str) -> String {
    format!("{PARTIAL_DIR}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::DatabaseStatus;

    fn entry(file: Option<&str>) -> DatabaseEntry {
        let t = "2026-11-29T07:48:00Z".parse().unwrap();
        DatabaseEntry {
            name: "billing".into(),
            engine: "postgresql".into(),
            endpoint: "postgres://app:****@db/billing".into(),
            status: DatabaseStatus::Ok,
            error: None,
            server_version: Some("16".into()),
            file: file.map(str::to_owned),
            format: None,
            compressed_bytes: Some(10),
            uncompressed_bytes: Some(20),
            sha256: Some("ab".repeat(32)),
            zstd_frames: Some(1),
            compression_level: Some(3),
            consistency: None,
            payload_version: None,
            started_at: t,
            finished_at: t,
            tables: Vec::new(),
            warnings: Vec::new(),
            tls: None,
            platform: None,
        }
    }

    #[test]
    fn completion_records_round_trip_and_are_checked() {
        let r = CompletionRecord::new("20261129T074800Z", entry(Some("billing.sql.zst")));
        let name = record_name("billing.sql.zst");
        assert_eq!(name, "billing.sql.zst.json");
        assert!(is_record_name(&name));
        assert!(!is_record_name(RUN_RECORD) && !is_record_name(LOCK_FILE));
        let back = CompletionRecord::from_json(&to_json(&r), "20261129T074800Z", &name).unwrap();
        assert_eq!(back, r);
        let err = CompletionRecord::from_json(&to_json(&r), "20261129T074900Z", &name)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "belongs to run 20261129T074800Z, not 20261129T074900Z");
        let err = CompletionRecord::from_json(&to_json(&r), "20261129T074800Z", "x.sql.zst.json")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "does not describe a finished archive named x.sql.zst");
        let mut failed = r.clone();
        failed.entry.status = DatabaseStatus::Failed;
        assert!(CompletionRecord::from_json(&to_json(&failed), "20261129T074800Z", &name).is_err());
        let mut v2 = r;
        v2.version = 2;
        assert_eq!(
            CompletionRecord::from_json(&to_json(&v2), "20261129T074800Z", &name)
                .unwrap_err()
                .to_string(),
            "has version 2, this build reads 1"
        );
        assert!(matches!(
            CompletionRecord::from_json(b"{", "x", &name),
            Err(RecordError::Parse(_))
        ));
    }

    #[test]
    fn run_records_round_trip() {
        let t = "2026-11-29T07:48:00Z".parse().unwrap();
        let r = RunRecord::new(
            "20261129T074800Z",
            t,
            SourceInfo {
                kind: "config".into(),
                environment: None,
            },
        );
        assert_eq!(RunRecord::from_json(&to_json(&r)).unwrap(), r);
        let db = CompletionRecord::new("20261129T074800Z", entry(Some("b.sql.zst")));
        assert!(RunRecord::from_json(&to_json(&db)).is_err());
    }
}
