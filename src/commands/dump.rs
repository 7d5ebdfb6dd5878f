//! `exporter dump`: one new run, one archive per database, `SHA256SUMS`, then `manifest.json`
//! last (design.md section 4; principle 2: success is earned).

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::anyhow;
use chrono::Utc;
use exporter_contract::{DumpOptions, ErrorKind, FINGERPRINT_ALGORITHM, PayloadFormat};
use futures::StreamExt;
use serde::Serialize;

use super::{Ui, human_bytes};
use crate::archive::manifest::{FORMAT_NAME, FORMAT_VERSION, SourceInfo, Tool};
use crate::archive::{
    DatabaseEntry, DatabaseStatus, MANIFEST_FILE, Manifest, RunStatus, SUMS_FILE, run_id, sums,
};
use crate::engines::{ConnectionDefaults, EngineOptions};
use crate::error::{ExitStatus, Failure};
use crate::pipeline::{self, Compression, PipelineError};
use crate::settings::{DatabaseTarget, Destination, DumpPlan};
use crate::storage::s3::S3Storage;
use crate::storage::{LocalStorage, Storage};

/// The `--json` summary printed on stdout.
#[derive(Debug, Serialize)]
struct JsonSummary<'a> {
    run_id: &'a str,
    run_dir: String,
    status: RunStatus,
    databases: &'a [DatabaseEntry],
}

/// Open the storage of a destination (for S3: load the AWS configuration; no request yet).
///
/// # Errors
///
/// A usage [`Failure`] if S3 has no region configured anywhere.
pub async fn open_storage(destination: &Destination) -> Result<Arc<dyn Storage>, Failure> {
    match destination {
        Destination::Local(path) => Ok(Arc::new(LocalStorage::new(path.clone()))),
        Destination::S3(config) => S3Storage::connect(config.clone())
            .await
            .map(|s| Arc::new(s) as Arc<dyn Storage>)
            .map_err(|e| {
                Failure::usage(anyhow::Error::new(e))
                    .with_hint(Some("see README.md, section \"S3 storage\""))
            }),
    }
}

/// Run a dump plan.
///
/// # Errors
///
/// A [`Failure`] with exit status 3 if the run cannot be created, if every database failed, or
/// (after writing a `partial` manifest) if some did.
pub async fn run(plan: DumpPlan, ui: Ui, json: bool) -> Result<ExitStatus, Failure> {
    let storage = open_storage(&plan.destination).await?;
    let started_at = Utc::now();
    let id = {
        let storage = storage.clone();
        let wanted = run_id(started_at);
        tokio::task::spawn_blocking(move || storage.create_run(&wanted))
            .await
            .map_err(|e| Failure::runtime(anyhow::Error::new(e)))?
            .map_err(|e| {
                Failure::runtime(anyhow::Error::new(e).context(format!(
                    "cannot create a run in destination {}",
                    plan.destination
                )))
                .with_hint(Some(match plan.destination {
                    Destination::Local(_) => "check that the destination is a writable directory",
                    Destination::S3(_) => "check the bucket name, the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, …), the region and the endpoint",
                }))
            })?
    };
    // Until the manifest is written, the run is not a run: if this future is dropped
    // (SIGINT/SIGTERM) the guard removes the directory, archives finished so far included.
    let mut guard = UncommittedRun {
        storage: storage.clone(),
        run_id: id.clone(),
        armed: true,
    };
    let run_dir = format!("{}/{id}", storage.describe());
    ui.info(format!(
        "run {id}: dumping {} database(s) into {run_dir}",
        plan.databases.len()
    ));

    let compression = Compression {
        level: plan.compression_level,
        workers: plan.jobs.min(64) as u32,
    };
    let options = DumpOptions::default()
        .with_jobs(plan.jobs)
        .with_ownership(plan.ownership);
    let parallel = plan.jobs.clamp(1, plan.databases.len().max(1));
    let job = Job {
        local: matches!(plan.destination, Destination::Local(_)),
        storage: storage.clone(),
        run_id: id.clone(),
        options,
        engine_options: plan.engine_options,
        connections: plan.connections.clone(),
        compression,
        ui,
        // With one database the final error says it all; with several, report each as it
        // fails so the others' progress stays readable.
        failures_ui: if plan.databases.len() == 1 {
            Ui::new(true)
        } else {
            ui
        },
    };
    let results: Vec<(DatabaseEntry, Option<String>)> =
        futures::stream::iter(plan.databases.iter())
            .map(|db| dump_database(db, &job))
            .buffered(parallel)
            .collect()
            .await;
    let first_hint = results.iter().find_map(|(_, h)| h.clone());
    let entries: Vec<DatabaseEntry> = results.into_iter().map(|(e, _)| e).collect();

    let failed: Vec<DatabaseEntry> = entries
        .iter()
        .filter(|e| e.status == DatabaseStatus::Failed)
        .cloned()
        .collect();
    if failed.len() == entries.len() {
        // A run without archives is no run: the guard removes the directory on return.
        let error = match failed.as_slice() {
            [one] => anyhow!(one.error.clone().unwrap_or_default())
                .context(format!("failed to dump {} ({})", one.name, one.endpoint)),
            many => anyhow!(
                "every database failed ({}); no run was written",
                many.iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        return Err(Failure::runtime(error).with_hint(first_hint));
    }

    let status = if failed.is_empty() {
        RunStatus::Complete
    } else {
        RunStatus::Partial
    };
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION.into(),
        tool: Tool::current(),
        run_id: id.clone(),
        started_at,
        finished_at: Utc::now(),
        status,
        source: SourceInfo {
            kind: plan.inventory.as_str().into(),
            environment: None,
        },
        fingerprint_algorithm: FINGERPRINT_ALGORITHM.into(),
        databases: entries,
    };
    let sums_text = sums::render(
        manifest
            .databases
            .iter()
            .filter_map(|e| Some((e.sha256.as_deref()?, e.file.as_deref()?))),
    );
    {
        let storage = storage.clone();
        let run = id.clone();
        let manifest_bytes = manifest.to_json();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            storage.put_object(&run, SUMS_FILE, sums_text.as_bytes())?;
            // The manifest is the commit marker: written last.
            storage.put_object(&run, MANIFEST_FILE, &manifest_bytes)
        })
        .await
        .map_err(|e| Failure::runtime(anyhow::Error::new(e)))?
        .map_err(|e| {
            Failure::runtime(
                anyhow::Error::new(e).context(format!("failed to write the manifest of run {id}")),
            )
        })?;
    }
    guard.armed = false;

    if json {
        let summary = JsonSummary {
            run_id: &id,
            run_dir: run_dir.clone(),
            status,
            databases: &manifest.databases,
        };
        super::print_data(&serde_json::to_string_pretty(&summary).expect("summary serializes"));
    } else {
        super::print_data(&run_dir);
    }

    if failed.is_empty() {
        // A command that works as printed: a local run by its path (whatever --to or the
        // config said); an S3 run by id under its destination (endpoint and other [storage]
        // keys still come from the config or the environment).
        let check = match &plan.destination {
            Destination::Local(_) => format!("exporter verify {run_dir}"),
            Destination::S3(_) => format!("exporter verify {id} --to {}", plan.destination),
        };
        ui.info(format!(
            "run {id} complete: {} archive(s); check it with `{check}`",
            manifest.databases.len()
        ));
        Ok(ExitStatus::Success)
    } else {
        let mut msg = format!(
            "{} of {} databases failed:",
            failed.len(),
            manifest.databases.len()
        );
        for f in &failed {
            let _ = write!(msg, " {}", f.name);
        }
        Err(Failure::runtime(anyhow!(msg)).with_hint(Some(
            "the other archives of this run are complete; the manifest marks the run as partial",
        )))
    }
}

