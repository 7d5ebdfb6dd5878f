//! The one place that maps a URL scheme, or a manifest's engine name, to an engine adapter.
//!
//! Nothing else in the crate matches on engine names or URL schemes (conventions: "one place
//! names the adapters", after rustic_backend's `choose.rs`). Adding an engine means adding a
//! variant here and its adapter crate. Each engine gives a [`Source`] (dump), a [`Target`]
//! (restore) and a [`ScratchServer`] (`verify --level restore`), each built from an
//! [`Endpoint`] that the endpoint step ([`crate::endpoint`]) opened. The connection defaults a
//! user of the engine's own client keeps in the environment ([`ConnectionDefaults`], libpq's
//! `PGSSLMODE` …) are mapped to the engine's URL parameters here too ([`EngineKind::endpoint`]).

use std::fmt;
use std::sync::Arc;

use exporter_contract::{DatabaseUrl, Endpoint, PayloadFormat, ScratchServer, Source, Target};
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
    /// MySQL: strip the `DEFINER=` clauses of views, routines, triggers and events (kept by
    /// default; the dump's warnings then list each original definer).
    pub strip_definers: bool,
}

/// Connection settings a user of the engine's own client keeps in the environment, passed to
/// the adapters as defaults for URL parameters (adapters never read the environment; settings
/// read it through the lookup they are given).
///
/// Today: libpq's `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY` and `PGSSLSNI`, the
/// defaults of `sslmode`, `sslrootcert`, `sslcert`, `sslkey` and `sslsni` of PostgreSQL URLs
/// (<https://www.postgresql.org/docs/current/libpq-envars.html>); a URL's own parameter wins.
/// Empty variables count as unset, as in libpq.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionDefaults {
    postgres: Vec<(&'static str, String)>,
}

impl ConnectionDefaults {
    /// Read the variables through `env` (a snapshot of the environment).
    #[must_use]
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            postgres: exporter_postgres::ENV_PARAMS
                .iter()
                .filter_map(|(var, param)| env(var).filter(|v| !v.is_empty()).map(|v| (*param, v)))
                .collect(),
        }
    }
}

impl EngineKind {
    /// The endpoint of `url` for this engine: the URL, with the environment's defaults for
    /// its parameters (see [`Self::with_defaults`]).
    #[must_use]
    pub fn endpoint(self, url: &DatabaseUrl, defaults: &ConnectionDefaults) -> Endpoint {
        self.with_defaults(Endpoint::new(url.clone()), defaults)
    }

    /// `endpoint` with the environment's defaults for this engine's URL parameters (a URL's own
    /// parameter still wins). Every endpoint provider applies them, so a tunnel's endpoint
    /// gets them as a URL's does.
    #[must_use]
    pub fn with_defaults(self, endpoint: Endpoint, defaults: &ConnectionDefaults) -> Endpoint {
        match self {
            Self::Postgres => defaults
                .postgres
                .iter()
                .fold(endpoint, |e, (k, v)| e.with_default_param(*k, v.clone())),
            Self::Mysql | Self::Redis => endpoint,
        }
    }

    /// The transport security an endpoint asks for, in the engine's words, for listings:
    /// `prefer` (libpq's default), `verify-full`, `PREFERRED`, `REQUIRED`, `rediss`, `none`
    /// (`redis://`). Pure; `invalid` when the parameters do not parse.
    #[must_use]
    pub fn tls_mode(self, endpoint: &Endpoint) -> String {
        match self {
            Self::Postgres => exporter_postgres::tls_mode(endpoint)
                .map_or_else(|_| "invalid".to_owned(), |m| m.as_str().to_owned()),
            Self::Mysql => exporter_mysql::tls_mode(endpoint)
                .map_or_else(|_| "invalid".to_owned(), |m| m.as_str().to_owned()),
            Self::Redis => {
                exporter_redis::tls_mode(endpoint).unwrap_or_else(|_| "invalid".to_owned())
            }
        }
    }

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

    /// The engine that dumps a platform database of type `database_type` (Aptible's
    /// `database.type`, aptible-api.md §3.4), or `None` when this tool cannot export that type
    /// (`mongodb`, `elasticsearch`, `couchdb`, `influxdb`, `rabbitmq`, `sftp`, …).
    #[must_use]
    pub fn for_platform_type(database_type: &str) -> Option<Self> {
        match database_type {
            "postgresql" => Some(Self::Postgres),
            "mysql" => Some(Self::Mysql),
            "redis" => Some(Self::Redis),
            _ => None,
        }
    }

