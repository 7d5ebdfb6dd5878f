//! MySQL / MariaDB engine of `exporter`: a consistent SQL script that the stock `mysql` (or
//! `mariadb`) client restores, read over `mysql_async`.
//!
//! [`MysqlSource`] implements [`exporter_contract::Source`] for `mysql://` and `mariadb://`
//! URLs; its `check` (`check.rs`) names every privilege the dump needs and the account lacks,
//! then runs the dump's catalog read inside its snapshot and rolls it back. [`fingerprint_database`] computes the same per-table fingerprints over any live
//! database (the restore-side check), [`fingerprint_database_with`] on several connections. [`MysqlTarget`] implements
//! [`exporter_contract::Target`]: it applies a script statement by statement, split the way
//! the stock `mysql` client splits it ([`script`]), with `jobs` > 1 each table's INSERTs on
//! several connections at once (see [`restore`], "Parallel restore"); [`MysqlScratch`] implements
//! [`exporter_contract::ScratchServer`] (see [`restore`]).
//!
//! # What a dump is
//!
//! One connection (connection attribute `program_name=exporter`) sets the session (below),
//! opens `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY` at `REPEATABLE READ`
//! (design.md section 5), reads the catalog, probes every table with `SELECT … LIMIT 0` (this
//! checks the SELECT privilege up front and holds each table's metadata lock until the end, so
//! concurrent DDL waits instead of changing what we read), and then streams a script:
//!
//! 1. comment lines (what, server, how to restore), then [`stream::HEADER`]: the client
//!    session's settings saved in `@OLD_…` variables like mysqldump, `SET NAMES utf8mb4`,
//!    `TIME_ZONE='+00:00'`, `UNIQUE_CHECKS=0`, `FOREIGN_KEY_CHECKS=0`,
//!    `SQL_MODE='NO_AUTO_VALUE_ON_ZERO'` (permissive, so zero dates and zero-date defaults load
//!    even where the server's own mode is strict, and an AUTO_INCREMENT column keeps a stored
//!    0), `SQL_NOTES=0`. No client-specific first line (no `/*M!999999\- enable the sandbox
//!    mode */`), no `/*!…*/` version comments;
//! 2. per schema: when the URL names **no** database, `CREATE DATABASE IF NOT EXISTS` (from
//!    `SHOW CREATE DATABASE`) and `USE`; when it names one, **no** `USE` or `CREATE DATABASE`,
//!    so `mysql newdb < x.sql` restores into any database. Then sequences (`SHOW CREATE
//!    SEQUENCE` + `DO SETVAL(s, next_not_cached_value, 0, cycle_count)`), then tables by name:
//!    `SHOW CREATE TABLE` (with its `AUTO_INCREMENT=` position, foreign keys included — checks
//!    are off during the load) followed by its rows as multi-row `INSERT INTO t (columns)
//!    VALUES (…),(…);` statements of at most [`stream::INSERT_LIMIT`] (1 MiB) each;
//! 3. stored procedures and functions, then views in dependency order (a view after the views
//!    it selects from; after the functions it calls), then triggers (after the rows, so they
//!    do not fire during the load; in action order), then events. Each is its `SHOW CREATE`
//!    statement, run under the `sql_mode`, `character_set_client` and `collation_connection`
//!    it was created with (and an event's `time_zone`), with `DELIMITER` around bodies;
//!    `DEFINER=` clauses are kept exactly (as mysqldump does); [`MysqlSource::with_definers`]
//!    strips them, recording each object's original definer in the warnings;
//! 4. [`stream::FOOTER`]: the saved settings restored, and `-- exporter: dump complete`.
//!
//! `SHOW CREATE` runs with the dumped schema as the current database, so references within
//! it are unqualified; the one place MariaDB still qualifies them, a sequence in a column
//! default (`DEFAULT nextval(`db`.`s`)`), is unqualified too when the URL names a database
//! ([`encode::unqualify_sequence_refs`]), so the restored table uses the restored sequence. Nothing is dropped first: restoring over existing objects fails loudly
//! rather than destroying them. The script has no timestamps: two dumps of an unchanged
//! database are identical (except `AUTO_INCREMENT` positions, which are not transactional).
//!
//! One connection does all the work: [`DumpOptions::jobs`] is not used (several connections
//! see one snapshot only when started under `FLUSH TABLES WITH READ LOCK`, which needs the
//! RELOAD privilege and stalls writers), nor is [`DumpOptions::ownership`] (MySQL objects have
//! no owners; `DEFINER`s are governed by [`MysqlSource::with_definers`]).
//!
//! # Session settings and why
//!
//! See [`connect::session_settings`]: `REPEATABLE READ`; `time_zone '+00:00'` so TIMESTAMP
//! values are read (and, by the script, written) in UTC; `SET NAMES utf8mb4` for our own
//! statements but `character_set_results = binary` for data, so values arrive as the exact
//! bytes stored in the column's own charset and never pass a lossy conversion; `sql_mode ''`
//! so `SHOW CREATE` is plain and odd stored values read without errors; long network
//! timeouts, because the consumer applies backpressure; no statement time limit.
//!
//! # Value encodings
//!
//! Rows are read with prepared statements (`exec_iter`, the binary protocol), one row at a
//! time. Each value's literal ([`encode::literal`]):
//!
//! - integers, YEAR: decimal digits (YEAR 0 stays `0`, i.e. 0000, not 2000);
//! - DECIMAL: the server's exact decimal text;
//! - FLOAT and DOUBLE: exactly as stored — the binary protocol carries the IEEE value (the
//!   text protocol would round FLOAT to 6 digits); written as the shortest round-trip decimal
//!   of the (widened) double in exponent form, e.g. `1.2345677614212036e0`;
//! - DATE, DATETIME, TIMESTAMP, TIME: quoted, with the column's fractional digits; zero and
//!   partial-zero dates as stored (`'0000-00-00'`, `'2024-00-01'`); TIMESTAMP in UTC;
//! - BINARY, VARBINARY, BLOBs, BIT, and text columns with the `binary` charset: `0x…` hex;
//! - spatial types: `0x…` of MariaDB's internal format (4-byte SRID + WKB), which keeps the
//!   SRID exactly (checked with `ST_SRID`/`ST_AsWKB` by the M03 test);
//! - ENUM and SET: their index / bitmask (`col+0`), unquoted: an invalid value stored as
//!   index 0 reads as `''` and would restore as a real `''` member; the number is exact;
//! - text in `utf8mb4`, `utf8mb3`, `ascii` (CHAR, VARCHAR, TEXT, MariaDB JSON):
//!   a quoted string with backslash escapes for `\0 ' \ \n \r ^Z` when the bytes are valid in
//!   the charset, otherwise `_charset 0x…`;
//! - text in any other charset (latin1, …): `_charset 0x…`, the stored bytes exactly;
//! - MariaDB UUID, INET6, INET4: their quoted text form; NULL: `NULL`; `''` for empty binary.
//!
//! The script is valid UTF-8 unless a routine, trigger or event was created with a non-UTF-8
//! `character_set_client` (its stored bytes are written unconverted, as mysqldump does).
//!
//! # Fingerprint
//!
//! Per table (in dump order): `rows` = rows read by `SELECT <stored columns> FROM t`; the
//! canonical bytes of a row are exactly the text between the parentheses of its `VALUES
//! (…)` tuple in the script: the literals above joined by `,`, hashed with
//! [`exporter_contract::Fingerprint::add_row`]. Columns are in byte order of their **names**
//! (the SELECT and the INSERT column lists both use that order), so a restore that orders
//! the columns differently fingerprints equal; the literals are complete SQL tokens (strings
//! quoted and escaped), so joining them with `,` is unambiguous. Names are the table name (quoted with
//! backticks only when needed), or `schema.table` when the URL names no database. A sequence
//! counts as one row, `next_not_cached_value,cycle_count`. MERGE and BLACKHOLE tables have no
//! rows of their own and no entry.
//!
//! # Memory
//!
//! The body channel holds at most [`stream::CHANNEL_CHUNKS`] chunks of about
//! [`stream::CHUNK`] (128 KiB). The catalog (DDL text) is held while streaming. Rows are read
//! one at a time: the ceiling is about three times the largest row (the row as received, its
//! literal text with hex doubling binary data) plus the channel.
//!
//! Each table and sequence is reported to [`DumpOptions::observer`] as it starts, its rows
//! every 64 KiB of literals ([`stream::REPORT_BYTES`]), and as it ends.
//!
//! # Supported, and what fails loudly
//!
//! Supported: tables of any engine holding local rows (InnoDB, Aria, MyISAM, MEMORY, …;
//! non-transactional ones are dumped, with a warning and best-effort consistency in the
//! summary), partitioned tables, INVISIBLE and generated columns (generated ones are left out
//! of INSERTs and recomputed), every column type listed above, MariaDB sequences, views,
//! procedures, functions, triggers, events; MERGE / BLACKHOLE tables (DDL only); MariaDB
//! system-versioned tables (`WITH SYSTEM VERSIONING`) with their history, as `mariadb-dump
//! --dump-history` writes them: rows read `FOR SYSTEM_TIME ALL` (the current ones and every
//! historical one) with their period columns (the implicit `ROW_START` / `ROW_END`, or the
//! explicit `GENERATED ALWAYS AS ROW START / END` ones, also INVISIBLE), written between
//! `SET @@SESSION.system_versioning_insert_history = 1` and `= 0` so the stock client on
//! MariaDB 10.11 or later loads them with their timestamps; they count in the fingerprint.
//!
//! Fails with a classified [`EngineError`] naming the object (never silently left out):
//! system-versioned tables on a server that cannot load history rows (before MariaDB 10.11)
//! or versioned by transaction id (`Unsupported`: never a dump of only the current rows), FEDERATED /
//! CONNECT / SPIDER tables (`Unsupported`: the rows live elsewhere), Oracle-mode packages,
//! column types not listed above (`Unsupported`, naming the column), a routine whose body the
//! server hides from the account, a table the account may not SELECT (`Permission`), an
//! account without database-wide SELECT, TRIGGER, EVENT and EXECUTE (`Permission`:
//! `information_schema` silently hides objects it cannot see), dumping every schema without
//! the global SHOW DATABASES privilege, unknown URL parameters.
//!
//! # TLS
//!
//! MySQL Shell's URI parameters: `ssl-mode` (`DISABLED`, `PREFERRED` — the default —,
//! `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`), `ssl-ca`, `ssl-cert`, `ssl-key`; see
//! `connect::options` for the rules and `relay` for how TLS runs under `mysql_async`. A
//! verification failure is a [`exporter_contract::ErrorKind::Connect`] error naming the
//! cause; a mode that requires TLS never falls back to clear text.
//!
//! Not reproduced (no row is lost): users and grants (not part of a database), the database's
//! default charset when the URL names a database (tables carry their own), the "Database
//! Collation" recorded with routines. A row whose literal exceeds the restoring server's or
//! client's `max_allowed_packet` fails the restore loudly.

