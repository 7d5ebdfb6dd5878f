//! Exit codes, the one error classifier, and the rendering of user-facing errors (design.md
//! section 9).
//!
//! The services return typed errors that name their object (a `thiserror` enum per service);
//! commands pass them up as [`anyhow::Error`]. [`classify`] is the one place that maps any
//! error to its exit code and `hint:` line: it walks the error's chain, outermost first, and
//! the first error it recognises decides. Nothing else in the crate writes an exit code.
//!
//! Hints: an adapter's own next step ([`EngineError::hint`], e.g. `sslmode=verify-ca` after a
//! host name mismatch through a tunnel, or the TLS parameter after a clear-text attempt against
//! a TLS-only server) wins over the generic hint of the error's kind, wherever it travels: in
//! the chain, in a dump's [`DatabaseFailure`], or in a verification's unavailable scratch
//! server.
//!
//! Rendered: `error: <message>`, then one `  caused by: <cause>` line per cause (a cause whose
//! text the line before already carries is left out), then `hint: <next step>` when there is
//! one (uv's style).

use std::error::Error as StdError;
use std::fmt::Write as _;

use exporter_contract::{EngineError, ErrorKind};

use crate::archive::manifest::SourceInfo;
use crate::check::{CheckError, CheckReport, CheckStatus};
use crate::commands::UnknownCommand;
use crate::pipeline::{DatabaseFailure, DumpError, FailureCause, RestoreError};
use crate::platform::InventoryError;
use crate::platform::session::LoginError;
use crate::run::{ArchiveError, EntryError, ManifestLoadError, RunError};
use crate::settings::{ConfigReadError, SettingsError};
use crate::storage::OpenError;
use crate::storage::uploads::UploadsError;
use crate::teardown::TeardownError;
use crate::verify::VerifyError;

/// The exit-code contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: success.
    Success,
    /// 1: a clean "no": verification found a bad archive, a restore refused, teardown refused.
    No,
    /// 2: usage or configuration error.
    Usage,
    /// 3: runtime failure (network, database, storage).
    Failure,
}

impl ExitStatus {
    /// The process exit code.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::No => 1,
            Self::Usage => 2,
            Self::Failure => 3,
        }
    }

    /// The status of a command-line parse that stopped: help and version (printed on stdout)
    /// are a success, anything else a usage error.
    #[must_use]
    pub fn of_clap(error: &clap::Error) -> Self {
        if error.use_stderr() {
            Self::Usage
        } else {
            Self::Success
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        Self::from(status.code())
    }
}

/// Which command a signal interrupted, for the hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// `dump` (and anything that commits nothing before it is done).
    Dump,
    /// `dump --verify`: the run may be committed while its last archives are verified.
    DumpVerify,
    /// `verify`.
    Verify,
    /// `restore`.
    Restore,
    /// `list`, `uploads`, `login`.
    Other,
    /// `tunnel`: held until Ctrl-C, so SIGINT or SIGTERM is its normal end (exit 0).
    Hold,
    /// `teardown`: its journal says where it stopped.
    Teardown,
}

/// The command was stopped by a signal.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {signal}")]
pub struct Interrupted {
    /// `SIGINT` or `SIGTERM`.
    pub signal: &'static str,
    /// What was interrupted.
    pub work: Work,
}

/// An error's exit status and hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    /// The exit status.
    pub status: ExitStatus,
    /// A next step for the user.
    pub hint: Option<String>,
}

impl Classified {
    fn new(status: ExitStatus, hint: Option<&str>) -> Self {
        Self {
            status,
            hint: hint.map(str::to_owned),
        }
    }
}

/// Map an error to its exit status and hint: the first error of the chain (outermost first)
/// that is recognised decides; an error nothing recognises is a runtime failure (exit 3)
/// without a hint. An adapter's own hint anywhere in the chain replaces the generic one.
#[must_use]
pub fn classify(error: &anyhow::Error) -> Classified {
    let mut classified = error
        .chain()
        .find_map(classify_one)
        .unwrap_or_else(|| Classified::new(ExitStatus::Failure, None));
    if let Some(hint) = error
        .chain()
        .find_map(|e| e.downcast_ref::<EngineError>().and_then(EngineError::hint))
    {
        classified.hint = Some(hint.to_owned());
    }
    classified
}

