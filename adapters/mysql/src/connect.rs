//! Connecting, the fixed dump session, and classifying server errors into [`EngineError`]s.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use exporter_contract::{DatabaseUrl, Endpoint, EngineError, ErrorKind, TlsInfo};
use exporter_tls::{Connector, Identity, Roots, TlsOptions, Verify, Vocabulary};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row, Value};

use crate::relay;

/// `program_name` connection attribute of every connection we open, so an operator can tell
/// the exporter's sessions apart (`performance_schema.session_connect_attrs`).
pub const PROGRAM_NAME: &str = "exporter";

/// How long connecting may take before it counts as "unreachable".
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// MariaDB error codes we classify (<https://mariadb.com/kb/en/mariadb-error-codes/>).
pub(crate) mod code {
    pub const ER_CON_COUNT_ERROR: u16 = 1040;
    pub const ER_DBACCESS_DENIED_ERROR: u16 = 1044;
    pub const ER_ACCESS_DENIED_ERROR: u16 = 1045;
    pub const ER_BAD_DB_ERROR: u16 = 1049;
    pub const ER_SERVER_SHUTDOWN: u16 = 1053;
    pub const ER_NO_SUCH_TABLE: u16 = 1146;
    pub const ER_TABLEACCESS_DENIED_ERROR: u16 = 1142;
    pub const ER_COLUMNACCESS_DENIED_ERROR: u16 = 1143;
    pub const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
    pub const ER_LOCK_DEADLOCK: u16 = 1213;
    pub const ER_SPECIFIC_ACCESS_DENIED_ERROR: u16 = 1227;
    pub const ER_QUERY_INTERRUPTED: u16 = 1317;
    pub const ER_PROCACCESS_DENIED_ERROR: u16 = 1370;
    pub const ER_TABLE_DEF_CHANGED: u16 = 1412;
    pub const ER_CONNECTION_KILLED: u16 = 1927;
    pub const ER_ACCESS_DENIED_NO_PASSWORD_ERROR: u16 = 1698;
}

/// When an error happened: while connecting, or on an established session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Establishing the connection (network errors mean "unreachable").
    Connect,
    /// On an established connection (network errors mean "connection lost").
    Query,
}

/// Which server family we talk to; a few session variables differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// MariaDB (version string contains `MariaDB`).
    MariaDb,
    /// Oracle MySQL (and compatibles).
    MySql,
}

impl Flavor {
    /// Engine name as written in manifests.
    #[must_use]
    pub fn engine(self) -> &'static str {
        match self {
            Self::MariaDb => "mariadb",
            Self::MySql => "mysql",
        }
    }

    /// The flavor a `SELECT VERSION()` string belongs to.
    #[must_use]
    pub fn from_version(version: &str) -> Self {
        if version.to_ascii_lowercase().contains("mariadb") {
            Self::MariaDb
        } else {
            Self::MySql
        }
    }
}

/// MySQL Shell's `ssl-mode` (<https://dev.mysql.com/doc/refman/8.0/en/connection-options.html#option_general_ssl-mode>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disabled,
    /// TLS if the server offers it, else clear text (the default); the certificate is not
    /// checked.
    Preferred,
    /// TLS; the certificate is not checked.
    Required,
    /// TLS; the certificate chain is checked.
    VerifyCa,
    /// TLS; the chain and the host name are checked.
    VerifyIdentity,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        Some(
            match value.to_ascii_lowercase().replace('-', "_").as_str() {
                "disabled" | "disable" => Self::Disabled,
                "preferred" | "prefer" => Self::Preferred,
                "required" | "require" => Self::Required,
                "verify_ca" => Self::VerifyCa,
                "verify_identity" | "verify_full" => Self::VerifyIdentity,
                _ => return None,
            },
        )
    }

    /// The mode's name as the mysql client writes it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "DISABLED",
            Self::Preferred => "PREFERRED",
            Self::Required => "REQUIRED",
            Self::VerifyCa => "VERIFY_CA",
            Self::VerifyIdentity => "VERIFY_IDENTITY",
        }
    }
}

