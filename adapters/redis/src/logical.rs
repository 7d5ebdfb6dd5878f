//! The RESP format: `SCAN` every logical database, read `DUMP` payloads with their absolute
//! expiry in small atomic batches, and write `SELECT` / `RESTORE … REPLACE [ABSTTL]` commands,
//! streaming each payload in pieces and fingerprinting every key on the way.

use bytes::Bytes;
use exporter_contract::produce::{CHUNK, Producer};
use exporter_contract::{EngineError, ErrorKind, Fingerprint, Observer, TableSummary};
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use crate::conn::{Conn, Reply, Target, encode, escape_key, server_error};
use crate::rdbfmt::{DUMP_TRAILER, crc64, lzf_decompress};

/// `SCAN … COUNT` hint: keys per page (the server may return somewhat more or fewer).
pub const SCAN_COUNT: usize = 1000;

/// At most this many keys per `MULTI … EXEC` batch.
pub const BATCH_KEYS: usize = 128;

/// A batch stops growing once the keys' estimated size (`MEMORY USAGE`) reaches this; a key
/// estimated larger goes alone. Bounds what the source server buffers for us at once.
pub const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// Batch size when the server refuses `MEMORY USAGE` (ACL, renamed command, Redis < 4).
pub const BATCH_KEYS_UNSIZED: usize = 16;

/// RDB type of a set of strings in a hash table (`RDB_TYPE_SET`).
const RDB_TYPE_SET: u8 = 2;
/// RDB type of a hash in a hash table (`RDB_TYPE_HASH`).
const RDB_TYPE_HASH: u8 = 4;

/// How the absolute expiry of a key is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlMode {
    /// `PEXPIRETIME` (Redis 7.0+): the stored absolute expiry in Unix ms.
    ExpireTime,
    /// `TIME` once per batch plus `PTTL` per key, in the same `MULTI`: server now + PTTL.
    TimePlusPttl,
}

/// What to dump.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Logical databases, ascending.
    pub dbs: Vec<u32>,
    /// A `/db` URL: the one database is reported even when it holds no keys.
    pub restricted: bool,
    /// Expiry source.
    pub ttl_mode: TtlMode,
}

/// What a run produced.
#[derive(Debug, Default)]
pub struct Stats {
    /// Per database, as `db<n>`.
    pub tables: Vec<TableSummary>,
    /// Keys returned by SCAN that were gone at DUMP time, per database.
    pub vanished: Vec<(u32, u64)>,
    /// Highest RDB version found in a DUMP payload trailer (0 if no key).
    pub max_rdb_version: u16,
}

/// The absolute expiry of a key in Unix ms from the TTL reply; 0 for "no expiry", `None` if
/// the reply says the key does not exist.
#[must_use]
pub fn absolute_expiry(mode: TtlMode, reply: i64, now_ms: i64) -> Option<u64> {
    match reply {
        -2 => None,
        -1 => Some(0),
        t if t >= 0 => Some(match mode {
            TtlMode::ExpireTime => t as u64,
            // A PTTL of 0 still means "expires now": keep it non-zero so it is not read as
            // "no expiry"; RESTORE … ABSTTL then drops it, as it should.
            TtlMode::TimePlusPttl => (now_ms + t).max(1) as u64,
        }),
        _ => Some(0),
    }
}

/// The fingerprint row of one key (see the crate docs): `u64 BE key length ‖ key ‖ u128 BE
/// value digest`.
#[must_use]
pub fn fingerprint_row(key: &[u8], value_digest: u128) -> Vec<u8> {
    let mut row = Vec::with_capacity(key.len() + 24);
    row.extend_from_slice(&(key.len() as u64).to_be_bytes());
    row.extend_from_slice(key);
    row.extend_from_slice(&value_digest.to_be_bytes());
    row
}

