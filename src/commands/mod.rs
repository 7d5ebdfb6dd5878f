//! The command layer: resolve, call, render.
//!
//! [`run`] is everything `main` needs after parsing: it reads the config file (the one piece of
//! I/O before settings), resolves the command's plan ([`crate::settings`]), calls the command
//! module, which calls the services and renders their events and results through
//! [`crate::output`], and maps an error to its exit code and hint ([`crate::error`]). It also
//! owns the command's [`Cleanup`] scope, closed after the command ended in any way — success,
//! error, panic, SIGINT or SIGTERM.
//!
//! Command modules never import each other; each takes a plan and returns `Ok(())` or the
//! service's typed error.

mod check;
mod docs;
mod dump;
mod list;
mod login;
mod restore;
mod teardown;
mod tunnel;
mod uploads;
mod verify;

pub use docs::UnknownCommand;

use std::io;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::FutureExt as _;

use crate::cleanup::{self, Cleanup};
use crate::cli::{Cli, Command, LogFormatArg};
use crate::endpoint::UrlEndpoints;
use crate::error::{self, ExitStatus, Interrupted, Work};
use crate::output::{self, LogFormat, Ui, json};
use crate::settings::{self, ConfigReadError, ConfigSource};

/// How long closing the cleanup scope waits for work still settling on other threads (an S3
/// writer aborting its upload) before it reports it as unfinished.
const CLEANUP_GRACE: Duration = Duration::from_secs(60);

