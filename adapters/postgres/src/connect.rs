//! Connecting, the fixed session, and classifying server errors into [`EngineError`]s.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use exporter_contract::{DatabaseUrl, Endpoint, EngineError, ErrorKind, TlsInfo};
use exporter_tls::{
    Connector, Handshake, Identity, Roots, TlsError, TlsOptions, Verify, Vocabulary,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, NoTlsStream, TlsConnect};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Socket};

/// `application_name` of every connection we open: lets an operator (and our tests) find the
/// exporter's backends in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "exporter";

/// Session settings that make `COPY ... TO STDOUT` output exact and portable, so the script,
/// the dump-side fingerprint and a restore-side fingerprint all see the same text.
///
/// - `client_encoding UTF8`: the script is UTF-8 whatever the server encoding.
/// - `DateStyle ISO`, `IntervalStyle postgres`, `TimeZone UTC`: date/time text is unambiguous
///   and independent of the server's configuration
///   (<https://www.postgresql.org/docs/current/runtime-config-client.html>).
/// - `extra_float_digits 3`: floats print with full precision (shortest exact round trip).
/// - `bytea_output hex`: one canonical text form of bytea.
/// - `row_security off`: a policy that would hide rows makes the query fail with an error
///   instead of silently returning fewer rows (design.md section 5, principle 3).
/// - `search_path ''`: every `pg_get_*def` and `format_type` output is schema-qualified.
/// - no statement / lock / idle timeouts: a large table may take hours.
/// - `jit off`, as pg_dump sets it (`setup_connection` in `src/bin/pg_dump/pg_dump.c`): the
///   catalog queries' set-returning functions and recursive CTEs get planner estimates far above
///   `jit_above_cost`, and compiling one such query took 3 to 4 s of server CPU on a dump whose
///   own queries run in milliseconds (PostgreSQL's log, `log_min_duration_statement = 0`).
pub const SESSION_SETTINGS: &str = "SET client_encoding = 'UTF8'; \
SET jit = off; \
SET DateStyle = 'ISO'; \
SET IntervalStyle = 'postgres'; \
SET extra_float_digits = 3; \
SET TimeZone = 'UTC'; \
SET bytea_output = 'hex'; \
SET row_security = off; \
SET statement_timeout = 0; \
SET lock_timeout = 0; \
SET idle_in_transaction_session_timeout = 0; \
SELECT pg_catalog.set_config('search_path', '', false);";

/// The snapshot: one repeatable-read, read-only transaction. Not `DEFERRABLE`, which may block
/// for a long time on a busy server.
pub const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// An open connection: the client plus the task that drives the socket.
pub struct Conn {
    /// The client.
    pub client: Client,
    /// The connection task; its result carries the server's last word (e.g. `FATAL: terminating
    /// connection due to administrator command`) when the connection dies.
    pub driver: Option<JoinHandle<Result<(), tokio_postgres::Error>>>,
    /// The redacted endpoint, for error objects.
    pub endpoint: String,
    /// Transport security of this connection.
    pub tls: TlsInfo,
}

impl Conn {
    /// Map a failed client call to an [`EngineError`]; if the connection is gone, prefer the
    /// connection task's own error, which says why (e.g. SQLSTATE 57P01).
    pub async fn error(&mut self, e: tokio_postgres::Error, object: &str) -> EngineError {
        if e.is_closed()
            && let Some(mut driver) = self.driver.take()
        {
            match tokio::time::timeout(Duration::from_millis(500), &mut driver).await {
                Ok(Ok(Err(cause))) => {
                    return classify(&cause, Phase::Query).with_object(object.to_owned());
                }
                Ok(_) => {}
                Err(_) => self.driver = Some(driver),
            }
        }
        classify(&e, Phase::Query).with_object(object.to_owned())
    }
}

