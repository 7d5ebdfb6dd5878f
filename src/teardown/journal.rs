//! The teardown journal, `teardown-journal.json` next to the covering run (FORMAT.md,
//! "Teardown files"): every destructive request, its operation id and outcome, written before
//! and after each request, so that a re-run after a failure or Ctrl-C resumes without
//! repeating finished steps (issue 14).
//!
//! A step's record moves `sent` → `succeeded` | `gone` | `failed`. `failed` is the platform's
//! verdict only (the request refused, or its operation failed); a step whose request was
//! accepted but whose operation could not be followed to its end (a failed poll, an expired
//! token, a kill) stays `sent` with its operation id. A re-run first follows every `sent` step
//! with an operation id — listed or not, since a deprovisioned resource leaves the listing —
//! instead of sending the request again; it skips `succeeded` and `gone` steps; a `failed`
//! step is sent again only because the user ran `--apply` again (nothing is retried
//! automatically).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::coverage::DatabaseCoverage;
use super::plan::StepKind;
use crate::verify::Level;

/// Value of the journal's `format` field.
pub const JOURNAL_FORMAT: &str = "exporter-teardown-journal";
/// The journal's version.
pub const JOURNAL_VERSION: u32 = 1;

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// The request was sent; its outcome is not known yet.
    Sent,
    /// The operation succeeded (or the environment's DELETE answered 204).
    Succeeded,
    /// The resource was gone: its operation answered 404 after finishing, or the request
    /// itself answered 404 (e.g. a copy purged with its original). Counts as done.
    Gone,
    /// The request was refused or its operation failed.
    Failed,
}

impl StepState {
    /// Whether the step needs no further request.
    #[must_use]
    pub fn is_done(self) -> bool {
        matches!(self, Self::Succeeded | Self::Gone)
    }
}

/// One destructive request and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step's key (`metric_drain:80`, `database:100`, `environment:42`).
    pub key: String,
    /// What kind of resource.
    pub kind: StepKind,
    /// The resource in words (`metric drain datadog (#80)`).
    pub resource: String,
    /// The request (`POST /metric_drains/80/operations {"type":"deprovision"}`).
    pub request: String,
    /// The platform's operation id, once known.
    pub operation_id: Option<u64>,
    /// Where it stands.
    pub state: StepState,
    /// When the request was sent.
    pub started_at: DateTime<Utc>,
    /// When the outcome was known.
    pub finished_at: Option<DateTime<Utc>>,
    /// The platform's message, for a failed step.
    pub error: Option<String>,
    /// For a `sent` step: why its operation could not be followed to its end (the next
    /// `--apply` follows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_error: Option<String>,
    /// How many times the request was sent (each by a separate `--apply`).
    pub attempts: u32,
    /// The earlier attempts, oldest first (a failed operation stays on record after the
    /// request was sent again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Attempt>,
}

/// An earlier attempt of a step that was sent again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Its operation id, if the platform created one.
    pub operation_id: Option<u64>,
    /// How it ended.
    pub state: StepState,
    /// When it was sent.
    pub started_at: DateTime<Utc>,
    /// When its outcome was known.
    pub finished_at: Option<DateTime<Utc>>,
    /// The platform's message.
    pub error: Option<String>,
}

/// The whole journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// [`JOURNAL_FORMAT`].
    pub format: String,
    /// [`JOURNAL_VERSION`].
    pub version: u32,
    /// The environment's handle.
    pub environment: String,
    /// The environment's id.
    pub environment_id: u64,
    /// The run the journal (and the reports) are kept in.
    pub run_id: String,
    /// The first `--apply`.
    pub started_at: DateTime<Utc>,
    /// The last change.
    pub updated_at: DateTime<Utc>,
    /// Whether the environment was deleted and the final listing taken.
    pub finished: bool,
    /// Each `--apply`: when it started, the level it required, and how it ended.
    pub applies: Vec<ApplyRecord>,
    /// Set when this journal was begun while no journal of an earlier `--apply` of the
    /// environment existed: anything an earlier `--apply` removed is not in `steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub begun_without_journal: Option<NoEarlierJournal>,
    /// The coverage of every database the gate passed, by id (kept after the database is
    /// gone, for the report).
    pub coverage: BTreeMap<u64, DatabaseCoverage>,
    /// Every step in the order it was first sent.
    pub steps: Vec<StepRecord>,
}

