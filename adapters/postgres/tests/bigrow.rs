//! Rows larger than any buffer: the raw COPY reader streams a `CopyData` message in pieces
//! (issue 7: one 200 MB value cost ~270 MB RSS when tokio-postgres buffered whole messages),
//! a row bigger than a block streams inside ONE `COPY … FROM stdin;` block, parallel workers
//! never interleave inside it, and a connection lost mid-row fails the dump.

#![allow(
    clippy::disallowed_methods,
    reason = "tests may panic on an unexpected row (tokio_postgres::Row::get, clippy.toml)"
)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{TestDb, round_trip_with};
use exporter_contract::{DumpOptions, ErrorKind, Source};
use exporter_postgres::PostgresSource;
use futures::StreamExt;
use tokio_postgres::NoTls;

/// Output chunks must stay near the producer's chunk size whatever the row size: a bound far
/// below any big row proves that no layer held a whole row (the parallel path sends block
/// parts of at most 256 KiB + 64 KiB plus the header).
const MAX_CHUNK: usize = 400 << 10;

/// Every `COPY … FROM stdin;` block of a script: (header line, data lines). Panics if a block
/// is not closed by `\.` or another header appears inside one.
fn copy_blocks(script: &[u8]) -> Vec<(String, Vec<&[u8]>)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, Vec<&[u8]>)> = None;
    for line in script.split(|&b| b == b'\n') {
        match current.as_mut() {
            None => {
                if line.starts_with(b"COPY ") && line.ends_with(b" FROM stdin;") {
                    current = Some((String::from_utf8(line.to_vec()).unwrap(), Vec::new()));
                }
            }
            Some((_, lines)) => {
                if line == b"\\." {
                    blocks.push(current.take().unwrap());
                } else {
                    assert!(
                        !(line.starts_with(b"COPY ") && line.ends_with(b" FROM stdin;")),
                        "a COPY header inside another COPY block"
                    );
                    lines.push(line);
                }
            }
        }
    }
    assert!(current.is_none(), "the last COPY block is not closed");
    blocks
}

/// Check that every data line of every block has the field count of its table (so no other
/// table's rows landed inside a block), and return rows per table header.
fn rows_per_table(script: &[u8], fields: &HashMap<&str, usize>) -> HashMap<String, usize> {
    let mut rows = HashMap::new();
    for (header, lines) in copy_blocks(script) {
        let table = header.split(' ').nth(1).unwrap().to_owned();
        let want = fields[table.as_str()];
        for line in &lines {
            let got = memchr::memchr_iter(b'\t', line).count() + 1;
            assert_eq!(
                got,
                want,
                "a line with {got} fields inside a block of {table} ({} bytes)",
                line.len()
            );
        }
        *rows.entry(table).or_insert(0) += lines.len();
    }
    rows
}

