//! The restore side: [`MysqlTarget`] applies a SQL script (ours, or mysqldump / mariadb-dump
//! output) the way `mysql db < script.sql` does, and [`MysqlScratch`] creates and drops the
//! scratch databases of `verify --level restore`.
//!
//! # How a script is applied
//!
//! With [`RestoreOptions::jobs`] 1: one connection, in autocommit, with the server's default
//! session (like the stock client: the script's header sets what it needs). With more, see
//! "Parallel restore" below: the same statements, in the same session states, the data on
//! several connections. The payload is split with [`crate::script`]
//! (statements end at the current delimiter; `DELIMITER`, strings, comments and executable
//! comments as the client reads them) and each statement is sent on its own with the text
//! protocol (`COM_QUERY`), in order. After each statement the server's status flags say
//! whether `NO_BACKSLASH_ESCAPES` / `ANSI_QUOTES` are now on, which changes how the rest of
//! the script is split (the client does the same). `USE db` and `CREATE DATABASE IF NOT
//! EXISTS` run as written: a script of every schema selects its own databases; a script of
//! one database restores into the URL's database.
//!
//! Like `mysql` without `--force`, the first failing statement stops the restore:
//! [`ErrorKind::Query`] (or `Permission` for a privilege error, `Protocol` for a lost
//! connection) whose object is `statement N (line L): FIRST WORDS` and whose message is the
//! server's `ERROR code (state): message`. For statements that carry rows (`INSERT`,
//! `REPLACE`, `UPDATE`, `DELETE`) quoted values in the server's message are replaced with
//! `'…'` (e.g. `Duplicate entry '…' for key 'PRIMARY'`), so no row data reaches an error.
//! Statements already applied stay applied (there is no enclosing transaction: DDL commits
//! implicitly in MySQL anyway).
//!
//! A statement longer than the server's `max_allowed_packet` fails before it is sent (and
//! before it is buffered whole), naming it. Input that ends inside a statement is a
//! [`ErrorKind::Protocol`] error.
//!
//! # Parallel restore
//!
//! With [`RestoreOptions::jobs`] N > 1 the restore opens N **worker** connections beside the
//! **main** session (the same account, database and TLS; the server's default session), and
//! still splits and reads the script in order, one statement at a time. Each statement is one
//! of three kinds:
//!
//! - a **data statement** — `INSERT [INTO] t [(columns)] VALUES (…), …` whose values are
//!   literals only (numbers, strings, `NULL`, `TRUE`/`FALSE`, `X'…'`, `B'…'`, charset
//!   introducers: what our dumps, mysqldump and mariadb-dump write), into a base table with no
//!   trigger (and no foreign key while `foreign_key_checks` is on), giving its AUTO_INCREMENT
//!   column and any column whose default is an expression (`NEXTVAL(s)`) as non-zero numbers
//!   — goes to the next idle worker, without waiting for the statements before it. What the
//!   table allows is read from `information_schema` on the main session at its first INSERT
//!   after each other statement. The INSERTs of one table run on any worker, in any order, so
//!   one large table loads on all N connections (our dumps write a table's rows as
//!   consecutive 1 MiB INSERTs after its `CREATE TABLE`; keeping a table on one connection
//!   would load those one at a time again, since a table's INSERTs come one after another in
//!   the script and memory holds only a few of them. Measured on the benchmark schema — a
//!   515 MB script, 84% of it one table — on 2 cores with `jobs` 2: 12.2–13.5 s spread over
//!   the workers, 19.2–19.6 s with one INSERT of a table at a time, 22.7–24.2 s for
//!   `zstd -dc | mariadb`). Except the first INSERT of a table, which runs alone: MariaDB
//!   10.6 and later load an empty InnoDB table in bulk under an exclusive table lock when
//!   unique and foreign key checks are off (MDEV-24621), and two INSERTs that both start on
//!   the empty table deadlock. A data statement that InnoDB still rolls back as a deadlock
//!   victim (ERROR 1213, "try restarting transaction": a new partition, say) runs again, up
//!   to 5 times — in autocommit it left nothing behind;
//! - a **session statement** — `SET` of variables without function calls, and `USE` — waits
//!   for the running data statements, runs on the main session, then on every worker. So
//!   every connection sees every session statement in script order relative to the work it
//!   runs, and each INSERT runs under exactly the settings it would have run under serially:
//!   our header's `UNIQUE_CHECKS=0`, `FOREIGN_KEY_CHECKS=0`, `SQL_MODE`, `TIME_ZONE` and
//!   `NAMES`, the `system_versioning_insert_history` switch of a system-versioned table,
//!   mysqldump's `/*!40101 SET … */` lines;
//! - anything else is a **barrier**: it waits until every running statement has finished,
//!   then runs on the main session. In our dumps those are the `CREATE TABLE`s (before each
//!   table's INSERTs), sequences, and after all data the routines, views, triggers, events
//!   and the footer: the pre-data, data, post-data order of the script holds.
//!
//! Locks and transactions belong to one connection, so a `LOCK TABLES … UNLOCK TABLES`
//! region and a `START TRANSACTION` / `BEGIN … COMMIT` / `ROLLBACK` region run whole on the
//! main session (mysqldump and mariadb-dump lock each table around its INSERTs: their scripts
//! restore at serial speed unless dumped with `--skip-add-locks`). After a statement that
//! may change the session in a way the workers cannot follow — `CALL`, `EXECUTE`, `XA`,
//! `HANDLER`, `FLUSH`, `CREATE TEMPORARY TABLE`, a `SET` of `autocommit`, a transaction
//! characteristic, a global, a password or role, a per-connection or next-statement-only
//! variable (`INSERT_ID`, `LAST_INSERT_ID`, …), a `SET` calling a
//! function, a statement reading or writing user variables (`@x`), any statement keyword not
//! known to leave the session alone — the rest of the script runs on the main session only.
//!
//! **Memory**: the statements running on workers (at most N, and at most 4 MiB of them
//! together unless a single statement is larger, which then runs alone) plus the one being
//! read; each costs about four times its size while it runs (the driver copies it into a
//! command buffer and its connection's write buffer). Our dump's INSERTs are at most 1 MiB
//! ([`crate::stream::INSERT_LIMIT`]), so at most four of them run at once: peak RSS 44 MiB
//! with `jobs` 2, 55 MiB with `jobs` 8 for the benchmark schema.
//!
//! **Failures**: the first failing statement stops the restore: nothing is started after
//! it, the statements already running on other workers finish (each is one statement), and
//! the error is the one of the failed statement with the lowest number, named as in the
//! serial restore (`statement N (line L): INSERT INTO t`); no summary is returned. Two
//! INSERTs that conflict with each other (the same key in both) may run in the other order
//! than serially: the restore fails either way, but it may name the earlier one. The summary's
//! counts equal the serial restore's. Rows of a table without a primary key may be stored
//! in another order than serially (the fingerprint does not depend on row order).
//!
//! # Ownership
//!
//! MySQL objects have no owners. With [`RestoreOptions::ownership`] off, `GRANT` and
//! `REVOKE` statements are skipped and counted in [`RestoreSummary::skipped`] (our dumps
//! contain none; a hand-made or `--system=users` script may). `DEFINER=` clauses are part of
//! a view's or routine's security context, not ownership. With
//! [`DefinerPolicy::Keep`] (the default) they are applied as written (our dumps keep them,
//! as mysqldump's do): the restoring account needs `SET USER` (MariaDB 10.5.2+; `SUPER`
//! before; MySQL 8: `SET_USER_ID`, 8.2+: `SET_ANY_DEFINER`) for objects of other accounts,
//! and those accounts must exist for the objects to work. With
//! [`DefinerPolicy::CurrentUser`] the account of each `CREATE`/`ALTER` statement head's
//! clause (also inside mysqldump's `/*!50013 DEFINER=… */`) becomes `CURRENT_USER`, so any
//! account that may create the objects restores them, as their definer.
//!
//! # Counting
//!
//! [`RestoreSummary::statements`] counts statements sent (client commands such as
//! `DELIMITER` are not statements); [`RestoreSummary::rows`] sums the affected-row counts of
//! `INSERT` statements.

