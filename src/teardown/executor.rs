//! The teardown executor: the one place that calls the platform client's destructive methods
//! (`clippy.toml` bans them everywhere else), reachable only with a [`Gate<Verified>`].
//!
//! First, every step an earlier `--apply` left `sent` with an operation id is followed to
//! its end (whether or not its resource is still listed: a deprovisioned one leaves the
//! listing), so the journal records its real outcome and its request is never sent twice.
//! Then steps run in the plan's order (metric drains, log drains, apps, databases), then the
//! backups listed after the databases are gone (final, manual, orphaned, copies: a database's
//! deprovision may leave a final backup, aptible-api.md §9.1), then — once a fresh listing
//! shows nothing else — the environment. Each step is one request sent once and, for an
//! operation, polled to completion (§4.2: a 404 after a finished deprovision or purge is
//! done; a 404 to the request itself means the resource is already gone, e.g. a copy purged
//! with its original, §9.2). The first failure stops everything after it. The journal is
//! written before and after every request.
//!
//! `failed` is recorded only on the platform's verdict (a refused request, a failed
//! operation). When an accepted request's operation cannot be followed (a poll answers 500,
//! the token expires, the wait times out), the step stays `sent` with its operation id and the
//! apply stops with [`TeardownError::OutcomeUnknown`].

use std::sync::Arc;

use chrono::Utc;
use exporter_aptible::{Client, ErrorKind, Inventory, Operation, PollOptions};

use super::gate::{Gate, Verified};
use super::journal::{
    APPLY_RUNNING, ApplyRecord, Journal, NoEarlierJournal, StepRecord, StepState,
};
use super::plan::{self, Resource, Step, StepKind};
use super::report::{FinalListing, Listing, TeardownReport};
use super::{Assessment, TeardownError, is_gone};
use crate::archive::{JOURNAL_FILE, REPORT_JSON_FILE, REPORT_MD_FILE};
use crate::blocking;
use crate::progress::{Event, Progress};
use crate::storage::Storage;

/// Run the teardown behind a passed gate: every step not already done, the final listing, and
/// the evidence report (`teardown-report.md` and `.json`, written next to the journal also
/// when a step fails).
///
/// # Errors
///
/// [`TeardownError::StepFailed`] naming the first step that failed (nothing after it was
/// sent); [`TeardownError::OutcomeUnknown`] naming a step whose request was accepted but
/// whose operation could not be followed (it stays `sent`); [`TeardownError::Remaining`] when the listing before the environment's deletion is
/// not empty; [`TeardownError::Platform`] when a listing fails; [`TeardownError::Storage`]
/// when the journal cannot be written (before the request it would record is sent).
///
/// # Cancel safety
///
/// Dropping the future between two requests leaves the journal consistent; dropped while an
/// operation is polled, the journal holds the step as `sent` with its operation id, and the
/// next `--apply` polls that operation instead of sending the request again.
pub async fn execute(
    gate: Gate<Verified>,
    client: &Client,
    poll: &PollOptions,
    progress: Arc<dyn Progress>,
) -> Result<TeardownReport, TeardownError> {
    let a = gate.into_assessment();
    let run_id = a
        .plan
        .journal_run
        .clone()
        .expect("a passed gate has a run for the journal");
    let mut journal = a.journal.clone().unwrap_or_else(|| {
        let mut j = Journal::new(&a.plan.environment, a.plan.environment_id, &run_id);
        j.begun_without_journal = Some(NoEarlierJournal {
            at: j.started_at,
            signs: a.torn_down_signs.clone(),
        });
        j
    });
    // An --apply that never recorded its end was killed.
    journal.mark_interrupted();
    for d in &a.plan.coverage.databases {
        journal.coverage.insert(d.id, d.clone());
    }
    journal.applies.push(ApplyRecord {
        started_at: Utc::now(),
        required_level: a.required_level,
        outcome: APPLY_RUNNING.to_owned(),
    });
    let mut ex = Executor {
        a: &a,
        client,
        poll,
        progress,
        journal,
    };
    ex.save().await?;
    let result = ex.run().await;
    let (outcome, listing) = match &result {
        Ok(listing) => ("finished".to_owned(), Some(listing.clone())),
        Err(e) => (format!("stopped: {}", one_line(e)), None),
    };
    if let Some(last) = ex.journal.applies.last_mut() {
        last.outcome.clone_from(&outcome);
    }
    ex.journal.finished = result.is_ok();
    ex.journal.updated_at = Utc::now();
    ex.save().await?;
    let report = TeardownReport::new(&a.plan, &ex.journal, listing, &a.destination);
    ex.write_report(&report).await?;
    result.map(|_| report)
}

