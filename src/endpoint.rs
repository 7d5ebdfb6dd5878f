//! The endpoint step: between the plan and the work, each [`DatabaseTarget`] becomes a live
//! [`Endpoint`] held by an [`EndpointGuard`] for as long as the work needs it (design.md
//! section 3).
//!
//! For a database named by URL the endpoint is the URL itself and the guard holds nothing. A
//! platform database resolves through a tunnel ([`crate::platform::TunnelEndpoints`]): the
//! provider opens it — I/O, after planning — and the guard closes it when released or dropped,
//! after the dump; its lifeline tells the dump when the tunnel died under it
//! ([`EndpointGuard::lost`]). The TLS settings of a connection (the URL's parameters, an inline CA) travel inside
//! the [`Endpoint`]; the environment's defaults for them (libpq's `PGSSLMODE`, `PGSSLROOTCERT`
//! …, resolved by settings into [`ConnectionDefaults`]) are applied here, by the provider, so
//! every connection of a command — dump, restore target, scratch server — gets the same ones. Whatever opens a connection (a dump's source, a restore target, a scratch
//! server; see [`crate::engines`]) takes an endpoint, never a URL from the settings.

use std::fmt;
use std::sync::Arc;

use exporter_contract::{Endpoint, EngineError, ErrorKind};
use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::archive::manifest::PlatformDatabase;
use crate::engines::ConnectionDefaults;
use crate::settings::DatabaseTarget;

/// What releasing a held resource did, for the manifest and the progress lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    /// The platform record as it stands after the release (e.g. whether the database restored
    /// from a backup was deprovisioned or kept), for platform databases.
    pub platform: Option<PlatformDatabase>,
    /// Things the user should know (a restored database that could not be deprovisioned).
    pub notes: Vec<String>,
}

/// Something an [`EndpointGuard`] keeps alive (a tunnel process, a restored database) and
/// can release asynchronously, saying what it did.
pub trait Held: Send + Sync + 'static {
    /// Release it (stop the tunnel, remove the restored database) and report.
    fn release(self: Box<Self>) -> BoxFuture<'static, Released>;
}

/// A resource whose release is its `Drop` (see [`EndpointGuard::holding`]).
struct DropOnly<T>(T);

impl<T: Send + Sync + 'static> Held for DropOnly<T> {
    fn release(self: Box<Self>) -> BoxFuture<'static, Released> {
        drop(self);
        Box::pin(async { Released::default() })
    }
}

/// An [`Endpoint`] and whatever keeps it reachable (a tunnel process, a forwarded port), held
/// for the duration of one piece of work and released when dropped — or, by the dump path,
/// with [`EndpointGuard::release`], which also says what the release did.
pub struct EndpointGuard {
    endpoint: Endpoint,
    held: Option<Box<dyn Held>>,
    platform: Option<PlatformDatabase>,
    lifeline: Option<watch::Receiver<Option<String>>>,
}

impl EndpointGuard {
    /// An endpoint that needs nothing held open (a URL dialled directly).
    #[must_use]
    pub fn direct(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            held: None,
            platform: None,
            lifeline: None,
        }
    }

    /// An endpoint that stays reachable while `resource` lives; dropping the guard drops it
    /// (a tunnel's handle closes the tunnel in its `Drop`).
    #[must_use]
    pub fn holding(endpoint: Endpoint, resource: impl Send + Sync + 'static) -> Self {
        Self::held(endpoint, Box::new(DropOnly(resource)))
    }

    /// An endpoint kept reachable by `held`, released by [`Self::release`] (or dropped).
    #[must_use]
    pub fn held(endpoint: Endpoint, held: Box<dyn Held>) -> Self {
        Self {
            endpoint,
            held: Some(held),
            platform: None,
            lifeline: None,
        }
    }

    /// The platform record of the database this endpoint reaches (what the manifest records).
    #[must_use]
    pub fn with_platform(mut self, record: PlatformDatabase) -> Self {
        self.platform = Some(record);
        self
    }

    /// A channel that carries `Some(reason)` once the endpoint became unreachable on its own
    /// (a tunnel that died): the dump races its work against [`Self::lost`].
    #[must_use]
    pub fn with_lifeline(mut self, lifeline: watch::Receiver<Option<String>>) -> Self {
        self.lifeline = Some(lifeline);
        self
    }

    /// The endpoint to connect to.
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The platform record, for a platform database.
    #[must_use]
    pub fn platform(&self) -> Option<&PlatformDatabase> {
        self.platform.as_ref()
    }

    /// Whether the endpoint can be lost on its own (it has a lifeline).
    #[must_use]
    pub fn can_be_lost(&self) -> bool {
        self.lifeline.is_some()
    }

    /// Resolves with the reason once the endpoint became unreachable on its own; never for an
    /// endpoint without a lifeline.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn lost(&self) -> String {
        let Some(rx) = &self.lifeline else {
            return std::future::pending().await;
        };
        let mut rx = rx.clone();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                // The watcher is gone without a verdict: the guard is being released.
                return std::future::pending().await;
            }
        }
    }

    /// The reason, if the endpoint is already lost.
    #[must_use]
    pub fn lost_now(&self) -> Option<String> {
        self.lifeline.as_ref().and_then(|rx| rx.borrow().clone())
    }

    /// Release what the guard holds and say what that did; the platform record comes back
    /// updated by the release (or as it was).
    pub async fn release(mut self) -> Released {
        let platform = self.platform.take();
        let mut released = match self.held.take() {
            Some(held) => held.release().await,
            None => Released::default(),
        };
        if released.platform.is_none() {
            released.platform = platform;
        }
        released
    }
}

impl fmt::Debug for EndpointGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointGuard")
            .field("endpoint", &self.endpoint)
            .field("holds", &self.held.is_some())
            .field("platform", &self.platform.as_ref().map(|p| &p.handle))
            .finish_non_exhaustive()
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
/// A platform target needs a tunnel: it fails with a `Connect` error here (the platform's
/// provider is [`crate::platform::TunnelEndpoints`]).
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
            match target {
                DatabaseTarget::Url(t) => Ok(Arc::new(EndpointGuard::direct(
                    t.engine.endpoint(&t.url, &self.defaults),
                ))),
                DatabaseTarget::Platform(t) => Err(EngineError::new(
                    ErrorKind::Connect,
                    format!("{} is reached through a platform tunnel", t.describe()),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::EngineKind;
    use crate::settings::UrlTarget;
    use exporter_contract::DatabaseUrl;

    #[tokio::test]
    async fn a_url_target_is_its_own_endpoint() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db.internal:5432/billing").unwrap();
        let target = DatabaseTarget::Url(UrlTarget {
            name: "billing".into(),
            url: url.clone(),
            engine: EngineKind::Postgres,
        });
        let guard = UrlEndpoints::default().open(&target).await.unwrap();
        assert_eq!(guard.endpoint().url(), &url);
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
        let target = |url: &str| {
            DatabaseTarget::Url(UrlTarget {
                name: "billing".into(),
                url: DatabaseUrl::parse(url).unwrap(),
                engine: EngineKind::for_scheme(url.split(':').next().unwrap()).unwrap(),
            })
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
