//! Post-data: what is created after the rows are loaded — constraints, indexes, extended
//! statistics, replica identity, foreign keys (after every key exists), triggers, rules,
//! row-level security and policies — and comments.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use exporter_contract::EngineError;

use super::acl::guarded;
use super::loadcode::LoadCode;
use super::table::Rel;
use super::tablespace::Tablespaces;
use super::{FIRST_USER_OID, Plan, not_ext, query, unsupported, user_ns};
use crate::cells::Cells;
use crate::connect::Conn;
use crate::quote::{quote_ident, quote_literal};

/// A statement with the name of the table it belongs to, for sorting by table.
type OnTable = (String, String);

/// Constraints, what needs a key to exist (`after_keys`: materialized views postponed from
/// pre-data and what depends on them, then the real definitions of views created as
/// stand-ins), indexes, the attachment of partitions' indexes to their parents' (after both
/// exist), foreign keys (last, after every key exists), triggers, rules, row-level security,
/// policies and publications, appended to `plan.post` in that order.
///
/// An index (also one behind a constraint) whose expressions or predicate call code that
/// finds objects through the session's path is created under its owner's path (`code`), one
/// in a tablespace with that tablespace as the default (`tablespaces`).
pub(super) async fn post_data(
    conn: &mut Conn,
    rels: &BTreeMap<u32, Rel>,
    code: &LoadCode,
    tablespaces: &Tablespaces,
    after_keys: Vec<String>,
    plan: &mut Plan,
) -> Result<(), EngineError> {
    let (keys, fks) = key_constraints(conn, rels, code, tablespaces).await?;
    let Indexes {
        create,
        attach,
        mut extras,
    } = indexes(conn, rels, code, tablespaces).await?;
    extras.extend(replica_identity(rels));
    let statistics = statistics(conn, rels).await?;
    plan.post.extend(keys.into_iter().map(|(_, s)| s));
    plan.post.extend(after_keys);
    plan.post.extend(create.into_iter().map(|(_, s)| s));
    plan.post.extend(attach.into_iter().map(|(_, s)| s));
    plan.post.extend(statistics);
    plan.post.extend(extras);
    plan.post.extend(fks.into_iter().map(|(_, s)| s));
    plan.post.extend(triggers(conn, rels).await?);
    plan.post.extend(rules(conn, rels).await?);
    plan.post.extend(row_security(rels));
    plan.post.extend(policies(conn, rels).await?);
    plan.post.extend(publications(conn, rels).await?);
    Ok(())
}

/// Primary key, unique and exclusion constraints, and foreign keys, each sorted by table.
///
/// A key is added to its own table alone (`ALTER TABLE ONLY`), also on a partitioned table
/// and on each partition, as pg_dump's `dumpConstraint` writes it: on a partitioned table
/// with partitions that builds an invalid index of the parent alone, and each partition's
/// key (under the name it has in the source, also where the server would choose another)
/// is attached to it by [`indexes`]' `ALTER INDEX … ATTACH PARTITION`, which also links
/// the constraints and makes the parent's index valid once every partition's is attached.
/// A foreign key on a partitioned table recurses (the server clones it onto the
/// partitions; those clones, `conparentid <> 0`, are not dumped).
async fn key_constraints(
    conn: &mut Conn,
    rels: &BTreeMap<u32, Rel>,
    code: &LoadCode,
    tablespaces: &Tablespaces,
) -> Result<(Vec<OnTable>, Vec<OnTable>), EngineError> {
    let rows = query(
        conn,
        "SELECT con.conrelid, pg_catalog.quote_ident(con.conname), con.contype::text, pg_catalog.pg_get_constraintdef(con.oid),
                con.conindid
           FROM pg_catalog.pg_constraint con
          WHERE con.conrelid <> 0
            AND (con.contype IN ('p', 'u', 'x') OR (con.contype = 'f' AND con.conparentid = 0 AND con.conislocal))
          ORDER BY con.contype = 'f', con.conrelid, con.conname COLLATE \"C\"",
        &[],
    )
    .await?;
    let mut keys = Vec::new();
    let mut fks = Vec::new();
    for r in &rows {
        let r = Cells::new(r, "constraint", 1);
        let relid: u32 = r.get(0)?;
        let Some(rel) = rels.get(&relid) else {
            continue;
        };
        let t = rel.name.clone();
        let foreign = r.get::<String>(2)? == "f";
        // A foreign key on a partitioned table must recurse; everything else is the
        // table's own.
        let only = if foreign && rel.kind == "p" {
            ""
        } else {
            "ONLY "
        };
        let mut stmt = format!(
            "ALTER TABLE {only}{t}\n    ADD CONSTRAINT {} {};\n",
            r.get::<String>(1)?,
            r.get::<String>(3)?
        );
        let index: u32 = r.get(4)?;
        if let Some(owner) = code.indexes.get(&index) {
            stmt = code.paths.wrap(owner, &stmt);
        }
        if foreign {
            fks.push((t, stmt));
        } else {
            // A foreign key's `conindid` is the referenced table's index: only a key or
            // exclusion constraint builds an index of its own, in its index's tablespace.
            keys.push((t, tablespaces.wrap(index, &stmt)));
        }
    }
    keys.sort();
    fks.sort();
    Ok((keys, fks))
}

