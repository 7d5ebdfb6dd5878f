//! `exporter restore`: resolve the storage, run the restore path ([`pipeline::restore`]),
//! render its progress and summary.

use std::sync::Arc;

use exporter_contract::PayloadFormat;
use serde::Serialize;

use crate::cleanup::Cleanup;
use crate::endpoint::EndpointProvider;
use crate::output::{TaskBars, Ui, human_duration, read_so_far};
use crate::pipeline::{self, RestoreContext, RestoreReport};
use crate::progress::{Event, Progress};
use crate::settings::RestorePlan;
use crate::storage;

/// The version of the `restore --json` report (FORMAT.md, "Reports on stdout"): fields keep
/// their meaning; a change of meaning or a removal bumps it.
const REPORT_VERSION: u32 = 1;

/// The `--json` report of a restore (FORMAT.md, "Reports on stdout").
#[derive(Debug, Serialize)]
struct RestoreJson<'a> {
    version: u32,
    run_id: &'a str,
    database: &'a str,
    engine: &'a str,
    archive: ArchiveJson<'a>,
    /// The target URL as given, redacted.
    target: String,
    cleaned: usize,
    tables: usize,
    statements: u64,
    rows: u64,
    skipped: u64,
    seconds: f64,
    warnings: &'a [String],
}

/// The archive a restore read, as the manifest describes it (the bytes read matched).
#[derive(Debug, Serialize)]
struct ArchiveJson<'a> {
    file: &'a str,
    format: Option<PayloadFormat>,
    compressed_bytes: Option<u64>,
    uncompressed_bytes: Option<u64>,
    sha256: Option<&'a str>,
}

impl<'a> RestoreJson<'a> {
    fn new(plan: &RestorePlan, report: &'a RestoreReport) -> Self {
        let entry = &report.entry;
        Self {
            version: REPORT_VERSION,
            run_id: &report.run_id,
            database: &report.database,
            engine: &report.engine,
            archive: ArchiveJson {
                file: &report.file,
                format: entry.format,
                compressed_bytes: entry.compressed_bytes,
                uncompressed_bytes: entry.uncompressed_bytes,
                sha256: entry.sha256.as_deref(),
            },
            target: plan.into.url.redacted(),
            cleaned: report.cleaned,
            tables: entry.tables.len(),
            statements: report.summary.statements,
            rows: report.summary.rows,
            skipped: report.summary.skipped,
            // Milliseconds are precision enough, and keep the number short.
            seconds: (report.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            warnings: &entry.warnings,
        }
    }
}

/// Restore the plan's archive into its target; print a summary line (and with `json` the
/// report, FORMAT.md "Reports on stdout", on stdout).
///
/// # Errors
///
/// The storage's or the restore path's error.
pub async fn run(
    plan: &RestorePlan,
    json: bool,
    ui: Ui,
    cleanup: &Cleanup,
    endpoints: &dyn EndpointProvider,
) -> anyhow::Result<()> {
    let storage = storage::open(&plan.destination, cleanup).await?;
    let cx = RestoreContext {
        storage,
        endpoints,
        progress: Arc::new(RestoreProgress {
            ui,
            bars: TaskBars::new(ui),
        }),
    };
    let report = pipeline::restore(plan, &cx).await?;
    // The bar goes before the summary.
    drop(cx);
    let summary = &report.summary;
    ui.emit_json(
        "run_finished",
        &RunFinished {
            command: "restore",
            run_id: &report.run_id,
            database: &report.database,
            file: &report.file,
            target: &report.target,
            cleaned: report.cleaned,
            statements: summary.statements,
            rows: summary.rows,
            skipped: summary.skipped,
            seconds: report.elapsed.as_secs_f64(),
        },
    );
    ui.info(format!(
        "restored {} ({}) into {}: {} statement(s), {} row(s), {} skipped in {:.1} s",
        report.database,
        report.file,
        report.target,
        summary.statements,
        summary.rows,
        summary.skipped,
        report.elapsed.as_secs_f64()
    ));
    if json {
        let out = RestoreJson::new(plan, &report);
        ui.data(serde_json::to_string_pretty(&out).expect("report serializes"));
    }
    Ok(())
}

/// The `run_finished` event of a restore (`--log-format json`; FORMAT.md, "Events on
/// stderr").
#[derive(Debug, Serialize)]
struct RunFinished<'a> {
    command: &'static str,
    run_id: &'a str,
    database: &'a str,
    file: &'a str,
    target: &'a str,
    cleaned: usize,
    statements: u64,
    rows: u64,
    skipped: u64,
    seconds: f64,
}

/// Renders a restore's events as progress lines on stderr (with a bar on a terminal), or as
/// JSON events.
struct RestoreProgress {
    ui: Ui,
    /// The bar, on a terminal.
    bars: Option<TaskBars>,
}

impl RestoreProgress {
    /// Move the bar for `event`.
    fn bars(bars: &TaskBars, event: &Event) {
        match event {
            Event::CleanCheckStarted { label } => {
                bars.start(label, label, None, "checking before --clean");
            }
            Event::CleanStarted { .. } => bars.clear(),
            Event::RestoreStarted { label, .. } => bars.start(label, label, None, "restoring"),
            Event::RestoreProgress {
                label,
                bytes_read,
                total_bytes,
                ..
            } => {
                let doing = if total_bytes.is_some_and(|t| *bytes_read >= t) {
                    "archive read; finishing"
                } else {
                    "restoring"
                };
                bars.update(label, *bytes_read, *total_bytes, doing.to_owned());
            }
            _ => {}
        }
    }
}

impl Progress for RestoreProgress {
    fn heartbeat(&self) -> Option<std::time::Duration> {
        self.ui.heartbeat()
    }

    fn event(&self, event: &Event) {
        if self.ui.event_json(event) {
            return;
        }
        if let Some(bars) = &self.bars {
            Self::bars(bars, event);
        }
        match event {
            // The bar shows it.
            Event::RestoreProgress { .. } if self.bars.is_some() => {}
            Event::RestoreProgress {
                label,
                bytes_read,
                total_bytes,
                seconds,
            } => {
                self.ui.info(format!(
                    "still restoring {label}: {} in {}",
                    read_so_far(*bytes_read, *total_bytes),
                    human_duration(*seconds)
                ));
            }
            Event::CleanCheckStarted { label } => self.ui.info(format!(
                "checking {label} (length and SHA-256) before --clean drops anything"
            )),
            Event::CleanStarted { target, objects } => self.ui.info(format!(
                "dropping {objects} existing object(s) in {target} (--clean)"
            )),
            Event::RestoreStarted {
                database,
                label,
                run_id,
                target,
            } => self.ui.info(format!(
                "restoring {database} ({label}) of run {run_id} into {target}"
            )),
            _ => {}
        }
    }
}
