//! Pre-data: the objects created before the rows are loaded (schemas, extensions, types,
//! functions, sequences, tables, views, materialized views), one collector per kind, and
//! their order (a topological sort over `pg_depend`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use exporter_contract::{EngineError, ErrorKind};

use super::cycles;
use super::loadcode::LoadCode;
use super::table::{Column, Rel, Tables, table_ddl};
use super::{FIRST_USER_OID, not_ext, query, user_ns};
use crate::cells::{Cells, read_all};
use crate::connect::Conn;
use crate::quote::quote_literal;

/// One pre-data object awaiting its place in the dependency order.
pub(super) struct PreObj {
    pub rank: u8,
    pub sort: String,
    pub sql: String,
}

/// The pre-data objects collected so far, by key (see [`resolve_sql`]), and aliases: keys
/// that stand for another object's key (a composite type's relation for the type, an
/// identity sequence for its table, an extension member for its extension).
#[derive(Default)]
pub(super) struct PreData {
    pub objs: BTreeMap<String, PreObj>,
    pub aliases: HashMap<String, String>,
    /// Base types (and range types with a canonical function, `catalog/ranges.rs`) created in
    /// two steps: `T<oid>` keys whose shell (`CREATE TYPE name;`) is the object `S<oid>`.
    pub shells: HashSet<String>,
}

impl PreData {
    pub(super) fn insert(&mut self, key: String, rank: u8, sort: String, sql: String) {
        self.objs.insert(key, PreObj { rank, sort, sql });
    }
}

/// Resolve `(catalog, oid)` of a `pg_depend` row to the key of the object we emit for it:
/// `N` schema, `E` extension, `T` type, `P` function, `Q` operator, `D` text search
/// dictionary, `C` text search configuration, `K` cast, `L` collation, `W` foreign-data
/// wrapper, `V` foreign server, `A` access method, `X` transform, `F` operator family (also
/// for its members), `Y` operator class, `R` relation (also a foreign table), and the keys
/// of `kinds.rs` (`kinds::resolve_whens`), `d` column default and `c` table `CHECK` constraint
/// (`catalog/cycles.rs`: parts of their table, written inline unless a cycle runs through
/// them). Columns and view rules belong to their relation; array and multirange types to
/// their element / range type; a table's row type to the table.
fn resolve_sql(cls: &str, id: &str) -> String {
    let kinds = super::kinds::resolve_whens(id);
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
  WHEN 'pg_catalog.pg_operator'::pg_catalog.regclass THEN 'Q' || {id}
  WHEN 'pg_catalog.pg_ts_dict'::pg_catalog.regclass THEN 'D' || {id}
  WHEN 'pg_catalog.pg_ts_config'::pg_catalog.regclass THEN 'C' || {id}
  WHEN 'pg_catalog.pg_cast'::pg_catalog.regclass THEN 'K' || {id}
  WHEN 'pg_catalog.pg_collation'::pg_catalog.regclass THEN 'L' || {id}
  WHEN 'pg_catalog.pg_foreign_data_wrapper'::pg_catalog.regclass THEN 'W' || {id}
  WHEN 'pg_catalog.pg_foreign_server'::pg_catalog.regclass THEN 'V' || {id}
  WHEN 'pg_catalog.pg_am'::pg_catalog.regclass THEN 'A' || {id}
  WHEN 'pg_catalog.pg_transform'::pg_catalog.regclass THEN 'X' || {id}
  WHEN 'pg_catalog.pg_opfamily'::pg_catalog.regclass THEN 'F' || {id}
  WHEN 'pg_catalog.pg_opclass'::pg_catalog.regclass THEN 'Y' || {id}
  WHEN 'pg_catalog.pg_amop'::pg_catalog.regclass THEN (SELECT 'F' || amopfamily FROM pg_catalog.pg_amop WHERE oid = {id})
  WHEN 'pg_catalog.pg_amproc'::pg_catalog.regclass THEN (SELECT 'F' || amprocfamily FROM pg_catalog.pg_amproc WHERE oid = {id})
  WHEN 'pg_catalog.pg_namespace'::pg_catalog.regclass THEN 'N' || {id}
  WHEN 'pg_catalog.pg_extension'::pg_catalog.regclass THEN 'E' || {id}
  WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN (SELECT 'R' || ev_class FROM pg_catalog.pg_rewrite WHERE oid = {id})
  WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN 'd' || {id}
  WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN
    (SELECT CASE WHEN contypid <> 0 THEN 'T' || contypid WHEN contype = 'c' THEN 'c' || oid END
       FROM pg_catalog.pg_constraint WHERE oid = {id})
  {kinds}
END"
    )
}

/// `CREATE SCHEMA` for every user schema (rank 0); `public` exists in every restore target.
pub(super) async fn schemas(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT n.oid, pg_catalog.quote_ident(n.nspname), n.nspname FROM pg_catalog.pg_namespace n
              WHERE {} AND {}",
            user_ns("n"),
            not_ext("pg_namespace", "n.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "schema", 2);
        let oid: u32 = r.get(0)?;
        let name: String = r.get(1)?;
        let raw: String = r.get(2)?;
        // The restore target (created from template1) already has `public`.
        let sql = if raw == "public" {
            String::new()
        } else {
            format!("CREATE SCHEMA {name};\n")
        };
        pre.insert(format!("N{oid}"), 0, raw, sql);
    }
    Ok(())
}

/// `CREATE EXTENSION IF NOT EXISTS` for every extension but plpgsql (rank 1).
pub(super) async fn extensions(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let rows = query(
        conn,
        "SELECT e.oid, pg_catalog.quote_ident(e.extname), pg_catalog.quote_ident(n.nspname), e.extname
           FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace",
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "extension", 3);
        let oid: u32 = r.get(0)?;
        let raw: String = r.get(3)?;
        // plpgsql is installed in every database created from template1.
        let sql = if raw == "plpgsql" {
            String::new()
        } else {
            format!(
                "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {};\n",
                r.get::<String>(1)?,
                r.get::<String>(2)?
            )
        };
        pre.insert(format!("E{oid}"), 1, raw, sql);
    }
    Ok(())
}

/// The labels of every enum, quoted and comma-separated in `enumsortorder`.
async fn enum_labels(conn: &mut Conn) -> Result<HashMap<u32, String>, EngineError> {
    let rows = query(
        conn,
        "SELECT enumtypid, pg_catalog.string_agg(pg_catalog.quote_literal(enumlabel), ', ' ORDER BY enumsortorder)
           FROM pg_catalog.pg_enum GROUP BY enumtypid",
        &[],
    )
    .await?;
    Ok(
        read_all(&rows, "enum type", 0, |r| Ok((r.get(0)?, r.get(1)?)))?
            .into_iter()
            .collect(),
    )
}

/// A domain's `CHECK` constraint: quoted name, definition, validated.
type DomainCheck = (String, String, bool);

/// The `CHECK` constraints of every domain, by domain, then name; those `code` adds after
/// the data (they call user functions) are left out.
async fn domain_checks(
    conn: &mut Conn,
    code: &LoadCode,
) -> Result<HashMap<u32, Vec<DomainCheck>>, EngineError> {
    let rows = query(
        conn,
        "SELECT contypid, pg_catalog.quote_ident(conname), pg_catalog.pg_get_constraintdef(oid), convalidated, oid
           FROM pg_catalog.pg_constraint WHERE contypid <> 0 AND contype = 'c'
          ORDER BY contypid, conname COLLATE \"C\"",
        &[],
    )
    .await?;
    let mut checks: HashMap<u32, Vec<DomainCheck>> = HashMap::new();
    for r in &rows {
        let r = Cells::new(r, "domain constraint", 1);
        if code.is_deferred(r.get(4)?) {
            continue;
        }
        checks
            .entry(r.get(0)?)
            .or_default()
            .push((r.get(1)?, r.get(2)?, r.get(3)?));
    }
    Ok(checks)
}

/// Enum, domain, composite and range types (rank 2). Returns the `ALTER DOMAIN … ADD
/// CONSTRAINT` statements of `NOT VALID` domain checks, which go after the data.
pub(super) async fn types(
    conn: &mut Conn,
    columns: &HashMap<u32, Vec<Column>>,
    code: &LoadCode,
    pre: &mut PreData,
) -> Result<Vec<String>, EngineError> {
    let enums = enum_labels(conn).await?;
    let domain_checks = domain_checks(conn, code).await?;
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
                    rg.subtype, rg.opclass, rg.collation, rg.subdiff, rg.multirange, rg.canonical
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
                          WHERE mt.oid = r.rngmultitypid) AS multirange,
                        CASE WHEN r.rngcanonical <> 0 THEN r.rngcanonical::pg_catalog.regproc::text END AS canonical
                   FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid) rg ON true
              WHERE {} AND {} AND t.typtype IN ('e', 'd', 'c', 'r')
                AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_catalog.pg_class WHERE oid = t.typrelid) = 'c')",
            user_ns("n"),
            not_ext("pg_type", "t.oid")
        ),
        &[],
    )
    .await?;
    let mut domains_not_valid = Vec::new();
    for r in &rows {
        let r = Cells::new(r, "type", 3);
        let oid: u32 = r.get(0)?;
        let kind: String = r.get(1)?;
        let name: String = r.get(2)?;
        let sql = match kind.as_str() {
            "e" => format!(
                "CREATE TYPE {name} AS ENUM ({});\n",
                enums.get(&oid).cloned().unwrap_or_default()
            ),
            "d" => {
                let checks = domain_checks.get(&oid).map_or(&[][..], Vec::as_slice);
                domain_ddl(&name, &r, checks, &mut domains_not_valid)?
            }
            "c" => {
                let relid: u32 = r.get(8)?;
                pre.aliases.insert(format!("R{relid}"), format!("T{oid}"));
                composite_ddl(&name, columns.get(&relid).map_or(&[][..], Vec::as_slice))
            }
            "r" => range_ddl(&name, &r)?,
            other => {
                return Err(EngineError::new(
                    ErrorKind::Unsupported,
                    format!("unknown kind of type (typtype '{other}')"),
                )
                .with_object(r.object()));
            }
        };
        pre.insert(format!("T{oid}"), 2, r.get(3)?, sql);
    }
    Ok(domains_not_valid)
}

