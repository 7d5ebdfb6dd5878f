//! The fake platform (`fixtures/aptible/fake_api.py`, a stand-in for the unreachable real
//! API, with a real sshd as its SSH portal and real databases behind it) for the CLI's
//! platform tests: started per test on loopback ports, stopped on drop (its databases
//! dropped, its sshd and Redis servers stopped).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::cli::repo_root;

/// Every secret of the default seed: no output, file or manifest may contain one.
pub const SEED_SECRETS: &[&str] = &[
    "owner-Login-Pass-5521",
    "twofa-Login-Pass-9043",
    "pg-Seed-Pass-7731",
    "pg-Replica-Pass-2290",
    "my-Seed-Pass-4418",
    "redis-Seed-Pass-6152",
    "mongo-Seed-Pass-8870",
    "pg-Old-Pass-1187",
    "drain-Secret-3309",
    "metric-Secret-7720",
];

/// The default seed (`fixtures/aptible/seed.json`).
pub fn default_seed() -> Value {
    let text = std::fs::read_to_string(repo_root().join("fixtures/aptible/seed.json"))
        .expect("fixtures/aptible/seed.json");
    serde_json::from_str(&text).expect("seed.json is JSON")
}

/// The default seed with only the databases `ids` (and their backups); `backed` of them get
/// a real database, the others are records only.
pub fn seed_with(ids: &[u64], backed: &[u64]) -> Value {
    let mut seed = default_seed();
    let dbs = seed["databases"].as_array_mut().unwrap();
    dbs.retain(|d| ids.contains(&d["id"].as_u64().unwrap()));
    for d in dbs.iter_mut() {
        if !backed.contains(&d["id"].as_u64().unwrap()) {
            d["backing"] = Value::Bool(false);
        }
    }
    let backups = seed["backups"].as_array_mut().unwrap();
    backups.retain(|b| ids.contains(&b["database"].as_u64().unwrap()));
    seed
}

/// A running fake platform.
pub struct Fake {
    child: Option<Child>,
    /// The Deploy API root.
    pub api: String,
    /// The Auth API root.
    pub auth: String,
    control: String,
    /// The SSH portal's port, when the fake runs its sshd.
    pub ssh_port: Option<u16>,
    state: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    tokens: std::sync::Mutex<Vec<String>>,
}

