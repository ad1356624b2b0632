//! Fault injection in front of the SDK: where moto is more lenient than AWS (no throttling, ENIs
//! deletable while in use, stacks never DELETE_FAILED, no IAM by default), a test puts a
//! [`Faults`] interceptor on the clients and AWS's strict behaviour is simulated by replacing the
//! emulator's answer before the SDK reads it.
//!
//! Caveat (sdk-notes.md): the request has already reached the emulator when its answer is
//! replaced, so a replaced mutating call did happen there. Tests either inject on read-only calls
//! or rely on the actions being idempotent, and say which; or they use a rule that holds the
//! request back ([`Rule::instead_of_sending`]), as AWS refuses a throttled call before acting on
//! it.
//!
//! A rule can also correct the emulator after the fact: [`Rule::when_answer_contains`] replaces
//! only an error answer that says something given, once the emulator has acted on the call (see
//! [`aws_like_delete_stack`], which makes DeleteStack treat already-gone resources as AWS does).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextMut,
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::client::ser_de::{DeserializeResponse, SharedResponseDeserializer};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// What to answer instead of the emulator.
#[derive(Clone, Debug)]
pub enum Answer {
    /// An AWS error with this HTTP status, code and message, in the service's own error format.
    Error {
        /// HTTP status.
        status: u16,
        /// AWS error code, e.g. `ThrottlingException`.
        code: String,
        /// AWS message.
        message: String,
    },
    /// A whole successful body (XML or JSON as the service speaks), e.g. a DescribeStacks that
    /// says DELETE_FAILED.
    Body(String),
}

impl Answer {
    /// Throttling, as each service spells it.
    pub fn throttle() -> Answer {
        Answer::Error {
            status: 400,
            code: "Throttling".into(),
            message: "Rate exceeded".into(),
        }
    }

    /// An AWS error.
    pub fn error(status: u16, code: &str, message: &str) -> Answer {
        Answer::Error {
            status,
            code: code.into(),
            message: message.into(),
        }
    }
}

/// One rule: which calls, how often, what answer.
#[derive(Clone, Debug)]
pub struct Rule {
    /// SDK service name (`ECS`, `EC2`, `CloudFormation`, `Secrets Manager`...) or `*`.
    pub service: String,
    /// Operation name (`DescribeStacks`...), a prefix ending in `*` (`Describe*`), or `*`.
    pub operation: String,
    /// Let this many matching calls through before injecting.
    pub skip: usize,
    /// Only calls whose request body contains this text (as sent: URL-encoded for the query
    /// protocols of EC2 and CloudFormation).
    pub request_contains: Option<String>,
    /// Inject on every `every`-th matching call (1: all of them).
    pub every: usize,
    /// At most this many injections (then the calls go through untouched).
    pub times: usize,
    /// The answer.
    pub answer: Answer,
    /// The emulator never sees the call: it is sent as a harmless `GET /moto-api/config`
    /// instead (so it still reaches the endpoint, with its headers), and answered with `answer`.
    pub unsent: bool,
    /// Only when the emulator answered with an error (HTTP status 400 or more) whose body contains
    /// this text: the call reaches the emulator, and only such an answer is replaced.
    pub answer_contains: Option<String>,
}

impl Rule {
    /// Injects on every `every`-th matching call instead of each one.
    pub fn every(mut self, every: usize) -> Rule {
        self.every = every.max(1);
        self
    }

    /// Only calls whose request body contains `text`.
    pub fn when_request_contains(mut self, text: &str) -> Rule {
        self.request_contains = Some(text.to_string());
        self
    }

    /// Lets the first `skip` matching calls through.
    pub fn after(mut self, skip: usize) -> Rule {
        self.skip = skip;
        self
    }

    /// Holds the calls it injects on back from the emulator, so that they have no effect there
    /// (as a throttled call has none in AWS): decided before the request is sent, which is then
    /// turned into a read of moto's configuration, and answered with the rule's answer.
    pub fn instead_of_sending(mut self) -> Rule {
        self.unsent = true;
        self
    }

