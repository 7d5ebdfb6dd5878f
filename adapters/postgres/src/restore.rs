//! The restore side: [`PostgresTarget`] applies a plain SQL script (ours or `pg_dump`'s plain
//! format) natively over tokio-postgres, like `psql -X -v ON_ERROR_STOP=1 -f script.sql`;
//! [`PostgresScratch`] creates and drops the scratch databases of `verify --level restore`.
//!
//! # How a script is applied
//!
//! One session with the server's defaults, as psql opens it (our dumps and pg_dump's start
//! with a header of `SET`s that fixes what matters), client encoding UTF-8. The
//! [`Splitter`] cuts the stream into statements exactly where psql would; each statement runs
//! on its own through the simple query protocol in autocommit mode, as psql sends it, and
//! `COPY … FROM stdin` data flows through `copy_in` piece by piece as it arrives (memory: one
//! input chunk plus tokio-postgres' 4 KiB copy buffer). The first failing statement stops the
//! restore with [`ErrorKind::Query`] naming it (`statement 12 (line 40): CREATE TABLE
//! public.orders`) with the server's message and SQLSTATE; the statements before it stay
//! applied, as with psql. The server's `DETAIL` is never included, and for data exceptions
//! (SQLSTATE class 22) the value the server quotes is cut off: errors never carry row data.
//! Server warnings (e.g. our dump's `exporter: skipped owner of table …` when a role is
//! missing) are logged at `WARN`.
//!
//! psql meta-commands are refused (see [`crate::script`]), so `pg_dump` scripts with
//! `\connect` (`--create`) or `\restrict` (pg_dump 17.6, 16.10, 15.14, 14.19, 13.22 and later)
//! must go through psql.

use std::fmt::Write as _;
use std::pin::Pin;

use bytes::Bytes;
use exporter_contract::{
    Endpoint, EngineError, ErrorKind, PayloadFormat, RestoreOptions, RestoreSummary, ScratchServer,
    ServerInfo, TableSummary, Target,
};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio_postgres::{AsyncMessage, CopyInSink, SimpleQueryMessage};

use crate::connect::{self, Conn, Link, Phase};
use crate::script::{Item, Splitter, Statement, first_words, is_ownership, tablespace_assignment};
use crate::{ENGINE, quote_ident};

/// A PostgreSQL database to restore into. Cheap to build: no I/O until a method runs.
///
/// [`Target::existing_objects`] lists, as `<kind> <qualified name>` sorted bytewise: schemas
/// (`public` only when something lives in it), tables, partitions, views, materialized views,
/// sequences, foreign tables, types and domains (not the implicit array and row types),
/// functions, procedures and aggregates (`function app.f(integer)`), extensions other than
/// plpgsql, large objects, event triggers, subscriptions and procedural languages created
/// after the server's own; extension members are covered by their extension.
/// [`Target::clean`] drops them: the event triggers first (so the drops that follow fire
/// none), the subscriptions (disabled and detached from their slot first, so nothing
/// connects to a publisher), every schema `CASCADE`, `public` recreated as `CREATE DATABASE`
/// makes it (owner, privileges, comment), the remaining extensions, the procedural
/// languages, every large object; plpgsql is created if missing.
#[derive(Debug, Clone)]
pub struct PostgresTarget {
    endpoint: Endpoint,
}

impl PostgresTarget {
    /// A target for `endpoint` (`postgres://` or `postgresql://`, the database in the path,
    /// `postgres` if none; TLS as for [`crate::PostgresSource`]). No I/O.
    #[must_use]
    pub fn new(endpoint: impl Into<Endpoint>) -> Self {
        Self {
            endpoint: endpoint.into(),
        }
    }
}

/// A PostgreSQL server on which scratch databases are created and dropped. The URL names the
/// server and a maintenance database to connect to (default `postgres`). Cheap to build.
#[derive(Debug, Clone)]
pub struct PostgresScratch {
    endpoint: Endpoint,
}

impl PostgresScratch {
    /// A scratch server reached through `endpoint`; the scratch databases are reached through
    /// the same endpoint (dial address, TLS settings), database name replaced. No I/O.
    #[must_use]
    pub fn new(endpoint: impl Into<Endpoint>) -> Self {
        Self {
            endpoint: endpoint.into(),
        }
    }
}

