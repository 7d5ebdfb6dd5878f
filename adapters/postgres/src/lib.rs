//! PostgreSQL engine of `exporter`: a consistent, plain-SQL dump that stock `psql` restores.
//!
//! [`PostgresSource`] implements [`exporter_contract::Source`]; its `check` (`check.rs`)
//! names every privilege the dump needs and the role lacks, then runs the dump's start
//! without its output and rolls it back. [`fingerprint_database`]
//! computes the same per-table fingerprints over any database (the restore-side check);
//! [`fingerprint_database_with`] on several connections in one exported snapshot, large
//! tables in page ranges (`fingerprint.rs`), with the same result.
//! [`PostgresTarget`] restores a plain script natively (no psql), statement by statement and
//! `COPY` by `COPY` as a stream, cut by [`script::Splitter`]; [`PostgresScratch`] creates and
//! drops the scratch databases of `verify --level restore`.
//!
//! # What a dump is
//!
//! One connection (`application_name = exporter`) opens one `REPEATABLE READ, READ ONLY`
//! transaction (the snapshot; design.md section 5), takes `ACCESS SHARE` locks on every table
//! like pg_dump does (so concurrent DDL cannot change what we read), reads the catalogs, and then
//! streams a script restorable with `psql -X -v ON_ERROR_STOP=1 -d <empty database>`:
//!
//! 1. a header of `SET`s (pg_dump's, plus the date/time/float settings of the dump session);
//! 2. pre-data, in dependency order (a topological sort over `pg_depend`; among independent
//!    objects: schemas, extensions, types, functions, sequences, tables, views, materialized
//!    views, each group by name): `CREATE SCHEMA`, `CREATE EXTENSION IF NOT EXISTS`, enum /
//!    domain / composite / range types, functions and procedures (`pg_get_functiondef`),
//!    sequences, tables (columns, collations, defaults, generated columns, identity, `CHECK`s,
//!    `INHERITS`, `PARTITION BY`, `PARTITION OF`, `UNLOGGED`, storage parameters), views,
//!    materialized views `WITH NO DATA`, `OWNED BY` of serial sequences;
//! 3. data: per table `COPY … (non-generated columns, by name) FROM stdin;`, the `COPY … TO STDOUT`
//!    text exactly as the server produced it, `\.` — partitioned tables through their leaf
//!    partitions, inheritance parents and children each with their own rows. A partition
//!    tree whose leaf for a row depends on the server (hash on an enum, range on text under
//!    a server-dependent collation, …; see `catalog/routing.rs`) is loaded through its root
//!    instead: each leaf's block is `COPY root (…) FROM stdin;` with the leaf's rows. With
//!    [`DumpOptions::jobs`] above 1, `jobs` more connections import this snapshot and copy in
//!    parallel, big tables split into page ranges; a table's rows then arrive as several
//!    self-contained `COPY` blocks in completion order (see `parallel.rs`);
//! 4. sequence positions: `setval(name, last_value, is_called)` (fidelity case P03);
//! 5. large objects: `lo_create` and `lo_put` in 64 KiB pieces;
//! 6. post-data: `NOT VALID` checks, `CHECK` constraints that call user functions (validated
//!    once against the complete data), primary / unique / exclusion constraints, indexes,
//!    `CLUSTER ON`, replica identity, foreign keys (all after every key exists; P12), triggers,
//!    rules, row-level security flags and policies, publications, subscriptions, `REFRESH
//!    MATERIALIZED VIEW`, comments, owners and privileges, the database's own settings
//!    (`ALTER DATABASE … SET`, applied to the restored database in guarded `DO` blocks), and
//!    last of all the event triggers (one fires for the DDL that follows it).
//!
//! Code that runs during the load (generated columns, partition key expressions, index
//! expressions, materialized views, checks) and finds tables or functions through the
//! session's `search_path` runs under the path a session of the object's owner had in the
//! source (database- and role-level settings, the server's default), set around exactly those
//! statements; functions are never changed (see `catalog/loadcode.rs`; issue 15).
//!
//! Everything is schema-qualified and quoted by the server's own `quote_ident` (P04); the
//! script has no timestamps, so two sequential (`jobs = 1`) dumps of an unchanged database are
//! byte-identical; parallel dumps hold the same statements and rows, blocks in another order.
//!
//! # TLS
//!
//! libpq's parameters and defaults on every connection (snapshot, workers, raw COPY readers,
//! restore, scratch, fingerprint): `sslmode` (`disable`, `allow`, `prefer` — the default —,
//! `require`, `verify-ca`, `verify-full`), `sslrootcert` (a file or `system`), `sslcert` /
//! `sslkey`, `sslsni`; the core passes libpq's `PGSSL*` environment as their defaults. The
//! socket goes to the endpoint's dial address, and TLS names and verifies the URL's host
//! (libpq's `host` + `hostaddr`). See `connect::tls_plan` for the rules. Every connection
//! reports its [`exporter_contract::TlsInfo`]; the dump's is in [`DumpMeta::tls`].
//!
//! # Session settings and why
//!
//! See [`SESSION_SETTINGS`]: UTF-8, ISO dates, `IntervalStyle postgres`, UTC,
//! `extra_float_digits 3`, hex bytea, empty `search_path`, no timeouts, and
//! `row_security = off` — a table whose policies would hide rows from the dumping role makes
//! the dump **fail** (SQLSTATE 42501, [`ErrorKind::Permission`] naming the table) instead of
//! silently dumping fewer rows.
//!
//! # Owners and privileges
//!
//! With [`DumpOptions::ownership`] (the default) the script ends with `ALTER … OWNER TO` and
//! `GRANT`/`REVOKE` statements (from `aclexplode`). Each one naming a role is wrapped in a
//! `DO` block that runs it only if the role exists and turns a permission error into a
//! `WARNING`: a restore into a fresh server (the verify step's scratch database) or by a
//! non-superuser never fails on a missing role, and a superuser restore on a server with the
//! roles reproduces them. Policies naming roles are guarded the same way (a skipped policy
//! leaves RLS enabled, i.e. access denied — the safe direction). Grantors are not reproduced.
//!
//! # Fingerprint
//!
//! Per table: `rows` = number of lines of `COPY "schema"."table" (non-generated columns in
//! byte order of their names) TO STDOUT` (text format) under the session settings above;
//! `fingerprint` = [`exporter_contract::Fingerprint::add_row`] over each line without its
//! `\n`. The column list is by **name**, not `attnum`: every `COPY` of the dump, out and
//! in, uses it, so the line is canonical as it streams (no reordering, no second pass) and a
//! restore that gives the columns other positions (an inheritance child whose parent gained
//! a column later; issue 15) fingerprints equal. COPY text is unambiguous: values are
//! separated by tabs, and tabs, newlines and backslashes inside values are escaped, `NULL`
//! is `\N`. Table names are `quote_ident(schema) || '.' || quote_ident(table)`, e.g.
//! `public."Order Items"`. The leaves of a tree loaded through its root are one entry under
//! the root's name (rows and fingerprints added up): the restore may put a row into another
//! leaf, and the tree's content is what must compare.
//! Large objects, if any, appear as `pg_catalog.pg_largeobject` with one row
//! `<oid>\t<offset>\t<hex>` per 64 KiB piece (`<oid>\t0\t` for an empty object).
//!
//! # Memory
//!
//! The body channel holds at most 8 chunks of about 128 KiB. The schema (DDL text) is held in
//! memory while streaming. Table data does not go through tokio-postgres, whose codec holds a
//! whole protocol message (and the server sends each COPY row as one message): the dump's
//! connection exports its snapshot and the data `COPY`s run on connections of a minimal raw
//! protocol client (`copyout.rs`) that streams each `CopyData` message in pieces of at most
//! 64 KiB. Rows are fingerprinted incrementally, and a row larger than a block streams inside
//! one `COPY` block. Memory therefore grows neither with table nor with row size: sequential
//! dumps hold one piece, parallel jobs one block of about 256 KiB + 64 KiB per worker and as
//! many queued (BENCHMARKS.md, "Memory", measures a 4 GiB table and a 200 MB value). One
//! exception: a table on which another session waits for an `ACCESS EXCLUSIVE` lock is copied
//! on the snapshot's own connection (a COPY connection's lock request would queue behind it
//! until the dump ends), where its largest row is held whole.
//!
//! # Progress and the size estimate
//!
//! Each `tables` entry of the summary (a table, a tree loaded through its root, the large
//! objects) is reported to [`DumpOptions::observer`] as it starts, its rows per piece read,
//! and as it ends — under `jobs`, a table split into page ranges when its last range is done
//! (`progress.rs`). [`DumpMeta::size_hint`] estimates the `COPY` text from a sample of the
//! largest tables' pages, not from their size on disk (`catalog/size.rs`).
//!
//! # Supported and rejected
//!
//! Supported: schemas, extensions (by `CREATE EXTENSION`, members never dumped one by one),
//! base (in two steps: shell, I/O functions, type), shell, enum / domain / composite /
//! range types (one with a canonical function in two steps, as a base type), functions,
//! procedures, aggregates (also
//! ordered-set, hypothetical-set and moving ones, in pg_dump's form), operators (infix and
//! prefix, commutator and negator links), operator families and classes, text search
//! dictionaries, configurations, parsers and templates, casts, collations (libc and ICU),
//! conversions, procedural languages, foreign-data wrappers, foreign servers and user
//! mappings, foreign tables (without their rows, as pg_dump: they live on the foreign
//! server), access methods, transforms, sequences, ordinary, unlogged, partitioned and
//! inheritance tables (also typed and of another table access method), identity and
//! generated columns, views (those valid only through a key in two steps), materialized
//! views, constraints, indexes, triggers, rules, RLS and policies, relations and indexes in a
//! tablespace (`SET default_tablespace` around each, as pg_dump; the tablespace itself is the
//! target's, and [`exporter_contract::RestoreOptions::tablespaces`] can leave the assignments
//! out), comments on every kind above, security labels (the target needs the label providers
//! loaded), publications (tables with column lists and row filters, schemas, all tables),
//! subscriptions (`connect = false`: restored disabled), event triggers, large objects (with
//! comments, owners and grants), the rows of extensions' configuration tables that their
//! filter selects and the position of their configuration sequences
//! (`catalog/extconfig.rs`), owners and privileges (also column privileges, and privileges
//! changed on `pg_catalog` objects).
//!
//! Rejected with [`ErrorKind::Unsupported`] naming the object (never silently left out):
//! comments and security labels on any other kind of object, a foreign table that is a
//! partition of a tree loaded through its root (the restore could route rows of a local
//! partition to the foreign server), and circular dependencies between schema objects.
//! PARITY.md lists what each needed, found on PostgreSQL's regression database.
//!
//! Skipped with a warning in the summary (the manifest's `warnings`): catalog rows that
//! describe nothing restorable — a comment or a security label whose object no longer exists
//! (`pg_identify_object` answers NULL for it; PostgreSQL's regression database leaves a
//! comment on a dropped subscription); and, when the dumping role is not a superuser, the
//! subscriptions, named (as pg_dump: only a superuser may read their connection strings,
//! which hold secrets and go into the archive only). Every catalog row is read through
//! `cells::Cells`: a NULL or a value of
//! another type where the catalogs always hold one fails the dump naming the object
//! ([`ErrorKind::Protocol`]), never a panic (`tokio_postgres::Row::get` is banned in
//! `clippy.toml`).
//!
//! Not reproduced (no data is lost): settings of roles (`ALTER ROLE … SET`; roles are not part
//! of a database, as with pg_dump), the grantor of privileges.

