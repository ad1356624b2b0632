//! The summary printed at the end of a run: every step with its outcome, duration and what it
//! did (in a preview: every resource that would go, why it matched, its age and tags), then
//! totals and what to do next.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use crate::engine::{RunSummary, StepOutcome};
use crate::resource::{OutcomeKind, ResourceOutcome};
use crate::util::{count_of, short_duration};

/// Where the run happened, for the header.
#[derive(Clone, Debug, Default)]
pub struct RunPlace {
    /// The account id.
    pub account: String,
    /// The region.
    pub region: String,
    /// The command that continues this run where it stopped (`teardown resume RUN_ID`), for a
    /// run that keeps a journal; without one, the same command is run again.
    pub resume: Option<String>,
}

/// Writes the summary of a finished run.
pub fn write_summary(
    out: &mut dyn Write,
    summary: &RunSummary,
    dry_run: bool,
    place: &RunPlace,
) -> std::io::Result<()> {
    writeln!(out)?;
    let title = if dry_run {
        "Preview (dry run: nothing was changed)"
    } else {
        "Summary"
    };
    writeln!(
        out,
        "{title}: account {}, region {}",
        place.account, place.region
    )?;
    let now = chrono::Utc::now();
    // Distinct resources per outcome and kind: a service that one step scales to 0 and
    // another deletes is one service, not two.
    let mut totals: BTreeMap<(OutcomeKind, String), BTreeSet<String>> = BTreeMap::new();
    for step in &summary.steps {
        let (mark, text) = match &step.outcome {
            StepOutcome::Succeeded => (
                "ok",
                step.output
                    .as_ref()
                    .map(|o| o.summary.clone())
                    .unwrap_or_default(),
            ),
            StepOutcome::Failed { error, .. } => ("FAILED", error.clone()),
            StepOutcome::Skipped { reason } => ("skipped", reason.clone()),
        };
        let took = if dry_run {
            format!(" (would wait up to {})", short_duration(step.timeout))
        } else if step.attempts > 0 {
            format!(" in {}", short_duration(step.duration))
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {mark:8} {:<28} [{}] {text}{took}",
            step.id, step.action
        )?;
        let Some(output) = &step.output else { continue };
        for r in &output.resources {
            totals
                .entry((r.outcome, r.resource.kind.clone()))
                .or_default()
                .insert(r.resource.id.clone());
            write_resource(out, r, dry_run, now)?;
        }
        for note in &output.notes {
            writeln!(out, "             note: {note}")?;
        }
    }
    let (succeeded, failed, skipped) = summary.counts();
    writeln!(
        out,
        "{succeeded} succeeded, {failed} failed, {skipped} skipped in {}",
        short_duration(summary.duration)
    )?;
    for (outcome, label) in [
        (OutcomeKind::Planned, "would be deleted or changed"),
        (OutcomeKind::Done, "deleted or changed"),
        (OutcomeKind::AlreadyGone, "already gone"),
        (OutcomeKind::Protected, "protected, left alone"),
        (
            OutcomeKind::NotPreviewed,
            "not in the saved preview, left alone",
        ),
    ] {
        let kinds: Vec<String> = totals
            .iter()
            .filter(|((o, _), _)| *o == outcome)
            .map(|((_, kind), ids)| count_of(ids.len(), kind))
            .collect();
        if !kinds.is_empty() {
            writeln!(out, "  {label}: {}", kinds.join(", "))?;
        }
    }
    if dry_run && !totals.keys().any(|(o, _)| *o == OutcomeKind::Planned) {
        writeln!(out, "  nothing would be deleted")?;
    }
    if let Some(reason) = &summary.cancelled {
        writeln!(out, "The run stopped early ({reason}).")?;
    }
    // One next step, never two: a run with a journal is resumed, anything else run again.
    if failed > 0 || skipped > 0 || summary.cancelled.is_some() {
        match &place.resume {
            Some(resume) => writeln!(
                out,
                "To continue: fix what the failed steps say, then `{resume}`: the steps that succeeded are not run again, and what is already gone is found gone, not deleted twice."
            )?,
            None => writeln!(
                out,
                "To continue: fix what the failed steps say and run the same command again: what is already gone is found gone, not deleted twice (a workflow step such as a secret rotation does run again)."
            )?,
        }
    }
    Ok(())
}

/// What a run changes or would change (`outcome`), counted per kind, each resource once however
/// many steps name it: `1 ECS service, 2 ECS tasks`. The confirmation shows it before a run.
pub fn count_by_kind(summary: &RunSummary, outcome: OutcomeKind) -> Vec<String> {
    let mut kinds: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in summary
        .steps
        .iter()
        .filter_map(|s| s.output.as_ref())
        .flat_map(|o| &o.resources)
        .filter(|r| r.outcome == outcome)
    {
        kinds
            .entry(r.resource.kind.as_str())
            .or_default()
            .insert(r.resource.id.as_str());
    }
    kinds
        .into_iter()
        .map(|(kind, ids)| count_of(ids.len(), kind))
        .collect()
}

fn write_resource(
    out: &mut dyn Write,
    r: &ResourceOutcome,
    dry_run: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> std::io::Result<()> {
    let what = match r.outcome {
        OutcomeKind::AlreadyGone => "already gone".to_string(),
        _ => r.detail.clone(),
    };
    writeln!(
        out,
        "             {} {}: {what}",
        r.resource.kind, r.resource.name
    )?;
    if dry_run
        || matches!(
            r.outcome,
            OutcomeKind::Protected | OutcomeKind::NotPreviewed
        )
    {
        writeln!(out, "               id: {}", r.resource.id)?;
        writeln!(
            out,
            "               matched: {}",
            r.resource.matched_because
        )?;
        if let Some(created) = r.resource.created {
            let age = (now - created).to_std().unwrap_or_default();
            writeln!(
                out,
                "               age: {} (created {})",
                short_duration(age),
                created.format("%Y-%m-%d %H:%M UTC")
            )?;
        }
        if !r.resource.tags.is_empty() {
            let tags: Vec<String> = r
                .resource
                .tags
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            writeln!(out, "               tags: {}", tags.join(", "))?;
        }
    }
    Ok(())
}
