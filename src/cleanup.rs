//! One cleanup scope for everything a command must undo when it does not finish: an
//! uncommitted run (removed while nothing in it is finished; kept for `dump --resume` once
//! something is), an unfinished S3 multipart upload, a scratch database, a platform tunnel,
//! a database restored from a backup (later: the teardown journal).
//!
//! Whoever creates such a thing registers it with the command's [`Cleanup`] and keeps the
//! returned [`Guard`]:
//!
//! - when the work succeeded and nothing is left to undo, [`Guard::disarm`];
//! - when the owner undoes it itself (a scratch database dropped after its check, an upload
//!   aborted by its writer), [`Guard::run`], or do it and then disarm;
//! - when the owner goes away without either — an error returned early, a panic, or the
//!   command's future dropped by Ctrl-C or SIGTERM — the guard's `Drop` marks the entry as
//!   abandoned, and [`Cleanup::close`] runs its action.
//!
//! The command layer closes the scope once, after the command ended in any way (success,
//! error, signal, panic). Closing runs the abandoned actions at once, newest first (a scratch
//! database before the run it belongs to), then waits, up to a grace period, for owners still
//! at work on other threads (an S3 writer aborting its upload on a blocking thread after the
//! future that fed it was dropped) — the guarantees the three mechanisms it replaces gave:
//! the uncommitted-run guard's removal at the moment of the interruption, `storage::settle`'s
//! wait for open writers, and the scratch guard's drop.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use serde::Serialize;
use tokio::sync::Notify;

/// What a registered cleanup undoes, as shown in reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Task {
    /// A run directory or prefix without its manifest: removed (FORMAT.md: a run without
    /// `manifest.json` is not a run).
    UncommittedRun {
        /// `<destination>/<run-id>`.
        run: String,
    },
    /// A run without its manifest in which some databases are finished (archive and
    /// completion record): kept, and named, so `dump --resume` can continue it (FORMAT.md,
    /// "Unfinished runs"). Nothing is undone.
    UnfinishedRun {
        /// `<destination>/<run-id>`.
        run: String,
        /// The databases finished in it.
        done: Vec<String>,
    },
    /// An S3 multipart upload that was not completed: aborted.
    Upload {
        /// `s3://bucket/key`.
        object: String,
    },
    /// A scratch database of `verify --level restore`: dropped.
    ScratchDatabase {
        /// Its name.
        name: String,
        /// The scratch server (redacted).
        server: String,
    },
    /// A platform tunnel (`ssh`): stopped with SIGHUP, then SIGKILL; the scope waits until
    /// `ssh` has exited.
    Tunnel {
        /// The database's handle.
        database: String,
    },
    /// A database restored from a backup for a dump that did not finish: left in place (the
    /// next `dump --all --from-backup` finds and reuses it), and named.
    RestoredDatabase {
        /// Its handle.
        handle: String,
    },
}

/// How a cleanup ended when the scope closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The scope ran the action and it succeeded.
    Done,
    /// The scope ran the action and it failed.
    Failed(String),
    /// The owner was still at work when the grace period ended; nothing is known.
    Unfinished,
}

/// A task and how it ended, from [`Cleanup::close`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// What was to be undone.
    pub task: Task,
    /// How it ended.
    pub outcome: Outcome,
}

/// The undo action of a task: runs once, on the command's runtime.
pub type Action = Box<dyn FnOnce() -> BoxFuture<'static, Result<(), String>> + Send>;

/// Who is responsible for an entry right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// The guard exists; its owner may still disarm or run it.
    Working,
    /// The guard was dropped without disarming or running: the scope runs the action.
    Abandoned,
}

/// An action the owner started with [`Guard::run`]: spawned, so that it finishes even when
/// the owner's future is dropped halfway (Ctrl-C during a scratch database's `DROP`), and
/// shared, so that the scope can wait for it then.
type Running = Shared<BoxFuture<'static, Result<(), String>>>;

struct Entry {
    task: Task,
    action: Option<Action>,
    /// Set while the owner runs the action (see [`Running`]).
    running: Option<Running>,
    owner: Owner,
}

#[derive(Default)]
struct Inner {
    entries: Mutex<BTreeMap<u64, Entry>>,
    next: AtomicU64,
    changed: Notify,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The cleanup scope of one command. Cheap to clone (all clones share the scope).
#[derive(Clone, Default)]
pub struct Cleanup {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cleanup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tasks: Vec<Task> = self.inner.lock().values().map(|e| e.task.clone()).collect();
        f.debug_struct("Cleanup").field("pending", &tasks).finish()
    }
}

