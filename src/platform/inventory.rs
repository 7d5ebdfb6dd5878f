//! The inventory step: the databases of a platform environment, and what `dump --all` does with
//! each (issue 13). Settings stay pure; this is the I/O that follows them: it reads the
//! environment ([`read`]), decides per database ([`plan`], pure and unit-tested) and turns the
//! decision into the dump's targets ([`EnvironmentPlan::targets`]).
//!
//! Per database, one [`Action`]:
//!
//! - PostgreSQL, MySQL and Redis are dumped **live** through a tunnel, or **from a backup**
//!   restored into a new database first (`--from-backup latest|ID`, the cancellation guide's
//!   "restore the backup to a new database first");
//! - a **replica** (`_links.initialize_from` naming a database of the environment) is covered
//!   by its primary and not dumped;
//! - any other type (MongoDB, Elasticsearch, CouchDB, InfluxDB, RabbitMQ, SFTP, …) is **not
//!   exportable** by this tool: `dump --all` refuses before any tunnel is opened, unless
//!   `--skip-unsupported` records it as skipped ([`InventoryError::Unsupported`], exit 1);
//! - a database **this tool restored** in an earlier run (its handle follows
//!   [`exporter_aptible::restore`]'s convention) is not dumped itself: it is reused when it is
//!   the restore of a backup this run reads, and named otherwise;
//! - with `--include-orphaned-backups`, the newest backup of each database that no longer
//!   exists is dumped too (restored into a new database first).
//!
//! Archives are named by database handle: handles are unique within an environment and use
//! only the characters an archive name may have (aptible-api.md §8, "handle rules"). An
//! orphaned backup whose handle a live database took again is named
//! `<handle>-backup-<backup id>`.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use exporter_aptible::restore::{latest_backup, leftover_restores, restore_handle};
use exporter_aptible::{Backup, Client, Database, DatabaseEntry, Inventory};
use serde::Serialize;

use crate::archive::manifest::{PlatformBackup, PlatformDatabase, PlatformOrigin};
use crate::engines::EngineKind;
use crate::settings::{
    BackupChoice, DatabaseTarget, PlatformInventory, PlatformRead, PlatformTarget, SkippedDatabase,
};

/// What `dump --all` does with one database of the environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Dumped live, through a tunnel.
    Live,
    /// Dumped from a backup, restored into a new database first.
    FromBackup {
        /// The backup's id.
        backup_id: u64,
        /// When the platform took it.
        backup_created_at: DateTime<Utc>,
        /// The handle of the database it is restored into.
        restored_handle: String,
    },
    /// A replica: not dumped, its primary is.
    Replica {
        /// The primary's handle.
        primary: String,
    },
    /// A type this tool cannot dump.
    Unsupported,
    /// `--from-backup latest`, and the database has no backup.
    NoBackup,
    /// A database this tool restored from a backup in an earlier run (left behind by an
    /// interrupted run, or kept with `--keep-restored`): not dumped itself.
    Restored {
        /// Whether this run reuses it (it is the restore of a backup this run reads).
        reused: bool,
    },
}

impl Action {
    /// What it means, in words, for listings.
    #[must_use]
    pub fn describe(&self, handle: &str) -> String {
        match self {
            Self::Live => "dump live through a tunnel".to_owned(),
            Self::FromBackup {
                backup_id,
                backup_created_at,
                ..
            } => format!(
                "dump backup #{backup_id} ({}) restored into a new database",
                backup_created_at.format("%Y-%m-%d %H:%M:%SZ")
            ),
            Self::Replica { primary } => {
                format!("not dumped: a replica, covered by its primary {primary}")
            }
            Self::Unsupported => format!(
                "not exportable by this tool (dump --all refuses; --skip-unsupported skips it; \
                 `exporter tunnel {handle}` for its own tools)"
            ),
            Self::NoBackup => "no backup to dump (dump --all --from-backup refuses)".to_owned(),
            Self::Restored { reused: true } => {
                "restored by an earlier run: reused for its backup's dump".to_owned()
            }
            Self::Restored { reused: false } => {
                "restored by an earlier run: not dumped (deprovision it when no longer needed)"
                    .to_owned()
            }
        }
    }
}

