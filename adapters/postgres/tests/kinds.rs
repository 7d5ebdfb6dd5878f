//! Object kinds the dump once refused (issue 18, PARITY.md), one test per kind: created in a
//! throw-away database the way PostgreSQL's regression suite creates them, dumped through the
//! adapter, restored with stock `psql`, and compared by pg_dump itself (schema, owners,
//! privileges, comments) and by calling the objects on both sides.

mod common;

use bytes::Bytes;
use common::{Role, TestDb, assert_pg_dump_equal, dump, restore, round_trip, sql, url_for};
use exporter_contract::{
    DumpOptions, ErrorKind, PayloadFormat, RestoreOptions, RestoreSummary, ScratchServer, Target,
};
use exporter_postgres::{PostgresScratch, PostgresTarget};
use futures::StreamExt;

/// Restore `script` into `db` through the native restore (`exporter restore`) on `jobs`
/// sessions.
async fn restore_native(script: &[u8], db: &TestDb, jobs: usize) -> RestoreSummary {
    let body = futures::stream::iter(vec![Ok(Bytes::copy_from_slice(script))]).boxed();
    PostgresTarget::new(db.url())
        .restore(
            PayloadFormat::Sql,
            body,
            RestoreOptions::default().with_jobs(jobs),
        )
        .await
        .expect("the native restore succeeds")
}

