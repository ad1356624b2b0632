//! What a sweep tells: the JSON report (`--report FILE`) and the text for people.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::engine::StepOutcome;
use crate::resource::{OutcomeKind, ResourceOutcome};
use crate::util::count_of;

use super::discover::{Lab, LabStatus};
use super::{RefusedAccount, Sweep, SweepOptions};
use crate::plan::sweep::StackFacts;
use crate::plan::sweep::SweepPlan;

impl Sweep {
    /// The machine-readable report.
    pub fn report(&self, plan: &SweepPlan, options: &SweepOptions) -> SweepReport {
        let mut counts = BTreeMap::new();
        for lab in &self.labs {
            *counts.entry(lab.status).or_insert(0) += 1;
        }
        SweepReport {
            plan: plan.plan.name.clone(),
            file: plan.path.display().to_string(),
            account: self.account.clone(),
            accounts: self.accounts.clone(),
            refused: self.refused.clone(),
            regions: self.regions.clone(),
            dry_run: !self.applied,
            shard: options.shard.map(|s| s.to_string()),
            now: options.now,
            found: self.labs.len(),
            in_other_shards: self.in_other_shards,
            counts,
            labs: self.labs.iter().map(LabReport::of).collect(),
            errors: self.errors.clone(),
            exit_code: self.outcome().code(),
        }
    }
}

/// The JSON report of a sweep (`--report FILE`).
#[derive(Debug, Serialize)]
pub struct SweepReport {
    /// The plan's name.
    pub plan: String,
    /// The plan file.
    pub file: String,
    /// The account swept; with several, the first of `accounts`.
    pub account: String,
    /// Every account swept (refused ones left out).
    pub accounts: Vec<String>,
    /// The accounts asked for (`--accounts`) and refused, each with the reason: nothing in them
    /// was touched.
    pub refused: Vec<RefusedAccount>,
    /// The regions swept, in any account.
    pub regions: Vec<String>,
    /// True unless the sweep deleted (`--apply`).
    pub dry_run: bool,
    /// `K/N` for a sharded sweep.
    pub shard: Option<String>,
    /// The time ages were measured against.
    pub now: DateTime<Utc>,
    /// Labs found in this shard.
    pub found: usize,
    /// Labs found that belong to other shards (not reported here).
    pub in_other_shards: usize,
    /// How many labs ended in each status.
    pub counts: BTreeMap<LabStatus, usize>,
    /// Every lab found.
    pub labs: Vec<LabReport>,
    /// Problems that are not one lab's.
    pub errors: Vec<String>,
    /// The exit code of the sweep.
    pub exit_code: u8,
}

/// One lab in the report.
#[derive(Debug, Serialize)]
pub struct LabReport {
    /// Its id (the prefix of its step ids).
    pub id: String,
    /// Its account.
    pub account: String,
    /// Its region.
    pub region: String,
    /// Its stack.
    pub stack: StackFacts,
    /// Why `find` matched it.
    pub matched_because: String,
    /// Where it stands.
    pub status: LabStatus,
    /// Why it is kept or failed.
    pub reasons: Vec<String>,
    /// What the reader should know.
    pub notes: Vec<String>,
    /// The variables bound from its stack.
    pub vars: BTreeMap<String, String>,
    /// Resources per outcome (`planned`, `done`, `already-gone`, `protected`, `not-previewed`).
    pub resources: BTreeMap<OutcomeKind, usize>,
    /// Its steps, from the latest run it took part in.
    pub steps: Vec<StepReport>,
}

/// One step of a lab in the report.
#[derive(Debug, Serialize)]
pub struct StepReport {
    /// The plan's step id.
    pub step: String,
    /// Its action.
    pub action: String,
    /// `succeeded`, `failed` or `skipped`.
    pub outcome: &'static str,
    /// Its summary, the error, or why it was skipped.
    pub detail: String,
    /// Each resource it matched and what became of it.
    pub resources: Vec<ResourceOutcome>,
}

