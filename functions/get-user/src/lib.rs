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
use common::store::UserStore;

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

#[cfg(test)]
mod tests {
    use common::domain::{Email, Timestamp, User, UserName};
    use common::store::MemoryStore;
    use common::testing::{ApiGatewayEvent, json_body};

    use super::*;

    async fn stored(store: &MemoryStore) -> User {
        let user = User::new(
            Email::parse("ada@example.com").expect("email"),
            UserName::parse("Ada").expect("name"),
            Timestamp::now(),
        );
        store.create(&user, None).await.expect("create");
        user
    }

    fn get(id: impl ToString) -> ApiGatewayEvent {
        let id = id.to_string();
        ApiGatewayEvent::new("GET /users/{id}", &format!("/users/{id}")).id(id)
    }

    #[tokio::test]
    async fn get_returns_the_user_with_etag_and_revalidation() {
        let store = MemoryStore::new();
        let user = stored(&store).await;
        let response = handle(&store, get(user.id).build()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(json_body(&response)["id"], user.id.to_string());
        assert_eq!(response.headers()["etag"], "\"1\"");
        assert_eq!(response.headers()["cache-control"], "private, no-cache");
    }

    #[tokio::test]
    async fn get_returns_304_when_if_none_match_names_the_current_version() {
        let store = MemoryStore::new();
        let user = stored(&store).await;
        for tag in ["\"1\"", "W/\"1\"", "\"7\", \"1\"", "*"] {
            let response = handle(&store, get(user.id).header("if-none-match", tag).build()).await;
            assert_eq!(response.status(), 304, "{tag}");
            assert!(response.body().is_empty(), "{tag}");
            assert_eq!(response.headers()["etag"], "\"1\"");
        }
        let stale = handle(
            &store,
            get(user.id).header("if-none-match", "\"2\"").build(),
        )
        .await;
        assert_eq!(stale.status(), 200);
    }

    #[tokio::test]
    async fn get_answers_404_for_unknown_and_400_for_malformed_ids() {
        let store = MemoryStore::new();
        let missing = handle(
            &store,
            get(common::domain::UserId::new(Timestamp::now())).build(),
        )
        .await;
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.headers()["cache-control"], "no-store");
        let malformed = handle(&store, get("not-a-ulid").build()).await;
        assert_eq!(malformed.status(), 400);
        let bad_header = handle(
            &store,
            get(common::domain::UserId::new(Timestamp::now()))
                .header("if-none-match", "1")
                .build(),
        )
        .await;
        assert_eq!(bad_header.status(), 400);
    }
}
