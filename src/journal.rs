//! What a run keeps on disk so that it can be continued: the journal (the plan as it was, the
//! choices made, and each step's state, fsync'd as it changes). The lock that keeps two runs of
//! one plan off one account and region at once is [`crate::lock`]'s.
//!
//! The journal only listens to the engine's events, like the renderers.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind};
pub use crate::lock::RunLock;

/// The first line of a journal: enough to run the same plan the same way again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunHeader {
    /// The run's id (its directory's name).
    pub run_id: String,
    /// Where the plan was read from.
    pub plan_path: PathBuf,
    /// The plan's text as it was run: a resume runs exactly this, even if the file changed since.
    pub plan_text: String,
    /// `--var` overrides.
    pub vars: Vec<(String, String)>,
    /// `--only` phases.
    pub only: Vec<String>,
    /// `--skip` phases.
    pub skip: Vec<String>,
    /// `--assume-done`.
    pub assume_done: bool,
    /// The account it ran in.
    pub account: String,
    /// The region it ran in.
    pub region: String,
    /// The `[lookup]` variables as they were read from the account, with where each came from: a
    /// resumed run or an applied preview uses exactly these and reads nothing again.
    #[serde(default)]
    pub looked_up: BTreeMap<String, crate::plan::VarSource>,
}

#[derive(Serialize, Deserialize)]
struct StepLine {
    step: String,
    state: String,
    #[serde(default)]
    detail: String,
}

/// An open journal, appended to as the run goes.
pub struct Journal {
    file: File,
    path: PathBuf,
    /// Its length in complete lines (where a torn line would start).
    bytes: u64,
    /// Set once a line could not be written: the journal ends there, and says so.
    ended: Option<String>,
}

/// Why a journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// File system trouble.
    #[error("journal {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a journal teardown wrote.
    #[error("journal {}: line {line} is not a journal entry: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Why.
        message: String,
    },
}

impl Journal {
    /// The journal's path inside a run directory.
    pub fn path_in(run_dir: &Path) -> PathBuf {
        run_dir.join("journal.jsonl")
    }

