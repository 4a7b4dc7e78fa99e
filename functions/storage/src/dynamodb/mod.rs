//! The DynamoDB store: one table, keys designed for the API's access patterns
//! (see `docs/storage.md`). Uniqueness and preconditions are condition
//! expressions inside transactions, so concurrent requests cannot both win.
//!
//! - `keys`: attribute values and item keys;
//! - `transaction`: one transaction, each item named by the slot it fills;
//! - `transactions`: the multi-item writes (create, email change, delete);
//! - `updates`: the single-item conditional writes (name change, history);
//! - `queries`: the reads.

mod keys;
mod queries;
mod transaction;
mod transactions;
mod updates;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use self::keys::Item;
use self::transactions::retry_races;
use super::item::UserItem;
use super::{Created, HistoryStore, StoreError, UserStore};
use common::domain::{
    Email, HistoryEvent, Idempotency, Page, PageRequest, User, UserChanges, UserId, Version,
    WriteContext,
};

/// Name of the index that lists users in creation order.
pub const BY_CREATION_INDEX: &str = "byCreation";
/// Name of the index that finds a user by email address.
pub const BY_EMAIL_INDEX: &str = "byEmail";

/// Users in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store over `table`, reached with `client`; its calls count towards
    /// the request's metrics ([`telemetry::dynamodb_calls`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client: telemetry::dynamodb_calls::instrument(&client),
            table: table.into(),
        }
    }
}

fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Internal(e.into()))
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Internal(e.into()))
}

fn to_user(item: Item) -> Result<User, StoreError> {
    from_item::<UserItem>(item)?.try_into()
}

/// Sorts an SDK error into transient failures (throttling, timeouts,
/// connection and response errors, DynamoDB's own 5xx, a transaction still
/// in progress: the client may retry, 503) and everything else (a bug or a
/// misconfiguration: 500).
fn classify<E>(error: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error()
                || matches!(
                    error.code(),
                    Some(
                        "ProvisionedThroughputExceededException"
                            | "ThrottlingException"
                            | "RequestLimitExceeded"
                            | "TransactionInProgressException"
                            | "InternalServerError"
                            | "ServiceUnavailable"
                    )
                )
        }
        _ => false,
    };
    if transient {
        StoreError::Unavailable(error.into())
    } else {
        StoreError::Internal(error.into())
    }
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn create(&self, user: &User, key: Option<&Idempotency>) -> Result<Created, StoreError> {
        retry_races(|| self.try_create(user, key)).await
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.get_user(id).await
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.user_by_email(email).await
    }

    async fn list(&self, page: PageRequest<UserId>) -> Result<Page<User>, StoreError> {
        self.users_after(page).await
    }

    async fn update(
        &self,
        changes: &UserChanges,
        write: &WriteContext,
    ) -> Result<User, StoreError> {
        // Destructured without `..`: a new field is a compile error here,
        // where it must choose its path.
        let UserChanges { email, name } = changes;
        match (email, name) {
            (None, Some(name)) => self.update_name(name, write).await,
            (Some(_), _) | (None, None) => {
                retry_races(|| self.try_update_with_email(changes, write)).await
            }
        }
    }

    async fn delete(&self, write: &WriteContext) -> Result<(), StoreError> {
        retry_races(|| self.try_delete(write)).await
    }
}

#[async_trait]
impl HistoryStore for DynamoStore {
    async fn record(&self, event: &HistoryEvent) -> Result<(), StoreError> {
        self.record_once(event).await
    }

    async fn history(
        &self,
        user: UserId,
        page: PageRequest<Version>,
    ) -> Result<Page<HistoryEvent>, StoreError> {
        self.events_after(user, page).await
    }
}
