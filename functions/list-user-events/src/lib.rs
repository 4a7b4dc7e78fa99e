//! `GET /users/{id}/events?limit=&cursor=`: a user's history (created,
//! updated with the names of the changed fields, deleted), oldest first,
//! paged like the user list. History outlives the user; 404 only when the
//! id never had any. Each page is one DynamoDB `Query` on the user's
//! partition.
//!
//! DynamoDB permissions (its role in template.yaml): `Query` on the table
//! (one user's partition); `DescribeEndpoints` at init.

use common::domain::{PageRequest, Version};
use common::lambda_http::http::StatusCode;
use common::lambda_http::{Body, Request, Response};
use common::wire::{HistoryEventBody, PageBody};
use common::{ApiError, cursor, http};
use storage::HistoryStore;

/// Handles one request.
pub async fn handle(store: &dyn HistoryStore, request: Request) -> Response<Body> {
    http::serve(&request, list_events(store, &request)).await
}

async fn list_events(
    store: &dyn HistoryStore,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let id = http::path_id(request)?;
    let query = http::query(request, &["limit", "cursor"])?;
    let size = http::page_size(&query)?;
    // Cursors are bound to this user's history: another user's is refused.
    let scope = format!("events:{id}");
    let after: Option<Version> = query
        .get("cursor")
        .map(|raw| cursor::decode_key(&scope, raw))
        .transpose()?;
    let page = store.history(id, PageRequest::after(after, size)).await?;
    if page.items.is_empty() && after.is_none() {
        return Err(ApiError::NotFound);
    }
    let body = PageBody::of(
        &page,
        |event| HistoryEventBody::from(event),
        |last| cursor::encode_key(&scope, &last.version),
    );
    http::json(StatusCode::OK, &body)
}