/// MySQL Shell's TLS parameters in messages and hints.
pub const VOCABULARY: Vocabulary = Vocabulary {
    ca: "ssl-ca=FILE",
    chain_only: Some("ssl-mode=VERIFY_CA"),
    no_verify: "ssl-mode=REQUIRED",
    tls_on: "ssl-mode=REQUIRED (or VERIFY_IDENTITY with ssl-ca=FILE)",
    client_cert: "ssl-cert=FILE&ssl-key=FILE",
};

/// The TLS plan of an endpoint.
#[derive(Debug, Clone)]
pub struct TlsPlan {
    /// The effective mode.
    pub mode: SslMode,
    /// What a TLS session must check (`None` for `DISABLED`).
    pub options: Option<TlsOptions>,
}

/// Everything needed to open connections to one endpoint: driver options (socket to the dial
/// address), the TLS plan, the TLS client built once for every connection. Cheap to clone.
#[derive(Clone)]
pub struct Link(Arc<LinkInner>);

struct LinkInner {
    endpoint: Endpoint,
    redacted: String,
    builder: OptsBuilder,
    tls: TlsPlan,
    connector: OnceLock<Connector>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("endpoint", &self.0.redacted)
            .field("ssl_mode", &self.0.tls.mode)
            .finish_non_exhaustive()
    }
}

impl Link {
    /// Resolve `endpoint` without I/O.
    ///
    /// # Errors
    ///
    /// As [`opts`].
    pub fn new(endpoint: &Endpoint) -> Result<Self, EngineError> {
        let (builder, tls) = options(endpoint)?;
        Ok(Self(Arc::new(LinkInner {
            endpoint: endpoint.clone(),
            redacted: endpoint.redacted(),
            builder,
            tls,
            connector: OnceLock::new(),
        })))
    }

