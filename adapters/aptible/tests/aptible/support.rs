//! The fake platform (`fixtures/aptible/fake_api.py`) as a test fixture: started per test on
//! loopback ports with its own sshd, stopped (databases dropped, sshd stopped) on drop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use exporter_aptible::{Client, ClientOptions, PollOptions, Roots, SecretString};
use serde_json::Value;

/// Every secret of the default seed: no output, error or `Debug` may contain one.
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

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn default_seed() -> Value {
    let text = std::fs::read_to_string(repo_root().join("fixtures/aptible/seed.json"))
        .expect("fixtures/aptible/seed.json");
    serde_json::from_str(&text).expect("seed.json is JSON")
}

pub struct Fake {
    child: Option<Child>,
    pub api: String,
    pub auth: String,
    pub control: String,
    pub ssh_port: Option<u16>,
    _state: tempfile::TempDir,
    http: reqwest::Client,
    tokens: std::sync::Mutex<Vec<String>>,
}

pub struct FakeOptions {
    pub seed: Value,
    pub sshd: bool,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            seed: default_seed(),
            sshd: true,
        }
    }
}

impl FakeOptions {
    /// The default seed with real databases only behind the given ids (the others are records
    /// only), and an sshd when tunnels are needed: a faster start.
    pub fn backed(ids: &[u64], sshd: bool) -> Self {
        let mut seed = default_seed();
        for db in seed["databases"].as_array_mut().unwrap() {
            let id = db["id"].as_u64().unwrap();
            if !ids.contains(&id) {
                db["backing"] = Value::Bool(false);
            }
        }
        Self { seed, sshd }
    }
}

impl Fake {
    #[allow(clippy::needless_pass_by_value)]
    pub fn start_with(options: FakeOptions) -> Self {
        let state = tempfile::tempdir().expect("state dir");
        let seed_path = state.path().join("seed.json");
        std::fs::write(&seed_path, serde_json::to_vec(&options.seed).unwrap()).unwrap();
        let stderr = std::fs::File::create(state.path().join("fake.log")).unwrap();
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
        if !options.sshd {
            cmd.arg("--no-sshd");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
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
            _state: state,
            http: reqwest::Client::new(),
            tokens: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn roots(&self) -> Roots {
        Roots::new(&self.api, &self.auth).unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
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
    }

    pub async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.control))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A token valid for `expires_in` seconds (negative: already expired).
    pub async fn token_expiring(&self, expires_in: i64) -> String {
        let v = self
            .post("/tokens", serde_json::json!({"expires_in": expires_in}))
            .await;
        let t = v["access_token"].as_str().unwrap().to_owned();
        self.tokens.lock().unwrap().push(t.clone());
        t
    }

    pub async fn token(&self) -> String {
        self.token_expiring(3600).await
    }

    pub async fn client(&self) -> Client {
        self.client_with(fast_options()).await
    }

    pub async fn client_with(&self, options: ClientOptions) -> Client {
        let token = self.token().await;
        Client::new(self.roots(), SecretString::from(token), options).unwrap()
    }

    /// The request log of the API and auth servers (control requests are not logged).
    pub async fn requests(&self) -> Vec<Value> {
        self.get("/requests").await.as_array().unwrap().clone()
    }

    pub async fn clear_requests(&self) {
        self.post("/requests/clear", serde_json::json!({})).await;
    }

    /// Where a fake database lives on the real server (name, user, port).
    pub async fn backing(&self, id: u64) -> Value {
        self.get("/backing").await[id.to_string()]["backing"].clone()
    }

    /// Panic if `text` contains a seeded secret or a token minted for this test.
    pub fn assert_no_secret(&self, text: &str) {
        for s in SEED_SECRETS {
            assert!(!text.contains(s), "a seeded secret leaked: {text}");
        }
        for t in self.tokens.lock().unwrap().iter() {
            assert!(!text.contains(t.as_str()), "a token leaked: {text}");
        }
    }

    /// The request log holds no request the spec does not describe and, unless
    /// `destructive_allowed`, no destructive one.
    pub async fn assert_clean_log(&self, destructive_allowed: usize) {
        let log = self.requests().await;
        let unspecified: Vec<&Value> = log.iter().filter(|r| r["specified"] == false).collect();
        assert!(
            unspecified.is_empty(),
            "unspecified requests: {unspecified:#?}"
        );
        let destructive = log.iter().filter(|r| r["destructive"] == true).count();
        assert_eq!(
            destructive, destructive_allowed,
            "destructive requests: {log:#?}"
        );
    }
}

impl Drop for Fake {
    /// SIGTERM, then wait until the fake has dropped its databases, stopped its Redis servers
    /// and sshd, and exited: tests that run later (e.g. a dump of every schema of the shared
    /// MariaDB server) must not see its databases vanish under them.
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

/// Client options for tests: short retry delays.
pub fn fast_options() -> ClientOptions {
    ClientOptions {
        retry_delays: vec![
            Duration::from_millis(10),
            Duration::from_millis(20),
            Duration::from_millis(40),
        ],
        ..ClientOptions::default()
    }
}

pub fn fast_poll() -> PollOptions {
    PollOptions {
        interval: Duration::from_millis(50),
        timeout: Some(Duration::from_secs(60)),
    }
}
