//! [`exporter_contract::Source::check`] for Redis: the commands the dump sends, each one the
//! user may not run named, and the keys it may not read.
//!
//! Both formats first pass the dump's own opening (connect, `AUTH`, `INFO server`, `INFO
//! cluster`: version and deployment) and select the URL's `/db`. Then:
//!
//! - **RESP** (the default) sends, per logical database holding keys: `SELECT`, `SCAN`, and
//!   per key, inside `MULTI … EXEC`, `PEXPIRETIME` (before 7.0: `TIME` and `PTTL`) and
//!   `DUMP`; on 7.0 and later `FUNCTION LIST` and, when libraries exist, `FUNCTION DUMP`.
//!   (`MEMORY USAGE` only sizes batches, in databases holding payloads over 64 KiB; the dump
//!   goes on without it.) The check sends
//!   `SELECT` and a short `SCAN` itself, then queues the per-key commands for a sample of up
//!   to [`SAMPLE_KEYS`] keys of each database inside `MULTI` and ends with `DISCARD`: Redis
//!   checks a queued command against the user's ACL (command and key patterns) when it is
//!   queued, and nothing queued runs. `EXEC` is sent alone (outside a transaction it is
//!   refused as such, but only after its ACL check). This works for any user, while `ACL
//!   DRYRUN` needs the `@admin` category a dumping user seldom has. Key patterns are checked
//!   on the sample only; the dump checks every key and fails naming the first it may not
//!   read.
//! - **RDB** needs `SYNC` (after the optional `REPLCONF`s), which cannot be tried without
//!   starting a snapshot: on 7.0 and later it is checked with `ACL DRYRUN <user> SYNC` when
//!   the user may run that; otherwise the report says it could not be checked (a note, not a
//!   problem). A `SYNC` that `COMMAND INFO` does not know (renamed away) is a problem.
//!
//! Size: `used_memory_dataset` of `INFO memory` (the dump's own estimate) for the whole
//! server; for a `/db` URL the share of its keys.

use bytes::Bytes;
use exporter_contract::{CheckProblem, Endpoint, EngineError, ErrorKind, ServerInfo, SourceCheck};

use crate::conn::{self, Reply, encode};
use crate::logical::{TtlMode, ttl_command_name};
use crate::{ENGINE, Opened, RedisFormat, check_db, open, refuse_rdb_with_db};

/// Keys of each logical database whose ACL permissions are checked.
pub const SAMPLE_KEYS: usize = 20;

/// A key name used to check command permissions in a database without keys (key-pattern
/// refusals of it are not reported: the dump would never read it).
const PLACEHOLDER_KEY: &[u8] = b"exporter-check-placeholder";

/// Check `endpoint` for a dump in `format`. See the module docs.
pub(crate) async fn check(
    endpoint: Endpoint,
    format: RedisFormat,
) -> Result<SourceCheck, EngineError> {
    let mut opened = open(&endpoint).await?;
    if format == RedisFormat::Rdb {
        refuse_rdb_with_db(&opened.target)?;
    }
    check_db(&mut opened).await?;
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    if opened.conn.password_ignored {
        notes.push(conn::PASSWORD_IGNORED.to_owned());
    }
    let keyspace = opened.conn.info("keyspace").await?;
    match format {
        RedisFormat::Resp => resp(&mut opened, &keyspace, &mut problems).await?,
        RedisFormat::Rdb => rdb(&mut opened, &mut problems, &mut notes).await?,
    }
    let memory = opened.conn.info("memory").await?;
    let size_bytes = crate::size_hint(&memory).map(|dataset| match opened.target.db {
        None => dataset,
        Some(db) => {
            let counts = conn::keyspace_counts(&keyspace);
            let total: u64 = counts.iter().map(|(_, n)| n).sum();
            let own = counts.iter().find(|(d, _)| *d == db).map_or(0, |(_, n)| *n);
            if total == 0 {
                0
            } else {
                (u128::from(dataset) * u128::from(own) / u128::from(total)) as u64
            }
        }
    });
    Ok(SourceCheck {
        server: ServerInfo {
            engine: ENGINE.to_owned(),
            version: opened.version.clone(),
            tls: Some(opened.conn.tls.clone()),
            notes,
        },
        size_bytes,
        problems,
    })
}

/// Collects problems without repeating one for the same object.
#[derive(Default)]
struct Found(Vec<CheckProblem>);

impl Found {
    fn command(&mut self, command: &str, why: &str) {
        let object = format!("command {command}");
        if !self.0.iter().any(|p| p.object == object) {
            self.0.push(CheckProblem::privilege(
                object,
                command,
                format!("the user may not run it ({why})"),
            ));
        }
    }

    fn unknown(&mut self, command: &str) {
        let object = format!("command {command}");
        if !self.0.iter().any(|p| p.object == object) {
            self.0.push(CheckProblem::other(
                object,
                "the server does not know it (renamed or disabled), and the dump sends it",
            ));
        }
    }

