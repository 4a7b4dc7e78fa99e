//! The one error type of the API and its single mapping to an HTTP status
//! and an `application/problem+json` body (RFC 9457).

use lambda_http::http::StatusCode;
use serde::Serialize;

use crate::domain::InvalidValue;

/// Everything a request can fail with. Each variant's doc names its status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed (body not a JSON object, bad id, bad
    /// query parameter, bad header). The text is shown to the client.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 400: a query parameter's value is not valid; the detail names the
    /// parameter and says why.
    #[error("invalid query parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// Why its value was rejected.
        reason: InvalidValue,
    },
    /// 403: the request did not come through the edge (Edge cloudfront):
    /// it lacks the origin secret CloudFront adds ([`crate::http::ORIGIN_HEADER`]).
    #[error("request did not pass the edge")]
    NotFromEdge,
    /// 404: no such resource.
    #[error("not found")]
    NotFound,
    /// 409: the email address belongs to another user.
    #[error("email address taken")]
    EmailTaken,
    /// 409: a request with the same `Idempotency-Key` is still in flight.
    #[error("idempotency key in flight")]
    IdempotencyKeyInFlight,
    /// 422: the `Idempotency-Key` was first used with a different body.
    #[error("idempotency key reused")]
    IdempotencyKeyReused,
    /// 410: the caller's `Idempotency-Key` created a user that has since
    /// been deleted; nothing of it is returned.
    #[error("created user deleted")]
    CreatedUserDeleted,
    /// 412: `If-Match` does not name the current version.
    #[error("precondition failed")]
    PreconditionFailed,
    /// 413: the body is larger than [`crate::http::MAX_BODY_BYTES`].
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415: the body is not declared as JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 422: the JSON is well formed but its fields are not valid.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 503: storage is throttled or unreachable; the client may retry.
    #[error("storage unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 500: anything else. The cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One invalid field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's name as sent (`body` for the body as a whole).
    pub field: String,
    /// What is wrong with it, as a sentence fragment.
    pub message: String,
}

impl FieldError {
    /// An error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A short summary of the kind of problem.
    pub title: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// The API Gateway request id, for support and log search.
    pub request_id: String,
    /// The invalid fields (422 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl ApiError {
    /// A 400 with `detail` shown to the client.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::BadRequest(detail.into())
    }

    /// Makes a rejected value of the query parameter `name` a 400.
    pub fn invalid_parameter(name: &'static str) -> impl Fn(InvalidValue) -> Self {
        move |reason| Self::InvalidParameter { name, reason }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
            Self::NotFromEdge => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::EmailTaken | Self::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::CreatedUserDeleted => StatusCode::GONE,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document for this error. 5xx documents are generic.
    pub fn to_problem(&self, request_id: &str) -> Problem {
        let (kind, title, detail) = match self {
            Self::BadRequest(detail) => ("/problems/bad-request", "Bad Request", detail.clone()),
            Self::InvalidParameter { name, reason } => (
                "/problems/bad-request",
                "Bad Request",
                format!("{name} {reason}."),
            ),
            Self::NotFromEdge => (
                "/problems/not-from-edge",
                "Forbidden",
                "Call the API at its public URL (the stack's ApiUrl output).".to_owned(),
            ),
            Self::NotFound => (
                "/problems/not-found",
                "Not Found",
                "No resource exists at this address.".to_owned(),
            ),
            Self::EmailTaken => (
                "/problems/email-taken",
                "Email Taken",
                "The email address belongs to another user.".to_owned(),
            ),
            Self::IdempotencyKeyInFlight => (
                "/problems/request-in-flight",
                "Request In Flight",
                "A request with this Idempotency-Key is still being processed; retry shortly."
                    .to_owned(),
            ),
            Self::IdempotencyKeyReused => (
                "/problems/idempotency-key-reused",
                "Idempotency Key Reused",
                "This Idempotency-Key was used with a different request body.".to_owned(),
            ),
            Self::CreatedUserDeleted => (
                "/problems/created-user-deleted",
                "Created User Deleted",
                "The user this Idempotency-Key created has since been deleted.".to_owned(),
            ),
            Self::PreconditionFailed => (
                "/problems/precondition-failed",
                "Precondition Failed",
                "If-Match does not name the current version; fetch the resource and retry."
                    .to_owned(),
            ),
            Self::PayloadTooLarge => (
                "/problems/payload-too-large",
                "Payload Too Large",
                "The request body must be at most 16384 bytes.".to_owned(),
            ),
            Self::UnsupportedMediaType => (
                "/problems/unsupported-media-type",
                "Unsupported Media Type",
                "The request body must be sent as application/json.".to_owned(),
            ),
            Self::Validation(_) => (
                "/problems/validation-failed",
                "Validation Failed",
                "One or more fields are invalid.".to_owned(),
            ),
            Self::Unavailable(_) => (
                "/problems/service-unavailable",
                "Service Unavailable",
                "The service is busy; retry after the time given in Retry-After.".to_owned(),
            ),
            Self::Internal(_) => (
                "/problems/internal-error",
                "Internal Server Error",
                "The request could not be completed.".to_owned(),
            ),
        };
        Problem {
            kind,
            title,
            status: self.status().as_u16(),
            detail,
            request_id: request_id.to_owned(),
            errors: match self {
                Self::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
        }
    }
}

/// An error and its sources as one line (`a: b: c`), for the log.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
