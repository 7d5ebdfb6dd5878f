//! The check before a dump (issue 16): every database of a [`DumpPlan`] and its destination,
//! tested for what the dump will need, before any long work — `exporter check`, and the first
//! step of `exporter dump` unless `--no-check`.
//!
//! Per database: the endpoint step (the same [`EndpointProvider`] the dump uses: the URL
//! itself, or a platform tunnel), then the adapter's [`exporter_contract::Source::check`]:
//! server version, TLS, every privilege the dump needs and lacks (each naming its object),
//! a size estimate. Databases are checked `jobs` at a time. A platform database read from a
//! backup is not checked (its backup is restored into a new database only when its dump
//! starts). The destination: a test object `.exporter-check-<random>` written and removed
//! ([`crate::storage::Storage::probe`]).
//!
//! The result is a [`CheckReport`], also the `check --json` report (FORMAT.md, "Reports on
//! stdout"): nothing is printed here.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use exporter_contract::{CheckProblem, DumpOptions, EngineError, TlsInfo};
use futures::StreamExt as _;
use serde::Serialize;

use crate::blocking::{self, ThreadError};
use crate::endpoint::{EndpointGuard, EndpointProvider};
use crate::error::one_line;
use crate::pipeline::{DatabaseFailure, FailureCause};
use crate::settings::{DatabaseTarget, Destination, DumpPlan, PlatformRead, SkippedDatabase};
use crate::storage::Storage;

/// The version of the [`CheckReport`] (`check --json`): fields keep their meaning; a change
/// of meaning or a removal bumps it.
pub const REPORT_VERSION: u32 = 1;

/// The throughput the time estimates assume, in bytes per second: 32 MiB/s. A local dump
/// reads PostgreSQL's `COPY` output at about 90 MiB/s on the benchmark machine
/// (BENCHMARKS.md); a dump through a tunnel or across a network is slower, so the estimate
/// assumes about a third of that. It is an assumption, said so in every report.
pub const ASSUMED_THROUGHPUT: u64 = 32 * 1024 * 1024;

/// How one database fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Reachable, and nothing the dump needs is missing.
    Ok,
    /// Reachable, with [`DatabaseCheck::problems`] that would make its dump fail.
    Problems,
    /// Could not be checked (unreachable, credentials refused, no such database, …): its dump
    /// would fail the same way ([`DatabaseCheck::error`]).
    Failed,
    /// Not checked: read from a platform backup that is restored only when its dump starts.
    NotChecked,
    /// A platform database `--skip-unsupported` leaves out of the dump.
    Skipped,
}

/// One database's check.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseCheck {
    /// The archive name, as the dump would write it.
    pub name: String,
    /// The server's engine as the manifest will record it (`postgresql`, `mysql`, `mariadb`,
    /// `redis`), or the inventory's (`mysql/mariadb`, a platform type) when not reached.
    pub engine: String,
    /// The redacted endpoint (`aptible://<environment>/<handle>` for a platform database).
    pub endpoint: String,
    /// The outcome.
    pub status: CheckStatus,
    /// The server's version string.
    pub server_version: Option<String>,
    /// How the checking connection travelled (the dump's connections use the same settings).
    pub tls: Option<TlsInfo>,
    /// Estimated size of what the dump reads, in bytes (uncompressed; the adapter's source of
    /// the estimate is in its docs).
    pub size_bytes: Option<u64>,
    /// `size_bytes` / [`ASSUMED_THROUGHPUT`], in seconds.
    pub estimated_seconds: Option<f64>,
    /// What would make the dump fail, each naming its object and the privilege missing.
    pub problems: Vec<CheckProblem>,
    /// Why the database could not be checked ([`CheckStatus::Failed`]), or was skipped or
    /// not checked.
    pub error: Option<DatabaseFailure>,
    /// What the user should know that does not stop the dump (a password the server ignores,
    /// a tunnel opened, a permission that could not be checked).
    pub notes: Vec<String>,
}

