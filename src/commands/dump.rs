//! `exporter dump`: resolve the storage, run the dump path ([`pipeline::dump`]), render its
//! progress and the run it committed.

use std::sync::Arc;

use exporter_contract::{PayloadFormat, TlsInfo};
use serde::Serialize;

use crate::archive::{DatabaseEntry, RunStatus};
use crate::check::{self, CheckContext, CheckError};
use crate::cleanup::Cleanup;
use crate::endpoint::EndpointProvider;
use crate::error;
use crate::output::{Ui, human_bytes, human_duration};
use crate::pipeline::{self, DumpContext};
use crate::platform::{self, Action, TunnelEndpoints, inventory};
use crate::progress::{Event, Progress};
use crate::settings::{Destination, DumpPlan};
use crate::storage::{self, Storage};

/// The `--json` summary printed on stdout.
#[derive(Debug, Serialize)]
struct JsonSummary<'a> {
    run_id: &'a str,
    run_dir: &'a str,
    status: RunStatus,
    databases: &'a [DatabaseEntry],
}

/// How a dump reports: `--json`, the terminal, and the program's name for the command it
/// suggests at the end.
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    /// `--json`: a JSON summary on stdout instead of the run directory.
    pub json: bool,
    /// The terminal.
    pub ui: Ui,
    /// How to name this program in a suggested command (`exporter`, or the path it was
    /// started by).
    pub program: &'a str,
}

