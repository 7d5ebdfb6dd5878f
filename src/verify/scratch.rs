//! Level `restore`: each archive that passed the file checks is restored into a scratch
//! database on the `--scratch` server of its engine ([`decode::restore_archive`], the restore
//! path's stream, on [`VerifyPlan::jobs`] connections), the fingerprints are computed there
//! ([`exporter_contract::Target::fingerprint_with`], on as many) and compared with the
//! manifest's `tables` by name (fingerprints only when the manifest's algorithm is the one
//! this build computes; see [`compare_tables`]), and the scratch database is dropped again.
//! MySQL `DEFINER=` clauses are restored as [`VerifyPlan::definer`] says (by default rewritten
//! to the scratch account), PostgreSQL tablespace assignments only with
//! [`VerifyPlan::tablespaces`] (by default left out: the proof is about the data, and a
//! scratch server need not have the source's tablespaces). It is registered with the cleanup scope before it is created, so
//! a failure, a panic or Ctrl-C still drops it.
//!
//! [`restore_stage`] checks the archives of a run overlapped: the fingerprint pass and drop of
//! one archive while the next one is restored, events and report in manifest order as if one
//! at a time (see [`super::overlap`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use exporter_contract::{
    DatabaseUrl, ErrorKind, FINGERPRINT_ALGORITHM, Fingerprint, PayloadFormat, RestoreOptions,
    ScratchServer, TableSummary,
};
use futures::StreamExt as _;
use sha2::{Digest as _, Sha256};

use super::overlap::{IN_FLIGHT, InOrder, Place, Slots};
use super::{DatabaseOutcome, RestoreCheck, VerifyContext, VerifyError, VerifyReport};
use crate::archive::{DatabaseEntry, DatabaseStatus, Manifest};
use crate::cleanup::{self, Cleanup};
use crate::endpoint::EndpointGuard;
use crate::engines::EngineKind;
use crate::error::one_line;
use crate::pipeline::decode::{self, StreamError};
use crate::progress::{Event, Meter, Progress, Ticker};
use crate::run::{self, ResolvedRun};
use crate::settings::VerifyPlan;

/// Longest scratch database name, in bytes (PostgreSQL's identifier limit, `NAMEDATALEN - 1`;
/// MySQL allows 64).
const SCRATCH_NAME_MAX: usize = 63;
/// How long a scratch database may take to drop before it is reported as left behind.
const DROP_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether level `restore` restores this entry: it was dumped, and its payload is not an RDB
/// file (those get a problem instead, see [`restore_stage`]).
fn restorable(db: &DatabaseEntry) -> bool {
    db.status == DatabaseStatus::Ok && db.format != Some(PayloadFormat::Rdb)
}

/// Before anything is restored: every engine with a restorable entry needs a `--scratch`
/// server.
///
/// # Errors
///
/// [`VerifyError::MissingScratch`] naming each engine and its databases.
pub fn check_coverage(plan: &VerifyPlan, manifest: &Manifest) -> Result<(), VerifyError> {
    require_scratch(
        plan,
        manifest
            .databases
            .iter()
            .filter(|d| restorable(d))
            .filter_map(|d| Some((EngineKind::for_manifest_engine(&d.engine)?, d.name.as_str()))),
    )
}

