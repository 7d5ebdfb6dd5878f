//! The producer: writes the planned script into a bounded channel while rows stream out of
//! `COPY … TO STDOUT`, fingerprinting every row on the way.

use bytes::{Bytes, BytesMut};
use exporter_contract::{DumpSummary, EngineError, ErrorKind, Fingerprint, TableSummary};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::catalog::{DataTable, Plan};
use crate::connect::Conn;

/// Output is sent in chunks of about this size (COPY delivers one message per row; sending
/// each would cost a channel message per row).
pub const CHUNK: usize = 128 * 1024;

/// Chunks the channel holds before the producer waits for the consumer.
pub const CHANNEL_CHUNKS: usize = 8;

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

fn cancelled() -> EngineError {
    EngineError::new(
        ErrorKind::Cancelled,
        "the consumer of the dump went away; dump abandoned",
    )
}

/// Batches output into [`CHUNK`]-sized messages on the channel.
pub struct Out {
    buf: BytesMut,
    tx: mpsc::Sender<Result<Bytes, EngineError>>,
    /// Uncompressed bytes handed to the channel so far.
    pub written: u64,
}

impl Out {
    /// Wrap the sending half of the body channel.
    #[must_use]
    pub fn new(tx: mpsc::Sender<Result<Bytes, EngineError>>) -> Self {
        Self {
            buf: BytesMut::with_capacity(CHUNK),
            tx,
            written: 0,
        }
    }

    /// Append bytes; send when the batch is full.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Cancelled`] when the consumer dropped the body.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), EngineError> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    /// Append an owned chunk: a large one (a big row) goes out as is, without a copy.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Cancelled`] when the consumer dropped the body.
    pub async fn write_bytes(&mut self, data: Bytes) -> Result<(), EngineError> {
        if data.len() >= CHUNK {
            self.flush().await?;
            self.send(data).await
        } else {
            self.write(&data).await
        }
    }

    /// Send whatever is batched.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Cancelled`] when the consumer dropped the body.
    pub async fn flush(&mut self) -> Result<(), EngineError> {
        if !self.buf.is_empty() {
            let chunk = self.buf.split().freeze();
            self.send(chunk).await?;
            self.buf.reserve(CHUNK);
        }
        Ok(())
    }

    async fn send(&mut self, chunk: Bytes) -> Result<(), EngineError> {
        self.written += chunk.len() as u64;
        self.tx.send(Ok(chunk)).await.map_err(|_| cancelled())
    }
}

/// Splits COPY text output into rows (a row may in principle span chunks) and fingerprints
/// each row without its newline.
#[derive(Debug, Default)]
pub struct RowHasher {
    carry: Vec<u8>,
    rows: u64,
    fingerprint: Fingerprint,
}

impl RowHasher {
    /// Feed the next piece of COPY output.
    pub fn feed(&mut self, mut data: &[u8]) {
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            if self.carry.is_empty() {
                self.fingerprint.add_row(&data[..pos]);
            } else {
                self.carry.extend_from_slice(&data[..pos]);
                self.fingerprint.add_row(&self.carry);
                self.carry.clear();
                if self.carry.capacity() > CHUNK {
                    self.carry = Vec::new();
                }
            }
            self.rows += 1;
            data = &data[pos + 1..];
        }
        self.carry.extend_from_slice(data);
    }

    /// Rows and fingerprint.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Protocol`] if the output did not end with a complete row.
    pub fn finish(self) -> Result<(u64, Fingerprint), EngineError> {
        if self.carry.is_empty() {
            Ok((self.rows, self.fingerprint))
        } else {
            Err(EngineError::new(
                ErrorKind::Protocol,
                "COPY output ended in the middle of a row",
            ))
        }
    }
}

/// Copy one table's rows: into `out` if given (the dump), and always through the fingerprint.
///
/// # Errors
///
/// Classified errors naming the table (`Permission` for a table hidden by row-level security,
/// since the session runs with `row_security = off`); `Cancelled` if the consumer went away.
pub async fn copy_table(
    conn: &mut Conn,
    table: &DataTable,
    mut out: Option<&mut Out>,
) -> Result<TableSummary, EngineError> {
    let stream = match conn.client.copy_out(&table.copy_out_sql()).await {
        Ok(stream) => stream,
        Err(e) => return Err(conn.error(e, &table.object()).await),
    };
    let mut stream = std::pin::pin!(stream);
    let mut hasher = RowHasher::default();
    while let Some(item) = stream.next().await {
        let chunk = match item {
            Ok(chunk) => chunk,
            Err(e) => return Err(conn.error(e, &table.object()).await),
        };
        hasher.feed(&chunk);
        if let Some(out) = out.as_deref_mut() {
            out.write_bytes(chunk).await?;
        }
    }
    let (rows, fingerprint) = hasher.finish().map_err(|e| e.with_object(table.object()))?;
    Ok(TableSummary {
        name: table.name.clone(),
        rows,
        fingerprint,
    })
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

/// Large objects, pg_dump style but without descriptors: `lo_create` then `lo_put` per piece
/// (<https://www.postgresql.org/docs/current/lo-funcs.html>). Read with `lo_get` inside the
/// snapshot. Fingerprint rows: `<oid>\t<offset>\t<hex of piece>` per [`LO_PIECE`]-byte piece,
/// and `<oid>\t0\t` for an empty object.
///
/// # Errors
///
/// Classified errors naming the large object.
pub async fn copy_large_objects(
    conn: &mut Conn,
    oids: &[u32],
    mut out: Option<&mut Out>,
) -> Result<TableSummary, EngineError> {
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
                Ok(row) => row.get(0),
                Err(e) => return Err(conn.error(e, &format!("large object {oid}")).await),
            };
            if piece.is_empty() && offset > 0 {
                break;
            }
            let hex = hex(&piece);
            fingerprint.add_row(format!("{oid}\t{offset}\t{hex}").as_bytes());
            rows += 1;
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
    Ok(TableSummary {
        name: LO_TABLE_NAME.to_owned(),
        rows,
        fingerprint,
    })
}

/// Produce the whole script. Runs in its own task; ends with `COMMIT`, so a connection lost at
/// any point makes the dump fail.
///
/// # Errors
///
/// Anything that went wrong, classified; `Cancelled` when the consumer went away.
pub async fn produce(
    conn: &mut Conn,
    plan: Plan,
    out: &mut Out,
) -> Result<DumpSummary, EngineError> {
    out.write(HEADER.as_bytes()).await?;
    for stmt in &plan.pre {
        out.write(stmt.as_bytes()).await?;
        out.write(b"\n").await?;
    }
    let mut tables = Vec::with_capacity(plan.tables.len() + 1);
    for table in &plan.tables {
        out.write(table.copy_in_header().as_bytes()).await?;
        tables.push(copy_table(conn, table, Some(out)).await?);
        out.write(b"\\.\n\n").await?;
    }
    for stmt in &plan.sequences {
        out.write(stmt.as_bytes()).await?;
    }
    out.write(b"\n").await?;
    if !plan.large_objects.is_empty() {
        tables.push(copy_large_objects(conn, &plan.large_objects, Some(out)).await?);
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
        warnings: Vec::new(),
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

    #[test]
    fn hex_is_lowercase_pairs() {
        assert_eq!(hex(&[0x00, 0xff, 0x5c]), "00ff5c");
    }
}