/// Dump with `jobs`, keeping the largest body chunk; restore with psql; fingerprints of
/// source, summary and target must be equal (see `common::round_trip_with`).
async fn dump_and_restore(source: &TestDb, jobs: usize) -> (TestDb, Vec<u8>) {
    let (mut body_max, mut body_len) = (0usize, 0usize);
    let mut d = PostgresSource::new(source.url())
        .dump(DumpOptions::default().with_jobs(jobs))
        .await
        .expect("dump starts");
    while let Some(chunk) = d.body.next().await {
        let chunk = chunk.expect("body chunk");
        body_max = body_max.max(chunk.len());
        body_len += chunk.len();
    }
    d.completion.await.expect("dump completes");
    assert!(
        body_max <= MAX_CHUNK,
        "jobs={jobs}: a body chunk of {body_max} bytes (of {body_len})"
    );
    let (target, script, _) = round_trip_with(source, DumpOptions::default().with_jobs(jobs)).await;
    if jobs == 1 {
        // Parallel dumps cut blocks where socket reads happen to end, so only a sequential
        // dump is byte-for-byte repeatable.
        assert_eq!(
            script.len(),
            body_len,
            "two sequential dumps of the same data have the same length"
        );
    }
    (target, script)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_value_dumps_in_one_block_and_restores_with_psql() {
    let source = TestDb::new("big200");
    // 6_250_000 × 32 hex digits = 200 MB of COPY text in one row, made on the server.
    source.sql(
        "CREATE TABLE huge (id int PRIMARY KEY, v text);
         INSERT INTO huge SELECT 1, repeat(md5('exporter'), 6250000);
         INSERT INTO huge VALUES (2, 'small after'), (0, '');
         CREATE TABLE small_a (id int, note text);
         INSERT INTO small_a SELECT g, 'note ' || g FROM generate_series(1, 5000) g;
         CREATE TABLE small_b (k text PRIMARY KEY);
         INSERT INTO small_b SELECT md5(g::text) FROM generate_series(1, 2000) g;",
    );
    let fields = HashMap::from([
        ("public.huge", 2usize),
        ("public.small_a", 2),
        ("public.small_b", 1),
    ]);
    for jobs in [1, 2] {
        let (target, script) = dump_and_restore(&source, jobs).await;
        let rows = rows_per_table(&script, &fields);
        assert_eq!(rows["public.huge"], 3, "jobs={jobs}");
        assert_eq!(rows["public.small_a"], 5000, "jobs={jobs}");
        assert_eq!(rows["public.small_b"], 2000, "jobs={jobs}");
        // The 200 MB line is whole inside its block.
        let longest = copy_blocks(&script)
            .into_iter()
            .flat_map(|(_, lines)| lines.into_iter().map(<[u8]>::len))
            .max()
            .unwrap();
        assert_eq!(longest, 2 + 200_000_000, "jobs={jobs}");
        assert_eq!(
            target
                .sql("SELECT length(v), md5(v) FROM huge WHERE id = 1")
                .trim(),
            source
                .sql("SELECT length(v), md5(v) FROM huge WHERE id = 1")
                .trim(),
            "jobs={jobs}"
        );
    }
}

/// Rows whose lengths sweep across the 64 KiB read piece and the 256 KiB block, so that block
/// boundaries fall before, inside and exactly after rows: empty rows, rows of PIECE ± 1,
/// BLOCK ± 1, 2 × BLOCK, rows bigger than a block first, last and back to back, and runs of
/// small rows between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_straddling_every_block_boundary_case() {
    const PIECE: i64 = 64 << 10;
    const BLOCK: i64 = 256 << 10;
    let source = TestDb::new("straddle");
    // COPY text of a row is `id \t v`: the value length is chosen so whole lines (with the
    // id and tab, without the newline) have the listed sizes for ids of 1 to 4 digits.
    let mut lengths: Vec<i64> = vec![2 * BLOCK + 3, 0, 1];
    for base in [PIECE, BLOCK, 2 * BLOCK, 3 * BLOCK] {
        for delta in -3..=3 {
            lengths.push(base + delta);
        }
    }
    lengths.extend([5 * BLOCK, 4 * BLOCK + 1]);
    // Small rows whose cumulative size crosses block boundaries at many offsets.
    for i in 0..3000 {
        lengths.push(i * 37 % 521);
    }
    lengths.extend([BLOCK - 1, BLOCK + 1, 3 * BLOCK + 17]);
    let values = lengths
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    source.sql(&format!(
        "CREATE TABLE straddle (id int, v text);
         INSERT INTO straddle
              SELECT n, repeat(chr((97 + n % 26)::int), greatest(l - length(n::text) - 1, 0)::int)
                FROM unnest(ARRAY[{values}]::bigint[]) WITH ORDINALITY AS u(l, n);
         CREATE TABLE other (a int, b text, c int);
         INSERT INTO other SELECT g, repeat('o', g % 700), -g FROM generate_series(1, 20000) g;"
    ));
    let fields = HashMap::from([("public.straddle", 2usize), ("public.other", 3)]);
    for jobs in [1, 2] {
        let (target, script) = dump_and_restore(&source, jobs).await;
        let rows = rows_per_table(&script, &fields);
        assert_eq!(rows["public.straddle"], lengths.len(), "jobs={jobs}");
        assert_eq!(rows["public.other"], 20000, "jobs={jobs}");
        let check =
            "SELECT count(*), sum(length(v)), md5(string_agg(v, ',' ORDER BY id)) FROM straddle";
        assert_eq!(
            target.sql(check).trim(),
            source.sql(check).trim(),
            "jobs={jobs}"
        );
        if jobs == 2 {
            let blocks = copy_blocks(&script)
                .into_iter()
                .filter(|(h, _)| h.starts_with("COPY public.straddle "))
                .count();
            assert!(
                blocks >= 4,
                "jobs=2 writes the table in several blocks, got {blocks}"
            );
        }
    }
}