impl Cleanup {
    /// An empty scope.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `task`, undone by `action` unless the returned guard is disarmed.
    pub fn register(
        &self,
        task: Task,
        action: impl FnOnce() -> BoxFuture<'static, Result<(), String>> + Send + 'static,
    ) -> Guard {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.inner.lock().insert(
            id,
            Entry {
                task,
                action: Some(Box::new(action)),
                running: None,
                owner: Owner::Working,
            },
        );
        Guard {
            inner: self.inner.clone(),
            id,
            settled: false,
        }
    }

    /// Tasks registered and not yet settled.
    #[must_use]
    pub fn pending(&self) -> Vec<Task> {
        self.inner.lock().values().map(|e| e.task.clone()).collect()
    }

    /// Settle every task: run the abandoned actions now, newest first; then wait up to
    /// `grace` for owners still at work (running what they abandon meanwhile). Returns what
    /// the scope itself did or could not finish (tasks their owners settled are not
    /// reported).
    ///
    /// Abandoned tasks run first, without waiting for the owners on other threads: after
    /// Ctrl-C an uncommitted run is removed — and its open uploads aborted on the server — at
    /// once, so a writer still sending parts fails fast instead of finishing its upload.
    ///
    /// # Cancel safety
    ///
    /// Meant to run once, to completion, after the command's future ended; actions taken out
    /// of the scope before a cancellation are not run again.
    pub async fn close(&self, grace: Duration) -> Vec<Report> {
        let deadline = tokio::time::Instant::now() + grace;
        let mut reports = Vec::new();
        loop {
            reports.extend(self.run_abandoned().await);
            let working = self
                .inner
                .lock()
                .values()
                .any(|e| e.owner == Owner::Working);
            if !working {
                break;
            }
            if tokio::time::timeout_at(deadline, self.inner.changed.notified())
                .await
                .is_err()
            {
                // Out of time: run what was abandoned last, report what owners are still
                // doing, and leave it to them.
                reports.extend(self.run_abandoned().await);
                let entries = self.inner.lock();
                reports.extend(
                    entries
                        .values()
                        .filter(|e| e.owner == Owner::Working)
                        .map(|e| Report {
                            task: e.task.clone(),
                            outcome: Outcome::Unfinished,
                        }),
                );
                break;
            }
        }
        reports
    }

    /// Take the abandoned entries out of the scope and run their actions, newest first.
    async fn run_abandoned(&self) -> Vec<Report> {
        let batch: Vec<(Task, Option<Action>, Option<Running>)> = {
            let mut entries = self.inner.lock();
            let ids: Vec<u64> = entries
                .iter()
                .filter(|(_, e)| e.owner == Owner::Abandoned)
                .map(|(id, _)| *id)
                .rev()
                .collect();
            ids.into_iter()
                .filter_map(|id| entries.remove(&id))
                .map(|e| (e.task, e.action, e.running))
                .collect()
        };
        let mut reports = Vec::with_capacity(batch.len());
        for (task, action, running) in batch {
            let result = match (action, running) {
                (Some(action), _) => action().await,
                // The owner started it and went away: it goes on, spawned; wait for it.
                (None, Some(running)) => running.await,
                (None, None) => Ok(()),
            };
            let outcome = match result {
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::Failed(e),
            };
            reports.push(Report { task, outcome });
        }
        reports
    }
}

/// The owner's handle on a registered task; see the module docs.
#[must_use = "dropping the guard abandons the task: the scope undoes it when it closes"]
pub struct Guard {
    inner: Arc<Inner>,
    id: u64,
    settled: bool,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("id", &self.id)
            .field("settled", &self.settled)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// Nothing is left to undo (the run is committed, the upload completed, or the owner
    /// undid it itself).
    pub fn disarm(mut self) {
        self.settle();
    }

    /// Undo the task now, as its owner (a scratch database dropped after its check). The
    /// scope waits for this while it runs and does not run it again.
    ///
    /// # Errors
    ///
    /// The action's error text.
    ///
    /// The action runs as a spawned task: if this future is dropped before it ends (the
    /// command interrupted), the guard is abandoned and [`Cleanup::close`] waits for the
    /// action already under way instead of counting it as done.
    pub async fn run(mut self) -> Result<(), String> {
        let running = {
            let mut entries = self.inner.lock();
            entries.get_mut(&self.id).and_then(|e| {
                let action = e.action.take()?;
                let running = tokio::spawn(action())
                    .map(|joined| {
                        joined.unwrap_or_else(|e| Err(format!("the cleanup task failed: {e}")))
                    })
                    .boxed()
                    .shared();
                e.running = Some(running.clone());
                Some(running)
            })
        };
        let result = match running {
            Some(running) => running.await,
            // The scope ran it already (its grace period ended while we were at work).
            None => Ok(()),
        };
        self.settle();
        result
    }

