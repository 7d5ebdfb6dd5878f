//! Partition trees whose rows must be loaded through their root (issue 15, kind 1).
//!
//! A dump normally loads each leaf partition's rows into that leaf by name. That is only
//! right when the leaf a row belongs to is the same on every server. It is not when the
//! partition key routes rows by something that differs between servers:
//!
//! - **hash partitioning on an enum**: the hash of an enum value is the hash of its label's
//!   OID, and a restore gives the labels new OIDs, so rows fail with "new row for relation …
//!   violates partition constraint". pg_dump detects exactly this case (hash opclass
//!   `enum_ops` in `pg_partitioned_table.partclass`, `getPartitioningInfo` and
//!   `forcePartitionRootLoad` in pg_dump.c, PostgreSQL 15.3 and later) and loads such tables
//!   through their root. The same holds wherever an enum hides inside the hashed value — a
//!   domain over an enum, an array, range or multirange of enums, a composite type with an
//!   enum field — which pg_dump's check does not see;
//! - **range partitioning on text under a collation whose order depends on the server**:
//!   every collation other than `C`/`POSIX` (libc) and the builtin provider: libc and ICU
//!   orders change between library versions, and the database's `default` collation is the
//!   target database's, which need not be the source's (pg_dump's documentation of
//!   `--load-via-partition-root` names this case);
//! - **a nondeterministic (ICU) collation** in a hash or list key: equality and hashing then
//!   follow the ICU version;
//! - **an operator class that is not built in** (user or extension code decides the leaf),
//!   and a hash or range key expression whose type cannot be read from the catalog.
//!
//! Such a tree is loaded as a whole through its top-most root: every leaf's `COPY` block
//! targets the root (`COPY root (columns) FROM stdin;`, the leaf's rows), and the target
//! server routes each row itself — sequential and parallel dumps alike. Its rows are
//! fingerprinted together under the root's name, since a row may legitimately land in
//! another leaf of the restore (FORMAT.md, "Fingerprints"). The decision reads only what the
//! restore reproduces (strategies, key types, operator classes, collations), so a restored
//! database makes the same decision and its fingerprints compare.

/// SQL common table expressions for `WITH RECURSIVE`: `unsafe` holds the `pg_class` OIDs
/// (column `partrelid`) of the partitioned tables whose routing depends on the server (see
/// the module docs). Key types are followed through domains, arrays, ranges, multiranges and
/// composite types (with each level's collation).
pub(super) const UNSAFE_CTES: &str = "keys AS (
  SELECT pt.partrelid, pt.partstrat, pt.partclass[k.i] AS opc, pt.partcollation[k.i] AS coll,
         COALESCE((SELECT a.atttypid FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[k.i] AND pt.partattrs[k.i] <> 0),
                  (SELECT o.opcintype FROM pg_catalog.pg_opclass o JOIN pg_catalog.pg_type t ON t.oid = o.opcintype
                    WHERE o.oid = pt.partclass[k.i] AND t.typtype <> 'p')) AS typ
    FROM pg_catalog.pg_partitioned_table pt, pg_catalog.generate_series(0, pt.partnatts - 1) k(i)
), closure(partrelid, typ, coll) AS (
  SELECT partrelid, typ, coll FROM keys WHERE typ IS NOT NULL
  UNION
  SELECT c.partrelid, s.typ, s.coll FROM closure c
    JOIN pg_catalog.pg_type t ON t.oid = c.typ,
    LATERAL (SELECT t.typbasetype, c.coll WHERE t.typtype = 'd'
             UNION ALL SELECT t.typelem, c.coll WHERE t.typelem <> 0 AND t.typlen = -1 AND t.typtype = 'b'
             UNION ALL SELECT r.rngsubtype, r.rngcollation FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid
             UNION ALL SELECT r.rngtypid, c.coll FROM pg_catalog.pg_range r WHERE r.rngmultitypid = t.oid
             UNION ALL SELECT a.atttypid, a.attcollation FROM pg_catalog.pg_attribute a
                        WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) s(typ, coll)
), unsafe AS (
SELECT DISTINCT k.partrelid FROM keys k JOIN pg_catalog.pg_opclass o ON o.oid = k.opc
 WHERE k.opc >= 16384
    OR (k.partstrat = 'h' AND (o.opcintype = 'pg_catalog.anyenum'::pg_catalog.regtype OR k.typ IS NULL))
    OR (k.partstrat = 'r' AND k.typ IS NULL)
    OR EXISTS (SELECT 1 FROM closure c JOIN pg_catalog.pg_type t ON t.oid = c.typ
                WHERE c.partrelid = k.partrelid AND k.partstrat = 'h' AND t.typtype = 'e')
    OR EXISTS (SELECT 1 FROM closure c JOIN pg_catalog.pg_collation co ON co.oid = c.coll
                WHERE c.partrelid = k.partrelid
                  AND (NOT co.collisdeterministic
                       OR (k.partstrat = 'r' AND NOT ((co.collprovider = 'c' AND co.collcollate IN ('C', 'POSIX'))
                                                      OR co.collprovider = 'b'))))
)";

/// SQL expression over `pg_class c` (a table): the quoted name of its top-most partition
/// root when its tree holds a partitioned table of `unsafe` (see [`UNSAFE_CTES`]), else NULL.
/// A tree holds such a table exactly when that table's root is the tree's root; comparing
/// roots costs one `pg_partition_root` per partition, where walking each partition's whole
/// tree (`pg_partition_tree`) cost 1.5 s on the regression database's 240 partitions.
pub(super) const ROOT_IF_ROUTED_SQL: &str = "CASE WHEN c.relispartition
       AND pg_catalog.pg_partition_root(c.oid) IN (SELECT pg_catalog.pg_partition_root(partrelid) FROM unsafe)
  THEN (SELECT pg_catalog.quote_ident(rn.nspname) || '.' || pg_catalog.quote_ident(rc.relname)
          FROM pg_catalog.pg_class rc JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
         WHERE rc.oid = pg_catalog.pg_partition_root(c.oid)) END";
