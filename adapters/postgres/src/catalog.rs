//! Reading the catalogs inside the snapshot and planning the script: pre-data DDL in
//! dependency order, the tables whose rows are copied, sequence positions, large objects and
//! post-data DDL.
//!
//! The server deparses everything it can (`pg_get_*def`, `format_type`, `pg_get_expr`,
//! `quote_ident`), with `search_path = ''` so every name comes out schema-qualified.
//! References: <https://www.postgresql.org/docs/current/functions-info.html> (catalog
//! information functions), <https://www.postgresql.org/docs/current/catalogs.html>.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use exporter_contract::{EngineError, ErrorKind};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::connect::Conn;
use crate::quote::{quote_ident, quote_literal};

/// First OID handed to user objects (`FirstNormalObjectId` in the server's `transam.h`).
const FIRST_USER_OID: u32 = 16384;

/// SQL predicate: namespace alias `n` is a user schema.
fn user_ns(n: &str) -> String {
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
fn not_ext(catalog: &str, oid: &str) -> String {
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

/// One table whose rows go through `COPY`.
#[derive(Debug, Clone)]
pub struct DataTable {
    /// `pg_class` OID.
    pub oid: u32,
    /// Schema-qualified name, quoted by the server's `quote_ident` (e.g. `public."Order Items"`).
    pub name: String,
    /// The quoted, comma-separated list of non-generated columns in `attnum` order; empty for a
    /// table without such columns (then `COPY` without a column list, which also leaves
    /// generated columns out).
    pub columns: String,
}

impl DataTable {
    /// `COPY name (cols) TO STDOUT`.
    #[must_use]
    pub fn copy_out_sql(&self) -> String {
        format!("COPY {}{} TO STDOUT", self.name, self.column_list())
    }

    /// `COPY name (cols) FROM stdin;` plus newline, as psql expects it.
    #[must_use]
    pub fn copy_in_header(&self) -> String {
        format!("COPY {}{} FROM stdin;\n", self.name, self.column_list())
    }

    /// `COPY (SELECT cols FROM ONLY name WHERE ctid in [start, end) pages) TO STDOUT`: one
    /// page range of the table, read with a TID range scan (PostgreSQL 14+). The text output of
    /// a `COPY (SELECT …)` is the same as `COPY name`'s for the same columns; `end = None` is
    /// open-ended, so rows on pages added since sizing are never missed.
    #[must_use]
    pub fn copy_out_range_sql(&self, start: u64, end: Option<u64>) -> String {
        let upper = end.map_or_else(String::new, |e| {
            format!(" AND ctid < '({e},0)'::pg_catalog.tid")
        });
        format!(
            "COPY (SELECT {} FROM ONLY {} WHERE ctid >= '({start},0)'::pg_catalog.tid{upper}) TO STDOUT",
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
    /// Rough size of the data in bytes.
    pub size_hint: Option<u64>,
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

/// Fail with [`ErrorKind::Unsupported`] naming every object kind this engine does not dump
/// (principle 3: never a silent omission).
///
/// # Errors
///
/// Unsupported (naming the objects) or a classified query error.
pub async fn check_unsupported(conn: &mut Conn) -> Result<(), EngineError> {
    let nsn = user_ns("n");
    let sql = format!(
        "SELECT 'event trigger ' || pg_catalog.quote_ident(evtname) FROM pg_catalog.pg_event_trigger WHERE {ext_evt}
UNION ALL SELECT 'publication ' || pg_catalog.quote_ident(pubname) FROM pg_catalog.pg_publication
UNION ALL SELECT 'subscription ' || pg_catalog.quote_ident(subname) FROM pg_catalog.pg_subscription
   WHERE subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
UNION ALL SELECT 'foreign-data wrapper ' || pg_catalog.quote_ident(fdwname) FROM pg_catalog.pg_foreign_data_wrapper f WHERE {ext_fdw}
UNION ALL SELECT 'foreign server ' || pg_catalog.quote_ident(srvname) FROM pg_catalog.pg_foreign_server s WHERE {ext_srv}
UNION ALL SELECT CASE c.relkind WHEN 'f' THEN 'foreign table ' ELSE 'typed table ' END
       || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE {nsn} AND {ext_rel} AND (c.relkind = 'f' OR (c.relkind IN ('r', 'p') AND c.reloftype <> 0))
UNION ALL SELECT 'relation in a tablespace ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE {nsn} AND {ext_rel} AND c.reltablespace <> 0
UNION ALL SELECT 'table with a non-heap access method ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE {nsn} AND {ext_rel} AND c.relkind IN ('r', 'm') AND c.relam <> 0
     AND c.relam <> (SELECT oid FROM pg_catalog.pg_am WHERE amname = 'heap')
UNION ALL SELECT 'aggregate ' || p.oid::pg_catalog.regprocedure::text FROM pg_catalog.pg_proc p
   JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE {nsn} AND {ext_proc} AND p.prokind = 'a'
UNION ALL SELECT 'operator ' || o.oid::pg_catalog.regoperator::text FROM pg_catalog.pg_operator o
   JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace WHERE {nsn} AND {ext_op}
UNION ALL SELECT 'operator class ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(o.opcname) FROM pg_catalog.pg_opclass o
   JOIN pg_catalog.pg_namespace n ON n.oid = o.opcnamespace WHERE {nsn} AND {ext_opc}
UNION ALL SELECT 'operator family ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(o.opfname) FROM pg_catalog.pg_opfamily o
   JOIN pg_catalog.pg_namespace n ON n.oid = o.opfnamespace WHERE {nsn} AND {ext_opf}
UNION ALL SELECT 'cast (' || pg_catalog.format_type(castsource, NULL) || ' AS ' || pg_catalog.format_type(casttarget, NULL) || ')'
   FROM pg_catalog.pg_cast c WHERE c.oid >= {first} AND {ext_cast}
UNION ALL SELECT 'collation ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.collname) FROM pg_catalog.pg_collation c
   JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace WHERE {nsn} AND {ext_coll}
UNION ALL SELECT 'conversion ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.conname) FROM pg_catalog.pg_conversion c
   JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace WHERE {nsn} AND {ext_conv}
UNION ALL SELECT 'text search configuration ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.cfgname) FROM pg_catalog.pg_ts_config c
   JOIN pg_catalog.pg_namespace n ON n.oid = c.cfgnamespace WHERE {nsn} AND {ext_tscfg}
UNION ALL SELECT 'text search dictionary ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.dictname) FROM pg_catalog.pg_ts_dict c
   JOIN pg_catalog.pg_namespace n ON n.oid = c.dictnamespace WHERE {nsn} AND {ext_tsdict}
UNION ALL SELECT 'text search parser ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.prsname) FROM pg_catalog.pg_ts_parser c
   JOIN pg_catalog.pg_namespace n ON n.oid = c.prsnamespace WHERE {nsn} AND {ext_tsprs}
UNION ALL SELECT 'text search template ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.tmplname) FROM pg_catalog.pg_ts_template c
   JOIN pg_catalog.pg_namespace n ON n.oid = c.tmplnamespace WHERE {nsn} AND {ext_tstmpl}
UNION ALL SELECT 'procedural language ' || pg_catalog.quote_ident(lanname) FROM pg_catalog.pg_language l WHERE l.oid >= {first} AND {ext_lang}
UNION ALL SELECT 'transform for ' || pg_catalog.format_type(trftype, NULL) FROM pg_catalog.pg_transform t WHERE {ext_trf}
UNION ALL SELECT 'access method ' || pg_catalog.quote_ident(amname) FROM pg_catalog.pg_am a WHERE a.oid >= {first} AND {ext_am}
UNION ALL SELECT 'security label on ' || (pg_catalog.pg_identify_object(classoid, objoid, objsubid)).identity FROM pg_catalog.pg_seclabel
UNION ALL SELECT CASE t.typtype WHEN 'b' THEN 'base type ' WHEN 'p' THEN 'pseudo-type ' ELSE 'type ' END
       || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.typname)
   FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
   WHERE {nsn} AND {ext_type} AND t.typtype IN ('b', 'p') AND NOT (t.typelem <> 0 AND t.typlen = -1)
UNION ALL SELECT 'range type with a canonical function ' || r.rngtypid::pg_catalog.regtype::text FROM pg_catalog.pg_range r
   JOIN pg_catalog.pg_type t ON t.oid = r.rngtypid JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
   WHERE {nsn} AND {ext_rng} AND r.rngcanonical <> 0
UNION ALL SELECT 'configuration table of extension ' || pg_catalog.quote_ident(extname) || ' (its rows would not be dumped)'
   FROM pg_catalog.pg_extension WHERE extconfig IS NOT NULL
ORDER BY 1",
        first = FIRST_USER_OID,
        ext_evt = not_ext("pg_event_trigger", "oid"),
        ext_fdw = not_ext("pg_foreign_data_wrapper", "f.oid"),
        ext_srv = not_ext("pg_foreign_server", "s.oid"),
        ext_rel = not_ext("pg_class", "c.oid"),
        ext_proc = not_ext("pg_proc", "p.oid"),
        ext_op = not_ext("pg_operator", "o.oid"),
        ext_opc = not_ext("pg_opclass", "o.oid"),
        ext_opf = not_ext("pg_opfamily", "o.oid"),
        ext_cast = not_ext("pg_cast", "c.oid"),
        ext_coll = not_ext("pg_collation", "c.oid"),
        ext_conv = not_ext("pg_conversion", "c.oid"),
        ext_tscfg = not_ext("pg_ts_config", "c.oid"),
        ext_tsdict = not_ext("pg_ts_dict", "c.oid"),
        ext_tsprs = not_ext("pg_ts_parser", "c.oid"),
        ext_tstmpl = not_ext("pg_ts_template", "c.oid"),
        ext_lang = not_ext("pg_language", "l.oid"),
        ext_trf = not_ext("pg_transform", "t.oid"),
        ext_am = not_ext("pg_am", "a.oid"),
        ext_type = not_ext("pg_type", "t.oid"),
        ext_rng = not_ext("pg_type", "t.oid"),
    );
    let rows = query(conn, &sql, &[]).await?;
    let found: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
    if found.is_empty() {
        Ok(())
    } else {
        Err(unsupported(&found))
    }
}

/// The tables whose rows are dumped: ordinary tables (relkind `r`, including partitions and
/// inheritance parents and children — `COPY t TO` reads `t` alone, never its children) in user
/// schemas, not extension members, ordered by schema then name (bytewise).
///
/// # Errors
///
/// A classified query error.
pub async fn data_tables(conn: &mut Conn) -> Result<Vec<DataTable>, EngineError> {
    let sql = format!(
        "SELECT c.oid,
                pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
                COALESCE((SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
                            FROM pg_catalog.pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                             AND a.attgenerated = ''), '')
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND {} AND {}
          ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"",
        user_ns("n"),
        not_ext("pg_class", "c.oid")
    );
    let rows = query(conn, &sql, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| DataTable {
            oid: r.get(0),
            name: r.get(1),
            columns: r.get(2),
        })
        .collect())
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
        not_ext("pg_class", "c.oid")
    );
    let mut names = Vec::new();
    for row in query(conn, &sql, &[]).await? {
        let name: String = row.get(0);
        let readable: bool = row.get(1);
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
        not_ext("pg_class", "c.oid")
    );
    match query(conn, &sql, &[]).await?.first() {
        None => Ok(()),
        Some(row) => {
            let name: String = row.get(0);
            let unlocked: bool = row.get(1);
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

/// One pre-data object awaiting its place in the dependency order.
struct PreObj {
    rank: u8,
    sort: String,
    sql: String,
}

/// Resolve `(catalog, oid)` of a `pg_depend` row to the key of the object we emit for it:
/// `N` schema, `E` extension, `T` type, `P` function, `R` relation. Columns, defaults, check
/// constraints and view rules belong to their relation; array and multirange types to their
/// element / range type; a table's row type to the table.
fn resolve_sql(cls: &str, id: &str) -> String {
    format!(
        "CASE {cls}
  WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN
    (SELECT CASE WHEN c.relkind = 'c' THEN 'T' || c.reltype ELSE 'R' || c.oid END FROM pg_catalog.pg_class c WHERE c.oid = {id})
  WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN
    (SELECT CASE
       WHEN t.typtype = 'm' THEN (SELECT 'T' || r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = t.oid)
       WHEN t.typelem <> 0 AND t.typlen = -1 AND t.typtype = 'b' THEN
         (SELECT CASE WHEN e.typrelid <> 0 AND (SELECT relkind FROM pg_catalog.pg_class WHERE oid = e.typrelid) <> 'c'
                      THEN 'R' || e.typrelid ELSE 'T' || e.oid END FROM pg_catalog.pg_type e WHERE e.oid = t.typelem)
       WHEN t.typrelid <> 0 AND (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.typrelid) <> 'c' THEN 'R' || t.typrelid
       ELSE 'T' || t.oid END
     FROM pg_catalog.pg_type t WHERE t.oid = {id})
  WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN 'P' || {id}
  WHEN 'pg_catalog.pg_namespace'::pg_catalog.regclass THEN 'N' || {id}
  WHEN 'pg_catalog.pg_extension'::pg_catalog.regclass THEN 'E' || {id}
  WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN (SELECT 'R' || ev_class FROM pg_catalog.pg_rewrite WHERE oid = {id})
  WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN (SELECT 'R' || adrelid FROM pg_catalog.pg_attrdef WHERE oid = {id})
  WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN
    (SELECT CASE WHEN contypid <> 0 THEN 'T' || contypid WHEN contype = 'c' THEN 'R' || conrelid END
       FROM pg_catalog.pg_constraint WHERE oid = {id})
END"
    )
}

/// A column as the DDL needs it.
#[derive(Debug, Clone)]
struct Column {
    name: String,
    raw_name: String,
    ty: String,
    not_null: bool,
    local: bool,
    generated: String,
    identity: String,
    default: Option<String>,
    collation: Option<String>,
    /// `ALTER COLUMN … <setting>` clauses for per-column settings that differ from the
    /// defaults: `SET STATISTICS n`, `SET STORAGE …`, `SET (attribute_option = …)`,
    /// `SET COMPRESSION …` (pg_dump emits the same, see its `dumpTableSchema`).
    settings: Vec<String>,
}

/// The per-column setting clauses of a column from its `pg_attribute` fields: the statistics
/// target (`None` = default), the storage mode when it differs from the type's (`p`, `e`,
/// `m`, `x`), attribute options (`n_distinct=100`, comma separated, may be empty: only the
/// options `ALTER COLUMN … SET (…)` accepts, `n_distinct` and `n_distinct_inherited`; a
/// server may keep internal entries there that no statement can set) and the
/// compression method (`p` pglz, `l` lz4; `None` = default).
fn column_settings(
    stattarget: Option<i32>,
    storage: Option<&str>,
    options: Option<String>,
    compression: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(n) = stattarget {
        out.push(format!("SET STATISTICS {n}"));
    }
    if let Some(mode) = storage.and_then(|m| match m {
        "p" => Some("PLAIN"),
        "e" => Some("EXTERNAL"),
        "m" => Some("MAIN"),
        "x" => Some("EXTENDED"),
        _ => None,
    }) {
        out.push(format!("SET STORAGE {mode}"));
    }
    if let Some(opts) = options.filter(|o| !o.is_empty()) {
        out.push(format!("SET ({opts})"));
    }
    if let Some(method) = compression.and_then(|m| match m {
        "p" => Some("pglz"),
        "l" => Some("lz4"),
        _ => None,
    }) {
        out.push(format!("SET COMPRESSION {method}"));
    }
    out
}

impl Column {
    fn definition(&self) -> String {
        let mut s = format!("    {} {}", self.name, self.ty);
        if let Some(coll) = &self.collation {
            let _ = write!(s, " COLLATE {coll}");
        }
        if let Some(default) = &self.default {
            if self.generated == "s" {
                let _ = write!(s, " GENERATED ALWAYS AS ({default}) STORED");
            } else {
                let _ = write!(s, " DEFAULT {default}");
            }
        }
        if self.not_null {
            s.push_str(" NOT NULL");
        }
        s
    }
}

/// A relation (table, partitioned table, view, materialized view, sequence).
#[derive(Debug, Clone)]
struct Rel {
    oid: u32,
    kind: String,
    name: String,
    sort: String,
    persistence: String,
    is_partition: bool,
    bound: Option<String>,
    partkey: Option<String>,
    reloptions: Vec<String>,
    replident: String,
    rls: bool,
    force_rls: bool,
    populated: bool,
}

/// Owner and privileges of one object, applied conditionally at the end of the script.
fn guarded(roles: &[String], stmt: &str, what: &str) -> String {
    let names: Vec<String> = roles.iter().map(|r| quote_literal(r)).collect();
    let body = format!(
        "BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(ARRAY[{roles}]::pg_catalog.text[]) AS r(n) \
         WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.n)) THEN EXECUTE {stmt}; \
         ELSE RAISE WARNING USING MESSAGE = {skip}; END IF; \
         EXCEPTION WHEN insufficient_privilege THEN RAISE WARNING USING MESSAGE = {denied} || SQLERRM; END",
        roles = names.join(", "),
        stmt = quote_literal(stmt),
        skip = quote_literal(&format!(
            "exporter: skipped {what}: a role it names does not exist here"
        )),
        denied = quote_literal(&format!("exporter: skipped {what}: ")),
    );
    format!("DO {};\n", quote_literal(&body))
}

/// Read the catalogs and plan the whole script.
///
/// `ownership`: emit `ALTER … OWNER TO` and `GRANT`s (see the crate docs for how a restore
/// without those roles copes).
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] for dependency cycles and comments on objects we do not dump;
/// classified query errors (a sequence the role cannot read fails with `Permission`).
pub async fn plan(
    conn: &mut Conn,
    tables: Vec<DataTable>,
    ownership: bool,
) -> Result<Plan, EngineError> {
    let nsn = user_ns("n");
    let mut objs: BTreeMap<String, PreObj> = BTreeMap::new();
    let mut aliases: HashMap<String, String> = HashMap::new();
    let mut post_constraints_nv = Vec::new();

    // --- schemas ---------------------------------------------------------------------
    let rows = query(
        conn,
        &format!(
            "SELECT n.oid, pg_catalog.quote_ident(n.nspname), n.nspname FROM pg_catalog.pg_namespace n
              WHERE {nsn} AND {}",
            not_ext("pg_namespace", "n.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let oid: u32 = r.get(0);
        let name: String = r.get(1);
        let raw: String = r.get(2);
        // The restore target (created from template1) already has `public`.
        let sql = if raw == "public" {
            String::new()
        } else {
            format!("CREATE SCHEMA {name};\n")
        };
        objs.insert(
            format!("N{oid}"),
            PreObj {
                rank: 0,
                sort: raw,
                sql,
            },
        );
    }

    // --- extensions ------------------------------------------------------------------
    let rows = query(
        conn,
        "SELECT e.oid, pg_catalog.quote_ident(e.extname), pg_catalog.quote_ident(n.nspname), e.extname
           FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace",
        &[],
    )
    .await?;
    for r in &rows {
        let oid: u32 = r.get(0);
        let raw: String = r.get(3);
        // plpgsql is installed in every database created from template1.
        let sql = if raw == "plpgsql" {
            String::new()
        } else {
            format!(
                "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {};\n",
                r.get::<_, String>(1),
                r.get::<_, String>(2)
            )
        };
        objs.insert(
            format!("E{oid}"),
            PreObj {
                rank: 1,
                sort: raw,
                sql,
            },
        );
    }

    // --- attributes of relations and composite types ---------------------------------
    let rows = query(
        conn,
        &format!(
            "SELECT a.attrelid, pg_catalog.quote_ident(a.attname), a.attname,
                    pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attislocal,
                    a.attgenerated::text, a.attidentity::text, pg_catalog.pg_get_expr(d.adbin, d.adrelid),
                    CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN
                      (SELECT pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname)
                         FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
                        WHERE co.oid = a.attcollation) END,
                    CASE WHEN a.attstattarget IS NOT NULL AND a.attstattarget >= 0 THEN a.attstattarget::int END,
                    CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage::text END,
                    (SELECT pg_catalog.string_agg(o, ', ') FROM pg_catalog.unnest(a.attoptions) o
                      WHERE pg_catalog.split_part(o, '=', 1) IN ('n_distinct', 'n_distinct_inherited')),
                    CASE WHEN a.attcompression <> '' THEN a.attcompression::text END
               FROM pg_catalog.pg_attribute a
               JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
               LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
              WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'c') AND {nsn}
              ORDER BY a.attrelid, a.attnum"
        ),
        &[],
    )
    .await?;
    let mut columns: HashMap<u32, Vec<Column>> = HashMap::new();
    for r in &rows {
        columns.entry(r.get(0)).or_default().push(Column {
            name: r.get(1),
            raw_name: r.get(2),
            ty: r.get(3),
            not_null: r.get(4),
            local: r.get(5),
            generated: r.get(6),
            identity: r.get(7),
            default: r.get(8),
            collation: r.get(9),
            settings: column_settings(r.get(10), r.get(11), r.get(12), r.get(13)),
        });
    }

    // --- types -----------------------------------------------------------------------
    let enum_rows = query(
        conn,
        "SELECT enumtypid, pg_catalog.string_agg(pg_catalog.quote_literal(enumlabel), ', ' ORDER BY enumsortorder)
           FROM pg_catalog.pg_enum GROUP BY enumtypid",
        &[],
    )
    .await?;
    let enums: HashMap<u32, String> = enum_rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let dcon_rows = query(
        conn,
        "SELECT contypid, pg_catalog.quote_ident(conname), pg_catalog.pg_get_constraintdef(oid), convalidated
           FROM pg_catalog.pg_constraint WHERE contypid <> 0 AND contype = 'c'
          ORDER BY contypid, conname COLLATE \"C\"",
        &[],
    )
    .await?;
    let mut domain_checks: HashMap<u32, Vec<(String, String, bool)>> = HashMap::new();
    for r in &dcon_rows {
        domain_checks
            .entry(r.get(0))
            .or_default()
            .push((r.get(1), r.get(2), r.get(3)));
    }
    let rows = query(
        conn,
        &format!(
            "SELECT t.oid, t.typtype::text, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.typname),
                    n.nspname || '.' || t.typname,
                    CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END,
                    t.typnotnull, pg_catalog.pg_get_expr(t.typdefaultbin, 'pg_catalog.pg_type'::pg_catalog.regclass),
                    CASE WHEN t.typtype = 'd' AND t.typcollation <> 0
                          AND t.typcollation <> (SELECT bt.typcollation FROM pg_catalog.pg_type bt WHERE bt.oid = t.typbasetype) THEN
                      (SELECT pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname)
                         FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
                        WHERE co.oid = t.typcollation) END,
                    t.typrelid,
                    rg.subtype, rg.opclass, rg.collation, rg.subdiff, rg.multirange
               FROM pg_catalog.pg_type t
               JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
               LEFT JOIN LATERAL (
                 SELECT pg_catalog.format_type(r.rngsubtype, NULL) AS subtype,
                        (SELECT pg_catalog.quote_ident(on_.nspname) || '.' || pg_catalog.quote_ident(opc.opcname)
                           FROM pg_catalog.pg_opclass opc JOIN pg_catalog.pg_namespace on_ ON on_.oid = opc.opcnamespace
                          WHERE opc.oid = r.rngsubopc AND NOT opc.opcdefault) AS opclass,
                        (SELECT pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname)
                           FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
                          WHERE co.oid = r.rngcollation AND r.rngcollation <> 0) AS collation,
                        CASE WHEN r.rngsubdiff <> 0 THEN r.rngsubdiff::pg_catalog.regproc::text END AS subdiff,
                        (SELECT pg_catalog.quote_ident(mn.nspname) || '.' || pg_catalog.quote_ident(mt.typname)
                           FROM pg_catalog.pg_type mt JOIN pg_catalog.pg_namespace mn ON mn.oid = mt.typnamespace
                          WHERE mt.oid = r.rngmultitypid) AS multirange
                   FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid) rg ON true
              WHERE {nsn} AND {} AND t.typtype IN ('e', 'd', 'c', 'r')
                AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.typrelid) = 'c')",
            not_ext("pg_type", "t.oid")
        ),
        &[],
    )
    .await?;
    let mut domains_not_valid = Vec::new();
    for r in &rows {
        let oid: u32 = r.get(0);
        let kind: String = r.get(1);
        let name: String = r.get(2);
        let sql = match kind.as_str() {
            "e" => format!(
                "CREATE TYPE {name} AS ENUM ({});\n",
                enums.get(&oid).cloned().unwrap_or_default()
            ),
            "d" => {
                let mut s = format!("CREATE DOMAIN {name} AS {}", r.get::<_, String>(4));
                if let Some(coll) = r.get::<_, Option<String>>(7) {
                    let _ = write!(s, " COLLATE {coll}");
                }
                if let Some(def) = r.get::<_, Option<String>>(6) {
                    let _ = write!(s, " DEFAULT {def}");
                }
                if r.get::<_, bool>(5) {
                    s.push_str(" NOT NULL");
                }
                for (cname, def, valid) in domain_checks.get(&oid).into_iter().flatten() {
                    if *valid {
                        let _ = write!(s, "\n    CONSTRAINT {cname} {def}");
                    } else {
                        // NOT VALID: existing rows may violate it; add it after the data.
                        domains_not_valid.push(format!(
                            "ALTER DOMAIN {name} ADD CONSTRAINT {cname} {def};\n"
                        ));
                    }
                }
                s.push_str(";\n");
                s
            }
            "c" => {
                let relid: u32 = r.get(8);
                let attrs: Vec<String> = columns
                    .get(&relid)
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        let mut a = format!("    {} {}", c.name, c.ty);
                        if let Some(coll) = &c.collation {
                            let _ = write!(a, " COLLATE {coll}");
                        }
                        a
                    })
                    .collect();
                aliases.insert(format!("R{relid}"), format!("T{oid}"));
                format!("CREATE TYPE {name} AS (\n{}\n);\n", attrs.join(",\n"))
            }
            _ => {
                let mut opts = vec![format!("    subtype = {}", r.get::<_, String>(9))];
                if let Some(opc) = r.get::<_, Option<String>>(10) {
                    opts.push(format!("    subtype_opclass = {opc}"));
                }
                if let Some(coll) = r.get::<_, Option<String>>(11) {
                    opts.push(format!("    collation = {coll}"));
                }
                if let Some(diff) = r.get::<_, Option<String>>(12) {
                    opts.push(format!("    subtype_diff = {diff}"));
                }
                if let Some(multi) = r.get::<_, Option<String>>(13) {
                    opts.push(format!("    multirange_type_name = {multi}"));
                }
                format!("CREATE TYPE {name} AS RANGE (\n{}\n);\n", opts.join(",\n"))
            }
        };
        objs.insert(
            format!("T{oid}"),
            PreObj {
                rank: 2,
                sort: r.get(3),
                sql,
            },
        );
    }

    // --- functions and procedures ----------------------------------------------------
    let rows = query(
        conn,
        &format!(
            "SELECT p.oid, pg_catalog.pg_get_functiondef(p.oid), n.nspname || '.' || p.proname || '(' ||
                    pg_catalog.pg_get_function_identity_arguments(p.oid) || ')'
               FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
              WHERE {nsn} AND {} AND p.prokind IN ('f', 'p', 'w')",
            not_ext("pg_proc", "p.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let oid: u32 = r.get(0);
        let def: String = r.get(1);
        objs.insert(
            format!("P{oid}"),
            PreObj {
                rank: 3,
                sort: r.get(2),
                sql: format!("{};\n", def.trim_end()),
            },
        );
    }

    // --- relations -------------------------------------------------------------------
    let rows = query(
        conn,
        &format!(
            "SELECT c.oid, c.relkind::text, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
                    n.nspname || '.' || c.relname, c.relpersistence::text, c.relispartition,
                    pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                    CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END,
                    COALESCE(c.reloptions, '{{}}'), c.relreplident::text, c.relrowsecurity, c.relforcerowsecurity,
                    c.relispopulated
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND {nsn} AND {}",
            not_ext("pg_class", "c.oid")
        ),
        &[],
    )
    .await?;
    let mut rels: BTreeMap<u32, Rel> = BTreeMap::new();
    for r in &rows {
        let rel = Rel {
            oid: r.get(0),
            kind: r.get(1),
            name: r.get(2),
            sort: r.get(3),
            persistence: r.get(4),
            is_partition: r.get(5),
            bound: r.get(6),
            partkey: r.get(7),
            reloptions: r.get(8),
            replident: r.get(9),
            rls: r.get(10),
            force_rls: r.get(11),
            populated: r.get(12),
        };
        rels.insert(rel.oid, rel);
    }
    let rel_name = |oid: u32| rels.get(&oid).map(|r| r.name.clone());

    // Parents (inheritance and partitioning), in inhseqno order.
    let rows = query(
        conn,
        "SELECT i.inhrelid, i.inhparent FROM pg_catalog.pg_inherits i
           JOIN pg_catalog.pg_class p ON p.oid = i.inhparent WHERE p.relkind IN ('r', 'p')
          ORDER BY i.inhrelid, i.inhseqno",
        &[],
    )
    .await?;
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    for r in &rows {
        parents.entry(r.get(0)).or_default().push(r.get(1));
    }

    // Table CHECK constraints.
    let rows = query(
        conn,
        "SELECT conrelid, pg_catalog.quote_ident(conname), pg_catalog.pg_get_constraintdef(oid), convalidated, conislocal
           FROM pg_catalog.pg_constraint WHERE contype = 'c' AND conrelid <> 0
          ORDER BY conrelid, conname COLLATE \"C\"",
        &[],
    )
    .await?;
    let mut checks: HashMap<u32, Vec<String>> = HashMap::new();
    // Validated inherited checks, for a partition that must be created on its own and attached
    // (see `table_ddl`): ATTACH PARTITION requires the child to carry the parent's checks.
    let mut inherited_checks: HashMap<u32, Vec<String>> = HashMap::new();
    for r in &rows {
        let relid: u32 = r.get(0);
        let Some(tname) = rel_name(relid) else {
            continue;
        };
        let cname: String = r.get(1);
        let def: String = r.get(2);
        if !r.get::<_, bool>(4) {
            // inherited: comes with INHERITS / PARTITION OF
            if r.get::<_, bool>(3) {
                inherited_checks
                    .entry(relid)
                    .or_default()
                    .push(format!("    CONSTRAINT {cname} {def}"));
            }
            continue;
        }
        if r.get::<_, bool>(3) {
            checks
                .entry(relid)
                .or_default()
                .push(format!("    CONSTRAINT {cname} {def}"));
        } else {
            // NOT VALID: existing rows may violate it, so it goes after the data (no ONLY:
            // children get their inherited copy as in the source).
            post_constraints_nv.push(format!(
                "ALTER TABLE {tname} ADD CONSTRAINT {cname} {def};\n"
            ));
        }
    }

    // Sequences: options, and which belong to a column (identity 'i', OWNED BY 'a').
    let rows = query(
        conn,
        "SELECT d.objid, d.refobjid, pg_catalog.quote_ident(a.attname), d.deptype::text
           FROM pg_catalog.pg_depend d
           JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
           JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
          WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
            AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i')",
        &[],
    )
    .await?;
    let mut seq_owner: HashMap<u32, (u32, String, String)> = HashMap::new();
    for r in &rows {
        seq_owner.insert(r.get(0), (r.get(1), r.get(2), r.get(3)));
    }
    let rows = query(
        conn,
        "SELECT seqrelid, pg_catalog.format_type(seqtypid, NULL), seqstart, seqincrement, seqmin, seqmax, seqcache, seqcycle
           FROM pg_catalog.pg_sequence",
        &[],
    )
    .await?;
    let mut seq_opts: HashMap<u32, (String, String)> = HashMap::new();
    for r in &rows {
        let opts = format!(
            "START WITH {}\n    INCREMENT BY {}\n    MINVALUE {}\n    MAXVALUE {}\n    CACHE {}\n    {}",
            r.get::<_, i64>(2),
            r.get::<_, i64>(3),
            r.get::<_, i64>(4),
            r.get::<_, i64>(5),
            r.get::<_, i64>(6),
            if r.get::<_, bool>(7) {
                "CYCLE"
            } else {
                "NO CYCLE"
            }
        );
        seq_opts.insert(r.get(0), (r.get(1), opts));
    }

    let mut matviews = Vec::new();
    let mut identity_stmts: HashMap<u32, Vec<String>> = HashMap::new();
    for (seq, (table, col, deptype)) in &seq_owner {
        let (Some(seq_rel), Some(tname)) = (rels.get(seq), rel_name(*table)) else {
            continue;
        };
        let Some((ty, opts)) = seq_opts.get(seq) else {
            continue;
        };
        if deptype == "i" {
            let column = columns
                .get(table)
                .and_then(|cols| cols.iter().find(|c| &c.name == col));
            let kind = column.map_or("BY DEFAULT", |c| {
                if c.identity == "a" {
                    "ALWAYS"
                } else {
                    "BY DEFAULT"
                }
            });
            // The identity sequence takes the column's type; `AS` is only allowed (and only
            // needed) afterwards, when someone changed it with ALTER SEQUENCE … AS.
            let mut stmt = format!(
                "ALTER TABLE ONLY {tname} ALTER COLUMN {col} ADD GENERATED {kind} AS IDENTITY (\n    SEQUENCE NAME {}\n    {opts}\n);\n",
                seq_rel.name
            );
            if column.is_some_and(|c| &c.ty != ty) {
                let _ = writeln!(stmt, "ALTER SEQUENCE {} AS {ty};", seq_rel.name);
            }
            identity_stmts.entry(*table).or_default().push(stmt);
            // A reference to the identity sequence is a reference to its table.
            aliases.insert(format!("R{seq}"), format!("R{table}"));
        } else {
            objs.insert(
                format!("O{seq}"),
                PreObj {
                    rank: 8,
                    sort: seq_rel.sort.clone(),
                    sql: format!("ALTER SEQUENCE {} OWNED BY {tname}.{col};\n", seq_rel.name),
                },
            );
        }
    }

    for stmts in identity_stmts.values_mut() {
        stmts.sort(); // deterministic output (seq_owner is a HashMap)
    }
    for rel in rels.values() {
        let key = format!("R{}", rel.oid);
        let cols = columns.get(&rel.oid).cloned().unwrap_or_default();
        let (rank, sql) = match rel.kind.as_str() {
            "S" => {
                if seq_owner.get(&rel.oid).is_some_and(|o| o.2 == "i") {
                    continue; // created by its identity column
                }
                let Some((ty, opts)) = seq_opts.get(&rel.oid) else {
                    continue;
                };
                let unlogged = if rel.persistence == "u" {
                    "UNLOGGED "
                } else {
                    ""
                };
                (
                    4,
                    format!(
                        "CREATE {unlogged}SEQUENCE {}\n    AS {ty}\n    {opts};\n",
                        rel.name
                    ),
                )
            }
            "r" | "p" => (
                5,
                table_ddl(
                    rel,
                    &cols,
                    &parents,
                    &rels,
                    &columns,
                    checks.get(&rel.oid),
                    inherited_checks.get(&rel.oid),
                    identity_stmts.get(&rel.oid),
                ),
            ),
            "v" => {
                let def = view_def(conn, rel.oid).await?;
                let (opts, check) = view_options(&rel.reloptions);
                let mut s = format!("CREATE VIEW {}{opts} AS\n{def}{check};\n", rel.name);
                for c in cols.iter().filter(|c| c.default.is_some()) {
                    let _ = writeln!(
                        s,
                        "ALTER VIEW {} ALTER COLUMN {} SET DEFAULT {};",
                        rel.name,
                        c.name,
                        c.default.as_deref().unwrap_or_default()
                    );
                }
                (6, s)
            }
            "m" => {
                let def = view_def(conn, rel.oid).await?;
                let (opts, _) = view_options(&rel.reloptions);
                if rel.populated {
                    matviews.push((key.clone(), rel.name.clone()));
                }
                let mut s = format!(
                    "CREATE MATERIALIZED VIEW {}{opts} AS\n{def}\n  WITH NO DATA;\n",
                    rel.name
                );
                for c in &cols {
                    for setting in &c.settings {
                        let _ = writeln!(
                            s,
                            "ALTER MATERIALIZED VIEW {} ALTER COLUMN {} {setting};",
                            rel.name, c.name
                        );
                    }
                }
                (7, s)
            }
            _ => continue,
        };
        objs.insert(
            key,
            PreObj {
                rank,
                sort: rel.sort.clone(),
                sql,
            },
        );
    }

    // --- dependency order --------------------------------------------------------------
    let dep_sql = format!(
        "SELECT DISTINCT {a} AS a, {b} AS b FROM pg_catalog.pg_depend d
          WHERE d.deptype IN ('n', 'a') AND d.objid >= {FIRST_USER_OID}
            AND NOT (d.deptype = 'a' AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                     AND (SELECT relkind FROM pg_catalog.pg_class WHERE oid = d.objid) = 'S')",
        a = resolve_sql("d.classid", "d.objid"),
        b = resolve_sql("d.refclassid", "d.refobjid"),
    );
    let dep_rows = query(conn, &dep_sql, &[]).await?;
    let ext_rows = query(
        conn,
        &format!(
            "SELECT {} AS a, 'E' || d.refobjid FROM pg_catalog.pg_depend d WHERE d.deptype = 'e'",
            resolve_sql("d.classid", "d.objid")
        ),
        &[],
    )
    .await?;
    for r in &ext_rows {
        if let Some(a) = r.get::<_, Option<String>>(0) {
            aliases.entry(a).or_insert_with(|| r.get(1));
        }
    }
    let canon = |k: &str| aliases.get(k).cloned().unwrap_or_else(|| k.to_owned());
    let mut deps: Vec<(String, String)> = Vec::new();
    for r in &dep_rows {
        let (Some(a), Some(b)) = (r.get::<_, Option<String>>(0), r.get::<_, Option<String>>(1))
        else {
            continue;
        };
        deps.push((canon(&a), canon(&b)));
    }
    for key in objs.keys().filter(|k| k.starts_with('O')) {
        let seq = &key[1..];
        if let Ok(seq) = seq.parse::<u32>() {
            deps.push((key.clone(), format!("R{seq}")));
            if let Some((table, _, _)) = seq_owner.get(&seq) {
                deps.push((key.clone(), format!("R{table}")));
            }
        }
    }
    let order = topo_order(&objs, &deps)?;
    let mut plan = Plan {
        tables,
        ..Plan::default()
    };
    let mut rank_of_matview = HashMap::new();
    for (i, key) in order.iter().enumerate() {
        rank_of_matview.insert(key.clone(), i);
        let sql = &objs[key].sql;
        if !sql.is_empty() {
            plan.pre.push(sql.clone());
        }
    }
    matviews.sort_by_key(|(k, _)| rank_of_matview.get(k).copied().unwrap_or(usize::MAX));

    // --- inherited columns that differ from their parent -------------------------------
    // (handled in table_ddl)

    // --- sequence positions: read inside the snapshot (P03) ----------------------------
    let seqs: Vec<(String, String)> = rels
        .values()
        .filter(|r| r.kind == "S")
        .map(|r| (r.sort.clone(), r.name.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for (_, name) in seqs {
        let sql = format!("SELECT last_value, is_called FROM {name}");
        let row = match conn.client.query_one(&sql, &[]).await {
            Ok(row) => row,
            Err(e) => return Err(conn.error(e, &format!("sequence {name}")).await),
        };
        let last: i64 = row.get(0);
        let called: bool = row.get(1);
        plan.sequences.push(format!(
            "SELECT pg_catalog.setval({}, {last}, {called});\n",
            quote_literal(&name)
        ));
    }

    // --- large objects -----------------------------------------------------------------
    let rows = query(
        conn,
        "SELECT oid FROM pg_catalog.pg_largeobject_metadata ORDER BY oid",
        &[],
    )
    .await?;
    plan.large_objects = rows.iter().map(|r| r.get(0)).collect();

    // --- post-data ---------------------------------------------------------------------
    plan.post.extend(post_constraints_nv);
    plan.post.extend(domains_not_valid);
    post_data(conn, &rels, &mut plan).await?;
    for (_, name) in &matviews {
        plan.post
            .push(format!("REFRESH MATERIALIZED VIEW {name};\n"));
    }
    comments(conn, &mut plan).await?;
    if ownership {
        owners_and_acls(conn, &seq_owner, &mut plan).await?;
        default_privileges(conn, &mut plan).await?;
    }

    // --- size hint ---------------------------------------------------------------------
    let oids: Vec<u32> = plan.tables.iter().map(|t| t.oid).collect();
    if let Ok(row) = conn
        .client
        .query_one(
            "SELECT COALESCE(pg_catalog.sum(pg_catalog.pg_table_size(o)), 0)::bigint FROM pg_catalog.unnest($1::pg_catalog.oid[]) o",
            &[&oids],
        )
        .await
    {
        plan.size_hint = u64::try_from(row.get::<_, i64>(0)).ok();
    }
    Ok(plan)
}

async fn view_def(conn: &mut Conn, oid: u32) -> Result<String, EngineError> {
    match conn
        .client
        .query_one(
            "SELECT pg_catalog.pg_get_viewdef($1::pg_catalog.oid)",
            &[&oid],
        )
        .await
    {
        Ok(row) => {
            let def: String = row.get(0);
            Ok(def.trim_end().trim_end_matches(';').to_owned())
        }
        Err(e) => Err(conn.error(e, "catalog").await),
    }
}

/// `WITH (…)` options of a view and its `WITH … CHECK OPTION` clause.
fn view_options(reloptions: &[String]) -> (String, String) {
    let mut check = String::new();
    let mut opts = Vec::new();
    for o in reloptions {
        match o.as_str() {
            "check_option=local" => "\n  WITH LOCAL CHECK OPTION".clone_into(&mut check),
            "check_option=cascaded" => "\n  WITH CASCADED CHECK OPTION".clone_into(&mut check),
            _ => opts.push(o.clone()),
        }
    }
    let opts = if opts.is_empty() {
        String::new()
    } else {
        format!(" WITH ({})", opts.join(", "))
    };
    (opts, check)
}

#[allow(clippy::too_many_arguments)]
fn table_ddl(
    rel: &Rel,
    cols: &[Column],
    parents: &HashMap<u32, Vec<u32>>,
    rels: &BTreeMap<u32, Rel>,
    columns: &HashMap<u32, Vec<Column>>,
    checks: Option<&Vec<String>>,
    inherited_checks: Option<&Vec<String>>,
    identity: Option<&Vec<String>>,
) -> String {
    let my_parents: Vec<u32> = parents.get(&rel.oid).cloned().unwrap_or_default();
    let parent_names: Vec<String> = my_parents
        .iter()
        .filter_map(|p| rels.get(p).map(|r| r.name.clone()))
        .collect();
    // A partition whose columns are in another order than its parent's (it was created on its
    // own and attached later, or its parent had columns dropped) would get the parent's order
    // from `PARTITION OF`, and its rows would no longer match the dump's COPY lines. Create it
    // on its own with its own order, every check it carries, then attach it — as pg_dump does.
    // ATTACH marks the matching columns and checks inherited again (attislocal, conislocal).
    if rel.is_partition
        && let ([parent], [parent_name]) = (my_parents.as_slice(), parent_names.as_slice())
    {
        let parent_order: Vec<&str> = columns
            .get(parent)
            .map(|pc| pc.iter().map(|c| c.raw_name.as_str()).collect())
            .unwrap_or_default();
        let my_order: Vec<&str> = cols.iter().map(|c| c.raw_name.as_str()).collect();
        if parent_order != my_order {
            let standalone = Rel {
                is_partition: false,
                ..rel.clone()
            };
            let all_checks: Vec<String> = checks
                .into_iter()
                .chain(inherited_checks)
                .flatten()
                .cloned()
                .collect();
            let mut s = table_ddl(
                &standalone,
                cols,
                &HashMap::new(),
                rels,
                columns,
                Some(&all_checks),
                None,
                identity,
            );
            let _ = writeln!(
                s,
                "ALTER TABLE ONLY {parent_name} ATTACH PARTITION {} {};",
                rel.name,
                rel.bound.as_deref().unwrap_or("DEFAULT")
            );
            return s;
        }
    }
    let unlogged = if rel.persistence == "u" {
        "UNLOGGED "
    } else {
        ""
    };
    let mut items: Vec<String> = Vec::new();
    let mut after = String::new();
    for c in cols {
        if c.local || my_parents.is_empty() {
            let mut c = c.clone();
            if !c.identity.is_empty() {
                c.default = None;
            }
            if !rel.is_partition {
                items.push(c.definition());
                continue;
            }
        }
        // Inherited column: it comes from the parent; re-apply what differs locally.
        let parent_col = my_parents
            .iter()
            .filter_map(|p| columns.get(p))
            .flat_map(|pc| pc.iter())
            .find(|pc| pc.raw_name == c.raw_name);
        let parent_default = parent_col.and_then(|p| p.default.clone());
        if c.generated.is_empty() && c.identity.is_empty() && c.default != parent_default {
            match &c.default {
                Some(d) => {
                    let _ = writeln!(
                        after,
                        "ALTER TABLE ONLY {} ALTER COLUMN {} SET DEFAULT {d};",
                        rel.name, c.name
                    );
                }
                None => {
                    let _ = writeln!(
                        after,
                        "ALTER TABLE ONLY {} ALTER COLUMN {} DROP DEFAULT;",
                        rel.name, c.name
                    );
                }
            }
        }
        if c.not_null && !parent_col.is_some_and(|p| p.not_null) {
            let _ = writeln!(
                after,
                "ALTER TABLE ONLY {} ALTER COLUMN {} SET NOT NULL;",
                rel.name, c.name
            );
        }
    }
    items.extend(checks.into_iter().flatten().cloned());
    let mut s = if rel.is_partition {
        let mut s = format!(
            "CREATE {unlogged}TABLE {} PARTITION OF {}",
            rel.name,
            parent_names.join(", ")
        );
        if !items.is_empty() {
            let _ = write!(s, " (\n{}\n)", items.join(",\n"));
        }
        let _ = write!(s, "\n{}", rel.bound.as_deref().unwrap_or("DEFAULT"));
        s
    } else {
        let mut s = format!(
            "CREATE {unlogged}TABLE {} (\n{}\n)",
            rel.name,
            items.join(",\n")
        );
        if !parent_names.is_empty() {
            let _ = write!(s, "\nINHERITS ({})", parent_names.join(", "));
        }
        s
    };
    if let Some(key) = &rel.partkey {
        let _ = write!(s, "\nPARTITION BY {key}");
    }
    if !rel.reloptions.is_empty() {
        let _ = write!(s, "\nWITH ({})", rel.reloptions.join(", "));
    }
    s.push_str(";\n");
    s.push_str(&after);
    for c in cols {
        for setting in &c.settings {
            let _ = writeln!(
                s,
                "ALTER TABLE ONLY {} ALTER COLUMN {} {setting};",
                rel.name, c.name
            );
        }
    }
    for stmt in identity.into_iter().flatten() {
        s.push_str(stmt);
    }
    s
}

/// Kahn's algorithm; among ready objects the lowest (rank, name) goes first, so the order is
/// deterministic and follows pg_dump's broad layout (schemas, extensions, types, functions,
/// sequences, tables, views, materialized views).
fn topo_order(
    objs: &BTreeMap<String, PreObj>,
    deps: &[(String, String)],
) -> Result<Vec<String>, EngineError> {
    let mut indeg: HashMap<&str, usize> = objs.keys().map(|k| (k.as_str(), 0)).collect();
    let mut succ: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for (a, b) in deps {
        if a == b || !objs.contains_key(a) || !objs.contains_key(b) || !seen.insert((a, b)) {
            continue;
        }
        *indeg.get_mut(a.as_str()).expect("present") += 1;
        succ.entry(b.as_str()).or_default().push(a.as_str());
    }
    let mut ready: BTreeSet<(u8, &str, &str)> = indeg
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(k, _)| (objs[*k].rank, objs[*k].sort.as_str(), *k))
        .collect();
    let mut out = Vec::with_capacity(objs.len());
    while let Some(first) = ready.pop_first() {
        let key = first.2;
        out.push(key.to_owned());
        for next in succ.get(key).into_iter().flatten() {
            let d = indeg.get_mut(next).expect("present");
            *d -= 1;
            if *d == 0 {
                ready.insert((objs[*next].rank, objs[*next].sort.as_str(), next));
            }
        }
    }
    if out.len() < objs.len() {
        let done: HashSet<&str> = out.iter().map(String::as_str).collect();
        let stuck: Vec<String> = objs
            .iter()
            .filter(|(k, _)| !done.contains(k.as_str()))
            .map(|(_, o)| o.sort.clone())
            .collect();
        return Err(EngineError::new(
            ErrorKind::Unsupported,
            format!(
                "circular dependency between schema objects: {}",
                stuck.join(", ")
            ),
        )
        .with_object(stuck.first().cloned().unwrap_or_default()));
    }
    Ok(out)
}

/// Constraints, indexes, foreign keys (last, after every key exists), triggers, rules,
/// row-level security and policies.
async fn post_data(
    conn: &mut Conn,
    rels: &BTreeMap<u32, Rel>,
    plan: &mut Plan,
) -> Result<(), EngineError> {
    let name = |oid: u32| rels.get(&oid).map(|r| r.name.clone());
    let kind = |oid: u32| rels.get(&oid).map(|r| r.kind.clone()).unwrap_or_default();

    let rows = query(
        conn,
        "SELECT con.conrelid, pg_catalog.quote_ident(con.conname), con.contype::text, pg_catalog.pg_get_constraintdef(con.oid)
           FROM pg_catalog.pg_constraint con
          WHERE con.contype IN ('p', 'u', 'x', 'f') AND con.conrelid <> 0 AND con.conparentid = 0 AND con.conislocal
          ORDER BY con.contype = 'f', con.conrelid, con.conname COLLATE \"C\"",
        &[],
    )
    .await?;
    let mut keys = Vec::new();
    let mut fks = Vec::new();
    for r in &rows {
        let relid: u32 = r.get(0);
        let Some(t) = name(relid) else { continue };
        // ONLY for plain tables; on a partitioned table the constraint must recurse.
        let only = if kind(relid) == "r" { "ONLY " } else { "" };
        let stmt = format!(
            "ALTER TABLE {only}{t}\n    ADD CONSTRAINT {} {};\n",
            r.get::<_, String>(1),
            r.get::<_, String>(3)
        );
        if r.get::<_, String>(2) == "f" {
            fks.push((t, stmt));
        } else {
            keys.push((t, stmt));
        }
    }
    keys.sort();
    fks.sort();

    let rows = query(
        conn,
        "SELECT i.indrelid, pg_catalog.pg_get_indexdef(i.indexrelid), pg_catalog.quote_ident(ic.relname),
                i.indisclustered, i.indisreplident,
                EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid
                         AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')),
                ic.relkind::text, i.indisvalid, pg_catalog.quote_ident(n.nspname)
           FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
          WHERE NOT ic.relispartition
          ORDER BY i.indrelid, ic.relname COLLATE \"C\"",
        &[],
    )
    .await?;
    let mut indexes = Vec::new();
    let mut extras = Vec::new();
    for r in &rows {
        let relid: u32 = r.get(0);
        let Some(t) = name(relid) else { continue };
        let backs_constraint: bool = r.get(5);
        let relkind: String = r.get(6);
        if !backs_constraint {
            if !r.get::<_, bool>(7) && relkind == "i" {
                continue; // an invalid index (failed CREATE INDEX CONCURRENTLY); pg_dump skips it too
            }
            let mut def: String = r.get(1);
            if relkind == "I" {
                // A partitioned index: create it recursively so partitions get theirs.
                def = def.replacen(" ON ONLY ", " ON ", 1);
            }
            indexes.push((t.clone(), format!("{def};\n")));
        }
        let short = r.get::<_, String>(2);
        if r.get::<_, bool>(3) {
            let alter = if kind(relid) == "m" {
                "MATERIALIZED VIEW"
            } else {
                "TABLE"
            };
            extras.push(format!("ALTER {alter} {t} CLUSTER ON {short};\n"));
        }
        if r.get::<_, bool>(4) {
            extras.push(format!(
                "ALTER TABLE ONLY {t} REPLICA IDENTITY USING INDEX {short};\n"
            ));
        }
    }
    indexes.sort();
    for rel in rels.values().filter(|r| r.kind == "r" || r.kind == "p") {
        match rel.replident.as_str() {
            "f" => extras.push(format!(
                "ALTER TABLE ONLY {} REPLICA IDENTITY FULL;\n",
                rel.name
            )),
            "n" => extras.push(format!(
                "ALTER TABLE ONLY {} REPLICA IDENTITY NOTHING;\n",
                rel.name
            )),
            _ => {}
        }
    }
    // Extended statistics (CREATE STATISTICS), after the indexes as pg_dump places them.
    let rows = query(
        conn,
        &format!(
            "SELECT s.stxrelid, pg_catalog.pg_get_statisticsobjdef(s.oid),
                    pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(s.stxname),
                    CASE WHEN s.stxstattarget IS NOT NULL AND s.stxstattarget >= 0 THEN s.stxstattarget::int END
               FROM pg_catalog.pg_statistic_ext s JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace
              WHERE {nsn} AND {ext}
              ORDER BY n.nspname COLLATE \"C\", s.stxname COLLATE \"C\"",
            nsn = user_ns("n"),
            ext = not_ext("pg_statistic_ext", "s.oid"),
        ),
        &[],
    )
    .await?;
    let mut statistics = Vec::new();
    for r in &rows {
        if name(r.get(0)).is_none() {
            continue;
        }
        let mut s = format!("{};\n", r.get::<_, String>(1));
        if let Some(target) = r.get::<_, Option<i32>>(3) {
            let _ = writeln!(
                s,
                "ALTER STATISTICS {} SET STATISTICS {target};",
                r.get::<_, String>(2)
            );
        }
        statistics.push(s);
    }
    plan.post.extend(keys.into_iter().map(|(_, s)| s));
    plan.post.extend(indexes.into_iter().map(|(_, s)| s));
    plan.post.extend(statistics);
    plan.post.extend(extras);
    plan.post.extend(fks.into_iter().map(|(_, s)| s));

    let rows = query(
        conn,
        "SELECT tgrelid, pg_catalog.pg_get_triggerdef(oid), tgenabled::text, pg_catalog.quote_ident(tgname)
           FROM pg_catalog.pg_trigger WHERE NOT tgisinternal AND tgparentid = 0
          ORDER BY tgrelid, tgname COLLATE \"C\"",
        &[],
    )
    .await?;
    let mut triggers = Vec::new();
    for r in &rows {
        let Some(t) = name(r.get(0)) else { continue };
        let mut s = format!("{};\n", r.get::<_, String>(1));
        let tg: String = r.get(3);
        match r.get::<_, String>(2).as_str() {
            "D" => {
                let _ = writeln!(s, "ALTER TABLE {t} DISABLE TRIGGER {tg};");
            }
            "R" => {
                let _ = writeln!(s, "ALTER TABLE {t} ENABLE REPLICA TRIGGER {tg};");
            }
            "A" => {
                let _ = writeln!(s, "ALTER TABLE {t} ENABLE ALWAYS TRIGGER {tg};");
            }
            _ => {}
        }
        triggers.push((t, s));
    }
    triggers.sort();
    plan.post.extend(triggers.into_iter().map(|(_, s)| s));

    let rows = query(
        conn,
        "SELECT ev_class, pg_catalog.pg_get_ruledef(oid), ev_enabled::text, pg_catalog.quote_ident(rulename)
           FROM pg_catalog.pg_rewrite WHERE rulename <> '_RETURN' ORDER BY ev_class, rulename COLLATE \"C\"",
        &[],
    )
    .await?;
    for r in &rows {
        let Some(t) = name(r.get(0)) else { continue };
        let mut s = format!("{}\n", r.get::<_, String>(1).trim_end());
        let rule: String = r.get(3);
        match r.get::<_, String>(2).as_str() {
            "D" => {
                let _ = writeln!(s, "ALTER TABLE {t} DISABLE RULE {rule};");
            }
            "R" => {
                let _ = writeln!(s, "ALTER TABLE {t} ENABLE REPLICA RULE {rule};");
            }
            "A" => {
                let _ = writeln!(s, "ALTER TABLE {t} ENABLE ALWAYS RULE {rule};");
            }
            _ => {}
        }
        plan.post.push(s);
    }

    for rel in rels.values() {
        if rel.rls {
            plan.post.push(format!(
                "ALTER TABLE {} ENABLE ROW LEVEL SECURITY;\n",
                rel.name
            ));
        }
        if rel.force_rls {
            plan.post.push(format!(
                "ALTER TABLE {} FORCE ROW LEVEL SECURITY;\n",
                rel.name
            ));
        }
    }
    let rows = query(
        conn,
        "SELECT pol.polrelid, pg_catalog.quote_ident(pol.polname), pol.polcmd::text, pol.polpermissive,
                ARRAY(SELECT CASE WHEN r.r = 0 THEN '' ELSE pg_catalog.pg_get_userbyid(r.r) END
                        FROM pg_catalog.unnest(pol.polroles) AS r(r) ORDER BY 1),
                pg_catalog.pg_get_expr(pol.polqual, pol.polrelid), pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid)
           FROM pg_catalog.pg_policy pol ORDER BY pol.polrelid, pol.polname COLLATE \"C\"",
        &[],
    )
    .await?;
    for r in &rows {
        let Some(t) = name(r.get(0)) else { continue };
        let pol: String = r.get(1);
        let cmd = match r.get::<_, String>(2).as_str() {
            "r" => "SELECT",
            "a" => "INSERT",
            "w" => "UPDATE",
            "d" => "DELETE",
            _ => "ALL",
        };
        let permissive = if r.get::<_, bool>(3) {
            "PERMISSIVE"
        } else {
            "RESTRICTIVE"
        };
        let roles: Vec<String> = r.get(4);
        let named: Vec<String> = roles.iter().filter(|r| !r.is_empty()).cloned().collect();
        let to: Vec<String> = roles
            .iter()
            .map(|r| {
                if r.is_empty() {
                    "PUBLIC".to_owned()
                } else {
                    quote_ident(r)
                }
            })
            .collect();
        let mut s = format!(
            "CREATE POLICY {pol} ON {t} AS {permissive} FOR {cmd} TO {}",
            to.join(", ")
        );
        if let Some(q) = r.get::<_, Option<String>>(5) {
            let _ = write!(s, " USING ({q})");
        }
        if let Some(c) = r.get::<_, Option<String>>(6) {
            let _ = write!(s, " WITH CHECK ({c})");
        }
        if named.is_empty() {
            plan.post.push(format!("{s};\n"));
        } else {
            plan.post
                .push(guarded(&named, &s, &format!("policy {pol} on {t}")));
        }
    }
    Ok(())
}

/// `COMMENT ON …` for every comment on a dumped object.
async fn comments(conn: &mut Conn, plan: &mut Plan) -> Result<(), EngineError> {
    let sql = format!(
        "SELECT (pg_catalog.pg_identify_object(d.classoid, d.objoid, d.objsubid)).type,
                (pg_catalog.pg_identify_object(d.classoid, d.objoid, d.objsubid)).identity,
                d.description,
                CASE d.classoid
                  WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN
                    (SELECT pg_catalog.quote_ident(conname) || ' ON ' || CASE WHEN contypid <> 0
                       THEN 'DOMAIN ' || contypid::pg_catalog.regtype::text ELSE conrelid::pg_catalog.regclass::text END
                       FROM pg_catalog.pg_constraint WHERE oid = d.objoid)
                  WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN
                    (SELECT pg_catalog.quote_ident(tgname) || ' ON ' || tgrelid::pg_catalog.regclass::text
                       FROM pg_catalog.pg_trigger WHERE oid = d.objoid)
                  WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass THEN
                    (SELECT pg_catalog.quote_ident(polname) || ' ON ' || polrelid::pg_catalog.regclass::text
                       FROM pg_catalog.pg_policy WHERE oid = d.objoid)
                  WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN
                    (SELECT pg_catalog.quote_ident(rulename) || ' ON ' || ev_class::pg_catalog.regclass::text
                       FROM pg_catalog.pg_rewrite WHERE oid = d.objoid)
                END
           FROM pg_catalog.pg_description d
          WHERE (d.objoid >= {FIRST_USER_OID} OR (d.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                                                  AND d.objoid = 'public'::pg_catalog.regnamespace))
            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = d.classoid
                             AND e.objid = d.objoid AND e.deptype = 'e')
          ORDER BY 1, 2, 4"
    );
    let rows = query(conn, &sql, &[]).await?;
    let mut unsupported_comments = Vec::new();
    for r in &rows {
        let ty: String = r.get(0);
        let identity: String = r.get(1);
        let text: String = r.get(2);
        let extra: Option<String> = r.get(3);
        let target = match ty.as_str() {
            "table" | "view" | "materialized view" | "sequence" | "index" | "type" | "domain"
            | "function" | "procedure" | "schema" | "extension" | "large object" => {
                format!("{} {identity}", ty.to_uppercase())
            }
            "composite type" => format!("TYPE {identity}"),
            "table column"
            | "view column"
            | "materialized view column"
            | "composite type column" => {
                format!("COLUMN {identity}")
            }
            "table constraint" | "domain constraint" | "trigger" | "policy" | "rule" => {
                let word = match ty.as_str() {
                    "trigger" => "TRIGGER",
                    "policy" => "POLICY",
                    "rule" => "RULE",
                    _ => "CONSTRAINT",
                };
                let Some(extra) = extra else { continue };
                format!("{word} {extra}")
            }
            _ => {
                unsupported_comments.push(format!("comment on {ty} {identity}"));
                continue;
            }
        };
        plan.post.push(format!(
            "COMMENT ON {target} IS {};\n",
            quote_literal(&text)
        ));
    }
    if unsupported_comments.is_empty() {
        Ok(())
    } else {
        Err(unsupported(&unsupported_comments))
    }
}