impl Conn {
    /// Resolves when the connection task ends (the server closed the connection or it
    /// failed), with the classified reason; pending forever while the connection lives, or
    /// when its task was already consumed by [`Conn::error`]. Lets a caller that waits on
    /// other work notice that this connection — and with it the snapshot's locks — is gone.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future leaves the connection task in place.
    pub async fn lost(&mut self) -> EngineError {
        let Some(driver) = self.driver.as_mut() else {
            return std::future::pending().await;
        };
        let joined = driver.await;
        self.driver = None;
        match joined {
            Ok(Err(cause)) => classify(&cause, Phase::Query),
            Ok(Ok(())) => EngineError::new(
                ErrorKind::Protocol,
                "the server closed the connection of the snapshot",
            )
            .retryable(true),
            Err(e) => EngineError::new(
                ErrorKind::Protocol,
                format!("the connection task of the snapshot stopped: {e}"),
            ),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Closing the socket makes the server abandon what it does for us when it next reads
        // or writes the socket (a `COPY TO` at once), or, for a statement that does neither for
        // long, at its next `client_connection_check_interval` check (restore sessions set it).
        if let Some(driver) = &self.driver {
            driver.abort();
        }
    }
}

/// When an error happened: while connecting, or on an established session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Establishing the connection (network errors mean "unreachable").
    Connect,
    /// On an established connection (network errors mean "connection lost").
    Query,
}

/// libpq's `sslmode` (<https://www.postgresql.org/docs/current/libpq-ssl.html#LIBPQ-SSL-PROTECTION>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// Clear text first; TLS if the server refuses that.
    Allow,
    /// TLS if the server offers it, else clear text (libpq's default).
    Prefer,
    /// TLS; the certificate is checked only if a root certificate is available (then as
    /// `verify-ca`, like libpq).
    Require,
    /// TLS, certificate chain checked.
    VerifyCa,
    /// TLS, certificate chain and host name checked.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    /// libpq's word for the mode.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// Whether the connection must be encrypted.
    #[must_use]
    pub fn requires_tls(self) -> bool {
        matches!(self, Self::Require | Self::VerifyCa | Self::VerifyFull)
    }
}

/// libpq's TLS parameters in our messages and hints.
pub const VOCABULARY: Vocabulary = Vocabulary {
    ca: "sslrootcert=FILE (or sslrootcert=system)",
    chain_only: Some(
        "sslmode=verify-ca and sslrootcert=FILE (the CA certificate; libpq allows the system CAs only with verify-full)",
    ),
    no_verify: "sslmode=require",
    tls_on: "sslmode=require (or verify-full with sslrootcert=FILE)",
    client_cert: "sslcert=FILE&sslkey=FILE",
};

/// The URL parameters this adapter reads, and the environment variables (libpq's) the core
/// may pass as their defaults with [`Endpoint::with_default_param`].
pub const ENV_PARAMS: &[(&str, &str)] = &[
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGSSLSNI", "sslsni"),
];

/// The resolved TLS plan of an endpoint: the mode and, unless `disable`, what a TLS session
/// must check. Pure: files are read when the [`Connector`] is built, at the first connection.
#[derive(Debug, Clone)]
pub struct TlsPlan {
    /// The effective `sslmode`.
    pub mode: SslMode,
    /// What the handshake must do (`None` for `disable`).
    pub options: Option<TlsOptions>,
}

/// Everything needed to open connections to one endpoint: the driver configuration (socket
/// to the endpoint's dial address), the TLS plan, and the TLS client configuration built
/// once and shared by every connection (snapshot, workers, raw COPY readers). Cheap to clone.
#[derive(Clone)]
pub struct Link(Arc<LinkInner>);

