//! User code that runs while a script loads (issue 15, kind 2).
//!
//! Some expressions of a dump are evaluated by the restore itself: `CHECK` constraints (on
//! every row copied in, and when added), generated columns (computed for every row copied
//! in), partition key expressions (every row copied into a partition is checked against
//! them), index expressions and predicates (at `CREATE INDEX`), and materialized views (at
//! `REFRESH`). Column defaults are not: every stored column is in the `COPY` column list. A
//! user function called there whose body names a table or function without its schema —
//! PL/pgSQL, or SQL without a `BEGIN ATOMIC` body, both resolved when they run — finds it
//! through the session's `search_path`. In the source that was the application's path (a
//! database- or role-level `ALTER … SET search_path`, or the server's default); a restore
//! script runs with an empty one, so the restore fails (pg_dump's too) or, where a function
//! reads other tables, depends on which table was loaded first.
//!
//! What the dump does, without ever changing a function:
//!
//! - **The path the code ran under.** A table whose `COPY` evaluates such code (a generated
//!   column, a partition key expression of the table or an ancestor; its `CREATE TABLE`
//!   already runs it, as the server inlines SQL functions there), an index whose
//!   expression or predicate calls it, and a materialized view whose query calls it (also
//!   through views) are loaded, created or refreshed with `SET search_path = …` set to the
//!   path a session of the object's owner starts with in the source database, and the empty
//!   path restored right after (see [`SearchPaths`]). A function with its own `SET
//!   search_path` (`proconfig`) needs nothing: it brings its path along.
//! - **After the data.** A validated `CHECK` constraint (of a table or a domain) that calls
//!   any user function is added after all rows are loaded (`ALTER TABLE … ADD CONSTRAINT`,
//!   `ALTER DOMAIN … ADD CONSTRAINT`, descendants before their ancestors so inheritance is
//!   reproduced as in the source), which validates every row once against the complete
//!   data, under the owner's path where the function needs one. A check whose function reads
//!   another table then no longer depends on the load order (nor on parallel jobs).

use std::collections::HashMap;

use exporter_contract::EngineError;

use super::table::Rel;
use super::{not_ext, query, user_ns};
use crate::cells::{Cells, read_all};
use crate::connect::Conn;
use crate::quote::{quote_ident, quote_literal};

/// How a session's `search_path` came to be in the source, per role (PostgreSQL docs,
/// `ALTER ROLE`: settings for a database and role override those for the role, which
/// override those for the database, which override `ALTER ROLE ALL`, which override the
/// server's configuration).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SearchPaths {
    /// `ALTER ROLE r IN DATABASE <this> SET search_path`, by role.
    pub role_in_db: HashMap<String, String>,
    /// `ALTER ROLE r SET search_path`, by role.
    pub role: HashMap<String, String>,
    /// `ALTER DATABASE <this> SET search_path` (or `ALTER ROLE ALL IN DATABASE`).
    pub db: Option<String>,
    /// `ALTER ROLE ALL SET search_path`.
    pub all: Option<String>,
    /// The server's configured default: the dump session's starting value when no setting
    /// above applied to it, else the built-in default (`"$user", public`).
    pub server: String,
}

impl SearchPaths {
    /// The `search_path` a new session of `owner` starts with in the source database, as a
    /// list of quoted schema names (`$user` replaced by the owner's name, as it resolves in
    /// the owner's sessions).
    #[must_use]
    pub fn for_owner(&self, owner: &str) -> Vec<String> {
        let raw = self
            .role_in_db
            .get(owner)
            .or_else(|| self.role.get(owner))
            .or(self.db.as_ref())
            .or(self.all.as_ref())
            .unwrap_or(&self.server);
        parse_path(raw)
            .into_iter()
            .map(|name| {
                if name == "$user" {
                    quote_ident(owner)
                } else {
                    quote_ident(&name)
                }
            })
            .collect()
    }

