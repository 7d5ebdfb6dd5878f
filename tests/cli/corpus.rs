//! The whole fidelity corpus through the binary (issue "Provable restores"): every case under
//! `fixtures/{postgres,mysql}/fidelity/` and every Redis case is set up on a real server,
//! dumped with `exporter dump`, verified with `exporter verify --level restore` (a scratch
//! database restored and fingerprinted), restored with `exporter restore` into a fresh
//! database, and the case's own check queries give byte-identical output on source and
//! target. The adapters' own tests cover the stock clients (psql, mariadb, redis-cli --pipe)
//! on the same cases.

use std::path::{Path, PathBuf};

use crate::support::{
    MY_HOST, MY_PORT, MyDb, PG_HOST, PG_PORT, RedisServer, TestDb, dump_ok, exporter, mariadb_raw,
    mysql_fixture, psql_raw, read_json, repo_root, run, s, tempdir,
};

/// The ids of a fixture directory's cases: every `<ID>.sql` that has an `<ID>.check.sql`.
fn case_ids(dir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let id = name.strip_suffix(".check.sql")?.to_owned();
            Some(id)
        })
        .collect();
    ids.sort();
    for id in &ids {
        assert!(dir.join(format!("{id}.sql")).is_file(), "{id}.sql exists");
    }
    ids
}

/// `exporter dump URL --to out`, then `verify --level restore --scratch SCRATCH` (exit 0, and
/// verify.json records level `restore` with every table compared), then
/// `exporter restore RUN --into TARGET` (exit 0).
fn dump_verify_restore(case: &str, source: &str, scratch: &str, target: &str) {
    let work = tempdir();
    let run_dir = dump_ok(work.path(), &["dump", source, "--to", "out"]);
    let verify = run(exporter(work.path()).args([
        "verify",
        s(&run_dir),
        "--level",
        "restore",
        "--scratch",
        scratch,
    ]));
    assert_eq!(
        verify.code,
        0,
        "{case}: verify --level restore failed:\n{}",
        verify.all_output()
    );
    let record = read_json(&run_dir.join("verify.json"));
    assert_eq!(record["level"], "restore", "{case}: {record}");
    assert_eq!(record["ok"], true, "{case}: {record}");
    let restored = run(exporter(work.path()).args(["restore", s(&run_dir), "--into", target]));
    assert_eq!(
        restored.code,
        0,
        "{case}: exporter restore failed:\n{}",
        restored.all_output()
    );
}

/// Output of a PostgreSQL check file (`psql -X -q -At -F '|' -f FILE`: unaligned, no headers).
fn pg_check(db: &str, check: &Path) -> String {
    let out = psql_raw(db, &["-A", "-F", "|", "-f", s(check)], None).expect("run psql");
    assert!(
        out.status.success(),
        "check {} on {db}: {}",
        check.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 check output")
}

#[test]
fn postgres_cases_verify_at_level_restore_and_restore_with_the_tool() {
    let dir = repo_root().join("fixtures/postgres/fidelity");
    let ids = case_ids(&dir);
    assert!(ids.len() >= 8, "the corpus holds the handed cases: {ids:?}");
    let scratch = format!("postgres://postgres@{PG_HOST}:{PG_PORT}/postgres");
    for id in &ids {
        let sql = std::fs::read_to_string(dir.join(format!("{id}.sql"))).expect("read case");
        let source = TestDb::with_sql(&format!("corpus_{id}"), &sql);
        let target = TestDb::create(&format!("corpus_{id}_t"));
        dump_verify_restore(id, &source.url(), &scratch, &target.url());
        let check = dir.join(format!("{id}.check.sql"));
        assert_eq!(
            pg_check(&target.name, &check),
            pg_check(&source.name, &check),
            "{id}: check output differs after exporter restore"
        );
    }
}

/// Output of a MariaDB check file, as the stock client prints it in batch mode.
fn my_check(db: &str, check: &Path) -> String {
    let sql = std::fs::read(check).expect("read check file");
    let out = mariadb_raw(Some(db), &["--default-character-set=utf8mb4"], &sql)
        .expect("run the mariadb client");
    assert!(
        out.status.success(),
        "check {} on {db}: {}",
        check.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn mysql_cases_verify_at_level_restore_and_restore_with_the_tool() {
    let dir = mysql_fixture("fidelity");
    let ids = case_ids(&dir);
    assert!(ids.len() >= 4, "the corpus holds the handed cases: {ids:?}");
    let scratch = format!("mysql://root@{MY_HOST}:{MY_PORT}");
    for id in &ids {
        let source = MyDb::from_fixture(&format!("corpus_{id}"), &format!("fidelity/{id}.sql"));
        let target = MyDb::create(&format!("corpus_{id}_t"));
        dump_verify_restore(id, &source.url(), &scratch, &target.url());
        let check = dir.join(format!("{id}.check.sql"));
        assert_eq!(
            my_check(&target.name, &check),
            my_check(&source.name, &check),
            "{id}: check output differs after exporter restore"
        );
    }
}

#[test]
fn redis_cases_verify_at_level_restore_and_restore_with_the_tool() {
    let dir = repo_root().join("fixtures/redis");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read fixtures/redis")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "redis"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "R02–R05 are in the corpus: {files:?}");
    for file in &files {
        let case = file
            .file_stem()
            .and_then(|x| x.to_str())
            .expect("case name");
        let source = RedisServer::start();
        source.seed(&std::fs::read_to_string(file).expect("read case"));
        let scratch = RedisServer::start();
        let target = RedisServer::start();
        dump_verify_restore(case, &source.url(), &scratch.url(), &target.url());
        assert_eq!(
            target.snapshot(),
            source.snapshot(),
            "{case}: keys, values and expiries differ after exporter restore"
        );
        assert_eq!(
            (0..16).map(|db| scratch.dbsize(db)).sum::<u64>(),
            0,
            "{case}: the scratch server was flushed after verification"
        );
    }
}
