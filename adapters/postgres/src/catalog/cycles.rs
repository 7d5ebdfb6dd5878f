//! Dependency cycles through a table's column defaults and `CHECK` constraints, broken the way
//! pg_dump breaks them (issue 18).
//!
//! A column default or a `CHECK` constraint is written inside its table's `CREATE TABLE`, so
//! everything it depends on must exist before the table. When what it depends on depends on
//! the table in turn — a function with a `BEGIN ATOMIC` body that reads the table, used as the
//! table's default — the objects form a cycle. pg_dump keeps each default and check as an
//! object of its own that the table depends on while it is written inline, and when a loop
//! runs through one of them it writes it apart, after the table (`repairDependencyLoop` in
//! pg_dump_sort.c of PostgreSQL 15: `repairTableConstraintMultiLoop`, then
//! `repairTableAttrDefMultiLoop`):
//!
//! ```sql
//! CREATE TABLE public.t (id integer NOT NULL, n integer);
//! CREATE FUNCTION public.next_n() … BEGIN ATOMIC SELECT … FROM public.t; END;
//! ALTER TABLE ONLY public.t ALTER COLUMN n SET DEFAULT public.next_n();
//! ```
//!
//! The same here: [`Part`]s are nodes of the dependency graph (keys `d<pg_attrdef oid>` and
//! `c<pg_constraint oid>`), the table depends on each inline part, and [`order`] separates a
//! part whenever a cycle holds both it and its table. A `CHECK` constraint that calls a user
//! function (`catalog/loadcode.rs`) or is `NOT VALID` is added after the data anyway, so its
//! dependencies do not constrain the pre-data order at all. A cycle without such a part (a domain whose default
//! reads a table that has a column of the domain) is refused by name, as before.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use exporter_contract::{EngineError, ErrorKind};

use super::loadcode::LoadCode;
use super::pre::{Dep, PreData, PreObj, table_sql};
use super::query;
use super::table::{Checks, Column, Rel, Tables};
use crate::cells::Cells;
use crate::connect::Conn;

/// Which part of a table a [`Part`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PartKind {
    /// A column default (`pg_attrdef`).
    Default,
    /// A `CHECK` constraint (`pg_constraint`, `contype = 'c'`) defined on the table itself.
    Check,
}

/// A column default or a local `CHECK` constraint of a table the dump creates, which can be
/// written apart from its `CREATE TABLE` (pg_dump's `AttrDefInfo` / `ConstraintInfo` with
/// `separate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Part {
    /// The table's `pg_class` OID.
    pub table: u32,
    /// Default or check.
    pub kind: PartKind,
    /// The column's or the constraint's name, quoted.
    pub name: String,
    /// The default expression (`pg_get_expr`) or the constraint (`pg_get_constraintdef`).
    pub def: String,
}

impl Part {
    /// The statement that adds the part to its table `table` (quoted) once it exists, as
    /// pg_dump's `dumpAttrDef` and `dumpConstraint` write a separate one.
    #[must_use]
    pub fn statement(&self, table: &str) -> String {
        match self.kind {
            PartKind::Default => format!(
                "ALTER TABLE ONLY {table} ALTER COLUMN {} SET DEFAULT {};\n",
                self.name, self.def
            ),
            // No ONLY: inheritance children carry the constraint too, as in the source.
            PartKind::Check => format!(
                "ALTER TABLE {table} ADD CONSTRAINT {} {};\n",
                self.name, self.def
            ),
        }
    }

    /// How errors and the ordering name the part: `public.t default n`, `public.t check c`.
    fn describe(&self, table_sort: &str) -> String {
        let word = match self.kind {
            PartKind::Default => "default",
            PartKind::Check => "check",
        };
        format!("{table_sort} {word} {}", self.name)
    }
}