/// `CREATE DOMAIN` with its collation, default, `NOT NULL` and validated checks; `NOT
/// VALID` checks are pushed to `not_valid` as `ALTER DOMAIN … ADD CONSTRAINT` (existing rows
/// may violate them, so they go after the data).
fn domain_ddl(
    name: &str,
    r: &Cells<'_>,
    checks: &[DomainCheck],
    not_valid: &mut Vec<String>,
) -> Result<String, EngineError> {
    let mut s = format!("CREATE DOMAIN {name} AS {}", r.get::<String>(4)?);
    if let Some(coll) = r.get::<Option<String>>(7)? {
        let _ = write!(s, " COLLATE {coll}");
    }
    if let Some(def) = r.get::<Option<String>>(6)? {
        let _ = write!(s, " DEFAULT {def}");
    }
    if r.get::<bool>(5)? {
        s.push_str(" NOT NULL");
    }
    for (cname, def, valid) in checks {
        if *valid {
            let _ = write!(s, "\n    CONSTRAINT {cname} {def}");
        } else {
            not_valid.push(format!(
                "ALTER DOMAIN {name} ADD CONSTRAINT {cname} {def};\n"
            ));
        }
    }
    s.push_str(";\n");
    Ok(s)
}

/// `CREATE TYPE … AS (attributes)`.
fn composite_ddl(name: &str, attributes: &[Column]) -> String {
    let attrs: Vec<String> = attributes
        .iter()
        .map(|c| {
            let mut a = format!("    {} {}", c.name, c.ty);
            if let Some(coll) = &c.collation {
                let _ = write!(a, " COLLATE {coll}");
            }
            a
        })
        .collect();
    format!("CREATE TYPE {name} AS (\n{}\n);\n", attrs.join(",\n"))
}

/// `CREATE TYPE … AS RANGE (…)` from the range columns of the types query, in pg_dump's form
/// and order (`dumpRangeType` in pg_dump.c of PostgreSQL 15): `subtype`,
/// `multirange_type_name`, `subtype_opclass`, `collation`, `canonical`, `subtype_diff`. A
/// range with a canonical function is created over its shell, which comes before that
/// function (`catalog/ranges.rs`).
fn range_ddl(name: &str, r: &Cells<'_>) -> Result<String, EngineError> {
    let mut opts = vec![format!("    subtype = {}", r.get::<String>(9)?)];
    if let Some(multi) = r.get::<Option<String>>(13)? {
        opts.push(format!("    multirange_type_name = {multi}"));
    }
    if let Some(opc) = r.get::<Option<String>>(10)? {
        opts.push(format!("    subtype_opclass = {opc}"));
    }
    if let Some(coll) = r.get::<Option<String>>(11)? {
        opts.push(format!("    collation = {coll}"));
    }
    if let Some(canonical) = r.get::<Option<String>>(14)? {
        opts.push(format!("    canonical = {canonical}"));
    }
    if let Some(diff) = r.get::<Option<String>>(12)? {
        opts.push(format!("    subtype_diff = {diff}"));
    }
    Ok(format!(
        "CREATE TYPE {name} AS RANGE (\n{}\n);\n",
        opts.join(",\n")
    ))
}

/// Functions and procedures from `pg_get_functiondef` (rank 3).
pub(super) async fn functions(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT p.oid, pg_catalog.pg_get_functiondef(p.oid), n.nspname || '.' || p.proname || '(' ||
                    pg_catalog.pg_get_function_identity_arguments(p.oid) || ')'
               FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
              WHERE {} AND {} AND p.prokind IN ('f', 'p', 'w')",
            user_ns("n"),
            not_ext("pg_proc", "p.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "function", 2);
        let oid: u32 = r.get(0)?;
        let def: String = r.get(1)?;
        pre.insert(
            format!("P{oid}"),
            3,
            r.get(2)?,
            format!("{};\n", def.trim_end()),
        );
    }
    Ok(())
}

/// The signature of aggregate `p` as `CREATE`, `ALTER`, `COMMENT ON` and `DROP AGGREGATE`
/// take it: `schema.name(args)`, `(*)` without arguments, direct and ordered arguments of an
/// ordered-set aggregate around `ORDER BY` (pg_dump's `format_function_arguments` over
/// `pg_get_function_identity_arguments`).
pub(super) fn aggregate_signature_sql(p: &str, n: &str) -> String {
    format!(
        "pg_catalog.quote_ident({n}.nspname) || '.' || pg_catalog.quote_ident({p}.proname) || '(' || \
         COALESCE(NULLIF(pg_catalog.pg_get_function_identity_arguments({p}.oid), ''), '*') || ')'"
    )
}

/// `CREATE AGGREGATE` of every aggregate (rank 3, keyed as a function: `pg_depend` orders it
/// after its support functions and types), in pg_dump's form (`dumpAgg` in pg_dump.c of
/// PostgreSQL 15): the arguments with names and `ORDER BY` as `pg_get_function_arguments`
/// gives them, then `SFUNC`, `STYPE`, and each other option only where it is not the
/// default — `SSPACE`, `FINALFUNC` (`FINALFUNC_EXTRA`, `FINALFUNC_MODIFY` when not the
/// kind's default: `READ_ONLY` for normal aggregates, `READ_WRITE` for ordered-set ones),
/// `COMBINEFUNC`, `SERIALFUNC`, `DESERIALFUNC`, `INITCOND`, the moving-aggregate set
/// (`MSFUNC`, `MINVFUNC`, `MSTYPE`, `MSSPACE`, `MFINALFUNC`…, `MINITCOND`), `SORTOP`,
/// `HYPOTHETICAL`, `PARALLEL`. Function and type names come from `regproc` / `regtype` under
/// the empty `search_path`, so they are schema-qualified (`pg_catalog` is implicit).
/// Reference: <https://www.postgresql.org/docs/15/sql-createaggregate.html>.
pub(super) async fn aggregates(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT p.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(p.proname),
                    pg_catalog.pg_get_function_arguments(p.oid), a.aggkind::text,
                    a.aggtransfn::pg_catalog.regproc::text, a.aggtranstype::pg_catalog.regtype::text, a.aggtransspace,
                    CASE WHEN a.aggfinalfn <> 0 THEN a.aggfinalfn::pg_catalog.regproc::text END,
                    a.aggfinalextra, a.aggfinalmodify::text,
                    CASE WHEN a.aggcombinefn <> 0 THEN a.aggcombinefn::pg_catalog.regproc::text END,
                    CASE WHEN a.aggserialfn <> 0 THEN a.aggserialfn::pg_catalog.regproc::text END,
                    CASE WHEN a.aggdeserialfn <> 0 THEN a.aggdeserialfn::pg_catalog.regproc::text END,
                    a.agginitval,
                    CASE WHEN a.aggmtransfn <> 0 THEN a.aggmtransfn::pg_catalog.regproc::text END,
                    CASE WHEN a.aggminvtransfn <> 0 THEN a.aggminvtransfn::pg_catalog.regproc::text END,
                    CASE WHEN a.aggmtranstype <> 0 THEN a.aggmtranstype::pg_catalog.regtype::text END,
                    a.aggmtransspace,
                    CASE WHEN a.aggmfinalfn <> 0 THEN a.aggmfinalfn::pg_catalog.regproc::text END,
                    a.aggmfinalextra, a.aggmfinalmodify::text, a.aggminitval,
                    (SELECT 'OPERATOR(' || pg_catalog.quote_ident(opn.nspname) || '.' || o.oprname || ')'
                       FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace opn ON opn.oid = o.oprnamespace
                      WHERE o.oid = a.aggsortop),
                    p.proparallel::text,
                    n.nspname || '.' || p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')'
               FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
               JOIN pg_catalog.pg_aggregate a ON a.aggfnoid = p.oid
              WHERE {} AND {} AND p.prokind = 'a'",
            user_ns("n"),
            not_ext("pg_proc", "p.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "aggregate", 24);
        let oid: u32 = r.get(0)?;
        let name: String = r.get(1)?;
        let args: String = r.get(2)?;
        let kind: String = r.get(3)?;
        let args = if args.is_empty() {
            "*".to_owned()
        } else {
            args
        };
        let mut s = format!(
            "CREATE AGGREGATE {name}({args}) (\n    SFUNC = {},\n    STYPE = {}",
            r.get::<String>(4)?,
            r.get::<String>(5)?
        );
        let modify_word = |code: &str| match code {
            "r" => Ok("READ_ONLY"),
            "s" => Ok("SHAREABLE"),
            "w" => Ok("READ_WRITE"),
            other => Err(EngineError::new(
                ErrorKind::Unsupported,
                format!("unknown aggfinalmodify '{other}'"),
            )
            .with_object(r.object())),
        };
        let default_modify = if kind == "n" { "r" } else { "w" };
        let space: i32 = r.get(6)?;
        if space != 0 {
            let _ = write!(s, ",\n    SSPACE = {space}");
        }
        if let Some(f) = r.get::<Option<String>>(7)? {
            let _ = write!(s, ",\n    FINALFUNC = {f}");
            if r.get::<bool>(8)? {
                s.push_str(",\n    FINALFUNC_EXTRA");
            }
            let modify: String = r.get(9)?;
            if modify != default_modify {
                let _ = write!(s, ",\n    FINALFUNC_MODIFY = {}", modify_word(&modify)?);
            }
        }
        for (col, word) in [
            (10, "COMBINEFUNC"),
            (11, "SERIALFUNC"),
            (12, "DESERIALFUNC"),
        ] {
            if let Some(f) = r.get::<Option<String>>(col)? {
                let _ = write!(s, ",\n    {word} = {f}");
            }
        }
        if let Some(init) = r.get::<Option<String>>(13)? {
            let _ = write!(s, ",\n    INITCOND = {}", quote_literal(&init));
        }
        if let Some(msfunc) = r.get::<Option<String>>(14)? {
            // The server sets all three or none (CREATE AGGREGATE requires it).
            let (Some(minv), Some(mstype)) =
                (r.get::<Option<String>>(15)?, r.get::<Option<String>>(16)?)
            else {
                return Err(EngineError::new(
                    ErrorKind::Protocol,
                    "unexpected catalog content: a moving-aggregate transition function without its inverse or state type",
                )
                .with_object(r.object()));
            };
            let _ = write!(
                s,
                ",\n    MSFUNC = {msfunc},\n    MINVFUNC = {minv},\n    MSTYPE = {mstype}"
            );
            let mspace: i32 = r.get(17)?;
            if mspace != 0 {
                let _ = write!(s, ",\n    MSSPACE = {mspace}");
            }
            if let Some(f) = r.get::<Option<String>>(18)? {
                let _ = write!(s, ",\n    MFINALFUNC = {f}");
                if r.get::<bool>(19)? {
                    s.push_str(",\n    MFINALFUNC_EXTRA");
                }
                let modify: String = r.get(20)?;
                if modify != default_modify {
                    let _ = write!(s, ",\n    MFINALFUNC_MODIFY = {}", modify_word(&modify)?);
                }
            }
            if let Some(init) = r.get::<Option<String>>(21)? {
                let _ = write!(s, ",\n    MINITCOND = {}", quote_literal(&init));
            }
        }
        if let Some(op) = r.get::<Option<String>>(22)? {
            let _ = write!(s, ",\n    SORTOP = {op}");
        }
        if kind == "h" {
            s.push_str(",\n    HYPOTHETICAL");
        }
        match r.get::<String>(23)?.as_str() {
            "s" => s.push_str(",\n    PARALLEL = safe"),
            "r" => s.push_str(",\n    PARALLEL = restricted"),
            _ => {}
        }
        s.push_str("\n);\n");
        pre.insert(format!("P{oid}"), 3, r.get(24)?, s);
    }
    Ok(())
}

