//! The evidence report: `teardown-report.json` and `teardown-report.md` next to the journal
//! (FORMAT.md, "Teardown files"). What was exported (each database, its archive file, size,
//! SHA-256, per-table row counts, consistency, live or from which backup, TLS), how and when
//! it was verified, what was accepted as unexported, what was deprovisioned (resource,
//! request, operation id, start and end), and the final listing — so that someone reading it
//! a year later can tell exactly what was kept and what was destroyed.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use exporter_aptible::Inventory;
use serde::{Deserialize, Serialize};

use super::coverage::{DatabaseCoverage, Status, human_age};
use super::journal::{ApplyRecord, Journal, NoEarlierJournal, StepRecord, StepState};
use super::plan::{STEP_8, TeardownPlan};
use crate::verify::Level;

/// Value of the report's `format` field.
pub const REPORT_FORMAT: &str = "exporter-teardown-report";

/// What one listing of the environment held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// Metric drains (handles).
    pub metric_drains: Vec<String>,
    /// Log drains (handles).
    pub log_drains: Vec<String>,
    /// Apps (handles).
    pub apps: Vec<String>,
    /// Endpoints (ids and hosts).
    pub endpoints: Vec<String>,
    /// Databases (handles).
    pub databases: Vec<String>,
    /// Backups (ids).
    pub backups: Vec<String>,
}

impl Listing {
    /// The listing of an inventory.
    #[must_use]
    pub fn of(inv: &Inventory) -> Self {
        Self {
            metric_drains: inv.metric_drains.iter().map(|d| d.handle.clone()).collect(),
            log_drains: inv.log_drains.iter().map(|d| d.handle.clone()).collect(),
            apps: inv.apps.iter().map(|a| a.app.handle.clone()).collect(),
            endpoints: inv
                .vhosts
                .iter()
                .map(|v| format!("#{} {}", v.id, v.external_host.as_deref().unwrap_or("-")))
                .collect(),
            databases: inv
                .databases
                .iter()
                .map(|d| d.database.handle.clone())
                .collect(),
            backups: inv.backups.iter().map(|b| format!("#{}", b.id)).collect(),
        }
    }

    /// Whether nothing is listed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.describe().is_empty()
    }

    /// What is listed, per kind (`2 databases (a, b)`).
    #[must_use]
    pub fn describe(&self) -> Vec<String> {
        [
            ("metric drain(s)", &self.metric_drains),
            ("log drain(s)", &self.log_drains),
            ("app(s)", &self.apps),
            ("endpoint(s)", &self.endpoints),
            ("database(s)", &self.databases),
            ("backup(s)", &self.backups),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(what, v)| format!("{} {what} ({})", v.len(), v.join(", ")))
        .collect()
    }
}

/// The check that nothing remains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalListing {
    /// When the environment was listed after its deletion.
    pub checked_at: DateTime<Utc>,
    /// The environment's listing right before its deletion (empty).
    pub before_deletion: Listing,
    /// Whether the environment was still listed after its deletion (`false`: gone).
    pub environment_listed_after: bool,
    /// The environments the token sees afterwards.
    pub environments_visible: Vec<String>,
}

/// The evidence report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeardownReport {
    /// [`REPORT_FORMAT`].
    pub format: String,
    /// The tool's version.
    pub tool_version: String,
    /// When the report was written.
    pub generated_at: DateTime<Utc>,
    /// The environment's handle.
    pub environment: String,
    /// Its id.
    pub environment_id: u64,
    /// `finished` (the environment is deleted) or `stopped` (see `stopped_at`).
    pub status: String,
    /// The failure that stopped the last `--apply`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<String>,
    /// Where the runs are.
    pub destination: String,
    /// The run holding the journal and this report.
    pub run_id: String,
    /// The level the gate required.
    pub required_level: Level,
    /// Whether that is a downgrade (`--require-level decompress`).
    pub downgraded: bool,
    /// `--max-age` in seconds.
    pub max_age_seconds: u64,
    /// Every database the gate passed, with its archive and verification (or why it needed
    /// none).
    pub databases: Vec<DatabaseCoverage>,
    /// Handles of databases accepted as unexported (lost on purpose).
    pub accepted_unexported: Vec<String>,
    /// Every `--apply` recorded in the journal, oldest first, with how it ended (`finished`,
    /// `stopped: …`, `interrupted`): the evidence of each, kept after a later one.
    pub applies: Vec<ApplyRecord>,
    /// Set when the journal was begun while no journal of an earlier `--apply` existed:
    /// anything an earlier `--apply` removed is not in `steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub begun_without_journal: Option<NoEarlierJournal>,
    /// Every destructive request, in the order first sent.
    pub steps: Vec<StepRecord>,
    /// The listing before the environment's deletion and the check after it (absent until
    /// the teardown finished).
    pub final_listing: Option<FinalListing>,
    /// What is left to do by hand.
    pub remaining_manual_action: Vec<String>,
}

