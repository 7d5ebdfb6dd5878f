//! The one error type at the adapter boundary.

use std::error::Error as StdError;
use std::fmt;

/// What kind of failure an [`EngineError`] is; the core maps it to an exit code and a hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The server could not be reached (DNS, refused, timeout, TLS).
    Connect,
    /// The server rejected the credentials.
    Auth,
    /// The role lacks a privilege on a named object.
    Permission,
    /// The database (or a named object) does not exist.
    NotFound,
    /// A query failed on the server.
    Query,
    /// The server sent something the adapter did not expect, or closed the connection.
    Protocol,
    /// Local I/O failed.
    Io,
    /// The work was cancelled (by the user or because the consumer went away).
    Cancelled,
    /// An object or value the engine cannot export faithfully (principle 3: never silently
    /// lose). The message names the object.
    Unsupported,
    /// A local configuration mistake: a connection URL parameter the engine does not know or
    /// whose value is invalid, or a file such a parameter names (a CA, a client certificate
    /// or key) that cannot be read or holds nothing usable. A usage error: nothing about the
    /// server or its data.
    Config,
}

impl ErrorKind {
    /// A short lowercase label: `connect`, `auth`, …
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Auth => "auth",
            Self::Permission => "permission",
            Self::NotFound => "not found",
            Self::Query => "query",
            Self::Protocol => "protocol",
            Self::Io => "io",
            Self::Cancelled => "cancelled",
            Self::Unsupported => "unsupported",
            Self::Config => "config",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An adapter error: a kind, a message, the object it concerns, an optional cause, and whether
/// retrying may help.
///
/// `Display` prints `<object>: <message>` (or just the message); the cause is reachable through
/// [`std::error::Error::source`]. Neither ever contains a password: adapters build messages from
/// redacted endpoints only.
#[derive(Debug)]
pub struct EngineError {
    kind: ErrorKind,
    message: String,
    object: Option<String>,
    retryable: bool,
    hint: Option<String>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl EngineError {
    /// A new error of `kind` with a human message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            object: None,
            retryable: false,
            hint: None,
            source: None,
        }
    }

    /// Attach a next step for the user, in the engine's own words (e.g. `use
    /// sslmode=verify-ca to check the CA but not the host name`). The core prints it as the
    /// `hint:` line, in preference to its generic hint for the kind.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The engine's next step for the user, if it has one.
    #[must_use]
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// Attach the object this error concerns (a table, key, or redacted endpoint).
    #[must_use]
    pub fn with_object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    /// Attach the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Mark whether a retry of the whole operation may help.
    #[must_use]
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// The kind.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human message, without the object.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The object this error concerns, if any.
    #[must_use]
    pub fn object(&self) -> Option<&str> {
        self.object.as_deref()
    }

    /// Whether a retry may help.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.object {
            Some(object) => write!(f, "{object}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl StdError for EngineError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_object_then_message() {
        let e = EngineError::new(ErrorKind::Permission, "permission denied")
            .with_object("table public.blobs");
        assert_eq!(e.to_string(), "table public.blobs: permission denied");
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert!(!e.is_retryable());
        assert_eq!(e.hint(), None);
        let e = e.with_hint("grant SELECT");
        assert_eq!(e.hint(), Some("grant SELECT"));
        assert_eq!(e.to_string(), "table public.blobs: permission denied");
    }

    #[test]
    fn source_is_chained() {
        let io = std::io::Error::other("disk on fire");
        let e = EngineError::new(ErrorKind::Io, "write failed").with_source(io);
        assert_eq!(
            e.source().map(ToString::to_string).as_deref(),
            Some("disk on fire")
        );
    }
}