/// Digest of a set or hash body: `xxh3_128(type ‖ u64 BE count ‖ u128 BE wrapping sum of the
/// elements' xxh3_128)`.
#[must_use]
pub fn unordered_digest(rdb_type: u8, count: u64, sum: u128) -> u128 {
    let mut buf = Vec::with_capacity(25);
    buf.push(rdb_type);
    buf.extend_from_slice(&count.to_be_bytes());
    buf.extend_from_slice(&sum.to_be_bytes());
    xxh3_128(&buf)
}

fn key_object(target: &Target, db: u32, key: &[u8]) -> String {
    format!("{} key {}", target.db_object(db), escape_key(key))
}

/// A DUMP payload being read off the socket: forwarded to the output as it comes, summed into
/// its CRC64, hashed (all but the trailer), and its trailer kept.
struct PayloadReader<'a, 'o> {
    conn: &'a mut Conn,
    out: Option<&'a mut Producer>,
    object: &'o str,
    len: u64,
    pos: u64,
    crc: u64,
    raw: Option<Xxh3>,
    trailer: [u8; DUMP_TRAILER],
}

impl PayloadReader<'_, '_> {
    fn body_end(&self) -> u64 {
        self.len - DUMP_TRAILER as u64
    }

    fn bad(&self, what: &str) -> EngineError {
        EngineError::new(
            ErrorKind::Protocol,
            format!("DUMP payload ({} bytes) {what}", self.len),
        )
        .with_object(self.object.to_owned())
    }

    /// The next piece of at most `max` bytes, not reading past absolute offset `limit`.
    async fn next(&mut self, max: usize, limit: u64) -> Result<Bytes, EngineError> {
        let room = limit.saturating_sub(self.pos);
        if room == 0 {
            return Err(self.bad("ended in the middle of a value"));
        }
        let want = (max as u64).min(room) as usize;
        let chunk = self.conn.read_some(want).await?;
        let start = self.pos;
        let end = start + chunk.len() as u64;
        let crc_end = self.len - 8;
        if start < crc_end {
            let n = (crc_end.min(end) - start) as usize;
            self.crc = crc64(self.crc, &chunk[..n]);
        }
        let body_end = self.body_end();
        if let Some(raw) = self.raw.as_mut()
            && start < body_end
        {
            let n = (body_end.min(end) - start) as usize;
            raw.update(&chunk[..n]);
        }
        if end > body_end {
            let from = body_end.max(start);
            let src = &chunk[(from - start) as usize..];
            let at = (from - body_end) as usize;
            self.trailer[at..at + src.len()].copy_from_slice(src);
        }
        self.pos = end;
        if let Some(out) = self.out.as_deref_mut() {
            out.write_bytes(chunk.clone()).await?;
        }
        Ok(chunk)
    }