use exporter_contract::produce::dump_channel;
use exporter_contract::{
    Consistency, Dump, DumpMeta, DumpOptions, Endpoint, EngineError, ErrorKind, PayloadFormat,
    ServerInfo, Source, SourceCheck, TableSummary,
};
use futures::FutureExt;
use futures::future::BoxFuture;

mod catalog;
mod cells;
mod check;
mod connect;
mod copyout;
mod fingerprint;
mod held;
mod parallel;
mod progress;
mod quote;
mod restore;
mod restore_parallel;
pub mod script;
mod stream;

pub use connect::{APPLICATION_NAME, ENV_PARAMS, SESSION_SETTINGS, SslMode};
pub use fingerprint::FingerprintOptions;
pub use quote::{quote_ident, quote_literal};
pub use restore::{PostgresScratch, PostgresTarget};

/// Oldest server version supported (`server_version_num`): the catalog queries use columns
/// added up to PostgreSQL 14 (multiranges).
pub const MIN_SERVER_VERSION_NUM: i32 = 140_000;

/// Engine name in manifests.
pub const ENGINE: &str = "postgresql";

/// A PostgreSQL database to dump. Cheap to build: no I/O until [`Source::preflight`] or
/// [`Source::dump`].
#[derive(Debug, Clone)]
pub struct PostgresSource {
    endpoint: Endpoint,
}

