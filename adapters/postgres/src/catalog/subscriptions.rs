//! Subscriptions, in pg_dump's form (`getSubscriptions`, `dumpSubscription` in pg_dump.c of
//! PostgreSQL 15): post-data, after the publications, `CREATE SUBSCRIPTION … WITH (connect =
//! false, …)`, so the restore neither connects to the publisher nor creates a slot, and the
//! subscription comes back disabled (as with pg_dump; `ALTER SUBSCRIPTION … ENABLE` is the
//! user's step once the publisher is ready).
//!
//! Only a superuser may read `pg_subscription.subconninfo`, so, as pg_dump, subscriptions are
//! dumped only when the dumping role is one; otherwise they are left out with a warning in
//! the summary naming them.
//!
//! The connection string holds secrets (a password, a key file's path): it goes into the
//! archive as pg_dump writes it, and nowhere else — no error, log line or warning of this
//! module carries it (errors name the subscription by its name only; a restore's error
//! labels stop before the first literal, `script::first_words`).

use std::fmt::Write as _;

use exporter_contract::EngineError;

use super::acl::guarded;
use super::{Plan, query};
use crate::cells::{Cells, read_all};
use crate::connect::Conn;
use crate::quote::{quote_ident, quote_literal};

/// SQL: the subscriptions of the current database (`pg_subscription` is shared by all).
const IN_THIS_DATABASE: &str = "s.subdbid = (SELECT d.oid FROM pg_catalog.pg_database d
                                  WHERE d.datname = pg_catalog.current_database())";

/// Append `CREATE SUBSCRIPTION` (its owner with `ownership`, guarded as every owner; its
/// comment) of every subscription of the database to `plan.post`, or — when the role is not
/// a superuser and there are some — a warning naming them to `plan.warnings`.
///
/// Options as pg_dump writes them: `connect = false`, `slot_name` (`NONE` when unset),
/// `binary = true`, `streaming = on` (`parallel` from PostgreSQL 16), `two_phase = on`,
/// `disable_on_error = true`, `synchronous_commit` unless `off`; the options of later
/// servers (`password_required = false`, `run_as_owner = true`, `origin = none`, `failover =
/// true`) when they differ from their defaults. Columns a server lacks are read as absent
/// (through `to_jsonb` of the row), so one query serves PostgreSQL 14 and later.
///
/// # Errors
///
/// Classified catalog errors; [`exporter_contract::ErrorKind::Protocol`] naming the
/// subscription (never its connection string) for a NULL where the catalogs hold a value.
pub(super) async fn subscriptions(
    conn: &mut Conn,
    ownership: bool,
    plan: &mut Plan,
) -> Result<(), EngineError> {
    let rows = query(
        conn,
        &format!(
            "SELECT pg_catalog.current_setting('is_superuser') = 'on',
                    ARRAY(SELECT s.subname::text FROM pg_catalog.pg_subscription s
                           WHERE {IN_THIS_DATABASE} ORDER BY s.subname COLLATE \"C\")"
        ),
        &[],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(());
    };
    let row = Cells::about(row, "subscriptions");
    let superuser: bool = row.get(0)?;
    let names: Vec<String> = row.get(1)?;
    if names.is_empty() {
        return Ok(());
    }
    if !superuser {
        plan.warnings.push(format!(
            "subscriptions not dumped because the role is not a superuser (as pg_dump; only a \
             superuser may read their connection strings): {}",
            names.join(", ")
        ));
        return Ok(());
    }
    let rows = query(
        conn,
        &format!(
            "SELECT pg_catalog.quote_ident(s.subname), s.subconninfo,
                    pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.quote_ident(p)
                                                       FROM pg_catalog.unnest(s.subpublications) WITH ORDINALITY u(p, i)
                                                      ORDER BY i), ', '),
                    s.subslotname::text, s.subbinary, j ->> 'substream', j ->> 'subtwophasestate',
                    j ->> 'subdisableonerr', j ->> 'subpasswordrequired', j ->> 'subrunasowner',
                    j ->> 'suborigin', j ->> 'subfailover', s.subsynccommit,
                    pg_catalog.pg_get_userbyid(s.subowner),
                    pg_catalog.obj_description(s.oid, 'pg_subscription')
               FROM pg_catalog.pg_subscription s, LATERAL pg_catalog.to_jsonb(s) j
              WHERE {IN_THIS_DATABASE}
              ORDER BY s.subname COLLATE \"C\""
        ),
        &[],
    )
    .await?;
    let subs = read_all(&rows, "subscription", 0, |r| {
        let name: String = r.get(0)?;
        let mut s = format!(
            "CREATE SUBSCRIPTION {name} CONNECTION {} PUBLICATION {} WITH (connect = false, slot_name = ",
            quote_literal(&r.get::<String>(1)?),
            r.get::<String>(2)?
        );
        match r.get::<Option<String>>(3)? {
            Some(slot) => s.push_str(&quote_literal(&slot)),
            None => s.push_str("NONE"),
        }
        let options = WithOptions {
            binary: r.get(4)?,
            streaming: r.get(5)?,
            two_phase: r.get(6)?,
            disable_on_error: r.get(7)?,
            password_required: r.get(8)?,
            run_as_owner: r.get(9)?,
            origin: r.get(10)?,
            failover: r.get(11)?,
            synchronous_commit: r.get(12)?,
        };
        s.push_str(&options.sql());
        s.push_str(");\n");
        if ownership {
            let owner: String = r.get(13)?;
            let stmt = format!("ALTER SUBSCRIPTION {name} OWNER TO {}", quote_ident(&owner));
            s.push_str(&guarded(
                std::slice::from_ref(&owner),
                &stmt,
                &format!("owner of subscription {name}"),
            ));
        }
        if let Some(comment) = r.get::<Option<String>>(14)? {
            let _ = writeln!(
                s,
                "COMMENT ON SUBSCRIPTION {name} IS {};",
                quote_literal(&comment)
            );
        }
        Ok(s)
    })?;
    plan.post.extend(subs);
    Ok(())
}

