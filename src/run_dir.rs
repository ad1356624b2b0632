//! A run's own directory under the runs dir: its id, and the claim that makes the directory this
//! run's alone.
//!
//! Two runs must never share a directory: its journal tells `resume` which steps are done, and a
//! journal written by two runs (the same plan started in two regions in the same second) would
//! claim steps done that were done elsewhere. So an id says when (to the microsecond), where (the
//! region) and what (the plan), and ends with a random suffix; and a directory is claimed by
//! creating it, which fails if it exists, in which case another id is drawn. An id is never
//! reused.

use std::io;
use std::path::{Path, PathBuf};

/// How many ids are drawn before giving up on claiming a directory.
const CLAIM_TRIES: usize = 16;

/// A run id: `20261122T031500.123456Z-us-west-2-workshop-1a2b3c4d` (time, region, plan, random),
/// which sorts by time.
pub fn new_run_id(plan: &str, region: &str) -> String {
    format!(
        "{}-{}-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        safe(region),
        safe(plan),
        random_suffix()
    )
}

/// True when `id` (made by [`new_run_id`]) names this region and plan; `None` for an id of an
/// older form, which named the plan only.
pub fn id_names(id: &str, region: &str, plan: &str) -> Option<bool> {
    let (stamp, rest) = id.split_once('-')?;
    if !stamp.contains('.') {
        return None;
    }
    let (middle, suffix) = rest.rsplit_once('-')?;
    if suffix.len() != 8 || !suffix.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    Some(middle == format!("{}-{}", safe(region), safe(plan)))
}

/// A directory claimed for one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    /// The run id (the directory's name).
    pub id: String,
    /// The directory.
    pub path: PathBuf,
}

/// Claims a new run directory under `runs_dir` for a run of `plan` in `region`.
pub fn claim(runs_dir: &Path, plan: &str, region: &str) -> io::Result<RunDir> {
    claim_with(runs_dir, || new_run_id(plan, region))
}

/// Claims a new run directory under `runs_dir`, drawing ids from `next_id` until one is free: the
/// directory is created here, and creation fails if it exists, so no two runs can hold one.
pub fn claim_with(runs_dir: &Path, mut next_id: impl FnMut() -> String) -> io::Result<RunDir> {
    std::fs::create_dir_all(runs_dir)?;
    for _ in 0..CLAIM_TRIES {
        let id = next_id();
        let path = runs_dir.join(&id);
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(RunDir { id, path }),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{CLAIM_TRIES} run ids in a row were taken in {}: no run directory could be claimed",
            runs_dir.display()
        ),
    ))
}

/// Keeps letters, digits, `-`, `_` and `.`; anything else (a `/` in a plan name) becomes `_`.
fn safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Eight hex digits that differ between calls and between processes: std's `RandomState` is
/// seeded from the operating system's randomness, and the pid, a counter and the clock are mixed
/// in besides.
fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    format!("{:08x}", hasher.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn run_ids_made_in_the_same_second_differ_and_name_region_and_plan() {
        let ids: BTreeSet<String> = (0..1000)
            .map(|_| new_run_id("workshop", "us-west-2"))
            .collect();
        assert_eq!(ids.len(), 1000, "ids repeat: {ids:?}");
        let west = new_run_id("workshop", "us-west-2");
        let east = new_run_id("workshop", "us-east-1");
        assert_ne!(west, east);
        assert!(west.contains("-us-west-2-workshop-"), "{west}");
        assert_eq!(id_names(&west, "us-west-2", "workshop"), Some(true));
        assert_eq!(id_names(&west, "us-east-1", "workshop"), Some(false));
        assert_eq!(id_names(&west, "us-west-2", "other"), Some(false));
        // The old form named the plan only: nothing to check against.
        assert_eq!(
            id_names("20261122T031500Z-workshop", "us-west-2", "workshop"),
            None
        );
        assert!(!new_run_id("a/b", "r").contains('/'));
    }

    #[test]
    fn two_runs_with_colliding_ids_cannot_share_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        // The first two draws of the second run collide with the first run's id.
        let first = claim_with(dir.path(), || "same".to_string()).unwrap();
        let mut draws = vec!["other", "same", "same"];
        let second = claim_with(dir.path(), || draws.pop().unwrap().to_string()).unwrap();
        assert_eq!(first.id, "same");
        assert_eq!(second.id, "other");
        assert_ne!(first.path, second.path);
        // An id that is always taken is never reused: the claim fails instead.
        let err = claim_with(dir.path(), || "same".to_string()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    }
}
