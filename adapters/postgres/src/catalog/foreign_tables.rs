//! Foreign tables: `CREATE FOREIGN TABLE` in pg_dump's form (`dumpTableSchema` of pg_dump.c,
//! PostgreSQL 15, relkind `f`). Their rows live on the foreign server and are never dumped,
//! as pg_dump without `--include-foreign-data`: the data path, the fingerprints and the
//! restore's checks read ordinary tables only (relkind `r`, `catalog::data_tables`).
//!
//! A foreign table is a relation like the others (`table::load_relations` lists it with kind
//! `f`): its triggers, extended statistics, `NOT VALID` checks, comments, owner and
//! privileges (`kinds::acl_objects_sql`) come from the shared post-data code, and a table
//! inheriting from it names it in `INHERITS`.

use std::collections::HashMap;
use std::fmt::Write as _;

use exporter_contract::{EngineError, ErrorKind};

use super::pre::{PreData, options_sql};
use super::table::{Rel, Tables, column_items};
use super::{query, routing};
use crate::cells::{Cells, read_all};
use crate::connect::Conn;

/// What `pg_foreign_table` and `pg_attribute` add to a foreign table's relation.
struct Foreign {
    /// The foreign server, quoted.
    server: String,
    /// The table's generic options as `name 'value'` lines joined by `,\n    `, in the
    /// array's order (see `pre::options_sql`).
    options: Option<String>,
    /// Each column's generic options (quoted column name, options as above), in `attnum`
    /// order.
    column_options: Vec<(String, String)>,
}

/// `CREATE FOREIGN TABLE` of every foreign table in `tables.rels` (rank 5, key `R<oid>`, as
/// tables: `pg_depend` orders it after its server, its column types and its parents).
///
/// # Errors
///
/// Classified catalog errors; [`exporter_contract::ErrorKind::Unsupported`] naming the
/// foreign tables that are partitions of a tree whose rows are loaded through its root
/// (`catalog/routing.rs`): the restore routes those rows itself and could send rows of a
/// local partition to the foreign server.
pub(super) async fn foreign_tables(
    conn: &mut Conn,
    tables: &Tables<'_>,
    pre: &mut PreData,
) -> Result<(), EngineError> {
    if !tables.rels.values().any(|r| r.kind == "f") {
        return Ok(());
    }
    refuse_routed_partitions(conn).await?;
    let mut foreign = load(conn).await?;
    for rel in tables.rels.values().filter(|r| r.kind == "f") {
        let Some(extra) = foreign.remove(&rel.oid) else {
            continue; // not reached: every relation of kind `f` has its pg_foreign_table row
        };
        pre.insert(
            format!("R{}", rel.oid),
            5,
            rel.sort.clone(),
            foreign_table_ddl(rel, tables, &extra),
        );
    }
    Ok(())
}

/// Server, options and column options of every foreign table, by `pg_class` OID.
async fn load(conn: &mut Conn) -> Result<HashMap<u32, Foreign>, EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT ft.ftrelid, pg_catalog.quote_ident(s.srvname), {opts},
                    ARRAY(SELECT pg_catalog.quote_ident(a.attname) FROM pg_catalog.pg_attribute a
                           WHERE a.attrelid = ft.ftrelid AND a.attnum > 0 AND NOT a.attisdropped
                             AND a.attfdwoptions IS NOT NULL ORDER BY a.attnum),
                    ARRAY(SELECT COALESCE({attopts}, '') FROM pg_catalog.pg_attribute a
                           WHERE a.attrelid = ft.ftrelid AND a.attnum > 0 AND NOT a.attisdropped
                             AND a.attfdwoptions IS NOT NULL ORDER BY a.attnum),
                    ft.ftrelid::pg_catalog.regclass::text
               FROM pg_catalog.pg_foreign_table ft
               JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver",
            opts = options_sql("ft.ftoptions"),
            attopts = options_sql("a.attfdwoptions"),
        ),
        &[],
    )
    .await?;
    let mut out = HashMap::new();
    for r in &rows {
        let r = Cells::new(r, "foreign table", 5);
        let names: Vec<String> = r.get(3)?;
        let options: Vec<String> = r.get(4)?;
        out.insert(
            r.get::<u32>(0)?,
            Foreign {
                server: r.get(1)?,
                options: r.get(2)?,
                column_options: names
                    .into_iter()
                    .zip(options)
                    .filter(|(_, o)| !o.is_empty())
                    .collect(),
            },
        );
    }
    Ok(out)
}

