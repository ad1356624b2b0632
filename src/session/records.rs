//! What a run keeps on disk and the lock it holds: a run's journal and audit log, and the run
//! lock it took over.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::aws::AuditLog;
use crate::journal::{Journal, RunHeader, RunLock};

/// Says, in one line, whose lock a run took over: a run that ended without releasing it (killed,
/// or exited at once on a second Ctrl-C). The kernel had freed it; nothing needed breaking.
pub(crate) fn announce_takeover(lock: RunLock) -> RunLock {
    if let Some(previous) = lock.taken_over() {
        eprintln!("note: took over the lock of {previous}, which ended without releasing it");
    }
    lock
}

/// Records an event in the journal; a journal that cannot be written breaks the run's record, so
/// that no further change is sent (see [`AuditLog`]).
pub(crate) fn record(
    journal: Option<&mut Journal>,
    records: Option<&AuditLog>,
    event: &crate::event::Event,
) {
    let (Some(journal), Some(records)) = (journal, records) else {
        return;
    };
    if let Err(why) = journal.record(event) {
        if records.problem().is_none() {
            eprintln!("error: {why}; no further change will be sent");
        }
        records.fail(why);
    }
}

/// A run whose record can no longer be written stops: nothing new starts, and running steps stop
/// at their next safe point (their changes are refused already).
pub(crate) fn stop_when_record_lost(audit: Option<&AuditLog>, cancel: &CancellationToken) {
    if let Some(lost) = audit.map(AuditLog::lost) {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            lost.cancelled().await;
            cancel.cancel()
        });
    }
}

/// Creates what a run that changes things keeps on disk, now that it is about to make its first
/// change: its directory (claimed: a new run never shares one, see [`crate::run_dir`]), its
/// journal and its audit log. A resumed run appends to its own.
pub(crate) fn start_records(
    runs: &Path,
    header: &mut RunHeader,
    resuming: bool,
    plan: &str,
    audit: &AuditLog,
) -> Result<Journal, String> {
    let (run_dir, journal) = if resuming {
        let run_dir = runs.join(&header.run_id);
        let journal = Journal::reopen(&run_dir).map_err(|e| e.to_string())?;
        (run_dir, journal)
    } else {
        let mut first = Some(header.run_id.clone());
        let region = header.region.clone();
        let claimed = crate::run_dir::claim_with(runs, || {
            first
                .take()
                .unwrap_or_else(|| crate::run_dir::new_run_id(plan, &region))
        })
        .map_err(|e| {
            format!(
                "cannot create a run directory in {}: {e}; pass --runs-dir to put it elsewhere",
                runs.display()
            )
        })?;
        header.run_id = claimed.id;
        let journal = Journal::create(&claimed.path, header).map_err(|e| e.to_string())?;
        (claimed.path, journal)
    };
    let path = run_dir.join("audit.jsonl");
    audit.start(&path, &header.run_id).map_err(|e| {
        format!(
            "cannot create the audit log {}: {e}; pass --runs-dir to put it elsewhere",
            path.display()
        )
    })?;
    Ok(journal)
}
