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
//! Memory: at most one block per worker plus `jobs` blocks queued for the producer (a block
//! holds at least one row, so a row larger than [`BLOCK`] makes its block that large).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use exporter_contract::produce::{Producer, cancelled};
use exporter_contract::{DatabaseUrl, EngineError, ErrorKind, Fingerprint, TableSummary};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::catalog::DataTable;
use crate::connect::{self, Conn};
use crate::stream::RowHasher;

/// Size at which a worker closes its current block (at a row boundary). Blocks travel through
/// three bounded queues (workers → producer → body → compressor), so this size multiplies:
/// 4 MiB blocks measured 240–290 MiB peak RSS on a 1 GiB dump, 1 MiB 80 MiB, 256 KiB 43 MiB
/// at the same speed.
pub const BLOCK: usize = 256 << 10;

/// Tables larger than this (on disk) are split into page ranges of about this size.
pub const RANGE_BYTES: u64 = 64 << 20;

/// One unit of work: a whole table, or the page range `[start, end)` of one.
#[derive(Debug, Clone, Copy)]
struct Item {
    table: usize,
    range: Option<(u64, Option<u64>)>,
}

/// What a worker saw of one table: rows and fingerprint, to be combined across workers.
type Partial = (usize, u64, Fingerprint);

/// Copy every table's rows with `jobs` connections sharing `main`'s snapshot, writing blocks
/// to `out`. Returns one summary per table, in `tables` order.
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
    url: &DatabaseUrl,
    tables: &[DataTable],
    jobs: usize,
    out: &mut Producer,
) -> Result<Vec<TableSummary>, EngineError> {
    let snapshot: String = match main
        .client
        .query_one("SELECT pg_catalog.pg_export_snapshot()", &[])
        .await
    {
        Ok(row) => row.get(0),
        Err(e) => return Err(main.error(e, "snapshot export").await),
    };
    let items = plan_items(main, tables).await?;
    let queue = Arc::new(Mutex::new(items.into_iter().collect::<VecDeque<Item>>()));
    let tables: Arc<Vec<DataTable>> = Arc::new(tables.to_vec());
    let workers = jobs.min(queue.lock().expect("queue lock").len()).max(1);
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, EngineError>>(workers);
    // Dropping the set aborts the workers that are still running.
    let mut set: JoinSet<Result<Vec<Partial>, EngineError>> = JoinSet::new();
    for _ in 0..workers {
        let (url, snapshot, queue, tables, tx) = (
            url.clone(),
            snapshot.clone(),
            queue.clone(),
            tables.clone(),
            tx.clone(),
        );
        set.spawn(async move {
            let result = worker(&url, &snapshot, &queue, &tables, &tx).await;
            if let Err(e) = &result {
                let _ = tx.send(Err(copy_of(e))).await;
            }
            result
        });
    }
    drop(tx);
    while let Some(block) = rx.recv().await {
        out.write_bytes(block?).await?;
    }
    let mut rows = vec![0u64; tables.len()];
    let mut prints = vec![Fingerprint::EMPTY; tables.len()];
    while let Some(joined) = set.join_next().await {
        let partials = joined.map_err(|e| {
            EngineError::new(ErrorKind::Protocol, format!("a COPY worker stopped: {e}"))
        })??;
        for (table, n, fp) in partials {
            rows[table] += n;
            prints[table] = prints[table].combine(fp);
        }
    }
    Ok(tables
        .iter()
        .zip(rows.into_iter().zip(prints))
        .map(|(t, (rows, fingerprint))| TableSummary {
            name: t.name.clone(),
            rows,
            fingerprint,
        })
        .collect())
}