/// `CREATE OPERATOR` of every operator (rank 3, key `Q<oid>`: `pg_depend` orders it after its
/// function and types, and what uses it after it), in pg_dump's form (`dumpOpr` in
/// pg_dump.c of PostgreSQL 15): `FUNCTION`, `LEFTARG` (not for a prefix operator),
/// `RIGHTARG`, `COMMUTATOR` and `NEGATOR` as `OPERATOR(schema.name)` (the server creates a
/// shell for one not yet defined, which its own `CREATE OPERATOR` completes later),
/// `MERGES`, `HASHES`, `RESTRICT`, `JOIN`. Names come from `regproc` / `regtype` under the
/// empty `search_path`. Reference: <https://www.postgresql.org/docs/15/sql-createoperator.html>.
pub(super) async fn operators(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let opname = |col: &str| {
        format!(
            "(SELECT 'OPERATOR(' || pg_catalog.quote_ident(x.nspname) || '.' || p.oprname || ')'
                FROM pg_catalog.pg_operator p JOIN pg_catalog.pg_namespace x ON x.oid = p.oprnamespace
               WHERE p.oid = o.{col})"
        )
    };
    let rows = query(
        conn,
        &format!(
            "SELECT o.oid, pg_catalog.quote_ident(n.nspname) || '.' || o.oprname, o.oprkind::text,
                    CASE WHEN o.oprcode <> 0 THEN o.oprcode::pg_catalog.regproc::text END,
                    CASE WHEN o.oprleft <> 0 THEN o.oprleft::pg_catalog.regtype::text END,
                    CASE WHEN o.oprright <> 0 THEN o.oprright::pg_catalog.regtype::text END,
                    {com}, {neg}, o.oprcanmerge, o.oprcanhash,
                    CASE WHEN o.oprrest <> 0 THEN o.oprrest::pg_catalog.regproc::text END,
                    CASE WHEN o.oprjoin <> 0 THEN o.oprjoin::pg_catalog.regproc::text END,
                    o.oid::pg_catalog.regoperator::text
               FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
              WHERE {} AND {}",
            user_ns("n"),
            not_ext("pg_operator", "o.oid"),
            com = opname("oprcom"),
            neg = opname("oprnegate"),
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "operator", 12);
        let oid: u32 = r.get(0)?;
        let name: String = r.get(1)?;
        let kind: String = r.get(2)?;
        // A shell operator (named as a commutator or negator, never defined) has no
        // function; it is not created by itself, the operator naming it creates it again.
        let Some(function) = r.get::<Option<String>>(3)? else {
            continue;
        };
        if kind != "b" && kind != "l" {
            return Err(EngineError::new(
                ErrorKind::Unsupported,
                format!("unknown kind of operator (oprkind '{kind}')"),
            )
            .with_object(r.object()));
        }
        let mut s = format!("CREATE OPERATOR {name} (\n    FUNCTION = {function}");
        if let Some(left) = r.get::<Option<String>>(4)? {
            let _ = write!(s, ",\n    LEFTARG = {left}");
        }
        if let Some(right) = r.get::<Option<String>>(5)? {
            let _ = write!(s, ",\n    RIGHTARG = {right}");
        }
        for (col, word) in [(6, "COMMUTATOR"), (7, "NEGATOR")] {
            if let Some(op) = r.get::<Option<String>>(col)? {
                let _ = write!(s, ",\n    {word} = {op}");
            }
        }
        if r.get::<bool>(8)? {
            s.push_str(",\n    MERGES");
        }
        if r.get::<bool>(9)? {
            s.push_str(",\n    HASHES");
        }
        for (col, word) in [(10, "RESTRICT"), (11, "JOIN")] {
            if let Some(f) = r.get::<Option<String>>(col)? {
                let _ = write!(s, ",\n    {word} = {f}");
            }
        }
        s.push_str("\n);\n");
        pre.insert(format!("Q{oid}"), 3, r.get(12)?, s);
    }
    Ok(())
}