    /// `stmt` run under `owner`'s path: `SET search_path = …;`, the statement, then the
    /// script's empty path again (`SET search_path = ''`, an empty-named schema, which
    /// cannot exist). `stmt` unchanged when the owner's path is empty.
    #[must_use]
    pub fn wrap(&self, owner: &str, stmt: &str) -> String {
        match self.set_statement(owner) {
            Some(set) => format!("{set}{stmt}{RESET_PATH}"),
            None => stmt.to_owned(),
        }
    }

    /// `SET search_path = …;\n` for `owner`, or `None` when the owner's path is empty.
    #[must_use]
    pub fn set_statement(&self, owner: &str) -> Option<String> {
        let path = self.for_owner(owner);
        if path.is_empty() {
            None
        } else {
            Some(format!("SET search_path = {};\n", path.join(", ")))
        }
    }
}

/// Back to the script's empty `search_path` after a statement that needed one.
pub(crate) const RESET_PATH: &str = "SET search_path = '';\n";

/// The schema names of a `search_path` value as the server stores it (`"$user", public`:
/// comma-separated identifiers, double-quoted ones with `""` for a quote, unquoted ones folded
/// to lower case, as the server's `SplitIdentifierString` reads them).
fn parse_path(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut name = String::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        name.push('"');
                    } else {
                        break;
                    }
                } else {
                    name.push(c);
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                name.push(c);
                chars.next();
            }
            name = name.trim_end().to_lowercase();
        }
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

/// Read the `search_path` settings of this database and its roles, and the server default.
async fn search_paths(conn: &mut Conn) -> Result<SearchPaths, EngineError> {
    let rows = query(
        conn,
        "SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(s.setrole) END,
                s.setdatabase <> 0, pg_catalog.substr(c.c, 13)
           FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) c(c)
          WHERE s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database
                                       WHERE datname = pg_catalog.current_database()))
            AND c.c LIKE 'search\\_path=%'",
        &[],
    )
    .await?;
    let mut paths = SearchPaths::default();
    for r in &rows {
        let r = Cells::new(r, "search_path setting of role", 0);
        let role: Option<String> = r.get(0)?;
        let in_db: bool = r.get(1)?;
        let value: String = r.get(2)?;
        match (role, in_db) {
            (Some(role), true) => {
                paths.role_in_db.insert(role, value);
            }
            (Some(role), false) => {
                paths.role.insert(role, value);
            }
            (None, true) => paths.db = Some(value),
            (None, false) => paths.all = Some(value),
        }
    }
    let rows = query(
        conn,
        "SELECT pg_catalog.session_user()::text, reset_val, boot_val FROM pg_catalog.pg_settings
          WHERE name = 'search_path'",
        &[],
    )
    .await?;
    if let Some(r) = rows.first() {
        let r = Cells::about(r, "setting search_path");
        let me: String = r.get(0)?;
        let reset: Option<String> = r.get(1)?;
        let boot: Option<String> = r.get(2)?;
        // Our own session's starting value is the server's configuration unless a setting
        // of this database or role changed it.
        let overridden = paths.role_in_db.contains_key(&me)
            || paths.role.contains_key(&me)
            || paths.db.is_some()
            || paths.all.is_some();
        paths.server = if overridden { boot } else { reset.or(boot) }.unwrap_or_default();
    }
    Ok(paths)
}

/// Settings whose value the server stores as a list of quoted identifiers (`GUC_LIST_QUOTE`
/// in the server's `guc_tables.c`): `ALTER DATABASE … SET` takes them as written; every other
/// value is passed as one string literal, as pg_dumpall's `makeAlterConfigCommand` does.
const LIST_QUOTE_SETTINGS: &[&str] = &[
    "local_preload_libraries",
    "search_path",
    "session_preload_libraries",
    "shared_preload_libraries",
    "temp_tablespaces",
    "unix_socket_directories",
];

