//! One archive of a run: what the manifest says about it ([`ArchiveRef`]), opening it
//! ([`open_archive`]), and comparing what reading it back found ([`FileFacts`]) with the
//! manifest — the one comparison `verify`, `restore --clean`'s check and the restore stream
//! share.

use std::io::{self, Read};

use exporter_contract::PayloadFormat;

use super::ResolvedRun;
use crate::archive::DatabaseEntry;
use crate::archive::check::{self, Decoded, FileFacts};
use crate::progress::{Meter, MeteredReader};

/// Why an archive cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The stored object is not what the manifest describes (length, SHA-256, a zstd frame,
    /// frame count or payload length), or the manifest entry is unusable. One line per finding.
    #[error("archive {file} is corrupt: {}", problems.join("; "))]
    Corrupt {
        /// The archive file.
        file: String,
        /// What differs.
        problems: Vec<String>,
    },
    /// The manifest names a file that storage does not have.
    #[error("archive {file} is listed in the manifest but missing from storage")]
    Missing {
        /// The archive file.
        file: String,
    },
    /// Storage could not be read.
    #[error("cannot read archive {file}: {error}")]
    Storage {
        /// The archive file.
        file: String,
        /// The I/O error (shown inline: it is the message's subject).
        error: io::Error,
    },
}

/// What the manifest says about one stored archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRef {
    /// The file, a plain name inside the run.
    pub file: String,
    /// The payload format, when recorded.
    pub format: Option<PayloadFormat>,
    /// Stored bytes.
    pub bytes: u64,
    /// SHA-256 of the stored bytes, lowercase hex.
    pub sha256: String,
    /// zstd frames, when recorded.
    pub frames: Option<u64>,
    /// Payload bytes, when recorded.
    pub uncompressed: Option<u64>,
}

impl ArchiveRef {
    /// The archive of a manifest entry.
    ///
    /// # Errors
    ///
    /// [`ArchiveError::Corrupt`] for an entry without file, SHA-256 or size, or whose file is
    /// not a plain name of the run (see [`check_file_name`]).
    pub fn from_entry(entry: &DatabaseEntry) -> Result<Self, ArchiveError> {
        let (Some(file), Some(sha256), Some(bytes)) =
            (&entry.file, &entry.sha256, entry.compressed_bytes)
        else {
            return Err(ArchiveError::Corrupt {
                file: entry.file.clone().unwrap_or_else(|| entry.name.clone()),
                problems: vec![format!(
                    "manifest entry {} lacks file, sha256 or size",
                    entry.name
                )],
            });
        };
        check_file_name(file)?;
        Ok(Self {
            file: file.clone(),
            format: entry.format,
            bytes,
            sha256: sha256.to_ascii_lowercase(),
            frames: entry.zstd_frames,
            uncompressed: entry.uncompressed_bytes,
        })
    }

    /// Compare what reading the stored object back found with the manifest: one line per
    /// difference (length, SHA-256, then — when the frames were decoded — a frame that does
    /// not decode or a truncation, frame count, payload length). Empty means intact.
    #[must_use]
    pub fn compare(&self, facts: &FileFacts) -> Vec<String> {
        let mut problems = Vec::new();
        if facts.bytes != self.bytes {
            problems.push(format!(
                "length {} bytes, manifest says {}",
                facts.bytes, self.bytes
            ));
        }
        if facts.sha256 != self.sha256 {
            problems.push(format!(
                "sha256 {}, manifest says {}",
                facts.sha256, self.sha256
            ));
        }
        match &facts.decoded {
            None => {}
            Some(Err(e)) => problems.push(e.clone()),
            Some(Ok(Decoded {
                frames,
                uncompressed,
            })) => {
                if let Some(expected) = self.frames
                    && *frames != expected
                {
                    problems.push(format!("{frames} zstd frame(s), manifest says {expected}"));
                }
                if let Some(expected) = self.uncompressed
                    && *uncompressed != expected
                {
                    problems.push(format!(
                        "decompresses to {uncompressed} bytes, manifest says {expected}"
                    ));
                }
            }
        }
        problems
    }

    /// Read the stored object once — hashing it and, with `decompress`, decoding every zstd
    /// frame — and compare it with the manifest (blocking).
    ///
    /// # Errors
    ///
    /// [`ArchiveError::Corrupt`] on a difference, [`ArchiveError::Missing`] or
    /// [`ArchiveError::Storage`] when it cannot be read.
    pub fn check(&self, run: &ResolvedRun, decompress: bool) -> Result<(), ArchiveError> {
        self.check_metered(run, decompress, &Meter::default())
    }