/// Fail when a foreign table is a partition of a tree loaded through its root, naming each
/// such table (the error's object: the first).
async fn refuse_routed_partitions(conn: &mut Conn) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "WITH RECURSIVE {ctes}
             SELECT 'foreign table ' || pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
                    {root}
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind = 'f' AND c.relispartition AND {root} IS NOT NULL
              ORDER BY 1",
            ctes = routing::UNSAFE_CTES,
            root = routing::ROOT_IF_ROUTED_SQL,
        ),
        &[],
    )
    .await?;
    let found = read_all(&rows, "foreign table", 0, |r| {
        Ok((r.get::<String>(0)?, r.get::<String>(1)?))
    })?;
    let Some((first, _)) = found.first() else {
        return Ok(());
    };
    let what: Vec<String> = found
        .iter()
        .map(|(table, root)| format!("{table} (a partition of {root})"))
        .collect();
    Err(EngineError::new(
        ErrorKind::Unsupported,
        format!(
            "cannot be exported faithfully by exporter's PostgreSQL engine: {}: the dump loads \
             the rows of such a partition tree through its root (the leaf a row belongs to \
             depends on the server), and a restore could route rows of a local partition into \
             the foreign table, that is to the foreign server",
            what.join(", ")
        ),
    )
    .with_object(first.clone()))
}

/// The statements that create foreign table `rel`, in pg_dump's form:
///
/// ```sql
/// CREATE FOREIGN TABLE s.ft (
///     a integer NOT NULL,
///     CONSTRAINT ft_a_check CHECK ((a > 0))
/// )
/// INHERITS (s.parent)
/// SERVER srv
/// OPTIONS (
///     table_name 't'
/// );
/// ALTER FOREIGN TABLE s.ft ALTER COLUMN a OPTIONS (
///     column_name 'x'
/// );
/// ```
///
/// Columns, defaults, generated columns, `NOT NULL`, collations and checks as `CREATE TABLE`
/// writes them (`table::column_items`: inherited columns come from the parents, what differs
/// locally is re-applied). A partition is created on its own with all its columns and
/// checks, then attached (`ALTER TABLE ONLY parent ATTACH PARTITION … bound`), as pg_dump
/// does for every partition. Per-column settings (`SET STATISTICS`, …) and generic options
/// follow, then identity columns.
fn foreign_table_ddl(rel: &Rel, t: &Tables<'_>, foreign: &Foreign) -> String {
    let cols = t.columns.get(&rel.oid).cloned().unwrap_or_default();
    let parents: Vec<u32> = t.parents.get(&rel.oid).cloned().unwrap_or_default();
    let local_checks = t.checks.local.get(&rel.oid).into_iter().flatten();
    let attach_to = match parents.as_slice() {
        [parent] if rel.is_partition => t.rels.get(parent).map(|p| p.name.clone()),
        _ => None,
    };
    let (items, after, parents) = if attach_to.is_some() {
        // On its own: every column and check the partition carries, then ATTACH.
        let standalone = Rel {
            is_partition: false,
            ..rel.clone()
        };
        let (mut items, after) = column_items(&standalone, &cols, &[], t.columns);
        items.extend(
            local_checks
                .chain(t.checks.inherited.get(&rel.oid).into_iter().flatten())
                .cloned(),
        );
        (items, after, Vec::new())
    } else {
        let (mut items, after) = column_items(rel, &cols, &parents, t.columns);
        items.extend(local_checks.cloned());
        (items, after, parents)
    };
    let mut s = if items.is_empty() {
        format!("CREATE FOREIGN TABLE {} (\n)", rel.name)
    } else {
        format!(
            "CREATE FOREIGN TABLE {} (\n{}\n)",
            rel.name,
            items.join(",\n")
        )
    };
    let parent_names: Vec<String> = parents
        .iter()
        .filter_map(|p| t.rels.get(p).map(|r| r.name.clone()))
        .collect();
    if !parent_names.is_empty() {
        let _ = write!(s, "\nINHERITS ({})", parent_names.join(", "));
    }
    let _ = write!(s, "\nSERVER {}", foreign.server);
    if let Some(options) = &foreign.options {
        let _ = write!(s, "\nOPTIONS (\n    {options}\n)");
    }
    s.push_str(";\n");
    if let Some(parent) = attach_to {
        let _ = writeln!(
            s,
            "ALTER TABLE ONLY {parent} ATTACH PARTITION {} {};",
            rel.name,
            rel.bound.as_deref().unwrap_or("DEFAULT")
        );
    }
    s.push_str(&after);
    for c in &cols {
        for setting in &c.settings {
            let _ = writeln!(
                s,
                "ALTER FOREIGN TABLE ONLY {} ALTER COLUMN {} {setting};",
                rel.name, c.name
            );
        }
    }
    for (column, options) in &foreign.column_options {
        let _ = writeln!(
            s,
            "ALTER FOREIGN TABLE {} ALTER COLUMN {column} OPTIONS (\n    {options}\n);",
            rel.name
        );
    }
    for stmt in t.identity.get(&rel.oid).into_iter().flatten() {
        s.push_str(stmt);
    }
    s
}
