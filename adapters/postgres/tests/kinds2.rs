//! Object kinds the dump once refused, part 2 (issue 18, PARITY.md): range types with a
//! canonical function, relations in a tablespace, extension configuration tables, security
//! labels, and comments on every kind the dump writes (large objects' comments and grants
//! too). Each is created in a throw-away database, dumped through the adapter, restored with
//! stock `psql -v ON_ERROR_STOP=1` and with the adapter's own restore (`PostgresTarget`,
//! serial and parallel), and compared by pg_dump itself and by catalog rows.

#![allow(
    clippy::disallowed_methods,
    reason = "tests may use std::fs and std::process (clippy.toml)"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use common::{Role, TestDb, assert_pg_dump_equal, dump, restore, round_trip, sql, unique};
use exporter_contract::{
    DumpOptions, EngineError, ErrorKind, PayloadFormat, RestoreOptions, RestoreSummary, Target,
};
use exporter_postgres::{PostgresTarget, fingerprint_database};
use futures::StreamExt;
use futures::stream::BoxStream;

/// `script` as a stream of 64 KiB chunks.
fn body(script: &[u8]) -> BoxStream<'static, Result<Bytes, EngineError>> {
    let mut rest = Bytes::copy_from_slice(script);
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        chunks.push(Ok(rest.split_to((64 << 10).min(rest.len()))));
    }
    futures::stream::iter(chunks).boxed()
}

/// Restore `script` into `db` with the adapter's own restore (`exporter restore`'s engine).
async fn restore_native(
    script: &[u8],
    db: &TestDb,
    options: RestoreOptions,
) -> Result<RestoreSummary, EngineError> {
    PostgresTarget::new(db.url())
        .restore(PayloadFormat::Sql, body(script), options)
        .await
}

/// Restore `script` natively on `jobs` connections into a fresh database and check that it
/// has the source's fingerprints and, for pg_dump, the source's schema and data.
async fn native_round_trip(source: &TestDb, script: &[u8], jobs: usize) -> TestDb {
    let target = TestDb::new("native");
    restore_native(script, &target, RestoreOptions::default().with_jobs(jobs))
        .await
        .expect("the native restore succeeds");
    assert_native_equal(source, &target).await;
    target
}

/// Assert that psql printed nothing but the warning every publication gets from a server
/// whose `wal_level` is not `logical` (pg_dump's restore prints the same).
fn assert_only_publication_warnings(stderr: &str) {
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("wal_level is insufficient to publish logical changes")
                || line.contains("Set wal_level to \"logical\""),
            "the restore printed errors or warnings: {stderr}"
        );
    }
}

/// Fingerprints and pg_dump of `target` equal `source`'s.
async fn assert_native_equal(source: &TestDb, target: &TestDb) {
    assert_eq!(
        fingerprint_database(&target.url()).await.unwrap(),
        fingerprint_database(&source.url()).await.unwrap(),
        "restored content equals the source"
    );
    assert_pg_dump_equal(&source.name, &target.name);
}

/// Byte offset of `needle` in `text`, or a panic naming it.
fn position(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} is not in the script:\n{text}"))
}

