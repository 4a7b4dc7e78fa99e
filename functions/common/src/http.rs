//! Reading API Gateway requests and writing responses: the one place that
//! turns a handler's result into status, headers and body, and logs it.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, HeaderMap, HeaderName, HeaderValue, IF_MATCH, IF_NONE_MATCH,
    LOCATION, RETRY_AFTER,
};
use lambda_http::http::{Response, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::{IdempotencyKey, PageSize, Precondition, User, UserId, Version};
use crate::dynamodb_calls;
use crate::error::ApiError;
use crate::metrics;
use crate::wire::UserBody;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Most entity tags accepted in one `If-Match` or `If-None-Match` header.
pub const MAX_ENTITY_TAGS: usize = 20;
/// Seconds a client is asked to wait after a 503.
pub const RETRY_AFTER_SECONDS: u32 = 1;
/// Longest a request may run before it answers 503 itself: under the
/// template's 6 s function timeout, so the client always gets our problem
/// document and `Retry-After`, never API Gateway's bare 503/504.
pub const REQUEST_BUDGET: Duration = Duration::from_secs(5);
/// Kept free before the invocation's deadline to write the response.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

const JSON: &str = "application/json";
const PROBLEM_JSON: &str = "application/problem+json";
/// `application/json` and, for PATCH, `application/merge-patch+json` (RFC 7396).
pub const MERGE_PATCH_JSON: &str = "application/merge-patch+json";

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

/// Runs a handler's work for `request` and turns its result into the
/// response: problem documents for errors, security headers on everything,
/// and one structured log line, which is also the request's CloudWatch
/// metrics (an EMF document, see [`crate::metrics`]).
pub async fn serve<F>(request: &Request, work: F) -> Response<Body>
where
    F: Future<Output = Result<Response<Body>, ApiError>>,
{
    let started = Instant::now();
    let Gateway {
        request_id,
        route,
        actor,
    } = gateway(request);
    let (result, calls) = dynamodb_calls::measure(within_budget(request, work)).await;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            if error.status().is_server_error() {
                tracing::error!(request_id, error = %crate::error::chain(&error), "request failed");
            }
            problem(&error, request_id)
        }
    };
    add_default_headers(response.headers_mut());
    let user_id = response
        .extensions()
        .get::<UserId>()
        .copied()
        .or_else(|| path_id(request).ok());
    let latency = started.elapsed();
    let emf = metrics::request(route, response.status(), latency, &calls);
    tracing::info!(
        request_id,
        method = %request.method(),
        route,
        status = response.status().as_u16(),
        latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        user_id = user_id.map(tracing::field::display),
        actor,
        emf = emf.to_json().as_str(),
        "request"
    );
    response
}

/// Runs `work` for at most [`REQUEST_BUDGET`], and never past the
/// invocation's deadline less [`DEADLINE_MARGIN`]; past that, the work is
/// dropped and the request answers 503. A write it dropped either happened
/// or did not (each is one DynamoDB call or transaction), never half.
async fn within_budget<F>(request: &Request, work: F) -> Result<Response<Body>, ApiError>
where
    F: Future<Output = Result<Response<Body>, ApiError>>,
{
    let budget = request
        .lambda_context_ref()
        .and_then(|context| context.deadline().duration_since(SystemTime::now()).ok())
        .map_or(REQUEST_BUDGET, |left| {
            left.saturating_sub(DEADLINE_MARGIN).min(REQUEST_BUDGET)
        });
    tokio::time::timeout(budget, work)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::Unavailable(
                format!("request ran out of its {} ms budget", budget.as_millis()).into(),
            ))
        })
}

/// What API Gateway says about a request: its id, its route key
/// (`GET /users/{id}`) and the caller its JWT authorizer accepted.
struct Gateway<'r> {
    request_id: &'r str,
    route: &'r str,
    actor: Option<&'r str>,
}