    /// The same server and settings with `database` as the URL's path (empty: none).
    ///
    /// # Errors
    ///
    /// As [`Link::new`].
    pub fn with_database(&self, database: &str) -> Result<Self, EngineError> {
        let mut url = self.0.endpoint.url().expose().clone();
        url.set_path(&format!("/{database}"));
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

    /// The TLS plan.
    #[must_use]
    pub fn tls(&self) -> &TlsPlan {
        &self.0.tls
    }

    fn connector(&self) -> Result<Connector, EngineError> {
        if let Some(c) = self.0.connector.get() {
            return Ok(c.clone());
        }
        let options = self.0.tls.options.as_ref().ok_or_else(|| {
            EngineError::new(ErrorKind::Unsupported, "ssl-mode=DISABLED: no TLS")
                .with_object(self.0.redacted.clone())
        })?;
        let built = Connector::new(options)
            .map_err(|e| EngineError::from(e).with_object(self.0.redacted.clone()))?;
        Ok(self.0.connector.get_or_init(|| built).clone())
    }
}

/// Build connection options from the URL. No I/O.
///
/// # Errors
///
/// As [`Link::new`].
pub fn opts(endpoint: &Endpoint) -> Result<Opts, EngineError> {
    options(endpoint).map(|(b, _)| b.into())
}

/// Driver options and TLS plan. Parameters: MySQL Shell's URI options `ssl-mode`
/// (`DISABLED`, `PREFERRED` — the default —, `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`;
/// also spelled `sslmode` / `ssl_mode`), `ssl-ca`, `ssl-cert`, `ssl-key`.
///
/// A CA — `ssl-ca`, else the endpoint's inline CA — without an explicit `ssl-mode` means
/// `VERIFY_CA`: a CA given is a CA used. `VERIFY_CA` / `VERIFY_IDENTITY` without any CA check
/// against the system's trusted roots. `PREFERRED` and `REQUIRED` never check the
/// certificate, as with the mysql client.
///
/// # Errors
///
/// [`ErrorKind::Config`] for a scheme other than `mysql`/`mariadb`, an unknown
/// `ssl-mode`, `ssl-cert` without `ssl-key`, and any other query parameter (an option we
/// would otherwise silently ignore).
fn options(endpoint: &Endpoint) -> Result<(OptsBuilder, TlsPlan), EngineError> {
    let url = endpoint.url();
    let redacted = endpoint.redacted();
    let unsupported =
        |msg: String| EngineError::new(ErrorKind::Config, msg).with_object(redacted.clone());
    if !matches!(url.scheme(), "mysql" | "mariadb") {
        return Err(unsupported(format!(
            "URL scheme {:?} is not MySQL/MariaDB",
            url.scheme()
        )));
    }
    let (mut mode, mut ca, mut cert, mut key) = (None, None, None, None);
    for (name, value) in url.query_pairs() {
        match name.as_ref() {
            "ssl-mode" | "sslmode" | "ssl_mode" => {
                mode = Some(SslMode::parse(&value).ok_or_else(|| {
                    unsupported(format!(
                        "unknown {name} value {value:?} (DISABLED, PREFERRED, REQUIRED, \
                         VERIFY_CA, VERIFY_IDENTITY)"
                    ))
                })?);
            }
            "ssl-ca" | "ssl_ca" => ca = Some(value.into_owned()),
            "ssl-cert" | "ssl_cert" => cert = Some(value.into_owned()),
            "ssl-key" | "ssl_key" => key = Some(value.into_owned()),
            other => {
                return Err(unsupported(format!(
                    "URL parameter {other:?} is not supported (supported: ssl-mode, ssl-ca, \
                     ssl-cert, ssl-key; also spelled sslmode / ssl_mode, ssl_ca, ssl_cert, \
                     ssl_key); put host, port, user and database in the URL itself"
                )));
            }
        }
    }
    let roots = match ca {
        Some(path) => Some(Roots::File(path.into())),
        None => endpoint.ca_pem().map(|pem| Roots::Pem {
            pem: pem.into(),
            origin: "the CA certificate given with the endpoint".to_owned(),
        }),
    };
    let mode = mode.unwrap_or(if roots.is_some() {
        SslMode::VerifyCa
    } else {
        SslMode::Preferred
    });
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => Some(Identity {
            cert: cert.into(),
            key: key.into(),
        }),
        (None, None) => None,
        _ => {
            return Err(unsupported(
                "a client certificate needs both ssl-cert=FILE and ssl-key=FILE".to_owned(),
            ));
        }
    };
    let verify = match mode {
        SslMode::Disabled | SslMode::Preferred | SslMode::Required => Verify::None,
        SslMode::VerifyCa => Verify::Chain,
        SslMode::VerifyIdentity => Verify::Full,
    };
    let tls = TlsPlan {
        mode,
        options: (mode != SslMode::Disabled).then(|| TlsOptions {
            verify,
            roots: match verify {
                Verify::None => None,
                _ => Some(roots.unwrap_or(Roots::System)),
            },
            identity,
            server_name: url.host().to_owned(),
            sni: true,
            vocabulary: VOCABULARY,
        }),
    };
    let mut attrs = HashMap::new();
    attrs.insert("program_name".to_owned(), PROGRAM_NAME.to_owned());
    let builder = OptsBuilder::default()
        .ip_or_hostname(endpoint.connect_host().to_owned())
        .tcp_port(endpoint.connect_port(3306))
        .user(Some(url.username().unwrap_or_else(|| "root".to_owned())))
        .pass(url.password())
        .db_name(url.database())
        .prefer_socket(false)
        .stmt_cache_size(0)
        .connect_attributes(attrs);
    Ok((builder, tls))
}

/// An open session: the connection, its server-side id, the redacted endpoint and flavor.
pub struct Session {
    /// The connection.
    pub conn: Conn,
    /// `CONNECTION_ID()`, for `KILL` on cancellation.
    pub id: u32,
    /// How to reach the server again (for a side connection that kills this one).
    pub link: Link,
    /// Redacted endpoint, for error objects.
    pub endpoint: String,
    /// The server's `VERSION()`.
    pub version: String,
    /// Server family.
    pub flavor: Flavor,
    /// Transport security of the connection.
    pub tls: TlsInfo,
}

