//! Object kinds the dump once refused (issue 18, PARITY.md), one test per kind: created in a
//! throw-away database the way PostgreSQL's regression suite creates them, dumped through the
//! adapter, restored with stock `psql`, and compared by pg_dump itself (schema, owners,
//! privileges, comments) and by calling the objects on both sides.

mod common;

use common::{Role, TestDb, assert_pg_dump_equal, dump, restore, round_trip};
use exporter_contract::DumpOptions;

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
