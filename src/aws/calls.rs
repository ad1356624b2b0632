//! The call recorder and the audit log: every call the clients made, and every mutating one
//! appended to a JSON Lines file twice: before it is sent (`"outcome": "sending"`), and with its
//! outcome once it has an answer.

use super::read_only::{is_read_only, operation_of, Refused};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use serde::Serialize;

/// One call a client made (after its retries), as the recorder saw it.
#[derive(Clone, Debug, Serialize)]
pub struct CallRecord {
    /// When the call finished.
    #[serde(with = "humantime_serde_compat")]
    pub at: SystemTime,
    /// Service name as the SDK knows it, e.g. `ECS`.
    pub service: String,
    /// Operation name, e.g. `StopTask`.
    pub operation: String,
    /// False for the operations of the dry-run allow-list.
    pub mutating: bool,
    /// `ok`, or the error code AWS returned.
    pub outcome: String,
    /// The AWS request id, when the response had one.
    pub request_id: Option<String>,
    /// The step that made the call, when a step did.
    pub step: Option<String>,
    /// The resource the call was about, when an action said.
    pub resource: Option<String>,
}

tokio::task_local! {
    /// Which step, and which resource, the calls made inside this scope are for: read by the
    /// call log so that the audit log can say it without threading it through every call.
    pub static CALL_CONTEXT: CallContext;
}

/// What the calls of a scope are for (see [`CALL_CONTEXT`]).
#[derive(Clone, Debug, Default)]
pub struct CallContext {
    /// The step id.
    pub step: Option<String>,
    /// The resource id (ARN or AWS id).
    pub resource: Option<String>,
}

/// The audit log: every mutating call appended as JSON lines, written and synced to disk as it
/// happens: one line (`"outcome": "sending"`) before the call is sent, and one with its outcome
/// once it has an answer. A run killed while a call is in flight still leaves the record of it;
/// and since the first line is written, under one lock, before anything is sent, calls sent side
/// by side are each recorded before they go (a write-ahead log).
///
/// A run makes its log [`AuditLog::pending`] and opens it with [`AuditLog::start`] once the guard
/// and the confirmation have passed, so that a refused run leaves no file behind. Clients built
/// with a log refuse every mutating call while it is not open, and from the moment the run's
/// record cannot be written: a line of this log (the file system is full, the file-size limit is
/// hit) or of the run's journal ([`AuditLog::fail`]). No change is made that the run could not
/// record: a call whose first line cannot be written is not sent, and one whose outcome line cannot
/// be written (it was sent, its first line is in the log) has that line printed on stderr instead.
/// [`AuditLog::problem`] says where the record ends.
#[derive(Clone, Debug)]
pub struct AuditLog {
    state: Arc<Mutex<AuditState>>,
    /// Cancelled when the run's record can no longer be written.
    lost: tokio_util::sync::CancellationToken,
}

#[derive(Debug)]
struct AuditState {
    run_id: String,
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
    /// Complete lines written, and their bytes (where a torn line starts).
    lines: u64,
    bytes: u64,
    /// Why the run's record can no longer be written, once it cannot.
    broken: Option<String>,
    /// True once a line of this log could not be written: it ends there.
    ended: bool,
}

impl AuditLog {
    /// Opens (creating directories and the file as needed) the log at `path`, appending.
    pub fn open(path: &std::path::Path, run_id: &str) -> std::io::Result<AuditLog> {
        let audit = AuditLog::pending();
        audit.start(path, run_id)?;
        Ok(audit)
    }

