//! `exporter tunnel HANDLE`: `aptible db:tunnel` without the platform's CLI, for a database of
//! any type (a MongoDB user runs `mongodump` against it). Prints the local URL (the password
//! only with `--show-password`) and holds the tunnel until Ctrl-C, which closes it through the
//! cleanup scope.

use crate::cleanup::Cleanup;
use crate::output::Ui;
use crate::platform::session;
use crate::settings::TunnelPlan;

/// The tunnel ended on its own while held.
#[derive(Debug, thiserror::Error)]
#[error("the tunnel to {database} ended: {end}")]
pub struct TunnelEnded {
    /// The database's handle.
    pub database: String,
    /// How it ended (ssh's stderr redacted).
    pub end: exporter_aptible::TunnelEnd,
}

/// Open the tunnel, print how to connect, hold it until Ctrl-C (exit 0) or until it ends on
/// its own (exit 3).
///
/// # Errors
///
/// The platform's errors; [`TunnelEnded`].
pub async fn run(plan: &TunnelPlan, ui: Ui, cleanup: &Cleanup) -> anyhow::Result<()> {
    let held = session::open_tunnel(plan, cleanup).await?;
    let tunnel = &held.tunnel;
    let url = tunnel.local_url();
    let shown = |text: Option<String>| {
        if plan.show_password {
            text.unwrap_or_default()
        } else {
            text.map(|_| "****".to_owned()).unwrap_or_default()
        }
    };
    // The CLI's connection lines (aptible-api.md §6.12).
    ui.data(if plan.show_password {
        url.expose().to_string()
    } else {
        url.redacted()
    });
    ui.data(format!("Host: {} (127.0.0.1)", url.host()));
    ui.data(format!("Port: {}", tunnel.local_port()));
    ui.data(format!("Username: {}", url.username().unwrap_or_default()));
    ui.data(format!("Password: {}", shown(url.password())));
    ui.data(format!("Database: {}", url.database().unwrap_or_default()));
    ui.info(format!(
        "tunnel to {} ({}, credential {}) is up; Ctrl-C closes it{}",
        held.database.handle,
        held.database.kind,
        tunnel.credential_type(),
        if plan.show_password {
            ""
        } else {
            " (--show-password prints the password)"
        }
    ));
    let end = tunnel.watch().ended().await;
    let database = held.database.handle.clone();
    let _ = held.stop().await;
    Err(TunnelEnded { database, end }.into())
}
