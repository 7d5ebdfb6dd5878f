//! Helpers shared by the integration tests: a dedicated `redis-server` per test on a free
//! loopback port (killed on drop), dumping through the adapter, restoring with stock
//! `redis-cli --pipe`, and byte-exact snapshots with `fixtures/redis/resp.py`.

#![allow(
    clippy::disallowed_macros,
    clippy::disallowed_methods,
    reason = "tests may print and use std::fs (clippy.toml)"
)]
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use exporter_contract::{DatabaseUrl, DumpMeta, DumpOptions, DumpSummary, EngineError, Source};
use futures::StreamExt;

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/redis")
        .join(rel)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .unwrap()
        .port()
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    free_port()
}

/// A throwaway `redis-server`.
pub struct Server {
    pub port: u16,
    pub password: Option<String>,
    child: Option<Child>,
    pub dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(&[], None)
    }

    /// Start with extra arguments; `password` is what readiness checks and `cli` use.
    pub fn start_with(extra: &[&str], password: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, extra, password)
    }

    /// Start on the RDB file `rdb` (written into the server's directory first).
    pub fn start_on_rdb(rdb: &[u8]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        fs_write(&dir.path().join("dump.rdb"), rdb);
        Self::start_in(dir, &["--dbfilename", "dump.rdb"], None)
    }

    fn start_in(dir: tempfile::TempDir, extra: &[&str], password: Option<&str>) -> Self {
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--dir", dir.path().to_str().unwrap()])
                .args(["--repl-diskless-sync-delay", "0"])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken or bad arguments: try another port
                }
                if ready(port) {
                    return Self {
                        port,
                        password: password.map(str::to_owned),
                        child: Some(child),
                        dir,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("redis-server on port {port} did not become ready");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start redis-server");
    }

    /// `redis://127.0.0.1:PORT` plus `userinfo@` and `/path` if given.
    pub fn url_with(&self, userinfo: &str, path: &str) -> DatabaseUrl {
        let at = if userinfo.is_empty() { "" } else { "@" };
        DatabaseUrl::parse(&format!(
            "redis://{userinfo}{at}127.0.0.1:{}{path}",
            self.port
        ))
        .unwrap()
    }

    pub fn url(&self) -> DatabaseUrl {
        self.url_with("", "")
    }

    /// A synchronous client of the `redis` crate, independent of the adapter's own client.
    pub fn client(&self) -> redis::Connection {
        let url = match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        };
        redis::Client::open(url)
            .unwrap()
            .get_connection()
            .expect("connect with the redis crate")
    }

    /// Run `redis-cli -p PORT ARGS…`; returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-p", &self.port.to_string()]);
        if let Some(p) = &self.password {
            cmd.args(["-a", p, "--no-auth-warning"]);
        }
        let out = cmd.args(args).output().expect("redis-cli runs");
        assert!(out.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Feed a fixture of commands (one per line, redis-cli quoting) to `redis-cli`.
    pub fn setup(&self, fixture_name: &str) {
        let file = std::fs::File::open(fixture(fixture_name)).expect("fixture exists");
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .stdin(file)
            .output()
            .expect("redis-cli runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "setup {fixture_name} failed: {text}");
        assert!(!text.contains("ERR"), "setup {fixture_name}: {text}");
    }

    /// `resp.py snapshot PORT`: every key of DBs 0–15, byte-exact, TTL rounded to seconds.
    pub fn snapshot(&self) -> String {
        let out = Command::new("python3")
            .arg(fixture("resp.py"))
            .args(["snapshot", &self.port.to_string()])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "resp.py snapshot failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("repr output is ASCII")
    }

    /// Replay a RESP stream with stock `redis-cli --pipe`; asserts exit 0 and `errors: 0`.
    pub fn restore(&self, stream: &[u8]) {
        let path = self
            .dir
            .path()
            .join(format!("restore-{}.resp", rand_suffix()));
        fs_write(&path, stream);
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--pipe"])
            .stdin(std::fs::File::open(&path).unwrap())
            .output()
            .expect("redis-cli runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "redis-cli --pipe failed: {text}");
        assert!(text.contains("errors: 0"), "redis-cli --pipe: {text}");
        let _ = std::fs::remove_file(path);
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn fs_write(path: &Path, data: &[u8]) {
    let mut f = std::fs::File::create(path).expect("create file");
    f.write_all(data).expect("write file");
}

/// Ready when `PING` answers `+PONG` (or `-NOAUTH`: up, but needs a password).
fn ready(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => buf.starts_with(b"+PONG") || buf.starts_with(b"-NOAUTH"),
        _ => false,
    }
}

/// Everything one dump produced.
pub struct Dumped {
    pub meta: DumpMeta,
    pub bytes: Vec<u8>,
    pub body_error: Option<EngineError>,
    pub completion: Result<DumpSummary, EngineError>,
    pub max_chunk: usize,
}

impl Dumped {
    /// The summary of a dump that must have succeeded.
    pub fn ok(&self) -> &DumpSummary {
        assert!(
            self.body_error.is_none(),
            "body error: {:?}",
            self.body_error
        );
        self.completion.as_ref().expect("completion Ok")
    }
}

/// Dump through the adapter, pulling the whole body, then awaiting completion.
pub async fn dump(source: &dyn Source) -> Result<Dumped, EngineError> {
    let d = source.dump(DumpOptions::default()).await?;
    let meta = d.meta.clone();
    let mut body = d.body;
    let mut bytes = Vec::new();
    let mut body_error = None;
    let mut max_chunk = 0;
    while let Some(item) = body.next().await {
        match item {
            Ok(chunk) => {
                max_chunk = max_chunk.max(chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            Err(e) => {
                body_error = Some(e);
                break;
            }
        }
    }
    let completion = d.completion.await;
    Ok(Dumped {
        meta,
        bytes,
        body_error,
        completion,
        max_chunk,
    })
}

/// RESP encoding of one command, to compare streams with.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Redis's CRC64 (Jones, reflected), written independently of the adapter's.
pub fn crc64(data: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x95ac_9329_ac4b_c9b5
            } else {
                crc >> 1
            };
        }
    }
    crc
}