use bytes::Bytes;
use exporter_contract::{
    DefinerPolicy, Endpoint, EngineError, ErrorKind, PayloadFormat, RestoreOptions, RestoreSummary,
    ScratchServer, ServerInfo, TableSummary, Target,
};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use mysql_async::consts::StatusFlags;
use mysql_async::prelude::Queryable;

use crate::catalog::SYSTEM_SCHEMAS;
use crate::connect::{self, Link, Phase, Session};
use crate::encode::{display_ident, quote_ident, quote_str, rewrite_definer};
use crate::script::{Splitter, Statement};

/// A MySQL or MariaDB database to restore into (`mysql://` / `mariadb://` URL). With a
/// database in the URL, a one-database script restores into it; without, the script must
/// select its databases (`USE`), as a dump of every schema does. Cheap to build: no I/O.
#[derive(Debug, Clone)]
pub struct MysqlTarget {
    endpoint: Endpoint,
}

impl MysqlTarget {
    /// A target for `endpoint` (TLS as for [`crate::MysqlSource`]). No I/O.
    #[must_use]
    pub fn new(endpoint: impl Into<Endpoint>) -> Self {
        Self {
            endpoint: endpoint.into(),
        }
    }

    fn link(&self) -> Result<Link, EngineError> {
        Link::new(&self.endpoint)
    }

