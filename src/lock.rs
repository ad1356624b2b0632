//! The lock that keeps a second run of one plan off one account and region while a first one
//! runs: an OS advisory lock (`flock` on Unix, `LockFileEx` on Windows, through std's
//! [`File::try_lock`]) held on an open file for the life of the run.
//!
//! The kernel frees the lock when the process ends, however it ends (`kill -9`, the immediate
//! exit of a second Ctrl-C, a crash), so a lock is never stale: a run whose lock file names a
//! holder that is gone simply takes it, and says so. The file is never removed (removing a lock
//! file that another process has open and is about to lock would let two runs hold "the" lock);
//! a run that ends cleanly empties it, so that only a lock left by a run that did not is
//! reported as taken over.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Held for the life of a run; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
    taken_over: Option<String>,
}

/// What a lock file says about its holder.
#[derive(Serialize, Deserialize)]
struct LockHolder {
    run_id: String,
    pid: u32,
    started: String,
}

impl LockHolder {
    fn describe(&self) -> String {
        format!(
            "run {} (pid {}, started {})",
            self.run_id, self.pid, self.started
        )
    }
}

impl RunLock {
    /// Takes the lock for `key` (e.g. `account-region-plan`) under `runs_dir/locks`, for the run
    /// `run_id`. Refuses while another process holds it.
    pub fn acquire(runs_dir: &Path, key: &str, run_id: &str) -> Result<RunLock, String> {
        let dir = runs_dir.join("locks");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(format!("{}.lock", safe(key)));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open the lock {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let who = read_holder(&mut file)
                    .map(|h| h.describe())
                    .unwrap_or_else(|| "another run".to_string());
                return Err(format!(
                    "{who} is already running this plan in this account and region (it holds the lock {}): wait for it to end, or stop it; nothing was done",
                    path.display()
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!("cannot take the lock {}: {e}", path.display()))
            }
        }
        // Ours now. A holder still named in the file ended without releasing it.
        let taken_over = read_holder(&mut file).map(|h| h.describe());
        let holder = LockHolder {
            run_id: run_id.to_string(),
            pid: std::process::id(),
            started: chrono::Utc::now().to_rfc3339(),
        };
        let written = serde_json::to_string(&holder)
            .map_err(std::io::Error::other)
            .and_then(|text| {
                file.set_len(0)?;
                file.seek(SeekFrom::Start(0))?;
                file.write_all(text.as_bytes())?;
                file.sync_all()
            });
        if let Err(e) = written {
            return Err(format!("cannot write the lock {}: {e}", path.display()));
        }
        Ok(RunLock {
            file,
            path,
            taken_over,
        })
    }

    /// The run that held this lock before and ended without releasing it (killed, or exited at
    /// once on a second Ctrl-C), if one did: worth one line to the person reading.
    pub fn taken_over(&self) -> Option<&str> {
        self.taken_over.as_deref()
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Emptied, not removed (see the module's documentation); the lock goes with the file.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn safe(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "123-us-west-2-plan";

    #[test]
    fn a_held_lock_refuses_a_second_run_and_is_free_again_when_released() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path(), KEY, "r1").unwrap();
        assert_eq!(lock.taken_over(), None);
        let err = RunLock::acquire(dir.path(), KEY, "r2").unwrap_err();
        assert!(err.contains("run r1"), "{err}");
        assert!(err.contains("already running"), "{err}");
        drop(lock);
        // Released cleanly: nothing to report.
        let again = RunLock::acquire(dir.path(), KEY, "r3").expect("free again");
        assert_eq!(again.taken_over(), None);
    }

    #[test]
    fn a_lock_whose_holder_is_gone_is_taken_over_and_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path(), KEY, "r1").unwrap();
        let path = lock.path().to_path_buf();
        // What a killed run leaves: its holder in the file, and no lock held (the kernel freed it).
        let left = std::fs::read_to_string(&path).unwrap();
        drop(lock);
        std::fs::write(&path, left).unwrap();
        let taken = RunLock::acquire(dir.path(), KEY, "r2").expect("a lock nobody holds");
        let previous = taken.taken_over().expect("says whose lock it took");
        assert!(previous.contains("run r1"), "{previous}");
    }
}
