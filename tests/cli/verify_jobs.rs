//! `exporter verify --level restore --jobs N` (issue 17): the fingerprint pass on several
//! connections, and the archives checked overlapped (one fingerprinted and dropped while the
//! next is restored), give the report and the event stream of one connection and one archive
//! at a time — and leave no scratch database behind, also with two Redis archives in a row
//! sharing the one whole-server Redis scratch, and when interrupted.

use std::path::Path;

use serde_json::Value;

use crate::restore::reseal_payload;
use crate::support::{
    MY_HOST, MY_PORT, MyDb, Outcome, PG_HOST, PG_PORT, REDIS_SEED, REDIS_SEED_KEYS, RedisServer,
    TestDb, dump_ok, exporter, interrupt_when, manifest, mariadb, psql, run, s, small_db,
    spawn_exporter, tempdir, zstd_decompress,
};

/// Several tables, one of a few thousand rows, awkward values.
const PG_TABLES: &str = r"
CREATE TABLE t (id integer PRIMARY KEY, label text, data bytea);
INSERT INTO t SELECT i, 'row ' || i, decode(md5(i::text), 'hex') FROM generate_series(1, 4000) AS i;
INSERT INTO t VALUES (0, E'tab\there\nnewline \\ backslash', NULL);
CREATE TABLE u (k text PRIMARY KEY, v jsonb);
INSERT INTO u VALUES ('x', '{}'), ('y', '[1, 2]');
CREATE TABLE empty_one (id integer);
CREATE SCHEMA other;
CREATE TABLE other.t (id integer, at timestamptz);
INSERT INTO other.t SELECT i, '2026-01-01 00:00:00+00'::timestamptz + i * interval '1 minute'
  FROM generate_series(1, 500) AS i;
";

/// Keys other than [`REDIS_SEED`]'s, so a scratch holding both archives' keys at once could
/// not pass.
const REDIS_OTHER: &str = "SELECT 0\nSET only-here 1\nSET greeting other\nSELECT 2\nSET far away\n";

/// The names of the run's scratch databases (`exporter_verify_<run id>_<name>`, as `verify`
/// names them; the names here are short enough never to be cut).
fn scratch_names(run_dir: &Path) -> Vec<String> {
    let id = run_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase();
    manifest(run_dir)["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let name = format!("exporter_verify_{id}_{}", d["name"].as_str().unwrap());
            assert!(name.len() <= 63, "test database name too long: {name}");
            name
        })
        .collect()
}

/// The run's scratch databases still on the PostgreSQL and MariaDB servers.
fn scratch_left(run_dir: &Path) -> (String, String) {
    let list = scratch_names(run_dir)
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let pg = psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname IN ({list})"),
    );
    let my = mariadb(
        None,
        &format!("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({list})"),
    );
    (pg.trim().to_owned(), my.trim().to_owned())
}