/// The next step after a check that said no: the first failing database's (its engine's own
/// hint, else its kind's; for objects the engine refuses, where the refusals are listed —
/// no privilege helps there; for missing privileges, what to grant), else the destination's.
#[must_use]
pub fn check_hint(report: &CheckReport) -> Option<String> {
    if let Some(d) = report.failing().next() {
        return match (&d.status, &d.error) {
            (CheckStatus::Failed, Some(f)) => database_hint(f),
            _ if !d.problems.is_empty() && d.problems.iter().all(|p| p.refused) => {
                Some(REFUSED_HINT.to_owned())
            }
            _ => Some(
                "grant what is missing to the user in the URL, or use a user that holds it \
                 (README, \"Troubleshooting\")"
                    .to_owned(),
            ),
        };
    }
    report.destination.error.as_ref().map(|_| {
        "check that the destination can be written: a directory's permissions and free space, \
         or the bucket, the credentials and the endpoint"
            .to_owned()
    })
}

/// The hint of a check whose problems are all objects the engine refuses
/// ([`exporter_contract::CheckProblem::refused`]): no grant changes a refusal.
pub const REFUSED_HINT: &str = "exporter refuses what it cannot export faithfully rather than \
     leave it out, and no privilege changes that: README, \"What is supported\", and PARITY.md \
     list what the PostgreSQL dump refuses and why";

/// The hint for one database's dump failure (shown beside it when several are dumped).
#[must_use]
pub fn database_hint(failure: &DatabaseFailure) -> Option<String> {
    failure_hint(&failure.cause)
}