/// Every engine of `databases` (each an engine and a database's name) needs a `--scratch`
/// server: [`check_coverage`] for a run's manifest, and for the databases a `dump --verify
/// restore` is about to dump, before the first one.
///
/// # Errors
///
/// [`VerifyError::MissingScratch`] naming each engine and its databases.
pub fn require_scratch<'a>(
    plan: &VerifyPlan,
    databases: impl IntoIterator<Item = (EngineKind, &'a str)>,
) -> Result<(), VerifyError> {
    let mut missing: BTreeMap<&'static str, Vec<&str>> = BTreeMap::new();
    for (engine, name) in databases {
        if plan.scratch_for(engine).is_none() {
            missing.entry(engine.name()).or_default().push(name);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let engines = missing
        .iter()
        .map(|(engine, dbs)| format!("{engine} (for {})", dbs.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    Err(VerifyError::MissingScratch { engines })
}

/// Before anything is restored: every scratch server the run needs can serve
/// ([`ScratchServer::check`]; a Redis scratch server must be empty), so a verification stops
/// before its first restore rather than after the other engines' (issue 16).
///
/// # Errors
///
/// [`VerifyError::ScratchRefused`] naming the server, with the adapter's error.
pub async fn check_servers(
    plan: &VerifyPlan,
    manifest: &Manifest,
    cx: &VerifyContext<'_>,
) -> Result<(), VerifyError> {
    let needed: Vec<EngineKind> = manifest
        .databases
        .iter()
        .filter(|d| restorable(d))
        .filter_map(|d| EngineKind::for_manifest_engine(&d.engine))
        .collect();
    check_scratch_servers(plan, &needed, cx).await
}

/// The `--scratch` servers of `engines` can serve ([`ScratchServer::check`]; a Redis scratch
/// server must be empty): [`check_servers`] for a run's manifest, and for the engines a `dump
/// --verify restore` is about to dump, before the first dump.
///
/// # Errors
///
/// [`VerifyError::ScratchRefused`] naming the server, with the adapter's error.
pub async fn check_scratch_servers(
    plan: &VerifyPlan,
    engines: &[EngineKind],
    cx: &VerifyContext<'_>,
) -> Result<(), VerifyError> {
    for scratch in plan.scratch.iter().filter(|s| engines.contains(&s.engine)) {
        let refused = |source| VerifyError::ScratchRefused {
            server: scratch.url.redacted(),
            source,
        };
        let endpoint = cx
            .endpoints
            .open(&scratch.clone().into())
            .await
            .map_err(refused)?;
        scratch
            .engine
            .scratch(endpoint.endpoint())
            .check()
            .await
            .map_err(refused)?;
    }
    Ok(())
}

/// The databases level `restore` could not check because their scratch server could not be
/// reached or their scratch database could not be created (a runtime failure, not a finding
/// about the archive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unavailable {
    /// How many databases.
    pub databases: usize,
    /// The first adapter hint among their errors ([`exporter_contract::EngineError::hint`],
    /// e.g. the TLS parameter to change), for the `hint:` line.
    pub hint: Option<String>,
}

impl Unavailable {
    fn add(&mut self, hint: Option<&str>) {
        self.databases += 1;
        if self.hint.is_none() {
            self.hint = hint.map(str::to_owned);
        }
    }

    /// Count `other`'s databases too; the first hint stays.
    pub fn merge(&mut self, other: Self) {
        self.databases += other.databases;
        if self.hint.is_none() {
            self.hint = other.hint;
        }
    }
}

/// Level `restore` for every database whose file checks passed; findings go into `report`.
/// Returns the databases that could not be checked because their scratch database could not
/// be created.
///
/// Up to [`IN_FLIGHT`] archives are checked at once, started in manifest order: while one is
/// fingerprinted and dropped the next is restored, with one restore at a time in manifest
/// order and one fingerprint pass at a time ([`Slots`]). Events come out as if the archives
/// were checked one after the other ([`InOrder`]).
///
/// # Cancel safety
///
/// Dropping the future stops every check; their scratch databases are registered with the
/// cleanup scope and dropped when it closes.
pub async fn restore_stage(
    plan: &VerifyPlan,
    run: &ResolvedRun,
    manifest: &Manifest,
    report: &mut VerifyReport,
    cx: &VerifyContext<'_>,
) -> Unavailable {
    let slots = Slots::default();
    let order = InOrder::new(cx.progress.clone());
    let checks = manifest
        .databases
        .iter()
        .zip(report.databases.iter_mut())
        .enumerate()
        .map(|(index, (db, out))| {
            let turn = order.turn(index);
            let cx = VerifyContext {
                storage: cx.storage.clone(),
                endpoints: cx.endpoints,
                cleanup: cx.cleanup,
                progress: turn.clone(),
            };
            // Taken here, in manifest order: `buffered` starts the checks in that order.
            let place = slots.place();
            let algorithm = manifest.fingerprint_algorithm.as_str();
            async move {
                let mut unavailable = Unavailable::default();
                restore_one(plan, run, algorithm, db, out, &cx, &mut unavailable, place).await;
                turn.done();
                unavailable
            }
        });
    let mut checked = futures::stream::iter(checks).buffered(IN_FLIGHT);
    let mut unavailable = Unavailable::default();
    while let Some(one) = checked.next().await {
        unavailable.merge(one);
    }
    unavailable
}

/// Level `restore` for one database whose file checks passed (`out.ok`; anything else is
/// left as it is): its archive restored into a scratch database on the `--scratch` server
/// of its engine and compared with the manifest entry `db`, whose run's
/// `fingerprint_algorithm` is `algorithm`. Findings go into `out`; a scratch database that
/// could not be created is counted in `unavailable`. Reported as
/// [`Event::ScratchRestoreStarted`] and [`Event::ScratchRestoreChecked`]. `verify` calls it
/// for each database of the run after the file checks; `dump --verify restore` as soon as
/// each archive is committed ([`super::alongside`]). Checks that run at once take their
/// `place` from one [`Slots`]: the restore waits for the previous archive's, the fingerprint
/// pass and (Redis) the scratch server for their slot (see [`super::overlap`]); a check alone
/// takes the place of a [`Slots::default`].
///
/// # Cancel safety
///
/// Dropping the future stops the restore; the scratch database is registered with the
/// cleanup scope and dropped when it closes.
#[expect(
    clippy::too_many_arguments,
    reason = "the verification's context, one database's entry and outcome, and its place"
)]
pub async fn restore_one(
    plan: &VerifyPlan,
    run: &ResolvedRun,
    algorithm: &str,
    db: &DatabaseEntry,
    out: &mut DatabaseOutcome,
    cx: &VerifyContext<'_>,
    unavailable: &mut Unavailable,
    place: Place<'_>,
) {
    if db.status != DatabaseStatus::Ok || !out.ok {
        return;
    }
    let label = db.file.clone().unwrap_or_else(|| db.name.clone());
    if db.format == Some(PayloadFormat::Rdb) {
        out.problems.push(
            "level restore is not available for RDB archives (dump with --redis-format resp, \
             or verify at level decompress)"
                .to_owned(),
        );
    } else if every_schema(db) {
        out.problems.push(
            "level restore is not available for an archive of every schema of a MySQL \
             server: its script creates and selects its own databases, which one scratch \
             database cannot hold (the archive itself may be fine: it passed level \
             decompress). Dump each database by name (mysql://host/DB) to prove it at this \
             level"
                .to_owned(),
        );
    } else if let Some(engine) = EngineKind::for_manifest_engine(&db.engine) {
        // check_coverage made sure there is one.
        let Some(scratch) = plan.scratch_for(engine) else {
            return;
        };
        match cx.endpoints.open(&scratch.clone().into()).await {
            Ok(endpoint) => {
                let server = engine.scratch(endpoint.endpoint());
                cx.progress.event(&Event::ScratchRestoreStarted {
                    label: label.clone(),
                    server: server.describe(),
                });
                let outcome = restore_check(
                    run,
                    db,
                    Expect {
                        algorithm,
                        options: RestoreOptions::default()
                            .with_definer(plan.definer)
                            .with_tablespaces(plan.tablespaces)
                            .with_jobs(plan.jobs),
                    },
                    Scratch {
                        engine,
                        server,
                        endpoint,
                        cleanup: cx.cleanup,
                        progress: cx.progress.clone(),
                    },
                    place,
                )
                .await;
                if outcome.unavailable {
                    unavailable.add(outcome.hint.as_deref());
                }
                out.problems.extend(outcome.problems);
                out.restore = outcome.check;
            }
            Err(e) => {
                out.problems.push(format!(
                    "cannot reach scratch server {}: {}",
                    scratch.url.redacted(),
                    one_line(&e)
                ));
                unavailable.add(e.hint());
            }
        }
    } else {
        out.problems.push(format!(
            "engine {:?} is unknown to this build; it cannot be restored",
            db.engine
        ));
    }
    finish_outcome(out, &label, &db.engine, cx.progress.as_ref());
}

/// A MySQL/MariaDB archive of every schema of a server (dumped from a URL without a
/// database): restored, it would create and select the databases it names, so it cannot be
/// restored into a scratch database (the MySQL adapter refuses such a script there).
fn every_schema(db: &DatabaseEntry) -> bool {
    EngineKind::for_manifest_engine(&db.engine) == Some(EngineKind::Mysql)
        && DatabaseUrl::parse(&db.endpoint).is_ok_and(|url| url.database().is_none())
}

/// Settle one database's outcome after its scratch restore and report it.
fn finish_outcome(out: &mut DatabaseOutcome, label: &str, engine: &str, progress: &dyn Progress) {
    out.ok = out.problems.is_empty();
    progress.event(&Event::ScratchRestoreChecked {
        label: label.to_owned(),
        engine: engine.to_owned(),
        ok: out.ok,
        check: out.restore.clone(),
        problems: out.problems.clone(),
    });
}

/// The outcome of one scratch restore.
struct RestoreCheckOutcome {
    problems: Vec<String>,
    check: Option<RestoreCheck>,
    /// The scratch database could not be created.
    unavailable: bool,
    /// The adapter's hint for that, if any.
    hint: Option<String>,
}

/// A scratch server and what its databases need: the engine, the endpoint (held until the
/// scratch database is dropped), the cleanup scope, the observer.
struct Scratch<'a> {
    engine: EngineKind,
    server: Arc<dyn ScratchServer>,
    endpoint: Arc<EndpointGuard>,
    cleanup: &'a Cleanup,
    progress: Arc<dyn Progress>,
}

