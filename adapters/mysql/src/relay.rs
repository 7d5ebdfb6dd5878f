//! TLS for MySQL/MariaDB connections: exporter's own TLS client under `mysql_async`.
//!
//! # Why not `mysql_async`'s TLS
//!
//! `mysql_async` 0.37 can use rustls (feature `rustls-tls`), but not in a way that keeps the
//! promises of `ssl-mode`:
//!
//! - its `VERIFY_CA` (`SslOpts::with_danger_skip_domain_validation`) recognises a host name
//!   mismatch by looking for `NotValidForName` in the error's **text**, and rustls 0.23
//!   describes that error as `certificate not valid for name …`, so a certificate valid for
//!   another name is refused anyway (`src/io/tls/rustls_io.rs`, `DangerousVerifier`);
//! - it does not expose the session (protocol version, the server's certificate), which the
//!   manifest records;
//! - its errors would not read like the other engines' (unknown CA, expiry with dates, the
//!   names a certificate carries).
//!
//! # How
//!
//! TLS in the MySQL protocol starts inside the connection phase
//! (<https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html>):
//! the server's greeting announces `CLIENT_SSL`, the client answers with an `SSLRequest` —
//! the first 32 bytes of its `HandshakeResponse` with `CLIENT_SSL` set — and both sides run
//! the TLS handshake; the full `HandshakeResponse` and everything after travel inside TLS,
//! with packet sequence numbers counting on from the `SSLRequest`.
//!
//! [`relay`] sits between `mysql_async` and the server: `mysql_async` connects to a Unix
//! socket in a private directory (mode 0700, removed as soon as it is accepted) and speaks
//! clear text; the relay reads the server's greeting over TCP, passes it on, takes the
//! client's `HandshakeResponse`, sends the `SSLRequest` made of its first 32 bytes, performs
//! the handshake with [`exporter_tls::Connector`] (the same verification and messages as
//! PostgreSQL and Redis), forwards the response, and shifts the sequence numbers of the
//! authentication exchange by one in each direction until the server's `OK` or `ERR`. From
//! then on it copies bytes both ways until either side closes.
//!
//! `mysql_async` on a Unix socket treats the connection as secure, so `caching_sha2_password`
//! sends the password in full (as it does over TLS) — it travels inside the relay's TLS
//! session, never in clear text on the network.
//!
//! Cost: one more copy of every byte through a local socket, in the TLS case only; a
//! connection without TLS goes to the server directly.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use exporter_contract::{EngineError, ErrorKind};
use exporter_tls::{Connector, Handshake};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::oneshot;

/// `CLIENT_SSL` in the capability flags (bit 11).
const CLIENT_SSL: u32 = 0x0800;

/// Largest packet accepted during the connection phase (greetings, auth exchanges, errors).
const MAX_HANDSHAKE_PACKET: usize = 1 << 20;

/// How long the client may take to connect to the relay's socket.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Copy buffer per direction after the connection phase.
const COPY_BUF: usize = 64 << 10;

/// The server's greeting, read before deciding on TLS.
pub struct Greeting {
    /// The TCP connection, positioned after the greeting.
    pub stream: TcpStream,
    /// The whole greeting packet (header included).
    pub packet: BytesMut,
}

impl Greeting {
    /// Whether the server offers TLS. An error packet instead of a greeting (too many
    /// connections, a blocked host) offers nothing; it is passed on to the client, which
    /// reports it.
    #[must_use]
    pub fn offers_tls(&self) -> bool {
        capabilities(&self.packet[4..]).is_some_and(|c| c & CLIENT_SSL != 0)
    }

    /// Whether the greeting is an error packet (`0xff`).
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.packet.get(4) == Some(&0xff)
    }
}

