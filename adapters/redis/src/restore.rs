//! The restore side: replaying a RESP archive (`SELECT` / `RESTORE` commands) into a live
//! server with a bounded pipeline, and the whole-server scratch targets of
//! `verify --level restore`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;

use bytes::{Buf, Bytes, BytesMut};
use exporter_contract::{
    Endpoint, EngineError, ErrorKind, PayloadFormat, RestoreOptions, RestoreSummary, ScratchServer,
    ServerInfo, TableSummary, Target,
};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};

use crate::conn::{self, Conn, Reply, escape_key, server_error};
use crate::rdbfmt::DUMP_TRAILER;
use crate::{ENGINE, RedisFormat};

/// Default pipelining window, in commands: at most this many commands are sent and not yet
/// answered at any time.
pub const WINDOW_COMMANDS: usize = 512;

/// Default pipelining window, in bytes of encoded commands sent and not yet answered. A
/// single command larger than this (a big key's `RESTORE`) is sent alone.
pub const WINDOW_BYTES: usize = 8 * 1024 * 1024;

/// Longest `*<count>` or `$<length>` line accepted in a RESP stream (including its CRLF).
const MAX_HEADER: usize = 32;

/// Most arguments accepted in one command (Redis's own limit for a multibulk request,
/// `networking.c` `processMultibulkBuffer`).
const MAX_ARGS: usize = 1024 * 1024;

/// The parser reserves at most this much ahead of the input it holds.
const RESERVE_STEP: usize = 16 * 1024 * 1024;

/// Arguments at least this long are written to the socket directly instead of being copied
/// into the write buffer; the write buffer is flushed once it holds this much.
const DIRECT_WRITE: usize = 64 * 1024;

/// How a key is shown in errors: escaped like [`escape_key`], cut at 200 bytes with its
/// length. Only the shown part is kept, never a whole (possibly huge) key.
#[derive(Debug, Clone)]
struct KeyName {
    head: Vec<u8>,
    len: usize,
}

impl KeyName {
    const SHOWN: usize = 200;

    fn new(key: &[u8]) -> Self {
        Self {
            head: key[..key.len().min(Self::SHOWN)].to_vec(),
            len: key.len(),
        }
    }
}

impl std::fmt::Display for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&escape_key(&self.head))?;
        if self.len > self.head.len() {
            write!(f, "… ({} bytes)", self.len)?;
        }
        Ok(())
    }
}

/// One complete command of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Command {
    /// 1-based position in the stream.
    number: u64,
    /// Byte offset of its `*` in the stream.
    offset: u64,
    args: Vec<Bytes>,
}

/// A streaming parser of RESP requests (arrays of bulk strings, the only shape a RESP archive
/// holds: RESP2 spec, "Sending commands to a Redis server"). Fed chunks cut anywhere — inside a
/// length line, a payload or its CRLF — it yields the same commands. It holds the unparsed rest
/// of the input: at most one command plus the last chunk.
#[derive(Debug, Default)]
struct Parser {
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    consumed: u64,
    /// Commands completed so far.
    commands: u64,
    /// Arguments of the command being read.
    args: Vec<Bytes>,
    /// Arguments still expected; 0 between commands.
    want: usize,
    /// Length of the bulk string being read, once its `$` line is consumed.
    bulk: Option<usize>,
    /// Offset of the current command's `*`.
    start: u64,
}

impl Parser {
    fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    fn malformed(&self, at: u64, what: &str) -> EngineError {
        EngineError::new(
            ErrorKind::Protocol,
            format!("the RESP stream is malformed at byte {at}: {what}"),
        )
        .with_object(format!("command {}", self.commands + 1))
    }

    /// A `*` or `$` header line (without CRLF), if complete.
    fn header(&mut self, kind: u8) -> Result<Option<u64>, EngineError> {
        let window = &self.buf[..self.buf.len().min(MAX_HEADER)];
        let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
            if self.buf.len() >= MAX_HEADER {
                return Err(self.malformed(
                    self.consumed,
                    &format!(
                        "expected a {:?} line, found {}",
                        char::from(kind),
                        escape_key(&self.buf[..MAX_HEADER.min(self.buf.len())])
                    ),
                ));
            }
            return Ok(None);
        };
        let line = &self.buf[..end];
        let value = (line.first() == Some(&kind))
            .then(|| std::str::from_utf8(&line[1..]).ok()?.parse::<u64>().ok())
            .flatten();
        let Some(value) = value else {
            return Err(self.malformed(
                self.consumed,
                &format!(
                    "expected {:?} and a non-negative number, found {}",
                    char::from(kind),
                    escape_key(line)
                ),
            ));
        };
        self.buf.advance(end + 2);
        self.consumed += end as u64 + 2;
        Ok(Some(value))
    }

    /// The next complete command, or `None` if more input is needed.
    fn next_command(&mut self) -> Result<Option<Command>, EngineError> {
        loop {
            if self.want == 0 {
                let start = self.consumed;
                let Some(count) = self.header(b'*')? else {
                    return Ok(None);
                };
                if count == 0 || count > MAX_ARGS as u64 {
                    // An empty array gets no reply from Redis, which would put every later
                    // reply out of step; no archive holds one.
                    return Err(self.malformed(start, &format!("a command of {count} arguments")));
                }
                self.start = start;
                self.want = count as usize;
                self.args = Vec::with_capacity(self.want.min(16));
            }
            let len = if let Some(len) = self.bulk {
                len
            } else {
                let Some(len) = self.header(b'$')? else {
                    return Ok(None);
                };
                let len = usize::try_from(len)
                    .ok()
                    .filter(|l| l.checked_add(2).is_some())
                    .ok_or_else(|| self.malformed(self.consumed, "a bulk string too long"))?;
                self.bulk = Some(len);
                len
            };
            if self.buf.len() < len + 2 {
                // Grow towards the whole argument instead of doubling through a big payload,
                // but never reserve more than RESERVE_STEP ahead of the data that arrived (a
                // damaged length must not allocate what it claims).
                self.buf
                    .reserve((len + 2 - self.buf.len()).min(RESERVE_STEP));
                return Ok(None);
            }
            if &self.buf[len..len + 2] != b"\r\n" {
                return Err(self.malformed(
                    self.consumed + len as u64,
                    "a bulk string does not end in CRLF",
                ));
            }
            let arg = self.buf.split_to(len).freeze();
            self.buf.advance(2);
            self.consumed += len as u64 + 2;
            self.bulk = None;
            self.args.push(arg);
            self.want -= 1;
            if self.want == 0 {
                self.commands += 1;
                return Ok(Some(Command {
                    number: self.commands,
                    offset: self.start,
                    args: std::mem::take(&mut self.args),
                }));
            }
        }
    }

    /// At the end of the input: an error if it stopped inside a command.
    fn finish(&self) -> Result<(), EngineError> {
        if self.want > 0 || !self.buf.is_empty() {
            let at = if self.want > 0 {
                self.start
            } else {
                self.consumed
            };
            return Err(EngineError::new(
                ErrorKind::Protocol,
                format!(
                    "the RESP stream ends in the middle of a command (it starts at byte {at}, \
                     the stream has {} bytes): the archive is truncated",
                    self.consumed + self.buf.len() as u64
                ),
            )
            .with_object(format!("command {}", self.commands + 1)));
        }
        if self.commands == 0 {
            return Err(EngineError::new(
                ErrorKind::Protocol,
                "the RESP stream is empty; an archive always holds at least one SELECT, so this \
                 one is truncated",
            ));
        }
        Ok(())
    }
}