/// Aggregates of every shape `CREATE AGGREGATE` has: a plain one with `INITCOND` and a
/// final function, one over `*`, a moving aggregate with an inverse, a parallel one with
/// combine / serial / deserial functions, a `SORTOP` one, a `FINALFUNC_MODIFY` one, an
/// ordered-set and a hypothetical-set one; with a comment, an owner and privileges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_of_every_shape() {
    let owner = Role::new("agg_owner");
    let source = TestDb::new("kinds_agg");
    source.sql(&format!(
        "CREATE SCHEMA aggs;
         CREATE FUNCTION aggs.add_len(int, text) RETURNS int LANGUAGE sql IMMUTABLE
           AS 'SELECT $1 + length($2)';
         CREATE FUNCTION aggs.twice(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
         CREATE AGGREGATE aggs.len_sum(text) (SFUNC = aggs.add_len, STYPE = int, INITCOND = '10',
           FINALFUNC = aggs.twice);
         CREATE AGGREGATE aggs.cnt(*) (SFUNC = int8inc, STYPE = int8, INITCOND = '0');
         CREATE AGGREGATE aggs.msum(int) (SFUNC = int4pl, STYPE = int, MSFUNC = int4pl,
           MINVFUNC = int4mi, MSTYPE = int, MSSPACE = 4, MFINALFUNC = int4abs, MINITCOND = '0');
         CREATE AGGREGATE aggs.psum(numeric) (SFUNC = numeric_avg_accum, STYPE = internal,
           FINALFUNC = numeric_sum, COMBINEFUNC = numeric_avg_combine,
           SERIALFUNC = numeric_avg_serialize, DESERIALFUNC = numeric_avg_deserialize,
           PARALLEL = SAFE);
         CREATE AGGREGATE aggs.my_max(int) (SFUNC = int4larger, STYPE = int, SORTOP = >);
         CREATE AGGREGATE aggs.shareable(int8) (SFUNC = int8inc_any, STYPE = int8,
           INITCOND = '0', FINALFUNC = int8um, FINALFUNC_MODIFY = SHAREABLE);
         CREATE AGGREGATE aggs.my_pct(float8 ORDER BY float8) (SFUNC = ordered_set_transition,
           STYPE = internal, FINALFUNC = percentile_disc_final, FINALFUNC_EXTRA);
         CREATE AGGREGATE aggs.my_rank(VARIADIC \"any\" ORDER BY VARIADIC \"any\") (
           SFUNC = ordered_set_transition_multi, STYPE = internal, FINALFUNC = rank_final,
           FINALFUNC_EXTRA, HYPOTHETICAL);
         COMMENT ON AGGREGATE aggs.cnt(*) IS 'counts rows';
         COMMENT ON AGGREGATE aggs.my_pct(float8 ORDER BY float8) IS 'a percentile';
         ALTER AGGREGATE aggs.my_rank(VARIADIC \"any\" ORDER BY VARIADIC \"any\") OWNER TO {owner};
         ALTER AGGREGATE aggs.cnt(*) OWNER TO {owner};
         REVOKE ALL ON FUNCTION aggs.len_sum(text) FROM PUBLIC;
         GRANT EXECUTE ON FUNCTION aggs.len_sum(text) TO {owner};
         CREATE TABLE aggs.t (i int, s text, f float8);
         INSERT INTO aggs.t SELECT g, repeat('x', g), g / 4.0 FROM generate_series(1, 8) g;
         CREATE VIEW aggs.v AS SELECT aggs.len_sum(s) AS l, aggs.cnt(*) AS c FROM aggs.t;",
        owner = owner.0
    ));
    let (target, script, _) = round_trip(&source).await;
    let text = String::from_utf8(script).expect("utf-8");
    assert!(
        text.contains(
            "CREATE AGGREGATE aggs.cnt(*) (\n    SFUNC = int8inc,\n    STYPE = bigint,\n    INITCOND = '0'\n);\n"
        ),
        "{text}"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    let calls =
        "SELECT aggs.len_sum(s), aggs.cnt(*), aggs.msum(i), aggs.psum(i::numeric), aggs.my_max(i),
                        aggs.shareable(i::int8), aggs.my_pct(0.5) WITHIN GROUP (ORDER BY f),
                        aggs.my_rank(3) WITHIN GROUP (ORDER BY i)
                   FROM aggs.t";
    let expected = source.sql(calls);
    assert_eq!(expected, "92|8|36|36|8|-8|1|3\n");
    assert_eq!(target.sql(calls), expected);
    // The moving form is what a window frame that slides uses.
    let window = "SELECT string_agg(m::text, ',' ORDER BY i) FROM (SELECT i, aggs.msum(i) OVER
                    (ORDER BY i ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS m FROM aggs.t) w";
    assert_eq!(target.sql(window), source.sql(window));
    assert_eq!(target.sql("SELECT * FROM aggs.v"), "92|8\n");
}

/// Operators: infix with commutator, negator, `RESTRICT`, `JOIN`, `HASHES` and `MERGES`, one
/// that is its own commutator, a prefix one, one whose commutator is defined after it (the
/// server creates a shell first), used by a view and a check constraint; with a comment and
/// an owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_infix_prefix_and_commutator_pairs() {
    let owner = Role::new("op_owner");
    let source = TestDb::new("kinds_op");
    source.sql(&format!(
        "CREATE SCHEMA ops;
         CREATE FUNCTION ops.close_to(int, int) RETURNS bool LANGUAGE sql IMMUTABLE
           AS 'SELECT abs($1 - $2) <= 1';
         CREATE FUNCTION ops.far_from(int, int) RETURNS bool LANGUAGE sql IMMUTABLE
           AS 'SELECT abs($1 - $2) > 1';
         CREATE FUNCTION ops.lt_text(text, int) RETURNS bool LANGUAGE sql IMMUTABLE
           AS 'SELECT length($1) < $2';
         CREATE FUNCTION ops.gt_int(int, text) RETURNS bool LANGUAGE sql IMMUTABLE
           AS 'SELECT $1 > length($2)';
         CREATE FUNCTION ops.neg(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT -$1';
         CREATE OPERATOR ops.~~~ (FUNCTION = ops.close_to, LEFTARG = int, RIGHTARG = int,
           COMMUTATOR = OPERATOR(ops.~~~), NEGATOR = OPERATOR(ops.!~~), RESTRICT = eqsel,
           JOIN = eqjoinsel);
         CREATE OPERATOR ops.!~~ (FUNCTION = ops.far_from, LEFTARG = int, RIGHTARG = int,
           COMMUTATOR = OPERATOR(ops.!~~), NEGATOR = OPERATOR(ops.~~~));
         CREATE OPERATOR ops.<# (FUNCTION = ops.lt_text, LEFTARG = text, RIGHTARG = int,
           COMMUTATOR = OPERATOR(ops.#>));
         CREATE OPERATOR ops.#> (FUNCTION = ops.gt_int, LEFTARG = int, RIGHTARG = text);
         CREATE OPERATOR ops.=== (FUNCTION = int4eq, LEFTARG = int, RIGHTARG = int,
           COMMUTATOR = OPERATOR(ops.===), HASHES, MERGES, RESTRICT = eqsel, JOIN = eqjoinsel);
         CREATE OPERATOR ops.@- (FUNCTION = ops.neg, RIGHTARG = int);
         COMMENT ON OPERATOR ops.~~~(int, int) IS 'within one';
         ALTER OPERATOR ops.@-(NONE, int) OWNER TO {owner};
         CREATE TABLE ops.t (a int, b int, s text, CHECK (a OPERATOR(ops.===) a));
         INSERT INTO ops.t VALUES (1, 2, 'x'), (5, 1, 'abc'), (3, 3, 'abcdef');
         CREATE VIEW ops.v AS SELECT a OPERATOR(ops.~~~) b AS close, OPERATOR(ops.@-) a AS neg,
           s OPERATOR(ops.<#) 4 AS short FROM ops.t;",
        owner = owner.0
    ));
    let (target, script, _) = round_trip(&source).await;
    let text = String::from_utf8(script).expect("utf-8");
    assert!(
        text.contains(
            "CREATE OPERATOR ops.@- (\n    FUNCTION = ops.neg,\n    RIGHTARG = integer\n);\n"
        ),
        "{text}"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    let calls = "SELECT string_agg(concat_ws(',', close, neg, short), ' ' ORDER BY neg) FROM ops.v";
    assert_eq!(source.sql(calls), "f,-5,t t,-3,f t,-1,t\n");
    assert_eq!(target.sql(calls), source.sql(calls));
    // The commutator and negator links are whole again, not shells.
    let links =
        "SELECT o.oprname, o.oprcom::regoperator, o.oprnegate::regoperator, o.oprcode::regproc
                   FROM pg_operator o WHERE o.oprnamespace = 'ops'::regnamespace ORDER BY 1, 2";
    assert_eq!(target.sql(links), source.sql(links));
    assert!(
        !target.sql(links).contains("|-\n"),
        "a shell was left behind"
    );
}

/// Text search dictionaries (simple with stop words, ispell, synonym, thesaurus over another
/// dictionary) and configurations (one built by mappings, one copied from `english`), used by
/// a column default and a generated column; with a comment and an owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_search_dictionaries_and_configurations() {
    let owner = Role::new("ts_owner");
    let source = TestDb::new("kinds_ts");
    source.sql(&format!(
        "CREATE SCHEMA ts;
         CREATE TEXT SEARCH DICTIONARY ts.stop (TEMPLATE = simple, STOPWORDS = english, ACCEPT = false);
         CREATE TEXT SEARCH DICTIONARY ts.isp (TEMPLATE = ispell, DictFile = ispell_sample,
           AffFile = ispell_sample);
         CREATE TEXT SEARCH DICTIONARY ts.syn (TEMPLATE = synonym, SYNONYMS = synonym_sample);
         CREATE TEXT SEARCH DICTIONARY ts.thes (TEMPLATE = thesaurus, DictFile = thesaurus_sample,
           Dictionary = english_stem);
         CREATE TEXT SEARCH CONFIGURATION ts.cfg (PARSER = default);
         ALTER TEXT SEARCH CONFIGURATION ts.cfg
           ADD MAPPING FOR asciiword, word WITH ts.syn, ts.stop, ts.isp, english_stem;
         ALTER TEXT SEARCH CONFIGURATION ts.cfg ADD MAPPING FOR int, uint WITH simple;
         CREATE TEXT SEARCH CONFIGURATION ts.eng (COPY = english);
         ALTER TEXT SEARCH CONFIGURATION ts.eng ALTER MAPPING FOR asciiword WITH ts.thes, english_stem;
         COMMENT ON TEXT SEARCH DICTIONARY ts.syn IS 'synonyms';
         COMMENT ON TEXT SEARCH CONFIGURATION ts.cfg IS 'mapped by hand';
         ALTER TEXT SEARCH DICTIONARY ts.isp OWNER TO {owner};
         ALTER TEXT SEARCH CONFIGURATION ts.eng OWNER TO {owner};
         CREATE TABLE ts.docs (id int, body text, cfg regconfig DEFAULT 'ts.cfg',
           tsv tsvector GENERATED ALWAYS AS (to_tsvector('ts.cfg'::regconfig, body)) STORED);
         INSERT INTO ts.docs (id, body) VALUES (1, 'The postgres indexes booking 42'),
           (2, 'one two three skies bookings');",
        owner = owner.0
    ));
    let (target, _script, _) = round_trip(&source).await;
    assert_pg_dump_equal(&source.name, &target.name);
    let calls = "SELECT id, tsv, to_tsvector('ts.eng', body), cfg FROM ts.docs ORDER BY id";
    let expected = source.sql(calls);
    assert!(
        expected.contains("'pgsql'"),
        "the synonym dictionary answered: {expected}"
    );
    assert_eq!(target.sql(calls), expected);
    let mappings = "SELECT cfgname, alias, dictionary, dictionaries::text FROM pg_ts_config c,
                      LATERAL ts_debug(c.oid::regconfig, 'postgres 42 booking supernovae') d
                     WHERE cfgnamespace = 'ts'::regnamespace ORDER BY 1, 2, 3, 4";
    assert_eq!(target.sql(mappings), source.sql(mappings));
}

/// Casts of the three methods (`WITH FUNCTION`, `WITH INOUT`, `WITHOUT FUNCTION`) and the
/// three contexts (explicit, assignment, implicit), used by a view and an assignment; with a
/// comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn casts_of_every_method_and_context() {
    let source = TestDb::new("kinds_cast");
    source.sql(
        "CREATE SCHEMA casts;
         CREATE TYPE casts.mood AS ENUM ('sad', 'ok', 'happy');
         CREATE TYPE casts.pair AS (a int, b int);
         CREATE FUNCTION casts.mood_of(int) RETURNS casts.mood LANGUAGE sql IMMUTABLE
           AS $$SELECT (enum_range(NULL::casts.mood))[$1]$$;
         CREATE FUNCTION casts.sum_of(casts.pair) RETURNS int LANGUAGE sql IMMUTABLE
           AS 'SELECT $1.a + $1.b';
         CREATE CAST (int AS casts.mood) WITH FUNCTION casts.mood_of(int) AS ASSIGNMENT;
         CREATE CAST (casts.pair AS int) WITH FUNCTION casts.sum_of(casts.pair) AS IMPLICIT;
         CREATE CAST (casts.mood AS int8) WITH INOUT;
         CREATE CAST (bool AS \"char\") WITHOUT FUNCTION;
         COMMENT ON CAST (int AS casts.mood) IS 'by position';
         CREATE TABLE casts.t (id int, m casts.mood);
         INSERT INTO casts.t VALUES (1, 3), (2, 1);
         CREATE VIEW casts.v AS SELECT id, 2::casts.mood AS m2, ROW(id, 10)::casts.pair + 0 AS s,
           m::int8 AS pos, (id = 1)::\"char\"::int AS flag FROM casts.t;",
    );
    let (target, script, _) = round_trip(&source).await;
    let text = String::from_utf8(script).expect("utf-8");
    assert!(
        text.contains(
            "CREATE CAST (integer AS casts.mood) WITH FUNCTION casts.mood_of(integer) AS ASSIGNMENT;\n"
        ),
        "{text}"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    let calls =
        "SELECT v.id, v.m2, v.s, t.m, v.flag FROM casts.v v JOIN casts.t t USING (id) ORDER BY 1";
    assert_eq!(source.sql(calls), "1|ok|11|happy|1\n2|ok|12|sad|0\n");
    assert_eq!(target.sql(calls), source.sql(calls));
    let cast_list = "SELECT castsource::regtype, casttarget::regtype, castfunc::regprocedure, castcontext, castmethod
                       FROM pg_cast WHERE oid >= 16384
                      ORDER BY castsource::regtype::text, casttarget::regtype::text";
    assert_eq!(target.sql(cast_list), source.sql(cast_list));
    assert_eq!(source.sql(cast_list).lines().count(), 4);
}

/// Collations: libc with one locale, libc with `lc_collate` and `lc_ctype` apart, one copied
/// `FROM "C"`, and a nondeterministic ICU one (case-insensitive), used by a column, a domain
/// and a unique index whose duplicates it decides; with a comment and an owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collations_libc_and_icu() {
    let owner = Role::new("coll_owner");
    let source = TestDb::new("kinds_coll");
    source.sql(&format!(
        "CREATE SCHEMA colls;
         CREATE COLLATION colls.posix (locale = 'POSIX');
         CREATE COLLATION colls.split (lc_collate = 'C', lc_ctype = 'C.UTF-8');
         CREATE COLLATION colls.copied FROM \"C\";
         CREATE COLLATION colls.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
         COMMENT ON COLLATION colls.ci IS 'case-insensitive';
         ALTER COLLATION colls.split OWNER TO {owner};
         CREATE DOMAIN colls.name_ci AS text COLLATE colls.ci;
         CREATE TABLE colls.t (id int, n colls.name_ci, p text COLLATE colls.posix,
           s text COLLATE colls.split, c text COLLATE colls.copied);
         CREATE UNIQUE INDEX t_n ON colls.t (n);
         INSERT INTO colls.t VALUES (1, 'Alpha', 'b', 'B', 'a'), (2, 'beta', 'B', 'a', 'B');",
        owner = owner.0
    ));
    let (target, script, _) = round_trip(&source).await;
    let text = String::from_utf8(script).expect("utf-8");
    assert!(
        text.contains(
            "CREATE COLLATION colls.ci (provider = icu, deterministic = false, locale = 'und-u-ks-level2');\n"
        ),
        "{text}"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    let calls = "SELECT (SELECT string_agg(p, '' ORDER BY p) FROM colls.t),
                        (SELECT string_agg(s, '' ORDER BY s) FROM colls.t),
                        (SELECT id FROM colls.t WHERE n = 'ALPHA')";
    assert_eq!(source.sql(calls), "Bb|Ba|1\n");
    assert_eq!(target.sql(calls), source.sql(calls));
    // The nondeterministic collation still decides uniqueness after the restore.
    let dup = std::process::Command::new("psql")
        .args([
            "-X",
            "-h",
            common::HOST,
            "-U",
            common::SUPERUSER,
            "-d",
            &target.name,
            "-c",
        ])
        .arg("INSERT INTO colls.t (id, n) VALUES (3, 'BETA')")
        .output()
        .expect("psql runs");
    assert!(
        String::from_utf8_lossy(&dup.stderr)
            .contains("duplicate key value violates unique constraint \"t_n\""),
        "{}",
        String::from_utf8_lossy(&dup.stderr)
    );
}

/// Foreign-data wrappers (one with a validator and options, one bare) and foreign servers
/// (type, version, options) with user mappings for PUBLIC and for a role, privileges, owners
/// and comments; options keep their order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_data_wrappers_servers_and_user_mappings() {
    let user = Role::new("fdw_user");
    let source = TestDb::new("kinds_fdw");
    source.sql(&format!(
        "CREATE FOREIGN DATA WRAPPER checked VALIDATOR postgresql_fdw_validator;
         CREATE FOREIGN DATA WRAPPER bare OPTIONS (debug 'true', \"Mode\" 'x''y');
         CREATE SERVER remote TYPE 'postgres' VERSION '15' FOREIGN DATA WRAPPER checked
           OPTIONS (host 'db.example', dbname 'app', port '5433');
         CREATE SERVER \"Other Server\" FOREIGN DATA WRAPPER bare;
         CREATE USER MAPPING FOR PUBLIC SERVER remote OPTIONS (user 'app_ro');
         CREATE USER MAPPING FOR {user} SERVER remote OPTIONS (user 'app_rw', password 'not-secret');
         CREATE USER MAPPING FOR {user} SERVER \"Other Server\";
         GRANT USAGE ON FOREIGN SERVER remote TO {user};
         GRANT USAGE ON FOREIGN DATA WRAPPER bare TO {user} WITH GRANT OPTION;
         ALTER SERVER \"Other Server\" OWNER TO {user};
         COMMENT ON FOREIGN DATA WRAPPER checked IS 'validated';
         COMMENT ON SERVER remote IS 'the remote one';",
        user = user.0
    ));
    let (target, _script, _) = round_trip(&source).await;
    assert_pg_dump_equal(&source.name, &target.name);
    let mappings = "SELECT srvname, usename, umoptions FROM pg_user_mappings ORDER BY 1, 2";
    assert_eq!(
        source.sql(mappings),
        format!(
            "Other Server|{u}|\nremote|{u}|{{user=app_rw,password=not-secret}}\nremote|public|{{user=app_ro}}\n",
            u = user.0
        )
    );
    assert_eq!(target.sql(mappings), source.sql(mappings));
}

/// A table access method (over the built-in heap handler, as the regression suite's `heap2`)
/// used by a table, a partition and a materialized view; with a comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_access_methods_and_their_tables() {
    let source = TestDb::new("kinds_am");
    source.sql(
        "CREATE ACCESS METHOD heap_two TYPE TABLE HANDLER heap_tableam_handler;
         COMMENT ON ACCESS METHOD heap_two IS 'heap under another name';
         CREATE SCHEMA am;
         CREATE TABLE am.t (id int, v text) USING heap_two WITH (fillfactor = 70);
         INSERT INTO am.t SELECT g, 'v' || g FROM generate_series(1, 50) g;
         CREATE TABLE am.parted (id int) PARTITION BY RANGE (id);
         CREATE TABLE am.p1 PARTITION OF am.parted FOR VALUES FROM (0) TO (100) USING heap_two;
         CREATE TABLE am.p2 PARTITION OF am.parted FOR VALUES FROM (100) TO (200);
         INSERT INTO am.parted SELECT g FROM generate_series(0, 199, 7) g;
         CREATE MATERIALIZED VIEW am.mv USING heap_two AS SELECT count(*) AS n FROM am.t;",
    );
    let (target, script, summary) = round_trip(&source).await;
    let text = String::from_utf8(script).expect("utf-8");
    assert!(
        text.contains("CREATE ACCESS METHOD heap_two TYPE TABLE HANDLER heap_tableam_handler;\n"),
        "{text}"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    let ams = "SELECT c.relname, a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam
                WHERE c.relnamespace = 'am'::regnamespace AND c.relkind IN ('r', 'm') ORDER BY 1";
    assert_eq!(
        source.sql(ams),
        "mv|heap_two\np1|heap_two\np2|heap\nt|heap_two\n"
    );
    assert_eq!(target.sql(ams), source.sql(ams));
    assert_eq!(target.sql("SELECT n FROM am.mv"), "50\n");
    let rows = |name: &str| {
        summary
            .tables
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.rows)
    };
    assert_eq!(rows("am.t"), Some(50));
    assert_eq!(rows("am.p1"), Some(15));
}

/// Typed tables (`CREATE TABLE … OF type`): column options (`NOT NULL`, `DEFAULT`), a check,
/// a primary key, a type that lost and gained attributes since (`ALTER TYPE … CASCADE`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_tables() {
    let source = TestDb::new("kinds_typed");
    source.sql(
        "CREATE SCHEMA typed;
         CREATE TYPE typed.person AS (name text, age int, nick text);
         CREATE TABLE typed.people OF typed.person (
           name WITH OPTIONS NOT NULL PRIMARY KEY, age WITH OPTIONS DEFAULT 18 CHECK (age >= 0));
         CREATE TABLE typed.plain OF typed.person;
         ALTER TYPE typed.person DROP ATTRIBUTE nick CASCADE;
         ALTER TYPE typed.person ADD ATTRIBUTE email text CASCADE;
         INSERT INTO typed.people (name, email) VALUES ('ann', 'a@x'), ('bob', NULL);
         INSERT INTO typed.plain VALUES ('carl', 40, 'c@x');",
    );
    let (target, script, _) = round_trip(&source).await;
    let text = String::from_utf8(script).expect("utf-8");
    assert!(
        text.contains("ALTER TABLE ONLY typed.people OF typed.person;\n"),
        "{text}"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    let typed = "SELECT c.relname, c.reloftype::regtype, string_agg(a.attname || ':' || a.attislocal, ',' ORDER BY a.attnum)
                   FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  WHERE c.relnamespace = 'typed'::regnamespace AND c.relkind = 'r' GROUP BY 1, 2 ORDER BY 1";
    assert_eq!(
        source.sql(typed),
        "people|typed.person|name:true,age:true,email:true\nplain|typed.person|name:true,age:true,email:true\n"
    );
    assert_eq!(target.sql(typed), source.sql(typed));
    assert_eq!(
        target.sql("SELECT name, age, email FROM typed.people ORDER BY 1"),
        "ann|18|a@x\nbob|18|\n"
    );
}

/// Publications: for all tables (via the partition root), for tables with a column list and
/// a row filter, for a schema, with chosen actions; with an owner and a comment. The target
/// server's `wal_level` is `replica`, so the restore warns (as pg_dump's restore does) and
/// that warning is the only thing it prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_of_tables_schemas_and_all() {
    let owner = Role::new("pub_owner");
    let source = TestDb::new("kinds_pub");
    let suffix = &source.name[source.name.len() - 12..];
    let (all, some, schema) = (
        format!("exp_pub_all_{suffix}"),
        format!("exp_pub_some_{suffix}"),
        format!("exp_pub_nsp_{suffix}"),
    );
    source.sql(&format!(
        "CREATE SCHEMA pubs; CREATE SCHEMA pubs_all;
         CREATE TABLE pubs.t (id int PRIMARY KEY, secret text, v int);
         CREATE TABLE pubs.u (id int);
         CREATE TABLE pubs_all.w (id int);
         INSERT INTO pubs.t VALUES (1, 's', 10);
         CREATE PUBLICATION {all} FOR ALL TABLES WITH (publish_via_partition_root = true);
         CREATE PUBLICATION {some} FOR TABLE pubs.t (id, v) WHERE (v > 5), pubs.u
           WITH (publish = 'insert, truncate');
         CREATE PUBLICATION {schema} FOR TABLES IN SCHEMA pubs_all;
         ALTER PUBLICATION {some} OWNER TO {owner};
         COMMENT ON PUBLICATION {schema} IS 'a schema';",
        owner = owner.0
    ));
    let (script, _) = dump(source.url(), DumpOptions::default())
        .await
        .expect("the dump succeeds");
    let target = TestDb::new("kinds_pub_restore");
    let stderr = restore(&script, &target.name);
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("wal_level is insufficient to publish logical changes")
                || line.contains("Set wal_level to \"logical\""),
            "{stderr}"
        );
    }
    assert_pg_dump_equal(&source.name, &target.name);
    let pubs = format!(
        "SELECT p.pubname, p.puballtables, p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, p.pubviaroot,
                pg_get_userbyid(p.pubowner) = '{owner}', obj_description(p.oid, 'pg_publication'),
                (SELECT string_agg(t.schemaname || '.' || t.tablename || coalesce(t.attnames::text, '') || coalesce(t.rowfilter, ''), ' ' ORDER BY 1)
                   FROM pg_publication_tables t WHERE t.pubname = p.pubname AND t.schemaname LIKE 'pubs%')
           FROM pg_publication p WHERE p.pubname IN ('{all}', '{some}', '{schema}') ORDER BY 1",
        owner = owner.0
    );
    let expected = source.sql(&pubs);
    assert_eq!(
        expected,
        format!(
            "{all}|t|t|t|t|t|t|f||pubs.t{{id,secret,v}} pubs.u{{id}} pubs_all.w{{id}}\n\
             {schema}|f|t|t|t|t|f|f|a schema|pubs_all.w{{id}}\n\
             {some}|f|t|f|f|t|f|t||pubs.t{{id,v}}(v > 5) pubs.u{{id}}\n"
        )
    );
    assert_eq!(target.sql(&pubs), expected);
}

/// A transform (the regression suite's `object_address` one: `integer` on language `sql`,
/// both directions), with a comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transforms() {
    let source = TestDb::new("kinds_trf");
    source.sql(
        "CREATE TRANSFORM FOR int LANGUAGE SQL (FROM SQL WITH FUNCTION prsd_lextype(internal),
           TO SQL WITH FUNCTION int4recv(internal));
         COMMENT ON TRANSFORM FOR int LANGUAGE sql IS 'both ways';",
    );
    let (target, script, _) = round_trip(&source).await;
    let text = String::from_utf8(script).expect("utf-8");
    assert!(
        text.contains(
            "CREATE TRANSFORM FOR integer LANGUAGE sql (FROM SQL WITH FUNCTION prsd_lextype(internal), TO SQL WITH FUNCTION int4recv(internal));\n"
        ),
        "{text}"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    let transforms =
        "SELECT trftype::regtype, trflang, trffromsql::regprocedure, trftosql::regprocedure,
                             obj_description(oid, 'pg_transform') FROM pg_transform";
    assert_eq!(
        source.sql(transforms),
        "integer|14|prsd_lextype(internal)|int4recv(internal)|both ways\n"
    );
    assert_eq!(target.sql(transforms), source.sql(transforms));
}

