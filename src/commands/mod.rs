//! Command bodies. Each takes a resolved plan and a [`Ui`]; none reads `std::env` or parses
//! arguments (that happened in `cli` and `settings`).

pub mod dump;
pub mod list;
pub mod restore;
pub mod uploads;
pub mod verify;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command};
use crate::error::{ExitStatus, Failure};
use crate::settings::{self, Config, DumpArgs, RestoreArgs, VerifyArgs};

/// Human progress on stderr (data goes to stdout). Silent with `--quiet`.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    quiet: bool,
}

impl Ui {
    /// A reporter; `quiet` suppresses everything but errors.
    #[must_use]
    pub fn new(quiet: bool) -> Self {
        Self { quiet }
    }

    /// A progress or summary line.
    pub fn info(&self, line: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", line.as_ref());
        }
    }

    /// A problem line, printed even with `--quiet`.
    pub fn problem(&self, line: impl AsRef<str>) {
        eprintln!("{}", line.as_ref());
    }
}

/// Everything `main` needs: parse done, now resolve and run. Returns the exit status after
/// printing any error.
#[must_use]
pub fn run(cli: Cli) -> ExitStatus {
    init_tracing(cli.verbose, cli.quiet);
    let ui = Ui::new(cli.quiet);
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.max(2))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let f = Failure::runtime(
                anyhow::Error::new(e).context("failed to start the async runtime"),
            );
            eprint!("{}", f.render());
            return f.status;
        }
    };
    let interrupted_hint = match &cli.command {
        Command::Restore(_) => {
            "the target may be partly restored; run the restore again with --clean"
        }
        Command::Verify(_) => {
            "the verification was not recorded (scratch databases are dropped); run it again"
        }
        _ => "nothing of the interrupted work was committed; run the command again",
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = dispatch(cli, ui, cores) => r,
            // Dropping the command's future cancels server work and aborts every object that
            // is not committed; a run without manifest.json is not a run (FORMAT.md). Scratch
            // databases of `verify --level restore` are dropped by their guards.
            signal = interrupted() => Err(Failure::runtime(anyhow::anyhow!("interrupted by {signal}"))
                .with_hint(Some(interrupted_hint))),
        }
    });
    // A dropped S3 writer aborts its multipart upload from a blocking thread, which needs the
    // runtime: let those finish before shutting it down.
    if !crate::storage::settle(std::time::Duration::from_secs(60)) {
        eprintln!(
            "warning: some uploads may not have been aborted; list them with `exporter uploads`"
        );
    }
    // Do not wait for stray blocking tasks (e.g. a cancelled compressor) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(status) => status,
        Err(f) => {
            eprint!("{}", f.render());
            f.status
        }
    }
}

