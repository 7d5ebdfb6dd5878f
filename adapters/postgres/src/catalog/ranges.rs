//! Range types with a canonical function: the shell comes first.
//!
//! A canonical function takes and returns the range type it canonicalises, so it cannot be
//! created before the type, nor the type (`CREATE TYPE … AS RANGE (…, canonical = f)`)
//! before the function. pg_dump breaks the loop as for a base type and its I/O functions: a
//! shell `CREATE TYPE name;` first, then the function (which the server accepts over a shell
//! type from C and internal functions, with a notice), then the range type, which fills the
//! shell in (`getTypes` makes a shell for every range type; `repairTypeFuncLoop` in
//! pg_dump_sort.c of PostgreSQL 15 dumps it when a function needs it; `dumpShellType`).
//! Reference: <https://www.postgresql.org/docs/15/sql-createtype.html> ("Range Types").

use exporter_contract::EngineError;

use super::pre::PreData;
use super::{not_ext, query, user_ns};
use crate::cells::Cells;

/// For every range type of a user schema (not an extension member) with a canonical
/// function: its shell `CREATE TYPE name;` as the pre-data object `S<type oid>` (rank 2, as
/// the type), and the type's key `T<type oid>` marked as created in two steps, so the
/// dependency order puts the functions the type names after the shell and the type after
/// them (see `dependency_order` in `catalog/pre.rs`). The range type itself is written by
/// `types` (with its `canonical = …`).
///
/// # Errors
///
/// A classified catalog query error; a NULL where the catalogs always hold a value.
pub(super) async fn canonical_shells(
    conn: &mut crate::connect::Conn,
    pre: &mut PreData,
) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT t.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.typname),
                    n.nspname || '.' || t.typname
               FROM pg_catalog.pg_range r JOIN pg_catalog.pg_type t ON t.oid = r.rngtypid
               JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
              WHERE r.rngcanonical <> 0 AND {} AND {}",
            user_ns("n"),
            not_ext("pg_type", "t.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "range type", 1);
        let oid: u32 = r.get(0)?;
        let name: String = r.get(1)?;
        pre.insert(
            format!("S{oid}"),
            2,
            r.get(2)?,
            format!("CREATE TYPE {name};\n"),
        );
        pre.shells.insert(format!("T{oid}"));
    }
    Ok(())
}