fn gateway(request: &Request) -> Gateway<'_> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => Gateway {
            request_id: context.request_id.as_deref().unwrap_or_default(),
            route: context.route_key.as_deref().unwrap_or_default(),
            actor: actor_of(context),
        },
        _ => Gateway {
            request_id: "",
            route: "",
            actor: None,
        },
    }
}

/// The caller: the verified token's `client_id` (machine clients) or `sub`.
/// Only the authorizer's claims count, never a header the client sets.
fn actor_of(context: &ApiGatewayV2httpRequestContext) -> Option<&str> {
    let claims = &context.authorizer.as_ref()?.jwt.as_ref()?.claims;
    claims
        .get("client_id")
        .or_else(|| claims.get("sub"))
        .map(String::as_str)
}

/// The caller of `request`, as its JWT authorizer accepted it.
pub fn actor(request: &Request) -> Option<&str> {
    gateway(request).actor
}

fn add_default_headers(headers: &mut HeaderMap) {
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

fn problem(error: &ApiError, request_id: &str) -> Response<Body> {
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

/// The strong entity tag of a version: `"3"`.
#[allow(
    clippy::expect_used,
    reason = "digits between quotes are always a valid header value"
)]
pub fn etag(version: Version) -> HeaderValue {
    HeaderValue::try_from(format!("\"{}\"", version.get())).expect("valid entity tag")
}

/// The `Idempotency-Key` header, if sent: 1–255 printable ASCII characters.
pub fn idempotency_key(request: &Request) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|raw| IdempotencyKey::parse(raw).ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1 to 255 printable ASCII characters.")
        })
}

/// The `{id}` path parameter as a user id.
pub fn path_id(request: &Request) -> Result<UserId, ApiError> {
    let raw = request
        .path_parameters_ref()
        .and_then(|params| params.first("id"))
        .unwrap_or_default();
    UserId::parse(raw).map_err(|_| ApiError::bad_request("The id in the path must be a ULID."))
}

/// The query parameters, each at most once and all among `allowed`.
pub fn query<'r>(
    request: &'r Request,
    allowed: &[&str],
) -> Result<HashMap<&'r str, &'r str>, ApiError> {
    let mut seen = HashMap::new();
    let Some(params) = request.query_string_parameters_ref() else {
        return Ok(seen);
    };
    for (name, value) in params.iter() {
        if !allowed.contains(&name) {
            return Err(ApiError::bad_request(format!(
                "Unknown query parameter; this endpoint accepts: {}.",
                allowed.join(", ")
            )));
        }
        if seen.insert(name, value).is_some() {
            return Err(ApiError::bad_request(format!(
                "Query parameter {name} must be given at most once."
            )));
        }
    }
    Ok(seen)
}

/// The `limit` query parameter, or the default page size.
pub fn page_size(query: &HashMap<&str, &str>) -> Result<PageSize, ApiError> {
    query.get("limit").map_or(Ok(PageSize::default()), |raw| {
        PageSize::parse(raw).map_err(|e| ApiError::bad_request(format!("limit {e}.")))
    })
}

/// The body as a JSON object, after checking its media type (415) and size
/// (413). A body that is not JSON, or not an object, is a 400.
pub fn json_object(
    request: &Request,
    media_types: &[&str],
) -> Result<Map<String, Value>, ApiError> {
    let declared = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase());
    if !declared.is_some_and(|essence| media_types.contains(&essence.as_str())) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::bad_request(
            "The request body must be a JSON object.",
        )),
        Err(_) => Err(ApiError::bad_request("The request body is not valid JSON.")),
    }
}

/// Media types a JSON body may be declared as on POST.
pub const JSON_ONLY: &[&str] = &[JSON];
/// Media types a JSON body may be declared as on PATCH.
pub const JSON_OR_MERGE_PATCH: &[&str] = &[JSON, MERGE_PATCH_JSON];

