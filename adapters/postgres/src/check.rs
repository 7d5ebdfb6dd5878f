//! [`exporter_contract::Source::check`] for PostgreSQL: every privilege the dump needs, each
//! one missing named with its object, then a dry run of the dump's start.
//!
//! What the dump needs (see the crate docs and `catalog/mod.rs`), checked in one catalog query
//! over the objects the dump reads — user schemas, not extension members:
//!
//! - `USAGE` on every schema that holds a table, sequence or materialized view
//!   (`has_schema_privilege`): without it no object in the schema can be read;
//! - `SELECT` on every table, partitioned table and materialized view (`has_table_privilege`:
//!   the dump locks them `ACCESS SHARE` and copies the rows; the preflight requires it for
//!   materialized views too) and on every sequence (`has_sequence_privilege`: its position is
//!   read with `SELECT last_value, is_called`);
//! - for tables with row-level security enabled: being exempt from it (superuser,
//!   `BYPASSRLS`, or the table's owner when the table does not `FORCE` it). The dump reads with
//!   `row_security = off`, so a policy that would hide rows fails the dump instead of
//!   shortening it (<https://www.postgresql.org/docs/current/ddl-rowsecurity.html>);
//! - `SELECT` on every large object (its owner's privileges, an ACL entry for the role or
//!   `PUBLIC`, or `lo_compat_privileges`; read with `lo_get`).
//!
//! When none is missing, the dump's start runs for real but changes nothing: the
//! repeatable-read, read-only snapshot, the catalog reads and the check for objects the
//! engine cannot export (`catalog::tables_and_plan`), `pg_export_snapshot()`
//! and one more connection importing it (`SET TRANSACTION SNAPSHOT`, as every `COPY`
//! connection does). A refusal there is a problem too, named as the dump would name it. The
//! tables are not locked: the privileges above are what `LOCK TABLE … IN ACCESS SHARE MODE`
//! needs.
//!
//! Right before a dump ([`exporter_contract::Source::check_and_hold`]) the start is not dry:
//! it is the dump's own (the tables locked, the snapshot, the plan, on the check's session),
//! kept for the dump that follows (`held.rs`), so that the catalogs are read once.
//!
//! Size: the sum of `pg_table_size` of the tables whose rows are dumped. The dump's own
//! estimate ([`exporter_contract::DumpMeta::size_hint`]) samples the tables' pages, which
//! needs their locks; the check takes none, so it reads the catalog only (its figure runs
//! high for tables of short values: heap tuples carry 28 bytes of overhead).

use exporter_contract::{
    CheckProblem, DumpOptions, Endpoint, EngineError, ErrorKind, ServerInfo, SourceCheck,
};

use crate::catalog::{not_ext, user_ns};
use std::time::Duration;

use crate::{ENGINE, begin_snapshot, catalog, connect, held, parallel, server_version};

/// Check `endpoint` for a dump with `options`. See the module docs.
///
/// With `hold` (the check right before the dump, [`exporter_contract::Source::check_and_hold`])
/// the dump's start runs for real instead of dry ([`crate::start`]: the tables locked, the
/// snapshot, the plan) and is kept for the dump for up to `hold` ([`crate::held`]).
pub(crate) async fn check(
    endpoint: Endpoint,
    options: DumpOptions,
    hold: Option<Duration>,
) -> Result<SourceCheck, EngineError> {
    let link = connect::Link::new(&endpoint)?;
    let mut conn = connect::connect(&link).await?;
    let version = server_version(&mut conn).await?;
    let mut problems = privileges(&mut conn).await?;
    let size_bytes = size(&mut conn).await;
    let tls = conn.tls.clone();
    let mut notes = Vec::new();
    if problems.is_empty() {
        let started = match hold {
            None => Box::pin(dry_start(&link, &mut conn, &options)).await,
            // The dump's start runs on this session (a role may be allowed only one).
            Some(keep_for) => {
                Box::pin(held_start(&endpoint, &link, conn, &options, keep_for)).await
            }
        };
        match started {
            Ok(said) => notes = said,
            Err(e) => problems.push(as_problem(e)?),
        }
    }
    Ok(SourceCheck {
        server: ServerInfo {
            engine: ENGINE.to_owned(),
            version,
            tls: Some(tls),
            notes,
        },
        size_bytes,
        problems,
    })
}

