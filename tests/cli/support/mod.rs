//! Shared helpers, one module per service: the exporter binary ([`cli`]), throw-away
//! PostgreSQL databases ([`postgres`]) and MariaDB schemas ([`mysql`]), dedicated redis-server
//! processes ([`redis`]), the S3-compatible server ([`s3`]), and archives on disk
//! ([`archive`]).
//!
//! Every test creates its own databases (unique names `exp_cli_<test>_<pid>_<n>`, dropped by a
//! guard), its own redis-server processes (never the shared one on 6379) and its own temporary
//! directories, so tests run in parallel. PostgreSQL must be reachable at 127.0.0.1:5432 as
//! `postgres` (trust auth), MariaDB at 127.0.0.1:3306 as root without password, and
//! redis-server, redis-cli and python3 must be installed; if not, the test fails with a message
//! saying so — never a silent skip (design.md section 10).

#![allow(dead_code)] // Not every test module uses every helper.

pub mod archive;
pub mod cli;
pub mod fake;
pub mod mysql;
pub mod postgres;
pub mod proxy;
pub mod redis;
pub mod s3;

pub use archive::*;
pub use cli::*;
pub use mysql::*;
pub use postgres::*;
pub use proxy::*;
pub use redis::*;
