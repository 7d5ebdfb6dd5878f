//! Coverage: which archive proves each database of the environment, or why none does (pure;
//! issue 14, design.md section 8).
//!
//! A database is covered by its newest archive, from any run under the destination, that
//!
//! 1. belongs to it: the manifest entry's `platform.id` and `platform.environment_id` are the
//!    database's and its environment's (FORMAT.md, `databases[].platform`), status `ok`;
//! 2. was verified: the run's `verify.json` says this database passed, with no run-level
//!    problem, at the required level or deeper;
//! 3. is the manifest that was verified: the SHA-256 of `manifest.json` as stored now equals
//!    the one `verify.json` recorded (a manifest changed after its verification proves
//!    nothing);
//! 4. is recent: the dump of that database finished no longer than `max_age` ago.
//!
//! A replica is covered when its primary is (`dump --all` dumps the primary only); a database
//! this tool restored from a backup in an earlier run is a copy and needs no archive of its
//! own; a database of a type this tool cannot dump is a gap unless the user accepts its loss
//! (`--accept-unexported`). Everything else without a covering archive is a gap, named with
//! the reason of its newest archive.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::archive::{DatabaseEntry, manifest::PlatformOrigin};
use crate::verify::{Level, RestoreCheck};

/// A database of the environment as the gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveDatabase {
    /// The platform's id.
    pub id: u64,
    /// Its handle.
    pub handle: String,
    /// The platform's type (`postgresql`, `mongodb`, …).
    pub database_type: String,
    /// Whether this tool can dump its type.
    pub exportable: bool,
    /// The primary's id and handle, for a replica whose primary is in the environment.
    pub replica_of: Option<(u64, String)>,
    /// The handle of the database whose backup this tool restored into it in an earlier run
    /// (its handle follows the restore convention), if it is one.
    pub restored_copy_of: Option<String>,
    /// When the platform created it.
    pub created_at: Option<DateTime<Utc>>,
    /// The database was deleted; only its backups remain (orphaned backups, which the
    /// teardown purges): they need an archive of their own (`dump --all
    /// --include-orphaned-backups`) or an explicit `--accept-unexported HANDLE`.
    pub deleted_with_backups: Option<usize>,
}

/// A verification record (`verify.json`) as it concerns one archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationRecord {
    /// The level of the whole verification.
    pub level: Level,
    /// When it finished.
    pub verified_at: DateTime<Utc>,
    /// The manifest SHA-256 it recorded (absent in records of older builds).
    pub manifest_sha256: Option<String>,
    /// Whether this database passed.
    pub ok: bool,
    /// This database's problems, then the run's.
    pub problems: Vec<String>,
    /// What the scratch restore did (level `restore`).
    pub restore: Option<RestoreCheck>,
}

/// One archive found under the destination for a platform database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The run id.
    pub run_id: String,
    /// `<destination>/<run-id>`, for messages.
    pub location: String,
    /// When the run started.
    pub run_started_at: DateTime<Utc>,
    /// SHA-256 of `manifest.json` as stored now.
    pub manifest_sha256: String,
    /// The manifest entry.
    pub entry: DatabaseEntry,
    /// The run's verification, if it has one.
    pub verification: Option<VerificationRecord>,
}

/// What the gate requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirements {
    /// The verification level every covering archive must have passed.
    pub level: Level,
    /// The oldest archive that may cover a database.
    pub max_age: std::time::Duration,
    /// Now.
    pub now: DateTime<Utc>,
}