/// The commands a RESP archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Select,
    Restore,
    /// `FUNCTION RESTORE <payload> [REPLACE]`: the server's function libraries (Redis 7).
    FunctionRestore,
}

impl Verb {
    fn name(self) -> &'static str {
        match self {
            Self::Select => "SELECT",
            Self::Restore => "RESTORE",
            Self::FunctionRestore => "FUNCTION RESTORE",
        }
    }
}

/// A command sent and not yet answered.
#[derive(Debug)]
struct Sent {
    number: u64,
    verb: Verb,
    /// The database it runs in (for `SELECT`: the one it selects).
    db: u32,
    key: Option<KeyName>,
    /// Encoded size.
    bytes: usize,
    /// RDB version of a `RESTORE` payload (its trailer's first two bytes, little endian).
    payload_version: Option<u16>,
}

/// The RDB version in the trailer of a `DUMP` or `FUNCTION DUMP` payload (its first two
/// bytes, little endian), if the payload is long enough to have one.
fn trailer_version(payload: &[u8]) -> Option<u16> {
    (payload.len() >= DUMP_TRAILER).then(|| {
        let t = payload.len() - DUMP_TRAILER;
        u16::from_le_bytes([payload[t], payload[t + 1]])
    })
}

/// The highest RDB version a Redis release reads (`RDB_VERSION` in its `rdb.h`); `None` where
/// not known here.
fn max_rdb_version(major_minor: (u32, u32)) -> Option<u16> {
    match major_minor {
        (5 | 6, _) => Some(9),
        (7, 0) => Some(10),
        (7, 2) => Some(11),
        (7, 4) => Some(12),
        _ => None,
    }
}

/// The first Redis release writing (and so reading) RDB version `v`.
fn first_release_reading(v: u16) -> Option<&'static str> {
    match v {
        9 => Some("5.0"),
        10 => Some("7.0"),
        11 => Some("7.2"),
        12 => Some("7.4"),
        _ => None,
    }
}

/// What "DUMP payload version or checksum are wrong" means for this payload and target.
fn explain_payload_error(payload: Option<u16>, server_version: &str) -> String {
    let target = max_rdb_version(conn::parse_version(server_version));
    match (payload, target) {
        (Some(v), Some(max)) if v > max => {
            let needed = first_release_reading(v).map_or_else(
                || "a newer Redis".to_owned(),
                |r| format!("Redis {r} or later"),
            );
            format!(
                ". The payload is RDB version {v} but this target runs Redis {server_version}, \
                 which reads RDB versions up to {max}: it is older than the server the archive \
                 was dumped from. Restore into {needed} (the manifest's payload_version, \
                 `rdb {v}`, is the newest RDB version among the archive's keys)"
            )
        }
        (Some(v), Some(max)) => format!(
            ". The payload is RDB version {v}, which this target (Redis {server_version}, RDB \
             versions up to {max}) reads, so its checksum is wrong: the archive is damaged"
        ),
        (Some(v), None) => format!(
            ". The payload is RDB version {v} and this target runs Redis {server_version}: \
             either the target is older than the payload's RDB version (compare the \
             manifest's payload_version) or the archive is damaged"
        ),
        (None, _) => {
            ". The payload is too short to carry an RDB version: the archive is damaged".to_owned()
        }
    }
}

/// A pipelined connection replaying commands in order, checking every reply.
struct Pipe {
    conn: Conn,
    endpoint: String,
    server_version: String,
    max_commands: usize,
    max_bytes: usize,
    /// The URL's `/db`: the only database a stream may select.
    fixed_db: Option<u32>,
    /// The database later commands run in.
    db: u32,
    out: Vec<u8>,
    inflight: VecDeque<Sent>,
    inflight_bytes: usize,
    summary: RestoreSummary,
}

