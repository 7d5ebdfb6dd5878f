//! Tunnels exactly as `aptible db:tunnel` opens them (spec §6).
//!
//! [`Client::open_tunnel`] picks the credential, posts the `tunnel` operation, makes a fresh
//! RSA key pair, gets it certified through an SSH portal connection, and runs the system `ssh`
//! with the CLI's options in the CLI's order, forwarding a free loopback port to the portal's
//! socket. The tunnel is up when the portal prints its first line. The returned [`Tunnel`]
//! holds the process: [`Tunnel::stop`] (or dropping it) sends SIGHUP, waits up to 5 × 1 s and
//! then SIGKILLs; [`Tunnel::watch`] observes a tunnel that ends on its own (exit 124 → "Tunnel
//! timed out", else "Tunnel crashed (`code`)").
//!
//! Differences from the CLI, on purpose: the key pair is made per tunnel in a private
//! temporary directory (the CLI keeps one in `~/.aptible/ssh`), the `-F` file is an empty file
//! in another private temporary directory, and a local port taken between choosing it and
//! `ssh` binding it is retried on another port (the CLI fails: "Tunnel did not come up, is
//! something else listening on port …?").
//!
//! A known limit of the spec's `-L <port>:<socket>` form: `ssh` binds the port on every
//! loopback address and succeeds if one of them binds, so if another process takes
//! `127.0.0.1:<port>` in the instant between the choice and `ssh`'s bind while `[::1]:<port>`
//! is free, the forward listens on `::1` only. Connections made through [`Tunnel::endpoint`]
//! dial `127.0.0.1`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use exporter_contract::{DatabaseUrl, Endpoint};
use secrecy::ExposeSecret;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};

use crate::client::{Client, Sensitive};
use crate::error::{Error, ErrorKind, Result};
use crate::resources::{
    Account, Database, DatabaseCredential, Operation, SshPortalConnection, Stack,
};

/// Chooses a local port for a tunnel.
pub type PortPicker = Arc<dyn Fn() -> std::io::Result<u16> + Send + Sync>;

/// How to open a tunnel.
#[derive(Clone)]
pub struct TunnelOptions {
    /// The credential type (`--type`); `None` takes the default credential.
    pub credential_type: Option<String>,
    /// A fixed local port (`--port`); `None` picks a free one (binding `127.0.0.1:0`).
    pub local_port: Option<u16>,
    /// The `ssh` program.
    pub ssh_program: PathBuf,
    /// The `ssh-keygen` program.
    pub ssh_keygen_program: PathBuf,
    /// How long to wait for the portal's first line.
    pub ready_timeout: Duration,
    /// How many local ports to try when the chosen one was taken in between (only without a
    /// fixed port).
    pub port_attempts: usize,
    /// How long to wait after SIGHUP before SIGKILL (polled once a second, spec §6.13).
    pub stop_grace: Duration,
    /// Overrides how free ports are chosen (tests use it to force the port race).
    pub port_picker: Option<PortPicker>,
}

impl std::fmt::Debug for TunnelOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelOptions")
            .field("credential_type", &self.credential_type)
            .field("local_port", &self.local_port)
            .field("ssh_program", &self.ssh_program)
            .field("ready_timeout", &self.ready_timeout)
            .field("port_attempts", &self.port_attempts)
            .field("stop_grace", &self.stop_grace)
            .finish_non_exhaustive()
    }
}

impl Default for TunnelOptions {
    fn default() -> Self {
        Self {
            credential_type: None,
            local_port: None,
            ssh_program: PathBuf::from("ssh"),
            ssh_keygen_program: PathBuf::from("ssh-keygen"),
            ready_timeout: Duration::from_secs(60),
            port_attempts: 4,
            stop_grace: Duration::from_secs(5),
            port_picker: None,
        }
    }
}

/// How a tunnel ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum TunnelEnd {
    /// Stopped by [`Tunnel::stop`] or by dropping the tunnel.
    Stopped,
    /// `ssh` exited 0 on its own.
    Closed,
    /// `ssh` exited 124: the portal's time limit (tunnels time out after 24 h).
    TimedOut,
    /// `ssh` exited otherwise, or was killed by a signal.
    Crashed {
        /// The exit code.
        code: Option<i32>,
        /// The signal that ended it.
        signal: Option<i32>,
        /// The end of ssh's stderr, secrets redacted.
        stderr: String,
    },
}

