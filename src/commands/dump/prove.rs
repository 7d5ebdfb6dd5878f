//! `dump --verify`: the lines of the verification that runs beside the dump
//! ([`crate::verify::alongside`]), on stderr with the dump's own (stdout carries the run
//! directory or the `--json` summary), and the closing line of a proven run.

use std::sync::Arc;

use crate::output::{Ui, counted, human_bytes, human_duration, read_so_far};
use crate::progress::{Event, Progress};
use crate::verify::{Level, Verification, scratch};

/// The observer of the verification beside a dump at `level`.
pub fn progress(ui: Ui, level: Level) -> Arc<dyn Progress> {
    Arc::new(ProveProgress { ui, level })
}

/// The last line of a dump whose run passed its verification: `run ID complete: N
/// archive(s), verified at level restore (verify.json)`.
pub fn summary_line(verification: &Verification, databases: usize) -> String {
    let report = &verification.report;
    let skipped = report.databases.iter().filter(|d| d.skipped).count();
    let line = format!(
        "run {} complete: {} archive(s), verified at level {} (verify.json)",
        report.run_id,
        databases - skipped,
        report.level
    );
    if skipped > 0 {
        format!("{line}; {skipped} database(s) skipped, not exported")
    } else {
        line
    }
}

/// Renders the verification's events: what passed as information, what failed as problems
/// (shown with `-q` too).
struct ProveProgress {
    ui: Ui,
    level: Level,
}

impl Progress for ProveProgress {
    fn heartbeat(&self) -> Option<std::time::Duration> {
        self.ui.heartbeat()
    }

    fn event(&self, event: &Event) {
        let ui = self.ui;
        match event {
            Event::VerifyStarted { run_id, level, .. } => ui.info(format!(
                "run {run_id}: verifying each archive at level {level} as soon as it is committed"
            )),
            Event::RunProblem { problem } => {
                ui.problem(format!("verification FAILED: {problem}"));
            }
            // Level restore says more once the restore is done.
            Event::ArchiveChecked {
                label,
                ok: true,
                stored_bytes,
                payload_bytes,
                ..
            } if self.level != Level::Restore => ui.info(format!(
                "  {label}: verified at level {} ({} stored, {} payload)",
                self.level,
                human_bytes(*stored_bytes),
                human_bytes(*payload_bytes)
            )),
            Event::ArchiveChecked {
                label,
                ok: false,
                problems,
                ..
            } => ui.problem(format!(
                "  {label}: verification FAILED: {}",
                problems.join("; ")
            )),
            Event::ScratchRestoreStarted { label, server } => ui.info(format!(
                "  {label}: restoring into a scratch database on {server}"
            )),
            Event::ScratchRestoreProgress {
                label,
                bytes_read,
                total_bytes,
                seconds,
            } => ui.info(format!(
                "  {label}: still verifying: {} in {}",
                read_so_far(*bytes_read, *total_bytes),
                human_duration(*seconds)
            )),
            Event::ScratchRestoreChecked {
                label,
                engine,
                ok: true,
                check: Some(c),
                ..
            } => {
                let (tables, rows) = scratch::engine_nouns(engine);
                ui.info(format!(
                    "  {label}: verified: restored, {} and {} match the manifest ({:.1} s)",
                    counted(c.tables, tables),
                    counted(c.rows_compared, rows),
                    c.millis as f64 / 1000.0
                ));
            }
            Event::ScratchRestoreChecked {
                label, problems, ..
            } => ui.problem(format!(
                "  {label}: verification FAILED: restore: {}",
                problems.join("; ")
            )),
            Event::ScratchNameTaken { name, server } => ui.problem(format!(
                "warning: a database named {name} exists on {server} already (the scratch of an \
                 interrupted verification, or of one running beside this one): left alone, \
                 restoring under another name; drop it by hand if nothing uses it"
            )),
            Event::ScratchLeftBehind {
                name,
                server,
                error,
            } => ui.problem(format!(
                "warning: could not drop scratch database {name} on {server}: {error}; drop it by hand"
            )),
            _ => {}
        }
    }
}