fn classify_one(e: &(dyn StdError + 'static)) -> Option<Classified> {
    use ExitStatus::{Failure, Usage};
    if let Some(e) = e.downcast_ref::<SettingsError>() {
        return Some(Classified::new(Usage, e.hint_text()));
    }
    if let Some(e) = e.downcast_ref::<ConfigReadError>() {
        let hint = e.needs_databases.then(|| {
            format!(
                "pass --config FILE, or create exporter.toml ({})",
                crate::settings::CONFIG_DOCS
            )
        });
        return Some(Classified::new(Usage, hint.as_deref()));
    }
    if let Some(e) = e.downcast_ref::<UnknownCommand>() {
        return Some(Classified {
            status: Usage,
            hint: Some(format!("commands: {}", e.commands)),
        });
    }
    if let Some(e) = e.downcast_ref::<Interrupted>() {
        return Some(Classified::new(Failure, Some(interrupted_hint(e.work))));
    }
    if e.downcast_ref::<OpenError>().is_some() {
        return Some(Classified::new(
            Usage,
            Some("see README.md, section \"S3 storage\""),
        ));
    }
    if let Some(e) = e.downcast_ref::<RunError>() {
        return Some(run_error(e));
    }
    if let Some(e) = e.downcast_ref::<DumpError>() {
        return dump_error(e);
    }
    if let Some(e) = e.downcast_ref::<CheckError>() {
        return check_error(e);
    }
    if let Some(e) = e.downcast_ref::<RestoreError>() {
        return restore_error(e);
    }
    if let Some(e) = e.downcast_ref::<VerifyError>() {
        return verify_error(e);
    }
    if e.downcast_ref::<UploadsError>().is_some() {
        return Some(Classified::new(Failure, None));
    }
    if let Some(e) = e.downcast_ref::<EngineError>() {
        return Some(Classified::new(engine_status(e), None));
    }
    if let Some(e) = e.downcast_ref::<TeardownError>() {
        return Some(teardown_error(e));
    }
    if let Some(e) = e.downcast_ref::<InventoryError>() {
        return Some(inventory_error(e));
    }
    if let Some(e) = e.downcast_ref::<LoginError>() {
        return Some(match e {
            LoginError::Platform(e) => login_error(e),
            LoginError::Prompt { .. } => Classified::new(
                ExitStatus::Usage,
                Some(
                    "without a terminal, give --email, APTIBLE_PASSWORD or --password-stdin, and --otp-token",
                ),
            ),
            LoginError::NoConfigDir => Classified::new(
                ExitStatus::Usage,
                Some("set APTIBLE_CONFIG_PATH to a directory for tokens.json"),
            ),
        });
    }
    if let Some(e) = e.downcast_ref::<exporter_aptible::Error>() {
        return Some(platform_error(e));
    }
    None
}

/// The inventory step's refusals are clean "no"s (1): the command was valid, and the tool
/// refuses to start a dump that would leave data behind, before any tunnel or restore; a
/// backup id that names nothing is a usage error (2); the platform's own errors as
/// [`platform_error`].
fn inventory_error(e: &InventoryError) -> Classified {
    match e {
        InventoryError::Platform(e) => platform_error(e),
        InventoryError::Unsupported { .. } => Classified::new(
            ExitStatus::No,
            Some(
                "record them as skipped with --skip-unsupported, and export each with its own tools through `exporter tunnel HANDLE`",
            ),
        ),
        InventoryError::NoBackup { .. } => Classified::new(
            ExitStatus::No,
            Some(
                "take a backup first (aptible db:backup HANDLE), or dump those live without --from-backup",
            ),
        ),
        InventoryError::NothingToDump { .. } => Classified::new(
            ExitStatus::No,
            Some("`exporter list` shows each database and what dump --all does with it"),
        ),
        InventoryError::BackupNotFound { .. } => Classified::new(
            ExitStatus::Usage,
            Some("`exporter list` shows each database's newest backup"),
        ),
        InventoryError::BadBackup { .. } => Classified::new(ExitStatus::Failure, None),
    }
}

/// The gate's refusals and a wrong confirmation are clean "no"s (1: nothing was sent); no
/// terminal to confirm on is a usage error (2); a failed step, a listing that is not empty
/// and the platform's or the destination's failures are runtime failures (3).
fn teardown_error(e: &TeardownError) -> Classified {
    match e {
        TeardownError::Refused { .. } => Classified::new(
            ExitStatus::No,
            Some(
                "nothing was deprovisioned; `exporter teardown` shows the plan and what is missing",
            ),
        ),
        TeardownError::Confirmation { .. } => Classified::new(
            ExitStatus::No,
            Some("nothing was deprovisioned; type the environment's handle exactly"),
        ),
        TeardownError::NoConfirmation => Classified::new(
            ExitStatus::Usage,
            Some("pass --confirm HANDLE (the environment's handle)"),
        ),
        TeardownError::Platform { source, .. } => platform_error(source),
        TeardownError::StepFailed { .. } => Classified::new(
            ExitStatus::Failure,
            Some(
                "nothing after this step was sent; the journal and teardown-report.md are next to the covering run; run `exporter teardown --apply` again to resume after the last finished step",
            ),
        ),
        TeardownError::OutcomeUnknown { operation_id, .. } => Classified {
            status: ExitStatus::Failure,
            hint: Some(format!(
                "the request was accepted and is not sent again; nothing after this step was sent; run `exporter teardown --apply` again to follow operation #{operation_id} and resume"
            )),
        },
        TeardownError::Journal { .. } => Classified::new(
            ExitStatus::Failure,
            Some(
                "nothing was sent; the journal is the record of what earlier --apply runs removed and is never replaced: restore it from a copy, or move it aside to start a new journal knowingly",
            ),
        ),
        TeardownError::Remaining { .. } => Classified::new(
            ExitStatus::Failure,
            Some("something was created during the teardown; run `exporter teardown` to see it"),
        ),
        TeardownError::Storage { .. } | TeardownError::Thread(_) => {
            Classified::new(ExitStatus::Failure, None)
        }
    }
}

/// A refused login (wrong email, password or one-time code) is a clean "no" (1); the rest as
/// [`platform_error`].
fn login_error(e: &exporter_aptible::Error) -> Classified {
    use exporter_aptible::ErrorKind as K;
    match e.kind() {
        K::Login | K::OtpRequired => Classified::new(
            ExitStatus::No,
            Some("check the email, the password and the one-time code"),
        ),
        _ => platform_error(e),
    }
}

/// A platform client error: configuration mistakes are usage errors (2); a missing, invalid or
/// expired token and every failure of the platform are runtime failures (3), the token's with
/// `hint: run exporter login` (aptible-api.md §10).
fn platform_error(e: &exporter_aptible::Error) -> Classified {
    use exporter_aptible::ErrorKind as K;
    match e.kind() {
        K::Config => Classified::new(ExitStatus::Usage, e.hint()),
        K::Auth => Classified::new(ExitStatus::Failure, Some("run exporter login")),
        K::Tunnel => Classified::new(
            ExitStatus::Failure,
            Some("is ssh installed, and does the tunnel come up with `exporter tunnel HANDLE`?"),
        ),
        _ => Classified::new(ExitStatus::Failure, e.hint()),
    }
}

fn interrupted_hint(work: Work) -> &'static str {
    match work {
        Work::Restore => "the target may be partly restored; run the restore again with --clean",
        Work::Verify => {
            "the verification was not recorded (scratch databases are dropped); run it again"
        }
        Work::Teardown => {
            "the journal (teardown-journal.json) records each request; run `exporter teardown --apply` again to resume"
        }
        Work::Dump => {
            "no manifest was written; run the same dump again, with --resume to keep the databases it finished"
        }
        Work::DumpVerify => {
            "scratch databases are dropped and nothing was recorded; a run whose manifest was \
             written is kept, unverified (check it with `exporter verify RUN`); otherwise run the \
             same dump again, with --resume to keep the databases it finished"
        }
        Work::Other | Work::Hold => {
            "nothing of the interrupted work was committed; run the command again"
        }
    }
}

