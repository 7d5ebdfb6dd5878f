//! Redis engine of `exporter`: every key of every logical database as a command stream that
//! stock `redis-cli --pipe` replays, or a point-in-time RDB snapshot taken through replication.
//!
//! [`RedisSource`] implements [`exporter_contract::Source`] (`meta.engine = "redis"`; its
//! `check`, `check.rs`, tries every command the dump sends against the user's ACL, queued
//! and discarded);
//! [`RedisSource::with_format`] picks [`RedisFormat::Resp`] (the default, `<name>.resp.zst`) or
//! [`RedisFormat::Rdb`] (`<name>.rdb.zst`). [`fingerprint_database`] computes the per-database
//! fingerprints of a live server exactly as a RESP dump does (the restore-side check).
//! [`RedisTarget`] implements [`exporter_contract::Target`]: it replays a RESP archive natively
//! (pipelined `SELECT` / `RESTORE`, every reply checked); [`RedisScratch`] implements
//! [`exporter_contract::ScratchServer`] with a whole, empty server as the scratch.
//!
//! URLs: `redis://[user[:password]@]host[:port][/db][?connect_timeout=SECS]`. With a `/db`
//! path only that logical database is dumped. `rediss://` is TLS (through `exporter-tls`),
//! with redis-cli's option names as parameters: `cacert=FILE`, `cert=FILE&key=FILE`,
//! `sni=NAME`, `insecure`. Verification of the chain and the host name (the URL's, or `sni`)
//! is on by default, against `cacert`, else the endpoint's inline CA, else the system's trusted
//! roots. A clear-text client that a TLS-only server drops is told to use `rediss://`.
//! Redis Cluster nodes are refused too (one node holds only some slots).
//!
//! # The RESP format (default)
//!
//! The logical databases holding keys are read from `INFO keyspace` (not assumed to be 0–15).
//! For each, in ascending order: `SELECT n`, then `SCAN cursor COUNT 1000` pages, cut into
//! batches of `MULTI; PEXPIRETIME k; DUMP k; …; EXEC`, so a key's payload and expiry are read
//! atomically. Batches grow from 16 to 128 keys while no payload of the database was larger
//! than 64 KiB; after the first larger one, each later page is sized with `MEMORY USAGE` and
//! cut at 128 keys and ~8 MiB (a larger key goes alone; 16 keys per batch where `MEMORY
//! USAGE` is refused). Everything goes over one connection, pipelined: the next `SCAN` page,
//! the sizes and up to two batches are in flight while the replies before them are parsed,
//! so the single-threaded server is not left waiting for a round trip (`logical.rs` has the
//! details). Keys are written in the order `SCAN` returns them. The stream is plain RESP
//! (arrays of bulk strings, binary-safe):
//!
//! ```text
//! SELECT 0
//! RESTORE <key> 0 <payload> REPLACE                 (no expiry)
//! RESTORE <key> <unix-ms> <payload> REPLACE ABSTTL   (absolute expiry)
//! SELECT 3
//! …
//! ```
//!
//! and restores with `zstd -dc x.resp.zst | redis-cli --pipe` into an empty server (which
//! must print `errors: 0`; `redis-cli --pipe` exits non-zero otherwise). The stream always
//! starts with a `SELECT`: an empty server (or an empty `/db`) gives a stream of exactly one
//! `SELECT 0` (`SELECT <db>`), never 0 bytes. `REPLACE` makes a replay idempotent.
//!
//! # TTLs
//!
//! Expiry is carried as an absolute Unix time in milliseconds, so a restore a week later does
//! not restart a TTL (fidelity case R03): `PEXPIRETIME` on Redis 7.0+, and on older servers
//! `TIME` (once per batch, inside the same `MULTI`) plus `PTTL`. `RESTORE … ABSTTL` with an
//! expiry already in the past replies `OK` and stores nothing (and with `REPLACE` deletes an
//! existing key: redis/redis#7472, merged July 2020 in the 6.0 series; checked by this crate's
//! R03 test on 7.0); a server without that change stores the key with its past expiry, which
//! expires it on first access. Either way a key that expired between dump and restore is not
//! resurrected. `ABSTTL` needs a restore target of Redis 5.0 or later. Keys without expiry get
//! `0` and no `ABSTTL` (some Redis-compatible servers read `0 ABSTTL` as "already expired"). Keys that `SCAN` returned but that expired or were deleted before their
//! `DUMP` are skipped, counted, and reported as one warning per database — not errors.
//!
//! # Consistency
//!
//! RESP: [`Consistency::BestEffort`]. `SCAN` is not a snapshot: keys written during the dump
//! may or may not be included, and under concurrent writes (a rehash) `SCAN` may return a key
//! twice — it is then restored twice (harmless with `REPLACE`) but counted twice, so a
//! restore-verify reports a mismatch instead of passing silently. Each key is itself read
//! atomically with its expiry. RDB: [`Consistency::PointInTime`].
//!
//! # The RDB format
//!
//! `REPLCONF capa eof`, `REPLCONF rdb-only 1` (both optional, like `redis-cli --rdb`), then
//! `SYNC`: the server forks a snapshot and sends it either sized (`$<len>\r\n` + exactly len
//! bytes) or diskless (`$EOF:<40-byte mark>\r\n` + file + mark; the mark is found with a
//! 39-byte lookbehind across reads and stripped). Nothing after the file's end is emitted.
//! The file is checked on the fly: `REDIS0nnn` header, `0xFF` end opcode and the CRC64
//! trailer; a cut or damaged transfer fails the dump. Restore: stop a server, put the file
//! (decompressed) at its `dir`/`dbfilename`, start it. The RDB format always holds every
//! database, so a `/db` URL is refused; where the server refuses replication (ACL without
//! `SYNC`, managed services) the dump fails with a hint to use the RESP format. Its summary has
//! no per-database fingerprints (that would need an RDB parser); [`DumpSummary::tables`] is
//! empty.
//!
//! # Memory
//!
//! Client side, nothing grows with a key's size: a payload of up to 64 KiB is taken whole from
//! the read buffer, a larger one is read from the socket and written to the body in pieces of
//! at most 128 KiB (the body channel holds at most 8 chunks of ~128 KiB). What is held: about
//! three `SCAN` pages of key names (~1000 keys each), two batches of commands, and, for the
//! fingerprint of hash-table encoded sets and hashes, one element at a time (an
//! LZF-compressed element is decompressed whole). Server side, one `DUMP` payload is built in
//! the server's memory per key — bounded by that key's serialized size, which is the
//! ceiling — and the replies of at most two batches are buffered in the server's output
//! buffer: ~8 MiB each where they are sized; while no payload of the database so far was
//! over 64 KiB, up to 128 keys of sizes like the ones before (unsized); where `MEMORY USAGE`
//! is refused after such a payload, 16 keys of any size. `SCAN` returns keys in hash order,
//! so a run of large keys that the sizes before did not announce is unlikely; the first large
//! one seen turns sizing on for the rest of its database.
//!
//! A RESP dump reports each logical database (`db<n>`) and the function libraries to
//! [`exporter_contract::DumpOptions::observer`] as summary entries, the keys per batch; an
//! RDB dump reports nothing (the server streams one snapshot).
//!
//! # Fingerprints
//!
//! Per logical database a [`TableSummary`] named `db<n>` (`db0`, `db3`, …; only databases
//! with keys, or the one `/db`), `rows` = keys written, `fingerprint` =
//! [`exporter_contract::Fingerprint::add_row`] over, per key:
//!
//! ```text
//! u64 big-endian key length ‖ key bytes ‖ u128 big-endian value digest
//! ```
//!
//! The value digest is `xxh3_128` of the `DUMP` payload without its 10-byte trailer (RDB
//! version and CRC64), except for the two encodings whose serialization order depends on the
//! server's random hash seed — RDB type 2 (set as hash table) and type 4 (hash as hash
//! table): a restored copy dumps the same elements in another order. For them the digest is
//! `xxh3_128(type ‖ u64 BE count ‖ u128 BE wrapping sum of xxh3_128(element))`, an element
//! being a member, or `u64 BE field length ‖ field ‖ value` (integers and LZF decoded to
//! their bytes). TTLs are not part of it. Keys have no columns, so the definition by column
//! name of [`exporter_contract::FINGERPRINT_ALGORITHM`] changes nothing here. Fingerprints compare equal between a source and a
//! restore on the same Redis version and encoding settings (`*-max-listpack-*`); another
//! version may encode equal content differently. Every payload's CRC64 is checked while
//! dumping, so a mis-framed transfer fails at dump time, not at restore time.
//!
//! # Restoring into another server version
//!
//! A `DUMP` payload carries the RDB version of its server (Redis 5.0–6.2: 9, 7.0: 10,
//! 7.2: 11, 7.4: 12) and `RESTORE` refuses a newer one ("DUMP payload version or checksum are
//! wrong"; `redis-cli --pipe` counts it in `errors:` and exits 1). Manual check before a
//! restore: the target's `redis-cli INFO server | grep redis_version` must be at least the
//! manifest's `server_version` (major.minor). The highest payload RDB version seen is logged
//! (`tracing`, info) but not yet in the manifest: the contract has no field for it.
//!
//! # Errors
//!
//! [`EngineError`] kinds: `Connect` (unreachable, retryable), `Auth` (`WRONGPASS`, `NOAUTH`,
//! `invalid password`, also for ACL users), `Permission` (`NOPERM`, naming the key or
//! command), `NotFound` (a `/db` out of range), `Unsupported` (cluster, refused
//! replication, a `/db` with RDB, TLS parameters that cannot work, an unreadable CA file),
//! `Connect` also for TLS failures (named: unknown CA, expiry, host name, client certificate), `Protocol` (the server closed the connection
//! midway — `CLIENT KILL`, a crash — retryable), `Query` (other server errors), `Cancelled`
//! (the consumer went away). A key whose `DUMP` fails (e.g. a module type without `DUMP`
//! support) fails the whole dump naming the key, printable-escaped (`"\xff\x00key"`); module
//! types that do `DUMP` are included as opaque payloads. Objects are the redacted URL plus
//! `db<n>` and key: never the password.