impl LabReport {
    fn of(lab: &Lab) -> LabReport {
        let mut resources = BTreeMap::new();
        for r in lab.outcomes() {
            *resources.entry(r.outcome).or_insert(0) += 1;
        }
        LabReport {
            id: lab.id.clone(),
            account: lab.account.clone(),
            region: lab.region.clone(),
            stack: lab.stack.clone(),
            matched_because: lab.matched_because.clone(),
            status: lab.status,
            reasons: lab.reasons.clone(),
            notes: lab.notes.clone(),
            vars: lab.vars.clone(),
            resources,
            steps: lab
                .steps
                .iter()
                .map(|s| {
                    let (outcome, detail) = match &s.outcome {
                        StepOutcome::Succeeded => (
                            "succeeded",
                            s.output
                                .as_ref()
                                .map(|o| o.summary.clone())
                                .unwrap_or_default(),
                        ),
                        StepOutcome::Failed { error, .. } => ("failed", error.clone()),
                        StepOutcome::Skipped { reason } => ("skipped", reason.clone()),
                    };
                    StepReport {
                        step: s.id.clone(),
                        action: s.action.clone(),
                        outcome,
                        detail,
                        resources: s
                            .output
                            .as_ref()
                            .map(|o| o.resources.clone())
                            .unwrap_or_default(),
                    }
                })
                .collect(),
        }
    }
}

pub(super) fn write_found(
    out: &mut dyn Write,
    plan: &SweepPlan,
    sweep: &Sweep,
    options: &SweepOptions,
) -> std::io::Result<()> {
    let shard = match &options.shard {
        Some(shard) => format!(
            ", shard {shard} ({} found in other shards)",
            count_of(sweep.in_other_shards, "lab")
        ),
        None => String::new(),
    };
    let plural = |n: usize, word: &str| {
        if n == 1 {
            word.to_string()
        } else {
            format!("{word}s")
        }
    };
    let accounts = if sweep.accounts.is_empty() {
        "no account".to_string()
    } else {
        format!(
            "{} {}",
            plural(sweep.accounts.len(), "account"),
            sweep.accounts.join(", ")
        )
    };
    writeln!(
        out,
        "Sweep of plan `{}`: {accounts}, {} {}{shard}",
        plan.plan.name,
        plural(sweep.regions.len(), "region"),
        sweep.regions.join(", ")
    )?;
    write_refused(out, sweep)?;
    for error in &sweep.errors {
        writeln!(out, "  error: {error}")?;
    }
    let stale = sweep.stale().count();
    writeln!(
        out,
        "Found {}: {stale} stale, {} kept",
        count_of(sweep.labs.len(), "lab"),
        sweep.labs.len() - stale
    )?;
    for lab in &sweep.labs {
        let (mark, why) = match lab.status {
            LabStatus::NotRun => ("stale", lab.matched_because.clone()),
            _ => (lab.status.word(), lab.reasons.join("; ")),
        };
        writeln!(out, "  {mark:12} {:<32} {why}", lab.id)?;
        for note in &lab.notes {
            writeln!(out, "  {:12} {:<32} note: {note}", "", "")?;
        }
    }
    Ok(())
}

/// The accounts refused, each with its reason.
fn write_refused(out: &mut dyn Write, sweep: &Sweep) -> std::io::Result<()> {
    for refused in &sweep.refused {
        writeln!(
            out,
            "  REFUSED      account {}: {}",
            refused.account, refused.reason
        )?;
    }
    Ok(())
}

pub(super) fn write_labs(out: &mut dyn Write, sweep: &Sweep) -> std::io::Result<()> {
    let mut counts: BTreeMap<LabStatus, usize> = BTreeMap::new();
    for lab in &sweep.labs {
        *counts.entry(lab.status).or_default() += 1;
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|(status, n)| format!("{n} {}", status.word()))
        .collect();
    writeln!(out)?;
    writeln!(
        out,
        "Labs: {}",
        if counts.is_empty() {
            "none found".to_string()
        } else {
            counts.join(", ")
        }
    )?;
    for lab in &sweep.labs {
        let what = match lab.status {
            LabStatus::WouldDelete => format!(
                "{} would be deleted or changed ({})",
                count_of(lab.resources(OutcomeKind::Planned), "resource"),
                lab.matched_because
            ),
            LabStatus::Deleted => format!(
                "{} deleted or changed, {} already gone",
                count_of(lab.resources(OutcomeKind::Done), "resource"),
                lab.resources(OutcomeKind::AlreadyGone)
            ),
            _ => lab.reasons.join("; "),
        };
        writeln!(out, "  {:12} {:<32} {what}", lab.status.word(), lab.id)?;
    }
    write_refused(out, sweep)?;
    if sweep
        .labs
        .iter()
        .any(|l| l.status == LabStatus::WouldDelete)
        && !sweep.applied
    {
        writeln!(
            out,
            "Dry run: nothing was changed. Run again with --apply to delete the labs marked \"would delete\"."
        )?;
    }
    Ok(())
}