/// Operator families and classes: a btree family with loose cross-type members and a
/// descending class in it (used by an index whose order it decides), a hash class on its
/// own implicit family (the regression suite's `part_test_int4_ops`, used by a hash
/// partition key), with a comment and an owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_families_and_classes() {
    let owner = Role::new("opc_owner");
    let source = TestDb::new("kinds_opc");
    source.sql(&format!(
        "CREATE SCHEMA opc;
         CREATE FUNCTION opc.rev_cmp(int, int) RETURNS int LANGUAGE sql IMMUTABLE STRICT
           AS 'SELECT btint4cmp($2, $1)';
         CREATE FUNCTION opc.hash_noop(int4, int8) RETURNS int8 LANGUAGE sql IMMUTABLE STRICT
           AS 'SELECT $1::int8';
         CREATE OPERATOR FAMILY opc.fam USING btree;
         ALTER OPERATOR FAMILY opc.fam USING btree ADD
           OPERATOR 1 < (int8, int4), FUNCTION 1 (int8, int4) btint84cmp(int8, int4);
         CREATE OPERATOR CLASS opc.rev_ops FOR TYPE int4 USING btree FAMILY opc.fam AS
           OPERATOR 1 >, OPERATOR 2 >=, OPERATOR 3 =, OPERATOR 4 <=, OPERATOR 5 <,
           FUNCTION 1 opc.rev_cmp(int, int);
         CREATE OPERATOR CLASS opc.part_test_int4_ops FOR TYPE int4 USING hash AS
           OPERATOR 1 =, FUNCTION 2 opc.hash_noop(int4, int8);
         COMMENT ON OPERATOR CLASS opc.rev_ops USING btree IS 'descending';
         ALTER OPERATOR FAMILY opc.fam USING btree OWNER TO {owner};
         CREATE TABLE opc.t (a int);
         INSERT INTO opc.t SELECT g FROM generate_series(1, 5) g;
         CREATE INDEX t_rev ON opc.t (a opc.rev_ops);
         CREATE TABLE opc.hp (a int) PARTITION BY HASH (a opc.part_test_int4_ops);
         CREATE TABLE opc.hp0 PARTITION OF opc.hp FOR VALUES WITH (MODULUS 2, REMAINDER 0);
         CREATE TABLE opc.hp1 PARTITION OF opc.hp FOR VALUES WITH (MODULUS 2, REMAINDER 1);
         INSERT INTO opc.hp SELECT g FROM generate_series(1, 6) g;",
        owner = owner.0
    ));
    let (target, script, _) = round_trip(&source).await;
    let text = String::from_utf8(script).expect("utf-8");
    assert!(
        text.contains("CREATE OPERATOR FAMILY opc.fam USING btree;\nALTER OPERATOR FAMILY opc.fam USING btree ADD\n    OPERATOR 1 <(bigint,integer),\n    FUNCTION 1 (bigint, integer) btint84cmp(bigint,integer);\n"),
        "{text}"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    // The index still sorts descending, and the hash partitions hold the same rows.
    let calls = "SET enable_seqscan = off;
                 SELECT string_agg(a::text, ',') FROM (SELECT a FROM opc.t ORDER BY a USING >) s;
                 SELECT tableoid::regclass, string_agg(a::text, ',' ORDER BY a) FROM opc.hp GROUP BY 1 ORDER BY 1;
                 EXPLAIN (COSTS OFF) SELECT a FROM opc.t ORDER BY a USING >;";
    let expected = source.sql(calls);
    assert!(expected.starts_with("5,4,3,2,1\nopc.hp0|"), "{expected}");
    assert!(
        expected.contains("Index Only Scan using t_rev"),
        "{expected}"
    );
    assert_eq!(target.sql(calls), expected);
}

