//! The terminal: the one module that writes to stdout and stderr (`clippy.toml` bans the print
//! macros everywhere else).
//!
//! stdout carries data (a run directory, `--json` reports, lists); stderr carries progress,
//! warnings and errors (design.md section 9). [`Ui`] is what the command layer renders with;
//! services never print, they report [`crate::progress::Event`]s and return values.
//!
//! stderr takes one of three shapes, chosen once per process ([`Ui::for_terminal`]):
//!
//! - `--log-format text` on a terminal: progress bars ([`TaskBars`], indicatif) under the
//!   lines; every line (and every `tracing` record) is written through the bars'
//!   [`MultiProgress`], which lifts the bars, writes and draws them again, so nothing tears;
//! - `--log-format text` elsewhere (a file, a pipe, CI): the same lines, no escape sequence,
//!   and a "still running" line every [`crate::settings::progress_interval`];
//! - `--log-format json`: one JSON object per line for each event ([`json`]; FORMAT.md,
//!   "Events on stderr"), and nothing else.

#![allow(
    clippy::disallowed_macros,
    reason = "the one module that writes to the terminal (clippy.toml)"
)]

mod bars;
pub mod json;

pub use bars::TaskBars;

use std::io::{IsTerminal as _, Write as _};
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressDrawTarget};

/// How often progress bars are refreshed (each refresh is one `…Progress` event per running
/// task; indicatif draws at most 20 times a second anyway).
pub const BAR_TICK: Duration = Duration::from_millis(200);

/// The bars of this process: one draw target for stderr, shared by every bar and every line
/// written while bars may be drawn (the terminal is one, and `tracing`'s writer is global).
static MULTI: OnceLock<MultiProgress> = OnceLock::new();

/// `--log-format`: what stderr carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Lines for a person (with progress bars on a terminal).
    Text,
    /// One JSON event per line ([`json`]).
    Json,
}

/// Human progress on stderr, data on stdout. `--quiet` silences progress, never problems.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    quiet: bool,
    heartbeat: Option<Duration>,
    format: LogFormat,
    /// Progress bars are drawn (text, not quiet, stderr a terminal).
    bars: bool,
    /// Colour is allowed (stderr a terminal, no `NO_COLOR`).
    colour: bool,
}

