//! Exit codes and the rendering of user-facing errors (design.md section 9).
//!
//! `error: <message>`, then one `  caused by: <cause>` line per cause, then `hint: <next step>`
//! when there is one (uv's style).

use std::fmt::Write as _;

/// The exit-code contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: success.
    Success,
    /// 1: a clean "no": verification found a bad archive, teardown refused.
    No,
    /// 2: usage or configuration error.
    Usage,
    /// 3: runtime failure (network, database, storage).
    Failure,
}

impl ExitStatus {
    /// The process exit code.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::No => 1,
            Self::Usage => 2,
            Self::Failure => 3,
        }
    }
}

/// A command that could not do its job: the exit status, the error chain and an optional hint.
#[derive(Debug)]
pub struct Failure {
    /// Exit status (2 or 3, sometimes 1).
    pub status: ExitStatus,
    /// The error and its causes.
    pub error: anyhow::Error,
    /// A next step for the user.
    pub hint: Option<String>,
}

impl Failure {
    /// A usage or configuration error (exit 2).
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self {
            status: ExitStatus::Usage,
            error: error.into(),
            hint: None,
        }
    }

    /// A runtime failure (exit 3).
    pub fn runtime(error: impl Into<anyhow::Error>) -> Self {
        Self {
            status: ExitStatus::Failure,
            error: error.into(),
            hint: None,
        }
    }

    /// A clean "no" (exit 1).
    pub fn no(error: impl Into<anyhow::Error>) -> Self {
        Self {
            status: ExitStatus::No,
            error: error.into(),
            hint: None,
        }
    }

    /// Attach a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: Option<impl Into<String>>) -> Self {
        self.hint = hint.map(Into::into);
        self
    }

    /// The text printed on stderr.
    #[must_use]
    pub fn render(&self) -> String {
        render_error(&self.error, self.hint.as_deref())
    }
}

/// Render an error chain and hint as printed on stderr.
#[must_use]
pub fn render_error(error: &anyhow::Error, hint: Option<&str>) -> String {
    let mut out = format!("error: {error}\n");
    let mut last = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        // Skip causes whose text the previous line already carries.
        if !last.contains(&text) {
            let _ = writeln!(out, "  caused by: {text}");
        }
        last = text;
    }
    if let Some(hint) = hint {
        let _ = writeln!(out, "hint: {hint}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn renders_chain_and_hint() {
        let err = Err::<(), _>(std::io::Error::other("connection refused"))
            .context("cannot reach database billing")
            .unwrap_err();
        let f = Failure::runtime(err).with_hint(Some("is the server running?"));
        assert_eq!(
            f.render(),
            "error: cannot reach database billing\n  caused by: connection refused\nhint: is the server running?\n"
        );
        assert_eq!(f.status.code(), 3);
    }
}
