//! Test support for TLS: a throw-away PKI and private servers with TLS on.
//!
//! - [`pki`] generates, once per test binary, a CA, a second ("foreign") CA, and server
//!   certificates: [`Pki::server`] (valid for `localhost` and [`TUNNEL_NAME`], not for
//!   `127.0.0.1`, so that `verify-full` to `127.0.0.1` is a host name mismatch), [`Pki::expired`],
//!   [`Pki::wrong_host`] and [`Pki::foreign`] (signed by the other CA), plus a client
//!   certificate for [`CLIENT_USER`].
//! - [`PgServer`], [`MariaDb`] and [`RedisTls`] start a private PostgreSQL cluster (initdb +
//!   pg_ctl, `ssl=on`, `hostssl` lines only), a private `mariadbd`
//!   (`require_secure_transport=ON`) and a private `redis-server --port 0 --tls-port N`, on
//!   spare loopback ports, never touching the shared services.
//!
//! # Cleanup
//!
//! Servers are meant to be started once per test binary and kept in a `static` — which is
//! never dropped. So each server is watched by a small shell loop started with it: when the
//! test process is gone (passed, failed or killed), the watchdog stops the server and removes
//! its directory within a second. Dropping a server value stops it at once.
//!
//! Tests run as root on CI: PostgreSQL and MariaDB refuse to run as root, so they run as the
//! `postgres` / `mysql` OS users (`runuser`), which own copies of the key files in their data
//! directories.

// The SQL helpers are called for their effect as often as for their output.
#![allow(clippy::must_use_candidate)]
#![allow(
    clippy::disallowed_methods,
    reason = "test support may use std::fs (clippy.toml): it writes throw-away certificates and server configs"
)]

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sha2::{Digest, Sha256};

/// A second name the good server certificate carries, standing for the platform's database
/// host name seen through a tunnel (the socket goes to `127.0.0.1`, TLS names this).
pub const TUNNEL_NAME: &str = "db.internal.test";

/// The user name in the client certificate's common name (PostgreSQL's `cert` method maps
/// it to the role of the same name).
pub const CLIENT_USER: &str = "tls_client";

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM).
    pub key: PathBuf,
    /// SHA-256 of the certificate (DER), lowercase hex: what a manifest records.
    pub sha256: String,
}

/// The test PKI; see the crate docs.
#[derive(Debug)]
pub struct Pki {
    dir: PathBuf,
    /// The CA certificate (PEM file).
    pub ca: PathBuf,
    /// The CA certificate's PEM text (for `Endpoint::with_ca_pem`).
    pub ca_pem: String,
    /// Another CA, which signed nothing the servers use by default.
    pub other_ca: PathBuf,
    /// Valid now, for `localhost` and [`TUNNEL_NAME`]; signed by [`Pki::ca`].
    pub server: CertFiles,
    /// Expired (2020–2021), for `localhost`; signed by [`Pki::ca`].
    pub expired: CertFiles,
    /// Valid, but only for `wrong.example`; signed by [`Pki::ca`].
    pub wrong_host: CertFiles,
    /// Valid for `localhost`, signed by [`Pki::other_ca`].
    pub foreign: CertFiles,
    /// A client certificate for [`CLIENT_USER`], signed by [`Pki::ca`].
    pub client: CertFiles,
}

impl Pki {
    /// The directory holding every file.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The PKI of this test binary, generated at the first call.
///
/// # Panics
///
/// If the files cannot be written (a test setup failure).
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| generate().expect("generate the test PKI"))
}

fn ca(name: &str) -> Result<(CertificateParams, KeyPair, String), rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((params, key, cert.pem()))
}

