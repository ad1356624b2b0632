//! Reads asked twice in a read-only phase are answered once: the lookups and the pre-flight of a
//! run read through clients that send nothing but reads, in a few seconds, so a second identical
//! request (the cluster that three ECS steps describe, the stack that a lookup and a step both
//! read) gets the first one's answer instead of a round trip to AWS.
//!
//! A request asked while the same one is under way waits for that one's answer, so that steps
//! looking at once (the pre-flight's) share their reads too.
//!
//! Only for clients that cannot change anything (a dry run's), and only successful answers: an
//! error (throttling, a timeout) is never reused. Clients that change things (a run's own) never
//! reuse a read: what they read after a change, and every poll, must come from AWS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::config_bag::ConfigBag;
use tokio::sync::OnceCell;

/// A successful answer, whole.
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The answers of one set of read-only clients, by request (method, URI, the headers that say
/// what is asked, body): a request asked while the same one is under way waits for its answer.
/// Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub(crate) struct ReusedReads {
    answers: Arc<Mutex<HashMap<Vec<u8>, Shared>>>,
}

/// The answer to one request, once there is one, for every caller that asks it.
type Shared = Arc<OnceCell<Answer>>;

/// What identifies a request's question: not its signature or date, which differ every time.
fn key_of(request: &HttpRequest) -> Option<Vec<u8>> {
    // A streaming body cannot be compared: such a request is always sent.
    let body = request.body().bytes()?;
    let mut key = Vec::new();
    key.extend_from_slice(request.method().as_bytes());
    key.push(b' ');
    key.extend_from_slice(request.uri().as_bytes());
    for name in ["x-amz-target", "content-type", "host"] {
        key.push(b'\n');
        key.extend_from_slice(request.headers().get(name).unwrap_or("").as_bytes());
    }
    key.push(b'\n');
    key.extend_from_slice(body);
    Some(key)
}

impl ReusedReads {
    fn cell(&self, key: Vec<u8>) -> Shared {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone()
    }
}

/// Why a request's answer is not kept: the call failed, or AWS answered with an error (which goes
/// back to its own caller only; a caller waiting for the same request then sends its own).
enum NotKept {
    Failed(ConnectorError),
    Refused(HttpResponse),
}

fn response_of(answer: &Answer) -> Result<HttpResponse, BoxError> {
    let status = aws_smithy_runtime_api::http::StatusCode::try_from(answer.status)?;
    let mut response = HttpResponse::new(status, SdkBody::from(answer.body.clone()));
    for (name, value) in &answer.headers {
        response.headers_mut().append(name.clone(), value.clone());
    }
    Ok(response)
}

/// The HTTP client of a read-only client: the one below it, with its successful answers kept.
#[derive(Debug)]
pub(crate) struct ReusingHttpClient {
    pub(crate) inner: SharedHttpClient,
    pub(crate) reads: ReusedReads,
}

impl HttpClient for ReusingHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ReusingConnector {
            inner: self.inner.http_connector(settings, components),
            reads: self.reads.clone(),
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

/// Answers a request asked before from what AWS answered then; sends any other, and keeps its
/// answer when it is a success.
#[derive(Debug)]
struct ReusingConnector {
    inner: SharedHttpConnector,
    reads: ReusedReads,
}

impl HttpConnector for ReusingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let reads = self.reads.clone();
        HttpConnectorFuture::new(async move {
            let Some(key) = key_of(&request) else {
                return inner.call(request).await;
            };
            let cell = reads.cell(key);
            let answer = cell
                .get_or_try_init(|| async move {
                    let response = inner.call(request).await.map_err(NotKept::Failed)?;
                    if !response.status().is_success() {
                        return Err(NotKept::Refused(response));
                    }
                    let status = response.status().as_u16();
                    let headers: Vec<(String, String)> = response
                        .headers()
                        .iter()
                        .map(|(name, value)| (name.to_string(), value.to_string()))
                        .collect();
                    let body = ByteStream::new(response.into_body())
                        .collect()
                        .await
                        .map_err(|e| NotKept::Failed(ConnectorError::io(Box::new(e))))?
                        .into_bytes()
                        .to_vec();
                    Ok(Answer {
                        status,
                        headers,
                        body,
                    })
                })
                .await;
            match answer {
                Ok(answer) => response_of(answer).map_err(|e| ConnectorError::other(e, None)),
                Err(NotKept::Failed(e)) => Err(e),
                Err(NotKept::Refused(response)) => Ok(response),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers every request with `status` and the request's own body, after a pause, counting.
    #[derive(Debug)]
    struct Echo {
        status: u16,
        sent: Arc<AtomicUsize>,
    }

    impl HttpConnector for Echo {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            self.sent.fetch_add(1, Ordering::SeqCst);
            let status = self.status;
            let body = request.body().bytes().unwrap_or_default().to_vec();
            HttpConnectorFuture::new(async move {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                let status =
                    aws_smithy_runtime_api::http::StatusCode::try_from(status).expect("a status");
                Ok(HttpResponse::new(status, SdkBody::from(body)))
            })
        }
    }

    fn request(body: &str) -> HttpRequest {
        let mut request = HttpRequest::new(SdkBody::from(body.to_string()));
        request
            .set_uri("https://ecs.us-west-2.amazonaws.com/")
            .expect("a URI");
        request
    }

    fn connector(status: u16) -> (ReusingConnector, Arc<AtomicUsize>) {
        let sent = Arc::new(AtomicUsize::new(0));
        let connector = ReusingConnector {
            inner: SharedHttpConnector::new(Echo {
                status,
                sent: sent.clone(),
            }),
            reads: ReusedReads::default(),
        };
        (connector, sent)
    }

    async fn body_of(response: HttpResponse) -> Vec<u8> {
        ByteStream::new(response.into_body())
            .collect()
            .await
            .expect("a body")
            .into_bytes()
            .to_vec()
    }

    #[tokio::test]
    async fn a_request_asked_again_or_meanwhile_is_sent_once() {
        let (connector, sent) = connector(200);
        let (a, b) = tokio::join!(
            connector.call(request("Action=DescribeStacks")),
            connector.call(request("Action=DescribeStacks"))
        );
        let c = connector.call(request("Action=DescribeStacks")).await;
        for response in [a, b, c] {
            assert_eq!(
                body_of(response.expect("an answer")).await,
                b"Action=DescribeStacks"
            );
        }
        assert_eq!(sent.load(Ordering::SeqCst), 1);
        // Another question is another request.
        connector
            .call(request("Action=ListStackResources"))
            .await
            .expect("an answer");
        assert_eq!(sent.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_error_answer_is_never_reused() {
        let (connector, sent) = connector(400);
        for _ in 0..2 {
            let response = connector
                .call(request("Action=DescribeStacks"))
                .await
                .expect("an answer");
            assert_eq!(response.status().as_u16(), 400);
        }
        assert_eq!(sent.load(Ordering::SeqCst), 2);
    }
}