/// The archive that covers a database, as the plan, the journal and the report show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoveringArchive {
    /// The run id.
    pub run_id: String,
    /// `<destination>/<run-id>`.
    pub location: String,
    /// The manifest entry's name.
    pub name: String,
    /// The archive file in the run.
    pub file: String,
    /// Its engine.
    pub engine: String,
    /// Stored bytes.
    pub compressed_bytes: u64,
    /// Payload bytes.
    pub uncompressed_bytes: u64,
    /// SHA-256 of the stored file.
    pub sha256: String,
    /// When the dump of this database finished.
    pub dumped_at: DateTime<Utc>,
    /// `snapshot`, `point_in_time` or `best_effort`.
    pub consistency: Option<String>,
    /// `live` or `backup`.
    pub origin: String,
    /// The backup read, for origin `backup`: `#id (created_at)`.
    pub backup: Option<String>,
    /// The server's version.
    pub server_version: Option<String>,
    /// How the dump's connection travelled (`mode`, encrypted, verified), in words.
    pub tls: Option<String>,
    /// Per table: name and rows, from the manifest.
    pub tables: Vec<TableRows>,
    /// SHA-256 of `manifest.json` (as verified and as stored now: they are equal).
    pub manifest_sha256: String,
    /// The verification that proves it.
    pub verification: VerificationSummary,
}

/// A table and its row count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    /// Schema-qualified name.
    pub name: String,
    /// Rows dumped.
    pub rows: u64,
}

/// How and when an archive was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationSummary {
    /// The level.
    pub level: Level,
    /// When the verification finished.
    pub verified_at: DateTime<Utc>,
    /// Level `restore`: rows compared by fingerprint in the scratch restore.
    pub rows_compared: Option<u64>,
    /// Level `restore`: tables compared.
    pub tables_compared: Option<u64>,
}

/// How a database is covered, or why it is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "coverage", rename_all = "snake_case")]
pub enum Status {
    /// An archive proves it.
    Covered {
        /// The archive.
        archive: Box<CoveringArchive>,
    },
    /// A replica: its primary's archive covers it.
    CoveredByPrimary {
        /// The primary's handle.
        primary: String,
    },
    /// A database this tool restored from a backup of another database in an earlier run: a
    /// copy, not data of its own.
    RestoredCopy {
        /// The original database's handle.
        source: String,
    },
    /// A database this tool cannot export, whose loss the user accepted.
    AcceptedUnexported,
    /// Not covered: the gate refuses.
    Gap {
        /// Why, in words.
        reason: String,
    },
}

/// One database and its coverage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseCoverage {
    /// The platform's id.
    pub id: u64,
    /// Its handle.
    pub handle: String,
    /// The platform's type.
    #[serde(rename = "type")]
    pub database_type: String,
    /// The primary's handle, for a replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_of: Option<String>,
    /// Covered, and how, or the gap.
    #[serde(flatten)]
    pub status: Status,
}

impl DatabaseCoverage {
    /// The gap's reason, if it is one.
    #[must_use]
    pub fn gap(&self) -> Option<&str> {
        match &self.status {
            Status::Gap { reason } => Some(reason),
            _ => None,
        }
    }
}

/// The coverage of every database, and the notes that go with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Per database of the environment, by handle.
    pub databases: Vec<DatabaseCoverage>,
    /// `--accept-unexported` handles that name no database of the environment.
    pub unknown_accepted: Vec<String>,
}

impl Coverage {
    /// Every gap as `handle: reason`.
    #[must_use]
    pub fn gaps(&self) -> Vec<String> {
        self.databases
            .iter()
            .filter_map(|d| d.gap().map(|r| format!("{}: {r}", d.handle)))
            .collect()
    }

    /// Whether every database is covered.
    #[must_use]
    pub fn complete(&self) -> bool {
        self.databases.iter().all(|d| d.gap().is_none())
    }
}

