//! Relations as the DDL needs them: their columns, parents and `CHECK` constraints, and the
//! `CREATE TABLE` statement of a table or partition.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use exporter_contract::EngineError;

use super::loadcode::LoadCode;
use super::{not_ext, query, user_ns};
use crate::cells::Cells;
use crate::connect::Conn;

/// A column as the DDL needs it.
#[derive(Debug, Clone)]
pub(super) struct Column {
    pub name: String,
    pub raw_name: String,
    pub ty: String,
    pub not_null: bool,
    pub local: bool,
    pub generated: String,
    pub identity: String,
    pub default: Option<String>,
    pub collation: Option<String>,
    /// `ALTER COLUMN … <setting>` clauses for per-column settings that differ from the
    /// defaults: `SET STATISTICS n`, `SET STORAGE …`, `SET (attribute_option = …)`,
    /// `SET COMPRESSION …` (pg_dump emits the same, see its `dumpTableSchema`).
    pub settings: Vec<String>,
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
pub(super) struct Rel {
    pub oid: u32,
    pub kind: String,
    pub name: String,
    pub sort: String,
    pub persistence: String,
    pub is_partition: bool,
    pub bound: Option<String>,
    pub partkey: Option<String>,
    /// Storage parameters as stored (`fillfactor=70`), then the TOAST table's prefixed with
    /// `toast.` (`toast.autovacuum_enabled=false`), as pg_dump writes them into `WITH (…)`.
    pub reloptions: Vec<String>,
    pub replident: String,
    pub rls: bool,
    pub force_rls: bool,
    pub populated: bool,
    /// The table access method when it is not `heap` (quoted), for `USING`.
    pub access_method: Option<String>,
    /// A typed table's composite type (`CREATE TABLE … OF type`), schema-qualified.
    pub of_type: Option<String>,
}

/// The columns of every relation and composite type in a user schema, by `pg_class` OID, in
/// `attnum` order.
pub(super) async fn load_columns(
    conn: &mut Conn,
) -> Result<HashMap<u32, Vec<Column>>, EngineError> {
    let nsn = user_ns("n");
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
              WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'c', 'f') AND {nsn}
              ORDER BY a.attrelid, a.attnum"
        ),
        &[],
    )
    .await?;
    let mut columns: HashMap<u32, Vec<Column>> = HashMap::new();
    for r in &rows {
        let r = Cells::new(r, "column", 1);
        columns.entry(r.get(0)?).or_default().push(Column {
            name: r.get(1)?,
            raw_name: r.get(2)?,
            ty: r.get(3)?,
            not_null: r.get(4)?,
            local: r.get(5)?,
            generated: r.get(6)?,
            identity: r.get(7)?,
            default: r.get(8)?,
            collation: r.get(9)?,
            settings: column_settings(r.get(10)?, r.get(11)?, r.get(12)?, r.get(13)?),
        });
    }
    Ok(columns)
}

/// Tables, partitioned tables, views, materialized views and sequences in user schemas
/// (extension members left out), by OID.
pub(super) async fn load_relations(conn: &mut Conn) -> Result<BTreeMap<u32, Rel>, EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT c.oid, c.relkind::text, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname),
                    n.nspname || '.' || c.relname, c.relpersistence::text, c.relispartition,
                    pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                    CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END,
                    COALESCE(c.reloptions, '{{}}') || COALESCE((SELECT pg_catalog.array_agg('toast.' || o.o ORDER BY o.i)
                        FROM pg_catalog.pg_class tc, pg_catalog.unnest(tc.reloptions) WITH ORDINALITY o(o, i)
                       WHERE tc.oid = c.reltoastrelid), '{{}}'), c.relreplident::text, c.relrowsecurity, c.relforcerowsecurity,
                    c.relispopulated,
                    (SELECT pg_catalog.quote_ident(am.amname) FROM pg_catalog.pg_am am
                      WHERE am.oid = c.relam AND am.amname <> 'heap'),
                    CASE WHEN c.reloftype <> 0 THEN pg_catalog.format_type(c.reloftype, NULL) END
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {} AND {}",
            user_ns("n"),
            not_ext("pg_class", "c.oid")
        ),
        &[],
    )
    .await?;
    let mut rels: BTreeMap<u32, Rel> = BTreeMap::new();
    for r in &rows {
        let r = Cells::new(r, "relation", 2);
        let rel = Rel {
            oid: r.get(0)?,
            kind: r.get(1)?,
            name: r.get(2)?,
            sort: r.get(3)?,
            persistence: r.get(4)?,
            is_partition: r.get(5)?,
            bound: r.get(6)?,
            partkey: r.get(7)?,
            reloptions: r.get(8)?,
            replident: r.get(9)?,
            rls: r.get(10)?,
            force_rls: r.get(11)?,
            populated: r.get(12)?,
            access_method: r.get(13)?,
            of_type: r.get(14)?,
        };
        rels.insert(rel.oid, rel);
    }
    Ok(rels)
}

