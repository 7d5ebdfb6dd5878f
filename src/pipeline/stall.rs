//! Stall detection (issue 16): a database whose stream moves no bytes for `--stall-timeout`
//! fails with an error naming the timeout, instead of holding the run forever (a tunnel that
//! stopped forwarding, a server that stopped sending, a destination that stopped accepting).
//!
//! The engine's [`Source`] is wrapped ([`Watched`]) so that every item of its body — data, or
//! an empty chunk an adapter sends to say it is alive — marks the dump as moving, and its
//! completion marks it finished. [`watch`] resolves once the dump has not moved for the
//! timeout; the dump path races it against the dump and drops the dump when it wins, which
//! cancels the server work and aborts the archive object (nothing appears under a final name).
//!
//! What counts: the whole time from the start of the database's work (its endpoint open)
//! until the engine reports completion — connecting, `preflight`, the snapshot, the stream,
//! and a body not pulled because the destination does not take the bytes (backpressure).
//! Committing the object after completion does not count: storage has its own timeouts and
//! retries, and a commit cut short could leave an object that appears after the database was
//! reported failed. The time a server takes before its first byte counts too (a Redis RDB
//! background save of a large data set): raise the timeout for such a server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use exporter_contract::{Dump, DumpOptions, EngineError, ServerInfo, Source, SourceCheck};
use futures::StreamExt as _;
use futures::future::BoxFuture;
use tokio::time::Instant;

/// How a dump is moving: shared by the wrapped source and the watchdog.
#[derive(Debug, Clone)]
pub struct Activity(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// When watching started (tokio's clock, so tests can pause it).
    start: Instant,
    /// Milliseconds after `start` of the last movement.
    last: AtomicU64,
    /// Payload bytes seen.
    bytes: AtomicU64,
    /// The engine reported completion (successful or not): the stream is over.
    done: AtomicBool,
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

impl Activity {
    /// Start watching now.
    #[must_use]
    pub fn new() -> Self {
        Self(Arc::new(Inner {
            start: Instant::now(),
            last: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            done: AtomicBool::new(false),
        }))
    }

    /// Something moved (`bytes` payload bytes, 0 for a sign of life).
    pub fn moved(&self, bytes: u64) {
        let now = u64::try_from(self.0.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last.fetch_max(now, Ordering::Relaxed);
        self.0.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The engine reported completion: nothing left to watch.
    pub fn finish(&self) {
        self.0.done.store(true, Ordering::Relaxed);
    }

    /// How long nothing has moved.
    #[must_use]
    pub fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.0.last.load(Ordering::Relaxed));
        self.0.start.elapsed().saturating_sub(last)
    }

    /// Payload bytes seen so far.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }

    fn finished(&self) -> bool {
        self.0.done.load(Ordering::Relaxed)
    }
}

/// A stalled dump: nothing moved for `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stalled {
    /// The timeout that ran out.
    pub timeout: Duration,
    /// Payload bytes that had moved before.
    pub bytes: u64,
}

impl Stalled {
    /// The failure's text, as the progress line and the manifest's `error` show it.
    #[must_use]
    pub fn message(&self) -> String {
        let t = format_timeout(self.timeout);
        format!(
            "stalled: no data moved for {t} (--stall-timeout {t}); stopped after {} payload bytes",
            self.bytes
        )
    }
}

/// `3s`, `10m`, `1h`, `90s`: a timeout as `--stall-timeout` takes it.
#[must_use]
pub fn format_timeout(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 || s == 0 {
        format!("{}ms", d.as_millis())
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// Resolve once `activity` has not moved for `timeout` (never after it finished).
///
/// # Cancel safety
///
/// Holds nothing: drop it any time.
pub async fn watch(activity: &Activity, timeout: Duration) -> Stalled {
    loop {
        if activity.finished() {
            return std::future::pending().await;
        }
        let idle = activity.idle();
        if idle >= timeout {
            return Stalled {
                timeout,
                bytes: activity.bytes(),
            };
        }
        // Wake at the earliest moment the timeout could run out, and at least every second
        // (to notice the end of the stream).
        tokio::time::sleep(timeout.saturating_sub(idle).min(Duration::from_secs(1))).await;
    }
}

/// A [`Source`] whose dump reports its movement to an [`Activity`].
pub struct Watched<'a> {
    inner: &'a dyn Source,
    activity: Activity,
}

impl<'a> Watched<'a> {
    /// Wrap `inner`.
    #[must_use]
    pub fn new(inner: &'a dyn Source, activity: Activity) -> Self {
        Self { inner, activity }
    }
}

impl Source for Watched<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn validate(&self) -> Result<(), EngineError> {
        self.inner.validate()
    }

    fn preflight(&self) -> BoxFuture<'_, Result<ServerInfo, EngineError>> {
        self.inner.preflight()
    }

    fn check(&self, options: DumpOptions) -> BoxFuture<'_, Result<SourceCheck, EngineError>> {
        self.inner.check(options)
    }

    fn check_and_hold(
        &self,
        options: DumpOptions,
        keep_for: std::time::Duration,
    ) -> BoxFuture<'_, Result<SourceCheck, EngineError>> {
        self.inner.check_and_hold(options, keep_for)
    }

    fn dump(&self, options: DumpOptions) -> BoxFuture<'_, Result<Dump, EngineError>> {
        Box::pin(async move {
            let dump = self.inner.dump(options).await?;
            let (body_activity, done) = (self.activity.clone(), self.activity.clone());
            body_activity.moved(0);
            Ok(Dump {
                meta: dump.meta,
                body: Box::pin(dump.body.inspect(move |item| {
                    body_activity.moved(item.as_ref().map_or(0, |b| b.len() as u64));
                })),
                completion: Box::pin(async move {
                    let summary = dump.completion.await;
                    done.finish();
                    summary
                }),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_read_as_written() {
        assert_eq!(format_timeout(Duration::from_secs(3)), "3s");
        assert_eq!(format_timeout(Duration::from_secs(600)), "10m");
        assert_eq!(format_timeout(Duration::from_secs(90)), "90s");
        assert_eq!(format_timeout(Duration::from_secs(7200)), "2h");
        assert_eq!(format_timeout(Duration::from_millis(1500)), "1500ms");
    }

    #[tokio::test]
    async fn a_dump_that_stops_moving_stalls_and_a_finished_one_never_does() {
        let activity = Activity::new();
        let timeout = Duration::from_millis(400);
        // Moving every 100 ms: no stall within 1.5 s.
        let moving = async {
            for _ in 0..15 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                activity.moved(100);
            }
        };
        tokio::select! {
            s = watch(&activity, timeout) => panic!("stalled while moving: {s:?}"),
            () = moving => {}
        }
        // Then nothing: stalled after the timeout, with the bytes seen.
        let before = Instant::now();
        let stalled = watch(&activity, timeout).await;
        let waited = before.elapsed();
        assert_eq!(stalled.bytes, 1500);
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
        assert_eq!(
            stalled.message(),
            "stalled: no data moved for 400ms (--stall-timeout 400ms); stopped after 1500 payload bytes"
        );
        // Finished: never.
        activity.finish();
        let r = tokio::time::timeout(Duration::from_secs(1), watch(&activity, timeout)).await;
        assert!(r.is_err(), "a finished dump must not stall");
    }
}
