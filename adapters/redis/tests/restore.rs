//! The restore side: `RedisTarget` replays dumps of fidelity cases R02–R05 and of a mix of
//! every type in every logical database into fresh servers, agreeing with stock
//! `redis-cli --pipe`; failures stop at the first failing command and say what was applied;
//! `RedisScratch` refuses non-empty servers.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Server, contains, dump, resp};
use exporter_contract::{
    EngineError, ErrorKind, PayloadFormat, RestoreOptions, RestoreSummary, ScratchServer,
    TableSummary, Target,
};
use exporter_redis::{
    RedisScratch, RedisSource, RedisTarget, WINDOW_COMMANDS, fingerprint_database,
};
use futures::StreamExt;
use futures::stream::BoxStream;

/// `bytes` as a body cut into chunks of `chunk` bytes.
fn body(bytes: &[u8], chunk: usize) -> BoxStream<'static, Result<Bytes, EngineError>> {
    let chunks: Vec<Result<Bytes, EngineError>> = bytes
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

async fn restore_into(
    target: &RedisTarget,
    bytes: &[u8],
    chunk: usize,
) -> Result<RestoreSummary, EngineError> {
    target
        .restore(
            PayloadFormat::Resp,
            body(bytes, chunk),
            RestoreOptions::default(),
        )
        .await
}

fn keys(tables: &[TableSummary]) -> u64 {
    tables.iter().map(|t| t.rows).sum()
}

/// Commands in a RESP stream (every command of an archive is an array: count the arrays at
/// command starts by walking the stream).
fn count_commands(mut s: &[u8]) -> u64 {
    let mut n = 0;
    while !s.is_empty() {
        let line_end = s.windows(2).position(|w| w == b"\r\n").unwrap();
        let args: usize = std::str::from_utf8(&s[1..line_end])
            .unwrap()
            .parse()
            .unwrap();
        s = &s[line_end + 2..];
        for _ in 0..args {
            let line_end = s.windows(2).position(|w| w == b"\r\n").unwrap();
            let len: usize = std::str::from_utf8(&s[1..line_end])
                .unwrap()
                .parse()
                .unwrap();
            s = &s[line_end + 2 + len + 2..];
        }
        n += 1;
    }
    n
}

fn dbsizes(server: &Server) -> Vec<i64> {
    let mut c = server.client();
    (0..16)
        .map(|db| {
            redis::cmd("SELECT").arg(db).query::<()>(&mut c).unwrap();
            redis::cmd("DBSIZE").query(&mut c).unwrap()
        })
        .collect()
}

fn pexpiretime(server: &Server, db: i64, key: &[u8]) -> i64 {
    let mut c = server.client();
    redis::cmd("SELECT").arg(db).query::<()>(&mut c).unwrap();
    redis::cmd("PEXPIRETIME").arg(key).query(&mut c).unwrap()
}