impl TunnelEnd {
    /// Whether the tunnel ended without being asked to.
    #[must_use]
    pub fn is_unexpected(&self) -> bool {
        !matches!(self, Self::Stopped)
    }
}

impl std::fmt::Display for TunnelEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The CLI's texts (spec §6.13).
        match self {
            Self::Stopped => f.write_str("Tunnel stopped"),
            Self::Closed => f.write_str("Tunnel closed"),
            Self::TimedOut => f.write_str("Tunnel timed out"),
            Self::Crashed {
                code,
                signal,
                stderr,
            } => {
                match (code, signal) {
                    (Some(c), _) => write!(f, "Tunnel crashed ({c})")?,
                    (None, Some(s)) => write!(f, "Tunnel crashed (signal {s})")?,
                    (None, None) => f.write_str("Tunnel crashed")?,
                }
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
        }
    }
}

/// Observes a tunnel's end; cheap to clone, usable while the [`Tunnel`] is in use elsewhere.
#[derive(Debug, Clone)]
pub struct TunnelWatch(watch::Receiver<Option<TunnelEnd>>);

impl TunnelWatch {
    /// Resolves when the tunnel's `ssh` has exited, with how it ended.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn ended(&mut self) -> TunnelEnd {
        loop {
            if let Some(end) = self.0.borrow_and_update().clone() {
                return end;
            }
            if self.0.changed().await.is_err() {
                return self.0.borrow().clone().unwrap_or(TunnelEnd::Crashed {
                    code: None,
                    signal: None,
                    stderr: "the tunnel's supervisor is gone".to_owned(),
                });
            }
        }
    }

    /// How the tunnel ended, if it has.
    #[must_use]
    pub fn end(&self) -> Option<TunnelEnd> {
        self.0.borrow().clone()
    }
}

/// A running tunnel to one database.
///
/// `Debug` shows no password. Dropping it stops `ssh` (SIGHUP, then SIGKILL after the grace
/// period; SIGKILL at once if the runtime is gone).
#[derive(Debug)]
pub struct Tunnel {
    database: String,
    credential_type: String,
    credential_types: Vec<String>,
    local_port: u16,
    local_url: DatabaseUrl,
    endpoint: Endpoint,
    pid: Option<u32>,
    watch: TunnelWatch,
    stop: Option<oneshot::Sender<()>>,
}

impl Tunnel {
    /// The database's handle.
    #[must_use]
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The credential type in use.
    #[must_use]
    pub fn credential_type(&self) -> &str {
        &self.credential_type
    }

    /// Every credential type of the database (the CLI lists them when `--type` is absent).
    #[must_use]
    pub fn credential_types(&self) -> &[String] {
        &self.credential_types
    }

    /// The local port `ssh` forwards.
    #[must_use]
    pub fn local_port(&self) -> u16 {
        self.local_port
    }

    /// The URL as the CLI prints it (spec §6.12):
    /// `<scheme>://<user>:<password>@localhost.<internal_domain>:<port><path>` from the
    /// credential's URL, query dropped. Its `Display` redacts the password;
    /// [`DatabaseUrl::expose`] gives it for `--show-password`.
    #[must_use]
    pub fn local_url(&self) -> &DatabaseUrl {
        &self.local_url
    }

    /// The endpoint for this tool's own connections: the credential's URL (its host is the
    /// name the server certificate carries), dialled at `127.0.0.1:<local port>`, with the
    /// environment's CA when it has one, `via` naming the tunnel.
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The `ssh` process id, while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// A handle that resolves when the tunnel ends (to fail a dump whose tunnel died).
    #[must_use]
    pub fn watch(&self) -> TunnelWatch {
        self.watch.clone()
    }

    /// Stop the tunnel (SIGHUP, up to the grace period, then SIGKILL) and return how it
    /// ended: [`TunnelEnd::Stopped`], or how it had already ended on its own.
    pub async fn stop(mut self) -> TunnelEnd {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.watch.ended().await
    }
}

