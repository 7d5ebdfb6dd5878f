//! Level `restore` of several archives, overlapped (issue 17): the fingerprint pass and the
//! drop of archive k run while archive k+1 is already being restored.
//!
//! Each archive's check stays one future ([`super::scratch::restore_one`]); at most
//! [`IN_FLIGHT`] of them run at once, started in manifest order, and [`Slots`] keep their
//! heavy steps apart: one restore at a time, in manifest order (each archive's [`Place`]
//! waits for the previous one's restore, so a large archive never holds back an earlier
//! one), one fingerprint pass at a time, and on an engine whose scratch database is the whole
//! server (Redis: [`EngineKind::one_scratch_at_a_time`]) one scratch database at a time. So a
//! scratch server holds at most two scratch databases of one verification, and memory is one
//! restore's plus one fingerprint pass's, each bounded.
//!
//! [`InOrder`] keeps the events as they were when the archives were checked one after the
//! other: each archive reports through its own [`Turn`], whose events are passed on at once
//! while it is the oldest archive not done, and held (a heartbeat replacing the previous
//! one) until then. The per-archive lines, the bars and the JSON event stream therefore show
//! the archives one at a time, in manifest order; the report is written in manifest order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard, Semaphore, SemaphorePermit, oneshot};

use crate::engines::EngineKind;
use crate::progress::{Event, Progress};

/// Archives checked at once: one restoring, one being fingerprinted and dropped.
pub const IN_FLIGHT: usize = 2;

/// What the archives checked at once take turns on (see the module docs). One per
/// verification: each archive takes its [`Place`] in manifest order.
#[derive(Debug)]
pub struct Slots {
    fingerprint: Semaphore,
    whole_server: Mutex<HashMap<EngineKind, Arc<AsyncMutex<()>>>>,
    /// The restore turn the next [`Place`] waits for: the previous place's.
    last: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Default for Slots {
    fn default() -> Self {
        Self {
            fingerprint: Semaphore::new(1),
            whole_server: Mutex::new(HashMap::new()),
            last: Mutex::new(None),
        }
    }
}

impl Slots {
    /// The next archive's place: its restore comes after the previous place's. Take the
    /// places in the order the archives are to be restored (a check alone takes the only
    /// one of a [`Slots::default`]).
    pub fn place(&self) -> Place<'_> {
        let (done, next) = oneshot::channel();
        let after = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(next);
        Place {
            slots: self,
            after,
            done: Some(done),
        }
    }
}

/// One archive's place among the checks running at once: its turn to restore (after the
/// previous archive's restore; held until [`Place::restored`], or until the place is dropped
/// — an archive that never restores lets the next one go), the fingerprint slot, and the
/// scratch server of an engine with one scratch database at a time.
#[derive(Debug)]
pub struct Place<'a> {
    slots: &'a Slots,
    after: Option<oneshot::Receiver<()>>,
    done: Option<oneshot::Sender<()>>,
}

impl Place<'_> {
    /// Wait until the previous archive's restore is over (done, failed, or never started).
    pub async fn restore_turn(&mut self) {
        if let Some(after) = self.after.take() {
            // An error is a dropped place: its archive restores nothing more either.
            let _ = after.await;
        }
    }

    /// This archive's restore is over: the next archive may restore.
    pub fn restored(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }

    /// Wait for the one fingerprint slot (first come, first served).
    pub async fn fingerprint(&self) -> SemaphorePermit<'_> {
        self.slots
            .fingerprint
            .acquire()
            .await
            .expect("the fingerprint slot is never closed")
    }

    /// For an engine whose scratch database is the whole server, wait until no other
    /// archive of that engine holds a scratch database (held until the guard is dropped,
    /// after the drop); `None` at once for the others.
    pub async fn scratch_server(&self, engine: EngineKind) -> Option<OwnedMutexGuard<()>> {
        if !engine.one_scratch_at_a_time() {
            return None;
        }
        let lock = self
            .slots
            .whole_server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(engine)
            .or_default()
            .clone();
        Some(lock.lock_owned().await)
    }
}

/// Passes the events of archives checked at once on in manifest order (see the module docs).
pub struct InOrder {
    inner: Arc<dyn Progress>,
    state: Mutex<Order>,
}

#[derive(Default)]
struct Order {
    /// The oldest archive not done: its events go out at once.
    head: usize,
    /// Events of later archives, by archive.
    held: BTreeMap<usize, Vec<Event>>,
    /// Later archives already done.
    done: BTreeSet<usize>,
}

impl InOrder {
    /// Events for `inner`, the first archive's turn first.
    #[must_use]
    pub fn new(inner: Arc<dyn Progress>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            state: Mutex::new(Order::default()),
        })
    }

    /// The observer of archive `index` (0 is the first one checked).
    #[must_use]
    pub fn turn(self: &Arc<Self>, index: usize) -> Arc<Turn> {
        Arc::new(Turn {
            order: self.clone(),
            index,
        })
    }

    fn state(&self) -> MutexGuard<'_, Order> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One archive's observer in an [`InOrder`]: call [`Turn::done`] after its last event.
pub struct Turn {
    order: Arc<InOrder>,
    index: usize,
}

