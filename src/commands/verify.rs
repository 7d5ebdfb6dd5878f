//! `exporter verify`: read a run back from storage and prove it (design.md section 6, levels
//! `checksum`, `decompress` and `restore`). The result is written as `verify.json` next to the
//! manifest.
//!
//! Level `restore` does everything `decompress` does, then for each good database entry
//! creates a scratch database on the `--scratch` server of its engine, restores the archive
//! into it ([`super::restore`]'s pipeline), computes the fingerprints there
//! ([`exporter_contract::Target::fingerprint`]), compares them with the manifest's `tables` by
//! name, and always drops the scratch database again — also after a failure and on Ctrl-C
//! (a drop guard that runs even when the command is cancelled).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use chrono::Utc;
use exporter_contract::{Fingerprint, PayloadFormat, RestoreOptions, ScratchServer, TableSummary};
use sha2::{Digest as _, Sha256};

use super::restore::{RestoreError, open_archive, restore_archive};
use super::{Ui, human_bytes};
use crate::archive::check::{self, Decoded};
use crate::archive::manifest::{RestoreCheck, VerifyDatabase};
use crate::archive::{
    DatabaseEntry, DatabaseStatus, MANIFEST_FILE, Manifest, RunStatus, SUMS_FILE, VERIFY_FILE,
    VerifyRecord, sums,
};
use crate::engines::EngineKind;
use crate::error::{ExitStatus, Failure};
use crate::settings::{Destination, VerifyPlan};
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

/// Longest scratch database name, in bytes (PostgreSQL's identifier limit, `NAMEDATALEN - 1`;
/// MySQL allows 64).
const SCRATCH_NAME_MAX: usize = 63;
/// How long a scratch database may take to drop before it is reported as left behind.
const DROP_TIMEOUT: Duration = Duration::from_secs(60);

/// Pick the storage and run id: `run` may be a path to a run directory or a run id under the
/// destination; without it, the latest run that has a manifest.
pub(crate) fn resolve_run(
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
/// `verify.json`), 2 for a run that does not exist or, at level `restore`, a database whose
/// engine has no `--scratch` server (before anything is restored), 3 if storage cannot be read
/// at all or a scratch database could not be created (and nothing else failed).
pub async fn run(plan: VerifyPlan, json: bool, ui: Ui) -> Result<ExitStatus, Failure> {
    let level = plan.level;
    let storage = super::dump::open_storage(&plan.destination).await?;
    let (storage, run_id, manifest) = {
        let destination = plan.destination.clone();
        let run = plan.run.clone();
        blocking(move || {
            let (storage, run_id) = resolve_run(&destination, storage, run.as_deref())?;
            let manifest = load_manifest(storage.as_ref(), &run_id);
            Ok((storage, run_id, manifest))
        })
        .await?
    };
    let where_ = format!("{}/{run_id}", storage.describe());
    if level == Level::Restore
        && let Ok(manifest) = &manifest
    {
        check_scratch_coverage(&plan, manifest)?;
    }
    ui.info(format!(
        "verifying run {run_id} at level {} ({where_})",
        level.as_str()
    ));

    let (mut record, manifest) = {
        let storage = storage.clone();
        let run_id = run_id.clone();
        blocking(move || {
            let record = verify_run(storage.as_ref(), &run_id, level, json, manifest.as_ref());
            Ok((record, manifest))
        })
        .await?
    };
    let mut scratch_unavailable = 0;
    if level == Level::Restore
        && let Ok(manifest) = &manifest
    {
        scratch_unavailable =
            restore_stage(&plan, &storage, &run_id, manifest, &mut record, json, ui).await;
        record.ok = record.problems.is_empty() && record.databases.iter().all(|d| d.ok);
        record.verified_at = Utc::now();
    }

    {
        let storage = storage.clone();
        let run_id = run_id.clone();
        let bytes = {
            let mut v = serde_json::to_vec_pretty(&record).expect("record serializes");
            v.push(b'\n');
            v
        };
        let where_ = where_.clone();
        blocking(move || {
            storage
                .put_object(&run_id, VERIFY_FILE, &bytes)
                .map_err(|e| {
                    Failure::runtime(
                        anyhow::Error::new(e)
                            .context(format!("cannot write {VERIFY_FILE} in {where_}")),
                    )
                })
        })
        .await?;
    }

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
        if scratch_unavailable > 0 && scratch_unavailable == bad_files && record.problems.is_empty()
        {
            // Only the scratch server failed: nothing is known to be wrong with the archives.
            return Err(Failure::runtime(anyhow!(
                "run {run_id} could not be verified at level restore: a scratch database could not be created"
            ))
            .with_hint(Some("check the --scratch server and its privileges, then verify again")));
        }
        Err(Failure::no(anyhow!(msg)).with_hint(Some(
            "do not delete the source databases; dump again with `exporter dump --all`",
        )))
    }
}