impl Pipe {
    fn object(&self, sent: &Sent) -> String {
        match (&sent.verb, &sent.key) {
            (Verb::FunctionRestore, _) => format!(
                "{} function libraries (command {}: FUNCTION RESTORE)",
                self.endpoint, sent.number
            ),
            (Verb::Select, _) | (Verb::Restore, None) => format!(
                "{} (command {}: {} {})",
                self.endpoint,
                sent.number,
                sent.verb.name(),
                sent.db
            ),
            (Verb::Restore, Some(key)) => format!(
                "{} db{} key {key} (command {}: RESTORE)",
                self.endpoint, sent.db, sent.number
            ),
        }
    }

    /// Check a command and turn it into what is remembered while it is in flight.
    fn classify(&mut self, cmd: &Command) -> Result<Sent, EngineError> {
        let name = cmd.args[0].to_ascii_uppercase();
        let bytes = encoded_len(&cmd.args);
        let at = || format!("command {} (byte {})", cmd.number, cmd.offset);
        match &name[..] {
            b"SELECT" => {
                let db = (cmd.args.len() == 2)
                    .then(|| std::str::from_utf8(&cmd.args[1]).ok()?.parse::<u32>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        EngineError::new(
                            ErrorKind::Protocol,
                            "SELECT needs exactly one argument, a database number",
                        )
                        .with_object(at())
                    })?;
                if let Some(fixed) = self.fixed_db
                    && fixed != db
                {
                    return Err(EngineError::new(
                        ErrorKind::Unsupported,
                        format!(
                            "the archive selects db{db}, but the target URL names db{fixed} \
                             only; a RESP archive restores into the databases it was dumped \
                             from: drop the /{fixed} path to restore it"
                        ),
                    )
                    .with_object(format!("{} ({})", self.endpoint, at())));
                }
                self.db = db;
                Ok(Sent {
                    number: cmd.number,
                    verb: Verb::Select,
                    db,
                    key: None,
                    bytes,
                    payload_version: None,
                })
            }
            b"RESTORE" => {
                if cmd.args.len() < 4 {
                    return Err(EngineError::new(
                        ErrorKind::Protocol,
                        format!(
                            "RESTORE with {} arguments; it needs a key, a TTL and a payload",
                            cmd.args.len() - 1
                        ),
                    )
                    .with_object(at()));
                }
                let payload_version = trailer_version(&cmd.args[3]);
                Ok(Sent {
                    number: cmd.number,
                    verb: Verb::Restore,
                    db: self.db,
                    key: Some(KeyName::new(&cmd.args[1])),
                    bytes,
                    payload_version,
                })
            }
            b"FUNCTION" if cmd.args.len() >= 3 && cmd.args[1].eq_ignore_ascii_case(b"RESTORE") => {
                Ok(Sent {
                    number: cmd.number,
                    verb: Verb::FunctionRestore,
                    db: self.db,
                    key: None,
                    bytes,
                    payload_version: trailer_version(&cmd.args[2]),
                })
            }
            other => Err(EngineError::new(
                ErrorKind::Unsupported,
                format!(
                    "the stream holds a {} command; an exporter RESP archive holds only SELECT, \
                     RESTORE and FUNCTION RESTORE, and nothing else is replayed",
                    escape_key(&other[..other.len().min(40)])
                ),
            )
            .with_object(at())),
        }
    }

    /// Send one command ([`Self::classify`]'s result), first waiting for replies while the
    /// window is full.
    async fn submit(&mut self, cmd: &Command, sent: Sent) -> Result<(), EngineError> {
        if self.inflight.len() >= self.max_commands
            || (!self.inflight.is_empty() && self.inflight_bytes + sent.bytes > self.max_bytes)
        {
            self.flush().await?;
            let low = self.max_commands / 2;
            while !self.inflight.is_empty()
                && (self.inflight.len() > low || self.inflight_bytes + sent.bytes > self.max_bytes)
            {
                self.read_one().await?;
            }
        }
        self.out
            .extend_from_slice(format!("*{}\r\n", cmd.args.len()).as_bytes());
        for arg in &cmd.args {
            self.out
                .extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            if arg.len() >= DIRECT_WRITE {
                self.flush().await?;
                self.conn.send(arg).await?;
            } else {
                self.out.extend_from_slice(arg);
            }
            self.out.extend_from_slice(b"\r\n");
        }
        self.inflight_bytes += sent.bytes;
        self.inflight.push_back(sent);
        if self.out.len() >= DIRECT_WRITE {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), EngineError> {
        if !self.out.is_empty() {
            let out = std::mem::take(&mut self.out);
            self.conn.send(&out).await?;
            self.out = out;
            self.out.clear();
        }
        Ok(())
    }

    /// Read the reply of the oldest command in flight (everything is flushed first).
    async fn read_one(&mut self) -> Result<(), EngineError> {
        let Some(sent) = self.inflight.pop_front() else {
            return Ok(());
        };
        self.inflight_bytes -= sent.bytes;
        match self.conn.read_reply().await? {
            Reply::Status(_) => {
                self.summary.statements += 1;
                if sent.verb == Verb::Restore {
                    self.summary.rows += 1;
                }
                Ok(())
            }
            Reply::Error(text) => Err(self.fail(&sent, &text).await),
            other => Err(self
                .conn
                .unexpected(sent.verb.name(), &other)
                .with_object(self.object(&sent))),
        }
    }

    /// The error for the first failing command, after reading the replies of the commands
    /// pipelined behind it (they were already sent, so the server runs them regardless).
    async fn fail(&mut self, sent: &Sent, text: &str) -> EngineError {
        let base = server_error(text, sent.verb.name());
        let mut message = base.message().to_owned();
        if text.contains("payload version or checksum are wrong") {
            message.push_str(&explain_payload_error(
                sent.payload_version,
                &self.server_version,
            ));
        }
        let later = self.inflight.len();
        let (mut applied, mut failed, mut unknown) = (0usize, 0usize, false);
        while let Some(next) = self.inflight.pop_front() {
            self.inflight_bytes -= next.bytes;
            match self.conn.read_reply().await {
                Ok(Reply::Status(_)) => {
                    applied += 1;
                    self.summary.statements += 1;
                    if next.verb == Verb::Restore {
                        self.summary.rows += 1;
                    }
                }
                Ok(_) => failed += 1,
                Err(_) => {
                    unknown = true;
                    break;
                }
            }
        }
        if later == 0 {
            message.push_str("; no later command was sent");
        } else if unknown {
            let _ = write!(
                message,
                "; {later} later command(s) had already been sent (pipelined) and the \
                 connection failed while reading their replies, so whether they were applied \
                 is unknown; nothing after them was sent"
            );
        } else {
            let _ = write!(
                message,
                "; {later} later command(s) had already been sent (pipelined): {applied} \
                 applied, {failed} failed; nothing after them was sent"
            );
        }
        EngineError::new(base.kind(), message)
            .with_object(self.object(sent))
            .retryable(base.is_retryable())
    }

    /// Send what is buffered and check every remaining reply.
    async fn finish(&mut self) -> Result<(), EngineError> {
        self.flush().await?;
        while !self.inflight.is_empty() {
            self.read_one().await?;
        }
        Ok(())
    }
}