/// What [`indexes`] found.
struct Indexes {
    /// `CREATE INDEX` of the indexes that back no constraint, sorted by table.
    create: Vec<OnTable>,
    /// `ALTER INDEX parent ATTACH PARTITION child;` for every dumped index (also one behind a
    /// key) that is a partition of a dumped partitioned index, sorted by the child's table.
    attach: Vec<OnTable>,
    /// `CLUSTER ON` and `REPLICA IDENTITY USING INDEX` of all indexes.
    extras: Vec<String>,
}

/// Every index as pg_dump writes it (`dumpIndex`, `dumpIndexAttach` in pg_dump.c of
/// PostgreSQL 15; the attachments come from `flagInhIndexes`): an index of a partitioned
/// table is created on that table alone (`CREATE INDEX … ON ONLY`, as `pg_get_indexdef`
/// writes it; invalid while not every partition has its index attached), each partition's
/// index is created on its own under its own name, and then attached to its parent's
/// (`ALTER INDEX … ATTACH PARTITION`), which makes the parent's index valid once every
/// partition's is. So a restore has the same indexes, names and validity as the source —
/// also a partitioned index left invalid on purpose (regression test `indexing`:
/// `idxpart2_a_idx`, `ON ONLY`, whose partition `idxpart21` has no index), which a recursive
/// `CREATE INDEX … ON` would complete. Invalid indexes of plain tables (a failed `CREATE
/// INDEX CONCURRENTLY`) are left out, as pg_dump's `getIndexes` does (`indisvalid OR
/// relkind = 'p'`), with their attachments.
async fn indexes(
    conn: &mut Conn,
    rels: &BTreeMap<u32, Rel>,
    code: &LoadCode,
    tablespaces: &Tablespaces,
) -> Result<Indexes, EngineError> {
    let rows = query(
        conn,
        "SELECT i.indrelid, pg_catalog.pg_get_indexdef(i.indexrelid), pg_catalog.quote_ident(ic.relname),
                i.indisclustered, i.indisreplident,
                EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid
                         AND c.conrelid = i.indrelid AND c.contype IN ('p', 'u', 'x')),
                ic.relkind::text, i.indisvalid AND i.indisready,
                pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(ic.relname), i.indexrelid,
                (SELECT h.inhparent FROM pg_catalog.pg_inherits h WHERE h.inhrelid = i.indexrelid)
           FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
          ORDER BY i.indrelid, ic.relname COLLATE \"C\"",
        &[],
    )
    .await?;
    let mut indexes = Vec::new();
    let mut extras = Vec::new();
    // Dumped indexes by OID → qualified name, and (child OID, parent OID, child's table).
    let mut dumped: HashMap<u32, String> = HashMap::new();
    let mut parents: Vec<(u32, u32, String)> = Vec::new();
    for r in &rows {
        let r = Cells::new(r, "index", 2);
        let relid: u32 = r.get(0)?;
        let Some(rel) = rels.get(&relid) else {
            continue;
        };
        let t = rel.name.clone();
        let backs_constraint: bool = r.get(5)?;
        let relkind: String = r.get(6)?;
        if !r.get::<bool>(7)? && relkind == "i" {
            continue; // an invalid index (failed CREATE INDEX CONCURRENTLY); pg_dump skips it too
        }
        let oid: u32 = r.get(9)?;
        dumped.insert(oid, r.get(8)?);
        if let Some(parent) = r.get::<Option<u32>>(10)? {
            parents.push((oid, parent, t.clone()));
        }
        if !backs_constraint {
            let stmt = format!("{};\n", r.get::<String>(1)?);
            let stmt = match code.indexes.get(&oid) {
                Some(owner) => code.paths.wrap(owner, &stmt),
                None => stmt,
            };
            indexes.push((t.clone(), tablespaces.wrap(oid, &stmt)));
        }
        let short = r.get::<String>(2)?;
        if r.get::<bool>(3)? {
            let alter = if rel.kind == "m" {
                "MATERIALIZED VIEW"
            } else {
                "TABLE"
            };
            extras.push(format!("ALTER {alter} {t} CLUSTER ON {short};\n"));
        }
        if r.get::<bool>(4)? {
            extras.push(format!(
                "ALTER TABLE ONLY {t} REPLICA IDENTITY USING INDEX {short};\n"
            ));
        }
    }
    let mut attach: Vec<OnTable> = parents
        .into_iter()
        .filter_map(|(child, parent, table)| {
            let stmt = format!(
                "ALTER INDEX {} ATTACH PARTITION {};\n",
                dumped.get(&parent)?,
                dumped.get(&child)?
            );
            Some((table, stmt))
        })
        .collect();
    indexes.sort();
    attach.sort();
    Ok(Indexes {
        create: indexes,
        attach,
        extras,
    })
}