/// Base types and shell types: the regression suite's `int8alias1` (I/O functions of the
/// `internal` language over `int8`, receive and send too, `LIKE int8`) and a type with a
/// default, a category, `PREFERRED` and a delimiter; a shell type never completed; a table
/// column, an operator and a cast over the base type; an owner and a comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_and_shell_types() {
    let owner = Role::new("type_owner");
    let source = TestDb::new("kinds_base");
    source.sql(&format!(
        "CREATE SCHEMA bt;
         CREATE TYPE bt.int8alias1;
         CREATE FUNCTION bt.int8alias1in(cstring) RETURNS bt.int8alias1
           STRICT IMMUTABLE LANGUAGE internal AS 'int8in';
         CREATE FUNCTION bt.int8alias1out(bt.int8alias1) RETURNS cstring
           STRICT IMMUTABLE LANGUAGE internal AS 'int8out';
         CREATE FUNCTION bt.int8alias1recv(internal) RETURNS bt.int8alias1
           STRICT IMMUTABLE LANGUAGE internal AS 'int8recv';
         CREATE FUNCTION bt.int8alias1send(bt.int8alias1) RETURNS bytea
           STRICT IMMUTABLE LANGUAGE internal AS 'int8send';
         CREATE TYPE bt.int8alias1 (input = bt.int8alias1in, output = bt.int8alias1out,
           receive = bt.int8alias1recv, send = bt.int8alias1send, like = int8,
           default = '7', category = 'N', preferred = false, delimiter = ';');
         CREATE FUNCTION bt.alias_eq(bt.int8alias1, bt.int8alias1) RETURNS bool
           STRICT IMMUTABLE LANGUAGE internal AS 'int8eq';
         CREATE OPERATOR bt.= (FUNCTION = bt.alias_eq, LEFTARG = bt.int8alias1,
           RIGHTARG = bt.int8alias1, COMMUTATOR = OPERATOR(bt.=));
         CREATE CAST (int8 AS bt.int8alias1) WITHOUT FUNCTION AS IMPLICIT;
         CREATE TYPE bt.never_done;
         COMMENT ON TYPE bt.int8alias1 IS 'int8 by another name';
         ALTER TYPE bt.int8alias1 OWNER TO {owner};
         CREATE TABLE bt.t (id int, v bt.int8alias1, w bt.int8alias1[]);
         INSERT INTO bt.t VALUES (1, '42', '{{1;2}}'), (2, DEFAULT, NULL);",
        owner = owner.0
    ));
    let (target, script, _) = round_trip(&source).await;
    let text = String::from_utf8(script).expect("utf-8");
    assert!(text.contains("CREATE TYPE bt.never_done;\n"), "{text}");
    let shell = text
        .find("CREATE TYPE bt.int8alias1;\n")
        .expect("the shell first");
    let input = text
        .find("CREATE OR REPLACE FUNCTION bt.int8alias1in")
        .expect("the input function");
    let full = text
        .find("CREATE TYPE bt.int8alias1 (\n")
        .expect("the full type");
    assert!(
        shell < input && input < full,
        "shell, functions, type in that order"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    let calls = "SELECT id, v, w, v OPERATOR(bt.=) 42::int8 FROM bt.t ORDER BY id";
    assert_eq!(source.sql(calls), "1|42|{1;2}|t\n2|7||f\n");
    assert_eq!(target.sql(calls), source.sql(calls));
    let types =
        "SELECT typname, typtype, typlen, typbyval, typalign, typcategory, typdelim, typdefault,
                        typinput::regproc, typreceive::regproc, typisdefined
                   FROM pg_type WHERE typnamespace = 'bt'::regnamespace ORDER BY 1";
    assert_eq!(target.sql(types), source.sql(types));
}

