//! The dump's size estimate ([`exporter_contract::DumpMeta::size_hint`]): the bytes the
//! tables' `COPY` text will take, for the progress bar's ETA and the S3 part size.
//!
//! A table's size on disk is a poor guide to its `COPY` text: a heap tuple carries 24 bytes
//! of header and a 4-byte line pointer, pages keep free space, and values are stored in
//! binary (issue 16: `pg_table_size` overestimated a table of md5 strings by 1.7x, while a
//! row of timestamps is longer as text than on disk). So the largest tables are **sampled**:
//! up to a few hundred pages (an eighth of the table at most) read with `TABLESAMPLE SYSTEM`
//! (block sampling: only the chosen pages are read;
//! <https://www.postgresql.org/docs/current/sql-select.html#SQL-FROM>), each
//! sampled row measured as text (`ROW(columns)::text`, the same output functions as `COPY`,
//! parentheses for a newline, commas for tabs), and the bytes per page scaled to the table's
//! pages. Out-of-line (TOAST) values are measured detoasted in the rows that hold them: a
//! sample reads about the same share of the TOAST as of the heap, so a table is sampled only
//! while that share fits [`TOAST_BUDGET`], and the estimate of a table sampled in part is at
//! least its TOAST size (a rare huge value the sample missed still counts). A table whose TOAST
//! outweighs its heap and does not fit counts its size on disk as it is (as text its values
//! may be larger: bytea doubles in hex). Other tables not sampled — small ones, and large
//! ones beyond the budgets — take their size on disk times the ratio the sampled tables
//! showed.
//!
//! The sample runs in the snapshot's transaction inside a savepoint: a table the sample
//! cannot read (row-level security, a failing output function) gives up its estimate, never
//! the transaction; the `COPY` then reports the problem as usual. It reads the tables, so it
//! runs only once the dump holds their locks: never in `check`'s dry run, which takes none
//! (a table another session holds exclusively would make it wait).

use super::DataTable;
use crate::connect::Conn;

/// Tables at least this large on disk are sampled (while the budgets last); smaller ones are
/// scaled.
pub const SAMPLE_FROM: u64 = 1 << 20;

/// Pages sampled from one table (4 MiB of 8 KiB pages).
pub const SAMPLE_PAGES: u64 = 512;

/// Pages sampled over all tables (64 MiB of 8 KiB pages), largest tables first.
pub const SAMPLE_BUDGET: u64 = 8192;

/// A sample reads at most this share of a table's pages (one in `SAMPLE_SHARE`), but at least
/// [`SAMPLE_MIN_PAGES`]: a table of 1 to 4 MiB is otherwise read whole by its sample, which
/// costs as much as its `COPY` (on PostgreSQL's regression database, 30 such tables took
/// 250 ms of the dump's start, more than a third of pg_dump's whole run).
pub const SAMPLE_SHARE: u64 = 8;

/// The fewest pages a sample reads (the whole table if it has fewer).
pub const SAMPLE_MIN_PAGES: u64 = 32;

/// TOAST bytes the samples may read over all tables (their share of each table's TOAST).
pub const TOAST_BUDGET: u64 = 64 << 20;

const SAVEPOINT: &str = "exporter_size_hint";

/// One table's sizes on disk.
struct OnDisk {
    /// Index in the plan's tables.
    table: usize,
    /// The main fork (`pg_relation_size`).
    heap: u64,
    /// Heap, TOAST, free space map and visibility map (`pg_table_size`).
    total: u64,
    /// The TOAST relation with its index (`pg_total_relation_size` of `reltoastrelid`).
    toast: u64,
    /// `block_size`.
    block: u64,
}