struct LinkInner {
    endpoint: Endpoint,
    redacted: String,
    cfg: Config,
    tls: TlsPlan,
    connector: OnceLock<Connector>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("endpoint", &self.0.redacted)
            .field("sslmode", &self.0.tls.mode)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Resolve `endpoint` without I/O: URL parts, parameters (the URL's, else the endpoint's
    /// defaults), the TLS plan.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] for another scheme, an unknown parameter or value, a client
    /// certificate without its key, or a verifying mode without a root certificate.
    pub fn new(endpoint: &Endpoint) -> Result<Self, EngineError> {
        let (cfg, tls) = config(endpoint)?;
        Ok(Self(Arc::new(LinkInner {
            endpoint: endpoint.clone(),
            redacted: endpoint.redacted(),
            cfg,
            tls,
            connector: OnceLock::new(),
        })))
    }

    /// The same server and settings, database `name` (scratch databases).
    ///
    /// # Errors
    ///
    /// As [`Link::new`].
    pub fn for_database(&self, name: &str) -> Result<Self, EngineError> {
        let mut url = self.0.endpoint.url().expose().clone();
        url.set_path(&format!("/{name}"));
        let url = DatabaseUrl::parse(url.as_str()).map_err(|e| {
            EngineError::new(ErrorKind::Unsupported, e.to_string())
                .with_object(self.0.redacted.clone())
        })?;
        Self::new(&self.0.endpoint.with_url(url))
    }

    /// The endpoint.
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint {
        &self.0.endpoint
    }

    /// The redacted endpoint, for error objects.
    #[must_use]
    pub fn redacted(&self) -> &str {
        &self.0.redacted
    }

    /// The driver configuration (host and port are the dial address).
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.0.cfg
    }

    /// The TLS plan.
    #[must_use]
    pub fn tls(&self) -> &TlsPlan {
        &self.0.tls
    }

    /// The TLS client configuration, built at the first call (reads the certificate files).
    ///
    /// # Errors
    ///
    /// A file that cannot be read or holds no certificate or key ([`ErrorKind::Config`]),
    /// named.
    pub fn connector(&self) -> Result<Connector, EngineError> {
        if let Some(c) = self.0.connector.get() {
            return Ok(c.clone());
        }
        let options = self.0.tls.options.as_ref().ok_or_else(|| {
            EngineError::new(ErrorKind::Unsupported, "sslmode=disable: no TLS")
                .with_object(self.0.redacted.clone())
        })?;
        let built = Connector::new(options)
            .map_err(|e| EngineError::from(e).with_object(self.0.redacted.clone()))?;
        Ok(self.0.connector.get_or_init(|| built).clone())
    }

    /// The manifest record of a clear-text connection under this link's mode.
    #[must_use]
    pub fn plaintext_info(&self) -> TlsInfo {
        TlsInfo::plaintext(self.0.tls.mode.as_str())
    }
}

/// Build a `tokio_postgres::Config` and the TLS plan from the endpoint. No I/O.
///
/// # Errors
///
/// [`ErrorKind::Config`] for a scheme other than `postgres`/`postgresql`, an unknown
/// parameter or value, and TLS settings that cannot work (see [`Link::new`]).
pub fn config(endpoint: &Endpoint) -> Result<(Config, TlsPlan), EngineError> {
    let url = endpoint.url();
    let redacted = endpoint.redacted();
    let unsupported =
        |msg: String| EngineError::new(ErrorKind::Config, msg).with_object(redacted.clone());
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(unsupported(format!(
            "URL scheme {:?} is not PostgreSQL",
            url.scheme()
        )));
    }
    let mut cfg = Config::new();
    cfg.host(endpoint.connect_host());
    cfg.port(endpoint.connect_port(5432));
    cfg.user(url.username().as_deref().unwrap_or("postgres"));
    if let Some(password) = url.password() {
        cfg.password(password);
    }
    cfg.dbname(url.database().as_deref().unwrap_or("postgres"));
    cfg.application_name(APPLICATION_NAME);
    cfg.connect_timeout(Duration::from_secs(30));
    cfg.ssl_mode(tokio_postgres::config::SslMode::Disable);
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "connect_timeout" => {
                let secs: u64 = value.parse().map_err(|_| {
                    unsupported(format!(
                        "connect_timeout must be whole seconds, got {value:?}"
                    ))
                })?;
                if secs > 0 {
                    cfg.connect_timeout(Duration::from_secs(secs));
                }
            }
            // TLS parameters: read below through `Endpoint::param`, so that the core's
            // defaults (PGSSLMODE, …) apply when the URL does not set them.
            "sslmode" | "sslrootcert" | "sslcert" | "sslkey" | "sslsni" | "application_name" => {}
            // libpq would honour these (and dbname/host/port/user would silently dump
            // another database than the URL's path names); refuse rather than ignore.
            other => {
                return Err(unsupported(format!(
                    "URL parameter {other:?} is not supported (supported: sslmode, \
                     sslrootcert, sslcert, sslkey, sslsni, connect_timeout, application_name); \
                     put host, port, user and database in the URL itself"
                )));
            }
        }
    }
    let tls = tls_plan(endpoint).map_err(unsupported)?;
    Ok((cfg, tls))
}

