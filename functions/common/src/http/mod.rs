//! Reading API Gateway requests and writing responses: the one place that
//! turns a handler's result into status, headers and body, and logs it.
//! One concept a file: serving, request parsing, entity tags, responses,
//! the edge's proof of origin.

mod entity_tag;
mod json_body;
mod origin;
mod request;
mod response;
mod serve;

pub use entity_tag::{
    EntityTags, IfNoneMatch, MAX_ENTITY_TAGS, etag, if_none_match, precondition, write_context,
};
pub use origin::{
    ORIGIN_HEADER, ORIGIN_SECRET_VARIABLE, OriginSecret,
    configure_from_env as configure_origin_check,
};
pub use request::{
    JSON_ONLY, JSON_OR_MERGE_PATCH, MAX_BODY_BYTES, MERGE_PATCH_JSON, idempotency_key, json_object,
    page_size, path_id, query,
};
pub use response::{
    RETRY_AFTER_SECONDS, SECURITY_HEADERS, created, json, no_content, not_modified, replayed,
    revalidate, user,
};
pub use serve::{DEADLINE_MARGIN, REQUEST_BUDGET, actor, serve};