/// `REPLICA IDENTITY FULL` / `NOTHING` of tables that have it.
fn replica_identity(rels: &BTreeMap<u32, Rel>) -> Vec<String> {
    let mut out = Vec::new();
    for rel in rels.values().filter(|r| r.kind == "r" || r.kind == "p") {
        match rel.replident.as_str() {
            "f" => out.push(format!(
                "ALTER TABLE ONLY {} REPLICA IDENTITY FULL;\n",
                rel.name
            )),
            "n" => out.push(format!(
                "ALTER TABLE ONLY {} REPLICA IDENTITY NOTHING;\n",
                rel.name
            )),
            _ => {}
        }
    }
    out
}

/// Extended statistics (`CREATE STATISTICS`), after the indexes as pg_dump places them.
async fn statistics(
    conn: &mut Conn,
    rels: &BTreeMap<u32, Rel>,
) -> Result<Vec<String>, EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT s.stxrelid, pg_catalog.pg_get_statisticsobjdef(s.oid),
                    pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(s.stxname),
                    CASE WHEN s.stxstattarget IS NOT NULL AND s.stxstattarget >= 0 THEN s.stxstattarget::int END
               FROM pg_catalog.pg_statistic_ext s JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace
              WHERE {nsn} AND {ext}
              ORDER BY n.nspname COLLATE \"C\", s.stxname COLLATE \"C\"",
            nsn = user_ns("n"),
            ext = not_ext("pg_statistic_ext", "s.oid"),
        ),
        &[],
    )
    .await?;
    let mut statistics = Vec::new();
    for r in &rows {
        let r = Cells::new(r, "statistics object", 2);
        if !rels.contains_key(&r.get::<u32>(0)?) {
            continue;
        }
        let mut s = format!("{};\n", r.get::<String>(1)?);
        if let Some(target) = r.get::<Option<i32>>(3)? {
            let _ = writeln!(
                s,
                "ALTER STATISTICS {} SET STATISTICS {target};",
                r.get::<String>(2)?
            );
        }
        statistics.push(s);
    }
    Ok(statistics)
}