/// One database of the environment (or one orphaned backup) and what `dump --all` does with
/// it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedDatabase {
    /// The archive name (the handle; see the module docs for orphaned backups).
    pub name: String,
    /// The database's handle.
    pub handle: String,
    /// The platform's type (`postgresql`, `mongodb`, …).
    #[serde(rename = "type")]
    pub database_type: String,
    /// The platform's status (`provisioned`, …; `deleted` for an orphaned backup's database).
    pub status: Option<String>,
    /// The image version.
    pub version: Option<String>,
    /// Disk size in GB.
    pub disk_size_gb: Option<u64>,
    /// How many backups it has.
    pub backups: usize,
    /// When its newest backup was taken, as the platform wrote it.
    pub newest_backup: Option<String>,
    /// The primary's handle, for a replica.
    pub replica_of: Option<String>,
    /// The database no longer exists: this entry is one of its orphaned backups.
    pub deleted: bool,
    /// What `dump --all` does with it.
    #[serde(flatten)]
    pub action: Action,
    /// `action` in words.
    pub plan: String,
    #[serde(skip)]
    engine: Option<EngineKind>,
    #[serde(skip)]
    read: Option<PlatformRead>,
    #[serde(skip)]
    record: PlatformDatabase,
}

/// An environment's databases and the decision for each, in handle order (orphaned backups
/// last).
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentPlan {
    /// The platform: `aptible`.
    pub platform: String,
    /// The environment's handle.
    pub environment: String,
    /// The environment's id.
    pub environment_id: u64,
    /// Whether the environment has a CA certificate (`ca_body`) that tunnel connections
    /// verify the servers against.
    pub has_ca: bool,
    /// Every database, and the orphaned backups asked for.
    pub databases: Vec<PlannedDatabase>,
}

/// Why the inventory step stopped.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The platform could not be read.
    #[error(transparent)]
    Platform(#[from] exporter_aptible::Error),
    /// Databases of types this tool cannot dump, and no `--skip-unsupported` (exit 1).
    #[error(
        "environment {environment} has {} database(s) this tool cannot export: {}; nothing was dumped",
        databases.len(),
        databases.join(", ")
    )]
    Unsupported {
        /// The environment's handle.
        environment: String,
        /// `handle (type)` of each.
        databases: Vec<String>,
    },
    /// `--from-backup latest` and databases without a backup (exit 1).
    #[error(
        "--from-backup: {} database(s) of environment {environment} have no backup: {}; nothing was dumped",
        handles.len(),
        handles.join(", ")
    )]
    NoBackup {
        /// The environment's handle.
        environment: String,
        /// The databases' handles.
        handles: Vec<String>,
    },
    /// `--from-backup ID` names no backup of the environment (exit 2).
    #[error("--from-backup {id}: no backup #{id} in environment {environment}")]
    BackupNotFound {
        /// The id given.
        id: u64,
        /// The environment's handle.
        environment: String,
    },
    /// A backup's time does not parse (exit 3).
    #[error("backup #{id} of {handle}: created_at {created_at:?} is not a timestamp")]
    BadBackup {
        /// The backup's id.
        id: u64,
        /// Its database's handle.
        handle: String,
        /// What the platform sent.
        created_at: String,
    },
    /// Nothing of the environment can be dumped (exit 1).
    #[error("environment {environment} has no database this tool can dump")]
    NothingToDump {
        /// The environment's handle.
        environment: String,
    },
}

