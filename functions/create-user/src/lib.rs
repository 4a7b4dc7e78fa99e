//! `POST /users`: creates a user from `{"email", "name"}` and answers 201
//! with the user, its `Location` and `ETag`; 409 when the email address is
//! taken. The user and its email claim are written in one transaction.
//!
//! With an `Idempotency-Key` header, a retry of the same request by the
//! same caller within 24 hours gets a 201 for the user the first request
//! created, as it is now (410 if it was since deleted), and creates
//! nothing; the key record (fingerprint and user id, no personal data) is
//! written in the same transaction as the user. Keys are private to their
//! caller. The same key with another body is a 422; while the first
//! request is in flight, a 409.
//!
//! DynamoDB permissions (its role in template.yaml): `PutItem` for the
//! items of its `TransactWriteItems` (user, email claim, idempotency key
//! record); `GetItem` of the key record and then of the user when an
//! `Idempotency-Key` is reused; `DescribeEndpoints` at init.

use common::ApiError;
use common::domain::{Idempotency, Timestamp, User};
use common::http;
use common::lambda_http::{Body, Request, Response};
use common::store::{Created, UserStore};
use common::wire::NewUserFields;
use serde_json::Value;

/// Handles one request.
pub async fn handle(store: &dyn UserStore, request: Request) -> Response<Body> {
    http::serve(&request, create_user(store, &request)).await
}

async fn create_user(store: &dyn UserStore, request: &Request) -> Result<Response<Body>, ApiError> {
    let key = http::idempotency_key(request)?;
    let body = http::json_object(request, http::JSON_ONLY)?;
    let now = Timestamp::now();
    // serde_json keeps object keys sorted, so equal bodies print equal bytes.
    let caller = http::actor(request);
    let idempotency = key.map(|key| {
        Idempotency::new(
            caller,
            key,
            Value::Object(body.clone()).to_string().as_bytes(),
            now,
        )
    });
    let fields = NewUserFields::try_from(body)?;
    let user = User::new(fields.email, fields.name, now).by(caller);
    match store.create(&user, idempotency.as_ref()).await? {
        Created::New => http::created(&user),
        Created::Replayed(current) => http::replayed(&current),
        Created::ReplayedDeleted => Err(ApiError::CreatedUserDeleted),
    }
}

#[cfg(test)]
mod tests {
    use common::store::MemoryStore;
    use common::testing::{ApiGatewayEvent, json_body};
    use serde_json::json;

    use super::*;

    fn post(body: &serde_json::Value) -> Request {
        ApiGatewayEvent::new("POST /users", "/users")
            .json(body)
            .build()
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
                ApiGatewayEvent::new("POST /users", "/users")
                    .body("text/plain", r#"{"email":"a@b.co","name":"Ada"}"#),
                415,
                "not declared as JSON",
            ),
            (
                ApiGatewayEvent::new("POST /users", "/users"),
                415,
                "no body, no content type",
            ),
            (
                ApiGatewayEvent::new("POST /users", "/users").body("application/json", "{"),
                400,
                "not JSON",
            ),
            (
                ApiGatewayEvent::new("POST /users", "/users").body("application/json", "[]"),
                400,
                "not an object",
            ),
            (
                ApiGatewayEvent::new("POST /users", "/users")
                    .body("application/json", "x".repeat(16 * 1024 + 1)),
                413,
                "over 16 KiB",
            ),
            (
                ApiGatewayEvent::new("POST /users", "/users")
                    .json(&json!({"email": "nope", "name": ""})),
                422,
                "invalid fields",
            ),
            (
                ApiGatewayEvent::new("POST /users", "/users")
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

#[cfg(test)]
mod idempotency_tests {
    use common::store::MemoryStore;
    use common::testing::{ApiGatewayEvent, json_body};
    use serde_json::json;

    use super::*;

    fn post(key: &str, body: &serde_json::Value) -> Request {
        ApiGatewayEvent::new("POST /users", "/users")
            .header("idempotency-key", key)
            .json(body)
            .build()
    }

    #[tokio::test]
    async fn a_retried_create_replays_the_first_response() {
        let store = MemoryStore::new();
        let body = json!({"email": "ada@example.com", "name": "Ada"});
        let first = handle(&store, post("k-1", &body)).await;
        assert_eq!(first.status(), 201);
        let again = handle(
            &store,
            post("k-1", &json!({"name": "Ada", "email": "ada@example.com"})),
        )
        .await;
        assert_eq!(again.status(), 201);
        assert_eq!(again.headers()["location"], first.headers()["location"]);
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        assert_eq!(json_body(&again), json_body(&first));
    }

    #[tokio::test]
    async fn a_key_reused_with_another_body_is_a_422_and_an_overlong_key_a_400() {
        let store = MemoryStore::new();
        assert_eq!(
            handle(
                &store,
                post("k-2", &json!({"email": "ada@example.com", "name": "Ada"}))
            )
            .await
            .status(),
            201
        );
        let reused = handle(
            &store,
            post("k-2", &json!({"email": "eve@example.com", "name": "Eve"})),
        )
        .await;
        assert_eq!(reused.status(), 422);
        assert_eq!(
            json_body(&reused)["type"],
            "/problems/idempotency-key-reused"
        );
        let long = handle(
            &store,
            post(
                &"k".repeat(256),
                &json!({"email": "bob@example.com", "name": "Bob"}),
            ),
        )
        .await;
        assert_eq!(long.status(), 400);
        assert_eq!(
            handle(
                &store,
                post(
                    &"k".repeat(255),
                    &json!({"email": "bob@example.com", "name": "Bob"})
                )
            )
            .await
            .status(),
            201
        );
    }
}