/// Parents of every table (inheritance and partitioning), in `inhseqno` order.
pub(super) async fn load_parents(conn: &mut Conn) -> Result<HashMap<u32, Vec<u32>>, EngineError> {
    let rows = query(
        conn,
        "SELECT i.inhrelid, i.inhparent FROM pg_catalog.pg_inherits i
           JOIN pg_catalog.pg_class p ON p.oid = i.inhparent WHERE p.relkind IN ('r', 'p', 'f')
          ORDER BY i.inhrelid, i.inhseqno",
        &[],
    )
    .await?;
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    for r in &rows {
        let r = Cells::new(r, "inheritance child", 0);
        parents.entry(r.get(0)?).or_default().push(r.get(1)?);
    }
    Ok(parents)
}

/// The `CHECK` constraints of the tables, as `    CONSTRAINT name CHECK (…)` items.
#[derive(Debug, Default)]
pub(super) struct Checks {
    /// Validated checks defined on the table itself, created with it.
    pub local: HashMap<u32, Vec<String>>,
    /// Validated inherited checks, for a partition that must be created on its own and
    /// attached (see [`table_ddl`]): ATTACH PARTITION requires the child to carry the
    /// parent's checks.
    pub inherited: HashMap<u32, Vec<String>>,
    /// `NOT VALID` checks as post-data statements: existing rows may violate them, so they
    /// are added after the data.
    pub not_valid: Vec<String>,
}

/// Read every table `CHECK` constraint (by table, then name), but those `code` adds after
/// the data (they call user functions; inherited copies of them come back with their parent's).
pub(super) async fn load_checks(
    conn: &mut Conn,
    rels: &BTreeMap<u32, Rel>,
    code: &LoadCode,
) -> Result<Checks, EngineError> {
    let rows = query(
        conn,
        "SELECT conrelid, pg_catalog.quote_ident(conname), pg_catalog.pg_get_constraintdef(oid), convalidated, conislocal, oid
           FROM pg_catalog.pg_constraint WHERE contype = 'c' AND conrelid <> 0
          ORDER BY conrelid, conname COLLATE \"C\"",
        &[],
    )
    .await?;
    let mut checks = Checks::default();
    for r in &rows {
        let r = Cells::new(r, "check constraint", 1);
        if code.is_deferred(r.get(5)?) {
            continue;
        }
        let relid: u32 = r.get(0)?;
        let Some(tname) = rels.get(&relid).map(|r| r.name.clone()) else {
            continue;
        };
        let cname: String = r.get(1)?;
        let def: String = r.get(2)?;
        let validated: bool = r.get(3)?;
        if !r.get::<bool>(4)? {
            // inherited: comes with INHERITS / PARTITION OF
            if validated {
                checks
                    .inherited
                    .entry(relid)
                    .or_default()
                    .push(format!("    CONSTRAINT {cname} {def}"));
            }
            continue;
        }
        if validated {
            checks
                .local
                .entry(relid)
                .or_default()
                .push(format!("    CONSTRAINT {cname} {def}"));
        } else {
            // NOT VALID: existing rows may violate it, so it goes after the data (no ONLY:
            // children get their inherited copy as in the source).
            checks.not_valid.push(format!(
                "ALTER TABLE {tname} ADD CONSTRAINT {cname} {def};\n"
            ));
        }
    }
    Ok(checks)
}

/// What [`table_ddl`] needs to know about every table.
pub(super) struct Tables<'a> {
    pub rels: &'a BTreeMap<u32, Rel>,
    pub columns: &'a HashMap<u32, Vec<Column>>,
    pub parents: &'a HashMap<u32, Vec<u32>>,
    pub checks: &'a Checks,
    /// `ALTER TABLE … ADD GENERATED … AS IDENTITY` statements by table.
    pub identity: &'a HashMap<u32, Vec<String>>,
}

/// The statements that create table `rel` (ordinary, partitioned, partition or inheritance
/// child) with its columns, checks, per-column settings and identity columns.
pub(super) fn table_ddl(rel: &Rel, t: &Tables<'_>) -> String {
    let cols = t.columns.get(&rel.oid).cloned().unwrap_or_default();
    let parents: Vec<u32> = t.parents.get(&rel.oid).cloned().unwrap_or_default();
    let identity = t.identity.get(&rel.oid);
    if let Some(s) = attached_partition(rel, &cols, &parents, t, identity) {
        return s;
    }
    create_table(
        rel,
        &cols,
        &parents,
        t.checks.local.get(&rel.oid),
        identity,
        t,
    )
}

