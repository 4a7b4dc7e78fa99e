//! Reading a request: path, query, headers and a JSON body, each turned
//! into a domain value or a 4xx.

use std::collections::HashMap;

use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::{Request, RequestExt};
use serde_json::{Map, Value};

use super::json_body::{self, JsonBodyError};
use super::response::JSON;
use crate::domain::{IdempotencyKey, PageSize, UserId};
use crate::error::ApiError;

/// `application/json` and, for PATCH, `application/merge-patch+json` (RFC 7396).
pub const MERGE_PATCH_JSON: &str = "application/merge-patch+json";
/// Media types a JSON body may be declared as on POST.
pub const JSON_ONLY: &[&str] = &[JSON];
/// Media types a JSON body may be declared as on PATCH.
pub const JSON_OR_MERGE_PATCH: &[&str] = &[JSON, MERGE_PATCH_JSON];
/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Most characters of a member name a problem detail repeats.
const MAX_NAME_SHOWN: usize = 64;

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
        PageSize::parse(raw).map_err(ApiError::invalid_parameter("limit"))
    })
}

/// The body as a JSON object, after checking its media type (415) and size
/// (413). A body that is not JSON, not an object, or names a member twice
/// is a 400.
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
    match json_body::parse(bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::bad_request(
            "The request body must be a JSON object.",
        )),
        Err(JsonBodyError::Invalid) => {
            Err(ApiError::bad_request("The request body is not valid JSON."))
        }
        Err(JsonBodyError::DuplicateMember(name)) => Err(ApiError::bad_request(format!(
            "The request body names the member {} more than once; each member may appear once.",
            Value::String(name.chars().take(MAX_NAME_SHOWN).collect())
        ))),
    }
}