/// Run blocking work (storage reads and writes) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Failure::runtime(anyhow::Error::new(e).context("verification thread failed"))
    })?
}

/// Read and parse the manifest; `Err` is the problem line verify reports.
fn load_manifest(storage: &dyn Storage, run_id: &str) -> Result<Manifest, String> {
    match storage::read_small(storage, run_id, MANIFEST_FILE, SMALL_LIMIT) {
        Ok(bytes) => Manifest::from_json(&bytes).map_err(|e| format!("{MANIFEST_FILE}: {e}")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!(
            "{MANIFEST_FILE}: missing: run {run_id} is incomplete (an interrupted or failed dump)"
        )),
        Err(e) => Err(format!("{MANIFEST_FILE}: cannot be read: {e}")),
    }
}

/// Whether level `restore` restores this entry: it was dumped, and its payload is not an RDB
/// file (those get a problem instead, see [`restore_stage`]).
fn restorable(db: &DatabaseEntry) -> bool {
    db.status == DatabaseStatus::Ok && db.format != Some(PayloadFormat::Rdb)
}

/// Before anything is restored: every engine with a restorable entry needs a `--scratch`
/// server (exit 2 naming the engine and its databases).
fn check_scratch_coverage(plan: &VerifyPlan, manifest: &Manifest) -> Result<(), Failure> {
    let mut missing: BTreeMap<&'static str, Vec<&str>> = BTreeMap::new();
    for db in manifest.databases.iter().filter(|d| restorable(d)) {
        if let Some(engine) = EngineKind::for_manifest_engine(&db.engine)
            && plan.scratch_for(engine).is_none()
        {
            missing.entry(engine.name()).or_default().push(&db.name);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let text = missing
        .iter()
        .map(|(engine, dbs)| format!("{engine} (for {})", dbs.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    Err(Failure::usage(anyhow!(
        "--level restore needs a --scratch server for {text}"
    ))
    .with_hint(Some(
        "add --scratch URL per engine: a server where exporter may create and drop databases \
         (postgres://postgres@host:5432/postgres, mysql://root@host:3306, redis://host:6380 of an empty Redis)",
    )))
}

/// Level `restore` for every database whose decompress-level checks passed. Problems go into
/// `record`. Returns how many databases could not be checked because their scratch database
/// could not be created (a runtime failure, not a finding about the archive).
async fn restore_stage(
    plan: &VerifyPlan,
    storage: &Arc<dyn Storage>,
    run_id: &str,
    manifest: &Manifest,
    record: &mut VerifyRecord,
    json: bool,
    ui: Ui,
) -> usize {
    let say = |line: String| {
        if !json {
            super::print_data(&line);
        }
    };
    let mut unavailable = 0;
    for (db, out) in manifest.databases.iter().zip(record.databases.iter_mut()) {
        if db.status != DatabaseStatus::Ok || !out.ok {
            continue;
        }
        let label = db.file.clone().unwrap_or_else(|| db.name.clone());
        if db.format == Some(PayloadFormat::Rdb) {
            out.problems.push(
                "level restore is not available for RDB archives (dump with --redis-format resp, \
                 or verify at level decompress)"
                    .to_owned(),
            );
        } else if let Some(engine) = EngineKind::for_manifest_engine(&db.engine) {
            // check_scratch_coverage made sure there is one.
            let Some(scratch) = plan.scratch_for(engine) else {
                continue;
            };
            let server = engine.scratch(engine.endpoint(&scratch.url, &plan.connections));
            ui.info(format!(
                "restoring {label} into a scratch database on {}",
                server.describe()
            ));
            let outcome = restore_check(storage.clone(), run_id, db, server, ui).await;
            unavailable += usize::from(outcome.unavailable);
            out.problems.extend(outcome.problems);
            out.restore = outcome.check;
        } else {
            out.problems.push(format!(
                "engine {:?} is unknown to this build; it cannot be restored",
                db.engine
            ));
        }
        out.ok = out.problems.is_empty();
        match (&out.restore, out.ok) {
            (Some(c), true) => {
                let (tables, rows) = engine_nouns(&db.engine);
                say(format!(
                    "ok restore {label}: {} {tables}, {} {rows} match the manifest ({:.1} s)",
                    c.tables,
                    c.rows_compared,
                    c.millis as f64 / 1000.0
                ));
            }
            _ => say(format!(
                "FAILED {label}: restore: {}",
                out.problems.join("; ")
            )),
        }
    }
    unavailable
}

/// The nouns for a manifest engine's tables and rows (Redis: databases and keys).
fn engine_nouns(engine: &str) -> (&'static str, &'static str) {
    EngineKind::for_manifest_engine(engine).map_or(("tables", "rows"), EngineKind::summary_nouns)
}

/// The outcome of one scratch restore.
struct RestoreCheckOutcome {
    problems: Vec<String>,
    check: Option<RestoreCheck>,
    unavailable: bool,
}

/// Create a scratch database, restore `db` into it, compare fingerprints, drop it.
async fn restore_check(
    storage: Arc<dyn Storage>,
    run_id: &str,
    db: &DatabaseEntry,
    server: Arc<dyn ScratchServer>,
    ui: Ui,
) -> RestoreCheckOutcome {
    let started = Instant::now();
    let name = scratch_name(run_id, &db.name);
    let mut outcome = RestoreCheckOutcome {
        problems: Vec::new(),
        check: None,
        unavailable: false,
    };
    let archive = {
        let storage = storage.clone();
        let run_id = run_id.to_owned();
        let db = db.clone();
        tokio::task::spawn_blocking(move || open_archive(storage.as_ref(), &run_id, &db)).await
    };
    let archive = match archive {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            outcome.problems.push(format!("restore: {e}"));
            return outcome;
        }
        Err(e) => {
            outcome
                .problems
                .push(format!("restore: reading thread failed: {e}"));
            return outcome;
        }
    };
    // Armed before the CREATE is sent: a Ctrl-C while it runs must not leave the scratch
    // database behind. If creating fails, nothing of ours exists (an existing database of
    // that name is not ours to drop), so the guard is disarmed.
    let mut guard = ScratchGuard::new(server.clone(), name.clone());
    let target = match server.create(&name).await {
        Ok(t) => t,
        Err(e) => {
            guard.armed = false;
            let chain = error_chain(&e);
            let leftover = if chain.contains("already exists") {
                " (a database of that name exists already: most likely the scratch of an \
                 interrupted verification of this run; drop it by hand and verify again)"
            } else {
                ""
            };
            outcome.problems.push(format!(
                "cannot create scratch database {name} on {}: {chain}{leftover}",
                server.describe(),
            ));
            outcome.unavailable = true;
            return outcome;
        }
    };
    let mut check = RestoreCheck {
        scratch: name.clone(),
        statements: 0,
        rows_restored: 0,
        tables: 0,
        rows_compared: 0,
        millis: 0,
        dropped: false,
    };
    match restore_archive(archive, target.as_ref(), RestoreOptions::default()).await {
        Err(RestoreError::Target(e)) => outcome.problems.push(format!(
            "restore into scratch database {name} failed: {}",
            error_chain(&e)
        )),
        Err(e) => outcome.problems.push(format!("restore: {e}")),
        Ok(summary) => {
            check.statements = summary.statements;
            check.rows_restored = summary.rows;
            match target.fingerprint().await {
                Ok(actual) => {
                    let (nouns, compared) = compare_tables(&db.tables, &actual, &db.engine);
                    outcome.problems.extend(nouns);
                    check.tables = db.tables.len() as u64;
                    check.rows_compared = compared;
                }
                Err(e) => outcome.problems.push(format!(
                    "cannot fingerprint scratch database {name}: {}",
                    error_chain(&e)
                )),
            }
        }
    }
    // Close the target's connections before the database is dropped.
    drop(target);
    match guard.drop_now().await {
        Ok(()) => check.dropped = true,
        Err(e) => ui.problem(format!(
            "warning: could not drop scratch database {name} on {}: {e}; drop it by hand",
            server.describe()
        )),
    }
    check.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    outcome.check = Some(check);
    outcome
}

/// An engine error with its causes, on one line.
fn error_chain(e: &exporter_contract::EngineError) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

/// Compare the manifest's tables with the restore's, by name. Returns the problems (one per
/// table: count or content, missing or extra) and the number of manifest rows compared.
fn compare_tables(
    expected: &[TableSummary],
    actual: &[TableSummary],
    engine: &str,
) -> (Vec<String>, u64) {
    let (table, rows) = match engine_nouns(engine) {
        ("databases", _) => ("database", "key"),
        _ => ("table", "row"),
    };
    let actual_by_name: BTreeMap<&str, &TableSummary> =
        actual.iter().map(|t| (t.name.as_str(), t)).collect();
    let expected_names: BTreeSet<&str> = expected.iter().map(|t| t.name.as_str()).collect();
    let mut problems = Vec::new();
    let mut compared = 0;
    for want in expected {
        compared += want.rows;
        match actual_by_name.get(want.name.as_str()) {
            // An empty Redis logical database named by a `/db` URL is in the dump's summary,
            // but a whole-server scratch lists only databases holding keys: nothing to miss.
            None if table == "database"
                && want.rows == 0
                && want.fingerprint == Fingerprint::EMPTY => {}
            None => problems.push(format!(
                "{table} {}: missing in the restore (manifest: {} {rows}s)",
                want.name, want.rows
            )),
            Some(got) if got.rows != want.rows => problems.push(format!(
                "{table} {}: {rows} count differs: expected {}, got {}",
                want.name, want.rows, got.rows
            )),
            Some(got) if got.fingerprint != want.fingerprint => problems.push(format!(
                "{table} {}: content differs: fingerprint expected {}, got {} ({} {rows}s each)",
                want.name, want.fingerprint, got.fingerprint, want.rows
            )),
            Some(_) => {}
        }
    }
    for got in actual {
        if !expected_names.contains(got.name.as_str()) {
            problems.push(format!(
                "{table} {}: in the restore but not in the manifest ({} {rows}s)",
                got.name, got.rows
            ));
        }
    }
    (problems, compared)
}

/// A unique, lowercase scratch database name: `exporter_verify_<run id>_<database>`, every
/// character outside `[a-z0-9_]` replaced by `_`, at most 63 bytes (PostgreSQL's identifier
/// limit). A name that would be longer is cut and ends in `_` and 8 hex digits of the SHA-256
/// of the full name, so two long database names of one run still get different scratch names.
#[must_use]
pub fn scratch_name(run_id: &str, database: &str) -> String {
    let full: String = format!("exporter_verify_{run_id}_{database}")
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if full.len() <= SCRATCH_NAME_MAX {
        return full;
    }
    let digest = hex::encode(Sha256::digest(full.as_bytes()));
    format!("{}_{}", &full[..SCRATCH_NAME_MAX - 9], &digest[..8])
}

/// Drops a scratch database when verification is done with it — or, if the work is cancelled
/// (Ctrl-C drops the command's future) or panics, in `Drop`, on a thread of its own with its
/// own runtime, waiting at most [`DROP_TIMEOUT`], and saying on stderr what happened.
struct ScratchGuard {
    server: Arc<dyn ScratchServer>,
    name: String,
    armed: bool,
}

impl ScratchGuard {
    fn new(server: Arc<dyn ScratchServer>, name: String) -> Self {
        Self {
            server,
            name,
            armed: true,
        }
    }

    /// Drop the scratch database now; the guard is disarmed whatever the outcome.
    async fn drop_now(&mut self) -> Result<(), String> {
        self.armed = false;
        match tokio::time::timeout(DROP_TIMEOUT, self.server.drop_scratch(&self.name)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(error_chain(&e)),
            Err(_) => Err(format!("no answer within {} s", DROP_TIMEOUT.as_secs())),
        }
    }
}

impl Drop for ScratchGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let server = self.server.clone();
        let name = self.name.clone();
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                match tokio::time::timeout(DROP_TIMEOUT, server.drop_scratch(&name)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(error_chain(&e)),
                    Err(_) => Err(format!("no answer within {} s", DROP_TIMEOUT.as_secs())),
                }
            })
        });
        let result = dropper
            .join()
            .unwrap_or_else(|_| Err("the dropping thread panicked".to_owned()));
        match result {
            Ok(()) => eprintln!("dropped scratch database {}", self.name),
            Err(e) => eprintln!(
                "warning: could not drop scratch database {} on {}: {e}; drop it by hand",
                self.name,
                self.server.describe()
            ),
        }
    }
}

