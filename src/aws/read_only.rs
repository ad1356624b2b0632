//! The read-only guard of a dry run: an allow-list of operations, enforced before a call is
//! serialized; and, for a run that changes things, the audit log's first line of each mutating
//! call, written before it is sent (the call is refused when that line cannot be written).

use super::{AuditLog, Mode};
use std::fmt;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// True for operations that only read: the allow-list of a dry run.
///
/// An allow-list, not a deny-list: an operation we have not thought about is refused.
pub fn is_read_only(operation: &str) -> bool {
    const READ_PREFIXES: [&str; 5] = ["Describe", "List", "Get", "BatchGet", "Search"];
    // GetSecretValue reads a secret's value: never needed to tear anything down, so never allowed.
    operation != "GetSecretValue" && READ_PREFIXES.iter().any(|p| operation.starts_with(p))
}

/// Refuses every operation that is not read-only in a dry run, before it is serialized or sent;
/// and, when the clients keep an audit log, every mutating call that the log could not record.
#[derive(Debug)]
pub(crate) struct ReadOnlyGuard {
    pub(crate) mode: Mode,
    pub(crate) audit: Option<AuditLog>,
}

/// The error a dry run's guard raises. Seeing it means an action tried to change something in a
/// dry run: a bug in teardown, never something to skip quietly.
#[derive(Debug)]
pub struct DryRunViolation {
    /// Service and operation that were refused, e.g. `ECS.StopTask`.
    pub operation: String,
}

impl fmt::Display for DryRunViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dry run refused the mutating call {} before it was sent; this is a bug in teardown, please report it",
            self.operation
        )
    }
}

impl std::error::Error for DryRunViolation {}

/// Put in a call's configuration by the guard when it refused the call: the call log then knows
/// that nothing was sent, and keeps it out of the audit log.
#[derive(Clone, Debug)]
pub(crate) struct Refused;

impl aws_smithy_types::config_bag::Storable for Refused {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// The error raised instead of sending a mutating call that the audit log could not record.
#[derive(Debug)]
pub struct Unrecorded {
    /// Service and operation that were not sent, e.g. `ECS.StopTask`.
    pub operation: String,
    /// Why the log cannot record it.
    pub reason: String,
}

impl fmt::Display for Unrecorded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Shown after the operation's name (`ECS.StopTask: not sent: ...`), as AWS errors are.
        write!(
            f,
            "not sent: {}, and no change is made that the run cannot record",
            self.reason
        )
    }
}

impl std::error::Error for Unrecorded {}

pub(crate) fn operation_of(cfg: &ConfigBag) -> (String, String) {
    match cfg.load::<Metadata>() {
        Some(m) => (m.service().to_string(), m.name().to_string()),
        None => ("unknown".into(), "unknown".into()),
    }
}

impl Intercept for ReadOnlyGuard {
    fn name(&self) -> &'static str {
        "teardown::ReadOnlyGuard"
    }

    // Not `read_before_execution`: client-level interceptors run that hook before the operation's
    // configuration (and so its name) is in the bag. This hook still runs before the request is
    // serialized, signed or sent.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = operation_of(cfg);
        if is_read_only(&operation) {
            return Ok(());
        }
        if self.mode == Mode::DryRun {
            cfg.interceptor_state().store_put(Refused);
            return Err(Box::new(DryRunViolation {
                operation: format!("{service}.{operation}"),
            }));
        }
        let Some(audit) = &self.audit else {
            return Ok(());
        };
        // The record comes first: the call is sent only once its line is in the audit log.
        if let Err(reason) = audit.announce(&service, &operation) {
            cfg.interceptor_state().store_put(Refused);
            return Err(Box::new(Unrecorded {
                operation: format!("{service}.{operation}"),
                reason,
            }));
        }
        Ok(())
    }
}
