//! The restore-side check: row counts and fingerprints of every table of a database, computed
//! as the dump computes them (see the crate docs, "Fingerprint"), on up to `jobs` raw COPY
//! connections that import one exported snapshot — the dump's parallel readers
//! (`parallel.rs`) without their output.
//!
//! One connection (tokio-postgres) opens the snapshot, lists the tables, exports the snapshot
//! (`pg_export_snapshot()`) and stays open until every reader is done (an exported snapshot
//! lives as long as its transaction). With `jobs` = 1, one reader reads the tables whole, in
//! order. With more, the work is one item per table, biggest first, and tables larger than
//! [`FingerprintOptions::range_bytes`] on disk are split into page ranges read with TID range
//! scans, as the parallel dump splits them ([`crate::parallel::split`]); `jobs` readers take
//! the items from one queue. A fingerprint is an order-independent sum
//! ([`exporter_contract::Fingerprint::combine`]), so the ranges of a table and the leaves of a
//! tree loaded through its root add up to what one reader computes: the result is the same
//! for every `jobs`, in the same order (the tables' order, then the large objects). Large
//! objects are read on the snapshot's own connection while the readers work.
//!
//! Nothing is locked: the pass reads a scratch database nobody else uses (or, through
//! [`crate::fingerprint_database`], any database, inside one snapshot all the same).
//!
//! Memory: one piece of at most [`CHUNK`] bytes per reader; rows of any size are hashed as
//! they stream past ([`RowHasher`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use exporter_contract::produce::CHUNK;
use exporter_contract::{EngineError, ErrorKind, Fingerprint, TableSummary};
use tokio::task::JoinSet;

use crate::catalog::{self, DataTable};
use crate::connect::{self, Link};
use crate::copyout::RawConn;
use crate::parallel::{self, Item, RANGE_BYTES};
use crate::stream::{self, RowHasher};

/// How a fingerprint pass reads: [`crate::fingerprint_database_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FingerprintOptions {
    /// Raw COPY connections reading at once, besides the snapshot's own (at least 1; 0
    /// counts as 1). Default 1.
    pub jobs: usize,
    /// With `jobs` above 1, tables larger than this on disk (`pg_relation_size`) are read in
    /// page ranges of about this size. Default 64 MiB, the parallel dump's range size.
    pub range_bytes: u64,
}

impl Default for FingerprintOptions {
    fn default() -> Self {
        Self {
            jobs: 1,
            range_bytes: RANGE_BYTES,
        }
    }
}

impl FingerprintOptions {
    /// Options reading on `jobs` connections (0 counts as 1).
    #[must_use]
    pub fn with_jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Options splitting tables larger than `bytes` on disk into page ranges of about that
    /// size (at least one page each), when `jobs` is above 1.
    #[must_use]
    pub fn with_range_bytes(mut self, bytes: u64) -> Self {
        self.range_bytes = bytes;
        self
    }
}

/// What one reader found, per item: the table's index, its rows and fingerprint.
type Partial = (usize, u64, Fingerprint);

/// See the module docs.
///
/// # Errors
///
/// Classified [`EngineError`]s: connect errors, the first reader's error naming the table
/// (`Permission` for a table hidden by row-level security), snapshot export or import errors.
/// The other readers are aborted (their connections close).
pub(crate) async fn fingerprint_link(
    link: &Link,
    options: FingerprintOptions,
) -> Result<Vec<TableSummary>, EngineError> {
    let mut conn = connect::connect(link).await?;
    crate::server_version(&mut conn).await?;
    crate::begin_snapshot(&mut conn).await?;
    let mut tables = catalog::data_tables(&mut conn).await?;
    let items = if options.jobs > 1 {
        let items = parallel::plan_items(&mut conn, &tables, options.range_bytes).await?;
        // A range is read with a SELECT, planned with the table's index expressions: under
        // the path their functions need, as the parallel dump reads it.
        if items.iter().any(|i| i.range.is_some()) {
            catalog::read_paths(&mut conn, &mut tables).await?;
        }
        items
    } else {
        (0..tables.len())
            .map(|table| Item { table, range: None })
            .collect()
    };
    // Rows are read through the raw COPY reader inside the same snapshot, so memory does not
    // grow with row size here either (a 200 MB value is hashed in pieces).
    let snapshot = parallel::export_snapshot(&mut conn).await?;
    let los: Vec<u32> = match conn
        .client
        .query(
            "SELECT oid FROM pg_catalog.pg_largeobject_metadata ORDER BY oid",
            &[],
        )
        .await
    {
        Ok(rows) => crate::cells::read_all(&rows, "large object", 0, |r| r.get(0))?,
        Err(e) => return Err(conn.error(e, "catalog").await),
    };
    let tables = Arc::new(tables);
    let readers = read_items(link, &snapshot, tables.clone(), items, options.jobs);
    let large_objects = async {
        if los.is_empty() {
            return Ok(None);
        }
        let none = exporter_contract::Observer::default();
        stream::copy_large_objects(&mut conn, &los, None, &none)
            .await
            .map(Some)
    };
    let (partials, large_objects) = tokio::try_join!(readers, large_objects)?;
    let mut sums = vec![(0u64, Fingerprint::EMPTY); tables.len()];
    for (table, rows, fingerprint) in partials {
        sums[table].0 += rows;
        sums[table].1 = sums[table].1.combine(fingerprint);
    }
    let summaries = tables
        .iter()
        .zip(sums)
        .map(|(table, (rows, fingerprint))| TableSummary {
            name: table.summary_name().to_owned(),
            rows,
            fingerprint,
        })
        .collect();
    let mut out = stream::merge_summaries(summaries);
    out.extend(large_objects);
    if let Err(e) = conn.client.batch_execute("COMMIT").await {
        let endpoint = conn.endpoint.clone();
        return Err(conn.error(e, &endpoint).await);
    }
    Ok(out)
}

