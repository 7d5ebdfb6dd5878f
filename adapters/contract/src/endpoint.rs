//! Where a connection goes, and the TLS settings that travel with it (design.md section 3,
//! "endpoint step"; section 5, "TLS").
//!
//! The core resolves every database target into an [`Endpoint`] between planning and dumping:
//! for a plain URL the URL itself; for a platform database a tunnel's loopback port, the
//! credential's URL (whose host is the name the server certificate carries) and the
//! environment's CA given as text. Every connection an adapter opens — snapshot, workers, raw
//! COPY readers, restore, scratch, fingerprint passes — is built from the endpoint, never from a
//! URL taken from settings.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::DatabaseUrl;

/// A place to connect to: a [`DatabaseUrl`] (credentials, database, engine parameters such as
/// `sslmode`), optionally a different socket address to dial (a tunnel's loopback port), and
/// optionally CA certificates given inline as PEM text.
///
/// `Display` and `Debug` never show a password (they use [`DatabaseUrl::redacted`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: DatabaseUrl,
    dial: Option<(String, u16)>,
    ca_pem: Option<Arc<str>>,
    via: Option<String>,
    defaults: Vec<(String, String)>,
}

impl Endpoint {
    /// An endpoint that dials the URL's own host and port.
    #[must_use]
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            dial: None,
            ca_pem: None,
            via: None,
            defaults: Vec::new(),
        }
    }

    /// Dial `host:port` instead of the URL's host and port (a tunnel's local end). TLS still
    /// names and verifies the URL's host (libpq's `host` + `hostaddr`), so `verify-full` works
    /// through a tunnel when the certificate carries the URL's host name.
    #[must_use]
    pub fn dial(mut self, host: impl Into<String>, port: u16) -> Self {
        self.dial = Some((host.into(), port));
        self
    }

    /// Trust these PEM-encoded CA certificates (one or more `-----BEGIN CERTIFICATE-----`
    /// blocks), as if given by `sslrootcert` / `ssl-ca` / `cacert`. A CA named in the URL
    /// takes precedence.
    #[must_use]
    pub fn with_ca_pem(mut self, pem: impl Into<Arc<str>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// A short description of how the endpoint is reached, shown after the URL, e.g.
    /// `tunnel 127.0.0.1:43121`.
    #[must_use]
    pub fn via(mut self, via: impl Into<String>) -> Self {
        self.via = Some(via.into());
        self
    }

    /// A default for the URL query parameter `key`, used when the URL does not set it.
    ///
    /// This is how settings that a user of the engine's own client keeps in the environment
    /// reach an adapter without the adapter reading the environment (conventions: "commands
    /// never read `std::env`"): the core maps `PGSSLMODE` to a default `sslmode` of a
    /// PostgreSQL endpoint, as libpq does. A later default for the same key replaces an
    /// earlier one.
    #[must_use]
    pub fn with_default_param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.defaults.retain(|(k, _)| *k != key);
        self.defaults.push((key, value.into()));
        self
    }

    /// The value of URL query parameter `key`: the URL's own (the last one if repeated), else
    /// the default set with [`Self::with_default_param`].
    #[must_use]
    pub fn param(&self, key: &str) -> Option<String> {
        self.url
            .query_pairs()
            .filter(|(k, _)| k == key)
            .last()
            .map(|(_, v)| v.into_owned())
            .or_else(|| {
                self.defaults
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            })
    }

    /// The parameter defaults, in the order set.
    #[must_use]
    pub fn param_defaults(&self) -> &[(String, String)] {
        &self.defaults
    }

    /// The URL: credentials, database and engine parameters.
    #[must_use]
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The host to open the socket to: the dial override, else the URL's host.
    #[must_use]
    pub fn connect_host(&self) -> &str {
        self.dial.as_ref().map_or(self.url.host(), |(h, _)| h)
    }

    /// The port to open the socket to: the dial override, else the URL's port, else
    /// `default_port`.
    #[must_use]
    pub fn connect_port(&self, default_port: u16) -> u16 {
        self.dial
            .as_ref()
            .map(|(_, p)| *p)
            .or(self.url.port())
            .unwrap_or(default_port)
    }

    /// Whether the socket goes somewhere else than the URL's host (a tunnel).
    #[must_use]
    pub fn is_redirected(&self) -> bool {
        self.dial.is_some()
    }

    /// Inline CA certificates (PEM), if any.
    #[must_use]
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The same endpoint for another URL (e.g. the same server, another database): the dial
    /// override, inline CA, description and parameter defaults are kept.
    #[must_use]
    pub fn with_url(&self, url: DatabaseUrl) -> Self {
        Self {
            url,
            dial: self.dial.clone(),
            ca_pem: self.ca_pem.clone(),
            via: self.via.clone(),
            defaults: self.defaults.clone(),
        }
    }

    /// The redacted URL, followed by ` (via …)` when the endpoint is reached another way.
    #[must_use]
    pub fn redacted(&self) -> String {
        match &self.via {
            Some(via) => format!("{} (via {via})", self.url.redacted()),
            None => self.url.redacted(),
        }
    }
}

