//! Reading the catalogs inside the snapshot and planning the script: pre-data DDL in
//! dependency order, the tables whose rows are copied, sequence positions, large objects and
//! post-data DDL.
//!
//! The server deparses everything it can (`pg_get_*def`, `format_type`, `pg_get_expr`,
//! `quote_ident`), with `search_path = ''` so every name comes out schema-qualified.
//! References: <https://www.postgresql.org/docs/current/functions-info.html> (catalog
//! information functions), <https://www.postgresql.org/docs/current/catalogs.html>.
//!
//! Layout: this module lists and locks the tables and assembles the [`Plan`]; `pre` collects
//! the pre-data objects kind by kind and orders them (`cycles` breaks the dependency cycles
//! that run through a table's default or check, as pg_dump does), `table` builds `CREATE TABLE`, `post`
//! the post-data statements and comments, `acl` owners and privileges; `kinds` (procedural
//! languages, conversions, text search parsers and templates, and the hooks through which
//! the shared code knows the kinds below), `foreign_tables`, `subscriptions` and
//! `event_triggers` each mirror the pg_dump function that writes their kind.

use std::collections::{BTreeMap, BTreeSet};

use exporter_contract::{EngineError, ErrorKind};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::cells::{Cells, read_all};
use crate::connect::{Conn, Link};
use crate::quote::quote_literal;

mod acl;
mod cycles;
mod event_triggers;
mod extconfig;
mod foreign_tables;
mod kinds;
mod loadcode;
mod post;
mod pre;
mod ranges;
mod routing;
mod seclabel;
mod size;
mod subscriptions;
mod table;
mod tablespace;

pub use size::size_hint;

pub(crate) use loadcode::RESET_PATH as RESET_SEARCH_PATH;
use pre::PreData;
use table::{Rel, Tables};

/// First OID handed to user objects (`FirstNormalObjectId` in the server's `transam.h`).
const FIRST_USER_OID: u32 = 16384;

/// SQL predicate: namespace alias `n` is a user schema.
pub(crate) fn user_ns(n: &str) -> String {
    format!(
        "({n}.nspname <> 'pg_catalog' AND {n}.nspname <> 'information_schema' \
         AND {n}.nspname NOT LIKE 'pg\\_toast%' AND {n}.nspname NOT LIKE 'pg\\_temp\\_%')"
    )
}

/// SQL predicate: object `oid` of catalog `catalog` is not a member of an extension
/// (extension members are recreated by `CREATE EXTENSION`, never dumped one by one) and,
/// outside `pg_class`, not an internal part of another object (e.g. the constructor
/// functions and casts the server creates with a range type; deptype `i`,
/// <https://www.postgresql.org/docs/current/catalog-pg-depend.html>). Relations keep
/// internal members: identity sequences are handled with their column.
pub(crate) fn not_ext(catalog: &str, oid: &str) -> String {
    let types = if catalog == "pg_class" {
        "('e')"
    } else {
        "('e', 'i')"
    };
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend xd WHERE xd.classid = \
         'pg_catalog.{catalog}'::pg_catalog.regclass AND xd.objid = {oid} AND xd.deptype IN {types})"
    )
}

/// SQL predicate: relation `oid` is one the dump locks and whose rows it copies (given the
/// right `relkind`): not an extension member ([`not_ext`]), or an extension's configuration
/// table (its rows are dumped, `catalog/extconfig.rs`).
fn rows_dumped(oid: &str) -> String {
    format!(
        "({} OR {})",
        not_ext("pg_class", oid),
        extconfig::is_config(oid)
    )
}

