//! `DELETE /users/{id}`: deletes the user and frees its email address in one
//! transaction; 204, or 404 when missing, or 412 when `If-Match` does not
//! name the current version.
//!
//! DynamoDB permissions (its role in template.yaml): `GetItem` (to learn
//! the email address to free), then `TransactWriteItems` of the user's and
//! the claim's conditional deletes (`DeleteItem`) and the tombstone's put
//! (`PutItem`); `DescribeEndpoints` at init.

use common::ApiError;
use common::domain::Timestamp;
use common::http;
use common::lambda_http::{Body, Request, Response};
use common::store::UserStore;

/// Handles one request.
pub async fn handle(store: &dyn UserStore, request: Request) -> Response<Body> {
    http::serve(&request, delete_user(store, &request)).await
}

async fn delete_user(store: &dyn UserStore, request: &Request) -> Result<Response<Body>, ApiError> {
    let id = http::path_id(request)?;
    let precondition = http::if_match(request)?;
    store
        .delete(id, &precondition, Timestamp::now(), http::actor(request))
        .await?;
    Ok(http::no_content())
}

#[cfg(test)]
mod tests {
    use common::domain::{Email, User, UserId, UserName};
    use common::store::MemoryStore;
    use common::testing::ApiGatewayEvent;

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

    fn delete(id: UserId) -> ApiGatewayEvent {
        ApiGatewayEvent::new("DELETE /users/{id}", &format!("/users/{id}")).id(id)
    }

    #[tokio::test]
    async fn delete_returns_204_and_frees_the_email() {
        let store = MemoryStore::new();
        let user = stored(&store).await;
        let response = handle(&store, delete(user.id).header("if-match", "\"1\"").build()).await;
        assert_eq!(response.status(), 204);
        assert!(response.body().is_empty());
        assert_eq!(store.get(user.id).await.expect("get"), None);
        stored(&store).await;
    }

    #[tokio::test]
    async fn delete_returns_412_on_stale_if_match_and_404_when_missing() {
        let store = MemoryStore::new();
        let user = stored(&store).await;
        assert_eq!(
            handle(&store, delete(user.id).header("if-match", "\"2\"").build())
                .await
                .status(),
            412
        );
        assert!(
            store.get(user.id).await.expect("get").is_some(),
            "a 412 deletes nothing"
        );
        assert_eq!(
            handle(&store, delete(UserId::new(Timestamp::now())).build())
                .await
                .status(),
            404
        );
    }
}
