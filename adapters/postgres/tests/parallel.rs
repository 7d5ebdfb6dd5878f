//! Parallel COPY in one exported snapshot: the same rows and fingerprints as a sequential
//! dump, restorable with stock psql, with big tables split into page ranges; and the
//! fingerprint pass of `verify --level restore` on several connections, equal to one's.

mod common;

use std::sync::Arc;

use common::{TestDb, dump, fixture, round_trip, round_trip_with};
use exporter_conformance::Recorder;
use exporter_contract::{DumpOptions, Target};
use exporter_postgres::{FingerprintOptions, PostgresTarget, fingerprint_database_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_round_trip_with_three_jobs() {
    let source = TestDb::new("par_sample");
    source.run_file(&fixture("sample.sql"));
    // round_trip_with restores with psql (no errors allowed) and compares fingerprints of
    // source, summary and target.
    let recorder = Arc::new(Recorder::default());
    let (_target, _script, parallel) = round_trip_with(
        &source,
        DumpOptions::default()
            .with_jobs(3)
            .with_observer(recorder.clone()),
    )
    .await;
    // Every table and the large objects, each heard of once (issue 16).
    recorder.check(&parallel);
    assert!(
        recorder
            .started()
            .contains(&"pg_catalog.pg_largeobject".to_owned()),
        "{:?}",
        recorder.started()
    );
    let (_, sequential) = dump(source.url(), DumpOptions::default()).await.unwrap();
    assert_eq!(
        parallel.tables, sequential.tables,
        "parallel and sequential dumps summarise alike"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_table_is_split_into_ranges_and_restores_whole() {
    let source = TestDb::new("par_big");
    // About 90 MB on disk: more than one 64 MiB range.
    source.sql(
        "CREATE TABLE big (id int PRIMARY KEY, pad text, n numeric);
         INSERT INTO big SELECT g, repeat(md5(g::text), 4), g / 7.0 FROM generate_series(1, 450000) g;
         DELETE FROM big WHERE id % 1000 = 0;
         CREATE TABLE small (id int PRIMARY KEY REFERENCES big (id), v text);
         INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 999) g;
         CREATE TABLE empty_one (id int);",
    );
    let size: i64 = source
        .sql("SELECT pg_relation_size('big')")
        .trim()
        .parse()
        .unwrap();
    assert!(
        size > 64 << 20,
        "the test table must exceed one range ({size} bytes)"
    );
    let recorder = Arc::new(Recorder::default());
    let (target, script, summary) = round_trip_with(
        &source,
        DumpOptions::default()
            .with_jobs(2)
            .with_observer(recorder.clone()),
    )
    .await;
    // The table of several ranges started once and was done once, with all its rows, after
    // its last range (issue 16).
    recorder.check(&summary);
    let big = summary
        .tables
        .iter()
        .find(|t| t.name == "public.big")
        .unwrap();
    assert_eq!(big.rows, 450_000 - 450);
    let text = String::from_utf8_lossy(&script);
    let blocks = text
        .matches("COPY public.big (id, n, pad) FROM stdin;")
        .count();
    assert!(blocks >= 2, "big table written as {blocks} COPY block(s)");
    assert_eq!(
        text.matches("COPY public.empty_one (id) FROM stdin;")
            .count(),
        1,
        "empty tables keep their COPY"
    );
    assert_eq!(
        target.sql("SELECT count(*), sum(id) FROM big").trim(),
        source.sql("SELECT count(*), sum(id) FROM big").trim()
    );
    let (_, sequential) = dump(source.url(), DumpOptions::default()).await.unwrap();
    assert_eq!(summary.tables, sequential.tables);
}

/// The fingerprint pass of `verify --level restore` on several connections (issue 17): on a
/// restored database with a table split into page ranges, a partition tree loaded through its
/// root (hash on an enum), large objects and the sample's awkward tables, the summaries on
/// four connections — through `Target::fingerprint_with` as `verify` calls it, and with every
/// page its own range — equal those on one connection and the dump's, in the same order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprint_on_four_connections_equals_one_and_the_dump() {
    let source = TestDb::new("par_fp");
    source.run_file(&fixture("sample.sql"));
    source.sql(
        "CREATE TABLE app.wide (id int PRIMARY KEY, pad text);
         INSERT INTO app.wide SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
         DELETE FROM app.wide WHERE id % 97 = 0;
         CREATE TYPE app.feeling AS ENUM ('sad', 'ok', 'happy');
         CREATE TABLE app.moods (id int, m app.feeling) PARTITION BY HASH (m);
         CREATE TABLE app.moods_0 PARTITION OF app.moods FOR VALUES WITH (MODULUS 2, REMAINDER 0);
         CREATE TABLE app.moods_1 PARTITION OF app.moods FOR VALUES WITH (MODULUS 2, REMAINDER 1);
         INSERT INTO app.moods SELECT g, (ARRAY['sad', 'ok', 'happy'])[g % 3 + 1]::app.feeling
           FROM generate_series(1, 300) g;",
    );
    let pages: u64 = source
        .sql("SELECT pg_relation_size('app.wide') / current_setting('block_size')::int")
        .trim()
        .parse()
        .unwrap();
    assert!(
        pages > 8,
        "app.wide must span several 32 KiB ranges ({pages} pages)"
    );
    let (target, _script, dumped) = round_trip(&source).await;
    let names: Vec<&str> = dumped.tables.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"app.moods"), "{names:?}");
    assert!(names.contains(&"pg_catalog.pg_largeobject"), "{names:?}");
    let wide = dumped.tables.iter().find(|t| t.name == "app.wide").unwrap();
    assert_eq!(wide.rows, 20_000 - 206);

    let one = fingerprint_database_with(target.url(), FingerprintOptions::default())
        .await
        .unwrap();
    assert_eq!(one, dumped.tables, "one connection: the dump's summaries");
    let ranges = FingerprintOptions::default()
        .with_jobs(4)
        .with_range_bytes(32 << 10);
    let four = fingerprint_database_with(target.url(), ranges)
        .await
        .unwrap();
    assert_eq!(four, one, "four connections, 32 KiB ranges");
    let every_page = ranges.with_range_bytes(1);
    let four = fingerprint_database_with(target.url(), every_page)
        .await
        .unwrap();
    assert_eq!(four, one, "four connections, every page its own range");
    let through_target = PostgresTarget::new(target.url())
        .fingerprint_with(4)
        .await
        .unwrap();
    assert_eq!(through_target, one, "Target::fingerprint_with(4)");
    // The same values must differ when a row does: the check can fail.
    target.sql("UPDATE app.wide SET pad = 'changed' WHERE id = 5000");
    let changed = fingerprint_database_with(target.url(), ranges)
        .await
        .unwrap();
    let at = |s: &[exporter_contract::TableSummary]| {
        s.iter().find(|t| t.name == "app.wide").unwrap().fingerprint
    };
    assert_ne!(at(&changed), at(&one));
    assert_eq!(changed.len(), one.len());
}

/// Page ranges are read with a `SELECT` the planner prepares with the table's index
/// expressions; a function there that finds another through the search path (issue 15, X06)
/// is planned under the owner's path in the fingerprint pass too, as in the parallel dump.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprint_ranges_of_a_table_with_path_dependent_index_expressions() {
    let source = TestDb::new("par_fpx06");
    source.run_file(&fixture("fidelity/X06.sql"));
    let (target, _script, dumped) = round_trip(&source).await;
    let every_page = FingerprintOptions::default()
        .with_jobs(3)
        .with_range_bytes(1);
    for db in [&source, &target] {
        let found = fingerprint_database_with(db.url(), every_page)
            .await
            .unwrap();
        assert_eq!(found, dumped.tables, "{}", db.name);
    }
    let orders = dumped
        .tables
        .iter()
        .find(|t| t.name == "app.orders")
        .unwrap();
    assert_eq!(orders.rows, 3);
}