use exporter_contract::produce::dump_channel;
use exporter_contract::{
    Consistency, Dump, DumpMeta, DumpOptions, Endpoint, EngineError, PayloadFormat, ServerInfo,
    Source, SourceCheck, TableSummary,
};
use futures::FutureExt;
use futures::future::BoxFuture;

pub mod catalog;
mod check;
pub mod connect;
pub mod encode;
mod parallel;
mod relay;
pub mod restore;
pub mod script;
pub mod stream;

pub use connect::SslMode;
pub use restore::{MysqlScratch, MysqlTarget};

/// A MySQL or MariaDB database (or every schema of a server) to dump. Cheap to build: no I/O
/// until [`Source::preflight`] or [`Source::dump`].
#[derive(Debug, Clone)]
pub struct MysqlSource {
    endpoint: Endpoint,
    definers: bool,
}

impl MysqlSource {
    /// A source for `url` (`mysql://` or `mariadb://`, port 3306 by default). With a database
    /// name in the path, that schema is dumped; without, every schema except `mysql`,
    /// `information_schema`, `performance_schema` and `sys`. No I/O.
    #[must_use]
    pub fn new(endpoint: impl Into<Endpoint>) -> Self {
        Self {
            endpoint: endpoint.into(),
            definers: true,
        }
    }

