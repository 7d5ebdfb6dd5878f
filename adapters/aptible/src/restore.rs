//! Restoring a backup into a new database (spec §8) — the cancellation guide's "restore the
//! backup to a new database first" — and removing that database again.
//!
//! # The handle convention
//!
//! A database this tool restores is named
//!
//! ```text
//! <source handle>-at-<YYYY-MM-DD-HH-MM-SS>-exporter
//! ```
//!
//! where the timestamp is the backup's `created_at` in UTC (the CLI's default handle, spec §8,
//! plus the marker `-exporter`). Handles are 1–64 characters of `[a-z0-9._-]`; when the
//! source handle is longer than 32 characters it is cut to its first 25 and followed by `-`
//! and the first 6 hex digits of the SHA-256 of the whole source handle, so the result is
//! deterministic and at most 64 characters.
//!
//! The same backup always gives the same handle, so a database left behind by an interrupted
//! run is found on the next one: [`Client::restore_backup`] reuses it when it is provisioned
//! (a restored database is never written to) and refuses, naming it, otherwise;
//! [`leftover_restores`] lists every such database of an inventory. The marker keeps a
//! user's own restores (made with the CLI's plain default handle) out of that list.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::{DatabaseEntry, Inventory};
use crate::operation::{Finished, PollOptions};
use crate::resources::{Account, Backup, Database, Operation};

/// The marker that ends every handle this tool restores into.
pub const RESTORE_MARKER: &str = "-exporter";
const TIMESTAMP_FORMAT: &str = "%Y-%m-%d-%H-%M-%S";
const MAX_HANDLE: usize = 64;
/// `-at-` + timestamp + marker.
const SUFFIX_LEN: usize = 4 + 19 + RESTORE_MARKER.len();

/// Whether `handle` follows the platform's handle rules: 1–64 characters, lowercase ASCII
/// letters, digits, `.`, `_` and `-` (spec §8).
#[must_use]
pub fn is_valid_handle(handle: &str) -> bool {
    (1..=MAX_HANDLE).contains(&handle.len())
        && handle.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// The handle of the database a backup of `source_handle` taken at `created_at` is restored
/// into (see the module docs): always valid, at most 64 characters, deterministic.
#[must_use]
pub fn restore_handle(source_handle: &str, created_at: DateTime<Utc>) -> String {
    let clean: String = source_handle
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let room = MAX_HANDLE - SUFFIX_LEN;
    let base = if clean.len() <= room && clean == source_handle {
        clean
    } else {
        let digest = Sha256::digest(source_handle.as_bytes());
        let hash = hex6(&digest);
        let keep = room - 1 - hash.len();
        let cut: String = clean.chars().take(keep).collect();
        format!("{cut}-{hash}")
    };
    format!(
        "{base}-at-{}{RESTORE_MARKER}",
        created_at.format(TIMESTAMP_FORMAT)
    )
}

fn hex6(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    digest
        .iter()
        .take(3)
        .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

/// The parts of a handle made by [`restore_handle`]: the (possibly shortened) source part and
/// the backup's time. `None` for any other handle.
#[must_use]
pub fn parse_restore_handle(handle: &str) -> Option<(&str, DateTime<Utc>)> {
    let rest = handle.strip_suffix(RESTORE_MARKER)?;
    if rest.len() < 4 + 19 + 1 || !rest.is_char_boundary(rest.len() - 19) {
        return None;
    }
    let (head, ts) = rest.split_at(rest.len() - 19);
    let source = head.strip_suffix("-at-")?;
    if source.is_empty() {
        return None;
    }
    let t = NaiveDateTime::parse_from_str(ts, TIMESTAMP_FORMAT).ok()?;
    Some((source, t.and_utc()))
}

/// What a restore asks for. Every field is optional, as the CLI sends only what is given
/// (spec §8 step 4).
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// The new database's handle; default [`restore_handle`] of the backup.
    pub handle: Option<String>,
    /// The environment to restore into; default the backup's own.
    pub destination: Option<Account>,
    /// Container size in MB.
    // UNSURE (aptible-api.md §8): the API's defaults when container_size / disk_size are
    // omitted are not documented (the dashboard sends 1024 MB; disk probably the backup's).
    pub container_size_mb: Option<u64>,
    /// Disk size in GB.
    pub disk_size_gb: Option<u64>,
    /// How to wait for the operation.
    pub poll: PollOptions,
}

/// A database this tool restored from a backup (or found left behind by an earlier run).
///
/// Only this module constructs it: [`Client::deprovision_restored`] accepts nothing else, so
/// the only database the dump path can remove is one it restored itself.
#[derive(Debug, Clone)]
pub struct RestoredDatabase {
    database: Database,
    backup_id: Option<u64>,
    operation_id: Option<u64>,
    reused: bool,
}

impl RestoredDatabase {
    /// The new database.
    #[must_use]
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The backup it was restored from (unknown for a left-over found by handle only).
    #[must_use]
    pub fn backup_id(&self) -> Option<u64> {
        self.backup_id
    }

    /// The restore operation's id (none when an existing database was reused).
    #[must_use]
    pub fn operation_id(&self) -> Option<u64> {
        self.operation_id
    }

    /// Whether the database already existed (left behind by an earlier run) and was reused.
    #[must_use]
    pub fn reused(&self) -> bool {
        self.reused
    }
}

/// Databases of an inventory whose handle follows this tool's restore convention: left
/// behind by an interrupted run (or kept with `--keep-restored`).
#[must_use]
pub fn leftover_restores(inventory: &Inventory) -> Vec<RestoredDatabase> {
    inventory
        .databases
        .iter()
        .filter(|e| parse_restore_handle(&e.database.handle).is_some())
        .map(|e| RestoredDatabase {
            database: e.database.clone(),
            backup_id: None,
            operation_id: None,
            reused: true,
        })
        .collect()
}

/// The backup `--from-backup latest` restores: the newest that is not a cross-region copy,
/// else the newest copy.
#[must_use]
pub fn latest_backup(entry: &DatabaseEntry) -> Option<&Backup> {
    entry
        .backups
        .iter()
        .find(|b| !b.is_copy())
        .or_else(|| entry.backups.first())
}

#[derive(Serialize)]
struct RestoreBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    handle: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disk_size: Option<u64>,
    /// The destination account's self href (spec §8 step 4).
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_account: Option<&'a str>,
}