/// How a scratch restore runs and what its fingerprints are compared as.
struct Expect<'a> {
    /// The manifest's `fingerprint_algorithm` (see [`compare_tables`]).
    algorithm: &'a str,
    /// The restore's options (the definer policy of `--definer`, tablespaces with
    /// `--tablespaces`).
    options: RestoreOptions,
}

/// Create a scratch database, restore `db` into it, compare row counts and fingerprints (those
/// of the manifest's algorithm; see [`compare_tables`]), drop it. The create and restore wait
/// for the `place`'s restore turn, the fingerprint pass for the fingerprint slot, everything
/// from the create to the drop for the scratch server when its engine has one scratch
/// database at a time; [`RestoreCheck::millis`] leaves those waits out.
async fn restore_check(
    run: &ResolvedRun,
    db: &DatabaseEntry,
    expect: Expect<'_>,
    scratch: Scratch<'_>,
    mut place: Place<'_>,
) -> RestoreCheckOutcome {
    let started = Instant::now();
    // Time spent waiting for a slot, left out of `millis`.
    let mut waited = Duration::ZERO;
    let name = scratch_name(&run.id, &db.name);
    let server = scratch.server.clone();
    let mut outcome = RestoreCheckOutcome {
        problems: Vec::new(),
        check: None,
        unavailable: false,
        hint: None,
    };
    let archive = {
        let (run, db) = (run.clone(), db.clone());
        tokio::task::spawn_blocking(move || run::open_archive(&run, &db)).await
    };
    let archive = match archive {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            outcome.problems.push(format!("restore: {e}"));
            return outcome;
        }
        Err(e) => {
            outcome
                .problems
                .push(format!("restore: reading thread failed: {e}"));
            return outcome;
        }
    };
    let wait = Instant::now();
    place.restore_turn().await;
    // Held until the scratch database is dropped (the end of this function).
    let _server_slot = place.scratch_server(scratch.engine).await;
    waited += wait.elapsed();
    // Registered before the CREATE is sent: a Ctrl-C while it runs must not leave the scratch
    // database behind. If creating fails, nothing of ours exists (an existing database of
    // that name is not ours to drop), so the registration is settled without dropping. A
    // name that is taken — the scratch of an interrupted verification of this run, or of one
    // running beside this one — is left alone, and the restore goes to a name of its own
    // ([`alternative_scratch_name`]), once.
    let mut name = name;
    let mut taken: Option<String> = None;
    let (target, guard) = loop {
        let guard = register_scratch(&scratch, &name);
        match server.create(&name).await {
            Ok(t) => break (t, guard),
            Err(e) => {
                guard.disarm();
                let chain = one_line(&e);
                let exists = name_taken(&chain);
                if exists && taken.is_none() {
                    scratch.progress.event(&Event::ScratchNameTaken {
                        name: name.clone(),
                        server: server.describe(),
                    });
                    let other = alternative_scratch_name(&run.id, &db.name);
                    taken = Some(std::mem::replace(&mut name, other));
                    continue;
                }
                let leftover = if exists {
                    " (a database of that name exists already, as did the first name tried)"
                } else {
                    ""
                };
                outcome.problems.push(format!(
                    "cannot create scratch database {name} on {}: {chain}{leftover}",
                    server.describe(),
                ));
                outcome.unavailable = true;
                outcome.hint = e.hint().map(str::to_owned);
                return outcome;
            }
        }
    };
    let mut check = RestoreCheck {
        scratch: name.clone(),
        statements: 0,
        rows_restored: 0,
        tables: 0,
        rows_compared: 0,
        millis: 0,
        dropped: false,
    };
    let read = Meter::default();
    let ticker = Ticker::start(scratch.progress.heartbeat(), {
        let (progress, read) = (scratch.progress.clone(), read.clone());
        let (label, total_bytes) = (
            db.file.clone().unwrap_or_else(|| db.name.clone()),
            db.compressed_bytes,
        );
        move |elapsed| {
            progress.event(&Event::ScratchRestoreProgress {
                label: label.clone(),
                bytes_read: read.get(),
                total_bytes,
                seconds: elapsed.as_secs_f64(),
            });
        }
    });
    // The ticker runs through the fingerprint pass too, which reads the whole scratch
    // database again after the archive is read.
    let _ticker = ticker;
    let jobs = expect.options.jobs;
    let restored = decode::restore_archive(archive, target.as_ref(), expect.options, &read).await;
    // The next archive may restore while this one is fingerprinted and dropped.
    place.restored();
    match restored {
        // The scratch server lacks an object the archive names (a tablespace): a fact about
        // the server, not the archive, so nothing is proven either way — as when the scratch
        // database cannot be created.
        Err(StreamError::Target(e)) if scratch_side(e.kind()).is_some() => {
            outcome.problems.push(format!(
                "restore into scratch database {name} stopped: {}",
                one_line(&e)
            ));
            outcome.unavailable = true;
            outcome.hint = scratch_side(e.kind()).map(str::to_owned);
        }
        Err(StreamError::Target(e)) => outcome.problems.push(format!(
            "restore into scratch database {name} failed: {}",
            one_line(&e)
        )),
        Err(StreamError::Archive(e)) => outcome.problems.push(format!("restore: {e}")),
        Ok(summary) => {
            check.statements = summary.statements;
            check.rows_restored = summary.rows;
            let wait = Instant::now();
            let fingerprint_slot = place.fingerprint().await;
            waited += wait.elapsed();
            let fingerprinted = target.fingerprint_with(jobs).await;
            drop(fingerprint_slot);
            match fingerprinted {
                Ok(actual) => {
                    let (problems, compared) =
                        compare_tables(&db.tables, &actual, &db.engine, expect.algorithm);
                    outcome.problems.extend(problems);
                    check.tables = db.tables.len() as u64;
                    check.rows_compared = compared;
                }
                Err(e) => outcome.problems.push(format!(
                    "cannot fingerprint scratch database {name}: {}",
                    one_line(&e)
                )),
            }
        }
    }
    // Close the target's connections before the database is dropped.
    drop(target);
    match guard.run().await {
        Ok(()) => check.dropped = true,
        Err(error) => scratch.progress.event(&Event::ScratchLeftBehind {
            name: name.clone(),
            server: server.describe(),
            error,
        }),
    }
    let worked = started.elapsed().saturating_sub(waited);
    check.millis = u64::try_from(worked.as_millis()).unwrap_or(u64::MAX);
    outcome.check = Some(check);
    outcome
}