    /// Only replaces an error answer of the emulator whose body contains `text` (e.g. an error
    /// code such as `RepositoryNotFoundException`); other answers pass untouched and are not
    /// counted against the rule.
    pub fn when_answer_contains(mut self, text: &str) -> Rule {
        self.answer_contains = Some(text.to_string());
        self
    }

    fn matches(&self, service: &str, operation: &str) -> bool {
        let op = match self.operation.strip_suffix('*') {
            Some(prefix) => operation.starts_with(prefix),
            None => self.operation == operation,
        };
        (self.service == "*" || self.service == service) && op
    }

    /// A rule for `service.operation` (either may be `*`), answering the first `times` calls.
    pub fn on(service: &str, operation: &str, times: usize, answer: Answer) -> Rule {
        Rule {
            service: service.into(),
            operation: operation.into(),
            skip: 0,
            request_contains: None,
            every: 1,
            times,
            answer,
            unsent: false,
            answer_contains: None,
        }
    }
}

/// When a rule decides: before the request is sent (it holds the call back), when the answer
/// arrives (it replaces whatever the emulator said), or once the answer is read (it replaces only
/// an error answer that says something given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    BeforeSending,
    OnAnswer,
    AfterAnswer,
}

impl Rule {
    fn phase(&self) -> Phase {
        if self.answer_contains.is_some() {
            Phase::AfterAnswer
        } else if self.unsent {
            Phase::BeforeSending
        } else {
            Phase::OnAnswer
        }
    }
}

/// Error codes with which moto's DeleteStack reports that one of the stack's resources was
/// already gone (deleted by hand before the stack), one per resource type the workshop stacks
/// hold. Observed with moto 5.2.5: the ECR repository (`RepositoryNotFoundException`), a Lambda
/// function or a log group (`ResourceNotFoundException`, sent as a JSON body inside the XML
/// protocol, which the SDK cannot even parse), an IAM role or instance profile (`NoSuchEntity`),
/// the RDS instance (`DBInstanceNotFound`), a security group or subnet
/// (`InvalidGroup.NotFound`, `InvalidSubnetID.NotFound`). An ECS cluster or task definition
/// deleted by hand gives no error at all.
pub const ALREADY_GONE_CODES: &[&str] = &[
    "RepositoryNotFoundException",
    "ResourceNotFoundException",
    "ClusterNotFoundException",
    "NoSuchEntity",
    "DBInstanceNotFound",
    "DBSubnetGroupNotFoundFault",
    "InvalidGroup.NotFound",
    "InvalidSubnetID.NotFound",
    "InvalidVpcID.NotFound",
];

/// The rules of [`aws_like_delete_stack`], to combine with others in one [`Faults`].
pub fn aws_like_delete_stack_rules() -> Vec<Rule> {
    ALREADY_GONE_CODES
        .iter()
        .map(|code| {
            Rule::on(
                "CloudFormation",
                "DeleteStack",
                usize::MAX,
                Answer::Body(DELETE_STACK_OK.into()),
            )
            .when_answer_contains(code)
        })
        .collect()
}

/// DeleteStack as AWS does it when some of the stack's resources were already deleted by hand.
///
/// AWS's DeleteStack only starts the deletion (it always answers 200), and CloudFormation counts
/// a resource that is already gone as deleted, so the stack ends DELETE_COMPLETE. moto deletes
/// synchronously: it deletes every other resource of the stack, drops the stack (it is then
/// unknown even by its id, and missing from ListStacks), and answers DeleteStack with the error
/// of the missing resource (e.g. RepositoryNotFoundException when a teardown force-deleted the
/// repository first, as the workshop's cleanup.sh does). This interceptor replaces exactly that
/// error answer ([`ALREADY_GONE_CODES`]) with AWS's empty success; every other answer, e.g.
/// RepositoryNotEmptyException (in AWS: DELETE_FAILED), passes unchanged.
///
/// What stays different from AWS: afterwards the stack is unknown by its id (AWS: describable as
/// DELETE_COMPLETE for 90 days) and missing from ListStacks. The SDK's
/// `wait_until_stack_delete_complete` counts "does not exist" as success, as AWS's waiter does.
pub fn aws_like_delete_stack() -> Faults {
    Faults::new(aws_like_delete_stack_rules())
}

