//! `exporter restore`: resolve the storage, run the restore path ([`pipeline::restore`]),
//! render its progress and summary.

use std::sync::Arc;

use serde::Serialize;

use crate::cleanup::Cleanup;
use crate::endpoint::EndpointProvider;
use crate::output::{TaskBars, Ui, human_duration, read_so_far};
use crate::pipeline::{self, RestoreContext};
use crate::progress::{Event, Progress};
use crate::settings::RestorePlan;
use crate::storage;

/// The `--json` summary of a restore.
#[derive(Debug, Serialize)]
struct RestoreJson<'a> {
    run_id: &'a str,
    database: &'a str,
    file: &'a str,
    engine: &'a str,
    target: &'a str,
    cleaned: usize,
    statements: u64,
    rows: u64,
    skipped: u64,
    millis: u64,
}

/// Restore the plan's archive into its target; print a summary line (and with `json` a JSON
/// summary on stdout).
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
        let out = RestoreJson {
            run_id: &report.run_id,
            database: &report.database,
            file: &report.file,
            engine: &report.engine,
            target: &report.target,
            cleaned: report.cleaned,
            statements: summary.statements,
            rows: summary.rows,
            skipped: summary.skipped,
            millis: u64::try_from(report.elapsed.as_millis()).unwrap_or(u64::MAX),
        };
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
