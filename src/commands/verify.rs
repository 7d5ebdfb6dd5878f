//! `exporter verify`: read a run back from storage and prove it (design.md section 6, levels
//! `checksum` and `decompress`). The result is written as `verify.json` next to the manifest.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::sync::Arc;

use anyhow::anyhow;
use chrono::Utc;

use super::{Ui, human_bytes};
use crate::archive::check::{self, Decoded};
use crate::archive::manifest::VerifyDatabase;
use crate::archive::{
    DatabaseStatus, MANIFEST_FILE, Manifest, RunStatus, SUMS_FILE, VERIFY_FILE, VerifyRecord, sums,
};
use crate::error::{ExitStatus, Failure};
use crate::settings::Destination;
use crate::storage::{self, LocalStorage, Storage};

/// Largest manifest or SHA256SUMS accepted, in bytes.
const SMALL_LIMIT: u64 = 64 << 20;

/// How deep to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Length and SHA-256.
    Checksum,
    /// Also every zstd frame, its content checksum, frame count and uncompressed length.
    Decompress,
}

impl Level {
    /// `checksum` or `decompress`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Checksum => "checksum",
            Self::Decompress => "decompress",
        }
    }
}

/// Pick the storage and run id: `run` may be a path to a run directory or a run id under the
/// destination; without it, the latest run that has a manifest.
fn resolve_run(
    destination: &Destination,
    storage: Arc<dyn Storage>,
    run: Option<&str>,
) -> Result<(Arc<dyn Storage>, String), Failure> {
    if let (Some(r), Destination::Local(_)) = (run, destination) {
        let path = Path::new(r);
        if path.join(MANIFEST_FILE).exists() || (path.is_dir() && r.contains('/')) {
            let canonical = path.canonicalize().map_err(|e| {
                Failure::usage(
                    anyhow::Error::new(e).context(format!("cannot open run directory {r}")),
                )
            })?;
            let id = canonical
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let parent = canonical
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            return Ok((Arc::new(LocalStorage::new(parent)), id));
        }
    }
    let runs = storage.list_runs().map_err(|e| {
        Failure::runtime(
            anyhow::Error::new(e).context(format!("cannot list runs in {destination}")),
        )
    })?;
    if let Some(r) = run {
        if runs.iter().any(|x| x == r) {
            return Ok((storage, r.to_owned()));
        }
        return Err(
            Failure::usage(anyhow!("no run {r:?} in {destination}")).with_hint(Some(
                "give a run id listed in the destination, or a path to a run directory",
            )),
        );
    }
    for id in runs.iter().rev() {
        let has_manifest = storage
            .list_objects(id)
            .is_ok_and(|o| o.iter().any(|n| n == MANIFEST_FILE));
        if has_manifest {
            return Ok((storage, id.clone()));
        }
        // Say so: the user may expect the newest dump to be the one checked.
        eprintln!(
            "note: skipping run {id}: it has no {MANIFEST_FILE} (an interrupted or failed dump)"
        );
    }
    Err(
        Failure::no(anyhow!("no run with a manifest in {destination}"))
            .with_hint(Some("run `exporter dump --all` first, or pass --to DEST")),
    )
}

/// Verify a run.
///
/// # Errors
///
/// A [`Failure`]: exit 1 if any check failed (after printing each problem and writing
/// `verify.json`), 2 for a run that does not exist, 3 if storage cannot be read at all.
pub fn run(
    destination: &Destination,
    storage: Arc<dyn Storage>,
    run: Option<&str>,
    level: Level,
    json: bool,
    ui: Ui,
) -> Result<ExitStatus, Failure> {
    let (storage, run_id) = resolve_run(destination, storage, run)?;
    let where_ = format!("{}/{run_id}", storage.describe());
    ui.info(format!(
        "verifying run {run_id} at level {} ({where_})",
        level.as_str()
    ));

    let record = verify_run(storage.as_ref(), &run_id, level, json);
    storage
        .put_object(&run_id, VERIFY_FILE, &{
            let mut v = serde_json::to_vec_pretty(&record).expect("record serializes");
            v.push(b'\n');
            v
        })
        .map_err(|e| {
            Failure::runtime(
                anyhow::Error::new(e).context(format!("cannot write {VERIFY_FILE} in {where_}")),
            )
        })?;

    if json {
        super::print_data(&serde_json::to_string_pretty(&record).expect("record serializes"));
    }
    let bad_files = record.databases.iter().filter(|d| !d.ok).count();
    if record.ok {
        let msg = format!(
            "run {run_id}: all {} archive(s) verified at level {}",
            record.databases.len(),
            level.as_str()
        );
        if !json {
            super::print_data(&msg);
        }
        Ok(ExitStatus::Success)
    } else {
        let msg = format!(
            "run {run_id} failed verification: {bad_files} of {} archive(s) bad, {} run-level problem(s)",
            record.databases.len(),
            record.problems.len()
        );
        if !json {
            super::print_data(&msg);
        }
        Err(Failure::no(anyhow!(msg)).with_hint(Some(
            "do not delete the source databases; dump again with `exporter dump --all`",
        )))
    }
}