/// Open a `mysql_async` connection as the link's `ssl-mode` says: directly for `DISABLED`
/// and for a server that offers no TLS under `PREFERRED`, else through the TLS relay
/// ([`crate::relay`]).
async fn open_conn(link: &Link) -> Result<(Conn, TlsInfo), EngineError> {
    let plan = link.tls();
    let direct = |info: TlsInfo| async move {
        let opts: Opts = link.0.builder.clone().into();
        Conn::new(opts)
            .await
            .map(|c| (c, info))
            .map_err(|e| classify(&e, Phase::Connect).with_object(link.redacted().to_owned()))
    };
    if plan.mode == SslMode::Disabled {
        return direct(TlsInfo::plaintext(plan.mode.as_str())).await;
    }
    let connector = link.connector()?;
    let opts: Opts = link.0.builder.clone().into();
    let greeting = relay::greet(opts.ip_or_hostname(), opts.tcp_port())
        .await
        .map_err(|e| {
            EngineError::new(ErrorKind::Connect, format!("could not connect: {e}"))
                .with_object(link.redacted().to_owned())
                .retryable(true)
        })?;
    if !greeting.offers_tls() && !greeting.is_error() {
        if plan.mode == SslMode::Preferred {
            // PREFERRED: clear text with a server that has no TLS. The probe is closed before
            // authentication, and a direct connection made.
            drop(greeting);
            return direct(TlsInfo::plaintext(plan.mode.as_str())).await;
        }
        return Err(EngineError::from(exporter_tls::not_offered(
            &VOCABULARY,
            &format!("ssl-mode={}", plan.mode.as_str()),
        ))
        .with_object(link.redacted().to_owned()));
    }
    let relay = relay::relay(greeting, connector.clone())
        .map_err(|e| e.with_object(link.redacted().to_owned()))?;
    let opts: Opts = link
        .0
        .builder
        .clone()
        .socket(Some(relay.socket.clone()))
        .into();
    let connected = Conn::new(opts).await;
    let handshake = relay.handshake.await;
    match (connected, handshake) {
        (Ok(conn), Ok(Ok(h))) => Ok((conn, connector.info(plan.mode.as_str(), &h))),
        // The TLS failure says why the client's connection ended.
        (_, Ok(Err(e))) => Err(e.with_object(link.redacted().to_owned())),
        (Err(e), _) => Err(classify(&e, Phase::Connect).with_object(link.redacted().to_owned())),
        (Ok(_), Err(_)) => Err(EngineError::new(
            ErrorKind::Protocol,
            "the TLS relay stopped without a word",
        )
        .with_object(link.redacted().to_owned())),
    }
}

/// Connect and read the server version.
///
/// # Errors
///
/// Classified [`EngineError`]s (`Connect`, `Auth`, `NotFound`, `Permission`, `Unsupported`),
/// with the redacted endpoint as object; never the password. TLS failures name their cause.
pub async fn connect(link: &Link) -> Result<Session, EngineError> {
    let endpoint = link.redacted().to_owned();
    let (mut conn, tls) = match tokio::time::timeout(CONNECT_TIMEOUT, open_conn(link)).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return Err(with_clear_text_hint(e, link).await),
        Err(_) => {
            return Err(EngineError::new(
                ErrorKind::Connect,
                format!("could not connect within {}s", CONNECT_TIMEOUT.as_secs()),
            )
            .with_object(endpoint)
            .retryable(true));
        }
    };
    let id = conn.id();
    let version: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| classify(&e, Phase::Query).with_object(endpoint.clone()))?;
    let version = version.unwrap_or_default();
    let flavor = Flavor::from_version(&version);
    Ok(Session {
        conn,
        id,
        link: link.clone(),
        endpoint,
        version,
        flavor,
        tls,
    })
}

/// A server that refuses clear-text connections gets a hint naming `ssl-mode`: MySQL says
/// so (error 3159, "Connections using insecure transport are prohibited while
/// --require_secure_transport=ON"); MariaDB 10.11 answers "Access denied" (1045) instead, so
/// after an authentication failure without TLS the greeting is read once more to see whether
/// the server offers TLS.
async fn with_clear_text_hint(e: EngineError, link: &Link) -> EngineError {
    let mode = link.tls().mode;
    let hint = |e: EngineError| {
        e.with_hint(format!(
            "the server may accept encrypted connections only (MySQL's and MariaDB's \
             require_secure_transport) and ssl-mode={} did not encrypt: use ssl-mode=REQUIRED, \
             or VERIFY_IDENTITY with ssl-ca=FILE",
            mode.as_str()
        ))
    };
    if e.message().contains("insecure transport") {
        return hint(e);
    }
    if mode == SslMode::Disabled && e.kind() == ErrorKind::Auth {
        let opts: Opts = link.0.builder.clone().into();
        let probe = tokio::time::timeout(
            Duration::from_secs(5),
            relay::greet(opts.ip_or_hostname(), opts.tcp_port()),
        )
        .await;
        if let Ok(Ok(greeting)) = probe
            && greeting.offers_tls()
        {
            return hint(e);
        }
    }
    e
}