/// Resolve and run a parsed command line; returns the exit status after printing any error.
#[must_use]
pub fn run(cli: Cli) -> ExitStatus {
    let format = match cli.log_format {
        LogFormatArg::Text => LogFormat::Text,
        LogFormatArg::Json => LogFormat::Json,
    };
    let ui = Ui::new(cli.quiet).for_terminal(format);
    output::init_tracing(cli.verbose, ui);
    let heartbeat = match settings::progress_interval(&|k: &str| std::env::var(k).ok()) {
        Ok(every) => every,
        Err(e) => return fail(ui, &e.into()),
    };
    let ui = ui.with_heartbeat(heartbeat);
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.max(2))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return fail(
                ui,
                &anyhow::Error::new(e).context("failed to start the async runtime"),
            );
        }
    };
    let work = match &cli.command {
        Command::Dump(c) if c.verify.is_some() => Work::DumpVerify,
        Command::Dump(_) => Work::Dump,
        Command::Verify(_) => Work::Verify,
        Command::Restore(_) => Work::Restore,
        Command::List(_)
        | Command::Check(_)
        | Command::Uploads(_)
        | Command::Login(_)
        | Command::Completions(_)
        | Command::Man(_) => Work::Other,
        Command::Tunnel(_) => Work::Hold,
        Command::Teardown(_) => Work::Teardown,
    };
    let cleanup = Cleanup::new();
    let result = runtime.block_on(async {
        let command = AssertUnwindSafe(dispatch(cli, ui, cores, &cleanup)).catch_unwind();
        let result = tokio::select! {
            r = command => r,
            // Dropping the command's future cancels server work and abandons whatever it had
            // registered for cleanup: the scope undoes it below (an uncommitted run, an open
            // upload, a scratch database).
            // A held tunnel's normal end is Ctrl-C: the scope closes it below.
            signal = interrupted() => if work == Work::Hold {
                Ok(Ok(()))
            } else {
                Ok(Err(Interrupted { signal, work }.into()))
            },
        };
        tracing::debug!(pending = ?cleanup.pending(), "closing the cleanup scope");
        let reports = cleanup.close(CLEANUP_GRACE).await;
        tracing::debug!(?reports, "closed the cleanup scope");
        render_cleanup(ui, &reports);
        result
    });
    // Do not wait for stray blocking tasks (e.g. a cancelled compressor) at exit.
    runtime.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(Ok(())) => ExitStatus::Success,
        Ok(Err(e)) => fail(ui, &e),
        // The scope is closed; let the panic continue as it would have.
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Print an error (chain and hint; in JSON mode an `error` event) and return its exit status.
fn fail(ui: Ui, error: &anyhow::Error) -> ExitStatus {
    let classified = error::classify(error);
    if ui.is_json() {
        json::emit(
            "error",
            &json::ErrorEvent {
                message: error.to_string(),
                causes: error::causes(error),
                hint: classified.hint.as_deref(),
                exit_code: classified.status.code(),
            },
        );
    } else {
        ui.print_error(&error::render(error));
    }
    classified.status
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

/// How a suggested command names this program: `exporter` when it was started by that name
/// (found on `PATH`), else the path it was started by — relative to the working directory
/// when inside it — so that `target/release/exporter verify …` works as printed after `cargo
/// run` (issue 16), where `exporter` is not on `PATH`.
fn suggested_program(argv0: Option<&std::ffi::OsStr>, cwd: Option<&Path>) -> String {
    let Some(argv0) = argv0.map(Path::new) else {
        return "exporter".to_owned();
    };
    if argv0.components().count() <= 1 {
        return "exporter".to_owned();
    }
    let shown = cwd
        .and_then(|cwd| argv0.strip_prefix(cwd).ok())
        .unwrap_or(argv0);
    let text = shown.display().to_string();
    if text.contains(char::is_whitespace) {
        format!("'{text}'")
    } else {
        text
    }
}

async fn dispatch(cli: Cli, ui: Ui, cores: usize, cleanup: &Cleanup) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let program = suggested_program(
        std::env::args_os().next().as_deref(),
        std::env::current_dir().ok().as_deref(),
    );
    let path = cli.config.as_deref();
    let environment = cli.environment.as_deref();
    match cli.command {
        Command::Dump(cmd) => {
            // URLs alone, or a platform named with --environment, need no config file; a
            // missing default config is fine then.
            let config = ConfigFile::read(path, true, false)?;
            let plan = settings::resolve_dump(&cmd, config.source(), &env, cores, environment)?;
            let output = dump::Output {
                json: cmd.json,
                ui,
                program: &program,
            };
            if plan.platform.is_some() {
                return dump::run_platform(plan, output, cleanup).await;
            }
            let endpoints = UrlEndpoints::new(plan.connections.clone());
            dump::run(
                &plan,
                output,
                cleanup,
                &endpoints,
                dump::progress(ui, &plan),
            )
            .await
        }
        Command::Check(cmd) => {
            // As for dump: URLs alone or --environment need no config file.
            let config = ConfigFile::read(path, true, false)?;
            let plan = settings::resolve_check(&cmd, config.source(), &env, cores, environment)?;
            check::run(plan, cmd.json, ui, cleanup).await
        }
        Command::Verify(cmd) => {
            let config = ConfigFile::read(path, false, false)?;
            let plan = settings::resolve_verify(&cmd, config.source(), &env, cores)?;
            let endpoints = UrlEndpoints::new(plan.connections.clone());
            verify::run(&plan, cmd.json, ui, cleanup, &endpoints).await
        }
        Command::Restore(cmd) => {
            let config = ConfigFile::read(path, false, false)?;
            let plan = settings::resolve_restore(&cmd, config.source(), &env, cores)?;
            let endpoints = UrlEndpoints::new(plan.connections.clone());
            restore::run(&plan, cmd.json, ui, cleanup, &endpoints).await
        }
        Command::Uploads(cmd) => {
            let config = ConfigFile::read(path, false, false)?;
            let plan = settings::resolve_uploads(&cmd, config.source(), &env)?;
            uploads::run(&plan, cmd.json, ui, cleanup).await
        }
        Command::List(cmd) => {
            // A platform named with --environment needs no config file; nor does `--to DEST`
            // alone (the unfinished runs of a dump made from URLs). Without any of them,
            // `resolve_list` says what `list` can be given instead.
            let config = ConfigFile::read(path, true, false)?;
            let plan = settings::resolve_list(&cmd, config.source(), &env, environment)?;
            list::run(&plan, cmd.json, ui, cleanup).await
        }
        Command::Login(cmd) => {
            let plan = settings::resolve_login(&cmd, &env)?;
            login::run(plan, ui).await
        }
        Command::Teardown(cmd) => {
            // A platform named with --environment needs no config file.
            let config = ConfigFile::read(path, false, environment.is_none())?;
            let plan = settings::resolve_teardown(&cmd, config.source(), &env, environment)?;
            teardown::run(&plan, cmd.json, ui, cleanup, &program).await
        }
        Command::Completions(cmd) => {
            docs::completions(&cmd);
            Ok(())
        }
        Command::Man(cmd) => docs::man(&cmd),
        Command::Tunnel(cmd) => {
            let config = ConfigFile::read(path, false, false)?;
            let plan = settings::resolve_tunnel(&cmd, config.source(), &env, environment)?;
            tunnel::run(&plan, ui, cleanup).await
        }
    }
}