/// Connect like psql: the server's session defaults (the script's header sets what it needs;
/// [`connect::connect`]'s dump settings, such as an empty `search_path`, would change the
/// meaning of a script without one), UTF-8 client encoding (tokio-postgres always asks for
/// it), and the server's notices and warnings logged (psql prints them on stderr).
pub(crate) async fn connect_logged(link: &Link) -> Result<Conn, EngineError> {
    let endpoint = link.redacted().to_owned();
    let (client, mut connection, tls) = connect::establish(link).await?;
    let driver = tokio::spawn(async move {
        loop {
            match futures::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notice(n))) => {
                    tracing::warn!("server {}: {}", n.severity(), n.message());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    });
    Ok(Conn {
        client,
        driver: Some(driver),
        endpoint,
        tls,
    })
}

/// A restore session: [`connect_logged`], then `SET synchronous_commit = off` and
/// `client_connection_check_interval` (see the body). A restore
/// commits once per statement and per `COPY` (thousands of times for a schema-heavy script),
/// and with synchronous commit each commit waits for its WAL to reach disk; asynchronous
/// commit lets the statements go on while the WAL writer flushes behind them
/// (<https://www.postgresql.org/docs/current/wal-async-commit.html>: "the risk … is data
/// loss, not data corruption"). [`make_durable`] waits for all of it at the end, so a restore
/// that reports success is on disk. A script's own `SET synchronous_commit` still applies.
///
/// # Errors
///
/// As [`connect_logged`]; a classified error if the setting is refused.
pub(crate) async fn connect_restore(link: &Link) -> Result<Conn, EngineError> {
    let mut conn = connect_logged(link).await?;
    if let Err(e) = conn
        .client
        .batch_execute("SET synchronous_commit = off")
        .await
    {
        return Err(conn.error(e, "restore session").await);
    }
    // A server notices that its client has gone only when it next talks to it; a long
    // statement (an index build, a `COPY` of a large block) would run on, and commit, after
    // an interrupted restore exited (found by trying: a `CREATE INDEX` committed seconds after
    // Ctrl-C). With this setting (PostgreSQL 14 and later) the server checks the socket every
    // second while a statement runs and cancels it once the client is gone
    // (<https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-CLIENT-CONNECTION-CHECK-INTERVAL>).
    // Older servers do not know the setting (SQLSTATE 42704): they go on as before.
    if let Err(e) = conn
        .client
        .batch_execute("SET client_connection_check_interval = 1000")
        .await
        && e.code() != Some(&tokio_postgres::error::SqlState::UNDEFINED_OBJECT)
    {
        return Err(conn.error(e, "restore session").await);
    }
    Ok(conn)
}

/// The end of a restore whose sessions committed asynchronously ([`connect_restore`]): one
/// synchronous commit on `conn`. Its commit record is written after every commit of the
/// restore's sessions (they are over by now), and a synchronous commit waits until the WAL is
/// flushed up to its record — so up to every commit before it
/// (<https://www.postgresql.org/docs/current/runtime-config-wal.html#GUC-SYNCHRONOUS-COMMIT>).
/// `txid_current()` is what makes the transaction write a commit record at all.
///
/// # Errors
///
/// A classified error naming the restore session.
pub(crate) async fn make_durable(conn: &mut Conn) -> Result<(), EngineError> {
    if let Err(e) = conn
        .client
        .batch_execute("SET synchronous_commit = on; SELECT pg_catalog.txid_current()")
        .await
    {
        return Err(conn
            .error(e, "restore session (flushing its commits)")
            .await);
    }
    Ok(())
}

/// The error of a failed statement: the server's message and SQLSTATE, never its `DETAIL`
/// (e.g. `Key (id)=(1) already exists.`) and never a value quoted by a data exception.
pub(crate) async fn statement_error(
    conn: &mut Conn,
    e: tokio_postgres::Error,
    label: &str,
) -> EngineError {
    statement_error_in(conn, e, &[(label.to_owned(), 0)]).await
}

