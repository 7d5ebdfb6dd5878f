//! A minimal, binary-safe RESP2 client on a tokio `TcpStream`: connecting and authenticating,
//! pipelined commands, replies, and payloads read in bounded pieces (never a whole value).
//!
//! Why not the `redis` crate here: its replies are whole `Value`s, so a 100 MB `DUMP` payload
//! would be held (at least) once in memory, and the replication handshake of the RDB format
//! (`SYNC` answered by a raw, possibly mark-terminated file) is not RESP at all. Both paths
//! need to read the socket in pieces, so one small client serves both.

use std::fmt::Write as _;
use std::time::Duration;

use std::sync::{Arc, OnceLock};

use bytes::{Buf, Bytes, BytesMut};
use exporter_contract::{Endpoint, EngineError, ErrorKind, TlsInfo};
use exporter_tls::{Connector, Identity, Roots, TlsOptions, Verify, Vocabulary};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// `CLIENT SETNAME` of every connection: lets an operator (and our tests) find the exporter's
/// connections in `CLIENT LIST`.
pub const CLIENT_NAME: &str = "exporter";

/// Longest status, error or length line accepted from the server.
const MAX_LINE: usize = 64 * 1024;

/// Socket reads go into a buffer of at least this size.
const READ_BUF: usize = 64 * 1024;

/// A byte stream to the server: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// redis-cli's TLS options as URL parameters, in messages and hints.
pub const VOCABULARY: Vocabulary = Vocabulary {
    ca: "cacert=FILE",
    chain_only: None,
    no_verify: "insecure",
    tls_on: "rediss://",
    client_cert: "cert=FILE&key=FILE",
};

/// Where and how to connect, parsed from an [`Endpoint`]. No I/O.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or address to open the socket to (the endpoint's dial address).
    pub host: String,
    /// TCP port to open the socket to (default 6379).
    pub port: u16,
    /// ACL user (`AUTH user password`), if any.
    pub username: Option<String>,
    /// Password, if any. Never displayed.
    pub password: Option<String>,
    /// The logical database of a `/db` path: dump only that one.
    pub db: Option<u32>,
    /// The redacted URL, for error objects.
    pub endpoint: String,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// TLS (`rediss://`): what to check, and the client configuration once built.
    pub tls: Option<Tls>,
}

/// The TLS of a `rediss://` endpoint.
#[derive(Debug, Clone)]
pub struct Tls {
    /// What the handshake must do.
    pub options: TlsOptions,
    /// `rediss` or `rediss insecure`, as recorded in manifests.
    pub mode: &'static str,
    connector: Arc<OnceLock<Connector>>,
}

impl Tls {
    /// The client configuration, built at the first call (reads the certificate files) and
    /// shared by every connection of the target.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, named ([`ErrorKind::Config`]).
    pub fn connector(&self, endpoint: &str) -> Result<Connector, EngineError> {
        if let Some(c) = self.connector.get() {
            return Ok(c.clone());
        }
        let built = Connector::new(&self.options)
            .map_err(|e| EngineError::from(e).with_object(endpoint.to_owned()))?;
        Ok(self.connector.get_or_init(|| built).clone())
    }
}