/// Decide the coverage of each of `live` from `candidates` (every platform entry of every
/// run under the destination for this environment), per `req`; `accepted` are the
/// `--accept-unexported` handles, `destination` names where runs were looked for.
#[must_use]
pub fn assess(
    live: &[LiveDatabase],
    candidates: &[Candidate],
    req: Requirements,
    accepted: &[String],
    destination: &str,
) -> Coverage {
    let newest_run = candidates
        .iter()
        .max_by_key(|c| c.run_started_at)
        .map(|c| (c.run_id.as_str(), c.run_started_at));
    // Primaries first, so that a replica can refer to its primary's outcome.
    let mut own: Vec<(usize, Status)> = live
        .iter()
        .enumerate()
        .map(|(i, db)| {
            (
                i,
                own_status(db, candidates, req, accepted, destination, newest_run),
            )
        })
        .collect();
    let statuses: Vec<Status> = own.iter().map(|(_, s)| s.clone()).collect();
    for (i, status) in &mut own {
        let db = &live[*i];
        let Some((primary_id, primary)) = &db.replica_of else {
            continue;
        };
        if matches!(status, Status::Covered { .. }) {
            continue;
        }
        let primary_status = live
            .iter()
            .position(|d| d.id == *primary_id)
            .map(|p| &statuses[p]);
        *status = match primary_status {
            Some(Status::Covered { .. }) => Status::CoveredByPrimary {
                primary: primary.clone(),
            },
            Some(Status::Gap { .. }) | None => Status::Gap {
                reason: format!("a replica of {primary}, which is not covered"),
            },
            Some(_) => Status::Gap {
                reason: format!("a replica of {primary}, which has no archive of its own"),
            },
        };
    }
    let mut databases: Vec<DatabaseCoverage> = own
        .into_iter()
        .map(|(i, status)| {
            let db = &live[i];
            DatabaseCoverage {
                id: db.id,
                handle: db.handle.clone(),
                database_type: db.database_type.clone(),
                replica_of: db.replica_of.as_ref().map(|(_, h)| h.clone()),
                status,
            }
        })
        .collect();
    databases.sort_by(|a, b| a.handle.cmp(&b.handle));
    let unknown_accepted = accepted
        .iter()
        .filter(|h| !live.iter().any(|d| &d.handle == *h))
        .cloned()
        .collect();
    Coverage {
        databases,
        unknown_accepted,
    }
}

fn own_status(
    db: &LiveDatabase,
    candidates: &[Candidate],
    req: Requirements,
    accepted: &[String],
    destination: &str,
    newest_run: Option<(&str, DateTime<Utc>)>,
) -> Status {
    let is_accepted = accepted.iter().any(|h| h == &db.handle);
    // A database this tool restored from a backup and kept needs no archive of its own only
    // when a run records it as the restore of a backup it dumped (`platform.restored_into`
    // with this id) and that archive covers (verified, recent, unchanged). A handle that only
    // looks like the restore convention proves nothing: it is judged as any other database.
    if let Some(source) = &db.restored_copy_of
        && covering_restore(db, candidates, req).is_some()
    {
        return Status::RestoredCopy {
            source: source.clone(),
        };
    }
    if let Some(backups) = db.deleted_with_backups {
        if is_accepted {
            return Status::AcceptedUnexported;
        }
        if let Some(c) = newest_covering(db, candidates, req) {
            return Status::Covered {
                archive: Box::new(covering(c)),
            };
        }
        // A database this tool restored a backup into, dumped and deprovisioned: its final
        // backup holds what the archive of that dump holds.
        if let Some(c) = covering_restore(db, candidates, req) {
            return Status::Covered {
                archive: Box::new(covering(c)),
            };
        }
        return Status::Gap {
            reason: format!(
                "deleted; its {backups} backup(s) would be purged with no verified archive of \
                 them: dump them with `exporter dump --all --include-orphaned-backups` and \
                 verify the run, or accept their loss with --accept-unexported {}",
                db.handle
            ),
        };
    }
    if !db.exportable {
        if is_accepted {
            return Status::AcceptedUnexported;
        }
        return Status::Gap {
            reason: format!(
                "a {} database, which this tool cannot export: export it with its own tools \
                 (`exporter tunnel {}`), then accept its loss here with --accept-unexported {}",
                db.database_type, db.handle, db.handle
            ),
        };
    }
    let mut mine: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| {
            c.entry.status.has_archive() && c.entry.platform.as_ref().is_some_and(|p| p.id == db.id)
        })
        .collect();
    // Newest dump first.
    mine.sort_by(|a, b| {
        b.entry
            .finished_at
            .cmp(&a.entry.finished_at)
            .then_with(|| b.run_id.cmp(&a.run_id))
    });
    let mut first_reason: Option<String> = None;
    for c in &mine {
        match refusal(c, req) {
            None => {
                return Status::Covered {
                    archive: Box::new(covering(c)),
                };
            }
            Some(reason) => {
                first_reason.get_or_insert(reason);
            }
        }
    }
    let accepted_note = if is_accepted {
        " (--accept-unexported applies only to databases this tool cannot export)"
    } else {
        ""
    };
    let reason = match first_reason {
        Some(reason) if mine.len() > 1 => format!(
            "{reason} (and none of its {} older archive(s) covers it){accepted_note}",
            mine.len() - 1
        ),
        Some(reason) => format!("{reason}{accepted_note}"),
        None => match (newest_run, db.created_at) {
            (Some((run, started)), Some(created)) if created > started => format!(
                "no archive: created {} after the newest run {run}; dump it with `exporter dump \
                 --all` and verify the run{accepted_note}",
                created.format("%Y-%m-%d %H:%M:%SZ")
            ),
            _ => format!(
                "no archive in any run under {destination}; dump it with `exporter dump --all` \
                 and verify the run{accepted_note}"
            ),
        },
    };
    Status::Gap { reason }
}

