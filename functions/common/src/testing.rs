//! The one builder of API Gateway HTTP API (payload 2.0) events (feature
//! `testing`): the handler tests, the benchmarks and the local API all
//! build the events their functions receive with [`ApiGatewayEvent`],
//! starting from a real event fixture.
#![allow(
    clippy::expect_used,
    reason = "test support: a broken fixture must fail the test loudly"
)]

use std::collections::HashMap;

use base64::Engine as _;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::http::header::{CONTENT_LENGTH, CONTENT_TYPE, COOKIE};
use lambda_http::http::{HeaderMap, HeaderName, HeaderValue};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request};
use serde_json::Value;

const FIXTURE: &str = include_str!("../fixtures/apigw-v2-request.json");

/// One API Gateway HTTP API event, built from a real event fixture; the
/// route key (`"PATCH /users/{id}"`) sets the method, and the path
/// parameters are read from the path where the route has `{name}`.
#[derive(Debug, Clone)]
pub struct ApiGatewayEvent {
    event: ApiGatewayV2httpRequest,
}

impl ApiGatewayEvent {
    /// An event for `route_key` to `path` (which may carry a query string).
    pub fn new(route_key: &str, path: &str) -> Self {
        let mut event: ApiGatewayV2httpRequest =
            serde_json::from_str(FIXTURE).expect("fixture is an API Gateway v2 event");
        let (method, route_path) = route_key
            .split_once(' ')
            .expect("route key is 'METHOD /path'");
        let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
        event.route_key = Some(route_key.to_owned());
        event.request_context.route_key = Some(route_key.to_owned());
        event.request_context.http.method = method.parse().expect("route key has a method");
        event.request_context.http.path = Some(raw_path.to_owned());
        event.raw_path = Some(raw_path.to_owned());
        event.raw_query_string = Some(raw_query.to_owned());
        event.path_parameters = route_path
            .split('/')
            .zip(raw_path.split('/'))
            .filter_map(|(pattern, value)| {
                let name = pattern.strip_prefix('{')?.strip_suffix('}')?;
                Some((name.to_owned(), value.to_owned()))
            })
            .collect();
        Self { event }
    }

    /// Sets the `{id}` path parameter.
    pub fn id(mut self, id: impl ToString) -> Self {
        self.event
            .path_parameters
            .insert("id".to_owned(), id.to_string());
        self
    }

    /// Replaces the path parameters.
    pub fn path_parameters(mut self, parameters: HashMap<String, String>) -> Self {
        self.event.path_parameters = parameters;
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("header name");
        let value = HeaderValue::from_str(value).expect("header value");
        self.event.headers.append(name, value);
        self
    }

    /// Replaces the headers with `headers` as API Gateway passes them:
    /// repeated headers joined with commas, cookies in their own field.
    pub fn headers(mut self, headers: &HeaderMap) -> Self {
        self.event.headers = HeaderMap::new();
        for name in headers.keys().filter(|name| *name != COOKIE) {
            let values: Vec<&[u8]> = headers.get_all(name).iter().map(|v| v.as_bytes()).collect();
            if let Ok(value) = HeaderValue::from_bytes(&values.join(&b","[..])) {
                self.event.headers.insert(name.clone(), value);
            }
        }
        let cookies: Vec<String> = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        self.event.cookies = (!cookies.is_empty()).then_some(cookies);
        self
    }

    /// Sets a text body with its content type.
    pub fn body(self, content_type: &str, body: impl Into<String>) -> Self {
        let mut this = self.raw_body(body.into().as_bytes());
        let length = this.event.body.as_ref().map_or(0, String::len);
        this.event.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("header value"),
        );
        this.event.headers.insert(CONTENT_LENGTH, length.into());
        this
    }

    /// Sets a JSON body.
    pub fn json(self, body: &Value) -> Self {
        self.body("application/json", body.to_string())
    }

    /// Sets the body as API Gateway passes it: text as is, anything else
    /// base64-encoded; an empty body is no body.
    pub fn raw_body(mut self, body: &[u8]) -> Self {
        (self.event.body, self.event.is_base64_encoded) = match std::str::from_utf8(body) {
            _ if body.is_empty() => (None, false),
            Ok(text) => (Some(text.to_owned()), false),
            Err(_) => (
                Some(base64::engine::general_purpose::STANDARD.encode(body)),
                true,
            ),
        };
        self
    }

    /// The event, for what the builder does not set (the request context).
    pub fn event(self) -> ApiGatewayV2httpRequest {
        self.event
    }

    /// The event as the Lambda runtime receives it.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.event).expect("events serialize")
    }

    /// The request as `lambda_http` makes it from the event.
    pub fn build(self) -> Request {
        let empty = self.event.body.is_none();
        let mut request: Request = LambdaRequest::ApiGatewayV2(self.event).into();
        if empty {
            *request.body_mut() = Body::Empty;
        }
        request
    }
}

/// The JSON body of a response.
pub fn json_body(response: &lambda_http::Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).expect("response body is JSON")
}
