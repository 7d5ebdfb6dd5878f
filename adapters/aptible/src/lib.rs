//! The Aptible platform for `exporter`: a typed client of the Deploy and Auth APIs, backup
//! restores into new databases, and SSH tunnels opened exactly as `aptible db:tunnel` opens
//! them. Everything follows the project's platform spec, `aptible-api.md` (cited as "spec §n");
//! each place that relies on a point the spec calls UNSURE or INFERRED says so in a comment.
//!
//! This crate is only a client: it never prints, never reads the process environment (callers
//! pass a lookup function), and depends on no other crate of the workspace but
//! `exporter-contract` (for [`exporter_contract::DatabaseUrl`] and
//! [`exporter_contract::Endpoint`]).
//!
//! # Main types
//!
//! - [`Roots`], [`resolve_token`], [`save_token`]: API roots and the CLI's token file.
//! - [`AuthClient`]: `exporter login` (password grant, one-time code).
//! - [`Client`]: the Deploy API (HAL, pagination, the error envelope, retries of idempotent
//!   requests only) with typed resources ([`Account`], [`Database`], [`Backup`], …).
//! - [`Client::environment`], [`Client::inventory`]: an environment and everything in it.
//! - [`Client::wait_operation`]: poll an operation; a 404 after a deprovision or purge is done.
//! - [`Client::restore_backup`], [`Client::deprovision_restored`], [`leftover_restores`]: the
//!   guide's "restore the backup to a new database first" (handle convention in [`restore`]).
//! - [`Client::open_tunnel`] → [`Tunnel`]: a local port forwarded through the SSH portal, its
//!   [`Tunnel::endpoint`] ready for this tool's own connections (TLS verified against the
//!   environment's CA when it has one).
//! - [`destructive`]: the teardown's deprovision/purge/delete calls, to be called only from
//!   the teardown executor.
//!
//! # Secrets
//!
//! The token is a [`secrecy::SecretString`] from the moment it is read; connection URLs are
//! [`exporter_contract::DatabaseUrl`]s (redacted in `Display` and `Debug`); drain secrets are
//! never deserialized; `ssh`'s stderr is redacted (token, password) before it is kept. No
//! [`Error`] holds a secret.

mod auth;
mod client;
pub mod config;
pub mod destructive;
mod error;
pub mod hal;
mod inventory;
mod operation;
pub mod resources;
pub mod restore;
pub mod tunnel;

pub use auth::{AuthClient, Credentials, DEFAULT_LIFETIME, IssuedToken, OTP_LIFETIME};
pub use client::{Client, ClientOptions};
pub use config::{ResolvedToken, Roots, TokenSource, resolve_token, save_token};
pub use error::{Error, ErrorKind, Result};
pub use inventory::{AppEntry, DatabaseEntry, Environment, Inventory};
pub use operation::{Finished, PollOptions};
pub use resources::{
    Account, App, Backup, Database, DatabaseCredential, DatabaseImage, Disk, LogDrain, MetricDrain,
    Operation, Service, SshPortalConnection, Stack, Vhost,
};
pub use restore::{RestoreOptions, RestoredDatabase, leftover_restores};
pub use secrecy::{ExposeSecret, SecretString};
pub use tunnel::{Tunnel, TunnelEnd, TunnelOptions, TunnelWatch};