/// Bytes of `args` encoded as a RESP array of bulk strings.
/// Turn `RESTORE key ttl payload [REPLACE] [ABSTTL] …` into `RESTORE key 0 payload …`
/// without `ABSTTL`: the key is stored with no expiry. Other commands are left alone.
fn strip_expiry(cmd: &mut Command) {
    if cmd.args.len() >= 4 && cmd.args[0].eq_ignore_ascii_case(b"RESTORE") {
        cmd.args[2] = Bytes::from_static(b"0");
        let mut i = 4;
        while i < cmd.args.len() {
            if cmd.args[i].eq_ignore_ascii_case(b"ABSTTL") {
                cmd.args.remove(i);
            } else {
                i += 1;
            }
        }
    }
}

fn encoded_len(args: &[Bytes]) -> usize {
    let digits = |n: usize| n.checked_ilog10().unwrap_or(0) as usize + 1;
    let mut n = 1 + digits(args.len()) + 2;
    for a in args {
        n += 1 + digits(a.len()) + 2 + a.len() + 2;
    }
    n
}

async fn restore_resp(
    endpoint: Endpoint,
    max_commands: usize,
    max_bytes: usize,
    without_expiry: bool,
    mut body: BoxStream<'static, Result<Bytes, EngineError>>,
) -> Result<RestoreSummary, EngineError> {
    let mut opened = crate::open(&endpoint).await?;
    crate::check_db(&mut opened).await?;
    let crate::Opened {
        conn,
        target,
        version,
        ..
    } = opened;
    let mut pipe = Pipe {
        conn,
        endpoint: target.endpoint.clone(),
        server_version: version,
        max_commands,
        max_bytes,
        fixed_db: target.db,
        db: target.db.unwrap_or(0),
        out: Vec::with_capacity(DIRECT_WRITE * 2),
        inflight: VecDeque::new(),
        inflight_bytes: 0,
        summary: RestoreSummary::default(),
    };
    let mut parser = Parser::default();
    // On a problem in the input, the replies of what was already sent are checked first: a
    // command that failed earlier in the stream is the first failure, and is reported.
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                pipe.finish().await?;
                return Err(e);
            }
        };
        parser.push(&chunk);
        loop {
            match parser.next_command() {
                Ok(Some(mut cmd)) => {
                    if without_expiry {
                        strip_expiry(&mut cmd);
                    }
                    let sent = match pipe.classify(&cmd) {
                        Ok(sent) => sent,
                        Err(e) => {
                            pipe.finish().await?;
                            return Err(e);
                        }
                    };
                    // Its errors already account for the commands in flight.
                    pipe.submit(&cmd, sent).await?;
                }
                Ok(None) => break,
                Err(e) => {
                    pipe.finish().await?;
                    return Err(e);
                }
            }
        }
    }
    if let Err(e) = parser.finish() {
        pipe.finish().await?;
        return Err(e);
    }
    pipe.finish().await?;
    tracing::info!(
        endpoint = %pipe.endpoint,
        commands = pipe.summary.statements,
        keys = pipe.summary.rows,
        "redis RESP restore complete"
    );
    Ok(pipe.summary)
}

