//! Owners and privileges: `ALTER … OWNER TO`, `GRANT`/`REVOKE` from `aclexplode`, default
//! privileges; each statement that names a role is guarded so that a restore without that
//! role warns instead of failing.

use std::collections::HashMap;

use exporter_contract::EngineError;

use super::{Plan, not_ext, query, unsupported, user_ns};
use crate::cells::Cells;
use crate::connect::Conn;
use crate::quote::{quote_ident, quote_literal};

/// Owner and privileges of one object, applied conditionally at the end of the script.
pub(super) fn guarded(roles: &[String], stmt: &str, what: &str) -> String {
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

/// Owners and privileges, each wrapped so a restore where the role is missing (or the
/// restoring role may not hand objects over) warns instead of failing. The `GRANT`s follow
/// the ACL array's own order (as pg_dump's `buildACLCommands`), so the restored array reads
/// the same (the regression database's `regress_rls_schema.z1` showed the grantee-OID order
/// reshuffling it).
pub(super) async fn owners_and_acls(
    conn: &mut Conn,
    seq_owner: &HashMap<u32, (u32, String, String)>,
    plan: &mut Plan,
) -> Result<(), EngineError> {
    let nsn = user_ns("n");
    let sql = format!(
        "WITH objs(ord, kind, target, owner, acl, col, oid, grant_target) AS (
            SELECT 1, 'SCHEMA', pg_catalog.quote_ident(n.nspname), n.nspowner, n.nspacl, NULL::text, n.oid, NULL::text
              FROM pg_catalog.pg_namespace n WHERE {nsn} AND {ext_n}
            UNION ALL
            SELECT 2, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                   pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.typname), t.typowner, t.typacl, NULL, t.oid, NULL
              FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
             WHERE {nsn} AND {ext_t} AND (t.typtype IN ('e', 'd', 'c', 'r', 'p')
                                          OR (t.typtype = 'b' AND NOT (t.typelem <> 0 AND t.typlen = -1)))
               AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.typrelid) = 'c')
            UNION ALL
            SELECT 3, CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                   pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) || '(' ||
                   pg_catalog.pg_get_function_identity_arguments(p.oid) || ')', p.proowner, p.proacl, NULL, p.oid, NULL
              FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             WHERE {nsn} AND {ext_p} AND p.prokind IN ('f', 'p', 'w')
            UNION ALL
            -- ALTER AGGREGATE takes the aggregate's signature, GRANT … ON FUNCTION its
            -- argument types (pg_dump's dumpAgg).
            SELECT 3, 'AGGREGATE', {agg_sig}, p.proowner, p.proacl, NULL, p.oid,
                   pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname) || '(' ||
                   pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.format_type(t, NULL)
                                                      FROM pg_catalog.unnest(p.proargtypes) WITH ORDINALITY u(t, i) ORDER BY i), ', ') || ')'
              FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             WHERE {nsn} AND {ext_p} AND p.prokind = 'a'
            UNION ALL
            SELECT 3, 'OPERATOR', o.oid::pg_catalog.regoperator::text, o.oprowner, NULL, NULL, o.oid, NULL
              FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
             WHERE {nsn} AND {ext_o} AND o.oprcode <> 0
            UNION ALL
            SELECT 3, 'TEXT SEARCH DICTIONARY', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(d.dictname),
                   d.dictowner, NULL, NULL, d.oid, NULL
              FROM pg_catalog.pg_ts_dict d JOIN pg_catalog.pg_namespace n ON n.oid = d.dictnamespace
             WHERE {nsn} AND {ext_d}
            UNION ALL
            SELECT 3, 'TEXT SEARCH CONFIGURATION', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.cfgname),
                   c.cfgowner, NULL, NULL, c.oid, NULL
              FROM pg_catalog.pg_ts_config c JOIN pg_catalog.pg_namespace n ON n.oid = c.cfgnamespace
             WHERE {nsn} AND {ext_cfg}
            UNION ALL
            SELECT 2, 'COLLATION', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.collname),
                   c.collowner, NULL, NULL, c.oid, NULL
              FROM pg_catalog.pg_collation c JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace
             WHERE {nsn} AND {ext_coll}
            UNION ALL
            SELECT 1, 'FOREIGN DATA WRAPPER', pg_catalog.quote_ident(f.fdwname), f.fdwowner, f.fdwacl, NULL, f.oid, NULL
              FROM pg_catalog.pg_foreign_data_wrapper f WHERE {ext_fdw}
            UNION ALL
            SELECT 1, 'SERVER', pg_catalog.quote_ident(s.srvname), s.srvowner, s.srvacl, NULL, s.oid, NULL
              FROM pg_catalog.pg_foreign_server s WHERE {ext_srv}
            UNION ALL
            SELECT 8, 'PUBLICATION', pg_catalog.quote_ident(p.pubname), p.pubowner, NULL, NULL, p.oid, NULL
              FROM pg_catalog.pg_publication p
            UNION ALL
            SELECT 3, 'OPERATOR FAMILY', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(f.opfname)
                   || ' USING ' || pg_catalog.quote_ident(a.amname), f.opfowner, NULL, NULL, f.oid, NULL
              FROM pg_catalog.pg_opfamily f JOIN pg_catalog.pg_namespace n ON n.oid = f.opfnamespace
              JOIN pg_catalog.pg_am a ON a.oid = f.opfmethod
             WHERE {nsn} AND {ext_opf}
            UNION ALL
            SELECT 3, 'OPERATOR CLASS', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.opcname)
                   || ' USING ' || pg_catalog.quote_ident(a.amname), c.opcowner, NULL, NULL, c.oid, NULL
              FROM pg_catalog.pg_opclass c JOIN pg_catalog.pg_namespace n ON n.oid = c.opcnamespace
              JOIN pg_catalog.pg_am a ON a.oid = c.opcmethod
             WHERE {nsn} AND {ext_opc}
            UNION ALL
            SELECT 4, CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
                   pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), c.relowner, c.relacl, NULL, c.oid, NULL
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE {nsn} AND {ext_c} AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
            UNION ALL
            SELECT 5, 'COLUMN', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), c.relowner, a.attacl,
                   pg_catalog.quote_ident(a.attname), c.oid, NULL
              FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE {nsn} AND {ext_c} AND a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
            UNION ALL
            SELECT 6, 'LARGE OBJECT', l.oid::text, l.lomowner, l.lomacl, NULL, l.oid, NULL FROM pg_catalog.pg_largeobject_metadata l
            UNION ALL
            SELECT 7, 'STATISTICS', pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(s.stxname),
                   s.stxowner, NULL::pg_catalog.aclitem[], NULL, s.oid, NULL
              FROM pg_catalog.pg_statistic_ext s JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace
             WHERE {nsn} AND {ext_s}
            {kinds}
         )
         SELECT kind, target, col, pg_catalog.pg_get_userbyid(owner), acl IS NULL, oid,
                ARRAY(SELECT x.privilege_type FROM pg_catalog.aclexplode(acl) WITH ORDINALITY x ORDER BY x.ordinality),
                ARRAY(SELECT CASE WHEN x.grantee = 0 THEN '' ELSE pg_catalog.pg_get_userbyid(x.grantee) END
                        FROM pg_catalog.aclexplode(acl) WITH ORDINALITY x ORDER BY x.ordinality),
                ARRAY(SELECT x.is_grantable FROM pg_catalog.aclexplode(acl) WITH ORDINALITY x ORDER BY x.ordinality),
                COALESCE(grant_target, target)
           FROM objs ORDER BY ord, target COLLATE \"C\", col COLLATE \"C\"",
        ext_n = not_ext("pg_namespace", "n.oid"),
        ext_t = not_ext("pg_type", "t.oid"),
        ext_p = not_ext("pg_proc", "p.oid"),
        ext_c = not_ext("pg_class", "c.oid"),
        ext_s = not_ext("pg_statistic_ext", "s.oid"),
        ext_o = not_ext("pg_operator", "o.oid"),
        ext_d = not_ext("pg_ts_dict", "d.oid"),
        ext_cfg = not_ext("pg_ts_config", "c.oid"),
        ext_coll = not_ext("pg_collation", "c.oid"),
        ext_opf = not_ext("pg_opfamily", "f.oid"),
        ext_opc = not_ext("pg_opclass", "c.oid"),
        ext_fdw = not_ext("pg_foreign_data_wrapper", "f.oid"),
        ext_srv = not_ext("pg_foreign_server", "s.oid"),
        agg_sig = super::pre::aggregate_signature_sql("p", "n"),
        kinds = super::kinds::acl_objects_sql(),
    );
    let rows = query(conn, &sql, &[]).await?;
    for r in &rows {
        let r = Cells::new(r, "owner and privileges of", 1);
        let kind: String = r.get(0)?;
        let target: String = r.get(1)?;
        let col: Option<String> = r.get(2)?;
        let owner: String = r.get(3)?;
        let default_acl: bool = r.get(4)?;
        let oid: u32 = r.get(5)?;
        let privs: Vec<String> = r.get(6)?;
        let grantees: Vec<String> = r.get(7)?;
        let grantable: Vec<bool> = r.get(8)?;
        let grant_target: String = r.get(9)?;
        // GRANT … ON TABLE works for views and materialized views, … ON FUNCTION for
        // aggregates; ALTER needs the exact kind.
        let grant_kind = match kind.as_str() {
            "VIEW" | "MATERIALIZED VIEW" | "COLUMN" | "FOREIGN TABLE" => "TABLE",
            "AGGREGATE" => "FUNCTION",
            "SERVER" => "FOREIGN SERVER",
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
                "REVOKE ALL ON {grant_kind} {grant_target} FROM PUBLIC;\n"
            ));
            let stmt = format!(
                "REVOKE ALL ON {grant_kind} {grant_target} FROM {}",
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
                    "GRANT {privilege}{cols} ON {grant_kind} {grant_target} TO PUBLIC{with};\n"
                ));
            } else {
                let stmt = format!(
                    "GRANT {privilege}{cols} ON {grant_kind} {grant_target} TO {}{with}",
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

/// One privilege of an ACL, as `aclexplode` reads it: the grantee (`""` for `PUBLIC`), the
/// privilege (`SELECT`, `EXECUTE`, …) and whether it carries the grant option. The grantor
/// is left out, as everywhere in this module (the restoring role grants).
#[derive(Debug, Clone, PartialEq, Eq)]
struct AclEntry {
    grantee: String,
    privilege: String,
    grantable: bool,
}

impl AclEntry {
    /// The privileges of the three parallel arrays of `aclexplode`'s columns, in order.
    fn list(privileges: Vec<String>, grantees: Vec<String>, grantable: Vec<bool>) -> Vec<Self> {
        privileges
            .into_iter()
            .zip(grantees)
            .zip(grantable)
            .map(|((privilege, grantee), grantable)| Self {
                grantee,
                privilege,
                grantable,
            })
            .collect()
    }
}

/// What takes an object from its `base` ACL to its current one (`acl`): the privileges to
/// revoke (in `base` and not in `acl`, in `base`'s order), then those to grant (in `acl` and
/// not in `base`, in `acl`'s order, so the restored array reads the same). pg_dump's
/// `buildACLCommands` does the same with whole ACL items (grantee, privileges and grantor
/// together); here it is per privilege, so an item that gained one privilege gets one
/// `GRANT`, and a privilege whose grant option changed is revoked and granted again.
fn acl_changes(base: &[AclEntry], acl: &[AclEntry]) -> (Vec<AclEntry>, Vec<AclEntry>) {
    let revoke = base.iter().filter(|p| !acl.contains(p)).cloned().collect();
    let grant = acl.iter().filter(|p| !base.contains(p)).cloned().collect();
    (revoke, grant)
}

/// Privileges changed on the objects of `pg_catalog` — the schema, its tables and views and
/// their columns, functions (aggregates and procedures too) and types — since `initdb`, as
/// pg_dump dumps them (`selectDumpableNamespace` gives `pg_catalog`'s objects the ACL
/// component alone; `getAdditionalACLs` reads `pg_init_privs`; `dumpACL`): against the
/// object's row in `pg_init_privs` (the privileges `initdb` left; for a column, its
/// `objsubid` row), or, without one, the kind's default (`acldefault`; nothing for a
/// column). An object whose ACL is NULL and that has no such row is as `initdb` left it
/// (regression test `privileges`: `GRANT SELECT (rolname) ON pg_catalog.pg_authid`, `GRANT
/// SELECT (prosrc) ON pg_catalog.pg_proc`). Owners are never changed. Array, multirange and
/// row types, which take no `GRANT` of their own, are left out.
///
/// Every statement is guarded (`guarded`, also those for `PUBLIC`): a restore whose role
/// may not change a system catalog's privileges, or lacks a grantee, warns and goes on.
pub(super) async fn catalog_privileges(
    conn: &mut Conn,
    plan: &mut Plan,
) -> Result<(), EngineError> {
    // `aclexplode` refuses an empty ACL (zero dimensions): it is read as NULL, no rows.
    let explode = |column: &str| {
        let column = format!("CASE WHEN pg_catalog.cardinality({column}) > 0 THEN {column} END");
        format!(
            "ARRAY(SELECT x.privilege_type FROM pg_catalog.aclexplode({column}) WITH ORDINALITY x ORDER BY x.ordinality),
             ARRAY(SELECT CASE WHEN x.grantee = 0 THEN '' ELSE pg_catalog.pg_get_userbyid(x.grantee) END
                     FROM pg_catalog.aclexplode({column}) WITH ORDINALITY x ORDER BY x.ordinality),
             ARRAY(SELECT x.is_grantable FROM pg_catalog.aclexplode({column}) WITH ORDINALITY x ORDER BY x.ordinality)"
        )
    };
    let class = |name: &str| format!("'pg_catalog.{name}'::pg_catalog.regclass::pg_catalog.oid");
    // Candidates are read by OID only; names are built for the few that changed.
    let sql = format!(
        "WITH objs(ord, kind, classid, oid, sub, acl, dflt) AS (
            SELECT 1, 'SCHEMA', {ns}, n.oid, 0, n.nspacl, pg_catalog.acldefault('n'::pg_catalog.\"char\", n.nspowner)
              FROM pg_catalog.pg_namespace n WHERE n.nspname = 'pg_catalog'
            UNION ALL
            SELECT 2, 'TYPE', {ty}, t.oid, 0, t.typacl, pg_catalog.acldefault('T'::pg_catalog.\"char\", t.typowner)
              FROM pg_catalog.pg_type t
             WHERE t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace AND t.typtype <> 'm'
               AND NOT (t.typelem <> 0 AND t.typlen = -1)
               AND (t.typrelid = 0 OR (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.typrelid) = 'c')
            UNION ALL
            SELECT 3, 'FUNCTION', {pr}, p.oid, 0, p.proacl, pg_catalog.acldefault('f'::pg_catalog.\"char\", p.proowner)
              FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'pg_catalog'::pg_catalog.regnamespace
            UNION ALL
            SELECT 4, CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, {cl}, c.oid, 0, c.relacl,
                   pg_catalog.acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::pg_catalog.\"char\", c.relowner)
              FROM pg_catalog.pg_class c
             WHERE c.relnamespace = 'pg_catalog'::pg_catalog.regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
            UNION ALL
            -- Columns with an ACL, and columns without one that initdb gave one.
            SELECT 5, 'TABLE', {cl}, c.oid, a.attnum, a.attacl, '{{}}'::pg_catalog.aclitem[]
              FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
             WHERE c.relnamespace = 'pg_catalog'::pg_catalog.regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
               AND NOT a.attisdropped AND a.attacl IS NOT NULL
            UNION ALL
            SELECT 5, 'TABLE', {cl}, a.attrelid, a.attnum, NULL, '{{}}'::pg_catalog.aclitem[]
              FROM pg_catalog.pg_init_privs ip
              JOIN pg_catalog.pg_attribute a ON a.attrelid = ip.objoid AND a.attnum = ip.objsubid
              JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
             WHERE ip.classoid = {cl} AND ip.objsubid <> 0 AND a.attacl IS NULL AND NOT a.attisdropped
               AND c.relnamespace = 'pg_catalog'::pg_catalog.regnamespace
         ),
         changed AS (
            SELECT o.ord, o.kind, o.oid, o.sub, COALESCE(o.acl, o.dflt) AS acl, COALESCE(ip.initprivs, o.dflt) AS base
              FROM objs o LEFT JOIN pg_catalog.pg_init_privs ip
                ON ip.objoid = o.oid AND ip.classoid = o.classid AND ip.objsubid = o.sub
             WHERE (o.acl IS NOT NULL OR ip.initprivs IS NOT NULL)
               AND COALESCE(o.acl, o.dflt) IS DISTINCT FROM COALESCE(ip.initprivs, o.dflt)
         ),
         named AS (
            SELECT ch.*,
                   CASE ch.ord
                     WHEN 1 THEN (SELECT pg_catalog.quote_ident(nspname) FROM pg_catalog.pg_namespace WHERE oid = ch.oid)
                     WHEN 2 THEN (SELECT 'pg_catalog.' || pg_catalog.quote_ident(typname) FROM pg_catalog.pg_type WHERE oid = ch.oid)
                     WHEN 3 THEN (SELECT 'pg_catalog.' || pg_catalog.quote_ident(p.proname) || '(' ||
                                         pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.format_type(u.a, NULL)
                                             FROM pg_catalog.unnest(p.proargtypes) WITH ORDINALITY u(a, i) ORDER BY u.i), ', ') || ')'
                                    FROM pg_catalog.pg_proc p WHERE p.oid = ch.oid)
                     ELSE (SELECT 'pg_catalog.' || pg_catalog.quote_ident(relname) FROM pg_catalog.pg_class WHERE oid = ch.oid)
                   END AS target,
                   CASE WHEN ch.sub <> 0 THEN
                     (SELECT pg_catalog.quote_ident(attname) FROM pg_catalog.pg_attribute WHERE attrelid = ch.oid AND attnum = ch.sub)
                   END AS col
              FROM changed ch
         )
         SELECT kind, target, col, {base}, {acl}
           FROM named ORDER BY ord, target COLLATE \"C\", col COLLATE \"C\"",
        ns = class("pg_namespace"),
        ty = class("pg_type"),
        pr = class("pg_proc"),
        cl = class("pg_class"),
        base = explode("base"),
        acl = explode("acl"),
    );
    let rows = query(conn, &sql, &[]).await?;
    for r in &rows {
        let r = Cells::new(r, "privileges of", 1);
        let kind: String = r.get(0)?;
        let target: String = r.get(1)?;
        let col: Option<String> = r.get(2)?;
        let base = AclEntry::list(r.get(3)?, r.get(4)?, r.get(5)?);
        let acl = AclEntry::list(r.get(6)?, r.get(7)?, r.get(8)?);
        let (revoke, grant) = acl_changes(&base, &acl);
        let cols = col.as_ref().map(|c| format!(" ({c})")).unwrap_or_default();
        let what = match &col {
            Some(c) => format!("privileges of column {target}.{c}"),
            None => format!("privileges of {} {target}", kind.to_lowercase()),
        };
        let to = |p: &AclEntry| {
            if p.grantee.is_empty() {
                (Vec::new(), "PUBLIC".to_owned())
            } else {
                (vec![p.grantee.clone()], quote_ident(&p.grantee))
            }
        };
        for p in &revoke {
            let (roles, from) = to(p);
            let stmt = format!(
                "REVOKE {}{cols} ON {kind} {target} FROM {from}",
                p.privilege
            );
            plan.post.push(guarded(&roles, &stmt, &what));
        }
        for p in &grant {
            let (roles, to) = to(p);
            let with = if p.grantable {
                " WITH GRANT OPTION"
            } else {
                ""
            };
            let stmt = format!(
                "GRANT {}{cols} ON {kind} {target} TO {to}{with}",
                p.privilege
            );
            plan.post.push(guarded(&roles, &stmt, &what));
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
pub(super) async fn default_privileges(
    conn: &mut Conn,
    plan: &mut Plan,
) -> Result<(), EngineError> {
    let rows = query(
        conn,
        "SELECT pg_catalog.pg_get_userbyid(d.defaclrole),
                CASE WHEN d.defaclnamespace = 0 THEN NULL ELSE pg_catalog.quote_ident(n.nspname) END,
                d.defaclobjtype::text,
                ARRAY(SELECT x.privilege_type FROM pg_catalog.aclexplode(d.defaclacl) WITH ORDINALITY x ORDER BY x.ordinality),
                ARRAY(SELECT CASE WHEN x.grantee = 0 THEN '' ELSE pg_catalog.pg_get_userbyid(x.grantee) END
                        FROM pg_catalog.aclexplode(d.defaclacl) WITH ORDINALITY x ORDER BY x.ordinality),
                ARRAY(SELECT x.is_grantable FROM pg_catalog.aclexplode(d.defaclacl) WITH ORDINALITY x ORDER BY x.ordinality)
           FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
          ORDER BY pg_catalog.pg_get_userbyid(d.defaclrole) COLLATE \"C\", n.nspname COLLATE \"C\" NULLS FIRST, d.defaclobjtype",
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "default privileges of role", 0);
        let role: String = r.get(0)?;
        let schema: Option<String> = r.get(1)?;
        let objects = match r.get::<String>(2)?.as_str() {
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
        let privs: Vec<String> = r.get(3)?;
        let grantees: Vec<String> = r.get(4)?;
        let grantable: Vec<bool> = r.get(5)?;
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

    fn entry(grantee: &str, privilege: &str, grantable: bool) -> AclEntry {
        AclEntry {
            grantee: grantee.to_owned(),
            privilege: privilege.to_owned(),
            grantable,
        }
    }

    #[test]
    fn acl_changes_revoke_what_went_and_grant_what_came_in_acl_order() {
        let base = [
            entry("postgres", "SELECT", false),
            entry("", "SELECT", false),
            entry("alice", "UPDATE", true),
        ];
        let acl = [
            entry("postgres", "SELECT", false),
            entry("carol", "SELECT", false),
            entry("alice", "UPDATE", false),
            entry("bob", "SELECT", true),
        ];
        let (revoke, grant) = acl_changes(&base, &acl);
        assert_eq!(
            revoke,
            vec![entry("", "SELECT", false), entry("alice", "UPDATE", true)]
        );
        assert_eq!(
            grant,
            vec![
                entry("carol", "SELECT", false),
                entry("alice", "UPDATE", false),
                entry("bob", "SELECT", true)
            ]
        );
        assert_eq!(acl_changes(&acl, &acl), (Vec::new(), Vec::new()));
    }

    #[test]
    fn guarded_without_roles_runs_unconditionally_but_catches_denial() {
        let s = guarded(
            &[],
            "GRANT SELECT ON TABLE pg_catalog.pg_authid TO PUBLIC",
            "x",
        );
        assert!(s.contains("ARRAY[]::pg_catalog.text[]"), "{s}");
        assert!(s.contains("insufficient_privilege"), "{s}");
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
}