/// Resolves when SIGINT or SIGTERM arrives (the signals of Ctrl-C, `timeout`, systemd and
/// container runtimes), naming it.
async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            }
        } else {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// The engines' connection defaults from the environment (libpq's `PGSSLMODE`, …).
fn connection_defaults() -> crate::engines::ConnectionDefaults {
    crate::engines::ConnectionDefaults::from_env(&|k: &str| std::env::var(k).ok())
}

async fn dispatch(cli: Cli, ui: Ui, cores: usize) -> Result<ExitStatus, Failure> {
    let config_path = cli.config.clone();
    match cli.command {
        Command::Dump(cmd) => {
            let expected_size = cmd
                .expected_size
                .as_deref()
                .map(|t| {
                    settings::parse_size(t)
                        .map_err(|m| Failure::usage(anyhow::anyhow!("--expected-size: {m}")))
                })
                .transpose()?;
            let args = DumpArgs {
                expected_size,
                all: cmd.all,
                urls: cmd.urls,
                to: cmd.to,
                compression_level: cmd.compression_level,
                jobs: cmd.jobs,
                no_owner: cmd.no_owner,
                redis_rdb: cmd.redis_format == crate::cli::RedisFormatArg::Rdb,
                keep_definers: cmd.keep_definers,
            };
            // URLs alone need no config file; a missing default config is fine then.
            let required = config_path.is_some();
            let (config, config_name) = load_config(config_path.as_deref(), required)?;
            let mut plan = settings::resolve_dump(&args, config.as_ref(), &config_name, cores)
                .map_err(settings_failure)?;
            plan.connections = connection_defaults();
            dump::run(plan, ui, cmd.json).await
        }
        Command::Verify(cmd) => {
            let (config_to, storage) = load_storage(config_path.as_deref())?;
            let args = VerifyArgs {
                run: cmd.run,
                to: cmd.to,
                level: match cmd.level {
                    crate::cli::LevelArg::Checksum => verify::Level::Checksum,
                    crate::cli::LevelArg::Decompress => verify::Level::Decompress,
                    crate::cli::LevelArg::Restore => verify::Level::Restore,
                },
                scratch: cmd.scratch,
            };
            let mut plan = settings::resolve_verify(&args, config_to.as_deref(), &storage)
                .map_err(settings_failure)?;
            plan.connections = connection_defaults();
            verify::run(plan, cmd.json, ui).await
        }
        Command::Restore(cmd) => {
            let (config_to, storage) = load_storage(config_path.as_deref())?;
            let args = RestoreArgs {
                run: cmd.run,
                into: cmd.into,
                db: cmd.db,
                clean: cmd.clean,
                no_owner: cmd.no_owner,
                to: cmd.to,
            };
            let mut plan = settings::resolve_restore(&args, config_to.as_deref(), &storage)
                .map_err(settings_failure)?;
            plan.connections = connection_defaults();
            restore::run(plan, ui, cmd.json).await
        }
        Command::Uploads(cmd) => {
            let (config_to, options) = load_storage(config_path.as_deref())?;
            let to = cmd.to.or(config_to).ok_or_else(|| {
                Failure::usage(anyhow::anyhow!(
                    "no destination: give --to s3://bucket/prefix"
                ))
            })?;
            let destination =
                settings::resolve_destination(&to, &options).map_err(settings_failure)?;
            let older_than = settings::parse_age(&cmd.older_than)
                .map_err(|m| Failure::usage(anyhow::anyhow!("--older-than: {m}")))?;
            uploads::run(&destination, cmd.abort, older_than, cmd.json, ui).await
        }
        Command::List(cmd) => {
            let (config, config_name) = load_config(config_path.as_deref(), true)?;
            let config = config
                .ok_or_else(|| Failure::usage(anyhow::anyhow!("{config_name} does not exist")))?;
            list::run(&config, &connection_defaults(), cmd.json)
        }
    }
}

/// Read and parse the config file. With `required`, a missing file is an error; otherwise it
/// is `None`. Returns the config and the name used for it in messages.
fn load_config(path: Option<&Path>, required: bool) -> Result<(Option<Config>, String), Failure> {
    let path: PathBuf = path.map_or_else(|| PathBuf::from("exporter.toml"), Path::to_path_buf);
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok((None, name)),
        Err(e) => {
            return Err(Failure::usage(
                anyhow::Error::new(e).context(format!("cannot read config file {name}")),
            )
            .with_hint(Some(
                "pass --config FILE, or create exporter.toml (see fixtures/exporter.example.toml)",
            )));
        }
    };
    let env = |k: &str| std::env::var(k).ok();
    let config = settings::parse_config(&text, &name, &env).map_err(settings_failure)?;
    Ok((Some(config), name))
}

/// `[storage]` of the config file, if there is one (verify, restore and uploads need nothing else): `to` and the
/// other keys.
fn load_storage(
    path: Option<&Path>,
) -> Result<(Option<String>, settings::StorageOptions), Failure> {
    let required = path.is_some();
    let path: PathBuf = path.map_or_else(|| PathBuf::from("exporter.toml"), Path::to_path_buf);
    let name = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let env = |k: &str| std::env::var(k).ok();
            settings::parse_storage(&text, &name, &env).map_err(settings_failure)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            Ok((None, settings::StorageOptions::default()))
        }
        Err(e) => Err(Failure::usage(
            anyhow::Error::new(e).context(format!("cannot read config file {name}")),
        )),
    }
}

/// A settings error as a usage failure, keeping its hint.
fn settings_failure(e: settings::SettingsError) -> Failure {
    let hint = e.hint_text().map(str::to_owned);
    Failure::usage(e).with_hint(hint)
}

fn init_tracing(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("EXPORTER_LOG")
        // The SDK warns on every GET of a multipart object that its composite checksum cannot
        // be validated (case A08 of the fidelity notes): not a corruption, and our SHA-256
        // covers the content, so that one warning is hidden unless EXPORTER_LOG asks for it.
        // The credential chain logs each provider it tries and fails (instance metadata on a
        // laptop, …) at WARN; the error that matters reaches the user as `error:` anyway.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!(
                "{default},aws_sdk_s3::http_response_checksum=error,aws_config=error,\
                 aws_runtime=error,aws_smithy_runtime=error"
            ))
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false)
        .try_init();
}

/// Write a line of data to stdout. A closed or full stdout (`exporter dump | head`) must not
/// turn a committed run into a crash, so write errors are ignored here; the exit code reports
/// the command's outcome, not the reader's.
pub fn print_data(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Human-readable byte size (binary units).
#[must_use]
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
