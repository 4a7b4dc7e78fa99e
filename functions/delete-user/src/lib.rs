//! `DELETE /users/{id}`: deletes the user, frees its email address and
//! leaves a tombstone for the history, in one transaction; 204, or 404 when
//! missing, or 412 when `If-Match` does not name the current version.
//!
//! DynamoDB permissions (its role in template.yaml): `GetItem` of the user
//! (its version and the email address to free), then one
//! `TransactWriteItems`: `DeleteItem` of the user and of its email claim,
//! each conditional, and `PutItem` of the tombstone; `DescribeEndpoints` at
//! init.

use common::ApiError;
use common::http;
use common::lambda_http::{Body, Request, Response};
use storage::UserStore;

/// Handles one request.
pub async fn handle(store: &dyn UserStore, request: Request) -> Response<Body> {
    http::serve(&request, delete_user(store, &request)).await
}

async fn delete_user(store: &dyn UserStore, request: &Request) -> Result<Response<Body>, ApiError> {
    let write = http::write_context(request)?;
    store.delete(&write).await?;
    Ok(http::no_content())
}
