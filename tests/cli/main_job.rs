//! The main job: `dump --all` of the two sample databases, checked byte for byte and restored
//! with the stock tools only (design.md principle 1, "no lock-in"); and one run with all three
//! engines (PostgreSQL, MariaDB, Redis) restored with `psql`, `mariadb` and `redis-cli --pipe`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::support::{
    MyDb, REDIS_SEED, REDIS_SEED_KEYS, RedisServer, TableInfo, TestDb, assert_lines_equal,
    assert_ok_line, attnum_columns, db_entry, dump_ok, exporter, file_names, fingerprint,
    is_run_id, manifest, mariadb, mode, my_describe, my_tables, psql, read_json, read_sha256sums,
    restore_mysql_with_stock_tools, restore_with_stock_tools, run, s, schema_dump,
    sequence_positions, sha256_file, sha256sum_check, table_rows, tempdir, user_tables,
    write_config, zstd_decompress, zstd_list,
};

#[test]
fn dump_all_samples_then_restore_with_stock_tools_and_verify() {
    let shop = TestDb::from_sample("main_shop", "shop.sql");
    let analytics = TestDb::from_sample("main_analytics", "analytics.sql");
    let work = tempdir();
    // The config lives in its own directory; `[storage] to` is relative to the working
    // directory, not to the config file's directory.
    let cfg_dir = work.path().join("cfg");
    std::fs::create_dir(&cfg_dir).unwrap();
    let config = write_config(
        &cfg_dir,
        Some("out"),
        &[("shop", &shop.url()), ("analytics", &analytics.url())],
    );

    let run_dir = dump_ok(work.path(), &["--config", s(&config), "dump", "--all"]);
    let run_id = check_sample_layout(work.path(), &cfg_dir, &run_dir);
    let sums = check_sums(&run_dir, &["analytics.sql.zst", "shop.sql.zst"]);
    let m = manifest(&run_dir);
    let (started, finished) = check_manifest_header(&m, &run_id);
    let server_version = psql("postgres", "SHOW server_version").trim().to_owned();
    for (name, db) in [("shop", &shop), ("analytics", &analytics)] {
        let e = db_entry(&m, name);
        let file = format!("{name}.sql.zst");
        assert_eq!(e["engine"], "postgresql", "{name}: engine");
        assert_eq!(e["endpoint"], db.url().as_str(), "{name}: endpoint");
        assert_eq!(e["status"], "ok", "{name}: status");
        assert!(
            e.get("error").is_none_or(Value::is_null),
            "{name}: an ok entry has no error"
        );
        let sv = e["server_version"].as_str().expect("server_version");
        assert!(
            !sv.is_empty() && server_version.starts_with(sv),
            "{name}: server_version {sv:?} is not the server's {server_version:?}"
        );
        assert_eq!(e["file"], file.as_str(), "{name}: file");
        assert_eq!(e["format"], "sql", "{name}: format");
        let plain = check_payload_facts(name, e, &run_dir.join(&file), &sums[&file]);
        assert_eq!(
            e["compression_level"], 3,
            "{name}: default compression level"
        );
        assert_eq!(e["consistency"], "snapshot", "{name}: consistency");
        let (s0, s1) = (rfc3339(&e["started_at"]), rfc3339(&e["finished_at"]));
        assert!(
            started <= s0 && s0 <= s1 && s1 <= finished,
            "{name}: dump times out of order"
        );
        assert_eq!(e["warnings"], Value::Array(vec![]), "{name}: warnings");
        check_tables(&db.name, e);
        // The dump is plain SQL a stock psql reads: a sanity look at its text.
        let sql = String::from_utf8(plain).expect("the SQL payload is UTF-8");
        assert!(sql.contains("COPY "), "{name}: payload has no COPY block");
    }

    // Restore each archive with zstd | psql into a fresh database and compare everything.
    for (name, source) in [("shop", &shop), ("analytics", &analytics)] {
        let target = TestDb::create(&format!("main_restored_{name}"));
        restore_with_stock_tools(&run_dir.join(format!("{name}.sql.zst")), &target);
        compare_databases(&source.name, &target.name);
    }

    check_sample_verification(work.path(), &config, &run_dir, &run_id);
}

