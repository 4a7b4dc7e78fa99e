//! `GET /users/{id}/events?limit=&cursor=`: a user's history (created,
//! updated with the names of the changed fields, deleted), oldest first,
//! paged like the user list. History outlives the user; 404 only when the
//! id never had any. Each page is one DynamoDB `Query` on the user's
//! partition.
//!
//! DynamoDB permissions (its role in template.yaml): `Query` on the table
//! (one user's partition); `DescribeEndpoints` at init.

use common::domain::Version;
use common::lambda_http::http::StatusCode;
use common::lambda_http::{Body, Request, Response};
use common::store::HistoryStore;
use common::wire::{HistoryEventBody, PageBody};
use common::{ApiError, cursor, http};

/// Handles one request.
pub async fn handle(store: &dyn HistoryStore, request: Request) -> Response<Body> {
    http::serve(&request, list_events(store, &request)).await
}

async fn list_events(
    store: &dyn HistoryStore,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let id = http::path_id(request)?;
    let query = http::query(request, &["limit", "cursor"])?;
    let size = http::page_size(&query)?;
    // Cursors are bound to this user's history: another user's is refused.
    let scope = format!("events:{id}");
    let after = query
        .get("cursor")
        .map(|raw| cursor::decode(&scope, raw).map(version_from_key))
        .transpose()?;
    let page = store.history(id, after, size).await?;
    if page.items.is_empty() && after.is_none() {
        return Err(ApiError::NotFound);
    }
    let body = PageBody::of(
        &page,
        |event| HistoryEventBody::from(event),
        |last| cursor::encode(&scope, version_key(last.version)),
    );
    http::json(StatusCode::OK, &body)
}

fn version_key(version: Version) -> [u8; 16] {
    u128::from(version.get()).to_be_bytes()
}

fn version_from_key(key: [u8; 16]) -> Version {
    Version::new(u64::try_from(u128::from_be_bytes(key)).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use common::domain::{ChangeKind, HistoryEvent, Timestamp, UserId};
    use common::store::MemoryStore;
    use common::testing::{ApiGatewayEvent, json_body};

    use super::*;

    async fn with_history(versions: u64) -> (MemoryStore, UserId) {
        let store = MemoryStore::new();
        let id = UserId::new(Timestamp::now());
        for v in 1..=versions {
            let event = HistoryEvent {
                user_id: id,
                kind: if v == 1 {
                    ChangeKind::Created
                } else {
                    ChangeKind::Updated
                },
                version: Version::new(v),
                changed_fields: vec!["name".to_owned()],
                occurred_at: Timestamp::now(),
                actor: Some("admin-app".to_owned()),
            };
            store.record(&event).await.expect("record");
        }
        (store, id)
    }

    fn get(id: UserId, query: &str) -> Request {
        ApiGatewayEvent::new(
            "GET /users/{id}/events",
            &format!("/users/{id}/events?{query}"),
        )
        .id(id)
        .build()
    }

    #[tokio::test]
    async fn events_page_oldest_first_with_a_cursor() {
        let (store, id) = with_history(5).await;
        let first = json_body(&handle(&store, get(id, "limit=3")).await);
        let versions: Vec<u64> = first["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| e["version"].as_u64().expect("v"))
            .collect();
        assert_eq!(versions, [1, 2, 3]);
        assert_eq!(first["items"][0]["type"], "created");
        let cursor = first["nextCursor"].as_str().expect("cursor");
        let second = json_body(&handle(&store, get(id, &format!("limit=3&cursor={cursor}"))).await);
        assert_eq!(second["items"].as_array().map(Vec::len), Some(2));
        assert!(second["nextCursor"].is_null());
    }

    #[tokio::test]
    async fn events_answer_404_for_an_id_without_history_and_400_for_bad_input() {
        let (store, id) = with_history(2).await;
        assert_eq!(
            handle(&store, get(UserId::new(Timestamp::now()), ""))
                .await
                .status(),
            404
        );
        let first = json_body(&handle(&store, get(id, "limit=1")).await);
        let cursor = first["nextCursor"].as_str().expect("cursor");
        let other = UserId::new(Timestamp::now());
        assert_eq!(
            handle(&store, get(other, &format!("cursor={cursor}")))
                .await
                .status(),
            400,
            "another user's cursor"
        );
        assert_eq!(handle(&store, get(id, "limit=0")).await.status(), 400);
        let bad_id = ApiGatewayEvent::new("GET /users/{id}/events", "/users/x/events")
            .id("x")
            .build();
        assert_eq!(handle(&store, bad_id).await.status(), 400);
    }
}