    /// A log not open yet: clients built with it refuse mutating calls until [`AuditLog::start`].
    pub fn pending() -> AuditLog {
        AuditLog {
            state: Arc::new(Mutex::new(AuditState {
                run_id: String::new(),
                path: std::path::PathBuf::new(),
                file: None,
                lines: 0,
                bytes: 0,
                broken: None,
                ended: false,
            })),
            lost: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Opens the file at `path` (creating its directory as needed), appending; from now on
    /// mutating calls go through and are recorded.
    pub fn start(&self, path: &std::path::Path, run_id: &str) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let existing = file.metadata()?.len();
        let mut state = self.state.lock().expect("audit log poisoned");
        state.run_id = run_id.to_string();
        state.path = path.to_path_buf();
        state.file = Some(file);
        state.bytes = existing;
        state.lines = 0;
        Ok(())
    }

    /// The file it writes (empty before it is started).
    pub fn path(&self) -> std::path::PathBuf {
        self.state.lock().expect("audit log poisoned").path.clone()
    }

    /// Says that the run's record can no longer be written (`why`: which file, and where it
    /// ends): from now on no mutating call is sent. The first reason is kept.
    pub fn fail(&self, why: String) {
        let mut state = self.state.lock().expect("audit log poisoned");
        if state.broken.is_none() {
            state.broken = Some(why);
        }
        self.lost.cancel();
    }

    /// Cancelled once the run's record can no longer be written: the run should stop.
    pub fn lost(&self) -> tokio_util::sync::CancellationToken {
        self.lost.clone()
    }

    /// Why the run's record could not be written, if it could not: the run must not report
    /// success.
    pub fn problem(&self) -> Option<String> {
        self.state
            .lock()
            .expect("audit log poisoned")
            .broken
            .clone()
    }

    /// Why the run had to stop, in words for its summary and its steps, if its record could not
    /// be written.
    pub fn why_stopped(&self) -> Option<String> {
        self.problem().map(|problem| {
            format!("the run's record (audit log or journal) cannot be written: {problem}")
        })
    }

    /// Writes the line of the mutating call `service`.`operation` about to be sent, with the
    /// outcome [`SENDING`] and the step and resource of its [`CALL_CONTEXT`]: `Err(why)` when
    /// the call must not be sent, because the log is not open yet, the run's record can no
    /// longer be written, or this line could not be.
    pub(crate) fn announce(&self, service: &str, operation: &str) -> Result<(), String> {
        let context = CALL_CONTEXT.try_with(Clone::clone).unwrap_or_default();
        let record = CallRecord {
            at: SystemTime::now(),
            service: service.to_string(),
            operation: operation.to_string(),
            mutating: true,
            outcome: SENDING.to_string(),
            request_id: None,
            step: context.step,
            resource: context.resource,
        };
        let mut state = self.state.lock().expect("audit log poisoned");
        if state.broken.is_some() {
            return Err("the run's record (audit log or journal) cannot be written".into());
        }
        if state.file.is_none() {
            return Err("the audit log is not open yet".into());
        }
        match self.write_line(&mut state, &record) {
            Ok(()) => Ok(()),
            Err(why) => Err(format!(
                "the run's record (audit log or journal) cannot be written: {why}"
            )),
        }
    }

    /// Writes the line of a mutating call that has its answer. The call was made: when its line
    /// cannot be written, it is printed on stderr instead.
    fn append(&self, record: &CallRecord) {
        let mut state = self.state.lock().expect("audit log poisoned");
        if state.file.is_none() {
            return;
        }
        if let Err(why) = self.write_line(&mut state, record) {
            let line = serde_json::to_string(record).unwrap_or_default();
            eprintln!(
                "error: {why}; this change was made and its outcome is not in it: {line}\nno further change will be sent"
            );
        }
    }

    /// Appends one line and syncs it. On failure the log ends there (a torn line is cut off),
    /// no further change is sent, and `Err` says where the record ends.
    fn write_line(&self, state: &mut AuditState, record: &CallRecord) -> Result<(), String> {
        use std::io::Write;
        #[derive(Serialize)]
        struct Line<'a> {
            run_id: &'a str,
            #[serde(flatten)]
            record: &'a CallRecord,
        }
        let mut line = serde_json::to_string(&Line {
            run_id: &state.run_id,
            record,
        })
        .map_err(|e| format!("cannot write a line of the audit log: {e}"))?;
        line.push('\n');
        let (path, lines, bytes, ended) =
            (state.path.clone(), state.lines, state.bytes, state.ended);
        let Some(file) = state.file.as_mut() else {
            return Err("the audit log is not open".into());
        };
        let written = if ended {
            // The log already ends: a line after the gap would hide it.
            Err(std::io::Error::other("the log already ends"))
        } else {
            file.write_all(line.as_bytes())
                .and_then(|_| file.sync_data())
        };
        let (e, cut) = match written {
            Ok(()) => {
                state.lines += 1;
                state.bytes += line.len() as u64;
                return Ok(());
            }
            // A torn line is cut off, so that the log stays one complete record per line.
            Err(e) => {
                let cut = ended || file.set_len(bytes).is_ok();
                (e, cut)
            }
        };
        state.ended = true;
        let why = format!(
            "cannot write the audit log {}: {e}; it ends {}{}",
            path.display(),
            if lines == 0 {
                format!("at byte {bytes}, before this run's first line")
            } else {
                format!("at byte {bytes}, after this run's {lines} complete lines")
            },
            if cut { "" } else { " (with a torn last line)" },
        );
        if state.broken.is_none() {
            state.broken = Some(why.clone());
        }
        self.lost.cancel();
        Err(why)
    }
}

