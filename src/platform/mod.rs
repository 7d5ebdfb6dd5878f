//! The platform services: a client of the hosting platform an inventory comes from (design.md
//! section 7), built from [`PlatformSettings`]; the inventory step ([`inventory`]: which
//! databases the environment has and what `dump --all` does with each); the tunnel endpoint
//! provider ([`TunnelEndpoints`]); and the session commands' helpers ([`session`]: login and a
//! tunnel held for the user). This module and `engines` are the only ones that name a
//! platform adapter.
//!
//! Only Aptible exists today ([`exporter_aptible`]).

pub mod inventory;
pub mod session;
pub mod tunnels;

use exporter_aptible::{Client, ClientOptions};

use crate::settings::{PlatformKind, PlatformSettings};

pub use inventory::{Action, EnvironmentPlan, InventoryError, PlannedDatabase};
pub use tunnels::TunnelEndpoints;

/// A client of the platform named by `settings`: API roots from `APTIBLE_API_ROOT_URL` /
/// `APTIBLE_AUTH_ROOT_URL` (public defaults otherwise), the token from `APTIBLE_ACCESS_TOKEN`
/// or the official CLI's token file (aptible-api.md §1.4). No request is sent yet.
///
/// # Errors
///
/// [`exporter_aptible::Error`]: [`exporter_aptible::ErrorKind::Auth`] without a token (hint:
/// run exporter login), [`exporter_aptible::ErrorKind::Config`] for a root that is not an
/// http(s) URL, [`exporter_aptible::ErrorKind::Io`] for an unreadable token file.
pub fn client(settings: &PlatformSettings) -> Result<Client, exporter_aptible::Error> {
    match settings.kind {
        PlatformKind::Aptible => Client::from_lookup(&settings.lookup(), ClientOptions::default()),
    }
}