/// A Redis server (or one logical database of it, with a `/db` URL) to restore a RESP
/// archive into. Cheap to build: no I/O until a method runs.
///
/// # Restore
///
/// [`Target::restore`] takes the uncompressed `x.resp` stream in chunks cut anywhere, parses
/// it incrementally (RESP arrays of bulk strings) and replays its commands in order on one
/// connection, pipelined: at most [`WINDOW_COMMANDS`] commands and [`WINDOW_BYTES`] bytes are
/// in flight (sent, reply not yet read); a larger command goes alone. Every reply is checked,
/// in order. Only `SELECT n`, `RESTORE key ttl payload …` and `FUNCTION RESTORE payload …`
/// (Redis 7 function libraries) are accepted — what a RESP archive holds (FORMAT.md); any
/// other command is refused ([`ErrorKind::Unsupported`]) before it is sent. `SELECT n`
/// switches the database of the commands after it. The summary counts commands answered `OK`
/// (`statements`) and the key `RESTORE`s among them (`rows`; a key
/// whose absolute expiry has passed is accepted by the server and not stored, see the crate
/// docs on TTLs). [`RestoreOptions`] changes nothing for Redis (`skipped` stays 0).
///
/// # What a failure guarantees
///
/// The restore stops at the first error reply. Commands before the failing one were applied.
/// Commands after it that were already in flight (at most the window minus one) were sent
/// before its reply arrived, so the server ran them anyway: their replies are read and the
/// error says how many were applied and how many failed. Nothing after them is sent. With
/// [`RedisTarget::with_window`]`(1, _)` nothing after the failing command is ever applied.
///
/// # Memory
///
/// One parsed command (a key's whole `RESTORE` payload: a big key's payload is held whole,
/// once) plus the unparsed rest of the last chunk, plus the bookkeeping of the commands in
/// flight (their number, database and at most 200 bytes of key each). Sent commands are not
/// kept.
///
/// # Other payloads
///
/// [`PayloadFormat::Rdb`] is refused with [`ErrorKind::Unsupported`] and how to restore it by
/// hand: an RDB file is loaded by a server at startup, not over the protocol.
///
/// # Errors
///
/// A failing command is an [`EngineError`] (kind from the server's error code, usually
/// [`ErrorKind::Query`]) whose object names the command number, the database and the key
/// (escaped, cut at 200 bytes), with the server's message. "DUMP payload version or checksum
/// are wrong" is explained: the payload's RDB version against the target's Redis version (a
/// target older than the archive's `payload_version`), or a damaged payload. A stream that
/// ends inside a command, an empty stream or a malformed one is [`ErrorKind::Protocol`].
///
/// # Cancel safety
///
/// Dropping the future closes the connection; commands already sent may have been applied.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    endpoint: Endpoint,
    max_commands: usize,
    max_bytes: usize,
    without_expiry: bool,
}

impl RedisTarget {
    /// A target for `url` (`redis://…`; a `/db` path limits everything to that logical
    /// database, and a stream selecting another one is refused). No I/O.
    #[must_use]
    pub fn new(endpoint: impl Into<Endpoint>) -> Self {
        Self {
            endpoint: endpoint.into(),
            max_commands: WINDOW_COMMANDS,
            max_bytes: WINDOW_BYTES,
            without_expiry: false,
        }
    }

    /// The same target restoring every key **without** its expiry (`RESTORE key 0 payload
    /// REPLACE`). Used for the scratch of `verify --level restore`: a key whose absolute
    /// expiry passed between dump and verification would otherwise be accepted by the server
    /// and not stored, and its absence would read as a content difference. Fingerprints do
    /// not cover expiries (FORMAT.md), so the comparison is unchanged for every other key.
    #[must_use]
    pub fn without_expiry(mut self) -> Self {
        self.without_expiry = true;
        self
    }

    /// The same target with a pipelining window of at most `commands` commands (at least 1;
    /// 1 means no pipelining) and `bytes` bytes in flight.
    #[must_use]
    pub fn with_window(mut self, commands: usize, bytes: usize) -> Self {
        self.max_commands = commands.max(1);
        self.max_bytes = bytes.max(1);
        self
    }

    /// What the target holds: function libraries (whole-server targets only; they live
    /// outside every logical database) and the key count of each non-empty database.
    async fn contents(&self) -> Result<Contents, EngineError> {
        let mut opened = crate::open(&self.endpoint).await?;
        crate::check_db(&mut opened).await?;
        let counts = conn::keyspace_counts(&opened.conn.info("keyspace").await?);
        Ok(match opened.target.db {
            Some(db) => Contents {
                libraries: 0,
                dbs: counts.into_iter().filter(|(d, _)| *d == db).collect(),
            },
            None => Contents {
                libraries: function_libraries(&mut opened.conn, &opened.target.endpoint)
                    .await?
                    .unwrap_or(0),
                dbs: counts,
            },
        })
    }

    /// `FLUSHDB` of a `/db` target; `FLUSHALL` and `FUNCTION FLUSH` (where the server has
    /// functions) of a whole server.
    async fn flush(&self) -> Result<(), EngineError> {
        let mut opened = crate::open(&self.endpoint).await?;
        crate::check_db(&mut opened).await?;
        if let Some(db) = opened.target.db {
            let object = opened.target.db_object(db);
            opened.conn.command_ok(&[b"FLUSHDB"], &object).await?;
            return Ok(());
        }
        let endpoint = opened.target.endpoint.clone();
        opened.conn.command_ok(&[b"FLUSHALL"], &endpoint).await?;
        if function_libraries(&mut opened.conn, &endpoint)
            .await?
            .is_some()
        {
            let object = format!("{endpoint} function libraries");
            opened
                .conn
                .command_ok(&[b"FUNCTION", b"FLUSH"], &object)
                .await?;
        }
        Ok(())
    }
}

/// What a target holds.
struct Contents {
    /// Function libraries (`FUNCTION LIST`).
    libraries: usize,
    /// Key counts of the non-empty logical databases, ascending.
    dbs: Vec<(u32, u64)>,
}

impl Contents {
    fn describe(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.dbs.len() + 1);
        if self.libraries > 0 {
            out.push(format!(
                "functions ({} librar{})",
                self.libraries,
                if self.libraries == 1 { "y" } else { "ies" }
            ));
        }
        out.extend(
            self.dbs.iter().map(|(db, keys)| {
                format!("db{db} ({keys} key{})", if *keys == 1 { "" } else { "s" })
            }),
        );
        out
    }
}