    /// Exactly `n` bytes of the value body.
    async fn exact(&mut self, n: usize) -> Result<Vec<u8>, EngineError> {
        if self.pos + n as u64 > self.body_end() {
            return Err(self.bad("ended in the middle of a value"));
        }
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            let piece = self.next(n - v.len(), self.body_end()).await?;
            v.extend_from_slice(&piece);
        }
        Ok(v)
    }

    async fn byte(&mut self) -> Result<u8, EngineError> {
        Ok(self.exact(1).await?[0])
    }

    /// An RDB length: `Ok(len)` or, for a special string encoding, `Err(encoding)`.
    async fn rdb_len(&mut self) -> Result<Result<u64, u8>, EngineError> {
        // rdb.c rdbLoadLenByRef: 00|6 bits, 01|14 bits, 0x80 + u32 BE, 0x81 + u64 BE, 11|enc.
        let first = self.byte().await?;
        Ok(match first >> 6 {
            0 => Ok(u64::from(first & 0x3f)),
            1 => Ok((u64::from(first & 0x3f) << 8) | u64::from(self.byte().await?)),
            2 if first == 0x80 => {
                let b = self.exact(4).await?;
                Ok(u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
            }
            2 if first == 0x81 => {
                let b = self.exact(8).await?;
                let mut a = [0u8; 8];
                a.copy_from_slice(&b);
                Ok(u64::from_be_bytes(a))
            }
            2 => return Err(self.bad(&format!("has an unknown length byte {first:#04x}"))),
            _ => Err(first & 0x3f),
        })
    }

    async fn plain_len(&mut self) -> Result<u64, EngineError> {
        match self.rdb_len().await? {
            Ok(n) => Ok(n),
            Err(_) => Err(self.bad("has an encoded length where a count belongs")),
        }
    }

    /// One RDB string into `h`, optionally preceded by its length as u64 BE.
    async fn string_into(&mut self, h: &mut Xxh3, with_len: bool) -> Result<(), EngineError> {
        match self.rdb_len().await? {
            Ok(n) => {
                if with_len {
                    h.update(&n.to_be_bytes());
                }
                let mut left = n;
                while left > 0 {
                    let piece = self
                        .next(left.min(CHUNK as u64) as usize, self.body_end())
                        .await?;
                    h.update(&piece);
                    left -= piece.len() as u64;
                }
            }
            Err(enc @ 0..=2) => {
                // RDB_ENC_INT8/16/32: a little-endian integer standing for its decimal text.
                let bytes = self.exact(1 << enc).await?;
                let value = match enc {
                    0 => i64::from(bytes[0] as i8),
                    1 => i64::from(i16::from_le_bytes([bytes[0], bytes[1]])),
                    _ => i64::from(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
                };
                let text = value.to_string();
                if with_len {
                    h.update(&(text.len() as u64).to_be_bytes());
                }
                h.update(text.as_bytes());
            }
            Err(3) => {
                // RDB_ENC_LZF: compressed length, plain length, block.
                let clen = self.plain_len().await?;
                let ulen = self.plain_len().await?;
                if self.pos + clen > self.body_end() {
                    return Err(self.bad("ended in the middle of a compressed string"));
                }
                let block = self.exact(clen as usize).await?;
                let plain = lzf_decompress(&block, ulen as usize)
                    .ok_or_else(|| self.bad("holds a malformed LZF string"))?;
                if with_len {
                    h.update(&ulen.to_be_bytes());
                }
                h.update(&plain);
            }
            Err(enc) => return Err(self.bad(&format!("has an unknown string encoding {enc}"))),
        }
        Ok(())
    }

    /// Read the whole payload; returns the value digest and the RDB version of the trailer.
    async fn consume(&mut self) -> Result<(u128, u16), EngineError> {
        let rdb_type = self.byte().await?;
        let digest = if rdb_type == RDB_TYPE_SET || rdb_type == RDB_TYPE_HASH {
            // Hash-table encodings are serialized in dict order, which depends on the
            // server's random hash seed: a restored copy dumps its elements in another order.
            // Fingerprint them order-independently (see the crate docs).
            self.raw = None;
            let count = self.plain_len().await?;
            let mut sum = 0u128;
            for _ in 0..count {
                let mut h = Xxh3::new();
                if rdb_type == RDB_TYPE_HASH {
                    self.string_into(&mut h, true).await?;
                }
                self.string_into(&mut h, false).await?;
                sum = sum.wrapping_add(h.digest128());
            }
            if self.pos != self.body_end() {
                return Err(self.bad("has bytes after its last element"));
            }
            unordered_digest(rdb_type, count, sum)
        } else {
            while self.pos < self.body_end() {
                self.next(CHUNK, self.body_end()).await?;
            }
            self.raw.take().map_or(0, |h| h.digest128())
        };
        while self.pos < self.len {
            self.next(DUMP_TRAILER, self.len).await?;
        }
        let version = u16::from_le_bytes([self.trailer[0], self.trailer[1]]);
        let mut stored = [0u8; 8];
        stored.copy_from_slice(&self.trailer[2..]);
        if u64::from_le_bytes(stored) != self.crc {
            return Err(self.bad("failed its CRC64 check: the transfer is damaged"));
        }
        Ok((digest, version))
    }
}

/// Per-database accumulator.
struct DbRun {
    db: u32,
    rows: u64,
    fingerprint: Fingerprint,
    vanished: u64,
    /// Reported to the observer as started (with its first keys, or at its end).
    started: bool,
}

/// Runs the plan on `conn`: writes into `out` when given (a dump), always fingerprints.
pub struct Runner<'a> {
    conn: &'a mut Conn,
    target: &'a Target,
    plan: Plan,
    out: Option<&'a mut Producer>,
    probe_sizes: bool,
    max_rdb_version: u16,
    observer: Observer,
}

