//! `exporter restore` and `exporter verify --level restore`, per engine, against the real
//! services: a dump restored natively into a fresh database equals its source (content
//! fingerprints, direct values); `--clean`; a non-empty target is refused with nothing
//! written; an engine mismatch and a missing `--db` are usage errors; a tampered archive is
//! corrupt (exit 1). `verify --level restore` passes on a good run and leaves no scratch
//! database behind, and — the point of the level — fails, naming the table, on an archive
//! whose bytes are intact but one value inside a row was changed (manifest and SHA256SUMS
//! resealed so that levels `checksum` and `decompress` pass).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::support::{
    MY_HOST, MY_PORT, MyDb, Outcome, PG_HOST, PG_PORT, REDIS_SEED, REDIS_SEED_KEYS, RedisServer,
    TestDb, assert_lines_equal, db_entry, db_entry_mut, dump_ok, exporter, fingerprint,
    interrupt_when, manifest, mariadb, pg_scratch, psql, read_json, read_sha256sums,
    rewrite_sha256sums, run, s, schema_dump, sequence_positions, sha256_bytes, small_db,
    spawn_exporter, table_rows, tempdir, user_tables, write_config, write_json, zstd_decompress,
    zstd_frame,
};

/// The MariaDB server as a scratch server.
fn my_scratch() -> String {
    format!("mysql://root@{MY_HOST}:{MY_PORT}")
}

/// `exporter restore RUN --into URL <extra…>` in `cwd`.
fn restore(cwd: &Path, run_dir: &Path, into: &str, extra: &[&str]) -> Outcome {
    run(exporter(cwd)
        .args(["restore", s(run_dir), "--into", into])
        .args(extra))
}

/// `exporter verify RUN --level restore --scratch URL…` in `cwd`.
fn verify_restore(cwd: &Path, run_dir: &Path, scratch: &[&str]) -> Outcome {
    let mut cmd = exporter(cwd);
    cmd.args(["verify", s(run_dir), "--level", "restore"]);
    for url in scratch {
        cmd.args(["--scratch", url]);
    }
    run(&mut cmd)
}

/// The run id of a run directory.
fn run_id(run_dir: &Path) -> String {
    run_dir
        .file_name()
        .expect("run dir name")
        .to_string_lossy()
        .into_owned()
}

/// The scratch name `verify` documents for `<run id>` and a database name made of lowercase
/// letters, digits and `_` that fits (support's test names do).
fn expected_scratch(run_dir: &Path, db: &str) -> String {
    let name = format!("exporter_verify_{}_{db}", run_id(run_dir).to_lowercase());
    assert!(name.len() <= 63, "test database name too long: {name}");
    name
}

/// The single database entry of `verify.json`.
fn verify_entry(run_dir: &Path) -> Value {
    let v = read_json(&run_dir.join("verify.json"));
    assert_eq!(v["databases"].as_array().map(Vec::len), Some(1), "{v:#}");
    v["databases"][0].clone()
}

/// Replace exactly one occurrence of `from` by `to` in the archive's payload and reseal it
/// ([`reseal_payload`]): levels `checksum` and `decompress` then pass.
fn alter_one_value(run_dir: &Path, entry: &str, file: &str, from: &[u8], to: &[u8]) {
    let payload = zstd_decompress(&run_dir.join(file));
    let hits: Vec<usize> = payload
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{:?} must occur exactly once in {file}",
        String::from_utf8_lossy(from)
    );
    let mut altered = payload[..hits[0]].to_vec();
    altered.extend_from_slice(to);
    altered.extend_from_slice(&payload[hits[0] + from.len()..]);
    reseal_payload(run_dir, entry, file, &altered);
}

/// Store `payload` as the archive, compressed into one zstd frame, and reseal the manifest
/// (sha256, sizes, frame count) and SHA256SUMS as if the tool had written it that way.
pub(crate) fn reseal_payload(run_dir: &Path, entry: &str, file: &str, payload: &[u8]) {
    let stored = zstd_frame(payload);
    std::fs::write(run_dir.join(file), &stored).expect("write the altered archive");
    let sha = sha256_bytes(&stored);
    let manifest_path = run_dir.join("manifest.json");
    let mut m = read_json(&manifest_path);
    let e = db_entry_mut(&mut m, entry);
    e["compressed_bytes"] = (stored.len() as u64).into();
    e["uncompressed_bytes"] = (payload.len() as u64).into();
    e["sha256"] = sha.clone().into();
    e["zstd_frames"] = 1u64.into();
    write_json(&manifest_path, &m);
    rewrite_sha256sums(run_dir, file, &sha);
    assert_eq!(read_sha256sums(run_dir)[file], sha);
}

/// Flip one byte in the middle of a stored file, leaving manifest and SHA256SUMS as they are.
fn flip_middle_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read archive");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(path, &bytes).expect("write archive");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

/// Tables with awkward values (tabs, newlines, backslashes, NULLs, bytea, arrays, jsonb, a
/// quoted mixed-case name), a sequence position and a view.
const PG_SOURCE: &str = r#"
CREATE TABLE t (id integer PRIMARY KEY, label text, amount numeric(12,2), at timestamptz,
                data bytea, tags text[]);
INSERT INTO t SELECT i, 'row ' || i, i * 1.5, '2026-01-01 00:00:00+00'::timestamptz + i * interval '1 hour',
                     decode(md5(i::text), 'hex'), ARRAY['a', 'b' || i]
              FROM generate_series(1, 500) AS i;
INSERT INTO t VALUES (0, E'tab\there\nnewline \\ backslash', NULL, NULL, NULL, NULL);
CREATE TABLE "Mixed Case" (k text PRIMARY KEY, v jsonb);
INSERT INTO "Mixed Case" VALUES ('x', '{"a": [1, 2]}'), ('y', 'null');
CREATE SEQUENCE counter;
SELECT setval('counter', 42);
CREATE VIEW big AS SELECT id, label FROM t WHERE id > 250;
"#;

/// A PostgreSQL source dumped into a run of its own.
struct PgRun {
    work: TempDir,
    source: TestDb,
    run_dir: PathBuf,
    file: String,
}