impl DatabaseCheck {
    /// Whether this database stops the dump.
    #[must_use]
    pub fn fails(&self) -> bool {
        matches!(self.status, CheckStatus::Problems | CheckStatus::Failed)
    }

    /// What is wrong, one line each: the problems, or the error.
    #[must_use]
    pub fn failure_lines(&self) -> Vec<String> {
        match (&self.status, &self.error) {
            (CheckStatus::Failed, Some(e)) => vec![format!("cannot check: {}", e.message)],
            (CheckStatus::Problems, _) => self.problems.iter().map(ToString::to_string).collect(),
            _ => Vec::new(),
        }
    }
}

/// The destination's check.
#[derive(Debug, Clone, Serialize)]
pub struct DestinationCheck {
    /// The destination (a path, or `s3://bucket/prefix`).
    pub location: String,
    /// A test object was written and removed.
    pub writable: bool,
    /// Why not, naming the destination.
    pub error: Option<String>,
}

/// The result of a check: the `check --json` report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// Nothing would make the dump fail: every database is `ok` (or not checked, or skipped)
    /// and the destination is writable.
    pub passed: bool,
    /// When the check ran.
    pub checked_at: DateTime<Utc>,
    /// The destination.
    pub destination: DestinationCheck,
    /// Every database of the plan, in plan order, then those the platform skips.
    pub databases: Vec<DatabaseCheck>,
    /// The sum of the known sizes, in bytes (`None`: none is known).
    pub total_bytes: Option<u64>,
    /// `total_bytes` / [`ASSUMED_THROUGHPUT`], in seconds: the dump's time if the databases
    /// are read one after another at that rate.
    pub estimated_seconds: Option<f64>,
    /// [`ASSUMED_THROUGHPUT`], in bytes per second: the assumption behind every estimate.
    pub assumed_bytes_per_second: u64,
}

impl CheckReport {
    /// The databases that stop the dump.
    pub fn failing(&self) -> impl Iterator<Item = &DatabaseCheck> {
        self.databases.iter().filter(|d| d.fails())
    }

