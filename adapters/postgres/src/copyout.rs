//! A minimal client of the PostgreSQL frontend/backend protocol (version 3.0), used only for
//! the data `COPY … TO STDOUT` of a dump, that never holds a whole protocol message.
//!
//! # Why
//!
//! The server sends each row of `COPY … TO STDOUT` as **one** `CopyData` message
//! (<https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-COPY>), and
//! tokio-postgres's codec buffers a whole message before handing it over: a 200 MB text value
//! cost about 270 MB of RSS. [`RawConn::read_copy`] reads each `CopyData` header and streams
//! its payload in pieces of at most the caller's limit (see [`PIECE`]), so memory does not grow
//! with the row size.
//!
//! # What it speaks
//!
//! - Transport: TCP to the endpoint's dial address, or a Unix-domain socket when
//!   [`connect::config`] yields a socket directory as host. TLS as the main connection has it
//!   (`sslmode`, [`Link`]): the reader sends its own `SSLRequest` and performs the handshake
//!   with the link's shared [`exporter_tls::Connector`] (verification, SNI, client
//!   certificate), over a 64 KiB read buffer so COPY data is not read 4 KiB per system call.
//! - Startup (<https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP>):
//!   `StartupMessage` with `user`, `database`, `application_name` ([`APPLICATION_NAME`]) and
//!   `client_encoding` as tokio-postgres sends them; authentication `trust`, cleartext
//!   `password`, `md5` and SASL `SCRAM-SHA-256` through the `postgres-protocol` crate
//!   tokio-postgres itself uses (SCRAM without channel binding, also over TLS); then
//!   [`SESSION_SETTINGS`], so the `COPY` text is the main connection's to the byte.
//! - Simple `Query` only ([`RawConn::execute`], [`RawConn::copy_out`]); rows of other
//!   statements are read and dropped.
//!
//! # Errors
//!
//! An `ErrorResponse` is classified by [`connect::classify_server`] exactly like the main
//! connection's errors (e.g. SQLSTATE 28P01 → [`ErrorKind::Auth`], 57P01 →
//! [`ErrorKind::Protocol`], retryable). The password is only ever sent inside the
//! authentication exchange and never appears in an error. End of file before the server's
//! `ReadyForQuery` — also in the middle of a `CopyData` message — is an
//! [`ErrorKind::Protocol`] error, never a short success.
//!
//! # Cancellation
//!
//! Dropping a [`RawConn`] closes the socket; the server notices at its next write and ends
//! the backend (and its `COPY`).

use std::time::Duration;

use bytes::{Buf, BytesMut};
use exporter_contract::{EngineError, ErrorKind, TlsInfo};
use exporter_tls::Connector;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_postgres::config::Host;

use crate::connect::{self, APPLICATION_NAME, Link, SESSION_SETTINGS, SslMode};

/// Default largest piece of COPY data a caller should ask [`RawConn::read_copy`] for; also
/// the size of one socket read.
pub const PIECE: usize = 64 << 10;

/// Largest message other than `CopyData` we accept (errors, notices, parameter status, the
/// few rows of `SESSION_SETTINGS`): far above anything the server sends for our statements,
/// and a bound on memory for a confused peer.
const MAX_CONTROL: usize = 1 << 20;

/// A byte stream to the server (TCP or Unix socket).
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where the connection is in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Ready for a query.
    Idle,
    /// Inside `COPY … TO STDOUT`; `left` payload bytes of the current `CopyData` are unread.
    CopyOut { left: usize },
    /// The copy ended (`CopyDone`/`CommandComplete` seen); waiting for `ReadyForQuery`.
    CopyEnding,
    /// An error or a protocol violation happened; the connection must be dropped.
    Broken,
}

/// One raw protocol connection; see the [module docs](self).
pub struct RawConn {
    io: Box<dyn Io>,
    /// Bytes read from the socket and not yet consumed.
    buf: BytesMut,
    state: State,
    /// SQLSTATE of the last `ErrorResponse`.
    last_sqlstate: Option<String>,
    /// The TLS client of an encrypted connection, to explain TLS failures read later (a
    /// TLS 1.3 server's refusal of the client certificate arrives after the handshake).
    connector: Option<Connector>,
    /// Transport security of this connection.
    tls: TlsInfo,
}

/// How [`RawConn::connect_as`] opens the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// Clear text.
    Plain,
    /// `SSLRequest`, then TLS; `required`: a server that answers `N` is an error.
    Tls { required: bool },
}

