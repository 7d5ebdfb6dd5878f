//! Parallel `COPY` inside one exported snapshot, the way `pg_dump -j` shares its snapshot
//! (<https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-SNAPSHOT-SYNCHRONIZATION>).
//!
//! The dump's own connection exports its snapshot (`pg_export_snapshot()`); `jobs` worker
//! connections import it (`SET TRANSACTION SNAPSHOT`) and so see exactly the same data. The
//! work is one item per table, and tables larger than [`RANGE_BYTES`] are split into page
//! ranges read with TID range scans. Each worker turns its `COPY` output into self-contained
//! **blocks** of at most about [`BLOCK`] bytes — `COPY t (cols) FROM stdin;`, whole rows, `\.` —
//! and the producer writes blocks to the script in the order they complete. A table's rows may
//! therefore be spread over several `COPY` statements in any order: all of them come after the
//! pre-data and before the constraints and indexes, so `psql` restores the same rows, and the
//! fingerprint (an order-independent sum) is the same as a sequential dump's.
//!
//! Workers read through the raw COPY reader ([`RawConn`]), which never holds a whole
//! protocol message. A block closes at the last row end once it holds [`BLOCK`] bytes; the
//! rows after that start the next block. A row larger than a block cannot be cut (a `COPY`
//! block ends only at a row boundary), so its block is sent in parts of at most about
//! [`BLOCK`] + [`PIECE`] bytes, while the worker holds the lock of the shared sender: parts of
//! one block are consecutive on the channel, and no other worker's block can land inside it.
//! Other workers wait for the lock meanwhile (their servers wait on their sockets).
//!
//! Each worker takes a table's `ACCESS SHARE` lock with `NOWAIT` before its first `COPY` of
//! it ([`RawConn::lock_nowait`]): when another session already waits for an exclusive lock
//! on the table (behind the dump's own lock), the worker leaves the item to the dump's own
//! connection, which copies it after the workers are done, as pg_dump's workers avoid the
//! same client-side deadlock.
//!
//! Memory: at most one block (≤ [`BLOCK`] + [`PIECE`] plus the header) per worker plus
//! `jobs` blocks queued for the producer, whatever the row size.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use exporter_contract::produce::{Producer, cancelled};
use exporter_contract::{EngineError, ErrorKind, Fingerprint, Observer, TableSummary};
use tokio::sync::{Mutex as AsyncMutex, MutexGuard as AsyncMutexGuard, mpsc};
use tokio::task::JoinSet;

use crate::catalog::DataTable;
use crate::connect::{self, Conn, Link};
use crate::copyout::{PIECE, RawConn};
use crate::progress::Tables;
use crate::stream::RowHasher;

/// Size at which a worker closes its current block (at a row boundary). Blocks travel through
/// three bounded queues (workers → producer → body → compressor), so this size multiplies:
/// 4 MiB blocks measured 240–290 MiB peak RSS on a 1 GiB dump, 1 MiB 80 MiB, 256 KiB 43 MiB
/// at the same speed.
pub const BLOCK: usize = 256 << 10;

/// Tables larger than this (on disk) are split into page ranges of about this size.
pub const RANGE_BYTES: u64 = 64 << 20;

/// One unit of work: a whole table, or the page range `[start, end)` of one (`end = None`:
/// to the end of the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Item {
    /// The table's index in the plan's (or the fingerprint pass's) tables.
    pub table: usize,
    /// The page range, or `None` for the whole table.
    pub range: Option<(u64, Option<u64>)>,
}

impl Item {
    /// The `COPY … TO STDOUT` that reads this item of `table`.
    pub fn copy_out_sql(&self, table: &DataTable) -> String {
        match self.range {
            None => table.copy_out_sql(),
            Some((start, end)) => table.copy_out_range_sql(start, end),
        }
    }
}

/// What a worker saw of one item: rows and fingerprint, to be combined across workers.
type Partial = (usize, u64, Fingerprint);

/// What a worker did not do: the items it left to the main connection because it could not
/// take the table's lock without waiting (see [`RawConn::lock_nowait`]).
type Done = Vec<Item>;

/// The channel of blocks (or parts of an oversized block) from the workers to the producer.
type Tx = mpsc::Sender<Result<Bytes, EngineError>>;

/// The workers' shared sender: whoever holds the lock owns the order on the channel.
type Output = AsyncMutex<Tx>;

/// Export the snapshot of `main`'s transaction (`pg_export_snapshot()`).
///
/// # Errors
///
/// Classified, object `snapshot export`.
pub async fn export_snapshot(main: &mut Conn) -> Result<String, EngineError> {
    match main
        .client
        .query_one("SELECT pg_catalog.pg_export_snapshot()", &[])
        .await
    {
        Ok(row) => crate::cells::Cells::about(&row, "snapshot export").get(0),
        Err(e) => Err(main.error(e, "snapshot export").await),
    }
}

