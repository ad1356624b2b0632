//! Reads asked twice in a read-only phase are answered once: the lookups and the pre-flight of a
//! run read through clients that send nothing but reads, in a few seconds, so a second identical
//! request (the cluster that three ECS steps describe, the stack that a lookup and a step both
//! read) gets the first one's answer instead of a round trip to AWS.
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
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::config_bag::ConfigBag;

/// A successful answer, whole.
#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The answers of one set of read-only clients, by request (method, URI, the headers that say
/// what is asked, body). Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub(crate) struct ReusedReads {
    answers: Arc<Mutex<HashMap<Vec<u8>, Answer>>>,
}

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
    fn get(&self, key: &[u8]) -> Option<Answer> {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn put(&self, key: Vec<u8>, answer: Answer) {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, answer);
    }
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
            let key = key_of(&request);
            if let Some(answer) = key.as_deref().and_then(|k| reads.get(k)) {
                return response_of(&answer).map_err(|e| {
                    aws_smithy_runtime_api::client::result::ConnectorError::other(e, None)
                });
            }
            let response = inner.call(request).await?;
            let Some(key) = key else {
                return Ok(response);
            };
            if !response.status().is_success() {
                return Ok(response);
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
                .map_err(|e| {
                    aws_smithy_runtime_api::client::result::ConnectorError::io(Box::new(e))
                })?
                .into_bytes()
                .to_vec();
            let answer = Answer {
                status,
                headers,
                body,
            };
            let response = response_of(&answer).map_err(|e| {
                aws_smithy_runtime_api::client::result::ConnectorError::other(e, None)
            })?;
            reads.put(key, answer);
            Ok(response)
        })
    }
}