impl Fake {
    /// Start the fake with `seed` (and its sshd when `sshd`).
    pub fn start(seed: &Value, sshd: bool) -> Self {
        let state = tempfile::tempdir().expect("state dir");
        let seed_path = state.path().join("seed.json");
        std::fs::write(&seed_path, serde_json::to_vec(seed).unwrap()).unwrap();
        let log = std::fs::File::create(state.path().join("fake.log")).unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(repo_root().join("fixtures/aptible/fake_api.py"))
            .arg("--state-dir")
            .arg(state.path().join("state"))
            .arg("--seed")
            .arg(&seed_path)
            .args([
                "--op-queued-ms",
                "40",
                "--op-running-ms",
                "120",
                "--exit-on-stdin-eof",
            ]);
        if !sshd {
            cmd.arg("--no-sshd");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("python3 must be installed to run the fake platform");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim().is_empty() {
            let _ = child.wait();
            let log = std::fs::read_to_string(state.path().join("fake.log")).unwrap_or_default();
            panic!("the fake platform did not start:\n{log}");
        }
        let ready: Value = serde_json::from_str(&line).unwrap();
        Self {
            child: Some(child),
            api: ready["api"].as_str().unwrap().to_owned(),
            auth: ready["auth"].as_str().unwrap().to_owned(),
            control: ready["control"].as_str().unwrap().to_owned(),
            ssh_port: ready["ssh_port"].as_u64().map(|p| p as u16),
            state,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            http: reqwest::Client::new(),
            tokens: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// A control request (`/_fake/…`).
    #[allow(
        clippy::needless_pass_by_value,
        reason = "json! values at the call sites"
    )]
    pub fn post(&self, path: &str, body: Value) -> Value {
        self.runtime.block_on(async {
            let resp = self
                .http
                .post(format!("{}{path}", self.control))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(
                resp.status().is_success(),
                "control {path}: {}",
                resp.status()
            );
            resp.json().await.unwrap()
        })
    }

    /// A control read (`/_fake/…`).
    pub fn get(&self, path: &str) -> Value {
        self.runtime.block_on(async {
            self.http
                .get(format!("{}{path}", self.control))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    }

    /// A token valid for `expires_in` seconds (negative: already expired).
    pub fn token_expiring(&self, expires_in: i64) -> String {
        let v = self.post("/tokens", serde_json::json!({ "expires_in": expires_in }));
        let t = v["access_token"].as_str().unwrap().to_owned();
        self.tokens.lock().unwrap().push(t.clone());
        t
    }

    /// `ssh` client processes connected to this fake's portal (tunnels still open), after a
    /// moment for stopped ones to exit.
    pub fn ssh_clients(&self) -> usize {
        let Some(port) = self.ssh_port else {
            return 0;
        };
        let needle = format!("\0-p\0{port}\0");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let n = std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
                .map(|c| String::from_utf8_lossy(&c).into_owned())
                .filter(|c| c.starts_with("ssh\0") && c.contains(&needle))
                .count();
            if n == 0 || std::time::Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Remember a token minted through `exporter login`, for the secret checks.
    pub fn remember_token(&self, token: &str) {
        self.tokens.lock().unwrap().push(token.to_owned());
    }

    /// The request log (API and auth servers).
    pub fn requests(&self) -> Vec<Value> {
        self.get("/requests").as_array().unwrap().clone()
    }

    /// Empty the request log.
    pub fn clear_requests(&self) {
        self.post("/requests/clear", serde_json::json!({}));
    }

    /// Each fake database's real backing, by id.
    pub fn backing(&self, id: u64) -> Value {
        self.get("/backing")[id.to_string()]["backing"].clone()
    }

    /// A directory for `tokens.json` (APTIBLE_CONFIG_PATH).
    pub fn config_dir(&self) -> PathBuf {
        self.state.path().join("aptible-config")
    }

    /// The exporter with this fake's roots and `token` in the environment, and nothing else
    /// of the platform's (no token file, no HOME).
    pub fn exporter(&self, cwd: &Path, token: Option<&str>) -> assert_cmd::Command {
        let mut cmd = super::cli::exporter(cwd);
        cmd.env("APTIBLE_API_ROOT_URL", &self.api)
            .env("APTIBLE_AUTH_ROOT_URL", &self.auth)
            .env("APTIBLE_CONFIG_PATH", self.config_dir())
            .env_remove("APTIBLE_ACCESS_TOKEN")
            .env_remove("APTIBLE_USERNAME")
            .env_remove("APTIBLE_PASSWORD")
            .env_remove("APTIBLE_OTP_TOKEN")
            .env_remove("HOME");
        if let Some(t) = token {
            cmd.env("APTIBLE_ACCESS_TOKEN", t);
        }
        cmd
    }

    /// Panic if `text` contains a seeded secret or a token of this test.
    #[track_caller]
    pub fn assert_no_secret(&self, what: &str, text: &str) {
        for s in SEED_SECRETS {
            assert!(
                !text.contains(s),
                "{what}: a seeded secret ({s}) leaked:\n{text}"
            );
        }
        for t in self.tokens.lock().unwrap().iter() {
            assert!(
                !text.contains(t.as_str()),
                "{what}: a token leaked:\n{text}"
            );
        }
    }

    /// Every file under `dir` (archives decompressed) holds no secret.
    #[track_caller]
    pub fn assert_no_secret_in_files(&self, dir: &Path) {
        for entry in walk(dir) {
            let bytes = std::fs::read(&entry).unwrap();
            let text = if entry.extension().is_some_and(|e| e == "zst") {
                String::from_utf8_lossy(&zstd::decode_all(&bytes[..]).unwrap()).into_owned()
            } else {
                String::from_utf8_lossy(&bytes).into_owned()
            };
            self.assert_no_secret(&entry.display().to_string(), &text);
        }
    }

    /// The request log has no request the spec does not describe, and exactly `destructive`
    /// destructive ones (deprovisions of restored databases).
    #[track_caller]
    pub fn assert_clean_log(&self, destructive: usize) -> Vec<Value> {
        let log = self.requests();
        let unspecified: Vec<&Value> = log.iter().filter(|r| r["specified"] == false).collect();
        assert!(
            unspecified.is_empty(),
            "unspecified requests: {unspecified:#?}"
        );
        let n = log.iter().filter(|r| r["destructive"] == true).count();
        assert_eq!(n, destructive, "destructive requests in {log:#?}");
        log
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

impl Drop for Fake {
    /// SIGTERM, then wait until the fake dropped its databases and stopped its servers.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