impl Ui {
    /// A reporter writing text lines, without bars; `quiet` suppresses everything but
    /// problems and errors.
    #[must_use]
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            heartbeat: None,
            format: LogFormat::Text,
            bars: false,
            colour: false,
        }
    }

    /// The same reporter, with a "still running" line every `every` during long work
    /// (`None`: never; see [`crate::settings::progress_interval`]).
    #[must_use]
    pub fn with_heartbeat(self, every: Option<Duration>) -> Self {
        Self {
            heartbeat: every,
            ..self
        }
    }

    /// The same reporter writing `format` on this process's stderr: with [`LogFormat::Text`]
    /// and without `--quiet`, progress bars when stderr is a terminal; colour only on a
    /// terminal and without `NO_COLOR` (<https://no-color.org>).
    #[must_use]
    pub fn for_terminal(self, format: LogFormat) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bars = format == LogFormat::Text && !self.quiet && terminal;
        if bars {
            MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        }
        Self {
            format,
            bars,
            colour: terminal && std::env::var_os("NO_COLOR").is_none(),
            ..self
        }
    }

    /// Whether progress lines are suppressed.
    #[must_use]
    pub fn is_quiet(self) -> bool {
        self.quiet
    }

    /// Whether stderr carries JSON events (`--log-format json`).
    #[must_use]
    pub fn is_json(self) -> bool {
        self.format == LogFormat::Json
    }

    /// Whether progress bars are drawn.
    #[must_use]
    pub fn has_bars(self) -> bool {
        self.bars
    }

    /// Whether colour may be used.
    #[must_use]
    pub fn colour(self) -> bool {
        self.colour
    }

    /// How often long work reports that it is still running: [`BAR_TICK`] (or the configured
    /// interval, if shorter) while bars are drawn, else the configured interval; never with
    /// `--quiet`.
    #[must_use]
    pub fn heartbeat(self) -> Option<Duration> {
        if self.bars {
            Some(self.heartbeat.map_or(BAR_TICK, |h| h.min(BAR_TICK)))
        } else {
            self.heartbeat.filter(|_| !self.quiet)
        }
    }

    /// The bars' draw target, while bars are drawn.
    fn multi(self) -> Option<&'static MultiProgress> {
        if self.bars { MULTI.get() } else { None }
    }

    /// A progress or summary line on stderr (suppressed by `--quiet`, and in JSON mode, where
    /// the events say it).
    pub fn info(self, line: impl AsRef<str>) {
        if !self.quiet && !self.is_json() {
            self.stderr_line(line.as_ref());
        }
    }

    /// A problem or warning line on stderr, printed even with `--quiet`; in JSON mode a
    /// `warning` event.
    pub fn problem(self, line: impl AsRef<str>) {
        if self.is_json() {
            json::emit(
                "warning",
                &json::Warning {
                    message: line.as_ref().trim(),
                },
            );
        } else {
            self.stderr_line(line.as_ref());
        }
    }

    /// A line of data on stdout; see [`print_data`]. Bars are lifted while it is written
    /// (stdout is often the same terminal).
    pub fn data(self, line: impl AsRef<str>) {
        self.suspended(|| print_data(line.as_ref()));
    }

    /// Write a rendered error (see [`crate::error::render`]) to stderr, as it is.
    pub fn print_error(self, text: &str) {
        self.suspended(|| print_error(text));
    }

    fn stderr_line(self, line: &str) {
        self.suspended(|| eprintln!("{line}"));
    }

    /// Run `f` with the bars lifted off the terminal (drawn again after it).
    fn suspended<T>(self, f: impl FnOnce() -> T) -> T {
        match self.multi() {
            Some(multi) => multi.suspend(f),
            None => f(),
        }
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

/// A count with thousands separators, `1,803,211` (indicatif's `HumanCount`), for rows and
/// keys on progress lines and bars.
#[must_use]
pub fn human_count(n: u64) -> String {
    indicatif::HumanCount(n).to_string()
}

/// `120.0 MiB of 400.0 MiB (30%) read`, or `120.0 MiB read` without a total: how far a
/// restore has read its archive, for progress lines.
#[must_use]
pub fn read_so_far(bytes: u64, total: Option<u64>) -> String {
    match total.filter(|t| *t > 0) {
        Some(t) => format!(
            "{} of {} ({}%) read",
            human_bytes(bytes),
            human_bytes(t),
            (bytes.min(t) * 100) / t
        ),
        None => format!("{} read", human_bytes(bytes)),
    }
}

/// The argument parser's usage error, as clap renders it (`error: unexpected argument '…'
/// found`, the usage line, the help hint), with every word that holds `://` shown as
/// [`exporter_contract::redact_unparsed`] shows a URL that did not parse: clap repeats the
/// argument it refused, and a database URL carries its password.
#[must_use]
pub fn redact_usage_error(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains("://") {
            // Keep the quotes clap puts around the argument.
            let lead = word.len() - word.trim_start_matches(['\'', '"', '[', '(']).len();
            let trail = word.len() - word.trim_end_matches(['\'', '"', ']', ')', ',', '.']).len();
            let inner = &word[lead..word.len() - trail];
            out.push_str(&word[..lead]);
            out.push_str(&exporter_contract::redact_unparsed(inner));
            out.push_str(&word[word.len() - trail..]);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// `, TLSv1.3 (verify-full, checked chain+hostname)` or `, clear text (prefer)`: how a
/// connection travelled, for the dump's and the check's lines; empty when the engine said
/// nothing.
#[must_use]
pub fn tls_note(tls: Option<&exporter_contract::TlsInfo>) -> String {
    match tls {
        Some(t) if t.encrypted => format!(
            ", {} ({}, checked {})",
            t.protocol.as_deref().unwrap_or("TLS"),
            t.mode,
            t.verified.as_deref().unwrap_or("none")
        ),
        Some(t) => format!(", clear text ({})", t.mode),
        None => String::new(),
    }
}

/// `1 table`, `3 tables`: a count and its noun, given in the plural (ending in `s`),
/// singular for one.
#[must_use]
pub fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {}", noun.strip_suffix('s').unwrap_or(noun))
    } else {
        format!("{n} {noun}")
    }
}

/// `12s`, `3m 05s`, `2h 04m`: a duration for progress lines.
#[must_use]
pub fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

/// `EnvFilter` directives that keep the database drivers' statement logging off (see
/// [`init_tracing`]): tokio-postgres and mysql_async log each statement's text at DEBUG.
pub const QUIET_DRIVERS: &str = "tokio_postgres=info,mysql_async=info,mysql_common=info,redis=info";

/// Set up `tracing` on stderr: `-q` shows errors only, `-v` info, `-vv` debug; `EXPORTER_LOG`
/// (an `EnvFilter` directive) overrides both. Text records go through the bars' draw target
/// (so they do not tear the bars), coloured only when [`Ui::colour`]; in JSON mode each
/// record is a `log` event ([`json::LogLayer`]).
pub fn init_tracing(verbose: u8, ui: Ui) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let default = match (ui.quiet, verbose) {
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
        // The database drivers log the text of every statement they send at DEBUG, and a
        // restore sends the archive's statements, which may hold secrets the source stored (a
        // user mapping's password, a subscription's connection string): they stay at INFO
        // whatever -v says, so secrets never reach the log (only an explicit EXPORTER_LOG
        // directive can ask for them).
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!(
                "{default},aws_sdk_s3::http_response_checksum=error,aws_config=error,\
                 aws_runtime=error,aws_smithy_runtime=error,{QUIET_DRIVERS}"
            ))
        });
    match ui.format {
        LogFormat::Text => {
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(move || LineWriter { ui })
                .with_ansi(ui.colour)
                .with_target(false);
            // A warning among the progress lines reads like them (`WARN …`); timestamps come
            // with -v, when the log is what is being read.
            let _ = if verbose == 0 {
                builder.without_time().try_init()
            } else {
                builder.try_init()
            };
        }
        LogFormat::Json => {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(json::LogLayer)
                .try_init();
        }
    }
}

