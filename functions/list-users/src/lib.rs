//! `GET /users?limit=&cursor=&email=`: pages through users in creation
//! order, oldest first, with an opaque cursor; or, with `email=`, finds the
//! one user holding that address. Each page is one DynamoDB `Query` on an
//! index, so it costs the same however many users there are.
//!
//! DynamoDB permissions (its role in template.yaml): `Query` on the
//! `byCreation` and `byEmail` indexes; `DescribeEndpoints` at init.

use common::domain::{Email, PageRequest, UserId};
use common::lambda_http::http::StatusCode;
use common::lambda_http::{Body, Request, Response};
use common::wire::{PageBody, UserBody};
use common::{ApiError, cursor, http};
use storage::UserStore;

/// The scope that binds cursors to this list.
const CURSOR_SCOPE: &str = "users";

/// Handles one request.
pub async fn handle(store: &dyn UserStore, request: Request) -> Response<Body> {
    http::serve(&request, list_users(store, &request)).await
}

async fn list_users(store: &dyn UserStore, request: &Request) -> Result<Response<Body>, ApiError> {
    let query = http::query(request, &["limit", "cursor", "email"])?;
    let size = http::page_size(&query)?;
    let after: Option<UserId> = query
        .get("cursor")
        .map(|raw| cursor::decode_key(CURSOR_SCOPE, raw))
        .transpose()?;
    if let Some(raw) = query.get("email") {
        if after.is_some() {
            return Err(ApiError::bad_request(
                "cursor cannot be combined with email.",
            ));
        }
        let email = Email::parse(raw).map_err(ApiError::invalid_parameter("email"))?;
        let found = store.find_by_email(&email).await?;
        return http::json(
            StatusCode::OK,
            &PageBody {
                items: found.iter().map(UserBody::from).collect(),
                next_cursor: None,
            },
        );
    }
    let page = store.list(PageRequest::after(after, size)).await?;
    let body = PageBody::of(
        &page,
        |user| UserBody::from(user),
        |last| cursor::encode_key(CURSOR_SCOPE, &last.id),
    );
    http::json(StatusCode::OK, &body)
}