/// `ALTER TABLE … {DISABLE | ENABLE REPLICA | ENABLE ALWAYS} {TRIGGER | RULE} name;` for an
/// enabled state other than the default (`O`), as a line.
fn enabled_state(state: &str, table: &str, what: &str, name: &str) -> Option<String> {
    let verb = match state {
        "D" => "DISABLE",
        "R" => "ENABLE REPLICA",
        "A" => "ENABLE ALWAYS",
        _ => return None,
    };
    Some(format!("ALTER TABLE {table} {verb} {what} {name};\n"))
}

/// User triggers (not the internal ones of constraints, not the clones on partitions), with
/// their enabled state, sorted by table.
async fn triggers(conn: &mut Conn, rels: &BTreeMap<u32, Rel>) -> Result<Vec<String>, EngineError> {
    let rows = query(
        conn,
        "SELECT tgrelid, pg_catalog.pg_get_triggerdef(oid), tgenabled::text, pg_catalog.quote_ident(tgname)
           FROM pg_catalog.pg_trigger WHERE NOT tgisinternal AND tgparentid = 0
          ORDER BY tgrelid, tgname COLLATE \"C\"",
        &[],
    )
    .await?;
    let mut triggers = Vec::new();
    for r in &rows {
        let r = Cells::new(r, "trigger", 3);
        let Some(rel) = rels.get(&r.get::<u32>(0)?) else {
            continue;
        };
        let t = rel.name.clone();
        let mut s = format!("{};\n", r.get::<String>(1)?);
        let tg: String = r.get(3)?;
        if let Some(line) = enabled_state(&r.get::<String>(2)?, &t, "TRIGGER", &tg) {
            s.push_str(&line);
        }
        triggers.push((t, s));
    }
    triggers.sort();
    let mut out: Vec<String> = triggers.into_iter().map(|(_, s)| s).collect();
    out.extend(clone_trigger_states(conn, rels).await?);
    Ok(out)
}

/// The enabled state of triggers cloned onto partitions (`tgparentid <> 0`, created by the
/// restore with their parent's trigger), where their tree's state is not all the default:
/// `ALTER TABLE ONLY partition {ENABLE | DISABLE | ENABLE REPLICA | ENABLE ALWAYS} TRIGGER
/// name` for each clone of such a tree, after every parent's own state is set — so the
/// result does not depend on whether the server's `ALTER TABLE parent … TRIGGER` recursed
/// (pg_dump writes the state of a clone that differs from its parent's; regression test
/// `triggers`).
async fn clone_trigger_states(
    conn: &mut Conn,
    rels: &BTreeMap<u32, Rel>,
) -> Result<Vec<String>, EngineError> {
    let rows = query(
        conn,
        "WITH RECURSIVE up(clone, anc) AS (
           SELECT t.oid, t.tgparentid FROM pg_catalog.pg_trigger t WHERE t.tgparentid <> 0
           UNION
           SELECT up.clone, p.tgparentid FROM up JOIN pg_catalog.pg_trigger p ON p.oid = up.anc
            WHERE p.tgparentid <> 0)
         SELECT t.tgrelid, pg_catalog.quote_ident(t.tgname), t.tgenabled::text
           FROM pg_catalog.pg_trigger t
          WHERE t.tgparentid <> 0
            AND (t.tgenabled <> 'O' OR EXISTS (SELECT 1 FROM up JOIN pg_catalog.pg_trigger a ON a.oid = up.anc
                                               WHERE up.clone = t.oid AND a.tgenabled <> 'O'))
          ORDER BY t.tgrelid, t.tgname COLLATE \"C\"",
        &[],
    )
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let r = Cells::new(r, "trigger", 1);
        let Some(rel) = rels.get(&r.get::<u32>(0)?) else {
            continue;
        };
        let name: String = r.get(1)?;
        let state: String = r.get(2)?;
        let line = match enabled_state(&state, &format!("ONLY {}", rel.name), "TRIGGER", &name) {
            Some(line) => line,
            None => format!("ALTER TABLE ONLY {} ENABLE TRIGGER {name};\n", rel.name),
        };
        out.push((rel.name.clone(), line));
    }
    out.sort();
    Ok(out.into_iter().map(|(_, s)| s).collect())
}