/// [`statement_error`] for a `COPY` that loads several blocks of the script at once (the
/// parallel restore merges consecutive blocks of one table): `blocks` holds each block's
/// label and the number of data lines before it, in order. A data error at line `L` of the
/// merged data is reported with the label of the block holding line `L` and the line within
/// that block; an error without a line names the first block.
pub(crate) async fn statement_error_in(
    conn: &mut Conn,
    e: tokio_postgres::Error,
    blocks: &[(String, u64)],
) -> EngineError {
    let first = blocks.first().map_or("COPY", |(label, _)| label.as_str());
    let Some(db) = e.as_db_error() else {
        return conn.error(e, first).await;
    };
    let code = db.code().code();
    let mut message = db.message().to_owned();
    // Class 22 (data exception) messages quote the offending value:
    // `invalid input syntax for type integer: "abc"`.
    if code.starts_with("22")
        && let Some(pos) = message.find(": ")
    {
        message.truncate(pos);
        message.push_str(": …");
    }
    let mut text = format!("{message} (SQLSTATE {code})");
    let mut label = first;
    // `COPY t, line 3, column a: "abc"`: keep the line number only.
    if let Some(line) = db
        .where_()
        .filter(|w| w.starts_with("COPY "))
        .and_then(|w| w.split(", ").find_map(|p| p.strip_prefix("line ")))
        .and_then(|l| l.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|l| l.parse::<u64>().ok())
    {
        let (block, before) = blocks
            .iter()
            .rev()
            .find(|(_, before)| *before < line)
            .map_or((first, 0), |(l, before)| (l.as_str(), *before));
        label = block;
        let _ = write!(text, ", at line {} of the COPY data", line - before);
    }
    // A privilege the target's role lacks (SQLSTATE 42501) stays `Permission`: a fact about
    // the target, which a verification reports as inconclusive rather than as a bad archive.
    let kind = match connect::classify(&e, Phase::Query).kind() {
        k @ (ErrorKind::Protocol | ErrorKind::Cancelled | ErrorKind::Permission) => k,
        _ => ErrorKind::Query,
    };
    EngineError::new(kind, text).with_object(label.to_owned())
}

/// A statement through the simple query protocol, as psql sends it, its result rows drained
/// one by one (a `SELECT` in a script is not kept in memory); the rows of its command tags.
pub(crate) async fn simple(conn: &mut Conn, text: &str) -> Result<u64, tokio_postgres::Error> {
    let stream = conn.client.simple_query_raw(text).await?;
    futures::pin_mut!(stream);
    let mut rows = 0;
    while let Some(message) = stream.next().await {
        if let SimpleQueryMessage::CommandComplete(n) = message? {
            rows += n;
        }
    }
    Ok(rows)
}

/// A `COPY … FROM stdin` in progress.
pub(crate) struct ActiveCopy {
    sink: Pin<Box<CopyInSink<Bytes>>>,
    label: String,
}

/// The statements a restore leaves out on purpose ([`RestoreOptions::ownership`] and
/// [`RestoreOptions::tablespaces`] off), counted in [`RestoreSummary::skipped`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Skips {
    /// Apply ownership and privilege statements ([`is_ownership`]).
    pub(crate) ownership: bool,
    /// Apply tablespace assignments ([`tablespace_assignment`]).
    pub(crate) tablespaces: bool,
}

impl Skips {
    /// The skips `options` ask for.
    pub(crate) fn of(options: &RestoreOptions) -> Self {
        Self {
            ownership: options.ownership,
            tablespaces: options.tablespaces,
        }
    }

    /// Whether statement `text` is left out.
    pub(crate) fn skips(self, text: &str) -> bool {
        (!self.ownership && is_ownership(text))
            || (!self.tablespaces && tablespace_assignment(text).is_some())
    }
}

/// The error of a tablespace assignment the target refused (`SET default_tablespace = name`,
/// SQLSTATE 22023, invalid parameter value: the target has no such tablespace), in words,
/// as [`ErrorKind::NotFound`], with the way around it; any other error as it is.
fn missing_tablespace(err: EngineError, text: &str, code: Option<&str>) -> EngineError {
    match (tablespace_assignment(text), code) {
        // `NotFound`: an object the archive names is missing on the target — a fact about the
        // target, not the archive (a verification calls it inconclusive, not a bad archive).
        (Some(name), Some("22023")) => EngineError::new(
            ErrorKind::NotFound,
            format!(
                "the target has no tablespace {} (SQLSTATE 22023): the archive creates objects in it",
                quote_ident(&name)
            ),
        )
        .with_object(err.object().unwrap_or_default().to_owned())
        .with_hint(format!(
            "create tablespace {} on the target server first, or restore without tablespace \
             assignments (--no-tablespaces, as pg_restore's): every object then goes to the \
             target's default tablespace",
            quote_ident(&name)
        )),
        _ => err,
    }
}

/// Per-restore state: the session, the current `COPY`, the tally.
pub(crate) struct Applier {
    pub(crate) conn: Conn,
    pub(crate) copy: Option<ActiveCopy>,
    pub(crate) summary: RestoreSummary,
    pub(crate) skips: Skips,
}