/// A range type whose canonical function takes and returns it (written in the `internal`
/// language over `int4range_canonical`, as a C extension would), with a multirange name, a
/// `subtype_diff`, a comment and an owner; a SQL function, a table and a view over it. The
/// dump creates the shell first, then the canonical function, then the range type (pg_dump's
/// `dumpShellType` / `dumpRangeType`); both restores canonicalise values as the source does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_type_with_a_canonical_function() {
    let owner = Role::new("range_owner");
    let source = TestDb::new("kinds2_range");
    source.sql(&format!(
        "CREATE SCHEMA rng;
         CREATE TYPE rng.evens;
         CREATE FUNCTION rng.evens_canonical(rng.evens) RETURNS rng.evens
           STRICT IMMUTABLE LANGUAGE internal AS 'int4range_canonical';
         CREATE TYPE rng.evens AS RANGE (subtype = int4, canonical = rng.evens_canonical,
           subtype_diff = int4range_subdiff, multirange_type_name = rng.evens_many);
         COMMENT ON TYPE rng.evens IS 'discrete';
         ALTER TYPE rng.evens OWNER TO {owner};
         CREATE FUNCTION rng.width(rng.evens) RETURNS int LANGUAGE sql IMMUTABLE
           AS 'SELECT upper($1) - lower($1)';
         CREATE TABLE rng.t (id int PRIMARY KEY, r rng.evens, m rng.evens_many);
         INSERT INTO rng.t VALUES (1, '[1,3]', '{{[1,3], [7,9)}}'), (2, '(0,5)', NULL);
         CREATE VIEW rng.v AS SELECT id, rng.width(r) AS w, '[2,4]'::rng.evens AS fixed FROM rng.t;",
        owner = owner.0
    ));
    let (target, script, _) = round_trip(&source).await;
    let text = String::from_utf8(script.clone()).expect("utf-8");
    let shell = position(&text, "CREATE TYPE rng.evens;\n");
    let canonical = position(&text, "CREATE OR REPLACE FUNCTION rng.evens_canonical(");
    let range = position(
        &text,
        "CREATE TYPE rng.evens AS RANGE (\n    subtype = integer,\n    multirange_type_name = rng.evens_many,\n    canonical = rng.evens_canonical,\n    subtype_diff = int4range_subdiff\n);\n",
    );
    let width = position(&text, "CREATE OR REPLACE FUNCTION rng.width(");
    assert!(
        shell < canonical && canonical < range && range < width,
        "shell, canonical function, range type, then what uses the type"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    let calls = "SELECT id, r, m, w, fixed FROM rng.t JOIN rng.v USING (id) ORDER BY id";
    assert_eq!(
        source.sql(calls),
        "1|[1,4)|{[1,4),[7,9)}|3|[2,5)\n2|[1,5)||4|[2,5)\n"
    );
    assert_eq!(target.sql(calls), source.sql(calls));
    let range_row = "SELECT rngcanonical::regproc, rngsubdiff::regproc, rngmultitypid::regtype,
                            obj_description(rngtypid, 'pg_type'), pg_get_userbyid(typowner)
                       FROM pg_range JOIN pg_type ON pg_type.oid = rngtypid
                      WHERE rngtypid = 'rng.evens'::regtype";
    assert_eq!(target.sql(range_row), source.sql(range_row));
    let native = native_round_trip(&source, &script, 2).await;
    assert_eq!(native.sql(calls), source.sql(calls));
}

/// A tablespace of the server for the lifetime of the value: its directory made for the
/// server's user, as `CREATE TABLESPACE` needs it; dropped (after every database using it,
/// so declare it first) with its directory.
struct Tablespace {
    name: String,
    dir: PathBuf,
}

impl Tablespace {
    fn new(tag: &str) -> Self {
        let name = unique(tag);
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir(&dir).expect("tablespace directory");
        let chown = Command::new("chown")
            .arg("postgres")
            .arg(&dir)
            .status()
            .expect("chown runs");
        assert!(chown.success(), "chown postgres {}", dir.display());
        sql(
            "postgres",
            &format!("CREATE TABLESPACE {name} LOCATION '{}'", dir.display()),
        );
        Self { name, dir }
    }
}

impl Drop for Tablespace {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-h",
                common::HOST,
                "-U",
                common::SUPERUSER,
                "-d",
                "postgres",
                "-c",
            ])
            .arg(format!("DROP TABLESPACE IF EXISTS {}", self.name))
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where each relation of schema `place` lives: `name|tablespace` (`-` for the default).
const PLACEMENT: &str = "SELECT c.relname, COALESCE(t.spcname, '-') FROM pg_class c
                           LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace
                          WHERE c.relnamespace = 'place'::regnamespace AND c.relkind <> 'S'
                          ORDER BY 1";