/// A raw COPY connection inside the exported `snapshot`: connect (session settings applied),
/// then `BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '…'`.
///
/// # Errors
///
/// Classified connect errors (object: the redacted endpoint); import errors (object
/// `snapshot import`).
pub async fn open_worker(link: &Link, snapshot: &str) -> Result<RawConn, EngineError> {
    let mut raw = RawConn::connect(link).await?;
    let import = format!(
        "{}; SET TRANSACTION SNAPSHOT {}",
        connect::BEGIN_SNAPSHOT,
        crate::quote::quote_literal(snapshot)
    );
    raw.execute(&import, "snapshot import").await?;
    Ok(raw)
}

/// End a worker's transaction and close its connection.
///
/// # Errors
///
/// A failed `COMMIT` (e.g. the connection was lost), object `snapshot import`.
pub async fn close_worker(mut raw: RawConn) -> Result<(), EngineError> {
    raw.execute("COMMIT", "snapshot import").await?;
    raw.close().await;
    Ok(())
}

/// Copy every table's rows with `jobs` connections sharing `main`'s snapshot, writing blocks
/// to `out`. Returns the summaries of the tables, in `tables` order (leaves loaded through
/// their root merged under its name). `observer` hears of each table when its first item
/// starts, of the rows of each piece, and of the table when its last item is done: several
/// tables are current at once.
///
/// # Errors
///
/// The first worker's error (classified, naming the table), a failure to export or import
/// the snapshot, or `Cancelled` when the consumer went away. Remaining workers are aborted
/// (their connections close, so the server stops their `COPY`).
///
/// # Cancel safety
///
/// Dropping the future aborts every worker.
pub async fn copy_tables(
    main: &mut Conn,
    link: &Link,
    tables: &[DataTable],
    jobs: usize,
    out: &mut Producer,
    observer: &Observer,
) -> Result<Vec<TableSummary>, EngineError> {
    let snapshot = export_snapshot(main).await?;
    let items = plan_items(main, tables, RANGE_BYTES).await?;
    let mut pieces = vec![0usize; tables.len()];
    for item in &items {
        pieces[item.table] += 1;
    }
    let progress = Arc::new(Tables::new(observer.clone(), tables, |i| pieces[i]));
    let queue = Arc::new(Mutex::new(items.into_iter().collect::<VecDeque<Item>>()));
    let tables: Arc<Vec<DataTable>> = Arc::new(tables.to_vec());
    let workers = jobs.min(queue.lock().expect("queue lock").len()).max(1);
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, EngineError>>(workers);
    let output: Arc<Output> = Arc::new(AsyncMutex::new(tx.clone()));
    // Dropping the set aborts the workers that are still running.
    let mut set: JoinSet<Result<Done, EngineError>> = JoinSet::new();
    for _ in 0..workers {
        let (link, snapshot, queue, tables, tx, output, progress) = (
            link.clone(),
            snapshot.clone(),
            queue.clone(),
            tables.clone(),
            tx.clone(),
            output.clone(),
            progress.clone(),
        );
        set.spawn(async move {
            let result = worker(&link, &snapshot, &queue, &tables, &output, &progress).await;
            drop(output);
            if let Err(e) = &result {
                let _ = tx.send(Err(copy_of(e))).await;
            }
            result
        });
    }
    drop((tx, output));
    while let Some(block) = rx.recv().await {
        out.write_bytes(block?).await?;
    }
    let mut deferred = Vec::new();
    while let Some(joined) = set.join_next().await {
        let left = joined.map_err(|e| {
            EngineError::new(ErrorKind::Protocol, format!("a COPY worker stopped: {e}"))
        })??;
        deferred.extend(left);
    }
    // Items no worker took: every worker's session was refused (see `worker`).
    deferred.extend(queue.lock().expect("queue lock").drain(..));
    // Items whose lock a worker could not take without waiting, and those no worker took:
    // `main` holds every lock.
    deferred.sort_by_key(|item: &Item| (item.table, item.range.map(|r| r.0)));
    for item in deferred {
        let table = &tables[item.table];
        tracing::info!(table = %table.name, "copying it on the snapshot's own connection (a lock request is queued on the table, or no COPY session could connect)");
        let sql = item.copy_out_sql(table);
        progress.start(item.table);
        out.write(table.copy_in_header().as_bytes()).await?;
        let summary =
            crate::stream::copy_sql(main, table, &sql, Some(out), progress.observer()).await?;
        out.write(table.copy_in_trailer().as_bytes()).await?;
        progress.done(item.table, summary.rows, summary.fingerprint);
    }
    Ok(progress.summaries())
}