/// Removes a run directory that never got its manifest (see FORMAT.md invariant 3).
struct UncommittedRun {
    storage: Arc<dyn Storage>,
    run_id: String,
    armed: bool,
}

impl Drop for UncommittedRun {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = self.storage.remove_uncommitted_run(&self.run_id)
        {
            tracing::warn!(run = %self.run_id, error = %e, "could not remove the uncommitted run");
        }
    }
}

/// What every database of a run shares.
struct Job {
    /// The destination is a local directory (for hints: free space there, not credentials).
    local: bool,
    storage: Arc<dyn Storage>,
    run_id: String,
    options: DumpOptions,
    engine_options: EngineOptions,
    connections: ConnectionDefaults,
    compression: Compression,
    ui: Ui,
    failures_ui: Ui,
}

async fn dump_database(db: &DatabaseTarget, job: &Job) -> (DatabaseEntry, Option<String>) {
    let Job {
        storage,
        run_id,
        options,
        engine_options,
        connections,
        compression,
        ui,
        failures_ui,
        local,
    } = job;
    let (engine_options, compression, ui, failures_ui) =
        (*engine_options, *compression, *ui, *failures_ui);
    let started_at = Utc::now();
    let file = format!(
        "{}.{}.zst",
        db.name,
        db.engine.format(engine_options).extension()
    );
    let source = db
        .engine
        .source(db.engine.endpoint(&db.url, connections), engine_options);
    ui.info(format!("  {}: dumping {}", db.name, source.describe()));

    let failed = |error: String| DatabaseEntry {
        name: db.name.clone(),
        engine: db.engine.name().into(),
        endpoint: db.url.redacted(),
        status: DatabaseStatus::Failed,
        error: Some(error),
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
        tls: None,
    };

    // Validate, then check health before the long work (vector's pattern): a database that
    // cannot be read fails here, before any file is created.
    let report = |e: &PipelineError| {
        let msg = one_line(e);
        failures_ui.info(format!("  {}: FAILED: {msg}", db.name));
        let hint = hint_for(e, *local);
        if let Some(h) = &hint {
            failures_ui.info(format!("  {}: hint: {h}", db.name));
        }
        (msg, hint)
    };
    if let Err(e) = source.preflight().await {
        let (msg, hint) = report(&PipelineError::Engine(e));
        return (failed(msg), hint);
    }

    let object = {
        let storage = storage.clone();
        let run_id = run_id.to_owned();
        let name = file.clone();
        match tokio::task::spawn_blocking(move || storage.create_object(&run_id, &name)).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                let msg = format!("cannot create {file}: {e}");
                failures_ui.info(format!("  {}: FAILED: {msg}", db.name));
                return (failed(msg), Some(destination_hint(*local).into()));
            }
            Err(e) => return (failed(e.to_string()), None),
        }
    };

    match pipeline::dump_one(source.as_ref(), options.clone(), object, &file, compression).await {
        Ok(stats) => {
            let rows: u64 = stats.summary.tables.iter().map(|t| t.rows).sum();
            let ratio = if stats.compressed_bytes > 0 {
                stats.uncompressed_bytes as f64 / stats.compressed_bytes as f64
            } else {
                0.0
            };
            let (parts, items) = db.engine.summary_nouns();
            // An RDB file has no per-database summary; "0 keys" would read like an empty dump.
            let counts =
                if stats.summary.tables.is_empty() && stats.meta.format == PayloadFormat::Rdb {
                    "point-in-time snapshot".to_owned()
                } else {
                    format!(
                        "{}, {}",
                        counted(stats.summary.tables.len() as u64, parts),
                        counted(rows, items)
                    )
                };
            ui.info(format!(
                "  {}: ok {file}: {counts}, {} -> {} ({ratio:.1}x) in {:.1}s{}",
                db.name,
                human_bytes(stats.uncompressed_bytes),
                human_bytes(stats.compressed_bytes),
                stats.seconds,
                tls_note(stats.meta.tls.as_ref())
            ));
            for w in &stats.summary.warnings {
                ui.problem(format!("  {}: warning: {w}", db.name));
            }
            let entry = DatabaseEntry {
                name: db.name.clone(),
                engine: stats.meta.engine.clone(),
                endpoint: db.url.redacted(),
                status: DatabaseStatus::Ok,
                error: None,
                server_version: Some(stats.meta.server_version.clone()),
                file: Some(file),
                format: Some(stats.meta.format),
                compressed_bytes: Some(stats.compressed_bytes),
                uncompressed_bytes: Some(stats.uncompressed_bytes),
                sha256: Some(stats.sha256),
                zstd_frames: Some(stats.zstd_frames),
                compression_level: Some(compression.level),
                consistency: Some(stats.consistency),
                payload_version: stats.summary.payload_version.clone(),
                started_at: stats.started_at,
                finished_at: stats.finished_at,
                tables: stats.summary.tables,
                warnings: stats.summary.warnings,
                tls: stats.meta.tls.clone(),
            };
            (entry, None)
        }
        Err(e) => {
            let (msg, hint) = report(&e);
            (failed(msg), hint)
        }
    }
}

