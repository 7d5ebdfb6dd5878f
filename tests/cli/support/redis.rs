//! Redis: dedicated redis-server processes on free ports (never the shared one on 6379), seeds,
//! snapshots and fingerprints computed from DUMP payloads, the stock `redis-cli --pipe`.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::*;

/// A port nothing listens on right now (an ephemeral port, bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Fail the test (never skip) unless the Redis tools are installed: every Redis test runs its
/// own `redis-server` (never the shared one on 6379).
#[track_caller]
pub fn require_redis_tools() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        for tool in ["redis-server", "redis-cli"] {
            match Command::new(tool).arg("--version").output() {
                Ok(o) if o.status.success() => {}
                Ok(o) => return Err(format!("{tool} --version failed: {:?}", o.status)),
                Err(e) => return Err(format!("cannot run {tool}: {e}")),
            }
        }
        match Command::new("python3").arg("--version").output() {
            Ok(o) if o.status.success() => Ok(()),
            _ => Err("cannot run python3 (fixtures/redis/resp.py needs it)".to_owned()),
        }
    });
    if let Err(e) = ready {
        panic!(
            "the Redis tests need redis-server, redis-cli and python3 on PATH; they start their \
             own servers — this test does not skip.\n{e}"
        );
    }
}

/// A dedicated `redis-server` on a free loopback port (`--save "" --appendonly no`, its own
/// temporary `--dir`), killed when the guard goes away.
#[derive(Debug)]
pub struct RedisServer {
    /// Its port.
    pub port: u16,
    /// The password given with `--requirepass`, used by [`RedisServer::cli`].
    pub password: Option<String>,
    /// Its working directory.
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Start an empty server.
    #[track_caller]
    pub fn start() -> Self {
        Self::start_in(tempdir(), &[], None)
    }

    /// Start a server that requires `password`.
    #[track_caller]
    pub fn with_password(password: &str) -> Self {
        Self::start_in(tempdir(), &["--requirepass", password], Some(password))
    }

    /// Start a server on an RDB file: `dir/dump.rdb`, `--dir dir --dbfilename dump.rdb`.
    #[track_caller]
    pub fn on_rdb(rdb: &[u8]) -> Self {
        let dir = tempdir();
        std::fs::write(dir.path().join("dump.rdb"), rdb).expect("write dump.rdb");
        Self::start_in(dir, &["--dbfilename", "dump.rdb"], None)
    }

