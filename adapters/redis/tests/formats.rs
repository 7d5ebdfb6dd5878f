//! The RDB format (both transfer forms), big keys, and the empty server.

mod common;

use common::{Server, crc64, dump, resp};
use exporter_contract::{Consistency, PayloadFormat};
use exporter_redis::{CHUNK, RedisFormat, RedisSource, fingerprint_database};

/// An RDB dump must be exactly one file: header, end opcode, CRC64 of everything before it.
fn assert_whole_rdb(bytes: &[u8]) {
    assert!(bytes.starts_with(b"REDIS0"), "RDB header");
    let n = bytes.len();
    assert_eq!(
        bytes[n - 9],
        0xff,
        "the end opcode is 9 bytes from the end: no trailing bytes"
    );
    let stored = u64::from_le_bytes(bytes[n - 8..].try_into().unwrap());
    assert_eq!(stored, crc64(&bytes[..n - 8]), "CRC64 of the file");
}

async fn rdb_round_trip(extra: &[&str], sized: bool) {
    let src = Server::start_with(extra, None);
    for f in ["r02.redis", "r04.redis", "r05.redis"] {
        src.setup(f);
    }
    src.cli(&["SET", "ttl_long", "v", "EX", "100000"]);
    let source = RedisSource::new(src.url()).with_format(RedisFormat::Rdb);
    let dumped = dump(&source).await.unwrap();
    dumped.ok();
    assert_eq!(dumped.meta.format, PayloadFormat::Rdb);
    assert_eq!(dumped.meta.consistency, Consistency::PointInTime);
    assert!(dumped.meta.server_version.starts_with("7."));
    if sized {
        assert_eq!(dumped.meta.size_hint, Some(dumped.bytes.len() as u64));
    }
    assert_whole_rdb(&dumped.bytes);
    let restored = Server::start_on_rdb(&dumped.bytes);
    assert_eq!(src.snapshot(), restored.snapshot());
    let mut t = restored.client();
    let exp: i64 = redis::cmd("PEXPIRETIME")
        .arg("ttl_long")
        .query(&mut t)
        .unwrap();
    let mut s = src.client();
    let want: i64 = redis::cmd("PEXPIRETIME")
        .arg("ttl_long")
        .query(&mut s)
        .unwrap();
    assert_eq!(exp, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdb_diskless_transfer_strips_the_eof_mark() {
    rdb_round_trip(&["--repl-diskless-sync", "yes"], false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdb_sized_transfer_is_cut_at_its_length() {
    rdb_round_trip(&["--repl-diskless-sync", "no"], true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_keys_stream_in_bounded_chunks_and_fingerprint_stably() {
    let src = Server::start();
    let mut sc = src.client();
    // A 20 MB string of incompressible bytes (xorshift), so 20 MB really flow through.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let big: Vec<u8> = (0..20_000_000u32)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect();
    redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query::<()>(&mut sc)
        .unwrap();
    // A hash of 200k fields (hash-table encoded; integer and LZF-compressible values), a set
    // of 50k members and a sorted set and list.
    for chunk in 0..200 {
        let mut cmd = redis::cmd("HSET");
        cmd.arg("bighash");
        for i in chunk * 1000..(chunk + 1) * 1000 {
            cmd.arg(format!("field:{i}"));
            if i % 100 == 0 {
                cmd.arg(format!("{i}").repeat(20));
            } else {
                cmd.arg(i);
            }
        }
        cmd.query::<()>(&mut sc).unwrap();
    }
    for chunk in 0..50 {
        let mut sadd = redis::cmd("SADD");
        let mut zadd = redis::cmd("ZADD");
        let mut rpush = redis::cmd("RPUSH");
        sadd.arg("bigset");
        zadd.arg("bigzset");
        rpush.arg("biglist");
        for i in chunk * 1000..(chunk + 1) * 1000 {
            sadd.arg(format!("member:{i}"));
            zadd.arg(i % 977).arg(format!("z{i}"));
            rpush.arg(i);
        }
        sadd.query::<()>(&mut sc).unwrap();
        zadd.query::<()>(&mut sc).unwrap();
        rpush.query::<()>(&mut sc).unwrap();
    }
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("bighash")
        .query(&mut sc)
        .unwrap();
    assert_eq!(enc, "hashtable");

    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();
    let summary = dumped.ok().clone();
    assert!(dumped.bytes.len() > 20_000_000);
    assert!(
        dumped.max_chunk <= CHUNK,
        "body chunks are bounded: {} > {CHUNK}",
        dumped.max_chunk
    );
    assert_eq!(summary.tables.len(), 1);
    assert_eq!(summary.tables[0].rows, 5);

    let target = Server::start();
    target.restore(&dumped.bytes);
    let mut tc = target.client();
    let got: Vec<u8> = redis::cmd("GET").arg("big").query(&mut tc).unwrap();
    assert!(got == big, "the 20 MB string differs");
    let sorted_hash = |c: &mut redis::Connection| {
        let mut v: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL").arg("bighash").query(c).unwrap();
        v.sort();
        v
    };
    let fields = sorted_hash(&mut tc);
    assert_eq!(fields.len(), 200_000);
    assert!(fields == sorted_hash(&mut sc), "bighash differs");
    let members = |c: &mut redis::Connection| {
        let mut v: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg("bigset").query(c).unwrap();
        v.sort();
        v
    };
    assert!(members(&mut tc) == members(&mut sc), "bigset differs");
    let zrange = |c: &mut redis::Connection| -> Vec<Vec<u8>> {
        redis::cmd("ZRANGE")
            .arg("bigzset")
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query(c)
            .unwrap()
    };
    assert!(zrange(&mut tc) == zrange(&mut sc), "bigzset differs");
    let lrange = |c: &mut redis::Connection| -> Vec<Vec<u8>> {
        redis::cmd("LRANGE")
            .arg("biglist")
            .arg(0)
            .arg(-1)
            .query(c)
            .unwrap()
    };
    assert!(lrange(&mut tc) == lrange(&mut sc), "biglist differs");

    // The hash-table encoded hash and set dump in another order on the restored server, yet
    // the fingerprints agree.
    assert_eq!(
        fingerprint_database(&src.url()).await.unwrap(),
        summary.tables
    );
    assert_eq!(
        fingerprint_database(&target.url()).await.unwrap(),
        summary.tables
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_server_gives_a_valid_one_command_stream() {
    let src = Server::start();
    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();
    let summary = dumped.ok();
    assert!(summary.tables.is_empty());
    assert!(summary.warnings.is_empty());
    assert_eq!(dumped.bytes, resp(&[b"SELECT", b"0"]));
    let target = Server::start();
    target.restore(&dumped.bytes);
    assert_eq!(target.snapshot(), "");
    assert!(
        fingerprint_database(&target.url())
            .await
            .unwrap()
            .is_empty()
    );

    // The RDB of an empty server is a valid file too.
    let source = RedisSource::new(src.url()).with_format(RedisFormat::Rdb);
    let dumped = dump(&source).await.unwrap();
    dumped.ok();
    assert_whole_rdb(&dumped.bytes);
    let restored = Server::start_on_rdb(&dumped.bytes);
    assert_eq!(restored.snapshot(), "");
}