/// Tables, a partitioned table with a partition in its tablespace and one in the default
/// tablespace (which `PARTITION OF` alone would put in its parent's), a materialized view,
/// indexes, a primary key's and a unique constraint's index, each in a tablespace or in the
/// default one (in either combination with its table). Both restores put each where the source has it
/// (pg_dump's `SET default_tablespace` before each); `RestoreOptions::tablespaces = false`
/// (`restore --no-tablespaces`) skips every assignment and puts everything in the default;
/// a target without the tablespace fails at the assignment, naming the tablespace, with the
/// way around it as the hint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relations_in_a_tablespace() {
    let ts = Tablespace::new("ts");
    let source = TestDb::new("kinds2_ts");
    source.sql(&format!(
        "CREATE SCHEMA place;
         CREATE TABLE place.fast (id int GENERATED ALWAYS AS IDENTITY, v text,
           CONSTRAINT fast_pkey PRIMARY KEY (id) USING INDEX TABLESPACE {ts},
           CONSTRAINT fast_v_key UNIQUE (v)) TABLESPACE {ts};
         CREATE INDEX fast_lower ON place.fast (lower(v));
         CREATE TABLE place.slow (id int, note text);
         CREATE INDEX slow_note ON place.slow (note) TABLESPACE {ts};
         CREATE TABLE place.parted (k int, v text) PARTITION BY RANGE (k) TABLESPACE {ts};
         CREATE TABLE place.parted_1 PARTITION OF place.parted FOR VALUES FROM (0) TO (100);
         CREATE TABLE place.parted_2 PARTITION OF place.parted FOR VALUES FROM (100) TO (200)
           TABLESPACE pg_default;
         CREATE INDEX parted_k ON place.parted (k) TABLESPACE {ts};
         INSERT INTO place.fast (v) SELECT 'v' || g FROM generate_series(1, 50) g;
         INSERT INTO place.slow SELECT g, 'n' || g FROM generate_series(1, 20) g;
         INSERT INTO place.parted SELECT g, 'p' || g FROM generate_series(0, 149) g;
         CREATE MATERIALIZED VIEW place.mv TABLESPACE {ts} AS SELECT id, v FROM place.fast;",
        ts = ts.name
    ));
    let expected = format!(
        "fast|{ts}\nfast_lower|-\nfast_pkey|{ts}\nfast_v_key|-\nmv|{ts}\nparted|{ts}\nparted_1|{ts}\n\
         parted_1_k_idx|{ts}\nparted_2|-\nparted_2_k_idx|{ts}\nparted_k|{ts}\nslow|-\nslow_note|{ts}\n",
        ts = ts.name
    );
    assert_eq!(source.sql(PLACEMENT), expected);

    let (target, script, summary) = round_trip(&source).await;
    let text = String::from_utf8(script.clone()).expect("utf-8");
    let set = format!("SET default_tablespace = {};\n", ts.name);
    assert!(
        text.contains(&format!(
            "{set}CREATE INDEX slow_note ON place.slow USING btree (note);\nSET default_tablespace = '';\n"
        )),
        "{text}"
    );
    // The table, the partitioned table, the partition, the materialized view, the key, the
    // plain index, and the partitioned index with each partition's own (created one by one
    // and attached, as pg_dump does).
    assert_eq!(text.matches(&set).count(), 9, "{text}");
    assert_pg_dump_equal(&source.name, &target.name);
    assert_eq!(target.sql(PLACEMENT), expected);
    assert_eq!(target.sql("SELECT count(*) FROM place.mv"), "50\n");
    assert_eq!(
        target.sql("SELECT count(*) FROM place.parted_2"),
        "50\n",
        "the partition in the default tablespace is whole"
    );

    let native = native_round_trip(&source, &script, 3).await;
    assert_eq!(native.sql(PLACEMENT), expected, "the parallel restore");

    // restore --no-tablespaces: everything in the target's default tablespace.
    let anywhere = TestDb::new("no_ts");
    let skipped = restore_native(
        &script,
        &anywhere,
        RestoreOptions::default()
            .with_tablespaces(false)
            .with_jobs(2),
    )
    .await
    .expect("the restore without tablespaces succeeds");
    assert_eq!(skipped.skipped, 9, "each assignment is skipped and counted");
    assert!(
        anywhere.sql(PLACEMENT).lines().all(|l| l.ends_with("|-")),
        "{}",
        anywhere.sql(PLACEMENT)
    );
    assert_eq!(
        fingerprint_database(&anywhere.url()).await.unwrap(),
        summary.tables
    );

    // A target without the tablespace: the assignment fails, naming it.
    let gone = format!("{}_gone", ts.name);
    let elsewhere = text.replace(&set, &format!("SET default_tablespace = {gone};\n"));
    let missing = TestDb::new("missing_ts");
    let err = restore_native(elsewhere.as_bytes(), &missing, RestoreOptions::default())
        .await
        .expect_err("a missing tablespace fails the restore");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.message().starts_with(&format!(
            "the target has no tablespace \"{gone}\" (SQLSTATE 22023)"
        )),
        "{err}"
    );
    assert!(
        err.object()
            .is_some_and(|o| o.contains(&format!("SET default_tablespace = {gone}"))),
        "{err:?}"
    );
    assert!(
        err.hint().is_some_and(|h| h.contains("--no-tablespaces")),
        "{err:?}"
    );
}

