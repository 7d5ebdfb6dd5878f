//! The gate as a type (issue 14; conventions: "make wrong orders unrepresentable", rustic's
//! `Repository<S>` typestate). A [`Gate<Unchecked>`] wraps an [`Assessment`]; the only way to a
//! [`Gate<Verified>`] is [`Gate::check`], and [`super::executor::execute`] accepts nothing
//! else. [`Verified`] has a private field, so no other module can make one.

use std::sync::Arc;

use super::coverage::Status;
use super::{Assessment, TeardownError};
use crate::archive::MANIFEST_FILE;
use crate::blocking;
use crate::run::{self, ResolvedRun};
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

    /// Check the gate: `confirmation` must be the environment's handle; the plan must have
    /// nothing missing (every database covered at the required level, recently enough, or
    /// accepted as unexported); and each covering run's `manifest.json`, read again from
    /// storage now, must still have the SHA-256 its verification recorded. Sends nothing to
    /// the platform.
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
        let covering: Vec<(String, String, String)> = plan
            .coverage
            .databases
            .iter()
            .filter_map(|d| match &d.status {
                Status::Covered { archive } => Some((
                    d.handle.clone(),
                    archive.run_id.clone(),
                    archive.manifest_sha256.clone(),
                )),
                _ => None,
            })
            .collect();
        let storage = self.assessment.storage.clone();
        let gaps = blocking::run("re-reading the covering manifests", move || {
            recheck(&storage, &covering)
        })
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

/// Each covering manifest as stored now against the hash the plan saw (and the verification
/// recorded): a gap per manifest that changed or cannot be read.
fn recheck(storage: &Arc<dyn Storage>, covering: &[(String, String, String)]) -> Vec<String> {
    let mut gaps = Vec::new();
    for (handle, run_id, expected) in covering {
        let run = ResolvedRun {
            storage: storage.clone(),
            id: run_id.clone(),
        };
        match run::load_manifest_with_digest(&run) {
            Ok((_, digest)) if digest == *expected => {}
            Ok(_) => gaps.push(format!(
                "{handle}: {MANIFEST_FILE} of run {run_id} changed after it was verified"
            )),
            Err(e) => gaps.push(format!("{handle}: {}", e.problem())),
        }
    }
    gaps
}