/// Two workers: one streams a row far bigger than a block (in parts, holding the channel),
/// the other produces many small blocks at the same time. The script must be valid
/// (psql restores it; every line inside a block has its table's field count) and the
/// fingerprints must match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_big_row_and_many_small_rows_do_not_interleave() {
    let source = TestDb::new("parbig");
    source.sql(
        "CREATE TABLE big_one (id int, payload text, tail int);
         INSERT INTO big_one VALUES (1, repeat(md5('big'), 1000000), 7);
         INSERT INTO big_one SELECT g, 'x', g FROM generate_series(2, 100) g;
         CREATE TABLE many_a (id int, v text);
         INSERT INTO many_a SELECT g, repeat('a', g % 300) FROM generate_series(1, 60000) g;
         CREATE TABLE many_b (id bigint, v text, w text, z int);
         INSERT INTO many_b SELECT g, md5(g::text), 'w', g % 3 FROM generate_series(1, 60000) g;",
    );
    let fields = HashMap::from([
        ("public.big_one", 3usize),
        ("public.many_a", 2),
        ("public.many_b", 4),
    ]);
    let (target, script) = dump_and_restore(&source, 2).await;
    let rows = rows_per_table(&script, &fields);
    assert_eq!(rows["public.big_one"], 100);
    assert_eq!(rows["public.many_a"], 60000);
    assert_eq!(rows["public.many_b"], 60000);
    let blocks = copy_blocks(&script).len();
    assert!(blocks > 10, "small tables in many blocks, got {blocks}");
    assert_eq!(
        target
            .sql("SELECT length(payload), md5(payload), tail FROM big_one WHERE id = 1")
            .trim(),
        "32000000|".to_owned()
            + source
                .sql("SELECT md5(payload) FROM big_one WHERE id = 1")
                .trim()
            + "|7"
    );
}

async fn admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(
        &format!("host={} user=postgres dbname=postgres", common::HOST),
        NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    client
}