/// One table whose rows go through `COPY`.
#[derive(Debug, Clone)]
pub struct DataTable {
    /// `pg_class` OID.
    pub oid: u32,
    /// Schema-qualified name, quoted by the server's `quote_ident` (e.g. `public."Order Items"`).
    pub name: String,
    /// The quoted, comma-separated list of non-generated columns in byte order of their names
    /// (`COLLATE "C"`), not in `attnum` order: the order of every `COPY` of the table, out and
    /// in, so each COPY line is the row's canonical bytes for the fingerprint (FORMAT.md,
    /// "Fingerprints") whatever order a restore gives the columns. Empty for a table without
    /// such columns (then `COPY` without a column list, which also leaves generated columns
    /// out).
    pub columns: String,
    /// For a leaf of a partition tree whose routing depends on the server (see
    /// `catalog/routing.rs`): the quoted name of the tree's top-most root. The rows are then
    /// loaded through the root (`COPY root … FROM stdin`) and fingerprinted under its name.
    pub root: Option<String>,
    /// `SET search_path = …;` when loading the rows runs user code that finds objects through
    /// the session's path (a generated column, a partition key expression), or reading them
    /// with a `SELECT` does (an index expression the planner inlines; see
    /// `catalog/loadcode.rs`): the block is loaded under it, page ranges of the table are read
    /// under it, and the empty path is restored after each. `None` for most tables.
    pub search_path: Option<String>,
    /// For an extension's configuration table: the condition its extension registered with
    /// `pg_extension_config_dump` (`WHERE NOT standard_entry`), written after `FROM ONLY
    /// table` when the rows are read, so only the rows users added are dumped and
    /// fingerprinted (see `catalog/extconfig.rs`). `None` for every other table, and for a
    /// configuration table registered with an empty condition (all its rows).
    pub filter: Option<String>,
}

impl DataTable {
    /// `COPY name (cols) TO STDOUT`; for a table with a [`DataTable::filter`], `COPY (SELECT
    /// cols FROM ONLY name filter) TO STDOUT`, as pg_dump reads a configuration table
    /// (`dumpTableData_copy`).
    #[must_use]
    pub fn copy_out_sql(&self) -> String {
        match &self.filter {
            None => format!("COPY {}{} TO STDOUT", self.name, self.column_list()),
            Some(filter) => format!(
                "COPY (SELECT {} FROM ONLY {} {filter}) TO STDOUT",
                self.columns, self.name
            ),
        }
    }

    /// `COPY name (cols) FROM stdin;` plus newline, as psql expects it; `COPY root (cols)`
    /// for a leaf loaded through its partition root.
    #[must_use]
    pub fn copy_in_header(&self) -> String {
        format!(
            "{}COPY {}{} FROM stdin;\n",
            self.search_path.as_deref().unwrap_or_default(),
            self.load_name(),
            self.column_list()
        )
    }

    /// What ends a `COPY` block: `\.`, the empty `search_path` again if the header set one,
    /// and a blank line.
    #[must_use]
    pub fn copy_in_trailer(&self) -> String {
        if self.search_path.is_some() {
            format!("\\.\n{}\n", loadcode::RESET_PATH)
        } else {
            "\\.\n\n".to_owned()
        }
    }

    /// The table the rows are loaded into: the partition root for a leaf whose routing
    /// depends on the server ([`DataTable::root`]), else the table itself.
    #[must_use]
    pub fn load_name(&self) -> &str {
        self.root.as_deref().unwrap_or(&self.name)
    }

    /// The name the table's rows are fingerprinted under: the same as [`Self::load_name`]
    /// (all leaves of a routed tree add up under their root's name).
    #[must_use]
    pub fn summary_name(&self) -> &str {
        self.load_name()
    }

    /// `COPY (SELECT cols FROM ONLY name WHERE ctid in [start, end) pages) TO STDOUT`: one
    /// page range of the table, read with a TID range scan (PostgreSQL 14+). The text output of
    /// a `COPY (SELECT …)` is the same as `COPY name`'s for the same columns; `end = None` is
    /// open-ended, so rows on pages added since sizing are never missed. A
    /// [`DataTable::filter`] applies through the rows' `ctid`s (the parallel readers never
    /// split a filtered table, but a range of one is still exactly its filtered rows).
    #[must_use]
    pub fn copy_out_range_sql(&self, start: u64, end: Option<u64>) -> String {
        let upper = end.map_or_else(String::new, |e| {
            format!(" AND ctid < '({e},0)'::pg_catalog.tid")
        });
        let filtered = self.filter.as_ref().map_or_else(String::new, |filter| {
            format!(
                " AND ctid IN (SELECT ctid FROM ONLY {} {filter})",
                self.name
            )
        });
        format!(
            "COPY (SELECT {} FROM ONLY {} WHERE ctid >= '({start},0)'::pg_catalog.tid{upper}{filtered}) TO STDOUT",
            self.columns, self.name
        )
    }