/// Read `items` on up to `jobs` connections importing `snapshot`, each taking the next item
/// from one queue. Returns one [`Partial`] per item, in no particular order.
async fn read_items(
    link: &Link,
    snapshot: &str,
    tables: Arc<Vec<DataTable>>,
    items: Vec<Item>,
    jobs: usize,
) -> Result<Vec<Partial>, EngineError> {
    let readers = jobs.max(1).min(items.len());
    let queue = Arc::new(Mutex::new(items.into_iter().collect::<VecDeque<Item>>()));
    // Dropping the set (an error returned early, the future dropped) aborts the readers.
    let mut set: JoinSet<Result<Vec<Partial>, EngineError>> = JoinSet::new();
    for _ in 0..readers {
        let (link, snapshot, queue, tables) = (
            link.clone(),
            snapshot.to_owned(),
            queue.clone(),
            tables.clone(),
        );
        set.spawn(async move { reader(&link, &snapshot, &queue, &tables).await });
    }
    let mut partials = Vec::new();
    while let Some(joined) = set.join_next().await {
        let found = joined.map_err(|e| {
            EngineError::new(
                ErrorKind::Protocol,
                format!("a fingerprint reader stopped: {e}"),
            )
        })??;
        partials.extend(found);
    }
    Ok(partials)
}

/// One reader: import the snapshot, fingerprint items until the queue is empty, commit.
async fn reader(
    link: &Link,
    snapshot: &str,
    queue: &Mutex<VecDeque<Item>>,
    tables: &[DataTable],
) -> Result<Vec<Partial>, EngineError> {
    let mut raw = parallel::open_worker(link, snapshot).await?;
    let mut found = Vec::new();
    loop {
        let Some(item) = queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
        else {
            break;
        };
        let (rows, fingerprint) = fingerprint_item(&mut raw, &tables[item.table], item).await?;
        found.push((item.table, rows, fingerprint));
    }
    parallel::close_worker(raw).await?;
    Ok(found)
}

/// Rows and fingerprint of one item of `table` read through the raw COPY reader, writing
/// nothing, in pieces of at most [`CHUNK`] bytes whatever the row size. A page range is read
/// under the table's [`DataTable::search_path`] (its `SELECT` is planned with the index
/// expressions), the empty path restored after it.
///
/// # Errors
///
/// Classified errors naming the table.
async fn fingerprint_item(
    raw: &mut RawConn,
    table: &DataTable,
    item: Item,
) -> Result<(u64, Fingerprint), EngineError> {
    let object = table.object();
    let path = table
        .search_path
        .as_deref()
        .filter(|_| item.range.is_some());
    if let Some(set) = path {
        raw.execute(set, &object).await?;
    }
    raw.copy_out(&item.copy_out_sql(table), &object).await?;
    let mut hasher = RowHasher::default();
    let mut piece = BytesMut::new();
    loop {
        piece.clear();
        piece.reserve(CHUNK);
        let n = raw
            .read_copy(&mut piece, CHUNK)
            .await
            .map_err(|e| e.with_object(object.clone()))?;
        if n == 0 {
            break;
        }
        hasher.feed(&piece);
    }
    let found = hasher.finish().map_err(|e| e.with_object(object.clone()))?;
    if path.is_some() {
        raw.execute(catalog::RESET_SEARCH_PATH, &object).await?;
    }
    Ok(found)
}