/// Dump the plan's databases into a new run; print the run directory (or with `json` a JSON
/// summary) on stdout.
///
/// # Errors
///
/// The storage's or the dump path's error; a run in which some databases failed is committed
/// as partial, printed, then reported as [`pipeline::DumpError::Partial`].
pub async fn run(
    plan: &DumpPlan,
    output: Output<'_>,
    cleanup: &Cleanup,
    endpoints: &dyn EndpointProvider,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<()> {
    let Output { json, ui, program } = output;
    let storage = storage::open(&plan.destination, cleanup).await?;
    if plan.check {
        check_first(plan, &storage, endpoints, ui).await?;
    }
    let cx = DumpContext {
        storage,
        endpoints,
        cleanup,
        progress,
    };
    let report = pipeline::dump(plan, &cx).await?;
    if json {
        let summary = JsonSummary {
            run_id: &report.run_id,
            run_dir: &report.location,
            status: report.manifest.status,
            databases: &report.manifest.databases,
        };
        ui.data(serde_json::to_string_pretty(&summary).expect("summary serializes"));
    } else {
        ui.data(&report.location);
    }
    report.check()?;
    // A command that works as printed: a local run by its path (whatever --to or the config
    // said); an S3 run by id under its destination (endpoint and other [storage] keys still
    // come from the config or the environment).
    let check = match &plan.destination {
        Destination::Local(_) => format!("{program} verify {}", report.location),
        Destination::S3(_) => format!(
            "{program} verify {} --to {}",
            report.run_id, plan.destination
        ),
    };
    ui.info(format!(
        "run {} complete: {} archive(s); check it with `{check}`",
        report.run_id,
        report.manifest.databases.len()
    ));
    Ok(())
}

/// The check before the dump ([`check::check`], unless `--no-check`): when it says no,
/// nothing is created — no run directory, no S3 object.
async fn check_first(
    plan: &DumpPlan,
    storage: &Arc<dyn Storage>,
    endpoints: &dyn EndpointProvider,
    ui: Ui,
) -> anyhow::Result<()> {
    let cx = CheckContext {
        storage: storage.clone(),
        endpoints,
    };
    let report = check::check(plan, &cx).await?;
    if report.passed {
        ui.info(format!(
            "check: {} database(s) ready, destination writable{}",
            plan.databases.len(),
            report.total_bytes.map_or_else(String::new, |b| format!(
                "; about {} to read, {} at an assumed {}/s",
                human_bytes(b),
                human_duration(check::estimate_seconds(b)),
                human_bytes(report.assumed_bytes_per_second)
            ))
        ));
        return Ok(());
    }
    let mut lines: Vec<String> = report
        .failing()
        .flat_map(|d| {
            d.failure_lines()
                .into_iter()
                .map(move |l| format!("  {}: {l}", d.name))
        })
        .collect();
    lines.extend(report.destination.error.iter().map(|e| format!("  {e}")));
    // One line is the error's summary already.
    if lines.len() > 1 {
        for line in lines {
            ui.problem(line);
        }
    }
    Err(CheckError::BeforeDump {
        summary: report.summary(),
        hint: error::check_hint(&report),
    }
    .into())
}

/// The progress lines of a dump of `plan`.
pub fn progress(ui: Ui, plan: &DumpPlan) -> Arc<dyn Progress> {
    Arc::new(DumpProgress {
        ui,
        several: plan.databases.len() > 1,
    })
}

/// `dump --all` of a platform environment: the inventory step (refusing before any tunnel
/// while a database is not exportable, unless `--skip-unsupported`), then the dump through
/// tunnels ([`TunnelEndpoints`]).
///
/// # Errors
///
/// [`crate::platform::InventoryError`]; as [`run`].
pub async fn run_platform(
    mut plan: DumpPlan,
    output: Output<'_>,
    cleanup: &Cleanup,
) -> anyhow::Result<()> {
    let ui = output.ui;
    let Some(options) = plan.platform.clone() else {
        return Err(anyhow::anyhow!("not a platform dump"));
    };
    let client = platform::client(&options.settings)?;
    let environment = inventory::read(&client, &options).await?;
    let (targets, skipped) = environment.targets(options.skip_unsupported)?;
    for d in &environment.databases {
        match &d.action {
            Action::Replica { .. } | Action::Restored { reused: false } => {
                ui.info(format!("  {}: {}", d.handle, d.plan));
            }
            Action::Unsupported => {
                ui.problem(format!(
                    "  {}: skipped: {} database",
                    d.handle, d.database_type
                ));
            }
            _ => {}
        }
    }
    ui.info(format!(
        "environment {}: {} database(s) to dump{}{}",
        environment.environment,
        targets.len(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(", {} skipped", skipped.len())
        },
        if environment.has_ca {
            ", TLS verified against the environment's CA"
        } else {
            ""
        }
    ));
    plan.databases = targets;
    plan.skipped = skipped;
    let progress = progress(ui, &plan);
    let endpoints = TunnelEndpoints::new(
        client,
        plan.connections.clone(),
        options.credential_type.clone(),
        options.keep_restored,
        cleanup.clone(),
        progress.clone(),
    );
    run(&plan, output, cleanup, &endpoints, progress).await
}

/// Renders a dump's events as progress lines on stderr.
struct DumpProgress {
    ui: Ui,
    /// Several databases: each failure is shown as it happens (with one, the final error says
    /// it all).
    several: bool,
}

impl Progress for DumpProgress {
    fn heartbeat(&self) -> Option<std::time::Duration> {
        self.ui.heartbeat()
    }

    fn event(&self, event: &Event) {
        let ui = self.ui;
        match event {
            Event::DatabaseProgress {
                name,
                bytes_read,
                seconds,
            } => ui.info(format!(
                "  {name}: still dumping: {} read in {}",
                human_bytes(*bytes_read),
                human_duration(*seconds)
            )),
            Event::DumpStarted {
                run_id,
                location,
                databases,
            } => ui.info(format!(
                "run {run_id}: dumping {databases} database(s) into {location}"
            )),
            Event::DatabaseStarted { name, source } => {
                ui.info(format!("  {name}: dumping {source}"));
            }
            Event::DatabaseDumped {
                name,
                engine,
                file,
                format,
                tables,
                rows,
                uncompressed_bytes,
                compressed_bytes,
                seconds,
                tls,
            } => {
                let ratio = if *compressed_bytes > 0 {
                    *uncompressed_bytes as f64 / *compressed_bytes as f64
                } else {
                    0.0
                };
                let (parts, items) = engine.summary_nouns();
                // An RDB file has no per-database summary; "0 keys" would read like an empty
                // dump.
                let counts = if *tables == 0 && *format == PayloadFormat::Rdb {
                    "point-in-time snapshot".to_owned()
                } else {
                    format!("{}, {}", counted(*tables, parts), counted(*rows, items))
                };
                ui.info(format!(
                    "  {name}: ok {file}: {counts}, {} -> {} ({ratio:.1}x) in {seconds:.1}s{}",
                    human_bytes(*uncompressed_bytes),
                    human_bytes(*compressed_bytes),
                    tls_note(tls.as_ref()),
                ));
            }
            Event::DatabaseNote { name, note } => {
                ui.info(format!("  {name}: {note}"));
            }
            Event::DatabaseWarning {
                name,
                warning: note,
            }
            | Event::ConnectionNote { name, note } => {
                ui.problem(format!("  {name}: warning: {note}"));
            }
            Event::DatabaseFailed { name, failure } if self.several => {
                ui.info(format!("  {name}: FAILED: {failure}"));
                if let Some(hint) = error::database_hint(failure) {
                    ui.info(format!("  {name}: hint: {hint}"));
                }
            }
            _ => {}
        }
    }
}

/// `, TLSv1.3 (verify-full, checked chain+hostname)` or `, clear text (prefer)`: how the
/// dump travelled, for the progress line.
fn tls_note(tls: Option<&TlsInfo>) -> String {
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

/// `1 table`, `3 tables`: `noun` is the plural form ending in `s`.
fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {}", noun.strip_suffix('s').unwrap_or(noun))
    } else {
        format!("{n} {noun}")
    }
}