/// Event triggers of every state (enabled, disabled, `ENABLE REPLICA`, `ENABLE ALWAYS`), with
/// and without a tag filter, one owned by another superuser, one with a comment. One logs
/// every DDL command into a table: the dump creates them after everything else, so the
/// restore itself logs nothing (the fingerprints of the log table compare; an enabled
/// trigger before any other DDL would add rows), and their own comments and owners fire
/// none. Restored by psql and by the native restore on two sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_triggers_come_last_in_their_states() {
    let owner = Role::new("evt_owner");
    sql("postgres", &format!("ALTER ROLE {} SUPERUSER", owner.0));
    let source = TestDb::new("kinds_evt");
    source.sql(&format!(
        "CREATE SCHEMA evt;
         CREATE TABLE evt.ddl_log (n serial PRIMARY KEY, event text, tag text);
         CREATE FUNCTION evt.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO evt.ddl_log (event, tag) VALUES (tg_event, tg_tag); END $$;
         CREATE EVENT TRIGGER log_all ON ddl_command_end EXECUTE FUNCTION evt.log_ddl();
         CREATE EVENT TRIGGER log_tables ON ddl_command_start WHEN TAG IN ('CREATE TABLE', 'drop table')
           EXECUTE FUNCTION evt.log_ddl();
         ALTER EVENT TRIGGER log_tables DISABLE;
         CREATE EVENT TRIGGER on_drop ON sql_drop EXECUTE FUNCTION evt.log_ddl();
         ALTER EVENT TRIGGER on_drop ENABLE ALWAYS;
         CREATE EVENT TRIGGER \"On Rewrite\" ON table_rewrite EXECUTE FUNCTION evt.log_ddl();
         ALTER EVENT TRIGGER \"On Rewrite\" ENABLE REPLICA;
         ALTER EVENT TRIGGER on_drop OWNER TO {owner};
         COMMENT ON EVENT TRIGGER log_all IS 'logs every command';
         CREATE TABLE evt.t (id int);
         CREATE VIEW evt.v AS SELECT id FROM evt.t;",
        owner = owner.0
    ));
    let log = "SELECT n, event, tag FROM evt.ddl_log ORDER BY n";
    assert_eq!(
        source.sql(log),
        "1|ddl_command_end|CREATE TABLE\n2|ddl_command_end|CREATE VIEW\n",
        "COMMENT ON EVENT TRIGGER fires no event trigger"
    );
    let (target, script, _) = round_trip(&source).await;
    let text = String::from_utf8(script.clone()).expect("utf-8");
    assert!(
        text.contains(
            "CREATE EVENT TRIGGER log_tables ON ddl_command_start\n         WHEN TAG IN ('CREATE TABLE', 'DROP TABLE')\n   EXECUTE FUNCTION evt.log_ddl();\nALTER EVENT TRIGGER log_tables DISABLE;\n"
        ),
        "{text}"
    );
    // Nothing but the event triggers after the first of them.
    let first = text
        .find("CREATE EVENT TRIGGER")
        .expect("event triggers dumped");
    for line in text[first..].lines() {
        assert!(
            line.is_empty()
                || line.starts_with(' ')
                || line.starts_with("CREATE EVENT TRIGGER ")
                || line.starts_with("ALTER EVENT TRIGGER ")
                || line.starts_with("COMMENT ON EVENT TRIGGER ")
                || (line.starts_with("DO ") && line.contains("owner of event trigger")),
            "after the event triggers: {line}"
        );
    }
    assert!(
        text.contains(
            "CREATE EVENT TRIGGER log_all ON ddl_command_end\n   EXECUTE FUNCTION evt.log_ddl();\n"
        ) && text.contains("COMMENT ON EVENT TRIGGER log_all IS 'logs every command';\n"),
        "{text}"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    assert_eq!(target.sql(log), source.sql(log));
    let triggers = format!(
        "SELECT evtname, evtevent, evtenabled, evttags, evtfoid::regproc, pg_get_userbyid(evtowner) = '{}',
                obj_description(oid, 'pg_event_trigger')
           FROM pg_event_trigger ORDER BY 1",
        owner.0
    );
    assert_eq!(
        source.sql(&triggers),
        "On Rewrite|table_rewrite|R||evt.log_ddl|f|\n\
         log_all|ddl_command_end|O||evt.log_ddl|f|logs every command\n\
         log_tables|ddl_command_start|D|{\"CREATE TABLE\",\"DROP TABLE\"}|evt.log_ddl|f|\n\
         on_drop|sql_drop|A||evt.log_ddl|t|\n"
    );
    assert_eq!(target.sql(&triggers), source.sql(&triggers));
    // The restored triggers fire: the log grows by one row for this DDL.
    target.sql("CREATE TABLE evt.after_restore (id int)");
    assert_eq!(
        target.sql("SELECT tag FROM evt.ddl_log WHERE n > 2"),
        "CREATE TABLE\n"
    );
    let native = TestDb::new("kinds_evt_native");
    restore_native(&script, &native, 2).await;
    assert_pg_dump_equal(&source.name, &native.name);
    assert_eq!(native.sql(&triggers), source.sql(&triggers));
}

