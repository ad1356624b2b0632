//! One line per event, stamped with the time since the run started: for logs and CI.

use std::io::Write;

use super::{write_line, Renderer};
use crate::event::{Event, EventKind};
use crate::resource::OutcomeKind;
use crate::util::short_duration;

/// Writes each event as one readable line (and one indented line per resource of a finished step).
pub struct PlainRenderer {
    out: Box<dyn Write + Send>,
}

impl PlainRenderer {
    /// A renderer writing to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> PlainRenderer {
        PlainRenderer { out }
    }
}

/// The lines for one event, without the trailing newline.
pub fn lines(event: &Event) -> Vec<String> {
    let stamp = format!("[{:>7.1}s]", event.elapsed.as_secs_f64());
    let mut lines = Vec::new();
    let line = match &event.kind {
        EventKind::RunStarted {
            plan,
            steps,
            dry_run,
        } => format!(
            "run started: plan {plan}, {steps} steps{}",
            if *dry_run {
                " (dry run: nothing will be changed)"
            } else {
                ""
            }
        ),
        EventKind::StepStarted { step, action } => format!("{step}: started ({action})"),
        EventKind::StepProgress {
            step,
            message,
            done,
            total,
            wait,
        } => {
            // A wait's line is worked out from its deadline at the event's own time. Plain output
            // is for logs: one line per look at AWS (at most 30 s apart), not one a second.
            let message = match wait {
                Some(wait) => wait.line_at(event.elapsed),
                None => message.clone(),
            };
            if *total > 0 {
                format!("{step}: [{done}/{total}] {message}")
            } else {
                format!("{step}: {message}")
            }
        }
        EventKind::AttemptFailed {
            step,
            attempt,
            error,
            retry_in,
        } => format!(
            "{step}: attempt {attempt} failed: {error}; retrying in {}",
            short_duration(*retry_in)
        ),
        EventKind::HandlerStarted {
            step,
            handler,
            error,
        } => {
            format!("{step}: failed ({error}); running its failure handler {handler}, then trying again")
        }
        EventKind::StepSucceeded {
            step,
            duration,
            summary,
            resources,
            notes,
        } => {
            for r in resources {
                let mark = match r.outcome {
                    OutcomeKind::Planned => "plan",
                    OutcomeKind::Done => "done",
                    OutcomeKind::AlreadyGone => "gone",
                    OutcomeKind::Protected | OutcomeKind::NotPreviewed => "kept",
                };
                lines.push(format!(
                    "{:11}  {mark:4} {} {}: {} [{}]",
                    "", r.resource.kind, r.resource.name, r.detail, r.resource.matched_because
                ));
            }
            for note in notes {
                lines.push(format!("{:11}  note: {note}", ""));
            }
            format!(
                "{step}: succeeded in {}: {summary}",
                short_duration(*duration)
            )
        }
        EventKind::StepFailed {
            step,
            duration,
            error,
        } => {
            format!(
                "{step}: FAILED after {}: {error}",
                short_duration(*duration)
            )
        }
        EventKind::StepSkipped { step, reason } => format!("{step}: skipped: {reason}"),
        EventKind::RunCancelled { reason } => {
            format!("run cancelled: {reason}; no new steps will start")
        }
        EventKind::RunFinished {
            succeeded,
            failed,
            skipped,
            duration,
        } => format!(
            "run finished in {}: {succeeded} succeeded, {failed} failed, {skipped} skipped",
            short_duration(*duration)
        ),
    };
    lines.insert(0, format!("{stamp} {line}"));
    lines
}

impl Renderer for PlainRenderer {
    fn event(&mut self, event: &Event) {
        for line in lines(event) {
            write_line(&mut self.out, &line);
        }
    }
}
