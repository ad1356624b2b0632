//! AWS's behaviour where moto differs, for tests that run the `teardown` binary (which no test
//! can hand an SDK interceptor): rules for the proxy of [`super::scale::CountingProxy`], in front
//! of moto. Each says which difference it covers; `faults.rs` does the same for in-process
//! clients.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::faults::{error_body, ALREADY_GONE_CODES, DELETE_STACK_OK};
use super::scale::{Exchange, ProxyAnswer, ProxyRule};

/// DeleteStack of a stack one of whose resources teardown already deleted (the repository,
/// deleted with its images, as the workshop's cleanup.sh does): AWS accepts the call and counts
/// the gone resource as deleted; moto deletes the rest, drops the stack and answers with that
/// resource's error. Answered as AWS does.
pub struct DeleteStackAsAws;

impl ProxyRule for DeleteStackAsAws {
    fn after(&self, call: &Exchange, status: u16, body: &str) -> Option<ProxyAnswer> {
        (call.operation == "DeleteStack"
            && status >= 400
            && ALREADY_GONE_CODES.iter().any(|code| body.contains(code)))
        .then(|| ProxyAnswer {
            status: 200,
            content_type: "text/xml",
            body: DELETE_STACK_OK.to_string(),
        })
    }
}

/// Lambda keeps a function's network interfaces `in-use` for a while after the function is gone
/// (20 to 45 minutes in AWS); moto lets them be deleted at once. The first `times`
/// DeleteNetworkInterface calls are refused as AWS refuses them, without reaching moto.
pub struct InterfacesInUse {
    times: usize,
    refused: AtomicUsize,
}

impl InterfacesInUse {
    /// Refuses the first `times` deletions.
    pub fn first(times: usize) -> InterfacesInUse {
        InterfacesInUse {
            times,
            refused: AtomicUsize::new(0),
        }
    }

    /// How many were refused.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst).min(self.times)
    }
}

impl ProxyRule for InterfacesInUse {
    fn before(&self, call: &Exchange) -> Option<ProxyAnswer> {
        if call.operation != "DeleteNetworkInterface" {
            return None;
        }
        let n = self.refused.fetch_add(1, Ordering::SeqCst);
        if n >= self.times {
            return None;
        }
        let (body, content_type) = error_body(
            "EC2",
            "InvalidNetworkInterface.InUse",
            "Interface is in use by a Lambda function that is being deleted",
        );
        Some(ProxyAnswer {
            status: 400,
            content_type,
            body,
        })
    }
}

/// True for an operation that changes nothing (the same rule as teardown's dry-run guard).
pub fn is_read_only(call: &str) -> bool {
    let operation = call.rsplit('.').next().unwrap_or(call);
    teardown::aws::is_read_only(operation)
}