impl PostgresSource {
    /// A source for `endpoint` (a `postgres://` or `postgresql://` URL, or an
    /// [`Endpoint`] with a dial override, an inline CA and parameter defaults). No I/O.
    #[must_use]
    pub fn new(endpoint: impl Into<Endpoint>) -> Self {
        Self {
            endpoint: endpoint.into(),
        }
    }
}

/// The `sslmode` an endpoint resolves to (its URL's, else the defaults passed with it, else
/// libpq's default `prefer`), for listings. Pure.
///
/// # Errors
///
/// As [`Source::validate`].
pub fn tls_mode(endpoint: &Endpoint) -> Result<SslMode, EngineError> {
    connect::Link::new(endpoint).map(|l| l.tls().mode)
}

async fn server_version(conn: &mut connect::Conn) -> Result<String, EngineError> {
    let row = match conn
        .client
        .query_one("SELECT pg_catalog.current_setting('server_version'), pg_catalog.current_setting('server_version_num')::int", &[])
        .await
    {
        Ok(row) => row,
        Err(e) => {
            let endpoint = conn.endpoint.clone();
            return Err(conn.error(e, &endpoint).await);
        }
    };
    let row = cells::Cells::about(&row, "setting server_version");
    let version: String = row.get(0)?;
    let num: i32 = row.get(1)?;
    if num < MIN_SERVER_VERSION_NUM {
        return Err(EngineError::new(
            ErrorKind::Unsupported,
            format!("PostgreSQL {version} is too old: exporter needs 14 or later"),
        )
        .with_object(conn.endpoint.clone()));
    }
    Ok(version)
}