/// The statements that give the restored database the source database's own settings
/// (`ALTER DATABASE <source> SET name = value`, e.g. the application's `search_path`), in the
/// order the server stores them. The target's name is not known when dumping, so each is a
/// `DO` block running `ALTER DATABASE <current database> SET …`; one the restoring role may
/// not set (not the database's owner, a superuser-only setting) or that the target server
/// does not know (an extension's setting) is skipped with a `WARNING`. Settings of roles are
/// not reproduced: roles are not part of a database (as pg_dump without `pg_dumpall`).
///
/// # Errors
///
/// A classified catalog error.
pub(super) async fn database_settings(conn: &mut Conn) -> Result<Vec<String>, EngineError> {
    let rows = query(
        conn,
        "SELECT c.c FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) WITH ORDINALITY c(c, n)
          WHERE s.setrole = 0
            AND s.setdatabase = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
          ORDER BY c.n",
        &[],
    )
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let r = Cells::about(r, "a setting of the database");
        let entry: String = r.get(0)?;
        let Some((name, value)) = entry.split_once('=') else {
            continue;
        };
        out.push(database_setting(name, value));
    }
    Ok(out)
}

/// The guarded `DO` block of one database setting; see [`database_settings`].
fn database_setting(name: &str, value: &str) -> String {
    let value = if LIST_QUOTE_SETTINGS.contains(&name.to_ascii_lowercase().as_str()) {
        value.to_owned()
    } else {
        quote_literal(value)
    };
    let set = format!(" SET {} = {value}", quote_ident(name));
    let body = format!(
        "BEGIN EXECUTE 'ALTER DATABASE ' || pg_catalog.quote_ident(pg_catalog.current_database()) || {set}; \
         EXCEPTION WHEN insufficient_privilege OR undefined_object THEN \
         RAISE WARNING USING MESSAGE = {skip} || SQLERRM; END",
        set = quote_literal(&set),
        skip = quote_literal(&format!("exporter: skipped database setting {name}: ")),
    );
    format!("DO {};\n", quote_literal(&body))
}

/// A validated `CHECK` constraint that calls a user function: added after the data.
#[derive(Debug, Clone)]
pub(super) struct DeferredCheck {
    /// `pg_constraint` OID.
    pub oid: u32,
    /// The table's `pg_class` OID (0 for a domain check).
    pub table: u32,
    /// Whether it is defined on the table itself (inherited copies come back with their
    /// parent's `ALTER TABLE … ADD CONSTRAINT`, which recurses).
    pub local: bool,
    /// `ALTER TABLE … ADD CONSTRAINT …;` or `ALTER DOMAIN … ADD CONSTRAINT …;`.
    pub sql: String,
    /// The table's or domain's owner.
    pub owner: String,
    /// Whether a function it calls finds objects through the session's path.
    pub needs_path: bool,
}

/// Everything the dump does about load-time code; see the module docs.
#[derive(Debug, Default)]
pub(super) struct LoadCode {
    /// The source's search paths.
    pub paths: SearchPaths,
    /// Checks added after the data, descendants before ancestors.
    pub deferred: Vec<DeferredCheck>,
    /// Tables and partitioned tables (`pg_class` OID → owner) with a generated column or a
    /// partition key expression (their own or an ancestor's) that runs path-dependent code:
    /// `CREATE TABLE` already runs it (the server inlines SQL functions of generated and key
    /// expressions when it checks them), and so does every row copied in.
    pub tables: HashMap<u32, String>,
    /// Indexes (OID → owner of the table) whose expressions or predicate do.
    pub indexes: HashMap<u32, String>,
    /// The tables of those indexes (OID → owner).
    pub indexed: HashMap<u32, String>,
    /// Materialized views (OID → owner) whose query does, also through views.
    pub matviews: HashMap<u32, String>,
}

impl LoadCode {
    /// Whether constraint `oid` is deferred (and so left out of the pre-data DDL).
    #[must_use]
    pub fn is_deferred(&self, oid: u32) -> bool {
        self.deferred.iter().any(|d| d.oid == oid)
    }

    /// The post-data statements that add the deferred checks, each under its owner's path
    /// where it needs one.
    #[must_use]
    pub fn deferred_statements(&self, rels: &std::collections::BTreeMap<u32, Rel>) -> Vec<String> {
        self.deferred
            .iter()
            .filter(|d| d.local && (d.table == 0 || rels.contains_key(&d.table)))
            .map(|d| {
                if d.needs_path {
                    self.paths.wrap(&d.owner, &d.sql)
                } else {
                    d.sql.clone()
                }
            })
            .collect()
    }
}

