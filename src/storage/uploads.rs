//! Unfinished S3 multipart uploads under a destination: neither completed nor aborted (an
//! interrupted process leaves them; S3 bills their parts until a lifecycle rule or an abort
//! removes them). `exporter uploads` lists them and, with `--abort`, aborts the old ones.
//!
//! Completed objects are never touched: an open upload is invisible under its key, and
//! aborting it only discards its parts.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::s3::{OpenUpload, S3Storage};

/// Why the uploads could not be listed or aborted.
#[derive(Debug, thiserror::Error)]
pub enum UploadsError {
    /// The uploads cannot be listed.
    #[error("cannot list uploads in {url}")]
    List {
        /// The destination.
        url: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Some uploads could not be aborted.
    #[error("{failed} of {total} upload(s) could not be aborted")]
    Abort {
        /// How many failed.
        failed: usize,
        /// How many were to be aborted.
        total: usize,
    },
}

/// The open uploads under the destination, oldest first (blocking).
///
/// # Errors
///
/// [`UploadsError::List`] naming the destination.
pub fn list(storage: &S3Storage) -> Result<Vec<OpenUpload>, UploadsError> {
    storage.list_uploads().map_err(|source| UploadsError::List {
        url: storage.config().url(),
        source,
    })
}

/// Split uploads into those started at least `older_than` before `now` (to abort) and the
/// recent ones or those of unknown age (kept: a dump still running into the same prefix has
/// an upload open too). `older_than` zero takes them all.
#[must_use]
pub fn split_by_age(
    uploads: Vec<OpenUpload>,
    older_than: Duration,
    now: DateTime<Utc>,
) -> (Vec<OpenUpload>, Vec<OpenUpload>) {
    uploads.into_iter().partition(|u| {
        older_than.is_zero()
            || u.initiated
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .and_then(|t| (now - t.with_timezone(&Utc)).to_std().ok())
                .is_some_and(|age| age >= older_than)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(key: &str, initiated: Option<&str>) -> OpenUpload {
        OpenUpload {
            key: key.into(),
            upload_id: format!("id-{key}"),
            initiated: initiated.map(str::to_owned),
        }
    }

    #[test]
    fn recent_and_undated_uploads_are_kept() {
        let now: DateTime<Utc> = "2026-11-29T12:00:00Z".parse().unwrap();
        let all = vec![
            upload("old", Some("2026-11-29T09:00:00Z")),
            upload("recent", Some("2026-11-29T11:30:00Z")),
            upload("undated", None),
        ];
        let (old, kept) = split_by_age(all.clone(), Duration::from_secs(3600), now);
        assert_eq!(old, vec![all[0].clone()]);
        assert_eq!(kept, vec![all[1].clone(), all[2].clone()]);
        let (old, kept) = split_by_age(all.clone(), Duration::ZERO, now);
        assert_eq!((old.len(), kept.len()), (3, 0));
    }
}
