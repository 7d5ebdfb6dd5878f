//! `manifest.json`, the run's commit marker. (`verify.json`, the last verification, is
//! [`crate::verify::VerifyReport`].)

use chrono::{DateTime, Utc};
use exporter_contract::{Consistency, PayloadFormat, TableSummary, TlsInfo};
use serde::{Deserialize, Serialize};

/// Value of the `format` field.
pub const FORMAT_NAME: &str = "exporter-archive";
/// The manifest format version written by this build. Readers refuse other major versions.
/// 1.1: fingerprints by column name (`fingerprint_algorithm` changed; FORMAT.md, "Changes").
pub const FORMAT_VERSION: &str = "1.1";
/// The major version this build reads.
pub const FORMAT_MAJOR: u64 = 1;

/// Whether every database of the run was dumped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every database has an archive.
    Complete,
    /// At least one database failed; see its entry.
    Partial,
}

/// Outcome for one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseStatus {
    /// The archive is complete: the producer reported completion and the file was committed.
    Ok,
    /// No archive: see `error`.
    Failed,
    /// Deliberately not exported (`dump --all --skip-unsupported` on a platform database this
    /// tool cannot dump, e.g. MongoDB): no archive, `error` says why. A run with skipped
    /// entries is complete; `teardown` treats them as unexported unless the user accepts it.
    Skipped,
}

impl DatabaseStatus {
    /// Whether the entry has an archive of its own (`ok`).
    #[must_use]
    pub fn has_archive(self) -> bool {
        self == Self::Ok
    }
}

/// The tool that wrote a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// Always `exporter`.
    pub name: String,
    /// The crate version.
    pub version: String,
}

impl Tool {
    /// This build.
    #[must_use]
    pub fn current() -> Self {
        Self {
            name: "exporter".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Where the inventory came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `config` or `urls` (later: `aptible`).
    pub kind: String,
    /// Platform environment handle, when dumped from a platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// One database of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseEntry {
    /// Payload file stem (unique in the run).
    pub name: String,
    /// Engine name (`postgresql`, …).
    pub engine: String,
    /// The redacted connection URL (never a password).
    pub endpoint: String,
    /// Outcome.
    pub status: DatabaseStatus,
    /// Why it failed (redacted), for `failed` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The server's version string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// The archive file, relative to the run directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Payload format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<PayloadFormat>,
    /// Size of the stored file in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressed_bytes: Option<u64>,
    /// Size of the payload before compression in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncompressed_bytes: Option<u64>,
    /// SHA-256 of the stored bytes, 64 lowercase hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Number of zstd frames in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zstd_frames: Option<u64>,
    /// zstd level used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_level: Option<i32>,
    /// Consistency achieved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<Consistency>,
    /// Version of the payload's inner encoding that constrains the restore target (Redis:
    /// `rdb 10` needs Redis 7.0 or later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_version: Option<String>,
    /// When the dump of this database started.
    pub started_at: DateTime<Utc>,
    /// When it finished (or failed).
    pub finished_at: DateTime<Utc>,
    /// Per table: row count and fingerprint.
    #[serde(default)]
    pub tables: Vec<TableSummary>,
    /// Reduced-fidelity notes the user opted into.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Transport security of the dump's connection: the mode asked for, whether it was
    /// encrypted, what was verified, the protocol and the server certificate's SHA-256.
    /// Absent in manifests written before it existed (format 1.0 readers ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// The platform database this entry came from, for runs dumped from a platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformDatabase>,
}

/// Which platform database an entry is the archive of, and how it was read (design.md
/// section 7; the teardown matches live databases to archives by `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformDatabase {
    /// The platform: `aptible`.
    pub platform: String,
    /// The environment's handle.
    pub environment: String,
    /// The environment's id on the platform.
    pub environment_id: u64,
    /// The database's id on the platform (of the original database, also when its data was
    /// read from a backup restored into a new database).
    pub id: u64,
    /// The database's handle.
    pub handle: String,
    /// The platform's database type (`postgresql`, `mysql`, `redis`, `mongodb`, …).
    #[serde(rename = "type")]
    pub database_type: String,
    /// The platform's version of the database image, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `live` (read through a tunnel to the database itself) or `backup` (read from a backup
    /// restored into a new database).
    pub origin: PlatformOrigin,
    /// The backup read, for `origin: backup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<PlatformBackup>,
    /// The database the backup was restored into, for `origin: backup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_into: Option<RestoredDatabase>,
    /// The credential type the tunnel used (`postgresql`, `redis+ssl`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_type: Option<String>,
}

/// How a platform database's data was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformOrigin {
    /// From the live database, through a tunnel.
    Live,
    /// From a backup, restored into a new database first (the cancellation guide's step 1).
    Backup,
}