fn leaf(
    names: &[&str],
    common_name: &str,
    client: bool,
    validity: Option<(i32, i32)>,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(String, String, String), rcgen::Error> {
    let mut params = CertificateParams::new(
        names
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<Vec<String>>(),
    )?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if let Some((from, to)) = validity {
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
    }
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    let sha256 = hex::encode(Sha256::digest(cert.der()));
    Ok((cert.pem(), key.serialize_pem(), sha256))
}

fn generate() -> Result<Pki, Box<dyn std::error::Error>> {
    let dir = tempfile::Builder::new()
        .prefix("exporter-tls-pki-")
        .tempdir()?
        .keep();
    watch_path(&dir);
    let write = |name: &str, text: &str| -> std::io::Result<PathBuf> {
        let path = dir.join(name);
        fs::write(&path, text)?;
        Ok(path)
    };
    let (ca_params, ca_key, ca_pem) = ca("exporter test CA")?;
    let (other_params, other_key, other_pem) = ca("exporter other CA")?;
    let issuer = Issuer::new(ca_params, ca_key);
    let other = Issuer::new(other_params, other_key);
    let pair = |name: &str, (cert, key, sha256): (String, String, String)| {
        Ok::<_, std::io::Error>(CertFiles {
            cert: write(&format!("{name}.crt"), &cert)?,
            key: write(&format!("{name}.key"), &key)?,
            sha256,
        })
    };
    Ok(Pki {
        ca: write("ca.crt", &ca_pem)?,
        ca_pem: ca_pem.clone(),
        other_ca: write("other-ca.crt", &other_pem)?,
        server: pair(
            "server",
            leaf(
                &["localhost", TUNNEL_NAME],
                "localhost",
                false,
                None,
                &issuer,
            )?,
        )?,
        expired: pair(
            "expired",
            leaf(
                &["localhost", TUNNEL_NAME],
                "localhost",
                false,
                Some((2020, 2021)),
                &issuer,
            )?,
        )?,
        wrong_host: pair(
            "wrong-host",
            leaf(&["wrong.example"], "wrong.example", false, None, &issuer)?,
        )?,
        foreign: pair(
            "foreign",
            leaf(
                &["localhost", TUNNEL_NAME],
                "localhost",
                false,
                None,
                &other,
            )?,
        )?,
        client: pair("client", leaf(&[], CLIENT_USER, true, None, &issuer)?)?,
        dir,
    })
}

/// A free TCP port on 127.0.0.1 (bound and released: another process could take it in
/// between, which only makes a test fail loudly).
///
/// # Panics
///
/// If no port can be bound.
#[must_use]
pub fn spare_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a spare port")
        .port()
}

/// Remove `path` when this test process is gone (see the crate docs).
fn watch_path(path: &Path) {
    watchdog(&format!("rm -rf '{}'", path.display()));
}

/// Run `cleanup` (a shell command) once this process has exited.
fn watchdog(cleanup: &str) {
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 1; done; {cleanup}",
        std::process::id()
    );
    let _ = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// `tool` run as OS user `user` when we are root, else as ourselves.
fn as_user(user: &str, tool: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", user, "--", tool]);
        c
    } else {
        Command::new(tool)
    }
}

