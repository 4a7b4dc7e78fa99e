//! `POST /users`: creates a user from `{"email", "name"}` and answers 201
//! with the user, its `Location` and `ETag`; 409 when the email address is
//! taken. The user and its email claim are written in one transaction.
//!
//! DynamoDB permissions: see [`DYNAMODB_ACTIONS`].

use common::ApiError;
use common::domain::{Timestamp, User};
use common::http;
use common::lambda_http::{Body, Request, Response};
use common::store::UserStore;
use common::wire::NewUserFields;

/// The DynamoDB actions this function calls (`TransactWriteItems` of two
/// conditional puts).
pub const DYNAMODB_ACTIONS: &[&str] = &["dynamodb:PutItem"];

/// Handles one request.
pub async fn handle(store: &dyn UserStore, request: Request) -> Response<Body> {
    http::serve(&request, create_user(store, &request)).await
}

async fn create_user(store: &dyn UserStore, request: &Request) -> Result<Response<Body>, ApiError> {
    let fields = NewUserFields::try_from(http::json_object(request, http::JSON_ONLY)?)?;
    let user = User::new(fields.email, fields.name, Timestamp::now());
    store.create(&user).await?;
    http::created(&user)
}

#[cfg(test)]
mod tests {
    use common::store::MemoryStore;
    use common::testing::{TestRequest, json_body};
    use serde_json::json;

    use super::*;

    fn post(body: &serde_json::Value) -> Request {
        TestRequest::new("POST /users", "/users").json(body).build()
    }

    #[tokio::test]
    async fn create_returns_201_with_location_and_etag() {
        let store = MemoryStore::new();
        let response = handle(
            &store,
            post(&json!({"email": " Ada@Example.com ", "name": "Ada"})),
        )
        .await;
        assert_eq!(response.status(), 201);
        let body = json_body(&response);
        assert_eq!(body["email"], "ada@example.com");
        assert_eq!(body["version"], 1);
        let id = body["id"].as_str().expect("id");
        assert_eq!(id.len(), 26);
        assert_eq!(
            response.headers()["location"],
            format!("/users/{id}").as_str()
        );
        assert_eq!(response.headers()["etag"], "\"1\"");
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }

    #[tokio::test]
    async fn create_returns_409_when_email_is_taken() {
        let store = MemoryStore::new();
        let first = handle(
            &store,
            post(&json!({"email": "ada@example.com", "name": "Ada"})),
        )
        .await;
        assert_eq!(first.status(), 201);
        let second = handle(
            &store,
            post(&json!({"email": "ADA@example.com", "name": "Other"})),
        )
        .await;
        assert_eq!(second.status(), 409);
        assert_eq!(second.headers()["content-type"], "application/problem+json");
        assert_eq!(json_body(&second)["requestId"], "CcA3XjKfoAMEb2Q=");
    }

    #[tokio::test]
    async fn create_rejects_bad_bodies_with_the_documented_status() {
        let cases = [
            (
                TestRequest::new("POST /users", "/users")
                    .body("text/plain", r#"{"email":"a@b.co","name":"Ada"}"#),
                415,
                "not declared as JSON",
            ),
            (
                TestRequest::new("POST /users", "/users"),
                415,
                "no body, no content type",
            ),
            (
                TestRequest::new("POST /users", "/users").body("application/json", "{"),
                400,
                "not JSON",
            ),
            (
                TestRequest::new("POST /users", "/users").body("application/json", "[]"),
                400,
                "not an object",
            ),
            (
                TestRequest::new("POST /users", "/users")
                    .body("application/json", "x".repeat(16 * 1024 + 1)),
                413,
                "over 16 KiB",
            ),
            (
                TestRequest::new("POST /users", "/users")
                    .json(&json!({"email": "nope", "name": ""})),
                422,
                "invalid fields",
            ),
            (
                TestRequest::new("POST /users", "/users")
                    .json(&json!({"email": "a@b.co", "name": "Ada", "admin": true})),
                422,
                "unknown field",
            ),
        ];
        let store = MemoryStore::new();
        for (request, status, why) in cases {
            let response = handle(&store, request.build()).await;
            assert_eq!(response.status(), status, "{why}");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{why}"
            );
        }
        let listed = store.list(None, Default::default()).await.expect("list");
        assert!(listed.items.is_empty(), "nothing is stored on a 4xx");
    }

    #[tokio::test]
    async fn create_names_each_invalid_field() {
        let store = MemoryStore::new();
        let response = handle(&store, post(&json!({"email": 42, "name": "A"}))).await;
        assert_eq!(response.status(), 422);
        let errors = json_body(&response)["errors"].clone();
        assert_eq!(errors[0]["field"], "email");
        assert_eq!(errors[1]["field"], "name");
    }
}
