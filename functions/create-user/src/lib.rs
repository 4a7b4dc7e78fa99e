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
use common::wire::NewUserFields;
use storage::{Created, UserStore};

/// Handles one request.
pub async fn handle(store: &dyn UserStore, request: Request) -> Response<Body> {
    http::serve(&request, create_user(store, &request)).await
}

async fn create_user(store: &dyn UserStore, request: &Request) -> Result<Response<Body>, ApiError> {
    let key = http::idempotency_key(request)?;
    let body = http::json_object(request, http::JSON_ONLY)?;
    let now = Timestamp::now();
    let caller = http::actor(request);
    let idempotency = key.map(|key| Idempotency::new(caller, key, &body, now));
    let fields = NewUserFields::try_from(body)?;
    let user = User::new(fields.email, fields.name, now).by(caller);
    match store.create(&user, idempotency.as_ref()).await? {
        Created::New => http::created(&user),
        Created::Replayed(current) => http::replayed(&current),
        Created::ReplayedDeleted => Err(ApiError::CreatedUserDeleted),
    }
}
