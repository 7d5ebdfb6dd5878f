//! A loopback TCP proxy that stops forwarding: the stall of a tunnel or a network path that
//! neither closes nor answers (issue 16's stall test). It forwards both directions of every
//! connection until `limit` bytes in total have come back from the server, then forwards
//! nothing more in either direction and keeps every connection open — until it is dropped,
//! which closes them all.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The proxy; see the module docs.
pub struct StallProxy {
    /// The local port to connect to instead of the server's.
    pub port: u16,
    shared: Arc<Shared>,
}

struct Shared {
    limit: usize,
    /// Bytes forwarded from the server so far.
    forwarded: AtomicUsize,
    /// The limit was reached.
    stalled: AtomicBool,
    /// The proxy was dropped: close everything.
    stop: AtomicBool,
    sockets: Mutex<Vec<TcpStream>>,
}

impl StallProxy {
    /// Listen on a free loopback port and forward to `127.0.0.1:upstream`.
    pub fn start(upstream: u16, limit: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stall proxy");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            limit,
            forwarded: AtomicUsize::new(0),
            stalled: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
        });
        let accept = shared.clone();
        std::thread::spawn(move || {
            while !accept.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                            continue;
                        };
                        {
                            let mut sockets = accept.sockets.lock().unwrap();
                            sockets.push(client.try_clone().unwrap());
                            sockets.push(server.try_clone().unwrap());
                        }
                        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                        let (up, down) = (accept.clone(), accept.clone());
                        std::thread::spawn(move || pump(client, server, &up, false));
                        std::thread::spawn(move || pump(s2, c2, &down, true));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self { port, shared }
    }

    /// Whether the limit was reached (the proxy stopped forwarding).
    pub fn stalled(&self) -> bool {
        self.shared.stalled.load(Ordering::Relaxed)
    }

    /// Bytes forwarded from the server.
    pub fn forwarded(&self) -> usize {
        self.shared.forwarded.load(Ordering::Relaxed)
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for s in self.shared.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Copy `from` to `to` until the stall (then hold, reading nothing) or until either side
/// closes. `counted`: this is the server-to-client direction, which the limit counts.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared, counted: bool) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        if shared.stalled.load(Ordering::Relaxed) {
            // Hold: the connection stays open and silent.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let want = if counted {
            let left = shared
                .limit
                .saturating_sub(shared.forwarded.load(Ordering::Relaxed));
            if left == 0 {
                shared.stalled.store(true, Ordering::Relaxed);
                continue;
            }
            left.min(buf.len())
        } else {
            buf.len()
        };
        let n = match from.read(&mut buf[..want]) {
            Ok(0) | Err(_) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => n,
        };
        if shared.stalled.load(Ordering::Relaxed) && !counted {
            // Stalled while this read waited: forward nothing more (the proxy never resumes).
            continue;
        }
        if to.write_all(&buf[..n]).is_err() {
            return;
        }
        if counted {
            shared.forwarded.fetch_add(n, Ordering::Relaxed);
        }
    }
}
