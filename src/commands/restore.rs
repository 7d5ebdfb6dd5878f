//! `exporter restore`: resolve the storage, run the restore path ([`pipeline::restore`]),
//! render its progress and summary.

use std::sync::Arc;

use serde::Serialize;

use crate::cleanup::Cleanup;
use crate::endpoint::EndpointProvider;
use crate::output::{Ui, human_duration, read_so_far};
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
        progress: Arc::new(RestoreProgress { ui }),
    };
    let report = pipeline::restore(plan, &cx).await?;
    let summary = &report.summary;
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

/// Renders a restore's events as progress lines on stderr.
struct RestoreProgress {
    ui: Ui,
}

impl Progress for RestoreProgress {
    fn heartbeat(&self) -> Option<std::time::Duration> {
        self.ui.heartbeat()
    }

    fn event(&self, event: &Event) {
        match event {
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