    fn key(&mut self, db: u32, key: &[u8], command: &str) {
        let object = format!("key {} in db{db}", conn::escape_key(key));
        if !self.0.iter().any(|p| p.object == object) {
            self.0.push(CheckProblem::privilege(
                object,
                "read access (ACL key patterns)",
                format!(
                    "the user's key patterns refuse {command} on it; the dump reads every key \
                     (grant ~* or %R~*)"
                ),
            ));
        }
    }
}

/// Whether a `NOPERM` reply is about keys (key patterns) rather than the command.
fn about_keys(error: &str) -> bool {
    let lower = error.to_ascii_lowercase();
    lower.contains("key") && !lower.contains("command")
}

/// The RESP format's commands, on every database that holds keys (or the URL's `/db`).
async fn resp(
    opened: &mut Opened,
    keyspace: &str,
    problems: &mut Vec<CheckProblem>,
) -> Result<(), EngineError> {
    let mode = if opened.major_minor >= (7, 0) {
        TtlMode::ExpireTime
    } else {
        TtlMode::TimePlusPttl
    };
    let mut found = Found::default();
    let dbs = if let Some(db) = opened.target.db {
        vec![db]
    } else {
        let dbs = conn::keyspace_dbs(keyspace);
        if dbs.is_empty() { vec![0] } else { dbs }
    };
    if opened.major_minor >= (7, 0) {
        functions(opened, &mut found).await?;
    }
    // EXEC alone: refused as "EXEC without MULTI", but only after its ACL check.
    if let Reply::Error(e) = opened.conn.command(&[b"EXEC"]).await?
        && e.starts_with("NOPERM")
    {
        found.command("EXEC", "each batch of DUMPs is one MULTI … EXEC");
    }
    for db in dbs {
        let number = db.to_string();
        match opened.conn.command(&[b"SELECT", number.as_bytes()]).await? {
            Reply::Error(e) if e.starts_with("NOPERM") => {
                found.command("SELECT", "the dump selects each logical database");
                continue;
            }
            Reply::Error(e) => {
                return Err(
                    conn::server_error(&e, "SELECT").with_object(opened.target.db_object(db))
                );
            }
            _ => {}
        }
        let sample = if let Some(keys) = sample(opened, db).await? {
            keys
        } else {
            found.command("SCAN", "the dump lists the keys with SCAN");
            Vec::new()
        };
        queued(opened, db, &sample, mode, &mut found).await?;
    }
    problems.extend(found.0);
    Ok(())
}

/// Up to [`SAMPLE_KEYS`] keys of the selected database (`SCAN`, a few pages at most); `None`
/// when the user may not `SCAN`.
async fn sample(opened: &mut Opened, db: u32) -> Result<Option<Vec<Bytes>>, EngineError> {
    let mut keys = Vec::new();
    let mut cursor = Bytes::from_static(b"0");
    for _ in 0..10 {
        let reply = opened
            .conn
            .command(&[b"SCAN", &cursor, b"COUNT", b"100"])
            .await?;
        let items = match reply {
            Reply::Error(e) if e.starts_with("NOPERM") => return Ok(None),
            Reply::Error(e) => {
                return Err(conn::server_error(&e, "SCAN").with_object(opened.target.db_object(db)));
            }
            Reply::Array(Some(items)) if items.len() == 2 => items,
            other => return Err(opened.conn.unexpected("SCAN", &other)),
        };
        let mut items = items.into_iter();
        let (Some(Reply::Bulk(Some(next))), Some(Reply::Array(Some(page)))) =
            (items.next(), items.next())
        else {
            return Err(
                EngineError::new(ErrorKind::Protocol, "SCAN: malformed reply")
                    .with_object(opened.target.db_object(db)),
            );
        };
        for k in page {
            if let Reply::Bulk(Some(k)) = k
                && keys.len() < SAMPLE_KEYS
            {
                keys.push(k);
            }
        }
        if keys.len() >= SAMPLE_KEYS || &next[..] == b"0" {
            break;
        }
        cursor = next;
    }
    Ok(Some(keys))
}

