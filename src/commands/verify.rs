//! `exporter verify`: resolve the storage, run the verification ([`verify::verify`]), render
//! its per-archive lines (stdout: they are the command's data) and the report (a summary line,
//! or with `--json` the report itself).

use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::cleanup::Cleanup;
use crate::endpoint::EndpointProvider;
use crate::output::{TaskBars, Ui, counted, human_bytes, human_duration, read_so_far};
use crate::progress::{Event, Progress};
use crate::settings::VerifyPlan;
use crate::storage;
use crate::verify::{self, Level, VerifyContext, VerifyReport, scratch};

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
        progress: Arc::new(VerifyProgress {
            ui,
            json,
            bars: TaskBars::new(ui),
            phase: Mutex::new(Phase::default()),
        }),
    };
    let verification = verify::verify(plan, &cx).await?;
    drop(cx);
    let report = &verification.report;
    ui.emit_json("run_finished", &RunFinished::of(report));
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
        let line = if skipped > 0 {
            format!("{line}; {skipped} database(s) skipped at dump time, not exported")
        } else {
            line
        };
        match &verification.kept {
            Some(kept) => format!(
                "{line}; verify.json keeps the level {} verification of {} (a check at a lower \
                 level does not replace it)",
                kept.level,
                kept.verified_at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            None => line,
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

/// The `run_finished` event of a verification (`--log-format json`; FORMAT.md, "Events on
/// stderr").
#[derive(Debug, Serialize)]
struct RunFinished<'a> {
    command: &'static str,
    run_id: &'a str,
    level: verify::Level,
    ok: bool,
    /// Archives that passed every check of the level.
    verified: usize,
    /// Databases whose archive failed a check (or was never dumped).
    bad: usize,
    /// Databases the manifest marks skipped (not exported).
    skipped: usize,
    /// Problems of the run as a whole.
    problems: &'a [String],
}

impl<'a> RunFinished<'a> {
    fn of(report: &'a VerifyReport) -> Self {
        let skipped = report.databases.iter().filter(|d| d.skipped).count();
        Self {
            command: "verify",
            run_id: &report.run_id,
            level: report.level,
            ok: report.ok,
            verified: report.databases.iter().filter(|d| d.ok).count() - skipped,
            bad: report.bad(),
            skipped,
            problems: &report.problems,
        }
    }
}

/// Renders a verification's events: per-archive lines on stdout (unless `json`), progress on
/// stderr (lines, with bars on a terminal, or JSON events).
struct VerifyProgress {
    ui: Ui,
    json: bool,
    /// The bars, on a terminal.
    bars: Option<TaskBars>,
    /// Where the verification is, for the overall bar.
    phase: Mutex<Phase>,
}

/// The overall bar counts the archives read back, then (level `restore`) those restored.
#[derive(Debug, Default)]
struct Phase {
    level: Option<Level>,
    archives: usize,
    read_back: usize,
    to_restore: u64,
}

impl VerifyProgress {
    fn data(&self, line: String) {
        if !self.json {
            self.ui.data(line);
        }
    }

    /// One archive read back (or skipped): at level `restore`, the last one starts the
    /// restore phase's overall bar.
    fn read_back(&self, bars: &TaskBars, ok: bool) {
        bars.step();
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        phase.read_back += 1;
        if ok {
            phase.to_restore += 1;
        }
        if phase.level == Some(Level::Restore) && phase.read_back == phase.archives {
            bars.overall(
                "restore",
                phase.to_restore,
                "archives restored and compared",
            );
        }
    }

    /// Move the bars for `event`.
    fn bars(&self, bars: &TaskBars, event: &Event) {
        match event {
            Event::VerifyStarted {
                level, archives, ..
            } => {
                let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
                phase.level = Some(*level);
                phase.archives = *archives;
                bars.overall("verify", *archives as u64, "archives read back");
            }
            Event::ArchiveCheckStarted {
                label,
                stored_bytes,
            } => bars.start(label, label, Some(*stored_bytes), "reading"),
            Event::ArchiveCheckProgress {
                label,
                bytes_read,
                total_bytes,
                ..
            } => bars.update(label, *bytes_read, *total_bytes, "reading".to_owned()),
            Event::ArchiveChecked { label, ok, .. } => {
                bars.finish(label);
                self.read_back(bars, *ok);
            }
            Event::ArchiveSkipped { .. } => self.read_back(bars, false),
            Event::ScratchRestoreStarted { label, .. } => {
                bars.start(label, label, None, "restoring into a scratch database");
            }
            Event::ScratchRestoreProgress {
                label,
                bytes_read,
                total_bytes,
                ..
            } => {
                let doing = if total_bytes.is_some_and(|t| *bytes_read >= t) {
                    "archive read; restoring, comparing fingerprints"
                } else {
                    "restoring into a scratch database"
                };
                bars.update(label, *bytes_read, *total_bytes, doing.to_owned());
            }
            Event::ScratchRestoreChecked { label, .. } => {
                bars.finish(label);
                bars.step();
            }
            _ => {}
        }
    }

    /// The per-archive line on stdout for `event`, if it has one.
    fn data_line(event: &Event) -> Option<String> {
        Some(match event {
            Event::RunProblem { problem } => format!("FAILED {problem}"),
            Event::ArchiveSkipped { name, reason } => {
                format!("skipped {name}: not exported ({reason})")
            }
            Event::ArchiveChecked {
                label,
                ok: true,
                stored_bytes,
                payload_bytes,
                ..
            } => format!(
                "ok {label} ({} stored, {} payload)",
                human_bytes(*stored_bytes),
                human_bytes(*payload_bytes)
            ),
            Event::ArchiveChecked {
                label, problems, ..
            } => format!("FAILED {label}: {}", problems.join("; ")),
            Event::ScratchRestoreChecked {
                label,
                engine,
                ok: true,
                check: Some(c),
                ..
            } => {
                let (tables, rows) = scratch::engine_nouns(engine);
                format!(
                    "ok restore {label}: {}, {} match the manifest ({:.1} s)",
                    counted(c.tables, tables),
                    counted(c.rows_compared, rows),
                    c.millis as f64 / 1000.0
                )
            }
            Event::ScratchRestoreChecked {
                label, problems, ..
            } => format!("FAILED {label}: restore: {}", problems.join("; ")),
            _ => return None,
        })
    }
}

impl Progress for VerifyProgress {
    fn heartbeat(&self) -> Option<std::time::Duration> {
        self.ui.heartbeat()
    }

    fn event(&self, event: &Event) {
        if let Some(bars) = &self.bars {
            self.bars(bars, event);
        }
        if let Some(line) = Self::data_line(event) {
            self.data(line);
        }
        if self.ui.event_json(event) {
            return;
        }
        match event {
            // The bars show it.
            Event::ArchiveCheckProgress { .. } | Event::ScratchRestoreProgress { .. }
                if self.bars.is_some() => {}
            Event::ArchiveCheckProgress {
                label,
                bytes_read,
                total_bytes,
                seconds,
            } => self.ui.info(format!(
                "still reading {label}: {} in {}",
                read_so_far(*bytes_read, *total_bytes),
                human_duration(*seconds)
            )),
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
                ..
            } => self
                .ui
                .info(format!("verifying run {run_id} at level {level} ({location})")),
            Event::ScratchRestoreStarted { label, server } => self.ui.info(format!(
                "restoring {label} into a scratch database on {server}"
            )),
            Event::ScratchNameTaken { name, server } => self.ui.problem(format!(
                "warning: a database named {name} exists on {server} already (the scratch of an \
                 interrupted verification, or of one running beside this one): left alone, \
                 restoring under another name; drop it by hand if nothing uses it"
            )),
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
