//! The confirmation a run that changes things asks for at the terminal (the account id typed).

use std::io::{IsTerminal, Write};

use crate::engine::RunSummary;
use crate::plan::{self, Plan};

/// Asks the person at the terminal to type the account id, showing what the pre-flight found.
/// Without a terminal, refuses: an unattended run must say --yes.
pub(crate) fn confirm(
    plan: &Plan,
    account: &str,
    region: &str,
    steps: &crate::graph::Dag<plan::PlannedStep>,
    preflight: Option<&RunSummary>,
) -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln!("error: refusing to delete without confirmation: no terminal to ask on. Pass --yes for unattended runs, or preview first with `teardown preview {}`", plan.file.display());
        return false;
    }
    eprintln!(
        "About to run plan `{}` ({} steps) in account {account}, region {region}.",
        plan.name,
        steps.len()
    );
    match preflight.map(what_would_change) {
        Some(kinds) if kinds.is_empty() => {
            eprintln!("Nothing matches now: the run would change nothing.")
        }
        Some(kinds) => eprintln!("This DELETES or changes: {}.", kinds.join(", ")),
        None => eprintln!("This DELETES what the plan matches."),
    }
    eprint!("Type the account id ({account}) to go on: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() || answer.trim() != account {
        eprintln!("not confirmed: nothing was done");
        return false;
    }
    true
}

/// What a dry run would change, counted per kind (`2 CloudFormation stacks`), each resource once
/// (the same count as the summary's).
fn what_would_change(summary: &RunSummary) -> Vec<String> {
    crate::render::count_by_kind(summary, crate::resource::OutcomeKind::Planned)
}
