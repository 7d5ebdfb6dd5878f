//! Parallel COPY in one exported snapshot: the same rows and fingerprints as a sequential
//! dump, restorable with stock psql, with big tables split into page ranges.

mod common;

use std::sync::Arc;

use common::{TestDb, dump, fixture, round_trip_with};
use exporter_conformance::Recorder;
use exporter_contract::DumpOptions;

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
