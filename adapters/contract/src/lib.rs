//! The engine contract of `exporter`: what a database engine adapter hands the core, and how.
//!
//! This crate is deliberately light (bytes, futures, serde, thiserror, url, xxhash): it starts
//! no runtime and knows nothing of zstd, SHA-256, storage or the command line. Adapters
//! (`exporter-postgres`, …) implement [`Source`]; the core drives it.
//!
//! # Protocol
//!
//! 1. The core builds a source from a [`DatabaseUrl`]. [`Source::describe`] is pure and never
//!    prints a password.
//! 2. [`Source::validate`] checks the URL purely; [`Source::preflight`] connects once and checks version and privileges; it returns
//!    [`ServerInfo`] or a classified [`EngineError`] before any long work starts.
//!    [`Source::check`] (`exporter check`, and before each dump) goes further: it collects
//!    *every* problem the dump would meet — each privilege missing, naming its object — and
//!    the size to expect, as a [`SourceCheck`].
//! 3. [`Source::dump`] opens the snapshot and returns a [`Dump`]: a metadata record, a `body`
//!    stream of [`Bytes`] that the core **pulls** (backpressure: the adapter produces no faster
//!    than the core consumes, and buffers at most a bounded number of chunks), and a separate
//!    `completion` future.
//! 4. The core reads `body` until it ends, then awaits `completion`. **A stream that ended is
//!    not a dump that succeeded**: only `completion` resolving to `Ok(DumpSummary)` says the
//!    producer emitted every object (a dropped connection, a failed `COPY` or an interrupted
//!    `SCAN` surface there, or as an `Err` item in `body`, or both).
//! 5. Dropping a [`Dump`] (body and completion) before completion cancels the work on the
//!    server: adapters must not keep a query running for a consumer that is gone.
//!
//! Adapters build the [`Dump`] with [`produce::dump_channel`]: a bounded body channel, a
//! batching [`produce::Producer`] and the completion signal, implementing points 3–5 once.
//!
//! Fingerprints ([`Fingerprint`]) are computed by the adapter while the rows stream out, inside
//! the dump's own snapshot, so they never cost a second read.
//!
//! While the body streams, an adapter reports each table's start, rows and end to the
//! [`DumpObserver`] in [`DumpOptions::observer`] (progress only: the summary stays the record).

use std::fmt;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

mod check;
mod endpoint;
mod error;
mod fingerprint;
mod observe;
pub mod produce;
mod restore;
mod url_safe;

pub use check::{CheckProblem, SourceCheck};
pub use endpoint::{Endpoint, TlsInfo};
pub use error::{EngineError, ErrorKind};
pub use fingerprint::{FINGERPRINT_ALGORITHM, Fingerprint, LEGACY_FINGERPRINT_ALGORITHM};
pub use observe::{DumpObserver, Observer};
pub use restore::{DefinerPolicy, RestoreOptions, RestoreSummary, ScratchServer, Target};
pub use url_safe::{DatabaseUrl, ParseDatabaseUrlError, redact_unparsed};

/// The payload format of one archive file, before compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// A plain SQL script (PostgreSQL: for `psql`; MySQL: for `mysql`).
    Sql,
    /// A RESP command stream for `redis-cli --pipe`.
    Resp,
    /// A Redis RDB file, as produced by the replication handshake.
    Rdb,
}

impl PayloadFormat {
    /// The file extension before `.zst`: `sql`, `resp` or `rdb`.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Sql => "sql",
            Self::Resp => "resp",
            Self::Rdb => "rdb",
        }
    }
}

/// How consistent a dump is across its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// Every object was read in one transaction snapshot (PostgreSQL repeatable read,
    /// MySQL `WITH CONSISTENT SNAPSHOT` on transactional tables only).
    Snapshot,
    /// A server-side point-in-time image (Redis RDB via replication).
    PointInTime,
    /// Objects were read one after another; concurrent writes may be partly visible.
    BestEffort,
}

/// What [`Source::preflight`] learned about the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Engine name as written in manifests: `postgresql`, `mysql`, `mariadb`, `redis`.
    pub engine: String,
    /// The server's own version string, e.g. `15.20` or `10.11.9-MariaDB`.
    pub version: String,
    /// Transport security of the connection that checked the server (`None`: the adapter
    /// does not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// What the user should know about the connection that does not stop the work, one line
    /// each, never a secret (Redis: a password given to a server that needs none is ignored).
    /// The core shows each once per database as a warning; it is not recorded in the
    /// manifest. Adapters report it here rather than logging it, because they connect
    /// several times per database and a log line would repeat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Knobs the core passes to [`Source::dump`]. Unknown to an engine means ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DumpOptions {
    /// Connections an engine may use in parallel inside one snapshot (at least 1).
    pub jobs: usize,
    /// Emit ownership (`ALTER … OWNER TO`) and privileges (`GRANT`), so that a restore as a
    /// superuser reproduces them. Default `true`.
    pub ownership: bool,
    /// Per-table progress (see [`DumpObserver`]): called while the body streams. Default none.
    pub observer: Observer,
}

impl Default for DumpOptions {
    fn default() -> Self {
        Self {
            jobs: 1,
            ownership: true,
            observer: Observer::default(),
        }
    }
}

impl DumpOptions {
    /// Options with `jobs` parallel connections (clamped to at least 1).
    #[must_use]
    pub fn with_jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Options with ownership and privilege statements on or off.
    #[must_use]
    pub fn with_ownership(mut self, ownership: bool) -> Self {
        self.ownership = ownership;
        self
    }

    /// Options whose dump reports its per-table progress to `observer`.
    #[must_use]
    pub fn with_observer(mut self, observer: std::sync::Arc<dyn DumpObserver>) -> Self {
        self.observer = Observer::new(observer);
        self
    }
}