/// Layout: `<cwd>/out/<run-id>/` with exactly the payloads, `SHA256SUMS` and `manifest.json`,
/// modes 0700 and 0600, nothing written relative to the config's directory. Returns the run
/// id.
fn check_sample_layout(cwd: &Path, cfg_dir: &Path, run_dir: &Path) -> String {
    let dest = cwd.join("out");
    assert_eq!(
        run_dir.parent().unwrap().canonicalize().unwrap(),
        dest.canonicalize().unwrap(),
        "the run must be under <cwd>/out ([storage] to is relative to the working directory)"
    );
    assert!(
        !cfg_dir.join("out").exists(),
        "nothing may be written relative to the config dir"
    );
    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        is_run_id(&run_id),
        "run id {run_id:?} is not YYYYMMDDTHHMMSSZ[-N]"
    );
    assert_eq!(
        file_names(run_dir),
        [
            "SHA256SUMS",
            "analytics.sql.zst",
            "manifest.json",
            "shop.sql.zst"
        ],
        "unexpected files in the run directory"
    );
    assert_eq!(mode(run_dir), 0o700, "run directory mode");
    for f in file_names(run_dir) {
        assert_eq!(mode(&run_dir.join(&f)), 0o600, "mode of {f}");
    }
    run_id
}

/// The stock checksum tool agrees, and `SHA256SUMS` names exactly `payloads`, relative to the
/// run directory. Returns its lines by file.
fn check_sums(run_dir: &Path, payloads: &[&str]) -> BTreeMap<String, String> {
    let (ok, text) = sha256sum_check(run_dir);
    assert!(ok, "sha256sum -c SHA256SUMS failed in the run dir:\n{text}");
    let sums = read_sha256sums(run_dir);
    assert_eq!(
        sums.keys().cloned().collect::<Vec<_>>(),
        payloads,
        "SHA256SUMS must list exactly the payload files, relative to the run dir"
    );
    sums
}

/// The manifest's own fields. Returns the run's start and end.
fn check_manifest_header(
    m: &Value,
    run_id: &str,
) -> (
    chrono::DateTime<chrono::FixedOffset>,
    chrono::DateTime<chrono::FixedOffset>,
) {
    assert_eq!(m["format"], "exporter-archive");
    assert_eq!(m["format_version"], "1.1");
    assert_eq!(m["tool"]["name"], "exporter");
    assert_eq!(m["tool"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(m["run_id"], run_id);
    assert_eq!(m["status"], "complete");
    assert_eq!(
        m["fingerprint_algorithm"],
        "xxh3-128-wrapping-sum-by-column-name"
    );
    let started = rfc3339(&m["started_at"]);
    let finished = rfc3339(&m["finished_at"]);
    assert!(started <= finished, "run started_at after finished_at");
    assert_eq!(
        m["databases"].as_array().unwrap().len(),
        2,
        "manifest must list both databases"
    );
    (started, finished)
}

/// An entry's facts about its stored file, each checked against the file itself with stock
/// tools: SHA-256 (and `SHA256SUMS`), size, payload size, frames, content checksum on.
/// Returns the payload.
fn check_payload_facts(name: &str, e: &Value, path: &Path, listed_sha: &str) -> Vec<u8> {
    let sha = sha256_file(path);
    assert_eq!(
        e["sha256"],
        sha.as_str(),
        "{name}: sha256 vs the real file's"
    );
    assert_eq!(listed_sha, sha, "{name}: SHA256SUMS vs the real file");
    assert_eq!(
        e["compressed_bytes"],
        std::fs::metadata(path).unwrap().len(),
        "{name}: compressed_bytes vs real size"
    );
    let plain = zstd_decompress(path);
    assert_eq!(
        e["uncompressed_bytes"],
        plain.len() as u64,
        "{name}: uncompressed_bytes vs zstd -dc | wc -c"
    );
    let (frames, check) = zstd_list(path);
    assert_eq!(e["zstd_frames"], frames, "{name}: zstd_frames vs zstd -lv");
    assert_eq!(check, "XXH64", "{name}: zstd content checksum must be on");
    plain
}

/// `verify` (default level decompress, the run picked through the config's destination)
/// passes and records `verify.json`; `verify --json` prints only the report on stdout.
fn check_sample_verification(cwd: &Path, config: &Path, run_dir: &Path, run_id: &str) {
    let out = run(exporter(cwd).args(["--config", s(config), "verify"]));
    out.expect_code(0);
    for file in ["shop.sql.zst", "analytics.sql.zst"] {
        assert_ok_line(&out, file);
    }
    assert!(
        !out.all_output().contains("FAILED"),
        "verify of a good run printed FAILED:\n{}",
        out.stdout
    );
    let v = read_json(&run_dir.join("verify.json"));
    assert_eq!(
        mode(&run_dir.join("verify.json")),
        0o600,
        "verify.json mode"
    );
    assert_eq!(v["ok"], true, "verify.json:\n{v:#}");
    assert_eq!(v["run_id"], run_id);
    assert_eq!(v["level"], "decompress");
    assert_eq!(v["tool_version"], env!("CARGO_PKG_VERSION"));
    rfc3339(&v["verified_at"]);
    assert_eq!(v["problems"], Value::Array(vec![]));
    let mut verified: Vec<String> = v["databases"]
        .as_array()
        .expect("verify.json databases")
        .iter()
        .map(|d| {
            assert_eq!(d["ok"], true, "verify.json entry {d}");
            assert_eq!(d["problems"], Value::Array(vec![]), "verify.json entry {d}");
            assert_eq!(
                d["file"],
                format!("{}.sql.zst", d["name"].as_str().unwrap()).as_str()
            );
            d["name"].as_str().unwrap().to_owned()
        })
        .collect();
    verified.sort();
    assert_eq!(verified, ["analytics", "shop"]);

    let out = run(exporter(cwd).args(["verify", s(run_dir), "--json"]));
    out.expect_code(0);
    let report: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify --json stdout is not one JSON value ({e}):\n{}",
            out.stdout
        )
    });
    assert_eq!(report["ok"], true);
    assert_eq!(report["run_id"], run_id);
}