/// Session settings of the dump (and fingerprint) connection, and why:
///
/// - `REPEATABLE READ`: the isolation of the snapshot (`START TRANSACTION WITH CONSISTENT
///   SNAPSHOT` only gives a snapshot at this level).
/// - `time_zone '+00:00'`: TIMESTAMP values are read in UTC; the script sets the same zone,
///   so they are written back to the same instant.
/// - `NAMES utf8mb4 COLLATE utf8mb4_bin`: our queries and identifiers travel as UTF-8.
/// - `character_set_results binary`: result values are sent **unconverted**, as the bytes
///   stored in the column's own character set; nothing goes through a lossy conversion.
/// - `sql_mode ''`: `SHOW CREATE` output with backtick quoting and no mode-specific
///   rewriting, and odd stored values (zero dates) read without errors.
/// - `sql_quote_show_create 1`: every identifier in `SHOW CREATE` output is quoted.
/// - long `net_write_timeout` / `net_read_timeout` / `wait_timeout`: the consumer applies
///   backpressure (compression, uploads); the server must not give up on a slow reader.
/// - no statement time limit (`max_statement_time` / `max_execution_time`).
#[must_use]
pub fn session_settings(flavor: Flavor) -> Vec<&'static str> {
    let mut s = vec![
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "SET SESSION time_zone = '+00:00'",
        "SET NAMES utf8mb4 COLLATE utf8mb4_bin",
        "SET SESSION character_set_results = binary",
        "SET SESSION sql_mode = ''",
        "SET SESSION sql_quote_show_create = 1",
        "SET SESSION net_write_timeout = 86400, SESSION net_read_timeout = 86400, SESSION wait_timeout = 86400",
    ];
    s.push(match flavor {
        Flavor::MariaDb => "SET SESSION max_statement_time = 0",
        Flavor::MySql => "SET SESSION max_execution_time = 0",
    });
    s
}

/// The snapshot: a consistent-read, read-only transaction.
pub const BEGIN_SNAPSHOT: &str = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";

impl Session {
    /// Apply [`session_settings`].
    ///
    /// # Errors
    ///
    /// A classified [`EngineError`] naming the endpoint.
    pub async fn configure(&mut self) -> Result<(), EngineError> {
        for stmt in session_settings(self.flavor) {
            self.exec_drop(stmt, None).await?;
        }
        Ok(())
    }

    /// Run a statement without results; errors name `object` (or the endpoint).
    ///
    /// # Errors
    ///
    /// A classified [`EngineError`].
    pub async fn exec_drop(&mut self, sql: &str, object: Option<&str>) -> Result<(), EngineError> {
        match self.conn.query_drop(sql).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.error(&e, object)),
        }
    }

    /// Run a text-protocol query and collect its (small) result.
    ///
    /// # Errors
    ///
    /// A classified [`EngineError`].
    pub async fn rows(&mut self, sql: &str, object: Option<&str>) -> Result<Vec<Row>, EngineError> {
        match self.conn.query::<Row, _>(sql).await {
            Ok(rows) => Ok(rows),
            Err(e) => Err(self.error(&e, object)),
        }
    }

    /// Classify a failed call on this session.
    #[must_use]
    pub fn error(&self, e: &mysql_async::Error, object: Option<&str>) -> EngineError {
        let object = object.map_or_else(|| self.endpoint.clone(), ToOwned::to_owned);
        classify(e, Phase::Query).with_object(object)
    }
}