    fn column_list(&self) -> String {
        if self.columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.columns)
        }
    }

    /// The error object naming this table.
    #[must_use]
    pub fn object(&self) -> String {
        format!("table {}", self.name)
    }
}

/// Everything the producer needs, gathered before the first byte is sent.
#[derive(Debug, Default)]
pub struct Plan {
    /// Pre-data statements (schemas … views), in dependency order.
    pub pre: Vec<String>,
    /// Tables whose rows are copied, by name.
    pub tables: Vec<DataTable>,
    /// `setval` statements, read inside the snapshot.
    pub sequences: Vec<String>,
    /// Large object OIDs.
    pub large_objects: Vec<u32>,
    /// Post-data statements.
    pub post: Vec<String>,
    /// What the dump leaves out on purpose and says so (the summary's warnings): catalog rows
    /// that describe nothing restorable, such as a comment whose object no longer exists.
    pub warnings: Vec<String>,
}

async fn query(
    conn: &mut Conn,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, EngineError> {
    match conn.client.query(sql, params).await {
        Ok(rows) => Ok(rows),
        Err(e) => Err(conn.error(e, "catalog").await),
    }
}

fn unsupported(what: &[String]) -> EngineError {
    EngineError::new(
        ErrorKind::Unsupported,
        format!(
            "cannot be exported faithfully by exporter's PostgreSQL engine (the dump would \
             silently miss it): {}",
            what.join(", ")
        ),
    )
    .with_object(what.first().cloned().unwrap_or_default())
}

/// The tables whose rows are dumped: ordinary tables (relkind `r`, including partitions and
/// inheritance parents and children — `COPY t TO` reads `t` alone, never its children) in user
/// schemas, not extension members — but extensions' configuration tables, with their filter
/// ([`DataTable::filter`], `catalog/extconfig.rs`) —, ordered by schema then name (bytewise).
/// A leaf of a partition tree whose routing depends on the server carries its root
/// ([`DataTable::root`]).
///
/// # Errors
///
/// A classified query error.
pub async fn data_tables(conn: &mut Conn) -> Result<Vec<DataTable>, EngineError> {
    let sql = format!(
        "WITH RECURSIVE {unsafe}
         SELECT c.oid,
                pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
                COALESCE((SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attname COLLATE \"C\")
                            FROM pg_catalog.pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                             AND a.attgenerated = ''), ''),
                {root}, {filter}
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND {nsn} AND {dumped}
          ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"",
        unsafe = routing::UNSAFE_CTES,
        root = routing::ROOT_IF_ROUTED_SQL,
        filter = extconfig::condition("c.oid"),
        nsn = user_ns("n"),
        dumped = rows_dumped("c.oid"),
    );
    let rows = query(conn, &sql, &[]).await?;
    read_all(&rows, "table", 1, |r| {
        Ok(DataTable {
            oid: r.get(0)?,
            name: r.get(1)?,
            columns: r.get(2)?,
            root: r.get(3)?,
            search_path: None,
            filter: r.get(4)?,
        })
    })
}

/// Names of the tables to lock, read **before** the snapshot exists (outside the transaction).
///
/// # Errors
///
/// A classified catalog error.
pub async fn lock_targets(conn: &mut Conn) -> Result<Vec<String>, EngineError> {
    let sql = format!(
        "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
                pg_catalog.has_table_privilege(c.oid, 'SELECT')
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND {} AND {}
          ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"",
        user_ns("n"),
        rows_dumped("c.oid")
    );
    let mut names = Vec::new();
    for row in query(conn, &sql, &[]).await? {
        let row = Cells::new(&row, "table", 0);
        let name: String = row.get(0)?;
        let readable: bool = row.get(1)?;
        // Checked here so the error names the table; a failed batched LOCK could not.
        if !readable {
            return Err(EngineError::new(
                ErrorKind::Permission,
                "permission denied: the role may not SELECT from it",
            )
            .with_object(format!("table {name}")));
        }
        names.push(name);
    }
    Ok(names)
}

/// Take `ACCESS SHARE` on every table, as pg_dump does, **before** the transaction's snapshot
/// is taken, so that no `TRUNCATE` or table-rewriting `ALTER TABLE` can commit between the
/// snapshot and the `COPY`. Those commands are not MVCC-safe: a snapshot older than them sees
/// the table empty (<https://www.postgresql.org/docs/current/mvcc-caveats.html>), which
/// would dump a table without its rows and exit 0. `LOCK TABLE` does not take a snapshot; the
/// first query after it does (<https://www.postgresql.org/docs/current/sql-lock.html>).
///
/// Names are locked in batches (one round trip per batch, which matters through a tunnel).
///
/// # Errors
///
/// A classified error; the server's message names the table (permission denied, or a table
/// dropped since [`lock_targets`] listed it).
pub async fn lock_tables(conn: &mut Conn, names: &[String]) -> Result<(), EngineError> {
    for batch in names.chunks(500) {
        let sql = format!("LOCK TABLE {} IN ACCESS SHARE MODE", batch.join(", "));
        if let Err(e) = conn.client.batch_execute(&sql).await {
            let object = if batch.len() == 1 {
                format!("table {}", batch[0])
            } else {
                "tables".to_owned()
            };
            return Err(conn.error(e, &object).await);
        }
    }
    Ok(())
}

/// Inside the snapshot: every table whose rows will be copied must be locked by this session
/// and must not have been rewritten since the snapshot (its `relfilenode` in the snapshot's
/// `pg_class` equals the current one, which `pg_relation_filenode` reads from the catalog
/// cache). A table created or rewritten between [`lock_targets`] and the snapshot fails the
/// check; the caller starts over.
///
/// # Errors
///
/// [`ErrorKind::Query`] (retryable) naming the first unstable table, or a catalog error.
pub async fn check_stable(conn: &mut Conn) -> Result<(), EngineError> {
    let sql = format!(
        "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
                NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                             WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation'
                               AND l.relation = c.oid AND l.granted) AS unlocked
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND {} AND {}
            AND (c.relkind = 'r' AND c.relfilenode IS DISTINCT FROM pg_catalog.pg_relation_filenode(c.oid)
                 OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                                 WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation'
                                   AND l.relation = c.oid AND l.granted))
          ORDER BY 1 LIMIT 1",
        user_ns("n"),
        rows_dumped("c.oid")
    );
    match query(conn, &sql, &[]).await?.first() {
        None => Ok(()),
        Some(row) => {
            let row = Cells::new(row, "table", 0);
            let name: String = row.get(0)?;
            let unlocked: bool = row.get(1)?;
            let why = if unlocked {
                "was created or renamed while the dump was starting"
            } else {
                "was truncated or rewritten while the dump was starting, so the snapshot cannot read its rows"
            };
            Err(EngineError::new(ErrorKind::Query, why)
                .with_object(format!("table {name}"))
                .retryable(true))
        }
    }
}