/// Pick the credential as `db:tunnel` does (spec §6.2).
///
/// # Errors
///
/// [`ErrorKind::Config`] with the CLI's texts: "No default credential for database, valid
/// credential types: …" / "No credential with type X for database, valid credential types: …".
pub fn choose_credential<'a>(
    credentials: &'a [DatabaseCredential],
    credential_type: Option<&str>,
    handle: &str,
) -> Result<&'a DatabaseCredential> {
    let types: Vec<&str> = credentials.iter().map(|c| c.kind.as_str()).collect();
    let found = match credential_type {
        Some(t) => credentials.iter().find(|c| c.kind == t),
        None => credentials.iter().find(|c| c.default),
    };
    found.ok_or_else(|| {
        let head = match credential_type {
            Some(t) => format!("No credential with type {t} for database"),
            None => "No default credential for database".to_owned(),
        };
        Error::new(
            ErrorKind::Config,
            format!("database {handle}"),
            format!("{head}, valid credential types: {}", types.join(", ")),
        )
    })
}

/// The `ssh` arguments in the CLI's order (spec §6.10).
#[must_use]
#[allow(clippy::too_many_arguments)]
pub fn ssh_args(
    connection: &SshPortalConnection,
    portal_host: &str,
    portal_port: u16,
    identity: &Path,
    known_hosts: &Path,
    config: &Path,
    local_port: u16,
    target: &str,
) -> Vec<OsString> {
    // UNSURE (aptible-api.md §13.4): the formats of `ssh_user` and `ssh_port_forward_socket`
    // are not known; both are used verbatim, as the CLI does.
    let mut args: Vec<OsString> = vec![
        format!("{}@{portal_host}", connection.ssh_user).into(),
        "-p".into(),
        portal_port.to_string().into(),
        "-i".into(),
        identity.into(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        opt("UserKnownHostsFile=", known_hosts),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
    ];
    if !connection.ssh_pty {
        args.push("-T".into());
    }
    for o in [
        "TCPKeepAlive=yes",
        "KeepAlive=yes",
        "ServerAliveInterval=60",
        "LogLevel=ERROR",
        "ControlMaster=no",
        "ControlPath=none",
    ] {
        args.push("-o".into());
        args.push(o.into());
    }
    args.push("-F".into());
    args.push(config.into());
    args.push("-o".into());
    args.push("SendEnv=ACCESS_TOKEN".into());
    args.push("-L".into());
    args.push(format!("{local_port}:{target}").into());
    args.push("-o".into());
    args.push("ExitOnForwardFailure=yes".into());
    args
}

fn opt(prefix: &str, path: &Path) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(path.as_os_str());
    s
}

/// A free loopback port: bind `127.0.0.1:0`, read the port, close (spec §6.9).
///
/// # Errors
///
/// The bind's I/O error.
pub fn free_local_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

/// The CLI's local URL (spec §6.12).
///
/// # Errors
///
/// [`ErrorKind::Protocol`] when the credential URL cannot take another host or port.
pub fn local_url(
    credential: &DatabaseUrl,
    internal_domain: &str,
    port: u16,
) -> Result<DatabaseUrl> {
    let mut u = credential.expose().clone();
    let bad = || {
        Error::new(
            ErrorKind::Protocol,
            "credential",
            "the connection URL cannot take a local host and port",
        )
    };
    u.set_host(Some(&format!("localhost.{internal_domain}")))
        .map_err(|_| bad())?;
    u.set_port(Some(port)).map_err(|()| bad())?;
    u.set_query(None);
    u.set_fragment(None);
    DatabaseUrl::parse(u.as_str()).map_err(|_| bad())
}

fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.trim().to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "****");
    }
    out
}

fn port_in_use(stderr: &str) -> bool {
    stderr.contains("Address already in use")
        || stderr.contains("cannot listen to port")
        || stderr.contains("Could not request local forwarding")
}

const STDERR_KEEP: usize = 8192;

fn spawn_stderr_reader(
    stderr: tokio::process::ChildStderr,
) -> (Arc<Mutex<String>>, tokio::task::JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(String::new()));
    let b = buf.clone();
    let task = tokio::spawn(async move {
        let mut stderr = stderr;
        let mut chunk = [0u8; 4096];
        loop {
            match stderr.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut s = b.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    s.push_str(&String::from_utf8_lossy(&chunk[..n]));
                    if s.len() > STDERR_KEEP {
                        let mut cut = s.len() - STDERR_KEEP;
                        while !s.is_char_boundary(cut) {
                            cut += 1;
                        }
                        s.drain(..cut);
                    }
                }
            }
        }
    });
    (buf, task)
}