    /// Starts the journal of a new run, with its header, in the run's directory (claimed by
    /// [`crate::run_dir::claim`]). Fails if the directory already has a journal: two runs never
    /// share one.
    pub fn create(run_dir: &Path, header: &RunHeader) -> Result<Journal, JournalError> {
        let path = Journal::path_in(run_dir);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|source| JournalError::Io {
                path: path.clone(),
                source,
            })?;
        let mut journal = Journal {
            file,
            path: path.clone(),
            bytes: 0,
            ended: None,
        };
        let line = serde_json::to_string(header).expect("a header serializes");
        journal.append(&line).map_err(|_| JournalError::Io {
            path,
            source: std::io::Error::other(journal.ended.clone().unwrap_or_default()),
        })?;
        Ok(journal)
    }

    /// Reopens a run's journal to append to it (a resume).
    pub fn reopen(run_dir: &Path) -> Result<Journal, JournalError> {
        let path = Journal::path_in(run_dir);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|source| JournalError::Io {
                path: path.clone(),
                source,
            })?;
        let bytes = file
            .metadata()
            .map_err(|source| JournalError::Io {
                path: path.clone(),
                source,
            })?
            .len();
        Ok(Journal {
            file,
            path,
            bytes,
            ended: None,
        })
    }

    /// Appends one line, written and synced before the run goes on: a killed run leaves every
    /// state it reached. A line that cannot be written ends the journal there (a torn line is cut
    /// off), and every later call fails with the same reason.
    fn append(&mut self, line: &str) -> Result<(), String> {
        if let Some(why) = &self.ended {
            return Err(why.clone());
        }
        let line = format!("{line}\n");
        match self
            .file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.sync_data())
        {
            Ok(()) => {
                self.bytes += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                let cut = self.file.set_len(self.bytes).is_ok();
                let why = format!(
                    "cannot write the journal {}: {e}; it ends at byte {}{}, before: {}",
                    self.path.display(),
                    self.bytes,
                    if cut { "" } else { " (with a torn last line)" },
                    line.trim_end()
                );
                self.ended = Some(why.clone());
                Err(why)
            }
        }
    }

    /// Records the step states an event changes; `Err(why)` when it could not (see
    /// [`Journal::append`]): the run must then stop changing things.
    pub fn record(&mut self, event: &Event) -> Result<(), String> {
        let (step, state, detail) = match &event.kind {
            EventKind::StepStarted { step, .. } => (step, "started", String::new()),
            EventKind::StepSucceeded { step, summary, .. } => (step, "succeeded", summary.clone()),
            EventKind::StepFailed { step, error, .. } => (step, "failed", error.clone()),
            EventKind::StepSkipped { step, reason } => (step, "skipped", reason.clone()),
            _ => return Ok(()),
        };
        let line = serde_json::to_string(&StepLine {
            step: step.clone(),
            state: state.into(),
            detail,
        })
        .expect("a step line serializes");
        self.append(&line)
    }

    /// Reads a journal: its header and the steps that succeeded (in this run or a resume of it).
    pub fn load(run_dir: &Path) -> Result<(RunHeader, BTreeSet<String>), JournalError> {
        let path = Journal::path_in(run_dir);
        let file = File::open(&path).map_err(|source| JournalError::Io {
            path: path.clone(),
            source,
        })?;
        let mut lines = BufReader::new(file).lines();
        let corrupt = |line: usize, message: String| JournalError::Corrupt {
            path: path.clone(),
            line,
            message,
        };
        let first = lines
            .next()
            .ok_or_else(|| corrupt(1, "the journal is empty".into()))?
            .map_err(|e| corrupt(1, e.to_string()))?;
        let header: RunHeader =
            serde_json::from_str(&first).map_err(|e| corrupt(1, e.to_string()))?;
        let mut succeeded = BTreeSet::new();
        for line in lines {
            let Ok(line) = line else { break };
            // A run killed in the middle of a write leaves at most one torn last line: ignore it.
            let Ok(entry) = serde_json::from_str::<StepLine>(&line) else {
                continue;
            };
            match entry.state.as_str() {
                "succeeded" => {
                    succeeded.insert(entry.step);
                }
                // A step that started again after succeeding is no longer known to be done.
                "started" | "failed" => {
                    succeeded.remove(&entry.step);
                }
                _ => {}
            }
        }
        Ok((header, succeeded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn header() -> RunHeader {
        RunHeader {
            run_id: "r1".into(),
            plan_path: "plans/p.toml".into(),
            plan_text: "name = \"p\"".into(),
            vars: vec![("a".into(), "b".into())],
            only: vec![],
            skip: vec!["general".into()],
            assume_done: false,
            account: "123456789012".into(),
            region: "us-west-2".into(),
            looked_up: Default::default(),
        }
    }

    fn event(kind: EventKind) -> Event {
        Event {
            run_id: "r1".into(),
            elapsed: Duration::ZERO,
            kind,
        }
    }

    #[test]
    fn a_journal_remembers_what_succeeded_and_survives_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), &header()).unwrap();
        let started = |s: &str| {
            event(EventKind::StepStarted {
                step: s.into(),
                action: "x".into(),
            })
        };
        let succeeded = |s: &str| {
            event(EventKind::StepSucceeded {
                step: s.into(),
                duration: Duration::ZERO,
                summary: String::new(),
                resources: vec![],
                notes: vec![],
            })
        };
        journal.record(&started("a")).unwrap();
        journal.record(&succeeded("a")).unwrap();
        journal.record(&started("b")).unwrap();
        drop(journal);
        // A kill in the middle of a write.
        let path = Journal::path_in(dir.path());
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"step\":\"b\",\"sta").unwrap();
        let (read, done) = Journal::load(dir.path()).unwrap();
        assert_eq!(read, header());
        assert_eq!(done.into_iter().collect::<Vec<_>>(), vec!["a".to_string()]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_line_that_cannot_be_written_ends_the_journal_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        // Every write to /dev/full fails (ENOSPC), as on a full file system.
        std::os::unix::fs::symlink("/dev/full", Journal::path_in(dir.path())).unwrap();
        let mut journal = Journal::reopen(dir.path()).unwrap();
        let started = event(EventKind::StepStarted {
            step: "a".into(),
            action: "x".into(),
        });
        let why = journal.record(&started).unwrap_err();
        assert!(why.contains("cannot write the journal"), "{why}");
        assert!(why.contains("it ends at byte 0"), "{why}");
        // Later lines are refused with the same reason: the journal ends where it ended.
        assert_eq!(journal.record(&started).unwrap_err(), why);
    }
}