impl PgRun {
    fn new(test: &str) -> Self {
        let source = TestDb::with_sql(test, PG_SOURCE);
        let work = tempdir();
        let run_dir = dump_ok(work.path(), &["dump", &source.url(), "--to", "out"]);
        let file = format!("{}.sql.zst", source.name);
        Self {
            work,
            source,
            run_dir,
            file,
        }
    }

    fn cwd(&self) -> &Path {
        self.work.path()
    }
}

/// Tables, every row (sorted COPY text, as fingerprints), sequence positions and the
/// normalised `pg_dump --schema-only` of two databases are equal; and each table's fingerprint
/// equals the manifest's.
#[track_caller]
fn assert_pg_equal(source: &str, restored: &str, manifest_entry: &Value) {
    let tables = user_tables(source);
    assert_eq!(tables, user_tables(restored), "tables differ after restore");
    for t in &tables {
        let (a, b) = (table_rows(source, t), table_rows(restored, t));
        assert_eq!(a.len(), b.len(), "row count of {}", t.name);
        assert_eq!(fingerprint(&a), fingerprint(&b), "content of {}", t.name);
        // The manifest writes names as quote_ident does (FORMAT.md), e.g. public."Mixed Case".
        let manifest_name = psql(
            restored,
            &format!(
                "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = '{}'::regclass",
                t.name.replace('\'', "''")
            ),
        );
        let manifest_name = manifest_name.trim();
        let in_manifest = manifest_entry["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .find(|m| m["name"] == manifest_name)
            .unwrap_or_else(|| {
                panic!("{manifest_name} is not in the manifest: {manifest_entry:#}")
            });
        assert_eq!(in_manifest["rows"], b.len() as u64, "{}", t.name);
        assert_eq!(
            in_manifest["fingerprint"],
            fingerprint(&b).as_str(),
            "{}",
            t.name
        );
    }
    assert_eq!(
        sequence_positions(source),
        sequence_positions(restored),
        "sequence positions"
    );
    assert_lines_equal(
        "pg_dump --schema-only of source and restore",
        &schema_dump(source),
        &schema_dump(restored),
    );
}

#[test]
fn pg_restore_into_a_fresh_database_equals_the_source() {
    let r = PgRun::new("rs_pg");
    let target = TestDb::create("rs_pg_t");
    let out = restore(r.cwd(), &r.run_dir, &target.url(), &["--json"]);
    out.expect_code(0);
    out.stderr_contains("restored ");
    let report: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("--json is not JSON: {e}\n{}", out.stdout));
    assert_eq!(report["database"], r.source.name.as_str());
    assert_eq!(report["archive"]["file"], r.file.as_str());
    assert_eq!(report["rows"], 503, "501 + 2 rows loaded: {report:#}");
    assert!(report["statements"].as_u64().unwrap() > 0, "{report:#}");

    let m = manifest(&r.run_dir);
    assert_pg_equal(&r.source.name, &target.name, db_entry(&m, &r.source.name));
    assert_eq!(
        target.query("SELECT label FROM t WHERE id = 0"),
        "tab\there\nnewline \\ backslash"
    );
    assert_eq!(target.query("SELECT amount FROM t WHERE id = 7"), "10.50");
    assert_eq!(
        target.query("SELECT v->'a'->>1 FROM \"Mixed Case\" WHERE k = 'x'"),
        "2"
    );
    assert_eq!(target.query("SELECT count(*) FROM big"), "250");
    assert_eq!(target.query("SELECT nextval('counter')"), "43");
}

#[test]
fn pg_non_empty_target_is_refused_and_clean_replaces_it() {
    let r = PgRun::new("rs_pgne");
    let target = TestDb::with_sql(
        "rs_pgne_t",
        "CREATE TABLE occupied (x int); INSERT INTO occupied VALUES (1), (2);",
    );
    let out = restore(r.cwd(), &r.run_dir, &target.url(), &[]);
    out.expect_code(1)
        .expect_error_line()
        .stderr_contains("not empty")
        .stderr_contains("occupied")
        .stderr_contains("hint: --clean drops them first");
    // Nothing was written.
    assert_eq!(target.query("SELECT count(*) FROM occupied"), "2");
    assert_eq!(
        target.query("SELECT count(*) FROM pg_class WHERE relname = 't'"),
        "0"
    );

    restore(r.cwd(), &r.run_dir, &target.url(), &["--clean"]).expect_code(0);
    assert_eq!(
        target.query("SELECT count(*) FROM pg_class WHERE relname = 'occupied'"),
        "0",
        "--clean must drop what was there"
    );
    let m = manifest(&r.run_dir);
    assert_pg_equal(&r.source.name, &target.name, db_entry(&m, &r.source.name));
}

#[test]
fn engine_mismatch_is_a_usage_error_naming_both() {
    let r = PgRun::new("rs_mism");
    let out = restore(
        r.cwd(),
        &r.run_dir,
        &format!("mysql://root@{MY_HOST}:{MY_PORT}/nowhere"),
        &[],
    );
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("postgresql archive")
        .stderr_contains("mysql URL");
}

#[test]
fn db_is_required_when_the_run_holds_several() {
    let a = TestDb::with_sql(
        "rs_dba",
        "CREATE TABLE a (x int); INSERT INTO a VALUES (1);",
    );
    let b = TestDb::with_sql(
        "rs_dbb",
        "CREATE TABLE b (y int); INSERT INTO b VALUES (2);",
    );
    let work = tempdir();
    let run_dir = dump_ok(work.path(), &["dump", &a.url(), &b.url(), "--to", "out"]);
    let target = TestDb::create("rs_db_t");

    let out = restore(work.path(), &run_dir, &target.url(), &[]);
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("choose one with --db")
        .stderr_contains(&a.name)
        .stderr_contains(&b.name);
    let out = restore(work.path(), &run_dir, &target.url(), &["--db", "nosuch"]);
    out.expect_code(2)
        .stderr_contains("no database \"nosuch\"")
        .stderr_contains(&a.name);
    assert_eq!(
        target.query("SELECT count(*) FROM pg_class WHERE relname IN ('a', 'b')"),
        "0"
    );

    // By run id under --to, picking the second database.
    let id = run_id(&run_dir);
    run(exporter(work.path()).args([
        "restore",
        &id,
        "--to",
        "out",
        "--into",
        &target.url(),
        "--db",
        &b.name,
    ]))
    .expect_code(0);
    assert_eq!(target.query("SELECT y FROM b"), "2");
    assert_eq!(
        target.query("SELECT count(*) FROM pg_class WHERE relname = 'a'"),
        "0"
    );
}