    /// One line saying what fails, for errors: the only problem itself, or counts and names.
    #[must_use]
    pub fn summary(&self) -> String {
        let failing: Vec<&DatabaseCheck> = self.failing().collect();
        let mut parts = Vec::new();
        match failing.as_slice() {
            [] => {}
            [one] => match one.failure_lines().as_slice() {
                [line] => parts.push(format!("{}: {line}", one.name)),
                lines => parts.push(format!("{}: {} problems", one.name, lines.len())),
            },
            many => parts.push(format!(
                "{} of {} databases would fail ({})",
                many.len(),
                self.databases.len(),
                many.iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
        if let Some(e) = &self.destination.error {
            parts.push(e.clone());
        }
        parts.join("; ")
    }
}

/// `bytes` at [`ASSUMED_THROUGHPUT`], in seconds.
#[must_use]
pub fn estimate_seconds(bytes: u64) -> f64 {
    bytes as f64 / ASSUMED_THROUGHPUT as f64
}

/// What a check needs besides the plan.
pub struct CheckContext<'a> {
    /// The destination's storage ([`crate::storage::open`]).
    pub storage: Arc<dyn Storage>,
    /// Turns each target into a live endpoint (the dump's provider).
    pub endpoints: &'a dyn EndpointProvider,
    /// The check right before a dump of a single database: it is checked by starting its
    /// dump for real, and the start is kept for the dump
    /// ([`exporter_contract::Source::check_and_hold`], for [`KEEP_STARTED_FOR`]) — never
    /// through a tunnel, which closes after the check. Only for a plan of one database: a
    /// kept start holds a session and its tables' locks, which must not wait on the checks of
    /// other databases (a slow one would hold the locks, and the sessions a connection limit
    /// counts, for as long). `false` for `exporter check`.
    pub keep_start: bool,
}

/// How long a dump's start kept by the check waits for its dump (then its connection and
/// locks are released): the dump follows the check at once, after the scratch servers'
/// check of `--verify`.
pub const KEEP_STARTED_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// Why a check could not run, or said no.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// `exporter check`: something would make the dump fail (the report names it).
    #[error("the dump would fail: {summary}")]
    Failed {
        /// [`CheckReport::summary`].
        summary: String,
        /// The first failing database's next step.
        hint: Option<String>,
    },
    /// The check before a dump said no: nothing was dumped, no run was created.
    #[error("the check before the dump failed: {summary}; nothing was written")]
    BeforeDump {
        /// [`CheckReport::summary`].
        summary: String,
        /// The first failing database's next step.
        hint: Option<String>,
    },
    /// A worker thread failed.
    #[error(transparent)]
    Thread(#[from] ThreadError),
}

/// Check every database of `plan` and its destination.
///
/// # Errors
///
/// [`CheckError::Thread`] only: every database's and the destination's failure is a value in
/// the report.
///
/// # Cancel safety
///
/// Dropping the future closes the connections and tunnels it opened; the destination's test
/// object may be left (a hidden `.exporter-check-*` file or object).
pub async fn check(plan: &DumpPlan, cx: &CheckContext<'_>) -> Result<CheckReport, CheckError> {
    let checked_at = Utc::now();
    let options = DumpOptions::default()
        .with_jobs(plan.jobs)
        .with_ownership(plan.ownership);
    let parallel = plan.jobs.clamp(1, plan.databases.len().max(1));
    let destination = destination(&plan.destination, &cx.storage);
    let keep_start = cx.keep_start && plan.databases.len() == 1;
    let databases = futures::stream::iter(plan.databases.iter())
        .map(|db| database(db, plan, &options, cx.endpoints, keep_start))
        .buffered(parallel)
        .collect::<Vec<_>>();
    let (destination, mut databases) = tokio::join!(destination, databases);
    let destination = destination?;
    databases.extend(plan.skipped.iter().map(skipped));
    let sizes: Vec<u64> = databases.iter().filter_map(|d| d.size_bytes).collect();
    let total_bytes = (!sizes.is_empty()).then(|| sizes.iter().sum());
    let passed = destination.writable && !databases.iter().any(DatabaseCheck::fails);
    Ok(CheckReport {
        version: REPORT_VERSION,
        passed,
        checked_at,
        destination,
        databases,
        total_bytes,
        estimated_seconds: total_bytes.map(estimate_seconds),
        assumed_bytes_per_second: ASSUMED_THROUGHPUT,
    })
}

/// Write and remove a test object at the destination.
async fn destination(
    destination: &Destination,
    storage: &Arc<dyn Storage>,
) -> Result<DestinationCheck, ThreadError> {
    let location = storage.describe();
    let name = probe_name();
    let probed = {
        let storage = storage.clone();
        blocking::run("checking the destination", move || storage.probe(&name)).await?
    };
    let local = matches!(destination, Destination::Local(_));
    Ok(match probed {
        Ok(()) => DestinationCheck {
            location,
            writable: true,
            error: None,
        },
        Err(e) => DestinationCheck {
            error: Some(format!(
                "destination {location} is not writable{}: {e}",
                if local {
                    ""
                } else {
                    " (bucket, credentials, endpoint)"
                }
            )),
            location,
            writable: false,
        },
    })
}

/// `.exporter-check-<16 hex digits>`: hidden, and unique enough (process id and clock) that
/// two checks never meet.
fn probe_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mix = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
    format!(".exporter-check-{mix:016x}")
}

/// Check one database: the endpoint step, then the adapter's check while the endpoint is held.
async fn database(
    db: &DatabaseTarget,
    plan: &DumpPlan,
    options: &DumpOptions,
    endpoints: &dyn EndpointProvider,
    keep_started: bool,
) -> DatabaseCheck {
    let engine = db.engine();
    let mut entry = DatabaseCheck {
        name: db.name().to_owned(),
        engine: engine.inventory_name().to_owned(),
        endpoint: db.describe(),
        status: CheckStatus::Failed,
        server_version: None,
        tls: None,
        size_bytes: None,
        estimated_seconds: None,
        problems: Vec::new(),
        error: None,
        notes: Vec::new(),
    };
    if let DatabaseTarget::Platform(t) = db
        && let PlatformRead::Backup(backup) = &t.read
    {
        entry.status = CheckStatus::NotChecked;
        entry.notes.push(format!(
            "read from backup #{} ({}), which is restored into a new database when its dump \
             starts: not reachable before",
            backup.id, backup.created_at
        ));
        return entry;
    }
    let guard = match endpoints.open(db).await {
        Ok(g) => g,
        Err(e) => {
            entry.error = Some(failure(&e));
            return entry;
        }
    };
    let keep_started = keep_started && !guard.can_be_lost();
    let outcome = checked(db, plan, options, &guard, keep_started).await;
    release(guard).await;
    match outcome {
        Ok(check) => {
            entry.engine.clone_from(&check.server.engine);
            entry.server_version = Some(check.server.version);
            entry.tls = check.server.tls;
            entry.notes.extend(check.server.notes);
            entry.size_bytes = check.size_bytes;
            entry.estimated_seconds = check.size_bytes.map(estimate_seconds);
            entry.status = if check.problems.is_empty() {
                CheckStatus::Ok
            } else {
                CheckStatus::Problems
            };
            entry.problems = check.problems;
        }
        Err(e) => entry.error = Some(failure(&e)),
    }
    entry
}

/// The adapter's check, raced against the endpoint's lifeline (a tunnel that dies) and
/// bounded by the dump's `--stall-timeout`: a check is a few catalog reads, and one that has
/// not finished by then is stuck (a connection that stopped moving, a table lock held by
/// another session) as a dump would be — without the bound, the dump it guards would hang
/// before its first byte instead of failing.
async fn checked(
    db: &DatabaseTarget,
    plan: &DumpPlan,
    options: &DumpOptions,
    guard: &EndpointGuard,
    keep_started: bool,
) -> Result<exporter_contract::SourceCheck, EngineError> {
    let source = db.engine().source(guard.endpoint(), plan.engine_options);
    let bound = async {
        match plan.stall_timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        reason = guard.lost() => Err(EngineError::new(
            exporter_contract::ErrorKind::Connect,
            format!("{reason} (during the check)"),
        )),
        r = async {
            if keep_started {
                source.check_and_hold(options.clone(), KEEP_STARTED_FOR).await
            } else {
                source.check(options.clone()).await
            }
        } => r,
        () = bound => {
            let t = crate::pipeline::stall::format_timeout(
                plan.stall_timeout.unwrap_or_default(),
            );
            Err(EngineError::new(
                exporter_contract::ErrorKind::Connect,
                format!(
                    "stalled: the check did not finish within {t} (--stall-timeout {t})"
                ),
            )
            .with_hint(
                "a connection that stopped moving (a tunnel, a proxy), or a lock another \
                 session holds on a table; the dump would wait the same way",
            ))
        }
    }
}

/// Release an endpoint after its check (a platform tunnel stopped).
async fn release(guard: Arc<EndpointGuard>) {
    if let Ok(guard) = Arc::try_unwrap(guard) {
        guard.release().await;
    }
}

/// An engine error as the failure the dump would record.
fn failure(e: &EngineError) -> DatabaseFailure {
    DatabaseFailure {
        message: one_line(e),
        cause: FailureCause::Engine {
            kind: e.kind(),
            hint: e.hint().map(str::to_owned),
        },
    }
}

/// A platform database the dump skips.
fn skipped(s: &SkippedDatabase) -> DatabaseCheck {
    DatabaseCheck {
        name: s.name.clone(),
        engine: s.record.database_type.clone(),
        endpoint: crate::settings::platform_label(&s.record),
        status: CheckStatus::Skipped,
        server_version: None,
        tls: None,
        size_bytes: None,
        estimated_seconds: None,
        problems: Vec::new(),
        error: None,
        notes: vec![s.reason.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, status: CheckStatus, problems: Vec<CheckProblem>) -> DatabaseCheck {
        DatabaseCheck {
            name: name.into(),
            engine: "postgresql".into(),
            endpoint: format!("postgres://app:****@db/{name}"),
            status,
            server_version: Some("15.2".into()),
            tls: None,
            size_bytes: Some(64 << 20),
            estimated_seconds: Some(2.0),
            problems,
            error: None,
            notes: Vec::new(),
        }
    }

    fn report(databases: Vec<DatabaseCheck>, error: Option<&str>) -> CheckReport {
        CheckReport {
            version: REPORT_VERSION,
            passed: false,
            checked_at: Utc::now(),
            destination: DestinationCheck {
                location: "./archives".into(),
                writable: error.is_none(),
                error: error.map(str::to_owned),
            },
            databases,
            total_bytes: None,
            estimated_seconds: None,
            assumed_bytes_per_second: ASSUMED_THROUGHPUT,
        }
    }

    #[test]
    fn the_summary_names_the_only_problem_or_the_failing_databases() {
        let one = CheckProblem::privilege("table public.t", "SELECT", "the role may not read it");
        let r = report(
            vec![
                entry("a", CheckStatus::Ok, vec![]),
                entry("b", CheckStatus::Problems, vec![one.clone()]),
            ],
            None,
        );
        assert_eq!(
            r.summary(),
            "b: table public.t: SELECT missing: the role may not read it"
        );
        let r = report(
            vec![
                entry("a", CheckStatus::Problems, vec![one.clone(), one.clone()]),
                entry("b", CheckStatus::NotChecked, vec![]),
            ],
            Some("destination x is not writable: no"),
        );
        assert_eq!(
            r.summary(),
            "a: 2 problems; destination x is not writable: no"
        );
        let r = report(
            vec![
                entry("a", CheckStatus::Problems, vec![one.clone()]),
                entry("b", CheckStatus::Failed, vec![]),
                entry("c", CheckStatus::Skipped, vec![]),
            ],
            None,
        );
        assert_eq!(r.summary(), "2 of 3 databases would fail (a, b)");
        assert_eq!(r.failing().count(), 2);
    }

    /// Issue 18: a database whose only problems are objects the engine refuses gets the
    /// refusal's hint, never the one about privileges; any missing privilege keeps the grant
    /// hint.
    #[test]
    fn refusals_get_their_own_hint_not_the_privilege_one() {
        let cycle = CheckProblem::refused(
            "public.next_n()",
            "circular dependency between schema objects: public.next_n(), public.t",
        );
        let r = report(
            vec![entry("app", CheckStatus::Problems, vec![cycle.clone()])],
            None,
        );
        let hint = crate::error::check_hint(&r).expect("a hint");
        assert_eq!(hint, crate::error::REFUSED_HINT);
        assert!(!hint.contains("grant"), "{hint}");
        let select =
            CheckProblem::privilege("table public.t", "SELECT", "the role may not read it");
        let r = report(
            vec![entry("app", CheckStatus::Problems, vec![cycle, select])],
            None,
        );
        assert!(
            crate::error::check_hint(&r)
                .expect("a hint")
                .starts_with("grant what is missing")
        );
    }

    #[test]
    fn estimates_use_the_assumed_throughput() {
        assert!((estimate_seconds(ASSUMED_THROUGHPUT * 90) - 90.0).abs() < 1e-9);
        assert!(probe_name().starts_with(".exporter-check-"));
        assert_eq!(probe_name().len(), ".exporter-check-".len() + 16);
    }
}
