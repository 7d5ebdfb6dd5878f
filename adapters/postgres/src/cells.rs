//! Total access to the columns of catalog rows.
//!
//! tokio-postgres' `Row::get` panics when a column is SQL NULL and the Rust type is not an
//! `Option`, or when the column's type does not convert (`Row::get` docs:
//! <https://docs.rs/tokio-postgres/latest/tokio_postgres/row/struct.Row.html#method.get>).
//! Catalog content is data we do not control: a row whose object was dropped underneath it
//! (`pg_identify_object` of an orphaned `pg_description` row answers NULLs), an odd value in
//! a column that is usually set, a kind this build does not know. Every column of a catalog
//! row is therefore read through [`Cells::get`], which turns each of those into an
//! [`EngineError`] naming the object the row describes — never a panic (issue 18).

use exporter_contract::{EngineError, ErrorKind};
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

/// One catalog row and the object it describes, for error messages.
///
/// `kind` is the object kind in words (`"function"`, `"index"`); `name_col` the column that
/// names the object (text, e.g. a `quote_ident`ed name, or an OID). The name is read only
/// when an error needs it, and itself never panics: a NULL or unreadable name column gives
/// `"<kind> (unnamed: column N is NULL)"`.
#[derive(Clone, Copy)]
pub(crate) struct Cells<'r> {
    row: &'r Row,
    kind: &'static str,
    name_col: usize,
    /// The whole object name, when the caller knows it (then `kind` and `name_col` are unused).
    known: Option<&'r str>,
}

impl<'r> Cells<'r> {
    /// Wrap `row`, a row describing an object of `kind` named by column `name_col`.
    pub(crate) fn new(row: &'r Row, kind: &'static str, name_col: usize) -> Self {
        Self {
            row,
            kind,
            name_col,
            known: None,
        }
    }

    /// Wrap `row`, a row about `object` (`"sequence public.s"`), named by the caller.
    pub(crate) fn about(row: &'r Row, object: &'r str) -> Self {
        Self {
            row,
            kind: "",
            name_col: 0,
            known: Some(object),
        }
    }

    /// Column `idx` as `T`. Read a column that may be NULL as `Option<T>`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Protocol`] naming the object ([`Self::object`]) and the column: SQL NULL
    /// where a value is expected, a value of another type, or no such column.
    pub(crate) fn get<'a, T: FromSql<'a>>(&'a self, idx: usize) -> Result<T, EngineError> {
        self.row.try_get::<_, T>(idx).map_err(|e| {
            let column = self.row.columns().get(idx).map_or_else(
                || format!("column {idx}"),
                |c| format!("column {idx} ({})", c.name()),
            );
            let what = if self.row.columns().get(idx).is_some() && is_null(self.row, idx) {
                "is NULL where the catalogs always hold a value".to_owned()
            } else {
                format!("cannot be read: {e}")
            };
            EngineError::new(
                ErrorKind::Protocol,
                format!("unexpected catalog content: {column} {what}"),
            )
            .with_object(self.object())
        })
    }

    /// `"<kind> <name>"`: the object this row describes, named by its name column read as
    /// text, else as an OID.
    pub(crate) fn object(&self) -> String {
        if let Some(known) = self.known {
            return known.to_owned();
        }
        if let Ok(Some(name)) = self.row.try_get::<_, Option<String>>(self.name_col) {
            return format!("{} {name}", self.kind);
        }
        if let Ok(Some(oid)) = self.row.try_get::<_, Option<u32>>(self.name_col) {
            return format!("{} with OID {oid}", self.kind);
        }
        format!("{} (unnamed: column {} is NULL)", self.kind, self.name_col)
    }
}

/// Whether column `idx` of `row` is SQL NULL (read as raw bytes, which accepts every type).
fn is_null(row: &Row, idx: usize) -> bool {
    matches!(row.try_get::<_, Option<Raw>>(idx), Ok(None))
}

/// A column's raw bytes, of any type: only to tell NULL from a value.
struct Raw;

impl<'a> FromSql<'a> for Raw {
    fn from_sql(
        _: &tokio_postgres::types::Type,
        _: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self)
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

/// Read every row of `rows` with `f`, each wrapped as [`Cells`] of `kind` named by
/// `name_col`; the first error stops it.
///
/// # Errors
///
/// The first error `f` returns.
pub(crate) fn read_all<T>(
    rows: &[Row],
    kind: &'static str,
    name_col: usize,
    mut f: impl FnMut(Cells<'_>) -> Result<T, EngineError>,
) -> Result<Vec<T>, EngineError> {
    rows.iter()
        .map(|r| f(Cells::new(r, kind, name_col)))
        .collect()
}
