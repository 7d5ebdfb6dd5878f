//! `exporter list`: the inventory and what a dump would write. No network access.

use serde::Serialize;

use crate::engines::EngineOptions;
use crate::output::Ui;
use crate::settings::ListPlan;

#[derive(Debug, Serialize)]
struct Row {
    name: String,
    engine: &'static str,
    endpoint: String,
    file: String,
    /// The TLS mode the connection will ask for, in the engine's words (`prefer`,
    /// `verify-full`, `PREFERRED`, `rediss`, `none`), with the environment's defaults applied.
    tls: String,
}

/// Print the config's databases: a table, or with `json` a JSON array.
pub fn run(plan: &ListPlan, json: bool, ui: Ui) {
    let rows: Vec<Row> = plan
        .databases
        .iter()
        .map(|d| Row {
            name: d.name.clone(),
            engine: d.engine.name(),
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
        ui.data(serde_json::to_string_pretty(&rows).expect("rows serialize"));
        return;
    }
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let w2 = rows.iter().map(|r| r.file.len()).max().unwrap_or(4).max(4);
    let w3 = rows.iter().map(|r| r.tls.len()).max().unwrap_or(3).max(3);
    ui.data(format!(
        "{:<w$}  {:<10}  {:<w2$}  {:<w3$}  ENDPOINT",
        "NAME", "ENGINE", "FILE", "TLS",
    ));
    for r in &rows {
        ui.data(format!(
            "{:<w$}  {:<10}  {:<w2$}  {:<w3$}  {}",
            r.name, r.engine, r.file, r.tls, r.endpoint,
        ));
    }
}