/// A partition whose columns are in another order than its parent's (it was created on its
/// own and attached later, or its parent had columns dropped) would get the parent's order
/// from `PARTITION OF`, and its rows would no longer match the dump's COPY lines. Create it
/// on its own with its own order, every check it carries, then attach it — as pg_dump does.
/// ATTACH marks the matching columns and checks inherited again (attislocal, conislocal).
/// `None` for every other table.
fn attached_partition(
    rel: &Rel,
    cols: &[Column],
    parents: &[u32],
    t: &Tables<'_>,
    identity: Option<&Vec<String>>,
) -> Option<String> {
    if !rel.is_partition {
        return None;
    }
    let [parent] = parents else { return None };
    let parent_name = t.rels.get(parent).map(|r| r.name.clone())?;
    let parent_order: Vec<&str> = t
        .columns
        .get(parent)
        .map(|pc| pc.iter().map(|c| c.raw_name.as_str()).collect())
        .unwrap_or_default();
    let my_order: Vec<&str> = cols.iter().map(|c| c.raw_name.as_str()).collect();
    if parent_order == my_order {
        return None;
    }
    let standalone = Rel {
        is_partition: false,
        ..rel.clone()
    };
    let all_checks: Vec<String> = t
        .checks
        .local
        .get(&rel.oid)
        .into_iter()
        .chain(t.checks.inherited.get(&rel.oid))
        .flatten()
        .cloned()
        .collect();
    let mut s = create_table(&standalone, cols, &[], Some(&all_checks), identity, t);
    let _ = writeln!(
        s,
        "ALTER TABLE ONLY {parent_name} ATTACH PARTITION {} {};",
        rel.name,
        rel.bound.as_deref().unwrap_or("DEFAULT")
    );
    Some(s)
}

/// `CREATE TABLE` of `rel` with `parents` (inheritance or the partition's parent), followed
/// by the statements that re-apply what differs locally on inherited columns, per-column
/// settings and identity columns.
fn create_table(
    rel: &Rel,
    cols: &[Column],
    parents: &[u32],
    checks: Option<&Vec<String>>,
    identity: Option<&Vec<String>>,
    t: &Tables<'_>,
) -> String {
    let parent_names: Vec<String> = parents
        .iter()
        .filter_map(|p| t.rels.get(p).map(|r| r.name.clone()))
        .collect();
    let (mut items, after) = column_items(rel, cols, parents, t.columns);
    items.extend(checks.into_iter().flatten().cloned());
    let mut s = create_head(rel, &items, &parent_names);
    if let Some(key) = &rel.partkey {
        let _ = write!(s, "\nPARTITION BY {key}");
    }
    // The script's header sets `default_table_access_method = heap`; another one is named
    // (pg_dump sets the default around the statement instead, to the same effect).
    if let Some(am) = &rel.access_method {
        let _ = write!(s, "\nUSING {am}");
    }
    if !rel.reloptions.is_empty() {
        let _ = write!(s, "\nWITH ({})", rel.reloptions.join(", "));
    }
    s.push_str(";\n");
    // A typed table: created with its columns, then linked to its type, which marks the
    // columns as the type's — what pg_dump does in binary-upgrade mode (`dumpTableSchema`),
    // and the same catalog as `CREATE TABLE … OF type` with `WITH OPTIONS` per column.
    if let Some(ty) = &rel.of_type {
        let _ = writeln!(s, "ALTER TABLE ONLY {} OF {ty};", rel.name);
    }
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

/// The column definitions of `CREATE TABLE` (local columns; none for a partition, whose
/// columns come from its parent), and the `ALTER TABLE ONLY … ALTER COLUMN` statements that
/// re-apply what differs locally on inherited columns (default, `NOT NULL`).
pub(super) fn column_items(
    rel: &Rel,
    cols: &[Column],
    parents: &[u32],
    columns: &HashMap<u32, Vec<Column>>,
) -> (Vec<String>, String) {
    let mut items: Vec<String> = Vec::new();
    let mut after = String::new();
    for c in cols {
        if c.local || parents.is_empty() {
            let mut c = c.clone();
            if !c.identity.is_empty() {
                c.default = None;
            }
            // A generated column of an inheritance child inherits its parent's expression;
            // `CREATE TABLE … INHERITS` refuses to name it again ("child column specifies
            // generation expression"). As pg_dump (`flagInhAttrs`), it is written without
            // the expression when a parent's column is generated by the same one.
            if c.generated == "s"
                && parents
                    .iter()
                    .filter_map(|p| columns.get(p))
                    .flat_map(|pc| pc.iter())
                    .any(|pc| {
                        pc.raw_name == c.raw_name && pc.generated == "s" && pc.default == c.default
                    })
            {
                c.default = None;
            }
            if !rel.is_partition {
                items.push(c.definition());
                continue;
            }
        }
        // Inherited column: it comes from the parent; re-apply what differs locally.
        let parent_col = parents
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
    (items, after)
}

/// `CREATE [UNLOGGED] TABLE name PARTITION OF parent [(items)] bound`, or
/// `CREATE [UNLOGGED] TABLE name (items) [INHERITS (parents)]`, without the final `;`.
fn create_head(rel: &Rel, items: &[String], parent_names: &[String]) -> String {
    let unlogged = if rel.persistence == "u" {
        "UNLOGGED "
    } else {
        ""
    };
    if rel.is_partition {
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
    }
}
