//! Test support (feature `testing`): API Gateway HTTP API (payload 2.0)
//! requests built from a real event fixture, as the Lambda runtime would
//! hand them to a handler.
#![allow(
    clippy::expect_used,
    reason = "test support: a broken fixture must fail the test loudly"
)]

use std::collections::HashMap;

use lambda_http::http::HeaderValue;
use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::{Body, Request, RequestExt};
use serde_json::Value;

const FIXTURE: &str = include_str!("../fixtures/apigw-v2-request.json");

/// Builds one request; the route key (`"PATCH /users/{id}"`) sets the method.
#[derive(Debug)]
pub struct TestRequest {
    event: Value,
    path_parameters: HashMap<String, String>,
    body: Option<(String, String)>,
    headers: Vec<(String, String)>,
}

impl TestRequest {
    /// A request for `route_key` to `path` (which may carry a query string).
    pub fn new(route_key: &str, path: &str) -> Self {
        let mut event: Value = serde_json::from_str(FIXTURE).expect("fixture is JSON");
        let (method, _) = route_key
            .split_once(' ')
            .expect("route key is 'METHOD /path'");
        let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
        event["routeKey"] = route_key.into();
        event["requestContext"]["routeKey"] = route_key.into();
        event["requestContext"]["http"]["method"] = method.into();
        event["requestContext"]["http"]["path"] = raw_path.into();
        event["rawPath"] = raw_path.into();
        event["rawQueryString"] = raw_query.into();
        event["pathParameters"] = Value::Object(Default::default());
        Self {
            event,
            path_parameters: HashMap::new(),
            body: None,
            headers: Vec::new(),
        }
    }

    /// Sets the `{id}` path parameter.
    pub fn id(mut self, id: impl ToString) -> Self {
        self.path_parameters.insert("id".to_owned(), id.to_string());
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets a body with its content type.
    pub fn body(mut self, content_type: &str, body: impl Into<String>) -> Self {
        self.body = Some((content_type.to_owned(), body.into()));
        self
    }

    /// Sets a JSON body.
    pub fn json(self, body: &Value) -> Self {
        self.body("application/json", body.to_string())
    }

    /// The request as `lambda_http` produces it from the event.
    pub fn build(self) -> Request {
        let mut event = self.event;
        if let Some((_, body)) = &self.body {
            event["body"] = body.clone().into();
        }
        let mut request = lambda_http::request::from_str(&event.to_string())
            .expect("fixture is an API Gateway v2 event")
            .with_path_parameters(self.path_parameters);
        let headers = request.headers_mut();
        if let Some((content_type, _)) = &self.body {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_str(content_type).expect("header value"),
            );
        }
        for (name, value) in &self.headers {
            headers.append(
                lambda_http::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        if self.body.is_none() {
            *request.body_mut() = Body::Empty;
        }
        request
    }
}

/// The JSON body of a response.
pub fn json_body(response: &lambda_http::Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).expect("response body is JSON")
}