/// Ask for TLS (`SSLRequest`,
/// <https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL>) and read the
/// one-byte answer: `true` for `S`, `false` for `N`.
async fn ssl_request(stream: &mut tokio::net::TcpStream) -> Result<bool, EngineError> {
    let mut out = BytesMut::new();
    frontend::ssl_request(&mut out);
    stream.write_all(&out).await.map_err(|e| unreachable(&e))?;
    let mut answer = [0u8; 1];
    stream
        .read_exact(&mut answer)
        .await
        .map_err(|e| unreachable(&e))?;
    match answer[0] {
        b'S' => Ok(true),
        b'N' => Ok(false),
        // A server older than 7.0 would answer with an ErrorResponse; anything else is not
        // PostgreSQL.
        _ => Err(violation("unexpected answer to SSLRequest")),
    }
}

/// A socket error while connecting: the server cannot be reached.
fn unreachable(e: &std::io::Error) -> EngineError {
    EngineError::new(
        ErrorKind::Connect,
        format!("error connecting to server: {e}"),
    )
    .retryable(true)
}

/// An I/O failure on an established connection: the connection is lost.
fn lost(e: &std::io::Error) -> EngineError {
    EngineError::new(
        ErrorKind::Protocol,
        format!("connection lost: {e}: the server closed the connection"),
    )
    .retryable(true)
}

fn eof() -> EngineError {
    EngineError::new(
        ErrorKind::Protocol,
        "the server closed the connection unexpectedly",
    )
    .retryable(true)
}

fn violation(what: &str) -> EngineError {
    EngineError::new(ErrorKind::Protocol, format!("protocol violation: {what}"))
}

/// The value of field `kind` of an `ErrorResponse` body.
fn field(body: &[u8], kind: u8) -> Option<&str> {
    let mut rest = body;
    while let Some((&k, tail)) = rest.split_first() {
        let end = memchr::memchr(0, tail)?;
        if k == 0 {
            return None;
        }
        if k == kind {
            return std::str::from_utf8(&tail[..end]).ok();
        }
        rest = &tail[end + 1..];
    }
    None
}

/// Parse an `ErrorResponse` body (fields: type byte, NUL-terminated string, …, NUL) and
/// classify it.
fn server_error(body: &[u8]) -> EngineError {
    connect::classify_server(
        field(body, b'C').unwrap_or("XX000"),
        field(body, b'M').unwrap_or("(no message)"),
        field(body, b'D'),
    )
}