#[test]
fn pg_tampered_archive_is_corrupt() {
    let r = PgRun::new("rs_tamper");
    flip_middle_byte(&r.run_dir.join(&r.file));
    let target = TestDb::create("rs_tamper_t");
    let out = restore(r.cwd(), &r.run_dir, &target.url(), &[]);
    out.expect_code(1)
        .expect_error_line()
        .stderr_contains(&format!("archive {} is corrupt", r.file))
        .stderr_contains("may be partly restored");
}

/// A statement appended to a stored archive (a valid zstd frame after the recorded end) never
/// reaches the target: only the bytes the manifest records are decoded, and the length
/// difference is reported as corruption. Without `--clean` there is no check before the
/// stream, so this is the only thing standing between the extra frame and the target.
#[test]
fn pg_bytes_appended_after_the_recorded_end_are_never_executed() {
    let r = PgRun::new("rs_append");
    let path = r.run_dir.join(&r.file);
    let mut stored = std::fs::read(&path).unwrap();
    stored.extend(zstd_frame(
        b"DROP TABLE public.big CASCADE;\nCREATE TABLE public.appended (x int);\n",
    ));
    std::fs::write(&path, stored).unwrap();
    let target = TestDb::create("rs_append_t");
    let out = restore(r.cwd(), &r.run_dir, &target.url(), &[]);
    out.expect_code(1)
        .expect_error_line()
        .stderr_contains(&format!("archive {} is corrupt", r.file))
        .stderr_contains("manifest says");
    assert_eq!(
        target.query("SELECT count(*) FROM big"),
        "250",
        "the appended DROP ran"
    );
    assert_eq!(
        target.query("SELECT count(*) FROM pg_class WHERE relname = 'appended'"),
        "0",
        "the appended CREATE ran"
    );
}

/// `--clean` on a damaged archive: the archive is checked (length, SHA-256) before anything
/// is dropped, so the target keeps what it holds (it may be the only other copy).
#[test]
fn pg_clean_never_drops_anything_for_a_damaged_archive() {
    let r = PgRun::new("rs_cleandmg");
    flip_middle_byte(&r.run_dir.join(&r.file));
    let target = TestDb::with_sql(
        "rs_cleandmg_t",
        "CREATE TABLE precious (x int); INSERT INTO precious VALUES (1), (2), (3);",
    );
    let out = restore(r.cwd(), &r.run_dir, &target.url(), &["--clean"]);
    out.expect_code(1)
        .expect_error_line()
        .stderr_contains(&format!("archive {} is corrupt", r.file))
        .stderr_contains("nothing was dropped");
    assert_eq!(target.query("SELECT count(*) FROM precious"), "3");
    assert_eq!(
        target.query("SELECT count(*) FROM pg_class WHERE relname = 't'"),
        "0"
    );
}

/// A manifest edited to point outside its run is refused, never followed.
#[test]
fn a_manifest_file_outside_the_run_is_refused() {
    let r = PgRun::new("rs_escape");
    let outside = r
        .run_dir
        .parent()
        .expect("destination")
        .join("outside.sql.zst");
    std::fs::copy(r.run_dir.join(&r.file), &outside).expect("copy the archive out");
    let manifest_path = r.run_dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).expect("read manifest");
    for name in ["../outside.sql.zst", "/etc/passwd"] {
        std::fs::write(
            &manifest_path,
            text.replace(&format!("\"{}\"", r.file), &format!("\"{name}\"")),
        )
        .expect("write manifest");
        let target = TestDb::create("rs_escape_t");
        let out = restore(r.cwd(), &r.run_dir, &target.url(), &[]);
        out.expect_code(1)
            .expect_error_line()
            .stderr_contains("not a plain file name of the run");
        assert_eq!(
            target.query("SELECT count(*) FROM pg_class WHERE relname = 't'"),
            "0",
            "{name}: nothing restored"
        );
    }
}

/// A statement the target refuses stops the restore with exit 3 and the adapter's error,
/// which names the statement; `verify --level restore` reports it as a problem (exit 1).
#[test]
fn pg_failing_statement_exits_3_naming_it() {
    let r = PgRun::new("rs_pgfail");
    let mut payload = zstd_decompress(&r.run_dir.join(&r.file));
    payload.extend_from_slice(b"\nCREATE TABLE broken (x no_such_type);\n");
    reseal_payload(&r.run_dir, &r.source.name, &r.file, &payload);
    let target = TestDb::create("rs_pgfail_t");
    let out = restore(r.cwd(), &r.run_dir, &target.url(), &[]);
    out.expect_code(3)
        .expect_error_line()
        .stderr_contains("CREATE TABLE broken")
        .stderr_contains("may be partly restored");
    let out = verify_restore(r.cwd(), &r.run_dir, &[&pg_scratch()]);
    out.expect_code(1);
    assert!(
        out.stdout.lines().any(|l| l.starts_with("FAILED ")
            && l.contains("restore into scratch database")
            && l.contains("CREATE TABLE broken")),
        "{}",
        out.all_output()
    );
}

/// A unique index that the restored rows violate (issue 17): with one connection and with
/// four, the restore stops with exit 3 at that statement, named with its table and the
/// server's SQLSTATE but no row data, and nothing is reported as restored.
#[test]
fn pg_failing_unique_index_exits_3_naming_statement_and_table() {
    let r = PgRun::new("rs_pgidx");
    let payload = zstd_decompress(&r.run_dir.join(&r.file));
    let at = payload
        .windows(16)
        .position(|w| w == b"ALTER TABLE ONLY")
        .expect("the dump has a post-data section");
    let mut altered = payload[..at].to_vec();
    // `label` is 'row 1' … 'row 500': many rows share a length.
    altered.extend_from_slice(
        b"CREATE UNIQUE INDEX t_label_length ON public.t USING btree (length(label));\n\n",
    );
    altered.extend_from_slice(&payload[at..]);
    reseal_payload(&r.run_dir, &r.source.name, &r.file, &altered);
    for jobs in ["1", "4"] {
        let target = TestDb::create(&format!("rs_pgidx_t{jobs}"));
        let out = restore(r.cwd(), &r.run_dir, &target.url(), &["--jobs", jobs]);
        out.expect_code(3)
            .expect_error_line()
            .stderr_contains("CREATE UNIQUE INDEX t_label_length ON (table public.t)")
            .stderr_contains("SQLSTATE 23505")
            .stderr_contains("may be partly restored");
        let all = out.all_output();
        assert!(
            !all.lines().any(|l| l.starts_with("restored ")),
            "--jobs {jobs}: nothing may be reported as restored:\n{all}"
        );
        assert!(
            !all.contains("(5)="),
            "--jobs {jobs}: no key values:\n{all}"
        );
    }
}