fn run_error(e: &RunError) -> Classified {
    match e {
        RunError::Directory { .. } => Classified::new(ExitStatus::Usage, None),
        RunError::NoRunPath { .. } => Classified::new(
            ExitStatus::Usage,
            Some("give the path of a run directory (it holds manifest.json), or a run id"),
        ),
        RunError::NoDestination { .. } => Classified::new(
            ExitStatus::Usage,
            Some(
                "pass --to the directory the dump wrote to (or set [storage] to), or a path to a run directory",
            ),
        ),
        RunError::List { .. } => Classified::new(ExitStatus::Failure, None),
        RunError::NotFound { .. } => Classified::new(
            ExitStatus::Usage,
            Some("give a run id listed in the destination, or a path to a run directory"),
        ),
        RunError::NoRuns { .. } => Classified::new(
            ExitStatus::No,
            Some("run `exporter dump --all` first, or pass --to DEST"),
        ),
    }
}

/// What to check when writing to the destination failed.
fn destination_hint(local: bool) -> &'static str {
    if local {
        "check free space and permissions at the destination"
    } else {
        "check the bucket, the credentials and the endpoint; `exporter uploads` lists uploads left open"
    }
}

fn failure_hint(cause: &FailureCause) -> Option<String> {
    match cause {
        // The engine's own next step first.
        FailureCause::Engine {
            hint: Some(hint), ..
        } => Some(hint.clone()),
        FailureCause::Engine { kind, hint: None } => engine_kind_hint(*kind).map(str::to_owned),
        FailureCause::Destination { local } => Some(destination_hint(*local).to_owned()),
        FailureCause::Stalled { .. } => Some(
            "the server, the network or the tunnel stopped moving data (a lock, a dead connection); the other databases went on. Fix the cause and dump it again; raise --stall-timeout if the server is only slow to start (a Redis RDB background save of a large data set)"
                .to_owned(),
        ),
        FailureCause::Internal => None,
    }
}

