//! The one place that maps a URL scheme, or a manifest's engine name, to an engine adapter.
//!
//! Nothing else in the crate matches on engine names or URL schemes (conventions: "one place
//! names the adapters", after rustic_backend's `choose.rs`). Adding an engine means adding a
//! variant here and its adapter crate. Each engine gives a [`Source`] (dump), a [`Target`]
//! (restore) and a [`ScratchServer`] (`verify --level restore`), each built from an
//! [`Endpoint`] that the endpoint step ([`crate::endpoint`]) opened.

use std::fmt;
use std::sync::Arc;

use exporter_contract::{Endpoint, PayloadFormat, ScratchServer, Source, Target};
use exporter_redis::RedisFormat;

/// An engine the tool can dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// PostgreSQL, through `exporter-postgres`.
    Postgres,
    /// MySQL and MariaDB, through `exporter-mysql`.
    Mysql,
    /// Redis, through `exporter-redis`.
    Redis,
}

/// Engine-specific choices made on the command line, passed to the adapters that use them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineOptions {
    /// Redis: a point-in-time RDB (replication handshake) instead of the RESP `RESTORE` stream.
    pub redis_rdb: bool,
    /// MySQL: keep `DEFINER=` clauses of views, routines, triggers and events.
    pub keep_definers: bool,
}

impl EngineKind {
    /// The engine for a URL scheme, or `None` if unsupported.
    #[must_use]
    pub fn for_scheme(scheme: &str) -> Option<Self> {
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::Mysql),
            "redis" | "rediss" => Some(Self::Redis),
            _ => None,
        }
    }

    /// The engine of a manifest entry's `engine` field (FORMAT.md: the server's own engine
    /// name, `postgresql`, `mysql`, `mariadb` or `redis`), or `None` for a name this build does
    /// not know.
    #[must_use]
    pub fn for_manifest_engine(name: &str) -> Option<Self> {
        match name {
            "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::Mysql),
            "redis" => Some(Self::Redis),
            _ => None,
        }
    }

    /// Schemes accepted, for error messages and `--help`.
    #[must_use]
    pub fn supported_schemes() -> &'static [&'static str] {
        &[
            "postgres",
            "postgresql",
            "mysql",
            "mariadb",
            "redis",
            "rediss",
        ]
    }

    /// The engine's family name, as written in inventories (`postgresql`, `mysql`, `redis`).
    /// Manifests record the server's own engine name (`mariadb` for MariaDB).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgresql",
            Self::Mysql => "mysql",
            Self::Redis => "redis",
        }
    }

    /// What the manifest's `tables` entries and their `rows` are for this engine, in progress
    /// lines: `("tables", "rows")`, or `("databases", "keys")` for Redis.
    #[must_use]
    pub fn summary_nouns(self) -> (&'static str, &'static str) {
        match self {
            Self::Postgres | Self::Mysql => ("tables", "rows"),
            Self::Redis => ("databases", "keys"),
        }
    }

    /// The payload format the engine writes with `options`.
    #[must_use]
    pub fn format(self, options: EngineOptions) -> PayloadFormat {
        match self {
            Self::Postgres | Self::Mysql => PayloadFormat::Sql,
            Self::Redis if options.redis_rdb => PayloadFormat::Rdb,
            Self::Redis => PayloadFormat::Resp,
        }
    }

    /// Build the adapter for `endpoint`. Pure: no I/O happens until `preflight` or `dump`.
    #[must_use]
    pub fn source(self, endpoint: &Endpoint, options: EngineOptions) -> Arc<dyn Source> {
        let url = endpoint.url().clone();
        match self {
            Self::Postgres => Arc::new(exporter_postgres::PostgresSource::new(url)),
            Self::Mysql => {
                Arc::new(exporter_mysql::MysqlSource::new(url).with_definers(options.keep_definers))
            }
            Self::Redis => Arc::new(exporter_redis::RedisSource::new(url).with_format(
                if options.redis_rdb {
                    RedisFormat::Rdb
                } else {
                    RedisFormat::Resp
                },
            )),
        }
    }

    /// Build the restore target for `endpoint` (`exporter restore --into`). Pure: no I/O
    /// happens until `preflight`.
    #[must_use]
    pub fn target(self, endpoint: &Endpoint) -> Arc<dyn Target> {
        let url = endpoint.url().clone();
        match self {
            Self::Postgres => Arc::new(exporter_postgres::PostgresTarget::new(url)),
            Self::Mysql => Arc::new(exporter_mysql::MysqlTarget::new(url)),
            Self::Redis => Arc::new(exporter_redis::RedisTarget::new(url)),
        }
    }

    /// Build the scratch server for `endpoint` (`verify --level restore --scratch`). Pure: no
    /// I/O happens until `create`.
    #[must_use]
    pub fn scratch(self, endpoint: &Endpoint) -> Arc<dyn ScratchServer> {
        let url = endpoint.url().clone();
        match self {
            Self::Postgres => Arc::new(exporter_postgres::PostgresScratch::new(url)),
            Self::Mysql => Arc::new(exporter_mysql::MysqlScratch::new(url)),
            Self::Redis => Arc::new(exporter_redis::RedisScratch::new(url)),
        }
    }
}

impl serde::Serialize for EngineKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_map_to_engines() {
        assert_eq!(
            EngineKind::for_scheme("postgres"),
            Some(EngineKind::Postgres)
        );
        assert_eq!(
            EngineKind::for_scheme("PostgreSQL"),
            Some(EngineKind::Postgres)
        );
        assert_eq!(EngineKind::for_scheme("mariadb"), Some(EngineKind::Mysql));
        assert_eq!(EngineKind::for_scheme("redis"), Some(EngineKind::Redis));
        assert_eq!(EngineKind::for_scheme("mongodb"), None);
        assert_eq!(
            EngineKind::for_manifest_engine("mariadb"),
            Some(EngineKind::Mysql)
        );
        assert_eq!(
            EngineKind::for_manifest_engine("postgresql"),
            Some(EngineKind::Postgres)
        );
        assert_eq!(
            EngineKind::for_manifest_engine("redis"),
            Some(EngineKind::Redis)
        );
        assert_eq!(EngineKind::for_manifest_engine("postgres"), None);
        let rdb = EngineOptions {
            redis_rdb: true,
            ..EngineOptions::default()
        };
        assert_eq!(
            EngineKind::Redis
                .format(EngineOptions::default())
                .extension(),
            "resp"
        );
        assert_eq!(EngineKind::Redis.format(rdb).extension(), "rdb");
        assert_eq!(EngineKind::Mysql.format(rdb).extension(), "sql");
    }
}
