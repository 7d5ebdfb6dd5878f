//! The teardown executor: the one place that calls the platform client's destructive methods
//! (`clippy.toml` bans them everywhere else), reachable only with a [`Gate<Verified>`].
//!
//! Steps run in the plan's order (metric drains, log drains, apps, databases), then the
//! backups listed after the databases are gone (final, manual, orphaned, copies: a database's
//! deprovision may leave a final backup, aptible-api.md §9.1), then — once a fresh listing
//! shows nothing else — the environment. Each step is one request sent once and, for an
//! operation, polled to completion (§4.2: a 404 after a finished deprovision or purge is
//! done; a 404 to the request itself means the resource is already gone, e.g. a copy purged
//! with its original, §9.2). The first failure stops everything after it. The journal is
//! written before and after every request.

use std::sync::Arc;

use chrono::Utc;
use exporter_aptible::{Client, Finished, Inventory, Operation, PollOptions};

use super::gate::{Gate, Verified};
use super::journal::{ApplyRecord, Journal, StepState};
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
/// sent); [`TeardownError::Remaining`] when the listing before the environment's deletion is
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
    let mut journal = a
        .journal
        .clone()
        .unwrap_or_else(|| Journal::new(&a.plan.environment, a.plan.environment_id, &run_id));
    for d in &a.plan.coverage.databases {
        journal.coverage.insert(d.id, d.clone());
    }
    journal.applies.push(ApplyRecord {
        started_at: Utc::now(),
        required_level: a.required_level,
        outcome: "running".to_owned(),
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
        let previous = self.journal.step(&step.key).cloned();
        if previous.as_ref().is_some_and(|p| p.state.is_done()) {
            self.progress.event(&Event::TeardownStepFinished {
                resource: step.resource.clone(),
                outcome: "done by an earlier --apply".to_owned(),
            });
            return Ok(());
        }
        // Interrupted while its operation ran: follow that operation, send nothing.
        if let Some(p) = previous.filter(|p| p.state == StepState::Sent)
            && let Some(id) = p.operation_id
        {
            self.progress.event(&Event::TeardownStepStarted {
                resource: step.resource.clone(),
                request: format!("operation #{id} of an earlier --apply"),
            });
            let href = self.client.roots().api_url(&format!("/operations/{id}"));
            let result = match self.client.get::<Operation>(&href).await {
                Ok(op) => self.client.wait_operation(&op, self.poll).await,
                Err(e) if is_gone(&e) => Ok(Finished::Gone),
                Err(e) => Err(e),
            };
            return self.finish(step, Some(id), result).await;
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
                let result = self.client.wait_operation(&op, self.poll).await;
                self.finish(step, Some(op.id), result).await
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
            Err(e) => self.fail(step, e).await,
        }
    }

    async fn finish(
        &mut self,
        step: &Step,
        id: Option<u64>,
        result: exporter_aptible::Result<Finished>,
    ) -> Result<(), TeardownError> {
        let op = id.map_or_else(String::new, |id| format!("operation #{id} "));
        match result {
            Ok(Finished::Succeeded(_)) => {
                self.journal.end(&step.key, StepState::Succeeded, None);
                self.save().await?;
                self.progress.event(&Event::TeardownStepFinished {
                    resource: step.resource.clone(),
                    outcome: format!("{op}succeeded"),
                });
                Ok(())
            }
            Ok(Finished::Gone) => {
                self.journal.end(&step.key, StepState::Gone, None);
                self.save().await?;
                self.progress.event(&Event::TeardownStepFinished {
                    resource: step.resource.clone(),
                    outcome: format!("{op}done (gone)"),
                });
                Ok(())
            }
            Err(e) => self.fail(step, e).await,
        }
    }

    async fn fail(&mut self, step: &Step, e: exporter_aptible::Error) -> Result<(), TeardownError> {
        self.journal
            .end(&step.key, StepState::Failed, Some(e.to_string()));
        self.save().await?;
        Err(TeardownError::StepFailed {
            environment: self.environment().to_owned(),
            resource: step.resource.clone(),
            request: step.request.clone(),
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