/// An archive that covers and was dumped through `db`: a run restored a backup into it
/// (`platform.restored_into` names its id), if any.
fn covering_restore<'c>(
    db: &LiveDatabase,
    candidates: &'c [Candidate],
    req: Requirements,
) -> Option<&'c Candidate> {
    candidates.iter().find(|c| {
        c.entry.status.has_archive()
            && c.entry
                .platform
                .as_ref()
                .and_then(|p| p.restored_into.as_ref())
                .is_some_and(|r| r.id == db.id)
            && refusal(c, req).is_none()
    })
}

/// The newest archive of `db` that covers it, if any.
fn newest_covering<'c>(
    db: &LiveDatabase,
    candidates: &'c [Candidate],
    req: Requirements,
) -> Option<&'c Candidate> {
    candidates
        .iter()
        .filter(|c| {
            c.entry.status.has_archive() && c.entry.platform.as_ref().is_some_and(|p| p.id == db.id)
        })
        .filter(|c| refusal(c, req).is_none())
        .max_by(|a, b| {
            a.entry
                .finished_at
                .cmp(&b.entry.finished_at)
                .then_with(|| a.run_id.cmp(&b.run_id))
        })
}

/// Clock differences tolerated between the machine that dumped, the one that verified and
/// this one, in minutes.
const CLOCK_SKEW_MINUTES: i64 = 5;

