//! `exporter dump`: resolve the storage, run the dump path ([`pipeline::dump`]), render its
//! progress and the run it committed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use exporter_contract::PayloadFormat;
use serde::Serialize;

use crate::archive::{DatabaseEntry, RunStatus};
use crate::check::{self, CheckContext, CheckError};
use crate::cleanup::Cleanup;
use crate::endpoint::{EndpointProvider, UrlEndpoints};
use crate::error;
use crate::output::{TaskBars, Ui, counted, human_bytes, human_count, human_duration, tls_note};
use crate::pipeline::{self, DumpContext};
use crate::platform::{self, Action, TunnelEndpoints, inventory};
use crate::progress::{Event, Progress};
use crate::settings::{DatabaseTarget, Destination, DumpPlan};
use crate::storage::{self, Storage};
use crate::verify::VerifyReport;
use crate::verify::alongside::{self, AlongsideContext};

mod prove;

/// The `--json` summary printed on stdout.
#[derive(Debug, Serialize)]
struct JsonSummary<'a> {
    run_id: &'a str,
    run_dir: &'a str,
    status: RunStatus,
    databases: &'a [DatabaseEntry],
    /// `--verify`: the run's `verify.json` record, when one was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<&'a VerifyReport>,
}

/// How a dump reports: `--json`, the terminal, and the program's name for the command it
/// suggests at the end.
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    /// `--json`: a JSON summary on stdout instead of the run directory.
    pub json: bool,
    /// The terminal.
    pub ui: Ui,
    /// How to name this program in a suggested command (`exporter`, or the path it was
    /// started by).
    pub program: &'a str,
}

/// Dump the plan's databases into a new run; print the run directory (or with `json` a JSON
/// summary) on stdout.
///
/// With `--verify` the run is verified as it is written ([`alongside`]): the scratch servers
/// are checked before the first dump, and the verification's outcome decides the exit once
/// the run is committed.
///
/// # Errors
///
/// The storage's or the dump path's error; a run in which some databases failed is committed
/// as partial, printed, then reported as [`pipeline::DumpError::Partial`]. With `--verify`:
/// a scratch server missing or refused before anything is dumped, and a run that failed its
/// verification ([`crate::verify::VerifyError`], as `exporter verify` reports it).
pub async fn run(
    plan: &DumpPlan,
    output: Output<'_>,
    cleanup: &Cleanup,
    endpoints: &dyn EndpointProvider,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<()> {
    let Output { json, ui, program } = output;
    let storage = storage::open(&plan.destination, cleanup).await?;
    if plan.check {
        check_first(plan, &storage, endpoints, ui).await?;
    }
    let cx = DumpContext {
        storage,
        endpoints,
        cleanup,
        progress,
        committed: None,
    };
    let (report, verification) = match &plan.verify {
        None => {
            let report = pipeline::dump(plan, &cx).await?;
            // The bars go before the summary (a platform dump's tunnels hold the progress too:
            // its overall bar went with the last database).
            drop(cx);
            (report, None)
        }
        Some(verify) => {
            let along = AlongsideContext {
                endpoints: Arc::new(UrlEndpoints::new(plan.connections.clone())),
                cleanup: cleanup.clone(),
                progress: prove::progress(ui, verify.level),
            };
            alongside::prepare(
                verify,
                &plan.databases,
                plan.engine_options,
                cx.storage.clone(),
                &along,
            )
            .await?;
            let proven = alongside::dump(plan, verify, cx, along).await?;
            (proven.dump, Some(proven.verification))
        }
    };
    if json {
        let summary = JsonSummary {
            run_id: &report.run_id,
            run_dir: &report.location,
            status: report.manifest.status,
            databases: &report.manifest.databases,
            verification: verification
                .as_ref()
                .and_then(|v| v.as_ref().ok())
                .map(|v| &v.report),
        };
        ui.data(serde_json::to_string_pretty(&summary).expect("summary serializes"));
    } else {
        ui.data(&report.location);
    }
    ui.emit_json("run_finished", &RunFinished::of(&report));
    report.check()?;
    if let Some(verification) = verification {
        let verification = verification?;
        verification.check()?;
        ui.info(prove::summary_line(
            &verification,
            report.manifest.databases.len(),
        ));
        return Ok(());
    }
    // A command that works as printed: a local run by its path (whatever --to or the config
    // said); an S3 run by id under its destination (endpoint and other [storage] keys still
    // come from the config or the environment).
    let check = match &plan.destination {
        Destination::Local(_) => format!("{program} verify {}", report.location),
        Destination::S3(_) => format!(
            "{program} verify {} --to {}",
            report.run_id, plan.destination
        ),
    };
    ui.info(format!(
        "run {} complete: {} archive(s); check it with `{check}`",
        report.run_id,
        report.manifest.databases.len()
    ));
    Ok(())
}

/// The `run_finished` event of a dump (`--log-format json`; FORMAT.md, "Events on stderr").
#[derive(Debug, Serialize)]
struct RunFinished<'a> {
    command: &'static str,
    run_id: &'a str,
    location: &'a str,
    status: RunStatus,
    /// Databases in the manifest (failed and skipped ones included).
    databases: usize,
    failed: Vec<&'a str>,
    uncompressed_bytes: u64,
    compressed_bytes: u64,
    seconds: f64,
}

