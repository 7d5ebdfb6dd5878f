//! The pipelined RESP dump: many keys over many `SCAN` pages and batches, payloads on both
//! sides of the whole-payload limit, batches sized (or not) by `MEMORY USAGE`, keys deleted
//! while the dump runs. The archive and the fingerprints are checked against what an
//! independent client (the `redis` crate) reads from the same server.

mod common;

use std::time::Duration;

use common::{Server, dump, resp};
use exporter_contract::{DumpOptions, Fingerprint, Source};
use exporter_redis::{RedisSource, fingerprint_database};
use futures::StreamExt;
use xxhash_rust::xxh3::xxh3_128;

/// A RESP command stream split into commands (arrays of bulk strings).
fn commands(mut s: &[u8]) -> Vec<Vec<Vec<u8>>> {
    fn header(s: &[u8], kind: u8) -> (usize, &[u8]) {
        assert_eq!(s[0], kind, "expected {:?}", kind as char);
        let end = s.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = std::str::from_utf8(&s[1..end]).unwrap().parse().unwrap();
        (n, &s[end + 2..])
    }
    let mut out = Vec::new();
    while !s.is_empty() {
        let (n, rest) = header(s, b'*');
        s = rest;
        let mut args = Vec::with_capacity(n);
        for _ in 0..n {
            let (len, rest) = header(s, b'$');
            args.push(rest[..len].to_vec());
            assert_eq!(&rest[len..len + 2], b"\r\n");
            s = &rest[len + 2..];
        }
        out.push(args);
    }
    out
}

/// Incompressible bytes (xorshift), so LZF leaves them as they are.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// Every key of `db` as an independent client reads it page by page, as the dump does
/// (`SCAN … COUNT 1000` from cursor 0): `(key, PEXPIRETIME, DUMP payload)` in `SCAN` order.
fn scan_like_the_dump(c: &mut redis::Connection, db: i64) -> Vec<(Vec<u8>, i64, Vec<u8>)> {
    redis::cmd("SELECT").arg(db).query::<()>(c).unwrap();
    let mut cursor = 0u64;
    let mut out = Vec::new();
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query(c)
            .unwrap();
        for key in keys {
            let expiry: i64 = redis::cmd("PEXPIRETIME").arg(&key).query(c).unwrap();
            let payload: Vec<u8> = redis::cmd("DUMP").arg(&key).query(c).unwrap();
            out.push((key, expiry, payload));
        }
        if next == 0 {
            return out;
        }
        cursor = next;
    }
}

/// The `RESTORE` stream of `keys`, as the crate docs define it.
fn restore_stream(db: i64, keys: &[(Vec<u8>, i64, Vec<u8>)]) -> Vec<u8> {
    let mut want = resp(&[b"SELECT", db.to_string().as_bytes()]);
    for (key, expiry, payload) in keys {
        if *expiry > 0 {
            let at = expiry.to_string();
            want.extend(resp(&[
                b"RESTORE",
                key,
                at.as_bytes(),
                payload,
                b"REPLACE",
                b"ABSTTL",
            ]));
        } else {
            want.extend(resp(&[b"RESTORE", key, b"0", payload, b"REPLACE"]));
        }
    }
    want
}

/// `(calls of MEMORY USAGE, calls of EXEC)` so far, from `INFO commandstats`.
fn memory_and_exec_calls(server: &Server) -> (u64, u64) {
    let stats = server.cli(&["INFO", "commandstats"]);
    let calls = |name: &str| {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
            .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
    };
    (calls("memory|usage"), calls("exec"))
}