impl RawConn {
    /// Connect to `url` (the same host, port, user, password, database and parameters as
    /// [`connect::connect`]), authenticate, and apply [`SESSION_SETTINGS`].
    ///
    /// # Errors
    ///
    /// Classified like the main connection: [`ErrorKind::Connect`] (retryable) when the server
    /// cannot be reached, [`ErrorKind::Auth`] for a refused password or a password the server
    /// asks for but the URL lacks, [`ErrorKind::NotFound`] for a missing database; the object
    /// is the redacted endpoint.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future closes the socket.
    pub async fn connect(link: &Link) -> Result<Self, EngineError> {
        let mode = link.tls().mode;
        match mode {
            SslMode::Disable => Self::connect_as(link, Transport::Plain).await,
            // libpq's allow: clear text first, TLS after the server refused it.
            SslMode::Allow => match Self::connect_as(link, Transport::Plain).await {
                Err(e) if e.kind() == ErrorKind::Auth => {
                    tracing::debug!(error = %e, "sslmode=allow: clear text refused, trying TLS");
                    Self::connect_as(link, Transport::Tls { required: true }).await
                }
                other => other,
            },
            SslMode::Prefer => Self::connect_as(link, Transport::Tls { required: false }).await,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                Self::connect_as(link, Transport::Tls { required: true }).await
            }
        }
    }

    async fn connect_as(link: &Link, transport: Transport) -> Result<Self, EngineError> {
        let endpoint = link.redacted().to_owned();
        let cfg = link.config();
        let mode = link.tls().mode;
        let with = |e: EngineError| e.with_object(endpoint.clone());
        let connector = match transport {
            Transport::Plain => None,
            Transport::Tls { .. } => Some(link.connector()?),
        };
        let timeout = cfg
            .get_connect_timeout()
            .copied()
            .unwrap_or(Duration::from_secs(30));
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let connecting = async {
            let (io, tls): (Box<dyn Io>, TlsInfo) = match cfg.get_hosts().first() {
                Some(Host::Tcp(host)) => {
                    let mut stream = tokio::net::TcpStream::connect((host.as_str(), port))
                        .await
                        .map_err(|e| unreachable(&e))?;
                    stream.set_nodelay(true).map_err(|e| unreachable(&e))?;
                    match (&connector, transport) {
                        (Some(connector), Transport::Tls { required }) => {
                            if ssl_request(&mut stream).await? {
                                // A read buffer under TLS: rustls reads the socket 4 KiB at
                                // a time, and COPY data comes in bulk.
                                let buffered = tokio::io::BufReader::with_capacity(PIECE, stream);
                                let (tls, handshake) = connector
                                    .connect(buffered)
                                    .await
                                    .map_err(EngineError::from)?;
                                (Box::new(tls), connector.info(mode.as_str(), &handshake))
                            } else if required {
                                return Err(EngineError::from(exporter_tls::not_offered(
                                    &connect::VOCABULARY,
                                    &format!("sslmode={}", mode.as_str()),
                                )));
                            } else {
                                (Box::new(stream), link.plaintext_info())
                            }
                        }
                        _ => (Box::new(stream), link.plaintext_info()),
                    }
                }
                #[cfg(unix)]
                Some(Host::Unix(dir)) => {
                    // libpq never uses TLS on a Unix-domain socket; a mode that requires it
                    // cannot be met there.
                    if mode.requires_tls() {
                        return Err(EngineError::new(
                            ErrorKind::Unsupported,
                            format!(
                                "sslmode={} cannot be met on a Unix-domain socket (no TLS there)",
                                mode.as_str()
                            ),
                        ));
                    }
                    let stream =
                        tokio::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}")))
                            .await
                            .map_err(|e| unreachable(&e))?;
                    (Box::new(stream) as Box<dyn Io>, link.plaintext_info())
                }
                #[allow(unreachable_patterns)]
                _ => {
                    return Err(EngineError::new(
                        ErrorKind::Connect,
                        "no host to connect to",
                    ));
                }
            };
            Ok::<_, EngineError>((io, tls))
        };
        let (io, tls) = match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(io)) => io,
            Ok(Err(e)) => return Err(with(e)),
            Err(_) => {
                return Err(with(
                    EngineError::new(ErrorKind::Connect, "timeout connecting to server")
                        .retryable(true),
                ));
            }
        };
        let mut conn = Self {
            io,
            buf: BytesMut::with_capacity(PIECE),
            state: State::Idle,
            last_sqlstate: None,
            connector: if tls.encrypted { connector } else { None },
            tls,
        };
        let user = cfg.get_user().unwrap_or("postgres");
        let database = cfg.get_dbname().unwrap_or("postgres");
        let mut out = BytesMut::new();
        frontend::startup_message(
            [
                ("client_encoding", "UTF8"),
                ("user", user),
                ("database", database),
                ("application_name", APPLICATION_NAME),
            ],
            &mut out,
        )
        .map_err(|e| with(violation(&e.to_string())))?;
        conn.send(&out).await.map_err(|e| with(connect_phase(e)))?;
        if let Err(e) = conn.authenticate(user, cfg.get_password()).await {
            let e = if !conn.tls.encrypted && connect::refuses_clear_text_message(e.message()) {
                e.with_hint(format!(
                    "the server accepts this connection only over TLS (sslmode={} did not \
                     encrypt): use sslmode=require, or verify-full with sslrootcert=FILE",
                    mode.as_str()
                ))
            } else {
                e
            };
            return Err(with(connect_phase(e)));
        }
        // ParameterStatus, BackendKeyData, notices, then ReadyForQuery.
        conn.finish_query().await.map_err(with)?;
        conn.execute(SESSION_SETTINGS, &endpoint).await?;
        Ok(conn)
    }

    /// The authentication exchange, after the startup message
    /// (<https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP>,
    /// <https://www.postgresql.org/docs/current/sasl-authentication.html>), following
    /// tokio-postgres's `connect_raw`.
    async fn authenticate(
        &mut self,
        user: &str,
        password: Option<&[u8]>,
    ) -> Result<(), EngineError> {
        let need_password = || {
            EngineError::new(
                ErrorKind::Auth,
                "the server asks for a password and the URL has none",
            )
        };
        let mut scram: Option<sasl::ScramSha256> = None;
        loop {
            let mut msg = self.control_message().await?;
            if msg[0] == b'E' {
                return Err(self.server_error(&msg[5..]));
            }
            let raw = msg.clone();
            let mut out = BytesMut::new();
            match Message::parse(&mut msg).map_err(|e| violation(&e.to_string()))? {
                Some(Message::AuthenticationOk) => return Ok(()),
                Some(Message::AuthenticationCleartextPassword) => {
                    let password = password.ok_or_else(need_password)?;
                    frontend::password_message(password, &mut out)
                }
                Some(Message::AuthenticationMd5Password(body)) => {
                    let password = password.ok_or_else(need_password)?;
                    let hash = md5_hash(user.as_bytes(), password, body.salt());
                    frontend::password_message(hash.as_bytes(), &mut out)
                }
                Some(Message::AuthenticationSasl(_)) => {
                    let password = password.ok_or_else(need_password)?;
                    // The body: NUL-terminated mechanism names, then an empty one.
                    let offered = body_mechanisms(&raw);
                    if !offered.iter().any(|m| *m == sasl::SCRAM_SHA_256.as_bytes()) {
                        return Err(EngineError::new(
                            ErrorKind::Auth,
                            "the server offers no SASL mechanism exporter supports (SCRAM-SHA-256)",
                        ));
                    }
                    // No channel binding (SCRAM-SHA-256, not -PLUS), as on the main connection.
                    let s = sasl::ScramSha256::new(password, sasl::ChannelBinding::unsupported());
                    let r =
                        frontend::sasl_initial_response(sasl::SCRAM_SHA_256, s.message(), &mut out);
                    scram = Some(s);
                    r
                }
                Some(Message::AuthenticationSaslContinue(body)) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| violation("SASL continue before start"))?;
                    s.update(body.data()).map_err(|e| {
                        EngineError::new(ErrorKind::Auth, format!("SCRAM exchange failed: {e}"))
                    })?;
                    frontend::sasl_response(s.message(), &mut out)
                }
                Some(Message::AuthenticationSaslFinal(body)) => {
                    let s = scram
                        .as_mut()
                        .ok_or_else(|| violation("SASL final before start"))?;
                    // Verifies the server's signature: the server knows the password too.
                    s.finish(body.data()).map_err(|e| {
                        EngineError::new(ErrorKind::Auth, format!("SCRAM exchange failed: {e}"))
                    })?;
                    continue;
                }
                Some(
                    Message::AuthenticationKerberosV5
                    | Message::AuthenticationScmCredential
                    | Message::AuthenticationGss
                    | Message::AuthenticationSspi,
                ) => {
                    return Err(EngineError::new(
                        ErrorKind::Auth,
                        "the server asks for an authentication method exporter does not support \
                         (supported: trust, password, md5, scram-sha-256)",
                    ));
                }
                _ => return Err(violation("unexpected message during authentication")),
            }
            .map_err(|e| violation(&e.to_string()))?;
            self.send(&out).await?;
        }
    }

    /// Run `sql` (one or more statements) with the simple query protocol; rows are dropped.
    ///
    /// # Errors
    ///
    /// The first statement's error, classified and naming `object`; a lost connection.
    pub async fn execute(&mut self, sql: &str, object: &str) -> Result<(), EngineError> {
        self.start_query(sql)
            .await
            .map_err(|e| e.with_object(object.to_owned()))?;
        self.finish_query()
            .await
            .map_err(|e| e.with_object(object.to_owned()))
    }

    /// Start `sql`, a `COPY … TO STDOUT`; then read its data with [`Self::read_copy`].
    ///
    /// # Errors
    ///
    /// The server's error for the statement, classified and naming `object` (e.g.
    /// [`ErrorKind::Permission`] for a table hidden by row-level security); a statement that
    /// is not a `COPY … TO STDOUT` is a protocol error.
    pub async fn copy_out(&mut self, sql: &str, object: &str) -> Result<(), EngineError> {
        let with = |e: EngineError| e.with_object(object.to_owned());
        self.start_query(sql).await.map_err(with)?;
        if self.finish_query_or_copy(true).await.map_err(with)? {
            Ok(())
        } else {
            Err(with(violation("the statement was not a COPY TO STDOUT")))
        }
    }

    /// Append the next COPY data to `dst`, at most `max` bytes (`max > 0`), and return how
    /// many were appended; `0` once the `COPY` has ended (`CopyDone`, `CommandComplete`,
    /// `ReadyForQuery`). Data is the concatenation of the `CopyData` payloads: row boundaries
    /// are the newlines in it, not message boundaries. Whatever is buffered is returned
    /// without waiting for the socket; only an empty buffer waits for one read.
    ///
    /// # Errors
    ///
    /// The server's `ErrorResponse` (classified; e.g. SQLSTATE 57P01 when the backend was
    /// terminated), or [`ErrorKind::Protocol`] when the connection ended before the copy did
    /// (also in the middle of a message). The connection is unusable afterwards. Errors name
    /// no object; the caller adds the table.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe at the await point (one socket read into the internal buffer).
    pub async fn read_copy(
        &mut self,
        dst: &mut BytesMut,
        max: usize,
    ) -> Result<usize, EngineError> {
        debug_assert!(max > 0);
        let mut appended = 0;
        loop {
            match self.state {
                State::Idle => return Ok(0),
                State::Broken => return Err(violation("the connection failed earlier")),
                State::CopyOut { left } if left > 0 => {
                    let n = left.min(self.buf.len()).min(max - appended);
                    if n > 0 {
                        dst.extend_from_slice(&self.buf[..n]);
                        self.buf.advance(n);
                        self.state = State::CopyOut { left: left - n };
                        appended += n;
                        if appended == max {
                            return Ok(appended);
                        }
                        continue;
                    }
                }
                State::CopyOut { .. } | State::CopyEnding => {
                    if self.buf.len() >= 5 {
                        let tag = self.buf[0];
                        let len = u32::from_be_bytes([
                            self.buf[1],
                            self.buf[2],
                            self.buf[3],
                            self.buf[4],
                        ]) as usize;
                        if len < 4 {
                            self.state = State::Broken;
                            return Err(violation("message length below 4"));
                        }
                        if tag == b'd' && matches!(self.state, State::CopyOut { .. }) {
                            self.buf.advance(5);
                            self.state = State::CopyOut { left: len - 4 };
                            continue;
                        }
                        // Any other message: hand over the data we have first.
                        if appended > 0 {
                            return Ok(appended);
                        }
                        if len > MAX_CONTROL {
                            self.state = State::Broken;
                            return Err(violation("oversized message during COPY"));
                        }
                        if self.buf.len() > len {
                            let msg = self.buf.split_to(1 + len);
                            match msg[0] {
                                b'c' | b'C' => self.state = State::CopyEnding,
                                b'Z' => {
                                    if self.state != State::CopyEnding {
                                        self.state = State::Broken;
                                        return Err(violation("COPY ended without CopyDone"));
                                    }
                                    self.state = State::Idle;
                                    return Ok(0);
                                }
                                b'E' => {
                                    self.state = State::Broken;
                                    return Err(self.server_error(&msg[5..]));
                                }
                                // NoticeResponse, ParameterStatus, NotificationResponse.
                                b'N' | b'S' | b'A' => {}
                                _ => {
                                    self.state = State::Broken;
                                    return Err(violation("unexpected message during COPY"));
                                }
                            }
                            continue;
                        }
                    }
                }
            }
            // The buffer holds no usable data: return what we have, or read.
            if appended > 0 {
                return Ok(appended);
            }
            if let Err(e) = self.fill().await {
                self.state = State::Broken;
                return Err(e);
            }
        }
    }

    /// Send `Terminate` and close the socket (a polite end; dropping also closes it).
    pub async fn close(mut self) {
        let mut out = BytesMut::new();
        frontend::terminate(&mut out);
        let _ = self.send(&out).await;
        let _ = self.io.shutdown().await;
    }

    async fn send(&mut self, data: &[u8]) -> Result<(), EngineError> {
        if let Err(e) = self.io.write_all(data).await {
            return Err(self.io_error(&e));
        }
        if let Err(e) = self.io.flush().await {
            return Err(self.io_error(&e));
        }
        Ok(())
    }

    /// An I/O failure: a TLS failure explained (e.g. the server's alert refusing the client
    /// certificate), else a lost connection.
    fn io_error(&self, e: &std::io::Error) -> EngineError {
        match &self.connector {
            Some(c) if Connector::is_tls_failure(e) => EngineError::from(c.explain_io(e, false)),
            _ => lost(e),
        }
    }

    /// Read once from the socket into the buffer.
    async fn fill(&mut self) -> Result<(), EngineError> {
        self.buf.reserve(PIECE);
        match self.io.read_buf(&mut self.buf).await {
            Ok(0) => Err(eof()),
            Ok(_) => Ok(()),
            Err(e) => Err(self.io_error(&e)),
        }
    }

    /// The next whole message that is not `CopyData` (header included).
    async fn control_message(&mut self) -> Result<BytesMut, EngineError> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if !(4..=MAX_CONTROL).contains(&len) || self.buf[0] == b'd' {
                    self.state = State::Broken;
                    return Err(violation("unexpected or oversized message"));
                }
                if self.buf.len() > len {
                    return Ok(self.buf.split_to(1 + len));
                }
            }
            if let Err(e) = self.fill().await {
                self.state = State::Broken;
                return Err(e);
            }
        }
    }

    async fn start_query(&mut self, sql: &str) -> Result<(), EngineError> {
        if self.state != State::Idle {
            return Err(violation("a query is already running on this connection"));
        }
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out).map_err(|e| violation(&e.to_string()))?;
        self.send(&out).await
    }

    /// Read until `ReadyForQuery` (dropping rows and status messages) and return the first
    /// `ErrorResponse` as the error; with `copy`, stop at `CopyOutResponse` instead and return
    /// `true`. After a non-fatal error the connection stays usable (the server sends
    /// `ReadyForQuery`); after a fatal one the server closes it, and the server's error is
    /// returned, not the end of file.
    async fn finish_query_or_copy(&mut self, copy: bool) -> Result<bool, EngineError> {
        let mut failed: Option<EngineError> = None;
        loop {
            let msg = match self.control_message().await {
                Ok(msg) => msg,
                Err(e) => return Err(failed.unwrap_or(e)),
            };
            match msg[0] {
                b'E' if failed.is_none() => failed = Some(self.server_error(&msg[5..])),
                b'H' if copy && failed.is_none() => {
                    self.state = State::CopyOut { left: 0 };
                    return Ok(true);
                }
                b'Z' => {
                    self.state = State::Idle;
                    return failed.map_or(Ok(false), Err);
                }
                _ => {}
            }
        }
    }

    async fn finish_query(&mut self) -> Result<(), EngineError> {
        self.finish_query_or_copy(false).await.map(|_| ())
    }

    /// Classify an `ErrorResponse` body and remember its SQLSTATE.
    fn server_error(&mut self, body: &[u8]) -> EngineError {
        self.last_sqlstate = field(body, b'C').map(str::to_owned);
        server_error(body)
    }

    /// Take `ACCESS SHARE` on `table` (a quoted, qualified name) without waiting, inside a
    /// savepoint: `Ok(false)` if the lock is not available now (SQLSTATE 55P03), the
    /// transaction and its imported snapshot intact. A lock request queued behind a waiting
    /// `ACCESS EXCLUSIVE` request (a `TRUNCATE` or `ALTER TABLE` blocked by the dump's own
    /// locks) would otherwise wait for the dump to end: a deadlock the server cannot see, as
    /// its other half is in the client (pg_dump's workers use `NOWAIT` for the same reason;
    /// <https://www.postgresql.org/docs/current/app-pgdump.html>, option `-j`).
    ///
    /// # Errors
    ///
    /// Any other error, classified and naming `object`.
    pub async fn lock_nowait(&mut self, table: &str, object: &str) -> Result<bool, EngineError> {
        let sql = format!(
            "SAVEPOINT exporter_lock; LOCK TABLE {table} IN ACCESS SHARE MODE NOWAIT; \
             RELEASE SAVEPOINT exporter_lock"
        );
        match self.execute(&sql, object).await {
            Ok(()) => Ok(true),
            Err(e)
                if self.last_sqlstate.as_deref() == Some("55P03") && self.state == State::Idle =>
            {
                self.execute(
                    "ROLLBACK TO SAVEPOINT exporter_lock; RELEASE SAVEPOINT exporter_lock",
                    object,
                )
                .await?;
                tracing::debug!(error = %e, "lock not available to a COPY connection");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// The mechanism names of an `AuthenticationSASL` message (header, int32 10, names).
fn body_mechanisms(msg: &[u8]) -> Vec<&[u8]> {
    msg.get(9..)
        .unwrap_or_default()
        .split(|&b| b == 0)
        .take_while(|m| !m.is_empty())
        .collect()
}

/// While connecting, a lost connection means the server could not be reached or refused us
/// (tokio-postgres reports these as connect errors too).
fn connect_phase(e: EngineError) -> EngineError {
    if e.kind() == ErrorKind::Protocol && e.is_retryable() {
        let connect = EngineError::new(ErrorKind::Connect, e.message().to_owned()).retryable(true);
        match e.hint() {
            Some(hint) => connect.with_hint(hint),
            None => connect,
        }
    } else {
        e
    }
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "tests may use std::fs (clippy.toml)"
)]
mod tests {
    //! Authentication needs a server that asks for passwords; the shared test server trusts
    //! every local connection, so these tests start a private one (initdb + pg_ctl on a free
    //! port, as the Redis tests start their own redis-server) with `scram-sha-256`, `md5`
    //! and `password` rules in its pg_hba.conf.

    use std::path::PathBuf;
    use std::process::Command;

    use super::*;
    use crate::PostgresSource;
    use exporter_contract::{DatabaseUrl, Endpoint};

    fn link(url: DatabaseUrl) -> Link {
        Link::new(&Endpoint::new(url)).unwrap()
    }
    use exporter_contract::{DumpOptions, Source};
    use futures::StreamExt;

    /// Run a PostgreSQL tool as the `postgres` OS user when we are root (initdb and the
    /// server refuse to run as root), else as ourselves.
    fn as_postgres(tool: &str) -> Command {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", tool]);
            c
        } else {
            Command::new(tool)
        }
    }

    fn run(mut c: Command) -> String {
        let out = c.output().expect("the PostgreSQL tools are installed");
        assert!(
            out.status.success(),
            "{c:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A private server; stopped (immediate) when dropped.
    struct PrivateServer {
        dir: tempfile::TempDir,
        port: u16,
    }

    impl PrivateServer {
        fn data(&self) -> PathBuf {
            self.dir.path().join("data")
        }

        fn start() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let owner = Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .unwrap();
            if owner.status.success() {
                // Let the postgres OS user (the server, when we are root) own the directory.
                let _ = Command::new("chown")
                    .arg("postgres")
                    .arg(dir.path())
                    .status();
            }
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let server = Self { dir, port };
            let data = server.data();
            let mut initdb = as_postgres("initdb");
            initdb
                .args([
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-A",
                    "trust",
                    "-D",
                ])
                .arg(&data);
            run(initdb);
            // First match wins: per-role methods, then reject.
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\n\
                 host all scram_u 127.0.0.1/32 scram-sha-256\n\
                 host all md5_u 127.0.0.1/32 md5\n\
                 host all clear_u 127.0.0.1/32 password\n\
                 host all all 127.0.0.1/32 scram-sha-256\n",
            )
            .unwrap();
            let mut ctl = as_postgres("pg_ctl");
            ctl.arg("-D")
                .arg(&data)
                .args(["-w", "-l"])
                .arg(data.join("log"))
                .arg("-o")
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                    server.dir.path().display()
                ));
            ctl.arg("start");
            run(ctl);
            server.psql(
                "SET password_encryption = 'scram-sha-256';
                 CREATE ROLE scram_u LOGIN PASSWORD 'Scram-s3cret';
                 SET password_encryption = 'md5';
                 CREATE ROLE md5_u LOGIN PASSWORD 'Md5-s3cret';
                 SET password_encryption = 'scram-sha-256';
                 CREATE ROLE clear_u LOGIN PASSWORD 'Clear-s3cret';
                 CREATE TABLE public.t (id int, v text);
                 INSERT INTO public.t VALUES (1, 'one'), (2, repeat('x', 200000));
                 GRANT SELECT ON public.t TO scram_u, md5_u, clear_u;",
            );
            server
        }

        fn psql(&self, sql: &str) -> String {
            let mut c = Command::new("psql");
            c.args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-U",
                "postgres",
                "-h",
            ])
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", sql]);
            run(c)
        }

        fn url(&self, user: &str, password: Option<&str>) -> DatabaseUrl {
            let auth = password.map_or_else(|| user.to_owned(), |p| format!("{user}:{p}"));
            DatabaseUrl::parse(&format!(
                "postgres://{auth}@127.0.0.1:{}/postgres",
                self.port
            ))
            .unwrap()
        }
    }

    impl Drop for PrivateServer {
        fn drop(&mut self) {
            let mut ctl = as_postgres("pg_ctl");
            ctl.arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "stop"]);
            let _ = ctl.output();
        }
    }

    /// All of a COPY's data through `read_copy` in pieces of at most `max` bytes.
    async fn copy_all(conn: &mut RawConn, sql: &str, max: usize) -> Vec<u8> {
        conn.copy_out(sql, "test").await.unwrap();
        let mut data = BytesMut::new();
        loop {
            let before = data.len();
            let n = conn.read_copy(&mut data, max).await.unwrap();
            assert!(n <= max && data.len() == before + n);
            if n == 0 {
                return data.to_vec();
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_methods_against_a_private_server() {
        let server = PrivateServer::start();
        let secrets = ["Scram-s3cret", "Md5-s3cret", "Clear-s3cret", "Wr0ng-pass"];
        for (user, password) in [
            ("scram_u", "Scram-s3cret"),
            ("md5_u", "Md5-s3cret"),
            ("clear_u", "Clear-s3cret"),
        ] {
            // The right password: authenticated, session settings applied, COPY streams.
            let mut conn = RawConn::connect(&link(server.url(user, Some(password))))
                .await
                .unwrap_or_else(|e| panic!("{user}: {e}"));
            let mut expected = b"1\tone\n2\t".to_vec();
            expected.extend(std::iter::repeat_n(b'x', 200_000));
            expected.push(b'\n');
            assert_eq!(
                copy_all(&mut conn, "COPY public.t TO STDOUT", 1000).await,
                expected,
                "{user}"
            );
            // The session is the dump's (SESSION_SETTINGS) and usable after a COPY.
            let tz = copy_all(
                &mut conn,
                "COPY (SELECT current_setting('TimeZone'), current_setting('application_name'), current_setting('jit'), current_user) TO STDOUT",
                PIECE,
            )
            .await;
            assert_eq!(
                tz,
                format!("UTC\texporter\toff\t{user}\n").into_bytes(),
                "{user}"
            );
            conn.close().await;

            // A wrong password: Auth, not retryable, naming the endpoint without secrets.
            let err = RawConn::connect(&link(server.url(user, Some("Wr0ng-pass"))))
                .await
                .err()
                .unwrap_or_else(|| panic!("{user}: a wrong password was accepted"));
            assert_eq!(err.kind(), ErrorKind::Auth, "{user}: {err}");
            assert!(!err.is_retryable());
            assert!(err.to_string().contains("28P01"), "{user}: {err}");
            assert!(
                err.to_string()
                    .contains(&format!("postgres://{user}:****@127.0.0.1")),
                "{user}: {err}"
            );
            for s in secrets {
                assert!(!err.to_string().contains(s), "{err}");
                assert!(!format!("{err:?}").contains(s), "{err:?}");
            }

            // No password at all.
            let err = RawConn::connect(&link(server.url(user, None)))
                .await
                .err()
                .unwrap();
            assert_eq!(err.kind(), ErrorKind::Auth, "{user}: {err}");
            assert!(err.to_string().contains("has none"), "{user}: {err}");
        }

        // A role that does not exist is refused like a wrong password (the server does not
        // tell which), and a missing database is NotFound.
        let err = RawConn::connect(&link(server.url("nobody", Some("x"))))
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
        let missing = DatabaseUrl::parse(&format!(
            "postgres://scram_u:Scram-s3cret@127.0.0.1:{}/no_such_db",
            server.port
        ))
        .unwrap();
        let err = RawConn::connect(&link(missing)).await.err().unwrap();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(!err.to_string().contains("Scram-s3cret"));

        // A whole dump over SCRAM: the main connection (tokio-postgres) and the raw COPY
        // connections (here) both authenticate; the data comes through the raw ones.
        for jobs in [1, 2] {
            let source = PostgresSource::new(server.url("scram_u", Some("Scram-s3cret")));
            let mut dump = source
                .dump(DumpOptions::default().with_jobs(jobs))
                .await
                .unwrap();
            let mut script = Vec::new();
            while let Some(chunk) = dump.body.next().await {
                script.extend_from_slice(&chunk.unwrap());
            }
            let summary = dump.completion.await.unwrap();
            assert_eq!(summary.tables.len(), 1);
            assert_eq!(summary.tables[0].rows, 2, "jobs={jobs}");
            let text = String::from_utf8(script).unwrap();
            assert!(
                text.contains("COPY public.t (id, v) FROM stdin;\n1\tone\n2\txxx"),
                "jobs={jobs}"
            );
        }
    }

    #[test]
    fn error_response_fields_are_classified() {
        let body =
            b"SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0";
        let e = server_error(body);
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.is_retryable());
        assert_eq!(
            e.message(),
            "terminating connection due to administrator command (SQLSTATE 57P01)"
        );
        let e = server_error(b"C42501\0Mpermission denied\0Dfor table t\0\0");
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert_eq!(
            e.message(),
            "permission denied (SQLSTATE 42501); for table t"
        );
    }

    #[test]
    fn sasl_mechanisms_are_read_from_the_message() {
        let msg = b"R\0\0\0\x2a\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0";
        assert_eq!(
            body_mechanisms(msg),
            vec![&b"SCRAM-SHA-256-PLUS"[..], &b"SCRAM-SHA-256"[..]]
        );
    }
}