/// Set [`DataTable::search_path`] for the tables whose load or page-range reads run user code
/// that finds objects through the session's path (see `catalog/loadcode.rs`), as [`plan`]
/// does: for a reader of page ranges without a plan (the fingerprint pass).
///
/// # Errors
///
/// Classified catalog query errors.
pub async fn read_paths(conn: &mut Conn, tables: &mut [DataTable]) -> Result<(), EngineError> {
    let code = loadcode::load(conn).await?;
    apply_read_paths(&code, tables);
    Ok(())
}

/// The path of each table's owner, for the tables `code` says need one.
fn apply_read_paths(code: &loadcode::LoadCode, tables: &mut [DataTable]) {
    for t in tables {
        if let Some(owner) = code.tables.get(&t.oid).or(code.indexed.get(&t.oid)) {
            t.search_path = code.paths.set_statement(owner);
        }
    }
}

/// [`data_tables`] and [`plan`] of the snapshot `conn` holds, at once: the tables are read
/// on a second connection importing the snapshot (`pg_export_snapshot`, as the `COPY`
/// connections do) while `conn` plans the script. The two are independent catalog reads,
/// each busy on the server (the tables' partition routing alone is 65 ms of server time on
/// PostgreSQL's regression database), so on two cores they take about the longer one's time.
/// When the second connection cannot be had (a connection limit, say), the tables are read
/// on `conn` after the plan, as before.
///
/// # Errors
///
/// As [`data_tables`] and [`plan`]; a failed snapshot export.
pub async fn tables_and_plan(
    link: &Link,
    conn: &mut Conn,
    ownership: bool,
) -> Result<Plan, EngineError> {
    let snapshot = crate::parallel::export_snapshot(conn).await?;
    let side = async {
        let mut side = crate::connect::connect(link).await?;
        let import = format!(
            "{}; SET TRANSACTION SNAPSHOT {}",
            crate::connect::BEGIN_SNAPSHOT,
            quote_literal(&snapshot)
        );
        if let Err(e) = side.client.batch_execute(&import).await {
            return Err(side.error(e, "snapshot import").await);
        }
        Ok(side)
    };
    let (side, planned) = tokio::join!(
        async {
            let mut side = side.await?;
            let tables = data_tables(&mut side).await;
            Ok::<_, EngineError>(tables)
        },
        plan(conn, ownership)
    );
    let (mut plan, code) = planned?;
    let tables = match side {
        Ok(tables) => tables?,
        Err(e) => {
            tracing::debug!(error = %e, "no second connection for the table list; reading it after the plan");
            data_tables(conn).await?
        }
    };
    plan.tables = tables;
    apply_read_paths(&code, &mut plan.tables);
    Ok(plan)
}