    fn has_database(&self) -> bool {
        self.endpoint.url().database().is_some()
    }
}

impl Target for MysqlTarget {
    fn describe(&self) -> String {
        format!("mysql {}", self.endpoint.redacted())
    }

    fn validate(&self) -> Result<(), EngineError> {
        self.link().map(|_| ())
    }

    fn preflight(&self) -> BoxFuture<'_, Result<ServerInfo, EngineError>> {
        async move {
            let s = connect::connect(&self.link()?).await?;
            let info = ServerInfo {
                engine: s.flavor.engine().to_owned(),
                version: s.version.clone(),
                tls: Some(s.tls.clone()),
                notes: Vec::new(),
            };
            let _ = s.conn.disconnect().await;
            Ok(info)
        }
        .boxed()
    }

    fn existing_objects(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>> {
        async move {
            let mut s = open(&self.link()?).await?;
            let objects = list_objects(&mut s, self.has_database()).await?;
            let _ = s.conn.disconnect().await;
            let mut names: Vec<String> = objects.iter().map(Existing::display).collect();
            names.sort();
            Ok(names)
        }
        .boxed()
    }

    fn clean(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        async move {
            let mut s = open(&self.link()?).await?;
            let mut objects = list_objects(&mut s, self.has_database()).await?;
            // Dependents first: events and routines, views, then tables (foreign keys are
            // off for this session), sequences last (table defaults may use them).
            objects.sort_by_key(|o| (o.kind.drop_order(), o.schema.clone(), o.name.clone()));
            s.exec_drop("SET SESSION FOREIGN_KEY_CHECKS = 0", None)
                .await?;
            for o in &objects {
                let sql = format!(
                    "DROP {} IF EXISTS {}.{}",
                    o.kind.sql(),
                    quote_ident(&o.schema),
                    quote_ident(&o.name)
                );
                let object = format!(
                    "{} {}.{}",
                    o.kind.label(),
                    quote_ident(&o.schema),
                    quote_ident(&o.name)
                );
                s.exec_drop(&sql, Some(&object)).await?;
            }
            let _ = s.conn.disconnect().await;
            Ok(())
        }
        .boxed()
    }

    fn restore(
        &self,
        format: PayloadFormat,
        body: BoxStream<'static, Result<Bytes, EngineError>>,
        options: RestoreOptions,
    ) -> BoxFuture<'_, Result<RestoreSummary, EngineError>> {
        async move {
            if format != PayloadFormat::Sql {
                return Err(EngineError::new(
                    ErrorKind::Unsupported,
                    format!(
                        "a MySQL target restores SQL scripts, not {} payloads",
                        format.extension()
                    ),
                )
                .with_object(self.endpoint.redacted()));
            }
            restore_script(&self.link()?, body, &options).await
        }
        .boxed()
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Vec<TableSummary>, EngineError>> {
        async move { crate::fingerprint_database(&self.endpoint).await }.boxed()
    }

    /// [`crate::fingerprint_database_with`]: tables and sequences spread over `jobs`
    /// connections, each in its own consistent snapshot of the scratch database nobody else
    /// writes to; the same summaries as with one.
    fn fingerprint_with(
        &self,
        jobs: usize,
    ) -> BoxFuture<'_, Result<Vec<TableSummary>, EngineError>> {
        async move { crate::fingerprint_database_with(&self.endpoint, jobs).await }.boxed()
    }
}