/// Queue the dump's per-key commands for `keys` (or a placeholder) inside `MULTI`, read
/// whether each was accepted, and `DISCARD`: nothing runs.
async fn queued(
    opened: &mut Opened,
    db: u32,
    keys: &[Bytes],
    mode: TtlMode,
    found: &mut Found,
) -> Result<(), EngineError> {
    let placeholder = [Bytes::from_static(PLACEHOLDER_KEY)];
    let (keys, real) = if keys.is_empty() {
        (&placeholder[..], false)
    } else {
        (keys, true)
    };
    match opened.conn.command(&[b"MULTI"]).await? {
        Reply::Status(_) => {}
        Reply::Error(e) if e.starts_with("NOPERM") => {
            // Without a transaction the commands would run (and DUMP send whole payloads):
            // the rest cannot be checked this way, and the dump cannot run anyway.
            found.command(
                "MULTI",
                "each key's payload and expiry are read in one transaction",
            );
            return Ok(());
        }
        other => return Err(opened.conn.unexpected("MULTI", &other)),
    }
    let ttl = ttl_command_name(mode);
    let mut cmds = Vec::new();
    let mut expected: Vec<(&str, Option<&Bytes>)> = Vec::new();
    if mode == TtlMode::TimePlusPttl {
        encode(&mut cmds, &[b"TIME"]);
        expected.push(("TIME", None));
    }
    for k in keys {
        encode(&mut cmds, &[ttl.as_bytes(), k]);
        expected.push((ttl, Some(k)));
        encode(&mut cmds, &[b"DUMP", k]);
        expected.push(("DUMP", Some(k)));
    }
    encode(&mut cmds, &[b"DISCARD"]);
    opened.conn.send(&cmds).await?;
    for (command, key) in &expected {
        match opened.conn.read_reply().await? {
            Reply::Status(_) => {}
            Reply::Error(e) if e.starts_with("NOPERM") => {
                if about_keys(&e) {
                    if let (true, Some(k)) = (real, key) {
                        found.key(db, k, command);
                    }
                } else {
                    found.command(command, "the dump reads every key's payload and expiry");
                }
            }
            Reply::Error(e) if e.starts_with("ERR unknown command") => {
                found.unknown(command);
            }
            Reply::Error(e) => {
                return Err(
                    conn::server_error(&e, command).with_object(opened.target.db_object(db))
                );
            }
            other => return Err(opened.conn.unexpected(command, &other)),
        }
    }
    match opened.conn.read_reply().await? {
        Reply::Status(_) => Ok(()),
        // Without DISCARD the transaction would stay open on this connection, which is
        // closed right after the check anyway.
        Reply::Error(e) if e.starts_with("NOPERM") => Ok(()),
        other => Err(opened.conn.unexpected("DISCARD", &other)),
    }
}

/// `FUNCTION LIST` (and `FUNCTION DUMP` when libraries exist), as the dump sends them.
async fn functions(opened: &mut Opened, found: &mut Found) -> Result<(), EngineError> {
    let list = match opened
        .conn
        .command(&[b"FUNCTION", b"LIST", b"WITHCODE"])
        .await?
    {
        Reply::Error(e) if e.starts_with("NOPERM") => {
            found.command(
                "FUNCTION LIST",
                "the dump reads the server's function libraries",
            );
            return Ok(());
        }
        Reply::Array(Some(list)) => list,
        _ => return Ok(()),
    };
    if !list.is_empty()
        && let Reply::Error(e) = opened.conn.command(&[b"FUNCTION", b"DUMP"]).await?
        && e.starts_with("NOPERM")
    {
        found.command(
            "FUNCTION DUMP",
            "the server holds function libraries, which the dump saves",
        );
    }
    Ok(())
}

/// The RDB format's `SYNC`: known to the server, and allowed by the ACL where that can be
/// asked without starting a snapshot.
async fn rdb(
    opened: &mut Opened,
    problems: &mut Vec<CheckProblem>,
    notes: &mut Vec<String>,
) -> Result<(), EngineError> {
    if let Reply::Array(Some(info)) = opened.conn.command(&[b"COMMAND", b"INFO", b"SYNC"]).await?
        && matches!(info.first(), Some(Reply::Array(None) | Reply::Bulk(None)))
    {
        problems.push(CheckProblem::other(
            "command SYNC",
            "the server does not know it (renamed or disabled): the RDB format needs \
             replication; the default RESP format needs only SCAN, DUMP and PEXPIRETIME",
        ));
        return Ok(());
    }
    let user = match opened.conn.command(&[b"ACL", b"WHOAMI"]).await? {
        Reply::Bulk(Some(u)) => Some(u),
        Reply::Status(u) => Some(Bytes::from(u.into_bytes())),
        _ => None,
    };
    let verdict = match &user {
        Some(user) if opened.major_minor >= (7, 0) => Some(
            opened
                .conn
                .command(&[b"ACL", b"DRYRUN", user, b"SYNC"])
                .await?,
        ),
        _ => None,
    };
    match verdict {
        Some(Reply::Status(_)) => {}
        Some(Reply::Bulk(Some(why))) => problems.push(CheckProblem::privilege(
            "command SYNC",
            "SYNC",
            format!(
                "{} (the RDB format reads the snapshot through replication; the default RESP \
                 format needs only SCAN, DUMP and PEXPIRETIME)",
                String::from_utf8_lossy(&why)
            ),
        )),
        _ => notes.push(
            "SYNC (the RDB format's replication handshake) cannot be checked without starting \
             a snapshot; the dump finds out when it starts"
                .to_owned(),
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noperm_replies_say_whether_keys_or_the_command_are_refused() {
        assert!(about_keys(
            "NOPERM this user has no permissions to access one of the keys used as arguments"
        ));
        assert!(about_keys("NOPERM No permissions to access a key"));
        assert!(!about_keys(
            "NOPERM this user has no permissions to run the 'dump' command"
        ));
        assert!(!about_keys(
            "NOPERM User app has no permissions to run the 'dump' command"
        ));
    }
}
