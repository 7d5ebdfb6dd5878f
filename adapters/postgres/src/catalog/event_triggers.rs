//! Event triggers, the very last statements of the script (pg_dump's `dumpEventTrigger`,
//! PostgreSQL 15: post-data, sorted after everything else). An event trigger fires during the
//! restore itself for every DDL command that follows it — a trigger that logs DDL into a
//! table would add rows to the restore that the source does not have — so nothing of the
//! dump comes after them but their own owners and comments, which fire none: commands on
//! event triggers are not among the commands event triggers fire for
//! (<https://www.postgresql.org/docs/15/event-trigger-matrix.html>; checked by
//! `tests/kinds.rs`, `event_triggers_come_last_in_their_states`).

use std::fmt::Write as _;

use exporter_contract::EngineError;

use super::acl::guarded;
use super::{Plan, not_ext, query};
use crate::cells::Cells;
use crate::connect::Conn;
use crate::quote::{quote_ident, quote_literal};

/// `ALTER EVENT TRIGGER name <state>;` for `pg_event_trigger.evtenabled`: `D` disabled, `R`
/// replica, `A` always, `O` (origin, the default) enabled.
fn state_statement(name: &str, state: &str) -> String {
    let verb = match state {
        "D" => "DISABLE",
        "A" => "ENABLE ALWAYS",
        "R" => "ENABLE REPLICA",
        _ => "ENABLE",
    };
    format!("ALTER EVENT TRIGGER {name} {verb};\n")
}

/// Append every event trigger outside extensions to `plan.post`, after everything else, as
/// pg_dump writes it: `CREATE EVENT TRIGGER name ON event [WHEN TAG IN ('…', …)] EXECUTE
/// FUNCTION f();`, its enabled state when not the default, its owner (with `ownership`;
/// guarded, see `acl::guarded`: the server wants a superuser as the owner) and its comment.
///
/// # Errors
///
/// Classified catalog errors; [`exporter_contract::ErrorKind::Protocol`] naming the trigger
/// for a NULL where the catalogs always hold a value.
pub(super) async fn event_triggers(
    conn: &mut Conn,
    ownership: bool,
    plan: &mut Plan,
) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT pg_catalog.quote_ident(e.evtname), pg_catalog.quote_ident(e.evtevent),
                    pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.quote_literal(x)
                                                       FROM pg_catalog.unnest(e.evttags) WITH ORDINALITY t(x, i)
                                                      ORDER BY i), ', '),
                    e.evtfoid::pg_catalog.regproc::text, e.evtenabled::text,
                    pg_catalog.pg_get_userbyid(e.evtowner),
                    pg_catalog.obj_description(e.oid, 'pg_event_trigger')
               FROM pg_catalog.pg_event_trigger e
              WHERE {}
              ORDER BY e.evtname COLLATE \"C\"",
            not_ext("pg_event_trigger", "e.oid")
        ),
        &[],
    )
    .await?;
    for r in &rows {
        let r = Cells::new(r, "event trigger", 0);
        let name: String = r.get(0)?;
        let mut s = format!("CREATE EVENT TRIGGER {name} ON {}", r.get::<String>(1)?);
        let tags: Option<String> = r.get(2)?;
        if let Some(tags) = tags.filter(|t| !t.is_empty()) {
            let _ = write!(s, "\n         WHEN TAG IN ({tags})");
        }
        let _ = writeln!(s, "\n   EXECUTE FUNCTION {}();", r.get::<String>(3)?);
        let state: String = r.get(4)?;
        if state != "O" {
            s.push_str(&state_statement(&name, &state));
        }
        if ownership {
            let owner: String = r.get(5)?;
            let stmt = format!(
                "ALTER EVENT TRIGGER {name} OWNER TO {}",
                quote_ident(&owner)
            );
            s.push_str(&guarded(
                std::slice::from_ref(&owner),
                &stmt,
                &format!("owner of event trigger {name}"),
            ));
        }
        if let Some(text) = r.get::<Option<String>>(6)? {
            let _ = writeln!(
                s,
                "COMMENT ON EVENT TRIGGER {name} IS {};",
                quote_literal(&text)
            );
        }
        plan.post.push(s);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_as_pg_dump_writes_them() {
        assert_eq!(
            state_statement("e", "D"),
            "ALTER EVENT TRIGGER e DISABLE;\n"
        );
        assert_eq!(
            state_statement("e", "A"),
            "ALTER EVENT TRIGGER e ENABLE ALWAYS;\n"
        );
        assert_eq!(
            state_statement("e", "R"),
            "ALTER EVENT TRIGGER e ENABLE REPLICA;\n"
        );
        assert_eq!(state_statement("e", "O"), "ALTER EVENT TRIGGER e ENABLE;\n");
    }
}
