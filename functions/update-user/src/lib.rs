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
use common::domain::{Timestamp, UserChanges};
use common::http;
use common::lambda_http::http::StatusCode;
use common::lambda_http::{Body, Request, Response};
use common::store::UserStore;

/// Handles one request.
pub async fn handle(store: &dyn UserStore, request: Request) -> Response<Body> {
    http::serve(&request, update_user(store, &request)).await
}

async fn update_user(store: &dyn UserStore, request: &Request) -> Result<Response<Body>, ApiError> {
    let id = http::path_id(request)?;
    let precondition = http::if_match(request)?;
    let changes = UserChanges::try_from(http::json_object(request, http::JSON_OR_MERGE_PATCH)?)?;
    let user = store
        .update(
            id,
            &changes,
            &precondition,
            Timestamp::now(),
            http::actor(request),
        )
        .await?;
    http::user(StatusCode::OK, &user)
}

#[cfg(test)]
mod tests {
    use common::domain::{Email, User, UserId, UserName};
    use common::store::MemoryStore;
    use common::testing::{ApiGatewayEvent, json_body};
    use serde_json::json;

    use super::*;

    async fn stored(store: &MemoryStore, email: &str) -> User {
        let user = User::new(
            Email::parse(email).expect("email"),
            UserName::parse("Ada").expect("name"),
            Timestamp::now(),
        );
        store.create(&user, None).await.expect("create");
        user
    }

    fn patch(id: UserId) -> ApiGatewayEvent {
        ApiGatewayEvent::new("PATCH /users/{id}", &format!("/users/{id}")).id(id)
    }

    #[tokio::test]
    async fn patch_changes_fields_and_bumps_the_version() {
        let store = MemoryStore::new();
        let user = stored(&store, "ada@example.com").await;
        let request = patch(user.id)
            .header("if-match", "\"1\"")
            .body(
                "application/merge-patch+json",
                json!({"name": "Ada L."}).to_string(),
            )
            .build();
        let response = handle(&store, request).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["etag"], "\"2\"");
        let body = json_body(&response);
        assert_eq!(body["name"], "Ada L.");
        assert_eq!(body["email"], "ada@example.com");
        assert_eq!(body["version"], 2);
    }

    #[tokio::test]
    async fn patch_returns_412_when_if_match_is_stale_and_changes_nothing() {
        let store = MemoryStore::new();
        let user = stored(&store, "ada@example.com").await;
        let request = patch(user.id)
            .header("if-match", "\"9\"")
            .json(&json!({"name": "Eve"}))
            .build();
        assert_eq!(handle(&store, request).await.status(), 412);
        assert_eq!(store.get(user.id).await.expect("get"), Some(user));
    }

    #[tokio::test]
    async fn patch_moves_the_email_claim() {
        let store = MemoryStore::new();
        let ada = stored(&store, "ada@example.com").await;
        let eve = stored(&store, "eve@example.com").await;
        let taken = handle(
            &store,
            patch(ada.id)
                .json(&json!({"email": "eve@example.com"}))
                .build(),
        )
        .await;
        assert_eq!(taken.status(), 409);
        let moved = handle(
            &store,
            patch(ada.id)
                .json(&json!({"email": "ada@new.example"}))
                .build(),
        )
        .await;
        assert_eq!(moved.status(), 200);
        let freed = handle(
            &store,
            patch(eve.id)
                .json(&json!({"email": "ada@example.com"}))
                .build(),
        )
        .await;
        assert_eq!(freed.status(), 200, "the old address is free again");
    }

    #[tokio::test]
    async fn patch_rejects_bad_input_with_4xx() {
        let store = MemoryStore::new();
        let user = stored(&store, "ada@example.com").await;
        let cases = [
            (patch(user.id).json(&json!({})), 422, "no field"),
            (patch(user.id).json(&json!({"name": null})), 422, "null"),
            (patch(user.id).body("text/plain", "{}"), 415, "not JSON"),
            (
                patch(UserId::new(Timestamp::now())).json(&json!({"name": "Eve"})),
                404,
                "missing",
            ),
            (
                ApiGatewayEvent::new("PATCH /users/{id}", "/users/x")
                    .id("x")
                    .json(&json!({"name": "Eve"})),
                400,
                "bad id",
            ),
        ];
        for (request, status, why) in cases {
            assert_eq!(
                handle(&store, request.build()).await.status(),
                status,
                "{why}"
            );
        }
        assert_eq!(store.get(user.id).await.expect("get"), Some(user));
    }
}
