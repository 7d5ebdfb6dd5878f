//! Fidelity cases R02–R05 (shared/fidelity/redis.md): set up with the case's exact commands on
//! a dedicated server, dump through the adapter, replay with stock `redis-cli --pipe` into
//! another fresh server, compare byte-exact snapshots and the case's own properties.

mod common;

use std::time::{Duration, Instant};

use common::{Server, contains, dump, resp};
use exporter_contract::{Consistency, PayloadFormat, TableSummary};
use exporter_redis::{RedisSource, fingerprint_database};
use redis::Value;

/// Dump `src`, restore into a new server, and check snapshot and fingerprints.
async fn round_trip(src: &Server) -> (Server, common::Dumped) {
    let dumped = dump(&RedisSource::new(src.url()))
        .await
        .expect("dump starts");
    let summary = dumped.ok().clone();
    assert_eq!(dumped.meta.engine, "redis");
    assert_eq!(dumped.meta.format, PayloadFormat::Resp);
    assert_eq!(dumped.meta.consistency, Consistency::BestEffort);
    assert!(
        dumped.meta.server_version.starts_with("7."),
        "{:?}",
        dumped.meta
    );
    let target = Server::start();
    target.restore(&dumped.bytes);
    let source_fp = fingerprint_database(&src.url()).await.unwrap();
    let target_fp = fingerprint_database(&target.url()).await.unwrap();
    assert_eq!(
        summary.tables, source_fp,
        "dump vs live source fingerprints"
    );
    assert_eq!(summary.tables, target_fp, "dump vs restored fingerprints");
    (target, dumped)
}

