//! The restore side of the contract: putting an archive's payload back into a database, and the
//! scratch databases of `verify --level restore` (design.md section 6).
//!
//! # Protocol
//!
//! 1. The core builds a [`Target`] from a [`crate::DatabaseUrl`] (`exporter restore --into`) or
//!    gets one from a [`ScratchServer`] (`verify --level restore --scratch`).
//! 2. [`Target::preflight`] connects once; [`Target::existing_objects`] lists what is already in
//!    the target. The core refuses a non-empty target unless the user asked for `--clean`, in
//!    which case it calls [`Target::clean`] first.
//! 3. [`Target::restore`] consumes the **uncompressed** payload (the bytes of `x.sql`, `x.resp`)
//!    as a stream of [`Bytes`] chunks cut at arbitrary places (a chunk may end in the middle of a
//!    statement, a quoted string or a multi-byte character). It applies statements in order and
//!    stops at the **first** failing statement with an [`EngineError`] whose object names it
//!    (statement number, starting line, and its first words, e.g.
//!    `statement 12 (line 40): CREATE TABLE public.orders`), never with the data of a row.
//!    An `Err` item in the input stream aborts the restore with that error.
//! 4. [`Target::fingerprint`] computes row counts and fingerprints over the target exactly as
//!    the dump did at dump time, so the core compares them with the manifest's `tables`.
//!
//! Restores are plain, streaming and bounded in memory: one statement (or one `COPY` row, one
//! `RESTORE` command) at a time, never the whole payload.

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::{EngineError, PayloadFormat, ServerInfo, TableSummary};

/// What a restore does with the `DEFINER=` clauses of views, routines, triggers and events
/// (MySQL/MariaDB; other engines have none). The account a definer names runs the object
/// (`SQL SECURITY DEFINER`) and must exist on the target for the object to work; creating an
/// object for another account needs the `SET USER` privilege (MariaDB 10.5.2+; `SUPER`
/// before), or `SET_USER_ID` / `SET_ANY_DEFINER` on MySQL 8.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DefinerPolicy {
    /// Apply the clauses as written (the archive keeps them exactly, as mysqldump does).
    #[default]
    Keep,
    /// Rewrite each clause to `DEFINER=CURRENT_USER`: the restoring account becomes the
    /// definer of every object, so a restore by an account without `SET USER` succeeds. Only
    /// the statement head changes (`CREATE … DEFINER=… VIEW|PROCEDURE|FUNCTION|TRIGGER|EVENT`,
    /// also inside mysqldump's `/*!50013 DEFINER=… */` comments); bodies never do.
    CurrentUser,
}

impl DefinerPolicy {
    /// `keep` or `current-user`, as on the command line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::CurrentUser => "current-user",
        }
    }
}

/// Knobs the core passes to [`Target::restore`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreOptions {
    /// Apply ownership and privilege statements (`ALTER … OWNER TO`, `GRANT`). With `false`
    /// they are skipped and counted in [`RestoreSummary::skipped`]. Default `true`.
    pub ownership: bool,
    /// What to do with MySQL `DEFINER=` clauses. Default [`DefinerPolicy::Keep`].
    pub definer: DefinerPolicy,
    /// Apply the script's tablespace assignments (PostgreSQL: `SET default_tablespace =
    /// name`, which fails on a target without that tablespace). With `false` they are
    /// skipped and counted in [`RestoreSummary::skipped`], and every object goes to the
    /// target's default tablespace (`pg_restore --no-tablespaces`). Other engines have none.
    /// Default `true`.
    pub tablespaces: bool,
    /// Connections the restore may use at once (`--jobs`), at least 1. With more than one,
    /// PostgreSQL and MySQL restores run the script's data blocks, and the index and
    /// constraint statements that follow them, on several connections, as `pg_restore -j`
    /// does (issue 17); the script's order is kept wherever it matters (see each adapter's
    /// docs). Redis ignores it. Default 1: one session, statement after statement.
    pub jobs: usize,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self {
            ownership: true,
            definer: DefinerPolicy::Keep,
            tablespaces: true,
            jobs: 1,
        }
    }
}

impl RestoreOptions {
    /// Options with ownership and privilege statements on or off.
    #[must_use]
    pub fn with_ownership(mut self, ownership: bool) -> Self {
        self.ownership = ownership;
        self
    }

    /// Options with `jobs` connections at most (0 counts as 1).
    #[must_use]
    pub fn with_jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Options with tablespace assignments applied or skipped ([`RestoreOptions::tablespaces`]).
    #[must_use]
    pub fn with_tablespaces(mut self, tablespaces: bool) -> Self {
        self.tablespaces = tablespaces;
        self
    }

    /// Options with a [`DefinerPolicy`].
    #[must_use]
    pub fn with_definer(mut self, definer: DefinerPolicy) -> Self {
        self.definer = definer;
        self
    }
}

