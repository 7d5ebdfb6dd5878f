//! The producer: writes the planned script into the dump's body (a
//! [`Producer`]) while rows stream out of
//! `COPY … TO STDOUT`, fingerprinting every row on the way.

use bytes::BytesMut;
use exporter_contract::produce::{CHUNK, Producer};
use exporter_contract::{DumpSummary, EngineError, ErrorKind, Fingerprint, Observer, TableSummary};
use futures::StreamExt;
use xxhash_rust::xxh3::Xxh3;

use crate::catalog::{DataTable, Plan};
use crate::connect::{Conn, Link};
use crate::copyout::RawConn;
use crate::progress::{Pending, Tables};

/// Large objects are read and written in pieces of this size; it is also the unit of their
/// fingerprint rows (see the crate docs).
pub const LO_PIECE: i32 = 64 * 1024;

/// Name under which large objects appear in the fingerprints.
pub const LO_TABLE_NAME: &str = "pg_catalog.pg_largeobject";

/// The script header: the restore session mirrors the dump session so every `COPY` text value
/// is read back exactly as it was written (pg_dump's plain-format header, plus the date, time
/// and float settings we dumped with).
pub const HEADER: &str = "SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;
SET DateStyle = 'ISO';
SET IntervalStyle = 'postgres';
SET TimeZone = 'UTC';
SET extra_float_digits = 3;
SET default_tablespace = '';
SET default_table_access_method = heap;

";

/// Splits COPY text output into rows (a row may span any number of pieces) and fingerprints
/// each row without its newline.
///
/// A row that lies whole inside one piece is hashed in one call (`xxh3_128`, the fast path).
/// The part of a row that a piece leaves open goes into a streaming XXH3 state (`Xxh3`, about
/// 600 bytes, no heap), whose `digest128` equals `xxh3_128` of the whole row: memory does not
/// grow with the row size (a 200 MB value is hashed as it streams past).
#[derive(Default)]
pub struct RowHasher {
    /// The open row's prefix, when `open`.
    partial: Xxh3,
    open: bool,
    rows: u64,
    fingerprint: Fingerprint,
}