/// An extension installed for the test into the server's extension directory (a control
/// file and a `--1.0.sql` script), removed again when the value is dropped (declare it
/// before the databases that create it).
struct TestExtension {
    name: String,
    files: Vec<PathBuf>,
}

impl TestExtension {
    fn new(tag: &str, script: &str) -> Self {
        let name = unique(tag);
        let share = sql(
            "postgres",
            "SELECT setting FROM pg_catalog.pg_config WHERE name = 'SHAREDIR'",
        );
        let dir = Path::new(share.trim()).join("extension");
        let control = dir.join(format!("{name}.control"));
        let sql_file = dir.join(format!("{name}--1.0.sql"));
        std::fs::write(
            &control,
            "comment = 'exporter test: configuration tables'\n\
             default_version = '1.0'\nrelocatable = false\n",
        )
        .expect("control file");
        std::fs::write(&sql_file, script).expect("extension script");
        Self {
            name,
            files: vec![control, sql_file],
        }
    }
}

impl Drop for TestExtension {
    fn drop(&mut self) {
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Configuration tables of an extension (`pg_extension_config_dump`): one with a condition
/// that leaves out the rows the extension's script inserts, one without (every row), a
/// configuration sequence, and an ordinary member table whose rows are not dumped. The dump
/// copies exactly the rows the condition selects and the sequence's position (pg_dump's
/// `processExtensionTables`); after `CREATE EXTENSION` and the restore the tables hold the
/// extension's rows and the users' again, the member table none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_configuration_tables() {
    let ext = TestExtension::new(
        "cfgext",
        "CREATE TABLE @extschema@.settings (id int PRIMARY KEY, name text NOT NULL,
           standard bool NOT NULL DEFAULT false);
         INSERT INTO @extschema@.settings VALUES (1, 'shipped', true), (2, 'also shipped', true);
         SELECT pg_catalog.pg_extension_config_dump('@extschema@.settings', 'WHERE NOT standard');
         CREATE TABLE @extschema@.notes (note text);
         SELECT pg_catalog.pg_extension_config_dump('@extschema@.notes', '');
         CREATE SEQUENCE @extschema@.ticket;
         SELECT pg_catalog.pg_extension_config_dump('@extschema@.ticket', '');
         CREATE TABLE @extschema@.cache (k text);\n",
    );
    let source = TestDb::new("kinds2_cfg");
    source.sql(&format!(
        "CREATE SCHEMA cfg;
         CREATE EXTENSION {ext} SCHEMA cfg;
         INSERT INTO cfg.settings VALUES (3, 'mine', false), (4, E'tab\\there', false);
         INSERT INTO cfg.notes VALUES ('a'), ('b');
         SELECT nextval('cfg.ticket') FROM generate_series(1, 3);
         INSERT INTO cfg.cache VALUES ('transient');
         CREATE TABLE public.app (id int REFERENCES cfg.settings);
         INSERT INTO public.app VALUES (3), (1);",
        ext = ext.name
    ));
    let (target, script, summary) = round_trip(&source).await;
    let text = String::from_utf8(script.clone()).expect("utf-8");
    assert!(
        text.contains("COPY cfg.settings (id, name, standard) FROM stdin;\n3\tmine\tf\n4\ttab\\there\tf\n\\.\n"),
        "{text}"
    );
    assert!(
        text.contains("SELECT pg_catalog.setval('cfg.ticket', 3, true);\n"),
        "{text}"
    );
    assert!(
        !text.contains("transient"),
        "a member table's rows were dumped"
    );
    let rows: Vec<(&str, u64)> = summary
        .tables
        .iter()
        .map(|t| (t.name.as_str(), t.rows))
        .collect();
    assert_eq!(
        rows,
        [("cfg.notes", 2), ("cfg.settings", 2), ("public.app", 2)]
    );
    assert_pg_dump_equal(&source.name, &target.name);
    let contents = "SELECT (SELECT string_agg(id || ':' || name || ':' || standard, ',' ORDER BY id) FROM cfg.settings),
                           (SELECT string_agg(note, ',' ORDER BY note) FROM cfg.notes),
                           (SELECT last_value FROM cfg.ticket), (SELECT count(*) FROM cfg.cache)";
    assert_eq!(
        source.sql(contents),
        "1:shipped:true,2:also shipped:true,3:mine:false,4:tab\there:false|a,b|3|1\n"
    );
    assert_eq!(
        target.sql(contents),
        "1:shipped:true,2:also shipped:true,3:mine:false,4:tab\there:false|a,b|3|0\n"
    );
    let native = native_round_trip(&source, &script, 2).await;
    assert_eq!(native.sql(contents), target.sql(contents));
}

