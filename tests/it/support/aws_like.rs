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

/// The request names this stack: its id, or its name followed by what ends a name in a request
/// (so that `lab` never stands for `lab-2`). Stack ids are URL-encoded in the query protocol.
fn names_stack(request: &str, stack_id: &str, stack_name: &str) -> bool {
    let encoded_id = stack_id.replace(':', "%3A").replace('/', "%2F");
    request.contains(&encoded_id)
        || request.contains(stack_id)
        || request
            .split('&')
            .any(|pair| pair == format!("StackName={stack_name}"))
}

/// A stack's deletion takes a while in AWS (minutes, up to an hour with Lambda's interfaces);
/// moto's is immediate. After its DeleteStack, the first `times` DescribeStacks that name it see
/// DELETE_IN_PROGRESS instead of moto's answer.
pub struct DeletionTakesAWhile {
    stack_id: String,
    stack_name: String,
    times: usize,
    seen: AtomicUsize,
    deleting: std::sync::atomic::AtomicBool,
}

impl DeletionTakesAWhile {
    /// For the stack with this id and name.
    pub fn new(stack_id: &str, stack_name: &str, times: usize) -> DeletionTakesAWhile {
        DeletionTakesAWhile {
            stack_id: stack_id.to_string(),
            stack_name: stack_name.to_string(),
            times,
            seen: AtomicUsize::new(0),
            deleting: Default::default(),
        }
    }

    /// How many answers said DELETE_IN_PROGRESS.
    pub fn in_progress_answers(&self) -> usize {
        self.seen.load(Ordering::SeqCst).min(self.times)
    }
}

impl ProxyRule for DeletionTakesAWhile {
    fn before(&self, call: &Exchange) -> Option<ProxyAnswer> {
        if call.operation == "DeleteStack"
            && names_stack(call.request, &self.stack_id, &self.stack_name)
        {
            self.deleting.store(true, Ordering::SeqCst);
        }
        if call.operation != "DescribeStacks"
            || !self.deleting.load(Ordering::SeqCst)
            || !names_stack(call.request, &self.stack_id, &self.stack_name)
            || self.seen.fetch_add(1, Ordering::SeqCst) >= self.times
        {
            return None;
        }
        Some(ProxyAnswer {
            status: 200,
            content_type: "text/xml",
            body: describe_stack_xml(&self.stack_id, &self.stack_name, "DELETE_IN_PROGRESS", ""),
        })
    }
}

/// CloudFormation refuses to delete a repository that still holds images (unless the template
/// says EmptyOnDelete), and the stack ends DELETE_FAILED, kept, with the reason; moto answers
/// DeleteStack with RepositoryNotEmptyException and drops the stack, so that a second look finds
/// nothing and a careless tool calls that success. This rule gives AWS's behaviour for one stack:
/// its DeleteStack is accepted without reaching moto (the stack stays, untouched), and from then on
/// DescribeStacks says DELETE_FAILED with the repository's reason.
pub struct DeletionFailsOnImages {
    stack_id: String,
    stack_name: String,
    repository: String,
    deletions: AtomicUsize,
}

impl DeletionFailsOnImages {
    /// For the stack with this id and name, whose repository is `repository`.
    pub fn new(stack_id: &str, stack_name: &str, repository: &str) -> DeletionFailsOnImages {
        DeletionFailsOnImages {
            stack_id: stack_id.to_string(),
            stack_name: stack_name.to_string(),
            repository: repository.to_string(),
            deletions: AtomicUsize::new(0),
        }
    }

    /// How many DeleteStack calls it accepted (and failed).
    pub fn deletions(&self) -> usize {
        self.deletions.load(Ordering::SeqCst)
    }
}

impl ProxyRule for DeletionFailsOnImages {
    fn before(&self, call: &Exchange) -> Option<ProxyAnswer> {
        if !names_stack(call.request, &self.stack_id, &self.stack_name) {
            return None;
        }
        match call.operation {
            "DeleteStack" => {
                self.deletions.fetch_add(1, Ordering::SeqCst);
                Some(ProxyAnswer {
                    status: 200,
                    content_type: "text/xml",
                    body: DELETE_STACK_OK.to_string(),
                })
            }
            "DescribeStacks" if self.deletions() > 0 => Some(ProxyAnswer {
                status: 200,
                content_type: "text/xml",
                body: describe_stack_xml(
                    &self.stack_id,
                    &self.stack_name,
                    "DELETE_FAILED",
                    &format!(
                        "The following resource(s) failed to delete: [ECRRepository]. The repository with name '{}' cannot be deleted because it still contains images",
                        self.repository
                    ),
                ),
            }),
            _ => None,
        }
    }
}

/// DescribeStacks' answer for one stack in a given status.
fn describe_stack_xml(stack_id: &str, stack_name: &str, status: &str, reason: &str) -> String {
    format!(
        "<DescribeStacksResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><DescribeStacksResult><Stacks><member>\
         <StackId>{stack_id}</StackId><StackName>{stack_name}</StackName>\
         <CreationTime>2026-11-30T00:00:00Z</CreationTime><StackStatus>{status}</StackStatus>\
         <StackStatusReason>{reason}</StackStatusReason>\
         </member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>aws-like</RequestId></ResponseMetadata></DescribeStacksResponse>"
    )
}

/// Random faults, as a loaded AWS region and a flaky network give them: throttling, internal
/// errors and dropped connections (held back from moto, so the call did not happen, as when AWS
/// refuses it), and slow answers. Deterministic for a seed (xorshift), so a failing soak run can
/// be replayed.
pub struct RandomFaults {
    state: std::sync::Mutex<u64>,
    /// How many of each were given.
    pub given: std::sync::Mutex<std::collections::BTreeMap<&'static str, usize>>,
}

impl RandomFaults {
    /// Faults drawn from `seed`.
    pub fn new(seed: u64) -> RandomFaults {
        RandomFaults {
            state: std::sync::Mutex::new(seed.max(1)),
            given: Default::default(),
        }
    }

    fn draw(&self) -> u64 {
        let mut x = self.state.lock().unwrap();
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x % 100
    }

    fn count(&self, what: &'static str) {
        *self.given.lock().unwrap().entry(what).or_default() += 1;
    }
}

impl ProxyRule for RandomFaults {
    fn before(&self, call: &Exchange) -> Option<ProxyAnswer> {
        let (code, status) = match self.draw() {
            0..=9 => {
                self.count("throttled");
                (
                    if call.service == "EC2" || call.service == "CloudFormation" {
                        "Throttling"
                    } else {
                        "ThrottlingException"
                    },
                    400,
                )
            }
            10..=12 => {
                self.count("internal error");
                ("InternalFailure", 500)
            }
            13..=14 => {
                self.count("connection dropped");
                return Some(ProxyAnswer {
                    status: 0,
                    content_type: "text/plain",
                    body: String::new(),
                });
            }
            15..=19 => {
                self.count("slow");
                std::thread::sleep(std::time::Duration::from_millis(300));
                return None;
            }
            _ => return None,
        };
        let (body, content_type) = error_body(call.service, code, "injected by the soak test");
        Some(ProxyAnswer {
            status,
            content_type,
            body,
        })
    }
}