/// A platform backup, as recorded in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformBackup {
    /// The backup's id.
    pub id: u64,
    /// When the platform took it.
    pub created_at: DateTime<Utc>,
    /// Whether it was a manual backup.
    #[serde(default)]
    pub manual: bool,
}

/// The new database a backup was restored into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredDatabase {
    /// Its id.
    pub id: u64,
    /// Its handle.
    pub handle: String,
    /// Whether it was left in place (`--keep-restored`) instead of deprovisioned after the
    /// dump.
    pub kept: bool,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// `MAJOR.MINOR`; see [`FORMAT_VERSION`].
    pub format_version: String,
    /// The tool that wrote the run.
    pub tool: Tool,
    /// The run id (the directory name).
    pub run_id: String,
    /// Run start.
    pub started_at: DateTime<Utc>,
    /// Run end (the manifest is written right after).
    pub finished_at: DateTime<Utc>,
    /// Complete or partial.
    pub status: RunStatus,
    /// Inventory origin.
    pub source: SourceInfo,
    /// How table fingerprints are computed.
    pub fingerprint_algorithm: String,
    /// One entry per database, in inventory order.
    pub databases: Vec<DatabaseEntry>,
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or not the expected shape.
    #[error("manifest.json does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    /// Another kind of file.
    #[error("manifest.json has format {0:?}, expected {FORMAT_NAME:?}")]
    Format(String),
    /// A major version this build cannot read.
    #[error("manifest.json has format version {0}, this build reads {FORMAT_MAJOR}.x")]
    Version(String),
}

impl Manifest {
    /// Parse and check the format and major version.
    ///
    /// # Errors
    ///
    /// [`ManifestError`] for bad JSON, a foreign format or an unknown major version.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        let m: Self = serde_json::from_slice(bytes)?;
        if m.format != FORMAT_NAME {
            return Err(ManifestError::Format(m.format));
        }
        let major = m
            .format_version
            .split('.')
            .next()
            .and_then(|s| s.parse::<u64>().ok());
        if major != Some(FORMAT_MAJOR) {
            return Err(ManifestError::Version(m.format_version));
        }
        Ok(m)
    }

    /// Pretty JSON with a trailing newline.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("manifest serializes");
        v.push(b'\n');
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let t = "2026-11-29T07:48:00Z".parse().unwrap();
        Manifest {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION.into(),
            tool: Tool::current(),
            run_id: "20261129T074800Z".into(),
            started_at: t,
            finished_at: t,
            status: RunStatus::Complete,
            source: SourceInfo {
                kind: "config".into(),
                environment: None,
            },
            fingerprint_algorithm: exporter_contract::FINGERPRINT_ALGORITHM.into(),
            databases: vec![],
        }
    }

    #[test]
    fn round_trips_and_checks_version() {
        let m = sample();
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);
        let mut v2 = sample();
        v2.format_version = "2.0".into();
        let err = Manifest::from_json(&v2.to_json()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "manifest.json has format version 2.0, this build reads 1.x"
        );
        assert!(matches!(
            Manifest::from_json(b"{not json"),
            Err(ManifestError::Parse(_))
        ));
    }
}
