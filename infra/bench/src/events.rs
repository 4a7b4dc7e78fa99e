//! The events the functions are invoked with: API Gateway HTTP API
//! (payload 2.0) events built from the same real fixture the handler tests
//! use, and DynamoDB stream batches for the history worker.

use std::collections::BTreeMap;

use common::domain::{Email, Timestamp, User, UserName};
use common::stream::StreamEvent;
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("../../../functions/common/fixtures/apigw-v2-request.json");

/// One HTTP request as API Gateway hands it to a function.
#[derive(Debug, Clone, Default)]
pub(crate) struct HttpEvent {
    route_key: String,
    path: String,
    query: Vec<(String, String)>,
    id: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl HttpEvent {
    /// A request for `route_key` (`"GET /users/{id}"`) to `path`.
    pub(crate) fn new(route_key: &str, path: &str) -> Self {
        Self {
            route_key: route_key.to_owned(),
            path: path.to_owned(),
            ..Self::default()
        }
    }

    /// Sets the `{id}` path parameter.
    pub(crate) fn id(mut self, id: impl ToString) -> Self {
        self.id = Some(id.to_string());
        self
    }

    /// Adds a query parameter (sent unencoded: the benchmark's values need none).
    pub(crate) fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets a body and its content type.
    pub(crate) fn body(mut self, content_type: &str, body: String) -> Self {
        self.body = Some(body);
        self.header("content-type", content_type)
    }

    /// The event's JSON.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut event: Value = serde_json::from_str(FIXTURE).unwrap_or_default();
        let method = self.route_key.split(' ').next().unwrap_or("GET");
        let raw_query = self
            .query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        event["routeKey"] = self.route_key.as_str().into();
        event["requestContext"]["routeKey"] = self.route_key.as_str().into();
        event["requestContext"]["http"]["method"] = method.into();
        event["requestContext"]["http"]["path"] = self.path.as_str().into();
        event["requestContext"]["requestId"] = ulid::Ulid::new().to_string().into();
        event["rawPath"] = self.path.as_str().into();
        event["rawQueryString"] = raw_query.into();
        if !self.query.is_empty() {
            let params: BTreeMap<&str, &str> = self
                .query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            event["queryStringParameters"] = json!(params);
        }
        event["pathParameters"] = match &self.id {
            Some(id) => json!({ "id": id }),
            None => json!({}),
        };
        for (name, value) in &self.headers {
            event["headers"][name.as_str()] = value.as_str().into();
        }
        if let Some(body) = &self.body {
            event["headers"]["content-length"] = body.len().to_string().into();
            event["body"] = body.as_str().into();
        }
        serde_json::to_vec(&event).unwrap_or_default()
    }
}

/// `POST /users` with a fresh address made from `tag` and `n`.
pub(crate) fn create(tag: &str, n: usize) -> HttpEvent {
    HttpEvent::new("POST /users", "/users").body(
        "application/json",
        json!({ "email": format!("{tag}-{n}@example.com"), "name": format!("Bench User {n}") })
            .to_string(),
    )
}

/// A history worker batch of one record: user `n` was created.
pub(crate) fn stream_insert(n: usize) -> Vec<u8> {
    let user = Email::parse(&format!("stream-{n}@example.com"))
        .ok()
        .zip(UserName::parse(&format!("Stream User {n}")).ok())
        .map(|(email, name)| User::new(email, name, Timestamp::now()));
    let mut event = StreamEvent::default();
    event.records = user
        .iter()
        .map(|user| common::stream::user_record(None, Some(user), n as u64 + 1))
        .collect();
    serde_json::to_vec(&event).unwrap_or_default()
}

/// The HTTP status of a `lambda_http` answer (`{"statusCode": 201, ...}`).
pub(crate) fn status(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("statusCode")?
        .as_u64()
}
