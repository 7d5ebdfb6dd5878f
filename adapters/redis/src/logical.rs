//! The RESP format: `SCAN` every logical database, read `DUMP` payloads with their absolute
//! expiry in small atomic batches, and write `SELECT` / `RESTORE … REPLACE [ABSTTL]` commands,
//! fingerprinting every key on the way.
//!
//! # The pipeline
//!
//! One connection, never waiting for a reply before sending the next work it can know of, so
//! the single-threaded server has the next command queued while this side parses the replies
//! before it (the dump is bound by the server's CPU, not by round trips; BENCHMARKS.md,
//! issue 17). Per database, a queue of the replies the server owes, in the order the commands
//! went out:
//!
//! - `SCAN cursor COUNT` [`SCAN_COUNT`]: the next page is asked for as soon as its cursor is
//!   known and fewer than [`SCAN_AHEAD_KEYS`] keys wait to be batched;
//! - batches, `MULTI; [TIME;] (PEXPIRETIME|PTTL k; DUMP k)*; EXEC`, cut from the pages in
//!   `SCAN` order, at most [`BATCHES_IN_FLIGHT`] sent and not read back: what the server
//!   buffers for us. While no payload of the database was over [`LARGE_PAYLOAD`] they are
//!   not sized: [`BATCH_KEYS_UNSIZED`] keys, doubling with each batch read up to
//!   [`BATCH_KEYS`] (a database of small values pays no `MEMORY USAGE`: a fifth of the
//!   server's time in commands per key before, BENCHMARKS.md). After the first larger
//!   payload:
//! - `MEMORY USAGE k` for the unsent keys of every page, asked for as soon as the page is
//!   there, and batches of at most [`BATCH_KEYS`] keys and ~[`BATCH_BYTES`] (a larger key
//!   alone), or of [`BATCH_KEYS_UNSIZED`] keys where the server refuses `MEMORY USAGE`.
//!
//! Keys are written in the order `SCAN` returned them, each key `SCAN` returns once per time
//! it returns it (no memory of keys already written: that would grow with the database), so
//! for a server that does not change meanwhile the stream is, byte for byte, the one a round
//! trip per command gave. Replies are parsed in the read buffer: a payload of up to
//! [`WHOLE_PAYLOAD`] bytes is checked (CRC64), hashed and copied into the output whole; a
//! larger one streams through in pieces ([`PayloadReader`]). A page's key names share one
//! buffer.

use std::collections::VecDeque;

use bytes::Bytes;
use exporter_contract::produce::{CHUNK, Producer};
use exporter_contract::{EngineError, ErrorKind, Fingerprint, Observer, TableSummary};
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use crate::conn::{Conn, Reply, Target, decimal, encode, escape_key, push_header, server_error};
use crate::rdbfmt::{DUMP_TRAILER, crc64, lzf_decompress};

/// `SCAN … COUNT` hint: keys per page (the server may return somewhat more or fewer).
pub const SCAN_COUNT: usize = 1000;

/// The next `SCAN` page is asked for once fewer keys than this wait to be batched: its reply
/// arrives while batches of these still run, and the server reads a page's keys again soon
/// after it listed them (while they may still be in its CPU caches). At most three pages of
/// key names are held.
pub const SCAN_AHEAD_KEYS: usize = SCAN_COUNT / 2;

/// At most this many keys per `MULTI … EXEC` batch.
pub const BATCH_KEYS: usize = 128;

/// A batch stops growing once the keys' estimated size (`MEMORY USAGE`) reaches this; a key
/// estimated larger goes alone. Bounds what the source server buffers for us at once.
pub const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// Keys of the first unsized batch of a database, and of every batch once a payload larger
/// than [`LARGE_PAYLOAD`] was seen where the server refuses `MEMORY USAGE` (ACL, renamed
/// command, Redis < 4).
pub const BATCH_KEYS_UNSIZED: usize = 16;

