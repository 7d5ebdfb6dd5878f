//! Fidelity cases of shared/fidelity/postgres.md: set up the case, dump through the adapter,
//! restore with stock psql, and compare the case's check queries on both sides.

mod common;

use common::{TestDb, assert_pg_dump_equal, check_output, fixture, round_trip};
use exporter_contract::DumpSummary;

async fn case(id: &str) -> (TestDb, TestDb, DumpSummary) {
    let source = TestDb::new(&id.to_lowercase());
    source.run_file(&fixture(&format!("fidelity/{id}.sql")));
    let (target, _script, summary) = round_trip(&source).await;
    let check = fixture(&format!("fidelity/{id}.check.sql"));
    let expected = check_output(&source.name, &check);
    let actual = check_output(&target.name, &check);
    assert_eq!(actual, expected, "{id}: check output differs after restore");
    // The reference tool must see no difference either: schema, data, owners, privileges.
    assert_pg_dump_equal(&source.name, &target.name);
    (source, target, summary)
}

fn rows(summary: &DumpSummary, table: &str) -> u64 {
    summary
        .tables
        .iter()
        .find(|t| t.name == table)
        .unwrap_or_else(|| panic!("{table} in summary"))
        .rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p01_generated_and_identity() {
    let (_s, target, summary) = case("P01").await;
    assert_eq!(rows(&summary, "public.gen_demo"), 3);
    assert_eq!(rows(&summary, "public.gen_child"), 1);
    assert_eq!(rows(&summary, "public.gen_parent"), 0);
    // Generated values are recomputed on the target, identity kind kept.
    assert_eq!(
        target.sql("SELECT total, label_lc FROM gen_demo WHERE id = 1"),
        "6.00|abc\n"
    );
    assert_eq!(target.sql("SELECT b FROM gen_child"), "70\n");
    assert_eq!(
        target.sql("INSERT INTO gen_demo (price, qty) VALUES (1, 1) RETURNING id"),
        "4\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p03_sequence_positions() {
    let (_s, target, _) = case("P03").await;
    assert_eq!(target.sql("SELECT nextval('reset_seq')"), "42\n");
    assert_eq!(target.sql("SELECT nextval('fresh_seq')"), "1\n");
    assert_eq!(
        target.sql("INSERT INTO seq_demo (v) VALUES ('next') RETURNING id"),
        "150\n"
    );
    assert_eq!(target.sql("SELECT nextval('cyc_seq')"), "2\n");
    assert_eq!(target.sql("SELECT nextval('desc_seq')"), "-4\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p04_quoted_identifiers() {
    let (_s, target, summary) = case("P04").await;
    let names: Vec<&str> = summary.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "\"Sales Dept\".\"Order Items\"",
            "public.\"Order Items\"",
            "public.order_items"
        ]
    );
    assert_eq!(
        target.sql("SELECT count(*) FROM public.\"Order Items\""),
        "2\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p05_bytea_edges() {
    let (_s, target, summary) = case("P05").await;
    assert_eq!(rows(&summary, "public.blobs"), 7);
    assert_eq!(
        target.sql("SELECT octet_length(b) FROM blobs WHERE id = 7"),
        "32000000\n"
    );
    assert_eq!(
        target.sql("SELECT b IS NULL, octet_length(b) FROM blobs WHERE id IN (2, 3) ORDER BY id"),
        "f|0\nt|\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p10_text_escaping() {
    let (_s, target, summary) = case("P10").await;
    assert_eq!(rows(&summary, "public.texts"), 12);
    assert_eq!(
        target.sql("SELECT count(*) FILTER (WHERE t IS NULL), count(*) FILTER (WHERE t = ''), count(*) FILTER (WHERE t = '\\N') FROM texts"),
        "1|1|1\n"
    );
    assert_eq!(
        target.sql("SELECT array_lower(arr, 1) FROM texts WHERE id = 12"),
        "0\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p12_arrays_composites_forward_fks() {
    let (_s, target, _) = case("P12").await;
    assert_eq!(
        target.sql("SELECT conname, contype FROM pg_constraint WHERE conrelid IN ('a_child'::regclass, 'z_parent'::regclass) ORDER BY 1"),
        "a_child_parent_id_fkey|f\na_child_pkey|p\nz_parent_name_key|u\nz_parent_pkey|p\n"
    );
    // Domain checks survive: a value the domain forbids is refused on the target.
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-q",
            "-h",
            common::HOST,
            "-U",
            common::SUPERUSER,
            "-d",
            &target.name,
            "-c",
            "SELECT (-1)::positive_int",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("positive_int_check"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x01_edge_values_and_objects() {
    let (_s, target, summary) = case("X01").await;
    assert_eq!(rows(&summary, "public.floats"), 7);
    assert_eq!(rows(&summary, "public.nocols"), 2);
    assert_eq!(rows(&summary, "public.notvalid"), 1);
    // The violating row came back and the constraint is still NOT VALID.
    assert_eq!(
        target.sql("SELECT convalidated FROM pg_constraint WHERE conname = 'pos'"),
        "f\n"
    );
    // Enum order follows enumsortorder, not creation order.
    assert_eq!(
        target.sql(
            "SELECT string_agg(v::text, ',' ORDER BY v) FROM unnest(enum_range(NULL::mood)) v"
        ),
        "blue,meh,happy,ok\n"
    );
    assert_eq!(
        target.sql("SELECT d::text, n::text FROM floats WHERE id = 3"),
        "-0|0\n"
    );
    assert_eq!(target.sql("SELECT note FROM trig"), "original\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x02_settings_statistics_default_privileges() {
    let (_s, target, _summary) = case("X02").await;
    assert_eq!(
        target.sql(
            "SELECT attstattarget, attstorage, attcompression FROM pg_attribute \
             WHERE attrelid = '\"Odd Schema\".\"T\"'::regclass AND attname = 'secret'"
        ),
        "500|e|p\n"
    );
    assert_eq!(
        target.sql("SELECT stxstattarget FROM pg_statistic_ext WHERE stxname = 'cstr_st'"),
        "300\n"
    );
    assert_eq!(target.sql("SELECT count(*) FROM pg_default_acl"), "3\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x03_partitions_keep_their_own_column_order() {
    let (_s, target, summary) = case("X03").await;
    assert_eq!(rows(&summary, "public.child"), 1);
    // `SELECT *` of the partition shows its own order, not the parent's.
    assert_eq!(target.sql("SELECT * FROM child"), "x|1|2\n");
    assert_eq!(target.sql("SELECT * FROM d2"), "y|3|6\n");
}