/// SQL CTE `funcs(oid, needs_path)`: the user functions (user schemas, not extension
/// members), and whether each resolves names through the session's `search_path` when it
/// runs (not C or internal, no `BEGIN ATOMIC` body, no `SET search_path` of its own).
fn funcs_cte() -> String {
    format!(
        "funcs AS (
  SELECT p.oid, (p.prosqlbody IS NULL AND l.lanname NOT IN ('internal', 'c')
                 AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(p.proconfig) pc(c)
                                  WHERE pc.c LIKE 'search\\_path=%')) AS needs_path
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    JOIN pg_catalog.pg_language l ON l.oid = p.prolang
   WHERE {} AND {})",
        user_ns("n"),
        not_ext("pg_proc", "p.oid")
    )
}

/// `pg_depend` rows of object `classid`/`objid` on a function of `funcs` (`f`), optionally
/// only those needing the path.
fn calls(classid: &str, objid: &str, path_only: bool) -> String {
    let only = if path_only { " AND f.needs_path" } else { "" };
    format!(
        "EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN funcs f ON f.oid = d.refobjid{only}
          WHERE d.classid = 'pg_catalog.{classid}'::pg_catalog.regclass AND d.objid = {objid}
            AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass)"
    )
}

/// Read the load-time code of the database.
///
/// # Errors
///
/// A classified catalog error.
pub(super) async fn load(conn: &mut Conn) -> Result<LoadCode, EngineError> {
    let paths = search_paths(conn).await?;
    let funcs = funcs_cte();
    let rows = query(
        conn,
        &format!(
            "WITH {funcs}
             SELECT con.oid, con.conrelid, con.conislocal,
                    CASE WHEN con.conrelid <> 0
                      THEN 'ALTER TABLE ' || pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(c.relname)
                      ELSE 'ALTER DOMAIN ' || pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.quote_ident(t.typname) END
                      || ' ADD CONSTRAINT ' || pg_catalog.quote_ident(con.conname) || ' '
                      || pg_catalog.pg_get_constraintdef(con.oid) || E';\\n',
                    pg_catalog.pg_get_userbyid(COALESCE(c.relowner, t.typowner)),
                    {needs_path},
                    (WITH RECURSIVE anc(relid) AS (
                       SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = con.conrelid
                       UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN anc ON i.inhrelid = anc.relid)
                     SELECT pg_catalog.count(*) FROM anc)::int AS depth,
                    COALESCE(cn.nspname || '.' || c.relname, tn.nspname || '.' || t.typname) COLLATE \"C\" AS sort
               FROM pg_catalog.pg_constraint con
               LEFT JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
               LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
               LEFT JOIN pg_catalog.pg_type t ON t.oid = con.contypid
               LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
              WHERE con.contype = 'c' AND con.convalidated AND {any}
              ORDER BY depth DESC, sort, con.conname COLLATE \"C\"",
            needs_path = calls("pg_constraint", "con.oid", true),
            any = calls("pg_constraint", "con.oid", false),
        ),
        &[],
    )
    .await?;
    let deferred = read_all(&rows, "check constraint", 3, |r| {
        Ok(DeferredCheck {
            oid: r.get(0)?,
            table: r.get(1)?,
            local: r.get(2)?,
            sql: r.get(3)?,
            owner: r.get(4)?,
            needs_path: r.get(5)?,
        })
    })?;
    let tables = owners(
        conn,
        &format!(
            "WITH {funcs}
             SELECT c.oid, pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c
              WHERE c.relkind IN ('r', 'p') AND (
                EXISTS (SELECT 1 FROM pg_catalog.pg_attrdef ad JOIN pg_catalog.pg_attribute a
                            ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum AND a.attgenerated = 's'
                         WHERE ad.adrelid = c.oid AND {generated})
                OR EXISTS (SELECT 1 FROM pg_catalog.pg_partition_ancestors(c.oid) an WHERE {partkey}))",
            generated = calls("pg_attrdef", "ad.oid", true),
            partkey = calls("pg_class", "an.relid", true),
        ),
    )
    .await?;
    let rows = query(
        conn,
        &format!(
            "WITH {funcs}
             SELECT i.indexrelid, pg_catalog.pg_get_userbyid(c.relowner), i.indrelid
               FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
              WHERE {}",
            calls("pg_class", "i.indexrelid", true)
        ),
        &[],
    )
    .await?;
    let pairs = read_all(&rows, "index", 0, |r| {
        Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(1)?)))
    })?;
    let (index_owners, table_owners) = pairs.into_iter().unzip();
    let matviews = owners(
        conn,
        &format!(
            "WITH RECURSIVE {funcs}, needs(relid) AS (
               SELECT r.ev_class FROM pg_catalog.pg_rewrite r WHERE {direct}
               UNION
               SELECT r.ev_class FROM pg_catalog.pg_rewrite r
                 JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                  AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                 JOIN needs ON needs.relid = d.refobjid)
             SELECT c.oid, pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c
              WHERE c.relkind = 'm' AND c.oid IN (SELECT relid FROM needs)",
            direct = calls("pg_rewrite", "r.oid", true)
        ),
    )
    .await?;
    Ok(LoadCode {
        paths,
        deferred,
        tables,
        indexes: index_owners,
        indexed: table_owners,
        matviews,
    })
}