/// A MySQL or MariaDB server on which `verify --level restore` creates scratch databases:
/// `create` runs `CREATE DATABASE name CHARACTER SET utf8mb4` and returns a [`MysqlTarget`]
/// whose URL names it; `drop_scratch` runs `DROP DATABASE IF EXISTS name`. The URL's own
/// database, if any, is ignored. Cheap to build: no I/O.
#[derive(Debug, Clone)]
pub struct MysqlScratch {
    endpoint: Endpoint,
}

impl MysqlScratch {
    /// A scratch server reached through `url` (an account that may create and drop
    /// databases). No I/O.
    #[must_use]
    pub fn new(endpoint: impl Into<Endpoint>) -> Self {
        Self {
            endpoint: endpoint.into(),
        }
    }

    /// The server's link with `database` as the URL's path (empty: no database): the same
    /// dial address and TLS settings.
    fn with_database(&self, database: &str) -> Result<Link, EngineError> {
        Link::new(&self.endpoint)?.with_database(database)
    }

    async fn run(&self, name: &str, sql: String) -> Result<(), EngineError> {
        check_scratch_name(name)?;
        let mut s = connect::connect(&self.with_database("")?).await?;
        s.exec_drop(&sql, Some(&format!("database {}", quote_ident(name))))
            .await?;
        let _ = s.conn.disconnect().await;
        Ok(())
    }
}

impl ScratchServer for MysqlScratch {
    fn describe(&self) -> String {
        format!("mysql scratch server {}", self.endpoint.redacted())
    }

    fn create(&self, name: &str) -> BoxFuture<'_, Result<Box<dyn Target>, EngineError>> {
        let name = name.to_owned();
        async move {
            let sql = format!(
                "CREATE DATABASE {} CHARACTER SET utf8mb4",
                quote_ident(&name)
            );
            self.run(&name, sql).await?;
            let target: Box<dyn Target> = Box::new(MysqlTarget::new(
                self.with_database(&name)?.endpoint().clone(),
            ));
            Ok(target)
        }
        .boxed()
    }

    fn drop_scratch(&self, name: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        let name = name.to_owned();
        async move {
            let sql = format!("DROP DATABASE IF EXISTS {}", quote_ident(&name));
            self.run(&name, sql).await
        }
        .boxed()
    }

    /// Connect (no database selected): an unreachable server, a TLS or login problem stops a
    /// verification before its first restore (and `dump --verify restore` before its first
    /// dump) instead of failing each database's check. Whether the account may create
    /// databases is left to `create` (MySQL grants it per database name pattern).
    fn check(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        async move {
            let s = connect::connect(&self.with_database("")?).await?;
            let _ = s.conn.disconnect().await;
            Ok(())
        }
        .boxed()
    }
}

/// Scratch names are what the core makes: 1–64 bytes of `[a-z0-9_]`.
fn check_scratch_name(name: &str) -> Result<(), EngineError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(EngineError::new(
            ErrorKind::Unsupported,
            "a scratch database name must be 1 to 64 characters of a-z, 0-9 and _",
        )
        .with_object(format!("database {}", quote_ident(name))))
    }
}

/// A session for catalog work (binary results, read with [`connect::text`]).
async fn open(link: &Link) -> Result<Session, EngineError> {
    let mut s = connect::connect(link).await?;
    s.configure().await?;
    Ok(s)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Event,
    PackageBody,
    Package,
    Procedure,
    Function,
    View,
    Table,
    Sequence,
}