/// `(event, label)` of every event but the heartbeats, in order.
fn event_sequence(out: &Outcome) -> Vec<(String, String)> {
    out.stderr
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("not a JSON event ({e}): {line}\n{}", out.stderr))
        })
        .filter(|e| !e["event"].as_str().unwrap_or("").ends_with("_progress"))
        .map(|e| {
            (
                e["event"].as_str().unwrap_or("").to_owned(),
                e["label"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The report without what differs between two verifications: the time and durations.
fn timeless(mut report: Value) -> Value {
    report["verified_at"] = Value::Null;
    for d in report["databases"].as_array_mut().unwrap() {
        if d.get("restore").is_some() {
            d["restore"]["millis"] = Value::Null;
        }
    }
    report
}

#[test]
fn verify_restore_with_jobs_1_and_4_reports_the_same_and_drops_every_scratch() {
    let pg_a = small_db("vj_a", 100);
    let pg_b = TestDb::with_sql("vj_b", PG_TABLES);
    let my = MyDb::create("vj");
    my.query(
        "CREATE TABLE t (id INT PRIMARY KEY, label VARCHAR(40), raw VARBINARY(16)); \
         INSERT INTO t SELECT seq, CONCAT('row ', seq), UNHEX(MD5(seq)) FROM seq_1_to_3000; \
         CREATE TABLE u (k VARCHAR(10) PRIMARY KEY, n BIGINT); \
         INSERT INTO u VALUES ('a', 9223372036854775807), ('b', -1); \
         CREATE TABLE w (id INT) ENGINE=MyISAM; INSERT INTO w VALUES (1), (2);",
    );
    let (cache_a, cache_b) = (RedisServer::start(), RedisServer::start());
    cache_a.seed(REDIS_SEED);
    cache_b.seed(REDIS_OTHER);
    let redis_scratch = RedisServer::start();
    let work = tempdir();
    // The two Redis archives come first, so both are under way at once: the second may only
    // be restored into the scratch server once the first one's keys are compared and
    // flushed (else its create finds the server not empty).
    let (a, b) = (
        format!("cache{}={}", cache_a.port, cache_a.url()),
        format!("cache{}={}", cache_b.port, cache_b.url()),
    );
    let run_dir = dump_ok(
        work.path(),
        &[
            "dump",
            &a,
            &b,
            &pg_a.url(),
            &my.url(),
            &pg_b.url(),
            "--to",
            "out",
        ],
    );
    let pg = format!("postgres://postgres@{PG_HOST}:{PG_PORT}/postgres");
    let mysql = format!("mysql://root@{MY_HOST}:{MY_PORT}");
    let verify = |jobs: &str| {
        let out = run(exporter(work.path()).args([
            "--log-format",
            "json",
            "verify",
            s(&run_dir),
            "--level",
            "restore",
            "--jobs",
            jobs,
            "--json",
            "--scratch",
            &pg,
            "--scratch",
            &mysql,
            "--scratch",
            &redis_scratch.url(),
        ]));
        out.expect_code(0);
        assert_eq!(
            scratch_left(&run_dir),
            ("0".to_owned(), "0".to_owned()),
            "--jobs {jobs} left a scratch database behind"
        );
        for db in 0..16 {
            assert_eq!(redis_scratch.dbsize(db), 0, "--jobs {jobs}: Redis db{db}");
        }
        let report: Value = serde_json::from_str(&out.stdout).expect("--json report");
        (report, event_sequence(&out))
    };
    let (one, one_events) = verify("1");
    let (four, four_events) = verify("4");

    // The report: every archive restored, compared and dropped, in manifest order.
    assert_eq!(one["ok"], true, "{one:#}");
    let m = manifest(&run_dir);
    let entries = m["databases"].as_array().unwrap();
    let checked = one["databases"].as_array().unwrap();
    assert_eq!(checked.len(), 5);
    let redis_keys = REDIS_SEED_KEYS.0 + REDIS_SEED_KEYS.1;
    for (entry, (d, rows)) in entries
        .iter()
        .zip(checked.iter().zip([redis_keys, 3, 100, 3004, 4503]))
    {
        assert_eq!(d["name"], entry["name"], "{d:#}");
        assert_eq!(d["ok"], true, "{d:#}");
        assert_eq!(d["restore"]["dropped"], true, "{d:#}");
        assert_eq!(d["restore"]["rows_compared"], rows, "{d:#}");
        assert_eq!(
            d["restore"]["tables"],
            entry["tables"].as_array().unwrap().len(),
            "{d:#}"
        );
        assert!(d["restore"]["millis"].as_u64().is_some(), "{d:#}");
    }
    assert_eq!(
        timeless(four),
        timeless(one),
        "--jobs 4 reports as --jobs 1"
    );

    // The events: the same sequence, each archive's restore started and checked before the
    // next one's starts.
    assert_eq!(four_events, one_events, "--jobs 4 reports the same events");
    let scratch: Vec<&(String, String)> = one_events
        .iter()
        .filter(|(event, _)| event.starts_with("scratch_restore_"))
        .collect();
    let files: Vec<String> = entries
        .iter()
        .map(|e| e["file"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<(String, String)> = files
        .iter()
        .flat_map(|f| {
            [
                ("scratch_restore_started".to_owned(), f.clone()),
                ("scratch_restore_checked".to_owned(), f.clone()),
            ]
        })
        .collect();
    assert_eq!(
        scratch.into_iter().cloned().collect::<Vec<_>>(),
        expected,
        "{one_events:?}"
    );
}

/// SIGINT while the second archive is restored (held in a `pg_sleep` put into its payload),
/// the first one checked beside it: exit 3, and neither scratch database is left behind.
#[test]
fn verify_restore_interrupted_while_overlapped_drops_every_scratch() {
    let first = small_db("vj_int_a", 2000);
    let second = small_db("vj_int_b", 10);
    let work = tempdir();
    let run_dir = dump_ok(
        work.path(),
        &["dump", &first.url(), &second.url(), "--to", "out"],
    );
    let file = format!("{}.sql.zst", second.name);
    let mut payload = b"SELECT pg_sleep(120);\n".to_vec();
    payload.extend(zstd_decompress(&run_dir.join(&file)));
    reseal_payload(&run_dir, &second.name, &file, &payload);
    let names = scratch_names(&run_dir);
    let pg = format!("postgres://postgres@{PG_HOST}:{PG_PORT}/postgres");
    let child = spawn_exporter(
        work.path(),
        &[
            "verify",
            s(&run_dir),
            "--level",
            "restore",
            "--jobs",
            "2",
            "--scratch",
            &pg,
        ],
    );
    let ((), out) = interrupt_when(
        child,
        || {
            let sleeping = psql(
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' \
                     AND query LIKE '%pg_sleep%'",
                    names[1]
                ),
            );
            (sleeping.trim() != "0").then_some(())
        },
        "exporter verify",
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("interrupted by SIGINT"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("dropped scratch database {}", names[1])),
        "{}",
        out.stderr
    );
    assert_eq!(
        scratch_left(&run_dir),
        ("0".to_owned(), "0".to_owned()),
        "an interrupted verification left a scratch database behind"
    );
    assert!(!run_dir.join("verify.json").exists(), "nothing is recorded");
}