/// Whether a flag parameter (`insecure`, `insecure=1`, `insecure=true`) is on.
fn flag(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "" | "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

impl Target {
    /// Parse `redis[s]://[user[:password]@]host[:port][/db][?params]` from the endpoint.
    /// Parameters: `connect_timeout`, and for `rediss://` redis-cli's TLS options `cacert`,
    /// `cert`, `key`, `sni` and `insecure`.
    ///
    /// TLS verification is on by default: the chain against `cacert` (else the endpoint's
    /// inline CA, else the system's trusted roots) and the host name — the URL's host, or
    /// `sni`, which also names the server in the handshake. `insecure` skips verification
    /// (`redis-cli --insecure`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for another scheme, a non-numeric `/db` path, a bad
    /// `connect_timeout`, an unknown parameter, TLS parameters on `redis://`, or `cert`
    /// without `key`.
    pub fn from_endpoint(endpoint: &Endpoint) -> Result<Self, EngineError> {
        let url = endpoint.url();
        let redacted = endpoint.redacted();
        let unsupported =
            |msg: String| EngineError::new(ErrorKind::Config, msg).with_object(redacted.clone());
        let secure = match url.scheme() {
            "redis" => false,
            "rediss" => true,
            other => return Err(unsupported(format!("URL scheme {other:?} is not Redis"))),
        };
        let db = match url.database() {
            None => None,
            Some(text) => Some(text.parse::<u32>().map_err(|_| {
                unsupported(format!(
                    "the URL path must be a logical database number like /0, got /{text:?}"
                ))
            })?),
        };
        let mut connect_timeout = Duration::from_secs(30);
        let (mut cacert, mut cert, mut key, mut sni, mut insecure) =
            (None, None, None, None, false);
        for (key_name, value) in url.query_pairs() {
            match key_name.as_ref() {
                "connect_timeout" => {
                    let secs: u64 = value.parse().map_err(|_| {
                        unsupported(format!(
                            "connect_timeout must be whole seconds, got {value:?}"
                        ))
                    })?;
                    if secs > 0 {
                        connect_timeout = Duration::from_secs(secs);
                    }
                }
                tls_param @ ("cacert" | "cert" | "key" | "sni" | "insecure") if !secure => {
                    return Err(unsupported(format!(
                        "{tls_param} is a TLS parameter, and redis:// is clear text; use \
                         rediss:// for TLS"
                    )));
                }
                "cacert" => cacert = Some(value.into_owned()),
                "cert" => cert = Some(value.into_owned()),
                "key" => key = Some(value.into_owned()),
                "sni" => sni = Some(value.into_owned()),
                "insecure" => {
                    insecure = flag(&value).ok_or_else(|| {
                        unsupported(format!("insecure must be a flag (1 or 0), got {value:?}"))
                    })?;
                }
                // Ignoring a parameter could mean dumping without the authentication or
                // database the user asked for; refuse it, naming only the key (values may be
                // secrets).
                other => {
                    return Err(unsupported(format!(
                        "URL parameter {other:?} is not supported (supported: connect_timeout; \
                         with rediss:// also cacert, cert, key, sni, insecure); put the user, \
                         password and database in the URL itself"
                    )));
                }
            }
        }
        let tls = if secure {
            let identity = match (cert, key) {
                (Some(cert), Some(key)) => Some(Identity {
                    cert: cert.into(),
                    key: key.into(),
                }),
                (None, None) => None,
                _ => {
                    return Err(unsupported(
                        "a client certificate needs both cert=FILE and key=FILE".to_owned(),
                    ));
                }
            };
            let roots = match cacert {
                Some(path) => Some(Roots::File(path.into())),
                None => Some(endpoint.ca_pem().map_or(Roots::System, |pem| Roots::Pem {
                    pem: pem.into(),
                    origin: "the CA certificate given with the endpoint".to_owned(),
                })),
            };
            Some(Tls {
                options: TlsOptions {
                    verify: if insecure { Verify::None } else { Verify::Full },
                    roots,
                    identity,
                    server_name: sni.unwrap_or_else(|| url.host().to_owned()),
                    sni: true,
                    vocabulary: VOCABULARY,
                },
                mode: if insecure {
                    "rediss insecure"
                } else {
                    "rediss"
                },
                connector: Arc::new(OnceLock::new()),
            })
        } else {
            None
        };
        Ok(Self {
            host: endpoint.connect_host().to_owned(),
            port: endpoint.connect_port(6379),
            username: url.username(),
            password: url.password(),
            db,
            endpoint: redacted,
            connect_timeout,
            tls,
        })
    }

    /// `endpoint db<n>`: the object named by errors about one logical database.
    #[must_use]
    pub fn db_object(&self, db: u32) -> String {
        format!("{} db{db}", self.endpoint)
    }

    /// What a clear-text connection to this target is recorded as.
    #[must_use]
    pub fn plaintext_info() -> TlsInfo {
        TlsInfo::plaintext("redis")
    }
}

/// One RESP2 reply, fully read. Used for small replies only (status, integers, SCAN pages,
/// INFO); payloads are read with [`Conn::read_bulk_header`] and [`Conn::read_some`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+…`
    Status(String),
    /// `-…`: the server's error text.
    Error(String),
    /// `:…`
    Int(i64),
    /// `$…`, `None` for the null bulk string.
    Bulk(Option<Bytes>),
    /// `*…`, `None` for the null array.
    Array(Option<Vec<Reply>>),
}

/// Encode one command as a RESP array of bulk strings (binary-safe).
pub fn encode(buf: &mut Vec<u8>, args: &[&[u8]]) {
    push_header(buf, b'*', args.len() as u64);
    for arg in args {
        push_header(buf, b'$', arg.len() as u64);
        buf.extend_from_slice(arg);
        buf.extend_from_slice(b"\r\n");
    }
}

/// Append `<kind><n>\r\n` (an array or bulk string header).
pub fn push_header(buf: &mut Vec<u8>, kind: u8, n: u64) {
    buf.push(kind);
    push_decimal(buf, n);
    buf.extend_from_slice(b"\r\n");
}

/// Append the decimal digits of `v`.
pub fn push_decimal(buf: &mut Vec<u8>, v: u64) {
    let mut digits = [0u8; 20];
    buf.extend_from_slice(decimal(v, &mut digits));
}

/// The decimal digits of `v`, written at the end of `buf`.
pub fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[at..];
        }
    }
}