    /// Keep (`true`, the default, as mysqldump and mydumper do) or strip (`false`) the
    /// `DEFINER=` clauses of views, routines, triggers and events. Stripped definers are
    /// listed in the dump's warnings, one per object with its original definer, so the
    /// archive keeps the record. Kept definers naming another account need `SET USER` (or
    /// `SUPER`) to restore as written; [`exporter_contract::DefinerPolicy::CurrentUser`]
    /// rewrites them at restore time instead.
    #[must_use]
    pub fn with_definers(mut self, keep: bool) -> Self {
        self.definers = keep;
        self
    }
}

/// The `ssl-mode` an endpoint resolves to (`PREFERRED` by default, `VERIFY_CA` when a CA is
/// given without a mode), for listings. Pure.
///
/// # Errors
///
/// As [`Source::validate`].
pub fn tls_mode(endpoint: &Endpoint) -> Result<SslMode, EngineError> {
    connect::Link::new(endpoint).map(|l| l.tls().mode)
}

async fn open(link: &connect::Link, snapshot: bool) -> Result<connect::Session, EngineError> {
    let mut s = connect::connect(link).await?;
    s.configure().await?;
    if snapshot {
        s.exec_drop(connect::BEGIN_SNAPSHOT, None).await?;
    }
    Ok(s)
}