impl Kind {
    fn from_type(t: &str) -> Option<Self> {
        Some(match t {
            "BASE TABLE" | "SYSTEM VERSIONED" => Self::Table,
            "VIEW" => Self::View,
            "SEQUENCE" => Self::Sequence,
            "PROCEDURE" => Self::Procedure,
            "FUNCTION" => Self::Function,
            "PACKAGE" => Self::Package,
            "PACKAGE BODY" => Self::PackageBody,
            "EVENT" => Self::Event,
            _ => return None,
        })
    }

    fn label(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::PackageBody => "package body",
            Self::Package => "package",
            Self::Procedure => "procedure",
            Self::Function => "function",
            Self::View => "view",
            Self::Table => "table",
            Self::Sequence => "sequence",
        }
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Event => "EVENT",
            Self::PackageBody => "PACKAGE BODY",
            Self::Package => "PACKAGE",
            Self::Procedure => "PROCEDURE",
            Self::Function => "FUNCTION",
            Self::View => "VIEW",
            Self::Table => "TABLE",
            Self::Sequence => "SEQUENCE",
        }
    }

    fn drop_order(self) -> u8 {
        self as u8
    }
}

/// An object already in a target.
struct Existing {
    schema: String,
    name: String,
    kind: Kind,
    qualified: bool,
}

impl Existing {
    fn display(&self) -> String {
        if self.qualified {
            format!(
                "{} {}.{}",
                self.kind.label(),
                display_ident(&self.schema),
                display_ident(&self.name)
            )
        } else {
            format!("{} {}", self.kind.label(), display_ident(&self.name))
        }
    }
}

/// Tables, sequences, views, routines and events of the session's database (`one`) or of
/// every non-system schema.
async fn list_objects(s: &mut Session, one: bool) -> Result<Vec<Existing>, EngineError> {
    let filter = |col: &str| {
        if one {
            format!("{col} = DATABASE()")
        } else {
            let system: Vec<String> = SYSTEM_SCHEMAS.iter().map(|s| quote_str(s)).collect();
            format!("{col} NOT IN ({})", system.join(", "))
        }
    };
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE {} \
         UNION ALL SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE {} \
         UNION ALL SELECT EVENT_SCHEMA, EVENT_NAME, 'EVENT' FROM information_schema.EVENTS WHERE {}",
        filter("TABLE_SCHEMA"),
        filter("ROUTINE_SCHEMA"),
        filter("EVENT_SCHEMA"),
    );
    let rows = s.rows(&sql, None).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let schema = connect::text_req(row, 0, "the schema of an object")?;
        let name = connect::text_req(row, 1, "the name of an object")?;
        let kind = connect::text_req(row, 2, "the type of an object")?;
        // Temporary tables and system views are not the target's objects.
        if let Some(kind) = Kind::from_type(&kind) {
            out.push(Existing {
                schema,
                name,
                kind,
                qualified: !one,
            });
        }
    }
    Ok(out)
}

/// Apply a script; see the module docs.
async fn restore_script(
    link: &Link,
    mut body: BoxStream<'static, Result<Bytes, EngineError>>,
    options: &RestoreOptions,
) -> Result<RestoreSummary, EngineError> {
    let mut s = connect::connect(link).await?;
    let settings: Option<(u64, String)> = match s
        .conn
        .query_first("SELECT @@max_allowed_packet, @@SESSION.sql_mode")
        .await
    {
        Ok(r) => r,
        Err(e) => return Err(s.error(&e, None)),
    };
    let (max_packet, sql_mode) = settings.unwrap_or((16 * 1024 * 1024, String::new()));
    let mut split = Splitter::new();
    // The query packet holds a command byte and the statement, and the server takes
    // packets shorter than max_allowed_packet (measured: a statement of
    // max_allowed_packet - 2 bytes runs, one byte more is ERROR 1153).
    split.set_limit(usize::try_from(max_packet.saturating_sub(2)).unwrap_or(usize::MAX));
    let modes: Vec<&str> = sql_mode.split(',').collect();
    split.set_modes(
        !modes.contains(&"NO_BACKSLASH_ESCAPES"),
        modes.contains(&"ANSI_QUOTES"),
    );
    let fixed = link.endpoint().url().database();
    let workers = if options.jobs > 1 {
        open_workers(link, options.jobs).await
    } else {
        Vec::new()
    };
    let result = if workers.is_empty() {
        apply(&mut s, &mut split, &mut body, options, fixed.as_deref()).await
    } else {
        crate::parallel::apply(
            &mut s,
            workers,
            &mut split,
            &mut body,
            options,
            fixed.as_deref(),
        )
        .await
    };
    // Always end the session, also after a failure: a script may hold `LOCK TABLES` (as
    // mysqldump output does around its INSERTs), and an idle session keeps those locks.
    if let Err(e) = s.conn.disconnect().await {
        tracing::debug!(error = %connect::Redacted::of(&e), "disconnect after restore");
    }
    result
}

