//! Verification while a run is written: `exporter dump --verify LEVEL` (issue 16, "dump and
//! prove in one command"), so that a dump ends with a proven run without a second step.
//!
//! The checks are `verify`'s own, on the same code path: [`prepare`] does what `verify` does
//! before its first restore ([`scratch::require_scratch`], [`scratch::check_scratch_servers`]),
//! for the databases about to be dumped, before the first dump; [`dump`] runs the dump path
//! and, as each archive is committed ([`Committed`]), checks it ([`files::check_archive`],
//! then at level `restore` [`scratch::restore_one`]) while the next databases are dumped, on
//! its own task, so the dumps keep their pace — overlapped as `verify` does it
//! ([`super::overlap`]: up to two archives at once, one restore and one fingerprint pass at a
//! time, events in the order the archives were committed); after the manifest
//! is written, the run's own files are checked ([`files::run_problems`], against the
//! manifest read back from storage, whose SHA-256 the record holds) and one `verify.json`
//! is written for the whole run: the record `exporter verify --level LEVEL` would write,
//! identical in shape ([`VerifyReport`]).
//!
//! Nothing here prints: the checks report [`Event`]s as `verify`'s do.

use std::collections::BTreeMap;
use std::sync::Arc;

use exporter_contract::{FINGERPRINT_ALGORITHM, PayloadFormat};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::overlap::{IN_FLIGHT, InOrder, Place, Slots};
use super::{
    DatabaseOutcome, Level, Verification, VerifyContext, VerifyError, VerifyReport, files,
    only_unavailable, record, scratch,
};
use crate::archive::{DatabaseEntry, DatabaseStatus};
use crate::blocking::{self, ThreadError};
use crate::cleanup::Cleanup;
use crate::endpoint::EndpointProvider;
use crate::engines::{EngineKind, EngineOptions};
use crate::pipeline::{self, Committed, DumpContext, DumpError, DumpReport};
use crate::progress::{Event, Progress};
use crate::run::{self, ResolvedRun};
use crate::settings::{DatabaseTarget, DumpPlan, VerifyPlan};
use crate::storage::Storage;

/// What the verification beside a dump needs, owned: it runs on a task of its own.
#[derive(Clone)]
pub struct AlongsideContext {
    /// Turns `--scratch` servers into live endpoints (a URL is its own endpoint, also when
    /// the dump's databases come through platform tunnels).
    pub endpoints: Arc<dyn EndpointProvider>,
    /// The command's cleanup scope: scratch databases are registered there.
    pub cleanup: Cleanup,
    /// Receives the verification's events ([`Event::VerifyStarted`], [`Event::ArchiveChecked`],
    /// [`Event::ScratchRestoreChecked`], …).
    pub progress: Arc<dyn Progress>,
}

impl AlongsideContext {
    /// The [`VerifyContext`] of `verify`'s functions, borrowing this one.
    fn verify_context(&self, storage: Arc<dyn Storage>) -> VerifyContext<'_> {
        VerifyContext {
            storage,
            endpoints: self.endpoints.as_ref(),
            cleanup: &self.cleanup,
            progress: self.progress.clone(),
        }
    }
}

/// A committed run and its verification.
#[derive(Debug)]
pub struct Proven {
    /// The run, as [`pipeline::dump()`] committed it (possibly `partial`).
    pub dump: DumpReport,
    /// The verification of the run, recorded as its `verify.json` unless only scratch
    /// databases could not be created ([`Verification::check`] says whether it passed); `Err`
    /// when it could not be completed or recorded.
    pub verification: Result<Verification, VerifyError>,
}

/// Before the first dump, at level `restore`: every engine of `databases` has a `--scratch`
/// server, and every such server can serve (reachable; a Redis one empty) — what `verify`
/// checks before its first restore. Other levels need nothing.
///
/// `databases` are the plan's, after the platform's inventory step when there is one;
/// databases whose archive will be an RDB file need no scratch server (settings refuse
/// `--verify restore` with `--redis-format rdb`).
///
/// # Errors
///
/// [`VerifyError::MissingScratch`] naming each engine without a server and its databases;
/// [`VerifyError::ScratchRefused`] naming the server that cannot serve.
pub async fn prepare(
    plan: &VerifyPlan,
    databases: &[DatabaseTarget],
    engine_options: EngineOptions,
    storage: Arc<dyn Storage>,
    cx: &AlongsideContext,
) -> Result<(), VerifyError> {
    if plan.level != Level::Restore {
        return Ok(());
    }
    let restorable: Vec<(EngineKind, &str)> = databases
        .iter()
        .filter(|d| d.engine().format(engine_options) != PayloadFormat::Rdb)
        .map(|d| (d.engine(), d.name()))
        .collect();
    scratch::require_scratch(plan, restorable.iter().copied())?;
    let engines: Vec<EngineKind> = restorable.iter().map(|(e, _)| *e).collect();
    scratch::check_scratch_servers(plan, &engines, &cx.verify_context(storage)).await
}

