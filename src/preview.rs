//! Saved previews: `teardown preview PLAN --save FILE` writes what each step resolved;
//! `teardown apply FILE` deletes exactly those resources, in the plan's order, and nothing that
//! appeared since. Like `terraform plan -out` then `terraform apply`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::RunSummary;
use crate::journal::RunHeader;
use crate::resource::{OutcomeKind, Resource};

/// The format version written; a file of another version is refused.
pub const FORMAT_VERSION: u32 = 1;

/// What a preview resolved, to be applied later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPreview {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// The plan, variables, phases, account and region of the preview.
    pub run: RunHeader,
    /// Per step id, the resources it would change.
    pub steps: BTreeMap<String, Vec<Resource>>,
    /// A digest of everything above, to refuse a file edited by hand.
    pub digest: String,
}

/// Why a saved preview cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a preview, or it was edited, or it does not fit its own plan.
    #[error("{path} cannot be applied: {reason}; make a new one with `teardown preview PLAN --save {path}`")]
    Inconsistent {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// FNV-1a, 64 bits: a digest to notice edits, not a signature against an attacker (who could
/// recompute it); the account and region checks and the plan's own guard still apply.
fn digest(run: &RunHeader, steps: &BTreeMap<String, Vec<Resource>>) -> String {
    let text = serde_json::to_string(&(run, steps)).expect("serializable");
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    format!("fnv1a64:{hash:016x}")
}

impl SavedPreview {
    /// The preview of a finished dry run.
    pub fn from_run(run: RunHeader, summary: &RunSummary) -> SavedPreview {
        let steps: BTreeMap<String, Vec<Resource>> = summary
            .steps
            .iter()
            .map(|step| {
                let resources = step
                    .output
                    .iter()
                    .flat_map(|o| &o.resources)
                    .filter(|r| r.outcome == OutcomeKind::Planned)
                    .map(|r| r.resource.clone())
                    .collect();
                (step.id.clone(), resources)
            })
            .collect();
        let digest = digest(&run, &steps);
        SavedPreview {
            version: FORMAT_VERSION,
            run,
            steps,
            digest,
        }
    }

    /// Writes it as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), PreviewError> {
        let text = serde_json::to_string_pretty(self).expect("serializable");
        std::fs::write(path, text).map_err(|source| PreviewError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads one and checks that it is whole and unedited.
    pub fn load(path: &Path) -> Result<SavedPreview, PreviewError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PreviewError::Io {
            path: shown.clone(),
            source,
        })?;
        let inconsistent = |reason: String| PreviewError::Inconsistent {
            path: shown.clone(),
            reason,
        };
        let preview: SavedPreview = serde_json::from_str(&text)
            .map_err(|e| inconsistent(format!("it is not a saved preview ({e})")))?;
        if preview.version != FORMAT_VERSION {
            return Err(inconsistent(format!(
                "it is format version {}, this teardown reads version {FORMAT_VERSION}",
                preview.version
            )));
        }
        if digest(&preview.run, &preview.steps) != preview.digest {
            return Err(inconsistent(
                "its content does not match its digest: it was edited after it was saved".into(),
            ));
        }
        Ok(preview)
    }

    /// The ids each step may change.
    pub fn allowed(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.steps
            .iter()
            .map(|(step, resources)| {
                (
                    step.clone(),
                    resources.iter().map(|r| r.id.clone()).collect(),
                )
            })
            .collect()
    }

    /// How many resources it would change.
    pub fn resource_count(&self) -> usize {
        self.steps.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SavedPreview {
        let run = RunHeader {
            run_id: "r".into(),
            plan_path: "p.toml".into(),
            plan_text: "name = \"p\"".into(),
            vars: vec![],
            only: vec![],
            skip: vec![],
            assume_done: false,
            account: "123456789012".into(),
            region: "us-west-2".into(),
            looked_up: Default::default(),
        };
        let steps = BTreeMap::from([(
            "delete-repo".to_string(),
            vec![Resource::new(
                "ECR repository",
                "arn:repo",
                "repo",
                "name is \"repo\"",
            )],
        )]);
        let digest = digest(&run, &steps);
        SavedPreview {
            version: FORMAT_VERSION,
            run,
            steps,
            digest,
        }
    }

    #[test]
    fn a_saved_preview_reads_back_and_an_edit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("preview.json");
        sample().save(&path).unwrap();
        assert_eq!(SavedPreview::load(&path).unwrap(), sample());
        let edited = std::fs::read_to_string(&path)
            .unwrap()
            .replace("arn:repo", "arn:someone-elses-repo");
        std::fs::write(&path, edited).unwrap();
        let err = SavedPreview::load(&path).unwrap_err().to_string();
        assert!(err.contains("edited after it was saved"), "{err}");
    }
}