impl Applier {
    pub(crate) async fn apply(&mut self, item: Item) -> Result<(), EngineError> {
        match item {
            Item::Statement(s) => self.statement(s).await,
            Item::CopyData(data) => {
                let Some(copy) = self.copy.as_mut() else {
                    return Err(EngineError::new(
                        ErrorKind::Protocol,
                        "COPY data outside COPY",
                    ));
                };
                // `feed`, not `send`: the sink batches small pieces itself.
                if let Err(e) = copy.sink.feed(data).await {
                    let label = copy.label.clone();
                    return Err(statement_error(&mut self.conn, e, &label).await);
                }
                Ok(())
            }
            Item::CopyEnd => {
                let Some(mut copy) = self.copy.take() else {
                    return Err(EngineError::new(ErrorKind::Protocol, "\\. outside COPY"));
                };
                match copy.sink.as_mut().finish().await {
                    Ok(rows) => {
                        self.summary.rows += rows;
                        Ok(())
                    }
                    Err(e) => Err(statement_error(&mut self.conn, e, &copy.label).await),
                }
            }
        }
    }

    pub(crate) async fn statement(&mut self, s: Statement) -> Result<(), EngineError> {
        if self.skips.skips(&s.text) {
            self.summary.skipped += 1;
            return Ok(());
        }
        if s.copy_from_stdin {
            match self
                .conn
                .client
                .copy_in::<str, Bytes>(s.text.as_str())
                .await
            {
                Ok(sink) => {
                    self.copy = Some(ActiveCopy {
                        sink: Box::pin(sink),
                        label: s.label(),
                    });
                    self.summary.statements += 1;
                    return Ok(());
                }
                Err(e) => return Err(statement_error(&mut self.conn, e, &s.label()).await),
            }
        }
        let counts_rows = s
            .text
            .get(..6)
            .is_some_and(|w| w.eq_ignore_ascii_case("insert"));
        let result = simple(&mut self.conn, &s.text).await;
        match result {
            Ok(rows) => {
                self.summary.statements += 1;
                if counts_rows {
                    self.summary.rows += rows;
                }
                Ok(())
            }
            Err(e) => {
                let code = e.code().map(|c| c.code().to_owned());
                let err = statement_error(&mut self.conn, e, &s.label()).await;
                Err(missing_tablespace(err, &s.text, code.as_deref()))
            }
        }
    }
}

async fn restore(
    endpoint: Endpoint,
    format: PayloadFormat,
    body: BoxStream<'static, Result<Bytes, EngineError>>,
    options: RestoreOptions,
) -> Result<RestoreSummary, EngineError> {
    if format != PayloadFormat::Sql {
        return Err(EngineError::new(
            ErrorKind::Unsupported,
            format!(
                "PostgreSQL restores SQL scripts, not {} payloads",
                format.extension()
            ),
        )
        .with_object(endpoint.redacted()));
    }
    let link = Link::new(&endpoint)?;
    if options.jobs > 1 {
        return crate::restore_parallel::restore(link, body, Skips::of(&options), options.jobs)
            .await;
    }
    let conn = connect_restore(&link).await?;
    apply_serial(conn, body, Skips::of(&options)).await
}

/// The serial restore of `body` on the restore session `conn` ([`connect_restore`]): every
/// statement in script order, each `COPY` block streamed, then [`make_durable`].
///
/// # Errors
///
/// The first failing statement ([`ErrorKind::Query`] naming it, or the kind of a failure
/// about the target), a malformed script ([`ErrorKind::Protocol`]), connection errors.
pub(crate) async fn apply_serial(
    conn: Conn,
    mut body: BoxStream<'static, Result<Bytes, EngineError>>,
    skips: Skips,
) -> Result<RestoreSummary, EngineError> {
    let mut applier = Applier {
        conn,
        copy: None,
        summary: RestoreSummary::default(),
        skips,
    };
    let mut splitter = Splitter::new();
    let mut items = Vec::new();
    while let Some(chunk) = body.next().await {
        let split = splitter.push(&chunk?, &mut items);
        // Items before a splitting error run first: statements apply in script order.
        for item in items.drain(..) {
            applier.apply(item).await?;
        }
        split?;
    }
    let end = splitter.finish(&mut items);
    for item in items.drain(..) {
        applier.apply(item).await?;
    }
    end?;
    make_durable(&mut applier.conn).await?;
    Ok(applier.summary)
}

