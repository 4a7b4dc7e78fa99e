//! The two Lambda Extensions API calls an internal extension makes:
//! register for `INVOKE` events, then ask for each next event (AWS Lambda
//! Developer Guide, "Extensions API"). They go over the Lambda runtime's own
//! client (`lambda_runtime_api_client`, which every function links already).
//!
//! The `lambda-extension` crate makes the same calls, and more (servers for
//! the Logs and Telemetry APIs), but turns on its client's `tracing`
//! feature, which links `tracing-subscriber`'s filters and `regex` into each
//! function; doing without it keeps that out of the binaries. The local
//! API's tests run that crate's own internal extension against the twin's
//! Extensions API, as a second implementation of these calls.

use http::{Method, StatusCode};
use http_body_util::BodyExt;
use lambda_runtime_api_client::body::Body;
use lambda_runtime_api_client::{BoxError, Client, build_request};

const NAME_HEADER: &str = "Lambda-Extension-Name";
const ID_HEADER: &str = "Lambda-Extension-Identifier";

/// An extension registered with Lambda.
#[derive(Debug)]
pub struct Registered {
    client: Client,
    id: String,
}

/// What Lambda sends an extension next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An invocation has started.
    Invoke,
    /// The environment is shutting down (external extensions only; an
    /// internal one never registers for it, but the API may still send it).
    Shutdown,
}

/// Registers the internal extension `name` for `INVOKE` events, with the
/// Runtime API at `AWS_LAMBDA_RUNTIME_API`. Call it during init, before the
/// runtime asks for its first event: registration closes then.
pub async fn register(name: &str) -> Result<Registered, BoxError> {
    let client = Client::builder().build()?;
    let request = build_request()
        .method(Method::POST)
        .uri("/2020-01-01/extension/register")
        .header(NAME_HEADER, name)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"events":["INVOKE"]}"#))?;
    let response = client.call(request).await?;
    let status = response.status();
    let id = response
        .headers()
        .get(ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    match (status, id) {
        (StatusCode::OK, Some(id)) => Ok(Registered { client, id }),
        (StatusCode::OK, None) => Err(format!("registration answered without {ID_HEADER}").into()),
        (status, _) => Err(format!("registration refused with {status}").into()),
    }
}

impl Registered {
    /// Waits for the next event. Asking for it tells Lambda this extension
    /// is done with the previous one: the environment may then freeze.
    pub async fn next(&self) -> Result<Event, BoxError> {
        let request = build_request()
            .method(Method::GET)
            .uri("/2020-01-01/extension/event/next")
            .header(ID_HEADER, &self.id)
            .body(Body::empty())?;
        let response = self.client.call(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if status != StatusCode::OK {
            return Err(format!("the next event was refused with {status}").into());
        }
        let event: serde_json::Value = serde_json::from_slice(&body)?;
        match event.get("eventType").and_then(serde_json::Value::as_str) {
            Some("INVOKE") => Ok(Event::Invoke),
            Some("SHUTDOWN") => Ok(Event::Shutdown),
            other => Err(format!("an event of unknown type {other:?}").into()),
        }
    }
}
