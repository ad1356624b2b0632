//! ecs actions (being written).
use super::{ActionSpec, InputError, StepInput, Action};
use std::sync::Arc;
/// Placeholder.
pub static STOP_TASKS: ActionSpec = ActionSpec {
    name: "ecs.stop-tasks",
    summary: "not written yet",
    selector: &[],
    options: &[],
    permissions: &[],
    build: |_input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        Err(vec![InputError::at(&[], "not implemented yet")])
    },
};
/// Placeholder.
pub static DELETE_SERVICES: ActionSpec = ActionSpec {
    name: "ecs.delete-services",
    summary: "not written yet",
    selector: &[],
    options: &[],
    permissions: &[],
    build: |_input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        Err(vec![InputError::at(&[], "not implemented yet")])
    },
};
/// Placeholder.
pub static DEREGISTER_TASK_DEFINITIONS: ActionSpec = ActionSpec {
    name: "ecs.deregister-task-definitions",
    summary: "not written yet",
    selector: &[],
    options: &[],
    permissions: &[],
    build: |_input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        Err(vec![InputError::at(&[], "not implemented yet")])
    },
};
/// Placeholder.
pub static DELETE_CLUSTER: ActionSpec = ActionSpec {
    name: "ecs.delete-cluster",
    summary: "not written yet",
    selector: &[],
    options: &[],
    permissions: &[],
    build: |_input: &StepInput| -> Result<Arc<dyn Action>, Vec<InputError>> {
        Err(vec![InputError::at(&[], "not implemented yet")])
    },
};
