//! Where runs are stored: a small blocking interface, with a local-directory backend and an
//! S3 backend ([`s3`]).
//!
//! The pipeline writes through [`ObjectWriter`] from a blocking thread (compression runs there
//! anyway), so the interface is synchronous. Invariants every backend keeps (FORMAT.md):
//! an object is written once; it becomes visible under its final name only on
//! [`ObjectWriter::commit`]; an aborted or dropped writer leaves nothing under the final name.

pub mod local;
pub mod s3;
pub mod uploads;

use std::io::{self, Read, Write};
use std::sync::Arc;

pub use local::LocalStorage;

use crate::cleanup::Cleanup;
use crate::settings::Destination;
use s3::S3Storage;

/// Why the storage of a destination could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The S3 configuration is incomplete (no region anywhere).
    #[error(transparent)]
    S3Config(io::Error),
}

/// Open the storage of a destination: a local directory as it is, or an S3 bucket (loads the
/// AWS configuration; no request yet). Objects an interrupted command leaves unfinished (S3
/// multipart uploads) register with `cleanup`.
///
/// # Errors
///
/// [`OpenError::S3Config`] if S3 has no region configured anywhere.
pub async fn open(
    destination: &Destination,
    cleanup: &Cleanup,
) -> Result<Arc<dyn Storage>, OpenError> {
    match destination {
        Destination::Local(path) => Ok(Arc::new(LocalStorage::new(path.clone()))),
        Destination::S3(config) => S3Storage::connect(config.clone(), cleanup.clone())
            .await
            .map(|s| Arc::new(s) as Arc<dyn Storage>)
            .map_err(OpenError::S3Config),
    }
}

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

    /// Names of all visible objects of a run, sorted (temporary files and the records of an
    /// unfinished run under `.partial/` excluded: [`crate::archive::partial`]).
    ///
    /// # Errors
    ///
    /// I/O errors naming the path.
    fn list_objects(&self, run_id: &str) -> io::Result<Vec<String>>;

    /// Names of the visible objects directly under `dir/` of a run (`.partial`), sorted,
    /// without the directory; empty when there is none.
    ///
    /// # Errors
    ///
    /// I/O errors naming the path.
    fn list_dir(&self, run_id: &str, dir: &str) -> io::Result<Vec<String>>;

    /// Remove one object of a run (`name` may be `dir/name`); a missing object is not an
    /// error. Used only on runs without a manifest (an archive of an unfinished run that
    /// cannot be kept) and on the `.partial/` records; committed archives are never removed.
    ///
    /// # Errors
    ///
    /// I/O errors naming the path.
    fn remove_object(&self, run_id: &str, name: &str) -> io::Result<()>;

    /// Remove `dir/` of a run and everything in it (`.partial` once the manifest exists); a
    /// missing directory is not an error.
    ///
    /// # Errors
    ///
    /// I/O errors naming the path.
    fn remove_dir(&self, run_id: &str, dir: &str) -> io::Result<()>;

    /// Ids of runs without a manifest (unfinished: interrupted, killed or still being
    /// written), oldest first. Unlike [`Storage::list_runs`], the same on every backend.
    ///
    /// # Errors
    ///
    /// I/O errors naming the path; a missing root is an empty list.
    fn list_unfinished_runs(&self) -> io::Result<Vec<String>>;

    /// Discard what a killed writer left of run `run_id`: local temporary files (the `.tmp`
    /// names of [`ObjectWriter`]s that never committed), S3 multipart uploads never completed.
    /// Nothing visible is touched. Returns how many were discarded.
    ///
    /// # Errors
    ///
    /// I/O errors naming the path or the upload.
    fn discard_unfinished(&self, run_id: &str) -> io::Result<usize>;

    /// Claim run `run_id` for writing by this process until the returned lock is dropped, so
    /// that a second `dump --resume` cannot pick a run another process is still writing.
    /// `Ok(None)` where the backend has no lock (S3).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::WouldBlock`] when another process holds it; other I/O errors naming
    /// the path.
    fn lock_run(&self, run_id: &str) -> io::Result<Option<RunLock>> {
        let _ = run_id;
        Ok(None)
    }

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

    /// Prove that a run could be written here, leaving nothing behind (`exporter check`):
    /// write the small object `name` (a hidden name, `.exporter-check-<random>`) at the root,
    /// beside the runs, then remove it. A local destination that does not exist yet is
    /// created, as a dump would create it, and removed again; S3 also starts and aborts a
    /// multipart upload, as the dump of a large archive does. The same refusals as
    /// [`Storage::create_run`] apply (not a directory, itself a run).
    ///
    /// # Errors
    ///
    /// I/O errors naming the destination and the step that failed (creating the directory,
    /// writing, removing the object; the bucket, the upload).
    fn probe(&self, name: &str) -> io::Result<()>;
}

/// A run claimed by this process ([`Storage::lock_run`]); released when dropped (and by the
/// operating system when the process dies, however it dies).
pub struct RunLock(
    #[allow(dead_code, reason = "held, never read: dropping it releases the lock")]
    Box<dyn std::any::Any + Send + Sync>,
);

impl RunLock {
    /// Hold `resource` (an open, locked file) as the lock.
    #[must_use]
    pub fn new(resource: impl std::any::Any + Send + Sync) -> Self {
        Self(Box::new(resource))
    }
}

impl std::fmt::Debug for RunLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunLock")
    }
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