/// The number of function libraries (`FUNCTION LIST`), `None` on a server without functions
/// (before Redis 7.0: an unknown command).
async fn function_libraries(conn: &mut Conn, endpoint: &str) -> Result<Option<usize>, EngineError> {
    match conn.command(&[b"FUNCTION", b"LIST"]).await? {
        Reply::Array(Some(libraries)) => Ok(Some(libraries.len())),
        Reply::Array(None) => Ok(Some(0)),
        Reply::Error(e) if e.starts_with("ERR unknown command") => Ok(None),
        Reply::Error(e) => {
            Err(server_error(&e, "FUNCTION LIST")
                .with_object(format!("{endpoint} function libraries")))
        }
        other => Err(conn.unexpected("FUNCTION LIST", &other)),
    }
}

fn rdb_by_hand() -> EngineError {
    EngineError::new(
        ErrorKind::Unsupported,
        "an RDB archive cannot be restored over the Redis protocol: a server loads an RDB file \
         only at startup. Restore it by hand: decompress it (`zstd -d x.rdb.zst -o dump.rdb`), \
         stop the target server, copy dump.rdb into its `dir` as its `dbfilename` (see \
         `CONFIG GET dir` and `CONFIG GET dbfilename`; with `appendonly yes` the AOF is loaded \
         instead, so turn it off for that start), start the server, and check `INFO keyspace`. \
         The target must be at least as new as the archive's payload_version",
    )
}

impl Target for RedisTarget {
    fn describe(&self) -> String {
        format!("{ENGINE} {}", self.endpoint.redacted())
    }

    fn validate(&self) -> Result<(), EngineError> {
        conn::Target::from_endpoint(&self.endpoint).map(|_| ())
    }

    fn preflight(&self) -> BoxFuture<'_, Result<ServerInfo, EngineError>> {
        crate::preflight(self.endpoint.clone(), RedisFormat::Resp).boxed()
    }

    /// `functions (<n> libraries)` if the server holds Redis 7 function libraries (not for a
    /// `/db` URL: they are server-wide), then `db<N> (<k> keys)` for each logical database
    /// holding keys (`INFO keyspace`), in database order; with a `/db` URL only that database.
    fn existing_objects(&self) -> BoxFuture<'_, Result<Vec<String>, EngineError>> {
        async move { Ok(self.contents().await?.describe()) }.boxed()
    }

    /// `FLUSHALL` and `FUNCTION FLUSH` (with a `/db` URL: `FLUSHDB` of that database only).
    fn clean(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        self.flush().boxed()
    }

    fn restore(
        &self,
        format: PayloadFormat,
        body: BoxStream<'static, Result<Bytes, EngineError>>,
        _options: RestoreOptions,
    ) -> BoxFuture<'_, Result<RestoreSummary, EngineError>> {
        match format {
            PayloadFormat::Resp => restore_resp(
                self.endpoint.clone(),
                self.max_commands,
                self.max_bytes,
                self.without_expiry,
                body,
            )
            .boxed(),
            PayloadFormat::Rdb => {
                async move { Err(rdb_by_hand().with_object(self.endpoint.redacted())) }.boxed()
            }
            PayloadFormat::Sql => async move {
                Err(EngineError::new(
                    ErrorKind::Unsupported,
                    "a SQL payload cannot be restored into Redis",
                )
                .with_object(self.endpoint.redacted()))
            }
            .boxed(),
        }
    }

    /// [`crate::fingerprint_database`] of the target: every logical database holding keys (or
    /// the URL's `/db`), exactly as a RESP dump of it computes them.
    fn fingerprint(&self) -> BoxFuture<'_, Result<Vec<TableSummary>, EngineError>> {
        async move { crate::fingerprint_database(&self.endpoint).await }.boxed()
    }
}

/// A whole Redis server used as the scratch of `verify --level restore`. Redis has no named
/// databases, so the scratch is the entire server: [`ScratchServer::create`] requires every
/// logical database to be empty and returns a [`RedisTarget`] for the whole server (the name
/// is only remembered), and [`ScratchServer::drop_scratch`] flushes it (`FLUSHALL`, and
/// `FUNCTION FLUSH` on servers with functions). "Empty" includes function libraries: a
/// scratch holding some would fingerprint differently from the archive.
///
/// Safety: one scratch at a time per `RedisScratch`, and `drop_scratch` flushes only a
/// server on which this value's `create` succeeded for that name — never a server found
/// non-empty. The emptiness check and the restore are not atomic: the server must be one
/// nobody else writes to.
///
/// # Errors
///
/// `create`: [`ErrorKind::Unsupported`] for a server holding keys or function libraries
/// (naming the databases, or `functions`), a
/// URL with a `/db` path, or a scratch already in use; connection errors. `drop_scratch`:
/// [`ErrorKind::NotFound`] for a name this value did not create; connection and server errors.
#[derive(Debug)]
pub struct RedisScratch {
    endpoint: Endpoint,
    live: Mutex<Option<String>>,
}

