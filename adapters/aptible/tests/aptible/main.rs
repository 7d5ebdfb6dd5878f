//! The platform client against the fake platform (`fixtures/aptible/fake_api.py`), a real
//! sshd as the SSH portal, and the real local PostgreSQL, MariaDB and Redis.

#![allow(
    clippy::disallowed_macros,
    clippy::disallowed_methods,
    reason = "tests may print and use std::fs (clippy.toml)"
)]

mod auth;
mod inventory;
mod restore;
mod support;
mod teardown;
mod tunnel;