/// Read the environment named by `options` and plan each database: the environment, its
/// inventory (databases with images, disks, backups and replicas), and for orphaned backups
/// asked for (`--include-orphaned-backups`, or `--from-backup ID` of a deleted database) the
/// deleted database they belong to (`with_deleted=true`).
///
/// # Errors
///
/// [`InventoryError::Platform`] for the platform's errors (a missing or expired token among
/// them); the planning errors of [`plan`].
pub async fn read(
    client: &Client,
    options: &PlatformInventory,
) -> Result<EnvironmentPlan, InventoryError> {
    let env = client.environment(&options.settings.environment).await?;
    let inventory = client.inventory(&env).await?;
    let wanted = match options.from_backup {
        Some(BackupChoice::Id(id))
            if !inventory
                .databases
                .iter()
                .any(|e| e.backups.iter().any(|b| b.id == id)) =>
        {
            Some(id)
        }
        _ => None,
    };
    let mut orphans = Vec::new();
    for backup in orphan_candidates(&inventory, options.include_orphaned_backups, wanted) {
        let database = client.backup_database(&backup).await?;
        orphans.push((backup, database));
    }
    plan(&inventory, &orphans, options)
}

/// The orphaned backups to read: the newest of each deleted database (the original rather
/// than a cross-region copy) when `all`, and the one with id `wanted`.
fn orphan_candidates(inventory: &Inventory, all: bool, wanted: Option<u64>) -> Vec<Backup> {
    let mut picked: BTreeMap<String, Backup> = BTreeMap::new();
    if all {
        // Newest first (the inventory sorts them); group by the database they belong to.
        for b in &inventory.orphaned_backups {
            let key = b
                .links
                .href("database")
                .map(str::to_owned)
                .or_else(|| b.database_handle.clone())
                .unwrap_or_else(|| format!("backup-{}", b.id));
            let replace = picked.get(&key).is_none_or(|p| p.is_copy() && !b.is_copy());
            if replace {
                picked.insert(key, b.clone());
            }
        }
    }
    let mut out: Vec<Backup> = picked.into_values().collect();
    if let Some(id) = wanted
        && !out.iter().any(|b| b.id == id)
        && let Some(b) = inventory.orphaned_backups.iter().find(|b| b.id == id)
    {
        out.push(b.clone());
    }
    out
}

fn backup_time(backup: &Backup, handle: &str) -> Result<DateTime<Utc>, InventoryError> {
    backup.created().ok_or_else(|| InventoryError::BadBackup {
        id: backup.id,
        handle: handle.to_owned(),
        created_at: backup.created_at.clone(),
    })
}