/// The config file as read: its name in messages and its text, if it exists.
struct ConfigFile {
    name: String,
    text: Option<String>,
}

impl ConfigFile {
    /// Read `--config FILE`, or `./exporter.toml`. A missing file is an error when it was named
    /// with `--config` or `required`; otherwise there is no config.
    fn read(
        path: Option<&Path>,
        needs_databases: bool,
        required: bool,
    ) -> Result<Self, ConfigReadError> {
        let explicit = path.is_some();
        let path: PathBuf = path.map_or_else(|| PathBuf::from("exporter.toml"), Path::to_path_buf);
        let name = path.display().to_string();
        match fs_err::read_to_string(&path) {
            Ok(text) => Ok(Self {
                name,
                text: Some(text),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !explicit && !required => {
                Ok(Self { name, text: None })
            }
            Err(source) => Err(ConfigReadError {
                name,
                needs_databases,
                source,
            }),
        }
    }

    fn source(&self) -> ConfigSource<'_> {
        match &self.text {
            Some(text) => ConfigSource::Text {
                name: &self.name,
                text,
            },
            None => ConfigSource::Missing { name: &self.name },
        }
    }
}

/// Say what the cleanup scope did (or could not finish) after the command.
fn render_cleanup(ui: Ui, reports: &[cleanup::Report]) {
    let mut uploads_unfinished = false;
    for report in reports {
        match (&report.task, &report.outcome) {
            (cleanup::Task::ScratchDatabase { name, .. }, cleanup::Outcome::Done) => {
                ui.problem(format!("dropped scratch database {name}"));
            }
            (cleanup::Task::ScratchDatabase { name, server }, cleanup::Outcome::Failed(e)) => {
                ui.problem(format!(
                    "warning: could not drop scratch database {name} on {server}: {e}; drop it by hand"
                ));
            }
            (cleanup::Task::ScratchDatabase { name, server }, cleanup::Outcome::Unfinished) => {
                ui.problem(format!(
                    "warning: scratch database {name} on {server} may not have been dropped; drop it by hand"
                ));
            }
            (cleanup::Task::Tunnel { database }, cleanup::Outcome::Done) => {
                ui.info(format!("closed the tunnel to {database}"));
            }
            (cleanup::Task::Tunnel { database }, _) => {
                ui.problem(format!(
                    "warning: the tunnel to {database} may still be open (an ssh process)"
                ));
            }
            (cleanup::Task::RestoredDatabase { handle }, _) => {
                ui.problem(format!(
                    "left the restored database {handle} in place: the next `exporter dump --all --from-backup` reuses it"
                ));
            }
            (cleanup::Task::UnfinishedRun { run, done }, _) => {
                ui.problem(format!(
                    "kept the unfinished run {run}: {} database(s) finished ({}); run the same dump with --resume to dump only the others",
                    done.len(),
                    done.join(", ")
                ));
            }
            (cleanup::Task::UncommittedRun { run }, cleanup::Outcome::Failed(e)) => {
                tracing::warn!(run = %run, error = %e, "could not remove the uncommitted run");
            }
            (cleanup::Task::UncommittedRun { run }, cleanup::Outcome::Unfinished) => {
                tracing::warn!(run = %run, "the uncommitted run may be left behind");
            }
            (cleanup::Task::Upload { object }, cleanup::Outcome::Failed(e)) => {
                tracing::warn!(
                    object = %object,
                    error = %e,
                    "could not abort the multipart upload; remove it with `exporter uploads --abort`"
                );
            }
            (cleanup::Task::Upload { .. }, cleanup::Outcome::Unfinished) => {
                uploads_unfinished = true;
            }
            (_, cleanup::Outcome::Done) => {}
        }
    }
    if uploads_unfinished {
        ui.problem(
            "warning: some uploads may not have been aborted; list them with `exporter uploads`",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn suggested_commands_name_the_program_as_it_was_started() {
        let cwd = Path::new("/home/me/exporter");
        let suggest = |argv0: &str| suggested_program(Some(OsStr::new(argv0)), Some(cwd));
        assert_eq!(suggest("exporter"), "exporter");
        // `cargo run` starts the binary by its absolute path.
        assert_eq!(
            suggest("/home/me/exporter/target/release/exporter"),
            "target/release/exporter"
        );
        assert_eq!(suggest("/opt/bin/exporter"), "/opt/bin/exporter");
        assert_eq!(suggest("/my tools/exporter"), "'/my tools/exporter'");
        assert_eq!(suggested_program(None, None), "exporter");
    }
}
