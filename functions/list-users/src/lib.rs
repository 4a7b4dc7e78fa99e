//! `GET /users?limit=&cursor=&email=`: pages through users in creation
//! order, oldest first, with an opaque cursor; or, with `email=`, finds the
//! one user holding that address. Each page is one DynamoDB `Query` on an
//! index, so it costs the same however many users there are.
//!
//! DynamoDB permissions (its role in template.yaml): `Query` on the
//! `byCreation` and `byEmail` indexes; `DescribeEndpoints` at init.

use common::domain::{Email, UserId};
use common::lambda_http::http::StatusCode;
use common::lambda_http::{Body, Request, Response};
use common::store::UserStore;
use common::wire::{PageBody, UserBody};
use common::{ApiError, cursor, http};

/// The scope that binds cursors to this list.
const CURSOR_SCOPE: &str = "users";

/// Handles one request.
pub async fn handle(store: &dyn UserStore, request: Request) -> Response<Body> {
    http::serve(&request, list_users(store, &request)).await
}

async fn list_users(store: &dyn UserStore, request: &Request) -> Result<Response<Body>, ApiError> {
    let query = http::query(request, &["limit", "cursor", "email"])?;
    let size = http::page_size(&query)?;
    let after = query
        .get("cursor")
        .map(|raw| cursor::decode(CURSOR_SCOPE, raw).map(UserId::from_bytes))
        .transpose()?;
    if let Some(raw) = query.get("email") {
        if after.is_some() {
            return Err(ApiError::bad_request(
                "cursor cannot be combined with email.",
            ));
        }
        let email = Email::parse(raw).map_err(|e| ApiError::bad_request(format!("email {e}.")))?;
        let found = store.find_by_email(&email).await?;
        return http::json(
            StatusCode::OK,
            &PageBody {
                items: found.iter().map(UserBody::from).collect(),
                next_cursor: None,
            },
        );
    }
    let page = store.list(after, size).await?;
    let body = PageBody::of(
        &page,
        |user| UserBody::from(user),
        |last| cursor::encode(CURSOR_SCOPE, last.id.to_bytes()),
    );
    http::json(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use common::domain::{Email, Timestamp, User, UserName};
    use common::store::MemoryStore;
    use common::testing::{ApiGatewayEvent, json_body};

    use super::*;

    async fn store_with(count: usize) -> MemoryStore {
        let store = MemoryStore::new();
        for i in 0..count {
            let user = User::new(
                Email::parse(&format!("user{i}@example.com")).expect("email"),
                UserName::parse(&format!("User {i}")).expect("name"),
                Timestamp::now(),
            );
            store.create(&user, None).await.expect("create");
        }
        store
    }

    async fn list(store: &MemoryStore, query: &str) -> Response<Body> {
        handle(
            store,
            ApiGatewayEvent::new("GET /users", &format!("/users?{query}")).build(),
        )
        .await
    }

    #[tokio::test]
    async fn list_walks_every_user_once_in_creation_order() {
        let store = store_with(5).await;
        let mut seen = Vec::new();
        let mut query = "limit=2".to_owned();
        loop {
            let response = list(&store, &query).await;
            assert_eq!(response.status(), 200);
            let body = json_body(&response);
            for item in body["items"].as_array().expect("items") {
                seen.push(item["email"].as_str().expect("email").to_owned());
            }
            match body["nextCursor"].as_str() {
                Some(next) => query = format!("limit=2&cursor={next}"),
                None => break,
            }
        }
        let expected: Vec<String> = (0..5).map(|i| format!("user{i}@example.com")).collect();
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn list_finds_a_user_by_email_case_insensitively() {
        let store = store_with(3).await;
        let body = json_body(&list(&store, "email=USER1%40Example.com").await);
        assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(body["items"][0]["email"], "user1@example.com");
        assert!(body["nextCursor"].is_null());
        let none = json_body(&list(&store, "email=nobody%40example.com").await);
        assert_eq!(none["items"].as_array().map(Vec::len), Some(0));
    }

    #[tokio::test]
    async fn list_rejects_invalid_query_parameters_with_400() {
        let store = store_with(1).await;
        for query in [
            "limit=0",
            "limit=101",
            "limit=x",
            "cursor=abc",
            "email=nope",
            "limit=1&limit=2",
            "sort=name",
            "cursor=&email=a%40b.co",
        ] {
            assert_eq!(list(&store, query).await.status(), 400, "{query}");
        }
    }
}
