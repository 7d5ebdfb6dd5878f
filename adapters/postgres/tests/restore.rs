//! The native restore (`PostgresTarget`, `PostgresScratch`) against the real server: every
//! fixture restored natively and with stock psql must give the same fingerprints and the same
//! re-dump; failures stop at the right statement and name it; ownership, `--clean` and scratch
//! databases behave as documented.

mod common;

use std::process::Command;

use bytes::Bytes;
use common::{TestDb, check_output, fixture};
use exporter_contract::{
    DumpOptions, DumpSummary, EngineError, ErrorKind, PayloadFormat, RestoreOptions,
    RestoreSummary, ScratchServer, Target,
};
use exporter_postgres::script::{Item, Splitter};
use exporter_postgres::{PostgresScratch, PostgresTarget, fingerprint_database};
use futures::StreamExt;
use futures::stream::BoxStream;

/// `script` as a stream of chunks of `size` bytes.
fn body(script: &[u8], size: usize) -> BoxStream<'static, Result<Bytes, EngineError>> {
    let mut rest = Bytes::copy_from_slice(script);
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        chunks.push(Ok(rest.split_to(size.min(rest.len()))));
    }
    futures::stream::iter(chunks).boxed()
}

async fn restore_native(
    script: &[u8],
    db: &TestDb,
    size: usize,
    options: RestoreOptions,
) -> Result<RestoreSummary, EngineError> {
    PostgresTarget::new(db.url())
        .restore(PayloadFormat::Sql, body(script, size), options)
        .await
}

async fn dump(db: &TestDb) -> (Vec<u8>, DumpSummary) {
    common::dump(db.url(), DumpOptions::default())
        .await
        .expect("dump succeeds")
}

/// Dump `source`, restore the dump natively (chunks of `size` bytes) and with psql into two
/// fresh databases; both must give the dump's fingerprints and byte-identical re-dumps, equal
/// to the original dump. Returns (native target, psql target, script, summary).
async fn native_like_psql(source: &TestDb, size: usize) -> (TestDb, TestDb, Vec<u8>, DumpSummary) {
    let (script, summary) = dump(source).await;

    let native = TestDb::new("native");
    let target = PostgresTarget::new(native.url());
    target.validate().unwrap();
    let info = target.preflight().await.unwrap();
    assert_eq!(info.engine, "postgresql");
    assert_eq!(
        target.existing_objects().await.unwrap(),
        Vec::<String>::new(),
        "a fresh database is empty (its public schema does not count)"
    );
    let restored = restore_native(&script, &native, size, RestoreOptions::default())
        .await
        .expect("native restore succeeds");
    let copied: u64 = summary
        .tables
        .iter()
        .filter(|t| t.name != "pg_catalog.pg_largeobject")
        .map(|t| t.rows)
        .sum();
    assert_eq!(restored.rows, copied, "every dumped row went through COPY");
    assert_eq!(restored.skipped, 0);
    let statements = count_statements(&script);
    assert_eq!(restored.statements, statements, "every statement ran");

    let by_psql = TestDb::new("psql");
    let stderr = common::restore(&script, &by_psql.name);
    assert_eq!(stderr.trim(), "", "psql restore printed errors or warnings");

    assert_eq!(
        target.fingerprint().await.unwrap(),
        summary.tables,
        "native restore: fingerprints equal the dump's"
    );
    assert_eq!(
        fingerprint_database(&by_psql.url()).await.unwrap(),
        summary.tables,
        "psql restore: fingerprints equal the dump's"
    );
    let (native_dump, _) = dump(&native).await;
    let (psql_dump, _) = dump(&by_psql).await;
    assert!(
        native_dump == psql_dump,
        "re-dumps of the native and the psql restore differ:\n{}",
        first_difference(&native_dump, &psql_dump)
    );
    assert!(
        native_dump == script,
        "the re-dump differs from the original dump:\n{}",
        first_difference(&native_dump, &script)
    );
    (native, by_psql, script, summary)
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let a = String::from_utf8_lossy(a);
    let b = String::from_utf8_lossy(b);
    for (n, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n< {x}\n> {y}", n + 1);
        }
    }
    format!(
        "one is a prefix of the other ({} vs {} lines)",
        a.lines().count(),
        b.lines().count()
    )
}

