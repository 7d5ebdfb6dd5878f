//! The two data paths, side by side (design.md section 4).
//!
//! ```text
//!  dump:     engine Source ─► zstd ─► SHA-256 + length ─► storage object   (compress, dump)
//!  restore:  storage object ─► SHA-256 + length ─► zstd ─► engine Target   (decode, restore)
//! ```
//!
//! - [`dump()`]: a plan becomes a run — the endpoint step, `preflight`, the stream of each
//!   database ([`compress::dump_one`]), `SHA256SUMS`, then `manifest.json` last;
//! - [`restore()`]: one archive of a run goes into a database; the stream
//!   ([`decode::restore_archive`]) is shared with `verify --level restore`;
//! - [`resume`]: which run a dump writes into (a new one, or with `--resume` the newest
//!   unfinished one), the completion records that keep a run resumable, and the run's
//!   registration with the cleanup scope;
//! - [`stall`]: `--stall-timeout`, the watchdog that fails a database whose stream stops
//!   moving.
//!
//! Both report progress as [`crate::progress::Event`]s and return typed values; neither
//! prints.

pub mod compress;
pub mod decode;
pub mod dump;
pub mod restore;
pub mod resume;
pub mod stall;

pub use dump::{
    Committed, DatabaseFailure, DumpContext, DumpError, DumpReport, FailureCause, dump,
};
pub use restore::{RestoreContext, RestoreError, RestoreReport, restore};