    #[track_caller]
    fn start_in(dir: tempfile::TempDir, extra: &[&str], password: Option<&str>) -> Self {
        require_redis_tools();
        let mut last = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let log = dir.path().join(format!("redis-{port}.log"));
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--dir", s(dir.path())])
                .args(["--logfile", s(&log)])
                // An RDB dump (replication SYNC) starts at once instead of after 5 s.
                .args(["--repl-diskless-sync-delay", "0"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    // Port taken or the RDB refused: say why if it keeps failing.
                    last = format!(
                        "redis-server exited ({status}):\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                    break;
                }
                if redis_ready(port) {
                    return Self {
                        port,
                        password: password.map(str::to_owned),
                        dir,
                        child: Some(child),
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("redis-server on port {port} did not become ready within 10 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start redis-server: {last}");
    }

    /// `redis://127.0.0.1:PORT` (no password, no db).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Run `redis-cli -p PORT [-a PASSWORD] ARGS…` and return stdout; panics on failure or on
    /// an error reply.
    #[track_caller]
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self
            .cli_command()
            .args(args)
            .output()
            .expect("run redis-cli");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && !text.starts_with("ERR") && !text.starts_with("WRONG"),
            "redis-cli {args:?} failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    fn cli_command(&self) -> Command {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-p", &self.port.to_string()]);
        if let Some(p) = &self.password {
            cmd.args(["-a", p, "--no-auth-warning"]);
        }
        cmd
    }

    /// Feed commands (one per line, redis-cli quoting, `"\xff"` escapes inside double quotes,
    /// `SELECT n` switches database) to `redis-cli` on stdin; panics on any error reply.
    #[track_caller]
    pub fn seed(&self, commands: &str) {
        let mut child = self
            .cli_command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run redis-cli");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(commands.as_bytes())
            .expect("feed redis-cli");
        let out = child.wait_with_output().expect("redis-cli");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success()
                && !text
                    .lines()
                    .any(|l| l.starts_with("ERR") || l.starts_with("(error)")),
            "seeding redis on port {} failed:\n{text}{}",
            self.port,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `DBSIZE` of logical database `db`.
    #[track_caller]
    pub fn dbsize(&self, db: u32) -> u64 {
        self.cli(&["-n", &db.to_string(), "DBSIZE"])
            .trim()
            .parse()
            .expect("DBSIZE is a number")
    }

    /// `INFO server`'s `redis_version`.
    #[track_caller]
    pub fn version(&self) -> String {
        self.cli(&["INFO", "server"])
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .expect("redis_version in INFO server")
            .trim()
            .to_owned()
    }

    /// `python3 fixtures/redis/resp.py snapshot PORT`: every key of databases 0–15, byte-exact,
    /// expiry rounded to the second. Needs a server without a password.
    #[track_caller]
    pub fn snapshot(&self) -> String {
        assert!(self.password.is_none(), "resp.py cannot authenticate");
        let out = Command::new("python3")
            .arg(repo_root().join("fixtures/redis/resp.py"))
            .args(["snapshot", &self.port.to_string()])
            .output()
            .expect("run python3 resp.py");
        assert!(
            out.status.success(),
            "resp.py snapshot {} failed: {}",
            self.port,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("resp.py prints ASCII")
    }

    /// Restore with the stock tools only: `zstd -dc x.resp.zst | redis-cli -p PORT --pipe`;
    /// asserts exit 0 and `errors: 0`. Returns redis-cli's report.
    #[track_caller]
    pub fn restore_pipe(&self, archive: &Path) -> String {
        let out = Command::new("bash")
            .arg("-c")
            .arg("set -euo pipefail; zstd -q -dc \"$1\" | redis-cli -p \"$2\" --pipe")
            .arg("restore")
            .arg(archive)
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run zstd | redis-cli --pipe");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains("errors: 0"),
            "`zstd -dc {} | redis-cli --pipe` into port {} failed ({:?}):\n{text}",
            archive.display(),
            self.port,
            out.status
        );
        text
    }

    /// The per-database fingerprints of the Redis engine (`db<n>` → (keys, fingerprint)),
    /// computed here independently from `DUMP` payloads: per key `u64 BE key length ‖ key ‖
    /// u128 BE value digest`, the digest being XXH3-128 of the payload without its 10-byte
    /// trailer, or, for hash-table sets and hashes (RDB types 2 and 4, whose element order
    /// depends on the server's hash seed), XXH3-128 of `type ‖ u64 BE count ‖ u128 BE wrapping
    /// sum of each element's XXH3-128` (adapters/redis/src/lib.rs, "Fingerprints").
    #[track_caller]
    pub fn fingerprints(&self) -> BTreeMap<String, (u64, String)> {
        self.dumps()
            .into_iter()
            .map(|(db, keys)| {
                let sum = keys.iter().fold(0u128, |acc, (key, payload)| {
                    let mut row = (key.len() as u64).to_be_bytes().to_vec();
                    row.extend_from_slice(key);
                    row.extend_from_slice(&redis_value_digest(payload).to_be_bytes());
                    acc.wrapping_add(xxhash_rust::xxh3::xxh3_128(&row))
                });
                (
                    format!("db{db}"),
                    (keys.len() as u64, format!("{sum:032x}")),
                )
            })
            .collect()
    }

    /// The highest RDB version in the trailers of all `DUMP` payloads (what the manifest's
    /// `payload_version` of a RESP dump records as `rdb <n>`).
    #[track_caller]
    pub fn max_dump_rdb_version(&self) -> u16 {
        self.dumps()
            .values()
            .flatten()
            .map(|(_, p)| u16::from_le_bytes([p[p.len() - 10], p[p.len() - 9]]))
            .max()
            .expect("no keys")
    }

    /// Every key of databases 0–15 with its `DUMP` payload, per database holding keys.
    #[track_caller]
    fn dumps(&self) -> BTreeMap<u32, KeyDumps> {
        let mut conn = Resp::connect(self.port, self.password.as_deref());
        let mut out = BTreeMap::new();
        for db in 0..16u32 {
            conn.ok(&[b"SELECT", db.to_string().as_bytes()]);
            let mut keys = Vec::new();
            let mut cursor = b"0".to_vec();
            loop {
                let RespValue::Array(page) = conn.call(&[b"SCAN", &cursor, b"COUNT", b"1000"])
                else {
                    panic!("SCAN reply is not an array");
                };
                let [RespValue::Bulk(Some(next)), RespValue::Array(found)] = &page[..] else {
                    panic!("unexpected SCAN reply {page:?}");
                };
                for k in found {
                    let RespValue::Bulk(Some(k)) = k else {
                        panic!("SCAN key is not a bulk string");
                    };
                    keys.push(k.clone());
                }
                cursor.clone_from(next);
                if cursor == b"0" {
                    break;
                }
            }
            keys.sort();
            keys.dedup();
            if keys.is_empty() {
                continue;
            }
            let dumped = keys
                .into_iter()
                .map(|key| {
                    let RespValue::Bulk(Some(payload)) = conn.call(&[b"DUMP", &key]) else {
                        panic!("DUMP {key:?} returned no payload");
                    };
                    assert!(payload.len() > 10, "DUMP payload too short");
                    (key, payload)
                })
                .collect();
            out.insert(db, dumped);
        }
        out
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Keys and their `DUMP` payloads.
type KeyDumps = Vec<(Vec<u8>, Vec<u8>)>;

/// Ready when `PING` answers `+PONG` (or `-NOAUTH`: up, but it wants a password).
fn redis_ready(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
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

/// The value digest of one `DUMP` payload (see [`RedisServer::fingerprints`]).
fn redis_value_digest(payload: &[u8]) -> u128 {
    use xxhash_rust::xxh3::{Xxh3, xxh3_128};
    assert!(payload.len() > 10, "DUMP payload too short");
    let body = &payload[..payload.len() - 10];
    let kind = body[0];
    if kind != 2 && kind != 4 {
        return xxh3_128(body);
    }
    let mut at = 1;
    let count = rdb_len(body, &mut at).expect("element count is a plain length");
    let mut sum = 0u128;
    for _ in 0..count {
        let mut h = Xxh3::new();
        if kind == 4 {
            let field = rdb_string(body, &mut at);
            h.update(&(field.len() as u64).to_be_bytes());
            h.update(&field);
        }
        h.update(&rdb_string(body, &mut at));
        sum = sum.wrapping_add(h.digest128());
    }
    assert_eq!(
        at,
        body.len(),
        "bytes after the last element of a type-{kind} payload"
    );
    let mut buf = vec![kind];
    buf.extend_from_slice(&count.to_be_bytes());
    buf.extend_from_slice(&sum.to_be_bytes());
    xxh3_128(&buf)
}

/// An RDB length: `Ok(n)`, or `Err(encoding)` for a specially encoded string.
fn rdb_len(b: &[u8], at: &mut usize) -> Result<u64, u8> {
    let first = b[*at];
    *at += 1;
    match first >> 6 {
        0 => Ok(u64::from(first & 0x3f)),
        1 => {
            let n = (u64::from(first & 0x3f) << 8) | u64::from(b[*at]);
            *at += 1;
            Ok(n)
        }
        2 if first == 0x80 => {
            let n = u32::from_be_bytes(b[*at..*at + 4].try_into().unwrap());
            *at += 4;
            Ok(u64::from(n))
        }
        2 if first == 0x81 => {
            let n = u64::from_be_bytes(b[*at..*at + 8].try_into().unwrap());
            *at += 8;
            Ok(n)
        }
        2 => panic!("unknown RDB length byte {first:#04x}"),
        _ => Err(first & 0x3f),
    }
}

/// An RDB string (integer encodings as their decimal text; LZF is not needed by these tests'
/// short values and fails loudly).
fn rdb_string(b: &[u8], at: &mut usize) -> Vec<u8> {
    match rdb_len(b, at) {
        Ok(n) => {
            let n = n as usize;
            let v = b[*at..*at + n].to_vec();
            *at += n;
            v
        }
        Err(enc @ 0..=2) => {
            let w = 1usize << enc;
            let raw = &b[*at..*at + w];
            *at += w;
            let v = match enc {
                0 => i64::from(raw[0] as i8),
                1 => i64::from(i16::from_le_bytes([raw[0], raw[1]])),
                _ => i64::from(i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])),
            };
            v.to_string().into_bytes()
        }
        Err(enc) => panic!(
            "RDB string encoding {enc} (LZF) in a test payload: keep seeded set/hash elements short"
        ),
    }
}

/// A reply of the minimal RESP2 client below.
#[derive(Debug)]
pub enum RespValue {
    /// `+…`
    Simple(String),
    /// `-…`
    Error(String),
    /// `:…`
    Int(i64),
    /// `$…` (None for nil)
    Bulk(Option<Vec<u8>>),
    /// `*…`
    Array(Vec<RespValue>),
}

/// A minimal binary-safe RESP2 client, independent of the engine's own client.
pub struct Resp {
    stream: std::io::BufReader<std::net::TcpStream>,
}

impl Resp {
    /// Connect to 127.0.0.1:port, authenticating if `password` is given.
    #[track_caller]
    pub fn connect(port: u16, password: Option<&str>) -> Self {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to redis on {port}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        let mut me = Self {
            stream: std::io::BufReader::new(stream),
        };
        if let Some(p) = password {
            me.ok(&[b"AUTH", p.as_bytes()]);
        }
        me
    }

    /// Send one command and read its reply.
    #[track_caller]
    pub fn call(&mut self, args: &[&[u8]]) -> RespValue {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.stream
            .get_mut()
            .write_all(&buf)
            .expect("send to redis");
        self.read()
    }

    /// Send one command and assert it succeeded.
    #[track_caller]
    pub fn ok(&mut self, args: &[&[u8]]) {
        if let RespValue::Error(e) = self.call(args) {
            panic!("{:?} failed: {e}", String::from_utf8_lossy(args[0]));
        }
    }

    fn read(&mut self) -> RespValue {
        use std::io::BufRead as _;
        let mut line = Vec::new();
        self.stream
            .read_until(b'\n', &mut line)
            .expect("read from redis");
        assert!(line.ends_with(b"\r\n"), "bad RESP line {line:?}");
        let rest = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        match line[0] {
            b'+' => RespValue::Simple(rest),
            b'-' => RespValue::Error(rest),
            b':' => RespValue::Int(rest.parse().expect("integer reply")),
            b'$' => {
                let n: i64 = rest.parse().expect("bulk length");
                if n < 0 {
                    return RespValue::Bulk(None);
                }
                let mut data = vec![0u8; n as usize + 2];
                self.stream.read_exact(&mut data).expect("read bulk");
                data.truncate(n as usize);
                RespValue::Bulk(Some(data))
            }
            b'*' => {
                let n: i64 = rest.parse().expect("array length");
                RespValue::Array((0..n.max(0)).map(|_| self.read()).collect())
            }
            other => panic!("unexpected RESP type byte {other:#04x}"),
        }
    }
}

/// A fixed Redis seed with keys of every type in databases 0 and 1: strings (one a binary key
/// with a binary value), a list, an integer set and a string set, a sorted set, hashes, a
/// stream; relative (EXPIRE) and absolute (PEXPIREAT) expiries. Key counts: [`REDIS_SEED_KEYS`].
pub const REDIS_SEED: &str = r#"SELECT 0
SET greeting "hello world"
SET "bin\x00\xffkey" "\x01\x02\xfe\xff"
SET counter 42
SET session:1 "alive" EX 3600
PEXPIREAT counter 4102444800123
RPUSH queue a b c "d e" ""
SADD ints 1 2 3 100000
SADD tags red green blue "with space"
ZADD board 1.5 alice 2 bob -3.25 carol
HSET user:1 name Ada lang "Rust" n 7
HSET user:2 name Bob
EXPIRE user:2 7200
XADD events 1-1 kind login who ada
XADD events 2-0 kind logout who ada
SELECT 1
SET other "db one"
LPUSH l1 x y
SADD s1 m1 m2 m3
HSET h1 f v
PEXPIREAT h1 4102444800000
"#;

/// Key counts of [`REDIS_SEED`]: (db0, db1).
pub const REDIS_SEED_KEYS: (u64, u64) = (11, 4);