impl RedisScratch {
    /// A scratch server at `url` (`redis://…`, no `/db` path). No I/O.
    #[must_use]
    pub fn new(endpoint: impl Into<Endpoint>) -> Self {
        Self {
            endpoint: endpoint.into(),
            live: Mutex::new(None),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The URL names no logical database, and the server holds no keys and no function
    /// libraries.
    async fn check_usable(&self) -> Result<(), EngineError> {
        let target = conn::Target::from_endpoint(&self.endpoint)?;
        if let Some(db) = target.db {
            return Err(EngineError::new(
                ErrorKind::Unsupported,
                format!(
                    "a Redis scratch server is used whole (all logical databases), but the URL \
                     names db{db}; drop the /{db} path"
                ),
            )
            .with_object(target.endpoint));
        }
        let contents = RedisTarget::new(self.endpoint.clone())
            .without_expiry()
            .contents()
            .await?;
        if contents.libraries > 0 || !contents.dbs.is_empty() {
            return Err(EngineError::new(
                ErrorKind::Unsupported,
                format!(
                    "the Redis scratch server is not empty: {}. Redis has no named databases, \
                     so a scratch restore needs a whole server that holds no keys (and that \
                     verify will flush); give an empty, dedicated server",
                    contents.describe().join(", ")
                ),
            )
            .with_object(target.endpoint));
        }
        Ok(())
    }

    async fn create_scratch(&self, name: &str) -> Result<Box<dyn Target>, EngineError> {
        let target = conn::Target::from_endpoint(&self.endpoint)?;
        if let Some(db) = target.db {
            return Err(EngineError::new(
                ErrorKind::Unsupported,
                format!(
                    "a Redis scratch server is used whole (all logical databases), but the URL \
                     names db{db}; drop the /{db} path"
                ),
            )
            .with_object(target.endpoint));
        }
        if let Some(other) = self.live().as_ref() {
            return Err(EngineError::new(
                ErrorKind::Unsupported,
                format!(
                    "the Redis scratch server already holds scratch {other:?}; Redis has no \
                     named databases, so it holds one at a time"
                ),
            )
            .with_object(target.endpoint));
        }
        // Keys that expired since the dump must still be there to be compared.
        let scratch = RedisTarget::new(self.endpoint.clone()).without_expiry();
        let contents = scratch.contents().await?;
        if contents.libraries > 0 || !contents.dbs.is_empty() {
            return Err(EngineError::new(
                ErrorKind::Unsupported,
                format!(
                    "the Redis scratch server is not empty: {}. Redis has no named databases, \
                     so a scratch restore needs a whole server that holds no keys (and that \
                     verify will flush); give an empty, dedicated server",
                    contents.describe().join(", ")
                ),
            )
            .with_object(target.endpoint));
        }
        let mut live = self.live();
        if let Some(other) = live.as_ref() {
            return Err(EngineError::new(
                ErrorKind::Unsupported,
                format!("the Redis scratch server already holds scratch {other:?}"),
            )
            .with_object(target.endpoint));
        }
        *live = Some(name.to_owned());
        Ok(Box::new(scratch))
    }

    async fn drop_named(&self, name: &str) -> Result<(), EngineError> {
        let created = self.live().as_deref() == Some(name);
        if !created {
            return Err(EngineError::new(
                ErrorKind::NotFound,
                format!(
                    "no scratch {name:?} was created on this Redis server by this run; refusing \
                     to flush it"
                ),
            )
            .with_object(self.endpoint.redacted()));
        }
        RedisTarget::new(self.endpoint.clone()).flush().await?;
        *self.live() = None;
        Ok(())
    }
}

impl ScratchServer for RedisScratch {
    fn describe(&self) -> String {
        format!(
            "{ENGINE} {} (whole server as scratch)",
            self.endpoint.redacted()
        )
    }

    fn create(&self, name: &str) -> BoxFuture<'_, Result<Box<dyn Target>, EngineError>> {
        let name = name.to_owned();
        async move { self.create_scratch(&name).await }.boxed()
    }

    fn drop_scratch(&self, name: &str) -> BoxFuture<'_, Result<(), EngineError>> {
        let name = name.to_owned();
        async move { self.drop_named(&name).await }.boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), EngineError>> {
        self.check_usable().boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(args: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        conn::encode(&mut v, args);
        v
    }

    /// A stream exercising empty, binary and CRLF-holding arguments and a 300 KiB payload.
    fn stream() -> (Vec<u8>, Vec<Vec<Vec<u8>>>) {
        let big: Vec<u8> = (0..300 * 1024).map(|i| (i % 251) as u8).collect();
        let cmds: Vec<Vec<Vec<u8>>> = vec![
            vec![b"SELECT".to_vec(), b"0".to_vec()],
            vec![
                b"RESTORE".to_vec(),
                b"\xff\r\n\x00k".to_vec(),
                b"0".to_vec(),
                b"\r\n$3\r\n*1\r\n".to_vec(),
                b"REPLACE".to_vec(),
            ],
            vec![b"RESTORE".to_vec(), Vec::new(), b"0".to_vec(), big],
            vec![b"SELECT".to_vec(), b"15".to_vec()],
        ];
        let mut bytes = Vec::new();
        for c in &cmds {
            let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            bytes.extend_from_slice(&enc(&args));
        }
        (bytes, cmds)
    }

    fn parse(chunks: &[&[u8]]) -> Result<Vec<Command>, EngineError> {
        let mut p = Parser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c);
            while let Some(cmd) = p.next_command()? {
                out.push(cmd);
            }
        }
        p.finish()?;
        Ok(out)
    }

    fn args_of(cmds: &[Command]) -> Vec<Vec<Vec<u8>>> {
        cmds.iter()
            .map(|c| c.args.iter().map(|a| a.to_vec()).collect())
            .collect()
    }

    #[test]
    fn whole_stream_parses_to_its_commands() {
        let (bytes, want) = stream();
        let got = parse(&[&bytes]).unwrap();
        assert_eq!(args_of(&got), want);
        assert_eq!(
            got.iter().map(|c| c.number).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(got[0].offset, 0);
        assert_eq!(got[1].offset, enc(&[b"SELECT", b"0"]).len() as u64);
    }

    #[test]
    fn one_byte_chunks_give_identical_commands() {
        let (bytes, _) = stream();
        let whole = parse(&[&bytes]).unwrap();
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse(&chunks).unwrap(), whole);
    }

    #[test]
    fn every_split_point_gives_identical_commands() {
        // Two chunks cut at every byte of the small commands and around the big payload.
        let (bytes, _) = stream();
        let whole = parse(&[&bytes]).unwrap();
        let small = whole[2].offset as usize + 40;
        let big_end = whole[3].offset as usize;
        let cuts = (0..=small).chain(big_end - 40..=bytes.len());
        for cut in cuts {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(parse(&[a, b]).unwrap(), whole, "cut at {cut}");
        }
        // Three chunks: every pair of cuts inside the first two commands.
        let head = whole[2].offset as usize;
        for i in 0..=head {
            for j in i..=head {
                let got = parse(&[&bytes[..i], &bytes[i..j], &bytes[j..]]).unwrap();
                assert_eq!(got, whole, "cuts at {i}, {j}");
            }
        }
    }

    #[test]
    fn truncation_anywhere_is_a_protocol_error() {
        let (bytes, _) = stream();
        let boundaries: Vec<usize> = parse(&[&bytes])
            .unwrap()
            .iter()
            .map(|c| c.offset as usize)
            .collect();
        let mut cuts = 0;
        for cut in (1..200).chain([bytes.len() - 1, bytes.len() - 2]) {
            if boundaries.contains(&cut) {
                // A stream cut between commands is a shorter valid stream.
                assert!(parse(&[&bytes[..cut]]).is_ok());
                continue;
            }
            cuts += 1;
            let (first, _) = bytes.split_at(cut);
            let chunks: Vec<&[u8]> = first.chunks(7).collect();
            let err = parse(&chunks).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Protocol, "cut at {cut}");
            assert!(
                err.to_string().contains("truncated")
                    && err.object().unwrap().starts_with("command "),
                "{err}"
            );
        }
        assert_eq!(cuts, 199);
        let err = parse(&[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn malformed_streams_are_refused() {
        for (bad, what) in [
            (&b"SELECT 0\r\n"[..], "expected '*'"),
            (b"*0\r\n", "0 arguments"),
            (b"*1\r\n:5\r\n", "expected '$'"),
            (b"*1\r\n$-1\r\n", "non-negative"),
            (b"*1\r\n$2\r\nabX\r\n", "CRLF"),
            (
                b"*1\r\n$99999999999999999999999999999999999\r\n",
                "expected a '$' line",
            ),
        ] {
            let err = parse(&[bad]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Protocol, "{bad:?}");
            assert!(err.to_string().contains(what), "{bad:?}: {err}");
        }
        // A damaged length claiming far more than arrives allocates nothing near it: the
        // stream just ends truncated.
        let err = parse(&[b"*1\r\n$999999999999999\r\nab"]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = parse(&[b"*1\r\n$18446744073709551615\r\n"]).unwrap_err();
        assert!(err.to_string().contains("too long"), "{err}");
        let err = parse(&[&enc(&[b"SELECT", b"0"]), b"*1\r\n$2\r\nabX\r\n"]).unwrap_err();
        assert_eq!(err.object(), Some("command 2"));
    }

    #[test]
    fn strip_expiry_keeps_key_payload_and_replace() {
        let mut cmd = Command {
            number: 1,
            offset: 0,
            args: [
                &b"RESTORE"[..],
                b"k",
                b"1700000000000",
                b"payload",
                b"REPLACE",
                b"ABSTTL",
            ]
            .iter()
            .map(|a| Bytes::copy_from_slice(a))
            .collect(),
        };
        strip_expiry(&mut cmd);
        assert_eq!(
            args_of(&[cmd]),
            vec![vec![
                b"RESTORE".to_vec(),
                b"k".to_vec(),
                b"0".to_vec(),
                b"payload".to_vec(),
                b"REPLACE".to_vec()
            ]]
        );
        let mut select = Command {
            number: 2,
            offset: 0,
            args: vec![Bytes::from_static(b"SELECT"), Bytes::from_static(b"3")],
        };
        strip_expiry(&mut select);
        assert_eq!(select.args.len(), 2);
    }

    #[test]
    fn encoded_len_matches_the_encoding() {
        let (_, cmds) = stream();
        for c in cmds {
            let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            let b: Vec<Bytes> = c.iter().map(|a| Bytes::from(a.clone())).collect();
            assert_eq!(encoded_len(&b), enc(&args).len());
        }
        let ten: Vec<Bytes> = (0..10).map(|_| Bytes::from_static(b"0123456789")).collect();
        assert_eq!(encoded_len(&ten), enc(&[&b"0123456789"[..]; 10]).len());
    }

    #[test]
    fn keys_are_shown_escaped_and_cut() {
        assert_eq!(KeyName::new(b"a\xff\n").to_string(), r#""a\xff\n""#);
        let long = vec![b'k'; 1000];
        let shown = KeyName::new(&long).to_string();
        assert!(shown.ends_with("\"… (1000 bytes)"), "{shown}");
        assert_eq!(shown, escape_key(&long));
    }

    #[test]
    fn payload_errors_are_explained_by_version() {
        let newer = explain_payload_error(Some(11), "7.0.15");
        assert!(
            newer.contains("RDB version 11")
                && newer.contains("Redis 7.0.15")
                && newer.contains("up to 10")
                && newer.contains("Redis 7.2 or later"),
            "{newer}"
        );
        let damaged = explain_payload_error(Some(9), "7.0.15");
        assert!(damaged.contains("damaged"), "{damaged}");
        let unknown = explain_payload_error(Some(13), "9.1.0");
        assert!(unknown.contains("either"), "{unknown}");
        assert_eq!(max_rdb_version((6, 2)), Some(9));
        assert_eq!(max_rdb_version((7, 4)), Some(12));
    }
}