/// Whether a failed `CREATE DATABASE` says the name is taken (PostgreSQL: `database "x"
/// already exists`, SQLSTATE 42P04; MySQL/MariaDB: `Can't create database 'x'; database
/// exists`, error 1007).
fn name_taken(message: &str) -> bool {
    message.contains("already exists") || message.contains("database exists")
}

/// A scratch name for when [`scratch_name`] is taken: the same name for the database
/// followed by `_` and 8 hex digits of the clock and the process id, so that it differs from
/// the taken one and from any other verification's (as [`scratch_name`], at most 63 bytes).
fn alternative_scratch_name(run_id: &str, database: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let token = nanos ^ std::process::id().rotate_left(16);
    let base = scratch_name(run_id, database);
    let keep = base.len().min(SCRATCH_NAME_MAX - 9);
    format!("{}_{token:08x}", &base[..keep])
}

/// For a restore into a scratch database that failed with an error of `kind`: whether the
/// failure is about the scratch server rather than the archive, and then the hint. Such a
/// verification proves nothing either way (exit 3, the previous `verify.json` kept), as when
/// the scratch database cannot be created: a tablespace the server lacks (`NotFound`), a
/// statement its role may not run (`Permission`: an event trigger needs a superuser), a
/// session it refuses (`Connect`, `Auth`: a connection limit). Everything else — a statement
/// that fails on the archive's own content — is a bad archive.
fn scratch_side(kind: ErrorKind) -> Option<&'static str> {
    match kind {
        ErrorKind::NotFound => Some(
            "the scratch server lacks an object the archive names: create it there (a \
             tablespace: or verify without --tablespaces, which leaves tablespace assignments \
             out), then verify again; the archive was not found bad",
        ),
        ErrorKind::Permission => Some(
            "the scratch server's role may not run a statement of the archive: verify with a \
             superuser (or a role holding what the statement needs) as --scratch; the archive \
             was not found bad",
        ),
        ErrorKind::Connect | ErrorKind::Auth => Some(
            "the scratch server refused a session of the restore: lower --jobs or raise the \
             server's connection limit, then verify again; the archive was not found bad",
        ),
        _ => None,
    }
}