fn run(mut c: Command) -> String {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("{c:?} could not start: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copy `files` into `dir` (mode 0600) and give `dir` and them to OS user `owner` when we are
/// root, so a server running as that user can read its key.
fn install(dir: &Path, owner: &str, files: &[(&Path, &str)]) {
    for (from, name) in files {
        let to = dir.join(name);
        fs::copy(from, &to).expect("copy a key file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&to, fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    }
    if is_root() {
        run({
            let mut c = Command::new("chown");
            c.arg("-R").arg(owner).arg(dir);
            c
        });
    }
}

/// A private PostgreSQL cluster with TLS on and only `hostssl` lines for TCP; stopped
/// (immediate) when dropped, or by its watchdog when the test process ends.
#[derive(Debug)]
pub struct PgServer {
    dir: PathBuf,
    /// The TCP port (on 127.0.0.1).
    pub port: u16,
}

impl PgServer {
    /// Start a cluster presenting `cert`, trusting [`Pki::ca`] for client certificates.
    /// `pg_hba.conf`: local trust; `hostssl` trust for every role but [`CLIENT_USER`], who must
    /// present a client certificate (`cert` method); with `tls_only` false also `host` lines,
    /// so clear text is accepted too.
    ///
    /// # Panics
    ///
    /// If the server cannot be started (the PostgreSQL tools are missing, …).
    #[must_use]
    pub fn start(cert: &CertFiles, tls_only: bool) -> Self {
        Self::start_with(Some(cert), tls_only)
    }

    /// Start a cluster without TLS (`ssl = off`, `host` lines).
    ///
    /// # Panics
    ///
    /// If the server cannot be started.
    #[must_use]
    pub fn start_plain() -> Self {
        Self::start_with(None, false)
    }

    fn start_with(cert: Option<&CertFiles>, tls_only: bool) -> Self {
        let pki = pki();
        let dir = tempfile::Builder::new()
            .prefix("exporter-tls-pg-")
            .tempdir()
            .expect("tempdir")
            .keep();
        let data = dir.join("data");
        let port = spare_port();
        let server = Self {
            dir: dir.clone(),
            port,
        };
        if is_root() {
            run({
                let mut c = Command::new("chown");
                c.arg("postgres").arg(&dir);
                c
            });
        }
        let mut initdb = as_user("postgres", "initdb");
        initdb
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-A",
                "trust",
                "-D",
            ])
            .arg(&data);
        run(initdb);
        let tls_dir = data.join("tls");
        fs::create_dir(&tls_dir).expect("mkdir tls");
        if let Some(cert) = cert {
            install(
                &tls_dir,
                "postgres",
                &[
                    (&cert.cert, "server.crt"),
                    (&cert.key, "server.key"),
                    (&pki.ca, "ca.crt"),
                ],
            );
        }
        let mut hba = format!(
            "local all all trust\n\
             hostssl all {CLIENT_USER} 127.0.0.1/32 cert\n\
             hostssl all {CLIENT_USER} ::1/128 cert\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostssl all all ::1/128 trust\n"
        );
        if !tls_only {
            hba.push_str("host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n");
        }
        fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        let ssl = if cert.is_some() {
            format!(
                "ssl = on\nssl_cert_file = '{0}/server.crt'\nssl_key_file = '{0}/server.key'\n\
                 ssl_ca_file = '{0}/ca.crt'\n",
                tls_dir.display()
            )
        } else {
            "ssl = off\n".to_owned()
        };
        let conf = format!(
            "{ssl}listen_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{}'\nfsync = off\nmax_connections = 60\n",
            dir.display()
        );
        let mut auto = fs::read_to_string(data.join("postgresql.conf")).unwrap_or_default();
        auto.push_str(&conf);
        fs::write(data.join("postgresql.conf"), auto).expect("write postgresql.conf");
        if is_root() {
            run({
                let mut c = Command::new("chown");
                c.arg("-R").arg("postgres").arg(&dir);
                c
            });
        }
        watchdog(&format!(
            "{}; rm -rf '{}'",
            shell_as(
                "postgres",
                &format!("pg_ctl -D '{}' -m immediate stop", data.display())
            ),
            dir.display()
        ));
        let mut ctl = as_user("postgres", "pg_ctl");
        ctl.arg("-D")
            .arg(&data)
            .args(["-w", "-l"])
            .arg(dir.join("log"))
            .arg("start");
        run(ctl);
        server.psql(&format!("CREATE ROLE {CLIENT_USER} LOGIN"));
        server
    }

    /// Run SQL as the superuser over the Unix socket; returns the unaligned output.
    ///
    /// # Panics
    ///
    /// If psql fails.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in("postgres", sql)
    }

    /// Run SQL as the superuser in database `db` over the Unix socket.
    ///
    /// # Panics
    ///
    /// If psql fails.
    pub fn psql_in(&self, db: &str, sql: &str) -> String {
        let mut c = Command::new("psql");
        c.args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-U",
            "postgres",
            "-h",
        ])
        .arg(&self.dir)
        .args(["-p", &self.port.to_string(), "-d", db, "-c", sql]);
        run(c)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut ctl = as_user("postgres", "pg_ctl");
        ctl.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"]);
        let _ = ctl.output();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn shell_as(user: &str, command: &str) -> String {
    if is_root() {
        format!("runuser -u {user} -- {command}")
    } else {
        command.to_owned()
    }
}

/// A private `mariadbd` with TLS on and `require_secure_transport=ON`, user `root` without a
/// password; stopped when dropped, or by its watchdog.
#[derive(Debug)]
pub struct MariaDb {
    dir: PathBuf,
    child: Option<Child>,
    /// The TCP port (on 127.0.0.1).
    pub port: u16,
}

impl MariaDb {
    /// Start a server presenting `cert`. `tls_only`: `require_secure_transport=ON`.
    ///
    /// # Panics
    ///
    /// If the server cannot be started.
    #[must_use]
    pub fn start(cert: &CertFiles, tls_only: bool) -> Self {
        let pki = pki();
        let dir = tempfile::Builder::new()
            .prefix("exporter-tls-mariadb-")
            .tempdir()
            .expect("tempdir")
            .keep();
        let data = dir.join("data");
        fs::create_dir(&data).expect("mkdir data");
        install(
            &dir,
            "mysql",
            &[
                (&cert.cert, "server.crt"),
                (&cert.key, "server.key"),
                (&pki.ca, "ca.crt"),
            ],
        );
        let user = if is_root() { "mysql" } else { "" };
        let mut install_db = Command::new("mariadb-install-db");
        install_db
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if !user.is_empty() {
            install_db.arg(format!("--user={user}"));
        }
        run(install_db);
        if is_root() {
            run({
                let mut c = Command::new("chown");
                c.arg("-R").arg("mysql").arg(&dir);
                c
            });
        }
        let port = spare_port();
        let socket = dir.join("sock");
        let mut server = Command::new("mariadbd");
        server
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg(format!("--port={port}"))
            .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
            .arg(format!("--ssl-cert={}", dir.join("server.crt").display()))
            .arg(format!("--ssl-key={}", dir.join("server.key").display()))
            .arg(format!("--ssl-ca={}", dir.join("ca.crt").display()))
            .arg(format!(
                "--require-secure-transport={}",
                if tls_only { "ON" } else { "OFF" }
            ))
            .args([
                "--innodb-buffer-pool-size=16M",
                "--innodb-log-file-size=8M",
                "--skip-log-bin",
                "--max-connections=60",
            ])
            .arg(format!("--log-error={}", dir.join("error.log").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if !user.is_empty() {
            server.arg(format!("--user={user}"));
        }
        let child = server.spawn().expect("mariadbd starts");
        watchdog(&format!(
            "kill -9 {} 2>/dev/null; rm -rf '{}'",
            child.id(),
            dir.display()
        ));
        let mut db = Self {
            dir,
            child: Some(child),
            port,
        };
        db.wait_ready();
        // root@localhost covers the socket; TCP from 127.0.0.1 needs its own account.
        db.sql(
            "CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY ''; \
             GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; \
             CREATE OR REPLACE USER 'tls_pw'@'127.0.0.1' IDENTIFIED BY 'Tls-s3cret'; \
             GRANT ALL ON *.* TO 'tls_pw'@'127.0.0.1';",
        );
        db
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            let ok = Command::new("mariadb-admin")
                .arg(format!("--socket={}", self.dir.join("sock").display()))
                .args(["-uroot", "ping"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                panic!("mariadbd exited with {status}: {log}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "mariadbd did not start within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Run SQL as root over the Unix socket; returns the tab-separated output.
    ///
    /// # Panics
    ///
    /// If the client fails.
    pub fn sql(&self, sql: &str) -> String {
        let mut c = Command::new("mariadb");
        c.arg(format!("--socket={}", self.dir.join("sock").display()))
            .args(["-uroot", "-N", "-B", "-e", sql]);
        run(c)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A private `redis-server` with TLS only (`--port 0 --tls-port N`); stopped when dropped, or
/// by its watchdog.
#[derive(Debug)]
pub struct RedisTls {
    dir: PathBuf,
    child: Option<Child>,
    /// The TLS port (on 127.0.0.1).
    pub port: u16,
}

impl RedisTls {
    /// Start a server presenting `cert`; `auth_clients`: `no`, `optional` or `yes`
    /// (`--tls-auth-clients`, client certificates checked against [`Pki::ca`]).
    ///
    /// # Panics
    ///
    /// If the server cannot be started.
    #[must_use]
    pub fn start(cert: &CertFiles, auth_clients: &str) -> Self {
        let pki = pki();
        let dir = tempfile::Builder::new()
            .prefix("exporter-tls-redis-")
            .tempdir()
            .expect("tempdir")
            .keep();
        let port = spare_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--tls-cert-file")
            .arg(&cert.cert)
            .arg("--tls-key-file")
            .arg(&cert.key)
            .arg("--tls-ca-cert-file")
            .arg(&pki.ca)
            .args(["--tls-auth-clients", auth_clients])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        watchdog(&format!(
            "kill -9 {} 2>/dev/null; rm -rf '{}'",
            child.id(),
            dir.display()
        ));
        let mut server = Self {
            dir,
            child: Some(child),
            port,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(child) = server.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("redis-server exited with {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "redis-server did not start within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

impl Drop for RedisTls {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