/// An open connection.
pub struct Conn {
    stream: Box<dyn Io>,
    buf: BytesMut,
    /// The redacted endpoint, for error objects.
    pub endpoint: String,
    /// Transport security of this connection.
    pub tls: TlsInfo,
    /// The TLS client, to explain TLS failures read after the handshake.
    connector: Option<Connector>,
    /// The URL gave a password and the server needs none: it was ignored (as redis-cli
    /// does). Preflight reports it once ([`PASSWORD_IGNORED`]); other connections stay quiet.
    pub password_ignored: bool,
}

/// The note preflight reports when the server needs no password but the URL has one.
pub const PASSWORD_IGNORED: &str = "the server needs no password; the one in the URL is ignored";

fn closed(endpoint: &str, what: &str) -> EngineError {
    EngineError::new(
        ErrorKind::Protocol,
        format!("the server closed the connection {what}"),
    )
    .with_object(endpoint.to_owned())
    .retryable(true)
}

/// Map a server error reply to an [`EngineError`] (object to be attached by the caller).
#[must_use]
pub fn server_error(text: &str, command: &str) -> EngineError {
    let code = text.split_whitespace().next().unwrap_or_default();
    let lower = text.to_ascii_lowercase();
    // Error prefixes: https://redis.io/docs/latest/develop/reference/protocol-spec/#simple-errors
    let (kind, retryable) = match code {
        "WRONGPASS" | "NOAUTH" => (ErrorKind::Auth, false),
        "NOPERM" => (ErrorKind::Permission, false),
        "LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" => (ErrorKind::Query, true),
        _ if lower.contains("invalid password") || lower.contains("invalid username") => {
            (ErrorKind::Auth, false)
        }
        _ => (ErrorKind::Query, false),
    };
    let message = if code == "NOAUTH" {
        format!(
            "{command}: {text} (the server needs a password: redis://:PASSWORD@host or \
             redis://USER:PASSWORD@host)"
        )
    } else {
        format!("{command}: {text}")
    };
    EngineError::new(kind, message).retryable(retryable)
}

