//! Fidelity cases of shared/fidelity/postgres.md: set up the case, dump through the adapter,
//! restore with stock psql, and compare the case's check queries on both sides.

mod common;

use common::{TestDb, assert_pg_dump_equal, check_output, fixture, round_trip, round_trip_with};
use exporter_contract::{DumpOptions, DumpSummary};

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

/// Issue 15, kind 3: the restore legitimately puts inherited columns in another order; the
/// fingerprints are defined by column name, so they still compare equal (sequential and
/// parallel dumps), and a changed value in a column that moved changes exactly that table's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x04_inherited_columns_moved_by_the_restore() {
    let source = TestDb::new("x04");
    source.run_file(&fixture("fidelity/X04.sql"));
    let order = |db: &TestDb, table: &str| {
        db.sql(&format!(
            "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute \
             WHERE attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped"
        ))
    };
    for jobs in [1, 2] {
        // round_trip asserts: the dump's fingerprints equal the source's and the restore's.
        let (target, script, summary) =
            round_trip_with(&source, DumpOptions::default().with_jobs(jobs)).await;
        let check = fixture("fidelity/X04.check.sql");
        assert_eq!(
            check_output(&target.name, &check),
            check_output(&source.name, &check)
        );
        // The columns did move, and the script copies them by name.
        assert_eq!(order(&source, "child"), "id,note,extra,added,late\n");
        assert_eq!(order(&target, "child"), "id,note,added,extra,late\n");
        assert_eq!(
            order(&target, "grandchild"),
            "id,note,added,extra,late,deep\n"
        );
        let text = String::from_utf8_lossy(&script);
        assert!(
            text.contains("COPY public.child (added, extra, id, late, note) FROM stdin;\n"),
            "jobs={jobs}"
        );
        assert_eq!(rows(&summary, "public.child"), 2);
        // One value changed in a column that moved: that table's fingerprint differs, the
        // others do not.
        target.sql("UPDATE ONLY child SET extra = 'y' WHERE id = 2");
        let changed = exporter_postgres::fingerprint_database(&target.url())
            .await
            .unwrap();
        for (before, after) in summary.tables.iter().zip(&changed) {
            assert_eq!(before.name, after.name);
            assert_eq!(before.rows, after.rows);
            if before.name == "public.child" {
                assert_ne!(before.fingerprint, after.fingerprint, "jobs={jobs}");
            } else {
                assert_eq!(before.fingerprint, after.fingerprint, "{}", before.name);
            }
        }
    }
}

/// Issue 15, kind 1: partition trees whose leaf for a row depends on the server (hash on an
/// enum, on an array or composite holding one, on a domain over one; range on text under the
/// default collation) are loaded through their top-most root and fingerprinted under its
/// name, sequentially and in parallel; trees whose leaves do not depend on the server are
/// still loaded leaf by leaf. The dump's observer hears of a routed tree once, under its
/// root's name, when its last leaf is done (issue 16).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x05_server_dependent_partitions_load_through_the_root() {
    let source = TestDb::new("x05");
    source.run_file(&fixture("fidelity/X05.sql"));
    let check = fixture("fidelity/X05.check.sql");
    for jobs in [1, 2] {
        let recorder = std::sync::Arc::new(exporter_conformance::Recorder::default());
        let (target, script, summary) = round_trip_with(
            &source,
            DumpOptions::default()
                .with_jobs(jobs)
                .with_observer(recorder.clone()),
        )
        .await;
        recorder.check(&summary);
        assert_eq!(
            check_output(&target.name, &check),
            check_output(&source.name, &check),
            "jobs={jobs}"
        );
        let names: Vec<&str> = summary.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "public.by_domain",
                "public.by_id_0",
                "public.by_id_1",
                "public.by_label_low",
                "public.by_label_rest",
                "public.by_mood",
                "public.by_moods",
                "public.events",
                "public.names",
            ],
            "jobs={jobs}"
        );
        assert_eq!(rows(&summary, "public.by_mood"), 200);
        assert_eq!(rows(&summary, "public.events"), 300);
        assert_eq!(rows(&summary, "public.names"), 6);
        let text = String::from_utf8_lossy(&script);
        // Every leaf's block targets the root; none names a leaf of a routed tree.
        assert!(
            text.matches("COPY public.by_mood (id, m, note) FROM stdin;\n")
                .count()
                >= 4,
            "jobs={jobs}"
        );
        assert!(text.contains("COPY public.events (at, id, t) FROM stdin;\n"));
        assert!(!text.contains("COPY public.by_mood_0 "), "jobs={jobs}");
        assert!(!text.contains("COPY public.events_high "), "jobs={jobs}");
        assert!(text.contains("COPY public.by_id_0 (id, m) FROM stdin;\n"));
        assert!(text.contains("COPY public.by_label_low (id, m) FROM stdin;\n"));
    }
}