/// Rules other than views' `_RETURN`, with their enabled state.
async fn rules(conn: &mut Conn, rels: &BTreeMap<u32, Rel>) -> Result<Vec<String>, EngineError> {
    let rows = query(
        conn,
        "SELECT ev_class, pg_catalog.pg_get_ruledef(oid), ev_enabled::text, pg_catalog.quote_ident(rulename)
           FROM pg_catalog.pg_rewrite WHERE rulename <> '_RETURN' ORDER BY ev_class, rulename COLLATE \"C\"",
        &[],
    )
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let r = Cells::new(r, "rule", 3);
        let Some(rel) = rels.get(&r.get::<u32>(0)?) else {
            continue;
        };
        let mut s = format!("{}\n", r.get::<String>(1)?.trim_end());
        let rule: String = r.get(3)?;
        if let Some(line) = enabled_state(&r.get::<String>(2)?, &rel.name, "RULE", &rule) {
            s.push_str(&line);
        }
        out.push(s);
    }
    Ok(out)
}

/// `ENABLE` / `FORCE ROW LEVEL SECURITY` of the tables that have it.
fn row_security(rels: &BTreeMap<u32, Rel>) -> Vec<String> {
    let mut out = Vec::new();
    for rel in rels.values() {
        if rel.rls {
            out.push(format!(
                "ALTER TABLE {} ENABLE ROW LEVEL SECURITY;\n",
                rel.name
            ));
        }
        if rel.force_rls {
            out.push(format!(
                "ALTER TABLE {} FORCE ROW LEVEL SECURITY;\n",
                rel.name
            ));
        }
    }
    out
}

/// `CREATE POLICY` of every policy; one that names roles is guarded (skipped with a warning
/// where a role is missing: RLS then stays enabled, i.e. access denied, the safe direction).
async fn policies(conn: &mut Conn, rels: &BTreeMap<u32, Rel>) -> Result<Vec<String>, EngineError> {
    let rows = query(
        conn,
        "SELECT pol.polrelid, pg_catalog.quote_ident(pol.polname), pol.polcmd::text, pol.polpermissive,
                ARRAY(SELECT CASE WHEN r.r = 0 THEN '' ELSE pg_catalog.pg_get_userbyid(r.r) END
                        FROM pg_catalog.unnest(pol.polroles) AS r(r) ORDER BY 1),
                pg_catalog.pg_get_expr(pol.polqual, pol.polrelid), pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid)
           FROM pg_catalog.pg_policy pol ORDER BY pol.polrelid, pol.polname COLLATE \"C\"",
        &[],
    )
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let r = Cells::new(r, "policy", 1);
        let Some(rel) = rels.get(&r.get::<u32>(0)?) else {
            continue;
        };
        let t = &rel.name;
        let pol: String = r.get(1)?;
        let cmd = match r.get::<String>(2)?.as_str() {
            "r" => "SELECT",
            "a" => "INSERT",
            "w" => "UPDATE",
            "d" => "DELETE",
            _ => "ALL",
        };
        let permissive = if r.get::<bool>(3)? {
            "PERMISSIVE"
        } else {
            "RESTRICTIVE"
        };
        let roles: Vec<String> = r.get(4)?;
        let named: Vec<String> = roles.iter().filter(|r| !r.is_empty()).cloned().collect();
        let to: Vec<String> = roles
            .iter()
            .map(|r| {
                if r.is_empty() {
                    "PUBLIC".to_owned()
                } else {
                    quote_ident(r)
                }
            })
            .collect();
        let mut s = format!(
            "CREATE POLICY {pol} ON {t} AS {permissive} FOR {cmd} TO {}",
            to.join(", ")
        );
        if let Some(q) = r.get::<Option<String>>(5)? {
            let _ = write!(s, " USING ({q})");
        }
        if let Some(c) = r.get::<Option<String>>(6)? {
            let _ = write!(s, " WITH CHECK ({c})");
        }
        if named.is_empty() {
            out.push(format!("{s};\n"));
        } else {
            out.push(guarded(&named, &s, &format!("policy {pol} on {t}")));
        }
    }
    Ok(out)
}