/// Parse an RFC 3339 timestamp from the manifest.
#[track_caller]
fn rfc3339(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let text = v
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is not a string: {v}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

/// The manifest's per-table list accounts for every row of every table of the source, with
/// row counts and fingerprints computed here independently. Partitioned tables may be listed
/// either as their leaf partitions (pg_dump's way) or as the partitioned root, not both.
fn check_tables(db: &str, entry: &Value) {
    let tables = user_tables(db);
    let mut by_name: BTreeMap<String, &TableInfo> =
        tables.iter().map(|t| (t.name.clone(), t)).collect();
    // The contract writes names quoted ("public"."t"); that form is pinned by
    // dump::dump_url_without_config_names_archive_after_database. An unquoted schema.table is
    // tolerated here so that this test goes on to check rows and fingerprints.
    for t in &tables {
        by_name.entry(t.name.replace('"', "")).or_insert(t);
    }
    let listed = entry["tables"].as_array().expect("tables array");
    let mut seen = BTreeSet::new();
    for t in listed {
        let name = t["name"].as_str().expect("table name");
        let info = by_name.get(name).copied().unwrap_or_else(|| {
            panic!(
                "{db}: manifest lists {name}, which is not a table of the source ({:?})",
                by_name.keys()
            )
        });
        assert!(
            seen.insert(info.name.clone()),
            "{db}: table {name} listed twice"
        );
        let rows = table_rows(db, info);
        assert_eq!(t["rows"], rows.len() as u64, "{db}: row count of {name}");
        assert_eq!(
            t["fingerprint"],
            fingerprint(&rows).as_str(),
            "{db}: fingerprint of {name}"
        );
    }
    for t in &tables {
        let covered = seen.contains(&t.name)
            || t.partition_root
                .as_ref()
                .is_some_and(|root| seen.contains(root));
        let is_root_listed_by_leaves = t.relkind == 'p';
        assert!(
            covered || is_root_listed_by_leaves,
            "{db}: table {} is missing from the manifest (listed: {seen:?})",
            t.name
        );
        if let Some(root) = &t.partition_root {
            assert!(
                !(seen.contains(&t.name) && seen.contains(root)),
                "{db}: both {} and its root {root} are listed; rows would count twice",
                t.name
            );
        }
    }
}

/// Every table's rows (sorted COPY text), every sequence position and the normalised
/// `pg_dump --schema-only` are equal between the source and the restored database.
fn compare_databases(source: &str, restored: &str) {
    let a = user_tables(source);
    let b = user_tables(restored);
    assert_eq!(a, b, "the restored database has different tables");
    for t in &a {
        if t.relkind != 'r' {
            continue;
        }
        assert_eq!(
            attnum_columns(source, &t.name),
            attnum_columns(restored, &t.name),
            "columns of {}",
            t.name
        );
        let (ra, rb) = (table_rows(source, t), table_rows(restored, t));
        if ra != rb {
            let first = ra
                .iter()
                .zip(&rb)
                .position(|(x, y)| x != y)
                .unwrap_or(ra.len().min(rb.len()));
            let show = |v: &Vec<Vec<u8>>| {
                v.get(first)
                    .map(|l| String::from_utf8_lossy(l).into_owned())
            };
            panic!(
                "content of {} differs after restore: {} rows in the source, {} restored; first \
                 difference (sorted COPY lines):\n  source:   {:?}\n  restored: {:?}",
                t.name,
                ra.len(),
                rb.len(),
                show(&ra),
                show(&rb)
            );
        }
    }
    assert_eq!(
        sequence_positions(source),
        sequence_positions(restored),
        "sequence positions (last_value|is_called) differ after restore"
    );
    assert_lines_equal(
        "pg_dump --schema-only of source and restored database",
        &schema_dump(source),
        &schema_dump(restored),
    );
    // Large objects are not in the samples; assert so, so that adding them forces a check here.
    assert_eq!(
        psql(source, "SELECT count(*) FROM pg_largeobject_metadata").trim(),
        "0"
    );
}

/// One run with all three engines from one config: a PostgreSQL database, a MariaDB schema
/// (every column type and object kind of fixtures/mysql/sample.sql) and a dedicated
/// redis-server with keys of every type and expiries in two logical databases. Checked through
/// the manifest and `sha256sum -c`, verified, then each archive is restored with the stock
/// tools only (`psql`, `mariadb`, `redis-cli --pipe`) and compared with its source.
#[test]
fn one_run_with_all_three_engines() {
    let pg = TestDb::with_sql(
        "all3_pg",
        "CREATE TABLE items (id serial PRIMARY KEY, label text NOT NULL, price numeric(10,2));
         INSERT INTO items (label, price) SELECT 'item ' || i, i * 1.25 FROM generate_series(1, 40) AS i;
         CREATE TABLE notes (k text PRIMARY KEY, body bytea);
         INSERT INTO notes VALUES ('a', '\\x00ff'), ('b', NULL);",
    );
    let my = MyDb::from_fixture("all3_my", "sample.sql");
    let cache = RedisServer::start();
    cache.seed(REDIS_SEED);
    assert_eq!(
        (cache.dbsize(0), cache.dbsize(1)),
        REDIS_SEED_KEYS,
        "the Redis seed did not create the expected keys"
    );
    let redis_before = cache.snapshot();
    let redis_fps = cache.fingerprints();
    let my_before = my_describe(&my.name);

    let work = tempdir();
    let config = write_config(
        work.path(),
        Some("out"),
        &[
            ("pg", &pg.url()),
            ("my", &my.url()),
            ("cache", &cache.url()),
        ],
    );
    let run_dir = dump_ok(work.path(), &["--config", s(&config), "dump", "--all"]);

    assert_eq!(
        file_names(&run_dir),
        [
            "SHA256SUMS",
            "cache.resp.zst",
            "manifest.json",
            "my.sql.zst",
            "pg.sql.zst"
        ],
        "unexpected files in the run directory"
    );
    let sums = check_sums(&run_dir, &["cache.resp.zst", "my.sql.zst", "pg.sql.zst"]);
    let m = manifest(&run_dir);
    assert_eq!(m["status"], "complete", "{m:#}");
    assert_eq!(m["databases"].as_array().unwrap().len(), 3, "{m:#}");
    let my_version = mariadb(None, "SELECT VERSION()").trim().to_owned();
    for (name, engine, file, format, endpoint, version) in [
        ("pg", "postgresql", "pg.sql.zst", "sql", pg.url(), None),
        (
            "my",
            "mariadb",
            "my.sql.zst",
            "sql",
            my.url(),
            Some(my_version.clone()),
        ),
        (
            "cache",
            "redis",
            "cache.resp.zst",
            "resp",
            cache.url(),
            Some(cache.version()),
        ),
    ] {
        let e = db_entry(&m, name);
        assert_eq!(e["engine"], engine, "{name}: engine");
        assert_eq!(e["status"], "ok", "{name}: status");
        assert_eq!(e["file"], file, "{name}: file");
        assert_eq!(e["format"], format, "{name}: format");
        assert_eq!(e["endpoint"], endpoint.as_str(), "{name}: endpoint");
        if let Some(v) = version {
            assert_eq!(e["server_version"], v.as_str(), "{name}: server_version");
        }
        check_payload_facts(name, e, &run_dir.join(file), &sums[file]);
    }

    // PostgreSQL: rows and fingerprints computed independently.
    let pg_entry = db_entry(&m, "pg");
    assert_eq!(pg_entry["consistency"], "snapshot");
    check_tables(&pg.name, pg_entry);
    let my_entry = db_entry(&m, "my");
    check_mariadb_entry(&my, my_entry);
    check_redis_entry(&cache, db_entry(&m, "cache"), &redis_fps);

    let out = run(exporter(work.path()).args(["--config", s(&config), "verify"]));
    out.expect_code(0);
    for file in ["pg.sql.zst", "my.sql.zst", "cache.resp.zst"] {
        assert_ok_line(&out, file);
    }

    // Restore each with the stock tools only and compare with the source.
    let pg_target = TestDb::create("all3_pg_r");
    restore_with_stock_tools(&run_dir.join("pg.sql.zst"), &pg_target);
    compare_databases(&pg.name, &pg_target.name);
    restore_mariadb_and_compare(work.path(), &run_dir, &my_before, my_entry);
    let redis_target = RedisServer::start();
    redis_target.restore_pipe(&run_dir.join("cache.resp.zst"));
    assert_lines_equal(
        "resp.py snapshot of the source and the restored redis-server",
        &redis_before.lines().map(str::to_owned).collect::<Vec<_>>(),
        &redis_target
            .snapshot()
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        redis_target.fingerprints(),
        redis_fps,
        "fingerprints of the restored redis-server"
    );
    // The source was only read.
    assert_eq!(cache.snapshot(), redis_before, "the source redis changed");
}

/// MariaDB: every base table and sequence listed once, with its real row count; the MyISAM
/// table makes the dump best effort, with a warning naming it.
fn check_mariadb_entry(my: &MyDb, my_entry: &Value) {
    let listed: BTreeMap<String, u64> = my_entry["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().expect("name").to_owned(),
                t["rows"].as_u64().expect("rows"),
            )
        })
        .collect();
    assert_eq!(
        listed.len(),
        my_entry["tables"].as_array().unwrap().len(),
        "a table is listed twice: {my_entry:#}"
    );
    let tables = my_tables(&my.name);
    assert_eq!(
        listed.keys().cloned().collect::<Vec<_>>(),
        tables.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "the manifest must list every base table and sequence of the source"
    );
    for (t, kind) in &tables {
        let count: u64 = my
            .query(&format!("SELECT COUNT(*) FROM `{t}`"))
            .trim()
            .parse()
            .unwrap();
        let expect = if kind == "SEQUENCE" { 1 } else { count };
        assert_eq!(listed[t], expect, "my: row count of {t} ({kind})");
    }
    assert_eq!(listed["bulk"], 3000, "the sample's bulk table");
    assert_eq!(my_entry["consistency"], "best_effort");
    let warnings = my_entry["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("legacy_myisam"))),
        "no warning names the MyISAM table: {warnings:?}"
    );
}

