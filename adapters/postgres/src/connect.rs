//! Connecting, the fixed session, and classifying server errors into [`EngineError`]s.

use std::time::Duration;

use exporter_contract::{DatabaseUrl, EngineError, ErrorKind};
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

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
pub const SESSION_SETTINGS: &str = "SET client_encoding = 'UTF8'; \
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
        // Closing the socket makes the server abandon whatever it is doing for us.
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

/// Build a `tokio_postgres::Config` from the URL. No I/O.
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] for a scheme other than `postgres`/`postgresql`, and for
/// `sslmode` values that require TLS (this build has no TLS connector, and it never downgrades
/// `require` to a clear-text connection).
pub fn config(url: &DatabaseUrl) -> Result<Config, EngineError> {
    let endpoint = url.redacted();
    let unsupported =
        |msg: String| EngineError::new(ErrorKind::Unsupported, msg).with_object(endpoint.clone());
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(unsupported(format!(
            "URL scheme {:?} is not PostgreSQL",
            url.scheme()
        )));
    }
    let mut cfg = Config::new();
    cfg.host(url.host());
    cfg.port(url.port().unwrap_or(5432));
    cfg.user(url.username().as_deref().unwrap_or("postgres"));
    if let Some(password) = url.password() {
        cfg.password(password);
    }
    cfg.dbname(url.database().as_deref().unwrap_or("postgres"));
    cfg.application_name(APPLICATION_NAME);
    cfg.connect_timeout(Duration::from_secs(30));
    cfg.ssl_mode(SslMode::Disable);
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            // libpq's sslmode values (https://www.postgresql.org/docs/current/libpq-ssl.html).
            // Without a TLS connector, `prefer` and `allow` connect in clear text, like libpq
            // does when the server offers no TLS.
            "sslmode" => match value.as_ref() {
                "disable" | "allow" | "prefer" => {}
                "require" | "verify-ca" | "verify-full" => {
                    return Err(unsupported(format!(
                        "sslmode={value} needs TLS, which this build of exporter does not \
                         support; refusing to connect in clear text"
                    )));
                }
                other => return Err(unsupported(format!("unknown sslmode {other:?}"))),
            },
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
            "application_name" => {}
            // libpq would honour these (and dbname/host/port/user would silently dump
            // another database than the URL's path names); refuse rather than ignore.
            other => {
                return Err(unsupported(format!(
                    "URL parameter {other:?} is not supported (supported: sslmode, \
                     connect_timeout, application_name); put host, port, user and database \
                     in the URL itself"
                )));
            }
        }
    }
    Ok(cfg)
}

/// Connect and apply [`SESSION_SETTINGS`].
///
/// # Errors
///
/// Classified per [`classify`]; the object is the redacted endpoint.
pub async fn connect(url: &DatabaseUrl) -> Result<Conn, EngineError> {
    let endpoint = url.redacted();
    let cfg = config(url)?;
    let (client, connection) = cfg
        .connect(NoTls)
        .await
        .map_err(|e| classify(&e, Phase::Connect).with_object(endpoint.clone()))?;
    let driver = tokio::spawn(connection);
    let mut conn = Conn {
        client,
        driver: Some(driver),
        endpoint,
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

    #[test]
    fn sslmode_require_is_refused_not_downgraded() {
        let url = DatabaseUrl::parse("postgres://u:secretpw@h/db?sslmode=require").unwrap();
        let err = config(&url).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains("sslmode=require"), "{err}");
        assert!(!err.to_string().contains("secretpw"));
    }

    #[test]
    fn config_takes_url_parts() {
        let url =
            DatabaseUrl::parse("postgresql://app:p%40ss@db.example:6543/My%20DB?sslmode=prefer")
                .unwrap();
        let cfg = config(&url).unwrap();
        assert_eq!(cfg.get_user(), Some("app"));
        assert_eq!(cfg.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(cfg.get_dbname(), Some("My DB"));
        assert_eq!(cfg.get_ports(), &[6543]);
        assert_eq!(cfg.get_application_name(), Some(APPLICATION_NAME));
        let url = DatabaseUrl::parse("mysql://h/db").unwrap();
        assert_eq!(config(&url).unwrap_err().kind(), ErrorKind::Unsupported);
    }
}