#[test]
fn pg_verify_restore_passes_and_leaves_no_scratch_database() {
    let r = PgRun::new("rv_pg");
    let out = verify_restore(r.cwd(), &r.run_dir, &[&pg_scratch()]);
    out.expect_code(0);
    let v = read_json(&r.run_dir.join("verify.json"));
    assert_eq!(v["level"], "restore");
    assert_eq!(v["ok"], true);
    let d = verify_entry(&r.run_dir);
    let scratch = expected_scratch(&r.run_dir, &r.source.name);
    assert_eq!(d["restore"]["scratch"], scratch.as_str(), "{d:#}");
    assert_eq!(d["restore"]["tables"], 2, "{d:#}");
    assert_eq!(d["restore"]["rows_compared"], 503, "{d:#}");
    assert_eq!(d["restore"]["dropped"], true, "{d:#}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with(&format!("ok restore {}", r.file))),
        "{}",
        out.stdout
    );
    assert_eq!(
        psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{scratch}'")
        )
        .trim(),
        "0",
        "the scratch database was left behind"
    );
}

/// The key property of level `restore`: one value inside one COPY row changed, archive
/// resealed so the bytes are "intact": checksum and decompress pass, restore fails naming the
/// table and saying the content differs; the scratch database is dropped anyway.
#[test]
fn pg_verify_restore_catches_one_altered_value() {
    let r = PgRun::new("rv_pgalt");
    alter_one_value(
        &r.run_dir,
        &r.source.name,
        &r.file,
        b"\trow 77\t",
        b"\trow 78\t",
    );
    for level in ["checksum", "decompress"] {
        run(exporter(r.cwd()).args(["verify", s(&r.run_dir), "--level", level])).expect_code(0);
    }
    let out = verify_restore(r.cwd(), &r.run_dir, &[&pg_scratch()]);
    out.expect_code(1);
    let text = out.all_output();
    let problem = text
        .lines()
        .find(|l| l.contains("content differs"))
        .unwrap_or_else(|| panic!("no `content differs` problem:\n{text}"));
    assert!(
        problem.contains("table public.t: content differs"),
        "the problem does not name the table: {problem}"
    );
    assert!(
        !text.contains("Mixed Case"),
        "only the altered table differs:\n{text}"
    );
    let d = verify_entry(&r.run_dir);
    assert_eq!(d["ok"], false);
    assert_eq!(d["restore"]["dropped"], true, "{d:#}");
    let scratch = expected_scratch(&r.run_dir, &r.source.name);
    assert_eq!(
        psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{scratch}'")
        )
        .trim(),
        "0",
        "the scratch database was left behind after a failed check"
    );
}

/// A run of manifest format 1.0 (issue 15, kind 3: fingerprints by column position): level
/// `restore` still restores it and compares every table's row count, but never compares its
/// fingerprints with this build's (by column name): it says so and exits 1. Levels
/// `checksum` and `decompress` pass as before.
#[test]
fn pg_verify_restore_of_a_format_1_0_run_compares_row_counts_only() {
    let r = PgRun::new("rv_pgold");
    let path = r.run_dir.join("manifest.json");
    let mut m = read_json(&path);
    assert_eq!(m["format_version"], "1.1");
    m["format_version"] = "1.0".into();
    m["fingerprint_algorithm"] = "xxh3-128-wrapping-sum".into();
    write_json(&path, &m);
    for level in ["checksum", "decompress"] {
        run(exporter(r.cwd()).args(["verify", s(&r.run_dir), "--level", level])).expect_code(0);
    }
    let out = verify_restore(r.cwd(), &r.run_dir, &[&pg_scratch()]);
    out.expect_code(1);
    let text = out.all_output();
    assert!(
        text.contains(
            "content not compared: the manifest's fingerprints use algorithm \"xxh3-128-wrapping-sum\""
        ),
        "{text}"
    );
    assert!(!text.contains("content differs"), "{text}");
    let d = verify_entry(&r.run_dir);
    assert_eq!(d["ok"], false);
    assert_eq!(d["problems"].as_array().map(Vec::len), Some(1), "{d:#}");
    assert!(d["restore"]["rows_compared"].as_u64() > Some(0), "{d:#}");
    assert_eq!(d["restore"]["dropped"], true, "{d:#}");
}