/// What a completed restore reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreSummary {
    /// Statements (Redis: commands) executed.
    pub statements: u64,
    /// Rows loaded through `COPY` or `INSERT` (Redis: keys restored).
    pub rows: u64,
    /// Statements skipped on purpose (ownership and privileges with
    /// [`RestoreOptions::ownership`] off, tablespace assignments with
    /// [`RestoreOptions::tablespaces`] off).
    pub skipped: u64,
}

/// A database an archive can be restored into.
///
/// Implementations are cheap to construct (no I/O in constructors) and `Send + Sync`.
pub trait Target: Send + Sync {
    /// A one-line description for logs and errors. Pure: no I/O, and never a password.
    fn describe(&self) -> String;

    /// Check the URL without I/O, like [`crate::Source::validate`].
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Unsupported`] naming the parameter.
    fn validate(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// Connect once and report the server.
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Connect`], [`crate::ErrorKind::Auth`],
    /// [`crate::ErrorKind::NotFound`] (no such database), [`crate::ErrorKind::Permission`].
    fn preflight(&self) -> BoxFuture<'_, Result<ServerInfo, EngineError>>;

    /// Objects already in the target that a restore could collide with, by name, sorted
    /// (PostgreSQL: relations, types, functions and schemas other than an empty `public`;
    /// MySQL: tables, views, routines, events; Redis: `db<N> (<keys> keys)` per non-empty
    /// logical database). Empty means the target is empty.
    ///
    /// # Errors
    ///
    /// Connection and query errors.
    fn existing_objects(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>>;

    /// Drop everything [`Target::existing_objects`] lists (`--clean`).
    ///
    /// # Errors
    ///
    /// Connection and query errors, naming the object that could not be dropped.
    fn clean(&self) -> BoxFuture<'_, Result<(), EngineError>>;

    /// Apply an uncompressed payload of `format` (see the module docs for the protocol).
    ///
    /// # Errors
    ///
    /// [`crate::ErrorKind::Unsupported`] for a format this engine cannot restore natively
    /// (Redis RDB); [`crate::ErrorKind::Query`] naming the first failing statement;
    /// [`crate::ErrorKind::Protocol`] for a payload that is not well formed (an unterminated
    /// statement or `COPY` block at the end of the stream); connection errors.
    fn restore(
        &self,
        format: PayloadFormat,
        body: BoxStream<'static, Result<Bytes, EngineError>>,
        options: RestoreOptions,
    ) -> BoxFuture<'_, Result<RestoreSummary, EngineError>>;

    /// Row counts and fingerprints of the target, computed exactly as the dump computes them
    /// (FORMAT.md, "Fingerprints"), in the same order as a dump's `tables`.
    ///
    /// # Errors
    ///
    /// Connection and query errors.
    fn fingerprint(&self) -> BoxFuture<'_, Result<Vec<TableSummary>, EngineError>>;

    /// [`Self::fingerprint`] on up to `jobs` connections at once (tables spread over them; the
    /// result is the same as with one). The default ignores `jobs`.
    ///
    /// # Errors
    ///
    /// As [`Self::fingerprint`].
    fn fingerprint_with(
        &self,
        jobs: usize,
    ) -> BoxFuture<'_, Result<Vec<TableSummary>, EngineError>> {
        let _ = jobs;
        self.fingerprint()
    }
}

/// A server on which `verify --level restore` creates and drops scratch databases.
pub trait ScratchServer: Send + Sync {
    /// A one-line description, never a password.
    fn describe(&self) -> String;

    /// Create an empty scratch database called `name` (a lowercase ASCII identifier the core
    /// makes unique, e.g. `exporter_verify_20261129t074800z_billing`) and return a target for
    /// it. Redis has no named databases: its scratch server must be empty in every logical
    /// database, `name` is ignored, and the whole server is the scratch target.
    ///
    /// # Errors
    ///
    /// Connection errors; [`crate::ErrorKind::Permission`] if databases cannot be created;
    /// a Redis server that is not empty is [`crate::ErrorKind::Unsupported`].
    fn create(&self, name: &str) -> BoxFuture<'_, Result<Box<dyn Target>, EngineError>>;

    /// Drop the scratch database `name` (Redis: flush the scratch server). Best effort callers
    /// may ignore the error, but it is reported.
    ///
    /// # Errors
    ///
    /// Connection and query errors.
    fn drop_scratch(&self, name: &str) -> BoxFuture<'_, Result<(), EngineError>>;

    /// Check, before the core restores any archive, that [`Self::create`] will not refuse
    /// this server for what it holds, so that a verification of several engines stops
    /// before the first restore rather than after the others' (issue 16), and `dump --verify
    /// restore` before its first dump. Redis: the URL names no logical database and the
    /// server holds no keys and no function libraries. PostgreSQL and MySQL: the server can
    /// be reached and logged into (PostgreSQL: the role may create databases). The default
    /// checks nothing.
    ///
    /// # Errors
    ///
    /// Connection errors; a server that cannot be a scratch server is
    /// [`crate::ErrorKind::Unsupported`], as from [`Self::create`].
    fn check(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        Box::pin(async { Ok(()) })
    }
}