/// Issue 15, kind 1: a row lands in another leaf of the restore than of the source (the
/// source database sorts text with ICU, the restore's with C.UTF-8: `'Beta'` is between
/// `'a'` and `'n'` in one and before `'a'` in the other). The load through the root puts it
/// where the target's order says, and the fingerprints, taken per tree, still compare.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x05_rows_may_land_in_another_leaf_of_the_restore() {
    let name = common::unique("x05icu");
    common::sql(
        "postgres",
        &format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8' \
             LOCALE_PROVIDER icu ICU_LOCALE 'en'"
        ),
    );
    let source = TestDb { name };
    source.sql(
        "CREATE TABLE names (name text, id int) PARTITION BY RANGE (name);
         CREATE TABLE names_a PARTITION OF names FOR VALUES FROM ('a') TO ('n');
         CREATE TABLE names_n PARTITION OF names FOR VALUES FROM ('n') TO ('zzzz');
         CREATE TABLE names_other PARTITION OF names DEFAULT;
         INSERT INTO names VALUES ('alpha', 1), ('Beta', 2), ('nu', 3), ('Zulu', 4);",
    );
    let leaf = |db: &TestDb| db.sql("SELECT tableoid::regclass FROM names WHERE id = 2");
    assert_eq!(leaf(&source), "names_a\n");
    // round_trip restores into a database of the server's default (C.UTF-8) order and
    // asserts the fingerprints of source, dump and restore are equal.
    let (target, _script, summary) = round_trip(&source).await;
    assert_eq!(leaf(&target), "names_other\n");
    assert_eq!(rows(&summary, "public.names"), 4);
    assert_eq!(
        target.sql("SELECT string_agg(name, ',' ORDER BY id) FROM names"),
        "alpha,Beta,nu,Zulu\n"
    );
}

/// Issue 15, kind 2: code that runs during the load finds objects through the application's
/// search_path (here a database-level setting). The stock psql restore passes (through
/// `case`: checks and pg_dump compare equal), sequentially and in parallel; the restored
/// database has the source's setting, so the application's unqualified queries work there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x06_load_time_code_runs_under_the_applications_search_path() {
    let (source, target, summary) = case("X06").await;
    assert_eq!(rows(&summary, "app.orders"), 3);
    let setting = |db: &TestDb| {
        db.sql(&format!(
            "SELECT setconfig FROM pg_db_role_setting WHERE setrole = 0 \
             AND setdatabase = (SELECT oid FROM pg_database WHERE datname = '{}')",
            db.name
        ))
    };
    assert_eq!(setting(&target), "{\"search_path=app, public\"}\n");
    assert_eq!(setting(&target), setting(&source));
    // A new session of the restored database resolves like the application's.
    assert_eq!(
        target.sql("SELECT norm('A  B'), valid_status('new'), open FROM dashboard"),
        "a b|t|2\n"
    );
    let (_t2, script, parallel) =
        round_trip_with(&source, DumpOptions::default().with_jobs(2)).await;
    assert_eq!(parallel.tables, summary.tables);
    let text = String::from_utf8_lossy(&script);
    let copy = text
        .find("SET search_path = \"app\", \"public\";\nCOPY app.orders ")
        .expect("the COPY of app.orders runs under the application's path");
    let check = text
        .find("ALTER TABLE app.orders ADD CONSTRAINT orders_status_check CHECK (app.valid_status(status));")
        .expect("the check is added after the data");
    assert!(check > copy && check > text.find("COPY app.statuses ").unwrap());
    assert!(text.contains(
        "SET search_path = \"app\", \"public\";\nREFRESH MATERIALIZED VIEW app.dashboard;\nSET search_path = '';\n"
    ));
}
