//! End-to-end tests of the `exporter` binary against the real PostgreSQL, MariaDB and Redis on
//! the machine.
//!
//! One integration test binary with modules (as ripgrep and uv do): `support` holds the shared
//! helpers; each other module covers one part of the CLI contract. Every test makes its own
//! databases, redis-server processes and temporary directories, so the suite runs in parallel; a
//! missing service fails the tests, it never skips them.

#![allow(
    clippy::disallowed_macros,
    clippy::disallowed_methods,
    reason = "tests may print and use std::fs (clippy.toml)"
)]

mod check;
mod config;
mod corpus;
mod dump;
mod failures;
mod main_job;
mod mysql;
mod platform;
mod progress;
mod prove;
mod redis;
mod restore;
mod resume;
mod s3;
mod snapshots;
mod support;
mod teardown;
mod tls;
mod verify;
mod verify_jobs;