fn classify(status: ExitStatus, stderr: String) -> TunnelEnd {
    use std::os::unix::process::ExitStatusExt;
    match status.code() {
        Some(0) => TunnelEnd::Closed,
        Some(124) => TunnelEnd::TimedOut,
        code => TunnelEnd::Crashed {
            code,
            signal: status.signal(),
            stderr,
        },
    }
}

fn io_error(what: &str, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Io, what.to_owned(), e.to_string()).with_source(e)
}

#[derive(Serialize)]
struct TunnelOperationBody {
    #[serde(rename = "type")]
    kind: &'static str,
    status: &'static str,
}

#[derive(Serialize)]
struct PortalConnectionBody<'a> {
    ssh_public_key: &'a str,
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use fs_err::os::unix::fs::OpenOptionsExt;
    use std::io::Write;
    let what = path.display().to_string();
    let mut f = fs_err::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error(&what, e))?;
    f.write_all(text.as_bytes()).map_err(|e| io_error(&what, e))
}

struct Started {
    child: Child,
    stderr: Arc<Mutex<String>>,
    stderr_task: tokio::task::JoinHandle<()>,
    stdout: BufReader<tokio::process::ChildStdout>,
}

impl Client {
    /// Open a tunnel to `database` exactly as `aptible db:tunnel` does (spec §6), then hand
    /// back the running [`Tunnel`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Client`] "Database `handle` is not provisioned"; [`ErrorKind::Config`] for
    /// a missing credential (the CLI's texts); [`ErrorKind::Tunnel`] "Tunnel did not come up:
    /// <ssh's stderr, redacted>"; [`ErrorKind::Io`] when `ssh-keygen` or `ssh` cannot run;
    /// the client's errors for the API calls. No error contains the token or a password.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future kills a half-started `ssh` (`kill_on_drop`); the posted operation
    /// and portal connection stay on the platform, as with the CLI.
    pub async fn open_tunnel(
        &self,
        database: &Database,
        options: &TunnelOptions,
    ) -> Result<Tunnel> {
        let handle = database.handle.as_str();
        let what = format!("database {handle}");
        if !database.is_provisioned() {
            return Err(Error::new(
                ErrorKind::Client,
                what,
                format!("Database {handle} is not provisioned"),
            ));
        }
        let creds_href = database.links.href("database_credentials").ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                what.clone(),
                "has no `database_credentials` link",
            )
        })?;
        // Credentials are the one place secrets are asked for (spec §6.2).
        let credentials: Vec<DatabaseCredential> = self
            .list_with(creds_href, "database_credentials", &[], Sensitive::Include)
            .await?;
        let credential =
            choose_credential(&credentials, options.credential_type.as_deref(), handle)?;
        let credential_url = credential.connection_url.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                what.clone(),
                format!("credential {} has no connection_url", credential.kind),
            )
        })?;
        let ops_href = credential.links.href("operations").ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                what.clone(),
                "the credential has no `operations` link",
            )
        })?;
        // Tunnel operations are created already succeeded: no polling (spec §4.2).
        let operation: Operation = self
            .post(
                ops_href,
                &TunnelOperationBody {
                    kind: "tunnel",
                    status: "succeeded",
                },
            )
            .await?;
        let account_href = operation
            .links
            .href("destination_account")
            .or_else(|| operation.links.href("account"))
            .or_else(|| database.links.href("account"))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Protocol,
                    what.clone(),
                    "the tunnel operation has no account link",
                )
            })?;
        let account: Account = self.get(account_href).await?;
        let stack_href = account.links.href("stack").ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!("environment {}", account.handle),
                "has no `stack` link",
            )
        })?;
        let stack: Stack = self.get(stack_href).await?;
        let (portal_host, portal_port, host_key) = match (
            stack.ssh_portal_host.as_deref(),
            stack.ssh_portal_port,
            stack.ssh_host_rsa_public_key.as_deref(),
        ) {
            (Some(h), Some(p), Some(k)) if !h.is_empty() && !k.is_empty() => {
                (h.to_owned(), p, k.to_owned())
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    format!("stack {}", stack.id),
                    "has no SSH portal host, port or host key",
                ));
            }
        };

        let keys = tempfile::Builder::new()
            .prefix("exporter-tunnel-")
            .tempdir()
            .map_err(|e| io_error("temporary directory", e))?;
        let hosts = tempfile::Builder::new()
            .prefix("exporter-tunnel-")
            .tempdir()
            .map_err(|e| io_error("temporary directory", e))?;
        let identity = keys.path().join("id_rsa");
        let out = Command::new(&options.ssh_keygen_program)
            .args(["-t", "rsa", "-N", "", "-q", "-f"])
            .arg(&identity)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| io_error(&options.ssh_keygen_program.display().to_string(), e))?;
        if !out.status.success() {
            return Err(Error::new(
                ErrorKind::Io,
                "ssh-keygen",
                format!(
                    "failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        let public_key = fs_err::read_to_string(keys.path().join("id_rsa.pub"))
            .map_err(|e| io_error("id_rsa.pub", e))?;
        let conn_href = operation
            .links
            .href("ssh_portal_connections")
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("operation #{}", operation.id),
                    "has no `ssh_portal_connections` link",
                )
            })?;
        let connection: SshPortalConnection = self
            .post(
                conn_href,
                &PortalConnectionBody {
                    ssh_public_key: public_key.trim(),
                },
            )
            .await?;
        let target = connection
            .ssh_port_forward_socket
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("operation #{}", operation.id),
                    "the portal connection has no ssh_port_forward_socket",
                )
            })?;
        write_private(
            &keys.path().join("id_rsa-cert.pub"),
            &connection.ssh_certificate_body,
        )?;
        let known_hosts = hosts.path().join("known_hosts");
        write_private(
            &known_hosts,
            &format!("[{portal_host}]:{portal_port} {}\n", host_key.trim()),
        )?;
        let config = hosts.path().join("config");
        write_private(&config, "")?;

        let token = self.token().expose_secret().to_owned();
        let password = credential_url.password().unwrap_or_default();
        let secrets = [token.as_str(), password.as_str()];
        let attempts = if options.local_port.is_some() {
            1
        } else {
            options.port_attempts.max(1)
        };
        let mut last_error = None;
        let mut started = None;
        for attempt in 0..attempts {
            let port = match options.local_port {
                Some(p) => p,
                None => match &options.port_picker {
                    Some(pick) => pick(),
                    None => free_local_port(),
                }
                .map_err(|e| io_error("a free local port", e))?,
            };
            let args = ssh_args(
                &connection,
                &portal_host,
                portal_port,
                &identity,
                &known_hosts,
                &config,
                port,
                &target,
            );
            let mut command = Command::new(&options.ssh_program);
            command
                .args(&args)
                .env("ACCESS_TOKEN", &token)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            die_with_parent(&mut command);
            let mut child = command
                .spawn()
                .map_err(|e| io_error(&options.ssh_program.display().to_string(), e))?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| io_error("ssh stdout", std::io::Error::other("not piped")))?;
            let stderr = child
                .stderr
                .take()
                .ok_or_else(|| io_error("ssh stderr", std::io::Error::other("not piped")))?;
            let (stderr, stderr_task) = spawn_stderr_reader(stderr);
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            // UNSURE (aptible-api.md §13.4): the text of the portal's readiness line is not
            // known; as the CLI, any first line on stdout means the forward is up.
            match tokio::time::timeout(options.ready_timeout, stdout.read_line(&mut line)).await {
                Ok(Ok(n)) if n > 0 => {
                    started = Some((
                        port,
                        Started {
                            child,
                            stderr,
                            stderr_task,
                            stdout,
                        },
                    ));
                    break;
                }
                Ok(_) => {
                    // EOF before the first line: ssh is exiting. Collect its last words.
                    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                    let _ = tokio::time::timeout(Duration::from_secs(1), stderr_task).await;
                    let text = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                    let text = redact(&text, &secrets);
                    let retry = options.local_port.is_none()
                        && port_in_use(&text)
                        && attempt + 1 < attempts;
                    let mut message = format!("Tunnel did not come up: {text}");
                    if port_in_use(&text) {
                        let _ = write!(message, " (is something else listening on port {port}?)");
                    }
                    last_error = Some(Error::new(ErrorKind::Tunnel, what.clone(), message));
                    if !retry {
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill().await;
                    let text = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                    last_error = Some(Error::new(
                        ErrorKind::Tunnel,
                        what.clone(),
                        format!(
                            "Tunnel did not come up within {} s: {}",
                            options.ready_timeout.as_secs(),
                            redact(&text, &secrets)
                        ),
                    ));
                    break;
                }
            }
        }
        let Some((port, started)) = started else {
            return Err(last_error
                .unwrap_or_else(|| Error::new(ErrorKind::Tunnel, what, "Tunnel did not come up")));
        };

        let internal_domain = stack
            .internal_domain
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| {
                // The dashboard's default (aptible-api.md §3.3).
                "aptible.in".to_owned()
            });
        let local = local_url(&credential_url, &internal_domain, port)?;
        let mut endpoint = Endpoint::new(credential_url.clone())
            .dial("127.0.0.1", port)
            .via(format!("tunnel 127.0.0.1:{port}"));
        if let Some(ca) = account.ca_pem() {
            endpoint = endpoint.with_ca_pem(ca);
        }
        let pid = started.child.id();
        let (end_tx, end_rx) = watch::channel(None);
        let (stop_tx, stop_rx) = oneshot::channel();
        let secrets_owned: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
        let grace = options.stop_grace;
        tokio::spawn(supervise(
            started,
            stop_rx,
            end_tx,
            grace,
            secrets_owned,
            (keys, hosts),
        ));
        Ok(Tunnel {
            database: handle.to_owned(),
            credential_type: credential.kind.clone(),
            credential_types: credentials.iter().map(|c| c.kind.clone()).collect(),
            local_port: port,
            local_url: local,
            endpoint,
            pid,
            watch: TunnelWatch(end_rx),
            stop: Some(stop_tx),
        })
    }
}