/// The lower capability flags of a protocol-10 greeting: after the version byte, the
/// NUL-terminated server version, the 4-byte connection id, 8 bytes of auth data and a
/// filler byte (<https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_v10.html>).
fn capabilities(payload: &[u8]) -> Option<u32> {
    if payload.first() != Some(&10) {
        return None;
    }
    let version_end = 1 + memchr::memchr(0, &payload[1..])?;
    let at = version_end + 1 + 4 + 8 + 1;
    let lower = payload.get(at..at + 2)?;
    Some(u32::from(u16::from_le_bytes([lower[0], lower[1]])))
}

/// Read one packet (header + payload) from `r` into a new buffer, using `buf` for what was
/// read beyond it.
async fn read_packet<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
) -> std::io::Result<BytesMut> {
    loop {
        if buf.len() >= 4 {
            let len = usize::from(buf[0]) | usize::from(buf[1]) << 8 | usize::from(buf[2]) << 16;
            if len > MAX_HANDSHAKE_PACKET {
                return Err(std::io::Error::other(
                    "a connection-phase packet larger than 1 MiB",
                ));
            }
            if buf.len() >= 4 + len {
                return Ok(buf.split_to(4 + len));
            }
        }
        if r.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Connect to the server and read its greeting.
///
/// # Errors
///
/// Socket errors while connecting or reading (the caller classifies them as "unreachable").
pub async fn greet(host: &str, port: u16) -> std::io::Result<Greeting> {
    let mut stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    let mut buf = BytesMut::with_capacity(512);
    let packet = read_packet(&mut stream, &mut buf).await?;
    if !buf.is_empty() {
        // The server speaks only after the client: nothing may follow the greeting.
        return Err(std::io::Error::other("unexpected data after the greeting"));
    }
    Ok(Greeting { stream, packet })
}

/// A running relay: its socket path (give it to `mysql_async`) and the outcome of the TLS
/// handshake, reported once the client's response went through.
pub struct Relay {
    /// The private directory holding the socket; removed when dropped.
    _dir: tempfile::TempDir,
    /// The socket `mysql_async` connects to.
    pub socket: String,
    /// The handshake's facts, or why it failed.
    pub handshake: oneshot::Receiver<Result<Handshake, EngineError>>,
}

/// Start a relay for `greeting` (a server that offers TLS), securing the connection with
/// `connector`. The relay runs as its own task until either side closes.
///
/// # Errors
///
/// The private socket cannot be created ([`ErrorKind::Io`]).
pub fn relay(greeting: Greeting, connector: Connector) -> Result<Relay, EngineError> {
    let local = |e: std::io::Error| {
        EngineError::new(
            ErrorKind::Io,
            format!("cannot create the local socket of the TLS relay: {e}"),
        )
    };
    let dir = tempfile::Builder::new()
        .prefix("exporter-mysql-tls-")
        .tempdir()
        .map_err(local)?;
    let path = dir.path().join("s");
    let listener = UnixListener::bind(&path).map_err(local)?;
    let (tx, rx) = oneshot::channel();
    let socket = path.to_string_lossy().into_owned();
    let path = Arc::new(path);
    tokio::spawn(async move {
        let accepted = tokio::time::timeout(ACCEPT_TIMEOUT, listener.accept()).await;
        // One client only: no other process can connect after this.
        drop(listener);
        #[allow(
            clippy::disallowed_methods,
            reason = "the socket path is private to this relay; a failure to remove it is ignored, so no message names it"
        )]
        let _ = std::fs::remove_file(path.as_ref());
        let Ok(Ok((client, _))) = accepted else {
            let _ = tx.send(Err(EngineError::new(
                ErrorKind::Protocol,
                "the MySQL client did not connect to the TLS relay",
            )));
            return;
        };
        run(greeting, client, &connector, tx).await;
    });
    Ok(Relay {
        _dir: dir,
        socket,
        handshake: rx,
    })
}