/// Publications, after everything they publish exists, in pg_dump's form
/// (`dumpPublication`, `dumpPublicationTable`, `dumpPublicationNamespace` in pg_dump.c of
/// PostgreSQL 15): `CREATE PUBLICATION name [FOR ALL TABLES] WITH (publish = '…'[,
/// publish_via_partition_root = true])`, then `ALTER PUBLICATION name ADD TABLE ONLY table
/// [(columns)] [WHERE (condition)]` per table (of the dumped tables) and `ADD TABLES IN
/// SCHEMA` per schema. Column lists, row filters and schemas exist from PostgreSQL 15 on;
/// an older server is read without them. A target whose `wal_level` is not `logical`
/// accepts them with a warning. Reference:
/// <https://www.postgresql.org/docs/15/sql-createpublication.html>.
async fn publications(
    conn: &mut Conn,
    rels: &BTreeMap<u32, Rel>,
) -> Result<Vec<String>, EngineError> {
    let rows = query(
        conn,
        "SELECT p.oid, pg_catalog.quote_ident(p.pubname), p.puballtables, p.pubinsert, p.pubupdate,
                p.pubdelete, p.pubtruncate, p.pubviaroot,
                pg_catalog.current_setting('server_version_num')::int >= 150000
           FROM pg_catalog.pg_publication p ORDER BY p.pubname COLLATE \"C\"",
        &[],
    )
    .await?;
    let mut out = Vec::new();
    let mut v15 = false;
    for r in &rows {
        let r = Cells::new(r, "publication", 1);
        let name: String = r.get(1)?;
        let mut s = format!("CREATE PUBLICATION {name}");
        if r.get::<bool>(2)? {
            s.push_str(" FOR ALL TABLES");
        }
        let actions: Vec<&str> = [(3, "insert"), (4, "update"), (5, "delete"), (6, "truncate")]
            .into_iter()
            .map(|(col, word)| Ok::<_, EngineError>((r.get::<bool>(col)?, word)))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter_map(|(on, word)| on.then_some(word))
            .collect();
        let _ = write!(s, " WITH (publish = '{}'", actions.join(", "));
        if r.get::<bool>(7)? {
            s.push_str(", publish_via_partition_root = true");
        }
        s.push_str(");\n");
        v15 = r.get(8)?;
        out.push(s);
    }
    if rows.is_empty() {
        return Ok(out);
    }
    let (columns, filter) = if v15 {
        (
            "(SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.i)
                FROM pg_catalog.unnest(pr.prattrs) WITH ORDINALITY k(attnum, i)
                JOIN pg_catalog.pg_attribute a ON a.attrelid = pr.prrelid AND a.attnum = k.attnum)",
            "pg_catalog.pg_get_expr(pr.prqual, pr.prrelid)",
        )
    } else {
        ("NULL::text", "NULL::text")
    };
    let rows = query(
        conn,
        &format!(
            "SELECT pg_catalog.quote_ident(p.pubname), pr.prrelid, {columns}, {filter}
               FROM pg_catalog.pg_publication_rel pr JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid
              ORDER BY p.pubname COLLATE \"C\", pr.prrelid"
        ),
        &[],
    )
    .await?;
    let mut tables = Vec::new();
    for r in &rows {
        let r = Cells::new(r, "publication", 0);
        let Some(rel) = rels.get(&r.get::<u32>(1)?) else {
            continue; // a table that is not dumped (an extension's), as pg_dump
        };
        let mut s = format!(
            "ALTER PUBLICATION {} ADD TABLE ONLY {}",
            r.get::<String>(0)?,
            rel.name
        );
        if let Some(cols) = r.get::<Option<String>>(2)? {
            let _ = write!(s, " ({cols})");
        }
        if let Some(filter) = r.get::<Option<String>>(3)? {
            let _ = write!(s, " WHERE ({filter})");
        }
        tables.push((rel.name.clone(), format!("{s};\n")));
    }
    tables.sort();
    out.extend(tables.into_iter().map(|(_, s)| s));
    if v15 {
        let rows = query(
            conn,
            "SELECT pg_catalog.quote_ident(p.pubname), pg_catalog.quote_ident(n.nspname)
               FROM pg_catalog.pg_publication_namespace pn
               JOIN pg_catalog.pg_publication p ON p.oid = pn.pnpubid
               JOIN pg_catalog.pg_namespace n ON n.oid = pn.pnnspid
              ORDER BY p.pubname COLLATE \"C\", n.nspname COLLATE \"C\"",
            &[],
        )
        .await?;
        for r in &rows {
            let r = Cells::new(r, "publication", 0);
            out.push(format!(
                "ALTER PUBLICATION {} ADD TABLES IN SCHEMA {};\n",
                r.get::<String>(0)?,
                r.get::<String>(1)?
            ));
        }
    }
    Ok(out)
}

