//! [`exporter_contract::Source::check`] for MySQL and MariaDB: every privilege the dump
//! needs, each one missing named with its object, then a dry run of the dump's start.
//!
//! What the dump sends (see the crate docs and `catalog.rs`), and so what is checked:
//!
//! - without a database in the URL: the global `SHOW DATABASES` privilege (else
//!   `information_schema.SCHEMATA` hides schemas, which the dump refuses);
//! - per schema, database-wide (or global) `SELECT`, `TRIGGER`, `EVENT` and `EXECUTE` (or
//!   `ALTER ROUTINE`): `information_schema` silently hides tables, triggers, events and
//!   routines the account holds no privilege on, so the dump requires them;
//! - `SELECT` on every table with rows of its own and every sequence the account can see:
//!   probed with the dump's own `SELECT 1 FROM t LIMIT 0`;
//! - `SHOW VIEW` (and `SELECT`) on every view: `SHOW CREATE VIEW`; the definition of every
//!   procedure and function (`SHOW CREATE PROCEDURE` / `FUNCTION`, which shows no body to an
//!   account that is not the definer and lacks MariaDB's `SELECT` on `mysql.proc` / MySQL's
//!   `SHOW_ROUTINE`); `TRIGGER` for every trigger (`SHOW CREATE TRIGGER`); `EVENT` for every
//!   event (`SHOW CREATE EVENT`) — each statement the dump runs, run the same way.
//!
//! The consistent snapshot is what the dump opens, `START TRANSACTION WITH CONSISTENT
//! SNAPSHOT, READ ONLY` at `REPEATABLE READ`: it needs no privilege (no `FLUSH TABLES WITH
//! READ LOCK`, no `RELOAD`; the dump uses one connection). When nothing is missing, the dump's
//! start runs for real inside that snapshot — the whole catalog read of `catalog::load`, with
//! its refusals of objects the engine cannot export — and is rolled back; a refusal there is a
//! problem too.
//!
//! Size: the sum of `information_schema.TABLES.DATA_LENGTH` of the dumped schemas (the
//! dump's own estimate).

use exporter_contract::{
    CheckProblem, DumpOptions, Endpoint, EngineError, ErrorKind, ServerInfo, SourceCheck,
};

use crate::catalog::{self, ObjectKind, SYSTEM_SCHEMAS};
use crate::connect::{self, Flavor, Session};
use crate::encode::{quote_ident, quote_str};

/// Check `endpoint` for a dump. See the module docs.
pub(crate) async fn check(
    endpoint: Endpoint,
    _options: DumpOptions,
) -> Result<SourceCheck, EngineError> {
    let link = connect::Link::new(&endpoint)?;
    let mut s = crate::open(&link, false).await?;
    let database = endpoint.url().database();
    let mut problems = Vec::new();
    let schemas = schemas(&mut s, database.as_deref(), &mut problems).await?;
    let mut size: u64 = 0;
    for db in &schemas {
        size = size.saturating_add(schema(&mut s, db, &mut problems).await?);
    }
    if problems.is_empty()
        && let Err(e) = dry_start(&mut s, database.as_deref()).await
    {
        problems.push(as_problem(e)?);
    }
    Ok(SourceCheck {
        server: ServerInfo {
            engine: s.flavor.engine().to_owned(),
            version: s.version.clone(),
            tls: Some(s.tls.clone()),
            notes: Vec::new(),
        },
        size_bytes: Some(size),
        problems,
    })
}