/// PostgreSQL's test label provider (`dummy_seclabel`, `fixtures/postgres/dummy_seclabel`)
/// built with PGXS against the running server's major version into a directory the server
/// can read; removed with the value.
struct LabelProvider {
    dir: tempfile::TempDir,
}

impl LabelProvider {
    fn build() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let fixture = common::fixture("dummy_seclabel");
        for file in ["dummy_seclabel.c", "Makefile"] {
            std::fs::copy(fixture.join(file), dir.path().join(file)).unwrap();
        }
        let major = sql("postgres", "SHOW server_version_num")
            .trim()
            .parse::<u32>()
            .unwrap()
            / 10000;
        let versioned = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin/pg_config"));
        let pg_config = if versioned.exists() {
            versioned
        } else {
            PathBuf::from("pg_config")
        };
        let out = Command::new("make")
            .arg("-C")
            .arg(dir.path())
            .arg("with_llvm=no")
            .arg(format!("PG_CONFIG={}", pg_config.display()))
            .output()
            .expect("make runs (the test needs make, gcc and the server's development files)");
        assert!(
            out.status.success(),
            "dummy_seclabel did not build (needs gcc, make and postgresql-server-dev-{major}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The server runs as another user: it must read the library.
        let chmod = Command::new("chmod")
            .arg("755")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(chmod.success());
        Self { dir }
    }

    /// Have every new session of `db` load the provider.
    fn preload(&self, db: &TestDb) {
        db.sql(&format!(
            "ALTER DATABASE {} SET session_preload_libraries = '{}'",
            db.name,
            self.dir.path().join("dummy_seclabel").display()
        ));
    }
}

/// The labels of a database, as `pg_seclabels` names them.
const LABELS: &str = "SELECT objtype, objname, provider, label FROM pg_seclabels ORDER BY 1, 2";

