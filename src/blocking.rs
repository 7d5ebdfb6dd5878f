//! Blocking work (storage reads and writes, archive checks) run off the async threads.

use tokio::task::JoinError;

/// A blocking worker thread failed (it panicked, or the runtime is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("{what} failed")]
pub struct ThreadError {
    /// What the thread was doing.
    what: &'static str,
    /// The join error.
    #[source]
    source: JoinError,
}

impl ThreadError {
    /// A task or thread doing `what` that did not return.
    #[must_use]
    pub fn new(what: &'static str, source: JoinError) -> Self {
        Self { what, source }
    }
}

/// Run `f` on the runtime's blocking pool and wait for it.
///
/// # Errors
///
/// [`ThreadError`] naming `what` if the thread did not return.
pub async fn run<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ThreadError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|source| ThreadError { what, source })
}
