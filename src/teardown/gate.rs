//! The gate as a type (issue 14; conventions: "make wrong orders unrepresentable", rustic's
//! `Repository<S>` typestate). A [`Gate<Unchecked>`] wraps an [`Assessment`]; the only way to a
//! [`Gate<Verified>`] is [`Gate::check`], and [`super::executor::execute`] accepts nothing
//! else. [`Verified`] has a private field, so no other module can make one.

use std::sync::Arc;

use super::coverage::Status;
use super::{Assessment, TeardownError};
use crate::archive::MANIFEST_FILE;
use crate::blocking;
use crate::run::{self, ArchiveRef, ResolvedRun};
use crate::storage::Storage;

/// The state of a gate that was not checked.
#[derive(Debug)]
pub struct Unchecked;

/// The state of a gate that passed: every database covered, the confirmation right, every
/// covering manifest unchanged since its verification. Only [`Gate::check`] makes one.
#[derive(Debug)]
pub struct Verified {
    _private: (),
}

/// An assessment on its way to the executor.
#[derive(Debug)]
pub struct Gate<S> {
    assessment: Assessment,
    _state: S,
}

impl Gate<Unchecked> {
    /// A gate over `assessment`, not checked yet.
    #[must_use]
    pub fn new(assessment: Assessment) -> Self {
        Self {
            assessment,
            _state: Unchecked,
        }
    }

    /// Check the gate: `confirmation` must be the environment's handle, exactly; the plan must
    /// have nothing missing (every database covered at the required level, recently enough,
    /// or accepted as unexported); each covering run's `manifest.json`, read again from
    /// storage now, must still have the SHA-256 its verification recorded; and each covering
    /// archive, read again in full now, must still have the length and SHA-256 its manifest
    /// records (a file deleted or damaged after its verification proves nothing). Sends
    /// nothing to the platform.
    ///
    /// # Errors
    ///
    /// [`TeardownError::Confirmation`] for another handle; [`TeardownError::Refused`] naming
    /// each gap (including a manifest changed since the plan was made);
    /// [`TeardownError::Thread`] if the reading thread fails.
    pub async fn check(self, confirmation: &str) -> Result<Gate<Verified>, TeardownError> {
        let plan = &self.assessment.plan;
        if confirmation != plan.environment {
            return Err(TeardownError::Confirmation {
                environment: plan.environment.clone(),
                typed: confirmation.to_owned(),
            });
        }
        if !plan.ready() {
            return Err(TeardownError::Refused {
                environment: plan.environment.clone(),
                gaps: plan.missing.clone(),
            });
        }
        let covering: Vec<Covering> = plan
            .coverage
            .databases
            .iter()
            .filter_map(|d| match &d.status {
                Status::Covered { archive } => Some(Covering {
                    handle: d.handle.clone(),
                    run_id: archive.run_id.clone(),
                    manifest_sha256: archive.manifest_sha256.clone(),
                    entry: archive.name.clone(),
                }),
                _ => None,
            })
            .collect();
        let storage = self.assessment.storage.clone();
        let gaps = blocking::run(
            "re-reading the covering manifests and archives",
            move || recheck(&storage, &covering),
        )
        .await?;
        if !gaps.is_empty() {
            return Err(TeardownError::Refused {
                environment: plan.environment.clone(),
                gaps,
            });
        }
        Ok(Gate {
            assessment: self.assessment,
            _state: Verified { _private: () },
        })
    }
}

impl<S> Gate<S> {
    /// The assessment behind the gate.
    #[must_use]
    pub fn assessment(&self) -> &Assessment {
        &self.assessment
    }
}

impl Gate<Verified> {
    /// The assessment, for the executor.
    pub(crate) fn into_assessment(self) -> Assessment {
        self.assessment
    }
}

/// One covering archive, as the gate re-reads it.
struct Covering {
    /// The platform database's handle.
    handle: String,
    /// The run holding the archive.
    run_id: String,
    /// The manifest's SHA-256 its verification recorded.
    manifest_sha256: String,
    /// The manifest entry's name.
    entry: String,
}

/// Each covering manifest as stored now against the hash the plan saw (and the verification
/// recorded), then the archive itself against its manifest entry (length and SHA-256, read in
/// full): a gap per manifest that changed or cannot be read, and per archive that is missing,
/// damaged or unreadable.
fn recheck(storage: &Arc<dyn Storage>, covering: &[Covering]) -> Vec<String> {
    let mut gaps = Vec::new();
    for c in covering {
        let (handle, run_id) = (&c.handle, &c.run_id);
        let run = ResolvedRun {
            storage: storage.clone(),
            id: run_id.clone(),
        };
        let manifest = match run::load_manifest_with_digest(&run) {
            Ok((manifest, digest)) if digest == c.manifest_sha256 => manifest,
            Ok(_) => {
                gaps.push(format!(
                    "{handle}: {MANIFEST_FILE} of run {run_id} changed after it was verified"
                ));
                continue;
            }
            Err(e) => {
                gaps.push(format!("{handle}: {}", e.problem()));
                continue;
            }
        };
        let Some(entry) = manifest.databases.iter().find(|d| d.name == c.entry) else {
            gaps.push(format!(
                "{handle}: {MANIFEST_FILE} of run {run_id} no longer lists {}",
                c.entry
            ));
            continue;
        };
        if let Err(e) = ArchiveRef::from_entry(entry).and_then(|a| a.check(&run, false)) {
            gaps.push(format!(
                "{handle}: {e} (run {run_id}; verified before, changed since: dump and verify again)"
            ));
        }
    }
    gaps
}
