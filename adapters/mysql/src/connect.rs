//! Connecting, the fixed dump session, and classifying server errors into [`EngineError`]s.

use std::collections::HashMap;
use std::time::Duration;

use exporter_contract::{DatabaseUrl, EngineError, ErrorKind};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row, Value};

/// `program_name` connection attribute of every connection we open, so an operator can tell
/// the exporter's sessions apart (`performance_schema.session_connect_attrs`).
pub const PROGRAM_NAME: &str = "exporter";

/// How long connecting may take before it counts as "unreachable".
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// MariaDB error codes we classify (<https://mariadb.com/kb/en/mariadb-error-codes/>).
mod code {
    pub const ER_CON_COUNT_ERROR: u16 = 1040;
    pub const ER_DBACCESS_DENIED_ERROR: u16 = 1044;
    pub const ER_ACCESS_DENIED_ERROR: u16 = 1045;
    pub const ER_BAD_DB_ERROR: u16 = 1049;
    pub const ER_SERVER_SHUTDOWN: u16 = 1053;
    pub const ER_NO_SUCH_TABLE: u16 = 1146;
    pub const ER_TABLEACCESS_DENIED_ERROR: u16 = 1142;
    pub const ER_COLUMNACCESS_DENIED_ERROR: u16 = 1143;
    pub const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
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

/// Build connection options from the URL. No I/O.
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] for a scheme other than `mysql`/`mariadb`, for an `ssl-mode` /
/// `sslmode` that requires TLS (this build has no TLS connector, and it never downgrades a
/// required TLS connection to clear text), and for any other query parameter (an option we
/// would otherwise silently ignore).
pub fn opts(url: &DatabaseUrl) -> Result<Opts, EngineError> {
    let endpoint = url.redacted();
    let unsupported =
        |msg: String| EngineError::new(ErrorKind::Unsupported, msg).with_object(endpoint.clone());
    if !matches!(url.scheme(), "mysql" | "mariadb") {
        return Err(unsupported(format!(
            "URL scheme {:?} is not MySQL/MariaDB",
            url.scheme()
        )));
    }
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "ssl-mode" | "sslmode" | "ssl_mode" => {
                match value.to_ascii_lowercase().replace('-', "_").as_str() {
                    // Without a TLS connector, `preferred` connects in clear text, as the stock
                    // client does when the server offers no TLS.
                    "disabled" | "disable" | "preferred" | "prefer" | "allow" => {}
                    "required" | "require" | "verify_ca" | "verify_identity" | "verify_full" => {
                        return Err(unsupported(format!(
                            "{key}={value} needs TLS, which this build of exporter does not support \
                         (it will not fall back to a clear-text connection); use an SSH tunnel \
                         and ssl-mode=disabled"
                        )));
                    }
                    other => return Err(unsupported(format!("unknown {key} value {other:?}"))),
                }
            }
            other => {
                return Err(unsupported(format!(
                    "unsupported URL query parameter {other:?}"
                )));
            }
        }
    }
    let mut attrs = HashMap::new();
    attrs.insert("program_name".to_owned(), PROGRAM_NAME.to_owned());
    let builder = OptsBuilder::default()
        .ip_or_hostname(url.host().to_owned())
        .tcp_port(url.port().unwrap_or(3306))
        .user(Some(url.username().unwrap_or_else(|| "root".to_owned())))
        .pass(url.password())
        .db_name(url.database())
        .prefer_socket(false)
        .stmt_cache_size(0)
        .connect_attributes(attrs);
    Ok(builder.into())
}

/// An open session: the connection, its server-side id, the redacted endpoint and flavor.
pub struct Session {
    /// The connection.
    pub conn: Conn,
    /// `CONNECTION_ID()`, for `KILL` on cancellation.
    pub id: u32,
    /// Options used to connect (for a side connection that kills this one).
    pub opts: Opts,
    /// Redacted endpoint, for error objects.
    pub endpoint: String,
    /// The server's `VERSION()`.
    pub version: String,
    /// Server family.
    pub flavor: Flavor,
}

/// Connect and read the server version.
///
/// # Errors
///
/// Classified [`EngineError`]s (`Connect`, `Auth`, `NotFound`, `Permission`, `Unsupported`),
/// with the redacted endpoint as object; never the password.
pub async fn connect(url: &DatabaseUrl) -> Result<Session, EngineError> {
    let opts = opts(url)?;
    let endpoint = url.redacted();
    let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts.clone())).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            // classify() already carries the driver's text; attaching the error as source too
            // printed it twice.
            return Err(classify(&e, Phase::Connect).with_object(endpoint));
        }
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
        opts,
        endpoint,
        version,
        flavor,
    })
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

/// Best effort: kill connection `id` from a side connection, so the server stops sending a
/// result nobody reads (dropping a `mysql_async::Conn` with a pending result would otherwise
/// read the rest of it before closing).
pub async fn kill(opts: &Opts, id: u32) {
    let work = async {
        let mut side = Conn::new(opts.clone()).await?;
        let r = side.query_drop(format!("KILL CONNECTION {id}")).await;
        let _ = side.disconnect().await;
        r
    };
    if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(10), work).await {
        tracing::debug!(error = %Redacted::of(&e), id, "could not kill the dump connection");
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

    #[test]
    fn tls_required_is_refused_not_downgraded() {
        let url = DatabaseUrl::parse("mysql://u:pw@db.example/app?ssl-mode=REQUIRED").unwrap();
        let e = opts(&url).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(!e.to_string().contains("pw@"));
        let url = DatabaseUrl::parse("mariadb://u:pw@db.example/app?sslmode=prefer").unwrap();
        let o = opts(&url).unwrap();
        assert_eq!(o.tcp_port(), 3306);
        assert_eq!(o.db_name(), Some("app"));
        assert_eq!(o.user(), Some("u"));
    }

    #[test]
    fn unknown_parameters_and_schemes_are_refused() {
        let url = DatabaseUrl::parse("mysql://u@db.example/app?compress=true").unwrap();
        assert_eq!(opts(&url).unwrap_err().kind(), ErrorKind::Unsupported);
        let url = DatabaseUrl::parse("postgres://u@db.example/app").unwrap();
        assert_eq!(opts(&url).unwrap_err().kind(), ErrorKind::Unsupported);
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