/// libpq's rules, from the parameters (URL first, then the core's defaults):
///
/// - `sslmode` defaults to `prefer`, or to `verify-full` with `sslrootcert=system`, which
///   refuses weaker modes (libpq 16, "sslrootcert": "system" makes `verify-full` the default
///   and a weaker mode an error, so the system's CAs never vouch for an unchecked name).
/// - Roots: `sslrootcert` (a file or `system`), else the endpoint's inline CA (the
///   platform's per-environment CA). libpq's fallback `~/.postgresql/root.crt` is not read.
/// - `verify-ca`/`verify-full` without roots is an error, as in libpq; `require`, `prefer`
///   and `allow` check the chain whenever roots are available (libpq: "if a root CA file
///   exists, sslmode=require behaves like verify-ca").
/// - `sslcert`/`sslkey` together or not at all; `sslsni` 1 (default) or 0.
fn tls_plan(endpoint: &Endpoint) -> Result<TlsPlan, String> {
    let root_param = endpoint.param("sslrootcert").filter(|v| !v.is_empty());
    let system = root_param.as_deref() == Some("system");
    let mode = match endpoint.param("sslmode") {
        Some(value) => SslMode::parse(&value).ok_or_else(|| {
            format!(
                "unknown sslmode {value:?} (libpq's: disable, allow, prefer, require, \
                 verify-ca, verify-full)"
            )
        })?,
        None if system => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if system && mode != SslMode::VerifyFull {
        return Err(format!(
            "sslrootcert=system needs sslmode=verify-full (libpq refuses sslmode={} with the \
             system's CAs: any public CA could vouch for an unchecked name)",
            mode.as_str()
        ));
    }
    if mode == SslMode::Disable {
        return Ok(TlsPlan {
            mode,
            options: None,
        });
    }
    let roots = match root_param {
        Some(v) if v == "system" => Some(Roots::System),
        Some(path) => Some(Roots::File(path.into())),
        None => endpoint.ca_pem().map(|pem| Roots::Pem {
            pem: pem.into(),
            origin: "the CA certificate given with the endpoint".to_owned(),
        }),
    };
    let verify = match (mode, &roots) {
        (SslMode::VerifyFull, Some(_)) => Verify::Full,
        (SslMode::VerifyCa | SslMode::Require | SslMode::Prefer | SslMode::Allow, Some(_)) => {
            Verify::Chain
        }
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            return Err(format!(
                "sslmode={} checks the server's certificate and needs the CA that signed it: \
                 sslrootcert=FILE, or sslrootcert=system for the system's trusted CAs",
                mode.as_str()
            ));
        }
        _ => Verify::None,
    };
    let identity = match (endpoint.param("sslcert"), endpoint.param("sslkey")) {
        (Some(cert), Some(key)) if !cert.is_empty() && !key.is_empty() => Some(Identity {
            cert: cert.into(),
            key: key.into(),
        }),
        (None, None) => None,
        _ => {
            return Err("a client certificate needs both sslcert=FILE and sslkey=FILE".to_owned());
        }
    };
    let sni = match endpoint.param("sslsni").as_deref() {
        None | Some("1") => true,
        Some("0") => false,
        Some(other) => return Err(format!("sslsni must be 0 or 1, got {other:?}")),
    };
    Ok(TlsPlan {
        mode,
        options: Some(TlsOptions {
            verify,
            roots,
            identity,
            server_name: endpoint.url().host().to_owned(),
            sni,
            vocabulary: VOCABULARY,
        }),
    })
}