/// `tracing`'s writer in text mode: each record (formatted whole, then written once) goes
/// to stderr with the bars lifted.
struct LineWriter {
    ui: Ui,
}

impl std::io::Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.ui
            .suspended(|| std::io::stderr().lock().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
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

    #[test]
    fn progress_of_a_read() {
        assert_eq!(read_so_far(512, Some(2048)), "512 B of 2.0 KiB (25%) read");
        assert_eq!(read_so_far(512, None), "512 B read");
        assert_eq!(read_so_far(512, Some(0)), "512 B read");
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(0.4), "0s");
        assert_eq!(human_duration(59.9), "59s");
        assert_eq!(human_duration(185.0), "3m 05s");
        assert_eq!(human_duration(7440.0), "2h 04m");
    }

    #[test]
    fn quiet_has_no_heartbeat() {
        let every = Some(Duration::from_secs(30));
        assert_eq!(Ui::new(false).with_heartbeat(every).heartbeat(), every);
        assert_eq!(Ui::new(true).with_heartbeat(every).heartbeat(), None);
    }

    #[test]
    fn bars_tick_faster_than_lines() {
        let bars = |heartbeat| Ui {
            bars: true,
            ..Ui::new(false).with_heartbeat(heartbeat)
        };
        assert_eq!(
            bars(Some(Duration::from_secs(30))).heartbeat(),
            Some(BAR_TICK)
        );
        assert_eq!(
            bars(None).heartbeat(),
            Some(BAR_TICK),
            "bars move without lines"
        );
        let fast = Some(Duration::from_millis(50));
        assert_eq!(bars(fast).heartbeat(), fast);
    }
}

#[cfg(test)]
mod usage_error_tests {
    use super::redact_usage_error;

    #[test]
    fn a_refused_url_argument_is_shown_without_its_password() {
        let text = "error: unexpected argument 'postgres://brk_user:S3cr3t%23pw@127.0.0.1:5432/brk' found\n\nUsage: exporter list [OPTIONS]\n";
        let shown = redact_usage_error(text);
        assert_eq!(
            shown,
            "error: unexpected argument 'postgres://****@127.0.0.1:5432/brk' found\n\nUsage: exporter list [OPTIONS]\n"
        );
        assert_eq!(
            redact_usage_error("error: a value is required\n"),
            "error: a value is required\n"
        );
    }
}
