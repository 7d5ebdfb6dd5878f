//! Dump starts kept between the check before a dump and the dump itself
//! ([`exporter_contract::Source::check_and_hold`]).
//!
//! The check before a dump plans the whole script in a snapshot of its own; the dump then did
//! the same catalog reads again in its snapshot. On a schema-heavy database that second read
//! is most of the check's cost (PostgreSQL's regression database: about 0.25 s of a 0.5 s
//! dump, BENCHMARKS.md). So the check of a database whose dump starts next does the dump's
//! real start — connect, `LOCK TABLE … IN ACCESS SHARE MODE`, the snapshot, the stability
//! check, the catalog plan, the size estimate ([`crate::start`]) — and keeps it here; the
//! dump of the same endpoint with the same `ownership` takes it and streams from it. The
//! consistency is the dump's own: the locks are taken before the snapshot, and whatever the
//! plan read is read in the snapshot the rows are copied in.
//!
//! A kept start holds one connection idle in its transaction, with the tables' locks: it is
//! released (the connection closed, the locks with it) when no dump claims it within the
//! time the core allows, and a dump that finds its kept start dead — the connection closed
//! by the server, an administrator's `pg_terminate_backend` — starts afresh. Unlike a
//! terminated dump, which is never retried (`open_snapshot`: someone stopped it on purpose),
//! a kept start had produced nothing and sat idle in its transaction, which is what session
//! reapers end; a fresh start is what the dump would have done without the check.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use exporter_contract::{Endpoint, TlsInfo};

use crate::catalog::Plan;
use crate::connect::Conn;

/// A dump's start: the snapshot's connection (in its repeatable-read transaction, every table
/// locked) and what was read in it.
pub(crate) struct Started {
    /// The snapshot's connection.
    pub conn: Conn,
    /// `server_version`, as [`crate::server_version`] reads it.
    pub server_version: String,
    /// The catalog plan read in the snapshot.
    pub plan: Plan,
    /// The size estimate ([`crate::catalog::size_hint`]).
    pub size_hint: Option<u64>,
}

/// One kept start and what it was started for.
struct Kept {
    id: u64,
    endpoint: Endpoint,
    ownership: bool,
    started: Started,
}

static KEPT: Mutex<Vec<Kept>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Keep `started` for the next [`take`] of `endpoint` with `ownership`, for at most
/// `keep_for`; then it is dropped, which closes its connection and releases its locks.
///
/// Must run inside a tokio runtime (the release is a spawned timer).
pub(crate) fn keep(endpoint: &Endpoint, ownership: bool, started: Started, keep_for: Duration) {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    lock().push(Kept {
        id,
        endpoint: endpoint.clone(),
        ownership,
        started,
    });
    tokio::spawn(async move {
        tokio::time::sleep(keep_for).await;
        let expired = {
            let mut kept = lock();
            kept.iter()
                .position(|k| k.id == id)
                .map(|i| kept.swap_remove(i))
        };
        if let Some(expired) = expired {
            tracing::debug!(
                endpoint = %expired.endpoint,
                "no dump claimed the start kept by the check; released"
            );
        }
    });
}

/// The start kept for `endpoint` with `ownership`, if any (the oldest first).
pub(crate) fn take(endpoint: &Endpoint, ownership: bool) -> Option<Started> {
    let mut kept = lock();
    let i = kept
        .iter()
        .position(|k| k.ownership == ownership && k.endpoint == *endpoint)?;
    Some(kept.remove(i).started)
}

/// The server facts of a start kept for `endpoint` (any options): what
/// [`exporter_contract::Source::preflight`] would read, proven by the check that kept it.
/// Lets the dump's preflight leave the server alone — one session fewer, which matters
/// where the role is allowed a single one.
pub(crate) fn server_info(endpoint: &Endpoint) -> Option<(String, TlsInfo)> {
    lock()
        .iter()
        .find(|k| k.endpoint == *endpoint)
        .map(|k| (k.started.server_version.clone(), k.started.conn.tls.clone()))
}

/// The list, also after a panic while it was held (it holds no invariant a panic breaks).
fn lock() -> std::sync::MutexGuard<'static, Vec<Kept>> {
    KEPT.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