use exporter_contract::produce::{Producer, cancelled, dump_channel};
use exporter_contract::{
    Consistency, Dump, DumpMeta, DumpOptions, DumpSummary, Endpoint, EngineError, ErrorKind,
    PayloadFormat, ServerInfo, Source, SourceCheck, TableSummary,
};
use futures::FutureExt;
use futures::future::BoxFuture;

mod check;
mod conn;
mod logical;
mod rdb;
mod rdbfmt;
mod restore;

pub use check::SAMPLE_KEYS;
pub use conn::CLIENT_NAME;
pub use exporter_contract::produce::CHUNK;
pub use restore::{RedisScratch, RedisTarget, WINDOW_BYTES, WINDOW_COMMANDS};

/// Engine name in manifests.
pub const ENGINE: &str = "redis";

/// Oldest server version supported: `SCAN` appeared in 2.8.
pub const MIN_SERVER_VERSION: (u32, u32) = (2, 8);

/// The payload a [`RedisSource`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedisFormat {
    /// A `SELECT` / `RESTORE … REPLACE [ABSTTL]` command stream for `redis-cli --pipe`
    /// (best effort consistency; works without replication rights).
    #[default]
    Resp,
    /// An RDB snapshot through the replication handshake (point in time).
    Rdb,
}

/// A Redis server (or one logical database of it) to dump. Cheap to build: no I/O until
/// [`Source::preflight`] or [`Source::dump`].
#[derive(Debug, Clone)]
pub struct RedisSource {
    endpoint: Endpoint,
    format: RedisFormat,
}