impl<'a> Runner<'a> {
    /// A runner; nothing is sent yet.
    pub fn new(
        conn: &'a mut Conn,
        target: &'a Target,
        plan: Plan,
        out: Option<&'a mut Producer>,
    ) -> Self {
        Self {
            conn,
            target,
            plan,
            out,
            probe_sizes: true,
            max_rdb_version: 0,
            observer: Observer::default(),
        }
    }

    /// The same runner, reporting to `observer`: each logical database (`db<n>`, a table of
    /// the summary) once its first keys are read (an empty one at its end, when it is
    /// listed), its keys per batch, and its end; the function libraries as one entry.
    #[must_use]
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = observer;
        self
    }

    async fn emit(&mut self, data: &[u8]) -> Result<(), EngineError> {
        match self.out.as_deref_mut() {
            Some(out) => out.write(data).await,
            None => Ok(()),
        }
    }

    /// Dump (or fingerprint) every planned database.
    ///
    /// # Errors
    ///
    /// Classified errors naming the database or key; `Cancelled` if the consumer went away.
    pub async fn run(mut self) -> Result<Stats, EngineError> {
        let mut stats = Stats::default();
        // The stream always starts with a SELECT, so even an empty dump is a valid, non-empty
        // command stream (design A06 (c)).
        if self.plan.dbs.is_empty() {
            let mut cmd = Vec::new();
            encode(&mut cmd, &[b"SELECT", b"0"]);
            self.emit(&cmd).await?;
        }
        if let Some(functions) = self.functions().await? {
            self.observer.whole(&functions);
            stats.tables.push(functions);
        }
        for db in self.plan.dbs.clone() {
            let run = self.database(db).await?;
            if run.vanished > 0 {
                stats.vanished.push((db, run.vanished));
            }
            if self.plan.restricted || run.rows > 0 {
                let summary = TableSummary {
                    name: db_name(db),
                    rows: run.rows,
                    fingerprint: run.fingerprint,
                };
                if !run.started {
                    self.observer.table_started(&summary.name);
                }
                self.observer.table_done(&summary);
                stats.tables.push(summary);
            }
        }
        if let Some(out) = self.out.as_deref_mut() {
            out.flush().await?;
        }
        stats.max_rdb_version = self.max_rdb_version;
        Ok(stats)
    }

    /// Redis 7 function libraries (`FUNCTION LOAD`) are server state outside every logical
    /// database and outside `SCAN`: without this a RESP dump would lose them silently. When
    /// any exist, emit `FUNCTION RESTORE <FUNCTION DUMP payload> REPLACE` before the keys and
    /// return a `functions` summary: one row per library, its name and a digest of its code.
    /// Servers before 7.0 (and servers where the command is renamed away) answer with an
    /// unknown-command error: they hold no functions.
    /// Source: <https://redis.io/docs/latest/commands/function-dump/>.
    async fn functions(&mut self) -> Result<Option<TableSummary>, EngineError> {
        let list = match self
            .conn
            .command(&[b"FUNCTION", b"LIST", b"WITHCODE"])
            .await?
        {
            Reply::Array(Some(items)) => items,
            Reply::Array(None) => return Ok(None),
            Reply::Error(e) if e.starts_with("ERR unknown command") => return Ok(None),
            Reply::Error(e) => {
                return Err(server_error(&e, "FUNCTION LIST").with_object("function libraries"));
            }
            other => return Err(self.conn.unexpected("FUNCTION LIST", &other)),
        };
        if list.is_empty() {
            return Ok(None);
        }
        let mut fingerprint = Fingerprint::EMPTY;
        for library in &list {
            let Reply::Array(Some(fields)) = library else {
                return Err(self.conn.unexpected("FUNCTION LIST", library));
            };
            let field = |name: &[u8]| {
                fields
                    .chunks(2)
                    .find(|kv| matches!(&kv[0], Reply::Bulk(Some(k)) if k.as_ref() == name))
                    .and_then(|kv| match kv.get(1) {
                        Some(Reply::Bulk(Some(v))) => Some(v.clone()),
                        _ => None,
                    })
            };
            let (Some(name), Some(code)) = (field(b"library_name"), field(b"library_code")) else {
                return Err(self.conn.unexpected("FUNCTION LIST", library));
            };
            fingerprint.add_row(&fingerprint_row(&name, xxh3_128(&code)));
        }
        if self.out.is_some() {
            let payload = match self.conn.command(&[b"FUNCTION", b"DUMP"]).await? {
                Reply::Bulk(Some(p)) => p,
                Reply::Error(e) => {
                    return Err(server_error(&e, "FUNCTION DUMP").with_object("function libraries"));
                }
                other => return Err(self.conn.unexpected("FUNCTION DUMP", &other)),
            };
            let mut cmd = Vec::new();
            encode(&mut cmd, &[b"FUNCTION", b"RESTORE", &payload, b"REPLACE"]);
            self.emit(&cmd).await?;
        }
        Ok(Some(TableSummary {
            name: "functions".to_owned(),
            rows: list.len() as u64,
            fingerprint,
        }))
    }

    async fn database(&mut self, db: u32) -> Result<DbRun, EngineError> {
        let object = self.target.db_object(db);
        let number = db.to_string();
        match self.conn.command(&[b"SELECT", number.as_bytes()]).await? {
            Reply::Status(_) => {}
            Reply::Error(e) if e.contains("out of range") => {
                return Err(EngineError::new(
                    ErrorKind::NotFound,
                    format!("no such logical database: {e}"),
                )
                .with_object(object));
            }
            Reply::Error(e) => return Err(server_error(&e, "SELECT").with_object(object)),
            other => return Err(self.conn.unexpected("SELECT", &other)),
        }
        let mut cmd = Vec::new();
        encode(&mut cmd, &[b"SELECT", number.as_bytes()]);
        self.emit(&cmd).await?;
        let mut run = DbRun {
            db,
            rows: 0,
            fingerprint: Fingerprint::EMPTY,
            vanished: 0,
            started: false,
        };
        let count = SCAN_COUNT.to_string();
        let mut cursor = Bytes::from_static(b"0");
        loop {
            let reply = self
                .conn
                .command_ok(&[b"SCAN", &cursor, b"COUNT", count.as_bytes()], &object)
                .await?;
            let (next, keys) = match reply {
                Reply::Array(Some(mut items)) if items.len() == 2 => {
                    let keys = items.pop();
                    let next = items.pop();
                    match (next, keys) {
                        (Some(Reply::Bulk(Some(next))), Some(Reply::Array(Some(keys)))) => {
                            let mut out = Vec::with_capacity(keys.len());
                            for k in keys {
                                match k {
                                    Reply::Bulk(Some(k)) => out.push(k),
                                    other => return Err(self.conn.unexpected("SCAN", &other)),
                                }
                            }
                            (next, out)
                        }
                        _ => {
                            return Err(EngineError::new(
                                ErrorKind::Protocol,
                                "SCAN: malformed reply",
                            )
                            .with_object(object));
                        }
                    }
                }
                other => return Err(self.conn.unexpected("SCAN", &other)),
            };
            self.keys(&mut run, &keys).await?;
            if &next[..] == b"0" {
                break;
            }
            cursor = next;
        }
        Ok(run)
    }

    /// Estimated sizes of `keys` (`MEMORY USAGE`), or `None` if the server refuses it.
    async fn sizes(&mut self, keys: &[Bytes]) -> Result<Option<Vec<u64>>, EngineError> {
        if !self.probe_sizes || keys.is_empty() {
            return Ok(None);
        }
        let mut cmds = Vec::new();
        for k in keys {
            encode(&mut cmds, &[b"MEMORY", b"USAGE", k]);
        }
        self.conn.send(&cmds).await?;
        let mut sizes = Vec::with_capacity(keys.len());
        let mut refused = None;
        for _ in keys {
            match self.conn.read_reply().await? {
                Reply::Int(n) => sizes.push(n.max(0) as u64),
                Reply::Bulk(None) => sizes.push(0),
                Reply::Error(e) => refused = Some(e),
                other => return Err(self.conn.unexpected("MEMORY USAGE", &other)),
            }
        }
        if let Some(e) = refused {
            tracing::info!(error = %e, "MEMORY USAGE refused; batching by key count only");
            self.probe_sizes = false;
            return Ok(None);
        }
        Ok(Some(sizes))
    }

    async fn keys(&mut self, run: &mut DbRun, keys: &[Bytes]) -> Result<(), EngineError> {
        let sizes = self.sizes(keys).await?;
        let mut start = 0;
        while start < keys.len() {
            let mut end = start;
            match &sizes {
                Some(sizes) => {
                    let mut bytes = 0u64;
                    while end < keys.len() && end - start < BATCH_KEYS {
                        if end > start && bytes + sizes[end] > BATCH_BYTES {
                            break;
                        }
                        bytes += sizes[end];
                        end += 1;
                    }
                }
                None => end = keys.len().min(start + BATCH_KEYS_UNSIZED),
            }
            let before = run.rows;
            self.batch(run, &keys[start..end]).await?;
            if run.rows > before {
                if !run.started {
                    self.observer.table_started(&db_name(run.db));
                    run.started = true;
                }
                self.observer.rows(run.rows - before);
            }
            start = end;
        }
        Ok(())
    }

    /// One `MULTI; [TIME;] (PEXPIRETIME|PTTL k; DUMP k)*; EXEC` round trip: each key's payload
    /// and expiry are read atomically.
    async fn batch(&mut self, run: &mut DbRun, keys: &[Bytes]) -> Result<(), EngineError> {
        let mode = self.plan.ttl_mode;
        let with_time = mode == TtlMode::TimePlusPttl;
        let mut cmds = Vec::new();
        encode(&mut cmds, &[b"MULTI"]);
        if with_time {
            encode(&mut cmds, &[b"TIME"]);
        }
        for k in keys {
            encode(&mut cmds, &[ttl_command(mode), k]);
            encode(&mut cmds, &[b"DUMP", k]);
        }
        encode(&mut cmds, &[b"EXEC"]);
        self.conn.send(&cmds).await?;

        self.read_queued(run, keys, mode).await?;
        let now_ms = if with_time {
            self.read_time().await?
        } else {
            0
        };
        for key in keys {
            self.read_key(run, key, mode, now_ms).await?;
        }
        Ok(())
    }

    /// The replies to `MULTI` and to each queued command, then the `EXEC` header. A command
    /// refused at queue time (NOPERM on a key, unknown command) is reported naming its key.
    async fn read_queued(
        &mut self,
        run: &DbRun,
        keys: &[Bytes],
        mode: TtlMode,
    ) -> Result<(), EngineError> {
        let with_time = mode == TtlMode::TimePlusPttl;
        let db_object = self.target.db_object(run.db);
        match self.conn.read_reply().await? {
            Reply::Status(_) => {}
            Reply::Error(e) => return Err(server_error(&e, "MULTI").with_object(db_object)),
            other => return Err(self.conn.unexpected("MULTI", &other)),
        }
        let queued = usize::from(with_time) + 2 * keys.len();
        let mut first_error: Option<(usize, String)> = None;
        for i in 0..queued {
            match self.conn.read_reply().await? {
                Reply::Status(_) => {}
                Reply::Error(e) => {
                    if first_error.is_none() {
                        first_error = Some((i, e));
                    }
                }
                other => return Err(self.conn.unexpected("MULTI", &other)),
            }
        }
        let header = self.conn.read_line().await?;
        if header.first() == Some(&b'*') {
            return Ok(());
        }
        let exec_error = String::from_utf8_lossy(&header[1.min(header.len())..]).into_owned();
        Err(match first_error {
            Some((i, e)) => {
                let (command, object) = if with_time && i == 0 {
                    ("TIME", db_object)
                } else {
                    let k = (i - usize::from(with_time)) / 2;
                    let command = if (i - usize::from(with_time)) % 2 == 0 {
                        ttl_command_name(mode)
                    } else {
                        "DUMP"
                    };
                    (command, key_object(self.target, run.db, &keys[k]))
                };
                server_error(&e, command).with_object(object)
            }
            None => server_error(&exec_error, "EXEC").with_object(db_object),
        })
    }

    /// The `TIME` reply, in milliseconds since the epoch.
    async fn read_time(&mut self) -> Result<i64, EngineError> {
        match self.conn.read_reply().await? {
            Reply::Array(Some(t)) if t.len() == 2 => {
                let part = |r: &Reply| match r {
                    Reply::Bulk(Some(b)) => std::str::from_utf8(b).ok()?.parse::<i64>().ok(),
                    _ => None,
                };
                match (part(&t[0]), part(&t[1])) {
                    (Some(s), Some(us)) => Ok(s * 1000 + us / 1000),
                    _ => Err(self.conn.unexpected("TIME", &Reply::Array(Some(t)))),
                }
            }
            other => Err(self.conn.unexpected("TIME", &other)),
        }
    }

    /// One key's expiry and `DUMP` replies: written out as a `RESTORE` command (the payload
    /// streamed, never held whole) and added to the fingerprint. A key that vanished since
    /// `SCAN` is counted, not an error.
    async fn read_key(
        &mut self,
        run: &mut DbRun,
        key: &Bytes,
        mode: TtlMode,
        now_ms: i64,
    ) -> Result<(), EngineError> {
        let object = key_object(self.target, run.db, key);
        let ttl = match self.conn.read_reply().await? {
            Reply::Int(t) => t,
            Reply::Error(e) => {
                return Err(server_error(&e, ttl_command_name(mode)).with_object(object));
            }
            other => return Err(self.conn.unexpected("PEXPIRETIME", &other)),
        };
        let len = match self.conn.read_bulk_header().await? {
            Ok(Some(len)) => len,
            Ok(None) => {
                // Expired or deleted between SCAN and DUMP: not an error (counted).
                run.vanished += 1;
                return Ok(());
            }
            Err(e) => {
                return Err(EngineError::new(
                    server_error(&e, "DUMP").kind(),
                    format!("DUMP failed, so the key cannot be exported: {e}"),
                )
                .with_object(object));
            }
        };
        let Some(expiry) = absolute_expiry(mode, ttl, now_ms) else {
            return Err(EngineError::new(
                ErrorKind::Protocol,
                format!("DUMP returned a value but the expiry reply ({ttl}) says no key"),
            )
            .with_object(object));
        };
        if len <= DUMP_TRAILER as u64 {
            return Err(EngineError::new(
                ErrorKind::Protocol,
                format!("DUMP payload of {len} bytes is too short"),
            )
            .with_object(object));
        }
        if self.out.is_some() {
            self.emit(&restore_head(key, expiry, len)).await?;
        }
        let mut reader = PayloadReader {
            conn: self.conn,
            out: self.out.as_deref_mut(),
            object: &object,
            len,
            pos: 0,
            crc: 0,
            raw: Some(Xxh3::new()),
            trailer: [0; DUMP_TRAILER],
        };
        let (digest, version) = reader.consume().await?;
        self.conn.read_crlf().await?;
        if self.out.is_some() {
            let tail: &[u8] = if expiry > 0 {
                b"\r\n$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n"
            } else {
                b"\r\n$7\r\nREPLACE\r\n"
            };
            self.emit(tail).await?;
        }
        self.max_rdb_version = self.max_rdb_version.max(version);
        run.rows += 1;
        run.fingerprint.add_row(&fingerprint_row(key, digest));
        Ok(())
    }
}