/// Filters shared by the catalog queries below: user schemas only.
const USER_NS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

fn not_member(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend x WHERE x.deptype = 'e' \
         AND x.classid = 'pg_catalog.{catalog}'::pg_catalog.regclass AND x.objid = {oid})"
    )
}

/// SQL predicate over `pg_subscription s`: a subscription of the current database (the
/// catalog is shared by all).
const SUBSCRIPTIONS_HERE: &str = "s.subdbid = (SELECT d.oid FROM pg_catalog.pg_database d \
     WHERE d.datname = pg_catalog.current_database())";

/// SQL predicate over `pg_language l`: a procedural language created after the server's own
/// (OID 16384 and up).
const USER_LANGUAGES: &str = "l.lanispl AND l.oid >= 16384";

/// `public` has dependents (anything at all lives in it).
const PUBLIC_USED: &str = "EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
     WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.refobjid = n.oid)";

fn existing_sql() -> String {
    format!(
        "SELECT o FROM (
         SELECT 'schema ' || pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_namespace n
          WHERE {USER_NS} AND {ns_ext} AND (n.nspname <> 'public' OR {PUBLIC_USED})
         UNION ALL
         SELECT CASE c.relkind WHEN 'S' THEN 'sequence ' WHEN 'v' THEN 'view '
                     WHEN 'm' THEN 'materialized view ' WHEN 'f' THEN 'foreign table ' ELSE 'table ' END
                || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE {USER_NS} AND {rel_ext} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
         UNION ALL
         SELECT CASE t.typtype WHEN 'd' THEN 'domain ' ELSE 'type ' END
                || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.typname)
           FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
          WHERE {USER_NS} AND {typ_ext} AND t.typtype IN ('b', 'c', 'd', 'e', 'r')
            AND (t.typrelid = 0 OR (SELECT r.relkind FROM pg_catalog.pg_class r WHERE r.oid = t.typrelid) = 'c')
            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type el WHERE el.oid = t.typelem AND el.typarray = t.oid)
         UNION ALL
         SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' WHEN 'a' THEN 'aggregate ' ELSE 'function ' END
                || p.oid::pg_catalog.regprocedure::text
           FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          WHERE {USER_NS} AND {proc_ext}
         UNION ALL
         SELECT 'extension ' || pg_catalog.quote_ident(e.extname) FROM pg_catalog.pg_extension e
          WHERE e.extname <> 'plpgsql'
         UNION ALL
         SELECT 'large object ' || l.oid FROM pg_catalog.pg_largeobject_metadata l
         UNION ALL
         SELECT 'event trigger ' || pg_catalog.quote_ident(e.evtname) FROM pg_catalog.pg_event_trigger e
          WHERE {evt_ext}
         UNION ALL
         SELECT 'subscription ' || pg_catalog.quote_ident(s.subname) FROM pg_catalog.pg_subscription s
          WHERE {SUBSCRIPTIONS_HERE}
         UNION ALL
         SELECT 'procedural language ' || pg_catalog.quote_ident(l.lanname) FROM pg_catalog.pg_language l
          WHERE {USER_LANGUAGES} AND {lang_ext}
         ) s(o) ORDER BY o COLLATE \"C\"",
        evt_ext = not_member("pg_event_trigger", "e.oid"),
        lang_ext = not_member("pg_language", "l.oid"),
        ns_ext = not_member("pg_namespace", "n.oid"),
        rel_ext = not_member("pg_class", "c.oid"),
        typ_ext = not_member("pg_type", "t.oid"),
        proc_ext = not_member("pg_proc", "p.oid"),
    )
}

async fn query_strings(conn: &mut Conn, sql: &str) -> Result<Vec<String>, EngineError> {
    match conn.client.query(sql, &[]).await {
        Ok(rows) => crate::cells::read_all(&rows, "object", 0, |r| r.get(0)),
        Err(e) => {
            let endpoint = conn.endpoint.clone();
            Err(conn.error(e, &endpoint).await)
        }
    }
}

async fn existing_objects(endpoint: Endpoint) -> Result<Vec<String>, EngineError> {
    let mut conn = connect::connect(&Link::new(&endpoint)?).await?;
    query_strings(&mut conn, &existing_sql()).await
}

async fn execute(conn: &mut Conn, sql: &str, object: &str) -> Result<(), EngineError> {
    if let Err(e) = conn.client.batch_execute(sql).await {
        return Err(conn.error(e, object).await);
    }
    Ok(())
}

