//! S3: the S3-compatible test server (moto; required, never skipped), a bucket per test, the
//! exporter with S3 credentials in its environment, and a TCP proxy that watches or breaks the
//! requests for fault tests.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::*;

/// Access key id the tests give the exporter (moto accepts any unless auth is on).
pub const KEY_ID: &str = "AKIAEXPORTERTESTKEY1";
/// Secret key the tests give the exporter; must never appear in any output.
pub const SECRET: &str = "exporter-test-secret-never-print-me";

pub fn endpoint() -> String {
    std::env::var("EXPORTER_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:5900".into())
}

pub fn python() -> PathBuf {
    std::env::var_os("EXPORTER_TEST_S3_PYTHON").map_or_else(
        || repo_root().join("target/s3-venv/bin/python"),
        PathBuf::from,
    )
}

pub fn port_of(endpoint: &str) -> u16 {
    endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {endpoint}"))
}

/// Fail (never skip) unless the S3 server answers and the stock client is installed.
#[track_caller]
pub fn require_s3() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let ep = endpoint();
        if TcpStream::connect(("127.0.0.1", port_of(&ep))).is_err() {
            return Err(format!(
                "no S3-compatible server at {ep}: start one with `.ci/s3-server start` (or set EXPORTER_TEST_S3_ENDPOINT)"
            ));
        }
        if !python().exists() {
            return Err(format!(
                "no boto3 python at {}: run `.ci/s3-server install` (or set EXPORTER_TEST_S3_PYTHON)",
                python().display()
            ));
        }
        Ok(())
    });
    if let Err(e) = ready {
        panic!("{e}");
    }
}

/// A bucket on a server, with the stock client and the exporter pointed at it.
pub struct Bucket {
    pub name: String,
    /// The server the stock client talks to.
    pub endpoint: String,
}

pub static BUCKETS: AtomicUsize = AtomicUsize::new(0);

impl Bucket {
    #[track_caller]
    pub fn create(test: &str) -> Self {
        require_s3();
        Self::create_on(test, &endpoint(), KEY_ID, SECRET)
    }

    #[track_caller]
    pub fn create_on(test: &str, endpoint: &str, key: &str, secret: &str) -> Self {
        let n = BUCKETS.fetch_add(1, Ordering::Relaxed);
        let name = format!("exp-{test}-{}-{n}", std::process::id());
        let b = Self {
            name,
            endpoint: endpoint.to_owned(),
        };
        b.client_as(key, secret, &["mkbucket", &b.name.clone()]);
        b
    }

    /// Run the stock client; panics on failure. Returns stdout.
    #[track_caller]
    pub fn client(&self, args: &[&str]) -> String {
        self.client_as(KEY_ID, SECRET, args)
    }

    #[track_caller]
    pub fn client_as(&self, key: &str, secret: &str, args: &[&str]) -> String {
        let out = Command::new(python())
            .arg(repo_root().join("tests/cli/s3_client.py"))
            .args(args)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .output()
            .expect("run the boto3 client");
        assert!(
            out.status.success(),
            "s3_client.py {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.client(&["keys", &self.name, prefix])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn uploads(&self, prefix: &str) -> Vec<String> {
        self.client(&["uploads", &self.name, prefix])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.name)
    }

    /// Download `prefix` into a new directory with the stock client.
    pub fn download(&self, prefix: &str, into: &Path) -> PathBuf {
        let dir = into.join("download");
        self.client(&["download", &self.name, prefix, dir.to_str().unwrap()]);
        dir
    }

    pub fn put(&self, key: &str, bytes: &[u8], scratch: &Path) {
        let file = scratch.join("put.bin");
        std::fs::write(&file, bytes).unwrap();
        self.client(&["put", &self.name, key, file.to_str().unwrap()]);
    }
}

/// The exporter with S3 settings from the environment only (no profile files, no instance
/// metadata), pointed at `endpoint`.
pub fn s3_exporter(cwd: &Path, endpoint: &str, key: &str, secret: &str) -> assert_cmd::Command {
    let mut cmd = exporter(cwd);
    for (k, v) in s3_env(endpoint, key, secret) {
        cmd.env(k, v);
    }
    cmd.env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    cmd
}

