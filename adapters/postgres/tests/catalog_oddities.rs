//! Catalog content the dump does not expect never panics it (issue 18): rows are injected
//! into a throw-away database as the superuser — plain DML on the catalogs, no
//! `allow_system_table_mods` — and the dump either succeeds with a warning naming what it
//! skipped or fails with an error naming the object. PostgreSQL's own regression database
//! holds the first kind (a comment on a subscription that no longer exists).

mod common;

use common::{TestDb, dump, restore};
use exporter_contract::{DumpOptions, ErrorKind};

/// Comments whose objects no longer exist (`pg_identify_object` answers NULL type/identity
/// parts for them): a subscription's, a relation's and a column's. Each is skipped with a
/// warning naming its `pg_description` row; the rest of the dump is whole and restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_comments_are_skipped_with_a_warning() {
    let db = TestDb::new("orphan_comment");
    db.sql(
        "CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2);
         COMMENT ON TABLE t IS 'kept comment';
         INSERT INTO pg_catalog.pg_description VALUES
           (4000000001, 'pg_catalog.pg_subscription'::regclass, 0, 'orphan subscription comment'),
           (4000000002, 'pg_catalog.pg_class'::regclass, 0, 'orphan relation comment'),
           ('t'::regclass, 'pg_catalog.pg_class'::regclass, 7, 'orphan column comment')",
    );
    let (script, summary) = dump(db.url(), DumpOptions::default())
        .await
        .expect("the dump succeeds");
    let text = String::from_utf8(script).expect("utf-8");
    assert!(!text.contains("orphan"), "an orphaned comment was dumped");
    assert!(
        text.contains("COMMENT ON TABLE public.t IS 'kept comment';"),
        "{text}"
    );
    let column_oid = db.sql("SELECT 't'::regclass::oid");
    let mut expected = vec![
        "skipped a comment on an object that no longer exists (pg_description row: classoid 1259, objoid 4000000002, objsubid 0)".to_owned(),
        format!(
            "skipped a comment on an object that no longer exists (pg_description row: classoid 1259, objoid {}, objsubid 7)",
            column_oid.trim()
        ),
        "skipped a comment on an object that no longer exists (pg_description row: classoid 6100, objoid 4000000001, objsubid 0)".to_owned(),
    ];
    let mut warnings = summary.warnings.clone();
    expected.sort();
    warnings.sort();
    assert_eq!(warnings, expected);
    assert_eq!(summary.tables.len(), 1);
    assert_eq!(summary.tables[0].rows, 2);

    let target = TestDb::new("orphan_comment_restore");
    restore(text.as_bytes(), &target.name);
    assert_eq!(
        target.sql("SELECT obj_description('public.t'::regclass, 'pg_class')"),
        "kept comment\n"
    );
    assert_eq!(target.sql("SELECT count(*) FROM public.t"), "2\n");
}

/// A view whose definition the server cannot give (its `_RETURN` rule deleted from
/// `pg_rewrite`: `pg_get_viewdef` answers NULL, where a `String` was read before and the dump
/// panicked) fails the dump by the view's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_view_definition_fails_naming_the_view() {
    let db = TestDb::new("null_viewdef");
    db.sql(
        "CREATE TABLE t (a int); CREATE VIEW broken_v AS SELECT a FROM t;
         DELETE FROM pg_catalog.pg_rewrite WHERE ev_class = 'broken_v'::regclass",
    );
    assert_eq!(
        db.sql("SELECT pg_get_viewdef('broken_v'::regclass) IS NULL"),
        "t\n",
        "the server answers NULL for the definition"
    );
    let err = dump(db.url(), DumpOptions::default())
        .await
        .expect_err("the dump fails");
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err}");
    assert_eq!(err.object(), Some("view public.broken_v"), "{err}");
    assert!(
        err.to_string()
            .contains("is NULL where the catalogs always hold a value"),
        "{err}"
    );
}
