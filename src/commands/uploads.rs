//! `exporter uploads`: list the unfinished multipart uploads under an S3 destination
//! ([`storage::uploads`]), and with `--abort` abort those older than `--older-than`.

use std::time::Duration;

use chrono::Utc;

use crate::blocking;
use crate::cleanup::Cleanup;
use crate::output::Ui;
use crate::settings::UploadsPlan;
use crate::storage::OpenError;
use crate::storage::s3::S3Storage;
use crate::storage::uploads::{self, UploadsError};

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

/// List, and with `--abort` abort, the open multipart uploads under the destination. Lines
/// (or with `json` one JSON array) go to stdout: `key upload-id initiated`.
///
/// # Errors
///
/// [`OpenError`] for an incomplete S3 configuration; [`UploadsError`] if the bucket cannot be
/// listed or an upload cannot be aborted.
pub async fn run(plan: &UploadsPlan, json: bool, ui: Ui, cleanup: &Cleanup) -> anyhow::Result<()> {
    let storage = S3Storage::connect(plan.destination.clone(), cleanup.clone())
        .await
        .map_err(OpenError::S3Config)?;
    let (abort, older_than) = (plan.abort, plan.older_than);
    blocking::run("listing the uploads", move || {
        sweep(&storage, abort, older_than, json, ui)
    })
    .await??;
    Ok(())
}

/// The blocking part of [`run`].
fn sweep(
    storage: &S3Storage,
    abort: bool,
    older_than: Duration,
    json: bool,
    ui: Ui,
) -> Result<(), UploadsError> {
    let url = storage.config().url();
    let open = uploads::list(storage)?;
    if json {
        ui.data(serde_json::to_string_pretty(&open).expect("serializes"));
    } else {
        for u in &open {
            ui.data(format!(
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
            open.len(),
            if open.is_empty() {
                ""
            } else {
                "; remove them with `exporter uploads --abort`"
            }
        ));
        return Ok(());
    }
    // A dump still running into this prefix has an upload open too: leave recent ones.
    let (old, recent) = uploads::split_by_age(open, older_than, Utc::now());
    for u in &recent {
        ui.info(format!(
            "kept {} ({}): started less than {} ago or at an unknown time (a dump may \
             still be writing it; --older-than 0 aborts it anyway)",
            u.key,
            u.upload_id,
            humantime_short(older_than)
        ));
    }
    let mut failed = 0;
    for u in &old {
        match storage.abort_upload(u) {
            Ok(()) => ui.info(format!("aborted {} ({})", u.key, u.upload_id)),
            Err(e) => {
                failed += 1;
                ui.problem(format!("FAILED to abort {}: {e}", u.key));
            }
        }
    }
    if failed > 0 {
        return Err(UploadsError::Abort {
            failed,
            total: old.len(),
        });
    }
    ui.info(format!("aborted {} upload(s) under {url}", old.len()));
    Ok(())
}