/// The most worker sessions a restore opens, whatever `--jobs` says: the script's tables are
/// restored one session each, and far more sessions than cores only wait on the server (a
/// `--jobs 100000` opened connections until the server reset them).
const MAX_WORKERS: usize = 64;

/// The worker sessions of a parallel restore, opened at once: up to `jobs` connections
/// through the same link (same account, database and TLS), with the server's default session
/// like the main one, so that every statement of the script that sets the session reaches
/// them from its first one on. Sessions the server refuses (`max_connections`, a per-account
/// limit: ERROR 1040, 1203, 1226) are left out with a warning and the others do their share;
/// with none, the restore runs serially on the main session, as PostgreSQL's parallel restore
/// copes with the same limits.
async fn open_workers(link: &Link, jobs: usize) -> Vec<Session> {
    let jobs = jobs.min(MAX_WORKERS);
    let opened = futures::future::join_all((0..jobs).map(|_| connect::connect(link))).await;
    let mut workers = Vec::with_capacity(jobs);
    let mut refused = None;
    for session in opened {
        match session {
            Ok(s) => workers.push(s),
            Err(e) => refused = Some(e),
        }
    }
    if let Some(e) = refused {
        tracing::warn!(
            "{} of {jobs} restore session(s) could not connect ({e}); {}",
            jobs - workers.len(),
            if workers.is_empty() {
                "restoring on one session".to_owned()
            } else {
                format!("the other {} do their share", workers.len())
            }
        );
    }
    workers
}