/// Wait until the server's key table is not being rehashed any more (`SCAN` then visits the
/// same keys in the same order every time): two consecutive full scans agree.
fn settle(c: &mut redis::Connection, db: i64) {
    let keys = |c: &mut redis::Connection| {
        redis::cmd("SELECT").arg(db).query::<()>(c).unwrap();
        let mut cursor = 0u64;
        let mut all = Vec::new();
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query(c)
                .unwrap();
            all.extend(keys);
            if next == 0 {
                return all;
            }
            cursor = next;
        }
    };
    let mut last = keys(c);
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let now = keys(c);
        if now == last {
            return;
        }
        last = now;
    }
    panic!("the key table of db{db} kept changing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_is_every_key_once_in_scan_order_byte_for_byte() {
    let src = Server::start();
    let mut c = src.client();
    // db0: 6000 strings of every length up to ~1 KB (LZF-compressed above 20 bytes), every
    // 7th expiring in 2100; 500 small hashes; 300 hash-table sets; 40 incompressible values
    // whose payloads straddle the 64 KiB whole-payload limit byte by byte; 3 values of
    // 300 KB and a set of 25,000 members, which stream through in pieces and switch the
    // rest of the database to sized batches.
    for start in (0..6000).step_by(1000) {
        let mut p = redis::pipe();
        for i in start..start + 1000 {
            let key = format!("s:{i}");
            p.cmd("SET")
                .arg(&key)
                .arg(format!("{i}:{}", "v".repeat(i * 37 % 1000)))
                .ignore();
            if i % 7 == 0 {
                p.cmd("PEXPIREAT")
                    .arg(&key)
                    .arg(4_102_444_800_000i64 + i as i64)
                    .ignore();
            }
        }
        p.query::<()>(&mut c).unwrap();
    }
    let mut p = redis::pipe();
    for i in 0..500 {
        p.cmd("HSET")
            .arg(format!("h:{i}"))
            .arg("a")
            .arg(i)
            .arg("b")
            .arg(format!("text {i}"))
            .ignore();
    }
    for i in 0..300 {
        p.cmd("SADD")
            .arg(format!("t:{i}"))
            .arg("red")
            .arg(format!("tag-{i}"))
            .arg(i)
            .ignore();
    }
    for j in 0..40u64 {
        let len = 64 * 1024 - 60 + 3 * j as usize;
        p.cmd("SET")
            .arg(format!("edge:{j}"))
            .arg(noise(len, 7 + j))
            .ignore();
    }
    for j in 0..3u64 {
        p.cmd("SET")
            .arg(format!("big:{j}"))
            .arg(noise(300_000, 99 + j))
            .ignore();
    }
    p.query::<()>(&mut c).unwrap();
    for chunk in 0..25 {
        let mut sadd = redis::cmd("SADD");
        sadd.arg("bigset");
        for i in chunk * 1000..(chunk + 1) * 1000 {
            sadd.arg(format!("member-{i}"));
        }
        sadd.query::<()>(&mut c).unwrap();
    }
    // db3: 1500 small strings, another database in the same stream.
    redis::cmd("SELECT").arg(3).query::<()>(&mut c).unwrap();
    let mut p = redis::pipe();
    for i in 0..1500 {
        p.cmd("SET").arg(format!("k{i}")).arg(i * 3).ignore();
    }
    p.query::<()>(&mut c).unwrap();
    settle(&mut c, 0);
    settle(&mut c, 3);

    let db0 = scan_like_the_dump(&mut c, 0);
    let db3 = scan_like_the_dump(&mut c, 3);
    assert_eq!(db0.len(), 6000 + 500 + 300 + 40 + 3 + 1);
    assert_eq!(db3.len(), 1500);
    let sizes: Vec<usize> = db0.iter().map(|(_, _, p)| p.len()).collect();
    // 40 payloads of 65,492 + 3j bytes: 15 taken whole (up to 65,534), 25 streamed.
    assert!(
        sizes.contains(&65_534) && sizes.contains(&65_537),
        "{sizes:?}"
    );
    assert_eq!(
        sizes
            .iter()
            .filter(|&&n| n > 60_000 && n <= 64 * 1024)
            .count(),
        15
    );
    let mut want = restore_stream(0, &db0);
    want.extend(restore_stream(3, &db3));

    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();
    let summary = dumped.ok().clone();
    let got = commands(&dumped.bytes);
    assert_eq!(got.len(), 2 + db0.len() + db3.len(), "one command per key");
    assert!(
        dumped.bytes == want,
        "the stream differs from the keys in SCAN order ({} vs {} bytes)",
        dumped.bytes.len(),
        want.len()
    );
    let rows: Vec<(&str, u64)> = summary
        .tables
        .iter()
        .map(|t| (t.name.as_str(), t.rows))
        .collect();
    assert_eq!(rows, [("db0", db0.len() as u64), ("db3", 1500)]);

    let target = Server::start();
    target.restore(&dumped.bytes);
    assert_eq!(
        fingerprint_database(&target.url()).await.unwrap(),
        summary.tables
    );
    assert_eq!(
        fingerprint_database(&src.url()).await.unwrap(),
        summary.tables
    );
}

