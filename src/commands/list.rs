//! `exporter list`: the inventory and what a dump would write. No network access.

use serde::Serialize;

use crate::error::{ExitStatus, Failure};
use crate::settings::Config;

#[derive(Debug, Serialize)]
struct Row {
    name: String,
    engine: &'static str,
    endpoint: String,
    file: String,
}

/// Print the config's databases.
///
/// # Errors
///
/// None today; the signature matches the other commands.
pub fn run(config: &Config, json: bool) -> Result<ExitStatus, Failure> {
    let rows: Vec<Row> = config
        .databases
        .iter()
        .map(|d| Row {
            name: d.name.clone(),
            engine: d.engine.name(),
            endpoint: d.url.redacted(),
            file: format!(
                "{}.{}.zst",
                d.name,
                d.engine
                    .format(crate::engines::EngineOptions::default())
                    .extension()
            ),
        })
        .collect();
    if json {
        super::print_data(&serde_json::to_string_pretty(&rows).expect("rows serialize"));
    } else {
        let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
        let w2 = rows.iter().map(|r| r.file.len()).max().unwrap_or(4).max(4);
        super::print_data(&format!(
            "{:<w$}  {:<10}  {:<w2$}  ENDPOINT",
            "NAME", "ENGINE", "FILE",
        ));
        for r in &rows {
            super::print_data(&format!(
                "{:<w$}  {:<10}  {:<w2$}  {}",
                r.name, r.engine, r.file, r.endpoint,
            ));
        }
    }
    Ok(ExitStatus::Success)
}
