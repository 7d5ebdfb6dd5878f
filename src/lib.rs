//! `exporter`: get every database out of a hosting account as consistent logical dumps,
//! streamed through zstd with SHA-256 checksums, and prove them before anything is torn down.
//!
//! The root crate is a library with a thin binary. Its layers call downwards only
//! (ARCHITECTURE.md has the full map):
//!
//! - [`cli`]: clap types, plain data;
//! - [`settings`]: arguments + environment + config file text → a validated plan per command,
//!   pure (no I/O, no `std::env`);
//! - [`commands`]: resolve → call → render; the only callers of [`output`], the only module
//!   that prints; owns the [`cleanup`] scope of the command and maps errors with [`error`];
//! - services, which return typed values and report [`progress`] events, never printing:
//!   - [`check`]: every database of a dump plan and its destination checked before the dump
//!     (privileges, snapshot, size, a test object) → a [`check::CheckReport`];
//!   - [`run`]: which run a command means, its manifest and `SHA256SUMS`, its archives opened
//!     and compared with the manifest;
//!   - [`verify`]: levels checksum, decompress, restore → a [`verify::VerifyReport`] (also the
//!     `verify.json` record);
//!   - [`pipeline`]: the dump path (engine → zstd → SHA-256 → storage, manifest last) and the
//!     restore path (storage → zstd → engine) side by side;
//!   - [`storage`]: where runs live (a local directory, S3 and S3-compatible stores);
//!   - [`endpoint`]: the endpoint step, a planned target → a live endpoint held by a guard,
//!     with the environment's connection defaults (libpq's `PGSSLMODE`, …) applied;
//!   - [`cleanup`]: one scope for what an unfinished command must undo;
//!   - [`teardown`]: the environment's removal, planned, gated on proven archives
//!     ([`teardown::Gate`]), journalled and reported;
//! - [`engines`]: the one module that names the adapters (URL scheme or manifest engine →
//!   source, restore target, scratch server, each built from an endpoint; which environment
//!   variables are defaults of which engine's URL parameters);
//! - [`archive`]: the archive format — run ids, `manifest.json`, `SHA256SUMS`, reading files
//!   back;
//! - [`error`]: exit codes, the one error classifier, error rendering.

pub mod archive;
pub mod blocking;
pub mod check;
pub mod cleanup;
pub mod cli;
pub mod commands;
pub mod endpoint;
pub mod engines;
pub mod error;
pub mod output;
pub mod pipeline;
pub mod platform;
pub mod progress;
pub mod run;
pub mod settings;
pub mod storage;
pub mod teardown;
pub mod verify;