/// Drop the subscriptions of the database `conn` is connected to. A dump's subscription is
/// restored disabled, without connecting (`connect = false`); it is disabled again (in case
/// someone enabled it), detached from its slot on the publisher (`slot_name = NONE`: `DROP
/// SUBSCRIPTION` then does not connect to drop the slot, which the source's subscription
/// still uses) and dropped.
async fn drop_subscriptions(conn: &mut Conn) -> Result<(), EngineError> {
    let subs = query_strings(
        conn,
        &format!(
            "SELECT pg_catalog.quote_ident(s.subname) FROM pg_catalog.pg_subscription s
              WHERE {SUBSCRIPTIONS_HERE} ORDER BY 1"
        ),
    )
    .await?;
    for sub in &subs {
        let object = format!("subscription {sub}");
        for sql in [
            format!("ALTER SUBSCRIPTION {sub} DISABLE"),
            format!("ALTER SUBSCRIPTION {sub} SET (slot_name = NONE)"),
            format!("DROP SUBSCRIPTION {sub}"),
        ] {
            execute(conn, &sql, &object).await?;
        }
    }
    Ok(())
}

/// `--clean`: drop the event triggers (first: the drops that follow would fire them) and the
/// subscriptions, every schema (`CASCADE`), recreate `public` as `CREATE DATABASE` makes it,
/// drop the remaining extensions but plpgsql, the procedural languages created after the
/// server's own and every large object.
async fn clean(endpoint: Endpoint) -> Result<(), EngineError> {
    let mut conn = connect::connect(&Link::new(&endpoint)?).await?;
    let triggers = query_strings(
        &mut conn,
        &format!(
            "SELECT pg_catalog.quote_ident(e.evtname) FROM pg_catalog.pg_event_trigger e WHERE {} ORDER BY 1",
            not_member("pg_event_trigger", "e.oid")
        ),
    )
    .await?;
    for trigger in &triggers {
        execute(
            &mut conn,
            &format!("DROP EVENT TRIGGER IF EXISTS {trigger}"),
            &format!("event trigger {trigger}"),
        )
        .await?;
    }
    drop_subscriptions(&mut conn).await?;
    let schemas = query_strings(
        &mut conn,
        &format!(
            "SELECT n.nspname FROM pg_catalog.pg_namespace n
              WHERE {USER_NS} AND {} AND n.nspname <> 'public' ORDER BY 1",
            not_member("pg_namespace", "n.oid")
        ),
    )
    .await?;
    for schema in &schemas {
        let object = format!("schema {}", quote_ident(schema));
        execute(
            &mut conn,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(schema)),
            &object,
        )
        .await?;
    }
    let public = query_strings(
        &mut conn,
        &format!(
            "SELECT CASE WHEN {PUBLIC_USED} THEN 'used' ELSE 'empty' END
               FROM pg_catalog.pg_namespace n WHERE n.nspname = 'public'"
        ),
    )
    .await?;
    let recreate = match public.first().map(String::as_str) {
        Some("empty") => false,
        Some(_) => {
            execute(&mut conn, "DROP SCHEMA public CASCADE", "schema public").await?;
            true
        }
        None => true,
    };
    if recreate {
        // As initdb makes it: PostgreSQL 15 and later give it to pg_database_owner with
        // USAGE for PUBLIC; 14 to the bootstrap superuser with CREATE and USAGE for PUBLIC
        // (release notes of PostgreSQL 15, "Remove PUBLIC creation permission on the public
        // schema").
        let version = query_strings(
            &mut conn,
            "SELECT pg_catalog.current_setting('server_version_num')",
        )
        .await?;
        let v15 = version
            .first()
            .and_then(|v| v.parse::<i32>().ok())
            .is_some_and(|v| v >= 150_000);
        let sql = if v15 {
            "CREATE SCHEMA public AUTHORIZATION pg_database_owner;
             GRANT USAGE ON SCHEMA public TO PUBLIC;
             COMMENT ON SCHEMA public IS 'standard public schema'"
                .to_owned()
        } else {
            let owner = query_strings(
                &mut conn,
                "SELECT rolname::text FROM pg_catalog.pg_roles WHERE oid = 10",
            )
            .await?;
            format!(
                "CREATE SCHEMA public AUTHORIZATION {};
                 GRANT ALL ON SCHEMA public TO PUBLIC;
                 COMMENT ON SCHEMA public IS 'standard public schema'",
                quote_ident(owner.first().map_or("postgres", String::as_str))
            )
        };
        execute(&mut conn, &sql, "schema public").await?;
    }
    let extensions = query_strings(
        &mut conn,
        "SELECT extname::text FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql' ORDER BY 1",
    )
    .await?;
    for ext in &extensions {
        execute(
            &mut conn,
            &format!("DROP EXTENSION IF EXISTS {} CASCADE", quote_ident(ext)),
            &format!("extension {}", quote_ident(ext)),
        )
        .await?;
    }
    let languages = query_strings(
        &mut conn,
        &format!(
            "SELECT pg_catalog.quote_ident(l.lanname) FROM pg_catalog.pg_language l
              WHERE {USER_LANGUAGES} AND {} ORDER BY 1",
            not_member("pg_language", "l.oid")
        ),
    )
    .await?;
    for language in &languages {
        execute(
            &mut conn,
            &format!("DROP LANGUAGE IF EXISTS {language} CASCADE"),
            &format!("procedural language {language}"),
        )
        .await?;
    }
    execute(
        &mut conn,
        "SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata",
        "large objects",
    )
    .await?;
    // Our dumps' DO blocks need plpgsql, which every new database has.
    execute(
        &mut conn,
        "CREATE EXTENSION IF NOT EXISTS plpgsql",
        "extension plpgsql",
    )
    .await
}

