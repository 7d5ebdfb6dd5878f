//! `exporter verify`: resolve the storage, run the verification ([`verify::verify`]), render
//! its per-archive lines (stdout: they are the command's data) and the report (a summary line,
//! or with `--json` the report itself).

use std::sync::Arc;

use crate::cleanup::Cleanup;
use crate::endpoint::EndpointProvider;
use crate::output::{Ui, human_bytes, human_duration, read_so_far};
use crate::progress::{Event, Progress};
use crate::settings::VerifyPlan;
use crate::storage;
use crate::verify::{self, VerifyContext, VerifyReport, scratch};

/// Verify the plan's run; print one line per archive and a summary (or with `json` the
/// report) on stdout.
///
/// # Errors
///
/// The storage's or the verification's error; a report with findings as
/// [`VerifyError::Failed`] (exit 1) after it was printed and recorded.
pub async fn run(
    plan: &VerifyPlan,
    json: bool,
    ui: Ui,
    cleanup: &Cleanup,
    endpoints: &dyn EndpointProvider,
) -> anyhow::Result<()> {
    let storage = storage::open(&plan.destination, cleanup).await?;
    let cx = VerifyContext {
        storage,
        endpoints,
        cleanup,
        progress: Arc::new(VerifyProgress { ui, json }),
    };
    let verification = verify::verify(plan, &cx).await?;
    let report = &verification.report;
    if json {
        ui.data(render_json(report));
    } else if report.ok {
        ui.data(summary_line(&verification));
    }
    // A failed verification's summary is the `error:` line (printed once, with its hint).
    verification.check()?;
    Ok(())
}

/// The report as `--json` prints it (the `verify.json` record).
#[must_use]
pub fn render_json(report: &VerifyReport) -> String {
    serde_json::to_string_pretty(report).expect("a report serializes")
}

/// The last line of the text form of a verification that passed (a failed one ends with its
/// error instead, [`VerifyError::Failed`]).
#[must_use]
pub fn summary_line(verification: &verify::Verification) -> String {
    let report = &verification.report;
    if report.ok {
        let skipped = report.databases.iter().filter(|d| d.skipped).count();
        let verified = report.databases.len() - skipped;
        let line = format!(
            "run {}: all {verified} archive(s) verified at level {}",
            report.run_id, report.level
        );
        if skipped > 0 {
            format!("{line}; {skipped} database(s) skipped at dump time, not exported")
        } else {
            line
        }
    } else {
        // The same words as the error: "bad" only for findings about the archives, "could
        // not be verified" when only scratch databases could not be created.
        verification
            .check()
            .err()
            .map_or_else(String::new, |e| e.to_string())
    }
}

/// Renders a verification's events: per-archive lines on stdout (unless `json`), progress on
/// stderr.
struct VerifyProgress {
    ui: Ui,
    json: bool,
}

impl VerifyProgress {
    fn data(&self, line: String) {
        if !self.json {
            self.ui.data(line);
        }
    }
}

impl Progress for VerifyProgress {
    fn heartbeat(&self) -> Option<std::time::Duration> {
        self.ui.heartbeat()
    }

    fn event(&self, event: &Event) {
        match event {
            Event::ScratchRestoreProgress {
                label,
                bytes_read,
                total_bytes,
                seconds,
            } if total_bytes.is_some_and(|t| *bytes_read >= t) => self.ui.info(format!(
                "still checking {label}: archive read, restoring and comparing fingerprints; {} so far",
                human_duration(*seconds)
            )),
            Event::ScratchRestoreProgress {
                label,
                bytes_read,
                total_bytes,
                seconds,
            } => self.ui.info(format!(
                "still restoring {label}: {} in {}",
                read_so_far(*bytes_read, *total_bytes),
                human_duration(*seconds)
            )),
            Event::RunSkipped { run_id, reason } => {
                self.ui.problem(format!("note: skipping run {run_id}: {reason}"));
            }
            Event::VerifyStarted {
                run_id,
                level,
                location,
            } => self
                .ui
                .info(format!("verifying run {run_id} at level {level} ({location})")),
            Event::RunProblem { problem } => self.data(format!("FAILED {problem}")),
            Event::ArchiveSkipped { name, reason } => {
                self.data(format!("skipped {name}: not exported ({reason})"));
            }
            Event::ArchiveChecked {
                label,
                ok: true,
                stored_bytes,
                payload_bytes,
                ..
            } => self.data(format!(
                "ok {label} ({} stored, {} payload)",
                human_bytes(*stored_bytes),
                human_bytes(*payload_bytes)
            )),
            Event::ArchiveChecked {
                label, problems, ..
            } => self.data(format!("FAILED {label}: {}", problems.join("; "))),
            Event::ScratchRestoreStarted { label, server } => self.ui.info(format!(
                "restoring {label} into a scratch database on {server}"
            )),
            Event::ScratchRestoreChecked {
                label,
                engine,
                ok: true,
                check: Some(c),
                ..
            } => {
                let (tables, rows) = scratch::engine_nouns(engine);
                self.data(format!(
                    "ok restore {label}: {} {tables}, {} {rows} match the manifest ({:.1} s)",
                    c.tables,
                    c.rows_compared,
                    c.millis as f64 / 1000.0
                ));
            }
            Event::ScratchRestoreChecked {
                label, problems, ..
            } => self.data(format!("FAILED {label}: restore: {}", problems.join("; "))),
            Event::ScratchLeftBehind {
                name,
                server,
                error,
            } => self.ui.problem(format!(
                "warning: could not drop scratch database {name} on {server}: {error}; drop it by hand"
            )),
            _ => {}
        }
    }
}
