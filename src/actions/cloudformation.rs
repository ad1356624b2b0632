//! cloudformation actions (being written).
use super::{ActionSpec, InputError, StepInput, Action};
use std::sync::Arc;
/// Placeholder.
pub static DELETE_STACK: ActionSpec = ActionSpec {
    name: "cloudformation.delete-stack",
    summary: "not written yet",
    selector: &[],
    options: &[],
    permissions: &[],
    build: |_input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        Err(vec![InputError::at(&[], "not implemented yet")])
    },
};