/// The parts of the tables `rels` holds (ordinary and partitioned tables), by key, read from
/// the catalog; the keys of the parts that stay with their table for good are aliased to it
/// in `pre` (a generated column's expression, an inherited check, the default of a view or a
/// foreign table), and the keys of the checks added after the data — `NOT VALID` ones
/// (`table::load_checks`) and those `code` defers — are returned apart: their dependencies do
/// not constrain the pre-data order.
///
/// # Errors
///
/// A classified catalog error.
pub(super) async fn load(
    conn: &mut Conn,
    rels: &BTreeMap<u32, Rel>,
    code: &LoadCode,
    pre: &mut PreData,
) -> Result<(BTreeMap<String, Part>, HashSet<String>), EngineError> {
    let rows = query(
        conn,
        "SELECT 'd' || ad.oid, ad.adrelid, pg_catalog.quote_ident(a.attname),
                pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), a.attgenerated = '', ad.oid, false
           FROM pg_catalog.pg_attrdef ad
           JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
         UNION ALL
         SELECT 'c' || con.oid, con.conrelid, pg_catalog.quote_ident(con.conname),
                pg_catalog.pg_get_constraintdef(con.oid), con.conislocal, con.oid, NOT con.convalidated
           FROM pg_catalog.pg_constraint con WHERE con.contype = 'c' AND con.conrelid <> 0",
        &[],
    )
    .await?;
    let mut parts = BTreeMap::new();
    let mut after_data = HashSet::new();
    for r in &rows {
        let r = Cells::new(r, "column default or check constraint", 2);
        let key: String = r.get(0)?;
        let table: u32 = r.get(1)?;
        let splittable: bool = r.get(4)?;
        let oid: u32 = r.get(5)?;
        let kind = if key.starts_with('d') {
            PartKind::Default
        } else {
            PartKind::Check
        };
        let not_valid: bool = r.get(6)?;
        if kind == PartKind::Check && (not_valid || code.is_deferred(oid)) {
            after_data.insert(key);
            continue;
        }
        let is_table = rels
            .get(&table)
            .is_some_and(|rel| matches!(rel.kind.as_str(), "r" | "p"));
        if splittable && is_table && pre.objs.contains_key(&format!("R{table}")) {
            parts.insert(
                key,
                Part {
                    table,
                    kind,
                    name: r.get(2)?,
                    def: r.get(3)?,
                },
            );
        } else {
            let owner = format!("R{table}");
            let owner = pre.aliases.get(&owner).cloned().unwrap_or(owner);
            pre.aliases.entry(key).or_insert(owner);
        }
    }
    Ok((parts, after_data))
}

/// The outcome of [`order`].
#[derive(Debug)]
pub(super) struct Ordered {
    /// Every object's key, parts included, in creation order.
    pub keys: Vec<String>,
    /// The dependencies the order follows, with each part's tie to its table as it ended.
    pub deps: Vec<Dep>,
    /// The keys of the parts written apart from their table.
    pub separated: BTreeSet<String>,
}

/// The creation order of `objs` and `parts` under `deps` (dependent, dependency): each part
/// inline (its table depends on it) until a cycle holds both the part and its table; then it
/// is separated (it depends on its table), checks before defaults, one part per cycle, as
/// pg_dump's `repairDependencyLoop` does. Among ready objects the lowest (rank, name) goes
/// first. A part's own automatic dependency on its table is left out while it is inline
/// (pg_dump's `repairTableAttrDefLoop`).
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] naming the objects of a cycle no part of which can be
/// separated.
pub(super) fn order(
    objs: &BTreeMap<String, PreObj>,
    parts: &BTreeMap<String, (String, PartKind)>,
    deps: &[Dep],
) -> Result<Ordered, EngineError> {
    let base: Vec<Dep> = deps
        .iter()
        .filter(|(a, b)| parts.get(a).is_none_or(|(table, _)| table != b))
        .cloned()
        .collect();
    let mut separated: BTreeSet<String> = BTreeSet::new();
    loop {
        let mut all = base.clone();
        for (key, (table, _)) in parts {
            if separated.contains(key) {
                all.push((key.clone(), table.clone()));
            } else {
                all.push((table.clone(), key.clone()));
            }
        }
        let (keys, stuck) = kahn(objs, &all);
        if stuck.is_empty() {
            return Ok(Ordered {
                keys,
                deps: all,
                separated,
            });
        }
        let cycle = find_cycle(&stuck, &all);
        let in_cycle: HashSet<&str> = cycle.iter().map(String::as_str).collect();
        let breakable = [PartKind::Check, PartKind::Default]
            .into_iter()
            .find_map(|wanted| {
                cycle.iter().find(|k| {
                    parts.get(*k).is_some_and(|(table, kind)| {
                        *kind == wanted
                            && in_cycle.contains(table.as_str())
                            && !separated.contains(*k)
                    })
                })
            });
        let Some(key) = breakable else {
            let mut names: Vec<String> = cycle
                .iter()
                .filter_map(|k| objs.get(k).map(|o| o.sort.clone()))
                .collect();
            names.sort();
            return Err(EngineError::new(
                ErrorKind::Unsupported,
                format!(
                    "circular dependency between schema objects: {}",
                    names.join(", ")
                ),
            )
            .with_object(names.first().cloned().unwrap_or_default()));
        };
        separated.insert(key.clone());
    }
}