/// The generic hint for an adapter error of `kind` during a dump.
fn engine_kind_hint(kind: ErrorKind) -> Option<&'static str> {
    match kind {
        ErrorKind::Connect => {
            Some("is the server running and reachable from here (host, port, tunnel)?")
        }
        ErrorKind::Auth => {
            Some("check the user and password; keep passwords out of exporter.toml with ${VAR}")
        }
        ErrorKind::NotFound => Some("check the database name in the URL"),
        ErrorKind::Permission => Some(
            "dump as a user that may read everything the error names (the owner, a superuser, or an ACL user with those commands)",
        ),
        ErrorKind::Unsupported => Some(
            "this object cannot be exported faithfully yet; nothing was written for this database \
             (README, \"What is supported\"; PARITY.md lists what the PostgreSQL dump refuses)",
        ),
        ErrorKind::Config => Some(
            "check the connection URL's parameters and the files they name (CA, client certificate and key)",
        ),
        _ => None,
    }
}

/// `exporter check` answering no is a clean "no" (1); the same check stopping a dump is the
/// dump's runtime failure (3), as when the dump itself met the problem.
fn check_error(e: &CheckError) -> Option<Classified> {
    Some(match e {
        CheckError::Failed { hint, .. } => Classified {
            status: ExitStatus::No,
            hint: hint.clone(),
        },
        CheckError::BeforeDump { hint, .. } => Classified {
            status: ExitStatus::Failure,
            hint: Some(hint.clone().unwrap_or_else(|| {
                "`exporter check` shows every problem; `dump --no-check` skips the check".to_owned()
            })),
        },
        CheckError::Thread(_) => return None,
    })
}

fn dump_error(e: &DumpError) -> Option<Classified> {
    let status = ExitStatus::Failure;
    Some(match e {
        DumpError::CreateRun { local, .. } => Classified::new(
            status,
            Some(if *local {
                "check that the destination is a writable directory"
            } else {
                "check the bucket name, the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, …), the region and the endpoint"
            }),
        ),
        DumpError::Failed { failure, .. } => Classified {
            status,
            hint: failure_hint(&failure.cause),
        },
        DumpError::AllFailed { failures, .. } => Classified {
            status,
            hint: failures.iter().find_map(|f| failure_hint(&f.cause)),
        },
        DumpError::WriteManifest { .. } => Classified::new(
            status,
            Some("the finished databases are kept: run the same dump again with --resume"),
        ),
        DumpError::RunBusy { .. } => Classified::new(
            status,
            Some(
                "wait for the other dump to end, or stop it (a stopped or killed dump releases its run), then run --resume again",
            ),
        ),
        DumpError::Resume { .. } => Classified::new(
            status,
            Some("check the destination; without --resume a dump starts a new run"),
        ),
        DumpError::Partial { .. } => Classified::new(
            status,
            Some(
                "the other archives of this run are complete; the manifest marks the run as partial",
            ),
        ),
        DumpError::Thread(_) => return None,
    })
}

/// Unsupported requests and configuration mistakes are usage errors (2), other adapter errors
/// runtime failures (3).
fn engine_status(e: &EngineError) -> ExitStatus {
    if matches!(e.kind(), ErrorKind::Unsupported | ErrorKind::Config) {
        ExitStatus::Usage
    } else {
        ExitStatus::Failure
    }
}

fn archive_error(e: &ArchiveError, started: bool) -> Classified {
    match e {
        ArchiveError::Corrupt { .. } | ArchiveError::Missing { .. } => Classified::new(
            ExitStatus::No,
            Some(if started {
                "restore from another run (`exporter verify` checks one), then use --clean"
            } else {
                "restore from another run (`exporter verify` checks one)"
            }),
        ),
        ArchiveError::Storage { .. } => Classified::new(ExitStatus::Failure, None),
    }
}