/// Work items, biggest first so the long ones start early; tables larger than `range_bytes`
/// on disk (`pg_relation_size`) split into page ranges of about that size ([`split`]), but
/// an extension's configuration table read through its filter ([`DataTable::filter`]),
/// which is read whole.
///
/// # Errors
///
/// Classified catalog query errors (object `catalog`).
pub(crate) async fn plan_items(
    main: &mut Conn,
    tables: &[DataTable],
    range_bytes: u64,
) -> Result<Vec<Item>, EngineError> {
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let sql = "SELECT c.oid, pg_catalog.pg_relation_size(c.oid), pg_catalog.current_setting('block_size')::bigint \
               FROM pg_catalog.pg_class c WHERE c.oid = ANY($1)";
    let rows = match main.client.query(sql, &[&oids]).await {
        Ok(rows) => rows,
        Err(e) => return Err(main.error(e, "catalog").await),
    };
    let mut sized: Vec<(usize, u64, u64)> = Vec::with_capacity(tables.len());
    for (i, t) in tables.iter().enumerate() {
        // Sizes only order the work: a row that cannot be read (NULL for a table dropped
        // since) counts as an empty table.
        let (bytes, block) = rows
            .iter()
            .find(|r| r.try_get::<_, u32>(0).ok() == Some(t.oid))
            .map_or((0, 8192), |r| {
                let col = |i: usize| r.try_get::<_, Option<i64>>(i).ok().flatten();
                (
                    col(1).unwrap_or(0).max(0) as u64,
                    col(2).unwrap_or(8192).max(1) as u64,
                )
            });
        // A filtered table is read whole: its ranges would each scan it again.
        let bytes = if t.filter.is_some() {
            bytes.min(range_bytes)
        } else {
            bytes
        };
        sized.push((i, bytes, block));
    }
    Ok(split(sized, range_bytes))
}

/// Work items from `(table, bytes on disk, block size)` per table: biggest first (ties in
/// table order), a table larger than `range_bytes` cut into page ranges of
/// `range_bytes / block` pages (at least one), the last one open-ended (it reads to the
/// table's end). Pure.
pub(crate) fn split(mut sized: Vec<(usize, u64, u64)>, range_bytes: u64) -> Vec<Item> {
    sized.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut items = Vec::new();
    for (table, bytes, block) in sized {
        if bytes <= range_bytes {
            items.push(Item { table, range: None });
            continue;
        }
        let block = block.max(1);
        let pages = bytes.div_ceil(block);
        let per = (range_bytes / block).max(1);
        let mut start = 0;
        while start < pages {
            let end = start + per;
            // The last range is open-ended.
            let range = if end >= pages {
                (start, None)
            } else {
                (start, Some(end))
            };
            items.push(Item {
                table,
                range: Some(range),
            });
            start = end;
        }
    }
    items
}

