//! Where runs are stored: a small blocking interface, with a local-directory backend and an
//! S3 backend ([`s3`]).
//!
//! The pipeline writes through [`ObjectWriter`] from a blocking thread (compression runs there
//! anyway), so the interface is synchronous. Invariants every backend keeps (FORMAT.md):
//! an object is written once; it becomes visible under its final name only on
//! [`ObjectWriter::commit`]; an aborted or dropped writer leaves nothing under the final name.

pub mod local;
pub mod s3;

use std::io::{self, Read, Write};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

pub use local::LocalStorage;

/// An object being written. Bytes go in with [`Write`]; nothing is visible under the final name
/// until [`ObjectWriter::commit`] returns `Ok`. Dropping an uncommitted writer aborts it.
pub trait ObjectWriter: Write + Send {
    /// Make the object durable and visible under its final name.
    ///
    /// # Errors
    ///
    /// I/O errors naming the path; the temporary data is removed on failure.
    fn commit(self: Box<Self>) -> io::Result<()>;

    /// Discard everything written. Best effort; never fails loudly.
    fn abort(self: Box<Self>);

    /// The expected size of the object in bytes, from the engine's estimate
    /// (`DumpMeta::size_hint`), given before the first write. Backends that must fix a part
    /// size up front (S3) use it; the default ignores it.
    fn set_size_hint(&mut self, bytes: u64) {
        let _ = bytes;
    }
}

/// A place that holds runs: `<root>/<run-id>/<object>`.
pub trait Storage: Send + Sync {
    /// Where this is, for messages (a path or URL, never a secret).
    fn describe(&self) -> String;

    /// Create the run directory `run_id`, or `run_id-N` if that exists. Returns the id used.
    ///
    /// # Errors
    ///
    /// I/O errors naming the path (destination not writable, not a directory, …).
    fn create_run(&self, run_id: &str) -> io::Result<String>;

    /// Start writing object `name` of run `run_id`.
    ///
    /// # Errors
    ///
    /// I/O errors naming the path.
    fn create_object(&self, run_id: &str, name: &str) -> io::Result<Box<dyn ObjectWriter>>;

    /// Write a small object in one go, atomically (temporary name, sync, rename). Unlike
    /// [`Storage::create_object`] this replaces an existing object of the same name (used for
    /// `verify.json`, which records the latest verification).
    ///
    /// # Errors
    ///
    /// I/O errors naming the path.
    fn put_object(&self, run_id: &str, name: &str, bytes: &[u8]) -> io::Result<()>;

    /// Read an object from the start.
    ///
    /// # Errors
    ///
    /// `NotFound` if it does not exist; other I/O errors naming the path.
    fn open_object(&self, run_id: &str, name: &str) -> io::Result<Box<dyn Read + Send>>;

    /// Names of all visible objects of a run, sorted (temporary files excluded).
    ///
    /// # Errors
    ///
    /// I/O errors naming the path.
    fn list_objects(&self, run_id: &str) -> io::Result<Vec<String>>;

    /// Ids of runs (directories or prefixes named like run ids), oldest first. The local
    /// backend lists them with or without manifest; the S3 backend lists only those with a
    /// manifest (on S3 a prefix without its commit marker is not a run).
    ///
    /// # Errors
    ///
    /// I/O errors naming the path; a missing root is an empty list.
    fn list_runs(&self) -> io::Result<Vec<String>>;

    /// Remove an uncommitted run and everything in it (after an interruption). Refuses a run
    /// that has a manifest: committed runs are never deleted by this tool.
    ///
    /// # Errors
    ///
    /// I/O errors naming the path, or a refusal for a committed run.
    fn remove_uncommitted_run(&self, run_id: &str) -> io::Result<()>;
}

/// Read a whole small object (manifest, sums) with a size cap.
///
/// # Errors
///
/// I/O errors, or `InvalidData` if the object exceeds `limit` bytes.
pub fn read_small(
    storage: &dyn Storage,
    run_id: &str,
    name: &str,
    limit: u64,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    storage
        .open_object(run_id, name)?
        .take(limit + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{name} is larger than {limit} bytes"),
        ));
    }
    Ok(buf)
}

/// Writers whose cleanup (the abort of a remote upload) has not finished yet.
static PENDING: Mutex<usize> = Mutex::new(0);
static SETTLED: Condvar = Condvar::new();

/// Held by a writer until its remote cleanup is done; see [`settle`].
#[derive(Debug)]
pub(crate) struct PendingCleanup(());

impl PendingCleanup {
    pub(crate) fn new() -> Self {
        *PENDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        Self(())
    }
}

impl Drop for PendingCleanup {
    fn drop(&mut self) {
        let mut n = PENDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *n = n.saturating_sub(1);
        SETTLED.notify_all();
    }
}

/// Wait up to `timeout` until every writer that is still open has committed or aborted.
///
/// Called before the async runtime shuts down after an interruption: a dropped writer aborts
/// its multipart upload on a blocking thread, and that request needs the runtime. Returns
/// `false` if writers were still open at the deadline.
#[must_use]
pub fn settle(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut n = PENDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    while *n > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        n = SETTLED
            .wait_timeout(n, left)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
    true
}
