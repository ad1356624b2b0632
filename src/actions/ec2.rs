//! ec2 actions (being written).
use super::{ActionSpec, InputError, StepInput, Action};
use std::sync::Arc;
/// Placeholder.
pub static DELETE_NETWORK_INTERFACES: ActionSpec = ActionSpec {
    name: "ec2.delete-network-interfaces",
    summary: "not written yet",
    selector: &[],
    options: &[],
    permissions: &[],
    build: |_input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        Err(vec![InputError::at(&[], "not implemented yet")])
    },
};