/// The value digest of the crate docs, computed from the data as the `redis` crate reads it:
/// `xxh3_128` of the payload without its trailer, or for hash-table sets (RDB type 2) and
/// hashes (type 4) the order-independent sum over members / `len ‖ field ‖ value`.
fn documented_digest(c: &mut redis::Connection, key: &str) -> u128 {
    let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(c).unwrap();
    let unordered = |rdb_type: u8, count: usize, sum: u128| {
        let mut buf = vec![rdb_type];
        buf.extend_from_slice(&(count as u64).to_be_bytes());
        buf.extend_from_slice(&sum.to_be_bytes());
        xxh3_128(&buf)
    };
    match payload[0] {
        2 => {
            let members: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(key).query(c).unwrap();
            let sum = members
                .iter()
                .fold(0u128, |s, m| s.wrapping_add(xxh3_128(m)));
            unordered(2, members.len(), sum)
        }
        4 => {
            let fields: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL").arg(key).query(c).unwrap();
            let sum = fields.iter().fold(0u128, |s, (f, v)| {
                let mut e = (f.len() as u64).to_be_bytes().to_vec();
                e.extend_from_slice(f);
                e.extend_from_slice(v);
                s.wrapping_add(xxh3_128(&e))
            });
            unordered(4, fields.len(), sum)
        }
        _ => xxh3_128(&payload[..payload.len() - 10]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprints_follow_the_documented_digest_whole_and_streamed() {
    // Hashes in hash tables from their first field, so the small ones take the
    // whole-payload path and the big ones the streamed one, both order-independent.
    let src = Server::start_with(&["--hash-max-listpack-entries", "0"], None);
    let mut c = src.client();
    let long = "y".repeat(200);
    redis::cmd("SADD")
        .arg("set:small")
        .arg(&[
            "alpha",
            "12",
            "-7",
            "-300",
            "40000",
            "-2147483648",
            long.as_str(),
            "beta",
        ])
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("HSET")
        .arg("hash:small")
        .arg(&[
            "f1",
            "v",
            "12",
            "34",
            "long",
            long.as_str(),
            "neg",
            "-99",
            long.as_str(),
            "1",
        ])
        .query::<()>(&mut c)
        .unwrap();
    let mut sadd = redis::cmd("SADD");
    sadd.arg("set:big");
    let mut hset = redis::cmd("HSET");
    hset.arg("hash:big");
    for i in 0..20_000 {
        sadd.arg(format!("m{i}-padding"));
        hset.arg(format!("field-{i}")).arg(if i % 3 == 0 {
            i.to_string()
        } else {
            format!("value {i} {long}")
        });
    }
    sadd.query::<()>(&mut c).unwrap();
    hset.query::<()>(&mut c).unwrap();
    redis::cmd("SET")
        .arg("str")
        .arg("hello")
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("SET")
        .arg("str:big")
        .arg(noise(100_000, 5))
        .query::<()>(&mut c)
        .unwrap();
    let keys = [
        "set:small",
        "hash:small",
        "set:big",
        "hash:big",
        "str",
        "str:big",
    ];
    let mut want = Fingerprint::EMPTY;
    let mut types = Vec::new();
    for key in keys {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut c).unwrap();
        types.push((payload[0], payload.len() > 64 * 1024));
        let mut row = (key.len() as u64).to_be_bytes().to_vec();
        row.extend_from_slice(key.as_bytes());
        row.extend_from_slice(&documented_digest(&mut c, key).to_be_bytes());
        want.add_row(&row);
    }
    // Both encodings whose digest is order-independent, each whole and streamed.
    for probe in [(2, false), (4, false), (2, true), (4, true)] {
        assert!(types.contains(&probe), "{probe:?} not in {types:?}");
    }

    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();
    let summary = dumped.ok();
    assert_eq!(summary.tables.len(), 1);
    assert_eq!(summary.tables[0].rows, keys.len() as u64);
    assert_eq!(summary.tables[0].fingerprint, want);
    let target = Server::start_with(&["--hash-max-listpack-entries", "0"], None);
    target.restore(&dumped.bytes);
    assert_eq!(
        fingerprint_database(&target.url()).await.unwrap(),
        summary.tables
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_values_are_batched_unsized_and_large_ones_sized() {
    let src = Server::start();
    let mut c = src.client();
    let mut p = redis::pipe();
    for i in 0..5000 {
        p.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
    }
    p.query::<()>(&mut c).unwrap();
    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();
    assert_eq!(dumped.ok().tables[0].rows, 5000);
    let (memory, exec) = memory_and_exec_calls(&src);
    assert_eq!(memory, 0, "no payload was large: nothing sized");
    // 16, 32, 64, then 128 keys a batch (a SCAN page ends a batch early): about 45.
    assert!((40..=80).contains(&exec), "{exec} batches for 5000 keys");

    for j in 0..5u64 {
        redis::cmd("SET")
            .arg(format!("large:{j}"))
            .arg(noise(200_000, j + 1))
            .query::<()>(&mut c)
            .unwrap();
    }
    let dumped = dump(&RedisSource::new(src.url())).await.unwrap();
    let summary = dumped.ok().clone();
    assert_eq!(summary.tables[0].rows, 5005);
    let (memory_after, _) = memory_and_exec_calls(&src);
    assert!(
        memory_after > 0 && memory_after <= 5005,
        "after the first large payload the rest is sized: {memory_after} MEMORY USAGE calls"
    );
    let target = Server::start();
    target.restore(&dumped.bytes);
    assert_eq!(
        fingerprint_database(&target.url()).await.unwrap(),
        summary.tables
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_memory_usage_still_dumps_large_values() {
    let src = Server::start();
    src.cli(&[
        "ACL",
        "SETUSER",
        "dumper",
        "on",
        ">dump-pw-5678",
        "~*",
        "+@all",
        "-memory",
    ]);
    let mut c = src.client();
    let mut p = redis::pipe();
    for i in 0..3000 {
        p.cmd("SET")
            .arg(format!("k{i}"))
            .arg(format!("v{i}"))
            .ignore();
    }
    for j in 0..20u64 {
        p.cmd("SET")
            .arg(format!("large:{j}"))
            .arg(noise(100_000, j + 3))
            .ignore();
    }
    p.query::<()>(&mut c).unwrap();
    let dumped = dump(&RedisSource::new(src.url_with("dumper:dump-pw-5678", "")))
        .await
        .unwrap();
    let summary = dumped.ok().clone();
    assert_eq!(summary.tables[0].rows, 3020);
    let stats = src.cli(&["INFO", "commandstats"]);
    let memory = stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_memory|usage:"))
        .unwrap_or_else(|| panic!("MEMORY USAGE was tried: {stats}"));
    assert!(
        memory.starts_with("calls=0,") && !memory.contains("rejected_calls=0,"),
        "and refused: {memory}"
    );
    let target = Server::start();
    target.restore(&dumped.bytes);
    assert_eq!(
        fingerprint_database(&target.url()).await.unwrap(),
        summary.tables
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_deleted_while_the_dump_runs_are_skipped_and_counted() {
    let src = Server::start();
    let mut c = src.client();
    let value = vec![b'x'; 1024];
    for start in (0..20_000).step_by(1000) {
        let mut p = redis::pipe();
        for i in start..start + 1000 {
            p.cmd("SET").arg(format!("key:{i}")).arg(&value).ignore();
        }
        p.query::<()>(&mut c).unwrap();
    }
    let d = RedisSource::new(src.url())
        .dump(DumpOptions::default())
        .await
        .unwrap();
    let mut body = d.body;
    let mut bytes = body.next().await.unwrap().unwrap().to_vec();
    // Not reading: the body channel fills and the dump waits, a few pages into 20.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut p = redis::pipe();
    for i in (0..20_000).step_by(2) {
        p.cmd("DEL").arg(format!("key:{i}")).ignore();
    }
    p.query::<()>(&mut c).unwrap();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.unwrap());
    }
    let summary = d.completion.await.unwrap();

    let mut odd = 0;
    let mut even = 0;
    let mut seen = std::collections::HashSet::new();
    for cmd in &commands(&bytes)[1..] {
        assert_eq!(cmd[0], b"RESTORE");
        let n: u32 = std::str::from_utf8(&cmd[1][4..]).unwrap().parse().unwrap();
        assert!(seen.insert(n), "key:{n} twice");
        if n.is_multiple_of(2) {
            even += 1;
        } else {
            odd += 1;
        }
    }
    assert_eq!(odd, 10_000, "every key that stayed is in the archive");
    assert!(even < 10_000, "{even} deleted keys dumped");
    assert_eq!(summary.tables[0].rows, odd + even);
    let warning = summary
        .warnings
        .iter()
        .find(|w| w.contains("expired or were deleted between SCAN and DUMP"))
        .expect("the vanished keys are reported");
    let vanished: u64 = warning
        .strip_prefix("db0: ")
        .and_then(|w| w.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{warning}"));
    assert!(
        vanished > 0 && odd + even + vanished <= 20_000,
        "{vanished} vanished, {even} even keys dumped"
    );
    let target = Server::start();
    target.restore(&bytes);
    assert_eq!(
        fingerprint_database(&target.url()).await.unwrap(),
        summary.tables
    );
}