/// Own the `ssh` process until it ends: on a stop request (or the [`Tunnel`] being dropped)
/// SIGHUP, wait up to `grace` polling once a second, then SIGKILL (spec §6.13); publish how
/// it ended. The temporary key directories live as long as this task.
async fn supervise(
    started: Started,
    mut stop: oneshot::Receiver<()>,
    end: watch::Sender<Option<TunnelEnd>>,
    grace: Duration,
    secrets: Vec<String>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
) {
    let Started {
        mut child,
        stderr,
        stderr_task,
        mut stdout,
    } = started;
    // Drain stdout so the portal never blocks on a full pipe.
    let drain = tokio::spawn(async move {
        let mut sink = Vec::new();
        loop {
            sink.clear();
            match stdout.read_buf(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    });
    let outcome = tokio::select! {
        status = child.wait() => {
            let _ = tokio::time::timeout(Duration::from_secs(1), stderr_task).await;
            let text = stderr.lock().map(|s| s.clone()).unwrap_or_default();
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            match status {
                Ok(status) => classify(status, redact(&text, &secrets)),
                Err(e) => TunnelEnd::Crashed { code: None, signal: None, stderr: format!("waiting for ssh failed: {e}") },
            }
        }
        _ = &mut stop => {
            if let Some(pid) = child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::HUP);
            }
            let mut exited = false;
            let mut waited = Duration::ZERO;
            while let Some(left) = grace.checked_sub(waited).filter(|d| !d.is_zero()) {
                let slice = Duration::from_secs(1).min(left);
                if tokio::time::timeout(slice, child.wait()).await.is_ok() {
                    exited = true;
                    break;
                }
                waited += slice;
            }
            if !exited {
                let _ = child.kill().await;
            }
            TunnelEnd::Stopped
        }
    };
    drain.abort();
    let _ = end.send(Some(outcome));
}