impl RedisSource {
    /// A source for `url` (`redis://…`), in the default [`RedisFormat::Resp`]. No I/O.
    #[must_use]
    pub fn new(endpoint: impl Into<Endpoint>) -> Self {
        Self {
            endpoint: endpoint.into(),
            format: RedisFormat::Resp,
        }
    }

    /// The same source, writing `format`.
    #[must_use]
    pub fn with_format(mut self, format: RedisFormat) -> Self {
        self.format = format;
        self
    }

    /// The format this source writes.
    #[must_use]
    pub fn format(&self) -> RedisFormat {
        self.format
    }
}

/// The transport an endpoint asks for, for listings: `rediss`, `rediss insecure`, or `none`
/// for `redis://`. Pure.
///
/// # Errors
///
/// As [`Source::validate`].
pub fn tls_mode(endpoint: &Endpoint) -> Result<String, EngineError> {
    conn::Target::from_endpoint(endpoint).map(|t| {
        t.tls
            .map_or_else(|| "none".to_owned(), |tls| tls.mode.to_owned())
    })
}

/// A connection that passed the server checks.
struct Opened {
    conn: conn::Conn,
    target: conn::Target,
    version: String,
    major_minor: (u32, u32),
}

/// Connect, authenticate, and check version and deployment.
async fn open(endpoint: &Endpoint) -> Result<Opened, EngineError> {
    let target = conn::Target::from_endpoint(endpoint)?;
    let mut conn = conn::Conn::connect(&target).await?;
    let server = conn.info("server").await?;
    let version = conn::info_field(&server, "redis_version")
        .unwrap_or("unknown")
        .to_owned();
    let major_minor = conn::parse_version(&version);
    if major_minor < MIN_SERVER_VERSION {
        return Err(EngineError::new(
            ErrorKind::Unsupported,
            format!("Redis {version} is too old: exporter needs 2.8 or later (SCAN)"),
        )
        .with_object(target.endpoint.clone()));
    }
    let cluster = conn.info("cluster").await?;
    if conn::info_field(&cluster, "cluster_enabled") == Some("1") {
        return Err(EngineError::new(
            ErrorKind::Unsupported,
            "this is a Redis Cluster node, which holds only some hash slots; dumping it alone \
             would miss keys, and Redis Cluster is not supported",
        )
        .with_object(target.endpoint.clone()));
    }
    Ok(Opened {
        conn,
        target,
        version,
        major_minor,
    })
}

