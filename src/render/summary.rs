//! The summary printed at the end of a run: every step with its outcome, duration and what it
//! did, then what to do next.

use std::io::Write;

use crate::engine::{RunSummary, StepOutcome};
use crate::resource::OutcomeKind;
use crate::util::short_duration;

/// Writes the summary of a finished run.
pub fn write_summary(out: &mut dyn Write, summary: &RunSummary, dry_run: bool) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(out, "{}", if dry_run { "Preview (dry run: nothing was changed)" } else { "Summary" })?;
    for step in &summary.steps {
        let (mark, text) = match &step.outcome {
            StepOutcome::Succeeded => (
                "ok",
                step.output.as_ref().map(|o| o.summary.clone()).unwrap_or_default(),
            ),
            StepOutcome::Failed { error, .. } => ("FAILED", error.clone()),
            StepOutcome::Skipped { reason } => ("skipped", reason.clone()),
        };
        let took = if step.attempts > 0 {
            format!(" in {}", short_duration(step.duration))
        } else {
            String::new()
        };
        writeln!(out, "  {mark:8} {:<28} {text}{took}", step.id)?;
        if let Some(output) = &step.output {
            for r in &output.resources {
                let verb = match r.outcome {
                    OutcomeKind::Planned => r.detail.clone(),
                    OutcomeKind::Done => r.detail.clone(),
                    OutcomeKind::AlreadyGone => "already gone".into(),
                    OutcomeKind::Protected => r.detail.clone(),
                };
                writeln!(out, "             {} {}: {verb}", r.resource.kind, r.resource.name)?;
            }
            for note in &output.notes {
                writeln!(out, "             note: {note}")?;
            }
        }
    }
    let (succeeded, failed, skipped) = summary.counts();
    writeln!(
        out,
        "{succeeded} succeeded, {failed} failed, {skipped} skipped in {}",
        short_duration(summary.duration)
    )?;
    if let Some(reason) = &summary.cancelled {
        writeln!(out, "The run stopped early ({reason}).")?;
    }
    if failed > 0 || skipped > 0 {
        writeln!(
            out,
            "To continue: fix what the failed steps say and run the same command again; every step is idempotent, so what is done stays done and is not repeated."
        )?;
    }
    Ok(())
}