/// While no payload of a database was larger than this (= [`BATCH_BYTES`] /
/// [`BATCH_KEYS`]), its batches are not sized; after the first larger one, every later key
/// is sized with `MEMORY USAGE` before it is batched.
pub const LARGE_PAYLOAD: u64 = BATCH_BYTES / BATCH_KEYS as u64;

/// Batches sent and not read yet: the server runs one while this side parses another.
pub const BATCHES_IN_FLIGHT: usize = 2;

/// A `DUMP` payload of at most this many bytes is taken whole from the read buffer; a larger
/// one is streamed in pieces.
pub const WHOLE_PAYLOAD: usize = 64 * 1024;

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
    push_fingerprint_row(&mut row, key, value_digest);
    row
}

/// [`fingerprint_row`] appended to `row` (a reused buffer).
fn push_fingerprint_row(row: &mut Vec<u8>, key: &[u8], value_digest: u128) {
    row.extend_from_slice(&(key.len() as u64).to_be_bytes());
    row.extend_from_slice(key);
    row.extend_from_slice(&value_digest.to_be_bytes());
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

/// The value digest and the RDB version of a whole `DUMP` payload (as [`PayloadReader`]
/// computes them while streaming; see the crate docs), after checking its CRC64. `Err` says
/// what is wrong with the payload. `elem` is a reused buffer for set and hash elements.
///
/// The caller guarantees `payload.len() > DUMP_TRAILER`.
fn whole_payload(payload: &[u8], elem: &mut Vec<u8>) -> Result<(u128, u16), String> {
    let n = payload.len();
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&payload[n - 8..]);
    if crc64(0, &payload[..n - 8]) != u64::from_le_bytes(stored) {
        return Err("failed its CRC64 check: the transfer is damaged".to_owned());
    }
    let version = u16::from_le_bytes([payload[n - 10], payload[n - 9]]);
    let body = &payload[..n - DUMP_TRAILER];
    let digest = match body[0] {
        rdb_type @ (RDB_TYPE_SET | RDB_TYPE_HASH) => {
            // Hash-table encodings are serialized in dict order, which depends on the
            // server's random hash seed: fingerprint them order-independently.
            let mut r = SliceReader { data: body, pos: 1 };
            let count = r.plain_len()?;
            let mut sum = 0u128;
            for _ in 0..count {
                elem.clear();
                if rdb_type == RDB_TYPE_HASH {
                    r.string_to(elem, true)?;
                }
                r.string_to(elem, false)?;
                sum = sum.wrapping_add(xxh3_128(elem));
            }
            if r.pos != body.len() {
                return Err("has bytes after its last element".to_owned());
            }
            if elem.capacity() > 4 * WHOLE_PAYLOAD {
                *elem = Vec::new();
            }
            unordered_digest(rdb_type, count, sum)
        }
        _ => xxh3_128(body),
    };
    Ok((digest, version))
}

