//! The one place that maps a URL scheme to an engine adapter.
//!
//! Nothing else in the crate matches on engine names or URL schemes (conventions: "one place
//! names the adapters", after rustic_backend's `choose.rs`). Adding an engine means adding a
//! variant here and its adapter crate.

use std::fmt;
use std::sync::Arc;

use exporter_contract::{DatabaseUrl, PayloadFormat, Source};

/// An engine the tool can dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// PostgreSQL, through `exporter-postgres`.
    Postgres,
}

impl EngineKind {
    /// The engine for a URL scheme (`postgres`, `postgresql`), or `None` if unsupported.
    #[must_use]
    pub fn for_scheme(scheme: &str) -> Option<Self> {
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }

    /// Schemes accepted, for error messages and `--help`.
    #[must_use]
    pub fn supported_schemes() -> &'static [&'static str] {
        &["postgres", "postgresql"]
    }

    /// The engine's name as written in manifests.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgresql",
        }
    }

    /// The payload format the engine writes by default.
    #[must_use]
    pub fn default_format(self) -> PayloadFormat {
        match self {
            Self::Postgres => PayloadFormat::Sql,
        }
    }

    /// Build the adapter for `url`. Pure: no I/O happens until `preflight` or `dump`.
    #[must_use]
    pub fn source(self, url: DatabaseUrl) -> Arc<dyn Source> {
        match self {
            Self::Postgres => Arc::new(exporter_postgres::PostgresSource::new(url)),
        }
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
        assert_eq!(EngineKind::for_scheme("mongodb"), None);
        assert_eq!(EngineKind::Postgres.default_format().extension(), "sql");
    }
}