/// Make the `ssh` child receive SIGTERM when this process dies, however it dies.
///
/// `kill_on_drop` and the cleanup scope stop the tunnel on every exit the process sees
/// (errors, Ctrl-C, SIGTERM); a SIGKILL (an OOM kill, `kill -9`) runs no code at all and would
/// leave `ssh` holding the forward and the portal session open. Linux's parent-death signal
/// (`PR_SET_PDEATHSIG`, prctl(2)) covers that case. It is tied to the thread that forks: the
/// tunnel is spawned from the async runtime's threads, which live as long as the process.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    #[expect(
        unsafe_code,
        reason = "pre_exec runs between fork and exec; prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of the parent"
    )]
    // SAFETY: the closure only makes one raw system call (no allocation, no lock), which is
    // what pre_exec requires of code running in the forked child.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
                .map_err(std::io::Error::from)
        });
    }
}

/// Other systems have no parent-death signal: the cleanup scope is the only guard.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(kind: &str, default: bool) -> DatabaseCredential {
        serde_json::from_value(serde_json::json!({"id": 1, "type": kind, "default": default}))
            .unwrap()
    }

    #[test]
    fn credential_choice_and_cli_texts() {
        let creds = vec![cred("redis", true), cred("redis+ssl", false)];
        assert_eq!(
            choose_credential(&creds, None, "cache").unwrap().kind,
            "redis"
        );
        assert_eq!(
            choose_credential(&creds, Some("redis+ssl"), "cache")
                .unwrap()
                .kind,
            "redis+ssl"
        );
        let e = choose_credential(&creds, Some("x"), "cache").unwrap_err();
        assert_eq!(
            e.to_string(),
            "database cache: No credential with type x for database, valid credential types: redis, redis+ssl"
        );
        let none = vec![cred("postgresql", false)];
        let e = choose_credential(&none, None, "db").unwrap_err();
        assert_eq!(
            e.to_string(),
            "database db: No default credential for database, valid credential types: postgresql"
        );
    }

    #[test]
    fn ssh_arguments_in_the_cli_order() {
        let conn: SshPortalConnection = serde_json::from_value(serde_json::json!({
            "id": "c", "ssh_user": "tunnel-7002", "ssh_certificate_body": "x",
            "ssh_port_forward_socket": "/var/run/portal/7002.sock", "ssh_pty": false
        }))
        .unwrap();
        let args = ssh_args(
            &conn,
            "bastion.aptible.in",
            43022,
            Path::new("/k/id_rsa"),
            Path::new("/h/known_hosts"),
            Path::new("/h/config"),
            4242,
            "/var/run/portal/7002.sock",
        );
        let args: Vec<String> = args.into_iter().map(|a| a.into_string().unwrap()).collect();
        assert_eq!(
            args.join(" "),
            "tunnel-7002@bastion.aptible.in -p 43022 -i /k/id_rsa -o IdentitiesOnly=yes \
             -o UserKnownHostsFile=/h/known_hosts -o StrictHostKeyChecking=yes -T \
             -o TCPKeepAlive=yes -o KeepAlive=yes -o ServerAliveInterval=60 -o LogLevel=ERROR \
             -o ControlMaster=no -o ControlPath=none -F /h/config -o SendEnv=ACCESS_TOKEN \
             -L 4242:/var/run/portal/7002.sock -o ExitOnForwardFailure=yes"
        );
        let pty: SshPortalConnection = serde_json::from_value(serde_json::json!({
            "id": "c", "ssh_user": "u", "ssh_certificate_body": "x", "ssh_pty": true
        }))
        .unwrap();
        let args = ssh_args(
            &pty,
            "h",
            1,
            Path::new("k"),
            Path::new("kh"),
            Path::new("c"),
            2,
            "t",
        );
        assert!(!args.iter().any(|a| a == "-T"));
    }

    #[test]
    fn local_url_as_the_cli_prints_it() {
        let c = DatabaseUrl::parse("postgresql://aptible:pass@db-1.aptible.in:5432/db?ssl=true")
            .unwrap();
        let u = local_url(&c, "aptible.in", 4242).unwrap();
        assert_eq!(
            u.expose().as_str(),
            "postgresql://aptible:pass@localhost.aptible.in:4242/db"
        );
        assert_eq!(
            u.to_string(),
            "postgresql://aptible:****@localhost.aptible.in:4242/db"
        );
    }

    #[test]
    fn tunnel_end_texts() {
        assert_eq!(TunnelEnd::TimedOut.to_string(), "Tunnel timed out");
        let crashed = TunnelEnd::Crashed {
            code: Some(255),
            signal: None,
            stderr: "Connection closed".into(),
        };
        assert_eq!(
            crashed.to_string(),
            "Tunnel crashed (255): Connection closed"
        );
        assert!(crashed.is_unexpected());
        assert!(!TunnelEnd::Stopped.is_unexpected());
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact(
                " bad token tok-123456 and pw-abcdef \n",
                &["tok-123456", "pw-abcdef", ""]
            ),
            "bad token **** and ****"
        );
        assert!(port_in_use("bind [127.0.0.1]:4242: Address already in use"));
        assert!(!port_in_use("Permission denied (publickey)."));
    }
}
