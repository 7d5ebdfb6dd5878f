//! `exporter uploads`: list the multipart uploads under an S3 destination that were neither
//! completed nor aborted (an interrupted process leaves them; S3 bills their parts until a
//! lifecycle rule or an abort removes them), and with `--abort` abort them.
//!
//! Completed objects are never touched: an open upload is invisible under its key, and
//! aborting it only discards its parts.

use anyhow::anyhow;

use super::Ui;
use crate::error::{ExitStatus, Failure};
use crate::settings::Destination;
use crate::storage::s3::S3Storage;

/// List, and with `abort` abort, the open multipart uploads under the destination.
///
/// Lines (or with `json` one JSON array) go to stdout: `key upload-id initiated`.
///
/// # Errors
///
/// A usage [`Failure`] for a destination that is not `s3://`; a runtime failure (exit 3) if
/// the bucket cannot be listed or an upload cannot be aborted.
pub async fn run(
    destination: &Destination,
    abort: bool,
    json: bool,
    ui: Ui,
) -> Result<ExitStatus, Failure> {
    let Destination::S3(config) = destination else {
        return Err(Failure::usage(anyhow!(
            "`exporter uploads` needs an s3:// destination, not {destination}"
        ))
        .with_hint(Some(
            "local runs leave no uploads: an interrupted dump removes its directory",
        )));
    };
    let storage = S3Storage::connect(config.clone())
        .await
        .map_err(Failure::usage)?;
    let url = storage.config().url();
    tokio::task::spawn_blocking(move || -> Result<ExitStatus, Failure> {
        let uploads = storage.list_uploads().map_err(|e| {
            Failure::runtime(anyhow::Error::new(e).context(format!("cannot list uploads in {url}")))
        })?;
        if json {
            super::print_data(&serde_json::to_string_pretty(&uploads).expect("serializes"));
        } else {
            for u in &uploads {
                super::print_data(&format!(
                    "{}\t{}\t{}",
                    u.key,
                    u.upload_id,
                    u.initiated.as_deref().unwrap_or("-")
                ));
            }
        }
        if !abort {
            ui.info(format!(
                "{} unfinished upload(s) under {url}{}",
                uploads.len(),
                if uploads.is_empty() {
                    ""
                } else {
                    "; remove them with `exporter uploads --abort`"
                }
            ));
            return Ok(ExitStatus::Success);
        }
        let mut failed = 0;
        for u in &uploads {
            match storage.abort_upload(u) {
                Ok(()) => ui.info(format!("aborted {} ({})", u.key, u.upload_id)),
                Err(e) => {
                    failed += 1;
                    ui.problem(format!("FAILED to abort {}: {e}", u.key));
                }
            }
        }
        if failed > 0 {
            return Err(Failure::runtime(anyhow!(
                "{failed} of {} upload(s) could not be aborted",
                uploads.len()
            )));
        }
        ui.info(format!("aborted {} upload(s) under {url}", uploads.len()));
        Ok(ExitStatus::Success)
    })
    .await
    .map_err(|e| Failure::runtime(anyhow::Error::new(e)))?
}