/// `1 table`, `3 tables`: `noun` is the plural form ending in `s`.
fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {}", noun.strip_suffix('s').unwrap_or(noun))
    } else {
        format!("{n} {noun}")
    }
}

/// `, TLSv1.3 (verify-full, checked chain+hostname)` or `, clear text (prefer)`: how the
/// dump travelled, for the progress line.
fn tls_note(tls: Option<&exporter_contract::TlsInfo>) -> String {
    match tls {
        Some(t) if t.encrypted => format!(
            ", {} ({}, checked {})",
            t.protocol.as_deref().unwrap_or("TLS"),
            t.mode,
            t.verified.as_deref().unwrap_or("none")
        ),
        Some(t) => format!(", clear text ({})", t.mode),
        None => String::new(),
    }
}

/// The error and its causes on one line, `a: b: c`, without repeating text.
fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}

/// What to check when writing to the destination failed.
fn destination_hint(local: bool) -> &'static str {
    if local {
        "check free space and permissions at the destination"
    } else {
        "check the bucket, the credentials and the endpoint; `exporter uploads` lists uploads left open"
    }
}

fn hint_for(e: &PipelineError, local: bool) -> Option<String> {
    match e {
        // The engine's own next step first (e.g. `sslmode=verify-ca` after a host name
        // mismatch through a tunnel).
        PipelineError::Engine(e) if e.hint().is_some() => e.hint().map(str::to_owned),
        PipelineError::Engine(e) => match e.kind() {
            ErrorKind::Connect => Some("is the server running and reachable from here (host, port, tunnel)?".into()),
            ErrorKind::Auth => Some("check the user and password; keep passwords out of exporter.toml with ${VAR}".into()),
            ErrorKind::NotFound => Some("check the database name in the URL".into()),
            ErrorKind::Permission => Some("dump as a user that may read everything the error names (the owner, a superuser, or an ACL user with those commands)".into()),
            ErrorKind::Unsupported => Some("this object cannot be exported faithfully yet; nothing was written for this database".into()),
            _ => None,
        },
        PipelineError::Write { .. } => Some(destination_hint(local).into()),
    }
}