/// Kahn's algorithm over `objs` (dependencies on keys that are not objects are ignored):
/// the keys in order, lowest (rank, name) first among ready ones, and the keys left over
/// (each in a cycle or after one), sorted.
pub(super) fn kahn(objs: &BTreeMap<String, PreObj>, deps: &[Dep]) -> (Vec<String>, Vec<String>) {
    let mut indeg: HashMap<&str, usize> = objs.keys().map(|k| (k.as_str(), 0)).collect();
    let mut succ: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for (a, b) in deps {
        if a == b || !objs.contains_key(a) || !objs.contains_key(b) || !seen.insert((a, b)) {
            continue;
        }
        let Some(d) = indeg.get_mut(a.as_str()) else {
            continue; // not reached: `a` is a key of `objs`, and `indeg` has them all
        };
        *d += 1;
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
            let Some(d) = indeg.get_mut(next) else {
                continue; // not reached: successors are keys of `objs`
            };
            *d -= 1;
            if *d == 0 {
                ready.insert((objs[*next].rank, objs[*next].sort.as_str(), next));
            }
        }
    }
    let done: HashSet<&str> = out.iter().map(String::as_str).collect();
    let stuck = objs
        .keys()
        .filter(|k| !done.contains(k.as_str()))
        .cloned()
        .collect();
    (out, stuck)
}

/// One cycle among `stuck` (what [`kahn`] left over: each has a dependency among them),
/// found by following the first such dependency from the first key until a key repeats.
fn find_cycle(stuck: &[String], deps: &[Dep]) -> Vec<String> {
    let left: HashSet<&str> = stuck.iter().map(String::as_str).collect();
    let mut next: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (a, b) in deps {
        if a != b && left.contains(a.as_str()) && left.contains(b.as_str()) {
            next.entry(a.as_str()).or_default().insert(b.as_str());
        }
    }
    let mut path: Vec<&str> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    let mut key = stuck.first().map_or("", String::as_str);
    loop {
        if let Some(&start) = at.get(key) {
            return path[start..].iter().map(|k| (*k).to_owned()).collect();
        }
        at.insert(key, path.len());
        path.push(key);
        match next.get(key).and_then(|n| n.first()) {
            Some(n) => key = n,
            // Not reached for what `kahn` leaves over; name what was walked.
            None => return path.iter().map(|k| (*k).to_owned()).collect(),
        }
    }
}

/// Write the separated parts apart: each part's key becomes an object of `pre` (rank 5, after
/// its table) holding its `ALTER TABLE` statement, and the `CREATE TABLE` of each table that
/// lost a part — and of each table inheriting from one, whose inherited default is no longer
/// its parent's at creation (`table::column_items` compares them) — is written again without
/// it (`table_sql`). Parts that stay inline keep an empty object: nothing is written for them.
pub(super) fn write_apart(
    pre: &mut PreData,
    parts: &BTreeMap<String, Part>,
    separated: &BTreeSet<String>,
    tables: &Tables<'_>,
    code: &LoadCode,
) {
    if separated.is_empty() {
        return;
    }
    let mut columns: HashMap<u32, Vec<Column>> = tables.columns.clone();
    let mut checks = Checks {
        local: tables.checks.local.clone(),
        inherited: tables.checks.inherited.clone(),
        not_valid: Vec::new(),
    };
    let mut changed: BTreeSet<u32> = BTreeSet::new();
    for key in separated {
        let Some(part) = parts.get(key) else { continue };
        let Some(rel) = tables.rels.get(&part.table) else {
            continue;
        };
        match part.kind {
            PartKind::Default => {
                for c in columns.get_mut(&part.table).into_iter().flatten() {
                    if c.name == part.name {
                        c.default = None;
                    }
                }
            }
            PartKind::Check => {
                let item = format!("    CONSTRAINT {} {}", part.name, part.def);
                if let Some(items) = checks.local.get_mut(&part.table) {
                    items.retain(|i| *i != item);
                }
            }
        }
        changed.insert(part.table);
        if let Some(obj) = pre.objs.get_mut(key) {
            obj.sql = part.statement(&rel.name);
        }
    }
    let children: Vec<u32> = tables
        .parents
        .iter()
        .filter(|(_, ps)| ps.iter().any(|p| changed.contains(p)))
        .map(|(child, _)| *child)
        .collect();
    changed.extend(children);
    let ctx = Tables {
        rels: tables.rels,
        columns: &columns,
        parents: tables.parents,
        checks: &checks,
        identity: tables.identity,
    };
    for oid in changed {
        let Some(rel) = tables.rels.get(&oid) else {
            continue;
        };
        if !matches!(rel.kind.as_str(), "r" | "p") {
            continue;
        }
        if let Some(obj) = pre.objs.get_mut(&format!("R{oid}"))
            && !obj.sql.is_empty()
        {
            obj.sql = table_sql(rel, &ctx, code);
        }
    }
}