/// The command that reads a key's expiry in `mode`.
/// A logical database's name in the summary: `db<n>`.
fn db_name(db: u32) -> String {
    format!("db{db}")
}

fn ttl_command(mode: TtlMode) -> &'static [u8] {
    match mode {
        TtlMode::ExpireTime => b"PEXPIRETIME",
        TtlMode::TimePlusPttl => b"PTTL",
    }
}

/// [`ttl_command`] as text, for messages.
pub(crate) fn ttl_command_name(mode: TtlMode) -> &'static str {
    match mode {
        TtlMode::ExpireTime => "PEXPIRETIME",
        TtlMode::TimePlusPttl => "PTTL",
    }
}

/// `RESTORE key ttl <payload of len bytes>` up to the payload: `*6` with `ABSTTL` when the key
/// expires (`expiry > 0`, absolute milliseconds), else `*5`.
fn restore_head(key: &[u8], expiry: u64, len: u64) -> Vec<u8> {
    let ttl_text = expiry.to_string();
    let mut head = Vec::with_capacity(key.len() + 64);
    head.extend_from_slice(if expiry > 0 { b"*6\r\n" } else { b"*5\r\n" });
    head.extend_from_slice(b"$7\r\nRESTORE\r\n");
    head.extend_from_slice(format!("${}\r\n", key.len()).as_bytes());
    head.extend_from_slice(key);
    head.extend_from_slice(format!("\r\n${}\r\n{ttl_text}\r\n", ttl_text.len()).as_bytes());
    head.extend_from_slice(format!("${len}\r\n").as_bytes());
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_absolute_and_zero_means_none() {
        assert_eq!(absolute_expiry(TtlMode::ExpireTime, -2, 0), None);
        assert_eq!(absolute_expiry(TtlMode::ExpireTime, -1, 0), Some(0));
        assert_eq!(
            absolute_expiry(TtlMode::ExpireTime, 4_102_444_800_123, 5),
            Some(4_102_444_800_123)
        );
        assert_eq!(
            absolute_expiry(TtlMode::TimePlusPttl, 1500, 1_700_000_000_000),
            Some(1_700_000_001_500)
        );
        assert_eq!(
            absolute_expiry(TtlMode::TimePlusPttl, -1, 1_700_000_000_000),
            Some(0)
        );
        assert_eq!(
            absolute_expiry(TtlMode::TimePlusPttl, 0, 1_700_000_000_000),
            Some(1_700_000_000_000)
        );
    }

    #[test]
    fn rows_separate_key_from_digest() {
        let a = fingerprint_row(b"ab", 1);
        let b = fingerprint_row(b"a", 1);
        assert_ne!(a, b);
        assert_eq!(&a[..8], &2u64.to_be_bytes());
        assert_eq!(a.len(), 8 + 2 + 16);
    }

    #[test]
    fn unordered_digest_depends_on_type_count_and_sum() {
        let x = unordered_digest(RDB_TYPE_SET, 2, 7);
        assert_ne!(x, unordered_digest(RDB_TYPE_HASH, 2, 7));
        assert_ne!(x, unordered_digest(RDB_TYPE_SET, 3, 7));
        assert_ne!(x, unordered_digest(RDB_TYPE_SET, 2, 8));
    }
}