impl Turn {
    /// This archive has sent its last event: the next archives' held events go out, up to
    /// the first one not done.
    pub fn done(&self) {
        let order = &self.order;
        // Events are passed on under the lock, so no later event overtakes a held one.
        let mut state = order.state();
        state.done.insert(self.index);
        loop {
            let head = state.head;
            if !state.done.remove(&head) {
                break;
            }
            state.head += 1;
            let head = state.head;
            for event in state.held.remove(&head).unwrap_or_default() {
                order.inner.event(&event);
            }
        }
    }
}

/// A heartbeat event, of which only the latest held one matters.
fn heartbeat(event: &Event) -> bool {
    matches!(
        event,
        Event::ScratchRestoreProgress { .. } | Event::ArchiveCheckProgress { .. }
    )
}

impl Progress for Turn {
    fn event(&self, event: &Event) {
        let order = &self.order;
        let mut state = order.state();
        if state.head == self.index {
            order.inner.event(event);
            return;
        }
        let held = state.held.entry(self.index).or_default();
        match held.last_mut() {
            Some(last) if heartbeat(event) && heartbeat(last) => *last = event.clone(),
            _ => held.push(event.clone()),
        }
    }

    fn heartbeat(&self) -> Option<std::time::Duration> {
        self.order.inner.heartbeat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl Progress for Log {
        fn event(&self, event: &Event) {
            let line = match event {
                Event::ScratchRestoreStarted { label, .. } => format!("started {label}"),
                Event::ScratchRestoreProgress {
                    label, bytes_read, ..
                } => format!("progress {label} {bytes_read}"),
                Event::ScratchRestoreChecked { label, .. } => format!("checked {label}"),
                other => format!("{other:?}"),
            };
            self.0.lock().unwrap().push(line);
        }
    }

    fn started(label: &str) -> Event {
        Event::ScratchRestoreStarted {
            label: label.to_owned(),
            server: "s".to_owned(),
        }
    }

    fn progress(label: &str, bytes_read: u64) -> Event {
        Event::ScratchRestoreProgress {
            label: label.to_owned(),
            bytes_read,
            total_bytes: None,
            seconds: 0.0,
        }
    }

    fn checked(label: &str) -> Event {
        Event::ScratchRestoreChecked {
            label: label.to_owned(),
            engine: "postgresql".to_owned(),
            ok: true,
            check: None,
            problems: Vec::new(),
        }
    }

    /// Archive b starts and reports while a is still at work, c (nothing to restore) is done
    /// before both: the events still read a, b, c, one archive at a time; of b's held
    /// heartbeats only the last goes out.
    #[test]
    fn events_of_later_archives_wait_for_the_earlier_ones() {
        let log = Arc::new(Log::default());
        let order = InOrder::new(log.clone());
        let (a, b, c) = (order.turn(0), order.turn(1), order.turn(2));
        a.event(&started("a"));
        b.event(&started("b"));
        b.event(&progress("b", 1));
        a.event(&progress("a", 5));
        b.event(&progress("b", 2));
        c.event(&checked("c"));
        c.done();
        assert_eq!(
            *log.0.lock().unwrap(),
            ["started a", "progress a 5"],
            "b and c wait for a"
        );
        a.event(&checked("a"));
        a.done();
        b.event(&progress("b", 3));
        b.event(&checked("b"));
        b.done();
        assert_eq!(
            *log.0.lock().unwrap(),
            [
                "started a",
                "progress a 5",
                "checked a",
                "started b",
                "progress b 2",
                "progress b 3",
                "checked b",
                "checked c",
            ]
        );
        // Nothing is held once everyone is done.
        assert!(order.state().held.is_empty());
        assert_eq!(order.state().head, 3);
    }

    #[tokio::test]
    async fn restores_take_turns_in_order_and_a_dropped_place_lets_the_next_go() {
        let slots = Slots::default();
        let (mut a, mut b, mut c) = (slots.place(), slots.place(), slots.place());
        a.restore_turn().await;
        {
            let b_turn = b.restore_turn();
            tokio::pin!(b_turn);
            assert!(
                futures::poll!(&mut b_turn).is_pending(),
                "b waits for a's restore"
            );
            a.restored();
            b_turn.await;
        }
        let c_turn = c.restore_turn();
        tokio::pin!(c_turn);
        assert!(
            futures::poll!(&mut c_turn).is_pending(),
            "c waits for b's restore"
        );
        // b never restores (its check ended early): dropping its place lets c go.
        drop(b);
        c_turn.await;
        drop(a);
    }

    #[tokio::test]
    async fn only_whole_server_engines_take_turns_on_their_scratch_server() {
        let slots = Slots::default();
        let (a, b) = (slots.place(), slots.place());
        assert!(a.scratch_server(EngineKind::Postgres).await.is_none());
        let first = a.scratch_server(EngineKind::Redis).await;
        assert!(first.is_some());
        let second = b.scratch_server(EngineKind::Redis);
        tokio::pin!(second);
        assert!(
            futures::poll!(&mut second).is_pending(),
            "a second Redis scratch waits for the first"
        );
        drop(first);
        assert!(second.await.is_some());
    }
}
