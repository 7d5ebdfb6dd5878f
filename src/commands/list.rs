//! `exporter list`: the inventory and what a dump would write: the config's databases (no
//! network access), or a platform environment's (read through its API: every database with
//! its type, status, version, disk, backups, replicas, and what `dump --all` does with it);
//! then the destination's unfinished runs (no manifest), with the databases each finished,
//! which `dump --resume` continues.

use std::fmt::Write as _;

use serde::Serialize;

use crate::blocking;
use crate::cleanup::Cleanup;
use crate::engines::EngineOptions;
use crate::output::{Ui, human_bytes};
use crate::platform::{self, EnvironmentPlan, inventory};
use crate::run::unfinished::{self, UnfinishedSummary};
use crate::settings::{Destination, ListPlan, PlatformInventory};
use crate::storage;

/// Version of the `list --json` object (FORMAT.md, "Reports on stdout"): bumped when a
/// field changes meaning or goes away; new fields do not bump it.
pub const LIST_JSON_VERSION: u32 = 1;

/// `list --json` of a config's databases (FORMAT.md).
#[derive(Debug, Serialize)]
struct ConfigListing<'a> {
    /// [`LIST_JSON_VERSION`].
    version: u32,
    /// `config`: the databases of the config file.
    source: &'static str,
    /// One per `[[databases]]`, in config order.
    databases: &'a [Row],
    /// The destination's unfinished runs, newest first.
    unfinished_runs: &'a [UnfinishedSummary],
}

/// `list --json` of a platform environment (FORMAT.md): the inventory step's plan, with the
/// version and source of every listing.
#[derive(Debug, Serialize)]
struct PlatformListing<'a> {
    /// [`LIST_JSON_VERSION`].
    version: u32,
    /// The platform (`aptible`).
    source: &'a str,
    /// The plan: `platform`, `environment`, `environment_id`, `has_ca`, `databases`.
    #[serde(flatten)]
    plan: &'a EnvironmentPlan,
    /// The destination's unfinished runs, newest first.
    unfinished_runs: &'a [UnfinishedSummary],
}

#[derive(Debug, Serialize)]
struct Row {
    name: String,
    /// `postgresql`, `mysql/mariadb` or `redis` ([`crate::engines::EngineKind::inventory_name`]).
    engine: &'static str,
    endpoint: String,
    file: String,
    /// The TLS mode the connection will ask for, in the engine's words (`prefer`,
    /// `verify-full`, `PREFERRED`, `rediss`, `none`), with the environment's defaults applied.
    tls: String,
}

/// Print the platform environment's databases, or the config's: a table, or with `json`
/// JSON; then the destination's unfinished runs.
///
/// # Errors
///
/// The platform's errors (a missing or expired token among them). A destination that cannot
/// be read is a warning, not an error: the inventory is what `list` is for.
pub async fn run(plan: &ListPlan, json: bool, ui: Ui, cleanup: &Cleanup) -> anyhow::Result<()> {
    if let Some(p) = &plan.platform {
        return run_platform(p, plan, json, ui, cleanup).await;
    }
    let runs = unfinished_runs(&plan.destination, ui, cleanup).await;
    let names: Vec<String> = plan.databases.iter().map(|d| d.name.clone()).collect();
    run_config(plan, &runs, json, ui);
    if !json {
        if names.is_empty() && runs.is_empty() {
            ui.data(nothing_to_list(plan));
        }
        render_unfinished(
            &runs,
            (&names, "config", None),
            &plan.destination,
            !names.is_empty(),
            ui,
        );
    }
    Ok(())
}

/// What `list` says when it has neither databases nor unfinished runs to show: why there is
/// no inventory, and that complete runs are not what `list` shows.
fn nothing_to_list(plan: &ListPlan) -> String {
    let inventory = match &plan.config {
        Some(name) => format!("{name} lists no databases"),
        None => "no config file".to_owned(),
    };
    format!(
        "nothing to list: {inventory}, and {} holds no unfinished runs (`list` shows the \
         config's databases and the destination's unfinished runs; complete runs are read \
         by `verify` and `restore`)",
        plan.destination
    )
}