/// The databases to read: the URL's `/db`, or every one that holds keys.
async fn plan(opened: &mut Opened) -> Result<logical::Plan, EngineError> {
    let (dbs, restricted) = match opened.target.db {
        Some(db) => (vec![db], true),
        None => (
            conn::keyspace_dbs(&opened.conn.info("keyspace").await?),
            false,
        ),
    };
    let ttl_mode = if opened.major_minor >= (7, 0) {
        logical::TtlMode::ExpireTime
    } else {
        logical::TtlMode::TimePlusPttl
    };
    Ok(logical::Plan {
        dbs,
        restricted,
        ttl_mode,
    })
}

async fn check_db(opened: &mut Opened) -> Result<(), EngineError> {
    if let Some(db) = opened.target.db {
        let object = opened.target.db_object(db);
        let number = db.to_string();
        match opened.conn.command(&[b"SELECT", number.as_bytes()]).await? {
            conn::Reply::Status(_) => {}
            conn::Reply::Error(e) if e.contains("out of range") => {
                return Err(EngineError::new(
                    ErrorKind::NotFound,
                    format!("no such logical database: {e}"),
                )
                .with_object(object));
            }
            conn::Reply::Error(e) => {
                return Err(conn::server_error(&e, "SELECT").with_object(object));
            }
            other => return Err(opened.conn.unexpected("SELECT", &other)),
        }
    }
    Ok(())
}

fn refuse_rdb_with_db(target: &conn::Target) -> Result<(), EngineError> {
    match target.db {
        Some(db) => Err(EngineError::new(
            ErrorKind::Unsupported,
            format!(
                "the RDB format always holds every logical database, but the URL asks for db{db} \
                 only; drop the /{db} path or use the RESP format"
            ),
        )
        .with_object(target.endpoint.clone())),
        None => Ok(()),
    }
}