/// Decide what `dump --all` does with each database of `inventory` (see the module docs);
/// `orphans` are orphaned backups to dump with the deleted database each belongs to. Pure.
///
/// # Errors
///
/// [`InventoryError::BackupNotFound`] for a `--from-backup ID` that is neither a backup of a
/// database of the environment nor among `orphans`; [`InventoryError::BadBackup`] for a backup
/// read whose time does not parse.
pub fn plan(
    inventory: &Inventory,
    orphans: &[(Backup, Database)],
    options: &PlatformInventory,
) -> Result<EnvironmentPlan, InventoryError> {
    let account = &inventory.environment.account;
    let base = |db: &Database, version: Option<String>| PlatformDatabase {
        platform: options.settings.kind.as_str().to_owned(),
        environment: account.handle.clone(),
        environment_id: account.id,
        id: db.id,
        handle: db.handle.clone(),
        database_type: db.kind.clone(),
        version,
        origin: PlatformOrigin::Live,
        backup: None,
        restored_into: None,
        credential_type: None,
    };
    let leftovers: HashSet<String> = leftover_restores(inventory)
        .iter()
        .map(|r| r.database().handle.clone())
        .collect();
    let mut databases = Vec::new();
    let mut found_id = false;
    for entry in &inventory.databases {
        let db = &entry.database;
        let engine = EngineKind::for_platform_type(&db.kind);
        let replica_of = entry
            .database
            .initialize_from()
            .and_then(|href| inventory.database_by_href(href))
            .map(|p| p.database.handle.clone());
        let mut record = base(db, entry.version().map(str::to_owned));
        let mut read = None;
        let action = if leftovers.contains(&db.handle) {
            // Settled below, once the backups read are known.
            Action::Restored { reused: false }
        } else if let Some(primary) = &replica_of {
            Action::Replica {
                primary: primary.clone(),
            }
        } else if engine.is_none() {
            Action::Unsupported
        } else {
            let backup = match options.from_backup {
                None => None,
                Some(BackupChoice::Latest) => {
                    let Some(b) = latest_backup(entry) else {
                        databases.push(planned(
                            entry,
                            replica_of,
                            engine,
                            Action::NoBackup,
                            record,
                        ));
                        continue;
                    };
                    Some(b)
                }
                Some(BackupChoice::Id(id)) => entry.backups.iter().find(|b| b.id == id),
            };
            match backup {
                None => {
                    read = Some(PlatformRead::Live(Box::new(db.clone())));
                    Action::Live
                }
                Some(b) => {
                    found_id = true;
                    let created = backup_time(b, &db.handle)?;
                    let source = b.database_handle.as_deref().unwrap_or(&db.handle);
                    record.origin = PlatformOrigin::Backup;
                    record.backup = Some(PlatformBackup {
                        id: b.id,
                        created_at: created,
                        manual: b.manual,
                    });
                    read = Some(PlatformRead::Backup(Box::new(b.clone())));
                    Action::FromBackup {
                        backup_id: b.id,
                        backup_created_at: created,
                        restored_handle: restore_handle(source, created),
                    }
                }
            }
        };
        let mut p = planned(entry, replica_of, engine, action, record);
        p.read = read;
        databases.push(p);
    }
    let taken: HashSet<String> = databases.iter().map(|d| d.name.clone()).collect();
    for (backup, db) in orphans {
        let created = backup_time(backup, &db.handle)?;
        let engine = EngineKind::for_platform_type(&db.kind);
        let mut record = base(db, None);
        let mut read = None;
        let action = if engine.is_some() {
            if options.from_backup == Some(BackupChoice::Id(backup.id)) {
                found_id = true;
            }
            record.origin = PlatformOrigin::Backup;
            record.backup = Some(PlatformBackup {
                id: backup.id,
                created_at: created,
                manual: backup.manual,
            });
            read = Some(PlatformRead::Backup(Box::new(backup.clone())));
            let source = backup.database_handle.as_deref().unwrap_or(&db.handle);
            Action::FromBackup {
                backup_id: backup.id,
                backup_created_at: created,
                restored_handle: restore_handle(source, created),
            }
        } else {
            Action::Unsupported
        };
        let name = if taken.contains(&db.handle) {
            format!("{}-backup-{}", db.handle, backup.id)
        } else {
            db.handle.clone()
        };
        databases.push(PlannedDatabase {
            plan: action.describe(&db.handle),
            name,
            handle: db.handle.clone(),
            database_type: db.kind.clone(),
            status: Some("deleted".to_owned()),
            version: None,
            disk_size_gb: None,
            backups: inventory
                .orphaned_backups
                .iter()
                .filter(|b| b.links.href("database") == db.href())
                .count()
                .max(1),
            newest_backup: Some(backup.created_at.clone()),
            replica_of: None,
            deleted: true,
            action,
            engine,
            read,
            record,
        });
    }
    if let Some(BackupChoice::Id(id)) = options.from_backup
        && !found_id
    {
        return Err(InventoryError::BackupNotFound {
            id,
            environment: account.handle.clone(),
        });
    }
    // Restored databases this run reads again are reused (Client::restore_backup finds them
    // by handle); the others are only named.
    let reading: HashSet<String> = databases
        .iter()
        .filter_map(|d| match &d.action {
            Action::FromBackup {
                restored_handle, ..
            } => Some(restored_handle.clone()),
            _ => None,
        })
        .collect();
    for d in &mut databases {
        if matches!(d.action, Action::Restored { .. }) {
            d.action = Action::Restored {
                reused: reading.contains(&d.handle),
            };
            d.plan = d.action.describe(&d.handle);
        }
    }
    Ok(EnvironmentPlan {
        platform: options.settings.kind.as_str().to_owned(),
        environment: account.handle.clone(),
        environment_id: account.id,
        has_ca: account.ca_pem().is_some(),
        databases,
    })
}

