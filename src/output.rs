//! The terminal: the one module that writes to stdout and stderr (`clippy.toml` bans the print
//! macros everywhere else).
//!
//! stdout carries data (a run directory, `--json` reports, lists); stderr carries progress,
//! warnings and errors (design.md section 9). [`Ui`] is what the command layer renders with;
//! services never print, they report [`crate::progress::Event`]s and return values.

#![allow(
    clippy::disallowed_macros,
    reason = "the one module that writes to the terminal (clippy.toml)"
)]

use std::io::{IsTerminal as _, Write as _};

/// Human progress on stderr, data on stdout. `--quiet` silences progress, never problems.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    quiet: bool,
}

impl Ui {
    /// A reporter; `quiet` suppresses everything but problems and errors.
    #[must_use]
    pub fn new(quiet: bool) -> Self {
        Self { quiet }
    }

    /// Whether progress lines are suppressed.
    #[must_use]
    pub fn is_quiet(self) -> bool {
        self.quiet
    }

    /// A progress or summary line on stderr (suppressed by `--quiet`).
    pub fn info(self, line: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", line.as_ref());
        }
    }

    /// A problem or warning line on stderr, printed even with `--quiet`.
    pub fn problem(self, line: impl AsRef<str>) {
        eprintln!("{}", line.as_ref());
    }

    /// A line of data on stdout; see [`print_data`].
    pub fn data(self, line: impl AsRef<str>) {
        print_data(line.as_ref());
    }
}

/// Ask for one line on the terminal: `label` on stderr, the answer read from stdin (echoed).
/// Hidden input (passwords) goes through `rpassword`, which talks to the terminal itself.
///
/// # Errors
///
/// When stdin is not a terminal (nothing could answer) or cannot be read.
pub fn prompt_line(label: &str) -> std::io::Result<String> {
    use std::io::{BufRead as _, IsTerminal as _};
    if !std::io::stdin().is_terminal() {
        return Err(std::io::Error::other("standard input is not a terminal"));
    }
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

/// Write a line of data to stdout. A closed or full stdout (`exporter dump | head`) must not
/// turn a committed run into a crash, so write errors are ignored here; the exit code reports
/// the command's outcome, not the reader's.
pub fn print_data(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Write bytes to stdout as they are (a generated completion script or manual page, which
/// end with their own newline); write errors are ignored as in [`print_data`].
pub fn print_raw(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

/// Write a rendered error (see [`crate::error::render`]) to stderr, as it is.
pub fn print_error(text: &str) {
    eprint!("{text}");
}

/// Human-readable byte size (binary units): `512 B`, `1.5 KiB`, `3.0 GiB`.
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

/// Set up `tracing` on stderr: `-q` shows errors only, `-v` info, `-vv` debug; `EXPORTER_LOG`
/// (an `EnvFilter` directive) overrides both. Colour only on a terminal and without `NO_COLOR`.
pub fn init_tracing(verbose: u8, quiet: bool) {
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
