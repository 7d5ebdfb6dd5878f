//! `exporter list`: the inventory and what a dump would write. No network access.

use serde::Serialize;

use crate::engines::ConnectionDefaults;
use crate::error::{ExitStatus, Failure};
use crate::settings::Config;

#[derive(Debug, Serialize)]
struct Row {
    name: String,
    engine: &'static str,
    endpoint: String,
    file: String,
    /// The TLS mode the connection will ask for, in the engine's words (`prefer`,
    /// `verify-full`, `PREFERRED`, `rediss`, `none`).
    tls: String,
}

/// Print the config's databases.
///
/// # Errors
///
/// None today; the signature matches the other commands.
pub fn run(
    config: &Config,
    connections: &ConnectionDefaults,
    json: bool,
) -> Result<ExitStatus, Failure> {
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
            tls: d.engine.tls_mode(&d.engine.endpoint(&d.url, connections)),
        })
        .collect();
    if json {
        super::print_data(&serde_json::to_string_pretty(&rows).expect("rows serialize"));
    } else {
        let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
        let w2 = rows.iter().map(|r| r.file.len()).max().unwrap_or(4).max(4);
        let w3 = rows.iter().map(|r| r.tls.len()).max().unwrap_or(3).max(3);
        super::print_data(&format!(
            "{:<w$}  {:<10}  {:<w2$}  {:<w3$}  ENDPOINT",
            "NAME", "ENGINE", "FILE", "TLS",
        ));
        for r in &rows {
            super::print_data(&format!(
                "{:<w$}  {:<10}  {:<w2$}  {:<w3$}  {}",
                r.name, r.engine, r.file, r.tls, r.endpoint,
            ));
        }
    }
    Ok(ExitStatus::Success)
}