async fn worker(
    link: &Link,
    snapshot: &str,
    queue: &Mutex<VecDeque<Item>>,
    tables: &[DataTable],
    output: &Output,
    progress: &Tables,
) -> Result<Done, EngineError> {
    // A session the server refuses (its `max_connections`, the role's or the database's
    // connection limit) leaves its share to the other workers, and what none of them takes
    // to the snapshot's own connection, which holds every lock: a slower dump, not a failed
    // one (`copy_tables`).
    let mut raw = match open_worker(link, snapshot).await {
        Ok(raw) => raw,
        Err(e) if e.kind() != ErrorKind::Cancelled => {
            tracing::warn!(
                "a COPY session could not connect ({e}); the other sessions do its share"
            );
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    };
    let mut deferred = Vec::new();
    // Tables this connection holds the lock of (a range of one needs it once).
    let mut locked = std::collections::HashSet::new();
    loop {
        let Some(item) = queue.lock().expect("queue lock").pop_front() else {
            break;
        };
        let table = &tables[item.table];
        if !locked.contains(&item.table) {
            if !raw.lock_nowait(&table.name, &table.object()).await? {
                deferred.push(item);
                continue;
            }
            locked.insert(item.table);
        }
        progress.start(item.table);
        let (at, rows, fingerprint) =
            copy_item(&mut raw, table, item, output, progress.observer()).await?;
        progress.done(at, rows, fingerprint);
    }
    close_worker(raw).await?;
    Ok(deferred)
}

/// Send on the shared channel: under the lock already held (an oversized block in progress),
/// or taking it for this one message.
async fn send(
    output: &Output,
    held: Option<&mut AsyncMutexGuard<'_, Tx>>,
    data: Bytes,
) -> Result<(), EngineError> {
    match held {
        Some(tx) => tx.send(Ok(data)).await,
        None => output.lock().await.send(Ok(data)).await,
    }
    .map_err(|_| cancelled())
}

async fn copy_item(
    raw: &mut RawConn,
    table: &DataTable,
    item: Item,
    output: &Output,
    observer: &Observer,
) -> Result<Partial, EngineError> {
    let sql = item.copy_out_sql(table);
    let object = table.object();
    // A range is read with a SELECT, which the planner prepares with the table's index
    // expressions: run it under the path their functions need (see `catalog/loadcode.rs`).
    let path = table
        .search_path
        .as_deref()
        .filter(|_| item.range.is_some());
    if let Some(set) = path {
        raw.execute(set, &object).await?;
    }
    raw.copy_out(&sql, &object).await?;
    let header = table.copy_in_header();
    let trailer = table.copy_in_trailer();
    let mut hasher = RowHasher::default();
    let mut block = BytesMut::with_capacity(BLOCK + PIECE + header.len());
    block.extend_from_slice(header.as_bytes());
    // Where the rows of `block` start: after the header, or 0 in a continuation part.
    let mut rows_start = header.len();
    let mut rows_at_block_start = 0;
    let mut blocks_sent = 0u64;
    // Held while an oversized block goes out in parts.
    let mut held: Option<AsyncMutexGuard<'_, Tx>> = None;
    loop {
        let before = block.len();
        let n = raw
            .read_copy(&mut block, PIECE)
            .await
            .map_err(|e| e.with_object(object.clone()))?;
        if n == 0 {
            break;
        }
        let rows_before = hasher.rows();
        hasher.feed(&block[before..]);
        observer.rows(hasher.rows() - rows_before);
        if block.len() < BLOCK {
            continue;
        }
        // A raw newline always ends a row in COPY text format (newlines inside values are
        // escaped as `\n`), so the block closes after the last one it holds.
        if let Some(last) = memchr::memrchr(b'\n', &block[rows_start..]) {
            let tail = block.split_off(rows_start + last + 1);
            block.extend_from_slice(trailer.as_bytes());
            send(output, held.as_mut(), block.split().freeze()).await?;
            // The oversized row (if any) has ended with this block: let the others write.
            held = None;
            blocks_sent += 1;
            // The tail holds no complete row (the cut was at the last newline).
            rows_at_block_start = hasher.rows();
            block.reserve(BLOCK + PIECE + header.len());
            block.extend_from_slice(header.as_bytes());
            block.extend_from_slice(&tail);
            rows_start = header.len();
        } else {
            // One row larger than a block: send what we have of it and keep the channel
            // until its block is closed.
            if held.is_none() {
                held = Some(output.lock().await);
            }
            send(output, held.as_mut(), block.split().freeze()).await?;
            block.reserve(BLOCK + PIECE);
            rows_start = 0;
        }
    }
    let (rows, fingerprint) = hasher.finish().map_err(|e| e.with_object(object.clone()))?;
    if path.is_some() {
        raw.execute(crate::catalog::RESET_SEARCH_PATH, &object)
            .await?;
    }
    // A whole table always gets its COPY statement (also when empty); a range only if it
    // holds rows not yet sent. A block still open in parts is always closed here.
    if held.is_some() || rows > rows_at_block_start || (item.range.is_none() && blocks_sent == 0) {
        block.extend_from_slice(trailer.as_bytes());
        send(output, held.as_mut(), block.freeze()).await?;
    }
    drop(held);
    Ok((item.table, rows, fingerprint))
}

/// A copy of an error for the block channel (the original is returned by the worker).
fn copy_of(e: &EngineError) -> EngineError {
    let mut c = EngineError::new(e.kind(), e.message()).retryable(e.is_retryable());
    if let Some(object) = e.object() {
        c = c.with_object(object);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(table: usize) -> Item {
        Item { table, range: None }
    }

    fn range(table: usize, start: u64, end: Option<u64>) -> Item {
        Item {
            table,
            range: Some((start, end)),
        }
    }

    #[test]
    fn biggest_first_and_only_tables_above_the_range_size_split() {
        // Table 1: 10 pages of 8 KiB, ranges of 3 pages (24 KiB): 4 items, the last open.
        let items = split(
            vec![
                (0, 8192, 8192),
                (1, 81_920, 8192),
                (2, 0, 8192),
                (3, 24_576, 8192),
            ],
            24_576,
        );
        assert_eq!(
            items,
            vec![
                range(1, 0, Some(3)),
                range(1, 3, Some(6)),
                range(1, 6, Some(9)),
                range(1, 9, None),
                whole(3),
                whole(0),
                whole(2),
            ]
        );
        // A range size below one block still makes ranges of one page.
        assert_eq!(
            split(vec![(0, 16_384, 8192)], 100),
            vec![range(0, 0, Some(1)), range(0, 1, None)]
        );
        // Exactly a multiple: no empty trailing range.
        assert_eq!(
            split(vec![(0, 16_384, 8192)], 8192),
            vec![range(0, 0, Some(1)), range(0, 1, None)]
        );
    }
}
