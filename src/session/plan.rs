//! The plan a session runs: parsed from the run's header (validated as `teardown validate` does),
//! its phases selected, its variables shown, and a resumed run's journal checked to be its own.

use std::collections::BTreeMap;

use crate::journal::RunHeader;
use crate::outcome::Outcome;
use crate::plan::{self, PhaseSelection, Plan};
use crate::render::OutputFormat;

/// The plan a run, preview, resume or apply executes, validated exactly as `teardown validate`
/// does: only a validated plan runs, so a plan with a `[sweep]` section must pass the sweep's
/// checks too, although these commands do not use it.
fn parse_validated(header: &RunHeader) -> Result<Plan, plan::PlanErrors> {
    let plan = plan::parse(&header.plan_path, &header.plan_text, &header.vars)?;
    if plan.sweep.is_some() {
        crate::plan::sweep::SweepPlan::parse(&header.plan_path, &header.plan_text, &header.vars)?;
    }
    Ok(plan)
}

/// A journal says which steps are done; it may be trusted only for the run it was written by:
/// the run id it names must be the directory's, and that id must name the journal's own region
/// and plan (ids made before they named a region are not checked for it). The account and region
/// the resume is about to act in are checked against the journal's once they are known (see
/// `execute_plan`).
pub(crate) fn check_journal_is_this_runs(run_id: &str, header: &RunHeader) -> Result<(), String> {
    if header.run_id != run_id {
        return Err(format!(
            "its journal belongs to run {}: the run directory was copied or mixed up",
            header.run_id
        ));
    }
    if header.account.is_empty() || header.region.is_empty() {
        return Err("its journal does not say which account and region it ran in".into());
    }
    let plan = plan::parse(&header.plan_path, &header.plan_text, &header.vars)
        .map(|p| p.name)
        .unwrap_or_default();
    if !plan.is_empty() && crate::run_dir::id_names(run_id, &header.region, &plan) == Some(false) {
        return Err(format!(
            "its journal is for plan `{plan}` in region {}, which is not what the run id names: the journal was written by another run",
            header.region
        ));
    }
    Ok(())
}

/// Parses the run's plan with its `--var`s and the values its lookups found so far, and selects
/// the steps of its phases; the error is reported, as its outcome.
pub(crate) fn parse_and_select(
    header: &RunHeader,
    selection: &PhaseSelection,
) -> Result<(Plan, plan::Selected), Outcome> {
    // The plan as given (its [sweep] section too), then with the values found so far.
    let given = parse_validated(header).map_err(|errors| {
        eprintln!("{errors}");
        Outcome::BadInput
    })?;
    let plan = if header.looked_up.is_empty() {
        given
    } else {
        let mut overrides = header.vars.clone();
        overrides.extend(
            header
                .looked_up
                .iter()
                .map(|(name, found)| (name.clone(), found.value.clone())),
        );
        plan::parse(&header.plan_path, &header.plan_text, &overrides).map_err(|errors| {
            eprintln!("{errors}");
            Outcome::BadInput
        })?
    };
    let selected = plan.select(selection).map_err(|e| {
        eprintln!("error: {e}");
        Outcome::BadInput
    })?;
    Ok((plan, selected))
}

/// Prints every variable with its value and where it came from, before anything runs: on
/// stdout with the rest of the report, on stderr when stdout carries JSON Lines.
pub(crate) fn print_variables(
    plan: &Plan,
    looked_up: &BTreeMap<String, plan::VarSource>,
    format: OutputFormat,
) {
    let vars = plan.variable_sources(looked_up);
    if vars.is_empty() {
        return;
    }
    let width = vars.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut text = String::from("Variables:\n");
    for (name, found) in &vars {
        text.push_str(&format!(
            "  {name:<width$} = {}    ({})\n",
            found.value, found.source
        ));
    }
    if format == OutputFormat::Json {
        eprint!("{text}");
    } else {
        say!("{}", text.trim_end());
    }
}