async fn begin_snapshot(conn: &mut connect::Conn) -> Result<(), EngineError> {
    if let Err(e) = conn.client.batch_execute(connect::BEGIN_SNAPSHOT).await {
        let endpoint = conn.endpoint.clone();
        return Err(conn.error(e, &endpoint).await);
    }
    Ok(())
}

async fn preflight(endpoint: Endpoint) -> Result<ServerInfo, EngineError> {
    let link = connect::Link::new(&endpoint)?;
    // The check right before this dump kept its start (`held.rs`): it read all this and
    // more; its session is the one the dump will use.
    if let Some((version, tls)) = held::server_info(&endpoint) {
        return Ok(ServerInfo {
            engine: ENGINE.to_owned(),
            version,
            tls: Some(tls),
            notes: Vec::new(),
        });
    }
    let mut conn = connect::connect(&link).await?;
    let version = server_version(&mut conn).await?;
    // Every table and sequence must be readable; name the first that is not.
    let sql = "SELECT CASE c.relkind WHEN 'S' THEN 'sequence ' ELSE 'table ' END
                      || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p', 'm', 'S')
                  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
                  AND n.nspname NOT LIKE 'pg\\_temp\\_%'
                  AND NOT pg_catalog.has_table_privilege(c.oid, 'SELECT')
                ORDER BY 1 LIMIT 1";
    match conn.client.query_opt(sql, &[]).await {
        Ok(Some(row)) => {
            let object: String = cells::Cells::new(&row, "relation", 0).get(0)?;
            return Err(
                EngineError::new(ErrorKind::Permission, "the role may not SELECT from it")
                    .with_object(object),
            );
        }
        Ok(None) => {}
        Err(e) => {
            let endpoint = conn.endpoint.clone();
            return Err(conn.error(e, &endpoint).await);
        }
    }
    Ok(ServerInfo {
        engine: ENGINE.to_owned(),
        version,
        tls: Some(conn.tls.clone()),
        notes: Vec::new(),
    })
}