/// SIGINT while the scratch restore runs (held in a `pg_sleep` put into the payload): the
/// command exits 3 saying so, and the scratch database is dropped on the way out.
#[test]
fn pg_verify_restore_interrupted_still_drops_the_scratch_database() {
    let r = PgRun::new("rv_pgint");
    let mut payload = b"SELECT pg_sleep(120);\n".to_vec();
    payload.extend(zstd_decompress(&r.run_dir.join(&r.file)));
    reseal_payload(&r.run_dir, &r.source.name, &r.file, &payload);
    let scratch = expected_scratch(&r.run_dir, &r.source.name);
    let pg = pg_scratch();
    let child = spawn_exporter(
        r.cwd(),
        &[
            "verify",
            s(&r.run_dir),
            "--level",
            "restore",
            "--scratch",
            &pg,
        ],
    );
    // Interrupted once the scratch restore runs its pg_sleep.
    let ((), out) = interrupt_when(
        child,
        || {
            let sleeping = psql(
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = '{scratch}' \
                     AND query LIKE '%pg_sleep%'"
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
            .contains(&format!("dropped scratch database {scratch}")),
        "{}",
        out.stderr
    );
    assert_eq!(
        psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{scratch}'")
        )
        .trim(),
        "0",
        "the interrupted verification left its scratch database behind"
    );
}

/// The scratch name is taken on the scratch server — a leftover of an interrupted
/// verification (or one of the same run running beside): that database is left alone, and
/// the restore goes to another name, which is dropped after. PostgreSQL and MariaDB.
#[test]
fn a_taken_scratch_name_is_left_alone_and_another_is_used() {
    let pg = PgRun::new("rv_taken");
    let taken = expected_scratch(&pg.run_dir, &pg.source.name);
    psql("postgres", &format!("CREATE DATABASE {taken}"));
    let out = verify_restore(pg.cwd(), &pg.run_dir, &[&pg_scratch()]);
    let count_taken = |name: &str| {
        psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname LIKE '{name}%'"),
        )
        .trim()
        .to_owned()
    };
    let left = count_taken(&taken);
    psql("postgres", &format!("DROP DATABASE {taken}"));
    out.expect_code(0);
    assert!(
        out.stderr
            .contains(&format!("a database named {taken} exists on")),
        "{}",
        out.all_output()
    );
    assert_eq!(
        left, "1",
        "only the taken one is there: the other one was dropped"
    );
    let used = verify_entry(&pg.run_dir)["restore"]["scratch"]
        .as_str()
        .expect("scratch name")
        .to_owned();
    // The taken name, cut to leave room for `_` and 8 hex digits, then those.
    assert_ne!(used, taken);
    assert!(
        used.starts_with(&taken[..taken.len().min(54)]) && used.len() <= 63,
        "{used}"
    );

    let my = MyRun::new("rv_taken_my");
    let id = my
        .run_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase();
    let taken = format!("exporter_verify_{id}_{}", my.source.name);
    mariadb(None, &format!("CREATE DATABASE `{taken}`"));
    let out = verify_restore(my.work.path(), &my.run_dir, &[&my_scratch()]);
    let left = mariadb(
        None,
        &format!(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE '{taken}%'"
        ),
    );
    mariadb(None, &format!("DROP DATABASE `{taken}`"));
    out.expect_code(0);
    assert!(
        out.stderr
            .contains(&format!("a database named {taken} exists on")),
        "{}",
        out.all_output()
    );
    assert_eq!(left.trim(), "1");
}

#[test]
fn verify_restore_without_a_matching_scratch_is_a_usage_error() {
    let r = PgRun::new("rv_noscr");
    let out = verify_restore(r.cwd(), &r.run_dir, &[]);
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("needs a --scratch server for postgresql")
        .stderr_contains(&r.source.name);
    // Another engine's scratch does not help.
    let out = verify_restore(r.cwd(), &r.run_dir, &[&my_scratch()]);
    out.expect_code(2).stderr_contains("postgresql (for ");
    assert!(
        !r.run_dir.join("verify.json").exists(),
        "nothing may be recorded before the check starts"
    );
    // --scratch needs --level restore.
    run(exporter(r.cwd()).args(["verify", s(&r.run_dir), "--scratch", &pg_scratch()]))
        .expect_code(2)
        .stderr_contains("--scratch is only used with --level restore");
}

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB
// ---------------------------------------------------------------------------------------------

const MY_SOURCE: &str = "CREATE TABLE t (id INT PRIMARY KEY, label VARCHAR(40), amount DECIMAL(10,2), \
                         raw VARBINARY(16), note TEXT); \
                         INSERT INTO t VALUES (1, 'one', 1.50, X'00FF10', 'it''s'), \
                         (2, 'two', NULL, NULL, 'tab\\there'), (3, 'three', -3.25, X'', NULL); \
                         CREATE TABLE u (k VARCHAR(10) PRIMARY KEY, n BIGINT); \
                         INSERT INTO u VALUES ('a', 9223372036854775807), ('b', -1); \
                         CREATE VIEW v AS SELECT id, label FROM t WHERE id > 1;";

/// Every row of `t` and `u` and the view, as the stock client prints them.
fn my_rows(db: &MyDb) -> String {
    db.query(
        "SELECT id, label, amount, HEX(raw), note FROM t ORDER BY id; \
         SELECT k, n FROM u ORDER BY k; SELECT * FROM v ORDER BY id;",
    )
}

struct MyRun {
    work: TempDir,
    source: MyDb,
    run_dir: PathBuf,
    file: String,
}

impl MyRun {
    fn new(test: &str) -> Self {
        let source = MyDb::create(test);
        source.query(MY_SOURCE);
        let work = tempdir();
        let run_dir = dump_ok(work.path(), &["dump", &source.url(), "--to", "out"]);
        let file = format!("{}.sql.zst", source.name);
        Self {
            work,
            source,
            run_dir,
            file,
        }
    }
}

#[test]
fn mysql_restore_into_a_fresh_database_equals_the_source() {
    let r = MyRun::new("rs_my");
    let target = MyDb::create("rs_my_t");
    restore(r.work.path(), &r.run_dir, &target.url(), &[]).expect_code(0);
    assert_eq!(my_rows(&target), my_rows(&r.source));
    assert_eq!(target.query("SELECT note FROM t WHERE id = 1"), "it's\n");
    assert_eq!(
        target.query("SELECT HEX(raw) FROM t WHERE id = 1"),
        "00FF10\n"
    );
    assert_eq!(
        target.query("SELECT n FROM u WHERE k = 'a'"),
        "9223372036854775807\n"
    );
    // The restored tables fingerprint as the manifest says: verify the restore target's
    // content through a second run dumped from it.
    let again = dump_ok(r.work.path(), &["dump", &target.url(), "--to", "again"]);
    let (m1, m2) = (manifest(&r.run_dir), manifest(&again));
    assert_eq!(
        db_entry(&m1, &r.source.name)["tables"],
        db_entry(&m2, &target.name)["tables"],
        "fingerprints of source and restore"
    );
}

#[test]
fn mysql_non_empty_target_is_refused_and_clean_replaces_it() {
    let r = MyRun::new("rs_myne");
    let target = MyDb::create("rs_myne_t");
    target.query("CREATE TABLE occupied (x INT); INSERT INTO occupied VALUES (1);");
    restore(r.work.path(), &r.run_dir, &target.url(), &[])
        .expect_code(1)
        .stderr_contains("occupied")
        .stderr_contains("hint: --clean drops them first");
    assert_eq!(
        mariadb(
            None,
            &format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}'",
                target.name
            )
        ),
        "1\n",
        "nothing may be written into a refused target"
    );
    restore(r.work.path(), &r.run_dir, &target.url(), &["--clean"]).expect_code(0);
    assert_eq!(my_rows(&target), my_rows(&r.source));
    assert_eq!(
        mariadb(
            None,
            &format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = 'occupied'",
                target.name
            )
        ),
        "0\n"
    );
}