async fn preflight(endpoint: Endpoint, format: RedisFormat) -> Result<ServerInfo, EngineError> {
    let mut opened = open(&endpoint).await?;
    if format == RedisFormat::Rdb {
        refuse_rdb_with_db(&opened.target)?;
    }
    check_db(&mut opened).await?;
    Ok(ServerInfo {
        engine: ENGINE.to_owned(),
        version: opened.version,
        tls: Some(opened.conn.tls.clone()),
        notes: if opened.conn.password_ignored {
            vec![conn::PASSWORD_IGNORED.to_owned()]
        } else {
            Vec::new()
        },
    })
}

/// Run `produce` in its own task, writing into the dump's body; it is abandoned (and its
/// connection closed) as soon as the consumer drops the body.
fn spawn_dump<F>(meta: DumpMeta, produce: F) -> Dump
where
    F: for<'a> FnOnce(&'a mut Producer) -> BoxFuture<'a, Result<DumpSummary, EngineError>>
        + Send
        + 'static,
{
    let (mut out, dump) = dump_channel(meta);
    tokio::spawn(async move {
        let gone = out.closed();
        let result = tokio::select! {
            r = produce(&mut out) => r,
            () = gone => Err(cancelled()),
        };
        // The producer (and its connection) is dropped by now: nothing keeps running.
        if let Err(e) = &result {
            tracing::debug!(error = %e, "redis dump failed");
        }
        out.finish(result).await;
    });
    dump
}

fn size_hint(memory_info: &str) -> Option<u64> {
    conn::info_field(memory_info, "used_memory_dataset")
        .or_else(|| conn::info_field(memory_info, "used_memory"))
        .and_then(|v| v.parse().ok())
}

async fn start_resp(
    endpoint: Endpoint,
    observer: exporter_contract::Observer,
) -> Result<Dump, EngineError> {
    let mut opened = open(&endpoint).await?;
    check_db(&mut opened).await?;
    let plan = plan(&mut opened).await?;
    let hint = if opened.target.db.is_none() {
        size_hint(&opened.conn.info("memory").await?)
    } else {
        None
    };
    let meta = DumpMeta {
        engine: ENGINE.to_owned(),
        format: PayloadFormat::Resp,
        server_version: opened.version.clone(),
        consistency: Consistency::BestEffort,
        size_hint: hint,
        tls: Some(opened.conn.tls.clone()),
    };
    Ok(spawn_dump(meta, move |out| {
        async move {
            let Opened {
                mut conn, target, ..
            } = opened;
            let stats = logical::Runner::new(&mut conn, &target, plan, Some(out))
                .with_observer(observer)
                .run()
                .await?;
            tracing::info!(
                endpoint = %target.endpoint,
                max_rdb_version = stats.max_rdb_version,
                "redis RESP dump complete"
            );
            let warnings = stats
                .vanished
                .iter()
                .map(|(db, n)| {
                    format!(
                        "db{db}: {n} key(s) expired or were deleted between SCAN and DUMP and are \
                         not in the archive (best-effort consistency)"
                    )
                })
                .collect();
            Ok(DumpSummary {
                tables: stats.tables,
                warnings,
                consistency: None,
                // The restore target must read this RDB version (see "Restoring into an older server").
                payload_version: (stats.max_rdb_version > 0)
                    .then(|| format!("rdb {}", stats.max_rdb_version)),
            })
        }
        .boxed()
    }))
}

