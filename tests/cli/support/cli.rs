//! Running the binary: `exporter` with a timeout and a clean environment, its outcome
//! (exit code, stdout, stderr) and assertions on it, spawned runs for signal tests.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long any single exporter invocation may take before the test fails.
pub const EXPORTER_TIMEOUT: Duration = Duration::from_secs(180);

/// Repository root (the package directory of the `exporter` crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A sample SQL file from `fixtures/sample/`.
pub fn sample_sql(name: &str) -> PathBuf {
    repo_root().join("fixtures/sample").join(name)
}

/// The exporter binary, run in `cwd` (always a temporary directory: the repository root may
/// hold an `exporter.toml` written by `fixtures/scripts/setup-sample.sh`), with a timeout,
/// `NO_COLOR` set and no stray PostgreSQL or logging environment.
pub fn exporter(cwd: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_exporter"));
    cmd.current_dir(cwd)
        .timeout(EXPORTER_TIMEOUT)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .env_remove("EXPORTER_PROGRESS_INTERVAL")
        .env_remove("PGPASSWORD")
        .env_remove("PGHOST")
        .env_remove("PGUSER")
        .env_remove("PGDATABASE")
        .env_remove("PGOPTIONS")
        // libpq's TLS defaults (exporter honours them): tests set them where they mean to.
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .env_remove("PGSSLCERT")
        .env_remove("PGSSLKEY")
        .env_remove("PGSSLSNI");
    cmd
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code.
    pub code: i32,
    /// stdout, lossily decoded.
    pub stdout: String,
    /// stderr, lossily decoded.
    pub stderr: String,
    /// The command line, for messages.
    pub command: String,
}

impl Outcome {
    /// Assert the exit code, printing everything on mismatch.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "`{}` exited with {} instead of {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, code, self.stdout, self.stderr
        );
        self
    }

    /// stdout and stderr together.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The last non-empty stdout line.
    pub fn last_stdout_line(&self) -> &str {
        self.stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .trim()
    }

    /// Assert stderr has an `error: ` line (the rendering convention of design.md section 9).
    #[track_caller]
    pub fn expect_error_line(&self) -> &Self {
        assert!(
            self.stderr.lines().any(|l| l.starts_with("error: ")),
            "stderr of `{}` has no line starting with `error: `:\n{}",
            self.command,
            self.stderr
        );
        self
    }

    /// Assert stderr contains `needle`.
    #[track_caller]
    pub fn stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr of `{}` does not mention {needle:?}:\n{}",
            self.command,
            self.stderr
        );
        self
    }

    /// Assert neither stdout nor stderr contains `secret`.
    #[track_caller]
    pub fn never_shows(&self, secret: &str) -> &Self {
        assert!(
            !self.all_output().contains(secret),
            "`{}` printed the secret {secret:?}:\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Run a prepared command to completion and capture its outcome. A timeout or a signal fails
/// the test.
#[track_caller]
pub fn run(cmd: &mut assert_cmd::Command) -> Outcome {
    let command = describe_command(cmd);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let Some(code) = out.status.code() else {
        panic!(
            "`{command}` was killed ({:?}) — timed out after {EXPORTER_TIMEOUT:?}?\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            out.status
        );
    };
    Outcome {
        code,
        stdout,
        stderr,
        command,
    }
}

fn describe_command(cmd: &assert_cmd::Command) -> String {
    let mut s = String::from("exporter");
    for a in cmd.get_args() {
        let _ = write!(s, " {}", a.to_string_lossy());
    }
    s
}

/// Run `exporter <args>` (a dump), expect exit 0, and return the run directory printed on the
/// last stdout line (resolved against `cwd`), after checking it holds a manifest.
#[track_caller]
pub fn dump_ok(cwd: &Path, args: &[&str]) -> PathBuf {
    let out = run(exporter(cwd).args(args));
    out.expect_code(0);
    let printed = out.last_stdout_line();
    assert!(
        !printed.is_empty(),
        "dump printed no run directory on stdout:\n{}",
        out.stderr
    );
    let run_dir = cwd.join(printed);
    assert!(
        run_dir.join("manifest.json").is_file(),
        "the printed run directory {} has no manifest.json",
        run_dir.display()
    );
    run_dir
}

/// A spawned exporter process (for tests that act on the server while it runs).
pub fn spawn_exporter(cwd: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_exporter"))
        .current_dir(cwd)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn exporter")
}

/// Wait (up to a minute) until `ready` returns `Some` — polled every 50 ms while `child` runs;
/// failing the test if the child exits first — then send it SIGINT and wait for it (up to a
/// minute). Returns what `ready` found and the child's outcome.
#[track_caller]
pub fn interrupt_when<T>(
    mut child: Child,
    mut ready: impl FnMut() -> Option<T>,
    command: &str,
) -> (T, Outcome) {
    let start = Instant::now();
    let found = loop {
        if let Some(found) = ready() {
            break found;
        }
        let exited = child.try_wait().expect("try_wait").is_some();
        assert!(
            !exited && start.elapsed() < Duration::from_secs(60),
            "`{command}` never got to the point to interrupt (exited early: {exited})"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let out = wait_child(
        child,
        Duration::from_secs(60),
        &format!("{command} (SIGINT)"),
    );
    (found, out)
}

/// Wait for a spawned child with a timeout (killing it and failing the test on timeout) and
/// collect its outcome.
#[track_caller]
pub fn wait_child(mut child: Child, timeout: Duration, command: &str) -> Outcome {
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
            panic!("`{command}` did not finish within {timeout:?}; killed it. stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    // Death by a signal is reported the shell's way, 128 + signal number.
    let code = status
        .code()
        .or_else(|| std::os::unix::process::ExitStatusExt::signal(&status).map(|sig| 128 + sig))
        .expect("exit code or signal");
    Outcome {
        code,
        stdout,
        stderr,
        command: command.to_owned(),
    }
}
