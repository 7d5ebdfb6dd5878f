//! A minimal, binary-safe RESP2 client on a tokio `TcpStream`: connecting and authenticating,
//! pipelined commands, replies, and payloads read in bounded pieces (never a whole value).
//!
//! Why not the `redis` crate here: its replies are whole `Value`s, so a 100 MB `DUMP` payload
//! would be held (at least) once in memory, and the replication handshake of the RDB format
//! (`SYNC` answered by a raw, possibly mark-terminated file) is not RESP at all. Both paths
//! need to read the socket in pieces, so one small client serves both.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use exporter_contract::{DatabaseUrl, EngineError, ErrorKind};
use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `CLIENT SETNAME` of every connection: lets an operator (and our tests) find the exporter's
/// connections in `CLIENT LIST`.
pub const CLIENT_NAME: &str = "exporter";

/// Longest status, error or length line accepted from the server.
const MAX_LINE: usize = 64 * 1024;

/// Socket reads go into a buffer of at least this size.
const READ_BUF: usize = 64 * 1024;

/// Where and how to connect, parsed from a [`DatabaseUrl`]. No I/O.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// TCP port (default 6379).
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
}

impl Target {
    /// Parse `redis://[user[:password]@]host[:port][/db]`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] for `rediss://` (this build has no TLS and never downgrades
    /// to clear text), another scheme, a non-numeric `/db` path, or a bad `connect_timeout`.
    pub fn from_url(url: &DatabaseUrl) -> Result<Self, EngineError> {
        let endpoint = url.redacted();
        let unsupported = |msg: String| {
            EngineError::new(ErrorKind::Unsupported, msg).with_object(endpoint.clone())
        };
        match url.scheme() {
            "redis" => {}
            "rediss" => {
                return Err(unsupported(
                    "rediss:// (TLS) is not supported by this build of exporter; refusing to \
                     connect in clear text. Reach the server through a tunnel that terminates \
                     TLS (e.g. `aptible db:tunnel`) and use redis://"
                        .to_owned(),
                ));
            }
            other => return Err(unsupported(format!("URL scheme {other:?} is not Redis"))),
        }
        let db = match url.database() {
            None => None,
            Some(text) => Some(text.parse::<u32>().map_err(|_| {
                unsupported(format!(
                    "the URL path must be a logical database number like /0, got /{text:?}"
                ))
            })?),
        };
        let mut connect_timeout = Duration::from_secs(30);
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
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
                // Ignoring a parameter could mean dumping without the authentication or
                // database the user asked for; refuse it, naming only the key (values may be
                // secrets).
                other => {
                    return Err(unsupported(format!(
                        "URL parameter {other:?} is not supported (supported: connect_timeout); \
                         put the user, password and database in the URL itself"
                    )));
                }
            }
        }
        Ok(Self {
            host: url.host().to_owned(),
            port: url.port().unwrap_or(6379),
            username: url.username(),
            password: url.password(),
            db,
            endpoint,
            connect_timeout,
        })
    }

    /// `endpoint db<n>`: the object named by errors about one logical database.
    #[must_use]
    pub fn db_object(&self, db: u32) -> String {
        format!("{} db{db}", self.endpoint)
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
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        buf.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        buf.extend_from_slice(arg);
        buf.extend_from_slice(b"\r\n");
    }
}

/// An open connection.
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    /// The redacted endpoint, for error objects.
    pub endpoint: String,
}

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
        let mut conn = Self {
            stream,
            buf: BytesMut::with_capacity(READ_BUF),
            endpoint,
        };
        conn.auth(target).await?;
        // Best effort: a server or ACL that refuses CLIENT SETNAME is no reason to fail.
        if let Reply::Error(e) = conn
            .command(&[b"CLIENT", b"SETNAME", CLIENT_NAME.as_bytes()])
            .await?
        {
            tracing::debug!(error = %e, "CLIENT SETNAME refused");
        }
        Ok(conn)
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
                tracing::warn!(endpoint = %self.endpoint, "the server needs no password; ignoring the one in the URL");
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
        self.stream.write_all(data).await.map_err(|e| {
            EngineError::new(
                ErrorKind::Protocol,
                format!("writing to the server failed: {e}"),
            )
            .with_object(self.endpoint.clone())
            .with_source(e)
            .retryable(true)
        })
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
            Err(e) => Err(EngineError::new(
                ErrorKind::Protocol,
                format!("reading from the server failed {what}: {e}"),
            )
            .with_object(self.endpoint.clone())
            .with_source(e)
            .retryable(true)),
        }
    }

    /// Read one `\r\n`-terminated line (without the terminator).
    pub(crate) async fn read_line(&mut self) -> Result<BytesMut, EngineError> {
        let mut searched = 0;
        loop {
            if let Some(pos) = self.buf[searched..].windows(2).position(|w| w == b"\r\n") {
                let pos = searched + pos;
                let line = self.buf.split_to(pos);
                self.buf.advance(2);
                return Ok(line);
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

    #[test]
    fn url_parts_and_db_path() {
        let url = DatabaseUrl::parse("redis://app:s%40cret@cache.example:6380/3").unwrap();
        let t = Target::from_url(&url).unwrap();
        assert_eq!(t.host, "cache.example");
        assert_eq!(t.port, 6380);
        assert_eq!(t.username.as_deref(), Some("app"));
        assert_eq!(t.password.as_deref(), Some("s@cret"));
        assert_eq!(t.db, Some(3));
        assert!(!t.endpoint.contains("cret"));
        assert_eq!(t.db_object(3), "redis://app:****@cache.example:6380/3 db3");
        let t = Target::from_url(&DatabaseUrl::parse("redis://h").unwrap()).unwrap();
        assert_eq!((t.port, t.db, t.password), (6379, None, None));
    }

    #[test]
    fn rediss_and_bad_paths_are_refused_without_the_password() {
        let url = DatabaseUrl::parse("rediss://u:hunter2@h:6380").unwrap();
        let err = Target::from_url(&url).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains("TLS"), "{err}");
        assert!(!err.to_string().contains("hunter2"));
        let url = DatabaseUrl::parse("redis://u:hunter2@h/cache").unwrap();
        let err = Target::from_url(&url).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(!err.to_string().contains("hunter2"));
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
