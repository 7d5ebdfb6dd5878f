//! The platform service: a client of the hosting platform an inventory comes from (design.md
//! section 7), built from [`PlatformSettings`]. It is the one module besides `engines` that
//! names a platform adapter; the inventory, the tunnel endpoint provider and the teardown use
//! the client it returns.
//!
//! Only Aptible exists today ([`exporter_aptible`]).

use exporter_aptible::{Client, ClientOptions};

use crate::settings::{PlatformKind, PlatformSettings};

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