/// Statements of a whole script, by the splitter fed in one piece.
fn count_statements(script: &[u8]) -> u64 {
    let mut splitter = Splitter::new();
    let mut items = Vec::new();
    splitter
        .push(&Bytes::copy_from_slice(script), &mut items)
        .unwrap();
    splitter.finish(&mut items).unwrap();
    items
        .iter()
        .filter(|i| matches!(i, Item::Statement(_)))
        .count() as u64
}

async fn fidelity_case(id: &str, size: usize) {
    let source = TestDb::new(&id.to_lowercase());
    source.run_file(&fixture(&format!("fidelity/{id}.sql")));
    let (native, by_psql, _, _) = native_like_psql(&source, size).await;
    let check = fixture(&format!("fidelity/{id}.check.sql"));
    let expected = check_output(&source.name, &check);
    assert_eq!(check_output(&native.name, &check), expected, "{id}: native");
    assert_eq!(check_output(&by_psql.name, &check), expected, "{id}: psql");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_native_restore_equals_psql_restore() {
    let source = TestDb::new("r_sample");
    source.run_file(&fixture("sample.sql"));
    let (native, _psql, script, _) = native_like_psql(&source, 4093).await;
    // The same script in 1-byte chunks gives the same database.
    let tiny = TestDb::new("r_sample_tiny");
    restore_native(&script, &tiny, 1, RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        fingerprint_database(&tiny.url()).await.unwrap(),
        fingerprint_database(&native.url()).await.unwrap()
    );
    assert!(
        dump(&tiny).await.0 == script,
        "1-byte chunks: re-dump differs"
    );
    assert_eq!(
        native.sql("SELECT app.atomic_count()"),
        "3\n",
        "the BEGIN ATOMIC body arrived whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p01_native() {
    fidelity_case("P01", 1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p03_native() {
    fidelity_case("P03", 7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p04_native() {
    fidelity_case("P04", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p05_native() {
    fidelity_case("P05", 65_537).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p10_native() {
    fidelity_case("P10", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p12_native() {
    fidelity_case("P12", 101).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_chunk_boundary_of_a_real_dump_gives_the_same_items() {
    let source = TestDb::new("r_split");
    source.run_file(&fixture("fidelity/P10.sql"));
    let (script, _) = dump(&source).await;
    let items = |sizes: &[usize]| {
        let mut splitter = Splitter::new();
        let mut out = Vec::new();
        let mut rest = Bytes::copy_from_slice(&script);
        let mut n = 0;
        while !rest.is_empty() {
            let size = sizes[n.min(sizes.len() - 1)].min(rest.len());
            n += 1;
            splitter.push(&rest.split_to(size), &mut out).unwrap();
        }
        splitter.finish(&mut out).unwrap();
        // Join COPY pieces: only their concatenation is defined.
        let mut joined: Vec<(String, Vec<u8>)> = Vec::new();
        for item in out {
            match item {
                Item::Statement(s) => {
                    joined.push((format!("{}:{}:{}", s.number, s.line, s.text), Vec::new()));
                }
                Item::CopyData(d) => joined.last_mut().unwrap().1.extend_from_slice(&d),
                Item::CopyEnd => joined.push(("END".to_owned(), Vec::new())),
            }
        }
        joined
    };
    let whole = items(&[usize::MAX]);
    assert!(
        whole
            .iter()
            .any(|(s, d)| s.contains("COPY public.texts") && !d.is_empty())
    );
    assert_eq!(items(&[1]), whole, "1-byte chunks");
    for cut in 1..script.len() {
        assert_eq!(items(&[cut, usize::MAX]), whole, "cut at byte {cut}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_statement_stops_the_restore_and_is_named() {
    let db = TestDb::new("r_fail");
    let script = b"CREATE TABLE a (x int);\nINSERT INTO a VALUES (1), (2);\n\n-- next one fails\nCREATE TABLE b (x no_such_type);\nCREATE TABLE c (x int);\n";
    let err = restore_native(script, &db, 5, RestoreOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Query);
    assert_eq!(
        err.object(),
        Some("statement 3 (line 5): CREATE TABLE b"),
        "{err:?}"
    );
    assert_eq!(
        err.message(),
        "type \"no_such_type\" does not exist (SQLSTATE 42704)"
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM a"),
        "2\n",
        "earlier statements applied"
    );
    assert_eq!(
        db.sql("SELECT to_regclass('public.c') IS NULL"),
        "t\n",
        "later statements did not run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_errors_name_the_copy_but_never_the_values() {
    let db = TestDb::new("r_data");
    db.sql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    let script = b"COPY public.t (id, v) FROM stdin;\n1\tfine\nsecret-value\tx\n\\.\n";
    let err = restore_native(script, &db, 16, RestoreOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Query);
    assert_eq!(err.object(), Some("statement 1 (line 1): COPY public.t"));
    assert_eq!(
        err.message(),
        "invalid input syntax for type integer: … (SQLSTATE 22P02), at line 2 of the COPY data"
    );
    let script = b"COPY public.t (id, v) FROM stdin;\n7\tsecret-one\n7\tsecret-two\n\\.\n";
    let err = restore_native(script, &db, 1 << 20, RestoreOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Query);
    assert!(err.message().contains("(SQLSTATE 23505)"), "{err}");
    assert!(
        !err.to_string().contains('7') || !err.to_string().contains("(id)"),
        "{err}"
    );
    assert!(!err.to_string().contains("secret"), "{err}");
    assert_eq!(
        db.sql("SELECT count(*) FROM t"),
        "0\n",
        "failed COPYs load nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_truncated_inside_copy_is_a_protocol_error() {
    let source = TestDb::new("r_trunc_src");
    source.sql(
        "CREATE TABLE big (id int, v text); INSERT INTO big SELECT g, repeat('x', 50) FROM generate_series(1, 5000) g;
         CREATE TABLE after_big (id int)",
    );
    let (script, _) = dump(&source).await;
    let text = String::from_utf8(script.clone()).unwrap();
    let copy_at = text.find("COPY public.big").unwrap();
    let cut = copy_at + (text[copy_at..].find("\\.\n").unwrap() / 2);
    let target = TestDb::new("r_trunc");
    let err = restore_native(&script[..cut], &target, 8192, RestoreOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert_eq!(
        err.message(),
        "the script ends inside COPY data (no `\\.` line): it is truncated"
    );
    assert!(err.object().unwrap().contains("COPY public.big"), "{err}");
    assert_eq!(
        target.sql("SELECT count(*) FROM big"),
        "0\n",
        "the COPY was aborted"
    );

    // Truncated inside a statement.
    let target2 = TestDb::new("r_trunc2");
    let end = text.find("CREATE TABLE public.big").unwrap() + 20;
    let err = restore_native(&script[..end], &target2, 100, RestoreOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert!(err.object().unwrap().contains("CREATE TABLE"), "{err}");

    // An error item in the input aborts with that error.
    let target3 = TestDb::new("r_trunc3");
    let failing = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"CREATE TABLE x (a int);\n")),
        Err(EngineError::new(ErrorKind::Io, "disk on fire")),
        Ok(Bytes::from_static(b"CREATE TABLE y (a int);\n")),
    ])
    .boxed();
    let err = PostgresTarget::new(target3.url())
        .restore(PayloadFormat::Sql, failing, RestoreOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert_eq!(target3.sql("SELECT to_regclass('public.y') IS NULL"), "t\n");

    let err = PostgresTarget::new(target3.url())
        .restore(PayloadFormat::Rdb, body(b"", 1), RestoreOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

fn pg_dump_plain(db: &str, extra: &[&str]) -> Vec<u8> {
    let out = Command::new("pg_dump")
        .args(["-h", common::HOST, "-U", common::SUPERUSER])
        .args(extra)
        .arg(db)
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_meta_commands_are_unsupported_and_named() {
    let source = TestDb::new("r_meta_src");
    source.sql("CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
    let script = pg_dump_plain(&source.name, &[]);
    let text = String::from_utf8(script.clone()).unwrap();
    let target = TestDb::new("r_meta");
    let err = restore_native(&script, &target, 333, RestoreOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    // pg_dump 15.14 and later open with `\restrict <key>`; earlier ones have no meta-command.
    let line = text
        .lines()
        .position(|l| l.starts_with('\\'))
        .expect("this pg_dump writes \\restrict")
        + 1;
    assert_eq!(err.object(), Some(format!("line {line}").as_str()));
    assert!(
        err.message().starts_with("psql meta-command \\restrict "),
        "{err}"
    );

    let err = restore_native(
        b"SELECT 1;\n\\connect other\n",
        &target,
        4,
        RestoreOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(err.object(), Some("line 2"));
    assert!(
        err.message().starts_with("psql meta-command \\connect "),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ownership_off_skips_and_counts_owner_and_privilege_statements() {
    let role = common::unique("r_owner");
    common::sql("postgres", &format!("CREATE ROLE {role}"));
    let source = TestDb::new("r_own_src");
    source.sql(&format!(
        "CREATE TABLE t (id int, who text); INSERT INTO t VALUES (1, 'x');
         ALTER TABLE t OWNER TO {role}; GRANT SELECT ON t TO {role}; GRANT SELECT ON t TO PUBLIC;
         ALTER TABLE t ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON t TO {role} USING (true)"
    ));
    let (script, summary) = dump(&source).await;
    let text = String::from_utf8(script.clone()).unwrap();
    // Counted independently of the classifier: our dump writes one statement per line here.
    let expected = text
        .lines()
        .filter(|l| {
            l.starts_with("GRANT ")
                || l.starts_with("REVOKE ")
                || (l.starts_with("DO '")
                    && (l.contains("THEN EXECUTE ''GRANT ")
                        || l.contains("THEN EXECUTE ''REVOKE ")
                        || (l.contains("THEN EXECUTE ''ALTER ") && l.contains(" OWNER TO "))))
        })
        .count() as u64;
    assert!(
        expected >= 3,
        "owner, grant to the role, grant to PUBLIC: {expected}"
    );

    let off = TestDb::new("r_own_off");
    let restored = restore_native(
        &script,
        &off,
        977,
        RestoreOptions::default().with_ownership(false),
    )
    .await
    .unwrap();
    assert_eq!(restored.skipped, expected);
    assert_eq!(
        restored.statements + restored.skipped,
        count_statements(&script)
    );
    assert_eq!(
        off.sql("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 't'"),
        "postgres\n",
        "owner not applied"
    );
    assert_eq!(
        off.sql(&format!("SELECT has_table_privilege('{role}', 't', 'SELECT'), relacl IS NULL FROM pg_class WHERE relname = 't'")),
        "f|t\n",
        "grants not applied"
    );
    assert_eq!(
        off.sql("SELECT count(*) FROM pg_policy"),
        "1\n",
        "policies are not privileges"
    );
    assert_eq!(
        fingerprint_database(&off.url()).await.unwrap(),
        summary.tables
    );

    let on = TestDb::new("r_own_on");
    let restored = restore_native(&script, &on, 977, RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(restored.skipped, 0);
    assert_eq!(
        on.sql("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 't'"),
        format!("{role}\n")
    );
    assert!(
        dump(&on).await.0 == script,
        "ownership on: the re-dump equals the dump"
    );
    drop(on);
    drop(off);

    // A missing role is a harmless difference: the restore warns and succeeds.
    drop(source);
    common::sql("postgres", &format!("DROP ROLE {role}"));
    let missing = TestDb::new("r_own_missing");
    restore_native(&script, &missing, 977, RestoreOptions::default())
        .await
        .expect("a missing owner role does not fail the restore");
    assert_eq!(
        fingerprint_database(&missing.url()).await.unwrap(),
        summary.tables
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_objects_and_clean() {
    let source = TestDb::new("r_clean_src");
    source.run_file(&fixture("sample.sql"));
    let (script, summary) = dump(&source).await;
    let fresh = TestDb::new("r_fresh");
    let public_of = |db: &TestDb| {
        db.sql("SELECT pg_get_userbyid(nspowner), nspacl::text, obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = 'public'")
    };

    let target = PostgresTarget::new(source.url());
    let objects = target.existing_objects().await.unwrap();
    for expected in [
        "extension pgcrypto",
        "function app.atomic_count()",
        "function app.double_it(integer)",
        "large object 424242",
        "materialized view app.mv_counts",
        "procedure app.noop(integer)",
        "schema \"Billing & Co\"",
        "schema app",
        "schema public",
        "sequence app.ticket_seq",
        "table app.everything",
        "type app.floatrange",
        "type app.money_pair",
        "type app.mood",
        "domain app.email",
        "view app.v_happy",
    ] {
        assert!(
            objects.iter().any(|o| o == expected),
            "{expected} in {objects:?}"
        );
    }
    let mut sorted = objects.clone();
    sorted.sort();
    assert_eq!(objects, sorted);
    assert!(
        !objects.iter().any(|o| o.contains("crypt(")),
        "extension members are not listed"
    );
    let arrays: Vec<&String> = objects
        .iter()
        .filter(|o| o.starts_with("type ") && (o.contains("._") || o.contains("[]")))
        .collect();
    assert!(arrays.is_empty(), "no implicit array types: {arrays:?}");

    target.clean().await.unwrap();
    assert_eq!(
        target.existing_objects().await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        public_of(&source),
        public_of(&fresh),
        "public is as a new database has it"
    );
    // A cleaned database takes the restore like a fresh one.
    restore_native(&script, &source, 65_536, RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        fingerprint_database(&source.url()).await.unwrap(),
        summary.tables
    );

    // A database without public gets it back.
    let bare = TestDb::new("r_bare");
    bare.sql("DROP SCHEMA public");
    let target = PostgresTarget::new(bare.url());
    assert_eq!(
        target.existing_objects().await.unwrap(),
        Vec::<String>::new()
    );
    target.clean().await.unwrap();
    assert_eq!(public_of(&bare), public_of(&fresh));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_databases_are_created_and_dropped() {
    let scratch = PostgresScratch::new(common::url_for(common::SUPERUSER, "postgres"));
    let name = common::unique("scratch");
    let target = scratch.create(&name).await.unwrap();
    assert!(
        target.describe().ends_with(&format!("/{name}")),
        "{}",
        target.describe()
    );
    assert_eq!(
        common::sql(
            "postgres",
            &format!(
                "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = '{name}'"
            )
        ),
        "UTF8\n"
    );
    assert_eq!(
        target.existing_objects().await.unwrap(),
        Vec::<String>::new()
    );
    let restored = target
        .restore(
            PayloadFormat::Sql,
            body(
                b"CREATE TABLE t (a int);\nCOPY public.t (a) FROM stdin;\n1\n2\n\\.\n",
                10,
            ),
            RestoreOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!((restored.statements, restored.rows), (2, 2));
    assert_eq!(target.fingerprint().await.unwrap()[0].rows, 2);
    let Err(err) = scratch.create(&name).await else {
        panic!("creating an existing database must fail")
    };
    assert_eq!(err.kind(), ErrorKind::Query, "{err}");
    assert!(err.message().contains("42P04"), "{err}");

    // Dropped even while a session is connected to it (WITH (FORCE)).
    let mut holder = Command::new("psql")
        .args([
            "-X",
            "-h",
            common::HOST,
            "-U",
            common::SUPERUSER,
            "-d",
            &name,
            "-c",
            "SELECT pg_sleep(60)",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    scratch.drop_scratch(&name).await.unwrap();
    let _ = holder.wait();
    assert_eq!(
        common::sql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'")
        ),
        "0\n"
    );
    scratch
        .drop_scratch(&name)
        .await
        .expect("dropping a missing scratch database is fine");
    for bad in ["postgres", "template1", "Bad-Name"] {
        assert_eq!(
            scratch.drop_scratch(bad).await.unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert!(scratch.create(bad).await.is_err());
    }
}

/// `check` (before any work): the server is reached and the role may create databases; a
/// role without `CREATEDB` and an unreachable server are refused with their kinds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_check_connects_and_needs_createdb() {
    PostgresScratch::new(common::url_for(common::SUPERUSER, "postgres"))
        .check()
        .await
        .expect("a superuser may create databases");
    let role = common::unique("nocreatedb");
    common::sql("postgres", &format!("CREATE ROLE {role} LOGIN"));
    let refused = PostgresScratch::new(common::url_for(&role, "postgres"))
        .check()
        .await;
    common::sql("postgres", &format!("DROP ROLE {role}"));
    let err = refused.expect_err("a role without CREATEDB");
    assert_eq!(err.kind(), ErrorKind::Permission, "{err}");
    assert!(err.to_string().contains("CREATEDB"), "{err}");
    assert!(
        err.hint().is_some_and(|h| h.contains("ALTER ROLE")),
        "{:?}",
        err.hint()
    );
    let unreachable =
        exporter_contract::DatabaseUrl::parse("postgres://postgres@127.0.0.1:1/postgres").unwrap();
    let err = PostgresScratch::new(unreachable).check().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
}

/// `pg_dump --schema-only` of `db`, normalised: no comments, no `SET`/`set_config` lines, no
/// psql meta-commands, no blank lines.
fn schema_of(db: &str) -> Vec<String> {
    let out = pg_dump_plain(db, &["--schema-only"]);
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter(|l| {
            !l.starts_with("--")
                && !l.trim().is_empty()
                && !l.starts_with('\\')
                && !l.starts_with("SET ")
                && !l.starts_with("SELECT pg_catalog.set_config(")
        })
        .map(str::to_owned)
        .collect()
}

/// design.md section 5: a restore of our archive and a restore of pg_dump's output of the
/// same database must compare equal. pg_dump runs with its defaults (owners and privileges
/// included), matching our default `ownership = true`; its script goes through psql (it
/// contains `\restrict`), ours through `PostgresTarget`.
async fn cross_check(fixture_file: &str) {
    let source = TestDb::new("x_src");
    source.run_file(&fixture(fixture_file));
    let reference = TestDb::new("x_pgdump");
    let stderr = common::restore(&pg_dump_plain(&source.name, &[]), &reference.name);
    assert_eq!(
        stderr.trim(),
        "",
        "{fixture_file}: psql restore of pg_dump's script"
    );
    let (script, summary) = dump(&source).await;
    let ours = TestDb::new("x_ours");
    restore_native(&script, &ours, 65_536, RestoreOptions::default())
        .await
        .unwrap();
    let (a, b) = (schema_of(&reference.name), schema_of(&ours.name));
    assert!(
        a.iter().any(|l| l.starts_with("CREATE TABLE")),
        "{fixture_file}: {a:?}"
    );
    let only_ref: Vec<&String> = a.iter().filter(|l| !b.contains(l)).collect();
    let only_ours: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
    assert!(
        only_ref.is_empty() && only_ours.is_empty(),
        "{fixture_file}: schemas differ\nonly after pg_dump: {only_ref:#?}\nonly after ours: {only_ours:#?}"
    );
    assert_eq!(a, b, "{fixture_file}: same schema lines, different order");
    assert_eq!(
        fingerprint_database(&reference.url()).await.unwrap(),
        summary.tables,
        "{fixture_file}: data after pg_dump's script"
    );
    assert_eq!(
        fingerprint_database(&ours.url()).await.unwrap(),
        summary.tables,
        "{fixture_file}: data after ours"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_check_sample_with_pg_dump() {
    cross_check("sample.sql").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_check_p01_with_pg_dump() {
    cross_check("fidelity/P01.sql").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_check_p03_with_pg_dump() {
    cross_check("fidelity/P03.sql").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_check_p04_with_pg_dump() {
    cross_check("fidelity/P04.sql").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_check_p05_with_pg_dump() {
    cross_check("fidelity/P05.sql").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_check_p10_with_pg_dump() {
    cross_check("fidelity/P10.sql").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_check_p12_with_pg_dump() {
    cross_check("fidelity/P12.sql").await;
}