async fn preflight(endpoint: Endpoint) -> Result<ServerInfo, EngineError> {
    let mut conn = connect::connect(&Link::new(&endpoint)?).await?;
    let version = crate::server_version(&mut conn).await?;
    Ok(ServerInfo {
        engine: ENGINE.to_owned(),
        version,
        tls: Some(conn.tls.clone()),
        notes: Vec::new(),
    })
}

impl Target for PostgresTarget {
    fn describe(&self) -> String {
        format!("{ENGINE} {}", self.endpoint.redacted())
    }

    fn validate(&self) -> Result<(), EngineError> {
        Link::new(&self.endpoint).map(|_| ())
    }

    fn preflight(&self) -> BoxFuture<'_, Result<ServerInfo, EngineError>> {
        preflight(self.endpoint.clone()).boxed()
    }

    fn existing_objects(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>> {
        existing_objects(self.endpoint.clone()).boxed()
    }

    fn clean(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        clean(self.endpoint.clone()).boxed()
    }

    fn restore(
        &self,
        format: PayloadFormat,
        body: BoxStream<'static, Result<Bytes, EngineError>>,
        options: RestoreOptions,
    ) -> BoxFuture<'_, Result<RestoreSummary, EngineError>> {
        restore(self.endpoint.clone(), format, body, options).boxed()
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Vec<TableSummary>, EngineError>> {
        let endpoint = self.endpoint.clone();
        async move { crate::fingerprint_database(endpoint).await }.boxed()
    }

    /// [`crate::fingerprint_database_with`] on `jobs` COPY connections in one exported
    /// snapshot, tables larger than 64 MiB in page ranges: the same summaries as with one.
    fn fingerprint_with(
        &self,
        jobs: usize,
    ) -> BoxFuture<'_, Result<Vec<TableSummary>, EngineError>> {
        let endpoint = self.endpoint.clone();
        let options = crate::FingerprintOptions::default().with_jobs(jobs);
        async move { crate::fingerprint_database_with(endpoint, options).await }.boxed()
    }
}

/// A scratch database name must be a plain lowercase identifier, and never one of the
/// databases every server has: `drop_scratch` drops with `FORCE`.
fn check_scratch_name(name: &str, maintenance: Option<&str>) -> Result<(), EngineError> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    let reserved = matches!(name, "postgres" | "template0" | "template1")
        || maintenance.is_some_and(|m| m == name);
    if plain && !reserved {
        Ok(())
    } else {
        Err(EngineError::new(
            ErrorKind::Unsupported,
            "a scratch database name must be a lowercase identifier (a-z, 0-9, _; at most 63 \
             bytes) other than postgres, template0, template1 and the maintenance database",
        )
        .with_object(format!("database {}", first_words(name))))
    }
}

impl PostgresScratch {
    fn maintenance(&self) -> String {
        self.endpoint
            .url()
            .database()
            .unwrap_or_else(|| "postgres".to_owned())
    }

    fn endpoint_for(&self, name: &str) -> Result<Endpoint, EngineError> {
        Ok(Link::new(&self.endpoint)?
            .for_database(name)?
            .endpoint()
            .clone())
    }