async fn run_platform(
    options: &PlatformInventory,
    list: &ListPlan,
    json: bool,
    ui: Ui,
    cleanup: &Cleanup,
) -> anyhow::Result<()> {
    let client = platform::client(&options.settings)?;
    let plan = inventory::read(&client, options).await?;
    let runs = unfinished_runs(&list.destination, ui, cleanup).await;
    if json {
        let listing = PlatformListing {
            version: LIST_JSON_VERSION,
            source: &plan.platform,
            plan: &plan,
            unfinished_runs: &runs,
        };
        ui.data(serde_json::to_string_pretty(&listing).expect("the plan serializes"));
    } else {
        render(&plan, ui);
        let names: Vec<String> = plan.databases.iter().map(|d| d.name.clone()).collect();
        render_unfinished(
            &runs,
            (&names, &plan.platform, Some(plan.environment.as_str())),
            &list.destination,
            true,
            ui,
        );
    }
    Ok(())
}

/// The destination's unfinished runs, newest first; a destination that cannot be read is a
/// warning and no runs.
async fn unfinished_runs(
    destination: &Destination,
    ui: Ui,
    cleanup: &Cleanup,
) -> Vec<UnfinishedSummary> {
    // A local destination that does not exist yet holds nothing (the first dump creates it).
    if let Destination::Local(dir) = destination
        && !dir.is_dir()
    {
        return Vec::new();
    }
    let warn = |e: &dyn std::fmt::Display| {
        ui.problem(format!(
            "warning: cannot read the unfinished runs in {destination}: {e}"
        ));
    };
    let storage = match storage::open(destination, cleanup).await {
        Ok(s) => s,
        Err(e) => {
            warn(&e);
            return Vec::new();
        }
    };
    let read = blocking::run("reading the unfinished runs", move || {
        let describe = storage.describe();
        unfinished::list(storage.as_ref())
            .map(|runs| runs.iter().map(|r| r.summary(&describe)).collect())
    })
    .await;
    match read {
        Ok(Ok(runs)) => runs,
        Ok(Err(e)) => {
            warn(&e);
            Vec::new()
        }
        Err(e) => {
            warn(&e);
            Vec::new()
        }
    }
}