/// Work items, biggest first so the long ones start early.
async fn plan_items(main: &mut Conn, tables: &[DataTable]) -> Result<Vec<Item>, EngineError> {
    let oids: Vec<u32> = tables.iter().map(|t| t.oid).collect();
    let sql = "SELECT c.oid, pg_catalog.pg_relation_size(c.oid), pg_catalog.current_setting('block_size')::bigint \
               FROM pg_catalog.pg_class c WHERE c.oid = ANY($1)";
    let rows = match main.client.query(sql, &[&oids]).await {
        Ok(rows) => rows,
        Err(e) => return Err(main.error(e, "catalog").await),
    };
    let mut sized: Vec<(usize, u64, u64)> = Vec::with_capacity(tables.len());
    for (i, t) in tables.iter().enumerate() {
        let (bytes, block) =
            rows.iter()
                .find(|r| r.get::<_, u32>(0) == t.oid)
                .map_or((0, 8192), |r| {
                    (
                        r.get::<_, i64>(1).max(0) as u64,
                        r.get::<_, i64>(2).max(1) as u64,
                    )
                });
        sized.push((i, bytes, block));
    }
    sized.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut items = Vec::new();
    for (table, bytes, block) in sized {
        if bytes <= RANGE_BYTES {
            items.push(Item { table, range: None });
            continue;
        }
        let pages = bytes.div_ceil(block);
        let per = (RANGE_BYTES / block).max(1);
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
    Ok(items)
}

async fn worker(
    url: &DatabaseUrl,
    snapshot: &str,
    queue: &Mutex<VecDeque<Item>>,
    tables: &[DataTable],
    tx: &mpsc::Sender<Result<Bytes, EngineError>>,
) -> Result<Vec<Partial>, EngineError> {
    let mut conn = connect::connect(url).await?;
    let import = format!(
        "{}; SET TRANSACTION SNAPSHOT {}",
        connect::BEGIN_SNAPSHOT,
        crate::quote::quote_literal(snapshot)
    );
    if let Err(e) = conn.client.batch_execute(&import).await {
        return Err(conn.error(e, "snapshot import").await);
    }
    let mut partials = Vec::new();
    loop {
        let Some(item) = queue.lock().expect("queue lock").pop_front() else {
            break;
        };
        partials.push(copy_item(&mut conn, &tables[item.table], item, tx).await?);
    }
    if let Err(e) = conn.client.batch_execute("COMMIT").await {
        let endpoint = conn.endpoint.clone();
        return Err(conn.error(e, &endpoint).await);
    }
    Ok(partials)
}

async fn copy_item(
    conn: &mut Conn,
    table: &DataTable,
    item: Item,
    tx: &mpsc::Sender<Result<Bytes, EngineError>>,
) -> Result<Partial, EngineError> {
    let sql = match item.range {
        None => table.copy_out_sql(),
        Some((start, end)) => table.copy_out_range_sql(start, end),
    };
    let stream = match conn.client.copy_out(&sql).await {
        Ok(stream) => stream,
        Err(e) => return Err(conn.error(e, &table.object()).await),
    };
    let mut stream = std::pin::pin!(stream);
    let header = table.copy_in_header();
    let mut hasher = RowHasher::default();
    let mut block = BytesMut::with_capacity(BLOCK + 64 * 1024);
    block.extend_from_slice(header.as_bytes());
    let mut rows_at_block_start = 0;
    let mut blocks_sent = 0u64;
    let send = |block: Bytes| async move { tx.send(Ok(block)).await.map_err(|_| cancelled()) };
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return Err(conn.error(e, &table.object()).await),
        };
        hasher.feed(&chunk);
        block.extend_from_slice(&chunk);
        // A raw newline always ends a row in COPY text format (newlines inside values are
        // escaped as `\n`), so a block may close after any chunk that ends with one.
        if block.len() >= BLOCK && chunk.last() == Some(&b'\n') {
            block.extend_from_slice(b"\\.\n\n");
            send(block.split().freeze()).await?;
            blocks_sent += 1;
            rows_at_block_start = hasher.rows();
            block.extend_from_slice(header.as_bytes());
        }
    }
    // A whole table always gets its COPY statement (also when empty); a range only if it
    // holds rows not yet sent.
    if hasher.rows() > rows_at_block_start || (item.range.is_none() && blocks_sent == 0) {
        block.extend_from_slice(b"\\.\n\n");
        send(block.freeze()).await?;
    }
    let (rows, fingerprint) = hasher.finish().map_err(|e| e.with_object(table.object()))?;
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
