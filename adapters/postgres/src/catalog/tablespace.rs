//! Relations in a tablespace: `SET default_tablespace` around the statement that creates
//! each.
//!
//! pg_dump does not name a tablespace in `CREATE TABLE` or `CREATE INDEX`; before each
//! object that has storage (tables, partitioned tables, materialized views, indexes,
//! partitioned indexes, and the index of a key or exclusion constraint) it selects the
//! object's tablespace with `SET default_tablespace = name`, or `= ''` for the database's
//! default (`_selectTablespace` in pg_backup_archiver.c of PostgreSQL 15; the tablespace of
//! each entry from `getTables` and `getIndexes` in pg_dump.c). It does not create the
//! tablespace: that is pg_dumpall's, a cluster-wide object. A restore can leave every
//! assignment out (`pg_restore --no-tablespaces`, `exporter restore --no-tablespaces`), and
//! everything is then created in the target's default tablespace.
//!
//! Here each statement of such an object is wrapped on its own — `SET default_tablespace =
//! name;`, the statement, `SET default_tablespace = '';` — rather than tracking the current
//! tablespace across the script as pg_dump's archiver does: the plan sorts post-data
//! statements by table, and a self-contained statement keeps its tablespace wherever it
//! lands. The script's header already sets `default_tablespace = ''`, so objects in the
//! default tablespace need nothing. Sequences never have a tablespace, so an identity
//! sequence created inside a wrapped `CREATE TABLE` is unaffected.
//!
//! One case `default_tablespace` cannot express: `CREATE TABLE … PARTITION OF parent`
//! without a `TABLESPACE` clause takes its parent's tablespace, whatever the default says.
//! A partition in the database's default tablespace under a parent in another one (created
//! with `TABLESPACE pg_default`, or before the parent moved) is therefore moved back after
//! its creation, to the target database's default tablespace, which the server records as
//! "the default" again (pg_dump creates such a partition on its own and attaches it, to the
//! same effect). References:
//! <https://www.postgresql.org/docs/15/runtime-config-client.html#GUC-DEFAULT-TABLESPACE>,
//! <https://www.postgresql.org/docs/15/sql-createtable.html> (`PARTITION OF`, `TABLESPACE`).

use std::collections::HashMap;

use exporter_contract::EngineError;

use super::pre::PreData;
use super::{query, user_ns};
use crate::cells::Cells;
use crate::connect::Conn;
use crate::quote::quote_literal;

/// The tablespace of every relation of a user schema that has one other than the database's
/// default (`pg_class.reltablespace <> 0`): tables, partitioned tables, materialized views,
/// indexes and partitioned indexes, by `pg_class` OID.
#[derive(Debug, Default)]
pub(super) struct Tablespaces {
    /// Relation OID → the tablespace's name, quoted by the server's `quote_ident`.
    by_relation: HashMap<u32, String>,
    /// Partitions in the database's default tablespace whose parent is in another one:
    /// OID → schema-qualified, quoted name (see the module docs).
    back_to_default: HashMap<u32, String>,
}

impl Tablespaces {
    /// Read the tablespaces (one catalog query).
    ///
    /// # Errors
    ///
    /// A classified catalog query error; a NULL where the catalogs always hold a value.
    pub(super) async fn load(conn: &mut Conn) -> Result<Self, EngineError> {
        let rows = query(
            conn,
            &format!(
                "SELECT c.oid, pg_catalog.quote_ident(t.spcname)
                   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                   JOIN pg_catalog.pg_tablespace t ON t.oid = c.reltablespace
                  WHERE c.reltablespace <> 0 AND c.relkind IN ('r', 'p', 'm', 'i', 'I') AND {}",
                user_ns("n")
            ),
            &[],
        )
        .await?;
        let mut by_relation = HashMap::with_capacity(rows.len());
        for r in &rows {
            let r = Cells::new(r, "relation", 0);
            by_relation.insert(r.get(0)?, r.get(1)?);
        }
        let rows = query(
            conn,
            &format!(
                "SELECT c.oid, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)
                   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                   JOIN pg_catalog.pg_inherits i ON i.inhrelid = c.oid
                   JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
                  WHERE c.relispartition AND c.relkind IN ('r', 'p') AND c.reltablespace = 0
                    AND p.reltablespace <> 0 AND {}",
                user_ns("n")
            ),
            &[],
        )
        .await?;
        let mut back_to_default = HashMap::with_capacity(rows.len());
        for r in &rows {
            let r = Cells::new(r, "partition", 1);
            back_to_default.insert(r.get(0)?, r.get(1)?);
        }
        Ok(Self {
            by_relation,
            back_to_default,
        })
    }

    /// `stmt` (one or more complete statements, each ending in `;\n`) as it creates relation
    /// `oid`: unchanged for a relation in the default tablespace, else between `SET
    /// default_tablespace = name;` and `SET default_tablespace = '';`.
    pub(super) fn wrap(&self, oid: u32, stmt: &str) -> String {
        match self.by_relation.get(&oid) {
            Some(name) => wrap_in(name, stmt),
            None => stmt.to_owned(),
        }
    }

    /// Wrap the pre-data objects that create relations in a tablespace (`R<oid>`: tables,
    /// partitioned tables and materialized views; views and sequences have no tablespace),
    /// and move a partition that must stay in the default tablespace back there after its
    /// creation (see the module docs).
    pub(super) fn apply(&self, pre: &mut PreData) {
        for (oid, name) in &self.by_relation {
            if let Some(obj) = pre.objs.get_mut(&format!("R{oid}"))
                && !obj.sql.is_empty()
            {
                obj.sql = wrap_in(name, &obj.sql);
            }
        }
        for (oid, name) in &self.back_to_default {
            if let Some(obj) = pre.objs.get_mut(&format!("R{oid}"))
                && !obj.sql.is_empty()
            {
                obj.sql.push_str(&to_database_default(name));
            }
        }
    }
}

/// A statement that moves relation `name` (quoted) to the current database's default
/// tablespace, which the server then records as the default (`reltablespace` 0), whatever
/// that tablespace is called on the target.
fn to_database_default(name: &str) -> String {
    format!(
        "DO $tablespace$BEGIN EXECUTE pg_catalog.format('ALTER TABLE ONLY %s SET TABLESPACE %I', {}, \
         (SELECT t.spcname FROM pg_catalog.pg_database d JOIN pg_catalog.pg_tablespace t ON t.oid = d.dattablespace \
         WHERE d.datname = pg_catalog.current_database())); END$tablespace$;\n",
        quote_literal(name)
    )
}

/// `SET default_tablespace = name;`, `stmt`, `SET default_tablespace = '';`.
fn wrap_in(name: &str, stmt: &str) -> String {
    format!("SET default_tablespace = {name};\n{stmt}SET default_tablespace = '';\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relations_in_a_tablespace_are_wrapped() {
        let ts = Tablespaces {
            by_relation: HashMap::from([(7, "\"Fast Disk\"".to_owned())]),
            back_to_default: HashMap::new(),
        };
        assert_eq!(
            ts.wrap(7, "CREATE INDEX i ON public.t USING btree (a);\n"),
            "SET default_tablespace = \"Fast Disk\";\n\
             CREATE INDEX i ON public.t USING btree (a);\n\
             SET default_tablespace = '';\n"
        );
        assert_eq!(
            ts.wrap(8, "CREATE INDEX j ON public.t USING btree (b);\n"),
            "CREATE INDEX j ON public.t USING btree (b);\n"
        );
    }
}