    /// The endpoint of a platform database reached through a tunnel: what the platform's
    /// database is, in this engine's terms, and the TLS defaults of a tunnel. Applied before
    /// the environment's own defaults ([`Self::with_defaults`], which win) and the credential
    /// URL's parameters (which win over both).
    ///
    /// - A platform Redis database is a whole Redis server: the credential URL's `/0` path is
    ///   dropped, so every logical database is dumped (a path would restrict the dump to one).
    /// - TLS: with the environment's CA (`ca_body`) on the endpoint, the server's certificate
    ///   is verified against it. PostgreSQL gets `sslmode=verify-ca` (libpq's `prefer` would
    ///   fall back to clear text; the chain is checked, not the host name: through a tunnel
    ///   the name dialled is `127.0.0.1`, and whether the certificate carries the credential's
    ///   host name is not documented); MySQL already treats an inline CA as `VERIFY_CA`, and a
    ///   `rediss://` credential verifies against it (redis-cli's rules). Without a CA the
    ///   engines' defaults stand: PostgreSQL `prefer` and MySQL `PREFERRED` use TLS when the
    ///   server offers it; Redis follows the credential's scheme (`redis+ssl` is
    ///   `rediss://`).
    #[must_use]
    pub fn platform_endpoint(self, endpoint: Endpoint) -> Endpoint {
        match self {
            Self::Postgres if endpoint.ca_pem().is_some() => {
                endpoint.with_default_param("sslmode", "verify-ca")
            }
            Self::Redis if endpoint.url().database().is_some() => {
                let mut url = endpoint.url().expose().clone();
                url.set_path("");
                match DatabaseUrl::parse(url.as_str()) {
                    Ok(whole) => endpoint.with_url(whole),
                    Err(_) => endpoint,
                }
            }
            Self::Postgres | Self::Mysql | Self::Redis => endpoint,
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

    /// The engine as an inventory shows it before connecting (`exporter list`): `postgresql`,
    /// `mysql/mariadb`, `redis`. MySQL and MariaDB share a URL scheme and an adapter, and only
    /// the server tells which it is: the manifest then records `mysql` or `mariadb`
    /// ([`exporter_contract::ServerInfo::engine`]), so a listing says both rather than guess.
    #[must_use]
    pub fn inventory_name(self) -> &'static str {
        match self {
            Self::Postgres => "postgresql",
            Self::Mysql => "mysql/mariadb",
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

    /// Whether the engine's scratch "database" is its whole scratch server (Redis: no named
    /// databases; [`exporter_contract::ScratchServer::create`] ignores the name and the
    /// server must be empty), so a verification holds at most one scratch database of this
    /// engine at a time, where PostgreSQL and MySQL restore one archive while the previous
    /// one is fingerprinted and dropped (`verify/overlap.rs`).
    #[must_use]
    pub fn one_scratch_at_a_time(self) -> bool {
        match self {
            Self::Postgres | Self::Mysql => false,
            Self::Redis => true,
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

    /// Build the adapter for `endpoint` (every connection it opens dials the endpoint and
    /// applies its TLS settings). Pure: no I/O happens until `preflight` or `dump`.
    #[must_use]
    pub fn source(self, endpoint: &Endpoint, options: EngineOptions) -> Arc<dyn Source> {
        let endpoint = endpoint.clone();
        match self {
            Self::Postgres => Arc::new(exporter_postgres::PostgresSource::new(endpoint)),
            Self::Mysql => Arc::new(
                exporter_mysql::MysqlSource::new(endpoint).with_definers(!options.strip_definers),
            ),
            Self::Redis => Arc::new(exporter_redis::RedisSource::new(endpoint).with_format(
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
        let endpoint = endpoint.clone();
        match self {
            Self::Postgres => Arc::new(exporter_postgres::PostgresTarget::new(endpoint)),
            Self::Mysql => Arc::new(exporter_mysql::MysqlTarget::new(endpoint)),
            Self::Redis => Arc::new(exporter_redis::RedisTarget::new(endpoint)),
        }
    }

    /// Build the scratch server for `endpoint` (`verify --level restore --scratch`). Pure: no
    /// I/O happens until `create`.
    #[must_use]
    pub fn scratch(self, endpoint: &Endpoint) -> Arc<dyn ScratchServer> {
        let endpoint = endpoint.clone();
        match self {
            Self::Postgres => Arc::new(exporter_postgres::PostgresScratch::new(endpoint)),
            Self::Mysql => Arc::new(exporter_mysql::MysqlScratch::new(endpoint)),
            Self::Redis => Arc::new(exporter_redis::RedisScratch::new(endpoint)),
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

    #[test]
    fn libpq_environment_becomes_postgres_defaults_and_modes_are_listed() {
        let env = |k: &str| match k {
            "PGSSLMODE" => Some("verify-ca".to_owned()),
            "PGSSLROOTCERT" => Some("/etc/ca.pem".to_owned()),
            "PGSSLCERT" => Some(String::new()),
            _ => None,
        };
        let defaults = ConnectionDefaults::from_env(&env);
        let pg = DatabaseUrl::parse("postgres://h/db").unwrap();
        let e = EngineKind::Postgres.endpoint(&pg, &defaults);
        assert_eq!(e.param("sslmode").as_deref(), Some("verify-ca"));
        assert_eq!(e.param("sslrootcert").as_deref(), Some("/etc/ca.pem"));
        assert_eq!(e.param("sslcert"), None);
        assert_eq!(EngineKind::Postgres.tls_mode(&e), "verify-ca");
        let own = DatabaseUrl::parse("postgres://h/db?sslmode=disable").unwrap();
        let e = EngineKind::Postgres.endpoint(&own, &defaults);
        assert_eq!(EngineKind::Postgres.tls_mode(&e), "disable");
        let plain = EngineKind::Postgres.endpoint(&pg, &ConnectionDefaults::default());
        assert_eq!(EngineKind::Postgres.tls_mode(&plain), "prefer");
        // A tunnel's endpoint (a dial override) gets the same defaults.
        let tunnel = EngineKind::Postgres.with_defaults(
            Endpoint::new(pg.clone()).dial("127.0.0.1", 40000),
            &defaults,
        );
        assert_eq!(tunnel.param("sslmode").as_deref(), Some("verify-ca"));
        assert_eq!(tunnel.connect_port(5432), 40000);
        // Through a platform tunnel: a CA means verify-ca unless PGSSLMODE says otherwise; a
        // platform Redis database is the whole server.
        let tunnel = |url: &str| {
            Endpoint::new(DatabaseUrl::parse(url).unwrap())
                .dial("127.0.0.1", 40000)
                .with_ca_pem("-----BEGIN CERTIFICATE-----\n")
        };
        let pg = EngineKind::Postgres.platform_endpoint(tunnel("postgresql://u:p@db-1/db"));
        assert_eq!(EngineKind::Postgres.tls_mode(&pg), "verify-ca");
        let pg = EngineKind::Postgres.with_defaults(pg, &defaults);
        assert_eq!(pg.param("sslmode").as_deref(), Some("verify-ca"));
        let full = |k: &str| (k == "PGSSLMODE").then(|| "verify-full".to_owned());
        let pg = EngineKind::Postgres.with_defaults(
            EngineKind::Postgres.platform_endpoint(tunnel("postgresql://u:p@db-1/db")),
            &ConnectionDefaults::from_env(&full),
        );
        assert_eq!(EngineKind::Postgres.tls_mode(&pg), "verify-full");
        let plain = EngineKind::Postgres.platform_endpoint(
            Endpoint::new(DatabaseUrl::parse("postgresql://u:p@db-1/db").unwrap())
                .dial("127.0.0.1", 1),
        );
        assert_eq!(EngineKind::Postgres.tls_mode(&plain), "prefer");
        let my = EngineKind::Mysql.platform_endpoint(tunnel("mysql://u:p@db-2/db"));
        assert_eq!(EngineKind::Mysql.tls_mode(&my), "VERIFY_CA");
        let r = EngineKind::Redis.platform_endpoint(tunnel("redis://u:p@db-3:6379/0"));
        assert_eq!(r.url().database(), None);
        assert_eq!(r.connect_port(6379), 40000);
        assert_eq!(r.url().password().as_deref(), Some("p"));
        // Other engines ignore libpq's variables.
        let my = DatabaseUrl::parse("mysql://h/db").unwrap();
        let e = EngineKind::Mysql.endpoint(&my, &defaults);
        assert_eq!(e.param("sslmode"), None);
        assert_eq!(EngineKind::Mysql.tls_mode(&e), "PREFERRED");
        let r = DatabaseUrl::parse("rediss://h").unwrap();
        assert_eq!(EngineKind::Redis.tls_mode(&r.clone().into()), "rediss");
        let r = DatabaseUrl::parse("redis://h").unwrap();
        assert_eq!(EngineKind::Redis.tls_mode(&r.into()), "none");
    }
}