struct Executor<'a> {
    a: &'a Assessment,
    client: &'a Client,
    poll: &'a PollOptions,
    progress: Arc<dyn Progress>,
    journal: Journal,
}

impl Executor<'_> {
    fn environment(&self) -> &str {
        &self.a.plan.environment
    }

    async fn run(&mut self) -> Result<FinalListing, TeardownError> {
        // Operations an earlier --apply left running (or could not follow): their outcome
        // first, listed or not.
        for record in self.journal.unfinished() {
            self.resume(&record).await?;
        }
        // Steps 2 to 5 from the listing the gate passed.
        let first: Vec<&Step> = self
            .a
            .plan
            .steps
            .iter()
            .filter(|s| !matches!(s.kind, StepKind::Backup | StepKind::Environment))
            .collect();
        for step in first {
            self.step(step).await?;
        }
        // Step 6: the backups as they are now (a deprovisioned database may have left a final
        // backup).
        let now = self.list().await?;
        self.nothing_but_backups(&now)?;
        let orphaned: Vec<u64> = now.orphaned_backups.iter().map(|b| b.id).collect();
        for b in plan::backup_order(&now.backups) {
            let step = plan::backup_step(&b, orphaned.contains(&b.id));
            self.step(&step).await?;
        }
        // Step 7, once the listing is empty.
        let before = self.list().await?;
        let listing = Listing::of(&before);
        if !listing.is_empty() {
            return Err(TeardownError::Remaining {
                environment: self.environment().to_owned(),
                remaining: listing.describe(),
            });
        }
        let step = plan::environment_step(&self.a.environment.account);
        self.step(&step).await?;
        let accounts = self
            .client
            .accounts()
            .await
            .map_err(|source| TeardownError::Platform {
                environment: self.environment().to_owned(),
                source: Box::new(source),
            })?;
        let still_listed = accounts
            .iter()
            .any(|acc| acc.id == self.a.plan.environment_id);
        Ok(FinalListing {
            checked_at: Utc::now(),
            before_deletion: listing,
            environment_listed_after: still_listed,
            environments_visible: accounts.iter().map(|acc| acc.handle.clone()).collect(),
        })
    }

    async fn list(&self) -> Result<Inventory, TeardownError> {
        self.client
            .inventory(&self.a.environment)
            .await
            .map_err(|source| TeardownError::Platform {
                environment: self.environment().to_owned(),
                source: Box::new(source),
            })
    }

    /// After steps 2 to 5 only backups may remain; anything else appeared since the plan.
    fn nothing_but_backups(&self, now: &Inventory) -> Result<(), TeardownError> {
        let mut listing = Listing::of(now);
        listing.backups.clear();
        if listing.is_empty() {
            Ok(())
        } else {
            Err(TeardownError::Remaining {
                environment: self.environment().to_owned(),
                remaining: listing.describe(),
            })
        }
    }

    async fn step(&mut self, step: &Step) -> Result<(), TeardownError> {
        if self
            .journal
            .step(&step.key)
            .is_some_and(|p| p.state.is_done())
        {
            self.progress.event(&Event::TeardownStepFinished {
                resource: step.resource.clone(),
                outcome: "done by an earlier --apply".to_owned(),
            });
            return Ok(());
        }
        self.journal
            .begin(&step.key, step.kind, &step.resource, &step.request);
        self.save().await?;
        self.progress.event(&Event::TeardownStepStarted {
            resource: step.resource.clone(),
            request: step.request.clone(),
        });
        match send(self.client, &step.target).await {
            Ok(Some(op)) => {
                self.journal.operation(&step.key, op.id);
                self.save().await?;
                let followed = follow(self.client, &op, self.poll).await;
                self.finish(&StepRef::of(step), op.id, followed).await
            }
            Ok(None) => {
                self.journal.end(&step.key, StepState::Succeeded, None);
                self.save().await?;
                self.progress.event(&Event::TeardownStepFinished {
                    resource: step.resource.clone(),
                    outcome: "deleted".to_owned(),
                });
                Ok(())
            }
            Err(e) if is_gone(&e) => {
                self.journal.end(&step.key, StepState::Gone, None);
                self.save().await?;
                self.progress.event(&Event::TeardownStepFinished {
                    resource: step.resource.clone(),
                    outcome: "already gone (404)".to_owned(),
                });
                Ok(())
            }
            Err(e) => self.fail(&StepRef::of(step), e).await,
        }
    }

    /// Follow the operation of a step an earlier `--apply` left `sent`: GET it (a 404 after a
    /// deprovision or purge is done) and wait for its end. Sends nothing destructive.
    async fn resume(&mut self, record: &StepRecord) -> Result<(), TeardownError> {
        let id = record
            .operation_id
            .expect("unfinished steps have an operation id");
        let step = StepRef {
            key: &record.key,
            resource: &record.resource,
            request: &record.request,
        };
        self.progress.event(&Event::TeardownStepStarted {
            resource: record.resource.clone(),
            request: format!("following operation #{id} of an earlier --apply"),
        });
        let href = self.client.roots().api_url(&format!("/operations/{id}"));
        let followed = match self.client.get::<Operation>(&href).await {
            Ok(op) => follow(self.client, &op, self.poll).await,
            Err(e) if is_gone(&e) => Followed::Gone,
            Err(e) => Followed::Lost(e),
        };
        self.finish(&step, id, followed).await
    }

    async fn finish(
        &mut self,
        step: &StepRef<'_>,
        id: u64,
        followed: Followed,
    ) -> Result<(), TeardownError> {
        let (state, outcome) = match followed {
            Followed::Succeeded => (StepState::Succeeded, "succeeded"),
            Followed::Gone => (StepState::Gone, "done (gone)"),
            Followed::Failed(e) => return self.fail(step, e).await,
            Followed::Lost(e) => {
                // The request was accepted: its outcome is the platform's, not known here.
                self.journal.lost(step.key, one_line(&e));
                self.save().await?;
                return Err(TeardownError::OutcomeUnknown {
                    environment: self.environment().to_owned(),
                    resource: step.resource.to_owned(),
                    request: step.request.to_owned(),
                    operation_id: id,
                    source: Box::new(e),
                });
            }
        };
        self.journal.end(step.key, state, None);
        self.save().await?;
        self.progress.event(&Event::TeardownStepFinished {
            resource: step.resource.to_owned(),
            outcome: format!("operation #{id} {outcome}"),
        });
        Ok(())
    }

    /// Record the platform's verdict `failed` and stop.
    async fn fail(
        &mut self,
        step: &StepRef<'_>,
        e: exporter_aptible::Error,
    ) -> Result<(), TeardownError> {
        self.journal
            .end(step.key, StepState::Failed, Some(e.to_string()));
        self.save().await?;
        Err(TeardownError::StepFailed {
            environment: self.environment().to_owned(),
            resource: step.resource.to_owned(),
            request: step.request.to_owned(),
            source: Box::new(e),
        })
    }

    async fn save(&self) -> Result<(), TeardownError> {
        let bytes = self.journal.to_json();
        self.put(JOURNAL_FILE, bytes).await
    }

    async fn write_report(&self, report: &TeardownReport) -> Result<(), TeardownError> {
        self.put(REPORT_JSON_FILE, report.to_json()).await?;
        self.put(REPORT_MD_FILE, report.to_markdown().into_bytes())
            .await
    }

    async fn put(&self, name: &'static str, bytes: Vec<u8>) -> Result<(), TeardownError> {
        let storage: Arc<dyn Storage> = self.a.storage.clone();
        let run_id = self.journal.run_id.clone();
        let location = format!("{}/{run_id}", storage.describe());
        blocking::run("writing the teardown records", move || {
            storage.put_object(&run_id, name, &bytes)
        })
        .await?
        .map_err(|source| TeardownError::Storage {
            what: format!("cannot write {name}"),
            location,
            source,
        })
    }
}