/// Redis: one entry per logical database with keys, counts and fingerprints as computed here
/// from DUMP payloads.
fn check_redis_entry(
    cache: &RedisServer,
    cache_entry: &Value,
    redis_fps: &BTreeMap<String, (u64, String)>,
) {
    assert_eq!(cache_entry["consistency"], "best_effort");
    let redis_listed: BTreeMap<String, (u64, String)> = cache_entry["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                (
                    t["rows"].as_u64().unwrap(),
                    t["fingerprint"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(
        redis_listed.keys().cloned().collect::<Vec<_>>(),
        ["db0", "db1"]
    );
    assert_eq!(redis_listed["db0"].0, REDIS_SEED_KEYS.0, "db0 key count");
    assert_eq!(redis_listed["db1"].0, REDIS_SEED_KEYS.1, "db1 key count");
    assert_eq!(
        &redis_listed, redis_fps,
        "Redis fingerprints in the manifest vs computed from DUMP payloads"
    );
    assert_eq!(
        cache_entry["payload_version"],
        format!("rdb {}", cache.max_dump_rdb_version()).as_str(),
        "payload_version of a RESP dump: the highest RDB version of its DUMP payloads"
    );
}

/// Restore the MariaDB archive with the stock client into a new schema: it describes as the
/// source did, and a dump of it through the binary has the same per-table fingerprints.
fn restore_mariadb_and_compare(cwd: &Path, run_dir: &Path, my_before: &[String], my_entry: &Value) {
    let my_target = MyDb::create("all3_my_r");
    restore_mysql_with_stock_tools(&run_dir.join("my.sql.zst"), &my_target, &[]);
    assert_lines_equal(
        "MariaDB source and restore (SHOW CREATE, CHECKSUM TABLE, rows as hex)",
        my_before,
        &my_describe(&my_target.name),
    );
    let redump = dump_ok(cwd, &["dump", &my_target.url(), "--to", "redump"]);
    let again = manifest(&redump);
    let fps = |e: &Value| -> Vec<(String, String)> {
        e["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_owned(),
                    t["fingerprint"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        fps(db_entry(&again, &my_target.name)),
        fps(my_entry),
        "fingerprints of the restored MariaDB schema differ from the source's"
    );
}