pub fn s3_env(endpoint: &str, key: &str, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", key.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", secret.to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("AWS_CONFIG_FILE", "/nonexistent/aws-config".to_owned()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials".to_owned(),
        ),
    ]
}

pub fn spawn_s3_exporter(cwd: &Path, endpoint: &str, args: &[&str]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_exporter"));
    cmd.current_dir(cwd)
        .args(args)
        .env("NO_COLOR", "1")
        .env("EXPORTER_LOG", "info")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in s3_env(endpoint, KEY_ID, SECRET) {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn exporter")
}

#[track_caller]
pub fn assert_no_secrets(out: &Outcome) {
    out.never_shows(SECRET).never_shows(KEY_ID);
}

/// A PostgreSQL database of random hex text whose dump compresses to about 36 bytes per row
/// (400,000 rows: about 14 MiB, two 8 MiB parts at the default part size).
pub fn multipart_db(test: &str, rows: u32) -> TestDb {
    TestDb::with_sql(
        test,
        &format!(
            "CREATE TABLE t (id integer PRIMARY KEY, label text);\n\
             INSERT INTO t SELECT i, md5(random()::text) || md5(random()::text) FROM generate_series(1, {rows}) AS i;\n"
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// A proxy between the exporter and the server
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
pub struct Seen {
    pub creates: usize,
    pub parts: usize,
    pub aborts: usize,
}

/// A TCP proxy to the S3 server on loopback. It counts the multipart requests it forwards
/// (by their request lines), and can forward at most `limit` bytes per connection from the
/// client (then it closes both sides with unread data, which resets the connection), or slow
/// the client's bytes to `rate` bytes per second.
pub struct Proxy {
    pub port: u16,
    pub seen: Arc<Mutex<Seen>>,
    pub stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: u16, limit: Option<usize>, rate: Option<usize>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let seen = seen2.clone();
                        std::thread::spawn(move || relay(client, upstream, limit, rate, &seen));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self { port, seen, stop }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (multipart uploads started, part attempts, aborts) so far.
    pub fn seen(&self) -> (usize, usize, usize) {
        let s = self.seen.lock().unwrap();
        (s.creates, s.parts, s.aborts)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub fn relay(
    mut client: TcpStream,
    upstream: u16,
    limit: Option<usize>,
    rate: Option<usize>,
    seen: &Mutex<Seen>,
) {
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let (mut client_r, mut server_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let back = std::thread::spawn(move || {
        let _ = std::io::copy(&mut server, &mut client);
        let _ = client.shutdown(std::net::Shutdown::Write);
    });
    let mut total = 0usize;
    let mut buf = vec![0u8; 64 << 10];
    let mut tail: Vec<u8> = Vec::new();
    let started = Instant::now();
    loop {
        let want = match limit {
            Some(l) if total >= l => break,
            Some(l) => buf.len().min(l - total),
            None => buf.len(),
        };
        let n = match client_r.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Count request lines; a short tail of the previous read finds a marker split
        // between reads (a match lying wholly inside the tail was counted before).
        let mut window = std::mem::take(&mut tail);
        let old = window.len();
        window.extend_from_slice(&buf[..n]);
        {
            let count = |marker: &[u8]| {
                window
                    .windows(marker.len())
                    .enumerate()
                    .filter(|(i, w)| *w == marker && i + marker.len() > old)
                    .count()
            };
            let mut s = seen.lock().unwrap();
            s.creates += count(b"?uploads HTTP/1.1");
            s.parts += count(b"x-id=UploadPart");
            s.aborts += count(b"x-id=AbortMultipartUpload");
        }
        tail = window[window.len().saturating_sub(40)..].to_vec();
        if server_w.write_all(&buf[..n]).is_err() {
            break;
        }
        total += n;
        if let Some(r) = rate {
            let due = Duration::from_secs_f64(total as f64 / r as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    // Closing with unread data in the receive buffer sends a reset to the client.
    let _ = server_w.shutdown(std::net::Shutdown::Both);
    let _ = client_r.shutdown(std::net::Shutdown::Both);
    drop(client_r);
    let _ = back.join();
}