/// Foreign tables (over a foreign-data wrapper without a handler: any read of a foreign
/// table fails, so the dump proves it reads none): options and column options in their
/// order, `NOT NULL`, a default, a collation, a generated column, a check and a `NOT VALID`
/// one, a statistics target, one inheriting from a table, one a parent of a table, one a
/// partition, serial and identity columns, a disabled trigger, extended statistics, comments,
/// an owner and privileges (also on a column). Their rows are never dumped; the tables
/// around them keep theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_tables_without_their_rows() {
    let user = Role::new("ft_user");
    let source = TestDb::new("kinds_ft");
    source.sql(&format!(
        "CREATE FOREIGN DATA WRAPPER nohandler;
         CREATE SERVER elsewhere FOREIGN DATA WRAPPER nohandler;
         CREATE SCHEMA ft;
         CREATE TABLE ft.parent (id int NOT NULL, note text DEFAULT 'p');
         INSERT INTO ft.parent VALUES (1, 'one');
         CREATE FOREIGN TABLE ft.remote (
           id int OPTIONS (column_name 'remote_id', \"Z\" 'z', a 'a') NOT NULL,
           name text COLLATE \"C\" DEFAULT 'none',
           doubled int GENERATED ALWAYS AS (id * 2) STORED,
           CONSTRAINT positive CHECK (id > 0)
         ) SERVER elsewhere OPTIONS (table_name 'remote', schema_name 'app');
         ALTER FOREIGN TABLE ft.remote ALTER COLUMN name SET STATISTICS 50;
         ALTER FOREIGN TABLE ft.remote ADD CONSTRAINT small CHECK (id < 1000) NOT VALID;
         CREATE FOREIGN TABLE ft.child (extra int) INHERITS (ft.parent) SERVER elsewhere;
         ALTER FOREIGN TABLE ft.child ALTER COLUMN note SET DEFAULT 'child';
         CREATE TABLE ft.local_child (more text) INHERITS (ft.remote);
         INSERT INTO ft.local_child (id, name, more) VALUES (5, 'five', 'x');
         CREATE TABLE ft.measure (at int, v int) PARTITION BY RANGE (at);
         CREATE TABLE ft.measure_local PARTITION OF ft.measure FOR VALUES FROM (0) TO (100);
         CREATE FOREIGN TABLE ft.measure_remote PARTITION OF ft.measure
           FOR VALUES FROM (100) TO (200) SERVER elsewhere OPTIONS (table_name 'm2');
         INSERT INTO ft.measure VALUES (1, 10), (2, 20);
         CREATE FOREIGN TABLE ft.counted (id serial, ident int GENERATED BY DEFAULT AS IDENTITY)
           SERVER elsewhere;
         CREATE FUNCTION ft.stamp() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
         CREATE TRIGGER stamp BEFORE INSERT ON ft.remote FOR EACH ROW EXECUTE FUNCTION ft.stamp();
         ALTER FOREIGN TABLE ft.remote DISABLE TRIGGER stamp;
         CREATE STATISTICS ft.remote_stats ON id, name FROM ft.remote;
         COMMENT ON FOREIGN TABLE ft.remote IS 'lives elsewhere';
         COMMENT ON COLUMN ft.remote.id IS 'the remote key';
         ALTER FOREIGN TABLE ft.child OWNER TO {user};
         GRANT SELECT ON ft.remote TO {user};
         GRANT UPDATE (name) ON ft.remote TO {user};",
        user = user.0
    ));
    let (target, script, summary) = round_trip(&source).await;
    let text = String::from_utf8(script.clone()).expect("utf-8");
    assert!(
        text.contains(
            "\nSERVER elsewhere\nOPTIONS (\n    table_name 'remote',\n    schema_name 'app'\n);\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "ALTER FOREIGN TABLE ft.remote ALTER COLUMN id OPTIONS (\n    column_name 'remote_id',\n    \"Z\" 'z',\n    a 'a'\n);\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "ALTER TABLE ONLY ft.measure ATTACH PARTITION ft.measure_remote FOR VALUES FROM (100) TO (200);\n"
        ),
        "{text}"
    );
    let names: Vec<&str> = summary.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["ft.local_child", "ft.measure_local", "ft.parent"],
        "only the ordinary tables have rows in the dump"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    // Options in their order, which pg_dump's own output (sorted by name) does not show.
    let options = "SELECT c.relname, ft.ftoptions, s.srvname,
                          (SELECT string_agg(a.attname || coalesce(a.attfdwoptions::text, ''), ' ' ORDER BY a.attnum)
                             FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0)
                     FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid
                     JOIN pg_foreign_server s ON s.oid = ft.ftserver ORDER BY 1";
    assert_eq!(
        source.sql(options),
        "child||elsewhere|id note extra\n\
         counted||elsewhere|id ident\n\
         measure_remote|{table_name=m2}|elsewhere|at v\n\
         remote|{table_name=remote,schema_name=app}|elsewhere|id{column_name=remote_id,Z=z,a=a} name doubled\n"
    );
    assert_eq!(target.sql(options), source.sql(options));
    let inheritance = "SELECT inhrelid::regclass, inhparent::regclass, c.relispartition
                         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid ORDER BY inhrelid::regclass::text";
    assert_eq!(
        source.sql(inheritance),
        "ft.child|ft.parent|f\nft.local_child|ft.remote|f\nft.measure_local|ft.measure|t\nft.measure_remote|ft.measure|t\n"
    );
    assert_eq!(target.sql(inheritance), source.sql(inheritance));
    let native = TestDb::new("kinds_ft_native");
    restore_native(&script, &native, 2).await;
    assert_pg_dump_equal(&source.name, &native.name);
}

/// A foreign table that is a partition of a tree whose rows are loaded through its root (hash
/// on an enum, `catalog/routing.rs`) is refused by name: the restore would route the rows of
/// the local partitions itself, possibly into the foreign table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_partition_of_a_tree_loaded_through_its_root_is_refused() {
    let source = TestDb::new("kinds_ft_routed");
    source.sql(
        "CREATE FOREIGN DATA WRAPPER nohandler;
         CREATE SERVER elsewhere FOREIGN DATA WRAPPER nohandler;
         CREATE TYPE public.color AS ENUM ('red', 'green', 'blue');
         CREATE TABLE public.h (c public.color) PARTITION BY HASH (c);
         CREATE TABLE public.h0 PARTITION OF public.h FOR VALUES WITH (MODULUS 2, REMAINDER 0);
         CREATE FOREIGN TABLE public.h1 PARTITION OF public.h FOR VALUES WITH (MODULUS 2, REMAINDER 1)
           SERVER elsewhere;",
    );
    let err = dump(source.url(), DumpOptions::default())
        .await
        .expect_err("the dump refuses");
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(err.object(), Some("foreign table public.h1"));
    assert!(
        err.message()
            .contains("foreign table public.h1 (a partition of public.h): the dump loads"),
        "{err}"
    );
}

/// Conversions: one over a C function of a user schema (wrapping the server's own LATIN1 to
/// UTF8 conversion), a default one over the server's function; with a comment and an owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversions() {
    let owner = Role::new("conv_owner");
    let source = TestDb::new("kinds_conv");
    source.sql(&format!(
        "CREATE SCHEMA conv;
         CREATE FUNCTION conv.latin1_to_utf8(integer, integer, cstring, internal, integer, boolean)
           RETURNS integer AS '$libdir/utf8_and_iso8859_1', 'iso8859_1_to_utf8' LANGUAGE C STRICT;
         CREATE CONVERSION conv.mine FOR 'LATIN1' TO 'UTF8' FROM conv.latin1_to_utf8;
         CREATE DEFAULT CONVERSION conv.\"Default One\" FOR 'UTF8' TO 'LATIN1' FROM utf8_to_iso8859_1;
         COMMENT ON CONVERSION conv.mine IS 'by hand';
         ALTER CONVERSION conv.mine OWNER TO {owner};",
        owner = owner.0
    ));
    let (target, script, _) = round_trip(&source).await;
    let text = String::from_utf8(script.clone()).expect("utf-8");
    assert!(
        text.contains(
            "CREATE CONVERSION conv.mine FOR 'LATIN1' TO 'UTF8' FROM conv.latin1_to_utf8;\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "CREATE DEFAULT CONVERSION conv.\"Default One\" FOR 'UTF8' TO 'LATIN1' FROM utf8_to_iso8859_1;\n"
        ),
        "{text}"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    let conversions = format!(
        "SELECT conname, pg_encoding_to_char(conforencoding), pg_encoding_to_char(contoencoding),
                conproc::regproc, condefault, pg_get_userbyid(conowner) = '{}', obj_description(oid, 'pg_conversion')
           FROM pg_conversion WHERE connamespace = 'conv'::regnamespace ORDER BY 1",
        owner.0
    );
    assert_eq!(
        source.sql(&conversions),
        "Default One|UTF8|LATIN1|utf8_to_iso8859_1|t|f|\nmine|LATIN1|UTF8|conv.latin1_to_utf8|f|t|by hand\n"
    );
    assert_eq!(target.sql(&conversions), source.sql(&conversions));
    // The default conversion is found through the search path and converts.
    let convert = |db: &TestDb| {
        common::psql(
            &db.name,
            &[
                "-A",
                "-t",
                "-c",
                "SET search_path = conv, pg_catalog",
                "-c",
                "SELECT convert_to('naïve', 'LATIN1')",
            ],
        )
    };
    assert_eq!(convert(&source), "\\x6e61ef7665\n");
    assert_eq!(convert(&target), convert(&source));
    let native = TestDb::new("kinds_conv_native");
    restore_native(&script, &native, 1).await;
    assert_pg_dump_equal(&source.name, &native.name);
}

