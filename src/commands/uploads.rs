//! `exporter uploads`: list the multipart uploads under an S3 destination that were neither
//! completed nor aborted (an interrupted process leaves them; S3 bills their parts until a
//! lifecycle rule or an abort removes them), and with `--abort` abort them.
//!
//! Completed objects are never touched: an open upload is invisible under its key, and
//! aborting it only discards its parts.

use std::time::Duration;

use anyhow::anyhow;
use chrono::{DateTime, Utc};

use super::Ui;
use crate::error::{ExitStatus, Failure};
use crate::settings::Destination;
use crate::storage::s3::{OpenUpload, S3Storage};

/// `3600 s` as `1h`, `90 s` as `90s`: the age as the user would write it.
fn humantime_short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s.is_multiple_of(86_400) && s > 0 => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) && s > 0 => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) && s > 0 => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

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
    older_than: Duration,
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
        // A dump still running into this prefix has an upload open too: leave recent ones.
        let now = Utc::now();
        let (old, recent): (Vec<&OpenUpload>, Vec<&OpenUpload>) = uploads.iter().partition(|u| {
            older_than.is_zero()
                || u.initiated
                    .as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .and_then(|t| (now - t.with_timezone(&Utc)).to_std().ok())
                    .is_some_and(|age| age >= older_than)
        });
        for u in &recent {
            ui.info(format!(
                "kept {} ({}): started less than {} ago or at an unknown time (a dump may \
                 still be writing it; --older-than 0 aborts it anyway)",
                u.key,
                u.upload_id,
                humantime_short(older_than)
            ));
        }
        let uploads = old;
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