/// RDB elements of a payload held whole (the counterpart of [`PayloadReader`]'s decoding).
struct SliceReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> SliceReader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let left = (self.data.len() - self.pos) as u64;
        if n > left {
            return Err("ended in the middle of a value".to_owned());
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.data[start..self.pos])
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    /// An RDB length: `Ok(len)` or, for a special string encoding, `Err(encoding)`.
    fn rdb_len(&mut self) -> Result<Result<u64, u8>, String> {
        // rdb.c rdbLoadLenByRef: 00|6 bits, 01|14 bits, 0x80 + u32 BE, 0x81 + u64 BE, 11|enc.
        let first = self.byte()?;
        Ok(match first >> 6 {
            0 => Ok(u64::from(first & 0x3f)),
            1 => Ok((u64::from(first & 0x3f) << 8) | u64::from(self.byte()?)),
            2 if first == 0x80 => {
                let b = self.take(4)?;
                Ok(u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
            }
            2 if first == 0x81 => {
                let mut a = [0u8; 8];
                a.copy_from_slice(self.take(8)?);
                Ok(u64::from_be_bytes(a))
            }
            2 => return Err(format!("has an unknown length byte {first:#04x}")),
            _ => Err(first & 0x3f),
        })
    }

    fn plain_len(&mut self) -> Result<u64, String> {
        match self.rdb_len()? {
            Ok(n) => Ok(n),
            Err(_) => Err("has an encoded length where a count belongs".to_owned()),
        }
    }

    /// One RDB string appended to `out` as the bytes it stands for, preceded by their length
    /// as u64 BE when `with_len`.
    fn string_to(&mut self, out: &mut Vec<u8>, with_len: bool) -> Result<(), String> {
        match self.rdb_len()? {
            Ok(n) => {
                let bytes = self.take(n)?;
                if with_len {
                    out.extend_from_slice(&n.to_be_bytes());
                }
                out.extend_from_slice(bytes);
            }
            Err(enc @ 0..=2) => {
                // RDB_ENC_INT8/16/32: a little-endian integer standing for its decimal text.
                let b = self.take(1 << enc)?;
                let value = match enc {
                    0 => i64::from(b[0] as i8),
                    1 => i64::from(i16::from_le_bytes([b[0], b[1]])),
                    _ => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                };
                let mut digits = [0u8; 20];
                let text = decimal(value.unsigned_abs(), &mut digits);
                let len = text.len() + usize::from(value < 0);
                if with_len {
                    out.extend_from_slice(&(len as u64).to_be_bytes());
                }
                if value < 0 {
                    out.push(b'-');
                }
                out.extend_from_slice(text);
            }
            Err(3) => {
                // RDB_ENC_LZF: compressed length, plain length, block.
                let clen = self.plain_len()?;
                let ulen = self.plain_len()?;
                let block = self
                    .take(clen)
                    .map_err(|_| "ended in the middle of a compressed string".to_owned())?;
                let plain = lzf_decompress(block, ulen as usize)
                    .ok_or_else(|| "holds a malformed LZF string".to_owned())?;
                if with_len {
                    out.extend_from_slice(&ulen.to_be_bytes());
                }
                out.extend_from_slice(&plain);
            }
            Err(enc) => return Err(format!("has an unknown string encoding {enc}")),
        }
        Ok(())
    }
}

/// Append `$<len>\r\n<digits>\r\n`: the decimal text of `v` as a bulk string.
fn push_bulk_decimal(out: &mut Vec<u8>, v: u64) {
    let mut digits = [0u8; 20];
    let text = decimal(v, &mut digits);
    push_header(out, b'$', text.len() as u64);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
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

/// Where a page's `MEMORY USAGE` sizes are.
enum Sizes {
    /// Not asked for (yet): batches follow [`Sizing`].
    Unasked,
    /// Asked for, replies not read yet.
    Asked,
    /// Per key.
    Known(Vec<u64>),
    /// Refused by the server: batches of [`BATCH_KEYS_UNSIZED`].
    Refused,
}

/// How the keys of a database are cut into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sizing {
    /// No payload of this database so far was larger than [`LARGE_PAYLOAD`]: batches of
    /// `limit` keys, unsized, `limit` doubling from [`BATCH_KEYS_UNSIZED`] to [`BATCH_KEYS`]
    /// with each batch read.
    Learning { limit: usize },
    /// One was: every later page is sized with `MEMORY USAGE` first.
    Probed,
    /// One was, and the server refuses `MEMORY USAGE`: [`BATCH_KEYS_UNSIZED`] keys a batch.
    Unsized,
}

/// One `SCAN` page: its keys back to back in one buffer, and how far batches have got.
struct Page {
    data: Vec<u8>,
    /// End offset in `data` of each key.
    ends: Vec<usize>,
    sizes: Sizes,
    /// Keys sent in batches.
    sent: usize,
    /// Keys whose batch replies were read.
    done: usize,
}

impl Page {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }
}

/// A reply (or group of replies) the server owes, in the order the commands went out.
enum Expect {
    /// A `SCAN` page.
    Scan,
    /// The `MEMORY USAGE` replies of the first page in [`Sizes::Asked`].
    Sizes,
    /// The replies of a `MULTI … EXEC` batch of this many keys, the next ones of the
    /// front page.
    Batch(usize),
}