/// One `--apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyRecord {
    /// When it started (after the gate passed).
    pub started_at: DateTime<Utc>,
    /// The level the gate required.
    pub required_level: Level,
    /// How it ended: `finished`, `stopped: <step>: <error>`, `running` (while it runs) or
    /// `interrupted` (it never recorded its end: killed; set by the next `--apply`).
    pub outcome: String,
}

/// What was visible when a journal was begun without one of an earlier `--apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoEarlierJournal {
    /// When (the first `--apply` of this journal).
    pub at: DateTime<Utc>,
    /// Signs that the environment was already partly torn down (e.g. an archived database no
    /// longer listed); empty when none was visible.
    pub signs: Vec<String>,
}

/// [`ApplyRecord::outcome`] of an `--apply` that is running.
pub const APPLY_RUNNING: &str = "running";
/// [`ApplyRecord::outcome`] of an `--apply` that never recorded its end.
pub const APPLY_INTERRUPTED: &str = "interrupted";

impl Journal {
    /// A new journal for an environment, kept in run `run_id`.
    #[must_use]
    pub fn new(environment: &str, environment_id: u64, run_id: &str) -> Self {
        let now = Utc::now();
        Self {
            format: JOURNAL_FORMAT.to_owned(),
            version: JOURNAL_VERSION,
            environment: environment.to_owned(),
            environment_id,
            run_id: run_id.to_owned(),
            started_at: now,
            updated_at: now,
            finished: false,
            applies: Vec::new(),
            begun_without_journal: None,
            coverage: BTreeMap::new(),
            steps: Vec::new(),
        }
    }