/// Register the scratch database `name` with the cleanup scope: dropped within
/// [`DROP_TIMEOUT`], with the endpoint held until then.
fn register_scratch(scratch: &Scratch<'_>, name: &str) -> cleanup::Guard {
    let server = scratch.server.clone();
    let endpoint = scratch.endpoint.clone();
    let name = name.to_owned();
    scratch.cleanup.register(
        cleanup::Task::ScratchDatabase {
            name: name.clone(),
            server: server.describe(),
        },
        move || {
            Box::pin(async move {
                let result =
                    match tokio::time::timeout(DROP_TIMEOUT, server.drop_scratch(&name)).await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(one_line(&e)),
                        Err(_) => Err(format!("no answer within {} s", DROP_TIMEOUT.as_secs())),
                    };
                drop(endpoint);
                result
            })
        },
    )
}

/// The nouns for a manifest engine's tables and rows (Redis: databases and keys).
#[must_use]
pub fn engine_nouns(engine: &str) -> (&'static str, &'static str) {
    EngineKind::for_manifest_engine(engine).map_or(("tables", "rows"), EngineKind::summary_nouns)
}

/// Compare the manifest's tables with the restore's, by name. Returns the problems (one per
/// table: count or content, missing or extra) and the number of manifest rows compared.
///
/// `algorithm` is the manifest's `fingerprint_algorithm`. Fingerprints are compared only when
/// it is the one the adapters compute ([`FINGERPRINT_ALGORITHM`]): a manifest of format 1.0
/// ([`exporter_contract::LEGACY_FINGERPRINT_ALGORITHM`], rows in column position order) has
/// fingerprints that cannot be compared with a restore's. Its row counts and table names are
/// still compared, and one more problem says that the content was not (FORMAT.md,
/// "Fingerprints"): the proof of level `restore` is incomplete until the database is dumped
/// again.
#[must_use]
pub fn compare_tables(
    expected: &[TableSummary],
    actual: &[TableSummary],
    engine: &str,
    algorithm: &str,
) -> (Vec<String>, u64) {
    let fingerprints = algorithm == FINGERPRINT_ALGORITHM;
    let (table, rows) = match engine_nouns(engine) {
        ("databases", _) => ("database", "key"),
        _ => ("table", "row"),
    };
    let actual_by_name: BTreeMap<&str, &TableSummary> =
        actual.iter().map(|t| (t.name.as_str(), t)).collect();
    let expected_names: BTreeSet<&str> = expected.iter().map(|t| t.name.as_str()).collect();
    let mut problems = Vec::new();
    let mut compared = 0;
    for want in expected {
        compared += want.rows;
        match actual_by_name.get(want.name.as_str()) {
            // An empty Redis logical database named by a `/db` URL is in the dump's summary,
            // but a whole-server scratch lists only databases holding keys: nothing to miss.
            None if table == "database"
                && want.rows == 0
                && want.fingerprint == Fingerprint::EMPTY => {}
            None => problems.push(format!(
                "{table} {}: missing in the restore (manifest: {} {rows}s)",
                want.name, want.rows
            )),
            Some(got) if got.rows != want.rows => problems.push(format!(
                "{table} {}: {rows} count differs: expected {}, got {}",
                want.name, want.rows, got.rows
            )),
            Some(got) if fingerprints && got.fingerprint != want.fingerprint => problems.push(format!(
                "{table} {}: content differs: fingerprint expected {}, got {} ({} {rows}s each)",
                want.name, want.fingerprint, got.fingerprint, want.rows
            )),
            Some(_) => {}
        }
    }
    for got in actual {
        if !expected_names.contains(got.name.as_str()) {
            problems.push(format!(
                "{table} {}: in the restore but not in the manifest ({} {rows}s)",
                got.name, got.rows
            ));
        }
    }
    if !fingerprints {
        problems.push(format!(
            "content not compared: the manifest's fingerprints use algorithm {algorithm:?}, this \
             build computes {FINGERPRINT_ALGORITHM:?} ({rows} counts were compared); dump again \
             with this build to prove the content"
        ));
    }
    (problems, compared)
}