async fn run(
    greeting: Greeting,
    mut client: UnixStream,
    connector: &Connector,
    report: oneshot::Sender<Result<Handshake, EngineError>>,
) {
    let Greeting { stream, packet } = greeting;
    let failed = |what: &str, e: &std::io::Error| {
        EngineError::new(ErrorKind::Protocol, format!("TLS relay: {what}: {e}")).retryable(true)
    };
    if let Err(e) = client.write_all(&packet).await {
        let _ = report.send(Err(failed("passing on the greeting", &e)));
        return;
    }
    let mut from_client = BytesMut::with_capacity(1024);
    let response = match read_packet(&mut client, &mut from_client).await {
        Ok(p) if p.len() >= 4 + 32 && p[3] == 1 => p,
        Ok(_) => {
            let _ = report.send(Err(EngineError::new(
                ErrorKind::Protocol,
                "TLS relay: the client's handshake response is not a protocol 4.1 response",
            )));
            return;
        }
        Err(e) => {
            let _ = report.send(Err(failed("reading the client's handshake response", &e)));
            return;
        }
    };
    let mut payload = response[4..].to_vec();
    let caps = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) | CLIENT_SSL;
    payload[..4].copy_from_slice(&caps.to_le_bytes());
    // SSLRequest: the response's first 32 bytes (capabilities, max packet, character set,
    // filler with MariaDB's extended capabilities), sequence 1.
    let mut server = stream;
    let mut ssl_request = Vec::with_capacity(36);
    ssl_request.extend_from_slice(&[32, 0, 0, 1]);
    ssl_request.extend_from_slice(&payload[..32]);
    if let Err(e) = server.write_all(&ssl_request).await {
        let _ = report.send(Err(failed("sending the SSL request", &e)));
        return;
    }
    // A read buffer under TLS: rustls reads the socket 4 KiB at a time.
    let buffered = tokio::io::BufReader::with_capacity(COPY_BUF, server);
    let (mut tls, handshake) = match connector.connect(buffered).await {
        Ok(done) => done,
        Err(e) => {
            let _ = report.send(Err(EngineError::from(e)));
            return;
        }
    };
    // The full response inside TLS, sequence 2.
    let mut first = Vec::with_capacity(4 + payload.len());
    let len = payload.len();
    first.extend_from_slice(&[len as u8, (len >> 8) as u8, (len >> 16) as u8, 2]);
    first.extend_from_slice(&payload);
    if let Err(e) = tls.write_all(&first).await.and(tls.flush().await) {
        let _ = report.send(Err(EngineError::from(connector.explain_io(&e, false))));
        return;
    }
    let _ = report.send(Ok(handshake));
    if let Err(e) = authenticate(&mut client, &mut tls, &mut from_client).await {
        tracing::debug!(error = %e, "mysql TLS relay: connection phase ended");
        if Connector::is_tls_failure(&e) {
            // E.g. a TLS 1.3 server refusing the client certificate after the handshake:
            // tell the client in its own protocol, so the driver reports it.
            let text = connector.explain_io(&e, false).to_string();
            let _ = client.write_all(&error_packet(2, &text)).await;
        }
        let _ = tls.shutdown().await;
        return;
    }
    // Bytes the client sent after its last connection-phase packet (none in practice).
    if !from_client.is_empty()
        && (tls.write_all(&from_client).await.is_err() || tls.flush().await.is_err())
    {
        return;
    }
    let (mut tls_read, mut tls_write) = tokio::io::split(tls);
    let (mut client_read, mut client_write) = client.into_split();
    let up = async {
        let mut buf = vec![0u8; COPY_BUF];
        loop {
            let n = client_read.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            tls_write.write_all(&buf[..n]).await?;
            tls_write.flush().await?;
        }
        tls_write.shutdown().await
    };
    let down = async {
        let mut buf = vec![0u8; COPY_BUF];
        loop {
            let n = tls_read.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            client_write.write_all(&buf[..n]).await?;
        }
        client_write.shutdown().await
    };
    // Either side closing ends the relay: the client dropping its connection must close
    // the server's (so a running query stops), and the server closing must end the client's.
    tokio::select! {
        r = up => if let Err(e) = r { tracing::debug!(error = %e, "mysql TLS relay: client side"); },
        r = down => if let Err(e) = r { tracing::debug!(error = %e, "mysql TLS relay: server side"); },
    }
}