async fn preflight(endpoint: Endpoint) -> Result<ServerInfo, EngineError> {
    let link = connect::Link::new(&endpoint)?;
    let mut s = open(&link, false).await?;
    catalog::load(&mut s, endpoint.url().database().as_deref()).await?;
    Ok(ServerInfo {
        engine: s.flavor.engine().to_owned(),
        version: s.version.clone(),
        tls: Some(s.tls.clone()),
        notes: Vec::new(),
    })
}

async fn start_dump(
    endpoint: Endpoint,
    definers: bool,
    observer: exporter_contract::Observer,
) -> Result<Dump, EngineError> {
    let link = connect::Link::new(&endpoint)?;
    let mut s = open(&link, true).await?;
    let catalog = match catalog::load(&mut s, endpoint.url().database().as_deref()).await {
        Ok(c) => c,
        Err(e) => {
            connect::kill(&s.link, s.id).await;
            return Err(e);
        }
    };
    let meta = DumpMeta {
        engine: s.flavor.engine().to_owned(),
        format: PayloadFormat::Sql,
        server_version: s.version.clone(),
        consistency: Consistency::Snapshot,
        size_hint: catalog.size_hint,
        tls: Some(s.tls.clone()),
    };
    let plan = stream::Plan {
        definers,
        server_version: s.version.clone(),
        engine: s.flavor.engine(),
        observer,
    };
    let (mut out, dump) = dump_channel(meta);
    tokio::spawn(async move {
        let result = stream::produce(&mut s, &catalog, &plan, &mut out).await;
        let result = match result {
            Ok(summary) => match s.exec_drop("COMMIT", None).await {
                Ok(()) => Ok(summary),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            tracing::debug!(error = %e, "mysql dump failed");
            // Stop the server from sending a result nobody reads, then close.
            connect::kill(&s.link, s.id).await;
        }
        drop(s);
        out.finish(result).await;
    });
    Ok(dump)
}

impl Source for MysqlSource {
    fn describe(&self) -> String {
        format!("mysql {}", self.endpoint.redacted())
    }

    fn validate(&self) -> Result<(), EngineError> {
        connect::Link::new(&self.endpoint).map(|_| ())
    }

    fn preflight(&self) -> BoxFuture<'_, Result<ServerInfo, EngineError>> {
        preflight(self.endpoint.clone()).boxed()
    }

    fn check(&self, options: DumpOptions) -> BoxFuture<'_, Result<SourceCheck, EngineError>> {
        check::check(self.endpoint.clone(), options).boxed()
    }

    fn dump(&self, options: DumpOptions) -> BoxFuture<'_, Result<Dump, EngineError>> {
        start_dump(self.endpoint.clone(), self.definers, options.observer).boxed()
    }
}