/// A tokio-postgres connection over clear text or TLS; drive it (it is a future) or poll its
/// messages ([`Connection::poll_message`]).
pub enum Connection {
    /// Clear text (boxed like the other, so the enum stays small).
    Plain(Box<tokio_postgres::Connection<Socket, NoTlsStream>>),
    /// TLS through [`exporter_tls`] (boxed: the TLS session state is large).
    Tls(Box<tokio_postgres::Connection<Socket, RustlsStream>>),
}

impl Connection {
    /// Poll for the server's next asynchronous message (notices); see
    /// [`tokio_postgres::Connection::poll_message`].
    pub fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<AsyncMessage, tokio_postgres::Error>>> {
        match self {
            Self::Plain(c) => c.poll_message(cx),
            Self::Tls(c) => c.poll_message(cx),
        }
    }
}

impl Future for Connection {
    type Output = Result<(), tokio_postgres::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Plain(c) => Pin::new(c.as_mut()).poll(cx),
            Self::Tls(c) => Pin::new(c.as_mut()).poll(cx),
        }
    }
}

/// A TLS stream for tokio-postgres.
pub struct RustlsStream(exporter_tls::TlsStream<Socket>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl tokio_postgres::tls::TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM channel binding (tls-server-end-point) would need the hash algorithm of the
        // certificate's signature; without it SCRAM-SHA-256 runs without binding, as over a
        // libpq connection with channel_binding=prefer and no binding support.
        ChannelBinding::none()
    }
}

/// tokio-postgres's TLS hook: hands the socket to [`Connector::connect`] after the server
/// accepted the `SSLRequest`, and keeps the handshake's facts for the manifest.
#[derive(Clone)]
struct MakeRustls {
    connector: Connector,
    handshake: Arc<Mutex<Option<Handshake>>>,
}

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type TlsConnect = MakeRustls;
    type Error = TlsError;

    // The domain tokio-postgres passes is the dial host; the name to verify is the URL's
    // host, which the connector already carries (libpq's `host` + `hostaddr`).
    fn make_tls_connect(&mut self, _domain: &str) -> Result<Self, TlsError> {
        Ok(self.clone())
    }
}

impl TlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream, TlsError>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let (tls, handshake) = self.connector.connect(stream).await?;
            if let Ok(mut slot) = self.handshake.lock() {
                *slot = Some(handshake);
            }
            Ok(RustlsStream(tls))
        })
    }
}

/// Open a connection as the link's `sslmode` says and report its TLS facts. The connection
/// is not driven yet: spawn it, or poll its messages.
///
/// # Errors
///
/// Classified per [`classify`]; TLS failures in words ([`exporter_tls::TlsError`]) with a
/// hint; a clear-text connection the server refuses for want of encryption gets a hint
/// naming `sslmode`. The object is the redacted endpoint.
pub async fn establish(link: &Link) -> Result<(Client, Connection, TlsInfo), EngineError> {
    let endpoint = link.redacted().to_owned();
    let with = |e: EngineError| e.with_object(endpoint.clone());
    let mode = link.tls().mode;
    let plain = |cfg: &Config| {
        let mut cfg = cfg.clone();
        cfg.ssl_mode(tokio_postgres::config::SslMode::Disable);
        async move {
            cfg.connect(NoTls)
                .await
                .map(|(client, conn)| (client, Connection::Plain(Box::new(conn))))
        }
    };
    match mode {
        SslMode::Disable => {
            let (client, conn) = plain(link.config())
                .await
                .map_err(|e| with(classify_connect(&e, None, mode)))?;
            Ok((client, conn, link.plaintext_info()))
        }
        SslMode::Allow => match plain(link.config()).await {
            Ok((client, conn)) => Ok((client, conn, link.plaintext_info())),
            // libpq's allow: "first try a non-SSL connection; if that fails, try an SSL
            // connection" — after a refusal by the server, not after a network error.
            Err(e) if e.as_db_error().is_some() => {
                tracing::debug!(error = %e, "sslmode=allow: clear text refused, trying TLS");
                with_tls(link, tokio_postgres::config::SslMode::Require)
                    .await
                    .map_err(with)
            }
            Err(e) => Err(with(classify_connect(&e, None, mode))),
        },
        SslMode::Prefer => with_tls(link, tokio_postgres::config::SslMode::Prefer)
            .await
            .map_err(with),
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            with_tls(link, tokio_postgres::config::SslMode::Require)
                .await
                .map_err(with)
        }
    }
}

