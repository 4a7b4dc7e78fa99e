//! What the local proxies in front of DynamoDB Local (the IAM proxy and the
//! fault proxy) share: reading a request's operation, answering with a
//! DynamoDB error, and passing a request on to DynamoDB Local. It is
//! DynamoDB's JSON protocol (`X-Amz-Target`, `application/x-amz-json-1.0`)
//! as the SDKs speak it; the benchmark harness's metering proxy uses it too.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The largest request body a proxy reads (DynamoDB's own limit is 16 MB).
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// DynamoDB's media type.
pub const AMZ_JSON: &str = "application/x-amz-json-1.0";

/// The operation a request calls, from `X-Amz-Target`
/// (`DynamoDB_20120810.PutItem` → `PutItem`); empty when there is none.
pub fn operation(headers: &HeaderMap) -> String {
    headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split_once('.'))
        .map(|(_, op)| op.to_owned())
        .unwrap_or_default()
}

/// An error answer as DynamoDB writes one: `status`, and a body with the
/// error's `__type` (such as `com.amazon.coral.service#AccessDeniedException`)
/// and `message`, and `fields` added.
pub fn error(
    status: StatusCode,
    type_: &str,
    message: &str,
    fields: serde_json::Value,
) -> Response {
    let mut body = serde_json::json!({ "__type": type_, "message": message });
    if let (Some(body), Some(fields)) = (body.as_object_mut(), fields.as_object()) {
        body.extend(fields.clone());
    }
    (status, [(header::CONTENT_TYPE, AMZ_JSON)], body.to_string()).into_response()
}

/// The headers of a request to pass on: all but those the client sets anew.
pub fn outgoing(headers: &HeaderMap) -> HeaderMap {
    let mut outgoing = HeaderMap::new();
    for (name, value) in headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            outgoing.append(name.clone(), value.clone());
        }
    }
    outgoing
}

/// DynamoDB Local's answer: status, headers and body.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its headers, less those of the connection.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        (self.status, self.headers, self.body).into_response()
    }
}

/// Sends a request with `headers` and `body` to DynamoDB Local at
/// `upstream`; a 502 when it cannot be reached or its answer is cut short.
pub async fn send(
    client: &reqwest::Client,
    upstream: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Answer, Response> {
    let answer = client
        .post(format!("{upstream}/"))
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|error| {
            tracing::warn!(%error, "the local DynamoDB did not answer");
            (StatusCode::BAD_GATEWAY, "local DynamoDB unreachable").into_response()
        })?;
    let status = answer.status();
    let mut headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if name != header::TRANSFER_ENCODING
            && name != header::CONNECTION
            && name != header::CONTENT_LENGTH
        {
            headers.append(name.clone(), value.clone());
        }
    }
    let body = answer.bytes().await.map_err(|_| {
        (StatusCode::BAD_GATEWAY, "local DynamoDB answer cut short").into_response()
    })?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}