/// The outcome of a mutating call's first line in the audit log, written before it is sent.
pub const SENDING: &str = "sending";

mod humantime_serde_compat {
    use std::time::SystemTime;

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_millis(*t).to_string())
    }
}

/// Every call the clients made, in the order they finished. Cheap to clone (shared). Mutating
/// calls also go to the audit log, when there is one.
#[derive(Clone, Debug, Default)]
pub struct CallLog {
    pub(crate) records: Arc<Mutex<Vec<CallRecord>>>,
    pub(crate) audit: Option<AuditLog>,
}

impl CallLog {
    /// A copy of the records so far.
    pub fn records(&self) -> Vec<CallRecord> {
        self.records.lock().expect("call log poisoned").clone()
    }

    /// The mutating calls so far, as `Service.Operation`.
    pub fn mutating_operations(&self) -> Vec<String> {
        self.records()
            .into_iter()
            .filter(|r| r.mutating)
            .map(|r| format!("{}.{}", r.service, r.operation))
            .collect()
    }

    /// How many calls were made.
    pub fn len(&self) -> usize {
        self.records.lock().expect("call log poisoned").len()
    }

    /// True before the first call.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "teardown::CallLog"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = operation_of(cfg);
        let response = context.response();
        let request_id = response.and_then(|r| {
            ["x-amzn-requestid", "x-amz-request-id", "x-amzn-request-id"]
                .iter()
                .find_map(|h| r.headers().get(*h).map(str::to_string))
        });
        let outcome = match (context.output_or_error(), response) {
            (Some(Ok(_)), _) => "ok".to_string(),
            (_, Some(r)) if r.status().is_success() => "ok".to_string(),
            (_, Some(r)) => format!("http {}", r.status().as_u16()),
            (_, None) if cfg.load::<Refused>().is_some() => "refused before sending".to_string(),
            (_, None) => "not sent".to_string(),
        };
        let context = CALL_CONTEXT.try_with(Clone::clone).unwrap_or_default();
        let record = CallRecord {
            at: SystemTime::now(),
            mutating: !is_read_only(&operation),
            service,
            operation,
            outcome,
            request_id,
            step: context.step,
            resource: context.resource,
        };
        // A call the guard refused changed nothing: it is not a change to record.
        if record.mutating && cfg.load::<Refused>().is_none() {
            if let Some(audit) = &self.audit {
                audit.append(&record);
            }
        }
        self.records.lock().expect("call log poisoned").push(record);
        Ok(())
    }
}