async fn with_tls(
    link: &Link,
    driver_mode: tokio_postgres::config::SslMode,
) -> Result<(Client, Connection, TlsInfo), EngineError> {
    let connector = link.connector()?;
    let make = MakeRustls {
        connector: connector.clone(),
        handshake: Arc::new(Mutex::new(None)),
    };
    let mut cfg = link.config().clone();
    cfg.ssl_mode(driver_mode);
    let mode = link.tls().mode;
    match cfg.connect(make.clone()).await {
        Ok((client, conn)) => {
            let handshake = make.handshake.lock().ok().and_then(|mut h| h.take());
            let info = match handshake {
                Some(h) => connector.info(mode.as_str(), &h),
                // `prefer` and a server that answered `N`.
                None => link.plaintext_info(),
            };
            Ok((client, Connection::Tls(Box::new(conn)), info))
        }
        Err(e) => Err(classify_connect(&e, Some(&connector), mode)),
    }
}

/// Classify a failed connection attempt: TLS failures first (a [`TlsError`] from the
/// handshake, an alert read after it, the server's "no" to `SSLRequest`), then as
/// [`classify`] does, adding the `sslmode` hint when the server refuses clear text.
fn classify_connect(
    e: &tokio_postgres::Error,
    connector: Option<&Connector>,
    mode: SslMode,
) -> EngineError {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(tls) = c.downcast_ref::<TlsError>() {
            return EngineError::from(tls.clone());
        }
        if let (Some(io), Some(connector)) = (c.downcast_ref::<std::io::Error>(), connector)
            && Connector::is_tls_failure(io)
        {
            return EngineError::from(connector.explain_io(io, false));
        }
        if c.to_string() == "server does not support TLS" {
            return EngineError::from(exporter_tls::not_offered(
                &VOCABULARY,
                &format!("sslmode={}", mode.as_str()),
            ));
        }
        cause = c.source();
    }
    let err = classify(e, Phase::Connect);
    match e.as_db_error() {
        Some(db) if refuses_clear_text(db.code().code(), db.message()) => err.with_hint(format!(
            "the server accepts this connection only over TLS (sslmode={} did not encrypt): \
             use sslmode=require, or verify-full with sslrootcert=FILE",
            mode.as_str()
        )),
        _ => err,
    }
}

/// Whether a server error at connection time says the connection must be encrypted: a
/// `pg_hba.conf` with only `hostssl` lines answers a clear-text connection with SQLSTATE
/// 28000 `no pg_hba.conf entry for host "…", user "…", database "…", no encryption`
/// (<https://www.postgresql.org/docs/current/auth-pg-hba-conf.html>).
#[must_use]
pub fn refuses_clear_text(code: &str, message: &str) -> bool {
    code == "28000" && message.ends_with("no encryption")
}

/// [`refuses_clear_text`] for a classified message (`… no encryption (SQLSTATE 28000)`), as
/// the raw COPY reader reports it.
#[must_use]
pub fn refuses_clear_text_message(message: &str) -> bool {
    message.contains("no encryption (SQLSTATE 28000)")
}