impl Client {
    /// Restore `backup` into a new database and wait until it exists (spec §8): `POST
    /// /backups/{id}/operations` with `type: restore` and the handle, poll the operation, then
    /// find the new database by handle in the destination environment.
    ///
    /// When a database with the handle already exists there (an earlier, interrupted run) and
    /// is provisioned, it is returned with [`RestoredDatabase::reused`] and nothing is posted.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for an invalid explicit handle; [`ErrorKind::Client`] naming a
    /// left-over database that is not provisioned; [`ErrorKind::Operation`] when the restore
    /// fails; [`ErrorKind::NotFound`] when the new database cannot be found afterwards.
    ///
    /// # Cancel safety
    ///
    /// Cancelling after the POST leaves the restore running on the platform; the next run
    /// finds its database by handle.
    pub async fn restore_backup(
        &self,
        backup: &Backup,
        options: &RestoreOptions,
    ) -> Result<RestoredDatabase> {
        let what = format!("backup #{}", backup.id);
        #[allow(clippy::single_match_else)]
        let handle = match &options.handle {
            Some(h) => h.clone(),
            None => {
                let source = match &backup.database_handle {
                    Some(h) => h.clone(),
                    None => self.source_handle(backup).await?,
                };
                let created = backup.created().ok_or_else(|| {
                    Error::new(
                        ErrorKind::Protocol,
                        what.clone(),
                        format!("created_at is not a timestamp: {}", backup.created_at),
                    )
                })?;
                restore_handle(&source, created)
            }
        };
        if !is_valid_handle(&handle) {
            return Err(Error::new(
                ErrorKind::Config,
                what,
                format!(
                    "{handle:?} is not a valid handle (1-64 characters: lowercase letters, digits, '.', '_', '-')"
                ),
            ));
        }
        #[allow(clippy::single_match_else)]
        let destination = match &options.destination {
            Some(a) => a.clone(),
            None => {
                let href = backup.links.href("account").ok_or_else(|| {
                    Error::new(ErrorKind::Protocol, what.clone(), "has no `account` link")
                })?;
                self.get::<Account>(href).await?
            }
        };
        if let Some(existing) = self.find_database(&destination, &handle).await? {
            if existing.is_provisioned() {
                return Ok(RestoredDatabase {
                    database: existing,
                    backup_id: Some(backup.id),
                    operation_id: None,
                    reused: true,
                });
            }
            return Err(Error::new(
                ErrorKind::Client,
                format!("database {handle}"),
                format!(
                    "exists from an earlier run but is {} (remove it, or wait for it, before restoring {what} again)",
                    existing.status.as_deref().unwrap_or("in an unknown state")
                ),
            ));
        }
        let operations = backup.links.href("operations").ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                what.clone(),
                "has no `operations` link",
            )
        })?;
        let body = RestoreBody {
            kind: "restore",
            handle: &handle,
            container_size: options.container_size_mb,
            disk_size: options.disk_size_gb,
            destination_account: options
                .destination
                .as_ref()
                .and_then(|a| a.links.href("self")),
        };
        let operation: Operation = self.post(operations, &body).await?;
        self.wait_operation(&operation, &options.poll).await?;
        // UNSURE (aptible-api.md §8): whether the new database is visible before the
        // operation succeeds; it is looked up only afterwards.
        let database = self
            .find_database(&destination, &handle)
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("database {handle}"),
                    format!(
                        "restore operation #{} succeeded but the database is not in environment {}",
                        operation.id, destination.handle
                    ),
                )
            })?;
        Ok(RestoredDatabase {
            database,
            backup_id: Some(backup.id),
            operation_id: Some(operation.id),
            reused: false,
        })
    }

    /// Deprovision a database this tool restored (for `--keep-restored` off) and wait until it
    /// is gone (a 404 afterwards counts as done, spec §4.2). Accepts only a
    /// [`RestoredDatabase`], and checks again that its handle follows the restore convention.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the handle does not follow the convention (never
    /// expected); the client's and [`Client::wait_operation`]'s errors.
    pub async fn deprovision_restored(
        &self,
        restored: &RestoredDatabase,
        poll: &PollOptions,
    ) -> Result<Option<u64>> {
        let db = &restored.database;
        if parse_restore_handle(&db.handle).is_none() && restored.operation_id.is_none() {
            return Err(Error::new(
                ErrorKind::Config,
                format!("database {}", db.handle),
                "was not restored by this tool; refusing to deprovision it",
            ));
        }
        let op = crate::destructive::post_deprovision(
            self,
            &db.links,
            &format!("database {}", db.handle),
        )
        .await?;
        match self.wait_operation(&op, poll).await? {
            Finished::Succeeded(_) | Finished::Gone => Ok(Some(op.id)),
        }
    }

    /// The database with `handle` in `account`, if any (listing and matching, spec §8 step 6).
    ///
    /// # Errors
    ///
    /// The client's errors.
    pub async fn find_database(&self, account: &Account, handle: &str) -> Result<Option<Database>> {
        let href = account.links.href("databases").ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!("environment {}", account.handle),
                "has no `databases` link",
            )
        })?;
        let all: Vec<Database> = self
            .list(href, "databases", &[("no_embed", "true")])
            .await?;
        Ok(all.into_iter().find(|d| d.handle == handle))
    }

    async fn source_handle(&self, backup: &Backup) -> Result<String> {
        Ok(self.backup_database(backup).await?.handle)
    }

    /// The database a backup was taken of, also when it was deprovisioned since (`GET
    /// <backup._links.database>?with_deleted=true`, spec §3.4, §8 step 2): its id, handle and
    /// type for a backup whose database no longer exists (an orphaned backup).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Protocol`] when the backup has no `database` link; the client's errors.
    pub async fn backup_database(&self, backup: &Backup) -> Result<Database> {
        let href = backup.links.href("database").ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!("backup #{}", backup.id),
                "has no `database` link",
            )
        })?;
        let mut url = url::Url::parse(href).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                href.to_owned(),
                format!("not a URL ({e})"),
            )
        })?;
        url.query_pairs_mut().append_pair("with_deleted", "true");
        self.get(url.as_str()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap()
    }

    #[test]
    fn default_handle_and_roundtrip() {
        let h = restore_handle("main-db", t());
        assert_eq!(h, "main-db-at-2026-02-03-04-05-06-exporter");
        assert!(is_valid_handle(&h));
        assert_eq!(parse_restore_handle(&h), Some(("main-db", t())));
    }

    #[test]
    fn long_handles_are_shortened_deterministically() {
        let exactly = "a".repeat(32);
        let h = restore_handle(&exactly, t());
        assert_eq!(h.len(), 64);
        assert!(h.starts_with(&exactly));
        let long = format!("{}-reporting-db", "customer".repeat(6));
        let h1 = restore_handle(&long, t());
        let h2 = restore_handle(&long, t());
        assert_eq!(h1, h2);
        assert_eq!(h1.len(), 64);
        assert!(is_valid_handle(&h1), "{h1}");
        let (source, when) = parse_restore_handle(&h1).unwrap();
        assert_eq!(when, t());
        assert_eq!(source.len(), 32);
        assert!(long.starts_with(&source[..25]));
        // Two long handles with the same first 25 characters stay apart.
        let other = format!("{}-analytics-db", "customer".repeat(6));
        assert_ne!(restore_handle(&other, t()), h1);
        // 64 characters, the maximum, never more.
        let max = "b".repeat(64);
        assert!(restore_handle(&max, t()).len() <= 64);
    }

    #[test]
    fn other_handles_are_not_restores() {
        assert_eq!(parse_restore_handle("main-db"), None);
        assert_eq!(parse_restore_handle("main-db-at-2026-02-03-04-05-06"), None);
        assert_eq!(
            parse_restore_handle("-at-2026-02-03-04-05-06-exporter"),
            None
        );
        assert_eq!(
            parse_restore_handle("x-at-2026-13-03-04-05-06-exporter"),
            None
        );
    }

    #[test]
    fn handle_rules() {
        assert!(is_valid_handle("a.b_c-1"));
        assert!(!is_valid_handle(""));
        assert!(!is_valid_handle("Main"));
        assert!(!is_valid_handle(&"a".repeat(65)));
        assert!(!is_valid_handle("a b"));
    }
}