/// Dump `plan` into a new run ([`pipeline::dump()`]) and verify it as `verify` (the plan)
/// says: each archive as soon as it is committed, one at a time beside the dumps still
/// running, then the run's own files once the manifest is written; the result is recorded
/// as the run's `verify.json` (see the module docs). Call [`prepare`] first.
///
/// # Errors
///
/// [`DumpError`] as [`pipeline::dump()`]: then no run was committed, and nothing is
/// recorded. A committed run is returned with its verification ([`Proven`]).
///
/// # Cancel safety
///
/// Dropping the future cancels the dump and the verification; the uncommitted run and every
/// scratch database are removed when the cleanup scope closes; nothing is recorded.
pub async fn dump(
    plan: &DumpPlan,
    verify: &VerifyPlan,
    mut dump_cx: DumpContext<'_>,
    cx: AlongsideContext,
) -> Result<Proven, DumpError> {
    let storage = dump_cx.storage.clone();
    let (committed, news) = mpsc::unbounded_channel();
    dump_cx.committed = Some(committed);
    let follower = AbortOnDrop(tokio::spawn(follow(
        verify.clone(),
        plan.databases.len() + plan.skipped.len(),
        storage.clone(),
        news,
        cx.clone(),
    )));
    let dumped = pipeline::dump(plan, &dump_cx).await;
    // The last sender: the follower ends once it has checked what it was told of.
    drop(dump_cx);
    let report = dumped?;
    let verification = match follower.finish().await {
        Ok(found) => finish(verify, &report, found, storage, &cx).await,
        Err(e) => Err(e.into()),
    };
    Ok(Proven {
        dump: report,
        verification,
    })
}

/// What the follower found while the run was written.
#[derive(Default)]
struct Followed {
    /// By database name: the entry checked, and its outcome.
    outcomes: BTreeMap<String, (DatabaseEntry, DatabaseOutcome)>,
    /// Databases whose scratch database could not be created.
    unavailable: scratch::Unavailable,
    /// [`Event::VerifyStarted`] was reported.
    started: bool,
}

/// Check each archive the dump reports as committed, in the order they come, until the dump
/// is done (the channel closes): up to [`IN_FLIGHT`] at once, sharing [`Slots`], their events
/// in that order ([`InOrder`]).
async fn follow(
    plan: VerifyPlan,
    archives: usize,
    storage: Arc<dyn Storage>,
    mut news: mpsc::UnboundedReceiver<Committed>,
    cx: AlongsideContext,
) -> Result<Followed, ThreadError> {
    let vcx = cx.verify_context(storage.clone());
    let slots = Slots::default();
    let order = InOrder::new(vcx.progress.clone());
    let mut followed = Followed::default();
    let mut checks = futures::stream::FuturesOrdered::new();
    let (mut committed, mut open) = (0usize, true);
    loop {
        tokio::select! {
            news = news.recv(), if open && checks.len() < IN_FLIGHT => {
                let Some(Committed { run_id, entry }) = news else {
                    open = false;
                    continue;
                };
                let run = ResolvedRun {
                    storage: storage.clone(),
                    id: run_id,
                };
                announce(
                    &plan,
                    &run,
                    archives,
                    &mut followed.started,
                    vcx.progress.as_ref(),
                );
                let turn = order.turn(committed);
                committed += 1;
                let cx = VerifyContext {
                    storage: vcx.storage.clone(),
                    endpoints: vcx.endpoints,
                    cleanup: vcx.cleanup,
                    progress: turn.clone(),
                };
                // Taken here, in the order the archives were committed.
                let (plan, place) = (&plan, slots.place());
                checks.push_back(async move {
                    let mut unavailable = scratch::Unavailable::default();
                    let outcome = check_one(plan, &run, &entry, &cx, &mut unavailable, place).await;
                    turn.done();
                    outcome.map(|outcome| (entry, outcome, unavailable))
                });
            }
            Some(checked) = futures::StreamExt::next(&mut checks) => {
                let (entry, outcome, unavailable) = checked?;
                followed.unavailable.merge(unavailable);
                followed
                    .outcomes
                    .insert(entry.name.clone(), (entry, outcome));
            }
            else => break,
        }
    }
    Ok(followed)
}

/// Report [`Event::VerifyStarted`] once (`announced` says whether it was); `archives`: the
/// entries the run's manifest will hold.
fn announce(
    plan: &VerifyPlan,
    run: &ResolvedRun,
    archives: usize,
    announced: &mut bool,
    progress: &dyn Progress,
) {
    if !*announced {
        *announced = true;
        progress.event(&Event::VerifyStarted {
            run_id: run.id.clone(),
            level: plan.level,
            location: run.location(),
            archives,
        });
    }
}