/// Rows `(oid, owner)` of `sql` as a map.
async fn owners(conn: &mut Conn, sql: &str) -> Result<HashMap<u32, String>, EngineError> {
    let rows = query(conn, sql, &[]).await?;
    Ok(
        read_all(&rows, "relation", 0, |r| Ok((r.get(0)?, r.get(1)?)))?
            .into_iter()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_parsed_as_the_server_splits_them() {
        assert_eq!(parse_path("\"$user\", public"), ["$user", "public"]);
        assert_eq!(
            parse_path("App ,  \"My \"\"S\"\"\",x"),
            ["app", "My \"S\"", "x"]
        );
        assert_eq!(parse_path(""), Vec::<String>::new());
        assert_eq!(parse_path("\"\""), Vec::<String>::new());
    }

    #[test]
    fn the_most_specific_setting_wins_and_user_is_the_owner() {
        let mut p = SearchPaths {
            server: "\"$user\", public".to_owned(),
            ..SearchPaths::default()
        };
        assert_eq!(p.for_owner("app"), ["\"app\"", "\"public\""]);
        p.all = Some("all_roles".to_owned());
        assert_eq!(p.for_owner("app"), ["\"all_roles\""]);
        p.db = Some("app, public".to_owned());
        assert_eq!(p.for_owner("app"), ["\"app\"", "\"public\""]);
        p.role.insert("app".to_owned(), "role_s".to_owned());
        assert_eq!(p.for_owner("app"), ["\"role_s\""]);
        assert_eq!(p.for_owner("other"), ["\"app\"", "\"public\""]);
        p.role_in_db
            .insert("app".to_owned(), "\"$user\", shared".to_owned());
        assert_eq!(p.for_owner("app"), ["\"app\"", "\"shared\""]);
        assert_eq!(
            p.wrap("app", "CREATE INDEX i ON t (f(x));\n"),
            "SET search_path = \"app\", \"shared\";\nCREATE INDEX i ON t (f(x));\nSET search_path = '';\n"
        );
        let empty = SearchPaths::default();
        assert_eq!(empty.wrap("app", "X;\n"), "X;\n");
    }

    #[test]
    fn database_settings_are_guarded_do_blocks() {
        let s = database_setting("search_path", "app, \"My S\"");
        assert!(
            s.starts_with("DO 'BEGIN EXECUTE ''ALTER DATABASE ''"),
            "{s}"
        );
        assert!(
            s.contains("'' SET \"search_path\" = app, \"My S\"''"),
            "list settings as stored: {s}"
        );
        let s = database_setting("application_name", "it's");
        assert!(
            s.contains("'' SET \"application_name\" = ''''it''''''''s''''''; EXCEPTION"),
            "other settings as one literal: {s}"
        );
    }
}