/// Best effort: kill connection `id` from a side connection (through the same link, so
/// with the same TLS), so the server stops sending a result nobody reads (dropping a
/// `mysql_async::Conn` with a pending result would otherwise read the rest of it before
/// closing).
pub async fn kill(link: &Link, id: u32) {
    let work = async {
        let (mut side, _) = open_conn(link).await?;
        let r = side.query_drop(format!("KILL CONNECTION {id}")).await;
        let _ = side.disconnect().await;
        r.map_err(|e| classify(&e, Phase::Query))
    };
    if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(10), work).await {
        tracing::debug!(error = %e, id, "could not kill the dump connection");
    }
}

/// Map a `mysql_async` error to an [`EngineError`] (without object).
#[must_use]
pub fn classify(e: &mysql_async::Error, phase: Phase) -> EngineError {
    use mysql_async::{DriverError, Error};
    match e {
        Error::Server(s) => {
            let message = format!("ERROR {} ({}): {}", s.code, s.state, s.message);
            let (kind, retry) = match s.code {
                code::ER_ACCESS_DENIED_ERROR | code::ER_ACCESS_DENIED_NO_PASSWORD_ERROR => {
                    (ErrorKind::Auth, false)
                }
                code::ER_BAD_DB_ERROR | code::ER_NO_SUCH_TABLE => (ErrorKind::NotFound, false),
                code::ER_DBACCESS_DENIED_ERROR
                | code::ER_TABLEACCESS_DENIED_ERROR
                | code::ER_COLUMNACCESS_DENIED_ERROR
                | code::ER_SPECIFIC_ACCESS_DENIED_ERROR
                | code::ER_PROCACCESS_DENIED_ERROR => (ErrorKind::Permission, false),
                code::ER_CON_COUNT_ERROR => (ErrorKind::Connect, true),
                code::ER_CONNECTION_KILLED
                | code::ER_QUERY_INTERRUPTED
                | code::ER_SERVER_SHUTDOWN => (ErrorKind::Cancelled, true),
                code::ER_LOCK_WAIT_TIMEOUT | code::ER_TABLE_DEF_CHANGED => (ErrorKind::Query, true),
                _ => (ErrorKind::Query, false),
            };
            EngineError::new(kind, message).retryable(retry)
        }
        Error::Io(io) => match phase {
            Phase::Connect => {
                EngineError::new(ErrorKind::Connect, format!("could not connect: {io}"))
                    .retryable(true)
            }
            Phase::Query => EngineError::new(ErrorKind::Protocol, format!("connection lost: {io}"))
                .retryable(true),
        },
        Error::Driver(DriverError::ConnectionClosed) => {
            EngineError::new(ErrorKind::Protocol, "the server closed the connection")
                .retryable(true)
        }
        Error::Driver(d) => {
            let kind = if phase == Phase::Connect {
                ErrorKind::Connect
            } else {
                ErrorKind::Protocol
            };
            EngineError::new(kind, format!("driver error: {d}")).retryable(phase == Phase::Connect)
        }
        Error::Url(_) => EngineError::new(ErrorKind::Unsupported, "invalid connection options"),
        Error::Other(o) => EngineError::new(ErrorKind::Protocol, o.to_string()),
    }
}

/// A cause for the error chain: the driver's message, which never contains the password (we
/// never hand the driver a URL, only split options; `mysql_async` errors quote server messages
/// and I/O errors only).
#[derive(Debug)]
pub struct Redacted(String);

impl Redacted {
    /// Capture the driver error's text.
    #[must_use]
    pub fn of(e: &mysql_async::Error) -> Self {
        Self(e.to_string())
    }
}

impl std::fmt::Display for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Redacted {}

/// A result cell as UTF-8 text (`None` for SQL NULL). Catalog text arrives as raw bytes
/// (`character_set_results = binary`) in the server's system character set, UTF-8.
///
/// # Errors
///
/// [`ErrorKind::Protocol`] if the cell is not valid UTF-8.
pub fn text(row: &Row, idx: usize) -> Result<Option<String>, EngineError> {
    match row.as_ref(idx) {
        None | Some(Value::NULL) => Ok(None),
        Some(Value::Bytes(b)) => String::from_utf8(b.clone())
            .map(Some)
            .map_err(|_| EngineError::new(ErrorKind::Protocol, "catalog text is not valid UTF-8")),
        Some(Value::Int(n)) => Ok(Some(n.to_string())),
        Some(Value::UInt(n)) => Ok(Some(n.to_string())),
        Some(other) => Ok(Some(other.as_sql(true))),
    }
}

