//! The one error type of this crate: a kind the caller maps to an exit code and a hint, the
//! platform's `{code, error, message}` envelope when there was one, and whether a retry may
//! help.

use std::fmt;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The token is missing, invalid or expired (HTTP 401, or the slugs `invalid_token` /
    /// `expired_token`; spec §10). The caller says "run exporter login" ([`Error::hint`]).
    Auth,
    /// Login refused: wrong email/password or one-time code (`invalid_credentials`, …).
    Login,
    /// The auth API wants a one-time password (`otp_token_required`, spec §1.2).
    OtpRequired,
    /// The resource does not exist (HTTP 404 / `not_found`).
    NotFound,
    /// The request was refused as invalid (HTTP 422 / `unprocessable_entity`).
    Validation,
    /// Another 4xx: a conflict, an ambiguous handle (`multiple_resources_found`), a refusal.
    Client,
    /// The platform failed (5xx).
    Server,
    /// The platform could not be reached, or the connection broke.
    Network,
    /// The platform answered something this client cannot read.
    Protocol,
    /// A platform operation ended `failed`, or did not finish in time.
    Operation,
    /// Configuration: no token, a bad root URL, a bad handle.
    Config,
    /// Local I/O: the token file, temporary key files, spawning `ssh` / `ssh-keygen`.
    Io,
    /// An SSH tunnel did not come up, timed out or crashed.
    Tunnel,
}

impl ErrorKind {
    /// A short lowercase label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Login => "login",
            Self::OtpRequired => "otp required",
            Self::NotFound => "not found",
            Self::Validation => "validation",
            Self::Client => "client",
            Self::Server => "server",
            Self::Network => "network",
            Self::Protocol => "protocol",
            Self::Operation => "operation",
            Self::Config => "config",
            Self::Io => "io",
            Self::Tunnel => "tunnel",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of the platform client.
///
/// `Display` is `<context>: <message>`; the context names the request (`GET /databases/100`,
/// path only, never a query string or a body) or the object (`database main-db`). For API
/// errors the message is the envelope's `message` (spec §2.4: "validation errors surface
/// `message` as the user-facing text"). No variant ever holds a token, a password or a
/// connection URL: messages are built from redacted values only, and text from `ssh` is
/// redacted before it is stored.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    context: String,
    message: String,
    status: Option<u16>,
    slug: Option<String>,
    retryable: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error.
    pub fn new(kind: ErrorKind, context: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            context: context.into(),
            message: message.into(),
            status: None,
            slug: None,
            retryable: matches!(kind, ErrorKind::Network | ErrorKind::Server),
            source: None,
        }
    }

    /// An error from an HTTP status and the platform's envelope (`error` slug and `message`),
    /// classified per spec §2.4 / §10.
    pub fn from_envelope(
        context: impl Into<String>,
        status: u16,
        slug: Option<String>,
        message: Option<String>,
    ) -> Self {
        let kind = classify(status, slug.as_deref());
        let message = message
            .filter(|m| !m.trim().is_empty())
            .or_else(|| slug.clone())
            .unwrap_or_else(|| format!("HTTP {status}"));
        Self {
            kind,
            context: context.into(),
            message,
            status: Some(status),
            slug,
            retryable: status >= 500,
            source: None,
        }
    }

    /// Attach a cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Override whether a retry may help.
    #[must_use]
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// What kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The request or object the error concerns.
    #[must_use]
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The human message (the envelope's `message` for API errors).
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status, for API errors.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The envelope's `error` slug (`not_found`, `expired_token`, …), for API errors.
    #[must_use]
    pub fn slug(&self) -> Option<&str> {
        self.slug.as_deref()
    }

    /// Whether retrying the same request later may succeed (network failures and 5xx; the
    /// client itself retries only idempotent methods, spec §2.4).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// A next step for the user, when there is one: `run exporter login` for
    /// [`ErrorKind::Auth`] (the CLI's "please run aptible login", spec §2.4).
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        match self.kind {
            ErrorKind::Auth => Some("run exporter login"),
            _ => None,
        }
    }

    pub(crate) fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = context.into();
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.context.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.context, self.message)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The kind of an API error from its status and slug (spec §2.4, §10).
fn classify(status: u16, slug: Option<&str>) -> ErrorKind {
    match slug {
        Some("invalid_token" | "expired_token") => return ErrorKind::Auth,
        Some("otp_token_required") => return ErrorKind::OtpRequired,
        Some("invalid_credentials" | "invalid_email") => return ErrorKind::Login,
        _ => {}
    }
    match status {
        401 => ErrorKind::Auth,
        404 => ErrorKind::NotFound,
        422 => ErrorKind::Validation,
        400..=499 => ErrorKind::Client,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::Protocol,
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_classification() {
        let e = Error::from_envelope(
            "GET /accounts",
            401,
            Some("expired_token".into()),
            Some("Expired Token".into()),
        );
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert_eq!(e.hint(), Some("run exporter login"));
        assert_eq!(e.to_string(), "GET /accounts: Expired Token");
        assert!(!e.is_retryable());

        let e = Error::from_envelope("POST /x", 422, Some("unprocessable_entity".into()), None);
        assert_eq!(e.kind(), ErrorKind::Validation);
        assert_eq!(e.message(), "unprocessable_entity");

        let e = Error::from_envelope("GET /x", 503, None, None);
        assert_eq!(e.kind(), ErrorKind::Server);
        assert!(e.is_retryable());
        assert_eq!(e.message(), "HTTP 503");

        let e = Error::from_envelope(
            "GET /find/database",
            400,
            Some("multiple_resources_found".into()),
            Some("Multiple databases exist".into()),
        );
        assert_eq!(e.kind(), ErrorKind::Client);
        assert_eq!(
            Error::from_envelope("POST /tokens", 400, Some("otp_token_required".into()), None)
                .kind(),
            ErrorKind::OtpRequired
        );
    }
}