/// Read the catalogs and plan the whole script, without its tables ([`tables_and_plan`]
/// adds them); returns what the tables' read paths need too.
///
/// `ownership`: emit `ALTER … OWNER TO` and `GRANT`s (see the crate docs for how a restore
/// without those roles copes).
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] for dependency cycles no column default or check can break
/// (`catalog/cycles.rs`) and comments on objects we do not dump;
/// classified query errors (a sequence the role cannot read fails with `Permission`).
async fn plan(conn: &mut Conn, ownership: bool) -> Result<(Plan, loadcode::LoadCode), EngineError> {
    let code = loadcode::load(conn).await?;
    let mut pre = PreData::default();
    pre::schemas(conn, &mut pre).await?;
    pre::extensions(conn, &mut pre).await?;
    pre::collations(conn, &mut pre).await?;
    pre::base_types(conn, &mut pre).await?;
    pre::foreign_servers(conn, &mut pre).await?;
    pre::access_methods(conn, &mut pre).await?;
    pre::transforms(conn, &mut pre).await?;
    pre::operator_classes(conn, &mut pre).await?;
    let columns = table::load_columns(conn).await?;
    let domains_not_valid = pre::types(conn, &columns, &code, &mut pre).await?;
    ranges::canonical_shells(conn, &mut pre).await?;
    pre::functions(conn, &mut pre).await?;
    pre::aggregates(conn, &mut pre).await?;
    pre::operators(conn, &mut pre).await?;
    pre::text_search(conn, &mut pre).await?;
    kinds::pre_data(conn, &mut pre).await?;
    pre::casts(conn, &mut pre).await?;
    let rels = table::load_relations(conn).await?;
    let parents = table::load_parents(conn).await?;
    let checks = table::load_checks(conn, &rels, &code).await?;
    let seqs = pre::sequences(conn).await?;
    let identity = pre::sequence_ownership(&seqs, &rels, &columns, &mut pre);
    let ctx = Tables {
        rels: &rels,
        columns: &columns,
        parents: &parents,
        checks: &checks,
        identity: &identity,
    };
    let pre::Relations {
        mut matviews,
        views_after_keys,
        matviews_after_keys,
    } = pre::relations(conn, &ctx, &seqs, &code, &mut pre).await?;
    foreign_tables::foreign_tables(conn, &ctx, &mut pre).await?;
    let (ordered, parts) = pre::dependency_order(conn, &mut pre, &seqs, &rels, &code).await?;
    cycles::write_apart(&mut pre, &parts, &ordered.separated, &ctx, &code);
    let tablespaces = tablespace::Tablespaces::load(conn).await?;
    tablespaces.apply(&mut pre);
    let cycles::Ordered {
        keys: order, deps, ..
    } = ordered;
    let mut after_keys_seeds = matviews_after_keys;
    after_keys_seeds.extend(pre::functions_on_constraints(conn).await?);
    let postponed = pre::postponed(&pre.objs, &deps, &after_keys_seeds)?;

    let mut plan = Plan::default();
    let mut position = std::collections::HashMap::new();
    // Created right after the key constraints, in dependency order, then the real
    // definitions of the views created as stand-ins.
    let mut after_keys = Vec::new();
    for (i, key) in order.iter().enumerate() {
        position.insert(key.clone(), i);
        let sql = &pre.objs[key].sql;
        if sql.is_empty() {
            continue;
        }
        if postponed.contains(key) {
            after_keys.push(sql.clone());
        } else {
            plan.pre.push(sql.clone());
        }
    }
    after_keys.extend(views_after_keys);
    // Materialized views are refreshed in creation order (one may select from another).
    matviews.sort_by_key(|(k, _, _)| position.get(k).copied().unwrap_or(usize::MAX));

    plan.sequences = sequence_positions(conn, &rels).await?;
    plan.large_objects = large_objects(conn).await?;

    plan.post.extend(checks.not_valid);
    plan.post.extend(domains_not_valid);
    // Checks that call user functions, validated once against the complete data.
    plan.post.extend(code.deferred_statements(&rels));
    post::post_data(conn, &rels, &code, &tablespaces, after_keys, &mut plan).await?;
    subscriptions::subscriptions(conn, ownership, &mut plan).await?;
    for (_, oid, name) in &matviews {
        let refresh = format!("REFRESH MATERIALIZED VIEW {name};\n");
        plan.post.push(match code.matviews.get(oid) {
            Some(owner) => code.paths.wrap(owner, &refresh),
            None => refresh,
        });
    }
    post::comments(conn, &mut plan).await?;
    seclabel::security_labels(conn, &mut plan).await?;
    if ownership {
        acl::owners_and_acls(conn, &seqs.owner, &mut plan).await?;
        acl::catalog_privileges(conn, &mut plan).await?;
        acl::default_privileges(conn, &mut plan).await?;
    }
    plan.post.extend(loadcode::database_settings(conn).await?);
    // Last of all: an event trigger fires for the DDL that follows it.
    event_triggers::event_triggers(conn, ownership, &mut plan).await?;
    Ok((plan, code))
}