impl<'a> RunFinished<'a> {
    fn of(report: &'a pipeline::DumpReport) -> Self {
        let m = &report.manifest;
        Self {
            command: "dump",
            run_id: &report.run_id,
            location: &report.location,
            status: m.status,
            databases: m.databases.len(),
            failed: report.failed().map(|e| e.name.as_str()).collect(),
            uncompressed_bytes: m
                .databases
                .iter()
                .filter_map(|e| e.uncompressed_bytes)
                .sum(),
            compressed_bytes: m.databases.iter().filter_map(|e| e.compressed_bytes).sum(),
            seconds: (m.finished_at - m.started_at).as_seconds_f64(),
        }
    }
}

/// The check before the dump ([`check::check`], unless `--no-check`): when it says no,
/// nothing is created — no run directory, no S3 object.
async fn check_first(
    plan: &DumpPlan,
    storage: &Arc<dyn Storage>,
    endpoints: &dyn EndpointProvider,
    ui: Ui,
) -> anyhow::Result<()> {
    // A single database's check starts its dump for real and keeps it, so that the catalog
    // is read once. Not for `--resume`, whose dump may skip the database.
    let keep_start = !plan.resume;
    let cx = CheckContext {
        storage: storage.clone(),
        endpoints,
        keep_start,
    };
    let report = check::check(plan, &cx).await?;
    if report.passed {
        ui.info(format!(
            "check: {} database(s) ready, destination writable{}",
            plan.databases.len(),
            report.total_bytes.map_or_else(String::new, |b| format!(
                "; about {} to read, {} at an assumed {}/s",
                human_bytes(b),
                human_duration(check::estimate_seconds(b)),
                human_bytes(report.assumed_bytes_per_second)
            ))
        ));
        return Ok(());
    }
    let mut lines: Vec<String> = report
        .failing()
        .flat_map(|d| {
            d.failure_lines()
                .into_iter()
                .map(move |l| format!("  {}: {l}", d.name))
        })
        .collect();
    lines.extend(report.destination.error.iter().map(|e| format!("  {e}")));
    // One line is the error's summary already.
    if lines.len() > 1 {
        for line in lines {
            ui.problem(line);
        }
    }
    Err(CheckError::BeforeDump {
        summary: report.summary(),
        hint: error::check_hint(&report),
    }
    .into())
}

/// How a dump of `plan` reports its events: JSON events, or lines (and on a terminal bars).
pub fn progress(ui: Ui, plan: &DumpPlan) -> Arc<dyn Progress> {
    Arc::new(DumpProgress {
        ui,
        several: plan.databases.len() > 1,
        databases: plan.databases.len() as u64,
        items: plan
            .databases
            .iter()
            .map(|db| (db.name().to_owned(), db.engine().summary_nouns().1))
            .collect(),
        bars: TaskBars::new(ui).map(|b| b.aligned(plan.databases.iter().map(DatabaseTarget::name))),
        totals: Mutex::new(BTreeMap::new()),
    })
}

