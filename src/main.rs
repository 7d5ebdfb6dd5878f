//! The `exporter` binary: parse arguments, run, exit with the documented code.

use clap::Parser as _;
use exporter::error::ExitStatus;

fn main() -> std::process::ExitCode {
    match exporter::cli::Cli::try_parse() {
        Ok(cli) => exporter::commands::run(cli).into(),
        Err(e) => {
            // clap prints help and version on stdout and usage errors on stderr.
            let _ = e.print();
            ExitStatus::of_clap(&e).into()
        }
    }
}