/// Owners and privileges, each wrapped so a restore where the role is missing (or the
/// restoring role may not hand objects over) warns instead of failing.
async fn owners_and_acls(
    conn: &mut Conn,
    seq_owner: &HashMap<u32, (u32, String, String)>,
    plan: &mut Plan,
) -> Result<(), EngineError> {
    let nsn = user_ns("n");
    let sql = format!(
        "WITH objs(ord, kind, target, owner, acl, col, oid) AS (
            SELECT 1, 'SCHEMA', pg_catalog.quote_ident(n.nspname), n.nspowner, n.nspacl, NULL::text, n.oid
              FROM pg_catalog.pg_namespace n WHERE {nsn} AND {ext_n}
            UNION ALL
            SELECT 2, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                   pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.typname), t.typowner, t.typacl, NULL, t.oid
              FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
             WHERE {nsn} AND {ext_t} AND t.typtype IN ('e', 'd', 'c', 'r')
               AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.typrelid) = 'c')
            UNION ALL
            SELECT 3, CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                   pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) || '(' ||
                   pg_catalog.pg_get_function_identity_arguments(p.oid) || ')', p.proowner, p.proacl, NULL, p.oid
              FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             WHERE {nsn} AND {ext_p} AND p.prokind IN ('f', 'p', 'w')
            UNION ALL
            SELECT 4, CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
                   pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), c.relowner, c.relacl, NULL, c.oid
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE {nsn} AND {ext_c} AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
            UNION ALL
            SELECT 5, 'COLUMN', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), c.relowner, a.attacl,
                   pg_catalog.quote_ident(a.attname), c.oid
              FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE {nsn} AND {ext_c} AND a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
            UNION ALL
            SELECT 6, 'LARGE OBJECT', l.oid::text, l.lomowner, l.lomacl, NULL, l.oid FROM pg_catalog.pg_largeobject_metadata l
            UNION ALL
            SELECT 7, 'STATISTICS', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(s.stxname),
                   s.stxowner, NULL::pg_catalog.aclitem[], NULL, s.oid
              FROM pg_catalog.pg_statistic_ext s JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace
             WHERE {nsn} AND {ext_s}
         )
         SELECT kind, target, col, pg_catalog.pg_get_userbyid(owner), acl IS NULL, oid,
                ARRAY(SELECT x.privilege_type FROM pg_catalog.aclexplode(acl) x ORDER BY x.grantee, x.privilege_type),
                ARRAY(SELECT CASE WHEN x.grantee = 0 THEN '' ELSE pg_catalog.pg_get_userbyid(x.grantee) END
                        FROM pg_catalog.aclexplode(acl) x ORDER BY x.grantee, x.privilege_type),
                ARRAY(SELECT x.is_grantable FROM pg_catalog.aclexplode(acl) x ORDER BY x.grantee, x.privilege_type)
           FROM objs ORDER BY ord, target COLLATE \"C\", col COLLATE \"C\"",
        ext_n = not_ext("pg_namespace", "n.oid"),
        ext_t = not_ext("pg_type", "t.oid"),
        ext_p = not_ext("pg_proc", "p.oid"),
        ext_c = not_ext("pg_class", "c.oid"),
        ext_s = not_ext("pg_statistic_ext", "s.oid"),
    );
    let rows = query(conn, &sql, &[]).await?;
    for r in &rows {
        let kind: String = r.get(0);
        let target: String = r.get(1);
        let col: Option<String> = r.get(2);
        let owner: String = r.get(3);
        let default_acl: bool = r.get(4);
        let oid: u32 = r.get(5);
        let privs: Vec<String> = r.get(6);
        let grantees: Vec<String> = r.get(7);
        let grantable: Vec<bool> = r.get(8);
        // GRANT … ON TABLE works for views and materialized views; ALTER needs the exact kind.
        let grant_kind = match kind.as_str() {
            "VIEW" | "MATERIALIZED VIEW" | "COLUMN" => "TABLE",
            k => k,
        };
        let what = format!("{} {target}", kind.to_lowercase());
        if col.is_none() {
            let owned_sequence = kind == "SEQUENCE" && seq_owner.contains_key(&oid);
            // A sequence owned by a column follows its table's owner.
            if !owned_sequence {
                let stmt = format!("ALTER {kind} {target} OWNER TO {}", quote_ident(&owner));
                plan.post.push(guarded(
                    std::slice::from_ref(&owner),
                    &stmt,
                    &format!("owner of {what}"),
                ));
            }
            if default_acl {
                continue;
            }
            plan.post.push(format!(
                "REVOKE ALL ON {grant_kind} {target} FROM PUBLIC;\n"
            ));
            let stmt = format!(
                "REVOKE ALL ON {grant_kind} {target} FROM {}",
                quote_ident(&owner)
            );
            plan.post.push(guarded(
                std::slice::from_ref(&owner),
                &stmt,
                &format!("privileges of {what}"),
            ));
        }
        for ((privilege, grantee), grant_option) in privs.iter().zip(&grantees).zip(&grantable) {
            let cols = col.as_ref().map(|c| format!(" ({c})")).unwrap_or_default();
            let with = if *grant_option {
                " WITH GRANT OPTION"
            } else {
                ""
            };
            if grantee.is_empty() {
                plan.post.push(format!(
                    "GRANT {privilege}{cols} ON {grant_kind} {target} TO PUBLIC{with};\n"
                ));
            } else {
                let stmt = format!(
                    "GRANT {privilege}{cols} ON {grant_kind} {target} TO {}{with}",
                    quote_ident(grantee)
                );
                plan.post.push(guarded(
                    std::slice::from_ref(grantee),
                    &stmt,
                    &format!("privileges of {what}"),
                ));
            }
        }
    }
    Ok(())
}