/// `pg_terminate_backend` of the raw COPY connection while it streams a 100 MB row (so the
/// connection ends in the middle of a `CopyData` message): the dump fails, naming the table;
/// its body ends with the error; nothing looks complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminating_the_copy_connection_mid_row_fails_the_dump() {
    let source = TestDb::new("killraw");
    source.sql(
        "CREATE TABLE huge (id int, v text);
         INSERT INTO huge SELECT 1, repeat(md5('kill'), 3125000);",
    );
    let watcher = admin().await;
    for jobs in [1, 2] {
        let mut d = PostgresSource::new(source.url())
            .dump(DumpOptions::default().with_jobs(jobs))
            .await
            .unwrap();
        // Read until the big row is flowing, then stop reading: the raw connection waits on
        // the full body channel while the server waits on the socket, in the middle of the
        // row's CopyData message.
        let mut seen = 0usize;
        while seen < 4 << 20 {
            seen += d
                .body
                .next()
                .await
                .expect("a chunk")
                .expect("ok chunk")
                .len();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let pid: i32 = loop {
            let rows = watcher
                .query(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'exporter'
                        AND datname = $1 AND query LIKE 'COPY %' AND state = 'active'",
                    &[&source.name],
                )
                .await
                .unwrap();
            if let Some(row) = rows.first() {
                break row.get(0);
            }
            assert!(Instant::now() < deadline, "no active COPY backend");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        watcher
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .unwrap();
        let mut body_error = None;
        while let Some(item) = d.body.next().await {
            match item {
                Ok(chunk) => seen += chunk.len(),
                Err(e) => body_error = Some(e),
            }
        }
        let err = d
            .completion
            .await
            .expect_err("a dump whose COPY connection died must fail");
        assert_eq!(err.kind(), ErrorKind::Protocol, "jobs={jobs}: {err:?}");
        assert!(err.is_retryable(), "jobs={jobs}: {err:?}");
        assert_eq!(
            err.object(),
            Some("table public.huge"),
            "jobs={jobs}: {err}"
        );
        assert!(
            err.to_string().contains("57P01") || err.to_string().contains("closed"),
            "jobs={jobs}: {err}"
        );
        assert_eq!(
            body_error.expect("the body ends with the error").kind(),
            ErrorKind::Protocol
        );
        assert!(
            seen < 100_000_000,
            "jobs={jobs}: the body carried {seen} bytes, as if the row had been whole"
        );
    }
}

/// A `TRUNCATE` that waits behind the snapshot's `ACCESS SHARE` lock must not deadlock the
/// dump: a COPY connection's own lock request would queue behind the `TRUNCATE` (which waits
/// for the dump), so the COPY connection takes locks with `NOWAIT` and leaves such a table to
/// the snapshot's connection, which already holds the lock. (Found by the concurrency test:
/// without `NOWAIT` the dump hung.) The dump succeeds with the snapshot's rows; the
/// `TRUNCATE` completes after it. The dump's observer hears of that table too (issue 16).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_truncate_does_not_deadlock_the_copy_connections() {
    let source = TestDb::new("queued");
    source.sql(
        "CREATE TABLE a1 (id int, pad text); CREATE TABLE a2 (id int, pad text);
         INSERT INTO a1 SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 300000) g;
         INSERT INTO a2 SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 300000) g;
         CREATE TABLE zz (id int PRIMARY KEY, v text);",
    );
    let watcher = admin().await;
    for jobs in [1, 2] {
        source.sql("INSERT INTO zz SELECT g, 'v' || g FROM generate_series(1, 1000) g");
        let recorder = std::sync::Arc::new(exporter_conformance::Recorder::default());
        let mut d = PostgresSource::new(source.url())
            .dump(
                DumpOptions::default()
                    .with_jobs(jobs)
                    .with_observer(recorder.clone()),
            )
            .await
            .unwrap();
        // The dump holds its locks and is busy with a1/a2 (the body is not read meanwhile).
        let mut script = d.body.next().await.unwrap().unwrap().to_vec();
        let (client, conn) = tokio_postgres::connect(
            &format!("host={} user=postgres dbname={}", common::HOST, source.name),
            NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let truncate = tokio::spawn(async move { client.batch_execute("TRUNCATE zz").await });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1
                        AND query = 'TRUNCATE zz' AND wait_event_type = 'Lock'",
                    &[&source.name],
                )
                .await
                .unwrap()
                .get(0);
            if waiting == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "the TRUNCATE never queued");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let body = async {
            while let Some(chunk) = d.body.next().await {
                script.extend_from_slice(&chunk.unwrap());
            }
            d.completion.await
        };
        let summary = tokio::time::timeout(Duration::from_secs(60), body)
            .await
            .unwrap_or_else(|_| panic!("jobs={jobs}: the dump hung behind the queued TRUNCATE"))
            .expect("the dump succeeds");
        let zz = summary
            .tables
            .iter()
            .find(|t| t.name == "public.zz")
            .unwrap();
        assert_eq!(zz.rows, 1000, "jobs={jobs}: the snapshot's rows");
        recorder.check(&summary);
        truncate
            .await
            .unwrap()
            .expect("the TRUNCATE runs once the dump is done");
        assert_eq!(source.sql("SELECT count(*) FROM zz").trim(), "0");
        let target = TestDb::new("queued_restore");
        common::restore(&script, &target.name);
        assert_eq!(
            target.sql("SELECT count(*), sum(id) FROM zz").trim(),
            "1000|500500",
            "jobs={jobs}"
        );
        assert_eq!(target.sql("SELECT count(*) FROM a1").trim(), "300000");
    }
}