/// Text search parsers (with and without a headline function) and templates (with and
/// without an init function) over the server's own functions, a dictionary on the template,
/// configurations on the parsers used by a generated column; with comments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_search_parsers_and_templates() {
    let source = TestDb::new("kinds_tsp");
    source.sql(
        "CREATE SCHEMA tsp;
         CREATE TEXT SEARCH PARSER tsp.words (START = prsd_start, GETTOKEN = prsd_nexttoken,
           END = prsd_end, LEXTYPES = prsd_lextype, HEADLINE = prsd_headline);
         CREATE TEXT SEARCH PARSER tsp.bare (START = prsd_start, GETTOKEN = prsd_nexttoken,
           END = prsd_end, LEXTYPES = prsd_lextype);
         CREATE TEXT SEARCH TEMPLATE tsp.plain (INIT = dsimple_init, LEXIZE = dsimple_lexize);
         CREATE TEXT SEARCH TEMPLATE tsp.noinit (LEXIZE = dsimple_lexize);
         CREATE TEXT SEARCH DICTIONARY tsp.stop (TEMPLATE = tsp.plain, STOPWORDS = english);
         CREATE TEXT SEARCH CONFIGURATION tsp.cfg (PARSER = tsp.words);
         ALTER TEXT SEARCH CONFIGURATION tsp.cfg ADD MAPPING FOR asciiword, word WITH tsp.stop;
         CREATE TEXT SEARCH CONFIGURATION tsp.cfg2 (PARSER = tsp.bare);
         ALTER TEXT SEARCH CONFIGURATION tsp.cfg2 ADD MAPPING FOR asciiword WITH simple;
         COMMENT ON TEXT SEARCH PARSER tsp.words IS 'the default parser again';
         COMMENT ON TEXT SEARCH TEMPLATE tsp.plain IS 'simple again';
         CREATE TABLE tsp.docs (id int, body text,
           tsv tsvector GENERATED ALWAYS AS (to_tsvector('tsp.cfg'::regconfig, body)) STORED);
         INSERT INTO tsp.docs (id, body) VALUES (1, 'The quick brown fox'), (2, 'and the lazy dog');",
    );
    let (target, script, _) = round_trip(&source).await;
    let text = String::from_utf8(script.clone()).expect("utf-8");
    assert!(
        text.contains(
            "CREATE TEXT SEARCH PARSER tsp.words (\n    START = prsd_start,\n    GETTOKEN = prsd_nexttoken,\n    END = prsd_end,\n    HEADLINE = prsd_headline,\n    LEXTYPES = prsd_lextype );\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("CREATE TEXT SEARCH TEMPLATE tsp.noinit (\n    LEXIZE = dsimple_lexize );\n"),
        "{text}"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    let calls = "SELECT id, tsv, to_tsvector('tsp.cfg2', body),
                        ts_headline('tsp.cfg', body, to_tsquery('tsp.cfg', 'fox | dog'))
                   FROM tsp.docs ORDER BY id";
    let expected = source.sql(calls);
    assert!(expected.contains("<b>fox</b>"), "{expected}");
    assert_eq!(target.sql(calls), expected);
    let catalog = "SELECT p.prsname, p.prsheadline::regproc, obj_description(p.oid, 'pg_ts_parser')
                     FROM pg_ts_parser p WHERE p.prsnamespace = 'tsp'::regnamespace
                   UNION ALL
                   SELECT t.tmplname, t.tmplinit::regproc, obj_description(t.oid, 'pg_ts_template')
                     FROM pg_ts_template t WHERE t.tmplnamespace = 'tsp'::regnamespace ORDER BY 1";
    assert_eq!(
        source.sql(catalog),
        "bare|-|\nnoinit|-|\nplain|dsimple_init|simple again\nwords|prsd_headline|the default parser again\n"
    );
    assert_eq!(target.sql(catalog), source.sql(catalog));
    let native = TestDb::new("kinds_tsp_native");
    restore_native(&script, &native, 1).await;
    assert_pg_dump_equal(&source.name, &native.name);
}

/// Procedural languages outside extensions: a trusted one over handler, inline and validator
/// functions of a user schema (C functions of the plpgsql library), an untrusted one over
/// the server's own handler (which pg_dump would write as a bare `CREATE OR REPLACE
/// PROCEDURAL LANGUAGE`, restorable only as an extension); functions in both, used by a
/// column default and a check; an owner, privileges and a comment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn procedural_languages() {
    let owner = Role::new("lang_owner");
    let user = Role::new("lang_user");
    let source = TestDb::new("kinds_lang");
    source.sql(&format!(
        "CREATE SCHEMA pl;
         CREATE FUNCTION pl.handler() RETURNS language_handler
           AS '$libdir/plpgsql', 'plpgsql_call_handler' LANGUAGE C;
         CREATE FUNCTION pl.inline(internal) RETURNS void
           AS '$libdir/plpgsql', 'plpgsql_inline_handler' LANGUAGE C;
         CREATE FUNCTION pl.validator(oid) RETURNS void
           AS '$libdir/plpgsql', 'plpgsql_validator' LANGUAGE C;
         CREATE TRUSTED LANGUAGE plmine HANDLER pl.handler INLINE pl.inline VALIDATOR pl.validator;
         CREATE LANGUAGE plcore HANDLER plpgsql_call_handler;
         CREATE FUNCTION pl.answer() RETURNS int LANGUAGE plmine AS $$BEGIN RETURN 42; END$$;
         CREATE FUNCTION pl.twice(int) RETURNS int LANGUAGE plcore AS $$BEGIN RETURN $1 * 2; END$$;
         CREATE TABLE pl.t (id int DEFAULT pl.answer(), v int CHECK (pl.twice(v) < 100));
         INSERT INTO pl.t (v) VALUES (3), (7);
         COMMENT ON LANGUAGE plmine IS 'plpgsql by another name';
         ALTER LANGUAGE plcore OWNER TO {owner};
         REVOKE USAGE ON LANGUAGE plmine FROM PUBLIC;
         GRANT USAGE ON LANGUAGE plmine TO {user};",
        owner = owner.0,
        user = user.0
    ));
    let (target, script, _) = round_trip(&source).await;
    let text = String::from_utf8(script.clone()).expect("utf-8");
    let language = text
        .find("CREATE TRUSTED PROCEDURAL LANGUAGE plmine HANDLER pl.handler INLINE pl.inline VALIDATOR pl.validator;\n")
        .expect("the trusted language");
    let handler = text
        .find("CREATE OR REPLACE FUNCTION pl.handler()")
        .expect("its handler");
    let function = text
        .find("CREATE OR REPLACE FUNCTION pl.answer()")
        .expect("a function in it");
    assert!(handler < language && language < function, "{text}");
    assert!(
        text.contains("CREATE PROCEDURAL LANGUAGE plcore HANDLER plpgsql_call_handler;\n"),
        "{text}"
    );
    assert_pg_dump_equal(&source.name, &target.name);
    let languages = "SELECT lanname, lanpltrusted, lanplcallfoid::regproc, laninline::regproc,
                            lanvalidator::regproc, pg_get_userbyid(lanowner), lanacl,
                            obj_description(oid, 'pg_language')
                       FROM pg_language WHERE oid >= 16384 AND lanname <> 'plpgsql' ORDER BY 1";
    assert_eq!(
        source.sql(languages),
        format!(
            "plcore|f|plpgsql_call_handler|-|-|{owner}||\n\
             plmine|t|pl.handler|pl.inline|pl.validator|postgres|{{postgres=U/postgres,{user}=U/postgres}}|plpgsql by another name\n",
            owner = owner.0,
            user = user.0
        )
    );
    assert_eq!(target.sql(languages), source.sql(languages));
    let calls = "SELECT id, pl.twice(v) FROM pl.t ORDER BY v";
    assert_eq!(source.sql(calls), "42|6\n42|14\n");
    assert_eq!(target.sql(calls), source.sql(calls));
    target.sql("DO LANGUAGE plmine $$BEGIN PERFORM pl.answer(); END$$");
    let native = TestDb::new("kinds_lang_native");
    restore_native(&script, &native, 2).await;
    assert_pg_dump_equal(&source.name, &native.name);
}