    async fn create(&self, name: String) -> Result<Box<dyn Target>, EngineError> {
        check_scratch_name(&name, Some(&self.maintenance()))?;
        let target = self.endpoint_for(&name)?;
        let mut conn = connect::connect(&Link::new(&self.endpoint)?).await?;
        let sql = format!(
            "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'",
            quote_ident(&name)
        );
        execute(&mut conn, &sql, &format!("database {name}")).await?;
        Ok(Box::new(PostgresTarget::new(target)))
    }

    /// Connect to the maintenance database and make sure the role may create databases
    /// (`CREATEDB`, or a superuser): an unreachable server, a TLS or login problem, or a role
    /// without the privilege stops a verification before its first restore (and `dump
    /// --verify restore` before its first dump) instead of failing each database's check.
    async fn check(&self) -> Result<(), EngineError> {
        let mut conn = connect::connect(&Link::new(&self.endpoint)?).await?;
        let may = query_strings(
            &mut conn,
            "SELECT (rolsuper OR rolcreatedb)::text FROM pg_catalog.pg_roles \
              WHERE rolname = current_user",
        )
        .await?;
        if may.first().map(String::as_str) == Some("true") {
            return Ok(());
        }
        Err(EngineError::new(
            ErrorKind::Permission,
            "the role may not create databases (it has neither CREATEDB nor SUPERUSER)",
        )
        .with_object(self.endpoint.redacted())
        .with_hint("give the scratch server's role CREATEDB (ALTER ROLE name CREATEDB), or use a superuser"))
    }

    async fn drop_scratch(&self, name: String) -> Result<(), EngineError> {
        check_scratch_name(&name, Some(&self.maintenance()))?;
        let mut conn = connect::connect(&Link::new(&self.endpoint)?).await?;
        // The server refuses to drop a database that has subscriptions ("database … is being
        // used by logical replication subscription"): drop those of a restored dump first.
        let subscribed = query_strings(
            &mut conn,
            &format!(
                "SELECT s.subname::text FROM pg_catalog.pg_subscription s
                   JOIN pg_catalog.pg_database d ON d.oid = s.subdbid
                  WHERE d.datname = {} LIMIT 1",
                crate::quote_literal(&name)
            ),
        )
        .await?;
        if !subscribed.is_empty() {
            let mut scratch = connect::connect(&Link::new(&self.endpoint_for(&name)?)?).await?;
            drop_subscriptions(&mut scratch).await?;
        }
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&name)
        );
        execute(&mut conn, &sql, &format!("database {name}")).await
    }
}

impl ScratchServer for PostgresScratch {
    fn describe(&self) -> String {
        format!("{ENGINE} scratch server {}", self.endpoint.redacted())
    }

    fn create(&self, name: &str) -> BoxFuture<'_, Result<Box<dyn Target>, EngineError>> {
        PostgresScratch::create(self, name.to_owned()).boxed()
    }

    fn drop_scratch(&self, name: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        PostgresScratch::drop_scratch(self, name.to_owned()).boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        PostgresScratch::check(self).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_never_shows_the_password() {
        let url =
            exporter_contract::DatabaseUrl::parse("postgres://app:hunter2@db.example:5432/main")
                .unwrap();
        assert_eq!(
            PostgresTarget::new(url.clone()).describe(),
            "postgresql postgres://app:****@db.example:5432/main"
        );
        assert_eq!(
            ScratchServer::describe(&PostgresScratch::new(url)),
            "postgresql scratch server postgres://app:****@db.example:5432/main"
        );
    }

    #[test]
    fn scratch_names_are_plain_and_never_the_system_databases() {
        assert!(check_scratch_name("exporter_verify_20261129t074800z_billing", None).is_ok());
        for bad in [
            "",
            "postgres",
            "template1",
            "Upper",
            "a-b",
            "x\"; DROP",
            "9lives",
        ] {
            let err = check_scratch_name(bad, None).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{bad}");
        }
        assert!(check_scratch_name("maint", Some("maint")).is_err());
        let url =
            exporter_contract::DatabaseUrl::parse("postgres://u:pw@h:5433/maint?sslmode=disable")
                .unwrap();
        let scratch = PostgresScratch::new(Endpoint::new(url).dial("127.0.0.1", 6000));
        let target = scratch.endpoint_for("s1").unwrap();
        assert_eq!(
            target.url().redacted(),
            "postgres://u:****@h:5433/s1?sslmode=disable"
        );
        assert_eq!(target.connect_port(5432), 6000);
    }
}