/// Entity tags from a conditional header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityTags {
    /// `*`: any current representation.
    Any,
    /// A list of tags; `weak` marks `W/` tags.
    List(Vec<(bool, Option<Version>)>),
}

fn entity_tags(request: &Request, header: HeaderName) -> Result<Option<EntityTags>, ApiError> {
    let Some(value) = request.headers().get(&header) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(format!(
            "{header} must be * or a list of at most {MAX_ENTITY_TAGS} entity tags such as \"3\"."
        ))
    };
    let text = value.to_str().map_err(|_| invalid())?.trim();
    if text == "*" {
        return Ok(Some(EntityTags::Any));
    }
    let mut tags = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (weak, quoted) = match part.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, part),
        };
        let opaque = quoted
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .filter(|inner| !inner.contains('"'))
            .ok_or_else(invalid)?;
        // Tags compare as text, so only a version's own spelling names it ("01" is
        // not "1"); any other tag is well formed but names no version of ours.
        let version = opaque
            .parse::<u64>()
            .ok()
            .filter(|number| number.to_string() == opaque)
            .map(Version::new);
        tags.push((weak, version));
    }
    if tags.len() > MAX_ENTITY_TAGS {
        return Err(invalid());
    }
    Ok(Some(EntityTags::List(tags)))
}

/// The write precondition from `If-Match` (strong comparison: weak tags
/// never match). Absent or `*` requires nothing beyond existence.
pub fn if_match(request: &Request) -> Result<Precondition, ApiError> {
    Ok(match entity_tags(request, IF_MATCH)? {
        None | Some(EntityTags::Any) => Precondition::None,
        Some(EntityTags::List(tags)) => Precondition::OneOf(
            tags.into_iter()
                .filter_map(|(weak, version)| if weak { None } else { version })
                .collect(),
        ),
    })
}

/// The request's `If-None-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfNoneMatch(Option<EntityTags>);

impl IfNoneMatch {
    /// Whether the header names `version` (weak comparison), so a GET can
    /// answer 304.
    pub fn matches(&self, version: Version) -> bool {
        match &self.0 {
            None => false,
            Some(EntityTags::Any) => true,
            Some(EntityTags::List(tags)) => tags.iter().any(|(_, tag)| *tag == Some(version)),
        }
    }
}

/// Reads `If-None-Match`; a malformed one is a 400.
pub fn if_none_match(request: &Request) -> Result<IfNoneMatch, ApiError> {
    entity_tags(request, IF_NONE_MATCH).map(IfNoneMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(name: HeaderName, value: &str) -> Request {
        lambda_http::http::Request::builder()
            .header(name, value)
            .body(Body::Empty)
            .expect("request")
    }

    #[test]
    fn if_match_names_a_version_only_by_its_exact_entity_tag() {
        let cases = [
            ("\"1\"", vec![Version::new(1)], "the ETag itself"),
            ("\"01\"", vec![], "a leading zero"),
            ("\"+1\"", vec![], "a sign"),
            (
                "\"001\", \"2\"",
                vec![Version::new(2)],
                "only the exact tag of a list",
            ),
            ("W/\"1\"", vec![], "a weak tag"),
        ];
        for (header, versions, why) in cases {
            assert_eq!(
                if_match(&with_header(IF_MATCH, header)).ok(),
                Some(Precondition::OneOf(versions)),
                "{why}: {header}"
            );
        }
    }

    #[test]
    fn if_none_match_matches_only_the_exact_entity_tag() {
        let cases = [
            ("\"1\"", true, "the ETag itself"),
            ("W/\"1\"", true, "weak comparison"),
            ("\"01\"", false, "a leading zero"),
            ("W/\"001\"", false, "a weak tag with leading zeros"),
        ];
        for (header, matches, why) in cases {
            let condition =
                if_none_match(&with_header(IF_NONE_MATCH, header)).expect("well formed");
            assert_eq!(
                condition.matches(Version::new(1)),
                matches,
                "{why}: {header}"
            );
        }
    }
}