/// Check a run; per-file lines go to stdout (they are the command's data) unless `json`.
fn verify_run(storage: &dyn Storage, run_id: &str, level: Level, json: bool) -> VerifyRecord {
    let say = |line: String| {
        if !json {
            super::print_data(&line);
        }
    };
    let mut record = VerifyRecord {
        run_id: run_id.to_owned(),
        level: level.as_str().to_owned(),
        verified_at: Utc::now(),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        ok: false,
        databases: Vec::new(),
        problems: Vec::new(),
    };
    let problem = |record: &mut VerifyRecord, text: String| {
        say(format!("FAILED {text}"));
        record.problems.push(text);
    };

    let manifest = match storage::read_small(storage, run_id, MANIFEST_FILE, SMALL_LIMIT) {
        Ok(bytes) => match Manifest::from_json(&bytes) {
            Ok(m) => m,
            Err(e) => {
                problem(&mut record, format!("{MANIFEST_FILE}: {e}"));
                return record;
            }
        },
        Err(e) => {
            let text = if e.kind() == io::ErrorKind::NotFound {
                format!(
                    "{MANIFEST_FILE}: missing: run {run_id} is incomplete (an interrupted or failed dump)"
                )
            } else {
                format!("{MANIFEST_FILE}: cannot be read: {e}")
            };
            problem(&mut record, text);
            return record;
        }
    };
    if manifest.run_id != run_id {
        problem(
            &mut record,
            format!(
                "{MANIFEST_FILE}: names run {:?}, but it is stored as {run_id:?}",
                manifest.run_id
            ),
        );
    }
    if manifest.status == RunStatus::Partial {
        problem(
            &mut record,
            format!("{MANIFEST_FILE}: the run is partial: some databases were not dumped"),
        );
    }

    // SHA256SUMS must agree with the manifest.
    let expected: BTreeMap<String, String> = manifest
        .databases
        .iter()
        .filter_map(|d| Some((d.file.clone()?, d.sha256.clone()?)))
        .collect();
    match storage::read_small(storage, run_id, SUMS_FILE, SMALL_LIMIT) {
        Ok(bytes) => match sums::parse(&String::from_utf8_lossy(&bytes)) {
            Ok(lines) => {
                let listed: BTreeMap<String, String> =
                    lines.into_iter().map(|(sha, path)| (path, sha)).collect();
                if listed != expected {
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
                    problem(
                        &mut record,
                        format!(
                            "{SUMS_FILE}: disagrees with the manifest: {}",
                            diffs.join(", ")
                        ),
                    );
                }
            }
            Err(line) => problem(
                &mut record,
                format!("{SUMS_FILE}: line {line} is not in sha256sum format"),
            ),
        },
        Err(e) => problem(&mut record, format!("{SUMS_FILE}: cannot be read: {e}")),
    }

    // Every file of the run must be accounted for.
    let known: BTreeSet<&str> = manifest
        .databases
        .iter()
        .filter_map(|d| d.file.as_deref())
        .collect();
    match storage.list_objects(run_id) {
        Ok(objects) => {
            for name in objects {
                if !known.contains(name.as_str())
                    && ![MANIFEST_FILE, SUMS_FILE, VERIFY_FILE].contains(&name.as_str())
                {
                    problem(
                        &mut record,
                        format!("{name}: extra file, not in the manifest"),
                    );
                }
            }
        }
        Err(e) => problem(&mut record, format!("cannot list the run: {e}")),
    }

    for db in &manifest.databases {
        let outcome = verify_database(storage, run_id, db, level);
        match (&outcome.file, outcome.ok) {
            (Some(file), true) => say(format!(
                "ok {file} ({} stored, {} payload)",
                human_bytes(db.compressed_bytes.unwrap_or(0)),
                human_bytes(db.uncompressed_bytes.unwrap_or(0))
            )),
            (file, false) => {
                let label = file.as_deref().unwrap_or(&db.name);
                say(format!("FAILED {label}: {}", outcome.problems.join("; ")));
            }
            (None, true) => {}
        }
        record.databases.push(outcome);
    }
    record.ok = record.problems.is_empty() && record.databases.iter().all(|d| d.ok);
    record.verified_at = Utc::now();
    record
}

fn verify_database(
    storage: &dyn Storage,
    run_id: &str,
    db: &crate::archive::DatabaseEntry,
    level: Level,
) -> VerifyDatabase {
    let mut out = VerifyDatabase {
        name: db.name.clone(),
        file: db.file.clone(),
        ok: false,
        problems: Vec::new(),
    };
    if db.status == DatabaseStatus::Failed {
        out.problems.push(format!(
            "database {} was not dumped in this run: {}",
            db.name,
            db.error.as_deref().unwrap_or("unknown error")
        ));
        return out;
    }
    let (Some(file), Some(sha), Some(len)) = (&db.file, &db.sha256, db.compressed_bytes) else {
        out.problems.push(format!(
            "manifest entry {} lacks file, sha256 or size",
            db.name
        ));
        return out;
    };
    let reader = match storage.open_object(run_id, file) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            out.problems
                .push("missing: listed in the manifest but not in storage".into());
            return out;
        }
        Err(e) => {
            out.problems.push(format!("cannot be read: {e}"));
            return out;
        }
    };
    let facts = match check::scan(reader, level == Level::Decompress) {
        Ok(f) => f,
        Err(e) => {
            out.problems.push(format!("read failed: {e}"));
            return out;
        }
    };
    if facts.bytes != len {
        out.problems
            .push(format!("length {} bytes, manifest says {len}", facts.bytes));
    }
    if &facts.sha256 != sha {
        out.problems
            .push(format!("sha256 {}, manifest says {sha}", facts.sha256));
    }
    match facts.decoded {
        None => {}
        Some(Err(e)) => out.problems.push(e),
        Some(Ok(Decoded {
            frames,
            uncompressed,
        })) => {
            if let Some(expected) = db.zstd_frames
                && frames != expected
            {
                out.problems
                    .push(format!("{frames} zstd frame(s), manifest says {expected}"));
            }
            if let Some(expected) = db.uncompressed_bytes
                && uncompressed != expected
            {
                out.problems.push(format!(
                    "decompresses to {uncompressed} bytes, manifest says {expected}"
                ));
            }
        }
    }
    out.ok = out.problems.is_empty();
    out
}