/// `COMMENT ON …` for every comment on a dumped object.
///
/// # Errors
///
/// [`exporter_contract::ErrorKind::Unsupported`] naming comments on kinds of objects we do
/// not dump; catalog errors.
pub(super) async fn comments(conn: &mut Conn, plan: &mut Plan) -> Result<(), EngineError> {
    let sql = format!(
        "SELECT (pg_catalog.pg_identify_object(d.classoid, d.objoid, d.objsubid)).type,
                (pg_catalog.pg_identify_object(d.classoid, d.objoid, d.objsubid)).identity,
                d.description,
                CASE d.classoid
                  WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN
                    (SELECT pg_catalog.quote_ident(conname) || ' ON ' || CASE WHEN contypid <> 0
                       THEN 'DOMAIN ' || contypid::pg_catalog.regtype::text ELSE conrelid::pg_catalog.regclass::text END
                       FROM pg_catalog.pg_constraint WHERE oid = d.objoid)
                  WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN
                    (SELECT pg_catalog.quote_ident(tgname) || ' ON ' || tgrelid::pg_catalog.regclass::text
                       FROM pg_catalog.pg_trigger WHERE oid = d.objoid)
                  WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass THEN
                    (SELECT pg_catalog.quote_ident(polname) || ' ON ' || polrelid::pg_catalog.regclass::text
                       FROM pg_catalog.pg_policy WHERE oid = d.objoid)
                  WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN
                    (SELECT pg_catalog.quote_ident(rulename) || ' ON ' || ev_class::pg_catalog.regclass::text
                       FROM pg_catalog.pg_rewrite WHERE oid = d.objoid)
                  WHEN 'pg_catalog.pg_transform'::pg_catalog.regclass THEN
                    (SELECT 'FOR ' || pg_catalog.format_type(t.trftype, NULL) || ' LANGUAGE ' || pg_catalog.quote_ident(l.lanname)
                       FROM pg_catalog.pg_transform t JOIN pg_catalog.pg_language l ON l.oid = t.trflang
                      WHERE t.oid = d.objoid)
                  WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN
                    (SELECT {agg_sig} FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                      WHERE p.oid = d.objoid AND p.prokind = 'a')
                END,
                d.classoid, d.objoid, d.objsubid
           FROM pg_catalog.pg_description d
          WHERE (d.objoid >= {FIRST_USER_OID}
                 -- A large object keeps the OID it was created with, low ones too
                 -- (lo_create(1234)), and the restore creates it with that OID.
                 OR d.classoid = 'pg_catalog.pg_largeobject'::pg_catalog.regclass
                 OR (d.classoid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                     AND d.objoid = 'public'::pg_catalog.regnamespace))
            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = d.classoid
                             AND e.objid = d.objoid AND e.deptype = 'e')
          ORDER BY 1, 2, 4",
        agg_sig = super::pre::aggregate_signature_sql("p", "n"),
    );
    let rows = query(conn, &sql, &[]).await?;
    let mut unsupported_comments = Vec::new();
    for r in &rows {
        let r = Cells::new(r, "comment on", 1);
        let ty: Option<String> = r.get(0)?;
        let identity: Option<String> = r.get(1)?;
        let text: String = r.get(2)?;
        let extra: Option<String> = r.get(3)?;
        let (Some(ty), Some(identity)) = (ty, identity) else {
            // pg_identify_object answers NULLs for an object that no longer exists: the
            // comment outlived it (e.g. a subscription's, left behind in pg_description by
            // the regression suite). Nothing can be restored onto it.
            let classoid: u32 = r.get(4)?;
            let objoid: u32 = r.get(5)?;
            let objsubid: i32 = r.get(6)?;
            plan.warnings.push(format!(
                "skipped a comment on an object that no longer exists (pg_description row: classoid {classoid}, objoid {objoid}, objsubid {objsubid})"
            ));
            continue;
        };
        let target = match ty.as_str() {
            "table"
            | "view"
            | "materialized view"
            | "sequence"
            | "index"
            | "type"
            | "domain"
            | "function"
            | "procedure"
            | "schema"
            | "extension"
            | "large object"
            | "operator"
            | "text search dictionary"
            | "text search configuration"
            | "collation"
            | "publication"
            | "operator class"
            | "operator family" => {
                format!("{} {identity}", ty.to_uppercase())
            }
            "composite type" => format!("TYPE {identity}"),
            "statistics object" => format!("STATISTICS {identity}"),
            "cast" => format!("CAST {identity}"),
            "foreign-data wrapper" => format!("FOREIGN DATA WRAPPER {identity}"),
            "server" => format!("SERVER {identity}"),
            "access method" => format!("ACCESS METHOD {identity}"),
            "table column"
            | "view column"
            | "materialized view column"
            | "composite type column" => {
                format!("COLUMN {identity}")
            }
            "table constraint" | "domain constraint" | "trigger" | "policy" | "rule"
            | "aggregate" | "transform" => {
                let word = match ty.as_str() {
                    "trigger" => "TRIGGER",
                    "policy" => "POLICY",
                    "rule" => "RULE",
                    // The aggregate's own signature: `(*)`, `ORDER BY` (the identity is
                    // the argument types only, which COMMENT ON AGGREGATE refuses for those).
                    "aggregate" => "AGGREGATE",
                    "transform" => "TRANSFORM",
                    _ => "CONSTRAINT",
                };
                let Some(extra) = extra else { continue };
                format!("{word} {extra}")
            }
            other => match super::kinds::comment_target(other, &identity) {
                Some(super::kinds::CommentTarget::On(target)) => target,
                Some(super::kinds::CommentTarget::WithObject) => continue,
                None => {
                    unsupported_comments.push(format!("comment on {ty} {identity}"));
                    continue;
                }
            },
        };
        plan.post.push(format!(
            "COMMENT ON {target} IS {};\n",
            quote_literal(&text)
        ));
    }
    if unsupported_comments.is_empty() {
        Ok(())
    } else {
        Err(unsupported(&unsupported_comments))
    }
}