/// Each unfinished run: what it finished, what of the inventory it has not (when it is a run
/// of this inventory: its source and environment), and how to go on. `after_table`: a table
/// was printed above, so the first run is set off from it by an empty line too.
///
/// The hint names `destination` (`--to`): the command it suggests must find the run where
/// `list` found it, also when the config's destination is another.
fn render_unfinished(
    runs: &[UnfinishedSummary],
    (inventory, source, environment): (&[String], &str, Option<&str>),
    destination: &Destination,
    after_table: bool,
    ui: Ui,
) {
    for (i, run) in runs.iter().enumerate() {
        if after_table || i > 0 {
            ui.data("");
        }
        let started = run.started_at.map_or_else(
            || "no run record".to_owned(),
            |t| format!("started {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
        );
        ui.data(format!(
            "unfinished run {} ({started}; no manifest.json)",
            run.location
        ));
        if run.done.is_empty() {
            ui.data("  done: nothing");
        } else {
            let done: Vec<String> = run
                .done
                .iter()
                .map(|d| {
                    format!(
                        "{} ({}, {})",
                        d.name,
                        d.file,
                        human_bytes(d.compressed_bytes)
                    )
                })
                .collect();
            ui.data(format!("  done: {}", done.join(", ")));
        }
        let ours =
            run.source.as_deref() == Some(source) && run.environment.as_deref() == environment;
        let pending: Vec<&str> = inventory
            .iter()
            .filter(|n| !run.done.iter().any(|d| &d.name == *n))
            .map(String::as_str)
            .collect();
        if ours && !pending.is_empty() {
            ui.data(format!("  not yet: {}", pending.join(", ")));
        }
        if run.resumable {
            let to = shell_word(&destination.to_string());
            let how = match run.source.as_deref() {
                Some("urls") => {
                    format!("the same `exporter dump NAME=URL… --to {to}` with --resume")
                }
                _ => format!("`exporter dump --all --resume --to {to}`"),
            };
            ui.data(format!(
                "  {how} keeps what is done (after checking it) and dumps the rest"
            ));
        } else {
            ui.data("  it has no run record: `dump --resume` cannot continue it");
        }
    }
}

/// `word` as one shell word: as it is when it holds only characters no shell treats
/// specially, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:@%+=,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The platform listing as a table, one row per database, then what `dump --all` does.
fn render(plan: &EnvironmentPlan, ui: Ui) {
    let rows: Vec<[String; 8]> = plan
        .databases
        .iter()
        .map(|d| {
            [
                if d.replica_of.is_some() {
                    format!("{} (replica)", d.handle)
                } else {
                    d.handle.clone()
                },
                d.database_type.clone(),
                d.status.clone().unwrap_or_else(|| "-".into()),
                d.version.clone().unwrap_or_else(|| "-".into()),
                d.disk_size_gb
                    .map_or_else(|| "-".into(), |g| format!("{g} GB")),
                d.backups.to_string(),
                d.newest_backup.clone().unwrap_or_else(|| "-".into()),
                d.plan.clone(),
            ]
        })
        .collect();
    let head = [
        "HANDLE",
        "TYPE",
        "STATUS",
        "VERSION",
        "DISK",
        "BACKUPS",
        "NEWEST BACKUP",
        "DUMP --ALL",
    ];
    let widths: Vec<usize> = (0..7)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 8]| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i < 7 {
                let _ = write!(out, "{c:<w$}  ", w = widths[i]);
            } else {
                out.push_str(c);
            }
        }
        out
    };
    ui.info(format!(
        "environment {} (#{}){}",
        plan.environment,
        plan.environment_id,
        if plan.has_ca {
            ": tunnel connections verify TLS against its CA"
        } else {
            ""
        }
    ));
    ui.data(line(head));
    for r in &rows {
        ui.data(line([
            &r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6], &r[7],
        ]));
    }
}

/// The config's databases.
fn run_config(plan: &ListPlan, runs: &[UnfinishedSummary], json: bool, ui: Ui) {
    let rows: Vec<Row> = plan
        .databases
        .iter()
        .map(|d| Row {
            name: d.name.clone(),
            engine: d.engine.inventory_name(),
            endpoint: d.url.redacted(),
            file: format!(
                "{}.{}.zst",
                d.name,
                d.engine.format(EngineOptions::default()).extension()
            ),
            tls: d
                .engine
                .tls_mode(&d.engine.endpoint(&d.url, &plan.connections)),
        })
        .collect();
    if json {
        let listing = ConfigListing {
            version: LIST_JSON_VERSION,
            source: "config",
            databases: &rows,
            unfinished_runs: runs,
        };
        ui.data(serde_json::to_string_pretty(&listing).expect("rows serialize"));
        return;
    }
    // No inventory (`list --to DEST` without a config): no table, only the runs.
    if rows.is_empty() {
        return;
    }
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let we = rows
        .iter()
        .map(|r| r.engine.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let w2 = rows.iter().map(|r| r.file.len()).max().unwrap_or(4).max(4);
    let w3 = rows.iter().map(|r| r.tls.len()).max().unwrap_or(3).max(3);
    ui.data(format!(
        "{:<w$}  {:<we$}  {:<w2$}  {:<w3$}  ENDPOINT",
        "NAME", "ENGINE", "FILE", "TLS",
    ));
    for r in &rows {
        ui.data(format!(
            "{:<w$}  {:<we$}  {:<w2$}  {:<w3$}  {}",
            r.name, r.engine, r.file, r.tls, r.endpoint,
        ));
    }
}
