//! The `exporter` binary: parse arguments, run, exit with the documented code.

use clap::Parser as _;

fn main() -> std::process::ExitCode {
    let cli = match exporter::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version on stdout (exit 0) and usage errors on stderr (exit 2).
            let _ = e.print();
            return std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    std::process::ExitCode::from(exporter::commands::run(cli).code())
}
