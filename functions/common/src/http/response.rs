//! Responses: JSON bodies, problem documents, and the headers every
//! response carries.

use lambda_http::Body;
use lambda_http::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue, LOCATION, RETRY_AFTER,
};
use lambda_http::http::{Response, StatusCode};
use serde::Serialize;

use super::entity_tag::etag;
use crate::domain::User;
use crate::error::ApiError;
use crate::wire::UserBody;

/// Seconds a client is asked to wait after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;

pub(super) const JSON: &str = "application/json";
const PROBLEM_JSON: &str = "application/problem+json";

/// Headers every function response carries, errors included (the set
/// `helmet` gives an Express service).
pub const SECURITY_HEADERS: [(&str, &str); 6] = [
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-resource-policy", "same-origin"),
];

pub(super) fn add_default_headers(headers: &mut HeaderMap) {
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

pub(super) fn problem(error: &ApiError, request_id: &str) -> Response<Body> {
    let body = serde_json::to_string(&error.to_problem(request_id)).unwrap_or_default();
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = error.status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if matches!(
        error,
        ApiError::Unavailable(_) | ApiError::IdempotencyKeyInFlight
    ) {
        headers.insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    response
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Result<Response<Body>, ApiError> {
    let text = serde_json::to_string(body).map_err(|e| ApiError::Internal(e.into()))?;
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    Ok(response)
}

/// A user as JSON, with its `ETag`; the user id is kept for the log line.
pub fn user(status: StatusCode, user: &User) -> Result<Response<Body>, ApiError> {
    let mut response = json(status, &UserBody::from(user))?;
    response.headers_mut().insert(ETAG, etag(user.version));
    response.extensions_mut().insert(user.id);
    Ok(response)
}

/// `201 Created` with the user, its `Location` and `ETag`.
pub fn created(created: &User) -> Result<Response<Body>, ApiError> {
    let mut response = user(StatusCode::CREATED, created)?;
    let location = HeaderValue::try_from(format!("/users/{}", created.id))
        .map_err(|e| ApiError::Internal(e.into()))?;
    response.headers_mut().insert(LOCATION, location);
    Ok(response)
}

/// The same `201 Created` a keyed create first answered, marked as a replay.
pub fn replayed(created: &User) -> Result<Response<Body>, ApiError> {
    let mut response = self::created(created)?;
    response.headers_mut().insert(
        HeaderName::from_static("idempotent-replayed"),
        HeaderValue::from_static("true"),
    );
    Ok(response)
}

/// `304 Not Modified` for a user the client already has.
pub fn not_modified(user: &User) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    response.headers_mut().insert(ETAG, etag(user.version));
    response.extensions_mut().insert(user.id);
    response
}

/// Lets private caches keep `response` but makes them revalidate it
/// (with `If-None-Match`) before each use.
pub fn revalidate(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    response
}

/// `204 No Content`.
pub fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}
