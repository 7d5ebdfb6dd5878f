//! `--log-format json`: one JSON object per line on stderr for each event, so a CI job or a
//! dashboard can follow a run (issue 16). The stream is documented field by field in
//! FORMAT.md, "Events on stderr"; change it there in the same commit.
//!
//! Every object starts with `version` ([`EVENTS_VERSION`]), `time` (RFC 3339, UTC,
//! milliseconds) and `event` (its name). The service events are [`Event`] as it serializes
//! (tagged by `event`); the command layer adds `run_finished`, `warning` (what the text form
//! prints as a warning line), `error` (the error a command ends with) and `log` (a `tracing`
//! record, [`LogLayer`]). Each object is written with one `write` on a locked stderr, so lines
//! from several threads never interleave. Nothing here holds a secret: events carry redacted
//! URLs and messages only, as the text lines do.

use std::fmt::Write as _;
use std::io::Write as _;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use super::Ui;
use crate::progress::Event;

/// The version of the event stream's schema: raised when a field changes meaning or goes
/// away; new events and new fields do not raise it (readers ignore what they do not know).
pub const EVENTS_VERSION: u32 = 1;

/// The fields every event starts with.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize + ?Sized> {
    version: u32,
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    #[serde(flatten)]
    body: &'a T,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn write_line<T: Serialize + ?Sized>(event: Option<&str>, body: &T) {
    let envelope = Envelope {
        version: EVENTS_VERSION,
        time: now(),
        event,
        body,
    };
    let Ok(mut line) = serde_json::to_string(&envelope) else {
        return;
    };
    line.push('\n');
    // As for data on stdout: a closed stderr must not turn a finished run into a crash.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Write one event named `event` with the fields of `fields` (a struct or map).
pub fn emit<T: Serialize + ?Sized>(event: &str, fields: &T) {
    write_line(Some(event), fields);
}

/// Write one service [`Event`] (it carries its own `event` tag).
pub fn emit_event(event: &Event) {
    write_line(None, event);
}

/// The fields of a `warning` event: a warning line of the text form.
#[derive(Debug, Serialize)]
pub struct Warning<'a> {
    /// The line.
    pub message: &'a str,
}

/// The fields of an `error` event: the error a command ends with, as the text form's
/// `error:`, `caused by:` and `hint:` lines.
#[derive(Debug, Serialize)]
pub struct ErrorEvent<'a> {
    /// The error (`error: …`).
    pub message: String,
    /// Its causes, outermost first, without those whose text the previous one carries.
    pub causes: Vec<String>,
    /// The next step, if there is one.
    pub hint: Option<&'a str>,
    /// The process's exit code (README, "Exit codes").
    pub exit_code: u8,
}

/// Whether `event` is still reported with `--quiet` (a problem, not progress): the events
/// the text form prints even then.
#[must_use]
pub fn is_problem(event: &Event) -> bool {
    match event {
        Event::DatabaseFailed { .. }
        | Event::DatabaseWarning { .. }
        | Event::ConnectionNote { .. }
        | Event::RunSkipped { .. }
        | Event::RunProblem { .. }
        | Event::ScratchNameTaken { .. }
        | Event::ScratchLeftBehind { .. } => true,
        Event::ArchiveChecked { ok, .. } | Event::ScratchRestoreChecked { ok, .. } => !ok,
        _ => false,
    }
}

impl Ui {
    /// In JSON mode, write `event` (unless `--quiet` and it is no problem) and return `true`;
    /// in text mode do nothing and return `false`, for the caller to render it as text.
    #[must_use]
    pub fn event_json(self, event: &Event) -> bool {
        if !self.is_json() {
            return false;
        }
        if !self.quiet || is_problem(event) {
            emit_event(event);
        }
        true
    }

    /// In JSON mode, write an event named `event` with `fields` (unless `--quiet`); nothing
    /// in text mode.
    pub fn emit_json<T: Serialize + ?Sized>(self, event: &str, fields: &T) {
        if self.is_json() && !self.quiet {
            emit(event, fields);
        }
    }
}

/// A `tracing` layer writing each record as a `log` event: `level` (`error`, `warn`, `info`,
/// `debug`, `trace`), `target` (the module; for a record of the `log` crate, its own target),
/// `message`, and the record's other fields under `fields` (numbers and booleans as they are,
/// anything else as text).
#[derive(Debug, Clone, Copy)]
pub struct LogLayer;

#[derive(Serialize)]
struct LogRecord<'a> {
    level: String,
    target: &'a str,
    message: String,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    fields: serde_json::Map<String, serde_json::Value>,
}

#[derive(Default)]
struct Fields {
    message: String,
    /// A record of the `log` crate (bridged by `tracing-log`, target `log`): its own target.
    log_target: Option<String>,
    others: serde_json::Map<String, serde_json::Value>,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "message" => value.clone_into(&mut self.message),
            "log.target" => self.log_target = Some(value.to_owned()),
            // The bridge's file, line and module: noise in an event.
            name if name.starts_with("log.") => {}
            name => {
                self.others.insert(name.to_owned(), value.into());
            }
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if !field.name().starts_with("log.") {
            self.others.insert(field.name().to_owned(), value.into());
        }
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.others.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.others.insert(field.name().to_owned(), value.into());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        match field.name() {
            "message" => self.message = text,
            "log.target" => self.log_target = Some(text),
            name if name.starts_with("log.") => {}
            name => {
                self.others.insert(name.to_owned(), text.into());
            }
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        emit(
            "log",
            &LogRecord {
                level: meta.level().as_str().to_ascii_lowercase(),
                target: fields.log_target.as_deref().unwrap_or(meta.target()),
                message: fields.message,
                fields: fields.others,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<T: Serialize + ?Sized>(event: Option<&str>, body: &T) -> serde_json::Value {
        let envelope = Envelope {
            version: EVENTS_VERSION,
            time: now(),
            event,
            body,
        };
        let text = serde_json::to_string(&envelope).unwrap();
        assert!(
            text.starts_with(r#"{"version":1,"time":""#),
            "version and time come first: {text}"
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn service_events_keep_their_tag_after_the_envelope() {
        let v = line(
            None,
            &Event::DatabaseStarted {
                name: "app".into(),
                source: "postgresql postgres://app@db/app".into(),
            },
        );
        assert_eq!(v["event"], "database_started");
        assert_eq!(v["name"], "app");
        assert!(
            chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).is_ok(),
            "{v}"
        );
    }

    #[test]
    fn command_events_are_named_by_the_caller() {
        let v = line(Some("warning"), &Warning { message: "careful" });
        assert_eq!(v["event"], "warning");
        assert_eq!(v["message"], "careful");
        assert_eq!(v["version"], EVENTS_VERSION);
    }

    #[test]
    fn quiet_keeps_problems_only() {
        let failed = Event::ArchiveChecked {
            label: "a.sql.zst".into(),
            ok: false,
            stored_bytes: 1,
            payload_bytes: 1,
            problems: vec!["sha256 differs".into()],
        };
        assert!(is_problem(&failed));
        let started = Event::DatabaseStarted {
            name: "a".into(),
            source: "s".into(),
        };
        assert!(!is_problem(&started));
    }
}