/// One manifest entry at the plan's level: the archive read back, then (level `restore`)
/// restored into a scratch database and compared — `verify`'s two steps for one database,
/// in its `place` among the checks running at the same time.
async fn check_one(
    plan: &VerifyPlan,
    run: &ResolvedRun,
    entry: &DatabaseEntry,
    cx: &VerifyContext<'_>,
    unavailable: &mut scratch::Unavailable,
    place: Place<'_>,
) -> Result<DatabaseOutcome, ThreadError> {
    let mut outcome = {
        let (run, entry, level, progress) =
            (run.clone(), entry.clone(), plan.level, cx.progress.clone());
        blocking::run("the verification thread", move || {
            files::check_archive(&run, &entry, level, &progress)
        })
        .await?
    };
    if plan.level == Level::Restore {
        // The run is being written by this build: its manifest's algorithm is this one.
        scratch::restore_one(
            plan,
            run,
            FINGERPRINT_ALGORITHM,
            entry,
            &mut outcome,
            cx,
            unavailable,
            place,
        )
        .await;
    }
    Ok(outcome)
}

/// After the manifest: read it back, check the run's own files against it, take each
/// database's outcome from the follower (checking again any archive the manifest describes
/// otherwise than the entry that was checked, and the entries that have no archive), and
/// record the report as `verify.json` — unless the only failures are scratch databases that
/// could not be created, as `verify` does.
async fn finish(
    plan: &VerifyPlan,
    dumped: &DumpReport,
    followed: Followed,
    storage: Arc<dyn Storage>,
    cx: &AlongsideContext,
) -> Result<Verification, VerifyError> {
    let vcx = cx.verify_context(storage.clone());
    let progress = vcx.progress.clone();
    let run = ResolvedRun {
        storage,
        id: dumped.run_id.clone(),
    };
    let Followed {
        mut outcomes,
        mut unavailable,
        mut started,
    } = followed;
    announce(
        plan,
        &run,
        dumped.manifest.databases.len(),
        &mut started,
        progress.as_ref(),
    );
    let loaded = {
        let run = run.clone();
        blocking::run("the verification thread", move || {
            let loaded = run::load_manifest_with_digest(&run);
            let problems = loaded
                .as_ref()
                .ok()
                .map(|(manifest, _)| files::run_problems(&run, manifest));
            (loaded, problems)
        })
        .await?
    };
    let mut report = VerifyReport::new(&run.id, plan.level);
    let source = match loaded {
        (Err(e), _) => {
            files::add_problems(&mut report, vec![e.problem()], progress.as_ref());
            None
        }
        (Ok((manifest, digest)), problems) => {
            report.manifest_sha256 = Some(digest);
            files::add_problems(&mut report, problems.unwrap_or_default(), progress.as_ref());
            for db in &manifest.databases {
                let outcome = match outcomes.remove(&db.name) {
                    Some((checked, outcome)) if same_entry(&checked, db) => outcome,
                    _ => {
                        let alone = Slots::default();
                        check_one(plan, &run, db, &vcx, &mut unavailable, alone.place()).await?
                    }
                };
                report.databases.push(outcome);
            }
            Some(manifest.source)
        }
    };
    report.finish();
    if !only_unavailable(&report, &unavailable) {
        record(&run, &report).await?;
    }
    Ok(Verification {
        report,
        scratch_unavailable: unavailable,
        source,
        // A new run has no earlier record.
        kept: None,
    })
}

/// Whether the entry the follower checked is the one the manifest, as read back, holds (the
/// comparison of their serialized forms: the manifest's text is what a reader gets).
fn same_entry(checked: &DatabaseEntry, stored: &DatabaseEntry) -> bool {
    checked.status == DatabaseStatus::Ok
        && serde_json::to_value(checked).ok() == serde_json::to_value(stored).ok()
}

/// The follower's task, aborted when dropped (the dump failed, or the command was
/// cancelled): its scratch database, if any, is then dropped by the cleanup scope.
struct AbortOnDrop(JoinHandle<Result<Followed, ThreadError>>);

impl AbortOnDrop {
    /// Wait for the follower to end.
    async fn finish(mut self) -> Result<Followed, ThreadError> {
        let joined = (&mut self.0).await;
        match joined {
            Ok(followed) => followed,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(ThreadError::new("the verification task", e)),
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(sha256: &str, status: &str) -> DatabaseEntry {
        serde_json::from_value(serde_json::json!({
            "name": "billing", "engine": "postgresql", "endpoint": "postgres://u@db/billing",
            "status": status, "file": "billing.sql.zst", "sha256": sha256,
            "started_at": "2026-12-02T10:00:00.123456789Z",
            "finished_at": "2026-12-02T10:00:01Z",
        }))
        .unwrap()
    }

    /// An outcome is reused only for the entry the manifest holds; the timestamps' precision
    /// in the manifest's text does not count as a difference.
    #[test]
    fn outcomes_are_reused_only_for_the_same_entry() {
        let checked = entry("aa", "ok");
        let read_back: DatabaseEntry =
            serde_json::from_slice(&serde_json::to_vec(&checked).unwrap()).unwrap();
        assert!(same_entry(&checked, &read_back));
        assert!(!same_entry(&checked, &entry("bb", "ok")));
        assert!(!same_entry(&entry("aa", "failed"), &entry("aa", "failed")));
    }
}