/// Relay the authentication exchange, shifting sequence numbers (client to server +1,
/// server to client −1), until the server's `OK` (`0x00`) or `ERR` (`0xff`), which is passed
/// on too. Server packets may come back to back (`caching_sha2_password`'s fast-auth
/// success `0x01 0x03` is followed by `OK`), so both directions are read at once.
async fn authenticate<S>(
    client: &mut UnixStream,
    server: &mut S,
    from_client: &mut BytesMut,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut from_server = BytesMut::with_capacity(1024);
    loop {
        // Complete packets first.
        while let Some(mut p) = take_packet(&mut from_server)? {
            p[3] = p[3].wrapping_sub(1);
            client.write_all(&p).await?;
            if matches!(p.get(4), Some(0x00 | 0xff)) {
                if !from_server.is_empty() {
                    client.write_all(&from_server).await?;
                }
                return Ok(());
            }
        }
        while let Some(mut p) = take_packet(from_client)? {
            p[3] = p[3].wrapping_add(1);
            server.write_all(&p).await?;
            server.flush().await?;
        }
        tokio::select! {
            n = server.read_buf(&mut from_server) => {
                if n? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
            n = client.read_buf(from_client) => {
                if n? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
    }
}

fn take_packet(buf: &mut BytesMut) -> std::io::Result<Option<BytesMut>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = usize::from(buf[0]) | usize::from(buf[1]) << 8 | usize::from(buf[2]) << 16;
    if len > MAX_HANDSHAKE_PACKET {
        return Err(std::io::Error::other(
            "a connection-phase packet larger than 1 MiB",
        ));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    Ok(Some(buf.split_to(4 + len)))
}

/// An `ERR` packet (code 2026, `CR_SSL_CONNECTION_ERROR`, the client library's code for TLS
/// failures) carrying `message`.
fn error_packet(seq: u8, message: &str) -> Vec<u8> {
    let mut payload = vec![0xff];
    payload.extend_from_slice(&2026u16.to_le_bytes());
    payload.extend_from_slice(b"#HY000");
    payload.extend_from_slice(message.as_bytes());
    let len = payload.len();
    let mut p = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, seq];
    p.extend_from_slice(&payload);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_capabilities() {
        // Protocol 10, "10.11.9-MariaDB\0", id, 8 bytes of salt, filler, caps 0xf7fe.
        let mut g = vec![10u8];
        g.extend_from_slice(b"10.11.9-MariaDB\0");
        g.extend_from_slice(&[1, 0, 0, 0]);
        g.extend_from_slice(b"abcdefgh");
        g.push(0);
        g.extend_from_slice(&0xf7feu16.to_le_bytes());
        assert_eq!(capabilities(&g), Some(0xf7fe));
        assert!(capabilities(&g).unwrap() & CLIENT_SSL == 0);
        let ssl = 0xf7feu16 | 0x0800;
        let at = g.len() - 2;
        g[at..].copy_from_slice(&ssl.to_le_bytes());
        assert!(capabilities(&g).unwrap() & CLIENT_SSL != 0);
        assert_eq!(capabilities(&[0xff, 0x10, 0x04]), None);
        assert_eq!(capabilities(&[10, b'x']), None);
    }

    #[test]
    fn packets_are_cut_and_errors_built() {
        let mut buf = BytesMut::from(&b"\x02\x00\x00\x03ab\x01\x00"[..]);
        let p = take_packet(&mut buf).unwrap().unwrap();
        assert_eq!(&p[..], b"\x02\x00\x00\x03ab");
        assert!(take_packet(&mut buf).unwrap().is_none());
        let e = error_packet(2, "no");
        assert_eq!(&e[..4], &[11, 0, 0, 2]);
        assert_eq!(&e[4..7], &[0xff, 0xea, 0x07]);
        assert_eq!(&e[7..], b"#HY000no");
    }
}
