//! The RDB format: the replication handshake (`REPLCONF capa eof`, `REPLCONF rdb-only 1`,
//! `SYNC`) makes the server produce a point-in-time snapshot, which is streamed in pieces and
//! cut exactly at its end, whichever transfer form the server picks.

use exporter_contract::produce::{CHUNK, Producer};
use exporter_contract::{EngineError, ErrorKind};

use crate::conn::{Conn, Reply, server_error};
use crate::rdbfmt::{EOF_MARK_LEN, MarkCutter, RdbCheck};

/// How the server sends the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// `$<len>\r\n` then exactly `len` bytes (disk-based replication).
    Sized(u64),
    /// `$EOF:<40-byte mark>\r\n`, the file, then the mark again (diskless replication).
    Marked([u8; EOF_MARK_LEN]),
}

fn refused(conn: &Conn, command: &str, text: &str) -> EngineError {
    let classified = server_error(text, command);
    let kind = match classified.kind() {
        ErrorKind::Auth | ErrorKind::Permission => classified.kind(),
        _ => ErrorKind::Unsupported,
    };
    EngineError::new(
        kind,
        format!(
            "the server refused the replication handshake ({command}: {text}); the RDB format \
             needs a connection that may replicate; the default RESP format needs only SCAN, \
             DUMP and PEXPIRETIME (`exporter dump --redis-format resp`)"
        ),
    )
    .with_object(conn.endpoint.clone())
}

/// Start the snapshot: returns once the server announced the transfer (after its background
/// save, for the sized form).
///
/// # Errors
///
/// A refused handshake as [`ErrorKind::Permission`] (ACL) or [`ErrorKind::Unsupported`]
/// (disabled or renamed commands, managed services) with a hint to use the RESP format;
/// connection errors as [`ErrorKind::Protocol`].
pub async fn handshake(conn: &mut Conn) -> Result<Transfer, EngineError> {
    // Like `redis-cli --rdb`: both REPLCONFs are optional (older servers do not know
    // `rdb-only`; without `capa eof` the server uses the sized form).
    for (option, value) in [(&b"capa"[..], &b"eof"[..]), (b"rdb-only", b"1")] {
        match conn.command(&[b"REPLCONF", option, value]).await? {
            Reply::Status(_) => {}
            Reply::Error(e) if e.starts_with("NOAUTH") => {
                return Err(server_error(&e, "REPLCONF").with_object(conn.endpoint.clone()));
            }
            Reply::Error(e) => {
                tracing::debug!(error = %e, "REPLCONF {} refused", String::from_utf8_lossy(option));
            }
            other => return Err(conn.unexpected("REPLCONF", &other)),
        }
    }
    conn.send(b"SYNC\r\n").await?;
    loop {
        let line = conn.read_line_skipping_newlines().await?;
        match line.first() {
            Some(b'-') => {
                return Err(refused(conn, "SYNC", &String::from_utf8_lossy(&line[1..])));
            }
            // Not sent for SYNC, but harmless to accept (PSYNC's answer).
            Some(b'+') => {}
            Some(b'$') if line.starts_with(b"$EOF:") && line.len() >= 5 + EOF_MARK_LEN => {
                let mut mark = [0u8; EOF_MARK_LEN];
                mark.copy_from_slice(&line[5..5 + EOF_MARK_LEN]);
                return Ok(Transfer::Marked(mark));
            }
            Some(b'$') => {
                let len = std::str::from_utf8(&line[1..])
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| {
                        EngineError::new(
                            ErrorKind::Protocol,
                            "SYNC: malformed snapshot length".to_owned(),
                        )
                        .with_object(conn.endpoint.clone())
                    })?;
                return Ok(Transfer::Sized(len));
            }
            _ => {
                return Err(EngineError::new(
                    ErrorKind::Protocol,
                    format!(
                        "SYNC: unexpected answer {:?}",
                        String::from_utf8_lossy(&line[..line.len().min(80)])
                    ),
                )
                .with_object(conn.endpoint.clone()));
            }
        }
    }
}

/// Stream the announced snapshot into `out`, exactly (no byte of the replication stream that
/// follows), and check it; returns its RDB version and size.
///
/// # Errors
///
/// [`ErrorKind::Protocol`] if the connection ends before the snapshot does or the file fails
/// its checks; `Cancelled` if the consumer went away.
pub async fn stream(
    conn: &mut Conn,
    transfer: Transfer,
    out: &mut Producer,
) -> Result<(u32, u64), EngineError> {
    let mut check = RdbCheck::default();
    match transfer {
        Transfer::Sized(len) => {
            let mut left = len;
            while left > 0 {
                let chunk = conn.read_some(left.min(CHUNK as u64) as usize).await?;
                left -= chunk.len() as u64;
                check.feed(&chunk);
                out.write_bytes(chunk).await?;
            }
        }
        Transfer::Marked(mark) => {
            let mut cutter = MarkCutter::new(mark);
            loop {
                let chunk = conn.read_some(CHUNK).await?;
                let (emit, done) = cutter.push(&chunk);
                check.feed(&emit);
                out.write(&emit).await?;
                if done {
                    break;
                }
            }
        }
    }
    let version = check
        .finish()
        .map_err(|e| e.with_object(conn.endpoint.clone()))?;
    out.flush().await?;
    Ok((version, check.total))
}