    fn settle(&mut self) {
        if !self.settled {
            self.settled = true;
            self.inner.lock().remove(&self.id);
            self.inner.changed.notify_one();
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.settled {
            if let Some(entry) = self.inner.lock().get_mut(&self.id) {
                entry.owner = Owner::Abandoned;
            }
            self.inner.changed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counting(
        counter: &Arc<AtomicUsize>,
    ) -> impl FnOnce() -> BoxFuture<'static, Result<(), String>> + Send + 'static {
        let counter = counter.clone();
        move || {
            Box::pin(async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        }
    }

    fn run_task(name: &str) -> Task {
        Task::UncommittedRun { run: name.into() }
    }

    #[tokio::test]
    async fn disarmed_and_owner_run_tasks_are_not_run_again() {
        let scope = Cleanup::new();
        let ran = Arc::new(AtomicUsize::new(0));
        scope.register(run_task("a"), counting(&ran)).disarm();
        scope
            .register(run_task("b"), counting(&ran))
            .run()
            .await
            .unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1, "only the owner ran b");
        assert!(scope.close(Duration::from_secs(1)).await.is_empty());
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn abandoned_tasks_run_at_close_newest_first() {
        let scope = Cleanup::new();
        let order = Arc::new(Mutex::new(Vec::new()));
        for name in ["run", "scratch"] {
            let order = order.clone();
            let guard = scope.register(run_task(name), move || {
                Box::pin(async move {
                    order.lock().unwrap().push(name);
                    if name == "run" {
                        Err("disk gone".to_owned())
                    } else {
                        Ok(())
                    }
                })
            });
            drop(guard);
        }
        let reports = scope.close(Duration::from_secs(1)).await;
        assert_eq!(*order.lock().unwrap(), vec!["scratch", "run"]);
        assert_eq!(reports[0].outcome, Outcome::Done);
        assert_eq!(reports[1].outcome, Outcome::Failed("disk gone".into()));
        assert!(scope.pending().is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn close_waits_for_owners_at_work_then_reports_the_rest() {
        let scope = Cleanup::new();
        let ran = Arc::new(AtomicUsize::new(0));
        // An owner on another thread that settles its task itself after a while.
        let guard = scope.register(run_task("upload"), counting(&ran));
        let worker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            guard.disarm();
        });
        let abandoned = scope.register(run_task("run"), counting(&ran));
        drop(abandoned);
        let reports = scope.close(Duration::from_secs(10)).await;
        worker.join().unwrap();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].task, run_task("run"));
        assert_eq!(ran.load(Ordering::SeqCst), 1);

        // An owner that never finishes: reported as unfinished at the deadline, not run.
        let stuck = scope.register(run_task("stuck"), counting(&ran));
        let reports = scope.close(Duration::from_millis(50)).await;
        assert_eq!(
            reports,
            vec![Report {
                task: run_task("stuck"),
                outcome: Outcome::Unfinished
            }]
        );
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        stuck.disarm();
    }

    /// The scratch database of an interrupted verification was left behind when Ctrl-C came
    /// while its owner was dropping it: the owner's `run` future was dropped, the half-done
    /// `DROP` with it, and the scope counted the task as done. Now the action goes on and the
    /// scope waits for it.
    #[tokio::test(flavor = "multi_thread")]
    async fn an_action_the_owner_started_finishes_when_the_owner_is_dropped() {
        let scope = Cleanup::new();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let finished = Arc::new(AtomicUsize::new(0));
        let guard = scope.register(run_task("scratch"), {
            let finished = finished.clone();
            move || {
                Box::pin(async move {
                    let _ = started_tx.send(());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    finished.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
            }
        });
        let owner = tokio::spawn(guard.run());
        started_rx.await.expect("the action started");
        owner.abort();
        assert!(owner.await.unwrap_err().is_cancelled());
        assert_eq!(finished.load(Ordering::SeqCst), 0, "still running");
        let reports = scope.close(Duration::from_secs(5)).await;
        assert_eq!(
            finished.load(Ordering::SeqCst),
            1,
            "the scope waited for it"
        );
        assert_eq!(
            reports,
            vec![Report {
                task: run_task("scratch"),
                outcome: Outcome::Done
            }]
        );
    }
}