fn restore_error(e: &RestoreError) -> Option<Classified> {
    use ExitStatus::{Failure, No, Usage};
    Some(match e {
        RestoreError::Run(e) => run_error(e),
        RestoreError::Manifest(e) => match e {
            ManifestLoadError::Missing { .. } => {
                Classified::new(No, Some("restore from a complete run"))
            }
            ManifestLoadError::Read { .. } => Classified::new(Failure, None),
            ManifestLoadError::Invalid { .. } => Classified::new(No, None),
        },
        RestoreError::Entry(e) => match e {
            EntryError::NoSuchDatabase { .. } => {
                Classified::new(Usage, Some("pass one of those names to --db"))
            }
            EntryError::Empty { .. } => Classified::new(No, None),
            EntryError::Ambiguous { first, .. } => Classified {
                status: Usage,
                hint: Some(format!("e.g. --db {first}")),
            },
        },
        RestoreError::NotDumped { .. } => Classified::new(No, Some("restore it from another run")),
        RestoreError::UnknownEngine { .. } => Classified::new(Usage, None),
        RestoreError::EngineMismatch { engine, .. } => Classified {
            status: Usage,
            hint: Some(format!(
                "restore into a {engine} database ({} URL)",
                engine.name()
            )),
        },
        RestoreError::DatabaseScope { needs_database, .. } => Classified::new(
            Usage,
            Some(if *needs_database {
                "name the database to restore into: mysql://user@host:3306/DATABASE (an empty one)"
            } else {
                "restore it into a server URL without a database (mysql://user@host:3306): the \
                 script creates and selects its databases itself"
            }),
        ),
        RestoreError::RdbClean { .. } => Classified::new(
            Usage,
            Some(
                "load the RDB file with a stock redis-server (README, \"Restore by hand\"), or dump with --redis-format resp",
            ),
        ),
        RestoreError::Preflight { source, .. } => Classified::new(
            engine_status(source),
            (source.kind() == ErrorKind::NotFound)
                .then_some("create the target database first (it must exist and be empty)"),
        ),
        RestoreError::ListObjects { source, .. } | RestoreError::Clean { source, .. } => {
            Classified::new(engine_status(source), None)
        }
        RestoreError::NotEmpty { .. } => Classified::new(No, Some("--clean drops them first")),
        RestoreError::Precheck(e) => Classified {
            status: archive_error(e, false).status,
            hint: Some(
                "nothing was dropped: the target is unchanged; restore from another run".to_owned(),
            ),
        },
        RestoreError::Archive { error, started } => archive_error(error, *started),
        RestoreError::Target { source, rdb, .. } => {
            let hint = if source.kind() == ErrorKind::Unsupported && *rdb {
                "RDB archives are loaded by a stock redis-server (README, \"Restore by hand\")"
            } else if source.kind() == ErrorKind::Unsupported {
                "the archive holds something `exporter restore` does not run; restore it with the stock client (README, \"Restore by hand\") if you trust it"
            } else {
                "the target may be partly restored; fix the cause and run again with --clean"
            };
            Classified::new(engine_status(source), Some(hint))
        }
        RestoreError::Thread(_) => return None,
    })
}

fn verify_error(e: &VerifyError) -> Option<Classified> {
    use ExitStatus::{Failure, No, Usage};
    Some(match e {
        VerifyError::Run(e) => run_error(e),
        VerifyError::MissingScratch { .. } => Classified::new(
            Usage,
            Some(
                "add --scratch URL per engine: a server where exporter may create and drop databases \
                 (postgres://postgres@host:5432/postgres, mysql://root@host:3306, redis://host:6380 of an empty Redis)",
            ),
        ),
        VerifyError::ScratchRefused { source, .. } => Classified::new(
            engine_status(source),
            Some(if source.kind() == ErrorKind::Unsupported {
                "nothing was restored; give --scratch a dedicated server (Redis: an empty one, which verify flushes)"
            } else {
                "nothing was restored; check the --scratch server, then run the command again"
            }),
        ),
        VerifyError::WriteRecord { .. } => Classified::new(Failure, None),
        VerifyError::Failed { origin, .. } => Classified {
            status: No,
            hint: Some(format!(
                "do not delete the source databases; dump again with {}",
                redump_command(origin.as_ref())
            )),
        },
        VerifyError::ScratchUnavailable { hint, .. } => Classified {
            status: Failure,
            hint: Some(hint.clone().unwrap_or_else(|| {
                "check the --scratch server and its privileges, then verify again".to_owned()
            })),
        },
        VerifyError::Thread(_) => return None,
    })
}

