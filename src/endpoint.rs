//! The endpoint step: between the plan and the work, each [`DatabaseTarget`] becomes a live
//! [`Endpoint`] held by an [`EndpointGuard`] for as long as the work needs it (design.md
//! section 3).
//!
//! For a database named by URL the endpoint is the URL itself and the guard holds nothing. A
//! platform database (next: Aptible) will resolve through a tunnel: an [`EndpointProvider`]
//! that opens it — I/O, after planning — and a guard that closes it when dropped, after the
//! dump. The TLS settings of a connection (the URL's parameters, an inline CA) travel inside
//! the [`Endpoint`]; the environment's defaults for them (libpq's `PGSSLMODE`, `PGSSLROOTCERT`
//! …, resolved by settings into [`ConnectionDefaults`]) are applied here, by the provider, so
//! every connection of a command — dump, restore target, scratch server — gets the same ones. Whatever opens a connection (a dump's source, a restore target, a scratch
//! server; see [`crate::engines`]) takes an endpoint, never a URL from the settings.

use std::fmt;
use std::sync::Arc;

use exporter_contract::{Endpoint, EngineError};
use futures::future::BoxFuture;

use crate::engines::ConnectionDefaults;
use crate::settings::DatabaseTarget;

/// An [`Endpoint`] and whatever keeps it reachable (a tunnel process, a forwarded port), held
/// for the duration of one piece of work and released when dropped.
pub struct EndpointGuard {
    endpoint: Endpoint,
    held: Option<Box<dyn Send + Sync>>,
}

impl EndpointGuard {
    /// An endpoint that needs nothing held open (a URL dialled directly).
    #[must_use]
    pub fn direct(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            held: None,
        }
    }

    /// An endpoint that stays reachable while `resource` lives; dropping the guard drops it
    /// (a tunnel's handle closes the tunnel in its `Drop`).
    #[must_use]
    pub fn holding(endpoint: Endpoint, resource: impl Send + Sync + 'static) -> Self {
        Self {
            endpoint,
            held: Some(Box::new(resource)),
        }
    }

    /// The endpoint to connect to.
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl fmt::Debug for EndpointGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointGuard")
            .field("endpoint", &self.endpoint)
            .field("holds", &self.held.is_some())
            .finish()
    }
}

/// Turns a planned target into a live endpoint (the port the platform's tunnels will
/// implement).
pub trait EndpointProvider: Send + Sync {
    /// Open the endpoint of `target`. May do I/O (start a tunnel and wait for its port).
    ///
    /// # Errors
    ///
    /// An [`EngineError`] of kind `Connect` naming the target (redacted) when it cannot be
    /// reached; the dump of that database fails with it, the others go on.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future must release whatever it had opened so far.
    fn open<'a>(
        &'a self,
        target: &'a DatabaseTarget,
    ) -> BoxFuture<'a, Result<Arc<EndpointGuard>, EngineError>>;
}

/// The provider for targets named by URL: the endpoint is the URL itself, with the
/// environment's connection defaults for its engine ([`crate::engines::EngineKind::endpoint`]).
#[derive(Debug, Clone, Default)]
pub struct UrlEndpoints {
    defaults: ConnectionDefaults,
}

impl UrlEndpoints {
    /// A provider that applies `defaults` (the plan's `connections`) to every endpoint.
    #[must_use]
    pub fn new(defaults: ConnectionDefaults) -> Self {
        Self { defaults }
    }
}

impl EndpointProvider for UrlEndpoints {
    fn open<'a>(
        &'a self,
        target: &'a DatabaseTarget,
    ) -> BoxFuture<'a, Result<Arc<EndpointGuard>, EngineError>> {
        Box::pin(async move {
            Ok(Arc::new(EndpointGuard::direct(
                target.engine.endpoint(&target.url, &self.defaults),
            )))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::EngineKind;
    use exporter_contract::DatabaseUrl;

    #[tokio::test]
    async fn a_url_target_is_its_own_endpoint() {
        let target = DatabaseTarget {
            name: "billing".into(),
            url: DatabaseUrl::parse("postgres://app:s3cret@db.internal:5432/billing").unwrap(),
            engine: EngineKind::Postgres,
        };
        let guard = UrlEndpoints::default().open(&target).await.unwrap();
        assert_eq!(guard.endpoint().url(), &target.url);
        assert!(!guard.endpoint().is_redirected());
        assert!(!format!("{guard:?}").contains("s3cret"));
        assert_eq!(guard.endpoint().param("sslmode"), None);
    }

    #[tokio::test]
    async fn the_environment_s_connection_defaults_are_applied_to_the_endpoint() {
        let env = |k: &str| match k {
            "PGSSLMODE" => Some("verify-full".to_owned()),
            "PGSSLROOTCERT" => Some("/etc/ca.pem".to_owned()),
            _ => None,
        };
        let provider = UrlEndpoints::new(ConnectionDefaults::from_env(&env));
        let target = |url: &str| DatabaseTarget {
            name: "billing".into(),
            url: DatabaseUrl::parse(url).unwrap(),
            engine: EngineKind::for_scheme(url.split(':').next().unwrap()).unwrap(),
        };
        let pg = target("postgres://db.internal/billing");
        let guard = provider.open(&pg).await.unwrap();
        assert_eq!(
            guard.endpoint().param("sslmode").as_deref(),
            Some("verify-full")
        );
        assert_eq!(
            guard.endpoint().param("sslrootcert").as_deref(),
            Some("/etc/ca.pem")
        );
        // The URL's own parameter wins; other engines ignore libpq's variables.
        let own = target("postgres://db.internal/billing?sslmode=require");
        let guard = provider.open(&own).await.unwrap();
        assert_eq!(
            guard.endpoint().param("sslmode").as_deref(),
            Some("require")
        );
        let my = target("mysql://db.internal/shop");
        let guard = provider.open(&my).await.unwrap();
        assert_eq!(guard.endpoint().param("sslmode"), None);
    }

    #[test]
    fn a_held_resource_is_released_with_the_guard() {
        struct Tunnel(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Tunnel {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let url = DatabaseUrl::parse("postgres://h/db").unwrap();
        let guard = EndpointGuard::holding(
            Endpoint::new(url).dial("127.0.0.1", 40000),
            Tunnel(closed.clone()),
        );
        assert_eq!(guard.endpoint().connect_port(5432), 40000);
        assert!(!closed.load(std::sync::atomic::Ordering::SeqCst));
        drop(guard);
        assert!(closed.load(std::sync::atomic::Ordering::SeqCst));
    }
}