/// The schemas the dump reads: the URL's (which must exist), or every non-system schema the
/// account sees — and a problem when it cannot see them all.
async fn schemas(
    s: &mut Session,
    database: Option<&str>,
    problems: &mut Vec<CheckProblem>,
) -> Result<Vec<String>, EngineError> {
    if let Some(db) = database {
        let found = catalog::names_of(
            s,
            &format!(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
                quote_str(db)
            ),
        )
        .await?;
        if found.is_empty() {
            return Err(EngineError::new(ErrorKind::NotFound, "unknown database")
                .with_object(quote_ident(db)));
        }
        return Ok(vec![db.to_owned()]);
    }
    if !catalog::sees_every_schema(s).await? {
        problems.push(CheckProblem::privilege(
            format!("server {}", s.endpoint),
            "SHOW DATABASES",
            "dumping every schema needs to see every schema (schemas the account cannot see \
             would be missing); grant it globally, or name the database in the URL",
        ));
    }
    let mut names: Vec<String> =
        catalog::names_of(s, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
            .await?
            .into_iter()
            .filter(|n| !SYSTEM_SCHEMAS.iter().any(|x| x.eq_ignore_ascii_case(n)))
            .collect();
    names.sort();
    Ok(names)
}

/// One schema's privileges and objects; returns its `DATA_LENGTH` sum.
async fn schema(
    s: &mut Session,
    db: &str,
    problems: &mut Vec<CheckProblem>,
) -> Result<u64, EngineError> {
    let qdb = quote_ident(db);
    for privilege in catalog::missing_schema_privileges(s, db).await? {
        problems.push(CheckProblem::privilege(
            format!("database {qdb}"),
            privilege,
            format!(
                "the dump needs it database-wide: objects the account cannot see would be \
                 missing without an error (GRANT {privilege} ON {qdb}.* …)"
            ),
        ));
    }
    catalog::enter_schema(s, db).await?;
    let (entries, size) = catalog::table_entries(s, db).await?;
    for (name, kind, engine, _) in entries {
        let object = format!("{qdb}.{}", quote_ident(&name));
        let label = match kind.as_str() {
            "BASE TABLE" | "SYSTEM VERSIONED"
                if !catalog::NO_DATA_ENGINES.contains(&engine.to_ascii_uppercase().as_str()) =>
            {
                "table"
            }
            "SEQUENCE" => "sequence",
            _ => continue,
        };
        if let Err(e) = s
            .exec_drop(&format!("SELECT 1 FROM {object} LIMIT 0"), None)
            .await
        {
            if e.kind() != ErrorKind::Permission {
                return Err(e.with_object(format!("{label} {object}")));
            }
            problems.push(CheckProblem::privilege(
                format!("{label} {object}"),
                "SELECT",
                "the account may not read it",
            ));
        }
    }
    let lists = [
        (
            ObjectKind::View,
            format!(
                "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {}",
                quote_str(db)
            ),
        ),
        (
            ObjectKind::Procedure,
            format!(
                "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {} \
                 AND ROUTINE_TYPE = 'PROCEDURE'",
                quote_str(db)
            ),
        ),
        (
            ObjectKind::Function,
            format!(
                "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {} \
                 AND ROUTINE_TYPE = 'FUNCTION'",
                quote_str(db)
            ),
        ),
        (
            ObjectKind::Trigger,
            format!(
                "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {}",
                quote_str(db)
            ),
        ),
        (
            ObjectKind::Event,
            format!(
                "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {}",
                quote_str(db)
            ),
        ),
    ];
    for (kind, sql) in lists {
        let mut names = catalog::names_of(s, &sql).await?;
        names.sort();
        for name in names {
            if let Err(e) = catalog::show_object(s, kind, db, &name).await {
                if !matches!(e.kind(), ErrorKind::Permission | ErrorKind::NotFound) {
                    return Err(e);
                }
                problems.push(CheckProblem::privilege(
                    e.object().unwrap_or_default().to_owned(),
                    needed_for(kind, s.flavor),
                    e.message(),
                ));
            }
        }
    }
    Ok(size)
}

/// The privilege `SHOW CREATE` of an object of `kind` needs.
fn needed_for(kind: ObjectKind, flavor: Flavor) -> &'static str {
    match (kind, flavor) {
        (ObjectKind::View, _) => "SHOW VIEW",
        (ObjectKind::Procedure | ObjectKind::Function, Flavor::MariaDb) => "SELECT on mysql.proc",
        (ObjectKind::Procedure | ObjectKind::Function, _) => "SHOW_ROUTINE",
        (ObjectKind::Trigger, _) => "TRIGGER",
        (ObjectKind::Event, _) => "EVENT",
    }
}

/// The dump's start: its snapshot and its whole catalog read, then `ROLLBACK`.
async fn dry_start(s: &mut Session, database: Option<&str>) -> Result<(), EngineError> {
    s.exec_drop(connect::BEGIN_SNAPSHOT, None).await?;
    let loaded = catalog::load(s, database).await.map(|_| ());
    s.exec_drop("ROLLBACK", None).await?;
    loaded
}

/// A failure of the dry run as a problem, when it is about the database; a connection that
/// failed stays an error.
fn as_problem(e: EngineError) -> Result<CheckProblem, EngineError> {
    let object = e.object().unwrap_or("database").to_owned();
    match e.kind() {
        ErrorKind::Unsupported => Ok(CheckProblem::refused(object, e.message())),
        ErrorKind::Permission | ErrorKind::Query | ErrorKind::NotFound => {
            Ok(CheckProblem::other(object, e.message()))
        }
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_names_the_privilege_its_show_create_needs() {
        assert_eq!(needed_for(ObjectKind::View, Flavor::MariaDb), "SHOW VIEW");
        assert_eq!(
            needed_for(ObjectKind::Function, Flavor::MariaDb),
            "SELECT on mysql.proc"
        );
        assert_eq!(
            needed_for(ObjectKind::Procedure, Flavor::MySql),
            "SHOW_ROUTINE"
        );
        assert_eq!(needed_for(ObjectKind::Trigger, Flavor::MySql), "TRIGGER");
        assert_eq!(needed_for(ObjectKind::Event, Flavor::MariaDb), "EVENT");
    }
}