/// Static facts about a dump, known when it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpMeta {
    /// Engine name, as in [`ServerInfo::engine`].
    pub engine: String,
    /// Payload format of `body`.
    pub format: PayloadFormat,
    /// Server version string.
    pub server_version: String,
    /// Consistency the adapter will achieve if the dump completes (the summary may lower it).
    pub consistency: Consistency,
    /// Expected uncompressed size in bytes, if the engine can estimate it (used to size
    /// multipart-upload parts and progress). `None` when unknown.
    pub size_hint: Option<u64>,
    /// Transport security of the dump's connection(s): the mode asked for, whether it was
    /// encrypted, what was verified, the protocol and the server certificate's SHA-256. The
    /// core records it in the manifest. `None`: the adapter does not say.
    pub tls: Option<TlsInfo>,
}

/// Row count and content fingerprint of one table (or one Redis logical database).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSummary {
    /// Fully qualified, quoted-as-needed display name, e.g. `public."Order Items"`.
    pub name: String,
    /// Rows (keys) written.
    pub rows: u64,
    /// Order-independent fingerprint of the rows' canonical bytes.
    pub fingerprint: Fingerprint,
}

/// What a completed dump reports. Returned by [`Dump::completion`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpSummary {
    /// Per table (per Redis database), in dump order.
    pub tables: Vec<TableSummary>,
    /// Things the user opted to skip or that were exported with reduced fidelity. Empty for a
    /// whole dump. Never contains secrets.
    pub warnings: Vec<String>,
    /// The consistency finally achieved, if lower than announced in [`DumpMeta`].
    pub consistency: Option<Consistency>,
    /// The version of the payload's inner encoding where it constrains the restore target,
    /// e.g. `rdb 10` for Redis (a server older than the RDB version refuses the payload).
    /// Known only at the end for streams that carry it per value.
    #[serde(default)]
    pub payload_version: Option<String>,
}

/// One running dump: see the crate docs for the protocol.
pub struct Dump {
    /// Static facts.
    pub meta: DumpMeta,
    /// The payload, pulled by the core. Ends after the last byte; an `Err` item aborts.
    pub body: BoxStream<'static, Result<Bytes, EngineError>>,
    /// Resolves once the producer has finished: `Ok` only if every object was written.
    /// Await it after `body` ended.
    pub completion: BoxFuture<'static, Result<DumpSummary, EngineError>>,
}

impl fmt::Debug for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dump")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// A database an adapter can dump.
///
/// Implementations are cheap to construct (no I/O in constructors) and `Send + Sync`.
pub trait Source: Send + Sync {
    /// A one-line description for logs and errors, e.g. `postgresql postgres://app@db:5432/main`.
    /// Pure: no I/O, and never a password.
    fn describe(&self) -> String;

    /// Check the URL and options without any I/O: unknown or contradictory parameters, TLS
    /// modes the build cannot honour. The core calls it while resolving the plan, so such
    /// mistakes are usage errors (exit 2) reported before anything is dumped.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] naming the parameter.
    fn validate(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// Connect once and check version and privileges.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Connect`] (unreachable), [`ErrorKind::Auth`] (bad credentials),
    /// [`ErrorKind::NotFound`] (no such database), [`ErrorKind::Permission`].
    fn preflight(&self) -> BoxFuture<'_, Result<ServerInfo, EngineError>>;

    /// Connect and collect everything a dump with `options` would need and lack: the
    /// privileges on each object it reads (naming the object and the privilege), what the
    /// consistent snapshot needs, objects the engine would refuse; plus the server facts and
    /// a size estimate. Changes nothing on the server. A check without problems means the
    /// dump's start (catalog, privileges, snapshot) passes too: adapters check what their
    /// dump really sends, by the same queries or commands.
    ///
    /// # Errors
    ///
    /// When the database cannot be checked at all: [`ErrorKind::Connect`], [`ErrorKind::Auth`],
    /// [`ErrorKind::NotFound`], [`ErrorKind::Unsupported`] (a server version or deployment the
    /// engine refuses), [`ErrorKind::Config`]. Missing privileges are not errors: they are
    /// [`SourceCheck::problems`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the connections; nothing was written.
    fn check(&self, options: DumpOptions) -> BoxFuture<'_, Result<SourceCheck, EngineError>>;

    /// [`Source::check`] right before a [`Source::dump`] of the same endpoint and `options`
    /// in this process: an adapter may start that dump for real instead of dry-running it
    /// (its snapshot, locks and catalog plan) and keep the started dump for up to `keep_for`,
    /// so that the dump continues it instead of reading the catalogs a second time. The
    /// default is [`Source::check`], keeping nothing. A kept start that is not claimed within
    /// `keep_for` is released (its connection closed); a dump that finds its kept start dead
    /// starts afresh. The core asks for this only when the dump is of this one database (a
    /// kept start must not wait on other checks), and never through a tunnel that closes
    /// after the check.
    ///
    /// # Errors
    ///
    /// As [`Source::check`].
    ///
    /// # Cancel safety
    ///
    /// As [`Source::check`]: dropping the future keeps nothing.
    fn check_and_hold(
        &self,
        options: DumpOptions,
        keep_for: std::time::Duration,
    ) -> BoxFuture<'_, Result<SourceCheck, EngineError>> {
        let _ = keep_for;
        self.check(options)
    }

    /// Open the snapshot and start producing the payload.
    ///
    /// # Errors
    ///
    /// Anything that prevents the dump from starting; errors after the start surface through
    /// [`Dump::body`] and [`Dump::completion`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned future or the [`Dump`] cancels the server-side work.
    fn dump(&self, options: DumpOptions) -> BoxFuture<'_, Result<Dump, EngineError>>;
}