/// Add an empty object for each part (rank 5, named after its table) so [`order`] can place
/// it; [`write_apart`] gives the separated ones their statement.
pub(super) fn add_objects(
    pre: &mut PreData,
    parts: &BTreeMap<String, Part>,
    rels: &BTreeMap<u32, Rel>,
) {
    for (key, part) in parts {
        let sort = rels
            .get(&part.table)
            .map_or_else(String::new, |r| part.describe(&r.sort));
        pre.insert(key.clone(), 5, sort, String::new());
    }
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

    fn dep(a: &str, b: &str) -> Dep {
        (a.to_owned(), b.to_owned())
    }

    /// The issue's schema: table `t`, its default `next_n()` whose `BEGIN ATOMIC` body reads
    /// `t`, and a check on `t`.
    fn issue_18() -> (
        BTreeMap<String, PreObj>,
        BTreeMap<String, (String, PartKind)>,
    ) {
        let mut objs = BTreeMap::new();
        objs.insert("R1".to_owned(), obj(5, "public.t"));
        objs.insert("P2".to_owned(), obj(3, "public.next_n()"));
        objs.insert("d3".to_owned(), obj(5, "public.t default n"));
        objs.insert("c4".to_owned(), obj(5, "public.t check t_n_check"));
        let parts = BTreeMap::from([
            ("d3".to_owned(), ("R1".to_owned(), PartKind::Default)),
            ("c4".to_owned(), ("R1".to_owned(), PartKind::Check)),
        ]);
        (objs, parts)
    }

    #[test]
    fn a_default_in_a_cycle_is_separated_and_follows_function_and_table() {
        let (objs, parts) = issue_18();
        // default -> function -> table (BEGIN ATOMIC body), default -> table (automatic).
        let deps = vec![dep("d3", "P2"), dep("P2", "R1"), dep("d3", "R1")];
        let out = order(&objs, &parts, &deps).unwrap();
        assert_eq!(out.separated, BTreeSet::from(["d3".to_owned()]));
        assert_eq!(out.keys, vec!["c4", "R1", "P2", "d3"]);
        assert!(out.deps.contains(&dep("d3", "R1")), "{:?}", out.deps);
        assert!(!out.deps.contains(&dep("R1", "d3")), "{:?}", out.deps);
    }

    #[test]
    fn a_check_goes_before_a_default_when_both_could_break_the_cycle() {
        let (objs, parts) = issue_18();
        let deps = vec![
            dep("d3", "P2"),
            dep("c4", "P2"),
            dep("P2", "R1"),
            dep("c4", "R1"),
        ];
        let out = order(&objs, &parts, &deps).unwrap();
        assert_eq!(
            out.separated,
            BTreeSet::from(["c4".to_owned(), "d3".to_owned()])
        );
        let pos = |k: &str| out.keys.iter().position(|x| x == k).unwrap();
        assert!(pos("R1") < pos("P2") && pos("P2") < pos("d3") && pos("P2") < pos("c4"));
    }

    #[test]
    fn parts_outside_any_cycle_stay_inline_before_their_table() {
        let (objs, parts) = issue_18();
        // The function reads another table: no cycle.
        let deps = vec![dep("d3", "P2"), dep("d3", "R1")];
        let out = order(&objs, &parts, &deps).unwrap();
        assert!(out.separated.is_empty());
        assert_eq!(out.keys, vec!["P2", "c4", "d3", "R1"]);
    }

    #[test]
    fn a_cycle_without_a_part_is_refused_by_name() {
        let mut objs = BTreeMap::new();
        objs.insert("T1".to_owned(), obj(2, "public.d"));
        objs.insert("P2".to_owned(), obj(3, "public.f()"));
        objs.insert("R3".to_owned(), obj(5, "public.t"));
        objs.insert("R4".to_owned(), obj(5, "public.u_after"));
        // domain default -> function -> table -> column of the domain; u_after only follows.
        let deps = vec![
            dep("T1", "P2"),
            dep("P2", "R3"),
            dep("R3", "T1"),
            dep("R4", "R3"),
        ];
        let err = order(&objs, &BTreeMap::new(), &deps).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert_eq!(
            err.message(),
            "circular dependency between schema objects: public.d, public.f(), public.t"
        );
    }

    #[test]
    fn statements_are_pg_dumps() {
        let d = Part {
            table: 1,
            kind: PartKind::Default,
            name: "n".to_owned(),
            def: "public.next_n()".to_owned(),
        };
        assert_eq!(
            d.statement("public.t"),
            "ALTER TABLE ONLY public.t ALTER COLUMN n SET DEFAULT public.next_n();\n"
        );
        let c = Part {
            table: 1,
            kind: PartKind::Check,
            name: "\"N ok\"".to_owned(),
            def: "CHECK ((n > 0))".to_owned(),
        };
        assert_eq!(
            c.statement("public.t"),
            "ALTER TABLE public.t ADD CONSTRAINT \"N ok\" CHECK ((n > 0));\n"
        );
    }
}