fn names(tables: &[TableSummary]) -> Vec<(&str, u64)> {
    tables.iter().map(|t| (t.name.as_str(), t.rows)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r02_binary_safe_keys_and_values() {
    let src = Server::start();
    src.setup("r02.redis");
    let (target, dumped) = round_trip(&src).await;
    assert_eq!(names(&dumped.ok().tables), vec![("db0", 12)]);
    let snap = src.snapshot();
    assert_eq!(snap, target.snapshot());
    // The snapshot really covers the tricky keys.
    for key in [
        r"b'\xff\xfe\x00bin-key'",
        "b''",
        r"b'key\nwith\r\nnewlines'",
        r"b'hash\x00key'",
    ] {
        assert!(snap.contains(key), "{key} missing from {snap}");
    }
    let mut t = target.client();
    let v: Vec<u8> = redis::cmd("GET")
        .arg(&b"\xff\xfe\x00bin-key"[..])
        .query(&mut t)
        .unwrap();
    assert_eq!(v, b"\x93\x01\x02\x03");
    let v: Vec<u8> = redis::cmd("GET").arg(&b""[..]).query(&mut t).unwrap();
    assert_eq!(v, b"empty key name");
    let z: Vec<Vec<u8>> = redis::cmd("ZRANGE")
        .arg("zset-bin")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut t)
        .unwrap();
    let mut s = src.client();
    let z_src: Vec<Vec<u8>> = redis::cmd("ZRANGE")
        .arg("zset-bin")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut s)
        .unwrap();
    assert_eq!(z, z_src);
    assert!(
        z.contains(&b"-inf".to_vec()) && z.contains(&b"1e-300".to_vec()),
        "{z:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r03_ttls_are_absolute_and_expired_keys_stay_dead() {
    let src = Server::start();
    let set_up = Instant::now();
    src.setup("r03.redis");
    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();
    dumped.ok();
    // The absolute expiry is in the stream as is, with ABSTTL.
    assert!(contains(&dumped.bytes, b"4102444800123"));
    assert!(contains(&dumped.bytes, b"ABSTTL"));
    assert!(
        contains(&dumped.bytes, b"ttl_subsecond"),
        "the 1.5 s key was dumped (dump took {:?})",
        set_up.elapsed()
    );
    // Past expires_before_restore's 50 ms before restoring.
    std::thread::sleep(Duration::from_millis(100).saturating_sub(set_up.elapsed()));
    let target = Server::start();
    target.restore(&dumped.bytes);

    let mut s = src.client();
    let mut t = target.client();
    let pexpiretime = |c: &mut redis::Connection, db: i64, key: &str| -> i64 {
        redis::cmd("SELECT").arg(db).query::<()>(c).unwrap();
        redis::cmd("PEXPIRETIME").arg(key).query(c).unwrap()
    };
    for (db, key) in [
        (0, "ttl_subsecond"),
        (0, "ttl_long"),
        (0, "ttl_abs"),
        (0, "hash_ttl"),
        (7, "ttl_other_db"),
    ] {
        let a = pexpiretime(&mut s, db, key);
        let b = pexpiretime(&mut t, db, key);
        if key == "ttl_subsecond" && a == -2 {
            // Expired on the source meanwhile (a very slow machine): must be gone here too.
            assert_eq!(b, -2, "{key} resurrected");
            continue;
        }
        assert!(a > 0, "{key} has an expiry on the source: {a}");
        assert!((a - b).abs() <= 1000, "{key}: source {a}, target {b}");
    }
    assert_eq!(pexpiretime(&mut t, 0, "ttl_abs"), 4_102_444_800_123);
    assert_eq!(pexpiretime(&mut t, 0, "no_ttl"), -1);
    let exists: i64 = redis::cmd("EXISTS")
        .arg("expires_before_restore")
        .query(&mut t)
        .unwrap();
    assert_eq!(
        exists, 0,
        "expires_before_restore must not exist on the target"
    );

    // A later restore of the same archive: ttl_subsecond's absolute expiry has passed, so it is
    // not resurrected, and the other expiries are not restarted.
    std::thread::sleep(Duration::from_millis(1700).saturating_sub(set_up.elapsed()));
    target.cli(&["FLUSHALL"]);
    target.restore(&dumped.bytes);
    assert_eq!(pexpiretime(&mut t, 0, "ttl_subsecond"), -2, "resurrected");
    for (db, key) in [(0, "ttl_long"), (0, "hash_ttl"), (7, "ttl_other_db")] {
        let a = pexpiretime(&mut s, db, key);
        let b = pexpiretime(&mut t, db, key);
        assert!(
            (a - b).abs() <= 1000,
            "{key} restarted: source {a}, target {b}"
        );
    }
    assert_eq!(src.snapshot(), target.snapshot());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r04_logical_databases() {
    let src = Server::start();
    src.setup("r04.redis");
    let (target, dumped) = round_trip(&src).await;
    assert_eq!(
        names(&dumped.ok().tables),
        vec![("db0", 1), ("db3", 2), ("db15", 2)]
    );
    assert!(dumped.bytes.starts_with(&resp(&[b"SELECT", b"0"])));
    assert_eq!(src.snapshot(), target.snapshot());
    let mut t = target.client();
    for (db, want) in [(0, "zero"), (3, "three"), (15, "fifteen")] {
        redis::cmd("SELECT").arg(db).query::<()>(&mut t).unwrap();
        let k: String = redis::cmd("GET").arg("k").query(&mut t).unwrap();
        assert_eq!(k, want, "db{db}");
    }
    let mut s = src.client();
    for db in 0..16 {
        redis::cmd("SELECT").arg(db).query::<()>(&mut s).unwrap();
        redis::cmd("SELECT").arg(db).query::<()>(&mut t).unwrap();
        let a: i64 = redis::cmd("DBSIZE").query(&mut s).unwrap();
        let b: i64 = redis::cmd("DBSIZE").query(&mut t).unwrap();
        assert_eq!(a, b, "DBSIZE of db{db}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r04_a_backup_of_one_db_restores_only_that_db() {
    let src = Server::start();
    src.setup("r04.redis");
    let url = src.url_with("", "/3");
    let dumped = dump(&RedisSource::new(url.clone())).await.unwrap();
    let summary = dumped.ok().clone();
    assert_eq!(names(&summary.tables), vec![("db3", 2)]);
    assert!(dumped.bytes.starts_with(&resp(&[b"SELECT", b"3"])));
    let target = Server::start();
    target.restore(&dumped.bytes);
    let mut t = target.client();
    for db in 0..16 {
        redis::cmd("SELECT").arg(db).query::<()>(&mut t).unwrap();
        let n: i64 = redis::cmd("DBSIZE").query(&mut t).unwrap();
        assert_eq!(n, if db == 3 { 2 } else { 0 }, "DBSIZE of db{db}");
    }
    redis::cmd("SELECT").arg(3).query::<()>(&mut t).unwrap();
    let k: String = redis::cmd("GET").arg("k").query(&mut t).unwrap();
    assert_eq!(k, "three");
    assert_eq!(
        fingerprint_database(&target.url_with("", "/3"))
            .await
            .unwrap(),
        summary.tables
    );
    assert_eq!(fingerprint_database(&url).await.unwrap(), summary.tables);

    // An empty database of a /db URL: still a valid stream, reported with 0 keys.
    let dumped = dump(&RedisSource::new(src.url_with("", "/5")))
        .await
        .unwrap();
    assert_eq!(names(&dumped.ok().tables), vec![("db5", 0)]);
    assert_eq!(dumped.bytes, resp(&[b"SELECT", b"5"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r05_streams_hyperloglog_bitmaps_geo() {
    let src = Server::start();
    src.setup("r05.redis");
    let (target, dumped) = round_trip(&src).await;
    assert_eq!(names(&dumped.ok().tables), vec![("db0", 5)]);
    assert_eq!(src.snapshot(), target.snapshot());
    let mut s = src.client();
    let mut t = target.client();
    for key in ["st", "empty_st"] {
        let a: Value = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(key)
            .arg("FULL")
            .query(&mut s)
            .unwrap();
        let b: Value = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(key)
            .arg("FULL")
            .query(&mut t)
            .unwrap();
        assert_eq!(a, b, "XINFO STREAM {key} FULL");
    }
    let ty: String = redis::cmd("TYPE").arg("empty_st").query(&mut t).unwrap();
    assert_eq!(ty, "stream");
    let n: i64 = redis::cmd("XLEN").arg("empty_st").query(&mut t).unwrap();
    assert_eq!(n, 0);
    let n: i64 = redis::cmd("PFCOUNT").arg("hll").query(&mut t).unwrap();
    assert_eq!(n, 7);
    let n: i64 = redis::cmd("BITCOUNT").arg("bitmap").query(&mut t).unwrap();
    assert_eq!(n, 2);
    let n: i64 = redis::cmd("STRLEN").arg("bitmap").query(&mut t).unwrap();
    assert_eq!(n, 12_501);
    let geopos = |c: &mut redis::Connection| -> Value {
        redis::cmd("GEOPOS")
            .arg("geo")
            .arg("Palermo")
            .arg("Catania")
            .query(c)
            .unwrap()
    };
    assert_eq!(geopos(&mut s), geopos(&mut t));
}
