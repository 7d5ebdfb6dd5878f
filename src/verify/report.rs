//! [`VerifyReport`]: the result of a verification as a value, and the `verify.json` record
//! written next to the manifest (FORMAT.md, "verify.json"; the serialized form is that file's
//! format). The teardown gate reads it back to decide whether a database's archive was proven
//! recently enough, at a deep enough level.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Level;

/// The outcome of one verification of a run (`verify.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// The run verified.
    pub run_id: String,
    /// How deep every archive was checked.
    pub level: Level,
    /// When the verification finished.
    pub verified_at: DateTime<Utc>,
    /// The verifying tool's version.
    pub tool_version: String,
    /// SHA-256 of the `manifest.json` that was verified (64 lowercase hex digits), so that a
    /// manifest changed afterwards is detected (the teardown gate compares it). Absent when
    /// the manifest could not be read, and in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
    /// Whether everything passed: no run-level problem and every database ok.
    pub ok: bool,
    /// Per database of the manifest, in manifest order.
    pub databases: Vec<DatabaseOutcome>,
    /// Run-level problems (manifest, `SHA256SUMS`, extra files).
    pub problems: Vec<String>,
}

/// Per-database outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseOutcome {
    /// Database name (the manifest entry's).
    pub name: String,
    /// Archive file, if the manifest names one.
    pub file: Option<String>,
    /// Whether every check passed.
    pub ok: bool,
    /// What failed, one line each.
    pub problems: Vec<String>,
    /// Level `restore` only: what the scratch restore did (absent when it did not start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreCheck>,
    /// The manifest marks the database `skipped` (deliberately not exported, e.g. a MongoDB
    /// database of a platform environment): there is no archive, nothing was checked, and it
    /// does not count as verified. `ok` stays true (the run is not at fault).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

/// What the scratch restore of one database did at level `restore` (FORMAT.md, `verify.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreCheck {
    /// The scratch database's name (Redis: the scratch server, flushed afterwards).
    pub scratch: String,
    /// Statements (Redis: commands) the restore executed.
    pub statements: u64,
    /// Rows (Redis: keys) the restore loaded.
    pub rows_restored: u64,
    /// Tables (Redis: logical databases) of the manifest compared with the restore.
    pub tables: u64,
    /// Rows (keys) of the manifest's tables whose counts and fingerprints were compared.
    pub rows_compared: u64,
    /// Wall time of create, restore, fingerprint and drop, in milliseconds; time spent
    /// waiting for another archive's restore or fingerprint pass to end (archives checked
    /// at once, `verify/overlap.rs`) is not counted.
    pub millis: u64,
    /// Whether the scratch database was dropped afterwards; `false` means it is left behind
    /// (the warning printed by `verify` names it).
    pub dropped: bool,
}

/// One database's verdict, with the level and time of the verification it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict<'a> {
    /// The level of the whole verification.
    pub level: Level,
    /// When it finished.
    pub verified_at: DateTime<Utc>,
    /// The database's outcome.
    pub outcome: &'a DatabaseOutcome,
}

impl Verdict<'_> {
    /// Whether the archive passed at `level` or deeper.
    #[must_use]
    pub fn passed_at(&self, level: Level) -> bool {
        self.outcome.ok && self.level >= level
    }
}

impl VerifyReport {
    /// A report with no findings yet.
    #[must_use]
    pub fn new(run_id: &str, level: Level) -> Self {
        Self {
            run_id: run_id.to_owned(),
            level,
            verified_at: Utc::now(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            manifest_sha256: None,
            ok: false,
            databases: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Recompute `ok` and stamp the time, after the last finding.
    pub fn finish(&mut self) {
        self.ok = self.problems.is_empty() && self.databases.iter().all(|d| d.ok);
        self.verified_at = Utc::now();
    }

    /// The verdict on database `name`, if the report has one.
    #[must_use]
    pub fn verdict(&self, name: &str) -> Option<Verdict<'_>> {
        self.databases
            .iter()
            .find(|d| d.name == name)
            .map(|outcome| Verdict {
                level: self.level,
                verified_at: self.verified_at,
                outcome,
            })
    }

    /// How many databases failed a check.
    #[must_use]
    pub fn bad(&self) -> usize {
        self.databases.iter().filter(|d| !d.ok).count()
    }

    /// The record as written to `verify.json`: pretty JSON and a trailing newline.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("a report serializes");
        v.push(b'\n');
        v
    }

    /// Read a `verify.json` record.
    ///
    /// # Errors
    ///
    /// The JSON error when it is not one.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_keeps_its_file_format() {
        let text = r#"{
  "run_id": "20261129T074800Z",
  "level": "restore",
  "verified_at": "2026-11-29T08:00:00Z",
  "tool_version": "0.1.0",
  "ok": false,
  "databases": [
    {
      "name": "billing",
      "file": "billing.sql.zst",
      "ok": true,
      "problems": [],
      "restore": {
        "scratch": "exporter_verify_20261129t074800z_billing",
        "statements": 12,
        "rows_restored": 3,
        "tables": 1,
        "rows_compared": 3,
        "millis": 250,
        "dropped": true
      }
    },
    {
      "name": "cache",
      "file": null,
      "ok": false,
      "problems": [
        "database cache was not dumped in this run: refused"
      ]
    }
  ],
  "problems": []
}
"#;
        let report = VerifyReport::from_json(text.as_bytes()).unwrap();
        assert_eq!(report.level, Level::Restore);
        assert_eq!(String::from_utf8(report.to_json()).unwrap(), text);
        let billing = report.verdict("billing").unwrap();
        assert!(billing.passed_at(Level::Restore) && billing.passed_at(Level::Checksum));
        assert!(!report.verdict("cache").unwrap().passed_at(Level::Checksum));
        assert!(report.verdict("nosuch").is_none());
        assert_eq!(report.bad(), 1);
    }
}