/// Security labels on every kind of object the dump writes that takes one — schema (also
/// `public`), table, column, view, materialized view, sequence, enum and composite type,
/// domain, function, procedure, aggregate over `*`, publication, large object — restored as
/// they were where the provider is loaded (pg_dump's `dumpSecLabel`); a label whose object
/// is gone is skipped with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_labels_on_every_kind_that_takes_one() {
    let provider = LabelProvider::build();
    let source = TestDb::new("kinds2_label");
    provider.preload(&source);
    source.sql(
        "CREATE SCHEMA lab;
         CREATE TABLE lab.t (id int, secret text);
         INSERT INTO lab.t VALUES (1, 'x');
         CREATE VIEW lab.v AS SELECT id FROM lab.t;
         CREATE MATERIALIZED VIEW lab.mv AS SELECT id FROM lab.t;
         CREATE SEQUENCE lab.s;
         CREATE TYPE lab.e AS ENUM ('x');
         CREATE TYPE lab.c AS (a int);
         CREATE DOMAIN lab.d AS int;
         CREATE FUNCTION lab.f(int) RETURNS int LANGUAGE sql AS 'SELECT $1';
         CREATE PROCEDURE lab.p() LANGUAGE sql AS 'SELECT 1';
         CREATE AGGREGATE lab.cnt(*) (SFUNC = int8inc, STYPE = int8, INITCOND = '0');
         CREATE PUBLICATION lab_pub;
         SELECT lo_from_bytea(4243, 'labelled');
         SECURITY LABEL FOR dummy ON SCHEMA lab IS 'classified';
         SECURITY LABEL FOR dummy ON SCHEMA public IS 'unclassified';
         SECURITY LABEL FOR dummy ON TABLE lab.t IS 'secret';
         SECURITY LABEL FOR dummy ON COLUMN lab.t.secret IS 'top secret';
         SECURITY LABEL FOR dummy ON VIEW lab.v IS 'unclassified';
         SECURITY LABEL FOR dummy ON MATERIALIZED VIEW lab.mv IS 'classified';
         SECURITY LABEL FOR dummy ON SEQUENCE lab.s IS 'classified';
         SECURITY LABEL FOR dummy ON TYPE lab.e IS 'classified';
         SECURITY LABEL FOR dummy ON TYPE lab.c IS 'unclassified';
         SECURITY LABEL FOR dummy ON DOMAIN lab.d IS 'secret';
         SECURITY LABEL FOR dummy ON FUNCTION lab.f(int) IS 'classified';
         SECURITY LABEL FOR dummy ON PROCEDURE lab.p() IS 'classified';
         SECURITY LABEL FOR dummy ON AGGREGATE lab.cnt(*) IS 'unclassified';
         SECURITY LABEL FOR dummy ON PUBLICATION lab_pub IS 'classified';
         SECURITY LABEL FOR dummy ON LARGE OBJECT 4243 IS 'top secret';
         INSERT INTO pg_catalog.pg_seclabel VALUES
           (4000000003, 'pg_catalog.pg_class'::regclass, 0, 'dummy', 'orphan label');",
    );
    let labels = source.sql(LABELS);
    assert_eq!(labels.lines().count(), 15, "{labels}");
    let (script, summary) = dump(source.url(), DumpOptions::default())
        .await
        .expect("the dump succeeds");
    let text = String::from_utf8(script.clone()).expect("utf-8");
    for line in [
        "SECURITY LABEL FOR dummy ON COLUMN lab.t.secret IS 'top secret';\n",
        "SECURITY LABEL FOR dummy ON AGGREGATE lab.cnt(*) IS 'unclassified';\n",
        "SECURITY LABEL FOR dummy ON LARGE OBJECT 4243 IS 'top secret';\n",
        "SECURITY LABEL FOR dummy ON SCHEMA public IS 'unclassified';\n",
    ] {
        assert!(text.contains(line), "{line:?} is missing:\n{text}");
    }
    assert!(
        !text.contains("orphan label"),
        "an orphaned label was dumped"
    );
    assert_eq!(
        summary.warnings,
        [
            "skipped a security label on an object that no longer exists (pg_seclabel row: classoid 1259, objoid 4000000003, objsubid 0)"
        ]
    );

    let target = TestDb::new("label_psql");
    provider.preload(&target);
    assert_only_publication_warnings(&restore(&script, &target.name));
    assert_eq!(target.sql(LABELS), labels);
    assert_native_equal(&source, &target).await;

    let native = TestDb::new("label_native");
    provider.preload(&native);
    restore_native(&script, &native, RestoreOptions::default().with_jobs(2))
        .await
        .expect("the native restore succeeds");
    assert_eq!(native.sql(LABELS), labels);
    assert_native_equal(&source, &native).await;
}

/// Every comment of a database, by `pg_identify_object` type and identity (large objects by
/// their OID, which the restore keeps).
const COMMENTS: &str = "SELECT (pg_identify_object(classoid, objoid, objsubid)).type,
                               (pg_identify_object(classoid, objoid, objsubid)).identity, description
                          FROM pg_description
                         WHERE objoid >= 16384 OR classoid = 'pg_largeobject'::regclass
                            OR (classoid = 'pg_namespace'::regclass AND objoid = 'public'::regnamespace)
                         ORDER BY 1, 2";

