//! What a run keeps on disk and the lock it holds: a run's journal and audit log, and the run
//! lock it took over.

use crate::journal::RunLock;

/// Says, in one line, whose lock a run took over: a run that ended without releasing it (killed,
/// or exited at once on a second Ctrl-C). The kernel had freed it; nothing needed breaking.
pub(crate) fn announce_takeover(lock: RunLock) -> RunLock {
    if let Some(previous) = lock.taken_over() {
        eprintln!("note: took over the lock of {previous}, which ended without releasing it");
    }
    lock
}
