//! `GET /users/{id}`: answers 200 with the user and its `ETag`, or 304 when
//! `If-None-Match` names the current version; 404 when there is no such
//! user. Responses may be kept by private caches but are revalidated.
//!
//! DynamoDB permissions (its role in template.yaml): `GetItem` of the user
//! (a strongly consistent read); `DescribeEndpoints` at init.

use common::ApiError;
use common::http;
use common::lambda_http::http::StatusCode;
use common::lambda_http::{Body, Request, Response};
use storage::UserStore;

/// Handles one request.
pub async fn handle(store: &dyn UserStore, request: Request) -> Response<Body> {
    http::serve(&request, get_user(store, &request)).await
}

async fn get_user(store: &dyn UserStore, request: &Request) -> Result<Response<Body>, ApiError> {
    let id = http::path_id(request)?;
    let cached = http::if_none_match(request)?;
    let user = store.get(id).await?.ok_or(ApiError::NotFound)?;
    if cached.matches(user.version) {
        return Ok(http::revalidate(http::not_modified(&user)));
    }
    Ok(http::revalidate(http::user(StatusCode::OK, &user)?))
}