/// Check a run; per-file lines go to stdout (they are the command's data) unless `json`.
fn verify_run(
    storage: &dyn Storage,
    run_id: &str,
    level: Level,
    json: bool,
    manifest: Result<&Manifest, &String>,
) -> VerifyRecord {
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

    let manifest = match manifest {
        Ok(m) => m,
        Err(text) => {
            problem(&mut record, text.clone());
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
    db: &DatabaseEntry,
    level: Level,
) -> VerifyDatabase {
    let mut out = VerifyDatabase {
        name: db.name.clone(),
        file: db.file.clone(),
        ok: false,
        problems: Vec::new(),
        restore: None,
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
    let facts = match check::scan(reader, level != Level::Checksum) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use exporter_contract::Fingerprint;

    fn table(name: &str, rows: u64, row: &[u8]) -> TableSummary {
        let mut fingerprint = Fingerprint::EMPTY;
        for _ in 0..rows {
            fingerprint.add_row(row);
        }
        TableSummary {
            name: name.to_owned(),
            rows,
            fingerprint,
        }
    }

    #[test]
    fn scratch_names_are_lowercase_sanitised_and_bounded() {
        assert_eq!(
            scratch_name("20261129T074800Z", "billing"),
            "exporter_verify_20261129t074800z_billing"
        );
        assert_eq!(
            scratch_name("20261129T074800Z-2", "My.DB-x"),
            "exporter_verify_20261129t074800z_2_my_db_x"
        );
        let a = scratch_name("20261129T074800Z", &"a".repeat(40));
        let b = scratch_name("20261129T074800Z", &format!("{}b", "a".repeat(39)));
        assert_eq!(a.len(), SCRATCH_NAME_MAX);
        assert_eq!(b.len(), SCRATCH_NAME_MAX);
        assert_ne!(a, b, "cut names stay distinct");
    }

    #[test]
    fn table_comparison_names_what_differs() {
        let expected = vec![
            table("public.a", 3, b"x"),
            table("public.b", 2, b"y"),
            table("public.c", 1, b"z"),
            table("public.d", 0, b""),
        ];
        let actual = vec![
            table("public.a", 3, b"x"),
            table("public.b", 2, b"Y"),
            table("public.e", 4, b"w"),
        ];
        let (problems, compared) = compare_tables(&expected, &actual, "postgresql");
        assert_eq!(compared, 6);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("table public.b: content differs: fingerprint expected "));
        assert_eq!(
            problems[1],
            "table public.c: missing in the restore (manifest: 1 rows)"
        );
        assert_eq!(
            problems[2],
            "table public.d: missing in the restore (manifest: 0 rows)"
        );
        assert_eq!(
            problems[3],
            "table public.e: in the restore but not in the manifest (4 rows)"
        );
        let (problems, _) =
            compare_tables(&[table("db0", 3, b"k")], &[table("db0", 2, b"k")], "redis");
        assert_eq!(
            problems,
            vec!["database db0: key count differs: expected 3, got 2".to_owned()]
        );
        // An empty Redis database (a `/5` dump of nothing) has nothing to miss; an empty
        // PostgreSQL table that did not come back does (checked above: public.d).
        let empty_db5 = TableSummary {
            name: "db5".to_owned(),
            rows: 0,
            fingerprint: Fingerprint::EMPTY,
        };
        let (problems, _) = compare_tables(&[empty_db5], &[], "redis");
        assert!(problems.is_empty(), "{problems:?}");
    }
}
