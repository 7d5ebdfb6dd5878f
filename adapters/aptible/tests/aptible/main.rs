//! The platform client against the fake platform (`fixtures/aptible/fake_api.py`), a real
//! sshd as the SSH portal, and the real local PostgreSQL, MariaDB and Redis.

mod auth;
mod inventory;
mod restore;
mod support;
mod teardown;
mod tunnel;