/// The state of one database's pipeline.
struct Pipeline {
    /// The cursor of the next `SCAN` to send; `None` while one is in flight or once the
    /// scan is over.
    cursor: Option<Vec<u8>>,
    scanning: bool,
    /// Pages with keys not read back yet, in `SCAN` order.
    pages: VecDeque<Page>,
    expected: VecDeque<Expect>,
    batches: usize,
    sizing: Sizing,
}

impl Pipeline {
    /// Keys returned by `SCAN` and not yet sent in a batch.
    fn unsent(&self) -> usize {
        self.pages.iter().map(|p| p.len() - p.sent).sum()
    }
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
    /// Reused for each `RESTORE` head and fingerprint row.
    scratch: Vec<u8>,
    /// Reused for set and hash elements.
    elem: Vec<u8>,
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
            scratch: Vec::with_capacity(256),
            elem: Vec::new(),
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
        let mut pipe = Pipeline {
            cursor: Some(b"0".to_vec()),
            scanning: false,
            pages: VecDeque::new(),
            expected: VecDeque::new(),
            batches: 0,
            sizing: Sizing::Learning {
                limit: BATCH_KEYS_UNSIZED,
            },
        };
        let mut cmds = Vec::new();
        loop {
            cmds.clear();
            self.queue(&mut pipe, &mut cmds);
            if !cmds.is_empty() {
                self.conn.send(&cmds).await?;
            }
            let Some(next) = pipe.expected.pop_front() else {
                break;
            };
            match next {
                Expect::Scan => {
                    let (cursor, page) = self.read_scan(&object).await?;
                    pipe.scanning = false;
                    pipe.cursor = (cursor != b"0").then_some(cursor);
                    if page.len() > 0 {
                        pipe.pages.push_back(page);
                    }
                }
                Expect::Sizes => {
                    let page = pipe
                        .pages
                        .iter_mut()
                        .find(|p| matches!(p.sizes, Sizes::Asked))
                        .ok_or_else(|| internal("sizes of no page"))?;
                    // Asked for the keys not sent then; none was sent since.
                    let n = page.len() - page.sent;
                    page.sizes = self.read_sizes(n).await?;
                    if matches!(page.sizes, Sizes::Refused) {
                        pipe.sizing = Sizing::Unsized;
                    }
                }
                Expect::Batch(n) => {
                    let page = pipe
                        .pages
                        .front_mut()
                        .ok_or_else(|| internal("a batch of no page"))?;
                    let before = run.rows;
                    let largest = self.read_batch(&mut run, page, n).await?;
                    pipe.sizing = match pipe.sizing {
                        Sizing::Learning { .. } if largest > LARGE_PAYLOAD => {
                            tracing::debug!(
                                db,
                                bytes = largest,
                                "a large DUMP payload: sizing batches with MEMORY USAGE"
                            );
                            if self.probe_sizes {
                                Sizing::Probed
                            } else {
                                Sizing::Unsized
                            }
                        }
                        Sizing::Learning { limit } => Sizing::Learning {
                            limit: (2 * limit).min(BATCH_KEYS),
                        },
                        other => other,
                    };
                    page.done += n;
                    pipe.batches -= 1;
                    if page.done == page.len() {
                        pipe.pages.pop_front();
                    }
                    if run.rows > before {
                        if !run.started {
                            self.observer.table_started(&db_name(run.db));
                            run.started = true;
                        }
                        self.observer.rows(run.rows - before);
                    }
                }
            }
        }
        Ok(run)
    }

    /// Encode into `cmds` every command the pipeline may send now: the next `SCAN`, the
    /// sizes of new pages, and batches up to [`BATCHES_IN_FLIGHT`].
    fn queue(&mut self, pipe: &mut Pipeline, cmds: &mut Vec<u8>) {
        if !pipe.scanning
            && pipe.unsent() < SCAN_AHEAD_KEYS
            && let Some(cursor) = pipe.cursor.take()
        {
            let count = SCAN_COUNT.to_string();
            encode(cmds, &[b"SCAN", &cursor, b"COUNT", count.as_bytes()]);
            pipe.expected.push_back(Expect::Scan);
            pipe.scanning = true;
        }
        if pipe.sizing == Sizing::Probed {
            for page in &mut pipe.pages {
                if matches!(page.sizes, Sizes::Unasked) && page.sent < page.len() {
                    for i in page.sent..page.len() {
                        encode(cmds, &[b"MEMORY", b"USAGE", page.key(i)]);
                    }
                    pipe.expected.push_back(Expect::Sizes);
                    page.sizes = Sizes::Asked;
                }
            }
        }
        while pipe.batches < BATCHES_IN_FLIGHT {
            let Some(page) = pipe.pages.iter_mut().find(|p| p.sent < p.len()) else {
                break;
            };
            let start = page.sent;
            let end = match (&page.sizes, pipe.sizing) {
                (Sizes::Known(sizes), _) => {
                    // Sizes of the keys from `sized_from` on (those unsent when asked).
                    let sized_from = page.len() - sizes.len();
                    let mut end = start;
                    let mut bytes = 0u64;
                    while end < page.len() && end - start < BATCH_KEYS {
                        let size = sizes[end - sized_from];
                        if end > start && bytes + size > BATCH_BYTES {
                            break;
                        }
                        bytes += size;
                        end += 1;
                    }
                    end
                }
                (Sizes::Asked, _) => break,
                (Sizes::Unasked, Sizing::Learning { limit }) => page.len().min(start + limit),
                (Sizes::Refused | Sizes::Unasked, _) => page.len().min(start + BATCH_KEYS_UNSIZED),
            };
            let mode = self.plan.ttl_mode;
            encode(cmds, &[b"MULTI"]);
            if mode == TtlMode::TimePlusPttl {
                encode(cmds, &[b"TIME"]);
            }
            for i in start..end {
                let key = page.key(i);
                encode(cmds, &[ttl_command(mode), key]);
                encode(cmds, &[b"DUMP", key]);
            }
            encode(cmds, &[b"EXEC"]);
            page.sent = end;
            pipe.expected.push_back(Expect::Batch(end - start));
            pipe.batches += 1;
        }
    }

    /// One `SCAN` reply: the next cursor and the page of keys.
    async fn read_scan(&mut self, object: &str) -> Result<(Vec<u8>, Page), EngineError> {
        let malformed =
            || EngineError::new(ErrorKind::Protocol, "SCAN: malformed reply").with_object(object);
        if self.conn.try_len(b'*').await? != Some(Some(2)) {
            return Err(match self.conn.read_reply().await? {
                Reply::Error(e) => server_error(&e, "SCAN").with_object(object.to_owned()),
                other => self.conn.unexpected("SCAN", &other),
            });
        }
        let Some(Some(n)) = self.conn.try_len(b'$').await? else {
            return Err(malformed());
        };
        if n > 64 {
            return Err(malformed());
        }
        let cursor = self.conn.bulk_body(n).await?.to_vec();
        self.conn.consume(n + 2);
        let Some(Some(count)) = self.conn.try_len(b'*').await? else {
            return Err(malformed());
        };
        let mut page = Page {
            data: Vec::with_capacity(count.min(4 * SCAN_COUNT) * 24),
            ends: Vec::with_capacity(count.min(4 * SCAN_COUNT)),
            sizes: Sizes::Unasked,
            sent: 0,
            done: 0,
        };
        for _ in 0..count {
            let Some(Some(n)) = self.conn.try_len(b'$').await? else {
                return Err(malformed());
            };
            page.data.extend_from_slice(self.conn.bulk_body(n).await?);
            self.conn.consume(n + 2);
            page.ends.push(page.data.len());
        }
        Ok((cursor, page))
    }

    /// The `MEMORY USAGE` replies for `n` keys of a page. A refusal turns sizing off for the
    /// rest of the dump (the keys then go in batches of [`BATCH_KEYS_UNSIZED`]).
    async fn read_sizes(&mut self, n: usize) -> Result<Sizes, EngineError> {
        let mut sizes = Vec::with_capacity(n);
        let mut refused = None;
        for _ in 0..n {
            if let Some(size) = self.conn.try_int().await? {
                sizes.push(size.max(0) as u64);
                continue;
            }
            match self.conn.read_reply().await? {
                Reply::Int(n) => sizes.push(n.max(0) as u64),
                Reply::Bulk(None) => sizes.push(0),
                Reply::Error(e) => refused = Some(e),
                other => return Err(self.conn.unexpected("MEMORY USAGE", &other)),
            }
        }
        if let Some(e) = refused {
            if self.probe_sizes {
                tracing::info!(error = %e, "MEMORY USAGE refused; batching by key count only");
            }
            self.probe_sizes = false;
            return Ok(Sizes::Refused);
        }
        Ok(if self.probe_sizes {
            Sizes::Known(sizes)
        } else {
            Sizes::Refused
        })
    }

    /// The replies of the batch of the `n` keys of `page` after those already read: each
    /// key's payload and expiry, read atomically. Returns the largest payload's length.
    async fn read_batch(
        &mut self,
        run: &mut DbRun,
        page: &Page,
        n: usize,
    ) -> Result<u64, EngineError> {
        let mode = self.plan.ttl_mode;
        let keys = page.done..page.done + n;
        self.read_queued(run, page, keys.clone(), mode).await?;
        let now_ms = if mode == TtlMode::TimePlusPttl {
            self.read_time().await?
        } else {
            0
        };
        let mut largest = 0;
        for i in keys {
            largest = largest.max(self.read_key(run, page.key(i), mode, now_ms).await?);
        }
        Ok(largest)
    }

    /// The replies to `MULTI` and to each queued command, then the `EXEC` header. A command
    /// refused at queue time (NOPERM on a key, unknown command) is reported naming its key.
    async fn read_queued(
        &mut self,
        run: &DbRun,
        page: &Page,
        keys: std::ops::Range<usize>,
        mode: TtlMode,
    ) -> Result<(), EngineError> {
        let with_time = mode == TtlMode::TimePlusPttl;
        let db_object = self.target.db_object(run.db);
        if !self.conn.try_status().await? {
            match self.conn.read_reply().await? {
                Reply::Status(_) => {}
                Reply::Error(e) => return Err(server_error(&e, "MULTI").with_object(db_object)),
                other => return Err(self.conn.unexpected("MULTI", &other)),
            }
        }
        let queued = usize::from(with_time) + 2 * keys.len();
        let mut first_error: Option<(usize, String)> = None;
        for i in 0..queued {
            if self.conn.try_status().await? {
                continue;
            }
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
        let header = self.conn.line_len().await?;
        if self.conn.buffered().first() == Some(&b'*') {
            self.conn.consume(header + 2);
            return Ok(());
        }
        let header = self.conn.read_line().await?;
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
                    (
                        command,
                        key_object(self.target, run.db, page.key(keys.start + k)),
                    )
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

    /// One key's expiry and `DUMP` replies: written out as a `RESTORE` command and added to
    /// the fingerprint. A key that vanished since `SCAN` is counted, not an error. Returns
    /// the payload's length (0 for a vanished key).
    async fn read_key(
        &mut self,
        run: &mut DbRun,
        key: &[u8],
        mode: TtlMode,
        now_ms: i64,
    ) -> Result<u64, EngineError> {
        let db = run.db;
        let object = || key_object(self.target, db, key);
        let ttl = match self.conn.try_int().await? {
            Some(t) => t,
            None => match self.conn.read_reply().await? {
                Reply::Int(t) => t,
                Reply::Error(e) => {
                    return Err(server_error(&e, ttl_command_name(mode)).with_object(object()));
                }
                other => return Err(self.conn.unexpected("PEXPIRETIME", &other)),
            },
        };
        let len = match self.conn.try_len(b'$').await? {
            Some(Some(len)) => Some(len as u64),
            Some(None) => None,
            None => match self.conn.read_bulk_header().await? {
                Ok(len) => len,
                Err(e) => {
                    return Err(EngineError::new(
                        server_error(&e, "DUMP").kind(),
                        format!("DUMP failed, so the key cannot be exported: {e}"),
                    )
                    .with_object(object()));
                }
            },
        };
        let Some(len) = len else {
            // Expired or deleted between SCAN and DUMP: not an error (counted).
            run.vanished += 1;
            return Ok(0);
        };
        let Some(expiry) = absolute_expiry(mode, ttl, now_ms) else {
            return Err(EngineError::new(
                ErrorKind::Protocol,
                format!("DUMP returned a value but the expiry reply ({ttl}) says no key"),
            )
            .with_object(object()));
        };
        if len <= DUMP_TRAILER as u64 {
            return Err(EngineError::new(
                ErrorKind::Protocol,
                format!("DUMP payload of {len} bytes is too short"),
            )
            .with_object(object()));
        }
        let tail: &[u8] = if expiry > 0 {
            b"\r\n$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n"
        } else {
            b"\r\n$7\r\nREPLACE\r\n"
        };
        let (digest, version) = if len <= WHOLE_PAYLOAD as u64 {
            let len = len as usize;
            let payload = self.conn.bulk_body(len).await?;
            let (digest, version) = whole_payload(payload, &mut self.elem).map_err(|what| {
                EngineError::new(
                    ErrorKind::Protocol,
                    format!("DUMP payload ({len} bytes) {what}"),
                )
                .with_object(object())
            })?;
            if let Some(out) = self.out.as_deref_mut() {
                self.scratch.clear();
                restore_head(&mut self.scratch, key, expiry, len as u64);
                out.write(&self.scratch).await?;
                out.write(payload).await?;
                out.write(tail).await?;
            }
            self.conn.consume(len + 2);
            (digest, version)
        } else {
            if let Some(out) = self.out.as_deref_mut() {
                self.scratch.clear();
                restore_head(&mut self.scratch, key, expiry, len);
                out.write(&self.scratch).await?;
            }
            let object = object();
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
            let done = reader.consume().await?;
            self.conn.read_crlf().await?;
            if let Some(out) = self.out.as_deref_mut() {
                out.write(tail).await?;
            }
            done
        };
        self.max_rdb_version = self.max_rdb_version.max(version);
        run.rows += 1;
        self.scratch.clear();
        push_fingerprint_row(&mut self.scratch, key, digest);
        run.fingerprint.add_row(&self.scratch);
        Ok(len)
    }
}

/// An internal inconsistency of the pipeline (a bug, not a server problem).
fn internal(what: &str) -> EngineError {
    EngineError::new(
        ErrorKind::Protocol,
        format!("internal error in the RESP pipeline: {what}"),
    )
}

/// A logical database's name in the summary: `db<n>`.
fn db_name(db: u32) -> String {
    format!("db{db}")
}

/// The command that reads a key's expiry in `mode`.
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

/// Append `RESTORE key ttl <payload of len bytes>` up to the payload to `head`: `*6` with
/// `ABSTTL` when the key expires (`expiry > 0`, absolute milliseconds), else `*5`.
fn restore_head(head: &mut Vec<u8>, key: &[u8], expiry: u64, len: u64) {
    head.extend_from_slice(if expiry > 0 { b"*6\r\n" } else { b"*5\r\n" });
    head.extend_from_slice(b"$7\r\nRESTORE\r\n");
    push_header(head, b'$', key.len() as u64);
    head.extend_from_slice(key);
    head.extend_from_slice(b"\r\n");
    push_bulk_decimal(head, expiry);
    push_header(head, b'$', len);
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
    fn restore_head_frames_the_command_as_encode_does() {
        let payload = b"\x00\x05hello\x0a\x00crc64!!!";
        for expiry in [0u64, 4_102_444_800_123] {
            let mut got = Vec::new();
            restore_head(&mut got, b"k\r\ney", expiry, payload.len() as u64);
            got.extend_from_slice(payload);
            got.extend_from_slice(if expiry > 0 {
                b"\r\n$7\r\nREPLACE\r\n$6\r\nABSTTL\r\n"
            } else {
                b"\r\n$7\r\nREPLACE\r\n"
            });
            let ttl = expiry.to_string();
            let mut want = Vec::new();
            if expiry > 0 {
                let args: [&[u8]; 6] = [
                    b"RESTORE",
                    b"k\r\ney",
                    ttl.as_bytes(),
                    payload,
                    b"REPLACE",
                    b"ABSTTL",
                ];
                encode(&mut want, &args);
            } else {
                encode(
                    &mut want,
                    &[b"RESTORE", b"k\r\ney", b"0", payload, b"REPLACE"],
                );
            }
            assert_eq!(got, want);
        }
    }

    /// A DUMP payload: `body`, RDB version 10, CRC64.
    fn payload(body: &[u8]) -> Vec<u8> {
        let mut p = body.to_vec();
        p.extend_from_slice(&10u16.to_le_bytes());
        let crc = crc64(0, &p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    }

    #[test]
    fn whole_payloads_are_checked_and_digested_as_documented() {
        // A hash-table set of three members: "ab" (plain), -300 (RDB_ENC_INT16) and
        // "abcabcabc" (RDB_ENC_LZF: a literal "abc", then 6 bytes copied from 3 back).
        let mut set = vec![RDB_TYPE_SET, 3, 2, b'a', b'b', 0xc1];
        set.extend_from_slice(&(-300i16).to_le_bytes());
        set.extend_from_slice(&[0xc3, 6, 9, 2, b'a', b'b', b'c', 0x80, 2]);
        let sum = xxh3_128(b"ab")
            .wrapping_add(xxh3_128(b"-300"))
            .wrapping_add(xxh3_128(b"abcabcabc"));
        let mut elem = Vec::new();
        assert_eq!(
            whole_payload(&payload(&set), &mut elem),
            Ok((unordered_digest(RDB_TYPE_SET, 3, sum), 10))
        );
        // A hash-table hash of one field: u64 BE field length, field, value.
        let hash = [RDB_TYPE_HASH, 1, 1, b'f', 0xc0, 0xf9];
        let mut row = 1u64.to_be_bytes().to_vec();
        row.extend_from_slice(b"f-7");
        assert_eq!(
            whole_payload(&payload(&hash), &mut elem),
            Ok((unordered_digest(RDB_TYPE_HASH, 1, xxh3_128(&row)), 10))
        );
        // Any other type: the bytes before the trailer.
        let string = [0, 3, b'x', b'y', b'z'];
        assert_eq!(
            whole_payload(&payload(&string), &mut elem),
            Ok((xxh3_128(&string), 10))
        );

        let mut damaged = payload(&set);
        damaged[4] ^= 1;
        assert!(
            whole_payload(&damaged, &mut elem)
                .unwrap_err()
                .contains("CRC64")
        );
        let mut short = set.clone();
        short[1] = 4;
        assert_eq!(
            whole_payload(&payload(&short), &mut elem),
            Err("ended in the middle of a value".to_owned())
        );
        let mut long = set.clone();
        long.push(0);
        assert_eq!(
            whole_payload(&payload(&long), &mut elem),
            Err("has bytes after its last element".to_owned())
        );
    }

    #[test]
    fn unordered_digest_depends_on_type_count_and_sum() {
        let x = unordered_digest(RDB_TYPE_SET, 2, 7);
        assert_ne!(x, unordered_digest(RDB_TYPE_HASH, 2, 7));
        assert_ne!(x, unordered_digest(RDB_TYPE_SET, 3, 7));
        assert_ne!(x, unordered_digest(RDB_TYPE_SET, 2, 8));
    }
}
