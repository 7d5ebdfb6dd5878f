//! Pre-data object kinds without a table of their own: procedural languages outside
//! extensions, conversions, text search parsers and templates — each in the form of the
//! pg_dump 15 function that writes it — and the small hooks through which the shared code
//! learns about them and about the kinds of `foreign_tables.rs`, `event_triggers.rs` and
//! `subscriptions.rs`: their keys in the `pg_depend` order ([`resolve_whens`]), their
//! `COMMENT ON` targets ([`comment_target`]) and their owners and privileges
//! ([`acl_objects_sql`]).
//!
//! Keys (see `pre::resolve_sql`): `G` procedural language, `J` conversion, `B` text search
//! parser, `M` text search template. A function in a language comes after the language, a
//! language after its handler, inline and validator functions when they are dumped, a
//! conversion after its function, a text search configuration after its parser and a
//! dictionary after its template, all through `pg_depend`.

use std::fmt::Write as _;

use exporter_contract::EngineError;

use super::pre::PreData;
use super::{FIRST_USER_OID, not_ext, query, user_ns};
use crate::cells::Cells;
use crate::connect::Conn;
use crate::quote::quote_literal;

/// The `WHEN … THEN` arms of `pre::resolve_sql`'s `CASE` over a `pg_depend` class for the
/// kinds of this module: `id` is the SQL expression of the object's OID.
pub(super) fn resolve_whens(id: &str) -> String {
    format!(
        "WHEN 'pg_catalog.pg_language'::pg_catalog.regclass THEN 'G' || {id}
  WHEN 'pg_catalog.pg_conversion'::pg_catalog.regclass THEN 'J' || {id}
  WHEN 'pg_catalog.pg_ts_parser'::pg_catalog.regclass THEN 'B' || {id}
  WHEN 'pg_catalog.pg_ts_template'::pg_catalog.regclass THEN 'M' || {id}"
    )
}

/// Where the comment on an object of a kind of this change goes.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum CommentTarget {
    /// `COMMENT ON <this> IS …`, with the other comments.
    On(String),
    /// Written next to the object itself (event triggers, which are created last, and
    /// subscriptions, which are dumped only by a superuser).
    WithObject,
}

/// The `COMMENT ON` target for `pg_identify_object`'s `ty` and `identity` of an object of a
/// kind this module (or `foreign_tables.rs`, `event_triggers.rs`, `subscriptions.rs`)
/// dumps; `None` for any other kind.
pub(super) fn comment_target(ty: &str, identity: &str) -> Option<CommentTarget> {
    let target = match ty {
        "language" => format!("LANGUAGE {identity}"),
        "conversion" => format!("CONVERSION {identity}"),
        "text search parser" => format!("TEXT SEARCH PARSER {identity}"),
        "text search template" => format!("TEXT SEARCH TEMPLATE {identity}"),
        "foreign table" => format!("FOREIGN TABLE {identity}"),
        "foreign table column" => format!("COLUMN {identity}"),
        "event trigger" | "subscription" => return Some(CommentTarget::WithObject),
        _ => return None,
    };
    Some(CommentTarget::On(target))
}

/// `UNION ALL` branches of the objects query of `acl::owners_and_acls` (columns `ord, kind,
/// target, owner, acl, col, oid, grant_target`) for the kinds of this change that have an
/// owner there: procedural languages (owner and, as pg_dump's `dumpProcLang`, the `USAGE`
/// privileges of a trusted one: the server refuses `GRANT` and `REVOKE` on an untrusted
/// language), conversions (owner) and foreign tables (owner and privileges, granted `ON
/// TABLE`; their column privileges come with every table's). Text search parsers and
/// templates have no owner; event triggers and subscriptions get theirs next to their
/// `CREATE`.
pub(super) fn acl_objects_sql() -> String {
    let nsn = user_ns("n");
    format!(
        "UNION ALL
            SELECT 1, 'LANGUAGE', pg_catalog.quote_ident(l.lanname), l.lanowner,
                   CASE WHEN l.lanpltrusted THEN l.lanacl END, NULL, l.oid, NULL
              FROM pg_catalog.pg_language l WHERE {lang}
            UNION ALL
            SELECT 3, 'CONVERSION', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.conname),
                   c.conowner, NULL, NULL, c.oid, NULL
              FROM pg_catalog.pg_conversion c JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
             WHERE {nsn} AND {ext_conv}
            UNION ALL
            SELECT 4, 'FOREIGN TABLE', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
                   c.relowner, c.relacl, NULL, c.oid, NULL
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE {nsn} AND {ext_rel} AND c.relkind = 'f'",
        lang = languages_filter("l"),
        ext_conv = not_ext("pg_conversion", "c.oid"),
        ext_rel = not_ext("pg_class", "c.oid"),
    )
}