/// Dump `src`; restore it with `RedisTarget` (in `chunk`-byte chunks) into one fresh server
/// and with `redis-cli --pipe` into another; both fingerprint like the dump's summary.
async fn both_ways(src: &Server, chunk: usize) -> (Server, Server, common::Dumped) {
    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();
    let summary = dumped.ok().clone();
    let ours = Server::start();
    let target = RedisTarget::new(ours.url());
    assert!(target.existing_objects().await.unwrap().is_empty());
    let restored = restore_into(&target, &dumped.bytes, chunk).await.unwrap();
    assert_eq!(restored.statements, count_commands(&dumped.bytes));
    assert_eq!(restored.rows, keys(&summary.tables));
    assert_eq!(restored.skipped, 0);
    let stock = Server::start();
    stock.restore(&dumped.bytes);
    let ours_fp = target.fingerprint().await.unwrap();
    assert_eq!(
        ours_fp, summary.tables,
        "RedisTarget restore vs dump summary"
    );
    assert_eq!(
        fingerprint_database(&stock.url()).await.unwrap(),
        ours_fp,
        "redis-cli --pipe restore vs RedisTarget restore"
    );
    assert_eq!(dbsizes(&ours), dbsizes(src));
    assert_eq!(dbsizes(&stock), dbsizes(src));
    (ours, stock, dumped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r02_binary_keys_restore_natively_even_in_one_byte_chunks() {
    let src = Server::start();
    src.setup("r02.redis");
    let (ours, stock, dumped) = both_ways(&src, 1).await;
    assert_eq!(keys(&dumped.ok().tables), 12);
    let snap = src.snapshot();
    assert!(snap.contains(r"b'\xff\xfe\x00bin-key'"), "{snap}");
    assert_eq!(ours.snapshot(), snap);
    assert_eq!(stock.snapshot(), snap);

    // The same stream once more with a tiny window (2 commands, 64 bytes in flight) and
    // chunks of 3 bytes: same result.
    let third = Server::start();
    let target = RedisTarget::new(third.url()).with_window(2, 64);
    let restored = restore_into(&target, &dumped.bytes, 3).await.unwrap();
    assert_eq!(restored.rows, 12);
    assert_eq!(third.snapshot(), snap);
    assert_eq!(target.fingerprint().await.unwrap(), dumped.ok().tables);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r03_ttls_stay_absolute() {
    let src = Server::start();
    let set_up = Instant::now();
    src.setup("r03.redis");
    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();
    let summary = dumped.ok().clone();
    // Past expires_before_restore's 50 ms before restoring.
    std::thread::sleep(Duration::from_millis(100).saturating_sub(set_up.elapsed()));
    let ours = Server::start();
    let target = RedisTarget::new(ours.url());
    let restored = restore_into(&target, &dumped.bytes, 4096).await.unwrap();
    // Every RESTORE is answered OK, also that of the key whose absolute expiry has passed
    // (the server accepts it and stores nothing).
    assert_eq!(restored.rows, keys(&summary.tables));
    let stock = Server::start();
    stock.restore(&dumped.bytes);
    for (db, key) in [
        (0, &b"ttl_long"[..]),
        (0, b"ttl_abs"),
        (0, b"hash_ttl"),
        (7, b"ttl_other_db"),
    ] {
        let a = pexpiretime(&src, db, key);
        assert!(a > 0, "{key:?} has an expiry on the source");
        // Absolute: the same millisecond, not restarted at restore time.
        assert_eq!(pexpiretime(&ours, db, key), a, "{key:?}");
        assert_eq!(pexpiretime(&stock, db, key), a, "{key:?}");
    }
    assert_eq!(pexpiretime(&ours, 0, b"ttl_abs"), 4_102_444_800_123);
    assert_eq!(pexpiretime(&ours, 0, b"no_ttl"), -1);
    assert_eq!(pexpiretime(&ours, 0, b"expires_before_restore"), -2);
    // ttl_subsecond: the same absolute expiry, or gone on both if it passed meanwhile.
    let sub = pexpiretime(&src, 0, b"ttl_subsecond");
    let ours_sub = pexpiretime(&ours, 0, b"ttl_subsecond");
    assert!(ours_sub == sub || ours_sub == -2, "{sub} vs {ours_sub}");
    let ours_fp = target.fingerprint().await.unwrap();
    assert_eq!(
        fingerprint_database(&stock.url()).await.unwrap(),
        ours_fp,
        "redis-cli --pipe vs RedisTarget"
    );
    // Keys whose absolute expiry passed are in the dump but rightly not restored.
    let gone = [
        contains(&dumped.bytes, b"expires_before_restore"),
        contains(&dumped.bytes, b"ttl_subsecond") && ours_sub == -2,
    ];
    assert_eq!(
        keys(&ours_fp) + gone.iter().filter(|g| **g).count() as u64,
        keys(&summary.tables)
    );
    assert_eq!(src.snapshot(), ours.snapshot());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r04_every_logical_database() {
    let src = Server::start();
    src.setup("r04.redis");
    let (ours, stock, dumped) = both_ways(&src, 5).await;
    let names: Vec<_> = dumped.ok().tables.iter().map(|t| t.name.clone()).collect();
    assert_eq!(names, ["db0", "db3", "db15"]);
    assert_eq!(
        dbsizes(&ours),
        [1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    );
    assert_eq!(ours.snapshot(), src.snapshot());
    assert_eq!(stock.snapshot(), src.snapshot());
    let target = RedisTarget::new(ours.url());
    assert_eq!(
        target.existing_objects().await.unwrap(),
        ["db0 (1 key)", "db3 (2 keys)", "db15 (2 keys)"]
    );

    // A backup of db3 alone restores into a /3 target, and fingerprints like its summary.
    let one = dump(&RedisSource::new(src.url_with("", "/3")))
        .await
        .unwrap();
    let fresh = Server::start();
    let db3 = RedisTarget::new(fresh.url_with("", "/3"));
    let restored = restore_into(&db3, &one.bytes, 64).await.unwrap();
    assert_eq!((restored.statements, restored.rows), (3, 2));
    assert_eq!(db3.fingerprint().await.unwrap(), one.ok().tables);
    assert_eq!(
        dbsizes(&fresh),
        [0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );

    // The whole-server dump selects db0 first: a /3 target refuses it before sending it.
    let err = restore_into(&db3, &dumped.bytes, 4096).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(
        err.to_string().contains("db0") && err.to_string().contains("/3"),
        "{err}"
    );
    assert_eq!(
        dbsizes(&fresh),
        [0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r05_streams_hyperloglog_bitmaps_geo() {
    let src = Server::start();
    src.setup("r05.redis");
    let (ours, stock, dumped) = both_ways(&src, 1000).await;
    assert_eq!(keys(&dumped.ok().tables), 5);
    assert_eq!(ours.snapshot(), src.snapshot());
    assert_eq!(stock.snapshot(), src.snapshot());
    let mut t = ours.client();
    let n: i64 = redis::cmd("PFCOUNT").arg("hll").query(&mut t).unwrap();
    assert_eq!(n, 7);
    let ty: String = redis::cmd("TYPE").arg("empty_st").query(&mut t).unwrap();
    assert_eq!(ty, "stream");
}

/// Every type in every encoding, binary keys, absolute TTLs, in all 16 databases, plus one
/// 3 MiB string.
fn fill_mix(src: &Server) {
    let mut c = src.client();
    for db in 0..16i64 {
        let mut p = redis::pipe();
        p.cmd("SELECT").arg(db).ignore();
        for i in 0..40 {
            p.cmd("SET")
                .arg(format!("str:{db}:{i}"))
                .arg(format!("v{i}"))
                .ignore();
        }
        p.cmd("SET").arg(format!("int:{db}")).arg(12345).ignore();
        p.cmd("SET")
            .arg(&b"\xff\x00bin\r\nkey"[..])
            .arg(&b"\x00\x01\xfe"[..])
            .ignore();
        p.cmd("RPUSH")
            .arg(format!("list:{db}"))
            .arg(&["a", "b", "c"])
            .ignore();
        p.cmd("SADD")
            .arg(format!("intset:{db}"))
            .arg(&[1, 2, 3])
            .ignore();
        p.cmd("SADD")
            .arg(format!("set:{db}"))
            .arg(&["x", "y"])
            .ignore();
        p.cmd("ZADD")
            .arg(format!("zset:{db}"))
            .arg(&[(1.5, "a"), (-2.0, "b")])
            .ignore();
        p.cmd("HSET")
            .arg(format!("hash:{db}"))
            .arg(&[("f1", "v1"), ("f2", "v2")])
            .ignore();
        p.cmd("XADD")
            .arg(format!("stream:{db}"))
            .arg("1-1")
            .arg("f")
            .arg("v")
            .ignore();
        p.cmd("PFADD")
            .arg(format!("hll:{db}"))
            .arg(&["a", "b"])
            .ignore();
        p.cmd("SET")
            .arg(format!("ttl_abs:{db}"))
            .arg("v")
            .arg("PXAT")
            .arg(4_102_444_800_000i64 + db)
            .ignore();
        p.cmd("SET")
            .arg(format!("ttl_rel:{db}"))
            .arg("v")
            .arg("EX")
            .arg(100_000)
            .ignore();
        p.query::<()>(&mut c).unwrap();
    }
    // Big collections: hashtable set and hash, skiplist zset, quicklist list (db 2).
    redis::cmd("SELECT").arg(2).query::<()>(&mut c).unwrap();
    let mut p = redis::pipe();
    for i in 0..3000 {
        p.cmd("SADD").arg("big_set").arg(format!("m{i}")).ignore();
        p.cmd("HSET")
            .arg("big_hash")
            .arg(format!("f{i}"))
            .arg(format!("{i}"))
            .ignore();
        p.cmd("ZADD")
            .arg("big_zset")
            .arg(i)
            .arg(format!("m{i}"))
            .ignore();
        p.cmd("RPUSH").arg("big_list").arg(format!("e{i}")).ignore();
    }
    p.cmd("EXPIRE").arg("big_hash").arg(50_000).ignore();
    p.query::<()>(&mut c).unwrap();
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    redis::cmd("SET")
        .arg("big_string")
        .arg(big)
        .query::<()>(&mut c)
        .unwrap();
    let encodings: Vec<String> = ["big_set", "big_hash", "big_zset", "big_list"]
        .iter()
        .map(|k| {
            redis::cmd("OBJECT")
                .arg("ENCODING")
                .arg(*k)
                .query(&mut c)
                .unwrap()
        })
        .collect();
    assert_eq!(
        encodings,
        ["hashtable", "hashtable", "skiplist", "quicklist"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mix_of_all_types_in_all_sixteen_databases() {
    let src = Server::start();
    fill_mix(&src);
    let (ours, stock, dumped) = both_ways(&src, 8191).await;
    let summary = dumped.ok().clone();
    assert_eq!(summary.tables.len(), 16);
    // 51 keys per database, plus the 5 big ones in db2.
    let mut want = [51i64; 16];
    want[2] += 5;
    assert_eq!(dbsizes(&ours), want);
    let snap = src.snapshot();
    assert_eq!(ours.snapshot(), snap);
    assert_eq!(stock.snapshot(), snap);
    for db in 0..16i64 {
        for key in [format!("ttl_abs:{db}"), format!("ttl_rel:{db}")] {
            let a = pexpiretime(&src, db, key.as_bytes());
            assert!(a > 0);
            assert_eq!(pexpiretime(&ours, db, key.as_bytes()), a, "db{db} {key}");
            assert_eq!(pexpiretime(&stock, db, key.as_bytes()), a, "db{db} {key}");
        }
    }
    assert_eq!(
        pexpiretime(&ours, 2, b"big_hash"),
        pexpiretime(&src, 2, b"big_hash")
    );

    // A tiny window (4 commands, 64 KiB: the 3 MiB key goes alone) and odd chunks.
    let small = Server::start();
    let target = RedisTarget::new(small.url()).with_window(4, 64 * 1024);
    let restored = restore_into(&target, &dumped.bytes, 777).await.unwrap();
    assert_eq!(restored.rows, keys(&summary.tables));
    assert_eq!(target.fingerprint().await.unwrap(), summary.tables);
    assert_eq!(small.snapshot(), snap);
}

/// A `DUMP` payload of `key` on `server` (db 0).
fn dump_payload(server: &Server, key: &str) -> Vec<u8> {
    let mut c = server.client();
    redis::cmd("DUMP").arg(key).query(&mut c).unwrap()
}

/// `SELECT 0`, `good` RESTOREs of `k0…`, `SELECT 5`, one RESTORE of `bad` with `payload`,
/// then `after` RESTOREs of `a0…` in db 5.
fn failing_stream(
    good_payload: &[u8],
    bad: &[u8],
    payload: &[u8],
    good: usize,
    after: usize,
) -> Vec<u8> {
    let mut s = resp(&[b"SELECT", b"0"]);
    for i in 0..good {
        let k = format!("k{i}");
        s.extend(resp(&[
            b"RESTORE",
            k.as_bytes(),
            b"0",
            good_payload,
            b"REPLACE",
        ]));
    }
    s.extend(resp(&[b"SELECT", b"5"]));
    s.extend(resp(&[b"RESTORE", bad, b"0", payload, b"REPLACE"]));
    for i in 0..after {
        let k = format!("a{i}");
        s.extend(resp(&[
            b"RESTORE",
            k.as_bytes(),
            b"0",
            good_payload,
            b"REPLACE",
        ]));
    }
    s
}

/// The `N applied` count of a failure message.
fn applied(message: &str) -> usize {
    let at = message
        .find(" applied")
        .expect("says how many were applied");
    message[..at].rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_restore_stops_names_the_key_and_says_what_was_applied() {
    let src = Server::start();
    src.cli(&["SET", "v", "some value"]);
    let payload = dump_payload(&src, "v");
    let mut corrupted = payload.clone();
    corrupted[3] ^= 0x55; // inside the value: the CRC64 no longer matches
    let bad_key = b"bad\xff\"key\r\n";
    let stream = failing_stream(&payload, bad_key, &corrupted, 10, 2000);

    // Default window: the commands already in flight behind the failing one ran; nothing
    // after them was sent.
    let ours = Server::start();
    let err = restore_into(&RedisTarget::new(ours.url()), &stream, 4096)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Query, "{err}");
    let object = err.object().unwrap();
    assert!(
        object.contains(r#"db5 key "bad\xff\"key\r\n""#) && object.contains("command 13: RESTORE"),
        "{object}"
    );
    assert!(
        err.message()
            .contains("DUMP payload version or checksum are wrong"),
        "{err}"
    );
    assert!(err.message().contains("damaged"), "{err}");
    let n = applied(err.message());
    assert!(n < WINDOW_COMMANDS, "{err}");
    assert!(
        err.message().contains(&format!("{n} later command(s)")),
        "{err}"
    );
    let sizes = dbsizes(&ours);
    assert_eq!(sizes[0], 10);
    assert_eq!(
        sizes[5], n as i64,
        "db5 holds exactly the in-flight commands"
    );
    let mut c = ours.client();
    redis::cmd("SELECT").arg(5).query::<()>(&mut c).unwrap();
    for i in 0..n {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(format!("a{i}"))
            .query(&mut c)
            .unwrap();
        assert_eq!(exists, 1, "a{i} was in flight and applied");
    }
    let exists: i64 = redis::cmd("EXISTS")
        .arg(format!("a{n}"))
        .query(&mut c)
        .unwrap();
    assert_eq!(exists, 0, "a{n} was never sent");
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&bad_key[..])
        .query(&mut c)
        .unwrap();
    assert_eq!(exists, 0);

    // Without pipelining, nothing after the failing command is applied.
    let strict = Server::start();
    let err = restore_into(
        &RedisTarget::new(strict.url()).with_window(1, 1),
        &stream,
        1,
    )
    .await
    .unwrap_err();
    assert!(err.message().contains("no later command was sent"), "{err}");
    assert_eq!(dbsizes(&strict)[0], 10);
    assert_eq!(dbsizes(&strict)[5], 0);

    // redis-cli --pipe, for comparison, goes on after the error and applies everything else.
    let stock = Server::start();
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &stock.port.to_string(), "--pipe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&stream)?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(dbsizes(&stock)[5], 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_newer_than_the_target_is_explained() {
    let src = Server::start();
    src.cli(&["SET", "v", "some value"]);
    let payload = dump_payload(&src, "v");
    // RDB version 11 (Redis 7.2) with a correct CRC64: what a newer server's DUMP looks like.
    let mut newer = payload.clone();
    let t = newer.len() - 10;
    newer[t..t + 2].copy_from_slice(&11u16.to_le_bytes());
    let crc = common::crc64(&newer[..newer.len() - 8]);
    let end = newer.len();
    newer[end - 8..].copy_from_slice(&crc.to_le_bytes());
    let stream = failing_stream(&payload, b"from-7.2", &newer, 2, 0);
    let ours = Server::start();
    let target = RedisTarget::new(ours.url());
    let version = target.preflight().await.unwrap().version;
    let err = restore_into(&target, &stream, 4096).await.unwrap_err();
    let text = err.to_string();
    assert!(
        err.object()
            .unwrap()
            .contains(r#"db5 key "from-7.2" (command 5: RESTORE)"#),
        "{text}"
    );
    assert!(
        text.contains("RDB version 11")
            && text.contains(&format!("Redis {version}"))
            && text.contains("older")
            && text.contains("Redis 7.2 or later"),
        "{text}"
    );
    assert!(text.contains("no later command was sent"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_or_failing_input_and_foreign_commands() {
    let src = Server::start();
    src.setup("r04.redis");
    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();
    let bytes = &dumped.bytes;

    // Cut inside the last command's payload: a protocol error, after the complete commands.
    let ours = Server::start();
    let target = RedisTarget::new(ours.url());
    let cut = &bytes[..bytes.len() - 20];
    let err = restore_into(&target, cut, 4096).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    let total = count_commands(bytes);
    assert_eq!(err.object(), Some(format!("command {total}").as_str()));
    assert_eq!(keys(&target.fingerprint().await.unwrap()), 4);

    // Cut inside the length lines of the last command (`*5\r\n$7\r\nRESTORE…`).
    let needle = b"\r\n$7\r\nRESTORE";
    let last = bytes.len()
        - needle.len()
        - bytes
            .windows(needle.len())
            .rev()
            .position(|w| w == needle)
            .unwrap()
        - 2;
    assert_eq!(&bytes[last..last + 2], b"*5");
    for cut in [last + 1, last + 3, last + 6] {
        let err = restore_into(&target, &bytes[..cut], 1).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
        assert_eq!(err.object(), Some(format!("command {total}").as_str()));
    }

    // An error in the input stream aborts with that error.
    let mut items: Vec<Result<Bytes, EngineError>> = vec![Ok(Bytes::copy_from_slice(&bytes[..30]))];
    items.push(Err(EngineError::new(
        ErrorKind::Io,
        "zstd frame checksum mismatch",
    )));
    let err = target
        .restore(
            PayloadFormat::Resp,
            futures::stream::iter(items).boxed(),
            RestoreOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains("zstd frame checksum mismatch"));

    // Anything but SELECT and RESTORE is refused before it is sent.
    let mut hostile = resp(&[b"SELECT", b"3"]);
    hostile.extend(resp(&[b"FLUSHALL"]));
    let before = dbsizes(&ours);
    assert!(before.iter().sum::<i64>() > 0);
    let err = restore_into(&target, &hostile, 4096).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(
        err.to_string().contains("FLUSHALL") && err.to_string().contains("command 2"),
        "{err}"
    );
    assert_eq!(dbsizes(&ours), before);

    // An empty payload is not an archive.
    let err = restore_into(&target, b"", 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);

    // RDB payloads are restored by hand; the error says how.
    let err = target
        .restore(
            PayloadFormat::Rdb,
            body(b"REDIS0010", 4),
            RestoreOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(
        err.to_string().contains("dump.rdb") && err.to_string().contains("dir"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_objects_and_clean() {
    let server = Server::start_with(&["--requirepass", "tgt-pw-2231"], Some("tgt-pw-2231"));
    let url = server.url_with(":tgt-pw-2231", "");
    let target = RedisTarget::new(url.clone());
    assert!(!target.describe().contains("tgt-pw-2231"));
    assert!(target.existing_objects().await.unwrap().is_empty());
    // r04.redis through a client that authenticates.
    let mut c = server.client();
    redis::pipe()
        .cmd("SET")
        .arg("k")
        .arg("zero")
        .ignore()
        .cmd("SELECT")
        .arg(3)
        .ignore()
        .cmd("SET")
        .arg("k")
        .arg("three")
        .ignore()
        .cmd("HSET")
        .arg("h3")
        .arg("f")
        .arg("v")
        .ignore()
        .cmd("SELECT")
        .arg(15)
        .ignore()
        .cmd("SET")
        .arg("k")
        .arg("fifteen")
        .ignore()
        .cmd("SET")
        .arg("only15")
        .arg("x")
        .ignore()
        .query::<()>(&mut c)
        .unwrap();
    assert_eq!(
        target.existing_objects().await.unwrap(),
        ["db0 (1 key)", "db3 (2 keys)", "db15 (2 keys)"]
    );
    let db3 = RedisTarget::new(server.url_with(":tgt-pw-2231", "/3"));
    assert_eq!(db3.existing_objects().await.unwrap(), ["db3 (2 keys)"]);
    let db4 = RedisTarget::new(server.url_with(":tgt-pw-2231", "/4"));
    assert!(db4.existing_objects().await.unwrap().is_empty());
    // A /db target cleans only its database.
    db3.clean().await.unwrap();
    assert_eq!(
        target.existing_objects().await.unwrap(),
        ["db0 (1 key)", "db15 (2 keys)"]
    );
    target.clean().await.unwrap();
    assert!(target.existing_objects().await.unwrap().is_empty());
    assert_eq!(dbsizes(&server), [0; 16]);

    let wrong = RedisTarget::new(server.url_with(":nope-9911", ""));
    let err = wrong.existing_objects().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(!format!("{err} {err:?}").contains("nope-9911"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_needs_an_empty_server_and_flushes_only_its_own() {
    let src = Server::start();
    src.setup("r04.redis");
    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();

    // A server holding keys is refused, naming its databases, and never flushed.
    let busy = Server::start();
    busy.cli(&["SET", "a", "1"]);
    busy.cli(&["SET", "b", "2"]);
    busy.cli(&["-n", "9", "SET", "c", "3"]);
    let scratch = RedisScratch::new(busy.url());
    let err = scratch.create("exporter_verify_x").await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(
        err.to_string().contains("db0 (2 keys), db9 (1 key)"),
        "{err}"
    );
    let err = scratch.drop_scratch("exporter_verify_x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(dbsizes(&busy)[0], 2);
    assert_eq!(dbsizes(&busy)[9], 1);
    let err = RedisScratch::new(busy.url_with("", "/2"))
        .create("s")
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Unsupported);

    // An empty server: create, restore, fingerprint, drop.
    let empty = Server::start();
    let scratch = RedisScratch::new(empty.url());
    let target = scratch.create("exporter_verify_a").await.unwrap();
    let err = scratch.create("exporter_verify_b").await.err().unwrap();
    assert!(err.to_string().contains("exporter_verify_a"), "{err}");
    target
        .restore(
            PayloadFormat::Resp,
            body(&dumped.bytes, 100),
            RestoreOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(target.fingerprint().await.unwrap(), dumped.ok().tables);
    assert!(scratch.drop_scratch("exporter_verify_b").await.is_err());
    assert_eq!(dbsizes(&empty), dbsizes(&src));
    scratch.drop_scratch("exporter_verify_a").await.unwrap();
    assert_eq!(dbsizes(&empty), [0; 16]);
    // Reusable once dropped.
    let again = scratch.create("exporter_verify_b").await.unwrap();
    assert!(again.existing_objects().await.unwrap().is_empty());
    scratch.drop_scratch("exporter_verify_b").await.unwrap();
}

const LIBRARY: &str = "#!lua name=restore_lib\n\
    redis.register_function('first_arg', function(keys, args) return args[1] end)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_libraries_restore_and_count_as_contents() {
    let src = Server::start();
    assert_eq!(
        src.cli(&["FUNCTION", "LOAD", LIBRARY]).trim(),
        "restore_lib"
    );
    let mut c = src.client();
    let functions: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut c).unwrap();
    src.cli(&["SET", "v", "value"]);
    let key = dump_payload(&src, "v");
    let mut stream = resp(&[b"SELECT", b"0"]);
    stream.extend(resp(&[b"FUNCTION", b"RESTORE", &functions, b"REPLACE"]));
    stream.extend(resp(&[b"RESTORE", b"k", b"0", &key, b"REPLACE"]));

    let ours = Server::start();
    let target = RedisTarget::new(ours.url());
    let restored = restore_into(&target, &stream, 9).await.unwrap();
    assert_eq!((restored.statements, restored.rows), (3, 1));
    assert_eq!(
        ours.cli(&["FCALL", "first_arg", "0", "hello"]).trim(),
        "hello"
    );
    assert_eq!(
        target.existing_objects().await.unwrap(),
        ["functions (1 library)", "db0 (1 key)"]
    );
    // Functions are server-wide: a /db target neither lists nor flushes them.
    let db0 = RedisTarget::new(ours.url_with("", "/0"));
    assert_eq!(db0.existing_objects().await.unwrap(), ["db0 (1 key)"]);

    // A scratch server holding only a library is not empty.
    let err = RedisScratch::new(ours.url())
        .create("s")
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("functions (1 library)"), "{err}");

    target.clean().await.unwrap();
    assert!(target.existing_objects().await.unwrap().is_empty());
    assert!(ours.cli(&["FUNCTION", "LIST"]).trim().is_empty());

    // A damaged library payload stops the restore, naming the command.
    let mut damaged = functions.clone();
    damaged[4] ^= 0x20;
    let mut stream = resp(&[b"SELECT", b"0"]);
    stream.extend(resp(&[b"FUNCTION", b"RESTORE", &damaged, b"REPLACE"]));
    stream.extend(resp(&[b"RESTORE", b"k", b"0", &key, b"REPLACE"]));
    let err = restore_into(&target.clone().with_window(1, 1), &stream, 4096)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Query, "{err}");
    assert!(
        err.object()
            .unwrap()
            .ends_with("function libraries (command 2: FUNCTION RESTORE)"),
        "{err}"
    );
    assert!(err.message().contains("damaged"), "{err}");
    assert!(target.existing_objects().await.unwrap().is_empty());

    // End to end: a dump of the source carries the library; restored natively, the
    // fingerprints (the `functions` entry included) equal the dump's.
    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();
    let summary = dumped.ok().clone();
    let names: Vec<_> = summary.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["functions", "db0"]);
    let fresh = Server::start();
    let target = RedisTarget::new(fresh.url());
    restore_into(&target, &dumped.bytes, 100).await.unwrap();
    assert_eq!(target.fingerprint().await.unwrap(), summary.tables);
    assert_eq!(
        fresh.cli(&["FCALL", "first_arg", "0", "again"]).trim(),
        "again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scratch_restore_keeps_keys_that_expired_since_the_dump() {
    let src = Server::start();
    src.cli(&["SET", "lasting", "v"]);
    src.cli(&["SET", "short", "gone soon", "PX", "400"]);
    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();
    assert_eq!(dumped.ok().tables[0].rows, 2);
    // Let the short key's absolute expiry pass.
    std::thread::sleep(Duration::from_millis(600));

    // A plain restore honours the expiry: the key is accepted and not stored.
    let plain = Server::start();
    RedisTarget::new(plain.url())
        .restore(
            PayloadFormat::Resp,
            body(&dumped.bytes, 64),
            RestoreOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(plain.cli(&["EXISTS", "short"]).trim(), "0");

    // The scratch of a verification keeps it, so the fingerprints still compare equal.
    let empty = Server::start();
    let scratch = RedisScratch::new(empty.url());
    let target = scratch.create("exporter_verify_ttl").await.unwrap();
    target
        .restore(
            PayloadFormat::Resp,
            body(&dumped.bytes, 64),
            RestoreOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(empty.cli(&["EXISTS", "short"]).trim(), "1");
    assert_eq!(empty.cli(&["PTTL", "short"]).trim(), "-1");
    assert_eq!(target.fingerprint().await.unwrap(), dumped.ok().tables);
    scratch.drop_scratch("exporter_verify_ttl").await.unwrap();
    assert_eq!(empty.cli(&["DBSIZE"]).trim(), "0");
}