/// Why candidate `c` does not cover its database, or `None` when it does.
fn refusal(c: &Candidate, req: Requirements) -> Option<String> {
    let file = c.entry.file.as_deref().unwrap_or(&c.entry.name);
    let at = format!("{}/{file}", c.run_id);
    let Some(v) = &c.verification else {
        return Some(format!(
            "archive {at} was never verified: run `exporter verify {} --level {}`",
            c.run_id, req.level
        ));
    };
    match &v.manifest_sha256 {
        None => {
            return Some(format!(
                "the verification of run {} recorded no manifest SHA-256 (an older build): \
                 verify it again",
                c.run_id
            ));
        }
        Some(h) if *h != c.manifest_sha256 => {
            return Some(format!(
                "manifest.json of run {} changed after its verification (SHA-256 {} verified, \
                 {} stored now)",
                c.run_id,
                short(h),
                short(&c.manifest_sha256)
            ));
        }
        Some(_) => {}
    }
    if !v.ok {
        let problems = if v.problems.is_empty() {
            String::new()
        } else {
            format!(": {}", v.problems.join("; "))
        };
        return Some(format!(
            "archive {at} failed its verification at level {} ({}){problems}",
            v.level,
            v.verified_at.format("%Y-%m-%d %H:%M:%SZ")
        ));
    }
    if v.level < req.level {
        return Some(format!(
            "archive {at} was verified only at level {}; the gate requires level {}: run \
             `exporter verify {} --level {}`",
            v.level, req.level, c.run_id, req.level
        ));
    }
    // A dump time in the future (beyond a few minutes of clock skew) or after the
    // verification would make any --max-age pass: the age of such an archive is unknown.
    if c.entry.finished_at > req.now + chrono::Duration::minutes(CLOCK_SKEW_MINUTES) {
        return Some(format!(
            "archive {at} says it was dumped at {}, which is in the future here (a clock set \
             wrong where it was dumped, or an edited manifest): its age is unknown; dump again",
            c.entry.finished_at.format("%Y-%m-%d %H:%M:%SZ")
        ));
    }
    if v.verified_at + chrono::Duration::minutes(CLOCK_SKEW_MINUTES) < c.entry.finished_at {
        return Some(format!(
            "archive {at} was verified ({}) before it was dumped ({}): the records disagree; \
             verify it again",
            v.verified_at.format("%Y-%m-%d %H:%M:%SZ"),
            c.entry.finished_at.format("%Y-%m-%d %H:%M:%SZ")
        ));
    }
    let age = req.now.signed_duration_since(c.entry.finished_at);
    let limit = chrono::Duration::from_std(req.max_age).unwrap_or(chrono::Duration::MAX);
    if age > limit {
        return Some(format!(
            "archive {at} is {} old, older than --max-age {}: dump again (or raise --max-age)",
            human_age(age.to_std().unwrap_or_default()),
            human_age(req.max_age)
        ));
    }
    None
}