#[test]
fn mysql_tampered_archive_is_corrupt() {
    let r = MyRun::new("rs_mytamp");
    flip_middle_byte(&r.run_dir.join(&r.file));
    let target = MyDb::create("rs_mytamp_t");
    restore(r.work.path(), &r.run_dir, &target.url(), &[])
        .expect_code(1)
        .stderr_contains("is corrupt");
}

/// The scratch schema of a MySQL verification exists?
fn my_schema_exists(name: &str) -> bool {
    mariadb(
        None,
        &format!("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'"),
    )
    .trim()
        != "0"
}

#[test]
fn mysql_verify_restore_passes_and_catches_one_altered_value() {
    let r = MyRun::new("rv_my");
    let scratch = expected_scratch(&r.run_dir, &r.source.name);
    verify_restore(r.work.path(), &r.run_dir, &[&my_scratch()]).expect_code(0);
    let d = verify_entry(&r.run_dir);
    assert_eq!(d["restore"]["scratch"], scratch.as_str(), "{d:#}");
    assert_eq!(d["restore"]["tables"], 2, "{d:#}");
    assert_eq!(d["restore"]["rows_compared"], 5, "{d:#}");
    assert!(!my_schema_exists(&scratch), "scratch schema left behind");

    // One value inside one INSERT row.
    alter_one_value(&r.run_dir, &r.source.name, &r.file, b"'three'", b"'thrEe'");
    run(exporter(r.work.path()).args(["verify", s(&r.run_dir)])).expect_code(0);
    let out = verify_restore(r.work.path(), &r.run_dir, &[&my_scratch()]);
    out.expect_code(1);
    let text = out.all_output();
    assert!(
        text.lines().any(|l| l.contains("table t: content differs")),
        "no problem naming table t:\n{text}"
    );
    assert!(!text.contains("table u:"), "only t differs:\n{text}");
    assert!(!my_schema_exists(&scratch), "scratch schema left behind");
}

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

/// A seeded redis-server dumped (RESP, or RDB with `rdb`) under the name `cache`.
struct RedisRun {
    work: TempDir,
    source: RedisServer,
    run_dir: PathBuf,
}

impl RedisRun {
    fn new(rdb: bool) -> Self {
        let source = RedisServer::start();
        source.seed(REDIS_SEED);
        let work = tempdir();
        let config = write_config(work.path(), Some("out"), &[("cache", &source.url())]);
        let mut args = vec!["--config", s(&config), "dump", "--all"];
        if rdb {
            args.extend(["--redis-format", "rdb"]);
        }
        let run_dir = dump_ok(work.path(), &args);
        Self {
            work,
            source,
            run_dir,
        }
    }
}

#[test]
fn redis_restore_into_a_fresh_server_equals_the_source() {
    let r = RedisRun::new(false);
    let target = RedisServer::start();
    let out = restore(r.work.path(), &r.run_dir, &target.url(), &["--json"]);
    out.expect_code(0);
    let report: Value = serde_json::from_str(&out.stdout).expect("--json report");
    assert_eq!(report["rows"], REDIS_SEED_KEYS.0 + REDIS_SEED_KEYS.1);
    assert_eq!(target.fingerprints(), r.source.fingerprints());
    assert_eq!(target.snapshot(), r.source.snapshot());
    assert_eq!(target.cli(&["GET", "greeting"]).trim(), "hello world");
    assert_eq!(target.cli(&["-n", "1", "GET", "other"]).trim(), "db one");
    // The fingerprints the manifest recorded are the target's.
    let m = manifest(&r.run_dir);
    for t in db_entry(&m, "cache")["tables"].as_array().unwrap() {
        let (keys, fp) = &target.fingerprints()[t["name"].as_str().unwrap()];
        assert_eq!(t["rows"], *keys);
        assert_eq!(t["fingerprint"], fp.as_str());
    }
}

#[test]
fn redis_non_empty_target_is_refused_and_clean_replaces_it() {
    let r = RedisRun::new(false);
    let target = RedisServer::start();
    target.seed("SELECT 3\nSET stray value\n");
    restore(r.work.path(), &r.run_dir, &target.url(), &[])
        .expect_code(1)
        .stderr_contains("db3")
        .stderr_contains("hint: --clean drops them first");
    assert_eq!(target.dbsize(0), 0, "nothing may be written");
    assert_eq!(target.dbsize(3), 1);
    restore(r.work.path(), &r.run_dir, &target.url(), &["--clean"]).expect_code(0);
    assert_eq!(target.dbsize(3), 0, "--clean flushes what was there");
    assert_eq!(target.fingerprints(), r.source.fingerprints());
}

#[test]
fn redis_tampered_archive_is_corrupt() {
    let r = RedisRun::new(false);
    flip_middle_byte(&r.run_dir.join("cache.resp.zst"));
    let target = RedisServer::start();
    restore(r.work.path(), &r.run_dir, &target.url(), &[])
        .expect_code(1)
        .stderr_contains("archive cache.resp.zst is corrupt");
}

#[test]
fn redis_verify_restore_passes_and_flushes_the_scratch_server() {
    let r = RedisRun::new(false);
    let scratch = RedisServer::start();
    verify_restore(r.work.path(), &r.run_dir, &[&scratch.url()]).expect_code(0);
    let d = verify_entry(&r.run_dir);
    assert_eq!(d["ok"], true, "{d:#}");
    assert_eq!(d["restore"]["tables"], 2, "{d:#}");
    assert_eq!(
        d["restore"]["rows_compared"],
        REDIS_SEED_KEYS.0 + REDIS_SEED_KEYS.1,
        "{d:#}"
    );
    assert_eq!(d["restore"]["dropped"], true, "{d:#}");
    assert_eq!((scratch.dbsize(0), scratch.dbsize(1)), (0, 0));
}