impl Conn {
    /// Open a TCP connection, authenticate, and name the connection.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Connect`] (retryable) when unreachable or timed out, [`ErrorKind::Auth`]
    /// when the server rejects the credentials or requires some; the object is the redacted
    /// endpoint, the password never appears.
    pub async fn connect(target: &Target) -> Result<Self, EngineError> {
        let endpoint = target.endpoint.clone();
        let connect = TcpStream::connect((target.host.as_str(), target.port));
        let stream = match tokio::time::timeout(target.connect_timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                return Err(
                    EngineError::new(ErrorKind::Connect, format!("cannot connect: {e}"))
                        .with_object(endpoint)
                        .with_source(e)
                        .retryable(true),
                );
            }
            Err(_) => {
                return Err(EngineError::new(
                    ErrorKind::Connect,
                    format!(
                        "cannot connect: timed out after {}s",
                        target.connect_timeout.as_secs()
                    ),
                )
                .with_object(endpoint)
                .retryable(true));
            }
        };
        let _ = stream.set_nodelay(true);
        let (stream, tls, connector): (Box<dyn Io>, TlsInfo, Option<Connector>) = match &target.tls
        {
            Some(tls) => {
                let connector = tls.connector(&endpoint)?;
                // A read buffer under TLS: rustls reads the socket 4 KiB at a time.
                let buffered = tokio::io::BufReader::with_capacity(READ_BUF, stream);
                let handshake =
                    tokio::time::timeout(target.connect_timeout, connector.connect(buffered)).await;
                let (stream, handshake) = match handshake {
                    Ok(Ok(done)) => done,
                    Ok(Err(e)) => return Err(EngineError::from(e).with_object(endpoint)),
                    // A clear-text Redis reads a ClientHello as the start of an inline
                    // command and waits for its end: no answer at all.
                    Err(_) => {
                        return Err(EngineError::new(
                            ErrorKind::Connect,
                            format!(
                                "the TLS handshake got no answer within {}s: the server does not \
                                 seem to speak TLS on this port",
                                target.connect_timeout.as_secs()
                            ),
                        )
                        .with_object(endpoint)
                        .with_hint(
                            "check the port; a server without TLS is reached with redis://, not \
                             rediss://",
                        ));
                    }
                };
                let info = connector.info(tls.mode, &handshake);
                (Box::new(stream), info, Some(connector))
            }
            None => (Box::new(stream), Target::plaintext_info(), None),
        };
        let mut conn = Self {
            stream,
            buf: BytesMut::with_capacity(READ_BUF),
            endpoint,
            tls,
            connector,
            password_ignored: false,
        };
        let greeted = async {
            conn.auth(target).await?;
            // Best effort: a server or ACL that refuses CLIENT SETNAME is no reason to fail.
            if let Reply::Error(e) = conn
                .command(&[b"CLIENT", b"SETNAME", CLIENT_NAME.as_bytes()])
                .await?
            {
                tracing::debug!(error = %e, "CLIENT SETNAME refused");
            }
            Ok::<(), EngineError>(())
        }
        .await;
        match greeted {
            Ok(()) => Ok(conn),
            // A TLS-only server (`--port 0 --tls-port N`) drops a clear-text client at its
            // first command, without a word of RESP.
            Err(e) if target.tls.is_none() && e.kind() == ErrorKind::Protocol => {
                Err(EngineError::new(
                    ErrorKind::Connect,
                    format!(
                        "{}; the server may accept TLS connections only",
                        e.message()
                    ),
                )
                .with_object(conn.endpoint.clone())
                .with_hint(
                    "if the server (or this port) speaks TLS, use rediss:// (with cacert=FILE \
                     for its CA)",
                )
                .retryable(false))
            }
            Err(e) => Err(e),
        }
    }

    /// An I/O error on the socket: a TLS failure explained (e.g. a server that wants a
    /// client certificate says so after the handshake), else `what` went wrong.
    fn io_error(&self, e: std::io::Error, what: &str) -> EngineError {
        if let Some(connector) = &self.connector
            && Connector::is_tls_failure(&e)
        {
            return EngineError::from(connector.explain_io(&e, false))
                .with_object(self.endpoint.clone());
        }
        EngineError::new(ErrorKind::Protocol, format!("{what}: {e}"))
            .with_object(self.endpoint.clone())
            .with_source(e)
            .retryable(true)
    }

    async fn auth(&mut self, target: &Target) -> Result<(), EngineError> {
        let (user, password) = match (&target.username, &target.password) {
            (None, None) => return Ok(()),
            (user, password) => (user.clone(), password.clone().unwrap_or_default()),
        };
        let reply = match &user {
            Some(user) => {
                let reply = self
                    .command(&[b"AUTH", user.as_bytes(), password.as_bytes()])
                    .await?;
                match reply {
                    // Redis before 6.0 knows no users: `AUTH password` only.
                    Reply::Error(e) if e.contains("wrong number of arguments") => {
                        self.command(&[b"AUTH", password.as_bytes()]).await?
                    }
                    other => other,
                }
            }
            None => self.command(&[b"AUTH", password.as_bytes()]).await?,
        };
        match reply {
            Reply::Status(_) => Ok(()),
            // A password given to a server that needs none: harmless, go on (like redis-cli).
            Reply::Error(e) if e.contains("without any password configured") => {
                tracing::debug!(endpoint = %self.endpoint, "{PASSWORD_IGNORED}");
                self.password_ignored = true;
                Ok(())
            }
            Reply::Error(e) => {
                let kind_err = server_error(&e, "AUTH");
                let kind = if kind_err.kind() == ErrorKind::Query {
                    ErrorKind::Auth
                } else {
                    kind_err.kind()
                };
                Err(
                    EngineError::new(kind, format!("authentication failed: {e}"))
                        .with_object(self.endpoint.clone()),
                )
            }
            other => Err(self.unexpected("AUTH", &other)),
        }
    }

    /// An error for a reply of the wrong shape.
    #[must_use]
    pub fn unexpected(&self, command: &str, reply: &Reply) -> EngineError {
        let mut shown = format!("{reply:?}");
        if shown.len() > 200 {
            shown.truncate(200);
            shown.push('…');
        }
        EngineError::new(
            ErrorKind::Protocol,
            format!("{command}: unexpected reply {shown}"),
        )
        .with_object(self.endpoint.clone())
    }

    /// Write raw, already encoded commands.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Protocol`] (retryable) if the connection is gone.
    pub async fn send(&mut self, data: &[u8]) -> Result<(), EngineError> {
        use std::io::ErrorKind as Io;
        match self.stream.write_all(data).await {
            Ok(()) => Ok(()),
            // A pipelined client often writes before it reads that the server hung up
            // (`CLIENT KILL`, a restart): say that, not only "broken pipe".
            Err(e)
                if matches!(
                    e.kind(),
                    Io::BrokenPipe | Io::ConnectionReset | Io::ConnectionAborted
                ) && !self
                    .connector
                    .as_ref()
                    .is_some_and(|_| Connector::is_tls_failure(&e)) =>
            {
                Err(closed(&self.endpoint, "while commands were being sent").with_source(e))
            }
            Err(e) => Err(self.io_error(e, "writing to the server failed")),
        }
    }

    /// Send one command and read its reply (an error reply is returned, not raised).
    ///
    /// # Errors
    ///
    /// Connection and protocol errors.
    pub async fn command(&mut self, args: &[&[u8]]) -> Result<Reply, EngineError> {
        let mut buf = Vec::new();
        encode(&mut buf, args);
        self.send(&buf).await?;
        self.read_reply().await
    }

    /// Like [`Self::command`], but an error reply becomes a classified [`EngineError`] naming
    /// `object`.
    ///
    /// # Errors
    ///
    /// Connection, protocol and server errors.
    pub async fn command_ok(&mut self, args: &[&[u8]], object: &str) -> Result<Reply, EngineError> {
        match self.command(args).await? {
            Reply::Error(e) => {
                let name = String::from_utf8_lossy(args[0]).to_uppercase();
                Err(server_error(&e, &name).with_object(object.to_owned()))
            }
            reply => Ok(reply),
        }
    }

    /// Read more bytes from the socket into the buffer.
    async fn fill(&mut self, what: &str) -> Result<(), EngineError> {
        if self.buf.capacity() - self.buf.len() < READ_BUF / 2 {
            self.buf.reserve(READ_BUF);
        }
        match self.stream.read_buf(&mut self.buf).await {
            Ok(0) => Err(closed(&self.endpoint, what)),
            Ok(_) => Ok(()),
            Err(e) => Err(self.io_error(e, &format!("reading from the server failed {what}"))),
        }
    }

    /// Read one `\r\n`-terminated line (without the terminator).
    pub(crate) async fn read_line(&mut self) -> Result<BytesMut, EngineError> {
        let pos = self.line_len().await?;
        let line = self.buf.split_to(pos);
        self.buf.advance(2);
        Ok(line)
    }

    /// The length of the first buffered line, without its `\r\n` (reading until one is
    /// buffered); nothing is consumed. Look at it with [`Self::buffered`], then
    /// [`Self::consume`] it (length + 2) or read it with [`Self::read_reply`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Protocol`] for a line longer than 64 KiB or a connection closed first.
    pub(crate) async fn line_len(&mut self) -> Result<usize, EngineError> {
        let mut searched = 0;
        loop {
            while let Some(pos) = memchr::memchr(b'\r', &self.buf[searched..]) {
                let at = searched + pos;
                match self.buf.get(at + 1) {
                    Some(b'\n') => return Ok(at),
                    Some(_) => searched = at + 1,
                    None => break,
                }
            }
            searched = self.buf.len().saturating_sub(1);
            if self.buf.len() > MAX_LINE {
                return Err(EngineError::new(
                    ErrorKind::Protocol,
                    "the server sent a line longer than 64 KiB",
                )
                .with_object(self.endpoint.clone()));
            }
            self.fill("in the middle of a reply").await?;
        }
    }

    /// The bytes received and not consumed yet.
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Consume the first `n` buffered bytes (at most [`Self::buffered`]'s length).
    pub(crate) fn consume(&mut self, n: usize) {
        self.buf.advance(n);
    }

    /// Read until at least `n` bytes are buffered (the buffer grows to hold them: callers
    /// bound `n`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Protocol`] (retryable) if the connection closes first.
    pub(crate) async fn fill_to(&mut self, n: usize) -> Result<(), EngineError> {
        if self.buf.capacity() < n {
            self.buf.reserve(n - self.buf.len());
        }
        while self.buf.len() < n {
            self.fill("in the middle of a value").await?;
        }
        Ok(())
    }

    /// Skip bare `\n` bytes (the keepalives a primary sends a replica while it prepares the
    /// RDB snapshot), then read one line.
    pub(crate) async fn read_line_skipping_newlines(&mut self) -> Result<BytesMut, EngineError> {
        loop {
            while self.buf.first() == Some(&b'\n') {
                self.buf.advance(1);
            }
            if !self.buf.is_empty() {
                return self.read_line().await;
            }
            self.fill("while waiting for the snapshot").await?;
        }
    }

    /// The next reply's first line, if it starts with `kind` (`b'+'`, `b':'`, `b'$'`, `b'*'`):
    /// the rest of the line and its length with the `\r\n`; nothing is consumed.
    async fn peek_line(&mut self, kind: u8) -> Result<Option<(&[u8], usize)>, EngineError> {
        let n = self.line_len().await?;
        let line = &self.buf[..n];
        Ok((line.first() == Some(&kind)).then(|| (&line[1..], n + 2)))
    }

    /// The next reply if it is a status (`+…`), consumed: `true`. `false` for any other
    /// reply, which is left for [`Self::read_reply`]. The fast path of pipelined replies.
    ///
    /// # Errors
    ///
    /// Connection and protocol errors.
    pub(crate) async fn try_status(&mut self) -> Result<bool, EngineError> {
        match self.peek_line(b'+').await? {
            Some((_, n)) => {
                self.consume(n);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The next reply if it is an integer (`:n`), consumed; `None` for any other reply,
    /// which is left for [`Self::read_reply`].
    ///
    /// # Errors
    ///
    /// Connection and protocol errors.
    pub(crate) async fn try_int(&mut self) -> Result<Option<i64>, EngineError> {
        match self.peek_line(b':').await? {
            Some((digits, n)) => match parse_i64(digits) {
                Some(v) => {
                    self.consume(n);
                    Ok(Some(v))
                }
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// The header of the next reply if it is a bulk string (`$len`) or an array (`*len`,
    /// as `kind`), consumed: `Some(Some(len))`, `Some(None)` for the null bulk string or
    /// array. `None` for any other reply, which is left for [`Self::read_reply`]; the
    /// payload of a bulk string follows (see [`Self::bulk_body`]).
    ///
    /// # Errors
    ///
    /// Connection and protocol errors.
    pub(crate) async fn try_len(&mut self, kind: u8) -> Result<Option<Option<usize>>, EngineError> {
        match self.peek_line(kind).await? {
            Some((b"-1", n)) => {
                self.consume(n);
                Ok(Some(None))
            }
            Some((digits, n)) => match parse_i64(digits).and_then(|v| usize::try_from(v).ok()) {
                Some(len) => {
                    self.consume(n);
                    Ok(Some(Some(len)))
                }
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// The `len` bytes of a bulk string whose header was read, once buffered whole (the
    /// buffer grows to hold them: callers bound `len`); its `\r\n` is checked. Consume
    /// `len + 2` bytes when done with them.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Protocol`]: the connection closed first, or no `\r\n` after the bytes.
    pub(crate) async fn bulk_body(&mut self, len: usize) -> Result<&[u8], EngineError> {
        self.fill_to(len + 2).await?;
        if &self.buf[len..len + 2] != b"\r\n" {
            return Err(
                EngineError::new(ErrorKind::Protocol, "a bulk string did not end in CRLF")
                    .with_object(self.endpoint.clone()),
            );
        }
        Ok(&self.buf[..len])
    }

    /// Read exactly `n` bytes.
    async fn read_exact(&mut self, n: usize) -> Result<BytesMut, EngineError> {
        while self.buf.len() < n {
            self.fill("in the middle of a reply").await?;
        }
        Ok(self.buf.split_to(n))
    }

    /// Read up to `max` (at least 1) bytes of a payload whose length the caller tracks.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Protocol`] (retryable) if the connection closes first.
    pub async fn read_some(&mut self, max: usize) -> Result<Bytes, EngineError> {
        if self.buf.is_empty() {
            self.fill("in the middle of a value").await?;
        }
        let n = max.min(self.buf.len());
        Ok(self.buf.split_to(n).freeze())
    }

    /// Consume the `\r\n` after a bulk payload.
    pub async fn read_crlf(&mut self) -> Result<(), EngineError> {
        let crlf = self.read_exact(2).await?;
        if &crlf[..] == b"\r\n" {
            Ok(())
        } else {
            Err(
                EngineError::new(ErrorKind::Protocol, "a bulk string did not end in CRLF")
                    .with_object(self.endpoint.clone()),
            )
        }
    }

    fn parse_int(&self, digits: &[u8]) -> Result<i64, EngineError> {
        std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                EngineError::new(
                    ErrorKind::Protocol,
                    format!(
                        "malformed number in reply: {:?}",
                        String::from_utf8_lossy(digits)
                    ),
                )
                .with_object(self.endpoint.clone())
            })
    }

    /// Read the header of a reply expected to be a bulk string, without its payload:
    /// `Ok(Ok(Some(len)))` for `$len` (the payload and its CRLF follow), `Ok(Ok(None))` for the
    /// null bulk, `Ok(Err(text))` for an error reply. Any other reply is read whole and
    /// returned as a protocol error.
    pub async fn read_bulk_header(&mut self) -> Result<Result<Option<u64>, String>, EngineError> {
        let line = self.read_line().await?;
        match line.first() {
            Some(b'$') => {
                let n = self.parse_int(&line[1..])?;
                Ok(Ok(u64::try_from(n).ok()))
            }
            Some(b'-') => Ok(Err(String::from_utf8_lossy(&line[1..]).into_owned())),
            _ => {
                let reply = self.finish_reply(line).await?;
                Err(self.unexpected("DUMP", &reply))
            }
        }
    }

    /// Read one whole reply.
    ///
    /// # Errors
    ///
    /// Connection and protocol errors (server errors are [`Reply::Error`]).
    pub fn read_reply(&mut self) -> BoxFuture<'_, Result<Reply, EngineError>> {
        async move {
            let line = self.read_line().await?;
            self.finish_reply(line).await
        }
        .boxed()
    }

    fn finish_reply(&mut self, line: BytesMut) -> BoxFuture<'_, Result<Reply, EngineError>> {
        async move {
            let rest = &line[1.min(line.len())..];
            match line.first() {
                Some(b'+') => Ok(Reply::Status(String::from_utf8_lossy(rest).into_owned())),
                Some(b'-') => Ok(Reply::Error(String::from_utf8_lossy(rest).into_owned())),
                Some(b':') => Ok(Reply::Int(self.parse_int(rest)?)),
                Some(b'$') => {
                    let n = self.parse_int(rest)?;
                    if n < 0 {
                        return Ok(Reply::Bulk(None));
                    }
                    let data = self.read_exact(n as usize).await?.freeze();
                    self.read_crlf().await?;
                    Ok(Reply::Bulk(Some(data)))
                }
                Some(b'*') => {
                    let n = self.parse_int(rest)?;
                    if n < 0 {
                        return Ok(Reply::Array(None));
                    }
                    let mut items = Vec::with_capacity((n as usize).min(4096));
                    for _ in 0..n {
                        items.push(self.read_reply().await?);
                    }
                    Ok(Reply::Array(Some(items)))
                }
                _ => Err(EngineError::new(
                    ErrorKind::Protocol,
                    format!(
                        "the server sent an unknown reply type: {:?}",
                        String::from_utf8_lossy(&line[..line.len().min(80)])
                    ),
                )
                .with_object(self.endpoint.clone())),
            }
        }
        .boxed()
    }

    /// `INFO <section>` as text.
    ///
    /// # Errors
    ///
    /// Connection, protocol and server errors.
    pub async fn info(&mut self, section: &str) -> Result<String, EngineError> {
        let endpoint = self.endpoint.clone();
        match self
            .command_ok(&[b"INFO", section.as_bytes()], &endpoint)
            .await?
        {
            Reply::Bulk(Some(text)) => Ok(String::from_utf8_lossy(&text).into_owned()),
            other => Err(self.unexpected("INFO", &other)),
        }
    }
}

/// A RESP integer (`-?[0-9]+`, no sign for zero required), or `None` if malformed or out
/// of range.
#[must_use]
pub fn parse_i64(digits: &[u8]) -> Option<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if negative { -v } else { v })
}

/// The value of `field` in `INFO` output (`field:value` lines).
#[must_use]
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// Logical databases that hold keys, from `INFO keyspace` (`db3:keys=2,expires=0,…`).
#[must_use]
pub fn keyspace_dbs(info: &str) -> Vec<u32> {
    let mut dbs: Vec<u32> = info
        .lines()
        .filter_map(|line| {
            let (name, stats) = line.trim().split_once(':')?;
            let db: u32 = name.strip_prefix("db")?.parse().ok()?;
            let keys: u64 = stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("keys="))?
                .parse()
                .ok()?;
            (keys > 0).then_some(db)
        })
        .collect();
    dbs.sort_unstable();
    dbs.dedup();
    dbs
}

/// Key counts of the logical databases that hold keys, from `INFO keyspace`
/// (`db3:keys=2,expires=0,…`), ascending by database number.
#[must_use]
pub fn keyspace_counts(info: &str) -> Vec<(u32, u64)> {
    let mut counts: Vec<(u32, u64)> = info
        .lines()
        .filter_map(|line| {
            let (name, stats) = line.trim().split_once(':')?;
            let db: u32 = name.strip_prefix("db")?.parse().ok()?;
            let keys: u64 = stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("keys="))?
                .parse()
                .ok()?;
            (keys > 0).then_some((db, keys))
        })
        .collect();
    counts.sort_unstable();
    counts.dedup_by_key(|(db, _)| *db);
    counts
}

/// A key as printable text in double quotes, redis-cli style: `\n`, `\r`, `\t`, `\"`, `\\`
/// and `\xHH` for other non-printable bytes; keys over 200 bytes are cut with their length.
#[must_use]
pub fn escape_key(key: &[u8]) -> String {
    const SHOWN: usize = 200;
    let mut s = String::with_capacity(key.len().min(SHOWN) + 2);
    s.push('"');
    for &b in key.iter().take(SHOWN) {
        match b {
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
    if key.len() > SHOWN {
        let _ = write!(s, "… ({} bytes)", key.len());
    }
    s
}

/// Parse `redis_version` (`7.0.15`) into (major, minor).
#[must_use]
pub fn parse_version(version: &str) -> (u32, u32) {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    use exporter_contract::DatabaseUrl;

    fn target(url: &str) -> Result<Target, EngineError> {
        Target::from_endpoint(&Endpoint::new(DatabaseUrl::parse(url).unwrap()))
    }

    #[test]
    fn url_parts_and_db_path() {
        let t = target("redis://app:s%40cret@cache.example:6380/3").unwrap();
        assert_eq!(t.host, "cache.example");
        assert_eq!(t.port, 6380);
        assert_eq!(t.username.as_deref(), Some("app"));
        assert_eq!(t.password.as_deref(), Some("s@cret"));
        assert_eq!(t.db, Some(3));
        assert!(!t.endpoint.contains("cret"));
        assert_eq!(t.db_object(3), "redis://app:****@cache.example:6380/3 db3");
        let t = target("redis://h").unwrap();
        assert_eq!((t.port, t.db, t.password), (6379, None, None));
        assert!(t.tls.is_none());
    }

    #[test]
    fn rediss_verifies_by_default_and_takes_redis_cli_options() {
        let t = target("rediss://u:hunter2@cache.example:6380").unwrap();
        let tls = t.tls.unwrap();
        assert_eq!(tls.mode, "rediss");
        assert_eq!(tls.options.verify, Verify::Full);
        assert_eq!(tls.options.roots, Some(Roots::System));
        assert_eq!(tls.options.server_name, "cache.example");
        let t =
            target("rediss://h?cacert=/ca.pem&cert=/c.pem&key=/k.pem&sni=cache.internal").unwrap();
        let tls = t.tls.unwrap();
        assert_eq!(tls.options.roots, Some(Roots::File("/ca.pem".into())));
        assert_eq!(tls.options.server_name, "cache.internal");
        assert_eq!(
            tls.options.identity.unwrap().key,
            std::path::PathBuf::from("/k.pem")
        );
        let t = target("rediss://h?insecure").unwrap();
        assert_eq!(t.tls.as_ref().unwrap().options.verify, Verify::None);
        assert_eq!(t.tls.unwrap().mode, "rediss insecure");
        // The endpoint's inline CA and dial override.
        let e = Endpoint::new(DatabaseUrl::parse("rediss://cache.example").unwrap())
            .with_ca_pem("-----BEGIN CERTIFICATE-----\n")
            .dial("127.0.0.1", 41000);
        let t = Target::from_endpoint(&e).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 41000));
        let tls = t.tls.unwrap();
        assert!(matches!(tls.options.roots, Some(Roots::Pem { .. })));
        assert_eq!(tls.options.server_name, "cache.example");
    }

    #[test]
    fn tls_mistakes_and_bad_paths_are_refused_without_the_password() {
        let err = target("redis://u:hunter2@h/0?cacert=/ca.pem").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("rediss://"), "{err}");
        assert!(!err.to_string().contains("hunter2"));
        let err = target("rediss://u:hunter2@h/0?cert=/c.pem").unwrap_err();
        assert!(err.to_string().contains("key=FILE"), "{err}");
        let err = target("rediss://h?insecure=maybe").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let err = target("redis://u:hunter2@h/cache").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn resp_integers_parse_exactly() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"1796283045734"), Some(1_796_283_045_734));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"-9223372036854775807"), Some(-i64::MAX));
        for bad in [&b""[..], b"-", b"1a", b" 1", b"+1", b"99999999999999999999"] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn encodes_binary_commands() {
        let mut buf = Vec::new();
        encode(&mut buf, &[b"SET", b"\x00\r\n", b""]);
        assert_eq!(buf, b"*3\r\n$3\r\nSET\r\n$3\r\n\x00\r\n\r\n$0\r\n\r\n");
    }

    #[test]
    fn keyspace_lists_dbs_with_keys() {
        let info = "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\ndb15:keys=2,expires=1,avg_ttl=5\r\ndb3:keys=0,expires=0,avg_ttl=0\r\n";
        assert_eq!(keyspace_dbs(info), vec![0, 15]);
        assert_eq!(keyspace_dbs("# Keyspace\r\n"), Vec::<u32>::new());
        assert_eq!(keyspace_counts(info), vec![(0, 1), (15, 2)]);
        assert!(keyspace_counts("# Keyspace\r\n").is_empty());
        assert_eq!(
            info_field("a:1\r\nredis_version:7.0.15\r\n", "redis_version"),
            Some("7.0.15")
        );
        assert_eq!(parse_version("7.0.15"), (7, 0));
        assert_eq!(parse_version("6.2"), (6, 2));
    }

    #[test]
    fn keys_are_escaped_printably() {
        assert_eq!(
            escape_key(b"\xff\xfe\x00bin-key"),
            r#""\xff\xfe\x00bin-key""#
        );
        assert_eq!(escape_key(b"a \"q\"\r\n"), r#""a \"q\"\r\n""#);
        let long = vec![b'a'; 300];
        assert!(escape_key(&long).ends_with("… (300 bytes)"));
    }

    #[test]
    fn server_errors_are_classified() {
        let e = server_error(
            "WRONGPASS invalid username-password pair or user is disabled.",
            "AUTH",
        );
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert_eq!(
            server_error("NOAUTH Authentication required.", "SCAN").kind(),
            ErrorKind::Auth
        );
        assert_eq!(
            server_error("ERR invalid password", "AUTH").kind(),
            ErrorKind::Auth
        );
        assert_eq!(
            server_error("NOPERM this user has no permissions", "DUMP").kind(),
            ErrorKind::Permission
        );
        let e = server_error("LOADING Redis is loading the dataset in memory", "SCAN");
        assert!(e.is_retryable());
        assert_eq!(
            server_error("ERR unknown command", "X").kind(),
            ErrorKind::Query
        );
    }
}
