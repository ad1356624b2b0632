//! What a run knows of the account from its own calls, so that it does not ask AWS again for what
//! it read or set itself moments ago: complete listings of what a parent holds (the services and
//! tasks of a cluster), what its own polls and answers confirmed gone, and states its own writes
//! set (a service scaled to 0). Shared by the clients of one run (its pre-flight's and its own),
//! never across runs.
//!
//! Only facts the run itself observed go in, each a plain string keyed by the resource's id, and a
//! listing is trusted only while it is fresh: what others change meanwhile, AWS still refuses or
//! reports (a cluster that still holds a task is not deleted), and a stale listing is read again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// What a run knows from its own calls. Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct RunMemory {
    state: Arc<Mutex<Known>>,
}

#[derive(Debug, Default)]
struct Known {
    /// A complete listing of `what` (e.g. `services`) in a parent (e.g. a cluster ARN): when, and
    /// the ids it held.
    listings: BTreeMap<(String, &'static str), (Instant, Vec<String>)>,
    /// Ids the run saw gone (a task STOPPED, a service INACTIVE, a deletion AWS confirmed).
    gone: BTreeSet<String>,
    /// States the run's own writes set: (id, what) to the value set.
    set: BTreeMap<(String, &'static str), String>,
}

impl RunMemory {
    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        // A panic while holding the lock cannot leave a half-written fact: every change is one
        // insert. Recover the data rather than propagate the poison.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a complete listing of `what` in `parent`: every id it held now.
    pub fn listed(&self, parent: &str, what: &'static str, ids: Vec<String>) {
        self.known()
            .listings
            .insert((parent.to_string(), what), (Instant::now(), ids));
    }

    /// Records that the run saw `id` gone (stopped, deleted, INACTIVE).
    pub fn gone(&self, id: &str) {
        self.known().gone.insert(id.to_string());
    }

    /// Records that the run's own write set `what` of `id` to `value`.
    pub fn set(&self, id: &str, what: &'static str, value: impl Into<String>) {
        self.known()
            .set
            .insert((id.to_string(), what), value.into());
    }

    /// The value the run's own write set `what` of `id` to, if it set it.
    pub fn was_set(&self, id: &str, what: &'static str) -> Option<String> {
        self.known().set.get(&(id.to_string(), what)).cloned()
    }

    /// Of the last complete listing of `what` in `parent`, if one was made less than `fresh` ago,
    /// the ids the run has not seen gone since; `None` without such a listing.
    pub fn left(&self, parent: &str, what: &'static str, fresh: Duration) -> Option<Vec<String>> {
        let known = self.known();
        let (at, ids) = known.listings.get(&(parent.to_string(), what))?;
        if at.elapsed() > fresh {
            return None;
        }
        Some(
            ids.iter()
                .filter(|id| !known.gone.contains(*id))
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_leaves_what_was_not_seen_gone_while_it_is_fresh() {
        let memory = RunMemory::default();
        assert_eq!(memory.left("c", "tasks", Duration::from_secs(60)), None);
        memory.listed("c", "tasks", vec!["t1".into(), "t2".into()]);
        memory.gone("t1");
        assert_eq!(
            memory.left("c", "tasks", Duration::from_secs(60)),
            Some(vec!["t2".to_string()])
        );
        assert_eq!(memory.left("c", "services", Duration::from_secs(60)), None);
        assert_eq!(memory.left("other", "tasks", Duration::from_secs(60)), None);
        memory.gone("t2");
        assert_eq!(
            memory.left("c", "tasks", Duration::from_secs(60)),
            Some(Vec::new())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stale_listing_is_not_trusted() {
        let memory = RunMemory::default();
        memory.listed("c", "tasks", Vec::new());
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(memory.left("c", "tasks", Duration::from_secs(60)), None);
    }

    #[test]
    fn a_state_the_run_set_is_remembered_per_id() {
        let memory = RunMemory::default();
        memory.set("s1", "desired_count", "0");
        assert_eq!(memory.was_set("s1", "desired_count").as_deref(), Some("0"));
        assert_eq!(memory.was_set("s2", "desired_count"), None);
        // Clones share what they know: the pre-flight's clients and the run's.
        let clone = memory.clone();
        clone.gone("x");
        memory.listed("p", "x", vec!["x".into()]);
        assert_eq!(
            clone.left("p", "x", Duration::from_secs(1)),
            Some(Vec::new())
        );
    }
}