#[test]
fn redis_rdb_archives_cannot_be_restored_natively() {
    let r = RedisRun::new(true);
    let target = RedisServer::start();
    let out = restore(r.work.path(), &r.run_dir, &target.url(), &[]);
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains("RDB");
    assert_eq!(target.dbsize(0), 0);
    restore(r.work.path(), &r.run_dir, &target.url(), &["--clean"])
        .expect_code(2)
        .stderr_contains("RDB archive");

    // Level restore: a problem, exit 1; no scratch server is needed for it.
    let out = verify_restore(r.work.path(), &r.run_dir, &[]);
    out.expect_code(1);
    assert!(
        out.all_output()
            .contains("level restore is not available for RDB archives"),
        "{}",
        out.all_output()
    );
}

/// Issue 16: `verify --level restore` checked that a Redis scratch server is empty only when
/// it came to the Redis archive, after the other engines' restores. Every scratch server is
/// checked before any work: a non-empty one stops the verification (exit 2) before a
/// PostgreSQL scratch database exists, and nothing is recorded.
#[test]
fn a_non_empty_redis_scratch_is_refused_before_any_restore() {
    let pg = small_db("verify_busy_redis_scratch", 5);
    let source = RedisServer::start();
    source.seed(REDIS_SEED);
    let scratch = RedisServer::start();
    scratch.seed("SET left-over 1\n");
    let work = tempdir();
    let run_dir = dump_ok(
        work.path(),
        &[
            "dump",
            &format!("app={}", pg.url()),
            &format!("cache={}", source.url()),
            "--to",
            "out",
        ],
    );
    let out = verify_restore(work.path(), &run_dir, &[&pg_scratch(), &scratch.url()]);
    out.expect_code(2)
        .expect_error_line()
        .stderr_contains(&format!(
            "--scratch server {} cannot be used",
            scratch.url()
        ))
        .stderr_contains("the Redis scratch server is not empty: db0 (1 key)")
        .stderr_contains("hint: nothing was restored");
    assert!(
        !out.all_output().contains("restoring"),
        "a restore started:\n{}",
        out.all_output()
    );
    let scratch_db = format!("exporter_verify_{}_app", run_id(&run_dir).to_lowercase());
    assert_eq!(
        psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{scratch_db}'")
        )
        .trim(),
        "0"
    );
    assert!(!run_dir.join("verify.json").exists(), "nothing is recorded");
    assert_eq!(scratch.dbsize(0), 1, "the scratch server is untouched");
}

/// Tablespaces: a run whose tables and index live in a tablespace the target server no
/// longer has. `restore` stops at the first assignment (exit 3) naming the tablespace, with
/// `--no-tablespaces` as the hint; `restore --no-tablespaces` puts everything in the
/// default tablespace and counts the assignments as skipped; `verify --level restore` proves
/// the data without them by default and fails with `--tablespaces`.
#[test]
fn pg_tablespace_missing_on_the_target() {
    let name = format!("exp_cli_ts_{}", std::process::id());
    let dir = std::env::temp_dir().join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let chown = Command::new("chown")
        .arg("postgres")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(chown.success());
    psql(
        "postgres",
        &format!("CREATE TABLESPACE {name} LOCATION '{}'", dir.display()),
    );
    let work = tempdir();
    let source = TestDb::with_sql(
        "ts_src",
        &format!(
            "CREATE TABLE placed (id int PRIMARY KEY USING INDEX TABLESPACE {name}, v text) TABLESPACE {name};
             CREATE INDEX placed_v ON placed (v) TABLESPACE {name};
             INSERT INTO placed SELECT i, 'v' || i FROM generate_series(1, 100) i;"
        ),
    );
    let run_dir = dump_ok(work.path(), &["dump", &source.url(), "--to", "out"]);
    drop(source);
    psql("postgres", &format!("DROP TABLESPACE {name}"));
    let _ = std::fs::remove_dir_all(&dir);

    let target = TestDb::create("ts_tgt");
    restore(work.path(), &run_dir, &target.url(), &[])
        .expect_code(3)
        .stderr_contains(&format!("SET default_tablespace = {name}"))
        .stderr_contains(&format!("the target has no tablespace \"{name}\""))
        .stderr_contains("hint: create tablespace")
        .stderr_contains("--no-tablespaces");

    let anywhere = TestDb::create("ts_any");
    let out = restore(
        work.path(),
        &run_dir,
        &anywhere.url(),
        &["--no-tablespaces", "--json"],
    );
    out.expect_code(0);
    let report: Value = serde_json::from_str(&out.stdout).expect("JSON report");
    assert_eq!(report["skipped"], 3, "{report:#}");
    assert_eq!(report["rows"], 100, "{report:#}");
    assert_eq!(
        anywhere.query(
            "SELECT count(*) FROM pg_class WHERE reltablespace <> 0 AND relnamespace = 'public'::regnamespace"
        ),
        "0"
    );

    verify_restore(work.path(), &run_dir, &[&pg_scratch()]).expect_code(0);
    let strict = run(exporter(work.path()).args([
        "verify",
        s(&run_dir),
        "--level",
        "restore",
        "--scratch",
        &pg_scratch(),
        "--tablespaces",
    ]));
    // Inconclusive, not a bad archive: exit 3 (the scratch server lacks the tablespace), the
    // hint says how to get on, and nobody is told to dump again.
    strict.expect_code(3);
    assert!(
        strict
            .stdout
            .contains(&format!("the target has no tablespace \"{name}\"")),
        "{}",
        strict.all_output()
    );
    assert!(
        strict.stderr.contains("verify without --tablespaces"),
        "{}",
        strict.all_output()
    );
    assert!(
        !strict.stderr.contains("dump again"),
        "{}",
        strict.all_output()
    );
}