/// Text search dictionaries and configurations (rank 3, keys `D<oid>` and `C<oid>`: a
/// configuration after the dictionaries its mappings name, through `pg_depend`), in pg_dump's
/// form (`dumpTSDictionary`, `dumpTSConfig` in pg_dump.c of PostgreSQL 15): `CREATE TEXT
/// SEARCH DICTIONARY … (TEMPLATE = …, <the stored init options as written>)`; `CREATE TEXT
/// SEARCH CONFIGURATION … (PARSER = …)` followed by one `ALTER … ADD MAPPING FOR <token> WITH
/// <dictionaries in order>` per token type, the token's alias from `ts_token_type`. A
/// dictionary's files (`dictfile = 'ispell_sample'`) live in the target server's
/// `tsearch_data` directory, as with pg_dump. References:
/// <https://www.postgresql.org/docs/15/sql-createtsdictionary.html>,
/// <https://www.postgresql.org/docs/15/sql-createtsconfig.html>.
pub(super) async fn text_search(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT d.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(d.dictname),
                    (SELECT pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.tmplname)
                       FROM pg_catalog.pg_ts_template t JOIN pg_catalog.pg_namespace tn ON tn.oid = t.tmplnamespace
                      WHERE t.oid = d.dicttemplate),
                    d.dictinitoption, n.nspname || '.' || d.dictname
               FROM pg_catalog.pg_ts_dict d JOIN pg_catalog.pg_namespace n ON n.oid = d.dictnamespace
              WHERE {} AND {}",
            user_ns("n"),
            not_ext("pg_ts_dict", "d.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "text search dictionary", 1);
        let oid: u32 = r.get(0)?;
        let name: String = r.get(1)?;
        let template: String = r.get(2)?;
        let mut s = format!("CREATE TEXT SEARCH DICTIONARY {name} (\n    TEMPLATE = {template}");
        if let Some(options) = r.get::<Option<String>>(3)? {
            let _ = write!(s, ",\n    {options}");
        }
        s.push_str(" );\n");
        pre.insert(format!("D{oid}"), 3, r.get(4)?, s);
    }
    let rows = query(
        conn,
        &format!(
            "SELECT c.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.cfgname),
                    (SELECT pg_catalog.quote_ident(pn.nspname) || '.' || pg_catalog.quote_ident(p.prsname)
                       FROM pg_catalog.pg_ts_parser p JOIN pg_catalog.pg_namespace pn ON pn.oid = p.prsnamespace
                      WHERE p.oid = c.cfgparser),
                    ARRAY(SELECT pg_catalog.quote_ident(tt.alias) || ' WITH ' ||
                                 pg_catalog.string_agg(m.mapdict::pg_catalog.regdictionary::text, ', ' ORDER BY m.mapseqno)
                            FROM pg_catalog.pg_ts_config_map m
                            JOIN pg_catalog.ts_token_type(c.cfgparser) tt ON tt.tokid = m.maptokentype
                           WHERE m.mapcfg = c.oid
                           GROUP BY m.maptokentype, tt.alias ORDER BY m.maptokentype),
                    n.nspname || '.' || c.cfgname
               FROM pg_catalog.pg_ts_config c JOIN pg_catalog.pg_namespace n ON n.oid = c.cfgnamespace
              WHERE {} AND {}",
            user_ns("n"),
            not_ext("pg_ts_config", "c.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "text search configuration", 1);
        let oid: u32 = r.get(0)?;
        let name: String = r.get(1)?;
        let parser: String = r.get(2)?;
        let mappings: Vec<String> = r.get(3)?;
        let mut s =
            format!("CREATE TEXT SEARCH CONFIGURATION {name} (\n    PARSER = {parser} );\n");
        for mapping in mappings {
            let _ = write!(
                s,
                "ALTER TEXT SEARCH CONFIGURATION {name}\n    ADD MAPPING FOR {mapping};\n"
            );
        }
        pre.insert(format!("C{oid}"), 3, r.get(4)?, s);
    }
    Ok(())
}

/// `CREATE CAST` of every cast created after the server's own (OID 16384 and up, outside
/// extensions and not part of another object — a range type's constructor casts are the
/// server's), rank 3, key `K<oid>`, in pg_dump's form (`dumpCast` in pg_dump.c of
/// PostgreSQL 15): `WITH FUNCTION name(argument types)`, `WITH INOUT` or `WITHOUT
/// FUNCTION`, then `AS ASSIGNMENT` / `AS IMPLICIT`. Reference:
/// <https://www.postgresql.org/docs/15/sql-createcast.html>.
pub(super) async fn casts(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT c.oid, '(' || pg_catalog.format_type(c.castsource, NULL) || ' AS ' ||
                           pg_catalog.format_type(c.casttarget, NULL) || ')',
                    c.castmethod::text, c.castcontext::text,
                    CASE WHEN c.castfunc <> 0 THEN c.castfunc::pg_catalog.regprocedure::text END
               FROM pg_catalog.pg_cast c WHERE c.oid >= {FIRST_USER_OID} AND {}",
            not_ext("pg_cast", "c.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "cast", 1);
        let oid: u32 = r.get(0)?;
        let types: String = r.get(1)?;
        let how = match (r.get::<String>(2)?.as_str(), r.get::<Option<String>>(4)?) {
            ("f", Some(function)) => format!("WITH FUNCTION {function}"),
            ("i", _) => "WITH INOUT".to_owned(),
            ("b", _) => "WITHOUT FUNCTION".to_owned(),
            (method, _) => {
                return Err(EngineError::new(
                    ErrorKind::Protocol,
                    format!("unexpected catalog content: cast method '{method}'"),
                )
                .with_object(r.object()));
            }
        };
        let context = match r.get::<String>(3)?.as_str() {
            "a" => " AS ASSIGNMENT",
            "i" => " AS IMPLICIT",
            _ => "",
        };
        pre.insert(
            format!("K{oid}"),
            3,
            types.clone(),
            format!("CREATE CAST {types} {how}{context};\n"),
        );
    }
    Ok(())
}

/// `CREATE COLLATION` of every collation in a user schema (rank 2, before the types and
/// tables that use it; key `L<oid>`), in pg_dump's form (`dumpCollation` in pg_dump.c of
/// PostgreSQL 15): `provider`, `deterministic = false` when not, and `locale` (the ICU
/// locale, or `lc_collate` when it equals `lc_ctype`) or `lc_collate` and `lc_ctype`. The
/// version is left out, so the target computes its own (as pg_dump does outside binary
/// upgrades). The ICU locale column is read through `to_jsonb` of the row: `colliculocale`
/// in 15 and 16, `colllocale` from 17, absent in 14 (which keeps it in `collcollate`).
/// Reference: <https://www.postgresql.org/docs/15/sql-createcollation.html>.
pub(super) async fn collations(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT c.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.collname),
                    c.collprovider::text, c.collisdeterministic,
                    COALESCE(pg_catalog.to_jsonb(c) ->> 'colliculocale', pg_catalog.to_jsonb(c) ->> 'colllocale'),
                    c.collcollate, c.collctype, n.nspname || '.' || c.collname
               FROM pg_catalog.pg_collation c JOIN pg_catalog.pg_namespace n ON n.oid = c.collnamespace
              WHERE {} AND {}",
            user_ns("n"),
            not_ext("pg_collation", "c.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "collation", 1);
        let oid: u32 = r.get(0)?;
        let name: String = r.get(1)?;
        let provider = match r.get::<String>(2)?.as_str() {
            "c" => "libc",
            "i" => "icu",
            "b" => "builtin",
            other => {
                return Err(EngineError::new(
                    ErrorKind::Unsupported,
                    format!("unknown collation provider '{other}'"),
                )
                .with_object(r.object()));
            }
        };
        let mut s = format!("CREATE COLLATION {name} (provider = {provider}");
        if !r.get::<bool>(3)? {
            s.push_str(", deterministic = false");
        }
        let locale: Option<String> = r.get(4)?;
        let collate: Option<String> = r.get(5)?;
        let ctype: Option<String> = r.get(6)?;
        match (locale, collate, ctype) {
            (Some(locale), _, _) => {
                let _ = write!(s, ", locale = {}", quote_literal(&locale));
            }
            (None, Some(collate), Some(ctype)) if collate == ctype => {
                let _ = write!(s, ", locale = {}", quote_literal(&collate));
            }
            (None, Some(collate), Some(ctype)) => {
                let _ = write!(
                    s,
                    ", lc_collate = {}, lc_ctype = {}",
                    quote_literal(&collate),
                    quote_literal(&ctype)
                );
            }
            _ => {
                return Err(EngineError::new(
                    ErrorKind::Protocol,
                    "unexpected catalog content: a collation without a locale",
                )
                .with_object(r.object()));
            }
        }
        s.push_str(");\n");
        pre.insert(format!("L{oid}"), 2, r.get(7)?, s);
    }
    Ok(())
}

/// `CREATE ACCESS METHOD name TYPE TABLE | INDEX HANDLER function` of every access method
/// created after the server's own (OID 16384 and up, outside extensions), rank 1, key
/// `A<oid>`, as pg_dump's `dumpAccessMethod` (PostgreSQL 15) writes it; tables and
/// materialized views using one say so with `USING`. Reference:
/// <https://www.postgresql.org/docs/15/sql-create-access-method.html>.
pub(super) async fn access_methods(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT a.oid, pg_catalog.quote_ident(a.amname), a.amtype::text, a.amhandler::pg_catalog.regproc::text,
                    a.amname
               FROM pg_catalog.pg_am a WHERE a.oid >= {FIRST_USER_OID} AND {}",
            not_ext("pg_am", "a.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "access method", 1);
        let oid: u32 = r.get(0)?;
        let kind = match r.get::<String>(2)?.as_str() {
            "t" => "TABLE",
            "i" => "INDEX",
            other => {
                return Err(EngineError::new(
                    ErrorKind::Unsupported,
                    format!("unknown kind of access method (amtype '{other}')"),
                )
                .with_object(r.object()));
            }
        };
        let sql = format!(
            "CREATE ACCESS METHOD {} TYPE {kind} HANDLER {};\n",
            r.get::<String>(1)?,
            r.get::<String>(3)?
        );
        pre.insert(format!("A{oid}"), 1, r.get(4)?, sql);
    }
    Ok(())
}

/// `CREATE TRANSFORM FOR type LANGUAGE lang (FROM SQL WITH FUNCTION f(args), TO SQL WITH
/// FUNCTION g(args))` of every transform outside extensions (rank 3, key `X<oid>`, after its
/// functions), as pg_dump's `dumpTransform` (PostgreSQL 15) writes it. Reference:
/// <https://www.postgresql.org/docs/15/sql-createtransform.html>.
pub(super) async fn transforms(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT t.oid, 'FOR ' || pg_catalog.format_type(t.trftype, NULL) || ' LANGUAGE ' ||
                           pg_catalog.quote_ident(l.lanname),
                    CASE WHEN t.trffromsql <> 0 THEN t.trffromsql::pg_catalog.regprocedure::text END,
                    CASE WHEN t.trftosql <> 0 THEN t.trftosql::pg_catalog.regprocedure::text END
               FROM pg_catalog.pg_transform t JOIN pg_catalog.pg_language l ON l.oid = t.trflang
              WHERE {}",
            not_ext("pg_transform", "t.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "transform", 1);
        let oid: u32 = r.get(0)?;
        let target: String = r.get(1)?;
        let mut parts = Vec::new();
        if let Some(f) = r.get::<Option<String>>(2)? {
            parts.push(format!("FROM SQL WITH FUNCTION {f}"));
        }
        if let Some(f) = r.get::<Option<String>>(3)? {
            parts.push(format!("TO SQL WITH FUNCTION {f}"));
        }
        let sql = format!("CREATE TRANSFORM {target} ({});\n", parts.join(", "));
        pre.insert(format!("X{oid}"), 3, target, sql);
    }
    Ok(())
}

