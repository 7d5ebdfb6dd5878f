//! `exporter check`: the dump's inventory and destination checked without dumping
//! ([`check::check`]); per database its server, TLS, size and time, or what is missing
//! (stdout: the command's data), then a summary — or, when something would fail, the
//! `error:` line (exit 1). `--json` prints the [`CheckReport`] (FORMAT.md, "Reports on
//! stdout").

use std::fmt::Write as _;
use std::sync::Arc;

use crate::check::{self, CheckContext, CheckError, CheckReport, CheckStatus, DatabaseCheck};
use crate::cleanup::Cleanup;
use crate::endpoint::{EndpointProvider, UrlEndpoints};
use crate::error;
use crate::output::{Ui, human_bytes, human_duration, tls_note};
use crate::platform::{self, TunnelEndpoints, inventory};
use crate::progress::{Event, Progress};
use crate::settings::DumpPlan;
use crate::storage;

/// Check the plan's databases (a platform environment's after its inventory step) and its
/// destination; print the report.
///
/// # Errors
///
/// The platform's inventory refusals and errors, the storage's configuration error, and
/// [`CheckError::Failed`] (exit 1) after the report was printed when anything would make the
/// dump fail.
pub async fn run(mut plan: DumpPlan, json: bool, ui: Ui, cleanup: &Cleanup) -> anyhow::Result<()> {
    let notes: Arc<dyn Progress> = Arc::new(Notes { ui });
    let tunnels;
    let urls;
    let endpoints: &dyn EndpointProvider = if let Some(options) = plan.platform.clone() {
        let client = platform::client(&options.settings)?;
        let environment = inventory::read(&client, &options).await?;
        let (targets, skipped) = environment.targets(options.skip_unsupported)?;
        plan.databases = targets;
        plan.skipped = skipped;
        tunnels = TunnelEndpoints::new(
            client,
            plan.connections.clone(),
            options.credential_type.clone(),
            false,
            cleanup.clone(),
            notes,
        );
        &tunnels
    } else {
        urls = UrlEndpoints::new(plan.connections.clone());
        &urls
    };
    let storage = storage::open(&plan.destination, cleanup).await?;
    ui.info(format!(
        "checking {} database(s) and the destination {}",
        plan.databases.len(),
        plan.destination
    ));
    let report = check::check(
        &plan,
        &CheckContext {
            storage,
            endpoints,
            keep_start: false,
        },
    )
    .await?;
    if json {
        ui.data(serde_json::to_string_pretty(&report).expect("a report serializes"));
    } else {
        for line in render(&report) {
            ui.data(line);
        }
    }
    if !report.passed {
        // The summary of a failed check is the `error:` line (printed once, with its hint).
        return Err(CheckError::Failed {
            summary: report.summary(),
            hint: error::check_hint(&report),
        }
        .into());
    }
    Ok(())
}

/// The text report: a block per database, the destination, and (when it passed) a summary.
#[must_use]
pub fn render(report: &CheckReport) -> Vec<String> {
    let mut lines = Vec::new();
    for d in &report.databases {
        database_lines(d, &mut lines);
    }
    let dest = &report.destination;
    match &dest.error {
        None => lines.push(format!(
            "destination {}: writable (a test object was written and removed)",
            dest.location
        )),
        Some(e) => lines.push(format!("destination {}: FAILED: {e}", dest.location)),
    }
    if report.passed {
        let checked = report
            .databases
            .iter()
            .filter(|d| d.status == CheckStatus::Ok)
            .count();
        lines.push(format!(
            "ready: {checked} database(s) and the destination; {}",
            estimate(report.total_bytes, report.assumed_bytes_per_second)
        ));
    }
    lines
}

/// `about 1.2 GiB, 38s at an assumed 32.0 MiB/s`, or `size unknown`.
fn estimate(bytes: Option<u64>, rate: u64) -> String {
    match bytes {
        Some(b) => format!(
            "about {} to read, {} at an assumed {}/s",
            human_bytes(b),
            human_duration(check::estimate_seconds(b)),
            human_bytes(rate)
        ),
        None => "size unknown".to_owned(),
    }
}

fn database_lines(d: &DatabaseCheck, lines: &mut Vec<String>) {
    let name = &d.name;
    let facts = || {
        let mut f = format!(
            "{} {}{}",
            d.engine,
            d.server_version.as_deref().unwrap_or("?"),
            tls_note(d.tls.as_ref())
        );
        if let Some(b) = d.size_bytes {
            let _ = write!(
                f,
                ", about {}, {}",
                human_bytes(b),
                human_duration(check::estimate_seconds(b))
            );
        }
        f
    };
    match d.status {
        CheckStatus::Ok => lines.push(format!("{name}: ok: {}", facts())),
        CheckStatus::Problems => {
            lines.push(format!(
                "{name}: FAILED: {}; {} problem(s):",
                facts(),
                d.problems.len()
            ));
            for p in &d.problems {
                lines.push(format!("  {p}"));
            }
        }
        CheckStatus::Failed => {
            let (message, hint) = d
                .error
                .as_ref()
                .map(|e| (e.message.clone(), error::database_hint(e)))
                .unwrap_or_default();
            lines.push(format!("{name}: FAILED: cannot check: {message}"));
            if let Some(hint) = hint {
                lines.push(format!("  hint: {hint}"));
            }
        }
        CheckStatus::NotChecked => lines.push(format!("{name}: not checked ({})", d.endpoint)),
        CheckStatus::Skipped => lines.push(format!("{name}: skipped ({})", d.engine)),
    }
    for note in &d.notes {
        lines.push(format!("  note: {note}"));
    }
}

/// What the platform's endpoint step reports (a tunnel opened), on stderr.
struct Notes {
    ui: Ui,
}

impl Progress for Notes {
    fn event(&self, event: &Event) {
        if let Event::DatabaseNote { name, note } = event {
            self.ui.info(format!("  {name}: {note}"));
        }
    }
}