impl From<DatabaseUrl> for Endpoint {
    fn from(url: DatabaseUrl) -> Self {
        Self::new(url)
    }
}

impl From<&DatabaseUrl> for Endpoint {
    fn from(url: &DatabaseUrl) -> Self {
        Self::new(url.clone())
    }
}

impl From<&Endpoint> for Endpoint {
    fn from(endpoint: &Endpoint) -> Self {
        endpoint.clone()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("dial", &self.dial)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<pem>"))
            .field("via", &self.via)
            .field(
                "defaults",
                &self.defaults.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What a connection's transport security turned out to be, as recorded in the manifest per
/// database (design.md section 5: "the manifest records the TLS used per database").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// The mode that was asked for, in the engine's own vocabulary (`prefer`, `verify-full`,
    /// `REQUIRED`, `rediss`, …).
    pub mode: String,
    /// Whether the connection was encrypted.
    pub encrypted: bool,
    /// What was verified about the server's certificate: `none`, `chain` (signed by a trusted
    /// CA) or `chain+hostname`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<String>,
    /// The negotiated protocol version, e.g. `TLSv1.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// SHA-256 of the server's leaf certificate (DER), lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_certificate_sha256: Option<String>,
}

impl TlsInfo {
    /// A clear-text connection made under `mode`.
    #[must_use]
    pub fn plaintext(mode: impl Into<String>) -> Self {
        Self {
            mode: mode.into(),
            encrypted: false,
            verified: None,
            protocol: None,
            peer_certificate_sha256: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_overrides_socket_but_not_url() {
        let url =
            DatabaseUrl::parse("postgresql://aptible:s3cret@db-100.aptible.in:5432/db").unwrap();
        let e = Endpoint::new(url)
            .dial("127.0.0.1", 43121)
            .with_ca_pem("-----BEGIN CERTIFICATE-----\n")
            .via("tunnel 127.0.0.1:43121");
        assert_eq!(e.connect_host(), "127.0.0.1");
        assert_eq!(e.connect_port(5432), 43121);
        assert_eq!(e.url().host(), "db-100.aptible.in");
        assert!(e.is_redirected());
        assert_eq!(
            e.to_string(),
            "postgresql://aptible:****@db-100.aptible.in:5432/db (via tunnel 127.0.0.1:43121)"
        );
        let debug = format!("{e:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(!debug.contains("BEGIN"), "{debug}");
    }

    #[test]
    fn plain_endpoint_dials_the_url() {
        let e: Endpoint = DatabaseUrl::parse("redis://h").unwrap().into();
        assert_eq!(e.connect_host(), "h");
        assert_eq!(e.connect_port(6379), 6379);
        assert!(!e.is_redirected());
        assert_eq!(e.ca_pem(), None);
        let other = e.with_url(DatabaseUrl::parse("redis://h/3").unwrap());
        assert_eq!(other.url().database().as_deref(), Some("3"));
    }

    #[test]
    fn url_parameters_win_over_defaults() {
        let url = DatabaseUrl::parse("postgres://h/db?sslmode=verify-full").unwrap();
        let e = Endpoint::new(url)
            .with_default_param("sslmode", "disable")
            .with_default_param("sslrootcert", "/etc/ca.pem")
            .with_default_param("sslrootcert", "/etc/other.pem");
        assert_eq!(e.param("sslmode").as_deref(), Some("verify-full"));
        assert_eq!(e.param("sslrootcert").as_deref(), Some("/etc/other.pem"));
        assert_eq!(e.param("sslcert"), None);
        let moved = e.with_url(DatabaseUrl::parse("postgres://h/other").unwrap());
        assert_eq!(moved.param("sslmode").as_deref(), Some("disable"));
        assert_eq!(moved.param_defaults().len(), 2);
    }
}
