//! `exporter`: get every database out of a hosting account as consistent logical dumps,
//! streamed through zstd with SHA-256 checksums, and prove them before anything is torn down.
//!
//! Layout (design.md section 3):
//!
//! - [`cli`]: clap types only;
//! - [`settings`]: arguments + environment + config file → a validated plan, no I/O;
//! - [`engines`]: the one module that maps a URL scheme (or a manifest's engine) to an engine
//!   adapter: its source, restore target and scratch server;
//! - [`pipeline`]: engine bytes → zstd → SHA-256 → storage, with backpressure;
//! - [`archive`]: run ids, `manifest.json`, `SHA256SUMS`, reading archives back;
//! - [`storage`]: where runs live (a local directory, or S3 and S3-compatible stores);
//! - [`commands`]: `dump`, `verify` (levels checksum, decompress, restore), `restore`, `list`,
//!   `uploads`;
//! - [`error`]: exit codes and error rendering.

pub mod archive;
pub mod cli;
pub mod commands;
pub mod engines;
pub mod error;
pub mod pipeline;
pub mod settings;
pub mod storage;