/// Estimated `COPY` text bytes of `tables`; `None` if even the sizes on disk cannot be read
/// (then the dump goes on without an estimate).
pub async fn size_hint(conn: &mut Conn, tables: &[DataTable]) -> Option<u64> {
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let rows = conn
        .client
        .query(
            "SELECT c.oid, pg_catalog.pg_relation_size(c.oid), pg_catalog.pg_table_size(c.oid), \
                    COALESCE(pg_catalog.pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0), \
                    pg_catalog.current_setting('block_size')::bigint \
               FROM pg_catalog.pg_class c WHERE c.oid = ANY($1)",
            &[&oids],
        )
        .await
        .ok()?;
    let size = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut disk: Vec<OnDisk> = tables
        .iter()
        .enumerate()
        .filter_map(|(table, t)| {
            // An estimate: a row that cannot be read (a NULL size of a table dropped since)
            // leaves the table out of the sample.
            let r = rows
                .iter()
                .find(|r| r.try_get::<_, u32>(0).ok() == Some(t.oid))?;
            let col = |i: usize| r.try_get::<_, i64>(i).ok().map(size);
            Some(OnDisk {
                table,
                heap: col(1)?,
                total: col(2)?,
                toast: col(3)?,
                block: col(4)?.max(1),
            })
        })
        .collect();
    disk.sort_by(|a, b| b.total.cmp(&a.total).then(a.table.cmp(&b.table)));
    let (mut budget, mut toast_budget) = (SAMPLE_BUDGET, TOAST_BUDGET);
    // Sampled tables: estimated text bytes, and their size on disk (for the ratio).
    let (mut sampled_text, mut sampled_disk) = (0u64, 0u64);
    let mut estimate = 0u64;
    let mut unsampled = 0u64;
    for d in &disk {
        let pages = d.heap / d.block;
        let want = SAMPLE_PAGES
            .min(budget)
            .min((pages / SAMPLE_SHARE).max(SAMPLE_MIN_PAGES))
            .min(pages);
        // The share of the TOAST the sample detoasts.
        let toast_read = d
            .toast
            .saturating_mul(want)
            .checked_div(pages)
            .unwrap_or(d.toast);
        let text = if d.total >= SAMPLE_FROM && want > 0 && toast_read <= toast_budget {
            budget -= want;
            toast_budget -= toast_read;
            // A whole table read is measured, not estimated.
            let floor = if want < pages { d.toast } else { 0 };
            sample(conn, &tables[d.table], pages, want)
                .await
                .map(|t| t.max(floor))
        } else {
            None
        };
        match text {
            Some(t) => {
                sampled_text += t;
                sampled_disk += d.total;
                estimate += t;
            }
            None if d.toast > d.heap => estimate += d.total,
            None => unsampled += d.total,
        }
    }
    let scaled = if sampled_disk > 0 {
        (unsampled as f64 * sampled_text as f64 / sampled_disk as f64) as u64
    } else {
        unsampled
    };
    Some(estimate + scaled)
}

/// The `COPY` text bytes of `table` (`pages` pages in its heap) estimated from about `want`
/// pages of it; `None` when the sample cannot be read (the savepoint is rolled back).
async fn sample(conn: &mut Conn, table: &DataTable, pages: u64, want: u64) -> Option<u64> {
    if pages == 0 || want == 0 {
        return None;
    }
    let percent = (want as f64 * 100.0 / pages as f64).min(100.0);
    // `ROW(a, b)::text` is `(a,b)`: the parentheses stand for the newline, the commas for the
    // tabs. A table without columns copies empty lines.
    let width = if table.columns.is_empty() {
        "1".to_owned()
    } else {
        format!(
            "pg_catalog.octet_length(ROW({})::pg_catalog.text) - 1",
            table.columns
        )
    };
    let sql = format!(
        "SELECT pg_catalog.count(DISTINCT (x.ctid::pg_catalog.text::pg_catalog.point)[0])::bigint, \
                COALESCE(pg_catalog.sum({width}), 0)::bigint \
           FROM ONLY {} x TABLESAMPLE SYSTEM ({percent}) REPEATABLE (0)",
        table.name
    );
    let client = &conn.client;
    client
        .batch_execute(&format!("SAVEPOINT {SAVEPOINT}"))
        .await
        .ok()?;
    // Reading with a SELECT plans with the table's index expressions: under the path their
    // functions need (see `loadcode.rs`), as the page ranges of a parallel dump are read.
    let measured = async {
        if let Some(set) = &table.search_path {
            client.batch_execute(set).await?;
        }
        let row = client.query_one(&sql, &[]).await?;
        if table.search_path.is_some() {
            client.batch_execute(super::RESET_SEARCH_PATH).await?;
        }
        Ok::<_, tokio_postgres::Error>((row.try_get::<_, i64>(0)?, row.try_get::<_, i64>(1)?))
    }
    .await;
    let end = match measured {
        Ok(_) => format!("RELEASE SAVEPOINT {SAVEPOINT}"),
        Err(ref e) => {
            tracing::debug!(table = %table.name, error = %e, "size sample failed");
            format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}; RELEASE SAVEPOINT {SAVEPOINT}")
        }
    };
    client.batch_execute(&end).await.ok()?;
    let (sampled_pages, bytes) = measured.ok()?;
    let (sampled_pages, bytes) = (
        u64::try_from(sampled_pages).ok()?,
        u64::try_from(bytes).ok()?,
    );
    if sampled_pages == 0 {
        // No live row on the pages read (a table emptied or mostly dead): the sample says
        // nothing; the table is scaled instead.
        return None;
    }
    Some((bytes as f64 * pages as f64 / sampled_pages as f64) as u64)
}