/// How to dump a run's databases again, by the manifest's `source`: the config's with
/// `dump --all`, a platform environment's with `--environment`, URLs by naming them again.
fn redump_command(source: Option<&SourceInfo>) -> String {
    match source {
        Some(s) if s.kind == "config" => "`exporter dump --all`".to_owned(),
        Some(s) if s.kind == "urls" => {
            "`exporter dump URL…`, naming the same URLs (the manifest lists their endpoints)"
                .to_owned()
        }
        Some(SourceInfo {
            environment: Some(env),
            ..
        }) => format!("`exporter dump --all --environment {env}`"),
        _ => "`exporter dump` (as this run was made)".to_owned(),
    }
}

/// The text printed on stderr for a failed command: the error, its causes, its hint.
#[must_use]
pub fn render(error: &anyhow::Error) -> String {
    render_with_hint(error, classify(error).hint.as_deref())
}

/// Render an error chain and a hint as printed on stderr.
#[must_use]
pub fn render_with_hint(error: &anyhow::Error, hint: Option<&str>) -> String {
    let mut out = format!("error: {error}\n");
    let mut last = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        // Skip causes whose text the previous line already carries.
        if !last.contains(&text) {
            let _ = writeln!(out, "  caused by: {text}");
        }
        last = text;
    }
    if let Some(hint) = hint {
        let _ = writeln!(out, "hint: {hint}");
    }
    out
}

/// The causes of an error, outermost first, leaving out one whose text the previous line
/// already carries: the `caused by:` lines of [`render_with_hint`], for the JSON `error`
/// event.
#[must_use]
pub fn causes(error: &anyhow::Error) -> Vec<String> {
    let mut out = Vec::new();
    let mut last = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !last.contains(&text) {
            out.push(text.clone());
        }
        last = text;
    }
    out
}