    /// [`ArchiveRef::check`], counting the stored bytes read on `read` (for progress).
    ///
    /// # Errors
    ///
    /// As [`ArchiveRef::check`].
    pub fn check_metered(
        &self,
        run: &ResolvedRun,
        decompress: bool,
        read: &Meter,
    ) -> Result<(), ArchiveError> {
        let reader = MeteredReader::new(self.open(run)?, read.clone());
        let facts = check::scan(reader, decompress).map_err(|error| ArchiveError::Storage {
            file: self.file.clone(),
            error,
        })?;
        let problems = self.compare(&facts);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ArchiveError::Corrupt {
                file: self.file.clone(),
                problems,
            })
        }
    }

    /// Open the stored object for reading (blocking).
    ///
    /// # Errors
    ///
    /// [`ArchiveError::Missing`] if storage does not have it, [`ArchiveError::Storage`] for
    /// other errors.
    pub fn open(&self, run: &ResolvedRun) -> Result<Box<dyn Read + Send>, ArchiveError> {
        run.storage
            .open_object(&run.id, &self.file)
            .map_err(|error| match error.kind() {
                io::ErrorKind::NotFound => ArchiveError::Missing {
                    file: self.file.clone(),
                },
                _ => ArchiveError::Storage {
                    file: self.file.clone(),
                    error,
                },
            })
    }
}

/// A manifest's `file` must name an object of the run itself: a plain name of
/// `[A-Za-z0-9._-]` not starting with `.` (what `dump` writes). A manifest edited to say
/// `../x` or `/etc/passwd` is refused rather than followed out of the run.
///
/// # Errors
///
/// [`ArchiveError::Corrupt`] naming the file.
pub fn check_file_name(file: &str) -> Result<(), ArchiveError> {
    let plain = !file.is_empty()
        && file.len() <= 255
        && !file.starts_with('.')
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if plain {
        Ok(())
    } else {
        Err(ArchiveError::Corrupt {
            file: file.to_owned(),
            problems: vec![format!(
                "the manifest names file {file:?}, which is not a plain file name of the run"
            )],
        })
    }
}

/// An archive opened for reading, with what the manifest says about it.
pub struct OpenArchive {
    /// The stored bytes.
    pub reader: Box<dyn Read + Send>,
    /// The manifest's facts.
    pub expected: ArchiveRef,
    /// The payload format.
    pub format: PayloadFormat,
}

impl std::fmt::Debug for OpenArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenArchive")
            .field("expected", &self.expected)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Open the archive of a manifest entry for a restore (blocking).
///
/// # Errors
///
/// [`ArchiveError::Corrupt`] for an entry without file, format, size or SHA-256,
/// [`ArchiveError::Missing`] if storage does not have the file, [`ArchiveError::Storage`] for
/// other read errors.
pub fn open_archive(run: &ResolvedRun, entry: &DatabaseEntry) -> Result<OpenArchive, ArchiveError> {
    let expected = ArchiveRef::from_entry(entry)?;
    let Some(format) = expected.format else {
        return Err(ArchiveError::Corrupt {
            file: expected.file,
            problems: vec![format!("manifest entry {} lacks its format", entry.name)],
        });
    };
    let reader = expected.open(run)?;
    Ok(OpenArchive {
        reader,
        expected,
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> ArchiveRef {
        ArchiveRef {
            file: "x.sql.zst".into(),
            format: Some(PayloadFormat::Sql),
            bytes: 10,
            sha256: "ab".into(),
            frames: Some(1),
            uncompressed: Some(100),
        }
    }

    #[test]
    fn comparison_names_each_difference() {
        let r = reference();
        let same = FileFacts {
            bytes: 10,
            sha256: "ab".into(),
            decoded: Some(Ok(Decoded {
                frames: 1,
                uncompressed: 100,
            })),
        };
        assert!(r.compare(&same).is_empty());
        let other = FileFacts {
            bytes: 11,
            sha256: "cd".into(),
            decoded: Some(Ok(Decoded {
                frames: 2,
                uncompressed: 90,
            })),
        };
        assert_eq!(
            r.compare(&other),
            vec![
                "length 11 bytes, manifest says 10".to_owned(),
                "sha256 cd, manifest says ab".to_owned(),
                "2 zstd frame(s), manifest says 1".to_owned(),
                "decompresses to 90 bytes, manifest says 100".to_owned(),
            ]
        );
        let truncated = FileFacts {
            decoded: Some(Err("zstd data ends inside frame 1 (truncated)".into())),
            ..same
        };
        assert_eq!(
            r.compare(&truncated),
            vec!["zstd data ends inside frame 1 (truncated)".to_owned()]
        );
    }

    #[test]
    fn file_names_must_stay_inside_the_run() {
        assert!(check_file_name("billing.sql.zst").is_ok());
        for bad in ["../x", "/etc/passwd", ".hidden", "", "a b"] {
            let e = check_file_name(bad).unwrap_err();
            assert!(
                e.to_string().contains("not a plain file name of the run"),
                "{bad}: {e}"
            );
        }
    }
}