/// Every missing privilege, one row per object, in the order of the object names.
async fn privileges(conn: &mut connect::Conn) -> Result<Vec<CheckProblem>, EngineError> {
    let sql = format!(
        "WITH rels AS (
           SELECT c.oid, c.relkind, c.relowner, c.relrowsecurity, c.relforcerowsecurity,
                  n.oid AS nsp, n.nspname, c.relname,
                  pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS qname
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'm', 'S') AND {nsn} AND {ext}),
         me AS (SELECT rolsuper OR rolbypassrls AS exempt FROM pg_catalog.pg_roles WHERE rolname = current_user)
         SELECT 'schema ' || pg_catalog.quote_ident(nspname), 'USAGE',
                'the role may not use the schema, so it cannot read the tables and sequences in it'
           FROM (SELECT DISTINCT nsp, nspname FROM rels) s
          WHERE NOT pg_catalog.has_schema_privilege(nsp, 'USAGE')
         UNION ALL
         SELECT CASE relkind WHEN 'm' THEN 'materialized view ' ELSE 'table ' END || qname, 'SELECT',
                'the role may not read it'
           FROM rels WHERE relkind IN ('r', 'p', 'm') AND NOT pg_catalog.has_table_privilege(oid, 'SELECT')
         UNION ALL
         SELECT 'sequence ' || qname, 'SELECT', 'the role may not read its position'
           FROM rels
          WHERE CASE WHEN relkind = 'S' THEN NOT pg_catalog.has_sequence_privilege(oid, 'SELECT') ELSE false END
         UNION ALL
         SELECT 'table ' || qname, 'BYPASSRLS',
                'row-level security would hide rows from the role (the dump reads with row_security off and \
                 fails rather than dump fewer rows): dump as its owner, a superuser or a role with BYPASSRLS'
           FROM rels WHERE relkind = 'r' AND relrowsecurity
            AND NOT COALESCE((SELECT exempt FROM me), false)
            AND (relforcerowsecurity OR NOT pg_catalog.pg_has_role(relowner, 'USAGE'))
         UNION ALL
         SELECT 'large object ' || min(l.oid)::text, 'SELECT',
                CASE WHEN count(*) = 1 THEN 'the role may not read it'
                     ELSE 'the role may not read it, nor ' || (count(*) - 1)::text || ' more large object(s)' END
           FROM pg_catalog.pg_largeobject_metadata l
          WHERE NOT (pg_catalog.current_setting('lo_compat_privileges')::bool
                     OR pg_catalog.pg_has_role(l.lomowner, 'USAGE')
                     OR EXISTS (SELECT 1 FROM pg_catalog.aclexplode(COALESCE(l.lomacl, pg_catalog.acldefault('L', l.lomowner))) a
                                 WHERE a.privilege_type = 'SELECT'
                                   AND (a.grantee = 0 OR pg_catalog.pg_has_role(a.grantee, 'USAGE'))))
         HAVING count(*) > 0
         ORDER BY 1",
        nsn = user_ns("n"),
        ext = not_ext("pg_class", "c.oid"),
    );
    let rows = match conn.client.query(&sql, &[]).await {
        Ok(rows) => rows,
        Err(e) => return Err(conn.error(e, "catalog").await),
    };
    crate::cells::read_all(&rows, "privilege check of", 1, |r| {
        Ok(CheckProblem::privilege(
            r.get::<String>(0)?,
            r.get::<String>(1)?,
            r.get::<String>(2)?,
        ))
    })
}

/// The dump's size estimate: `pg_table_size` of the tables whose rows are copied. `None` if
/// it cannot be read.
async fn size(conn: &mut connect::Conn) -> Option<u64> {
    let sql = format!(
        "SELECT COALESCE(pg_catalog.sum(pg_catalog.pg_table_size(c.oid)), 0)::bigint
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND {} AND {}",
        user_ns("n"),
        not_ext("pg_class", "c.oid")
    );
    let row = conn.client.query_one(&sql, &[]).await.ok()?;
    u64::try_from(row.try_get::<_, i64>(0).ok()?).ok()
}

/// The dump's start without its locks and without its output: snapshot, unsupported objects,
/// the catalog plan, the snapshot exported and imported by a second connection. Ends with
/// `ROLLBACK`. Returns notes: a second session the server refuses is one (the dump then
/// copies on the sessions it gets, down to the snapshot's own), not a problem.
async fn dry_start(
    link: &connect::Link,
    conn: &mut connect::Conn,
    options: &DumpOptions,
) -> Result<Vec<String>, EngineError> {
    begin_snapshot(conn).await?;
    catalog::tables_and_plan(link, conn, options.ownership).await?;
    let notes = second_session(link, conn).await?;
    if let Err(e) = conn.client.batch_execute("ROLLBACK").await {
        let endpoint = conn.endpoint.clone();
        return Err(conn.error(e, &endpoint).await);
    }
    Ok(notes)
}

/// The dump's real start ([`crate::start`], on `conn`), checked as [`dry_start`] checks (a second
/// session importing the snapshot), then kept for the dump for up to `keep_for`.
async fn held_start(
    endpoint: &Endpoint,
    link: &connect::Link,
    conn: connect::Conn,
    options: &DumpOptions,
    keep_for: Duration,
) -> Result<Vec<String>, EngineError> {
    let mut started = Box::pin(crate::start(link, options.ownership, Some(conn))).await?;
    let notes = second_session(link, &mut started.conn).await?;
    held::keep(endpoint, options.ownership, started, keep_for);
    Ok(notes)
}

/// Export `conn`'s snapshot and import it on one more session, as every `COPY` session does.
/// A session the server refuses is a note (the dump copies on the sessions it gets, down to
/// the snapshot's own), not a problem.
async fn second_session(
    link: &connect::Link,
    conn: &mut connect::Conn,
) -> Result<Vec<String>, EngineError> {
    let snapshot = parallel::export_snapshot(conn).await?;
    let mut notes = Vec::new();
    match parallel::open_worker(link, &snapshot).await {
        Ok(worker) => parallel::close_worker(worker).await?,
        Err(e) if e.kind() != ErrorKind::Cancelled => notes.push(format!(
            "a second session could not be opened ({e}): the dump copies its tables on the \
             sessions the server allows, down to one"
        )),
        Err(e) => return Err(e),
    }
    Ok(notes)
}

/// A failure of the dry run as a problem, when it is about the database (a privilege, an
/// object the engine refuses, a query the server refuses); a connection that failed stays an
/// error.
fn as_problem(e: EngineError) -> Result<CheckProblem, EngineError> {
    let object = e.object().unwrap_or("database").to_owned();
    match e.kind() {
        ErrorKind::Unsupported => Ok(CheckProblem::refused(object, e.message())),
        ErrorKind::Permission | ErrorKind::Query | ErrorKind::NotFound => {
            Ok(CheckProblem::other(object, e.message()))
        }
        _ => Err(e),
    }
}