impl TeardownReport {
    /// The report of a journal after an `--apply`.
    #[must_use]
    pub fn new(
        plan: &TeardownPlan,
        journal: &Journal,
        final_listing: Option<FinalListing>,
        destination: &str,
    ) -> Self {
        let databases: Vec<DatabaseCoverage> = {
            let mut v: Vec<DatabaseCoverage> = journal.coverage.values().cloned().collect();
            v.sort_by(|a, b| a.handle.cmp(&b.handle));
            v
        };
        let accepted_unexported = databases
            .iter()
            .filter(|d| d.status == Status::AcceptedUnexported)
            .map(|d| d.handle.clone())
            .collect();
        let stopped_at = journal
            .applies
            .last()
            .and_then(|a| a.outcome.strip_prefix("stopped: "))
            .map(str::to_owned);
        Self {
            format: REPORT_FORMAT.to_owned(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            generated_at: Utc::now(),
            environment: journal.environment.clone(),
            environment_id: journal.environment_id,
            status: if journal.finished {
                "finished".to_owned()
            } else {
                "stopped".to_owned()
            },
            stopped_at,
            destination: destination.to_owned(),
            run_id: journal.run_id.clone(),
            required_level: plan.required_level,
            downgraded: plan.downgraded,
            max_age_seconds: plan.max_age_seconds,
            databases,
            accepted_unexported,
            applies: journal.applies.clone(),
            begun_without_journal: journal.begun_without_journal.clone(),
            steps: journal.steps.clone(),
            final_listing,
            remaining_manual_action: if journal.finished {
                STEP_8.iter().map(|s| (*s).to_owned()).collect()
            } else {
                vec![format!(
                    "Run `exporter teardown --apply --confirm {}` again: it re-checks the gate \
                     and resumes after the last finished step.",
                    journal.environment
                )]
            },
        }
    }

    /// Pretty JSON with a trailing newline.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a report serializes");
        v.push(b'\n');
        v
    }

    /// The report in Markdown.
    #[must_use]
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Teardown of environment {} (#{})\n",
            self.environment, self.environment_id
        );
        let _ = writeln!(
            md,
            "- Status: **{}**{}",
            self.status,
            self.stopped_at
                .as_ref()
                .map_or_else(String::new, |s| format!(" — stopped at {s}"))
        );
        let _ = writeln!(md, "- Report written: {}", ts(self.generated_at));
        let _ = writeln!(
            md,
            "- Archives: {} (journal and report in run {})",
            self.destination, self.run_id
        );
        let _ = writeln!(
            md,
            "- Gate: every database covered by an archive verified at level **{}**, at most {} old{}",
            self.required_level,
            human_age(std::time::Duration::from_secs(self.max_age_seconds)),
            if self.downgraded {
                " — **DOWNGRADE: --require-level decompress: the archives were not restored into a scratch database**"
            } else {
                ""
            }
        );
        let _ = writeln!(md, "- Tool: exporter {}", self.tool_version);
        for (n, a) in self.applies.iter().enumerate() {
            let _ = writeln!(
                md,
                "- Apply {} ({}, level {}): {}",
                n + 1,
                ts(a.started_at),
                a.required_level,
                a.outcome
            );
        }
        if let Some(b) = &self.begun_without_journal {
            let _ = writeln!(
                md,
                "- **No journal of an earlier --apply was found** when this journal was begun \
                 ({}): anything an earlier --apply removed is not listed here.{}",
                ts(b.at),
                if b.signs.is_empty() {
                    String::new()
                } else {
                    format!(
                        " The environment already looked partly torn down: {}.",
                        b.signs.join("; ")
                    )
                }
            );
        }
        md.push('\n');