fn planned(
    entry: &DatabaseEntry,
    replica_of: Option<String>,
    engine: Option<EngineKind>,
    action: Action,
    record: PlatformDatabase,
) -> PlannedDatabase {
    let db = &entry.database;
    PlannedDatabase {
        name: db.handle.clone(),
        handle: db.handle.clone(),
        database_type: db.kind.clone(),
        status: db.status.clone(),
        version: entry.version().map(str::to_owned),
        disk_size_gb: entry.disk_size_gb(),
        backups: entry.backups.len(),
        newest_backup: entry.newest_backup().map(|b| b.created_at.clone()),
        replica_of,
        deleted: false,
        plan: action.describe(&db.handle),
        action,
        engine,
        read: None,
        record,
    }
}

impl EnvironmentPlan {
    /// The databases restored by an earlier run that this run does not reuse (named to the
    /// user: they are left in place).
    pub fn stale_restores(&self) -> impl Iterator<Item = &PlannedDatabase> {
        self.databases
            .iter()
            .filter(|d| d.action == Action::Restored { reused: false })
    }

    /// The dump's targets and the databases recorded as skipped.
    ///
    /// # Errors
    ///
    /// [`InventoryError::Unsupported`] naming every database of a type this tool cannot dump
    /// when `skip_unsupported` is off; [`InventoryError::NoBackup`] naming every database
    /// without a backup under `--from-backup latest`; [`InventoryError::NothingToDump`]. Both
    /// come before anything is opened: no tunnel, no restore.
    pub fn targets(
        &self,
        skip_unsupported: bool,
    ) -> Result<(Vec<DatabaseTarget>, Vec<SkippedDatabase>), InventoryError> {
        let unsupported: Vec<String> = self
            .databases
            .iter()
            .filter(|d| d.action == Action::Unsupported)
            .map(|d| format!("{} ({})", d.handle, d.database_type))
            .collect();
        if !unsupported.is_empty() && !skip_unsupported {
            return Err(InventoryError::Unsupported {
                environment: self.environment.clone(),
                databases: unsupported,
            });
        }
        let no_backup: Vec<String> = self
            .databases
            .iter()
            .filter(|d| d.action == Action::NoBackup)
            .map(|d| d.handle.clone())
            .collect();
        if !no_backup.is_empty() {
            return Err(InventoryError::NoBackup {
                environment: self.environment.clone(),
                handles: no_backup,
            });
        }
        let mut targets = Vec::new();
        let mut skipped = Vec::new();
        for d in &self.databases {
            match (&d.action, d.engine, &d.read) {
                (Action::Live | Action::FromBackup { .. }, Some(engine), Some(read)) => {
                    targets.push(DatabaseTarget::Platform(Box::new(PlatformTarget {
                        name: d.name.clone(),
                        engine,
                        read: read.clone(),
                        record: d.record.clone(),
                    })));
                }
                (Action::Unsupported, _, _) => skipped.push(SkippedDatabase {
                    name: d.name.clone(),
                    reason: format!(
                        "{} databases cannot be exported by this tool (skipped with \
                         --skip-unsupported); export it with its own tools through \
                         `exporter tunnel {}`",
                        d.database_type, d.handle
                    ),
                    record: d.record.clone(),
                }),
                _ => {}
            }
        }
        if targets.is_empty() {
            return Err(InventoryError::NothingToDump {
                environment: self.environment.clone(),
            });
        }
        Ok((targets, skipped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{PlatformKind, PlatformSettings, PlatformVars};
    use exporter_aptible::{Account, Environment, Stack};
    use serde_json::json;

    fn db(id: u64, handle: &str, kind: &str, primary: Option<u64>) -> Database {
        let mut links = json!({
            "self": {"href": format!("http://api/databases/{id}")},
            "account": {"href": "http://api/accounts/42"},
        });
        if let Some(p) = primary {
            links["initialize_from"] = json!({"href": format!("http://api/databases/{p}")});
        }
        serde_json::from_value(json!({
            "id": id, "handle": handle, "type": kind, "status": "provisioned", "_links": links
        }))
        .unwrap()
    }

    fn backup(id: u64, db: u64, handle: &str, at: &str, copy: bool) -> Backup {
        let mut v = json!({
            "id": id, "created_at": at, "manual": false, "database_handle": handle,
            "_links": {"database": {"href": format!("http://api/databases/{db}")}}
        });
        if copy {
            v["_embedded"] = json!({"copied_from": {"id": 1}});
        }
        serde_json::from_value(v).unwrap()
    }

    fn entry(database: Database, backups: Vec<Backup>) -> DatabaseEntry {
        DatabaseEntry {
            database,
            image: None,
            disk: None,
            backups,
            dependents: Vec::new(),
        }
    }

    fn inventory(databases: Vec<DatabaseEntry>, orphaned: Vec<Backup>) -> Inventory {
        let account: Account = serde_json::from_value(json!({"id": 42, "handle": "prod"})).unwrap();
        let stack: Stack = serde_json::from_value(json!({"id": 7})).unwrap();
        Inventory {
            environment: Environment { account, stack },
            databases,
            apps: Vec::new(),
            vhosts: Vec::new(),
            log_drains: Vec::new(),
            metric_drains: Vec::new(),
            backups: Vec::new(),
            orphaned_backups: orphaned,
        }
    }

    fn options(from_backup: Option<BackupChoice>) -> PlatformInventory {
        PlatformInventory {
            settings: PlatformSettings {
                kind: PlatformKind::Aptible,
                environment: "prod".into(),
                vars: PlatformVars::default(),
            },
            from_backup,
            include_orphaned_backups: false,
            skip_unsupported: false,
            keep_restored: false,
            credential_type: None,
        }
    }

    fn sample() -> Inventory {
        inventory(
            vec![
                entry(
                    db(120, "cache", "redis", None),
                    vec![backup(570, 120, "cache", "2026-02-03T04:20:00.000Z", false)],
                ),
                entry(db(130, "events", "mongodb", None), Vec::new()),
                entry(
                    db(100, "main-db", "postgresql", None),
                    vec![
                        backup(556, 100, "main-db", "2026-02-04T09:00:00.000Z", true),
                        backup(555, 100, "main-db", "2026-02-03T04:05:06.000Z", false),
                    ],
                ),
                entry(
                    db(
                        150,
                        "main-db-at-2026-02-03-04-05-06-exporter",
                        "postgresql",
                        None,
                    ),
                    Vec::new(),
                ),
                entry(
                    db(101, "main-db-replica", "postgresql", Some(100)),
                    Vec::new(),
                ),
                entry(db(110, "shop-mysql", "mysql", None), Vec::new()),
            ],
            Vec::new(),
        )
    }

    fn actions(plan: &EnvironmentPlan) -> Vec<(String, Action)> {
        plan.databases
            .iter()
            .map(|d| (d.name.clone(), d.action.clone()))
            .collect()
    }

    #[test]
    fn live_plan_replicas_unsupported_and_leftovers() {
        let plan = plan(&sample(), &[], &options(None)).unwrap();
        let a = actions(&plan);
        assert_eq!(a[0], ("cache".into(), Action::Live));
        assert_eq!(a[1], ("events".into(), Action::Unsupported));
        assert_eq!(a[2], ("main-db".into(), Action::Live));
        assert_eq!(a[3].1, Action::Restored { reused: false });
        assert_eq!(
            a[4].1,
            Action::Replica {
                primary: "main-db".into()
            }
        );
        let e = plan.targets(false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment prod has 1 database(s) this tool cannot export: events (mongodb); nothing was dumped"
        );
        let (targets, skipped) = plan.targets(true).unwrap();
        let names: Vec<&str> = targets.iter().map(DatabaseTarget::name).collect();
        assert_eq!(names, ["cache", "main-db", "shop-mysql"]);
        assert_eq!(targets[1].engine(), EngineKind::Postgres);
        assert_eq!(targets[1].describe(), "aptible://prod/main-db");
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].name, "events");
        assert_eq!(skipped[0].record.database_type, "mongodb");
        assert_eq!(skipped[0].record.environment_id, 42);
        assert!(skipped[0].reason.contains("exporter tunnel events"));
        assert_eq!(plan.stale_restores().count(), 1);
    }

    #[test]
    fn latest_backup_prefers_originals_and_reuses_a_leftover() {
        let plan = plan(&sample(), &[], &options(Some(BackupChoice::Latest))).unwrap();
        let a = actions(&plan);
        // 556 is a copy: the newest original, 555, is read; its restore is the leftover.
        assert_eq!(
            a[2].1,
            Action::FromBackup {
                backup_id: 555,
                backup_created_at: "2026-02-03T04:05:06Z".parse().unwrap(),
                restored_handle: "main-db-at-2026-02-03-04-05-06-exporter".into(),
            }
        );
        assert_eq!(a[3].1, Action::Restored { reused: true });
        let main = &plan.databases[2].record;
        assert_eq!(main.origin, PlatformOrigin::Backup);
        assert_eq!(main.backup.as_ref().unwrap().id, 555);
        assert_eq!(plan.stale_restores().count(), 0);
        // shop-mysql has no backup: refused, named.
        let e = plan.targets(true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--from-backup: 1 database(s) of environment prod have no backup: shop-mysql; nothing was dumped"
        );
    }

    #[test]
    fn a_backup_id_reads_that_backup_and_the_others_live() {
        let plan = plan(&sample(), &[], &options(Some(BackupChoice::Id(570)))).unwrap();
        let a = actions(&plan);
        assert!(matches!(a[0].1, Action::FromBackup { backup_id: 570, .. }));
        assert_eq!(a[2].1, Action::Live);
        let e = super::plan(&sample(), &[], &options(Some(BackupChoice::Id(9)))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--from-backup 9: no backup #9 in environment prod"
        );
    }

    #[test]
    fn orphaned_backups_are_named_by_handle_unless_taken() {
        let gone = db(140, "old-db", "postgresql", None);
        let again = db(141, "cache", "redis", None);
        let inv = inventory(
            vec![entry(db(120, "cache", "redis", None), Vec::new())],
            vec![
                backup(590, 140, "old-db", "2025-06-01T00:00:00.000Z", false),
                backup(591, 141, "cache", "2025-05-01T00:00:00.000Z", false),
            ],
        );
        let mut o = options(None);
        o.include_orphaned_backups = true;
        let candidates = orphan_candidates(&inv, true, None);
        assert_eq!(candidates.len(), 2);
        let orphans = vec![
            (candidates[0].clone(), gone),
            (candidates[1].clone(), again),
        ];
        let plan = plan(&inv, &orphans, &o).unwrap();
        let names: Vec<&str> = plan.databases.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["cache", "old-db", "cache-backup-591"]);
        assert!(plan.databases[1].deleted);
        let (targets, _) = plan.targets(false).unwrap();
        assert_eq!(targets.len(), 3);
        assert_eq!(
            targets[1].platform().unwrap().backup.as_ref().unwrap().id,
            590
        );
    }

    #[test]
    fn nothing_to_dump() {
        let inv = inventory(
            vec![entry(db(130, "events", "mongodb", None), Vec::new())],
            Vec::new(),
        );
        let plan = plan(&inv, &[], &options(None)).unwrap();
        let e = plan.targets(true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment prod has no database this tool can dump"
        );
    }
}