/// A subscription's options after `slot_name`, as read from the catalog (text of `to_jsonb`
/// for the columns some versions lack).
struct WithOptions {
    binary: bool,
    /// `false`/`true` (PostgreSQL 14, 15: a boolean), `f`/`t`/`p` (16 and later: off, on,
    /// parallel).
    streaming: Option<String>,
    /// `d` disabled, `p` pending, `e` enabled; absent before 15.
    two_phase: Option<String>,
    disable_on_error: Option<String>,
    password_required: Option<String>,
    run_as_owner: Option<String>,
    /// `any` (the default) or `none`; from 16.
    origin: Option<String>,
    failover: Option<String>,
    synchronous_commit: String,
}

impl WithOptions {
    /// `, binary = true, streaming = on, …` for each option away from its default.
    fn sql(&self) -> String {
        let mut s = String::new();
        if self.binary {
            s.push_str(", binary = true");
        }
        match self.streaming.as_deref() {
            Some("true" | "t") => s.push_str(", streaming = on"),
            Some("p") => s.push_str(", streaming = parallel"),
            _ => {}
        }
        if self.two_phase.as_deref().is_some_and(|t| t != "d") {
            s.push_str(", two_phase = on");
        }
        if self.disable_on_error.as_deref() == Some("true") {
            s.push_str(", disable_on_error = true");
        }
        if self.password_required.as_deref() == Some("false") {
            s.push_str(", password_required = false");
        }
        if self.run_as_owner.as_deref() == Some("true") {
            s.push_str(", run_as_owner = true");
        }
        if let Some(origin) = self.origin.as_deref().filter(|o| *o != "any") {
            let _ = write!(s, ", origin = {}", quote_literal(origin));
        }
        if self.failover.as_deref() == Some("true") {
            s.push_str(", failover = true");
        }
        if self.synchronous_commit != "off" {
            let _ = write!(
                s,
                ", synchronous_commit = {}",
                quote_literal(&self.synchronous_commit)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> WithOptions {
        WithOptions {
            binary: false,
            streaming: Some("false".to_owned()),
            two_phase: Some("d".to_owned()),
            disable_on_error: Some("false".to_owned()),
            password_required: None,
            run_as_owner: None,
            origin: None,
            failover: None,
            synchronous_commit: "off".to_owned(),
        }
    }

    #[test]
    fn default_options_add_nothing() {
        assert_eq!(defaults().sql(), "");
    }

    #[test]
    fn options_away_from_their_defaults_as_pg_dump_writes_them() {
        let o = WithOptions {
            binary: true,
            streaming: Some("true".to_owned()),
            two_phase: Some("p".to_owned()),
            disable_on_error: Some("true".to_owned()),
            synchronous_commit: "local".to_owned(),
            ..defaults()
        };
        assert_eq!(
            o.sql(),
            ", binary = true, streaming = on, two_phase = on, disable_on_error = true, synchronous_commit = 'local'"
        );
        let later = WithOptions {
            streaming: Some("p".to_owned()),
            password_required: Some("false".to_owned()),
            run_as_owner: Some("true".to_owned()),
            origin: Some("none".to_owned()),
            failover: Some("true".to_owned()),
            ..defaults()
        };
        assert_eq!(
            later.sql(),
            ", streaming = parallel, password_required = false, run_as_owner = true, origin = 'none', failover = true"
        );
    }
}
