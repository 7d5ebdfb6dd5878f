//! Waiting for platform operations (spec §4.2).

use std::time::{Duration, Instant};

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::resources::Operation;

/// How to poll an operation.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// Time between two `GET /operations/{id}`: 1 s as the CLI's fallback poller (spec §4.2).
    pub interval: Duration,
    /// Give up after this long (`None`: wait as long as the operation runs).
    pub timeout: Option<Duration>,
}

impl Default for PollOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            timeout: Some(Duration::from_secs(6 * 3600)),
        }
    }
}

/// How a waited-for operation ended.
#[derive(Debug, Clone)]
pub enum Finished {
    /// Status `succeeded`.
    Succeeded(Operation),
    /// A deprovision or purge whose operation answers 404: it finished and was soft-deleted
    /// with its resource, which counts as done (spec §4.2).
    Gone,
}

impl Client {
    /// Ask the platform to cancel an operation (`PUT /operations/{id}` with
    /// `{"cancelled": true}`, as `aptible operation:cancel`, spec §3.8). Idempotent, so retried
    /// like a GET.
    ///
    /// # Errors
    ///
    /// The client's errors.
    pub async fn cancel_operation(&self, operation: &Operation) -> Result<Operation> {
        let href = operation.links.href("self").map_or_else(
            || {
                self.roots()
                    .api_url(&format!("/operations/{}", operation.id))
            },
            str::to_owned,
        );
        self.put(&href, &serde_json::json!({ "cancelled": true }))
            .await
    }

    /// Poll `operation` until it is `succeeded` or `failed`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Operation`] when it ends `failed` (the message names the operation id and
    /// type; operations carry no failure reason, spec §4.2) or the timeout passes;
    /// [`ErrorKind::NotFound`] for a 404 on an operation that is not a deprovision or purge;
    /// the client's errors otherwise.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future stops polling only; the operation goes on on the platform.
    pub async fn wait_operation(
        &self,
        operation: &Operation,
        poll: &PollOptions,
    ) -> Result<Finished> {
        let href = operation.links.href("self").map_or_else(
            || {
                self.roots()
                    .api_url(&format!("/operations/{}", operation.id))
            },
            str::to_owned,
        );
        let gone_is_done = matches!(operation.kind.as_str(), "deprovision" | "purge");
        let started = Instant::now();
        let mut current = operation.clone();
        loop {
            match current.status.as_str() {
                "succeeded" => return Ok(Finished::Succeeded(current)),
                "failed" => {
                    return Err(Error::new(
                        ErrorKind::Operation,
                        format!("operation #{}", current.id),
                        format!("Operation #{} ({}) failed.", current.id, current.kind),
                    ));
                }
                _ => {}
            }
            if let Some(limit) = poll.timeout
                && started.elapsed() >= limit
            {
                return Err(Error::new(
                    ErrorKind::Operation,
                    format!("operation #{}", current.id),
                    format!(
                        "Operation #{} ({}) did not finish within {} s (last status: {})",
                        current.id,
                        current.kind,
                        limit.as_secs(),
                        current.status
                    ),
                ));
            }
            tokio::time::sleep(poll.interval).await;
            match self.get::<Operation>(&href).await {
                Ok(op) => current = op,
                Err(e) if e.kind() == ErrorKind::NotFound && gone_is_done => {
                    return Ok(Finished::Gone);
                }
                Err(e) => return Err(e),
            }
        }
    }
}