/// Connect and apply [`SESSION_SETTINGS`].
///
/// # Errors
///
/// As [`establish`]; then session errors, classified; the object is the redacted endpoint.
pub async fn connect(link: &Link) -> Result<Conn, EngineError> {
    let (client, connection, tls) = establish(link).await?;
    let driver = tokio::spawn(connection);
    let mut conn = Conn {
        client,
        driver: Some(driver),
        endpoint: link.redacted().to_owned(),
        tls,
    };
    if let Err(e) = conn.client.batch_execute(SESSION_SETTINGS).await {
        let endpoint = conn.endpoint.clone();
        return Err(conn.error(e, &endpoint).await);
    }
    Ok(conn)
}

/// Classify a tokio-postgres error. Messages are the server's or the driver's text, which never
/// contain the password (it is sent only inside the authentication exchange).
#[must_use]
pub fn classify(e: &tokio_postgres::Error, phase: Phase) -> EngineError {
    if let Some(db) = e.as_db_error() {
        return classify_server(db.code().code(), db.message(), db.detail());
    }
    // The driver's own text ("error connecting to server") hides the OS cause
    // ("Connection refused"); append the source chain so users see why.
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    match phase {
        Phase::Connect => EngineError::new(ErrorKind::Connect, text).retryable(true),
        Phase::Query if e.is_closed() => EngineError::new(
            ErrorKind::Protocol,
            format!("{text}: the server closed the connection"),
        )
        .retryable(true),
        Phase::Query => EngineError::new(ErrorKind::Protocol, text).retryable(true),
    }
}