async fn start_rdb(endpoint: Endpoint) -> Result<Dump, EngineError> {
    let target = conn::Target::from_endpoint(&endpoint)?;
    refuse_rdb_with_db(&target)?;
    let mut opened = open(&endpoint).await?;
    let memory = opened.conn.info("memory").await?;
    let transfer = rdb::handshake(&mut opened.conn).await?;
    let meta = DumpMeta {
        engine: ENGINE.to_owned(),
        format: PayloadFormat::Rdb,
        server_version: opened.version.clone(),
        consistency: Consistency::PointInTime,
        size_hint: match transfer {
            rdb::Transfer::Sized(len) => Some(len),
            rdb::Transfer::Marked(_) => size_hint(&memory),
        },
        tls: Some(opened.conn.tls.clone()),
    };
    Ok(spawn_dump(meta, move |out| {
        async move {
            let Opened {
                mut conn, target, ..
            } = opened;
            let (version, bytes) = rdb::stream(&mut conn, transfer, out).await?;
            tracing::info!(
                endpoint = %target.endpoint,
                rdb_version = version,
                bytes,
                "redis RDB snapshot complete"
            );
            Ok(DumpSummary {
                payload_version: Some(format!("rdb {version}")),
                ..DumpSummary::default()
            })
        }
        .boxed()
    }))
}

impl Source for RedisSource {
    fn describe(&self) -> String {
        let format = match self.format {
            RedisFormat::Resp => "resp",
            RedisFormat::Rdb => "rdb",
        };
        format!("{ENGINE} {} ({format})", self.endpoint.redacted())
    }

    fn validate(&self) -> Result<(), EngineError> {
        conn::Target::from_endpoint(&self.endpoint).map(|_| ())
    }

    fn preflight(&self) -> BoxFuture<'_, Result<ServerInfo, EngineError>> {
        preflight(self.endpoint.clone(), self.format).boxed()
    }

    fn check(&self, _options: DumpOptions) -> BoxFuture<'_, Result<SourceCheck, EngineError>> {
        check::check(self.endpoint.clone(), self.format).boxed()
    }

    fn dump(&self, options: DumpOptions) -> BoxFuture<'_, Result<Dump, EngineError>> {
        match self.format {
            RedisFormat::Resp => start_resp(self.endpoint.clone(), options.observer).boxed(),
            RedisFormat::Rdb => start_rdb(self.endpoint.clone()).boxed(),
        }
    }
}

/// Per logical database, the key count and fingerprint of a live server, computed exactly as
/// a RESP dump computes them (see the crate docs): every database with keys, or only the
/// URL's `/db` (reported even when empty). TTLs are not part of it.
///
/// # Errors
///
/// Classified [`EngineError`]s: `Connect`, `Auth`, `Permission` (naming the key), `NotFound`
/// (a `/db` out of range), `Unsupported` (cluster, bad TLS parameters), `Protocol`.
///
/// # Cancel safety
///
/// Dropping the future closes the connection; nothing is written to the server.
pub async fn fingerprint_database(
    endpoint: impl Into<Endpoint>,
) -> Result<Vec<TableSummary>, EngineError> {
    let mut opened = open(&endpoint.into()).await?;
    check_db(&mut opened).await?;
    let plan = plan(&mut opened).await?;
    let Opened {
        mut conn, target, ..
    } = opened;
    let stats = logical::Runner::new(&mut conn, &target, plan, None)
        .run()
        .await?;
    Ok(stats.tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_never_shows_the_password() {
        let url = exporter_contract::DatabaseUrl::parse("redis://app:hunter2@cache.example:6380/2")
            .unwrap();
        let s = RedisSource::new(url.clone());
        assert_eq!(
            s.describe(),
            "redis redis://app:****@cache.example:6380/2 (resp)"
        );
        let s = RedisSource::new(url).with_format(RedisFormat::Rdb);
        assert_eq!(s.format(), RedisFormat::Rdb);
        assert!(!s.describe().contains("hunter2"));
    }

    #[tokio::test]
    async fn rdb_with_a_db_path_is_refused_before_connecting() {
        // Port 1 on loopback: nothing listens, so only a pure check can answer.
        let url = exporter_contract::DatabaseUrl::parse("redis://:pw@127.0.0.1:1/4").unwrap();
        let source = RedisSource::new(url).with_format(RedisFormat::Rdb);
        let err = source.dump(DumpOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains("db4"), "{err}");
    }
}