/// How often the start of a dump is retried when concurrent DDL changed the tables between
/// listing and locking them.
const START_ATTEMPTS: u32 = 3;

/// Connect, lock every table, then take the snapshot and check that it is stable.
///
/// Order matters (see [`catalog::lock_tables`]): list tables outside any transaction, `BEGIN`
/// repeatable read, `LOCK TABLE` (no snapshot yet), then the first query takes the snapshot,
/// and [`catalog::check_stable`] proves no table escaped the locks.
///
/// `reuse`: a connection to make the first attempt on (fresh, no transaction open), instead of
/// a new one.
async fn open_snapshot(
    link: &connect::Link,
    mut reuse: Option<connect::Conn>,
) -> Result<(connect::Conn, String), EngineError> {
    let mut attempt = 1;
    loop {
        let mut conn = match reuse.take() {
            Some(conn) => conn,
            None => connect::connect(link).await?,
        };
        let server_version = server_version(&mut conn).await?;
        let names = catalog::lock_targets(&mut conn).await?;
        begin_snapshot(&mut conn).await?;
        let locked = catalog::lock_tables(&mut conn, &names).await;
        let stable = match locked {
            Ok(()) => catalog::check_stable(&mut conn).await,
            Err(e) => Err(e),
        };
        match stable {
            Ok(()) => return Ok((conn, server_version)),
            // A table dropped (42P01 from LOCK), changed between listing and locking, or a
            // deadlock on the locks: start over; nothing has been produced yet. A terminated
            // connection (Protocol) is never retried: someone stopped us on purpose.
            Err(e)
                if attempt < START_ATTEMPTS
                    && ((e.kind() == ErrorKind::Query && e.is_retryable())
                        || e.kind() == ErrorKind::NotFound) =>
            {
                tracing::info!(error = %e, attempt, "tables changed while the dump was starting; retrying");
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Open the snapshot ([`open_snapshot`]: connect, lock, snapshot, stability check), read the
/// catalog plan in it and estimate the size: everything a dump does before its first byte.
///
/// `reuse`: as [`open_snapshot`]'s.
///
/// # Errors
///
/// As [`open_snapshot`], [`catalog::tables_and_plan`].
pub(crate) async fn start(
    link: &connect::Link,
    ownership: bool,
    reuse: Option<connect::Conn>,
) -> Result<held::Started, EngineError> {
    let (mut conn, server_version) = open_snapshot(link, reuse).await?;
    let plan = catalog::tables_and_plan(link, &mut conn, ownership).await?;
    // After the locks: the estimate reads a sample of the tables.
    let size_hint = catalog::size_hint(&mut conn, &plan.tables).await;
    Ok(held::Started {
        conn,
        server_version,
        plan,
        size_hint,
    })
}

/// The start the check kept for this dump ([`held`]), if it is still alive — its
/// connection answers and every table is still locked and unchanged
/// ([`catalog::check_stable`]) — else a fresh [`start`].
async fn kept_or_new_start(
    endpoint: &Endpoint,
    link: &connect::Link,
    ownership: bool,
) -> Result<held::Started, EngineError> {
    if let Some(mut kept) = held::take(endpoint, ownership) {
        match catalog::check_stable(&mut kept.conn).await {
            Ok(()) => {
                tracing::debug!("continuing the dump's start kept by the check");
                return Ok(kept);
            }
            Err(e) => {
                tracing::debug!(error = %e, "the start kept by the check is gone; starting afresh");
            }
        }
    }
    Box::pin(start(link, ownership, None)).await
}

async fn start_dump(endpoint: Endpoint, options: DumpOptions) -> Result<Dump, EngineError> {
    let link = connect::Link::new(&endpoint)?;
    let held::Started {
        mut conn,
        server_version,
        plan,
        size_hint,
    } = Box::pin(kept_or_new_start(&endpoint, &link, options.ownership)).await?;
    let meta = DumpMeta {
        engine: ENGINE.to_owned(),
        format: PayloadFormat::Sql,
        server_version,
        consistency: Consistency::Snapshot,
        size_hint,
        // The snapshot's connection; the COPY connections use the same link and mode (a
        // server that offers TLS to one offers it to all).
        tls: Some(conn.tls.clone()),
    };
    let (mut out, dump) = dump_channel(meta);
    tokio::spawn(async move {
        let result = stream::produce(
            &mut conn,
            plan,
            Some((&link, options.jobs)),
            &mut out,
            &options.observer,
        )
        .await;
        // Close the connection before reporting: nothing keeps running on the server.
        drop(conn);
        if let Err(e) = &result {
            tracing::debug!(error = %e, "postgres dump failed");
        }
        out.finish(result).await;
    });
    Ok(dump)
}

impl Source for PostgresSource {
    fn describe(&self) -> String {
        format!("{ENGINE} {}", self.endpoint.redacted())
    }

    fn validate(&self) -> Result<(), EngineError> {
        connect::Link::new(&self.endpoint).map(|_| ())
    }

    fn preflight(&self) -> BoxFuture<'_, Result<ServerInfo, EngineError>> {
        preflight(self.endpoint.clone()).boxed()
    }

    fn check(&self, options: DumpOptions) -> BoxFuture<'_, Result<SourceCheck, EngineError>> {
        check::check(self.endpoint.clone(), options, None).boxed()
    }

    fn check_and_hold(
        &self,
        options: DumpOptions,
        keep_for: std::time::Duration,
    ) -> BoxFuture<'_, Result<SourceCheck, EngineError>> {
        check::check(self.endpoint.clone(), options, Some(keep_for)).boxed()
    }

    fn dump(&self, options: DumpOptions) -> BoxFuture<'_, Result<Dump, EngineError>> {
        start_dump(self.endpoint.clone(), options).boxed()
    }
}