/// An error and its causes on one line, `a: b: c`, leaving out a cause whose text is already
/// there (for manifests, per-database lines and verification problems).
#[must_use]
pub fn one_line(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn renders_chain_and_hint() {
        let err = Err::<(), _>(std::io::Error::other("connection refused"))
            .context("cannot reach database billing")
            .unwrap_err();
        assert_eq!(
            render_with_hint(&err, Some("is the server running?")),
            "error: cannot reach database billing\n  caused by: connection refused\nhint: is the server running?\n"
        );
        assert_eq!(classify(&err).status.code(), 3);
    }

    #[test]
    fn the_outermost_known_error_decides() {
        let failure = DatabaseFailure {
            message: "h:1: error connecting to server: Connection refused".into(),
            cause: FailureCause::Engine {
                kind: ErrorKind::Connect,
                hint: None,
            },
        };
        let err = anyhow::Error::new(DumpError::Failed {
            name: "billing".into(),
            endpoint: "postgres://h:1/billing".into(),
            failure,
        });
        assert_eq!(
            render(&err),
            "error: failed to dump billing (postgres://h:1/billing); no run was written\n  caused by: h:1: error connecting to server: Connection refused\nhint: is the server running and reachable from here (host, port, tunnel)?\n"
        );
        assert_eq!(classify(&err).status, ExitStatus::Failure);
        let err = anyhow::Error::new(RestoreError::NotEmpty {
            target: "postgres://h/t".into(),
            objects: vec!["public.a".into()],
        });
        assert_eq!(classify(&err).status, ExitStatus::No);
        assert_eq!(
            classify(&err).hint.as_deref(),
            Some("--clean drops them first")
        );
        let err = anyhow::Error::new(Interrupted {
            signal: "SIGTERM",
            work: Work::Restore,
        });
        assert_eq!(classify(&err).status.code(), 3);
        assert_eq!(
            render(&err).lines().next(),
            Some("error: interrupted by SIGTERM")
        );
        let unsupported = EngineError::new(ErrorKind::Unsupported, "sslmode=require");
        assert_eq!(
            classify(&anyhow::Error::new(unsupported)).status,
            ExitStatus::Usage
        );
    }

    #[test]
    fn an_adapter_hint_wins_over_the_generic_one() {
        let tls = || {
            EngineError::new(
                ErrorKind::Connect,
                "host name mismatch: the server's certificate is for db.internal, not localhost",
            )
            .with_hint("use sslmode=verify-ca")
        };
        // In the chain (a restore target's preflight) ...
        let err = anyhow::Error::new(RestoreError::Preflight {
            target: "postgres://localhost/t".into(),
            source: tls(),
        });
        let c = classify(&err);
        assert_eq!(c.status, ExitStatus::Failure);
        assert_eq!(c.hint.as_deref(), Some("use sslmode=verify-ca"));
        assert!(render(&err).ends_with("hint: use sslmode=verify-ca\n"));
        // ... in a dump's failure, where the error itself is a line of text ...
        let failure = DatabaseFailure {
            message: one_line(&tls()),
            cause: FailureCause::Engine {
                kind: ErrorKind::Connect,
                hint: tls().hint().map(str::to_owned),
            },
        };
        assert_eq!(
            database_hint(&failure).as_deref(),
            Some("use sslmode=verify-ca")
        );
        let err = anyhow::Error::new(DumpError::Failed {
            name: "billing".into(),
            endpoint: "postgres://localhost/billing".into(),
            failure,
        });
        assert_eq!(
            classify(&err).hint.as_deref(),
            Some("use sslmode=verify-ca")
        );
        // ... and for a scratch server that could not be used.
        let err = anyhow::Error::new(VerifyError::ScratchUnavailable {
            run_id: "r".into(),
            hint: Some("use sslmode=verify-ca".into()),
        });
        assert_eq!(
            classify(&err).hint.as_deref(),
            Some("use sslmode=verify-ca")
        );
        // Without one, the kind's generic hint stays.
        let plain = DatabaseFailure {
            message: "connection refused".into(),
            cause: FailureCause::Engine {
                kind: ErrorKind::Connect,
                hint: None,
            },
        };
        assert_eq!(
            database_hint(&plain).as_deref(),
            Some("is the server running and reachable from here (host, port, tunnel)?")
        );
        let err = anyhow::Error::new(VerifyError::ScratchUnavailable {
            run_id: "r".into(),
            hint: None,
        });
        assert_eq!(
            classify(&err).hint.as_deref(),
            Some("check the --scratch server and its privileges, then verify again")
        );
    }

    /// Issue 16: a failed verification's hint said `dump --all` even for runs made from URLs.
    #[test]
    fn a_failed_verification_hints_at_the_dump_that_made_the_run() {
        let failed = |kind: &str, environment: Option<&str>| {
            let err = anyhow::Error::new(VerifyError::Failed {
                run_id: "r".into(),
                bad: 1,
                total: 1,
                problems: 0,
                origin: Some(SourceInfo {
                    kind: kind.into(),
                    environment: environment.map(str::to_owned),
                }),
            });
            let c = classify(&err);
            assert_eq!(c.status, ExitStatus::No);
            c.hint.unwrap()
        };
        assert!(failed("config", None).ends_with("dump again with `exporter dump --all`"));
        let urls = failed("urls", None);
        assert!(urls.contains("`exporter dump URL…`"), "{urls}");
        assert!(!urls.contains("--all"), "{urls}");
        assert!(
            failed("aptible", Some("prod")).ends_with("`exporter dump --all --environment prod`")
        );
    }

    #[test]
    fn one_line_joins_causes_without_repeating() {
        let inner = std::io::Error::other("disk full");
        let e = EngineError::new(ErrorKind::Io, "cannot write").with_source(inner);
        assert_eq!(one_line(&e), "cannot write: disk full");
    }
}
