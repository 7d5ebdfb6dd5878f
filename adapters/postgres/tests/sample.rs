//! Round trip of the rich seed `fixtures/postgres/sample.sql`: content (fingerprints, row
//! counts) and schema (`pg_dump --schema-only`) must be equal after a restore with psql.

mod common;

use std::process::Command;

use common::{TestDb, fixture, round_trip};
use exporter_contract::DumpOptions;

fn schema_of(db: &str) -> String {
    let out = Command::new("pg_dump")
        .args([
            "--schema-only",
            "-h",
            common::HOST,
            "-U",
            common::SUPERUSER,
            db,
        ])
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| {
            !l.starts_with("--")
                && !l.trim().is_empty()
                && !l.starts_with("\\restrict")
                && !l.starts_with("\\unrestrict")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_round_trip() {
    let source = TestDb::new("sample");
    source.run_file(&fixture("sample.sql"));
    let (target, script, summary) = round_trip(&source).await;

    let rows = |name: &str| {
        summary
            .tables
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.rows)
    };
    assert_eq!(rows("app.everything"), Some(3));
    assert_eq!(
        rows("app.events"),
        None,
        "partitioned parents have no rows of their own"
    );
    assert_eq!(rows("app.events_2024_misc"), Some(1));
    assert_eq!(rows("app.events_default"), Some(1));
    assert_eq!(
        rows("app.animal"),
        Some(1),
        "parent rows only, children not duplicated"
    );
    assert_eq!(rows("app.bird"), Some(1));
    assert_eq!(rows("app.nothing"), Some(2));
    assert_eq!(
        rows("app.secrets"),
        Some(2),
        "row_security=off as superuser: every row"
    );
    assert_eq!(rows("\"Billing & Co\".a_leaf"), Some(3));
    assert_eq!(rows("pg_catalog.pg_largeobject"), Some(1));
    assert!(!summary.tables.iter().any(|t| t.name.contains("pgcrypto")));

    assert_eq!(
        schema_of(&target.name),
        schema_of(&source.name),
        "schema differs after restore"
    );

    // Data-dependent state that pg_dump --schema-only does not show.
    assert_eq!(
        target.sql("SELECT n FROM app.mv_counts WHERE m = 'happy'"),
        "1\n"
    );
    assert_eq!(
        target
            .sql("SELECT relispopulated FROM pg_class WHERE oid = 'app.mv_unpopulated'::regclass"),
        "f\n"
    );
    assert_eq!(
        target.sql("SELECT encode(lo_get(424242), 'hex')"),
        "00010203ff\n"
    );
    assert_eq!(target.sql("SELECT nextval('app.ticket_seq')"), "1025\n"); // 1000, 1005, then three rows
    assert_eq!(
        target.sql("INSERT INTO app.ids (x) VALUES (3) RETURNING id"),
        "9\n"
    );

    // Deterministic: a second dump of the unchanged database is byte-identical.
    let (again, _) = common::dump(source.url(), DumpOptions::default())
        .await
        .unwrap();
    assert!(again == script, "two dumps of the same database differ");

    // The script uses no psql meta-commands besides COPY's end marker.
    let text = String::from_utf8(script).unwrap();
    assert!(text.contains("CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;"));
    assert!(
        !text.contains("FUNCTION public.crypt"),
        "extension members are not dumped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_without_ownership_has_no_owner_statements() {
    let source = TestDb::new("noown");
    source.run_file(&fixture("sample.sql"));
    let (script, _) = common::dump(source.url(), DumpOptions::default().with_ownership(false))
        .await
        .unwrap();
    let text = String::from_utf8(script).unwrap();
    assert!(!text.contains("OWNER TO"));
    assert!(!text.contains("GRANT "));
    let (script, _) = common::dump(source.url(), DumpOptions::default())
        .await
        .unwrap();
    let text = String::from_utf8(script).unwrap();
    assert!(text.contains("OWNER TO"));
    assert!(text.contains("GRANT SELECT ON TABLE app.v_happy TO PUBLIC;"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_without_the_roles_warns_but_succeeds() {
    let role = common::unique("owner");
    common::sql("postgres", &format!("CREATE ROLE {role}"));
    let source = TestDb::new("roles");
    source.sql(&format!(
        "CREATE TABLE t (id int, who text); INSERT INTO t VALUES (1, 'x');
         ALTER TABLE t OWNER TO {role}; GRANT SELECT ON t TO {role};
         ALTER TABLE t ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON t TO {role} USING (true)"
    ));
    let (script, summary) = common::dump(source.url(), DumpOptions::default())
        .await
        .unwrap();
    let text = String::from_utf8(script.clone()).unwrap();
    assert!(
        text.contains(&format!("OWNER TO \"{role}\"")),
        "ownership is emitted"
    );

    // With the role present (same server), a restore reproduces owner, grant and policy.
    let same = TestDb::new("roles_same");
    assert_eq!(common::restore(&script, &same.name).trim(), "");
    assert_eq!(
        same.sql("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 't'"),
        format!("{role}\n")
    );
    assert_eq!(same.sql("SELECT count(*) FROM pg_policy"), "1\n");
    drop(same);

    // Without it (a fresh scratch server), the restore still exits 0 and says what it skipped.
    drop(source);
    common::sql("postgres", &format!("DROP ROLE {role}"));
    let target = TestDb::new("roles_missing");
    let stderr = common::restore(&script, &target.name);
    assert!(
        stderr.contains("exporter: skipped owner of table public.t"),
        "{stderr}"
    );
    assert!(
        stderr.contains("exporter: skipped policy p on public.t"),
        "{stderr}"
    );
    assert!(!stderr.contains("ERROR"), "{stderr}");
    let after = exporter_postgres::fingerprint_database(&target.url())
        .await
        .unwrap();
    assert_eq!(after, summary.tables, "the data is all there");
}