fn covering(c: &Candidate) -> CoveringArchive {
    let e = &c.entry;
    let v = c
        .verification
        .as_ref()
        .expect("a covering archive has a verification");
    let platform = e.platform.as_ref();
    CoveringArchive {
        run_id: c.run_id.clone(),
        location: c.location.clone(),
        name: e.name.clone(),
        file: e.file.clone().unwrap_or_default(),
        engine: e.engine.clone(),
        compressed_bytes: e.compressed_bytes.unwrap_or(0),
        uncompressed_bytes: e.uncompressed_bytes.unwrap_or(0),
        sha256: e.sha256.clone().unwrap_or_default(),
        dumped_at: e.finished_at,
        consistency: e
            .consistency
            .and_then(|c| serde_json::to_value(c).ok())
            .and_then(|v| v.as_str().map(str::to_owned)),
        origin: match platform.map(|p| p.origin) {
            Some(PlatformOrigin::Backup) => "backup".to_owned(),
            _ => "live".to_owned(),
        },
        backup: platform.and_then(|p| p.backup.as_ref()).map(|b| {
            format!(
                "#{} ({}{})",
                b.id,
                b.created_at.format("%Y-%m-%d %H:%M:%SZ"),
                if b.manual { ", manual" } else { "" }
            )
        }),
        server_version: e.server_version.clone(),
        tls: e.tls.as_ref().map(|t| {
            let mut s = t.mode.clone();
            if t.encrypted {
                s.push_str(", encrypted");
                if let Some(v) = &t.verified {
                    let _ = write!(s, ", verified {v}");
                }
            } else {
                s.push_str(", not encrypted");
            }
            s
        }),
        tables: e
            .tables
            .iter()
            .map(|t| TableRows {
                name: t.name.clone(),
                rows: t.rows,
            })
            .collect(),
        manifest_sha256: c.manifest_sha256.clone(),
        verification: VerificationSummary {
            level: v.level,
            verified_at: v.verified_at,
            rows_compared: v.restore.as_ref().map(|r| r.rows_compared),
            tables_compared: v.restore.as_ref().map(|r| r.tables),
        },
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// `90s`, `45m`, `26h`, `3d`: an age in its largest whole unit (rounded down).
#[must_use]
pub fn human_age(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 2 * 86_400 && s.is_multiple_of(86_400) || s >= 7 * 86_400 {
        format!("{}d", s / 86_400)
    } else if s >= 2 * 3600 || (s >= 3600 && s.is_multiple_of(3600)) {
        format!("{}h", s / 3600)
    } else if s >= 120 || (s >= 60 && s.is_multiple_of(60)) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::DatabaseStatus;
    use crate::archive::manifest::{PlatformDatabase, RestoredDatabase};
    use std::time::Duration;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn live(id: u64, handle: &str, ty: &str) -> LiveDatabase {
        LiveDatabase {
            id,
            handle: handle.into(),
            database_type: ty.into(),
            exportable: ty != "mongodb",
            replica_of: None,
            restored_copy_of: None,
            deleted_with_backups: None,
            created_at: Some(t("2025-01-01T00:00:00Z")),
        }
    }

    fn entry(id: u64, name: &str, finished: &str) -> DatabaseEntry {
        serde_json::from_value(serde_json::json!({
            "name": name, "engine": "postgresql", "endpoint": "postgresql://u:****@h/db",
            "status": "ok", "file": format!("{name}.sql.zst"), "compressed_bytes": 10,
            "uncompressed_bytes": 20, "sha256": "ab".repeat(32), "consistency": "snapshot",
            "started_at": finished, "finished_at": finished,
            "tables": [{"name": "public.t", "rows": 3, "fingerprint": "0".repeat(32)}],
            "platform": serde_json::to_value(PlatformDatabase {
                platform: "aptible".into(), environment: "prod".into(), environment_id: 42,
                id, handle: name.into(), database_type: "postgresql".into(), version: None,
                origin: PlatformOrigin::Live, backup: None, restored_into: None,
                credential_type: None,
            }).unwrap(),
        }))
        .unwrap()
    }

    fn candidate(run: &str, id: u64, finished: &str, v: Option<(Level, bool, &str)>) -> Candidate {
        Candidate {
            run_id: run.into(),
            location: format!("out/{run}"),
            run_started_at: t(finished),
            manifest_sha256: "m1".repeat(32),
            entry: entry(id, "main-db", finished),
            verification: v.map(|(level, ok, sha)| VerificationRecord {
                level,
                verified_at: t(finished),
                manifest_sha256: Some(sha.repeat(32)),
                ok,
                problems: if ok {
                    vec![]
                } else {
                    vec!["public.t: 2 rows, manifest says 3".into()]
                },
                restore: None,
            }),
        }
    }

    fn req() -> Requirements {
        Requirements {
            level: Level::Restore,
            max_age: Duration::from_secs(24 * 3600),
            now: t("2026-03-01T12:00:00Z"),
        }
    }

    fn one(db: &LiveDatabase, cands: &[Candidate], accepted: &[&str]) -> Status {
        let accepted: Vec<String> = accepted.iter().map(|s| (*s).to_owned()).collect();
        assess(std::slice::from_ref(db), cands, req(), &accepted, "out")
            .databases
            .remove(0)
            .status
    }

    fn gap(s: &Status) -> &str {
        match s {
            Status::Gap { reason } => reason,
            other => panic!("not a gap: {other:?}"),
        }
    }

    #[test]
    fn the_newest_passing_archive_covers() {
        let db = live(100, "main-db", "postgresql");
        let old = candidate(
            "20260301T000000Z",
            100,
            "2026-03-01T00:00:00Z",
            Some((Level::Restore, true, "m1")),
        );
        let new = candidate(
            "20260301T100000Z",
            100,
            "2026-03-01T10:00:00Z",
            Some((Level::Restore, true, "m1")),
        );
        let Status::Covered { archive } = one(&db, &[old, new], &[]) else {
            panic!()
        };
        assert_eq!(archive.run_id, "20260301T100000Z");
        assert_eq!(
            archive.tables,
            [TableRows {
                name: "public.t".into(),
                rows: 3
            }]
        );
        assert_eq!(archive.verification.level, Level::Restore);
    }

    #[test]
    fn each_refusal_names_its_reason() {
        let db = live(100, "main-db", "postgresql");
        let run = "20260301T100000Z";
        let at = "2026-03-01T10:00:00Z";
        assert!(gap(&one(&db, &[], &[])).starts_with("no archive in any run under out"));
        assert!(gap(&one(&db, &[candidate(run, 100, at, None)], &[])).contains("never verified"));
        let r = one(
            &db,
            &[candidate(
                run,
                100,
                at,
                Some((Level::Decompress, true, "m1")),
            )],
            &[],
        );
        assert!(
            gap(&r).contains("verified only at level decompress; the gate requires level restore"),
            "{r:?}"
        );
        let r = one(
            &db,
            &[candidate(run, 100, at, Some((Level::Restore, false, "m1")))],
            &[],
        );
        assert!(
            gap(&r).contains("failed its verification at level restore"),
            "{r:?}"
        );
        assert!(gap(&r).contains("2 rows, manifest says 3"));
        let r = one(
            &db,
            &[candidate(run, 100, at, Some((Level::Restore, true, "zz")))],
            &[],
        );
        assert!(
            gap(&r)
                .contains("manifest.json of run 20260301T100000Z changed after its verification"),
            "{r:?}"
        );
        let stale = candidate(
            "20260227T100000Z",
            100,
            "2026-02-27T10:00:00Z",
            Some((Level::Restore, true, "m1")),
        );
        let r = one(&db, &[stale], &[]);
        assert!(
            gap(&r).contains("is 50h old, older than --max-age 24h"),
            "{r:?}"
        );
        // Another database's archive covers nothing here.
        assert!(
            gap(&one(
                &db,
                &[candidate(run, 101, at, Some((Level::Restore, true, "m1")))],
                &[]
            ))
            .starts_with("no archive")
        );
    }

    #[test]
    fn a_database_created_after_the_newest_run_is_named_so() {
        let mut db = live(200, "new-db", "postgresql");
        db.created_at = Some(t("2026-03-01T11:00:00Z"));
        let c = candidate(
            "20260301T100000Z",
            100,
            "2026-03-01T10:00:00Z",
            Some((Level::Restore, true, "m1")),
        );
        let r = one(&db, &[c], &[]);
        assert!(
            gap(&r).starts_with(
                "no archive: created 2026-03-01 11:00:00Z after the newest run 20260301T100000Z"
            ),
            "{r:?}"
        );
    }

    #[test]
    fn downgraded_level_accepts_decompress() {
        let db = live(100, "main-db", "postgresql");
        let c = candidate(
            "20260301T100000Z",
            100,
            "2026-03-01T10:00:00Z",
            Some((Level::Decompress, true, "m1")),
        );
        let mut r = req();
        r.level = Level::Decompress;
        let cov = assess(&[db], &[c], r, &[], "out");
        assert!(cov.complete());
    }

    #[test]
    fn unexported_replicas_and_restored_copies() {
        let mongo = live(130, "events", "mongodb");
        assert!(gap(&one(&mongo, &[], &[])).contains("--accept-unexported events"));
        assert_eq!(one(&mongo, &[], &["events"]), Status::AcceptedUnexported);
        // Accepting an exportable database does not waive its archive.
        let pg = live(100, "main-db", "postgresql");
        assert!(
            gap(&one(&pg, &[], &["main-db"]))
                .contains("applies only to databases this tool cannot export")
        );

        let primary = live(100, "main-db", "postgresql");
        let mut replica = live(101, "main-db-replica", "postgresql");
        replica.replica_of = Some((100, "main-db".into()));
        let c = candidate(
            "20260301T100000Z",
            100,
            "2026-03-01T10:00:00Z",
            Some((Level::Restore, true, "m1")),
        );
        let cov = assess(
            &[primary.clone(), replica.clone()],
            &[c],
            req(),
            &["ghost".into()],
            "out",
        );
        assert!(cov.complete(), "{cov:?}");
        assert_eq!(
            cov.databases[1].status,
            Status::CoveredByPrimary {
                primary: "main-db".into()
            }
        );
        assert_eq!(cov.unknown_accepted, ["ghost"]);
        let cov = assess(&[primary, replica], &[], req(), &[], "out");
        assert_eq!(cov.gaps().len(), 2);
        assert!(
            cov.gaps()[1]
                .starts_with("main-db-replica: a replica of main-db, which is not covered")
        );

        // A handle that only looks like this tool's restore convention proves nothing.
        let mut copy = live(300, "main-db-at-2026-02-04-09-00-00-exporter", "postgresql");
        copy.restored_copy_of = Some("main-db".into());
        assert!(
            gap(&one(&copy, &[], &[])).starts_with("no archive in any run under out"),
            "{:?}",
            one(&copy, &[], &[])
        );
        // A run that dumped a backup through it, verified: the copy needs no archive.
        let mut c = candidate(
            "20260301T100000Z",
            100,
            "2026-03-01T10:00:00Z",
            Some((Level::Restore, true, "m1")),
        );
        let record = |c: &mut Candidate, id: u64| {
            c.entry.platform.as_mut().unwrap().restored_into = Some(RestoredDatabase {
                id,
                handle: "main-db-at-2026-02-04-09-00-00-exporter".into(),
                kept: true,
            });
        };
        record(&mut c, 300);
        assert_eq!(
            one(&copy, std::slice::from_ref(&c), &[]),
            Status::RestoredCopy {
                source: "main-db".into()
            }
        );
        // Recorded for another database, or by an archive that does not cover: no.
        record(&mut c, 301);
        assert!(matches!(
            one(&copy, std::slice::from_ref(&c), &[]),
            Status::Gap { .. }
        ));
        record(&mut c, 300);
        c.verification.as_mut().unwrap().ok = false;
        assert!(matches!(
            one(&copy, std::slice::from_ref(&c), &[]),
            Status::Gap { .. }
        ));
    }

    #[test]
    fn a_dump_time_in_the_future_or_after_the_verification_covers_nothing() {
        let db = live(100, "main-db", "postgresql");
        // now is 2026-03-01T12:00:00Z.
        let mut c = candidate(
            "20260301T100000Z",
            100,
            "2099-01-01T00:00:00Z",
            Some((Level::Restore, true, "m1")),
        );
        let s = one(&db, std::slice::from_ref(&c), &[]);
        assert!(gap(&s).contains("in the future here"), "{s:?}");
        // Verified an hour before the dump it claims to have verified.
        c.entry.finished_at = t("2026-03-01T11:00:00Z");
        c.verification.as_mut().unwrap().verified_at = t("2026-03-01T10:00:00Z");
        let s = one(&db, std::slice::from_ref(&c), &[]);
        assert!(
            gap(&s).contains("was verified (2026-03-01 10:00:00Z) before it was dumped"),
            "{s:?}"
        );
        // A few minutes of skew are tolerated.
        c.entry.finished_at = t("2026-03-01T12:03:00Z");
        c.verification.as_mut().unwrap().verified_at = t("2026-03-01T12:01:00Z");
        assert!(
            matches!(
                one(&db, std::slice::from_ref(&c), &[]),
                Status::Covered { .. }
            ),
            "{:?}",
            one(&db, std::slice::from_ref(&c), &[])
        );
    }

    #[test]
    fn skipped_entries_cover_nothing() {
        let db = live(100, "main-db", "postgresql");
        let mut c = candidate(
            "20260301T100000Z",
            100,
            "2026-03-01T10:00:00Z",
            Some((Level::Restore, true, "m1")),
        );
        c.entry.status = DatabaseStatus::Failed;
        assert!(gap(&one(&db, &[c], &[])).starts_with("no archive"));
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(human_age(Duration::from_secs(24 * 3600)), "24h");
        assert_eq!(human_age(Duration::from_secs(26 * 3600)), "26h");
        assert_eq!(human_age(Duration::from_secs(2 * 86_400)), "2d");
        assert_eq!(human_age(Duration::from_secs(50 * 3600)), "50h");
        assert_eq!(human_age(Duration::from_secs(90)), "90s");
        assert_eq!(human_age(Duration::from_secs(5400)), "90m");
    }
}