/// SQL: the `OPERATOR n op(left, right) [FOR ORDER BY family]` and `FUNCTION n (left, right)
/// f(args)` items of the members of `ref` (an operator class or family: `pg_depend` from
/// `pg_amop` / `pg_amproc` to it, `deptype` `dep`), in strategy and support number order, as
/// pg_dump's `dumpOpclass` / `dumpOpfamily` list them.
fn member_items_sql(refclass: &str, refoid: &str, dep: &str) -> String {
    format!(
        "ARRAY(SELECT 'OPERATOR ' || ao.amopstrategy || ' ' || ao.amopopr::pg_catalog.regoperator::text ||
                      CASE WHEN ao.amoppurpose = 'o' THEN ' FOR ORDER BY ' ||
                        (SELECT pg_catalog.quote_ident(sn.nspname) || '.' || pg_catalog.quote_ident(sf.opfname)
                           FROM pg_catalog.pg_opfamily sf JOIN pg_catalog.pg_namespace sn ON sn.oid = sf.opfnamespace
                          WHERE sf.oid = ao.amopsortfamily) ELSE '' END
                 FROM pg_catalog.pg_amop ao JOIN pg_catalog.pg_depend dp
                   ON dp.classid = 'pg_catalog.pg_amop'::pg_catalog.regclass AND dp.objid = ao.oid
                WHERE dp.refclassid = 'pg_catalog.{refclass}'::pg_catalog.regclass AND dp.refobjid = {refoid}
                  AND dp.deptype = '{dep}'
                ORDER BY ao.amopstrategy, ao.amoplefttype, ao.amoprighttype)
         || ARRAY(SELECT 'FUNCTION ' || ap.amprocnum || ' (' || ap.amproclefttype::pg_catalog.regtype::text || ', ' ||
                         ap.amprocrighttype::pg_catalog.regtype::text || ') ' || ap.amproc::pg_catalog.regprocedure::text
                    FROM pg_catalog.pg_amproc ap JOIN pg_catalog.pg_depend dp
                      ON dp.classid = 'pg_catalog.pg_amproc'::pg_catalog.regclass AND dp.objid = ap.oid
                   WHERE dp.refclassid = 'pg_catalog.{refclass}'::pg_catalog.regclass AND dp.refobjid = {refoid}
                     AND dp.deptype = '{dep}'
                   ORDER BY ap.amprocnum, ap.amproclefttype, ap.amprocrighttype)"
    )
}

/// Operator families and classes (rank 3, keys `F<oid>` and `Y<oid>`; a family's members
/// stand for it in the `pg_depend` order, so the operators and functions they name come
/// first), in pg_dump's form (`dumpOpfamily`, `dumpOpclass` in pg_dump.c of PostgreSQL 15):
/// `CREATE OPERATOR FAMILY name USING am`, then `ALTER OPERATOR FAMILY … ADD` of its loose
/// members (those bound to the family itself, `deptype` `a`); `CREATE OPERATOR CLASS name
/// [DEFAULT] FOR TYPE t USING am [FAMILY f] AS [STORAGE t,] OPERATOR …, FUNCTION …` with the
/// class's members (`deptype` `i`). A class without a family clause joins the family of its
/// own name, which the dump creates first. References:
/// <https://www.postgresql.org/docs/15/sql-createopfamily.html>,
/// <https://www.postgresql.org/docs/15/sql-createopclass.html>.
pub(super) async fn operator_classes(
    conn: &mut Conn,
    pre: &mut PreData,
) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT f.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(f.opfname),
                    pg_catalog.quote_ident(a.amname), {members}, n.nspname || '.' || f.opfname
               FROM pg_catalog.pg_opfamily f JOIN pg_catalog.pg_namespace n ON n.oid = f.opfnamespace
               JOIN pg_catalog.pg_am a ON a.oid = f.opfmethod
              WHERE {nsn} AND {ext}",
            members = member_items_sql("pg_opfamily", "f.oid", "a"),
            nsn = user_ns("n"),
            ext = not_ext("pg_opfamily", "f.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "operator family", 1);
        let oid: u32 = r.get(0)?;
        let name: String = r.get(1)?;
        let am: String = r.get(2)?;
        let members: Vec<String> = r.get(3)?;
        let mut s = format!("CREATE OPERATOR FAMILY {name} USING {am};\n");
        if !members.is_empty() {
            let _ = write!(
                s,
                "ALTER OPERATOR FAMILY {name} USING {am} ADD\n    {};\n",
                members.join(",\n    ")
            );
        }
        pre.insert(format!("F{oid}"), 3, r.get(4)?, s);
    }
    let rows = query(
        conn,
        &format!(
            "SELECT c.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.opcname),
                    pg_catalog.quote_ident(a.amname), c.opcdefault, pg_catalog.format_type(c.opcintype, NULL),
                    CASE WHEN c.opckeytype <> 0 THEN pg_catalog.format_type(c.opckeytype, NULL) END,
                    (SELECT pg_catalog.quote_ident(fn.nspname) || '.' || pg_catalog.quote_ident(f.opfname)
                       FROM pg_catalog.pg_opfamily f JOIN pg_catalog.pg_namespace fn ON fn.oid = f.opfnamespace
                      WHERE f.oid = c.opcfamily AND (f.opfname <> c.opcname OR f.opfnamespace <> c.opcnamespace)),
                    {members}, n.nspname || '.' || c.opcname
               FROM pg_catalog.pg_opclass c JOIN pg_catalog.pg_namespace n ON n.oid = c.opcnamespace
               JOIN pg_catalog.pg_am a ON a.oid = c.opcmethod
              WHERE {nsn} AND {ext}",
            members = member_items_sql("pg_opclass", "c.oid", "i"),
            nsn = user_ns("n"),
            ext = not_ext("pg_opclass", "c.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "operator class", 1);
        let oid: u32 = r.get(0)?;
        let name: String = r.get(1)?;
        let am: String = r.get(2)?;
        let default = if r.get::<bool>(3)? { "DEFAULT " } else { "" };
        let input: String = r.get(4)?;
        let mut s =
            format!("CREATE OPERATOR CLASS {name}\n    {default}FOR TYPE {input} USING {am}");
        if let Some(family) = r.get::<Option<String>>(6)? {
            let _ = write!(s, " FAMILY {family}");
        }
        let mut items = Vec::new();
        if let Some(storage) = r.get::<Option<String>>(5)? {
            items.push(format!("STORAGE {storage}"));
        }
        items.extend(r.get::<Vec<String>>(7)?);
        if items.is_empty() {
            // pg_dump's stand-in for a class without members: a no-op STORAGE clause.
            items.push(format!("STORAGE {input}"));
        }
        let _ = write!(s, " AS\n    {};\n", items.join(",\n    "));
        pre.insert(format!("Y{oid}"), 3, r.get(8)?, s);
    }
    Ok(())
}

/// Base types (and shell types never completed), in pg_dump's form (`dumpBaseType`,
/// `dumpShellType` in pg_dump.c of PostgreSQL 15): a shell `CREATE TYPE name;` (key
/// `S<oid>`), then — after the I/O functions, which need only the shell — `CREATE TYPE name
/// (INPUT, OUTPUT[, RECEIVE, SEND, TYPMOD_IN, TYPMOD_OUT, ANALYZE, SUBSCRIPT],
/// INTERNALLENGTH, PASSEDBYVALUE, ALIGNMENT, STORAGE, CATEGORY, PREFERRED, DEFAULT,
/// ELEMENT, DELIMITER, COLLATABLE)` (key `T<oid>`, rank 2). I/O functions written in C name
/// their library as the source has it (`regress.so` of the regression suite): the target
/// needs it too, as with pg_dump. Reference:
/// <https://www.postgresql.org/docs/15/sql-createtype.html>.
pub(super) async fn base_types(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let proc =
        |col: &str| format!("CASE WHEN t.{col} <> 0 THEN t.{col}::pg_catalog.regproc::text END");
    let rows = query(
        conn,
        &format!(
            "SELECT t.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(t.typname),
                    t.typtype::text, {input}, {output}, {receive}, {send}, {modin}, {modout}, {analyze},
                    {subscript}, t.typlen::int, t.typbyval, t.typalign::text, t.typstorage::text,
                    t.typcategory::text, t.typispreferred, t.typdefault,
                    CASE WHEN t.typelem <> 0 THEN pg_catalog.format_type(t.typelem, NULL) END,
                    t.typdelim::text, t.typcollation <> 0, n.nspname || '.' || t.typname
               FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
              WHERE {nsn} AND {ext} AND t.typtype IN ('b', 'p') AND NOT (t.typelem <> 0 AND t.typlen = -1)",
            input = proc("typinput"),
            output = proc("typoutput"),
            receive = proc("typreceive"),
            send = proc("typsend"),
            modin = proc("typmodin"),
            modout = proc("typmodout"),
            analyze = proc("typanalyze"),
            subscript = proc("typsubscript"),
            nsn = user_ns("n"),
            ext = not_ext("pg_type", "t.oid"),
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "type", 1);
        let oid: u32 = r.get(0)?;
        let name: String = r.get(1)?;
        let sort: String = r.get(21)?;
        let shell = format!("CREATE TYPE {name};\n");
        if r.get::<String>(2)? == "p" {
            // A shell type nobody completed.
            pre.insert(format!("T{oid}"), 2, sort, shell);
            continue;
        }
        let (Some(input), Some(output)) =
            (r.get::<Option<String>>(3)?, r.get::<Option<String>>(4)?)
        else {
            return Err(EngineError::new(
                ErrorKind::Protocol,
                "unexpected catalog content: a base type without input or output function",
            )
            .with_object(r.object()));
        };
        let len: i32 = r.get(11)?;
        let length = if len < 0 {
            "VARIABLE".to_owned()
        } else {
            len.to_string()
        };
        let mut items = vec![
            format!("INTERNALLENGTH = {length}"),
            format!("INPUT = {input}"),
            format!("OUTPUT = {output}"),
        ];
        for (col, word) in [
            (5, "RECEIVE"),
            (6, "SEND"),
            (7, "TYPMOD_IN"),
            (8, "TYPMOD_OUT"),
            (9, "ANALYZE"),
            (10, "SUBSCRIPT"),
        ] {
            if let Some(f) = r.get::<Option<String>>(col)? {
                items.push(format!("{word} = {f}"));
            }
        }
        if let Some(default) = r.get::<Option<String>>(17)? {
            items.push(format!("DEFAULT = {}", quote_literal(&default)));
        }
        if r.get::<bool>(12)? {
            items.push("PASSEDBYVALUE".to_owned());
        }
        let category: String = r.get(15)?;
        if category != "U" {
            items.push(format!("CATEGORY = {}", quote_literal(&category)));
        }
        if r.get::<bool>(16)? {
            items.push("PREFERRED = true".to_owned());
        }
        if let Some(element) = r.get::<Option<String>>(18)? {
            items.push(format!("ELEMENT = {element}"));
        }
        let delim: String = r.get(19)?;
        if delim != "," {
            items.push(format!("DELIMITER = {}", quote_literal(&delim)));
        }
        if r.get::<bool>(20)? {
            items.push("COLLATABLE = true".to_owned());
        }
        let align = match r.get::<String>(13)?.as_str() {
            "c" => "char",
            "s" => "int2",
            "i" => "int4",
            _ => "double",
        };
        let storage = match r.get::<String>(14)?.as_str() {
            "p" => "plain",
            "e" => "external",
            "m" => "main",
            _ => "extended",
        };
        items.push(format!("ALIGNMENT = {align}"));
        items.push(format!("STORAGE = {storage}"));
        pre.insert(format!("S{oid}"), 2, sort.clone(), shell);
        pre.insert(
            format!("T{oid}"),
            2,
            sort,
            format!("CREATE TYPE {name} (\n    {}\n);\n", items.join(",\n    ")),
        );
        pre.shells.insert(format!("T{oid}"));
    }
    Ok(())
}

/// `OPTIONS (…)` of a generic options array (`name=value` text) as pg_dump writes it,
/// `quote_ident(name) quote_literal(value)` one per line, but in the array's order (pg_dump
/// sorts them by name, which changes the catalog of the restore); NULL when there are none.
pub(super) fn options_sql(column: &str) -> String {
    format!(
        "(SELECT pg_catalog.string_agg(pg_catalog.quote_ident(o.option_name) || ' ' ||
                  pg_catalog.quote_literal(o.option_value), E',\\n    ' ORDER BY u.i)
            FROM pg_catalog.unnest({column}) WITH ORDINALITY u(opt, i),
                 LATERAL pg_catalog.pg_options_to_table(ARRAY[u.opt]) o)"
    )
}

