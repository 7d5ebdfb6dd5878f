//! The archive run: its layout, manifest, checksum list and verification record.
//!
//! See `FORMAT.md` at the repository root for the normative description.

pub mod check;
pub mod manifest;
pub mod partial;
pub mod sums;

pub use manifest::{DatabaseEntry, DatabaseStatus, Manifest, RunStatus};

use chrono::{DateTime, Utc};

/// File name of the manifest, the run's commit marker, written last.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the checksum list in `sha256sum -c` format.
pub const SUMS_FILE: &str = "SHA256SUMS";
/// File name of the latest verification record.
pub const VERIFY_FILE: &str = "verify.json";
/// File name of the teardown's journal, next to the run that covers the environment
/// (FORMAT.md, "Teardown files").
pub const JOURNAL_FILE: &str = "teardown-journal.json";
/// File name of the teardown's evidence report in Markdown.
pub const REPORT_MD_FILE: &str = "teardown-report.md";
/// File name of the teardown's evidence report in JSON.
pub const REPORT_JSON_FILE: &str = "teardown-report.json";
/// Files of a run that are neither archives nor its manifest or `SHA256SUMS`: records written
/// after the dump (verification, teardown), replaced rather than written once.
pub const RECORD_FILES: &[&str] = &[VERIFY_FILE, JOURNAL_FILE, REPORT_MD_FILE, REPORT_JSON_FILE];

/// The run id for a start time: a UTC timestamp `YYYYMMDDTHHMMSSZ` that sorts by time.
#[must_use]
pub fn run_id(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Whether `name` looks like a run id this tool made (`YYYYMMDDTHHMMSSZ`, optionally `-N`).
#[must_use]
pub fn is_run_id(name: &str) -> bool {
    let (stamp, suffix) = match name.split_once('-') {
        Some((s, n)) => (s, Some(n)),
        None => (name, None),
    };
    let b = stamp.as_bytes();
    let stamp_ok = b.len() == 16
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z';
    stamp_ok && suffix.is_none_or(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// Sort key for run ids: the timestamp, then the numeric collision suffix.
#[must_use]
pub fn run_sort_key(name: &str) -> (String, u64) {
    match name.split_once('-') {
        Some((s, n)) => (s.to_owned(), n.parse().unwrap_or(0)),
        None => (name.to_owned(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn run_ids_sort_by_time() {
        let a = run_id(Utc.with_ymd_and_hms(2026, 11, 29, 7, 48, 0).unwrap());
        assert_eq!(a, "20261129T074800Z");
        assert!(is_run_id(&a));
        assert!(is_run_id("20261129T074800Z-2"));
        assert!(!is_run_id("20261129T074800"));
        assert!(!is_run_id("notes"));
        assert!(run_sort_key("20261129T074800Z-10") > run_sort_key("20261129T074800Z-2"));
        assert!(run_sort_key("20261129T074800Z-2") > run_sort_key("20261129T074800Z"));
    }
}