    /// The record of step `key`, if it was ever sent.
    #[must_use]
    pub fn step(&self, key: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.key == key)
    }

    /// The record of step `key`, created as `sent` if new (counting an attempt either way).
    pub fn begin(&mut self, key: &str, kind: StepKind, resource: &str, request: &str) {
        let now = Utc::now();
        if let Some(s) = self.steps.iter_mut().find(|s| s.key == key) {
            s.earlier.push(Attempt {
                operation_id: s.operation_id,
                state: s.state,
                started_at: s.started_at,
                finished_at: s.finished_at,
                error: s.error.clone(),
            });
            s.state = StepState::Sent;
            s.operation_id = None;
            s.error = None;
            s.poll_error = None;
            s.started_at = now;
            s.finished_at = None;
            s.attempts += 1;
            request.clone_into(&mut s.request);
        } else {
            self.steps.push(StepRecord {
                key: key.to_owned(),
                kind,
                resource: resource.to_owned(),
                request: request.to_owned(),
                operation_id: None,
                state: StepState::Sent,
                started_at: now,
                finished_at: None,
                error: None,
                poll_error: None,
                attempts: 1,
                earlier: Vec::new(),
            });
        }
        self.updated_at = now;
    }

    /// Record the operation id of step `key`.
    pub fn operation(&mut self, key: &str, id: u64) {
        if let Some(s) = self.steps.iter_mut().find(|s| s.key == key) {
            s.operation_id = Some(id);
        }
        self.updated_at = Utc::now();
    }

    /// Record the outcome of step `key`.
    pub fn end(&mut self, key: &str, state: StepState, error: Option<String>) {
        let now = Utc::now();
        if let Some(s) = self.steps.iter_mut().find(|s| s.key == key) {
            s.state = state;
            s.finished_at = Some(now);
            s.error = error;
            s.poll_error = None;
        }
        self.updated_at = now;
    }

    /// Record that step `key`'s operation could not be followed to its end: the step stays
    /// `sent` with its operation id, for the next `--apply` to follow.
    pub fn lost(&mut self, key: &str, why: String) {
        if let Some(s) = self.steps.iter_mut().find(|s| s.key == key) {
            s.poll_error = Some(why);
        }
        self.updated_at = Utc::now();
    }

    /// The steps whose request was accepted (operation id known) and whose outcome is not
    /// known yet, in the order sent.
    #[must_use]
    pub fn unfinished(&self) -> Vec<StepRecord> {
        self.steps
            .iter()
            .filter(|s| s.state == StepState::Sent && s.operation_id.is_some())
            .cloned()
            .collect()
    }

    /// Mark every `--apply` that never recorded its end (still `running`: killed) as
    /// `interrupted`. Returns how many.
    pub fn mark_interrupted(&mut self) -> usize {
        let mut n = 0;
        for a in &mut self.applies {
            if a.outcome == APPLY_RUNNING {
                APPLY_INTERRUPTED.clone_into(&mut a.outcome);
                n += 1;
            }
        }
        n
    }

    /// Keys of the steps already done.
    pub fn done(&self) -> impl Iterator<Item = &str> {
        self.steps
            .iter()
            .filter(|s| s.state.is_done())
            .map(|s| s.key.as_str())
    }

    /// Pretty JSON with a trailing newline.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a journal serializes");
        v.push(b'\n');
        v
    }

    /// Read a journal.
    ///
    /// # Errors
    ///
    /// The JSON error, or a message for another format or version.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let j: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if j.format != JOURNAL_FORMAT || j.version != JOURNAL_VERSION {
            return Err(format!(
                "format {:?} version {}, expected {JOURNAL_FORMAT:?} version {JOURNAL_VERSION}",
                j.format, j.version
            ));
        }
        Ok(j)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_move_through_their_states_and_round_trip() {
        let mut j = Journal::new("prod", 42, "20260301T100000Z");
        j.begin(
            "metric_drain:80",
            StepKind::MetricDrain,
            "metric drain datadog (#80)",
            "POST /metric_drains/80/operations",
        );
        j.operation("metric_drain:80", 7001);
        assert_eq!(j.step("metric_drain:80").unwrap().state, StepState::Sent);
        j.end("metric_drain:80", StepState::Gone, None);
        j.begin(
            "app:10",
            StepKind::App,
            "app web (#10)",
            "POST /apps/10/operations",
        );
        j.end(
            "app:10",
            StepState::Failed,
            Some("Operation #7002 (deprovision) failed.".into()),
        );
        assert_eq!(j.done().collect::<Vec<_>>(), ["metric_drain:80"]);
        j.begin(
            "app:10",
            StepKind::App,
            "app web (#10)",
            "POST /apps/10/operations",
        );
        let app = j.step("app:10").unwrap();
        assert_eq!(
            (app.attempts, app.state, app.error.as_deref()),
            (2, StepState::Sent, None)
        );
        let back = Journal::from_json(&j.to_json()).unwrap();
        assert_eq!(back, j);
        assert!(Journal::from_json(br#"{"format":"x"}"#).is_err());
    }

    #[test]
    fn a_lost_operation_stays_sent_and_an_unended_apply_is_interrupted() {
        let mut j = Journal::new("prod", 42, "20260301T100000Z");
        j.applies.push(ApplyRecord {
            started_at: Utc::now(),
            required_level: Level::Restore,
            outcome: APPLY_RUNNING.to_owned(),
        });
        j.begin(
            "app:10",
            StepKind::App,
            "app web (#10)",
            "POST /apps/10/operations",
        );
        assert!(
            j.unfinished().is_empty(),
            "no operation id: nothing to follow"
        );
        j.operation("app:10", 7002);
        j.lost("app:10", "HTTP 500 on GET /operations/7002".to_owned());
        let app = j.step("app:10").unwrap();
        assert_eq!(
            (app.state, app.operation_id, app.error.as_deref()),
            (StepState::Sent, Some(7002), None)
        );
        assert_eq!(j.unfinished().len(), 1);
        assert_eq!(j.mark_interrupted(), 1);
        assert_eq!(j.applies[0].outcome, APPLY_INTERRUPTED);
        let back = Journal::from_json(&j.to_json()).unwrap();
        assert_eq!(back, j);
        j.end("app:10", StepState::Gone, None);
        assert_eq!(j.step("app:10").unwrap().poll_error, None);
        assert!(j.unfinished().is_empty());
    }
}
