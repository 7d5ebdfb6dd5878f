//! The `exporter` binary: parse arguments, run, exit with the documented code.

use clap::Parser as _;
use exporter::error::ExitStatus;

fn main() -> std::process::ExitCode {
    match exporter::cli::Cli::try_parse() {
        Ok(cli) => exporter::commands::run(cli).into(),
        Err(e) => {
            // clap prints help and version on stdout and usage errors on stderr; a usage
            // error repeats the refused argument, which may be a URL with its password.
            if e.use_stderr() {
                exporter::output::print_error(&exporter::output::redact_usage_error(
                    &e.render().to_string(),
                ));
            } else {
                let _ = e.print();
            }
            ExitStatus::of_clap(&e).into()
        }
    }
}