/// `ALTER DEFAULT PRIVILEGES` from `pg_default_acl`, reproduced exactly: a global entry
/// (no schema) replaces the built-in defaults, so everything is revoked from the owner and
/// `PUBLIC` first and the stored items granted; a per-schema entry only adds grants. Each
/// statement is guarded by the roles it names (a restore without them skips it with a
/// warning). Follows pg_dump's `dumpDefaultACL` and the PostgreSQL docs of
/// `ALTER DEFAULT PRIVILEGES`.
async fn default_privileges(conn: &mut Conn, plan: &mut Plan) -> Result<(), EngineError> {
    let rows = query(
        conn,
        "SELECT pg_catalog.pg_get_userbyid(d.defaclrole),
                CASE WHEN d.defaclnamespace = 0 THEN NULL ELSE pg_catalog.quote_ident(n.nspname) END,
                d.defaclobjtype::text,
                ARRAY(SELECT x.privilege_type FROM pg_catalog.aclexplode(d.defaclacl) x ORDER BY x.grantee, x.privilege_type),
                ARRAY(SELECT CASE WHEN x.grantee = 0 THEN '' ELSE pg_catalog.pg_get_userbyid(x.grantee) END
                        FROM pg_catalog.aclexplode(d.defaclacl) x ORDER BY x.grantee, x.privilege_type),
                ARRAY(SELECT x.is_grantable FROM pg_catalog.aclexplode(d.defaclacl) x ORDER BY x.grantee, x.privilege_type)
           FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
          ORDER BY pg_catalog.pg_get_userbyid(d.defaclrole) COLLATE \"C\", n.nspname COLLATE \"C\" NULLS FIRST, d.defaclobjtype",
        &[],
    )
    .await?;
    for r in &rows {
        let role: String = r.get(0);
        let schema: Option<String> = r.get(1);
        let objects = match r.get::<_, String>(2).as_str() {
            "r" => "TABLES",
            "S" => "SEQUENCES",
            "f" => "FUNCTIONS",
            "T" => "TYPES",
            "n" => "SCHEMAS",
            other => {
                return Err(unsupported(&[format!(
                    "default privileges of role {role} for object type {other:?}"
                )]));
            }
        };
        let privs: Vec<String> = r.get(3);
        let grantees: Vec<String> = r.get(4);
        let grantable: Vec<bool> = r.get(5);
        let head = format!(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {}{}",
            quote_ident(&role),
            schema
                .as_deref()
                .map(|s| format!(" IN SCHEMA {s}"))
                .unwrap_or_default()
        );
        let what = format!(
            "default privileges of role {role} on {}{}",
            objects.to_lowercase(),
            schema
                .as_deref()
                .map(|s| format!(" in schema {s}"))
                .unwrap_or_default()
        );
        let owner = std::slice::from_ref(&role);
        if schema.is_none() {
            for stmt in [
                format!("{head} REVOKE ALL ON {objects} FROM PUBLIC"),
                format!("{head} REVOKE ALL ON {objects} FROM {}", quote_ident(&role)),
            ] {
                plan.post.push(guarded(owner, &stmt, &what));
            }
        }
        for ((privilege, grantee), grant_option) in privs.iter().zip(&grantees).zip(&grantable) {
            let with = if *grant_option {
                " WITH GRANT OPTION"
            } else {
                ""
            };
            let (to, roles) = if grantee.is_empty() {
                ("PUBLIC".to_owned(), vec![role.clone()])
            } else {
                (quote_ident(grantee), vec![role.clone(), grantee.clone()])
            };
            let stmt = format!("{head} GRANT {privilege} ON {objects} TO {to}{with}");
            plan.post.push(guarded(&roles, &stmt, &what));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(rank: u8, sort: &str) -> PreObj {
        PreObj {
            rank,
            sort: sort.to_owned(),
            sql: format!("{sort};\n"),
        }
    }

    #[test]
    fn topo_respects_dependencies_then_rank_and_name() {
        let mut objs = BTreeMap::new();
        objs.insert("T1".to_owned(), obj(2, "public.b_type"));
        objs.insert("T2".to_owned(), obj(2, "public.a_domain"));
        objs.insert("R3".to_owned(), obj(5, "public.t"));
        objs.insert("N4".to_owned(), obj(0, "s"));
        // a_domain depends on b_type; t depends on a_domain; b_type depends on schema s.
        let deps = vec![
            ("T2".to_owned(), "T1".to_owned()),
            ("R3".to_owned(), "T2".to_owned()),
            ("T1".to_owned(), "N4".to_owned()),
            ("T1".to_owned(), "X9".to_owned()), // unknown objects are ignored
        ];
        assert_eq!(
            topo_order(&objs, &deps).unwrap(),
            vec!["N4", "T1", "T2", "R3"]
        );
    }

    #[test]
    fn topo_reports_cycles_by_name() {
        let mut objs = BTreeMap::new();
        objs.insert("P1".to_owned(), obj(3, "public.f()"));
        objs.insert("R2".to_owned(), obj(5, "public.t"));
        let deps = vec![
            ("P1".to_owned(), "R2".to_owned()),
            ("R2".to_owned(), "P1".to_owned()),
        ];
        let err = topo_order(&objs, &deps).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(
            err.message().contains("public.f()") && err.message().contains("public.t"),
            "{err}"
        );
    }

    #[test]
    fn guarded_statements_are_single_literals() {
        let s = guarded(
            &["o'neil".to_owned()],
            "ALTER TABLE public.t OWNER TO \"o'neil\"",
            "owner of table public.t",
        );
        assert!(s.starts_with("DO '") && s.ends_with("';\n"), "{s}");
        // The role literal is quoted twice: once inside the body, once for the DO literal.
        assert!(s.contains("''o''''neil''"), "{s}");
    }

    #[test]
    fn view_options_split_check_option() {
        let (opts, check) = view_options(&[
            "security_barrier=true".to_owned(),
            "check_option=local".to_owned(),
        ]);
        assert_eq!(opts, " WITH (security_barrier=true)");
        assert_eq!(check, "\n  WITH LOCAL CHECK OPTION");
    }
}