/// Row count and fingerprint of every user table of a database, as computed during dump
/// (same session settings, same column lists, same names and order; see the crate docs), read
/// in one repeatable-read snapshot on one COPY connection: [`fingerprint_database_with`] with
/// the default [`FingerprintOptions`]. Large objects are included as
/// `pg_catalog.pg_largeobject` when there are any.
///
/// # Errors
///
/// Classified [`EngineError`]s: `Connect`, `Auth`, `NotFound` (no such database),
/// `Permission` naming the table (also for a table hidden by row-level security), `Query`.
///
/// # Cancel safety
///
/// Dropping the future closes the connections; nothing is written.
pub async fn fingerprint_database(
    endpoint: impl Into<Endpoint>,
) -> Result<Vec<TableSummary>, EngineError> {
    fingerprint_database_with(endpoint, FingerprintOptions::default()).await
}

/// [`fingerprint_database`] on [`FingerprintOptions::jobs`] COPY connections importing one
/// exported snapshot, large tables split into page ranges as the parallel dump splits them
/// (see `fingerprint.rs`): the same summaries, in the same order, for every `jobs`.
///
/// # Errors
///
/// As [`fingerprint_database`]; the first failing table's error (the other connections are
/// closed).
///
/// # Cancel safety
///
/// Dropping the future closes every connection; nothing is written.
pub async fn fingerprint_database_with(
    endpoint: impl Into<Endpoint>,
    options: FingerprintOptions,
) -> Result<Vec<TableSummary>, EngineError> {
    let link = connect::Link::new(&endpoint.into())?;
    fingerprint::fingerprint_link(&link, options).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_never_shows_the_password() {
        let url =
            exporter_contract::DatabaseUrl::parse("postgres://app:hunter2@db.example:5432/main")
                .unwrap();
        let d = PostgresSource::new(url).describe();
        assert_eq!(d, "postgresql postgres://app:****@db.example:5432/main");
    }
}