/// The answer AWS gives to every accepted DeleteStack.
pub const DELETE_STACK_OK: &str = "<DeleteStackResponse xmlns=\"http://cloudformation.amazonaws.com/doc/2010-05-15/\"><ResponseMetadata><RequestId>aws-like-delete-stack</RequestId></ResponseMetadata></DeleteStackResponse>";

#[derive(Debug)]
struct RuleState {
    rule: Rule,
    seen: usize,
    injected: usize,
}

/// The interceptor. Clone it to keep a handle for counting after the clients took their copy.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<RuleState>>>,
    injected: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Faults {
    /// An interceptor with these rules.
    pub fn new(rules: Vec<Rule>) -> Faults {
        Faults {
            rules: Arc::new(Mutex::new(
                rules
                    .into_iter()
                    .map(|rule| RuleState {
                        rule,
                        seen: 0,
                        injected: 0,
                    })
                    .collect(),
            )),
            ..Faults::default()
        }
    }

    /// For `AwsOptions::interceptors`.
    pub fn shared(&self) -> SharedInterceptor {
        SharedInterceptor::new(self.clone())
    }

    /// How many answers were replaced so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    /// `Service.Operation` of each replaced answer, in order.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// An error answer in the service's protocol: (body, content type).
pub fn error_body(service: &str, code: &str, message: &str) -> (String, &'static str) {
    match service {
        "EC2" => (
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>fault-injected</RequestID></Response>"),
            "text/xml",
        ),
        "CloudFormation" | "STS" => (
            format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-injected</RequestId></ErrorResponse>"),
            "text/xml",
        ),
        _ => (
            format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}"),
            "application/x-amz-json-1.1",
        ),
    }
}

/// The content type of a service's answers.
fn content_type(service: &str) -> &'static str {
    match service {
        "EC2" | "CloudFormation" | "STS" => "text/xml",
        _ => "application/x-amz-json-1.1",
    }
}

/// The HTTP answer for `answer`; a whole body is sent with `body_content_type`.
fn replacement(service: &str, answer: Answer, body_content_type: &str) -> HttpResponse {
    match answer {
        Answer::Error {
            status,
            code,
            message,
        } => {
            let (body, content_type) = error_body(service, &code, &message);
            let mut r =
                HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body));
            r.headers_mut().insert("content-type", content_type);
            r
        }
        Answer::Body(body) => {
            let mut r = HttpResponse::new(StatusCode::try_from(200).unwrap(), SdkBody::from(body));
            r.headers_mut()
                .insert("content-type", body_content_type.to_string());
            r
        }
    }
}

/// The request body as sent, kept for the hook that sees the answer (by then the request has
/// been handed to the connector).
#[derive(Clone, Debug)]
struct RequestText(String);

impl Storable for RequestText {
    type Storer = StoreReplace<Self>;
}

/// The answer chosen, before sending, for an attempt held back from the emulator.
#[derive(Clone, Debug)]
struct HeldBack(Option<Answer>);

impl Storable for HeldBack {
    type Storer = StoreReplace<Self>;
}

impl Faults {
    fn record(&self, service: &str, operation: &str) {
        self.injected.fetch_add(1, Ordering::SeqCst);
        self.log
            .lock()
            .unwrap()
            .push(format!("{service}.{operation}"));
    }