/// Classify a server `ErrorResponse` by its fields — SQLSTATE `code` (field `C`), `message`
/// (`M`) and `detail` (`D`) — exactly as [`classify`] classifies a tokio-postgres database
/// error. Used by the raw COPY reader (`copyout.rs`), which parses `ErrorResponse` itself.
/// SQLSTATE classes: <https://www.postgresql.org/docs/current/errcodes-appendix.html>.
#[must_use]
pub fn classify_server(code: &str, message: &str, detail: Option<&str>) -> EngineError {
    let state = SqlState::from_code(code);
    let message = format!("{message} (SQLSTATE {code})");
    let (kind, retryable) = if state == SqlState::INVALID_PASSWORD
        || state == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    {
        (ErrorKind::Auth, false)
    } else if state == SqlState::INVALID_CATALOG_NAME || state == SqlState::UNDEFINED_TABLE {
        (ErrorKind::NotFound, false)
    } else if state == SqlState::INSUFFICIENT_PRIVILEGE {
        (ErrorKind::Permission, false)
    } else if state == SqlState::ADMIN_SHUTDOWN
        || state == SqlState::CRASH_SHUTDOWN
        || state == SqlState::CANNOT_CONNECT_NOW
    {
        (ErrorKind::Protocol, true)
    } else if state == SqlState::QUERY_CANCELED {
        (ErrorKind::Cancelled, false)
    } else if state == SqlState::T_R_SERIALIZATION_FAILURE
        || state == SqlState::T_R_DEADLOCK_DETECTED
        || state == SqlState::TOO_MANY_CONNECTIONS
    {
        (ErrorKind::Query, true)
    } else {
        (ErrorKind::Query, false)
    };
    let message = match detail {
        Some(detail) => format!("{message}; {detail}"),
        None => message,
    };
    EngineError::new(kind, message).retryable(retryable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Endpoint {
        Endpoint::new(DatabaseUrl::parse(url).unwrap())
    }

    #[test]
    fn sslmode_follows_libpq() {
        let plan = |url: &str| config(&endpoint(url)).map(|(_, t)| t);
        // Default prefer, no verification without a root certificate.
        let t = plan("postgres://h/db").unwrap();
        assert_eq!(t.mode, SslMode::Prefer);
        assert_eq!(t.options.unwrap().verify, Verify::None);
        // require with a root certificate checks the chain (libpq: "behaves like verify-ca").
        let t = plan("postgres://h/db?sslmode=require&sslrootcert=/ca.pem").unwrap();
        let o = t.options.unwrap();
        assert_eq!(o.verify, Verify::Chain);
        assert_eq!(o.roots, Some(Roots::File("/ca.pem".into())));
        let t = plan("postgres://h/db?sslmode=verify-full&sslrootcert=/ca.pem").unwrap();
        assert_eq!(t.options.unwrap().verify, Verify::Full);
        assert!(
            plan("postgres://h/db?sslmode=disable")
                .unwrap()
                .options
                .is_none()
        );
        // system: verify-full by default, weaker modes refused.
        let t = plan("postgres://h/db?sslrootcert=system").unwrap();
        assert_eq!(t.mode, SslMode::VerifyFull);
        let e = plan("postgres://h/db?sslrootcert=system&sslmode=require").unwrap_err();
        assert!(e.message().contains("verify-full"), "{e}");
        // verify-* without roots: refused before connecting, naming the parameter.
        let e = plan("postgres://u:secretpw@h/db?sslmode=verify-ca").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("sslrootcert=FILE"), "{e}");
        assert!(!e.to_string().contains("secretpw"), "{e}");
        let e = plan("postgres://h/db?sslmode=verify").unwrap_err();
        assert!(e.message().contains("unknown sslmode"), "{e}");
        let e = plan("postgres://h/db?sslcert=/c.pem").unwrap_err();
        assert!(e.message().contains("sslkey"), "{e}");
        let e = plan("postgres://h/db?sslsni=yes").unwrap_err();
        assert!(e.message().contains("sslsni"), "{e}");
    }

    #[test]
    fn environment_defaults_and_inline_ca() {
        let e = endpoint("postgres://db.example/app")
            .with_default_param("sslmode", "verify-ca")
            .with_ca_pem("-----BEGIN CERTIFICATE-----\n");
        let (_, t) = config(&e).unwrap();
        assert_eq!(t.mode, SslMode::VerifyCa);
        let o = t.options.unwrap();
        assert_eq!(o.verify, Verify::Chain);
        assert!(matches!(o.roots, Some(Roots::Pem { .. })));
        // The URL's own parameters win over the environment's, and a CA file over the inline CA.
        let e = endpoint("postgres://db.example/app?sslmode=verify-full&sslrootcert=/ca.pem")
            .with_default_param("sslmode", "disable")
            .with_ca_pem("-----BEGIN CERTIFICATE-----\n");
        let (_, t) = config(&e).unwrap();
        assert_eq!(t.mode, SslMode::VerifyFull);
        assert_eq!(
            t.options.unwrap().roots,
            Some(Roots::File("/ca.pem".into()))
        );
    }

    #[test]
    fn dial_override_opens_the_socket_elsewhere_and_verifies_the_url_host() {
        let e = endpoint("postgresql://app:p%40ss@db-1.example:5432/My%20DB?sslmode=prefer")
            .dial("127.0.0.1", 43121);
        let (cfg, t) = config(&e).unwrap();
        assert_eq!(
            cfg.get_hosts(),
            &[tokio_postgres::config::Host::Tcp("127.0.0.1".into())]
        );
        assert_eq!(cfg.get_ports(), &[43121]);
        assert_eq!(cfg.get_user(), Some("app"));
        assert_eq!(cfg.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(cfg.get_dbname(), Some("My DB"));
        assert_eq!(cfg.get_application_name(), Some(APPLICATION_NAME));
        assert_eq!(t.options.unwrap().server_name, "db-1.example");
        let e = endpoint("mysql://h/db");
        assert_eq!(config(&e).unwrap_err().kind(), ErrorKind::Config);
    }

    #[test]
    fn clear_text_refusals_are_recognised() {
        assert!(refuses_clear_text(
            "28000",
            "no pg_hba.conf entry for host \"127.0.0.1\", user \"u\", database \"d\", no encryption"
        ));
        assert!(!refuses_clear_text(
            "28000",
            "no pg_hba.conf entry for host \"127.0.0.1\", user \"u\", database \"d\", SSL encryption"
        ));
    }
}
