//! Security labels: `SECURITY LABEL FOR provider ON kind name IS 'label';` for every label on
//! a dumped object.
//!
//! pg_dump writes one statement per label of each object it dumps, with the provider that
//! set it (`dumpSecLabel`, `dumpTableSecLabel` — the table's own label and its columns' — and
//! `collectSecLabels` in pg_dump.c of PostgreSQL 15). Labels of extension members are left
//! out, as their comments are (`checkExtensionMembership` keeps only their privileges), and
//! so are those of shared objects (roles, databases, tablespaces, subscriptions:
//! `pg_shseclabel`, pg_dumpall's). A restore needs the label providers loaded
//! (`shared_preload_libraries` or `session_preload_libraries`), as with pg_dump: a provider
//! that is missing fails the statement ("security label provider … is not loaded").
//! Reference: <https://www.postgresql.org/docs/15/sql-security-label.html>.

use exporter_contract::EngineError;

use super::{FIRST_USER_OID, Plan, query, unsupported};
use crate::cells::Cells;
use crate::connect::Conn;
use crate::quote::quote_literal;

/// Append to `plan.post` the `SECURITY LABEL` statements of every label on a dumped object
/// (`pg_seclabel`), ordered by object kind, identity and provider. A label whose object no
/// longer exists (`pg_identify_object` answers NULL) is skipped with a warning in
/// `plan.warnings`.
///
/// # Errors
///
/// [`exporter_contract::ErrorKind::Unsupported`] naming the labels on kinds of objects the
/// dump does not know how to name; catalog errors.
pub(super) async fn security_labels(conn: &mut Conn, plan: &mut Plan) -> Result<(), EngineError> {
    let sql = format!(
        "SELECT (pg_catalog.pg_identify_object(l.classoid, l.objoid, l.objsubid)).type,
                (pg_catalog.pg_identify_object(l.classoid, l.objoid, l.objsubid)).identity,
                pg_catalog.quote_ident(l.provider), l.label,
                CASE WHEN l.classoid = 'pg_catalog.pg_proc'::pg_catalog.regclass THEN
                  (SELECT {agg_sig} FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                    WHERE p.oid = l.objoid AND p.prokind = 'a')
                END,
                l.classoid, l.objoid, l.objsubid
           FROM pg_catalog.pg_seclabel l
          WHERE (l.objoid >= {FIRST_USER_OID}
                 OR l.classoid = 'pg_catalog.pg_largeobject'::pg_catalog.regclass
                 OR (l.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                     AND l.objoid = 'public'::pg_catalog.regnamespace))
            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = l.classoid
                             AND e.objid = l.objoid AND e.deptype = 'e')
          ORDER BY 1, 2, 3",
        agg_sig = super::pre::aggregate_signature_sql("p", "n"),
    );
    let rows = query(conn, &sql, &[]).await?;
    let mut refused = Vec::new();
    for r in &rows {
        let r = Cells::new(r, "security label on", 1);
        let ty: Option<String> = r.get(0)?;
        let identity: Option<String> = r.get(1)?;
        let (Some(ty), Some(identity)) = (ty, identity) else {
            let (classoid, objoid, objsubid): (u32, u32, i32) = (r.get(5)?, r.get(6)?, r.get(7)?);
            plan.warnings.push(format!(
                "skipped a security label on an object that no longer exists (pg_seclabel row: classoid {classoid}, objoid {objoid}, objsubid {objsubid})"
            ));
            continue;
        };
        let provider: String = r.get(2)?;
        let label: String = r.get(3)?;
        let aggregate: Option<String> = r.get(4)?;
        let Some(target) = label_target(&ty, &identity, aggregate.as_deref()) else {
            refused.push(format!("security label on {ty} {identity}"));
            continue;
        };
        plan.post.push(statement(&provider, &target, &label));
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(unsupported(&refused))
    }
}

/// The `kind name` a `SECURITY LABEL` statement names for an object of `pg_identify_object`
/// type `ty` and identity `identity` (`aggregate`: an aggregate's own signature, which
/// `(*)` and `ORDER BY` need); `None` for a kind that takes no label or that the dump does
/// not know. Pure.
fn label_target(ty: &str, identity: &str, aggregate: Option<&str>) -> Option<String> {
    let word = match ty {
        "table" | "view" | "materialized view" | "sequence" | "foreign table" | "type"
        | "domain" | "function" | "procedure" | "schema" | "large object" | "publication"
        | "event trigger" | "language" => ty.to_uppercase(),
        "composite type" => "TYPE".to_owned(),
        "table column"
        | "view column"
        | "materialized view column"
        | "foreign table column"
        | "composite type column" => "COLUMN".to_owned(),
        "aggregate" => return aggregate.map(|sig| format!("AGGREGATE {sig}")),
        _ => return None,
    };
    Some(format!("{word} {identity}"))
}

/// `SECURITY LABEL FOR provider ON target IS 'label';` as pg_dump writes it (`provider`
/// quoted by the server's `quote_ident`, as pg_dump's `fmtId` does).
fn statement(provider: &str, target: &str, label: &str) -> String {
    format!(
        "SECURITY LABEL FOR {provider} ON {target} IS {};\n",
        quote_literal(label)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_the_object_as_pg_dump_does() {
        let column = label_target("table column", "public.\"Orders\".total", None).unwrap();
        assert_eq!(
            statement("dummy", &column, "top secret"),
            "SECURITY LABEL FOR dummy ON COLUMN public.\"Orders\".total IS 'top secret';\n"
        );
        assert_eq!(
            statement("selinux", "SCHEMA app", "it's"),
            "SECURITY LABEL FOR selinux ON SCHEMA app IS 'it''s';\n"
        );
        assert_eq!(
            label_target("materialized view", "app.mv", None).as_deref(),
            Some("MATERIALIZED VIEW app.mv")
        );
        assert_eq!(
            label_target("large object", "16401", None).as_deref(),
            Some("LARGE OBJECT 16401")
        );
        assert_eq!(
            label_target("aggregate", "app.cnt()", Some("app.cnt(*)")).as_deref(),
            Some("AGGREGATE app.cnt(*)")
        );
        // A kind that takes no label, or that the dump does not know: refused by name.
        assert_eq!(label_target("index", "app.i", None), None);
        assert_eq!(label_target("aggregate", "app.cnt()", None), None);
    }
}