/// A comment on one object of every kind the dump writes — among them a statistics object,
/// whose comment made the dump fail ("cannot be exported faithfully"), and a large object
/// created with an OID below 16384, whose comment was left out — and large objects' owners
/// and grants. The restore carries every
/// comment (pg_dump's `dumpComment` for each kind), the owner and the grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_on_every_kind_and_large_objects() {
    let reader = Role::new("lo_reader");
    let source = TestDb::new("kinds2_comment");
    source.sql(&format!(
        "CREATE SCHEMA com;
         COMMENT ON SCHEMA com IS 'schema';
         COMMENT ON SCHEMA public IS 'the public schema';
         CREATE EXTENSION citext SCHEMA com;
         COMMENT ON EXTENSION citext IS 'extension';
         CREATE COLLATION com.coll FROM \"C\";
         COMMENT ON COLLATION com.coll IS 'collation';
         CREATE TYPE com.mood AS ENUM ('sad', 'ok');
         COMMENT ON TYPE com.mood IS 'enum';
         CREATE TYPE com.pair AS (a int, b int);
         COMMENT ON TYPE com.pair IS 'composite';
         COMMENT ON COLUMN com.pair.a IS 'composite column';
         CREATE DOMAIN com.pos AS int CONSTRAINT pos_check CHECK (VALUE > 0);
         COMMENT ON DOMAIN com.pos IS 'domain';
         COMMENT ON CONSTRAINT pos_check ON DOMAIN com.pos IS 'domain constraint';
         CREATE TYPE com.span AS RANGE (subtype = int8);
         COMMENT ON TYPE com.span IS 'range';
         CREATE TYPE com.never;
         COMMENT ON TYPE com.never IS 'shell';
         CREATE TYPE com.big;
         CREATE FUNCTION com.big_in(cstring) RETURNS com.big STRICT IMMUTABLE LANGUAGE internal AS 'int8in';
         CREATE FUNCTION com.big_out(com.big) RETURNS cstring STRICT IMMUTABLE LANGUAGE internal AS 'int8out';
         CREATE TYPE com.big (input = com.big_in, output = com.big_out, like = int8);
         COMMENT ON TYPE com.big IS 'base type';
         CREATE FUNCTION com.f(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1';
         COMMENT ON FUNCTION com.f(int) IS 'function';
         CREATE PROCEDURE com.p() LANGUAGE sql AS 'SELECT 1';
         COMMENT ON PROCEDURE com.p() IS 'procedure';
         CREATE AGGREGATE com.cnt(*) (SFUNC = int8inc, STYPE = int8, INITCOND = '0');
         COMMENT ON AGGREGATE com.cnt(*) IS 'aggregate';
         CREATE FUNCTION com.same(int, int) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT $1 = $2';
         CREATE OPERATOR com.=== (FUNCTION = com.same, LEFTARG = int, RIGHTARG = int);
         COMMENT ON OPERATOR com.===(int, int) IS 'operator';
         CREATE OPERATOR FAMILY com.fam USING btree;
         COMMENT ON OPERATOR FAMILY com.fam USING btree IS 'operator family';
         CREATE OPERATOR CLASS com.cls FOR TYPE int USING btree FAMILY com.fam AS
           OPERATOR 1 <, OPERATOR 3 =, FUNCTION 1 btint4cmp(int, int);
         COMMENT ON OPERATOR CLASS com.cls USING btree IS 'operator class';
         CREATE TEXT SEARCH DICTIONARY com.dict (TEMPLATE = simple);
         COMMENT ON TEXT SEARCH DICTIONARY com.dict IS 'dictionary';
         CREATE TEXT SEARCH CONFIGURATION com.cfg (COPY = simple);
         COMMENT ON TEXT SEARCH CONFIGURATION com.cfg IS 'configuration';
         CREATE CAST (com.mood AS int8) WITH INOUT;
         COMMENT ON CAST (com.mood AS int8) IS 'cast';
         CREATE TRANSFORM FOR int LANGUAGE SQL (FROM SQL WITH FUNCTION prsd_lextype(internal),
           TO SQL WITH FUNCTION int4recv(internal));
         COMMENT ON TRANSFORM FOR int LANGUAGE sql IS 'transform';
         CREATE FOREIGN DATA WRAPPER com_fdw;
         COMMENT ON FOREIGN DATA WRAPPER com_fdw IS 'foreign-data wrapper';
         CREATE SERVER com_srv FOREIGN DATA WRAPPER com_fdw;
         COMMENT ON SERVER com_srv IS 'server';
         CREATE ACCESS METHOD com_am TYPE TABLE HANDLER heap_tableam_handler;
         COMMENT ON ACCESS METHOD com_am IS 'access method';
         CREATE SEQUENCE com.seq;
         COMMENT ON SEQUENCE com.seq IS 'sequence';
         CREATE TABLE com.t (id int CONSTRAINT t_pkey PRIMARY KEY, v text CONSTRAINT v_check CHECK (v <> ''),
           n int, m com.mood);
         COMMENT ON TABLE com.t IS 'table';
         COMMENT ON COLUMN com.t.v IS 'column';
         COMMENT ON CONSTRAINT t_pkey ON com.t IS 'primary key';
         COMMENT ON CONSTRAINT v_check ON com.t IS 'check';
         CREATE INDEX t_v ON com.t (v);
         COMMENT ON INDEX com.t_v IS 'index';
         CREATE STATISTICS com.t_stats (dependencies) ON id, n FROM com.t;
         COMMENT ON STATISTICS com.t_stats IS 'statistics';
         CREATE FUNCTION com.touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
         CREATE TRIGGER t_touch BEFORE INSERT ON com.t FOR EACH ROW EXECUTE FUNCTION com.touch();
         COMMENT ON TRIGGER t_touch ON com.t IS 'trigger';
         CREATE RULE t_keep AS ON DELETE TO com.t DO INSTEAD NOTHING;
         COMMENT ON RULE t_keep ON com.t IS 'rule';
         CREATE POLICY t_own ON com.t USING (true);
         COMMENT ON POLICY t_own ON com.t IS 'policy';
         CREATE VIEW com.v AS SELECT id, v FROM com.t;
         COMMENT ON VIEW com.v IS 'view';
         COMMENT ON COLUMN com.v.v IS 'view column';
         CREATE MATERIALIZED VIEW com.mv AS SELECT id, v FROM com.t;
         COMMENT ON MATERIALIZED VIEW com.mv IS 'materialized view';
         COMMENT ON COLUMN com.mv.v IS 'materialized view column';
         CREATE PUBLICATION com_pub FOR TABLE com.t;
         COMMENT ON PUBLICATION com_pub IS 'publication';
         INSERT INTO com.t VALUES (1, 'one', 1, 'ok'), (2, 'two', 2, 'sad');
         SELECT lo_from_bytea(4242, 'low oid'), lo_from_bytea(0, 'any oid');
         COMMENT ON LARGE OBJECT 4242 IS 'large object below 16384';
         ALTER LARGE OBJECT 4242 OWNER TO {reader};
         GRANT SELECT, UPDATE ON LARGE OBJECT 4242 TO PUBLIC;
         DO $$ BEGIN
           EXECUTE format('COMMENT ON LARGE OBJECT %s IS %L', (SELECT max(oid) FROM pg_largeobject_metadata), 'large object');
           EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO {reader}', (SELECT max(oid) FROM pg_largeobject_metadata));
         END $$;",
        reader = reader.0
    ));
    let comments = source.sql(COMMENTS);
    let kinds: std::collections::BTreeSet<&str> = comments
        .lines()
        .filter_map(|l| l.split('|').next())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "access method",
            "aggregate",
            "cast",
            "collation",
            "composite type column",
            "domain constraint",
            "extension",
            "foreign-data wrapper",
            "function",
            "index",
            "large object",
            "materialized view",
            "materialized view column",
            "operator",
            "operator class",
            "operator family",
            "policy",
            "procedure",
            "publication",
            "rule",
            "schema",
            "sequence",
            "server",
            "statistics object",
            "table",
            "table column",
            "table constraint",
            "text search configuration",
            "text search dictionary",
            "transform",
            "trigger",
            "type",
            "view",
            "view column",
        ],
        "{comments}"
    );
    let (script, _) = dump(source.url(), DumpOptions::default())
        .await
        .expect("the dump succeeds");
    let target = TestDb::new("comment_psql");
    assert_only_publication_warnings(&restore(&script, &target.name));
    assert_native_equal(&source, &target).await;
    let text = String::from_utf8(script.clone()).expect("utf-8");
    for line in [
        "COMMENT ON STATISTICS com.t_stats IS 'statistics';\n",
        "COMMENT ON LARGE OBJECT 4242 IS 'large object below 16384';\n",
    ] {
        assert!(text.contains(line), "{line:?} is missing:\n{text}");
    }
    assert_eq!(target.sql(COMMENTS), comments);
    let large_objects =
        "SELECT oid, pg_get_userbyid(lomowner), lomacl, obj_description(oid, 'pg_largeobject'),
                convert_from(lo_get(oid), 'UTF8')
           FROM pg_largeobject_metadata ORDER BY oid";
    let expected = source.sql(large_objects);
    assert!(
        expected.starts_with(&format!(
            "4242|{r}|{{{r}=rw/{r},=rw/{r}}}|large object below 16384|low oid\n",
            r = reader.0
        )),
        "{expected}"
    );
    assert_eq!(target.sql(large_objects), expected);
    let native = native_round_trip(&source, &script, 2).await;
    assert_eq!(native.sql(COMMENTS), comments);
    assert_eq!(native.sql(large_objects), expected);
}