/// SQL predicate over `pg_language` alias `l`: a procedural language created after the
/// server's own (pg_dump's `selectDumpableProcLang`: OID above the last built-in one) and
/// not by an extension.
fn languages_filter(l: &str) -> String {
    format!(
        "{l}.lanispl AND {l}.oid >= {FIRST_USER_OID} AND {}",
        not_ext("pg_language", &format!("{l}.oid"))
    )
}

/// Procedural languages, conversions, text search parsers and templates into `pre`.
///
/// # Errors
///
/// Classified catalog query errors; [`exporter_contract::ErrorKind::Protocol`] naming the
/// object for a NULL where the catalogs always hold a value.
pub(super) async fn pre_data(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    languages(conn, pre).await?;
    conversions(conn, pre).await?;
    text_search_parsers(conn, pre).await?;
    text_search_templates(conn, pre).await
}

/// `CREATE [TRUSTED] PROCEDURAL LANGUAGE name HANDLER f [INLINE f] [VALIDATOR f]` of every
/// procedural language outside extensions created after the server's own (rank 1, key
/// `G<oid>`), as pg_dump's `dumpProcLang` (PostgreSQL 15) writes it when it dumps the
/// support functions. pg_dump writes a bare `CREATE OR REPLACE PROCEDURAL LANGUAGE name`
/// (which the server turns into `CREATE EXTENSION`) when a support function is not dumped
/// — one in `pg_catalog`, such as `plpgsql_call_handler`; that fails to restore for a
/// language that is no extension, so the functions are always named here (`regproc`
/// under the empty `search_path`: schema-qualified outside `pg_catalog`). A handler written
/// in C names its library as the source has it: the target needs it too, as with pg_dump.
/// Reference: <https://www.postgresql.org/docs/15/sql-createlanguage.html>.
async fn languages(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT l.oid, pg_catalog.quote_ident(l.lanname), l.lanpltrusted,
                    l.lanplcallfoid::pg_catalog.regproc::text,
                    CASE WHEN l.laninline <> 0 THEN l.laninline::pg_catalog.regproc::text END,
                    CASE WHEN l.lanvalidator <> 0 THEN l.lanvalidator::pg_catalog.regproc::text END,
                    l.lanname
               FROM pg_catalog.pg_language l WHERE {}",
            languages_filter("l")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "procedural language", 1);
        let oid: u32 = r.get(0)?;
        let trusted = if r.get::<bool>(2)? { "TRUSTED " } else { "" };
        let mut s = format!(
            "CREATE {trusted}PROCEDURAL LANGUAGE {} HANDLER {}",
            r.get::<String>(1)?,
            r.get::<String>(3)?
        );
        if let Some(inline) = r.get::<Option<String>>(4)? {
            let _ = write!(s, " INLINE {inline}");
        }
        if let Some(validator) = r.get::<Option<String>>(5)? {
            let _ = write!(s, " VALIDATOR {validator}");
        }
        s.push_str(";\n");
        pre.insert(format!("G{oid}"), 1, r.get(6)?, s);
    }
    Ok(())
}

/// `CREATE [DEFAULT] CONVERSION name FOR 'source' TO 'destination' FROM function` of every
/// conversion in a user schema outside extensions (rank 3, key `J<oid>`), as pg_dump's
/// `dumpConversion` (PostgreSQL 15) writes it. Reference:
/// <https://www.postgresql.org/docs/15/sql-createconversion.html>.
async fn conversions(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT c.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.conname),
                    c.condefault, pg_catalog.pg_encoding_to_char(c.conforencoding),
                    pg_catalog.pg_encoding_to_char(c.contoencoding), c.conproc::pg_catalog.regproc::text,
                    n.nspname || '.' || c.conname
               FROM pg_catalog.pg_conversion c JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
              WHERE {} AND {}",
            user_ns("n"),
            not_ext("pg_conversion", "c.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "conversion", 1);
        let oid: u32 = r.get(0)?;
        let default = if r.get::<bool>(2)? { "DEFAULT " } else { "" };
        let sql = format!(
            "CREATE {default}CONVERSION {} FOR {} TO {} FROM {};\n",
            r.get::<String>(1)?,
            quote_literal(&r.get::<String>(3)?),
            quote_literal(&r.get::<String>(4)?),
            r.get::<String>(5)?
        );
        pre.insert(format!("J{oid}"), 3, r.get(6)?, sql);
    }
    Ok(())
}