/// Row count and fingerprint of every table and sequence of the URL's database (or of every
/// non-system schema when the URL names none), computed exactly as during a dump (same
/// session, column lists, literals, names and order; see the crate docs), in one consistent
/// snapshot: [`fingerprint_database_with`] on one connection.
///
/// # Errors
///
/// Classified [`EngineError`]s: `Connect`, `Auth`, `NotFound` (no such database),
/// `Permission` naming the table, `Unsupported` naming the object, `Query`.
///
/// # Cancel safety
///
/// Dropping the future closes the connection; nothing is written.
pub async fn fingerprint_database(
    endpoint: impl Into<Endpoint>,
) -> Result<Vec<TableSummary>, EngineError> {
    fingerprint_database_with(endpoint, 1).await
}

/// [`fingerprint_database`] on up to `jobs` connections at once (0 counts as 1): the tables
/// and sequences, largest `DATA_LENGTH` first, go to whichever connection is free, and the
/// summaries come back in dump order — the same result as with one connection.
///
/// Each connection reads inside its own `START TRANSACTION WITH CONSISTENT SNAPSHOT`: the
/// connections see the same data only while nobody writes to the database (the scratch
/// database of `verify --level restore`, which only the verification uses). MySQL shares one
/// snapshot between connections only when they start under `FLUSH TABLES WITH READ LOCK`
/// (the RELOAD privilege, and every writer stalls; mysqldump's and mydumper's way), which a
/// restore-side check does not need. With `jobs` = 1 it is one snapshot, as in a dump.
///
/// # Errors
///
/// As [`fingerprint_database`]: the first failing table's error; the other connections are
/// killed (best effort).
///
/// # Cancel safety
///
/// Dropping the future closes the connections; nothing is written.
pub async fn fingerprint_database_with(
    endpoint: impl Into<Endpoint>,
    jobs: usize,
) -> Result<Vec<TableSummary>, EngineError> {
    let endpoint = endpoint.into();
    let link = connect::Link::new(&endpoint)?;
    let mut s = open(&link, true).await?;
    let catalog = catalog::load(&mut s, endpoint.url().database().as_deref()).await?;
    let entries = catalog
        .schemas
        .iter()
        .map(|schema| schema.sequences.len() + schema.tables.iter().filter(|t| t.with_data).count())
        .sum::<usize>();
    let extra = jobs.max(1).min(entries.max(1)) - 1;
    let result = if extra == 0 {
        stream::fingerprint_all(&mut s, &catalog).await
    } else {
        match futures::future::try_join_all((0..extra).map(|_| open(&link, true))).await {
            Ok(sessions) => stream::fingerprint_all_parallel(&mut s, sessions, &catalog).await,
            Err(e) => Err(e),
        }
    };
    if result.is_err() {
        connect::kill(&s.link, s.id).await;
        return result;
    }
    s.exec_drop("COMMIT", None).await?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_never_shows_the_password() {
        let url = exporter_contract::DatabaseUrl::parse("mysql://app:hunter2@db.example:3306/main")
            .unwrap();
        let d = MysqlSource::new(url).with_definers(true).describe();
        assert_eq!(d, "mysql mysql://app:****@db.example:3306/main");
    }
}