    /// The answer of the first rule of this phase that applies to this call, counting the call
    /// against it. `answer` is the emulator's error answer (in the after-answer phase only).
    fn pick(
        &self,
        phase: Phase,
        service: &str,
        operation: &str,
        body: &str,
        answer: &str,
    ) -> Option<Answer> {
        let mut rules = self.rules.lock().unwrap();
        let state = rules.iter_mut().find(|s| {
            s.rule.phase() == phase
                && s.rule.matches(service, operation)
                && s.rule
                    .answer_contains
                    .as_ref()
                    .is_none_or(|text| answer.contains(text.as_str()))
                && s.injected < s.rule.times
                && s.rule
                    .request_contains
                    .as_ref()
                    .is_none_or(|text| body.contains(text.as_str()))
        })?;
        state.seen += 1;
        if state.seen <= state.rule.skip || (state.seen - state.rule.skip) % state.rule.every != 0 {
            return None;
        }
        state.injected += 1;
        Some(state.rule.answer.clone())
    }
}

impl Intercept for Faults {
    fn name(&self) -> &'static str {
        "tests::Faults"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Decided again at every attempt: a retry is a new call to AWS.
        cfg.interceptor_state().store_put(HeldBack(None));
        let Some(meta) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let (service, operation) = (meta.service().to_string(), meta.name().to_string());
        let request = context.request_mut();
        let text = request
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).to_string())
            .unwrap_or_default();
        let Some(answer) = self.pick(Phase::BeforeSending, &service, &operation, &text, "") else {
            return Ok(());
        };
        let base = request.uri().to_string();
        let authority_end = base
            .find("://")
            .and_then(|scheme| base[scheme + 3..].find('/').map(|p| scheme + 3 + p))
            .unwrap_or(base.len());
        request.set_uri(format!("{}/moto-api/config", &base[..authority_end]))?;
        request.set_method("GET")?;
        *request.body_mut() = SdkBody::empty();
        request.headers_mut().remove("content-length");
        request.headers_mut().remove("content-type");
        cfg.interceptor_state().store_put(RequestText(text));
        cfg.interceptor_state().store_put(HeldBack(Some(answer)));
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<HeldBack>().is_some_and(|h| h.0.is_some()) {
            // The request as the service would have seen it is kept already.
            return Ok(());
        }
        let text = context
            .request()
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).to_string())
            .unwrap_or_default();
        cfg.interceptor_state().store_put(RequestText(text));
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let (service, operation) = (meta.service().to_string(), meta.name().to_string());
        let body = cfg
            .load::<RequestText>()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        let decided = cfg.load::<HeldBack>().and_then(|h| h.0.clone());
        let answer = match decided {
            Some(answer) => answer,
            None => match self.pick(Phase::OnAnswer, &service, &operation, &body, "") {
                Some(answer) => answer,
                None => return Ok(()),
            },
        };
        let response = context.response_mut();
        let content_type = response
            .headers()
            .get("content-type")
            .map(str::to_string)
            .unwrap_or_else(|| content_type(&service).to_string());
        *response = replacement(&service, answer, &content_type);
        self.record(&service, &operation);
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // By now the answer's body has been read into memory (it is not yet when the answer
        // arrives), so a rule can look at what the emulator said.
        let Some(meta) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let (service, operation) = (meta.service().to_string(), meta.name().to_string());
        let Some(response) = context.response() else {
            return Ok(());
        };
        if response.status().as_u16() < 400 {
            return Ok(());
        }
        let said = response
            .body()
            .bytes()
            .map(|b| String::from_utf8_lossy(b).to_string())
            .unwrap_or_default();
        let body = cfg
            .load::<RequestText>()
            .map(|t| t.0.clone())
            .unwrap_or_default();
        let Some(answer) = self.pick(Phase::AfterAnswer, &service, &operation, &body, &said) else {
            return Ok(());
        };
        let Some(deserializer) = cfg.load::<SharedResponseDeserializer>() else {
            return Ok(());
        };
        // The output is already deserialized: deserialize the replacement with the operation's
        // own deserializer, so the caller gets a typed output (or error) as from a real answer.
        let replaced = replacement(&service, answer, content_type(&service));
        let output = deserializer.deserialize_nonstreaming_with_config(&replaced, cfg);
        if let Some(slot) = context.output_or_error_mut() {
            *slot = output;
        }
        if let Some(slot) = context.response_mut() {
            *slot = replaced;
        }
        self.record(&service, &operation);
        Ok(())
    }
}