async fn apply(
    s: &mut Session,
    split: &mut Splitter,
    body: &mut BoxStream<'static, Result<Bytes, EngineError>>,
    options: &RestoreOptions,
    fixed: Option<&str>,
) -> Result<RestoreSummary, EngineError> {
    let mut summary = RestoreSummary::default();
    loop {
        while let Some(st) = split.next_statement()? {
            refuse_switching(&st, fixed)?;
            execute(s, &st, options, &mut summary, split).await?;
        }
        match body.next().await {
            Some(Ok(chunk)) => split.push(&chunk),
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    split.finish();
    while let Some(st) = split.next_statement()? {
        refuse_switching(&st, fixed)?;
        execute(s, &st, options, &mut summary, split).await?;
    }
    Ok(summary)
}

/// A target whose URL names a database (also every scratch database) takes scripts of one
/// database only. A script that creates or selects databases itself (`CREATE DATABASE`,
/// `USE`, also inside an executable comment: a dump of every schema, or `mariadb-dump
/// --databases`) would write into the databases it names — on a scratch server, possibly the
/// very databases it was dumped from — so it is refused before that statement runs.
///
/// This catches the honest mistake (an archive of a whole server), not a hostile archive:
/// like the stock client, the restore runs the script's SQL, and SQL may name other
/// databases (`INSERT INTO other.t …`). Archives are trusted input; scratch servers should be
/// dedicated (README, "Verify by restoring").
pub(crate) fn refuse_switching(st: &Statement, fixed: Option<&str>) -> Result<(), EngineError> {
    let Some(database) = fixed else {
        return Ok(());
    };
    // Look through an executable comment's version prefix (`/*!40000 USE db */`, `/*M!…`):
    // the server runs what follows it.
    let head = String::from_utf8_lossy(&st.text[..st.text.len().min(96)]).into_owned();
    let head = head
        .strip_prefix("/*M!")
        .or_else(|| head.strip_prefix("/*!"))
        .map_or(head.as_str(), |rest| {
            rest.trim_start_matches(|c: char| c.is_ascii_digit())
        });
    let words: Vec<String> = head
        .split(|c: char| c.is_ascii_whitespace() || c == '*' || c == '/')
        .filter(|w| !w.is_empty())
        .take(2)
        .map(str::to_ascii_uppercase)
        .collect();
    let switching = match words.as_slice() {
        [first, ..] if first == "USE" => true,
        [first, second] if first == "CREATE" => second == "DATABASE" || second == "SCHEMA",
        _ => false,
    };
    if switching {
        return Err(EngineError::new(
            ErrorKind::Unsupported,
            format!(
                "the script selects its own databases (a dump of every schema, made from a URL \
                 without a database); restoring it into database {} would write into the \
                 databases it names instead: restore it into a server URL without a database, \
                 or dump each database by name",
                quote_ident(database)
            ),
        )
        .with_object(st.label()));
    }
    Ok(())
}

/// Statement keywords whose server errors may quote row values.
const DATA_KEYWORDS: &[&str] = &["INSERT", "REPLACE", "UPDATE", "DELETE"];

/// Run one statement on the main session: skipped (`GRANT`/`REVOKE` with ownership off) or
/// sent; counted in `summary`; the server's string rules after it passed to `split`.
pub(crate) async fn execute(
    s: &mut Session,
    st: &Statement,
    options: &RestoreOptions,
    summary: &mut RestoreSummary,
    split: &mut Splitter,
) -> Result<(), EngineError> {
    let keyword = st.keyword();
    if !options.ownership && matches!(keyword.as_str(), "GRANT" | "REVOKE") {
        summary.skipped += 1;
        return Ok(());
    }
    send(&mut s.conn, st, &keyword, options.definer).await?;
    summary.statements += 1;
    if keyword == "INSERT" {
        summary.rows += s.conn.affected_rows();
    }
    // The client re-reads these flags from every OK packet (`mysql.server_status`).
    if let Some(ok) = s.conn.last_ok_packet() {
        let flags = ok.status_flags();
        split.set_modes(
            !flags.contains(StatusFlags::SERVER_STATUS_NO_BACKSLASH_ESCAPES),
            flags.contains(StatusFlags::SERVER_STATUS_ANSI_QUOTES),
        );
    }
    Ok(())
}

/// Send one statement (its `keyword` from [`Statement::keyword`]) on `conn`, with
/// `--definer current-user` applied to `CREATE`/`ALTER` heads; a failure is the statement's
/// error ([`statement_error`]).
pub(crate) async fn send(
    conn: &mut mysql_async::Conn,
    st: &Statement,
    keyword: &str,
    definer: DefinerPolicy,
) -> Result<(), EngineError> {
    send_raw(conn, st, keyword, definer)
        .await
        .map_err(|e| statement_error(&e, st, keyword))
}

/// [`send`] with the driver's error as it is.
pub(crate) async fn send_raw(
    conn: &mut mysql_async::Conn,
    st: &Statement,
    keyword: &str,
    definer: DefinerPolicy,
) -> Result<(), mysql_async::Error> {
    // `--definer current-user`: the head's DEFINER= names the restoring account instead.
    let rewritten = match definer {
        DefinerPolicy::CurrentUser if matches!(keyword, "CREATE" | "ALTER") => {
            rewrite_definer(&st.text)
        }
        _ => None,
    };
    let text = rewritten.as_deref().unwrap_or(&st.text);
    conn.query_drop(text).await
}

/// The error of a failed statement: its label as object, the server's code and message
/// (values redacted for data statements), the kind from [`connect::classify`] except that a
/// missing table or database inside a script is a query failure, not a missing target.
pub(crate) fn statement_error(
    e: &mysql_async::Error,
    st: &Statement,
    keyword: &str,
) -> EngineError {
    let base = connect::classify(e, Phase::Query);
    let mysql_async::Error::Server(server) = e else {
        return base.with_object(st.label());
    };
    let kind = match base.kind() {
        ErrorKind::NotFound | ErrorKind::Auth => ErrorKind::Query,
        k => k,
    };
    let message = if DATA_KEYWORDS.contains(&keyword) {
        redact_values(&server.message)
    } else {
        server.message.clone()
    };
    EngineError::new(
        kind,
        format!("ERROR {} ({}): {message}", server.code, server.state),
    )
    .with_object(st.label())
    .retryable(base.is_retryable())
}

/// Words after which a quoted name (not a value) follows in server messages.
const NAME_WORDS: &[&str] = &[
    "column",
    "key",
    "table",
    "constraint",
    "index",
    "database",
    "schema",
    "field",
    "function",
    "procedure",
    "trigger",
    "view",
    "sequence",
    "variable",
];

/// A server message with every quoted value replaced by `'…'`: the text after `near` in a
/// syntax error (it quotes the statement), and every `'…'` not preceded by a word that
/// introduces a name (`column 'c'`, `key 'PRIMARY'`).
#[must_use]
pub fn redact_values(message: &str) -> String {
    let mut msg = message.to_owned();
    if let Some(at) = msg.find("near '") {
        let from = at + "near '".len();
        let to = msg
            .rfind("' at line")
            .filter(|&t| t >= from)
            .unwrap_or(msg.len());
        msg.replace_range(from..to, "…");
    }
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg.as_str();
    while let Some(i) = rest.find('\'') {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let after = &tail[1..];
        let Some(j) = after.find('\'') else {
            out.push_str("'…");
            rest = "";
            break;
        };
        let quoted = &after[..j];
        let prev = head
            .trim_end()
            .rsplit(' ')
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if quoted == "…" || NAME_WORDS.contains(&prev.as_str()) {
            out.push('\'');
            out.push_str(quoted);
            out.push('\'');
        } else {
            out.push_str("'…'");
        }
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_lose_values_but_keep_names() {
        assert_eq!(
            redact_values("Duplicate entry '7-alice' for key 'PRIMARY'"),
            "Duplicate entry '…' for key 'PRIMARY'"
        );
        assert_eq!(
            redact_values("Data too long for column 'name' at row 3"),
            "Data too long for column 'name' at row 3"
        );
        assert_eq!(
            redact_values(
                "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near ''secret'),(2,'x')' at line 1"
            ),
            "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near '…' at line 1"
        );
        assert_eq!(
            redact_values("Incorrect integer value: 'abc' for column `d`.`t`.`c` at row 1"),
            "Incorrect integer value: '…' for column `d`.`t`.`c` at row 1"
        );
        assert_eq!(redact_values("odd 'unbalanced"), "odd '…");
    }

    #[test]
    fn scratch_names_are_plain_identifiers() {
        assert!(check_scratch_name("exporter_verify_20261129t074800z_billing").is_ok());
        for bad in ["", "Upper", "a`b", "a-b", &"x".repeat(65)] {
            assert_eq!(
                check_scratch_name(bad).unwrap_err().kind(),
                ErrorKind::Unsupported
            );
        }
    }

    #[test]
    fn describe_never_shows_the_password() {
        let url = exporter_contract::DatabaseUrl::parse("mysql://app:hunter2@db.example:3306/main")
            .unwrap();
        assert_eq!(
            MysqlTarget::new(url.clone()).describe(),
            "mysql mysql://app:****@db.example:3306/main"
        );
        assert!(!MysqlScratch::new(url).describe().contains("hunter2"));
    }

    #[test]
    fn scratch_urls_name_the_database() {
        let url = exporter_contract::DatabaseUrl::parse("mysql://app:pw@db.example:3306/ignored")
            .unwrap();
        let scratch = MysqlScratch::new(Endpoint::new(url).dial("127.0.0.1", 43306));
        let url_of = |db: &str| scratch.with_database(db).unwrap().endpoint().url().clone();
        assert_eq!(url_of("s1").database().as_deref(), Some("s1"));
        assert_eq!(url_of("").database(), None);
        assert_eq!(url_of("s1").password().as_deref(), Some("pw"));
        assert_eq!(
            scratch
                .with_database("s1")
                .unwrap()
                .endpoint()
                .connect_port(3306),
            43306
        );
    }
}