/// What a step's journal record and its error need of it (a planned step or, for one
/// followed from the journal, its record).
struct StepRef<'a> {
    key: &'a str,
    resource: &'a str,
    request: &'a str,
}

impl<'a> StepRef<'a> {
    fn of(step: &'a Step) -> Self {
        Self {
            key: &step.key,
            resource: &step.resource,
            request: &step.request,
        }
    }
}

/// How following an accepted request's operation ended.
enum Followed {
    /// Status `succeeded`.
    Succeeded,
    /// A deprovision or purge whose operation answers 404: done (spec §4.2).
    Gone,
    /// The platform's verdict: status `failed`.
    Failed(exporter_aptible::Error),
    /// It could not be followed to its end (a poll failed, the wait timed out): its outcome
    /// is unknown.
    Lost(exporter_aptible::Error),
}

/// Poll `operation` until it ends, telling the platform's verdict (`failed`) apart from a
/// failure to follow it, which [`Client::wait_operation`] reports alike. Sends only GETs.
async fn follow(client: &Client, operation: &Operation, poll: &PollOptions) -> Followed {
    let href = operation.links.href("self").map_or_else(
        || {
            client
                .roots()
                .api_url(&format!("/operations/{}", operation.id))
        },
        str::to_owned,
    );
    let gone_is_done = matches!(operation.kind.as_str(), "deprovision" | "purge");
    let started = std::time::Instant::now();
    let mut current = operation.clone();
    loop {
        match current.status.as_str() {
            "succeeded" => return Followed::Succeeded,
            "failed" => {
                return Followed::Failed(exporter_aptible::Error::new(
                    ErrorKind::Operation,
                    format!("operation #{}", current.id),
                    format!("Operation #{} ({}) failed.", current.id, current.kind),
                ));
            }
            _ => {}
        }
        if let Some(limit) = poll.timeout
            && started.elapsed() >= limit
        {
            return Followed::Lost(exporter_aptible::Error::new(
                ErrorKind::Operation,
                format!("operation #{}", current.id),
                format!(
                    "Operation #{} ({}) did not finish within {} s (last status: {})",
                    current.id,
                    current.kind,
                    limit.as_secs(),
                    current.status
                ),
            ));
        }
        tokio::time::sleep(poll.interval).await;
        match client.get::<Operation>(&href).await {
            Ok(op) => current = op,
            Err(e) if is_gone(&e) && gone_is_done => return Followed::Gone,
            Err(e) => return Followed::Lost(e),
        }
    }
}

/// Send a step's one destructive request: the operation to wait for, or `None` for the
/// environment's DELETE (204, no operation).
#[allow(
    clippy::disallowed_methods,
    reason = "the teardown executor, behind Gate<Verified>: the one place destructive platform calls are allowed (design.md section 8)"
)]
async fn send(client: &Client, target: &Resource) -> exporter_aptible::Result<Option<Operation>> {
    match target {
        Resource::MetricDrain(d) => client.deprovision_metric_drain(d).await.map(Some),
        Resource::LogDrain(d) => client.deprovision_log_drain(d).await.map(Some),
        Resource::App(app) => client.deprovision_app(app).await.map(Some),
        Resource::Database(d) => client.deprovision_database(d).await.map(Some),
        Resource::Backup(b) => client.purge_backup(b).await.map(Some),
        Resource::Environment(account) => client.delete_account(account).await.map(|()| None),
    }
}

/// An error and its causes on one line (`a: b: c`), for the journal.
fn one_line(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out.replace('\n', " ")
}
