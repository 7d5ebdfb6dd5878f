//! `exporter completions SHELL` and `exporter man [COMMAND]`: generated from the clap
//! definitions ([`crate::cli::Cli`]), so they never disagree with `--help`.

use clap::CommandFactory as _;

use crate::cli::{Cli, CompletionsCmd, ManCmd};
use crate::output;

/// The program's name in completions and manual pages.
const BIN: &str = "exporter";

/// `exporter man COMMAND` with a command that does not exist (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("there is no command {name:?}")]
pub struct UnknownCommand {
    /// The name as given.
    pub name: String,
    /// The commands there are, comma-separated.
    pub commands: String,
}

/// Print the completion script for the shell (clap_complete) on stdout.
pub fn completions(cmd: &CompletionsCmd) {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(cmd.shell, &mut command, BIN, &mut script);
    output::print_raw(&script);
}

/// Render the manual page of the program, or of one of its commands (`exporter-dump(1)`).
///
/// # Errors
///
/// [`UnknownCommand`] (exit 2) for a command that does not exist; the I/O error of rendering
/// into memory (none in practice).
pub fn man_page(cmd: &ManCmd) -> anyhow::Result<Vec<u8>> {
    let mut command = Cli::command();
    command.build();
    let page = match &cmd.command {
        None => command,
        Some(name) => {
            let sub = command
                .get_subcommands()
                .find(|c| c.get_name() == name.as_str())
                .cloned()
                .ok_or_else(|| {
                    let names: Vec<&str> = command
                        .get_subcommands()
                        .map(clap::Command::get_name)
                        .collect();
                    UnknownCommand {
                        name: name.clone(),
                        commands: names.join(", "),
                    }
                })?;
            // The page's title and its synopsis name the command as typed: `exporter dump`.
            let title = format!("{BIN}-{name}");
            sub.name(title).bin_name(format!("{BIN} {name}"))
        }
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page).render(&mut roff)?;
    Ok(roff)
}

/// Print the manual page on stdout; see [`man_page`].
///
/// # Errors
///
/// As [`man_page`].
pub fn man(cmd: &ManCmd) -> anyhow::Result<()> {
    output::print_raw(&man_page(cmd)?);
    Ok(())
}
