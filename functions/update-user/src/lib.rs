//! `PATCH /users/{id}`: applies a JSON Merge Patch of `email` and/or `name`
//! and answers 200 with the user and its new `ETag`. `If-Match` that does
//! not name the current version is a 412; a missing user a 404; an email
//! address held by another user a 409. A new email address is claimed and
//! the old one freed in the same transaction as the user changes.
//!
//! DynamoDB permissions (its role in template.yaml): `UpdateItem` for a
//! name change; `GetItem`, then `TransactWriteItems` of a put of the user, a
//! delete of the old email claim and a put of the new one (`PutItem`,
//! `DeleteItem`) for an email change; `DescribeEndpoints` at init.

use common::ApiError;
use common::domain::UserChanges;
use common::http;
use common::lambda_http::http::StatusCode;
use common::lambda_http::{Body, Request, Response};
use storage::UserStore;

/// Handles one request.
pub async fn handle(store: &dyn UserStore, request: Request) -> Response<Body> {
    http::serve(&request, update_user(store, &request)).await
}

async fn update_user(store: &dyn UserStore, request: &Request) -> Result<Response<Body>, ApiError> {
    let write = http::write_context(request)?;
    let changes = UserChanges::try_from(http::json_object(request, http::JSON_OR_MERGE_PATCH)?)?;
    let user = store.update(&changes, &write).await?;
    http::user(StatusCode::OK, &user)
}