/// ` OPTIONS (\n    a 'x',\n    b 'y'\n)` or nothing.
fn options_clause(options: Option<String>) -> String {
    options.map_or_else(String::new, |o| format!(" OPTIONS (\n    {o}\n)"))
}

/// Foreign-data wrappers and foreign servers with their user mappings (rank 1, keys `W<oid>`
/// and `V<oid>`), in pg_dump's form (`dumpForeignDataWrapper`, `dumpForeignServer`,
/// `dumpUserMappings` in pg_dump.c of PostgreSQL 15): `CREATE FOREIGN DATA WRAPPER name
/// [HANDLER f] [VALIDATOR f] [OPTIONS (…)]`; `CREATE SERVER name [TYPE '…'] [VERSION '…']
/// FOREIGN DATA WRAPPER fdw [OPTIONS (…)]` and each `CREATE USER MAPPING FOR role|PUBLIC
/// SERVER name [OPTIONS (…)]`, read from `pg_user_mappings` as pg_dump does (its options are
/// visible to a superuser, the mapped role, or the server's owner with `USAGE`). A mapping
/// naming a role is guarded like an owner (skipped with a warning where the role is
/// missing). References: <https://www.postgresql.org/docs/15/sql-createforeigndatawrapper.html>,
/// <https://www.postgresql.org/docs/15/sql-createserver.html>,
/// <https://www.postgresql.org/docs/15/sql-createusermapping.html>.
pub(super) async fn foreign_servers(conn: &mut Conn, pre: &mut PreData) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT f.oid, pg_catalog.quote_ident(f.fdwname),
                    CASE WHEN f.fdwhandler <> 0 THEN f.fdwhandler::pg_catalog.regproc::text END,
                    CASE WHEN f.fdwvalidator <> 0 THEN f.fdwvalidator::pg_catalog.regproc::text END,
                    {opts}, f.fdwname
               FROM pg_catalog.pg_foreign_data_wrapper f WHERE {ext}",
            opts = options_sql("f.fdwoptions"),
            ext = not_ext("pg_foreign_data_wrapper", "f.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "foreign-data wrapper", 1);
        let oid: u32 = r.get(0)?;
        let mut s = format!("CREATE FOREIGN DATA WRAPPER {}", r.get::<String>(1)?);
        if let Some(handler) = r.get::<Option<String>>(2)? {
            let _ = write!(s, " HANDLER {handler}");
        }
        if let Some(validator) = r.get::<Option<String>>(3)? {
            let _ = write!(s, " VALIDATOR {validator}");
        }
        s.push_str(&options_clause(r.get(4)?));
        s.push_str(";\n");
        pre.insert(format!("W{oid}"), 1, r.get(5)?, s);
    }
    let rows = query(
        conn,
        &format!(
            "SELECT s.oid, pg_catalog.quote_ident(s.srvname), s.srvtype, s.srvversion,
                    (SELECT pg_catalog.quote_ident(f.fdwname) FROM pg_catalog.pg_foreign_data_wrapper f
                      WHERE f.oid = s.srvfdw),
                    {opts},
                    ARRAY(SELECT u.usename FROM pg_catalog.pg_user_mappings u
                           WHERE u.srvid = s.oid ORDER BY u.usename COLLATE \"C\"),
                    ARRAY(SELECT COALESCE({umopts}, '') FROM pg_catalog.pg_user_mappings u
                           WHERE u.srvid = s.oid ORDER BY u.usename COLLATE \"C\"),
                    s.srvname
               FROM pg_catalog.pg_foreign_server s WHERE {ext}",
            opts = options_sql("s.srvoptions"),
            umopts = options_sql("u.umoptions"),
            ext = not_ext("pg_foreign_server", "s.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "foreign server", 1);
        let oid: u32 = r.get(0)?;
        let name: String = r.get(1)?;
        let mut s = format!("CREATE SERVER {name}");
        if let Some(ty) = r.get::<Option<String>>(2)? {
            let _ = write!(s, " TYPE {}", quote_literal(&ty));
        }
        if let Some(version) = r.get::<Option<String>>(3)? {
            let _ = write!(s, " VERSION {}", quote_literal(&version));
        }
        let _ = write!(s, " FOREIGN DATA WRAPPER {}", r.get::<String>(4)?);
        s.push_str(&options_clause(r.get(5)?));
        s.push_str(";\n");
        let users: Vec<String> = r.get(6)?;
        let options: Vec<String> = r.get(7)?;
        for (user, opts) in users.iter().zip(options) {
            let opts = options_clause(Some(opts).filter(|o| !o.is_empty()));
            if user == "public" {
                let _ = writeln!(s, "CREATE USER MAPPING FOR PUBLIC SERVER {name}{opts};");
            } else {
                let stmt = format!(
                    "CREATE USER MAPPING FOR {} SERVER {name}{opts}",
                    crate::quote::quote_ident(user)
                );
                s.push_str(&super::acl::guarded(
                    std::slice::from_ref(user),
                    &stmt,
                    &format!("user mapping for {user} on server {name}"),
                ));
            }
        }
        pre.insert(format!("V{oid}"), 1, r.get(8)?, s);
    }
    Ok(())
}

/// Sequences: which column owns each (identity `i`, `OWNED BY` `a`) and their options.
#[derive(Debug, Default)]
pub(super) struct Sequences {
    /// Sequence OID → (table OID, quoted column name, `pg_depend.deptype`).
    pub owner: HashMap<u32, (u32, String, String)>,
    /// Sequence OID → (data type, the `START WITH … CYCLE` options).
    pub opts: HashMap<u32, (String, String)>,
}

/// Read sequence ownership and options.
pub(super) async fn sequences(conn: &mut Conn) -> Result<Sequences, EngineError> {
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
    let mut seqs = Sequences::default();
    for r in &rows {
        let r = Cells::new(r, "sequence", 0);
        seqs.owner
            .insert(r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?));
    }
    let rows = query(
        conn,
        "SELECT seqrelid, pg_catalog.format_type(seqtypid, NULL), seqstart, seqincrement, seqmin, seqmax, seqcache, seqcycle
           FROM pg_catalog.pg_sequence",
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "sequence", 0);
        let opts = format!(
            "START WITH {}\n    INCREMENT BY {}\n    MINVALUE {}\n    MAXVALUE {}\n    CACHE {}\n    {}",
            r.get::<i64>(2)?,
            r.get::<i64>(3)?,
            r.get::<i64>(4)?,
            r.get::<i64>(5)?,
            r.get::<i64>(6)?,
            if r.get::<bool>(7)? {
                "CYCLE"
            } else {
                "NO CYCLE"
            }
        );
        seqs.opts.insert(r.get(0)?, (r.get(1)?, opts));
    }
    Ok(seqs)
}

/// Sequences that belong to a column: identity sequences become `ALTER TABLE … ADD
/// GENERATED … AS IDENTITY` statements of their table (returned by table, sorted); `OWNED
/// BY` sequences get an `ALTER SEQUENCE … OWNED BY` object (rank 8, `O<seq>`).
pub(super) fn sequence_ownership(
    seqs: &Sequences,
    rels: &BTreeMap<u32, Rel>,
    columns: &HashMap<u32, Vec<Column>>,
    pre: &mut PreData,
) -> HashMap<u32, Vec<String>> {
    let mut identity_stmts: HashMap<u32, Vec<String>> = HashMap::new();
    for (seq, (table, col, deptype)) in &seqs.owner {
        let (Some(seq_rel), Some(table_rel)) = (rels.get(seq), rels.get(table)) else {
            continue;
        };
        let tname = &table_rel.name;
        let Some((ty, opts)) = seqs.opts.get(seq) else {
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
            // The sequence's persistence only where it differs from its table's (pg_dump's
            // `dumpSequence`): an identity sequence is created as logged or unlogged as its
            // table otherwise.
            let persistence = if seq_rel.persistence == table_rel.persistence {
                ""
            } else if seq_rel.persistence == "u" {
                "    UNLOGGED\n"
            } else {
                "    LOGGED\n"
            };
            let mut stmt = format!(
                "ALTER TABLE ONLY {tname} ALTER COLUMN {col} ADD GENERATED {kind} AS IDENTITY (\n    SEQUENCE NAME {}\n{persistence}    {opts}\n);\n",
                seq_rel.name
            );
            if column.is_some_and(|c| &c.ty != ty) {
                let _ = writeln!(stmt, "ALTER SEQUENCE {} AS {ty};", seq_rel.name);
            }
            identity_stmts.entry(*table).or_default().push(stmt);
            // A reference to the identity sequence is a reference to its table.
            pre.aliases.insert(format!("R{seq}"), format!("R{table}"));
        } else {
            pre.insert(
                format!("O{seq}"),
                8,
                seq_rel.sort.clone(),
                format!("ALTER SEQUENCE {} OWNED BY {tname}.{col};\n", seq_rel.name),
            );
        }
    }
    for stmts in identity_stmts.values_mut() {
        stmts.sort(); // deterministic output (the owner map is a HashMap)
    }
    identity_stmts
}

/// What [`relations`] leaves for later: the populated materialized views (key, OID, name),
/// refreshed after the data, the real definitions of views created in two steps, run
/// after the key constraints, and the keys of the materialized views created only after the
/// key constraints ([`postponed`]).
pub(super) struct Relations {
    pub matviews: Vec<(String, u32, String)>,
    pub views_after_keys: Vec<String>,
    pub matviews_after_keys: BTreeSet<String>,
}

/// The `CREATE` statements of every relation: sequences (rank 4), tables (5), views (6),
/// materialized views `WITH NO DATA` (7); a table whose `CREATE TABLE` runs path-dependent
/// code under its owner's path (see `catalog/loadcode.rs`); a view that needs a key as a
/// stand-in ([`view_in_two_steps`]); a materialized view that needs a key marked to be
/// created after the keys ([`postponed`]: one cannot be replaced like a view). Returns what
/// is left for later ([`Relations`]).
pub(super) async fn relations(
    conn: &mut Conn,
    tables: &Tables<'_>,
    seqs: &Sequences,
    code: &LoadCode,
    pre: &mut PreData,
) -> Result<Relations, EngineError> {
    let mut matviews = Vec::new();
    let mut views_after_keys = Vec::new();
    let mut matviews_after_keys = BTreeSet::new();
    let on_keys = views_on_constraints(conn).await?;
    for rel in tables.rels.values() {
        let key = format!("R{}", rel.oid);
        let cols = tables.columns.get(&rel.oid).cloned().unwrap_or_default();
        let (rank, sql) = match rel.kind.as_str() {
            "S" => match sequence_ddl(rel, seqs) {
                Some(sql) => (4, sql),
                None => continue,
            },
            "r" | "p" => (5, table_sql(rel, tables, code)),
            "v" if on_keys.contains(&rel.oid) => {
                let (dummy, real) = view_in_two_steps(conn, rel, &cols).await?;
                views_after_keys.push((rel.sort.clone(), real));
                (6, dummy)
            }
            "v" => (6, view_ddl(conn, rel, &cols).await?),
            "m" => {
                if rel.populated {
                    matviews.push((key.clone(), rel.oid, rel.name.clone()));
                }
                if on_keys.contains(&rel.oid) {
                    matviews_after_keys.insert(key.clone());
                }
                (7, matview_ddl(conn, rel, &cols).await?)
            }
            _ => continue,
        };
        pre.insert(key, rank, rel.sort.clone(), sql);
    }
    views_after_keys.sort();
    Ok(Relations {
        matviews,
        views_after_keys: views_after_keys.into_iter().map(|(_, s)| s).collect(),
        matviews_after_keys,
    })
}

/// The pre-data statements of table `rel` ([`table_ddl`]), under its owner's `search_path`
/// when creating it runs path-dependent code (`catalog/loadcode.rs`).
pub(super) fn table_sql(rel: &Rel, tables: &Tables<'_>, code: &LoadCode) -> String {
    let ddl = table_ddl(rel, tables);
    match code.tables.get(&rel.oid) {
        Some(owner) => code.paths.wrap(owner, &ddl),
        None => ddl,
    }
}

/// `CREATE SEQUENCE` of a sequence that is not an identity sequence (those come with their
/// column); `None` for identity sequences and sequences without options.
fn sequence_ddl(rel: &Rel, seqs: &Sequences) -> Option<String> {
    if seqs.owner.get(&rel.oid).is_some_and(|o| o.2 == "i") {
        return None; // created by its identity column
    }
    let (ty, opts) = seqs.opts.get(&rel.oid)?;
    let unlogged = if rel.persistence == "u" {
        "UNLOGGED "
    } else {
        ""
    };
    Some(format!(
        "CREATE {unlogged}SEQUENCE {}\n    AS {ty}\n    {opts};\n",
        rel.name
    ))
}

/// `CREATE VIEW` with its options, check option and column defaults.
/// The views and materialized views whose query is valid only through a constraint
/// (`pg_depend` from their `_RETURN` rule to `pg_constraint`): a `GROUP BY` of a primary key
/// that selects the table's other columns (functional dependency).
async fn views_on_constraints(conn: &mut Conn) -> Result<HashSet<u32>, EngineError> {
    let rows = query(
        conn,
        "SELECT DISTINCT r.ev_class FROM pg_catalog.pg_depend d
           JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
          WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
            AND d.refclassid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
            AND r.rulename = '_RETURN'",
        &[],
    )
    .await?;
    Ok(read_all(&rows, "view", 0, |r| r.get(0))?
        .into_iter()
        .collect())
}

/// The functions (keys `P<oid>`) whose `BEGIN ATOMIC` body is valid only through a constraint
/// of a table — `pg_depend` from the function to a primary key, unique or exclusion
/// constraint or a foreign key (post-data objects): a `GROUP BY` of a primary key that selects
/// the table's other columns. Created before the key, the function fails ("column … must
/// appear in the GROUP BY clause"); [`postponed`] moves them after the keys.
///
/// # Errors
///
/// A classified catalog error.
pub(super) async fn functions_on_constraints(
    conn: &mut Conn,
) -> Result<BTreeSet<String>, EngineError> {
    let rows = query(
        conn,
        "SELECT DISTINCT 'P' || d.objid FROM pg_catalog.pg_depend d
           JOIN pg_catalog.pg_constraint con ON con.oid = d.refobjid
          WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
            AND d.refclassid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
            AND con.conrelid <> 0 AND con.contype <> 'c'",
        &[],
    )
    .await?;
    Ok(read_all(&rows, "function", 0, |r| r.get(0))?
        .into_iter()
        .collect())
}

/// A view valid only once a constraint exists (see [`views_on_constraints`]), which is
/// post-data: in pre-data a stand-in of the same columns (`SELECT NULL::type AS column, …`,
/// so what uses the view can be created), and after the keys `CREATE OR REPLACE VIEW` with
/// the real query — pg_dump's two steps (`createDummyViewAsClause`, the `_RETURN` rule moved
/// to post-data in `repairViewRuleMultiLoop`). Returns (stand-in, real definition).
async fn view_in_two_steps(
    conn: &mut Conn,
    rel: &Rel,
    cols: &[Column],
) -> Result<(String, String), EngineError> {
    let def = view_def(conn, rel).await?;
    let (opts, check) = view_options(&rel.reloptions);
    let columns: Vec<String> = cols
        .iter()
        .map(|c| {
            let collate = c
                .collation
                .as_ref()
                .map_or_else(String::new, |name| format!(" COLLATE {name}"));
            format!("\n    NULL::{}{collate} AS {}", c.ty, c.name)
        })
        .collect();
    let mut dummy = format!(
        "CREATE VIEW {}{opts} AS\nSELECT{};\n",
        rel.name,
        columns.join(",")
    );
    for c in cols.iter().filter(|c| c.default.is_some()) {
        let _ = writeln!(
            dummy,
            "ALTER VIEW {} ALTER COLUMN {} SET DEFAULT {};",
            rel.name,
            c.name,
            c.default.as_deref().unwrap_or_default()
        );
    }
    let replace = format!(
        "CREATE OR REPLACE VIEW {}{opts} AS\n{def}{check};\n",
        rel.name
    );
    Ok((dummy, replace))
}

async fn view_ddl(conn: &mut Conn, rel: &Rel, cols: &[Column]) -> Result<String, EngineError> {
    let def = view_def(conn, rel).await?;
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
    Ok(s)
}

/// `CREATE MATERIALIZED VIEW … WITH NO DATA` with its options and per-column settings.
async fn matview_ddl(conn: &mut Conn, rel: &Rel, cols: &[Column]) -> Result<String, EngineError> {
    let def = view_def(conn, rel).await?;
    let (opts, _) = view_options(&rel.reloptions);
    let using = rel
        .access_method
        .as_ref()
        .map_or_else(String::new, |am| format!(" USING {am}"));
    let mut s = format!(
        "CREATE MATERIALIZED VIEW {}{using}{opts} AS\n{def}\n  WITH NO DATA;\n",
        rel.name
    );
    for c in cols {
        for setting in &c.settings {
            let _ = writeln!(
                s,
                "ALTER MATERIALIZED VIEW {} ALTER COLUMN {} {setting};",
                rel.name, c.name
            );
        }
    }
    Ok(s)
}

/// The view's query from `pg_get_viewdef`, without its trailing `;`.
///
/// # Errors
///
/// A classified query error; [`ErrorKind::Protocol`] naming the view when the server has no
/// definition for it (`pg_get_viewdef` answers NULL when the view's `_RETURN` rule is gone).
async fn view_def(conn: &mut Conn, rel: &Rel) -> Result<String, EngineError> {
    let kind = if rel.kind == "m" {
        "materialized view"
    } else {
        "view"
    };
    let object = format!("{kind} {}", rel.name);
    match conn
        .client
        .query_one(
            "SELECT pg_catalog.pg_get_viewdef($1::pg_catalog.oid)",
            &[&rel.oid],
        )
        .await
    {
        Ok(row) => {
            let def: String = Cells::about(&row, &object).get(0)?;
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

/// A dependency between pre-data objects: (dependent key, key it depends on).
pub(super) type Dep = (String, String);

/// The keys of `pre` in creation order: dependencies from `pg_depend` (normal and automatic;
/// extension members stand for their extension), `OWNED BY` objects after their sequence and
/// table, the tables' column defaults and checks as objects of their own
/// (`catalog/cycles.rs`, added to `pre` with empty statements), then [`cycles::order`], which
/// separates a default or check that a cycle runs through. Also returns the parts it read
/// (separated or not).
///
/// # Errors
///
/// A catalog error, or [`ErrorKind::Unsupported`] for a dependency cycle no default or check
/// can break.
pub(super) async fn dependency_order(
    conn: &mut Conn,
    pre: &mut PreData,
    seqs: &Sequences,
    rels: &BTreeMap<u32, Rel>,
    code: &LoadCode,
) -> Result<(cycles::Ordered, BTreeMap<String, cycles::Part>), EngineError> {
    let (parts, after_data) = cycles::load(conn, rels, code, pre).await?;
    cycles::add_objects(pre, &parts, rels);
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
        let r = Cells::new(r, "extension member", 0);
        if let Some(a) = r.get::<Option<String>>(0)? {
            let ext: String = r.get(1)?;
            pre.aliases.entry(a).or_insert(ext);
        }
    }
    let canon = |k: &str| pre.aliases.get(k).cloned().unwrap_or_else(|| k.to_owned());
    let mut deps: Vec<(String, String)> = Vec::new();
    for r in &dep_rows {
        let r = Cells::new(r, "dependency of pre-data object", 0);
        let (Some(a), Some(b)) = (r.get::<Option<String>>(0)?, r.get::<Option<String>>(1)?) else {
            continue;
        };
        if after_data.contains(&a) || after_data.contains(&b) {
            continue; // a check added after the data (`catalog/loadcode.rs`)
        }
        deps.push((canon(&a), canon(&b)));
    }
    // A base type and its I/O functions depend on each other; the functions need only the
    // type's shell, which comes before them (pg_dump's `dumpShellType`), and the full
    // `CREATE TYPE` after them. Only the functions the type itself names are redirected.
    let pairs: HashSet<(String, String)> = deps.iter().cloned().collect();
    for (a, b) in &mut deps {
        if a.starts_with('P')
            && pre.shells.contains(b.as_str())
            && pairs.contains(&(b.clone(), a.clone()))
        {
            *b = format!("S{}", &b[1..]);
        }
    }
    for key in &pre.shells {
        deps.push((key.clone(), format!("S{}", &key[1..])));
    }
    for key in pre.objs.keys().filter(|k| k.starts_with('O')) {
        let seq = &key[1..];
        if let Ok(seq) = seq.parse::<u32>() {
            deps.push((key.clone(), format!("R{seq}")));
            if let Some((table, _, _)) = seqs.owner.get(&seq) {
                deps.push((key.clone(), format!("R{table}")));
            }
        }
    }
    let nodes: BTreeMap<String, (String, cycles::PartKind)> = parts
        .iter()
        .map(|(k, p)| (k.clone(), (format!("R{}", p.table), p.kind)))
        .collect();
    let ordered = cycles::order(&pre.objs, &nodes, &deps)?;
    Ok((ordered, parts))
}

/// The pre-data objects created after the key constraints instead: the materialized views
/// valid only through a key (see [`views_on_constraints`]) and the functions whose `BEGIN
/// ATOMIC` body is (see [`functions_on_constraints`]) — the `seeds` — and every object that
/// depends on one of them, directly or not (`deps`). pg_dump does the same: a materialized
/// view cannot be created as a stand-in and replaced later like a view, so it moves whole
/// into post-data (`repairMatViewBoundaryMultiLoop` in pg_dump_sort.c sets its
/// `postponed_def`), and so does such a function (`repairFunctionBoundaryMultiLoop`); what
/// uses them follows. The restore creates them, in dependency order, right after the keys.
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] naming an object other than a view, a materialized view or a
/// function that would have to move (a table: its rows are loaded before post-data).
pub(super) fn postponed(
    objs: &BTreeMap<String, PreObj>,
    deps: &[Dep],
    seeds: &BTreeSet<String>,
) -> Result<BTreeSet<String>, EngineError> {
    let mut dependents: HashMap<&str, Vec<&str>> = HashMap::new();
    for (a, b) in deps {
        dependents.entry(b.as_str()).or_default().push(a.as_str());
    }
    let mut out: BTreeSet<String> = seeds.clone();
    let mut todo: Vec<String> = seeds.iter().cloned().collect();
    while let Some(key) = todo.pop() {
        for next in dependents.get(key.as_str()).into_iter().flatten() {
            if objs.contains_key(*next) && out.insert((*next).to_owned()) {
                todo.push((*next).to_owned());
            }
        }
    }
    // Views (rank 6), materialized views (7) and functions may move; nothing else.
    let stuck: Vec<String> = out
        .iter()
        .filter_map(|k| objs.get(k).map(|o| (k, o)))
        .filter(|(k, o)| !(k.starts_with('P') || (k.starts_with('R') && matches!(o.rank, 6 | 7))))
        .map(|(_, o)| o.sort.clone())
        .collect();
    if let Some(first) = stuck.first() {
        return Err(EngineError::new(
            ErrorKind::Unsupported,
            format!(
                "depends on a materialized view or a function that is valid only through a key \
                 constraint, so it would have to be created after the data: {}",
                stuck.join(", ")
            ),
        )
        .with_object(first.clone()));
    }
    Ok(out)
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
        let (order, stuck) = cycles::kahn(&objs, &deps);
        assert_eq!(order, vec!["N4", "T1", "T2", "R3"]);
        assert!(stuck.is_empty());
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
        let err = cycles::order(&objs, &BTreeMap::new(), &deps).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(
            err.message().contains("public.f()") && err.message().contains("public.t"),
            "{err}"
        );
    }

    #[test]
    fn postponed_takes_what_depends_on_the_seeds() {
        let mut objs = BTreeMap::new();
        objs.insert("R1".to_owned(), obj(5, "public.t"));
        objs.insert("R2".to_owned(), obj(7, "public.mv_on_key"));
        objs.insert("R3".to_owned(), obj(6, "public.view_on_mv"));
        objs.insert("R4".to_owned(), obj(7, "public.mv_on_view"));
        objs.insert("R5".to_owned(), obj(6, "public.other_view"));
        let deps = vec![
            ("R2".to_owned(), "R1".to_owned()),
            ("R3".to_owned(), "R2".to_owned()),
            ("R4".to_owned(), "R3".to_owned()),
            ("R5".to_owned(), "R1".to_owned()),
        ];
        let seeds = BTreeSet::from(["R2".to_owned()]);
        let moved = postponed(&objs, &deps, &seeds).unwrap();
        assert_eq!(
            moved.into_iter().collect::<Vec<_>>(),
            vec!["R2", "R3", "R4"]
        );
        // A table that would have to follow is refused by name.
        objs.insert("R6".to_owned(), obj(5, "public.t_on_mv"));
        let deps = [deps, vec![("R6".to_owned(), "R4".to_owned())]].concat();
        let err = postponed(&objs, &deps, &seeds).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.message().contains("public.t_on_mv"), "{err}");
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