/// Like [`text`], but NULL is an error naming `what`.
///
/// # Errors
///
/// [`ErrorKind::Protocol`] on NULL or invalid UTF-8.
pub fn text_req(row: &Row, idx: usize, what: &str) -> Result<String, EngineError> {
    text(row, idx)?.ok_or_else(|| {
        EngineError::new(
            ErrorKind::Protocol,
            format!("the server returned NULL for {what}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Endpoint {
        Endpoint::new(DatabaseUrl::parse(url).unwrap())
    }

    fn plan(url: &str) -> Result<TlsPlan, EngineError> {
        options(&endpoint(url)).map(|(_, t)| t)
    }

    #[test]
    fn ssl_mode_follows_the_mysql_client() {
        let t = plan("mysql://u:pw@db.example/app").unwrap();
        assert_eq!(t.mode, SslMode::Preferred);
        assert_eq!(t.options.unwrap().verify, Verify::None);
        let t = plan("mysql://db.example/app?ssl-mode=REQUIRED").unwrap();
        assert_eq!(t.options.unwrap().verify, Verify::None);
        let t = plan("mysql://db.example/app?ssl-mode=verify_identity&ssl-ca=/ca.pem").unwrap();
        let o = t.options.unwrap();
        assert_eq!(o.verify, Verify::Full);
        assert_eq!(o.roots, Some(Roots::File("/ca.pem".into())));
        assert_eq!(o.server_name, "db.example");
        // A CA without a mode means VERIFY_CA; VERIFY_* without a CA uses the system's roots.
        let t = plan("mysql://db.example/app?ssl-ca=/ca.pem").unwrap();
        assert_eq!(t.mode, SslMode::VerifyCa);
        let t = plan("mysql://db.example/app?ssl-mode=VERIFY_CA").unwrap();
        assert_eq!(t.options.unwrap().roots, Some(Roots::System));
        assert!(
            plan("mysql://db.example/app?sslmode=disabled")
                .unwrap()
                .options
                .is_none()
        );
        let e = plan("mysql://u:pw@db.example/app?ssl-mode=SOMETIMES").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("pw@"));
        let e = plan("mysql://db.example/app?ssl-cert=/c.pem").unwrap_err();
        assert!(e.message().contains("ssl-key"), "{e}");
        // The inline CA of the endpoint, and the dial override.
        let e = endpoint("mariadb://u:pw@db.example/app")
            .with_ca_pem("-----BEGIN CERTIFICATE-----\n")
            .dial("127.0.0.1", 43306);
        let (b, t) = options(&e).unwrap();
        assert_eq!(t.mode, SslMode::VerifyCa);
        assert!(matches!(t.options.unwrap().roots, Some(Roots::Pem { .. })));
        let o: Opts = b.into();
        assert_eq!((o.ip_or_hostname(), o.tcp_port()), ("127.0.0.1", 43306));
        assert_eq!(o.db_name(), Some("app"));
        assert_eq!(o.user(), Some("u"));
    }

    #[test]
    fn unknown_parameters_and_schemes_are_refused() {
        let e = endpoint("mysql://u@db.example/app?compress=true");
        let err = opts(&e).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        // Issue 16: the error lists the parameters that are supported, as PostgreSQL's does.
        assert!(
            err.message().starts_with(
                "URL parameter \"compress\" is not supported (supported: ssl-mode, ssl-ca, \
                 ssl-cert, ssl-key;"
            ),
            "{err}"
        );
        let e = endpoint("postgres://u@db.example/app");
        assert_eq!(opts(&e).unwrap_err().kind(), ErrorKind::Config);
    }

    #[test]
    fn flavor_from_version() {
        assert_eq!(
            Flavor::from_version("10.11.19-MariaDB-0+deb12u1"),
            Flavor::MariaDb
        );
        assert_eq!(Flavor::from_version("8.0.36"), Flavor::MySql);
    }
}