/// `CREATE TEXT SEARCH PARSER name (START, GETTOKEN, END, [HEADLINE,] LEXTYPES)` of every
/// parser in a user schema outside extensions (rank 3, key `B<oid>`), as pg_dump's
/// `dumpTSParser` (PostgreSQL 15) writes it. Its functions are usually C: the target needs
/// their library, as with pg_dump. Reference:
/// <https://www.postgresql.org/docs/15/sql-createtsparser.html>.
async fn text_search_parsers(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT p.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.prsname),
                    p.prsstart::pg_catalog.regproc::text, p.prstoken::pg_catalog.regproc::text,
                    p.prsend::pg_catalog.regproc::text,
                    CASE WHEN p.prsheadline <> 0 THEN p.prsheadline::pg_catalog.regproc::text END,
                    p.prslextype::pg_catalog.regproc::text, n.nspname || '.' || p.prsname
               FROM pg_catalog.pg_ts_parser p JOIN pg_catalog.pg_namespace n ON n.oid = p.prsnamespace
              WHERE {} AND {}",
            user_ns("n"),
            not_ext("pg_ts_parser", "p.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "text search parser", 1);
        let oid: u32 = r.get(0)?;
        let mut s = format!(
            "CREATE TEXT SEARCH PARSER {} (\n    START = {},\n    GETTOKEN = {},\n    END = {},\n",
            r.get::<String>(1)?,
            r.get::<String>(2)?,
            r.get::<String>(3)?,
            r.get::<String>(4)?
        );
        if let Some(headline) = r.get::<Option<String>>(5)? {
            let _ = writeln!(s, "    HEADLINE = {headline},");
        }
        let _ = writeln!(s, "    LEXTYPES = {} );", r.get::<String>(6)?);
        pre.insert(format!("B{oid}"), 3, r.get(7)?, s);
    }
    Ok(())
}

/// `CREATE TEXT SEARCH TEMPLATE name ([INIT,] LEXIZE)` of every template in a user schema
/// outside extensions (rank 3, key `M<oid>`), as pg_dump's `dumpTSTemplate` (PostgreSQL 15)
/// writes it. Reference: <https://www.postgresql.org/docs/15/sql-createtstemplate.html>.
async fn text_search_templates(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT t.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.tmplname),
                    CASE WHEN t.tmplinit <> 0 THEN t.tmplinit::pg_catalog.regproc::text END,
                    t.tmpllexize::pg_catalog.regproc::text, n.nspname || '.' || t.tmplname
               FROM pg_catalog.pg_ts_template t JOIN pg_catalog.pg_namespace n ON n.oid = t.tmplnamespace
              WHERE {} AND {}",
            user_ns("n"),
            not_ext("pg_ts_template", "t.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "text search template", 1);
        let oid: u32 = r.get(0)?;
        let mut s = format!("CREATE TEXT SEARCH TEMPLATE {} (\n", r.get::<String>(1)?);
        if let Some(init) = r.get::<Option<String>>(2)? {
            let _ = writeln!(s, "    INIT = {init},");
        }
        let _ = writeln!(s, "    LEXIZE = {} );", r.get::<String>(3)?);
        pre.insert(format!("M{oid}"), 3, r.get(4)?, s);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_targets_of_the_new_kinds() {
        assert_eq!(
            comment_target("language", "plmine"),
            Some(CommentTarget::On("LANGUAGE plmine".to_owned()))
        );
        assert_eq!(
            comment_target("foreign table column", "s.ft.a"),
            Some(CommentTarget::On("COLUMN s.ft.a".to_owned()))
        );
        assert_eq!(
            comment_target("text search parser", "s.prs"),
            Some(CommentTarget::On("TEXT SEARCH PARSER s.prs".to_owned()))
        );
        assert_eq!(
            comment_target("event trigger", "evt"),
            Some(CommentTarget::WithObject)
        );
        assert_eq!(
            comment_target("subscription", "sub"),
            Some(CommentTarget::WithObject)
        );
        assert_eq!(comment_target("statistics object", "s.st"), None);
    }
}