/// `dump --all` of a platform environment: the inventory step (refusing before any tunnel
/// while a database is not exportable, unless `--skip-unsupported`), then the dump through
/// tunnels ([`TunnelEndpoints`]).
///
/// # Errors
///
/// [`crate::platform::InventoryError`]; as [`run`].
pub async fn run_platform(
    mut plan: DumpPlan,
    output: Output<'_>,
    cleanup: &Cleanup,
) -> anyhow::Result<()> {
    let ui = output.ui;
    let Some(options) = plan.platform.clone() else {
        return Err(anyhow::anyhow!("not a platform dump"));
    };
    let client = platform::client(&options.settings)?;
    let environment = inventory::read(&client, &options).await?;
    let (targets, skipped) = environment.targets(options.skip_unsupported)?;
    for d in &environment.databases {
        match &d.action {
            Action::Replica { .. } | Action::Restored { reused: false } => {
                ui.info(format!("  {}: {}", d.handle, d.plan));
            }
            Action::Unsupported => {
                ui.problem(format!(
                    "  {}: skipped: {} database",
                    d.handle, d.database_type
                ));
            }
            _ => {}
        }
    }
    ui.info(format!(
        "environment {}: {} database(s) to dump{}{}",
        environment.environment,
        targets.len(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(", {} skipped", skipped.len())
        },
        if environment.has_ca {
            ", TLS verified against the environment's CA"
        } else {
            ""
        }
    ));
    plan.databases = targets;
    plan.skipped = skipped;
    let progress = progress(ui, &plan);
    let endpoints = TunnelEndpoints::new(
        client,
        plan.connections.clone(),
        options.credential_type.clone(),
        options.keep_restored,
        cleanup.clone(),
        progress.clone(),
    );
    run(&plan, output, cleanup, &endpoints, progress).await
}

/// Renders a dump's events as progress lines on stderr (with bars on a terminal), or as JSON
/// events.
struct DumpProgress {
    ui: Ui,
    /// Several databases: each failure is shown as it happens (with one, the final error says
    /// it all).
    several: bool,
    /// Databases to dump (the overall bar's length).
    databases: u64,
    /// What each database's engine reads (`rows`, Redis `keys`), by name.
    items: BTreeMap<String, &'static str>,
    /// The bars, on a terminal.
    bars: Option<TaskBars>,
    /// Payload bytes read and archive bytes written so far, per database (the overall bar's
    /// totals).
    totals: Mutex<BTreeMap<String, (u64, u64)>>,
}

impl DumpProgress {
    /// `, 120,000 rows, reading public.orders`: the rows (keys) read so far and the tables being read,
    /// for a database's bar and its plain lines; empty while the engine reported neither (an
    /// RDB snapshot reports none).
    fn rows_and_tables(&self, name: &str, rows: u64, tables: &[String]) -> String {
        if rows == 0 && tables.is_empty() {
            return String::new();
        }
        let noun = self.items.get(name).copied().unwrap_or("rows");
        let mut text = format!(", {} {noun}", human_count(rows));
        if !tables.is_empty() {
            text.push_str(", reading ");
            text.push_str(&tables.join(", "));
        }
        text
    }

    /// Move the bars for `event`.
    fn bars(&self, bars: &TaskBars, event: &Event) {
        let total = |name: &str, read: u64, written: u64| {
            let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
            totals.insert(name.to_owned(), (read, written));
            let (read, written) = totals
                .values()
                .fold((0, 0), |(r, w), (r1, w1)| (r + r1, w + w1));
            bars.overall_message(format!(
                "databases, {} read, {} written",
                human_bytes(read),
                human_bytes(written)
            ));
        };
        match event {
            Event::DumpStarted { .. } => bars.overall("dump", self.databases, "databases"),
            Event::DatabaseStarted { name, .. } => bars.start(name, name, None, "connecting"),
            Event::DatabaseProgress {
                name,
                bytes_read,
                bytes_written,
                expected_bytes,
                rows,
                current_tables,
                ..
            } => {
                let estimate = match expected_bytes {
                    Some(e) if bytes_read > e => " (past the size estimate)",
                    _ => "",
                };
                let doing = if *bytes_read == 0 {
                    "waiting for the first bytes".to_owned()
                } else {
                    // The estimate's note last: a narrow terminal cuts it before the rows and
                    // the table.
                    format!(
                        "-> {} zst{}{estimate}",
                        human_bytes(*bytes_written),
                        self.rows_and_tables(name, *rows, current_tables)
                    )
                };
                bars.update(name, *bytes_read, *expected_bytes, doing);
                total(name, *bytes_read, *bytes_written);
            }
            Event::DatabaseDumped {
                name,
                uncompressed_bytes,
                compressed_bytes,
                ..
            } => {
                bars.finish(name);
                total(name, *uncompressed_bytes, *compressed_bytes);
                bars.step();
            }
            Event::DatabaseFailed { name, .. } => {
                bars.finish(name);
                bars.step();
            }
            _ => {}
        }
    }
}

