//! Choosing which steps of a plan run: `--only`/`--skip` phases, steps a resumed run has done,
//! and the steps the selection leaves out but waits for.

use super::{Plan, PlannedStep};
use std::collections::BTreeSet;

use crate::graph::Dag;

/// Which phases of a plan to run.
#[derive(Clone, Debug, Default)]
pub struct PhaseSelection {
    /// Only the steps of these phases (all steps, when empty).
    pub only: Vec<String>,
    /// Not the steps of these phases.
    pub skip: Vec<String>,
    /// Treat steps that are left out but waited for as done (the user says they are).
    pub assume_done: bool,
    /// Steps known to be done (a resumed run's journal says so): left out, and taken as done.
    pub done: BTreeSet<String>,
}

/// Why a selection of phases cannot run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// A phase the plan does not have.
    #[error("the plan has no phase `{phase}`; its phases are: {}", known.join(", "))]
    UnknownPhase {
        /// The phase asked for.
        phase: String,
        /// The plan's phases.
        known: Vec<String>,
    },
    /// Selected steps wait for steps the selection leaves out.
    #[error("{}\nnothing was run: pass --assume-done if those steps are done already (e.g. run earlier), or select their phases too", .0.iter().map(|(s, d)| format!("step `{s}` waits for `{d}`, which the selection leaves out")).collect::<Vec<_>>().join("\n"))]
    LeftOut(Vec<(String, String)>),
}

impl Plan {
    /// The phases its steps name, in plan order.
    pub fn phases(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.dag
            .in_order()
            .filter_map(|s| s.phase.clone())
            .filter(|p| seen.insert(p.clone()))
            .collect()
    }

    /// The steps to run for a selection of phases, as a validated DAG. A selected step that waits
    /// for a left-out one is an error unless the selection says to assume it is done; the left-out
    /// steps it waited for are then listed in the result so that they can be reported.
    pub fn select(&self, selection: &PhaseSelection) -> Result<Selected, SelectionError> {
        let known = self.phases();
        for phase in selection.only.iter().chain(&selection.skip) {
            if !known.contains(phase) {
                return Err(SelectionError::UnknownPhase {
                    phase: phase.clone(),
                    known,
                });
            }
        }
        let chosen = |s: &PlannedStep| {
            let phase = s.phase.as_deref();
            (selection.only.is_empty()
                || phase.is_some_and(|p| selection.only.iter().any(|o| o == p)))
                && !phase.is_some_and(|p| selection.skip.iter().any(|o| o == p))
                && !selection.done.contains(&s.id)
        };
        let mut left_out = Vec::new();
        let mut steps = Vec::new();
        for step in self.dag.in_order().filter(|s| chosen(s)) {
            let mut step = step.clone();
            // Steps known to be done are satisfied; other left-out steps are reported.
            step.after.retain(|d| !selection.done.contains(d));
            let waits_for_left_out: Vec<String> = step
                .after
                .iter()
                .filter(|d| !self.dag.get(d).is_some_and(chosen))
                .cloned()
                .collect();
            if let Some(handler) = &step.on_failure {
                if !self
                    .dag
                    .get(&handler.run)
                    .is_some_and(|h| chosen(h) || selection.done.contains(&h.id))
                {
                    // A handler that is left out cannot run: say so like a dependency.
                    left_out.push((step.id.clone(), handler.run.clone()));
                    step.on_failure = None;
                }
            }
            for dep in waits_for_left_out {
                left_out.push((step.id.clone(), dep.clone()));
                step.after.retain(|d| d != &dep);
            }
            steps.push(step);
        }
        if !left_out.is_empty() && !selection.assume_done {
            return Err(SelectionError::LeftOut(left_out));
        }
        let dag = Dag::build(steps).expect("a subset of a valid DAG is valid");
        Ok(Selected {
            dag,
            assumed_done: left_out,
        })
    }
}

/// The steps chosen to run.
pub struct Selected {
    /// The steps.
    pub dag: Dag<PlannedStep>,
    /// (step, left-out step it waited for) pairs taken as done.
    pub assumed_done: Vec<(String, String)>,
}
