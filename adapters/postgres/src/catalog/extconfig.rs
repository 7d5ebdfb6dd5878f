//! Extension configuration tables: the rows an extension's user added, dumped as data.
//!
//! An extension's objects are recreated by `CREATE EXTENSION`, never dumped one by one. A
//! table the extension marks with `pg_extension_config_dump(table, condition)` is the
//! exception: it holds configuration that users change, so pg_dump dumps its rows — those
//! the condition selects (`WHERE NOT standard_entry`, say: the rows the extension's script
//! inserts itself come back with `CREATE EXTENSION`), all of them when the condition is
//! empty — and the position of a sequence so marked (`processExtensionTables`, and
//! `dumpTableData_copy` with the table's `filtercond`, in pg_dump.c of PostgreSQL 15).
//! Here such a table is one more [`DataTable`] of the dump, with its condition as
//! [`DataTable::filter`]: it is locked like the others, copied out through `COPY (SELECT …
//! FROM ONLY table condition)`, loaded with a plain `COPY … FROM stdin` after `CREATE
//! EXTENSION` made the table, and fingerprinted under the same condition, so the restored
//! table — the extension's own rows plus the dumped ones — compares equal with the source.
//! References: <https://www.postgresql.org/docs/15/extend-extensions.html#EXTEND-EXTENSIONS-CONFIG-TABLES>,
//! <https://www.postgresql.org/docs/15/catalog-pg-extension.html> (`extconfig`,
//! `extcondition`).

use exporter_contract::EngineError;

use super::{query, user_ns};
use crate::cells::Cells;
use crate::connect::Conn;

/// SQL predicate: relation `oid` (e.g. `c.oid`) is a configuration table or sequence of an
/// extension (its OID is in some `pg_extension.extconfig`).
pub(super) fn is_config(oid: &str) -> String {
    format!("EXISTS (SELECT 1 FROM pg_catalog.pg_extension xe WHERE {oid} = ANY (xe.extconfig))")
}

/// SQL expression: the filter condition of configuration table `oid` as its extension
/// registered it (the `extcondition` entry at the same position as the table in
/// `extconfig`), NULL for an empty condition and for a table that is no configuration
/// table.
pub(super) fn condition(oid: &str) -> String {
    format!(
        "(SELECT NULLIF(x.cond, '') FROM pg_catalog.pg_extension xe,
                 ROWS FROM (pg_catalog.unnest(xe.extconfig), pg_catalog.unnest(xe.extcondition)) x(rel, cond)
           WHERE x.rel = {oid} LIMIT 1)"
    )
}

/// The sequences extensions mark for dumping, schema-qualified and quoted, with their
/// unquoted `schema.name` to sort by.
///
/// # Errors
///
/// A classified catalog query error; a NULL where the catalogs always hold a value.
pub(super) async fn sequences(conn: &mut Conn) -> Result<Vec<(String, String)>, EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT n.nspname || '.' || c.relname,
                    pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind = 'S' AND {} AND {}",
            user_ns("n"),
            is_config("c.oid")
        ),
        &[],
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let r = Cells::new(r, "sequence", 1);
        out.push((r.get(0)?, r.get(1)?));
    }
    Ok(out)
}
