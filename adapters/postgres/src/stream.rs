//! The producer: writes the planned script into the dump's body (a
//! [`Producer`]) while rows stream out of
//! `COPY … TO STDOUT`, fingerprinting every row on the way.

use exporter_contract::produce::{CHUNK, Producer};
use exporter_contract::{DumpSummary, EngineError, ErrorKind, Fingerprint, TableSummary};
use futures::StreamExt;

use exporter_contract::DatabaseUrl;

use crate::catalog::{DataTable, Plan};
use crate::connect::Conn;

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
        // memchr: SIMD search for the row ends (every byte of the dump passes here).
        while let Some(pos) = memchr::memchr(b'\n', data) {
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
    mut out: Option<&mut Producer>,
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
    mut out: Option<&mut Producer>,
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
    parallel: Option<(&DatabaseUrl, usize)>,
    out: &mut Producer,
) -> Result<DumpSummary, EngineError> {
    out.write(HEADER.as_bytes()).await?;
    for stmt in &plan.pre {
        out.write(stmt.as_bytes()).await?;
        out.write(b"\n").await?;
    }
    let mut tables = Vec::with_capacity(plan.tables.len() + 1);
    match parallel {
        Some((url, jobs)) if jobs > 1 && !plan.tables.is_empty() => {
            tables.extend(crate::parallel::copy_tables(conn, url, &plan.tables, jobs, out).await?);
        }
        _ => {
            for table in &plan.tables {
                out.write(table.copy_in_header().as_bytes()).await?;
                tables.push(copy_table(conn, table, Some(out)).await?);
                out.write(b"\\.\n\n").await?;
            }
        }
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