/// Drops the subscriptions of the named databases (disabled, detached from their slot first,
/// so nothing connects), then the databases named for dropping: a database with a
/// subscription cannot be dropped. Declared after the databases it cleans, so it runs first.
struct DropSubscriptions {
    of: Vec<String>,
    databases: Vec<String>,
}

impl Drop for DropSubscriptions {
    fn drop(&mut self) {
        let drop_all = "DO $$DECLARE s record; BEGIN
            FOR s IN SELECT subname FROM pg_subscription
                      WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database()) LOOP
              EXECUTE format('ALTER SUBSCRIPTION %I DISABLE', s.subname);
              EXECUTE format('ALTER SUBSCRIPTION %I SET (slot_name = NONE)', s.subname);
              EXECUTE format('DROP SUBSCRIPTION %I', s.subname);
            END LOOP; END $$";
        for db in self.of.iter().chain(&self.databases) {
            let _ = std::process::Command::new("psql")
                .args([
                    "-X",
                    "-q",
                    "-h",
                    common::HOST,
                    "-U",
                    common::SUPERUSER,
                    "-d",
                    db,
                    "-c",
                ])
                .arg(drop_all)
                .output();
        }
        for db in &self.databases {
            let _ = std::process::Command::new("psql")
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
                .arg(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .output();
        }
    }
}

/// Subscriptions (one with every option away from its default, one without a slot), with a
/// comment and an owner: dumped by a superuser as pg_dump writes them (`connect = false`:
/// the restore connects nowhere), restored by psql and by the native restore into a scratch
/// database that `verify --level restore` can drop again; left out with a warning naming
/// them when the role is not a superuser. The connection string's password is in the
/// superuser's archive only, never in a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_by_a_superuser_only() {
    let owner = Role::new("sub_owner");
    sql("postgres", &format!("ALTER ROLE {} SUPERUSER", owner.0));
    let reader = Role::new("sub_reader");
    let source = TestDb::new("kinds_sub");
    let target = TestDb::new("kinds_sub_restore");
    let scratch_name = common::unique("kinds_sub_scratch");
    let _cleanup = DropSubscriptions {
        of: vec![source.name.clone(), target.name.clone()],
        databases: vec![scratch_name.clone()],
    };
    source.sql(&format!(
        "CREATE SUBSCRIPTION every_option
           CONNECTION 'host=127.0.0.1 port=5432 dbname=nowhere user=app password=hunter2-secret'
           PUBLICATION pub_one, \"Pub Two\"
           WITH (connect = false, slot_name = 'custom_slot', binary = true, streaming = on,
                 disable_on_error = true, synchronous_commit = 'local');
         CREATE SUBSCRIPTION \"No Slot\" CONNECTION 'dbname=nowhere' PUBLICATION p
           WITH (connect = false, slot_name = NONE);
         COMMENT ON SUBSCRIPTION every_option IS 'from the app';
         ALTER SUBSCRIPTION \"No Slot\" OWNER TO {owner};",
        owner = owner.0
    ));
    let (script, summary) = dump(source.url(), DumpOptions::default())
        .await
        .expect("the superuser's dump succeeds");
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    let text = String::from_utf8(script.clone()).expect("utf-8");
    assert!(
        text.contains(
            "CREATE SUBSCRIPTION every_option CONNECTION 'host=127.0.0.1 port=5432 dbname=nowhere user=app password=hunter2-secret' PUBLICATION pub_one, \"Pub Two\" WITH (connect = false, slot_name = 'custom_slot', binary = true, streaming = on, disable_on_error = true, synchronous_commit = 'local');\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "CREATE SUBSCRIPTION \"No Slot\" CONNECTION 'dbname=nowhere' PUBLICATION p WITH (connect = false, slot_name = NONE);\n"
        ),
        "{text}"
    );
    let stderr = restore(&script, &target.name);
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("tables were not subscribed"),
            "only the server's reminder to refresh: {stderr}"
        );
    }
    assert_pg_dump_equal(&source.name, &target.name);
    let subscriptions = "SELECT subname, subconninfo, subslotname, subenabled, subbinary, substream,
                                subtwophasestate, subdisableonerr, subsynccommit, subpublications,
                                pg_get_userbyid(subowner), obj_description(oid, 'pg_subscription')
                           FROM pg_subscription
                          WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                          ORDER BY 1";
    let expected = source.sql(subscriptions);
    assert_eq!(
        expected,
        format!(
            "No Slot|dbname=nowhere||f|f|f|d|f|off|{{p}}|{owner}|\n\
             every_option|host=127.0.0.1 port=5432 dbname=nowhere user=app password=hunter2-secret|custom_slot|f|t|t|d|t|local|{{pub_one,\"Pub Two\"}}|postgres|from the app\n",
            owner = owner.0
        )
    );
    assert_eq!(target.sql(subscriptions), expected);

    // The native restore into a scratch database, dropped again as verify drops it.
    let scratch = PostgresScratch::new(url_for(common::SUPERUSER, "postgres"));
    let restored = scratch
        .create(&scratch_name)
        .await
        .expect("scratch created");
    let body = futures::stream::iter(vec![Ok(Bytes::copy_from_slice(&script))]).boxed();
    restored
        .restore(PayloadFormat::Sql, body, RestoreOptions::default())
        .await
        .expect("the native restore succeeds");
    assert_eq!(sql(&scratch_name, subscriptions), expected);
    scratch
        .drop_scratch(&scratch_name)
        .await
        .expect("a scratch database with subscriptions is dropped");
    assert_eq!(
        sql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{scratch_name}'")
        ),
        "0\n"
    );

    // A role that is not a superuser cannot read the connection strings: a warning instead.
    let (script, summary) = dump(url_for(&reader.0, &source.name), DumpOptions::default())
        .await
        .expect("the dump succeeds without them");
    let text = String::from_utf8(script).expect("utf-8");
    assert!(!text.contains("SUBSCRIPTION"), "{text}");
    assert_eq!(
        summary.warnings,
        [
            "subscriptions not dumped because the role is not a superuser (as pg_dump; only a \
             superuser may read their connection strings): No Slot, every_option"
        ]
    );
}

/// `exporter restore --clean` over a restore of event triggers, subscriptions and a
/// procedural language: the target lists them as existing objects (a restore without
/// `--clean` refuses it), `clean` drops them all, and the archive restores again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_drops_event_triggers_subscriptions_and_languages() {
    let source = TestDb::new("kinds_clean");
    let target = TestDb::new("kinds_clean_target");
    let _cleanup = DropSubscriptions {
        of: vec![source.name.clone(), target.name.clone()],
        databases: Vec::new(),
    };
    source.sql(
        "CREATE LANGUAGE plcore HANDLER plpgsql_call_handler;
         CREATE SCHEMA app;
         CREATE FUNCTION app.twice(int) RETURNS int LANGUAGE plcore AS $$BEGIN RETURN $1 * 2; END$$;
         CREATE FUNCTION app.note() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;
         CREATE EVENT TRIGGER note_drops ON sql_drop EXECUTE FUNCTION app.note();
         CREATE SUBSCRIPTION from_app CONNECTION 'dbname=nowhere' PUBLICATION p
           WITH (connect = false, slot_name = NONE);",
    );
    let (script, _) = dump(source.url(), DumpOptions::default())
        .await
        .expect("the dump succeeds");
    restore_native(&script, &target, 1).await;
    let restored = PostgresTarget::new(target.url());
    assert_eq!(
        restored.existing_objects().await.unwrap(),
        [
            "event trigger note_drops",
            "function app.note()",
            "function app.twice(integer)",
            "procedural language plcore",
            "schema app",
            "subscription from_app",
        ]
    );
    restored.clean().await.expect("clean drops them");
    assert_eq!(
        restored.existing_objects().await.unwrap(),
        Vec::<String>::new()
    );
    restore_native(&script, &target, 1).await;
    assert_pg_dump_equal(&source.name, &target.name);
}