/// Secrets an archive holds (a user mapping's password, stored by the source as pg_dump
/// stores it) never reach the log, also with `-vv`: the database drivers log each statement
/// they send at DEBUG, which printed the `CREATE USER MAPPING … password '…'` in full.
#[test]
fn pg_secrets_in_the_archive_stay_out_of_the_debug_log() {
    let source = TestDb::create("rs_secret");
    source.run_script(
        "CREATE FOREIGN DATA WRAPPER rs_secret_w;
         CREATE SERVER rs_secret_s FOREIGN DATA WRAPPER rs_secret_w;
         CREATE USER MAPPING FOR postgres SERVER rs_secret_s OPTIONS (user 'app', password 'FdwSecretPW-42');
         CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    let work = tempdir();
    let run_dir = dump_ok(work.path(), &["dump", &source.url(), "--to", "out"]);
    let file = format!("{}.sql.zst", source.name);
    let script = String::from_utf8(zstd_decompress(&run_dir.join(&file))).expect("UTF-8");
    assert!(
        script.contains("FdwSecretPW-42"),
        "the archive keeps the mapping as pg_dump does:\n{script}"
    );
    let target = TestDb::create("rs_secret_r");
    let out = run(exporter(work.path()).args([
        "-vv",
        "restore",
        s(&run_dir),
        "--into",
        &target.url(),
        "--jobs",
        "2",
    ]));
    assert_eq!(out.code, 0, "{}", out.all_output());
    assert!(
        out.stderr.contains("DEBUG"),
        "-vv logs at DEBUG: {}",
        out.all_output()
    );
    assert!(
        !out.all_output().contains("FdwSecretPW-42"),
        "{}",
        out.all_output()
    );
    let out = run(exporter(work.path()).args([
        "-vv",
        "verify",
        s(&run_dir),
        "--level",
        "restore",
        "--scratch",
        &pg_scratch(),
    ]));
    assert_eq!(out.code, 0, "{}", out.all_output());
    assert!(
        !out.all_output().contains("FdwSecretPW-42"),
        "{}",
        out.all_output()
    );
}

/// A scratch server whose role may not run a statement of a good archive (an event trigger
/// needs a superuser; the role has CREATEDB only): the verification is inconclusive — exit 3,
/// a hint about the scratch role, no "dump again", no `verify.json` written — not a bad
/// archive (it was reported `FAILED`, exit 1, "dump again").
#[test]
fn pg_scratch_role_without_a_privilege_the_archive_needs_is_inconclusive() {
    let role = crate::support::TestRole::create("vscr");
    psql("postgres", &format!("ALTER ROLE {} CREATEDB", role.0));
    let source = TestDb::create("vscr_src");
    source.run_script(
        "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);
         CREATE FUNCTION vscr_note() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN NULL; END';
         CREATE EVENT TRIGGER vscr_trg ON ddl_command_end EXECUTE FUNCTION vscr_note();",
    );
    let work = tempdir();
    let run_dir = dump_ok(work.path(), &["dump", &source.url(), "--to", "out"]);
    let scratch = format!("postgres://{}@{PG_HOST}:{PG_PORT}/postgres", role.0);
    let out = verify_restore(work.path(), &run_dir, &[&scratch]);
    assert_eq!(out.code, 3, "{}", out.all_output());
    assert!(
        out.all_output().contains("CREATE EVENT TRIGGER"),
        "the statement is named: {}",
        out.all_output()
    );
    assert!(
        out.stderr
            .contains("the scratch server's role may not run a statement of the archive"),
        "{}",
        out.all_output()
    );
    assert!(
        !out.all_output().contains("dump again"),
        "{}",
        out.all_output()
    );
    assert!(!run_dir.join("verify.json").exists(), "nothing is recorded");
    // The same archive through a superuser scratch passes.
    verify_restore(work.path(), &run_dir, &[&pg_scratch()]).expect_code(0);
}

/// Ctrl-C during a long statement of a restore: the exit is 3 and the server stops the
/// statement too, within a few seconds, instead of running it to the end and committing it
/// after exporter has reported it stopped (found by trying: a `CREATE INDEX` committed
/// seconds after the exit). The restore sessions ask the server to check their socket while a
/// statement runs (`client_connection_check_interval`).
#[test]
fn pg_an_interrupted_restore_leaves_nothing_running_on_the_server() {
    let source = small_db("rs_int", 10);
    let work = tempdir();
    let run_dir = dump_ok(work.path(), &["dump", &source.url(), "--to", "out"]);
    let file = format!("{}.sql.zst", source.name);
    let mut payload = b"SELECT pg_catalog.pg_sleep(60);\n".to_vec();
    payload.extend(zstd_decompress(&run_dir.join(&file)));
    reseal_payload(&run_dir, &source.name, &file, &payload);
    let target = TestDb::create("rs_int_r");
    let sleeping = || {
        psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()",
                target.name
            ),
        )
        .trim()
        .to_owned()
    };
    let child = spawn_exporter(
        work.path(),
        &[
            "restore",
            s(&run_dir),
            "--into",
            &target.url(),
            "--jobs",
            "2",
        ],
    );
    let ((), out) = interrupt_when(
        child,
        || (sleeping() != "0").then_some(()),
        "exporter restore",
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("interrupted by SIGINT"),
        "{}",
        out.stderr
    );
    let exited = Instant::now();
    while sleeping() != "0" {
        assert!(
            exited.elapsed() < Duration::from_secs(10),
            "the server still runs the restore's statement {:?} after exporter exited",
            exited.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A later check at a lower level (`verify` with its default level) keeps the restore-level
/// proof in `verify.json` — the record the teardown gate reads — and says so; it used to
/// replace it with a level `decompress` record, which the gate does not accept.
#[test]
fn a_lower_level_check_keeps_the_restore_level_proof() {
    let source = small_db("rs_keep", 20);
    let work = tempdir();
    let run_dir = dump_ok(work.path(), &["dump", &source.url(), "--to", "out"]);
    verify_restore(work.path(), &run_dir, &[&pg_scratch()]).expect_code(0);
    let proof = read_json(&run_dir.join("verify.json"));
    assert_eq!(proof["level"], "restore");
    let out = run(exporter(work.path()).args(["verify", s(&run_dir)]));
    assert_eq!(out.code, 0, "{}", out.all_output());
    assert!(
        out.stdout.contains(
            "verified at level decompress; verify.json keeps the level restore verification of"
        ),
        "{}",
        out.all_output()
    );
    assert_eq!(
        read_json(&run_dir.join("verify.json")),
        proof,
        "the proof is unchanged"
    );
    // A failing check replaces it: the archive is bad now, whatever it was.
    let file = format!("{}.sql.zst", source.name);
    let path = run_dir.join(&file);
    let mut bytes = std::fs::read(&path).expect("read the archive");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).expect("write the archive");
    let out = run(exporter(work.path()).args(["verify", s(&run_dir)]));
    assert_eq!(out.code, 1, "{}", out.all_output());
    let record = read_json(&run_dir.join("verify.json"));
    assert_eq!(record["level"], "decompress");
    assert_eq!(record["ok"], false);
}