        md.push_str("## What was exported\n\n");
        for d in &self.databases {
            let _ = write!(md, "### {} (#{}, {})\n\n", d.handle, d.id, d.database_type);
            match &d.status {
                Status::Covered { archive: a } => {
                    let _ = writeln!(md, "- Archive: `{}/{}` ({})", a.run_id, a.file, a.location);
                    let _ = writeln!(
                        md,
                        "- Size: {} bytes stored, {} bytes of payload ({})",
                        a.compressed_bytes, a.uncompressed_bytes, a.engine
                    );
                    let _ = writeln!(md, "- SHA-256: `{}`", a.sha256);
                    let _ = writeln!(
                        md,
                        "- Dumped: {}, consistency {}",
                        ts(a.dumped_at),
                        a.consistency.as_deref().unwrap_or("-")
                    );
                    let _ = writeln!(
                        md,
                        "- Read from: {}{}",
                        a.origin,
                        a.backup
                            .as_ref()
                            .map_or_else(String::new, |b| format!(" {b}"))
                    );
                    if let Some(v) = &a.server_version {
                        let _ = writeln!(md, "- Server: {v}");
                    }
                    let _ = writeln!(md, "- TLS: {}", a.tls.as_deref().unwrap_or("not recorded"));
                    let _ = writeln!(
                        md,
                        "- Verified: level {} at {}{}",
                        a.verification.level,
                        ts(a.verification.verified_at),
                        a.verification
                            .rows_compared
                            .map_or_else(String::new, |r| format!(
                                ", {} table(s) and {r} row(s) compared in a scratch restore",
                                a.verification.tables_compared.unwrap_or(0)
                            ))
                    );
                    let _ = writeln!(
                        md,
                        "- manifest.json SHA-256: `{}` (as verified)",
                        a.manifest_sha256
                    );
                    if !a.tables.is_empty() {
                        md.push_str("\n| table | rows |\n| --- | ---: |\n");
                        for t in &a.tables {
                            let _ = writeln!(md, "| {} | {} |", t.name, t.rows);
                        }
                    }
                }
                Status::CoveredByPrimary { primary } => {
                    let _ = writeln!(
                        md,
                        "- A replica: its primary {primary}'s archive covers it."
                    );
                }
                Status::RestoredCopy { source } => {
                    let _ = writeln!(
                        md,
                        "- A copy this tool restored from a backup of {source}: no data of its own."
                    );
                }
                Status::AcceptedUnexported => {
                    let _ = writeln!(
                        md,
                        "- **Not exported: its loss was accepted** (--accept-unexported {}).",
                        d.handle
                    );
                }
                Status::Gap { reason } => {
                    let _ = writeln!(md, "- Not covered: {reason}");
                }
            }
            md.push('\n');
        }
        if !self.accepted_unexported.is_empty() {
            let _ = writeln!(
                md,
                "## Accepted as unexported\n\n{}\n",
                self.accepted_unexported
                    .iter()
                    .map(|h| format!("- {h}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }

        md.push_str("## What was deprovisioned\n\n");
        md.push_str("| # | resource | request | operation | outcome | started | finished |\n");
        md.push_str("| ---: | --- | --- | --- | --- | --- | --- |\n");
        let outcome = |state: StepState, error: Option<&str>| match state {
            StepState::Succeeded => "succeeded".to_owned(),
            StepState::Gone => "done (gone)".to_owned(),
            StepState::Sent => match error {
                Some(e) => format!(
                    "sent, outcome unknown (following its operation failed: {e}; the next --apply follows it)"
                ),
                None => "sent, outcome unknown".to_owned(),
            },
            StepState::Failed => format!("**failed**: {}", error.unwrap_or("")),
        };
        let op = |id: Option<u64>| id.map_or_else(|| "-".to_owned(), |id| format!("#{id}"));
        for (i, s) in self.steps.iter().enumerate() {
            for (n, e) in s.earlier.iter().enumerate() {
                let _ = writeln!(
                    md,
                    "| {} | {} (attempt {}) | `{}` | {} | {} | {} | {} |",
                    i + 1,
                    s.resource,
                    n + 1,
                    s.request,
                    op(e.operation_id),
                    outcome(e.state, e.error.as_deref()),
                    ts(e.started_at),
                    e.finished_at.map_or_else(|| "-".to_owned(), ts)
                );
            }
            let _ = writeln!(
                md,
                "| {} | {}{} | `{}` | {} | {} | {} | {} |",
                i + 1,
                s.resource,
                if s.earlier.is_empty() {
                    String::new()
                } else {
                    format!(" (attempt {})", s.attempts)
                },
                s.request,
                op(s.operation_id),
                outcome(s.state, s.error.as_deref().or(s.poll_error.as_deref())),
                ts(s.started_at),
                s.finished_at.map_or_else(|| "-".to_owned(), ts)
            );
        }
        md.push('\n');

        md.push_str("## Final listing\n\n");
        match &self.final_listing {
            Some(f) => {
                let before = f.before_deletion.describe();
                let _ = writeln!(
                    md,
                    "- Before the environment's deletion: {}",
                    if before.is_empty() {
                        "nothing listed (no metric drain, log drain, app, endpoint, database or backup)".to_owned()
                    } else {
                        before.join("; ")
                    }
                );
                let _ = writeln!(
                    md,
                    "- After it ({}): environment {} {}; environments visible: {}",
                    ts(f.checked_at),
                    self.environment,
                    if f.environment_listed_after {
                        "**still listed**"
                    } else {
                        "no longer listed"
                    },
                    if f.environments_visible.is_empty() {
                        "none".to_owned()
                    } else {
                        f.environments_visible.join(", ")
                    }
                );
            }
            None => md.push_str("- Not taken: the teardown did not finish.\n"),
        }
        md.push_str("\n## Remaining manual action\n\n");
        for line in &self.remaining_manual_action {
            let _ = writeln!(md, "- {line}");
        }
        md
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}