impl Progress for DumpProgress {
    fn heartbeat(&self) -> Option<std::time::Duration> {
        self.ui.heartbeat()
    }

    fn event(&self, event: &Event) {
        let ui = self.ui;
        if ui.event_json(event) {
            return;
        }
        if let Some(bars) = &self.bars {
            self.bars(bars, event);
        }
        match event {
            // The bar shows it.
            Event::DatabaseProgress { .. } if self.bars.is_some() => {}
            Event::DatabaseProgress {
                name,
                bytes_read,
                rows,
                current_tables,
                seconds,
                ..
            } => ui.info(format!(
                "  {name}: still dumping: {} read in {}{}",
                human_bytes(*bytes_read),
                human_duration(*seconds),
                self.rows_and_tables(name, *rows, current_tables)
            )),
            Event::DumpStarted {
                run_id,
                location,
                databases,
            } => ui.info(format!(
                "run {run_id}: dumping {databases} database(s) into {location}"
            )),
            Event::DatabaseStarted { name, source } => {
                ui.info(format!("  {name}: dumping {source}"));
            }
            Event::DatabaseDumped {
                name,
                engine,
                file,
                format,
                tables,
                rows,
                uncompressed_bytes,
                compressed_bytes,
                seconds,
                tls,
                ..
            } => {
                let ratio = if *compressed_bytes > 0 {
                    *uncompressed_bytes as f64 / *compressed_bytes as f64
                } else {
                    0.0
                };
                let (parts, items) = engine.summary_nouns();
                // An RDB file has no per-database summary; "0 keys" would read like an empty
                // dump.
                let counts = if *tables == 0 && *format == PayloadFormat::Rdb {
                    "point-in-time snapshot".to_owned()
                } else {
                    format!("{}, {}", counted(*tables, parts), counted(*rows, items))
                };
                ui.info(format!(
                    "  {name}: ok {file}: {counts}, {} -> {} ({ratio:.1}x) in {seconds:.1}s{}",
                    human_bytes(*uncompressed_bytes),
                    human_bytes(*compressed_bytes),
                    tls_note(tls.as_ref()),
                ));
            }
            Event::DatabaseNote { name, note } => {
                ui.info(format!("  {name}: {note}"));
            }
            Event::DatabaseWarning {
                name,
                warning: note,
            }
            | Event::ConnectionNote { name, note } => {
                ui.problem(format!("  {name}: warning: {note}"));
            }
            Event::NothingToResume {
                destination,
                source,
            } => ui.problem(format!(
                "--resume: no unfinished run of this inventory ({source}) in {destination}; starting a new run"
            )),
            Event::ResumeStarted {
                location,
                started_at,
                recorded,
                ..
            } => ui.info(format!(
                "resuming the unfinished run {location} (started {}): checking the {recorded} archive(s) it finished",
                started_at.format("%Y-%m-%d %H:%M:%S UTC")
            )),
            Event::ArchiveKept {
                name,
                file,
                compressed_bytes,
                ..
            } => ui.info(format!(
                "  {name}: kept {file} ({}, length and SHA-256 checked)",
                human_bytes(*compressed_bytes)
            )),
            Event::ResumeWarning { name, warning } => {
                ui.problem(format!("  {name}: warning: {warning}"));
            }
            Event::ResumeNote { name, note } => match name {
                Some(name) => ui.info(format!("  {name}: {note}")),
                None => ui.info(format!("  {note}")),
            },
            Event::DatabaseFailed { name, failure } if self.several => {
                ui.info(format!("  {name}: FAILED: {failure}"));
                if let Some(hint) = error::database_hint(failure) {
                    ui.info(format!("  {name}: hint: {hint}"));
                }
            }
            _ => {}
        }
    }
}