impl std::fmt::Debug for RowHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowHasher")
            .field("open", &self.open)
            .field("rows", &self.rows)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl RowHasher {
    /// Feed the next piece of COPY output.
    pub fn feed(&mut self, mut data: &[u8]) {
        // memchr: SIMD search for the row ends (every byte of the dump passes here).
        while let Some(pos) = memchr::memchr(b'\n', data) {
            if self.open {
                self.partial.update(&data[..pos]);
                self.fingerprint.add_row_hash(self.partial.digest128());
                self.partial.reset();
                self.open = false;
            } else {
                self.fingerprint.add_row(&data[..pos]);
            }
            self.rows += 1;
            data = &data[pos + 1..];
        }
        if !data.is_empty() {
            self.partial.update(data);
            self.open = true;
        }
    }

    /// Complete rows seen so far.
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Rows and fingerprint.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Protocol`] if the output did not end with a complete row.
    pub fn finish(self) -> Result<(u64, Fingerprint), EngineError> {
        if self.open {
            Err(EngineError::new(
                ErrorKind::Protocol,
                "COPY output ended in the middle of a row",
            ))
        } else {
            Ok((self.rows, self.fingerprint))
        }
    }
}

/// Copy one table's rows: into `out` if given (the dump), and always through the fingerprint;
/// the rows read are reported to `observer`.
///
/// # Errors
///
/// Classified errors naming the table (`Permission` for a table hidden by row-level security,
/// since the session runs with `row_security = off`); `Cancelled` if the consumer went away.
pub async fn copy_table(
    conn: &mut Conn,
    table: &DataTable,
    out: Option<&mut Producer>,
    observer: &Observer,
) -> Result<TableSummary, EngineError> {
    copy_sql(conn, table, &table.copy_out_sql(), out, observer).await
}

/// [`copy_table`] for any `COPY … TO STDOUT` of `table` (e.g. a page range). This path
/// receives each row as one whole protocol message (tokio-postgres); the dump uses it only for
/// a table whose lock a COPY connection could not take (see `copy_tables_sequential`).
///
/// # Errors
///
/// As [`copy_table`].
pub async fn copy_sql(
    conn: &mut Conn,
    table: &DataTable,
    sql: &str,
    mut out: Option<&mut Producer>,
    observer: &Observer,
) -> Result<TableSummary, EngineError> {
    // A range read by `SELECT` is planned with the table's index expressions: under the
    // path their functions need (see `catalog/loadcode.rs`), the empty path again afterwards.
    let path = table
        .search_path
        .as_deref()
        .filter(|_| sql.starts_with("COPY (SELECT"));
    if let Some(set) = path
        && let Err(e) = conn.client.batch_execute(set).await
    {
        return Err(conn.error(e, &table.object()).await);
    }
    let stream = match conn.client.copy_out(sql).await {
        Ok(stream) => stream,
        Err(e) => return Err(conn.error(e, &table.object()).await),
    };
    let mut stream = std::pin::pin!(stream);
    let mut hasher = RowHasher::default();
    // Each message is one row: report them in batches.
    let mut pending = Pending::default();
    while let Some(item) = stream.next().await {
        let chunk = match item {
            Ok(chunk) => chunk,
            Err(e) => return Err(conn.error(e, &table.object()).await),
        };
        let before = hasher.rows();
        hasher.feed(&chunk);
        pending.add(observer, hasher.rows() - before, chunk.len());
        if let Some(out) = out.as_deref_mut() {
            out.write_bytes(chunk).await?;
        }
    }
    pending.flush(observer);
    let (rows, fingerprint) = hasher.finish().map_err(|e| e.with_object(table.object()))?;
    if path.is_some()
        && let Err(e) = conn
            .client
            .batch_execute(crate::catalog::RESET_SEARCH_PATH)
            .await
    {
        return Err(conn.error(e, &table.object()).await);
    }
    Ok(TableSummary {
        name: table.summary_name().to_owned(),
        rows,
        fingerprint,
    })
}

/// Copy one table's rows through the raw COPY reader into `out`, inside one
/// `COPY … FROM stdin;` block, in pieces of at most [`CHUNK`] bytes whatever the row size,
/// fingerprinting every row on the way and reporting the rows of each piece to `observer`.
///
/// # Errors
///
/// Classified errors naming the table (`Permission` for a table hidden by row-level security;
/// `Protocol` when the connection is lost, also in the middle of a row); `Cancelled` if the
/// consumer went away.
pub async fn copy_table_raw(
    raw: &mut RawConn,
    table: &DataTable,
    out: &mut Producer,
    observer: &Observer,
) -> Result<TableSummary, EngineError> {
    let object = table.object();
    raw.copy_out(&table.copy_out_sql(), &object).await?;
    out.write(table.copy_in_header().as_bytes()).await?;
    let mut hasher = RowHasher::default();
    let mut piece = BytesMut::new();
    loop {
        piece.reserve(CHUNK);
        let n = raw
            .read_copy(&mut piece, CHUNK)
            .await
            .map_err(|e| e.with_object(object.clone()))?;
        if n == 0 {
            break;
        }
        let before = hasher.rows();
        hasher.feed(&piece);
        observer.rows(hasher.rows() - before);
        out.write_bytes(piece.split().freeze()).await?;
    }
    let (rows, fingerprint) = hasher.finish().map_err(|e| e.with_object(object))?;
    out.write(table.copy_in_trailer().as_bytes()).await?;
    Ok(TableSummary {
        name: table.summary_name().to_owned(),
        rows,
        fingerprint,
    })
}

/// The sequential dump's data: one raw connection imports the snapshot of `main` and copies
/// every table in plan order, one `COPY` block each. While a table is copied, `main` is
/// watched: if it dies (it holds the snapshot's locks), the dump fails naming that table.
///
/// Before each table the raw connection takes its lock with `NOWAIT`: when another session
/// waits for an `ACCESS EXCLUSIVE` lock on it (behind `main`'s lock), the raw connection's
/// request would queue behind that one until the dump ends. Such a table is copied on `main`
/// itself, which already holds the lock (through tokio-postgres, so its largest row is held
/// whole in memory: the one exception to the memory ceiling).
///
/// Each table is reported to `tables`' observer as it starts and ends.
///
/// # Errors
///
/// As [`copy_table_raw`], plus failures to export or import the snapshot.
async fn copy_tables_sequential(
    main: &mut Conn,
    link: &Link,
    data: &[DataTable],
    out: &mut Producer,
    tables: &Tables,
) -> Result<(), EngineError> {
    let snapshot = crate::parallel::export_snapshot(main).await?;
    // A session the server refuses (its `max_connections`, the role's or the database's
    // connection limit: a role allowed one session) is no failure: every table is copied on
    // the snapshot's own connection, which holds every lock — slower, as the parallel path
    // does with the share of a refused session.
    let mut raw = match crate::parallel::open_worker(link, &snapshot).await {
        Ok(raw) => Some(raw),
        Err(e) if e.kind() != exporter_contract::ErrorKind::Cancelled => {
            tracing::warn!(
                "the COPY session could not connect ({e}); copying on the snapshot's own connection"
            );
            None
        }
        Err(e) => return Err(e),
    };
    for (i, table) in data.iter().enumerate() {
        let object = table.object();
        tables.start(i);
        let locked = match raw.as_mut() {
            Some(raw) => {
                if raw.lock_nowait(&table.name, &object).await? {
                    Some(raw)
                } else {
                    tracing::info!(table = %table.name, "a lock request is queued on the table; copying it on the snapshot's own connection");
                    None
                }
            }
            None => None,
        };
        let Some(raw) = locked else {
            out.write(table.copy_in_header().as_bytes()).await?;
            let summary = copy_table(main, table, Some(out), tables.observer()).await?;
            out.write(table.copy_in_trailer().as_bytes()).await?;
            tables.done(i, summary.rows, summary.fingerprint);
            continue;
        };
        let summary = tokio::select! {
            biased;
            r = copy_table_raw(raw, table, out, tables.observer()) => r?,
            e = main.lost() => return Err(e.with_object(object)),
        };
        tables.done(i, summary.rows, summary.fingerprint);
    }
    if let Some(raw) = raw {
        crate::parallel::close_worker(raw).await?;
    }
    Ok(())
}

fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Add up the summaries that share a name — the leaves of a partition tree loaded through its
/// root, fingerprinted under the root's name ([`DataTable::summary_name`]) — keeping the
/// position of the first. Rows add, fingerprints combine (an order-independent sum).
#[must_use]
pub fn merge_summaries(summaries: Vec<TableSummary>) -> Vec<TableSummary> {
    let mut out: Vec<TableSummary> = Vec::with_capacity(summaries.len());
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for s in summaries {
        if let Some(&i) = at.get(&s.name) {
            out[i].rows += s.rows;
            out[i].fingerprint = out[i].fingerprint.combine(s.fingerprint);
        } else {
            at.insert(s.name.clone(), out.len());
            out.push(s);
        }
    }
    out
}

/// Large objects, pg_dump style but without descriptors: `lo_create` then `lo_put` per piece
/// (<https://www.postgresql.org/docs/current/lo-funcs.html>). Read with `lo_get` inside the
/// snapshot. Fingerprint rows: `<oid>\t<offset>\t<hex of piece>` per [`LO_PIECE`]-byte piece,
/// and `<oid>\t0\t` for an empty object. Reported to `observer` as one entry, a row per
/// piece.
///
/// # Errors
///
/// Classified errors naming the large object.
pub async fn copy_large_objects(
    conn: &mut Conn,
    oids: &[u32],
    mut out: Option<&mut Producer>,
    observer: &Observer,
) -> Result<TableSummary, EngineError> {
    observer.table_started(LO_TABLE_NAME);
    let mut fingerprint = Fingerprint::EMPTY;
    let mut rows = 0u64;
    for &oid in oids {
        if let Some(out) = out.as_deref_mut() {
            out.write(format!("SELECT pg_catalog.lo_create('{oid}');\n").as_bytes())
                .await?;
        }
        let mut offset: i64 = 0;
        loop {
            let piece: Vec<u8> = match conn
                .client
                .query_one(
                    "SELECT pg_catalog.lo_get($1, $2, $3)",
                    &[&oid, &offset, &LO_PIECE],
                )
                .await
            {
                Ok(row) => {
                    let object = format!("large object {oid}");
                    crate::cells::Cells::about(&row, &object).get(0)?
                }
                Err(e) => return Err(conn.error(e, &format!("large object {oid}")).await),
            };
            if piece.is_empty() && offset > 0 {
                break;
            }
            let hex = hex(&piece);
            fingerprint.add_row(format!("{oid}\t{offset}\t{hex}").as_bytes());
            rows += 1;
            // A piece is 64 KiB and a query of its own: reported one by one.
            observer.rows(1);
            if let Some(out) = out.as_deref_mut()
                && !piece.is_empty()
            {
                out.write(
                    format!("SELECT pg_catalog.lo_put('{oid}', {offset}, '\\x{hex}');\n")
                        .as_bytes(),
                )
                .await?;
            }
            if piece.len() < LO_PIECE as usize {
                break;
            }
            offset += i64::from(LO_PIECE);
        }
    }
    let summary = TableSummary {
        name: LO_TABLE_NAME.to_owned(),
        rows,
        fingerprint,
    };
    observer.table_done(&summary);
    Ok(summary)
}

/// Produce the whole script. Runs in its own task; ends with `COMMIT`, so a connection lost at
/// any point makes the dump fail. Each summary entry's start, rows and end go to `observer`
/// as the data streams (see [`Tables`]).
///
/// # Errors
///
/// Anything that went wrong, classified; `Cancelled` when the consumer went away.
pub async fn produce(
    conn: &mut Conn,
    plan: Plan,
    parallel: Option<(&Link, usize)>,
    out: &mut Producer,
    observer: &Observer,
) -> Result<DumpSummary, EngineError> {
    out.write(HEADER.as_bytes()).await?;
    for stmt in &plan.pre {
        out.write(stmt.as_bytes()).await?;
        out.write(b"\n").await?;
    }
    let mut tables = match parallel {
        Some((link, jobs)) if jobs > 1 && !plan.tables.is_empty() => {
            crate::parallel::copy_tables(conn, link, &plan.tables, jobs, out, observer).await?
        }
        Some((link, _)) if !plan.tables.is_empty() => {
            let tables = Tables::new(observer.clone(), &plan.tables, |_| 1);
            copy_tables_sequential(conn, link, &plan.tables, out, &tables).await?;
            tables.summaries()
        }
        _ => {
            let tables = Tables::new(observer.clone(), &plan.tables, |_| 1);
            for (i, table) in plan.tables.iter().enumerate() {
                tables.start(i);
                out.write(table.copy_in_header().as_bytes()).await?;
                let summary = copy_table(conn, table, Some(out), observer).await?;
                out.write(table.copy_in_trailer().as_bytes()).await?;
                tables.done(i, summary.rows, summary.fingerprint);
            }
            tables.summaries()
        }
    };
    for stmt in &plan.sequences {
        out.write(stmt.as_bytes()).await?;
    }
    out.write(b"\n").await?;
    if !plan.large_objects.is_empty() {
        tables.push(copy_large_objects(conn, &plan.large_objects, Some(out), observer).await?);
        out.write(b"\n").await?;
    }
    for stmt in &plan.post {
        out.write(stmt.as_bytes()).await?;
        out.write(b"\n").await?;
    }
    if let Err(e) = conn.client.batch_execute("COMMIT").await {
        let endpoint = conn.endpoint.clone();
        return Err(conn.error(e, &endpoint).await);
    }
    out.flush().await?;
    Ok(DumpSummary {
        tables,
        warnings: plan.warnings.clone(),
        consistency: None,
        payload_version: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(rows: &[&[u8]]) -> Fingerprint {
        let mut f = Fingerprint::EMPTY;
        for r in rows {
            f.add_row(r);
        }
        f
    }

    #[test]
    fn rows_split_across_chunks_hash_like_whole_rows() {
        let mut h = RowHasher::default();
        h.feed(b"1\tab");
        h.feed(b"c\n2\t");
        h.feed(b"\n");
        h.feed(b"3\tx\n4\ty\n");
        let (rows, f) = h.finish().unwrap();
        assert_eq!(rows, 4);
        assert_eq!(f, fp(&[b"1\tabc", b"2\t", b"3\tx", b"4\ty"]));
    }

    #[test]
    fn empty_lines_are_rows_and_partial_rows_are_errors() {
        let mut h = RowHasher::default();
        h.feed(b"\n\n");
        let (rows, f) = h.finish().unwrap();
        assert_eq!(rows, 2);
        assert_eq!(f, fp(&[b"", b""]));
        let mut h = RowHasher::default();
        h.feed(b"1\tno newline");
        assert_eq!(h.finish().unwrap_err().kind(), ErrorKind::Protocol);
    }

    /// The streaming hasher that fingerprints rows spanning pieces must give exactly the
    /// one-shot `xxh3_128` of the whole row, for every length class of XXH3 (≤16, ≤128, ≤240
    /// bytes, then stripes and blocks of 1 KiB) and every way of cutting it.
    #[test]
    fn streaming_xxh3_digest128_equals_one_shot_xxh3_128() {
        use xxhash_rust::xxh3::xxh3_128;
        let data: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [
            0, 1, 15, 16, 17, 128, 129, 240, 241, 1023, 1024, 1025, 4096, 5000,
        ] {
            let row = &data[..len];
            for cuts in [
                vec![],
                vec![len / 2],
                vec![1.min(len), len / 3, len - len / 5],
            ] {
                let mut h = Xxh3::new();
                let mut at = 0;
                for cut in cuts {
                    h.update(&row[at..cut.max(at)]);
                    at = cut.max(at);
                }
                h.update(&row[at..]);
                assert_eq!(h.digest128(), xxh3_128(row), "length {len}");
            }
            // Byte by byte, the worst case.
            let mut h = Xxh3::new();
            for b in row {
                h.update(std::slice::from_ref(b));
            }
            assert_eq!(h.digest128(), xxh3_128(row), "length {len}, bytewise");
        }
    }

    #[test]
    fn a_row_spanning_many_pieces_hashes_like_the_whole_row() {
        let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut text = b"1\tsmall\n2\t".to_vec();
        text.extend_from_slice(&big);
        text.extend_from_slice(b"\n3\tafter\n");
        let mut whole_row = b"2\t".to_vec();
        whole_row.extend_from_slice(&big);
        let expected = fp(&[b"1\tsmall", &whole_row, b"3\tafter"]);
        for piece in [1usize, 7, 4096, 65_536, 65_537, text.len()] {
            let mut h = RowHasher::default();
            for chunk in text.chunks(piece) {
                h.feed(chunk);
            }
            let (rows, f) = h.finish().unwrap();
            assert_eq!(rows, 3, "pieces of {piece}");
            assert_eq!(f, expected, "pieces of {piece}");
        }
        // A row still open at the end is an error, also after many pieces.
        let mut h = RowHasher::default();
        h.feed(b"1\t");
        h.feed(&big);
        assert_eq!(h.finish().unwrap_err().kind(), ErrorKind::Protocol);
    }

    #[test]
    fn leaves_of_a_routed_tree_add_up_under_the_root() {
        let summary = |name: &str, rows: u64, row: &[u8]| {
            let mut fingerprint = Fingerprint::EMPTY;
            for _ in 0..rows {
                fingerprint.add_row(row);
            }
            TableSummary {
                name: name.to_owned(),
                rows,
                fingerprint,
            }
        };
        let merged = merge_summaries(vec![
            summary("public.a", 1, b"x"),
            summary("public.root", 2, b"y"),
            summary("public.b", 1, b"z"),
            summary("public.root", 1, b"w"),
        ]);
        let names: Vec<&str> = merged.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["public.a", "public.root", "public.b"]);
        assert_eq!(merged[1].rows, 3);
        assert_eq!(
            merged[1].fingerprint,
            fp(&[b"y", b"y", b"w"]),
            "the same rows in other leaves fingerprint the same"
        );
    }

    #[test]
    fn hex_is_lowercase_pairs() {
        assert_eq!(hex(&[0x00, 0xff, 0x5c]), "00ff5c");
    }
}