/// A unique, lowercase scratch database name: `exporter_verify_<run id>_<database>`, every
/// character outside `[a-z0-9_]` replaced by `_`, at most 63 bytes (PostgreSQL's identifier
/// limit). A name that would be longer is cut and ends in `_` and 8 hex digits of the SHA-256
/// of the full name, so two long database names of one run still get different scratch names.
#[must_use]
pub fn scratch_name(run_id: &str, database: &str) -> String {
    let full: String = format!("exporter_verify_{run_id}_{database}")
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if full.len() <= SCRATCH_NAME_MAX {
        return full;
    }
    let digest = hex::encode(Sha256::digest(full.as_bytes()));
    format!("{}_{}", &full[..SCRATCH_NAME_MAX - 9], &digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mysql_archives_of_every_schema_are_out_of_reach_of_a_scratch_database() {
        let entry = |engine: &str, endpoint: &str| -> DatabaseEntry {
            serde_json::from_value(serde_json::json!({
                "name": "x", "engine": engine, "endpoint": endpoint, "status": "ok",
                "started_at": "2026-12-02T10:00:00Z", "finished_at": "2026-12-02T10:00:01Z",
            }))
            .unwrap()
        };
        assert!(every_schema(&entry("mariadb", "mysql://root@db:3306")));
        assert!(every_schema(&entry("mysql", "mariadb://app:****@db/")));
        assert!(!every_schema(&entry(
            "mariadb",
            "mysql://root@db:3306/shop"
        )));
        assert!(!every_schema(&entry("postgresql", "postgres://u@db:5432")));
        assert!(!every_schema(&entry("redis", "redis://db:6379")));
    }

    fn table(name: &str, rows: u64, row: &[u8]) -> TableSummary {
        let mut fingerprint = Fingerprint::EMPTY;
        for _ in 0..rows {
            fingerprint.add_row(row);
        }
        TableSummary {
            name: name.to_owned(),
            rows,
            fingerprint,
        }
    }

    #[test]
    fn scratch_names_are_lowercase_sanitised_and_bounded() {
        assert_eq!(
            scratch_name("20261129T074800Z", "billing"),
            "exporter_verify_20261129t074800z_billing"
        );
        assert_eq!(
            scratch_name("20261129T074800Z-2", "My.DB-x"),
            "exporter_verify_20261129t074800z_2_my_db_x"
        );
        let a = scratch_name("20261129T074800Z", &"a".repeat(40));
        let b = scratch_name("20261129T074800Z", &format!("{}b", "a".repeat(39)));
        assert_eq!(a.len(), SCRATCH_NAME_MAX);
        assert_eq!(b.len(), SCRATCH_NAME_MAX);
        assert_ne!(a, b, "cut names stay distinct");
    }

    #[test]
    fn table_comparison_names_what_differs() {
        let expected = vec![
            table("public.a", 3, b"x"),
            table("public.b", 2, b"y"),
            table("public.c", 1, b"z"),
            table("public.d", 0, b""),
        ];
        let actual = vec![
            table("public.a", 3, b"x"),
            table("public.b", 2, b"Y"),
            table("public.e", 4, b"w"),
        ];
        let (problems, compared) =
            compare_tables(&expected, &actual, "postgresql", FINGERPRINT_ALGORITHM);
        assert_eq!(compared, 6);
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("table public.b: content differs: fingerprint expected "));
        assert_eq!(
            problems[1],
            "table public.c: missing in the restore (manifest: 1 rows)"
        );
        assert_eq!(
            problems[2],
            "table public.d: missing in the restore (manifest: 0 rows)"
        );
        assert_eq!(
            problems[3],
            "table public.e: in the restore but not in the manifest (4 rows)"
        );
        let (problems, _) = compare_tables(
            &[table("db0", 3, b"k")],
            &[table("db0", 2, b"k")],
            "redis",
            FINGERPRINT_ALGORITHM,
        );
        assert_eq!(
            problems,
            vec!["database db0: key count differs: expected 3, got 2".to_owned()]
        );
        // An empty Redis database (a `/5` dump of nothing) has nothing to miss; an empty
        // PostgreSQL table that did not come back does (checked above: public.d).
        let empty_db5 = TableSummary {
            name: "db5".to_owned(),
            rows: 0,
            fingerprint: Fingerprint::EMPTY,
        };
        let (problems, _) = compare_tables(&[empty_db5], &[], "redis", FINGERPRINT_ALGORITHM);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn fingerprints_of_another_algorithm_are_never_compared() {
        // A format 1.0 manifest: equal counts but different fingerprints are not reported as
        // different content; the comparison itself is reported as incomplete.
        let expected = vec![table("public.a", 2, b"x"), table("public.b", 1, b"y")];
        let actual = vec![table("public.a", 2, b"other"), table("public.b", 3, b"y")];
        let legacy = exporter_contract::LEGACY_FINGERPRINT_ALGORITHM;
        let (problems, compared) = compare_tables(&expected, &actual, "postgresql", legacy);
        assert_eq!(compared, 3);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            problems[0],
            "table public.b: row count differs: expected 1, got 3"
        );
        assert_eq!(
            problems[1],
            "content not compared: the manifest's fingerprints use algorithm \
             \"xxh3-128-wrapping-sum\", this build computes \
             \"xxh3-128-wrapping-sum-by-column-name\" (row counts were compared); dump again \
             with this build to prove the content"
        );
        // The same tables under the current algorithm: the content difference is found.
        let (problems, _) = compare_tables(&expected, &actual, "postgresql", FINGERPRINT_ALGORITHM);
        assert!(
            problems[0].starts_with("table public.a: content differs"),
            "{problems:?}"
        );
    }
}