/// `setval(name, last_value, is_called)` of every sequence, and of the sequences extensions
/// mark for dumping (`catalog/extconfig.rs`, pg_dump's `dumpSequenceData` of a
/// configuration sequence), read inside the snapshot (P03), by name.
///
/// # Errors
///
/// Classified errors naming the sequence (`Permission` when the role may not read it).
async fn sequence_positions(
    conn: &mut Conn,
    rels: &BTreeMap<u32, Rel>,
) -> Result<Vec<String>, EngineError> {
    let mut seqs: BTreeSet<(String, String)> = rels
        .values()
        .filter(|r| r.kind == "S")
        .map(|r| (r.sort.clone(), r.name.clone()))
        .collect();
    seqs.extend(extconfig::sequences(conn).await?);
    let mut out = Vec::with_capacity(seqs.len());
    for (_, name) in seqs {
        let sql = format!("SELECT last_value, is_called FROM {name}");
        let row = match conn.client.query_one(&sql, &[]).await {
            Ok(row) => row,
            Err(e) => return Err(conn.error(e, &format!("sequence {name}")).await),
        };
        let object = format!("sequence {name}");
        let row = Cells::about(&row, &object);
        let last: i64 = row.get(0)?;
        let called: bool = row.get(1)?;
        out.push(format!(
            "SELECT pg_catalog.setval({}, {last}, {called});\n",
            quote_literal(&name)
        ));
    }
    Ok(out)
}

/// The OIDs of every large object, ascending.
async fn large_objects(conn: &mut Conn) -> Result<Vec<u32>, EngineError> {
    let rows = query(
        conn,
        "SELECT oid FROM pg_catalog.pg_largeobject_metadata ORDER BY oid",
        &[],
    )
    .await?;
    read_all(&rows, "large object", 0, |r| r.get(0))
}
